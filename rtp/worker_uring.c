/**
 * @file worker_uring.c  The relay's packet path with io_uring
 *
 * A multishot receive per socket fills buffers of a ring the kernel picks
 * from, and the kernel's receive work is deferred until the worker asks
 * for it (IORING_SETUP_DEFER_TASKRUN).  The worker waits until the
 * packets its recent rate brings in about 3/4 of WAIT_US have arrived,
 * for at most WAIT_US, then reads all of them, queues their sends and
 * hands the sends over with the next wait: one system call for a whole
 * batch, across sockets.  A closing session is handed back once no
 * receive is queued on its sockets and no send reads its buffers.
 *
 * Built only with liburing (HAVE_LIBURING).
 */

#define _GNU_SOURCE 1
#include <string.h>
#include <errno.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include "worker_int.h"

#ifdef HAVE_LIBURING

enum {
	UBUF_N  = 1024,      /**< receive buffers (power of two)       */
	USQ_N   = 1024,      /**< submission queue entries             */
	UCQ_N   = 8192,      /**< completion queue entries             */
	WANT_MAX = 32,       /**< packets a wait may ask for           */
	WAIT_US = 1000,      /**< longest wait for a batch             */
	UBGID   = 1,         /**< the buffer ring's group id           */
};


/** user_data of an io_uring request: what completed (low two bits) */
enum {
	UD_RECV   = 0,       /**< a socket's receive: struct media_sock * */
	UD_SEND   = 1,       /**< a send: buffer id << 2                */
	UD_CMD    = 2,       /**< the command eventfd's poll            */
	UD_CANCEL = 3,       /**< a cancellation                        */
	UD_MASK   = 3,
};


/** A packet buffer's send: what the kernel reads until it completes */
struct uslot {
	struct msghdr mh;
	struct iovec iov;
	struct sockaddr_storage dst;
	struct media_sess *s;        /**< held by s->inflight           */
	struct media_side *in;       /**< whose packet it is            */
};


/** A submission queue entry, handing the queued ones over if full */
static struct io_uring_sqe *usqe(struct media_worker *w)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);

	if (!sqe) {
		(void)io_uring_submit(&w->ring);
		sqe = io_uring_get_sqe(&w->ring);
	}

	return sqe;
}


/** Give a packet buffer back to the kernel (published after the batch) */
static inline void ubuf_put(struct media_worker *w, unsigned bid)
{
	io_uring_buf_ring_add(w->br, w->ubuf + (size_t)bid * PKT_MAX, PKT_MAX,
			      (unsigned short)bid,
			      io_uring_buf_ring_mask(UBUF_N), (int)w->uback++);
}


/** Queue a multishot receive on a socket: every packet completes */
static void urecv_arm(struct media_worker *w, struct media_sock *sk)
{
	struct media_sess *s = sk->s;
	struct io_uring_sqe *sqe = usqe(w);

	if (!sqe)
		return;

	io_uring_prep_recvmsg_multishot(sqe, s->side[sk->side].fd[sk->rtcp],
					&w->utmpl, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = UBGID;
	io_uring_sqe_set_data(sqe, sk);      /* UD_RECV */

	sk->armed = true;
	++s->armed;
}


static void ucmd_arm(struct media_worker *w)
{
	struct io_uring_sqe *sqe = usqe(w);

	if (!sqe)
		return;

	io_uring_prep_poll_multishot(sqe, w->evfd, POLLIN);
	io_uring_sqe_set_data64(sqe, UD_CMD);
	w->ucmd_armed = true;
}


/** Queue the receives of a new session's sockets */
void media_uring_add(struct media_worker *w, struct media_sess *s)
{
	unsigned i;

	for (i = 0; i < 4; i++) {
		struct media_sock *sk = &s->sock[i];

		if (!sk->rtcp)
			media_sock_stamp(s->side[sk->side].fd[0]);
		urecv_arm(w, sk);
	}
}


/**
 * Close a session's sockets and hand it back, once no receive is queued
 * and no send reads its buffers any more
 */
static void usess_free(struct media_worker *w, struct media_sess *s)
{
	if (!s->closing || s->armed || s->inflight)
		return;

	s->closing = false;
	media_sess_close(w, s);
	(void)mqueue_push(w->mq, MEDIA_MQ_FREED, s);
}


/** Cancel a session's receives; it is handed back when all are done */
void media_uring_del(struct media_worker *w, struct media_sess *s)
{
	unsigned i;

	s->closing = true;

	for (i = 0; i < 4; i++) {
		struct io_uring_sqe *sqe;

		if (!s->sock[i].armed)
			continue;

		sqe = usqe(w);
		if (!sqe)
			continue;

		io_uring_prep_cancel(sqe, &s->sock[i], 0);
		io_uring_sqe_set_data64(sqe, UD_CANCEL);
	}

	usess_free(w, s);
}


/**
 * A receive completed: account the packet and queue its send
 *
 * @return 1 for a packet, 0 for none
 */
static unsigned urecv_done(struct media_worker *w,
			   const struct io_uring_cqe *cqe, uint64_t now_ms)
{
	struct media_sock *sk = io_uring_cqe_get_data(cqe);
	struct media_sess *s = sk->s;
	struct media_side *in = &s->side[sk->side];
	struct media_side *out = &s->side[!sk->side];
	const unsigned k = sk->rtcp;
	struct io_uring_recvmsg_out *o = NULL;
	unsigned bid, n = 0;

	if (!(cqe->flags & IORING_CQE_F_BUFFER))
		goto ended;

	bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
	if (cqe->res > 0 && !s->closing) {
		o = io_uring_recvmsg_validate(w->ubuf + (size_t)bid * PKT_MAX,
					      cqe->res, &w->utmpl);
	}

	if (!o) {
		ubuf_put(w, bid);
	}
	else if (o->flags & MSG_TRUNC) {
		PUB(in->pub.dropped, in->pub.dropped + 1);
		ubuf_put(w, bid);
		n = 1;
	}
	else {
		uint8_t *p = io_uring_recvmsg_payload(o, &w->utmpl);
		size_t len = io_uring_recvmsg_payload_length(o, cqe->res,
							     &w->utmpl);
		struct io_uring_sqe *sqe;
		const struct sa *dst;

		if (!src_accept(in, k, io_uring_recvmsg_name(o), o->namelen,
				now_ms)) {
			ubuf_put(w, bid);
			n = 1;
			goto ended;
		}

		if (k) {
			rtcp_in(in, 1, p, len);
		}
		else {
			rtp_in(s, sk, in, p, len,
			       io_uring_recvmsg_cmsg_firsthdr(o, &w->utmpl));
			rtp_pub(in, 1, len, now_ms);
		}

		dst = dst_of(out, k);
		sqe = dst ? usqe(w) : NULL;
		if (!sqe) {
			PUB(in->pub.dropped, in->pub.dropped + 1);
			ubuf_put(w, bid);
		}
		else {
			struct uslot *sl = &w->uslot[bid];

			memcpy(&sl->dst, &dst->u, dst->len);
			sl->mh.msg_namelen = dst->len;
			sl->iov.iov_base = p;
			sl->iov.iov_len = len;
			sl->s = s;
			sl->in = in;

			io_uring_prep_sendmsg(sqe, out->fd[k], &sl->mh, 0);
			io_uring_sqe_set_data64(sqe,
						((uint64_t)bid << 2) | UD_SEND);
			++s->inflight;
			++w->usends;
		}

		n = 1;
	}

 ended:
	if (!(cqe->flags & IORING_CQE_F_MORE)) {
		/* cancelled, out of buffers, or an error: queue it again
		   unless the session is closing */
		sk->armed = false;
		--s->armed;
		if (s->closing)
			usess_free(w, s);
		else
			urecv_arm(w, sk);
	}

	return n;
}


static void usend_done(struct media_worker *w,
		       const struct io_uring_cqe *cqe)
{
	const unsigned bid = (unsigned)(cqe->user_data >> 2);
	struct uslot *sl = &w->uslot[bid];
	struct media_sess *s = sl->s;

	if (cqe->res < 0)
		PUB(sl->in->pub.dropped, sl->in->pub.dropped + 1);

	--w->usends;
	ubuf_put(w, bid);

	--s->inflight;
	usess_free(w, s);
}


/** Relay until the worker is told to stop */
void media_uring_loop(struct media_worker *w)
{
	uint64_t rate = 0, prev_us = media_mono_us();
	unsigned want = 1;

	while (!__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE)) {
		struct __kernel_timespec ts = {0, WAIT_US * 1000};
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0, pkts = 0;
		bool cmds = false;
		uint64_t now_us;

		if (!w->ucmd_armed)
			ucmd_arm(w);

		/* Hand over the last batch's sends and wait for the
		   packets asked for (the sends' own completions are posted
		   at once), at most WAIT_US; with nothing going on, until
		   something arrives. */
		(void)io_uring_submit_and_wait_timeout(&w->ring, &cqe,
						       want + w->usends,
						       want > 1 || w->usends ?
						       &ts : NULL, NULL);

		now_us = media_mono_us();

		io_uring_for_each_cqe(&w->ring, head, cqe) {
			++seen;

			switch (cqe->user_data & UD_MASK) {

			case UD_RECV:
				pkts += urecv_done(w, cqe, now_us / 1000);
				break;

			case UD_SEND:
				usend_done(w, cqe);
				break;

			case UD_CMD:
				cmds = true;
				if (!(cqe->flags & IORING_CQE_F_MORE))
					w->ucmd_armed = false;
				break;

			default:
				break;
			}
		}

		io_uring_cq_advance(&w->ring, seen);
		if (w->uback) {
			io_uring_buf_ring_advance(w->br, (int)w->uback);
			w->uback = 0;
		}

		if (cmds) {
			/* the batch's sends go before a socket may close */
			(void)io_uring_submit(&w->ring);
			media_cmds_run(w);
		}

		/* Packets per second, averaged over a few rounds: a wait
		   asks for those that arrive in about 3/4 of WAIT_US.  It
		   follows the traffic, not the size of the last batch,
		   which a short wait would keep short. */
		rate = (3 * rate + (uint64_t)pkts * 1000000 /
			(now_us - prev_us + 1)) / 4;
		prev_us = now_us;

		want = (unsigned)(rate * WAIT_US * 3 / 4 / 1000000);
		if (want < 1)
			want = 1;
		else if (want > WANT_MAX)
			want = WANT_MAX;
	}
}


/** Tear the ring down, in the worker thread */
void media_uring_fini(struct media_worker *w)
{
	io_uring_queue_exit(&w->ring);

	if (w->br)
		(void)munmap(w->br, UBUF_N * sizeof(struct io_uring_buf));
	if (w->ubuf)
		(void)munmap(w->ubuf, (size_t)UBUF_N * PKT_MAX);
	if (w->uslot)
		(void)munmap(w->uslot, UBUF_N * sizeof(struct uslot));

	w->br = NULL;
	w->ubuf = NULL;
	w->uslot = NULL;
}


/** Set up the worker's ring, in the worker thread: it is the only issuer */
int media_uring_init(struct media_worker *w)
{
	struct io_uring_buf_reg reg;
	struct io_uring_params par;
	unsigned i;
	int err;

	memset(&par, 0, sizeof(par));
	par.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
		IORING_SETUP_CQSIZE;
	par.cq_entries = UCQ_N;

	err = io_uring_queue_init_params(USQ_N, &w->ring, &par);
	if (err)
		return -err;

	w->br = mmap(NULL, UBUF_N * sizeof(struct io_uring_buf),
		     PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		     -1, 0);
	w->ubuf = mmap(NULL, (size_t)UBUF_N * PKT_MAX, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	w->uslot = mmap(NULL, UBUF_N * sizeof(struct uslot),
			PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			-1, 0);
	if (w->br == MAP_FAILED || w->ubuf == MAP_FAILED ||
	    w->uslot == MAP_FAILED) {
		err = errno;
		if (w->br == MAP_FAILED)
			w->br = NULL;
		if (w->ubuf == MAP_FAILED)
			w->ubuf = NULL;
		if (w->uslot == MAP_FAILED)
			w->uslot = NULL;
		goto out;
	}

	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (unsigned long)w->br;
	reg.ring_entries = UBUF_N;
	reg.bgid = UBGID;
	err = -io_uring_register_buf_ring(&w->ring, &reg, 0);
	if (err)
		goto out;

	io_uring_buf_ring_init(w->br);
	for (i = 0; i < UBUF_N; i++) {
		struct uslot *sl = &w->uslot[i];

		ubuf_put(w, i);
		sl->mh.msg_name = &sl->dst;
		sl->mh.msg_iov = &sl->iov;
		sl->mh.msg_iovlen = 1;
	}
	io_uring_buf_ring_advance(w->br, (int)w->uback);
	w->uback = 0;

	/* room for an IPv6 source and the arrival time */
	memset(&w->utmpl, 0, sizeof(w->utmpl));
	w->utmpl.msg_namelen = sizeof(struct sockaddr_in6);
	w->utmpl.msg_controllen = CTL_LEN;

 out:
	if (err)
		media_uring_fini(w);

	return err;
}

#endif
