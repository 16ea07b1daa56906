/**
 * @file b2bua.h  tollgate B2BUA: SIP legs, call state and routing
 *
 * Every call is split into a UAS leg toward the caller and a UAC leg toward
 * a gateway.  Other modules (billing, media relay, API) see calls only
 * through this header: they subscribe to call events, may hold a call
 * before its UAC leg is created (authorisation), may rewrite SDP bodies,
 * and end calls through b2bua_call_end().  They never touch SIP internals.
 */

#ifndef TOLLGATE_B2BUA_H
#define TOLLGATE_B2BUA_H

#include <re.h>

struct cfg_module;
struct b2bua;
struct b2bua_call;

/* ------------------------------------------------------- configuration */

/** How a trusted peer's calls are mapped to an account */
enum cfg_idmode {
	CFG_ID_FIXED = 0,   /**< every call of the peer bills one account  */
	CFG_ID_HEADER,      /**< account = user part of a named header      */
	CFG_ID_FROM,        /**< account = user part of the From header     */
};

/**
 * Where a side's media may come from (trusted_peer ... rtp=).  With every
 * mode the relay learns the exact source from the first packet it takes
 * and then takes no other, until a new SDP address or a silence.
 */
enum cfg_rtp_source {
	CFG_RTP_STRICT = 0, /**< the IP of the SDP or of the SIP, any port */
	CFG_RTP_LATCH,      /**< the first source, whatever it is          */
	CFG_RTP_ANY,        /**< anyone, all along (no protection)         */
};

/** sip_listen udp:127.0.0.1:5060 */
struct cfg_listen {
	struct le le;
	enum sip_transp tp;
	struct sa addr;
	unsigned line;
};

/** A token bucket: RATE requests a second, BURST at once; rate 0 = off */
struct cfg_limit {
	uint32_t rate;
	uint32_t burst;
};

/**
 * trusted_peer 127.0.0.0/8 account=demo | header=P-Asserted-Identity | from
 *              [rtp=strict|latch|any] [limit=off|RATE/BURST]
 *              [request_limit=RATE/BURST|off] [transport=udp|tcp] [port=5060]
 */
struct cfg_peer {
	struct le le;
	struct sa addr;         /**< network address (port ignored)      */
	unsigned bits;          /**< prefix length (32/128 = one host)    */
	enum sip_transp tp;     /**< SIP_TRANSP_NONE: any transport       */
	uint16_t port;          /**< source port; 0: any                  */
	enum cfg_idmode mode;
	char *account;          /**< owned; account name for CFG_ID_FIXED */
	char *hdr;              /**< owned; header name for CFG_ID_HEADER */
	enum cfg_rtp_source rtp; /**< its callers' media sources          */
	bool limit_off;         /**< limit=off: no limit at the door     */
	bool invite_set;        /**< limit=RATE/BURST given              */
	bool request_set;       /**< request_limit=RATE/BURST given      */
	struct cfg_limit invite;  /**< per source address, if invite_set */
	struct cfg_limit request; /**< likewise, if request_set          */
	unsigned line;
};

struct b2bua_carrier;

/** Which options a gateway line gave (the others are the global keys') */
enum cfg_gw_opt {
	CFG_GW_PROBE         = 1 << 0,
	CFG_GW_PROBE_TIMEOUT = 1 << 1,
	CFG_GW_FAIL          = 1 << 2,
	CFG_GW_RECOVER       = 1 << 3,
	CFG_GW_BURST         = 1 << 4,
	CFG_GW_MAX_CALLS     = 1 << 5,
	CFG_GW_CPS           = 1 << 6,
};

/** How a gateway is watched and limited (b2bua/gateway.c) */
struct cfg_gw_health {
	uint32_t probe;         /**< s between OPTIONS probes, 0 = none   */
	uint32_t probe_timeout; /**< ms a probe waits for its answer      */
	uint32_t fail;          /**< failed probes in a row: down         */
	uint32_t recover;       /**< good probes in a row: up again       */
	uint32_t burst;         /**< INVITEs in a row 503/408/timeout:
				     down (probed gateways), 0 = never   */
	uint32_t max_calls;     /**< calls at once, 0 = no limit          */
	uint32_t cps;           /**< new calls a second, 0 = no limit     */
};

/**
 * gateway gw1 127.0.0.1:5080 [transport=udp|tcp|tls] [carrier=NAME]
 *         [probe=S] [probe_timeout=MS] [fail=N] [recover=N] [burst=N]
 *         [max_calls=N] [cps=N]
 */
struct cfg_gateway {
	struct le le;
	char *name;             /**< owned                               */
	struct sa addr;
	enum sip_transp tp;
	char *carrier;          /**< owned; carrier's name, NULL if none  */
	const struct b2bua_carrier *car; /**< borrowed, in a routing table
					    with its carrier's deck        */
	unsigned line;
	unsigned given;         /**< enum cfg_gw_opt: set on its line    */
	struct cfg_gw_health h; /**< effective, after the whole file     */
};

/**
 * route 4420 gw1,gw2   (prefix "default" matches every number)
 * route 44 lcr         (the carriers whose deck covers the number)
 */
struct cfg_route {
	struct le le;
	char *prefix;           /**< owned; "" for default               */
	struct cfg_gateway **gwv; /**< owned array of borrowed gateways  */
	uint32_t gwc;
	bool lcr;               /**< least cost: gateways from the decks  */
	unsigned line;
	char *gwnames;          /**< owned; the names until resolved     */
};

/**
 * A price of a carrier (its cost deck) or of a customer (its rate), in
 * micro-units, rated as billing's struct rate: a call of d seconds
 * (d > 0) is billed initial + ceil((d - initial) / subsequent) *
 * subsequent seconds (at least initial) and costs connect_fee +
 * ceil(billed * per_minute / 60).
 */
struct b2bua_tariff {
	int64_t connect_fee;
	int64_t per_minute;
	uint32_t initial;       /**< s, >= 1                             */
	uint32_t subsequent;    /**< s, >= 1                             */
};

/** Which leg a number translation rule is for */
enum b2bua_xlat_dir {
	B2BUA_XLAT_IN = 0,      /**< the caller's number, before routing  */
	B2BUA_XLAT_OUT,         /**< the gateway's, in its own format     */
};

enum { B2BUA_XLAT_MATCH = 32, B2BUA_XLAT_PREFIX = 16 };

/**
 * number_in  [account=NAME] [peer=NET[/BITS]] [match=PATTERN]
 *            [len=MIN[-MAX]] [national=CC] [strip=N] [prefix=P]
 * number_out [gateway=NAME] [match=...] [len=...] [strip=N] [prefix=P]
 */
struct b2bua_xlat {
	struct le le;
	enum b2bua_xlat_dir dir;
	char *account;          /**< owned; in: this account only         */
	bool peer_set;          /**< in: callers from peer/peer_bits only */
	struct sa peer;
	unsigned peer_bits;
	char *gateway;          /**< owned; out: this gateway only        */
	char match[B2BUA_XLAT_MATCH + 2]; /**< ['+'] digits and X       */
	uint32_t min_len;       /**< digits of the number, 0: no bound    */
	uint32_t max_len;       /**< 0: no bound                          */
	char national[6];       /**< CC: 00... -> +..., 0... -> +CC...    */
	uint32_t strip;         /**< leading characters removed           */
	char prefix[B2BUA_XLAT_PREFIX + 2]; /**< ['+'] digits put before */
	unsigned line;
};

int  b2bua_xlat_parse(struct b2bua_xlat **xp, enum b2bua_xlat_dir dir,
		      const struct pl *text, char *why, size_t whysz);
int  b2bua_xlat_print(struct re_printf *pf, const struct b2bua_xlat *x);
int  b2bua_xlat_apply(const struct list *rulel, enum b2bua_xlat_dir dir,
		      const char *account, const struct sa *src,
		      const char *gateway, const char *in, char *out,
		      size_t sz, const struct b2bua_xlat **hitp);

/** sip_tls_cert FILE (and the other files of SIP over TLS) */
struct cfg_file {
	char *path;             /**< owned; NULL = not given             */
	unsigned line;
};

/** copy_header X-Account-Code */
struct cfg_hdr {
	struct le le;
	char *name;             /**< owned                               */
};

/** The B2BUA's keys (b2bua/conf.c) */
struct b2bua_conf {
	char *file;                 /**< owned; path it was read from    */
	struct list listenl;        /**< struct cfg_listen               */
	struct list peerl;          /**< struct cfg_peer                 */
	struct list gatewayl;       /**< struct cfg_gateway              */
	struct list routel;         /**< struct cfg_route                */
	struct list xlatl;          /**< struct b2bua_xlat, in file order */
	uint32_t lcr_min_margin;    /**< %, least margin a carrier leaves */
	uint32_t lcr_ref_duration;  /**< s, the call LCR prices           */
	uint32_t lcr_margin_horizon; /**< s, the margin guard looks ahead */
	struct list copyl;          /**< struct cfg_hdr                  */
	struct cfg_file tls_cert;   /**< our certificate chain (PEM)     */
	struct cfg_file tls_key;    /**< its private key (PEM)           */
	struct cfg_file tls_ca;     /**< CAs of TLS gateways' certificates */
	char *realm;                /**< owned; digest realm             */
	bool digest_auth;           /**< challenge untrusted sources     */
	uint32_t nonce_ttl;         /**< s, digest nonce lifetime        */
	uint32_t ring_timeout;      /**< s, no answer -> CANCEL + 408    */
	uint32_t max_duration;      /**< s, 0 = unlimited                */
	uint32_t ack_timeout;       /**< s, 2xx without ACK -> BYE        */
	uint32_t session_expires;   /**< s, session timer asked for, 0 = off */
	uint32_t min_se;            /**< s, shortest session timer taken */
	unsigned session_expires_line; /**< where session_expires was set */
	uint32_t max_calls;         /**< node-wide limit, 0 = none       */

	/* limits at the door (b2bua/limit.c) */
	struct cfg_limit src_invite;   /**< INVITEs of an untrusted source */
	struct cfg_limit src_request;  /**< its other requests             */
	struct cfg_limit peer_invite;  /**< INVITEs of a trusted peer's    */
	struct cfg_limit peer_request; /**< its other requests             */
	struct cfg_limit global_invite; /**< every INVITE of the node      */
	uint32_t limit_sources;     /**< source addresses tracked at most  */
	int limit_reply;            /**< 0: stateless 503, 1: nothing      */
	uint32_t auth_fail_limit;   /**< failures that block, 0 = never  */
	uint32_t auth_fail_window;  /**< s, in which they count          */
	uint32_t auth_block_time;   /**< s, first block (then doubling)  */
	uint32_t auth_block_max;    /**< s, longest block                */
	int auth_fail_answer;       /**< enum b2bua_fail_answer          */
	int digest_uri;             /**< enum b2bua_digest_uri           */
	bool unauth_trying;         /**< 100 Trying before identifying   */

	/* gateways' defaults for what their lines do not say */
	struct cfg_gw_health gw;
};

/** Which digest uri is taken */
enum b2bua_digest_uri {
	B2BUA_DURI_STRICT = 0,      /**< the Request-URI, nothing else   */
	B2BUA_DURI_HOST,            /**< or sip:HOST[:PORT] of the R-URI */
};

/** What a failed or blocked authentication hears */
enum b2bua_fail_answer {
	B2BUA_FAIL_403 = 0,         /**< 403 Forbidden, stateless        */
	B2BUA_FAIL_SILENCE,         /**< nothing                         */
};

extern const struct cfg_module b2bua_conf_module;

/** Most digits a dialled number may have */
enum { B2BUA_NUMBER_MAX = 64 };

int b2bua_number_normalise(char *buf, size_t sz, const struct pl *user);
int b2bua_number_dialled(char *buf, size_t sz, const struct pl *user);

const struct cfg_route *cfg_route_find(const struct b2bua_conf *cfg,
				       const char *number);
const struct cfg_peer *cfg_peer_find(const struct b2bua_conf *cfg,
				     const struct sa *src, enum sip_transp tp);
const struct cfg_gateway *cfg_gateway_find(const struct b2bua_conf *cfg,
					   const char *name);


/**
 * Call states (one row of the state x event table each).  The states from
 * B2BUA_ST_CANCELLING on are those of a call whose outcome is decided.
 */
enum b2bua_state {
	B2BUA_ST_IDENTIFY = 0, /**< caller being identified (digest/DB) */
	B2BUA_ST_AUTHORIZE,    /**< waiting for the authorisation hooks */
	B2BUA_ST_CALLING,      /**< INVITE sent to a gateway             */
	B2BUA_ST_RINGING,      /**< 18x received from the gateway        */
	B2BUA_ST_ANSWERED,     /**< 2xx relayed, waiting for ACK         */
	B2BUA_ST_CONFIRMED,    /**< media flowing                        */
	B2BUA_ST_CANCELLING,   /**< caller told, waiting for the gateway */
	B2BUA_ST_TERMINATING,  /**< BYE sent, waiting for the answers    */
	B2BUA_ST_CLOSED,       /**< over; object about to go             */
	B2BUA_ST_COUNT
};

/** Call events delivered to subscribers */
enum b2bua_event {
	B2BUA_EV_CREATED = 0,  /**< INVITE accepted for routing          */
	B2BUA_EV_RINGING,      /**< first 18x from the gateway tried     */
	B2BUA_EV_ANSWERED,     /**< 2xx from the gateway relayed         */
	B2BUA_EV_ENDED,        /**< an answered call is over             */
	B2BUA_EV_FAILED,       /**< the call ended without an answer     */
	B2BUA_EV_LOW_BALANCE,  /**< emitted by billing via b2bua_call_emit */
};

/** Why a call ended (also the CDR reason) */
enum b2bua_reason {
	B2BUA_R_NONE = 0,
	B2BUA_R_CALLER,        /**< caller sent BYE                      */
	B2BUA_R_CALLEE,        /**< gateway side sent BYE                */
	B2BUA_R_CREDIT,        /**< money ran out                        */
	B2BUA_R_MEDIA_TIMEOUT, /**< no RTP                               */
	B2BUA_R_ADMIN,         /**< operator ended it                    */
	B2BUA_R_SHUTDOWN,      /**< tollgate is stopping                 */
	B2BUA_R_NO_ANSWER,     /**< ring timeout                         */
	B2BUA_R_CANCELLED,     /**< caller CANCELled                     */
	B2BUA_R_MAX_DURATION,  /**< configured maximum duration          */
	B2BUA_R_REJECTED,      /**< gateway or tollgate refused the call */
	B2BUA_R_FAILED,        /**< transport / internal failure         */
	B2BUA_R_NO_MARGIN,     /**< every carrier would cost more than
				    the customer pays (margin guard)     */
	B2BUA_R_SESSION_TIMER, /**< a leg's session timer ran out (RFC
				    4028) or its refresh was refused     */
};

/** Direction of an SDP body passing through tollgate */
enum b2bua_dir {
	B2BUA_DIR_TO_GATEWAY = 0, /**< caller's body sent toward gateway */
	B2BUA_DIR_TO_CALLER,      /**< gateway's body sent to the caller */
};

/** Who ended a call */
enum b2bua_party {
	B2BUA_PARTY_TOLLGATE = 0, /**< tollgate (timer, operator, failure) */
	B2BUA_PARTY_CALLER,
	B2BUA_PARTY_CALLEE,       /**< the gateway's side                */
};

/**
 * A call as it ended, handed to subscribers with B2BUA_EV_ENDED and
 * B2BUA_EV_FAILED.  It is written once, when the call's outcome is decided,
 * and never changes; it lives as long as the call object (copy what you
 * keep).
 */
struct b2bua_call_record {
	const char *id;           /**< tollgate's call id                 */
	const char *sip_call_id;  /**< Call-ID of the caller's leg        */
	const char *account;      /**< NULL: the caller was not known     */
	int64_t account_id;       /**< 0: no account                      */
	const char *caller;       /**< From user, or "anonymous"          */
	const char *callee;       /**< number routed and rated (normalised,
				       E.164 digits without '+')          */
	const char *dialled;      /**< number as the caller dialled it    */
	const char *gateway;      /**< gateway tried last, NULL if none   */
	const char *carrier;      /**< its carrier, NULL if none          */
	const struct b2bua_tariff *carrier_tariff; /**< the carrier's price
				       of the number, NULL if none         */
	uint64_t setup_ms;        /**< wall clock: the INVITE came        */
	uint64_t answer_ms;       /**< wall clock; 0: never answered      */
	uint64_t end_ms;          /**< wall clock: the call ended         */
	enum b2bua_reason reason; /**< why it ended (the CDR reason)      */
	uint16_t scode;           /**< SIP code it ended with, 0 if none  */
	enum b2bua_party hangup;  /**< who ended it                       */
};

/**
 * Call event handler.  rec is the call's record with B2BUA_EV_ENDED and
 * B2BUA_EV_FAILED, NULL with the other events.
 */
typedef void (b2bua_event_h)(struct b2bua_call *call, enum b2bua_event ev,
			     const struct b2bua_call_record *rec, void *arg);

/**
 * Authorisation hook: called once per call after the caller is identified
 * and a route found, before any gateway sees the call.  The hook must
 * eventually call b2bua_call_authorized() exactly once (synchronously or
 * later); a non-zero return refuses the call with 500.
 */
typedef int (b2bua_authz_h)(struct b2bua_call *call, void *arg);

/**
 * Admission hook: asked for every INVITE outside a dialog, after the
 * limits of the door and before anything else (no transaction, no call
 * object, no state).  Returns false to shed the call: it gets a
 * stateless 503 with Retry-After *retry_s (seconds, preset to 1).
 */
typedef bool (b2bua_admit_h)(uint32_t *retry_s, void *arg);

/**
 * SDP hook: may replace *sdp (an mbuf positioned at the body) with a
 * rewritten body.  Returning an error refuses the offer (488 / 503).
 */
typedef int (b2bua_sdp_h)(struct b2bua_call *call, enum b2bua_dir dir,
			  struct mbuf **sdp, void *arg);

/** Caller identification by SIP digest: look up an account's HA1 */
struct b2bua_cred {
	int64_t account_id;
	const char *account;   /**< account name                        */
	const char *ha1;       /**< 32 hex chars, "" if no credentials   */
	uint32_t max_cps;      /**< calls a second, 0 = no limit         */
	const char *ha1_sha256; /**< 64 hex chars, "" or NULL if none    */
	bool active;
};
typedef void (b2bua_cred_done_h)(int err, const struct b2bua_cred *cred,
				 void *arg);
/**
 * Credential lookup: find the account by SIP username (digest) or by name
 * (trusted peers).  Calls done() later exactly once unless *handlep is
 * dereferenced first (the call went away); err ENOENT = unknown.
 */
typedef int (b2bua_cred_h)(void **handlep, bool by_sipuser, const char *name,
			   b2bua_cred_done_h *done, void *done_arg, void *arg);

int  b2bua_alloc(struct b2bua **bp, const struct b2bua_conf *cfg);
int  b2bua_subscribe(struct b2bua *b, b2bua_event_h *h, void *arg);
void b2bua_set_authz(struct b2bua *b, b2bua_authz_h *h, void *arg);
void b2bua_set_sdp(struct b2bua *b, b2bua_sdp_h *h, void *arg);
void b2bua_set_admit(struct b2bua *b, b2bua_admit_h *h, void *arg);
void b2bua_set_cred(struct b2bua *b, b2bua_cred_h *h, void *arg);
void b2bua_drain(struct b2bua *b, void (*doneh)(void *arg), void *arg);
bool b2bua_draining(const struct b2bua *b);
void b2bua_shutdown(struct b2bua *b, void (*doneh)(void *arg), void *arg);
uint32_t b2bua_call_count(const struct b2bua *b);
int  b2bua_debug(struct re_printf *pf, const struct b2bua *b);

/** The limits a request can hit (b2bua_limit_name() for their labels) */
enum b2bua_limit {
	B2BUA_LIMIT_SOURCE_INVITE = 0, /**< INVITEs of one source address */
	B2BUA_LIMIT_SOURCE_REQUEST,    /**< other requests of one source  */
	B2BUA_LIMIT_ACCOUNT,           /**< calls per second of an account */
	B2BUA_LIMIT_GLOBAL,            /**< INVITEs of the node            */
	B2BUA_LIMIT_COUNT
};
const char *b2bua_limit_name(enum b2bua_limit lim);

/** Counters of the B2BUA */
struct b2bua_stats {
	uint64_t illegal_events;  /**< events refused by the state table */
	uint64_t limit_rejected[B2BUA_LIMIT_COUNT]; /**< requests refused */
	uint32_t limit_sources;   /**< source addresses tracked now      */
	uint64_t auth_failures;   /**< failed digest authentications     */
	uint64_t auth_blocks;     /**< blocks begun                      */
	uint64_t auth_blocked;    /**< requests refused by a block       */
	uint64_t auth_replays;    /**< digest answers seen before        */
	uint64_t unauth_dropped;  /**< answers to unauthenticated sources
				       not sent: larger than the request */
	uint32_t blocks_active;   /**< sources and user names blocked now */
};
void b2bua_stats(const struct b2bua *b, struct b2bua_stats *st);

/*
 * Authentication-failure blocks: a source address or a digest user name
 * that fails auth_fail_limit times within auth_fail_window seconds is
 * refused for auth_block_time seconds (doubling with every block, up to
 * auth_block_max) without a database look-up.  Kept in memory on this
 * node.
 */
enum b2bua_block_kind {
	B2BUA_BLOCK_SOURCE = 0,   /**< key is an IP address              */
	B2BUA_BLOCK_USER,         /**< key is a digest user name          */
};

/** One source or user name with recent failures (valid in the handler) */
struct b2bua_block {
	uint64_t id;
	enum b2bua_block_kind kind;
	const char *key;
	uint32_t failures;        /**< in the current window             */
	uint32_t level;           /**< blocks so far (duration doubles)  */
	bool blocked;
	uint64_t since_ms;        /**< wall clock: the block began, or 0  */
	uint64_t until_ms;        /**< wall clock: the block ends, or 0   */
	uint64_t refused;         /**< requests refused by this block     */
};

/** Called for each entry; return true to stop */
typedef bool (b2bua_block_h)(const struct b2bua_block *blk, void *arg);

void b2bua_block_apply(const struct b2bua *b, bool blocked_only,
		       b2bua_block_h *h, void *arg);
int  b2bua_block_lift(struct b2bua *b, uint64_t id);
const char *b2bua_block_kind_name(enum b2bua_block_kind kind);

/* Calls */
typedef bool (b2bua_call_apply_h)(struct b2bua_call *call, void *arg);
struct b2bua_call *b2bua_call_apply(const struct b2bua *b,
				    b2bua_call_apply_h *h, void *arg);
struct b2bua_call *b2bua_call_apply_sorted(const struct b2bua *b,
					   const char *after,
					   const char *account,
					   int64_t account_id,
					   b2bua_call_apply_h *h, void *arg);
struct b2bua_call *b2bua_call_find(const struct b2bua *b, const char *id);

void b2bua_call_authorized(struct b2bua_call *call, uint16_t scode,
			   const char *reason, const char *hdrs);
void b2bua_call_set_price(struct b2bua_call *call,
			  const struct b2bua_tariff *price);
int  b2bua_call_end(struct b2bua_call *call, enum b2bua_reason reason,
		    const char *reason_hdr);
void b2bua_call_emit(struct b2bua_call *call, enum b2bua_event ev);

const char *b2bua_call_id(const struct b2bua_call *call);
const char *b2bua_call_sipid(const struct b2bua_call *call);
const char *b2bua_call_account(const struct b2bua_call *call);
int64_t     b2bua_call_account_id(const struct b2bua_call *call);
const char *b2bua_call_caller(const struct b2bua_call *call);
const char *b2bua_call_callee(const struct b2bua_call *call);
const char *b2bua_call_dialled(const struct b2bua_call *call);
const char *b2bua_call_gateway(const struct b2bua_call *call);
const char *b2bua_call_carrier(const struct b2bua_call *call);
enum b2bua_state  b2bua_call_state(const struct b2bua_call *call);
uint64_t    b2bua_call_setup_ms(const struct b2bua_call *call);
uint64_t    b2bua_call_answer_ms(const struct b2bua_call *call);
void        b2bua_call_set_end_ms(struct b2bua_call *call, uint64_t ms);
const struct sa *b2bua_call_caller_src(const struct b2bua_call *call);
const struct sa *b2bua_call_gateway_addr(const struct b2bua_call *call);
enum cfg_rtp_source b2bua_call_rtp_source(const struct b2bua_call *call);

/*
 * Per-call data of subscribers: each takes a slot at start and keeps its
 * own data of every call there.
 */
int         b2bua_udata_slot_alloc(struct b2bua *b, unsigned *slotp);
void       *b2bua_call_udata(const struct b2bua_call *call, unsigned slot);
void        b2bua_call_set_udata(struct b2bua_call *call, unsigned slot,
				 void *data);

const char *b2bua_state_name(enum b2bua_state st);
const char *b2bua_event_name(enum b2bua_event ev);
const char *b2bua_reason_name(enum b2bua_reason r);
const char *b2bua_party_name(enum b2bua_party p);

/*
 * Routing tables: gateways and prefix routes that replace the
 * configuration's while the daemon runs (e.g. loaded from the database).
 * A call keeps the table it was routed by.
 */
struct b2bua_routes;
struct cfg_route;

int  b2bua_routes_alloc(struct b2bua_routes **rtp);
int  b2bua_routes_add_gateway(struct b2bua_routes *rt, const char *name,
			      const struct sa *addr, enum sip_transp tp);
int  b2bua_routes_gateway_carrier(struct b2bua_routes *rt, const char *gw,
				  const char *carrier);
int  b2bua_routes_add_route(struct b2bua_routes *rt, const char *prefix,
			    const char *const *gwv, uint32_t gwc);
int  b2bua_routes_add_lcr(struct b2bua_routes *rt, const char *prefix);
int  b2bua_routes_add_carrier(struct b2bua_routes *rt, const char *name,
			      int32_t preference);
int  b2bua_routes_add_price(struct b2bua_routes *rt, const char *carrier,
			    const char *prefix, const struct b2bua_tariff *t,
			    int64_t from_ms, int64_t to_ms);
int  b2bua_routes_seal(struct b2bua_routes *rt);
int  b2bua_routes_add_xlat(struct b2bua_routes *rt, enum b2bua_xlat_dir dir,
			   const char *text, unsigned line, char *why,
			   size_t whysz);
const struct list *b2bua_routes_xlat(const struct b2bua_routes *rt);
uint32_t b2bua_routes_carriers(const struct b2bua_routes *rt);

/*
 * A carrier's cost deck: prices by prefix with validity windows,
 * longest valid prefix first (b2bua/deck.c).  Pure, for the routing
 * tables and their tests.
 */
struct b2bua_deck;
int  b2bua_deck_alloc(struct b2bua_deck **dp);
int  b2bua_deck_add(struct b2bua_deck *d, const char *prefix,
		    const struct b2bua_tariff *t, int64_t from_ms,
		    int64_t to_ms);
void b2bua_deck_seal(struct b2bua_deck *d);
uint32_t b2bua_deck_count(const struct b2bua_deck *d);
const struct b2bua_tariff *b2bua_deck_lookup(const struct b2bua_deck *d,
					     const char *number,
					     int64_t now_ms,
					     const char **prefixp);
int  b2bua_tariff_check(const struct b2bua_tariff *t);
int  b2bua_tariff_cost(int64_t *costp, const struct b2bua_tariff *t,
		       uint64_t seconds);
bool b2bua_margin_ok(const struct b2bua_tariff *customer,
		     const struct b2bua_tariff *carrier, uint32_t min_pct,
		     uint32_t horizon_s);
const struct cfg_route *b2bua_routes_find(const struct b2bua_routes *rt,
					  const char *number);
uint32_t b2bua_routes_count(const struct b2bua_routes *rt);
void b2bua_set_routes(struct b2bua *b, struct b2bua_routes *rt);

/*
 * The routing table in the database (gateways and routes tables).  The
 * configuration file owns what it names: b2bua_store_start() writes its
 * `gateway` and `route` lines there (created or updated to match; those
 * of an earlier configuration removed; those made through the REST API
 * kept), then routes new calls by the whole table, loaded again after
 * b2bua_store_reload() and whenever the tables change (NOTIFY
 * tollgate_routes).  Until the first load, calls are routed by the
 * configuration file.
 */
struct db;
struct b2bua_reload;

/** A load that includes the caller's change ended (err 0: in use) */
typedef void (b2bua_reload_h)(int err, void *arg);

int  b2bua_store_start(struct b2bua *b, struct db *db, const char *conninfo);
int  b2bua_reconfigure(struct b2bua *b, const struct b2bua_conf *cfg,
		       struct b2bua_reload **rlp, b2bua_reload_h *h,
		       void *arg);
int  b2bua_store_reload(struct b2bua_reload **rlp, struct b2bua *b,
			b2bua_reload_h *h, void *arg);
uint64_t b2bua_store_loads(const struct b2bua *b);

/*
 * Gateway health and limits (b2bua/gateway.c).  A gateway probed with
 * OPTIONS is up or down; one that is not probed is always usable.  Calls
 * skip a gateway that is down, has max_calls calls or no token left of
 * its cps; a call none of whose gateways is usable gets 503 with
 * Reason: Q.850;cause=34.
 */
enum b2bua_gw_state {
	B2BUA_GW_UNPROBED = 0,    /**< not probed: always in routing      */
	B2BUA_GW_UP,              /**< probed, in routing                 */
	B2BUA_GW_DOWN,            /**< probed, out of routing             */
};

/** Why an attempt on a gateway failed */
enum b2bua_gw_fail {
	B2BUA_GWF_3XX = 0,        /**< redirect (never followed)          */
	B2BUA_GWF_4XX,
	B2BUA_GWF_5XX,
	B2BUA_GWF_6XX,
	B2BUA_GWF_TIMEOUT,        /**< no final answer (Timer B)          */
	B2BUA_GWF_TRANSPORT,      /**< could not be sent                  */
	B2BUA_GWF_COUNT
};

/** Why a gateway was passed over for a call */
enum b2bua_gw_skip {
	B2BUA_GWS_DOWN = 0,
	B2BUA_GWS_MAX_CALLS,
	B2BUA_GWS_CPS,
	B2BUA_GWS_COUNT
};

/**
 * Counters of one gateway.  Each is a sum, so that the counters of a
 * group of gateways (a carrier, say) are b2bua_gw_counts_add() of its
 * members'.
 */
struct b2bua_gw_counts {
	uint64_t attempts;        /**< INVITEs sent to it (or tried)      */
	uint64_t answered;        /**< of them answered 2xx               */
	uint64_t failed[B2BUA_GWF_COUNT];
	uint64_t talked;          /**< answered calls that ended          */
	uint64_t talk_ms;         /**< their talk time                    */
	uint64_t skipped[B2BUA_GWS_COUNT];
	uint64_t probes_ok;       /**< probes answered (not 503)          */
	uint64_t probes_failed;   /**< 503, 408, no answer, not sent      */
	uint64_t went_down;       /**< times taken out of routing         */
	uint64_t went_up;         /**< times put back                     */
	uint32_t calls;           /**< calls on it now (gauge)            */
	uint32_t up;              /**< gateways in routing (gauge)        */
};

/** One gateway as the B2BUA sees it (valid in the handler only) */
struct b2bua_gw_info {
	const char *name;
	const char *carrier;      /**< its carrier, NULL if none          */
	const struct sa *addr;
	enum sip_transp tp;
	enum b2bua_gw_state state;
	uint64_t since_ms;        /**< wall clock: the state began        */
	const char *reason;       /**< why it is in that state, or ""    */
	struct cfg_gw_health h;   /**< its settings                       */
	uint64_t probe_ms;        /**< wall clock of the last probe's end, 0 */
	bool probe_ok;            /**< the last probe's result            */
	uint16_t probe_code;      /**< its answer, 0 if none              */
	uint32_t probe_rtt_ms;    /**< its round trip                     */
	struct b2bua_gw_counts c;
};

/** Called for each gateway of the routing table; true stops */
typedef bool (b2bua_gw_h)(const struct b2bua_gw_info *gw, void *arg);

void b2bua_gw_apply(const struct b2bua *b, b2bua_gw_h *h, void *arg);
int  b2bua_gw_find(const struct b2bua *b, const char *name,
		   b2bua_gw_h *h, void *arg);
void b2bua_gw_counts_add(struct b2bua_gw_counts *sum,
			 const struct b2bua_gw_counts *c);
const char *b2bua_gw_state_name(enum b2bua_gw_state st);
const char *b2bua_gw_fail_name(enum b2bua_gw_fail f);
const char *b2bua_gw_skip_name(enum b2bua_gw_skip s);

/** Wall-clock milliseconds since the epoch (for CDR timestamps) */
uint64_t b2bua_wallclock_ms(void);

#endif
