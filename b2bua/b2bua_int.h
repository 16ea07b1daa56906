/**
 * @file b2bua_int.h  B2BUA internals (private to b2bua/)
 */

#include <re.h>
#include "core.h"
#include "re_private.h"
#include "b2bua.h"

/** The methods the B2BUA answers (Allow) */
#define B2BUA_ALLOW "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE"

/** Retry-After (s) of the 503 a draining or stopping node answers */
#define B2BUA_DRAIN_RETRY "30"

/** Events that drive the call state table */
enum call_ev {
	CEV_IDENTIFIED = 0, /**< caller identified, route found         */
	CEV_AUTHORIZED,     /**< authorisation hooks said yes           */
	CEV_REFUSED,        /**< authorisation hooks said no            */
	CEV_PROVISIONAL,    /**< 18x from the gateway                   */
	CEV_ANSWER,         /**< 2xx from the gateway                   */
	CEV_ANSWER_LOST,    /**< 2xx the caller cannot be given         */
	CEV_FAILOVER,       /**< 408/5xx/transport: next gateway        */
	CEV_REJECT,         /**< final failure for the caller           */
	CEV_CANCEL,         /**< caller CANCEL                          */
	CEV_RING_TIMEOUT,   /**< no answer in time                      */
	CEV_ACK,            /**< an ACK for our 2xx                     */
	CEV_BYE_CALLER,     /**< BYE from the caller                    */
	CEV_BYE_GATEWAY,    /**< BYE from the gateway                   */
	CEV_END,            /**< b2bua_call_end(), timers, failures     */
	CEV_UAC_FINAL,      /**< gateway final answer while cancelling  */
	CEV_DONE,           /**< all BYE / CANCEL transactions finished */
	CEV_COUNT
};

/**
 * What comes with an event: for one that ends the call, the outcome and the
 * final answer for a caller still waiting for one; for CEV_ANSWER and
 * CEV_ANSWER_LOST, the code of the gateway's 2xx.
 */
struct call_evarg {
	enum b2bua_reason reason;
	uint16_t scode;              /**< final answer to the caller     */
	const char *phrase;
	const char *hdrs;            /**< extra header lines of it       */
	const struct pl *reason_hdr; /**< Reason of a BYE received       */
};

enum { B2BUA_UDATA_SLOTS = 4, B2BUA_MARGIN_CACHE = 256 };

/** A node of a red-black tree (rbtree.c), in the object it orders */
struct rbt_node {
	struct rbt_node *p, *l, *r;  /**< borrowed                       */
	uint64_t key;
	void *data;                  /**< borrowed: the object           */
	bool red;
	bool linked;                 /**< in a tree                      */
};

/** A red-black tree ordered by rbt_node.key */
struct rbt {
	struct rbt_node *root;       /**< borrowed                       */
	uint32_t n;
};

void rbt_insert(struct rbt *t, struct rbt_node *n);
void rbt_remove(struct rbt *t, struct rbt_node *n);
struct rbt_node *rbt_first(const struct rbt *t);
struct rbt_node *rbt_next(const struct rbt_node *n);
struct rbt_node *rbt_after(const struct rbt *t, uint64_t key);

/** The calls of one account, in the order of their id (callidx.c) */
struct acct_ix {
	struct le he_name;           /**< b2bua.ht_acct_name             */
	struct le he_id;             /**< b2bua.ht_acct_id, if id != 0    */
	char *name;                  /**< owned                          */
	int64_t id;
	struct rbt calls;            /**< b2bua_call.acct_node           */
};

/** One answer of the margin guard for a pair of prices */
struct margin_memo {
	struct b2bua_tariff customer;
	struct b2bua_tariff carrier;
	bool used;
	bool ok;
};

struct b2bua {
	const struct b2bua_conf *cfg;  /**< (ref.) in use for new calls  */
	struct sip *sip;               /**< owned                        */
	struct tls *tls;               /**< owned; NULL = no SIP over TLS */
	struct sip_lsnr *lsnr_req;     /**< owned                        */
	struct sip_lsnr *lsnr_resp;    /**< owned                        */
	struct hash *ht_legs;          /**< legs by Call-ID (borrowed)   */
	struct hash *ht_calls;         /**< calls by id (owned refs)     */
	struct rbt calls_sorted;       /**< the same, in the order of id */
	struct hash *ht_acct_name;     /**< struct acct_ix by name, owned */
	struct hash *ht_acct_id;       /**< the same by account id        */
	struct list subl;              /**< struct sub, owned            */
	b2bua_authz_h *authzh;
	void *authz_arg;
	b2bua_admit_h *admith;
	void *admit_arg;
	b2bua_sdp_h *sdph;
	void *sdp_arg;
	b2bua_cred_h *credh;
	void *cred_arg;
	struct b2bua_routes *routes;   /**< (ref.) NULL = config routes  */
	struct route_store *store;     /**< owned; NULL = not started    */
	uint8_t nonce_key[20];
	struct nonce_table *nonces;    /**< owned: digest answers seen   */
	struct guard *guard;           /**< owned: failure blocks        */
	const struct udp_sock *tuned[4]; /**< UDP sockets given big buffers */
	uint32_t ncalls;
	unsigned nslots;               /**< per-call data slots taken    */
	struct limiter *lim;           /**< owned: limits at the door    */
	struct gwtab *gwtab;           /**< owned: gateway health, limits */
	struct margin_memo margin[B2BUA_MARGIN_CACHE]; /**< by the prices */
	struct b2bua_stats st;
	bool draining;             /**< no new calls; running ones go on */
	bool shutting_down;        /**< every call is being ended        */
	bool rescue;               /**< counted in rescue_use()            */
	void (*shutdownh)(void *arg);  /**< the last call is gone        */
	void *shutdown_arg;
};

enum leg_side { LEG_CALLER = 0, LEG_GATEWAY };

/** One SIP dialog of a call: the caller's (UAS) or the gateway's (UAC) */
struct leg {
	struct le he;                /**< b2bua.ht_legs                  */
	struct b2bua_call *call;     /**< borrowed: the call owns us     */
	struct sip_dialog *dlg;      /**< owned                          */
	char *callid;                /**< owned; hash key                */
	enum leg_side side;
	enum sip_transp tp;

	/* our 2xx to an INVITE on this leg, until the peer ACKs it */
	struct mbuf *mb2xx;          /**< owned                          */
	struct sa dst2xx;
	struct tmr tmr2xx;           /**< retransmission (UDP)           */
	struct tmr tmr2xx_to;        /**< give up waiting for the ACK    */
	uint32_t cseq2xx;
	uint32_t txc;

	/* our ACK to a 2xx on this leg, for retransmitted 2xx */
	struct mbuf *mback;          /**< owned                          */
	struct sa dstack;
	enum sip_transp tpack;
	uint32_t cseqack;
	struct tmr tmrack;           /**< forget the ACK after 64*T1     */

	struct sip_request *byereq;  /**< owned, pending BYE             */
	bool bye_pending;

	/* the early dialog of a 1xx with a To tag (gateway leg): its tag */
	char *early_tag;             /**< owned; NULL: none              */

	/* the SDP last sent on this leg (what a refresh offers again) */
	struct mbuf *sdp_out;        /**< owned; NULL: none yet          */

	/* session timer of this leg (RFC 4028, b2bua/timer.c) */
	uint32_t se;                 /**< s, interval; 0: no timer       */
	bool se_ours;                /**< tollgate is the refresher      */
	bool se_peer_timer;          /**< the peer supports "timer"      */
	bool peer_update;            /**< the peer allows UPDATE         */
	uint64_t se_ok_ms;           /**< wall clock: last good refresh  */
	struct tmr tmr_refresh;      /**< ours: send the next refresh    */
	struct tmr tmr_expire;       /**< the session expires            */
	struct sip_request *sereq;   /**< owned: our refresh in flight   */
	struct sip_request *prackreq; /**< owned: our own PRACK           */
	bool sereq_invite;           /**< that refresh is a re-INVITE    */
};

/** An in-dialog request relayed from one leg to the other */
struct relay {
	struct le le;                /**< b2bua_call.relayl              */
	struct b2bua_call *call;     /**< borrowed                       */
	struct leg *from;            /**< borrowed                       */
	struct leg *to;              /**< borrowed                       */
	struct sip_strans *st;       /**< owned until replied            */
	const struct sip_msg *msg;   /**< (ref.) the request             */
	struct sip_request *req;     /**< owned, toward 'to'             */
	bool invite;
	bool update;                 /**< an UPDATE (with an offer)      */
};

struct b2bua_call {
	struct le he;                /**< b2bua.ht_calls                 */
	struct rbt_node sorted;      /**< b2bua.calls_sorted             */
	struct rbt_node acct_node;   /**< its account's acct_ix.calls    */
	struct acct_ix *aix;         /**< borrowed; NULL: not indexed    */
	struct b2bua *b;             /**< borrowed                       */
	const struct b2bua_conf *cfg; /**< (ref.) in use when it came: what
					  the call borrows from it stays */
	char id[24];
	enum b2bua_state state;
	struct leg *a;               /**< owned: caller leg (UAS)        */
	struct leg *g;               /**< owned: gateway leg (UAC)       */

	/* initial INVITE from the caller */
	const struct sip_msg *inv;   /**< (ref.) until answered/ACKed     */
	struct sa src;               /**< where the INVITE came from     */
	struct sip_strans *st;       /**< owned until the final reply    */
	void *credq;                 /**< owned: pending identification  */

	/* initial INVITE toward the gateway */
	struct sip_request *req;     /**< owned until a final response   */
	const struct sip_msg *late2xx; /**< (ref.) the gateway's 2xx with
					  the offer of a late-offer call,
					  until the caller's ACK answers */
	struct mbuf *offer;          /**< owned: body for the gateway    */
	char *ctype;                 /**< owned: its Content-Type        */
	struct mbuf *hdrs;           /**< owned: headers copied over     */
	const struct cfg_route *route; /**< borrowed (config or routes)  */
	struct b2bua_routes *routes; /**< (ref.) table 'route' is from   */
	struct call_cand *candv;     /**< owned: gateways to try, in order */
	uint32_t candc;
	uint32_t gwi;                /**< candidate being tried          */
	struct gwh *gwh;             /**< (ref.) whose channel it holds  */
	bool gw_open;                /**< its attempt has no outcome yet */
	bool priced;                 /**< the customer's price is known  */
	struct b2bua_tariff price;   /**< it (b2bua_call_set_price())    */
	uint16_t last_scode;
	char last_reason[48];
	uint32_t se_gw;              /**< s, Session-Expires asked of the
					  gateway (raised by a 422)       */
	bool se_retried;             /**< a 422 was retried once         */
	uint32_t maxfwd;

	struct tmr tmr_ring;
	struct tmr tmr_dur;

	/* reliable provisional responses (RFC 3262, b2bua/prack.c) */
	bool caller_100rel;          /**< the caller supports 100rel     */
	uint32_t rseq;               /**< our last RSeq to the caller    */
	uint32_t rel_rseq;           /**< RSeq awaiting the caller's
					  PRACK, 0: none                 */
	struct mbuf *rel1xx;         /**< owned: that 1xx, retransmitted */
	struct sa rel_dst;
	struct tmr tmr_rel;          /**< its retransmission, give-up    */
	uint32_t rel_txc;
	uint64_t rel_start;          /**< when it was first sent (ms)    */
	uint32_t gw_rseq;            /**< the gateway's RSeq it relays   */
	uint32_t gw_cseq;            /**< and its INVITE's CSeq          */
	uint32_t gw_rseq_last;       /**< last RSeq seen from the gateway */
	struct list relayl;          /**< struct relay, owned            */

	char *account;               /**< owned                          */
	int64_t account_id;
	uint32_t max_cps;            /**< the account's, 0 = no limit     */
	char *caller;                /**< owned: From user               */
	char *from_name;             /**< owned: From display, unquoted  */
	char *callee;                /**< owned: normalised number       */
	char *dialled;               /**< owned: as the caller dialled it */
	char *reason_hdr;            /**< owned: Reason on our BYEs      */

	enum b2bua_reason reason;
	uint16_t scode;
	bool by_caller;
	bool authz_pending;
	bool authed;                 /**< trusted peer or digest passed  */
	char *sipuser;               /**< owned: digest user name        */
	uint64_t setup_ms, answer_ms, end_ms;
	struct b2bua_call_record rec; /**< written when the call ends    */
	void *udata[B2BUA_UDATA_SLOTS];
};

/** A carrier of a routing table, with its cost deck */
struct b2bua_carrier {
	struct le le;                /**< b2bua_routes.carrierl          */
	char *name;                  /**< owned                          */
	int32_t preference;          /**< lower first when costs tie     */
	struct b2bua_deck *deck;     /**< owned                          */
	struct cfg_gateway **gwv;    /**< owned array of borrowed        */
	uint32_t gwc;
};

/** One gateway a call may be sent to, in the order they are tried */
struct call_cand {
	const struct cfg_gateway *gw;    /**< borrowed (call's table)    */
	const struct b2bua_carrier *car; /**< borrowed; NULL: plain route */
	struct b2bua_tariff t;           /**< carrier's price, if priced */
	int64_t cost;                    /**< of lcr_ref_duration         */
	uint32_t pos;                    /**< among its carrier's gateways */
	bool priced;                     /**< t is the carrier's price   */
	bool dropped;                    /**< the margin guard said no    */
};

/** A message body with its Content-Type, printed by body_print() */
struct body {
	const char *ctype;           /**< NULL: application/sdp          */
	const struct mbuf *mb;       /**< NULL or empty: no body         */
};

/* b2bua.c */
void b2bua_emit(struct b2bua_call *call, enum b2bua_event ev,
		const struct b2bua_call_record *rec);
int  b2bua_contact(struct re_printf *pf, const struct sip_msg *msg);
int  body_print(struct re_printf *pf, const struct body *body);
int  contact_sendh(enum sip_transp tp, const struct sa *src,
		   const struct sa *dst, struct mbuf *mb, void *arg);

/* callidx.c */
uint64_t call_id_key(const char *id);
void call_index_account(struct b2bua_call *call);
void call_unindex(struct b2bua_call *call);
void call_index_flush(struct b2bua *b);

/* call.c */
int  call_alloc(struct b2bua_call **callp, struct b2bua *b,
		const struct sip_msg *msg);
void call_reply(struct b2bua_call *call, uint16_t scode, const char *reason,
		const char *hdrs);
int  leg_alloc(struct leg **legp, struct b2bua_call *call,
	       enum leg_side side, const char *callid, enum sip_transp tp);
struct leg *leg_find(const struct b2bua *b, const struct sip_msg *msg);
struct leg *leg_peer(const struct leg *leg);
const char *call_logid(const struct b2bua_call *call);
int  sdp_apply(struct b2bua_call *call, enum b2bua_dir dir,
	       const struct sip_msg *msg, struct mbuf **bodyp);

/* call.c */
void call_record_lcr(struct b2bua_call *call, struct b2bua_call_record *rec);

/* state.c */
int  call_event(struct b2bua_call *call, enum call_ev ev,
		const struct call_evarg *arg);
bool call_over(const struct b2bua_call *call);
void call_done_check(struct b2bua_call *call);
int  call_fail(struct b2bua_call *call, enum b2bua_reason reason,
	       uint16_t scode, const char *phrase, const char *hdrs);

/* uas.c */
void uas_invite(struct b2bua *b, const struct sip_msg *msg);

/* sanity.c: checks every request passes before any handler */
bool request_refused(struct b2bua *b, const struct sip_msg *msg);

/* rescue.c, rescue_parse.c: answers to what libre cannot decode */
void rescue_arm(bool on);
typedef bool (rescue_gate_h)(const struct sa *src, void *arg);
void rescue_use(bool on, rescue_gate_h *gate, void *arg);
uint64_t rescue_answered(void);
int  rescue_reply(struct mbuf *mb, const uint8_t *p, size_t n,
		  uint16_t *scodep);
void uas_proceed(struct b2bua_call *call);
int  leg_reply_2xx(struct leg *leg, struct sip_strans **stp,
		   const struct sip_msg *msg, uint16_t scode,
		   const char *reason, const char *hdrs, const char *ctype,
		   const struct mbuf *body);
bool leg_ack_2xx(struct leg *leg, const struct sip_msg *msg);
int  uas_copy_headers(struct b2bua_call *call);

/* nonce.c */
struct nonce_table;
int  nonce_alloc(struct b2bua *b);
int  nonce_make(char *buf, size_t sz, const struct b2bua *b,
		const struct sa *src, uint64_t now_s, uint64_t rnd);
int  nonce_check(const struct b2bua *b, const struct pl *nonce,
		 const struct sa *src);
bool nonce_seen(struct b2bua *b, const struct pl *nonce, uint32_t nc);
int  nonce_take(struct b2bua *b, const struct pl *nonce, uint32_t nc);

/* auth.c */
void auth_identify(struct b2bua_call *call, const struct sip_msg *msg);
struct httpauth_digest_resp;
bool auth_digest_valid(const struct httpauth_digest_resp *resp,
		       const struct pl *met, bool sha256, const char *ha1);
int  auth_header_user(char *buf, size_t sz, const struct sip_msg *msg,
		      const char *name);

/* limit.c */
struct limiter;

/** A token bucket (struct cfg_limit says its rate and size) */
struct lim_bucket {
	uint64_t last_ms;        /**< when milli was computed            */
	uint64_t milli;          /**< tokens x 1000                      */
};
void lim_bucket_fill(struct lim_bucket *bk, const struct cfg_limit *l,
		     uint64_t now);
bool lim_bucket_take(struct lim_bucket *bk, const struct cfg_limit *l,
		     uint64_t now, uint32_t *waitp);
int  limiter_alloc(struct limiter **lp, const struct b2bua_conf *cfg);
void limiter_set_conf(struct limiter *l, const struct b2bua_conf *cfg);
enum b2bua_limit limiter_source(struct limiter *l, const struct sa *src,
				enum sip_transp tp, bool invite,
				uint32_t *retryp);
enum b2bua_limit limiter_request(struct limiter *l, const struct sip_msg *msg,
				 bool invite, uint32_t *retryp);
bool limiter_account(struct limiter *l, int64_t account_id, uint32_t max_cps,
		     uint32_t *retryp);
uint32_t limiter_sources(const struct limiter *l);

void auth_unauth_fail(struct b2bua_call *call, uint16_t scode,
		      const char *phrase, const char *hdrs);

/* conf.c */
bool b2bua_same_net(const struct sa *a, const struct sa *b, unsigned bits);

/* translate.c: the number_in and number_out keys */
cfg_parse_h b2bua_conf_number_in;
cfg_parse_h b2bua_conf_number_out;
cfg_print_h b2bua_conf_print_xlat;
void b2bua_conf_xlat_check(struct cfg_parser *p,
			   const struct b2bua_conf *cfg);

/* b2bua.c */
bool b2bua_src_trusted(const struct b2bua *b, const struct sip_msg *msg);

/* guard.c */
struct guard;
int  guard_alloc(struct guard **gp, struct b2bua *b);
bool guard_src_blocked(struct guard *g, const struct sa *src);
bool guard_user_blocked(struct guard *g, const char *user);
void guard_fail(struct guard *g, const struct sa *src, const char *user);
int  guard_reply(struct b2bua *b, const struct sip_msg *msg, uint16_t scode,
		 const char *phrase, const char *hdrs, const char *hdrs_small);

/* uac.c */
void uac_start(struct b2bua_call *call);
void uac_answered(struct b2bua_call *call);
void uac_cancel(struct b2bua_call *call);
void uac_ack_late(struct b2bua_call *call, const struct sip_msg *ack);
int  leg_send_ack(struct leg *leg, const struct sip_msg *resp,
		  const char *ctype, const struct mbuf *body);
bool leg_ack_again(struct b2bua *b, const struct sip_msg *msg);

/* dialog.c */
int  leg_drequestf(struct sip_request **reqp, struct leg *leg,
		   bool stateful, const char *met, uint32_t cseq,
		   sip_send_h *sendh, sip_resp_h *resph, void *arg,
		   const char *fmt, ...);
void dialog_request(struct leg *leg, const struct sip_msg *msg);
int  leg_bye(struct leg *leg, const char *reason_hdr);
void relay_flush(struct b2bua_call *call);

/* timer.c: session timers (RFC 4028) */
int  timer_invite_check(const struct b2bua_conf *cfg,
			const struct sip_msg *msg, char *hdrs, size_t sz,
			uint16_t *scodep);
int  timer_uac_hdrs(struct re_printf *pf, const struct b2bua_call *call);
int  timer_req_hdrs(struct re_printf *pf, const struct leg *leg);
int  timer_offer_received(struct leg *leg, const struct sip_msg *msg,
			  char *hdrs, size_t sz);
void timer_answer_received(struct leg *leg, const struct sip_msg *msg);
void timer_start(struct leg *leg);
void timer_stop(struct leg *leg);
uint32_t timer_min_se(const struct sip_msg *msg);
bool timer_busy(const struct leg *leg);
void leg_sdp_keep(struct leg *leg, const char *ctype,
		  const struct mbuf *body);

/* prack.c: reliable provisional responses */
bool prack_1xx(struct b2bua_call *call, const struct sip_msg *msg,
	       uint32_t *rseqp);
void prack_stop(struct b2bua_call *call);
void prack_sent(struct b2bua_call *call, struct mbuf *mb, uint32_t rseq);
bool prack_caller(const struct sip_msg *msg);
void prack_request(struct leg *leg, const struct sip_msg *msg);
int  prack_hdrs(struct re_printf *pf, const struct b2bua_call *call);
void relay_start(struct leg *from, const struct sip_msg *msg, bool invite,
		 bool update, const char *xhdrs);

/* conf_limit.c: the limit keys of b2bua/conf.c */
cfg_parse_h b2bua_conf_limit;
cfg_print_h b2bua_conf_print_limit;
int  b2bua_conf_peer_limit(struct cfg_parser *p, struct cfg_peer *peer,
			   const struct pl *opt);
int  b2bua_conf_print_peer_limit(struct re_printf *pf,
				 const struct cfg_peer *peer);

/* conf_route.c: gateway and route keys of b2bua/conf.c */
cfg_parse_h b2bua_conf_gateway;
cfg_parse_h b2bua_conf_route;
cfg_print_h b2bua_conf_print_gateway;
cfg_print_h b2bua_conf_print_route;
int  b2bua_conf_resolve(struct cfg_parser *p, struct b2bua_conf *cfg);
const struct cfg_route *b2bua_route_match(const struct list *routel,
					  const char *number);

/* routes.c */
int  b2bua_routes_lcr(const struct b2bua_routes *rt, const char *number,
		      int64_t now_ms, uint32_t ref_s, struct call_cand **cvp,
		      uint32_t *cnp);

/* uac.c: the next candidate that may be tried after index i, or candc */
uint32_t call_next_usable(const struct b2bua_call *call, uint32_t i);

/* tls.c */
bool b2bua_tls_needed(const struct b2bua_conf *cfg);
int  b2bua_tls_alloc(struct tls **tlsp, const struct b2bua_conf *cfg,
		     char *why, size_t whysz, unsigned *linep);
void b2bua_tls_expect(struct tls *tls, const struct pl *host);
cfg_parse_h b2bua_conf_tls_file;
cfg_print_h b2bua_conf_print_tls_file;
void b2bua_conf_tls_check(struct cfg_parser *p,
			  const struct b2bua_conf *cfg);

/* gwstate.c: a gateway's up/down state machine (pure) */
struct gw_fsm {
	enum b2bua_gw_state st;
	uint32_t fail_run;       /**< failed probes in a row             */
	uint32_t ok_run;         /**< good probes in a row (while down)  */
	uint32_t burst_run;      /**< INVITEs in a row 503/408/no answer */
};

enum gw_change { GW_SAME = 0, GW_WENT_UP, GW_WENT_DOWN };

void gw_fsm_init(struct gw_fsm *f, const struct cfg_gw_health *h);
bool gw_probe_good(int err, uint16_t scode);
bool gw_invite_overload(int err, uint16_t scode);
enum gw_change gw_fsm_probe(struct gw_fsm *f, const struct cfg_gw_health *h,
			    bool good);
enum gw_change gw_fsm_invite(struct gw_fsm *f, const struct cfg_gw_health *h,
			     bool overload);

/* gateway.c: probes, limits and counts of the gateways */
struct gwtab;
struct gwh;
int  gw_table_alloc(struct b2bua *b);
void gw_table_sync(struct b2bua *b, const struct list *gatewayl);
uint32_t gw_table_reconf(struct b2bua *b);
void store_reconf(struct route_store *rs);
uint32_t gw_next_usable(struct b2bua_call *call, uint32_t from);
void gw_attempt(struct b2bua_call *call);
void gw_outcome(struct b2bua_call *call, int err, uint16_t scode);
void gw_release(struct b2bua_call *call);

/** Reason of the 503 a call gets when none of its gateways is usable */
#define B2BUA_REASON_NO_CIRCUIT \
	"Reason: Q.850;cause=34;text=\"no circuit/channel available\"\r\n"


/**
 * The number at the start of a header value (RSeq, RAck, Session-Expires,
 * Min-SE): blanks skipped, then 1 to 10 digits.  *rest is what follows.
 *
 * @return 0, or EBADMSG if there is no number or it is longer
 */
static inline int hdr_number(const struct pl *val, uint64_t *np,
			     struct pl *rest)
{
	struct pl v = *val;
	uint64_t n = 0;
	size_t d = 0;

	while (v.l && (v.p[0] == ' ' || v.p[0] == '\t')) {
		++v.p;
		--v.l;
	}

	while (v.l && v.p[0] >= '0' && v.p[0] <= '9') {
		if (++d > 10)
			return EBADMSG;
		n = n * 10 + (uint64_t)(v.p[0] - '0');
		++v.p;
		--v.l;
	}

	if (!d)
		return EBADMSG;

	*np = n;
	*rest = v;

	return 0;
}
