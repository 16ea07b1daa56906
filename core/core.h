/**
 * @file core.h  tollgate core: configuration, logging, process-wide helpers
 *
 * The core is what every other module may use: the parsed configuration
 * (read-only after start-up) and the logger.  It knows nothing of SIP
 * calls, money or media.
 */

#ifndef TOLLGATE_CORE_H
#define TOLLGATE_CORE_H

#include <re.h>

/* ---------------------------------------------------------------- config */

/** How a trusted peer's calls are mapped to an account */
enum cfg_idmode {
	CFG_ID_FIXED = 0,   /**< every call of the peer bills one account  */
	CFG_ID_HEADER,      /**< account = user part of a named header      */
	CFG_ID_FROM,        /**< account = user part of the From header     */
};

/** sip_listen udp:127.0.0.1:5060 */
struct cfg_listen {
	struct le le;
	enum sip_transp tp;
	struct sa addr;
	unsigned line;
};

/** trusted_peer 127.0.0.0/8 account=demo | header=P-Asserted-Identity | from */
struct cfg_peer {
	struct le le;
	struct sa addr;         /**< network address (port ignored)      */
	unsigned bits;          /**< prefix length (32/128 = one host)    */
	enum cfg_idmode mode;
	char *account;          /**< owned; account name for CFG_ID_FIXED */
	char *hdr;              /**< owned; header name for CFG_ID_HEADER */
	unsigned line;
};

/** gateway gw1 127.0.0.1:5080 [transport=udp|tcp] */
struct cfg_gateway {
	struct le le;
	char *name;             /**< owned                               */
	struct sa addr;
	enum sip_transp tp;
	unsigned line;
};

/** route 4420 gw1,gw2   (prefix "default" matches every number) */
struct cfg_route {
	struct le le;
	char *prefix;           /**< owned; "" for default               */
	struct cfg_gateway **gwv; /**< owned array of borrowed gateways  */
	uint32_t gwc;
	unsigned line;
};

/** copy_header X-Account-Code */
struct cfg_hdr {
	struct le le;
	char *name;             /**< owned                               */
};

/** api_token SECRET admin|readonly */
struct cfg_token {
	struct le le;
	char *token;            /**< owned                               */
	bool admin;
};

enum cfg_logtarget { CFG_LOG_STDERR = 0, CFG_LOG_SYSLOG };

/** How the media relay waits for packets (rtp_io) */
enum cfg_rtp_io { CFG_RTP_IO_AUTO = 0, CFG_RTP_IO_URING, CFG_RTP_IO_EPOLL };

struct tg_config {
	char *file;                 /**< owned; path it was read from    */

	/* SIP */
	struct list listenl;        /**< struct cfg_listen               */
	struct list peerl;          /**< struct cfg_peer                 */
	struct list gatewayl;       /**< struct cfg_gateway              */
	struct list routel;         /**< struct cfg_route                */
	struct list copyl;          /**< struct cfg_hdr                  */
	char *realm;                /**< owned; digest realm             */
	bool digest_auth;           /**< challenge untrusted sources     */
	uint32_t nonce_ttl;         /**< s, digest nonce lifetime        */
	uint32_t ring_timeout;      /**< s, no answer -> CANCEL + 408    */
	uint32_t max_duration;      /**< s, 0 = unlimited                */
	uint32_t ack_timeout;       /**< s, 2xx without ACK -> BYE        */
	uint32_t shutdown_grace;    /**< s, wait for BYE answers on exit */
	uint32_t max_calls;         /**< node-wide limit, 0 = none       */

	/* database */
	char *db_conninfo;          /**< owned                           */
	uint32_t db_connections;    /**< connections of the query pool   */

	/* media */
	struct sa rtp_addr;
	uint16_t rtp_port_min, rtp_port_max;
	bool rtp_relay;             /**< anchor media (else SDP verbatim) */
	struct sa rtp_addr_gw;      /**< gateway side; unset = rtp_addr   */
	uint32_t rtp_threads;       /**< relay worker threads            */
	enum cfg_rtp_io rtp_io;     /**< io_uring or epoll               */
	uint32_t media_timeout;     /**< s without RTP -> BYE, 0 = off   */
	uint32_t media_timeout_hold; /**< s, the same while on hold      */

	/* REST API */
	struct sa api_listen;
	struct list tokenl;         /**< struct cfg_token                */
	bool api_open_metrics;      /**< GET /metrics without a token    */
	bool api_open_health;       /**< GET /v1/health without a token  */
	uint32_t api_max_body;      /**< bytes, larger bodies get 413    */

	/* logging and state */
	enum cfg_logtarget log_target;
	int log_level;              /**< LOG_DEBUG .. LOG_ERR (syslog.h) */
	char *state_dir;            /**< owned                           */

	/* prepaid billing */
	bool billing;               /**< rate, reserve and cut off calls */
	uint32_t reserve_interval;  /**< s of talk reserved per step     */
	uint32_t low_balance_warning; /**< s before cut-off, 0 = none   */
	uint32_t heartbeat;         /**< s, liveness kept in the DB      */
	char *node_name;            /**< owned; this node in live_calls  */
};

int  cfg_load(struct tg_config **cfgp, const char *file,
	      struct re_printf *errpf);
int  cfg_parse(struct tg_config **cfgp, const char *file,
	       const char *text, size_t len, struct re_printf *errpf);
const struct cfg_route *cfg_route_find(const struct tg_config *cfg,
				       const char *number);
const struct cfg_peer *cfg_peer_find(const struct tg_config *cfg,
				     const struct sa *src);
const struct cfg_gateway *cfg_gateway_find(const struct tg_config *cfg,
					   const char *name);
int  cfg_print(struct re_printf *pf, const struct tg_config *cfg);


/* ------------------------------------------------------------------- log */

#include <syslog.h>

void tlog_init(enum cfg_logtarget target, int level, const char *ident);
void tlog_set_level(int level);
bool tlog_enabled(int level);
void tlog(int level, const char *callid, const char *fmt, ...);
void tlog_text(int level, const char *tag, const char *p, size_t len);

#define tlog_dbg(cid, ...)  do { if (tlog_enabled(LOG_DEBUG)) \
			tlog(LOG_DEBUG, cid, __VA_ARGS__); } while (0)
#define tlog_info(cid, ...) tlog(LOG_INFO, cid, __VA_ARGS__)
#define tlog_warn(cid, ...) tlog(LOG_WARNING, cid, __VA_ARGS__)
#define tlog_err(cid, ...)  tlog(LOG_ERR, cid, __VA_ARGS__)


/* ---------------------------------------------------------------- timers */

/** Statistics of the timer wheel that replaces libre's timer list */
struct tmr_wheel_stats {
	uint64_t started;
	uint64_t fired;
	uint64_t live;
};

void tmr_wheel_stats(struct tmr_wheel_stats *st);

#endif
