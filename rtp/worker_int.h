/**
 * @file worker_int.h  The packet path's internals (private to rtp/worker*.c)
 *
 * worker.c starts and stops the threads and applies the main thread's
 * commands; worker_epoll.c and worker_uring.c are the two ways a worker
 * waits for packets (rtp_io).  What both do for each packet (statistics,
 * latching, where to send it) is here, static inline, so that each back
 * end keeps it inlined in its loop.
 */

#ifndef TOLLGATE_WORKER_INT_H
#define TOLLGATE_WORKER_INT_H

#include <string.h>
#include <pthread.h>
#include <time.h>
#include <sys/socket.h>
#include <netinet/in.h>
#ifdef HAVE_LIBURING
#include <liburing.h>
#endif
#include "relay_int.h"


enum {
	BATCH   = 32,        /**< packets per recvmmsg/sendmmsg       */
	PKT_MAX = 2048,      /**< bytes per packet buffer              */
	PEND_MAX = 256,      /**< sockets left with packets to read    */
	CTL_LEN = CMSG_SPACE(sizeof(struct timespec)),
};

struct uslot;

/** A worker thread: its command list, its sockets' wait, its buffers */
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


/** Publish a counter the main thread reads */
#define PUB(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)


/* worker.c: shared by both back ends */
uint64_t media_mono_us(void);
void media_sock_stamp(int fd);
void media_sess_close(struct media_worker *w, struct media_sess *s);
void media_cmds_run(struct media_worker *w);
void media_tone_mix(struct media_sess *s, uint8_t *pkt, size_t len);

/* worker_epoll.c */
void media_epoll_add(struct media_worker *w, struct media_sess *s);
void media_epoll_loop(struct media_worker *w);

#ifdef HAVE_LIBURING
/* worker_uring.c */
int  media_uring_init(struct media_worker *w);
void media_uring_fini(struct media_worker *w);
void media_uring_loop(struct media_worker *w);
void media_uring_add(struct media_worker *w, struct media_sess *s);
void media_uring_del(struct media_worker *w, struct media_sess *s);
#endif


/** A timestamp in a stream's clock (srate Hz), modulo 2^32 */
static inline uint32_t ts_units(const struct timespec *ts, uint32_t srate)
{
	return (uint32_t)((uint64_t)ts->tv_sec * srate +
			  (uint64_t)ts->tv_nsec * srate / 1000000000u);
}


/**
 * Arrival time of a packet in a stream's clock: the kernel's receive
 * timestamp (c, its first control message), or the wall clock now if
 * there is none
 */
static inline uint32_t pkt_arrival(const struct cmsghdr *c, uint32_t srate)
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


/** Where a side's media goes now, for the main thread */
static inline void publish_dst(struct media_side *sd)
{
	const struct sa *dst = sd->latched[0] ? &sd->latch[0] : &sd->sdp[0];

	/* read by the main thread only for statistics; a torn read of an
	   address is harmless there */
	sd->pub.dst = *dst;
	PUB(sd->pub.latched, sd->latched[0] ? 1u : 0u);
}


/**
 * Whether a source address as the kernel gave it (src) is sa's address,
 * and its port too if port
 */
static inline bool src_is(const struct sa *sa, const void *src, bool port)
{
	const struct sockaddr *s = src;

	if (s->sa_family != sa->u.sa.sa_family)
		return false;

	switch (s->sa_family) {

	case AF_INET: {
		const struct sockaddr_in *a = src;

		return a->sin_addr.s_addr == sa->u.in.sin_addr.s_addr &&
			(!port || a->sin_port == sa->u.in.sin_port);
	}

	case AF_INET6: {
		const struct sockaddr_in6 *a = src;

		return !memcmp(&a->sin6_addr, &sa->u.in6.sin6_addr,
			       sizeof(a->sin6_addr)) &&
			(!port || a->sin6_port == sa->u.in6.sin6_port);
	}

	default:
		return false;
	}
}


/** Symmetric latching: the packet taken tells where a side really is */
static inline void latch(struct media_side *in, unsigned k,
			 const void *src, size_t len)
{
	if (len > sizeof(in->latch[k].u))
		len = sizeof(in->latch[k].u);

	sa_init(&in->latch[k], AF_UNSPEC);
	memcpy(&in->latch[k].u, src, len);
	in->latch[k].len = (socklen_t)len;
	in->latched[k] = true;
	if (!k)
		publish_dst(in);
}


/**
 * Source control: whether a packet from src may go on.  A side's first
 * packet from a source it may send from (enum media_src: with
 * MEDIA_SRC_STRICT the IP of its SDP or of its SIP, any port) is latched;
 * from then on only that exact source is taken, until the side's SDP
 * names another address or the source was silent for relearn_ms.  Other
 * packets are counted and dropped.
 */
static inline bool src_accept(struct media_side *in, unsigned k,
			      const void *src, size_t len, uint64_t now_ms)
{
	if (len < sizeof(struct sockaddr_in))
		goto foreign;

	if (in->latched[k]) {
		if (src_is(&in->latch[k], src, true)) {
			in->seen_ms[k] = now_ms;
			return true;
		}

		if (in->src == MEDIA_SRC_ANY)
			return true;

		if (!in->relearn_ms ||
		    now_ms - in->seen_ms[k] < in->relearn_ms)
			goto foreign;
	}

	if (in->src == MEDIA_SRC_STRICT && !src_is(&in->from[k], src, false) &&
	    !src_is(&in->sip, src, false))
		goto foreign;

	latch(in, k, src, len);
	in->seen_ms[k] = now_ms;

	return true;

 foreign:
	PUB(in->pub.foreign, in->pub.foreign + 1);
	return false;
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
		media_tone_mix(s, p, len);
}


/** Publish n RTP packets of a side (bytes in all) */
static inline void rtp_pub(struct media_side *in, unsigned n, uint64_t bytes,
		    uint64_t now_ms)
{
	PUB(in->pub.packets, in->pub.packets + n);
	PUB(in->pub.bytes, in->pub.bytes + bytes);
	PUB(in->pub.lost, media_rx_lost(&in->rx));
	PUB(in->pub.jitter_us, media_rx_jitter_us(&in->rx, in->srate));
	PUB(in->pub.last_ms, now_ms);
}


/** Publish n RTCP packets of a side, the report of the last one */
static inline void rtcp_in(struct media_side *in, unsigned n,
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


#endif
