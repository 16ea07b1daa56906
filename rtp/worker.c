/**
 * @file worker.c  The relay's packet path: one thread, one epoll each
 *
 * A worker owns the sockets of the sessions it was given.  It reads a
 * batch with recvmmsg(), accounts it (RFC 3550 statistics, RTCP reports,
 * latching), mixes the warning tone when one is playing, and sends the
 * batch on with one sendmmsg() from the other side's socket.  Nothing is
 * allocated or logged per packet.
 *
 * Waking up costs more than relaying a packet, so a poll that found
 * little work is followed by a short pause (POLL_GAP_US): the next poll
 * then finds the packets of many streams at once.  Arrival times for the
 * jitter estimate come from the kernel (SO_TIMESTAMPNS), so the pause
 * does not show in the statistics.
 *
 * The main thread talks to a worker only through its command list (mutex
 * + eventfd); commands are applied between two epoll_wait() batches, so a
 * socket is never closed while an event for it is pending.  Counters the
 * main thread reads are published with relaxed atomic stores.  A worker
 * tells the main thread that a session's sockets are closed through
 * libre's mqueue.
 */

#define _GNU_SOURCE 1
#include <string.h>
#include <unistd.h>
#include <pthread.h>
#include <time.h>
#include <errno.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include "relay_int.h"
#include <rem.h>


enum {
	BATCH   = 32,        /**< packets per recvmmsg/sendmmsg       */
	PKT_MAX = 2048,      /**< bytes per packet buffer              */
	EV_MAX  = 256,       /**< events per epoll_wait                */
	DRAIN_MAX = 4,       /**< batches per socket and wake-up       */
	POLL_GAP_US = 500,   /**< pause after a poll with little work  */
	POLL_BUSY = 64,      /**< packets per poll that mean "busy"    */
	PEND_MAX = 256,      /**< sockets left with packets to read    */
	CTL_LEN = CMSG_SPACE(sizeof(struct timespec)),
};

struct media_worker {
	pthread_t tid;
	bool started;
	int epfd;
	int evfd;
	unsigned index;
	struct mqueue *mq;           /**< borrowed (main thread's)      */

	pthread_mutex_t mtx;
	struct list cmdl;            /**< struct media_cmd, owned       */
	int stop;

	/* worker-only packet buffers */
	struct media_sock *pend[PEND_MAX]; /**< borrowed, not drained  */
	unsigned npend;

	struct mmsghdr rmsg[BATCH];
	int rlast;                   /**< entries the last read filled  */
	struct mmsghdr smsg[BATCH];
	struct iovec riov[BATCH];
	struct iovec siov[BATCH];
	struct sockaddr_storage src[BATCH];
	uint64_t ctl[BATCH][(CTL_LEN + 7) / 8];   /**< SCM_TIMESTAMPNS */
	uint8_t buf[BATCH][PKT_MAX];
};


#define PUB(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)


uint64_t media_mono_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);

	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}


/** A timestamp in a stream's clock (srate Hz), modulo 2^32 */
static inline uint32_t ts_units(const struct timespec *ts, uint32_t srate)
{
	return (uint32_t)((uint64_t)ts->tv_sec * srate +
			  (uint64_t)ts->tv_nsec * srate / 1000000000u);
}


static void sess_register(struct media_worker *w, struct media_sess *s)
{
	unsigned i;

	for (i = 0; i < 4; i++) {
		struct media_sock *sk = &s->sock[i];
		struct epoll_event ev;
		int fd = s->side[sk->side].fd[sk->rtcp];
		int one = 1;

		/* kernel arrival times for the jitter estimate */
		if (!sk->rtcp)
			(void)setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS,
					 &one, sizeof(one));

		/* edge-triggered: a socket is reported once per arrival,
		   not again at every poll until read */
		memset(&ev, 0, sizeof(ev));
		ev.events = EPOLLIN | EPOLLET;
		ev.data.ptr = sk;

		(void)epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev);
	}

	s->registered = true;
}


static void sess_close(struct media_worker *w, struct media_sess *s)
{
	unsigned i, k;

	/* no pending read may outlive the session */
	for (i = 0, k = 0; i < w->npend; i++) {
		if (w->pend[i]->s != s)
			w->pend[k++] = w->pend[i];
	}
	w->npend = k;

	for (i = 0; i < 2; i++) {
		for (k = 0; k < 2; k++) {
			int fd = s->side[i].fd[k];

			if (fd < 0)
				continue;

			if (s->registered)
				(void)epoll_ctl(w->epfd, EPOLL_CTL_DEL, fd,
						NULL);
			(void)close(fd);
			s->side[i].fd[k] = -1;
		}
	}

	s->registered = false;
}


static void publish_dst(struct media_side *sd)
{
	const struct sa *dst = sd->latched[0] ? &sd->latch[0] : &sd->sdp[0];

	/* read by the main thread only for statistics; a torn read of an
	   address is harmless there */
	sd->pub.dst = *dst;
	PUB(sd->pub.latched, sd->latched[0] ? 1u : 0u);
}


static void cmd_apply(struct media_worker *w, struct media_cmd *cmd)
{
	struct media_sess *s = cmd->s;
	struct media_side *sd;

	switch (cmd->type) {

	case MEDIA_CMD_ADD:
		sess_register(w, s);
		break;

	case MEDIA_CMD_DEST:
		sd = &s->side[cmd->side];
		/* a new address from that side: learn it again */
		if (!sa_cmp(&sd->sdp[0], &cmd->rtp, SA_ALL))
			sd->latched[0] = false;
		if (!sa_cmp(&sd->sdp[1], &cmd->rtcp, SA_ALL))
			sd->latched[1] = false;
		sd->sdp[0] = cmd->rtp;
		sd->sdp[1] = cmd->rtcp;
		sd->srate = cmd->srate;
		publish_dst(sd);
		break;

	case MEDIA_CMD_TONE:
		s->tone = cmd->tone;
		s->tone_n = cmd->tone_n;
		s->tone_pos = 0;
		s->tone_pcmu = cmd->pcmu;
		s->tone_pcma = cmd->pcma;
		break;

	case MEDIA_CMD_DEL:
		sess_close(w, s);
		(void)mqueue_push(w->mq, MEDIA_MQ_FREED, s);
		break;
	}
}


static void cmds_run(struct media_worker *w)
{
	uint64_t v;

	if (read(w->evfd, &v, sizeof(v)) < 0) {
		/* EAGAIN: nothing signalled, look anyway */
	}

	for (;;) {
		struct media_cmd *cmd;
		struct le *le;

		pthread_mutex_lock(&w->mtx);
		le = list_head(&w->cmdl);
		if (le)
			list_unlink(le);
		pthread_mutex_unlock(&w->mtx);

		if (!le)
			break;

		cmd = le->data;
		cmd_apply(w, cmd);
		mem_deref(cmd);
	}
}


/** Mix the warning tone into a G.711 payload, in place */
static void tone_mix(struct media_sess *s, uint8_t *pkt, size_t len)
{
	size_t off, plen, i;
	int pt = pkt[1] & 0x7f;
	bool ulaw;

	if (pt == s->tone_pcmu)
		ulaw = true;
	else if (pt == s->tone_pcma)
		ulaw = false;
	else
		return;

	if (media_rtp_payload(pkt, len, &off, &plen))
		return;

	for (i = 0; i < plen && s->tone_pos < s->tone_n; i++) {
		int32_t v;

		v = ulaw ? g711_ulaw2pcm(pkt[off + i])
			: g711_alaw2pcm(pkt[off + i]);
		v += s->tone[s->tone_pos++];
		if (v > 32767)
			v = 32767;
		else if (v < -32768)
			v = -32768;

		pkt[off + i] = ulaw ? g711_pcm2ulaw((int16_t)v)
			: g711_pcm2alaw((int16_t)v);
	}

	if (s->tone_pos >= s->tone_n)
		s->tone = NULL;
}


/**
 * Arrival time of packet i in a stream's clock: the kernel's receive
 * timestamp, or the wall clock now if there is none
 */
static uint32_t pkt_arrival(const struct msghdr *mh, uint32_t srate)
{
	const struct cmsghdr *c = CMSG_FIRSTHDR(mh);
	struct timespec ts;

	if (c && c->cmsg_level == SOL_SOCKET &&
	    c->cmsg_type == SCM_TIMESTAMPNS) {
		memcpy(&ts, CMSG_DATA(c), sizeof(ts));
	}
	else {
		/* the same clock as the kernel's stamps */
		(void)clock_gettime(CLOCK_REALTIME, &ts);
	}

	return ts_units(&ts, srate);
}


/** Whether dst names an address and port (sa_isset(dst, SA_ALL)) */
static inline bool dst_usable(const struct sa *dst)
{
	switch (dst->u.sa.sa_family) {

	case AF_INET:
		return dst->u.in.sin_port && dst->u.in.sin_addr.s_addr;

	case AF_INET6:
		return dst->u.in6.sin6_port &&
			!IN6_IS_ADDR_UNSPECIFIED(&dst->u.in6.sin6_addr);

	default:
		return false;
	}
}


/**
 * Relay one batch from a socket
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
	int n, i, sent;

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

	if (!in->latched[k]) {
		/* symmetric latching: the first packet tells where that
		   side really is */
		sa_init(&in->latch[k], AF_UNSPEC);
		memcpy(&in->latch[k].u, &w->src[0],
		       w->rmsg[0].msg_hdr.msg_namelen);
		in->latch[k].len = w->rmsg[0].msg_hdr.msg_namelen;
		in->latched[k] = true;
		if (!k)
			publish_dst(in);
	}

	for (i = 0; i < n; i++) {
		const uint32_t len = w->rmsg[i].msg_len;
		uint8_t *p = w->buf[i];

		bytes += len;
		w->siov[i].iov_len = len;

		if (k || len < 12 || (p[0] >> 6) != 2)
			continue;

		if (in->srate) {
			media_rx_update(&in->rx,
					((uint32_t)p[8] << 24) |
					((uint32_t)p[9] << 16) |
					((uint32_t)p[10] << 8) | p[11],
					(uint16_t)((p[2] << 8) | p[3]),
					((uint32_t)p[4] << 24) |
					((uint32_t)p[5] << 16) |
					((uint32_t)p[6] << 8) | p[7],
					pkt_arrival(&w->rmsg[i].msg_hdr,
						    in->srate));
		}

		if (s->tone && sk->side == MEDIA_GATEWAY)
			tone_mix(s, p, len);
	}

	if (k) {
		struct media_rr rr;

		PUB(in->pub.rtcp_packets, in->pub.rtcp_packets + n);
		if (!media_rtcp_rr(&rr, w->buf[n - 1],
				   w->rmsg[n - 1].msg_len)) {
			PUB(in->pub.rr_fraction, rr.fraction);
			PUB(in->pub.rr_lost, rr.lost);
			PUB(in->pub.rr_jitter_us, (uint32_t)
			    ((uint64_t)rr.jitter * 1000000 /
			     (in->srate ? in->srate : 8000)));
			PUB(in->pub.rr_valid, 1u);
		}
	}
	else {
		PUB(in->pub.packets, in->pub.packets + n);
		PUB(in->pub.bytes, in->pub.bytes + bytes);
		PUB(in->pub.lost, media_rx_lost(&in->rx));
		PUB(in->pub.jitter_us, media_rx_jitter_us(&in->rx,
							  in->srate));
		PUB(in->pub.last_ms, now_ms);
	}

	dst = out->latched[k] ? &out->latch[k] : &out->sdp[k];
	if (out->fd[k] < 0 || !dst_usable(dst)) {
		PUB(in->pub.dropped, in->pub.dropped + n);
		return n;
	}

	for (i = 0; i < n; i++) {
		w->smsg[i].msg_hdr.msg_name = (void *)&dst->u;
		w->smsg[i].msg_hdr.msg_namelen = dst->len;
	}

	sent = sendmmsg(out->fd[k], w->smsg, n, 0);
	if (sent < n)
		PUB(in->pub.dropped, in->pub.dropped +
		    (uint64_t)(n - (sent < 0 ? 0 : sent)));

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


static void *worker_main(void *arg)
{
	struct media_worker *w = arg;
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
			cmds_run(w);

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

	return NULL;
}


static void worker_destructor(void *arg)
{
	struct media_worker *w = arg;
	uint64_t one = 1;

	if (w->started) {
		__atomic_store_n(&w->stop, 1, __ATOMIC_RELEASE);
		if (write(w->evfd, &one, sizeof(one)) < 0) {
			/* EAGAIN: the counter is non-zero, it wakes up */
		}
		(void)pthread_join(w->tid, NULL);
	}

	list_flush(&w->cmdl);
	if (w->epfd >= 0)
		(void)close(w->epfd);
	if (w->evfd >= 0)
		(void)close(w->evfd);
	pthread_mutex_destroy(&w->mtx);
}


/**
 * Start a worker thread
 *
 * @param wp     The new worker
 * @param mq     Where it reports closed sessions (main thread's mqueue)
 * @param index  Its number, for the thread name
 */
int media_worker_alloc(struct media_worker **wp, struct mqueue *mq,
		       unsigned index)
{
	struct media_worker *w;
	struct epoll_event ev;
	char name[16];
	int i, err;

	if (!wp || !mq)
		return EINVAL;

	w = mem_zalloc(sizeof(*w), worker_destructor);
	if (!w)
		return ENOMEM;

	w->epfd = -1;
	w->evfd = -1;
	w->mq = mq;
	w->index = index;
	pthread_mutex_init(&w->mtx, NULL);
	list_init(&w->cmdl);

	for (i = 0; i < BATCH; i++) {
		w->riov[i].iov_base = w->buf[i];
		w->riov[i].iov_len = PKT_MAX;
		w->rmsg[i].msg_hdr.msg_iov = &w->riov[i];
		w->rmsg[i].msg_hdr.msg_iovlen = 1;
		w->rmsg[i].msg_hdr.msg_name = &w->src[i];
		w->rmsg[i].msg_hdr.msg_namelen = sizeof(w->src[i]);
		w->rmsg[i].msg_hdr.msg_control = w->ctl[i];
		w->rmsg[i].msg_hdr.msg_controllen = sizeof(w->ctl[i]);
		w->siov[i].iov_base = w->buf[i];
		w->smsg[i].msg_hdr.msg_iov = &w->siov[i];
		w->smsg[i].msg_hdr.msg_iovlen = 1;
	}

	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	w->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->epfd < 0 || w->evfd < 0) {
		err = errno;
		goto out;
	}

	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = NULL;
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->evfd, &ev)) {
		err = errno;
		goto out;
	}

	err = pthread_create(&w->tid, NULL, worker_main, w);
	if (err)
		goto out;

	w->started = true;
	(void)re_snprintf(name, sizeof(name), "tg-rtp%u", index);
	(void)pthread_setname_np(w->tid, name);

 out:
	if (err)
		mem_deref(w);
	else
		*wp = w;

	return err;
}


/** Hand a command to the worker (it owns cmd from now on) */
int media_worker_send(struct media_worker *w, struct media_cmd *cmd)
{
	uint64_t one = 1;

	if (!w || !cmd)
		return EINVAL;

	pthread_mutex_lock(&w->mtx);
	list_append(&w->cmdl, &cmd->le, cmd);
	pthread_mutex_unlock(&w->mtx);

	if (write(w->evfd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is already non-zero */
	}

	return 0;
}
