/**
 * @file worker_epoll.c  The relay's packet path with epoll
 *
 * Read a batch with recvmmsg() and send it on with sendmmsg().  Waking up
 * costs more than relaying a packet, so a poll that found little work is
 * followed by a short pause (POLL_GAP_US): the next poll then finds the
 * packets of many streams at once.  Sockets are edge-triggered; one left
 * with packets after DRAIN_MAX batches is served again on the next round.
 */

#define _GNU_SOURCE 1
#include <string.h>
#include <errno.h>
#include <time.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include "worker_int.h"


enum {
	EV_MAX  = 256,       /**< events per epoll_wait                */
	DRAIN_MAX = 4,       /**< batches per socket and wake-up       */
	POLL_GAP_US = 500,   /**< pause after a poll with little work  */
	POLL_BUSY = 64,      /**< packets per poll that mean "busy"    */
};


/** Watch a new session's sockets */
void media_epoll_add(struct media_worker *w, struct media_sess *s)
{
	unsigned i;

	for (i = 0; i < 4; i++) {
		struct media_sock *sk = &s->sock[i];
		struct epoll_event ev;
		int fd = s->side[sk->side].fd[sk->rtcp];

		if (!sk->rtcp)
			media_sock_stamp(fd);

		/* edge-triggered: a socket is reported once per arrival,
		   not again at every poll until read */
		memset(&ev, 0, sizeof(ev));
		ev.events = EPOLLIN | EPOLLET;
		ev.data.ptr = sk;

		(void)epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev);
	}

	s->registered = true;
}


/**
 * Relay one batch from a socket (epoll)
 *
 * @return packets read, 0 if none was waiting, -1 on another error
 */
static int sock_read(struct media_worker *w, struct media_sock *sk,
		     uint64_t now_ms)
{
	struct media_sess *s = sk->s;
	struct media_side *in = &s->side[sk->side];
	struct media_side *out = &s->side[!sk->side];
	const unsigned k = sk->rtcp;
	const struct sa *dst;
	uint64_t bytes = 0;
	int n, i, m, last = 0, sent;

	/* the kernel rewrote name and control lengths of the last batch
	   only; the iovecs it leaves alone */
	for (i = 0; i < w->rlast; i++) {
		w->rmsg[i].msg_hdr.msg_namelen = sizeof(w->src[i]);
		w->rmsg[i].msg_hdr.msg_controllen = sizeof(w->ctl[i]);
	}

	n = recvmmsg(in->fd[k], w->rmsg, BATCH, MSG_DONTWAIT, NULL);
	w->rlast = n > 0 ? n : 0;
	if (n <= 0)
		return n < 0 && errno != EAGAIN && errno != EWOULDBLOCK ?
			-1 : 0;

	/* what may go on, packed to the front of the send batch */
	for (i = 0, m = 0; i < n; i++) {
		const uint32_t len = w->rmsg[i].msg_len;

		if (!src_accept(in, k, &w->src[i],
				w->rmsg[i].msg_hdr.msg_namelen, now_ms))
			continue;

		bytes += len;
		w->siov[m].iov_base = w->buf[i];
		w->siov[m].iov_len = len;
		last = i;
		++m;

		if (!k)
			rtp_in(s, sk, in, w->buf[i], len,
			       CMSG_FIRSTHDR(&w->rmsg[i].msg_hdr));
	}

	if (!m)
		return n;

	if (k)
		rtcp_in(in, (unsigned)m, w->buf[last], w->rmsg[last].msg_len);
	else
		rtp_pub(in, (unsigned)m, bytes, now_ms);

	dst = dst_of(out, k);
	if (!dst) {
		PUB(in->pub.dropped, in->pub.dropped + m);
		return n;
	}

	for (i = 0; i < m; i++) {
		w->smsg[i].msg_hdr.msg_name = (void *)&dst->u;
		w->smsg[i].msg_hdr.msg_namelen = dst->len;
	}

	sent = sendmmsg(out->fd[k], w->smsg, m, 0);
	if (sent < m)
		PUB(in->pub.dropped, in->pub.dropped +
		    (uint64_t)(m - (sent < 0 ? 0 : sent)));

	return n;
}


/** t + us, normalised */
static struct timespec ts_add_us(struct timespec t, long us)
{
	t.tv_nsec += us * 1000;
	while (t.tv_nsec >= 1000000000) {
		t.tv_nsec -= 1000000000;
		++t.tv_sec;
	}

	return t;
}


/**
 * Read a socket until it is empty, or for DRAIN_MAX batches so that
 * the other sockets get their turn; with edge-triggered epoll a socket
 * left with packets is remembered and served again on the next round
 */
static unsigned sock_serve(struct media_worker *w, struct media_sock *sk,
			   uint64_t now_ms)
{
	unsigned pkts = 0, k;
	int r = 0;

	for (k = 0; k < DRAIN_MAX; k++) {
		r = sock_read(w, sk, now_ms);
		if (r > 0)
			pkts += (unsigned)r;
		if (r < BATCH)
			break;
	}

	/* full batches to the end, or an error before EAGAIN */
	if ((r == BATCH || r < 0) && w->npend < PEND_MAX)
		w->pend[w->npend++] = sk;

	return pkts;
}


/** Relay until the worker is told to stop */
void media_epoll_loop(struct media_worker *w)
{
	struct epoll_event evv[EV_MAX];
	struct media_sock *prev[PEND_MAX];
	uint64_t prev_us = 0;

	while (!__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE)) {
		bool cmds = false;
		struct timespec now;
		uint64_t now_us;
		unsigned pkts = 0, np;
		int n, i;

		/* no timeout: stopping writes the eventfd */
		n = epoll_wait(w->epfd, evv, EV_MAX, w->npend ? 0 : -1);
		if (n < 0)
			continue;   /* EINTR */

		(void)clock_gettime(CLOCK_MONOTONIC, &now);
		now_us = (uint64_t)now.tv_sec * 1000000 +
			(uint64_t)now.tv_nsec / 1000;

		/* sockets left with packets last round first */
		np = w->npend;
		memcpy(prev, w->pend, np * sizeof(prev[0]));
		w->npend = 0;
		for (i = 0; i < (int)np; i++)
			pkts += sock_serve(w, prev[i], now_us / 1000);

		for (i = 0; i < n; i++) {
			if (!evv[i].data.ptr) {
				cmds = true;
				continue;
			}

			pkts += sock_serve(w, evv[i].data.ptr, now_us / 1000);
		}

		if (cmds)
			media_cmds_run(w);

		/* Packets come often but few at a time: each one would
		   cost a wake-up of its own.  Pause so that the next poll
		   serves the streams that sent meanwhile with one
		   wake-up.  Not when idle (the first packet is relayed
		   at once) nor when busy (the poll would not sleep). */
		if (pkts && pkts < POLL_BUSY && n < EV_MAX && !w->npend &&
		    now_us - prev_us < 2 * POLL_GAP_US) {
			struct timespec until = ts_add_us(now, POLL_GAP_US);

			while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME,
					       &until, NULL) == EINTR)
				;
		}

		prev_us = now_us;
	}
}
