/**
 * @file worker.c  The relay's packet path: one thread per worker
 *
 * A worker owns the sockets of the sessions it was given.  For each
 * packet it accounts it (RFC 3550 statistics, RTCP reports, latching),
 * mixes the warning tone when one is playing, and sends it on from the
 * other side's socket.  Nothing is allocated or logged per packet.
 *
 * Two ways to wait for packets, chosen per worker at start (rtp_io):
 *
 * - io_uring (where the kernel and the build have it): a multishot
 *   receive per socket fills buffers of a ring the kernel picks from, and
 *   the kernel's receive work is deferred until the worker asks for it
 *   (IORING_SETUP_DEFER_TASKRUN).  The worker waits until the packets
 *   its recent rate brings in about 3/4 of WAIT_US have arrived, for at
 *   most WAIT_US, then reads all of them, queues their sends and hands
 *   the sends over with the next wait: one system call for a whole
 *   batch, across sockets.
 *
 * - epoll: read a batch with recvmmsg() and send it on with sendmmsg().
 *   Waking up costs more than relaying a packet, so a poll that found
 *   little work is followed by a short pause (POLL_GAP_US): the next poll
 *   then finds the packets of many streams at once.
 *
 * Arrival times for the jitter estimate come from the kernel
 * (SO_TIMESTAMPNS), so waiting does not show in the statistics.
 *
 * The main thread talks to a worker only through its command list (mutex
 * + eventfd); commands are applied between two batches, after the sends
 * of the batch have been handed to the kernel, so a socket is never
 * closed while the worker still refers to it.  Counters the main thread
 * reads are published with relaxed atomic stores.  A worker tells the
 * main thread that a session's sockets are closed through libre's mqueue.
 */

#define _GNU_SOURCE 1
#include <string.h>
#include <unistd.h>
#include <pthread.h>
#include <time.h>
#include <errno.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <poll.h>
#include <sys/socket.h>
#ifdef HAVE_LIBURING
#include <liburing.h>
#endif
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

	/* io_uring */
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

struct media_worker {
	pthread_t tid;
	bool started;
	int epfd;
	int evfd;
	unsigned index;
	enum media_io io;
	struct mqueue *mq;           /**< borrowed (main thread's)      */

	pthread_mutex_t mtx;
	pthread_cond_t cond;
	struct list cmdl;            /**< struct media_cmd, owned       */
	int stop;
	int init;                    /**< 0 starting, 1 up, -errno      */
	bool uring;                  /**< waits with io_uring           */
	int uring_err;               /**< why not, when it tried         */

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

#ifdef HAVE_LIBURING
	struct io_uring ring;
	struct io_uring_buf_ring *br;
	uint8_t *ubuf;               /**< UBUF_N x PKT_MAX              */
	struct uslot *uslot;         /**< one per buffer                */
	struct msghdr utmpl;         /**< shape of a multishot receive  */
	unsigned uback;              /**< buffers given back, to publish */
	unsigned usends;             /**< sends whose completion is due */
	bool ucmd_armed;
#endif
};


#define PUB(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)


/** Monotonic clock in microseconds */
static uint64_t mono_us(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);

	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}


uint64_t media_mono_ms(void)
{
	return mono_us() / 1000;
}


/** A timestamp in a stream's clock (srate Hz), modulo 2^32 */
static inline uint32_t ts_units(const struct timespec *ts, uint32_t srate)
{
	return (uint32_t)((uint64_t)ts->tv_sec * srate +
			  (uint64_t)ts->tv_nsec * srate / 1000000000u);
}


#ifdef HAVE_LIBURING
static void usess_add(struct media_worker *w, struct media_sess *s);
static void usess_del(struct media_worker *w, struct media_sess *s);
#endif


/** Kernel arrival times on a socket, for the jitter estimate */
static void sock_stamp(int fd)
{
	int one = 1;

	(void)setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
}


static void sess_register(struct media_worker *w, struct media_sess *s)
{
	unsigned i;

	for (i = 0; i < 4; i++) {
		struct media_sock *sk = &s->sock[i];
		struct epoll_event ev;
		int fd = s->side[sk->side].fd[sk->rtcp];

		if (!sk->rtcp)
			sock_stamp(fd);

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
#ifdef HAVE_LIBURING
		if (w->uring) {
			usess_add(w, s);
			break;
		}
#endif
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
#ifdef HAVE_LIBURING
		if (w->uring) {
			usess_del(w, s);
			break;
		}
#endif
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
 * Arrival time of a packet in a stream's clock: the kernel's receive
 * timestamp (c, its first control message), or the wall clock now if
 * there is none
 */
static uint32_t pkt_arrival(const struct cmsghdr *c, uint32_t srate)
{
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


/** Symmetric latching: the first packet tells where a side really is */
static inline void latch(struct media_side *in, unsigned k,
			 const void *src, size_t len)
{
	if (in->latched[k])
		return;

	if (len > sizeof(in->latch[k].u))
		len = sizeof(in->latch[k].u);

	sa_init(&in->latch[k], AF_UNSPEC);
	memcpy(&in->latch[k].u, src, len);
	in->latch[k].len = (socklen_t)len;
	in->latched[k] = true;
	if (!k)
		publish_dst(in);
}


/** Statistics of one RTP packet from a side, and the tone mixed in */
static inline void rtp_in(struct media_sess *s, const struct media_sock *sk,
			  struct media_side *in, uint8_t *p, size_t len,
			  const struct cmsghdr *ts)
{
	if (len < 12 || (p[0] >> 6) != 2)
		return;

	if (in->srate) {
		media_rx_update(&in->rx,
				((uint32_t)p[8] << 24) | ((uint32_t)p[9] << 16) |
				((uint32_t)p[10] << 8) | p[11],
				(uint16_t)((p[2] << 8) | p[3]),
				((uint32_t)p[4] << 24) | ((uint32_t)p[5] << 16) |
				((uint32_t)p[6] << 8) | p[7],
				pkt_arrival(ts, in->srate));
	}

	if (s->tone && sk->side == MEDIA_GATEWAY)
		tone_mix(s, p, len);
}


/** Publish n RTP packets of a side (bytes in all) */
static void rtp_pub(struct media_side *in, unsigned n, uint64_t bytes,
		    uint64_t now_ms)
{
	PUB(in->pub.packets, in->pub.packets + n);
	PUB(in->pub.bytes, in->pub.bytes + bytes);
	PUB(in->pub.lost, media_rx_lost(&in->rx));
	PUB(in->pub.jitter_us, media_rx_jitter_us(&in->rx, in->srate));
	PUB(in->pub.last_ms, now_ms);
}


/** Publish n RTCP packets of a side, the report of the last one */
static void rtcp_in(struct media_side *in, unsigned n,
		    const uint8_t *last, size_t len)
{
	struct media_rr rr;

	PUB(in->pub.rtcp_packets, in->pub.rtcp_packets + n);
	if (media_rtcp_rr(&rr, last, len))
		return;

	PUB(in->pub.rr_fraction, rr.fraction);
	PUB(in->pub.rr_lost, rr.lost);
	PUB(in->pub.rr_jitter_us, (uint32_t)
	    ((uint64_t)rr.jitter * 1000000 /
	     (in->srate ? in->srate : 8000)));
	PUB(in->pub.rr_valid, 1u);
}


/** Where the packets toward a side go now, NULL: nowhere yet */
static inline const struct sa *dst_of(const struct media_side *out,
				      unsigned k)
{
	const struct sa *dst = out->latched[k] ? &out->latch[k] : &out->sdp[k];

	return out->fd[k] >= 0 && dst_usable(dst) ? dst : NULL;
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

	latch(in, k, &w->src[0], w->rmsg[0].msg_hdr.msg_namelen);

	for (i = 0; i < n; i++) {
		const uint32_t len = w->rmsg[i].msg_len;

		bytes += len;
		w->siov[i].iov_len = len;

		if (!k)
			rtp_in(s, sk, in, w->buf[i], len,
			       CMSG_FIRSTHDR(&w->rmsg[i].msg_hdr));
	}

	if (k)
		rtcp_in(in, (unsigned)n, w->buf[n - 1], w->rmsg[n - 1].msg_len);
	else
		rtp_pub(in, (unsigned)n, bytes, now_ms);

	dst = dst_of(out, k);
	if (!dst) {
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


static void epoll_loop(struct media_worker *w)
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
}


#ifdef HAVE_LIBURING

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


static void usess_add(struct media_worker *w, struct media_sess *s)
{
	unsigned i;

	for (i = 0; i < 4; i++) {
		struct media_sock *sk = &s->sock[i];

		if (!sk->rtcp)
			sock_stamp(s->side[sk->side].fd[0]);
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
	sess_close(w, s);
	(void)mqueue_push(w->mq, MEDIA_MQ_FREED, s);
}


static void usess_del(struct media_worker *w, struct media_sess *s)
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

		latch(in, k, io_uring_recvmsg_name(o), o->namelen);

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


static void uring_loop(struct media_worker *w)
{
	uint64_t rate = 0, prev_us = mono_us();
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

		now_us = mono_us();

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
			cmds_run(w);
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


static void uring_fini(struct media_worker *w)
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
static int uring_init(struct media_worker *w)
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
		uring_fini(w);

	return err;
}

#endif


/** Tell media_worker_alloc() how the start went (0 or an errno) */
static void init_done(struct media_worker *w, int err)
{
	pthread_mutex_lock(&w->mtx);
	w->init = err ? -err : 1;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->mtx);
}


static void *worker_main(void *arg)
{
	struct media_worker *w = arg;
	int err = 0;

#ifdef HAVE_LIBURING
	if (w->io != MEDIA_IO_EPOLL) {
		err = uring_init(w);
		w->uring = !err;
		w->uring_err = err;
		if (err && w->io == MEDIA_IO_AUTO)
			err = 0;
	}
#else
	if (w->io == MEDIA_IO_URING)
		err = ENOSYS;
#endif

	init_done(w, err);
	if (err)
		return NULL;

#ifdef HAVE_LIBURING
	if (w->uring) {
		uring_loop(w);
		uring_fini(w);
		return NULL;
	}
#endif

	epoll_loop(w);

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
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->mtx);
}


/**
 * Start a worker thread
 *
 * @param wp     The new worker
 * @param mq     Where it reports closed sessions (main thread's mqueue)
 * @param index  Its number, for the thread name
 * @param io     How it waits for packets; MEDIA_IO_URING fails where
 *               io_uring is missing, MEDIA_IO_AUTO falls back to epoll
 */
int media_worker_alloc(struct media_worker **wp, struct mqueue *mq,
		       unsigned index, enum media_io io)
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
	w->io = io;
	pthread_mutex_init(&w->mtx, NULL);
	pthread_cond_init(&w->cond, NULL);
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

	/* the thread sets up its own ring: wait for the outcome */
	pthread_mutex_lock(&w->mtx);
	while (!w->init)
		pthread_cond_wait(&w->cond, &w->mtx);
	if (w->init < 0)
		err = -w->init;
	pthread_mutex_unlock(&w->mtx);

 out:
	if (err)
		mem_deref(w);
	else
		*wp = w;

	return err;
}


/**
 * Whether a worker waits for packets with io_uring
 *
 * @param w     The worker
 * @param errp  Set to why not when it tried and failed, else 0 (optional)
 */
bool media_worker_uring(const struct media_worker *w, int *errp)
{
	if (errp)
		*errp = w ? w->uring_err : 0;

	return w ? w->uring : false;
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
