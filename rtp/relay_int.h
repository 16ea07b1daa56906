/**
 * @file relay_int.h  Media relay internals (private to rtp/ and its tests)
 */

#include <re.h>

/* ------------------------------------------------------------ SDP (sdp.c) */

enum { MEDIA_MAX_M = 8 };

enum media_dirattr {
	MEDIA_SENDRECV = 0,
	MEDIA_SENDONLY,
	MEDIA_RECVONLY,
	MEDIA_INACTIVE,
};

/** What the relay needs of one m= line */
struct media_sdp_m {
	char type[16];              /**< audio, video, ...               */
	uint16_t port;              /**< 0: stream rejected              */
	struct sa rtp;              /**< connection address and port     */
	struct sa rtcp;             /**< a=rtcp, or port + 1             */
	enum media_dirattr dir;
	bool hold;                  /**< sendonly/inactive/c=0.0.0.0      */
	int pt_pcmu, pt_pcma;       /**< payload type numbers, -1: none  */
	uint32_t srate;             /**< clock rate of the first format  */
};

struct media_sdp {
	unsigned mc;
	struct media_sdp_m m[MEDIA_MAX_M];
};

int  media_sdp_parse(struct media_sdp *sdp, const char *p, size_t len);
int  media_sdp_rewrite(struct mbuf *out, const char *p, size_t len,
		       const struct sa *addr, const uint16_t *portv,
		       unsigned portc);
bool media_sdp_hold(const struct media_sdp *sdp);


/* ------------------------------------------------------ port pool (pool.c) */

struct media_pool;

int  media_pool_alloc(struct media_pool **pp, uint16_t min, uint16_t max);
int  media_pool_get(struct media_pool *p, uint16_t *portp);
int  media_pool_put(struct media_pool *p, uint16_t port);
void media_pool_set_random(struct media_pool *p, bool on);
uint32_t media_pool_free(const struct media_pool *p);
uint32_t media_pool_size(const struct media_pool *p);


/* --------------------------------------- statistics as JSON (report.c) */

struct relay_stream_stats;

int  media_report_json(char **jsonp, const struct relay_stream_stats *v,
		       unsigned n);


/* ------------------------------------------ RFC 3550 statistics (stats.c) */

/** Reception state of one RTP source (RFC 3550 appendix A.1 and A.8) */
struct media_rx {
	uint32_t ssrc;
	uint16_t max_seq;
	uint32_t cycles;
	uint32_t base_seq;
	uint32_t bad_seq;
	uint32_t probation;
	uint64_t received;          /**< of the current source           */
	int64_t  lost_prev;         /**< lost by earlier sources          */
	uint32_t transit;
	uint32_t jitter;            /**< timestamp units << 4             */
	bool     init;
	bool     have_transit;
};

void    media_rx_update(struct media_rx *rx, uint32_t ssrc, uint16_t seq,
			uint32_t ts, uint32_t arrival);
int64_t media_rx_lost(const struct media_rx *rx);
uint32_t media_rx_jitter_us(const struct media_rx *rx, uint32_t srate);

/** First report block of an RTCP SR/RR compound packet */
struct media_rr {
	uint8_t fraction;
	int32_t lost;
	uint32_t jitter;            /**< timestamp units                 */
};

int media_rtcp_rr(struct media_rr *rr, const uint8_t *p, size_t len);
int media_rtp_payload(const uint8_t *p, size_t len, size_t *offp,
		      size_t *lenp);


/* ------------------------------------------------ worker threads (worker.c) */

enum { MEDIA_CALLER = 0, MEDIA_GATEWAY = 1 };

/** Counters of one side, written by its worker, read by the main thread */
struct media_pub {
	uint64_t packets, bytes, rtcp_packets, dropped;
	int64_t  lost;
	uint32_t jitter_us;
	uint64_t last_ms;           /**< monotonic ms of the last RTP      */
	uint32_t rr_valid, rr_fraction, rr_jitter_us;
	int32_t  rr_lost;
	uint32_t latched;
	uint64_t foreign;           /**< dropped: from a foreign source   */
	struct sa dst;              /**< where this side's media goes     */
};

/** Which sources a side's media is taken from (see src_accept()) */
enum media_src {
	MEDIA_SRC_STRICT = 0,       /**< IP of its SDP or of its SIP      */
	MEDIA_SRC_LATCH,            /**< the first one                    */
	MEDIA_SRC_ANY,              /**< anyone                           */
};

struct media_sess;

/** A socket registered with a worker's epoll */
struct media_sock {
	struct media_sess *s;       /**< borrowed: the session owns us    */
	uint8_t side;               /**< MEDIA_CALLER / MEDIA_GATEWAY     */
	uint8_t rtcp;
	bool armed;                 /**< io_uring: a receive is queued    */
};

/** One side of a session: the port pair a far end sends to */
struct media_side {
	int fd[2];                  /**< RTP, RTCP sockets                */
	uint16_t port;              /**< local RTP port                   */
	struct sa laddr;

	/* worker-only state */
	struct sa sdp[2];           /**< destination from SDP             */
	struct sa latch[2];         /**< learnt from the first packet     */
	bool latched[2];
	struct sa from[2];          /**< SDP address the side sends from  */
	struct sa sip;              /**< IP its SIP comes from (any port) */
	uint8_t src;                /**< enum media_src                   */
	uint32_t relearn_ms;        /**< silence before re-learning, 0: no */
	uint64_t seen_ms[2];        /**< last packet taken from latch[k]  */
	uint32_t srate;
	struct media_rx rx;

	struct media_pub pub;       /**< read with __atomic_load_n        */
};

/**
 * One relayed m= line: two port pairs.  Created on the main thread, owned
 * by a worker from MEDIA_CMD_ADD until MEDIA_CMD_DEL, then handed back.
 */
struct media_sess {
	struct le le;               /**< media_relay.sessl (main thread)  */
	struct media_worker *w;     /**< borrowed                         */
	struct media_side side[2];
	struct media_sock sock[4];
	char type[16];

	/* tone toward the caller, worker-only */
	const int16_t *tone;        /**< borrowed (relay's tone buffer)   */
	size_t tone_n, tone_pos;
	int tone_pcmu, tone_pcma;
	bool registered;
	/* io_uring only: the session is handed back once nothing of the
	   kernel's refers to it any more */
	bool closing;
	unsigned armed;             /**< receives queued                  */
	unsigned inflight;          /**< sends not completed              */
};

enum media_cmd_type {
	MEDIA_CMD_ADD = 0,
	MEDIA_CMD_DEST,
	MEDIA_CMD_TONE,
	MEDIA_CMD_DEL,
};

/** A request from the main thread to a worker */
struct media_cmd {
	struct le le;
	enum media_cmd_type type;
	struct media_sess *s;       /**< borrowed                         */
	unsigned side;
	struct sa rtp, rtcp;        /**< MEDIA_CMD_DEST                   */
	struct sa sip;              /**< MEDIA_CMD_DEST: the side's SIP IP */
	uint8_t src;                /**< MEDIA_CMD_DEST: enum media_src   */
	uint32_t relearn_ms;        /**< MEDIA_CMD_DEST                   */
	uint32_t srate;
	const int16_t *tone;        /**< MEDIA_CMD_TONE                   */
	size_t tone_n;
	int pcmu, pcma;
};

struct media_worker;

/** Messages from the workers to the main thread (mqueue ids) */
enum { MEDIA_MQ_FREED = 1 };

/** How a worker waits for packets (rtp_io) */
enum media_io {
	MEDIA_IO_AUTO = 0,          /**< io_uring where the kernel has it */
	MEDIA_IO_URING,
	MEDIA_IO_EPOLL,
};

int  media_worker_alloc(struct media_worker **wp, struct mqueue *mq,
			unsigned index, enum media_io io);
bool media_worker_uring(const struct media_worker *w, int *errp);
int  media_worker_send(struct media_worker *w, struct media_cmd *cmd);
uint64_t media_mono_ms(void);
