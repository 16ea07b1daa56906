/**
 * @file relay.h  tollgate media relay: anchored RTP/RTCP for every call
 *
 * The relay takes part in calls only through the B2BUA's public hooks: it
 * rewrites every SDP body crossing tollgate so that media flows through
 * port pairs of its own, forwards RTP and RTCP between the legs on worker
 * threads (symmetric latching toward each side, and only from the
 * sources a side may send from: see b2bua_call_rtp_source()), keeps
 * per-direction
 * statistics, ends calls whose media stopped, and mixes a warning tone
 * toward the caller on billing's low-balance event.
 */

#ifndef TOLLGATE_RELAY_H
#define TOLLGATE_RELAY_H

struct cfg_module;
struct b2bua;
struct b2bua_call;
struct media_relay;

/** How the media relay waits for packets (rtp_io) */
enum cfg_rtp_io { CFG_RTP_IO_AUTO = 0, CFG_RTP_IO_URING, CFG_RTP_IO_EPOLL };

/** The media relay's keys (rtp/conf.c) */
struct relay_conf {
	struct sa rtp_addr;
	uint16_t rtp_port_min, rtp_port_max;
	bool rtp_relay;             /**< anchor media (else SDP verbatim) */
	struct sa rtp_addr_gw;      /**< gateway side; unset = rtp_addr   */
	uint32_t rtp_threads;       /**< relay worker threads            */
	enum cfg_rtp_io rtp_io;     /**< io_uring or epoll               */
	uint32_t media_timeout;     /**< s without RTP -> BYE, 0 = off   */
	uint32_t media_timeout_hold; /**< s, the same while on hold      */
	uint32_t rtp_relearn_after; /**< s of silence before a side's
					 source is learnt again, 0 = only
					 on a new SDP address            */
};

extern const struct cfg_module relay_conf_module;

/** One direction of one stream */
struct relay_dir_stats {
	uint64_t packets;       /**< RTP packets relayed                   */
	uint64_t bytes;         /**< RTP bytes (UDP payload) relayed        */
	int64_t  lost;          /**< lost, from RTP sequence numbers        */
	uint32_t jitter_us;     /**< RFC 3550 interarrival jitter, us       */
	uint64_t rtcp_packets;  /**< RTCP packets relayed in this direction */
	uint64_t dropped;       /**< no destination yet, or send failed     */
	uint64_t foreign;       /**< RTP and RTCP from a source the sending
				     side may not use, dropped             */
	/* what the receiver's RTCP reports say about this direction */
	bool     rr_valid;
	uint8_t  rr_fraction;   /**< fraction lost, 1/256 units             */
	int32_t  rr_lost;       /**< cumulative number of packets lost      */
	uint32_t rr_jitter_us;
};

/** One m= line of a call */
struct relay_stream_stats {
	char media[16];                 /**< "audio", "video", ...          */
	struct sa caller;               /**< where the caller's media goes   */
	struct sa gateway;              /**< where the gateway's media goes  */
	bool caller_latched, gateway_latched;
	struct relay_dir_stats to_gateway;  /**< caller -> gateway          */
	struct relay_dir_stats to_caller;   /**< gateway -> caller          */
};

enum { RELAY_MAX_STREAMS = 8 };

/** The relay as a whole, for status pages and metrics */
struct relay_info {
	bool     enabled;        /**< rtp_relay yes                      */
	unsigned threads;
	uint32_t ports;          /**< RTP/RTCP port pairs in the pool    */
	uint32_t ports_free;
	uint64_t calls;          /**< calls relayed since start          */
	uint32_t calls_now;      /**< calls with relayed media now       */
	uint32_t sessions;       /**< streams open (incl. being closed)  */
	uint64_t refused_ports;  /**< offers refused: no port pair left  */
	uint64_t media_timeouts; /**< calls ended for lack of RTP        */
	uint64_t tones;          /**< warning tones started              */
	uint64_t foreign_dropped; /**< packets from foreign sources       */
};

/** The media of a call that ended: its final statistics */
struct relay_media {
	const char *call_id;      /**< the B2BUA's id of the call          */
	const struct relay_stream_stats *streamv;  /**< its streams        */
	unsigned streamc;
	uint64_t last_media_ms;   /**< wall clock of the last RTP packet
				       (or of the answer), 0 if none      */
	const char *json;         /**< the statistics as JSON, for the
				       CDR's media column; NULL if lost   */
};

/**
 * Media ended handler: called once for every call with relayed media
 * when the call ends, while the relay handles the call's B2BUA_EV_ENDED
 * or B2BUA_EV_FAILED (so before the B2BUA's later subscribers hear of it).
 */
typedef void (relay_media_h)(const struct b2bua_call *call,
			     const struct relay_media *m, void *arg);

int  relay_alloc(struct media_relay **mrp, const struct relay_conf *cfg,
		 struct b2bua *b);
int  relay_media_subscribe(struct media_relay *mr, relay_media_h *h,
			   void *arg);
int  relay_call_stats(const struct media_relay *mr,
		      const struct b2bua_call *call,
		      struct relay_stream_stats *v, unsigned *n);
const char *relay_io_modes(void);
void relay_info(const struct media_relay *mr, struct relay_info *info);
int  relay_debug(struct re_printf *pf, const struct media_relay *mr);

#endif
