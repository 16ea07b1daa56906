/**
 * @file api_int.h  REST API internals (private to api/)
 */

#include <stdlib.h>
#include <re.h>
#include <microhttpd.h>
#include "core.h"
#include "b2bua.h"
#include "db.h"
#include "relay.h"
#include "api.h"


enum api_meth {
	API_GET    = 1 << 0,
	API_POST   = 1 << 1,
	API_PATCH  = 1 << 2,
	API_DELETE = 1 << 3,
	API_OTHER  = 1 << 4,
};

enum {
	API_DB_TIMEOUT_MS = 5000,
	API_OUTCOMES = 12,           /**< b2bua_reason values counted    */
	API_RATE_WINDOW = 10,        /**< s, call rate averaged over     */
	API_NODE_MAX = 63,           /**< bytes of a node name           */
	API_CALL_ID_MAX = 63,        /**< bytes of a call id             */
	API_EV_BUF = 262144,         /**< bytes buffered per event stream */
	API_EV_HISTORY = 300,        /**< s of stats kept for the chart  */
	API_EV_MEDIA_S = 5,          /**< s between media updates        */
	API_EV_KEEPALIVE_S = 15,     /**< s between keepalive comments   */
};

/* SQL: the node of row n of nodes is alive while its lease runs */
#define API_NODE_ALIVE "coalesce(n.lease_until > now(), false)"

/* the Reason of a BYE the API asks for, and its CDR reason */
#define API_REASON_ADMIN "SIP;cause=200;text=\"ended by operator\""
#define API_REASON_BLOCK "Q.850;cause=21;text=\"account blocked\""
#define API_REASON_CREDIT "Q.850;cause=16;text=\"credit set to zero\""

/** Why every call of an account ends (control.c) */
enum api_cut {
	API_CUT_BLOCK = 0,           /**< blocked: B2BUA_R_ADMIN         */
	API_CUT_CREDIT,              /**< credit set to zero: B2BUA_R_CREDIT */
};

/** A control message, parsed (api_ctl_parse) */
struct api_ctl_msg {
	enum { API_CTL_END = 1, API_CTL_CUT } verb;
	char node[API_NODE_MAX + 1];     /**< a node's name, or "*" (cut) */
	char call_id[API_CALL_ID_MAX + 1]; /**< end                       */
	int64_t account_id;              /**< cut                         */
	enum api_cut why;                /**< cut                         */
};

/** Control messages heard on tollgate_control, by what became of them */
enum api_ctl_result {
	API_CTL_DONE = 0,            /**< acted on                       */
	API_CTL_NO_CALL,             /**< for this node, no such call    */
	API_CTL_OTHER_NODE,          /**< for another node               */
	API_CTL_BAD,                 /**< malformed: ignored             */
	API_CTL_COUNT
};

struct api_req;
typedef void (api_h)(struct api_req *req);

/** A bounded byte buffer of an event stream (events.c) */
struct api_evbuf {
	uint8_t *p;                  /**< owned, cap bytes               */
	size_t cap;
	size_t head;                 /**< first byte not yet read        */
	size_t tail;                 /**< end of what was put            */
};

/** Which token-less access a route may get from the configuration */
enum api_open { API_OPEN_NEVER = 0, API_OPEN_HEALTH, API_OPEN_METRICS,
		API_OPEN_ALWAYS /**< static assets of /ui/: no data */ };

struct api_route {
	const char *pattern;         /**< path, '*' is one segment (id)  */
	unsigned meths;              /**< enum api_meth allowed           */
	enum api_open open;
	api_h *h;
};

struct api {
	const struct api_conf *cfg;  /**< (ref.) api_reconfigure() swaps */
	uint64_t reloads[2];         /**< configuration reloads: ok, failed */
	uint64_t reload_ok_ms;       /**< wall clock of the last good one */
	const char *realm;           /**< borrowed; digest realm (HA1)   */
	struct db *db;               /**< borrowed                       */
	struct b2bua *b2bua;         /**< borrowed                       */
	struct api_hooks hooks;      /**< what billing answers; NULLs if
					  billing is off               */
	bool billing;                /**< hooks were given: billing on   */
	api_drain_h *drainh;         /**< POST /v1/node/drain; NULL: none */
	void *drain_arg;
	struct media_relay *relay;   /**< borrowed; may be NULL          */
	struct MHD_Daemon *mhd;      /**< owned                          */
	int epfd;                    /**< MHD's epoll fd (not owned)     */
	struct tmr tmr;              /**< MHD's next timeout             */
	bool kick;                   /**< a connection was resumed: run
					  MHD again at once              */
	struct list reql;            /**< struct api_req, open requests  */
	uint64_t start_jif;

	/* counters (status.c) */
	uint64_t requests;
	uint64_t responses[6];       /**< by status class, 1xx..5xx      */
	uint64_t created;
	uint64_t outcome[API_OUTCOMES]; /**< ended calls by reason        */
	uint64_t answered;
	uint64_t admin_ends;
	uint64_t rate_slot[API_RATE_WINDOW];
	uint64_t rate_sec;

	/* the cluster (control.c); node is NULL while it is off */
	char *node;                  /**< owned; this node's name        */
	struct db_listen *ctl;       /**< owned; LISTEN tollgate_control */
	uint64_t ctl_heard[API_CTL_COUNT];
	uint64_t ctl_sent;           /**< control messages sent          */

	/* event streams (events.c) */
	struct list subl;            /**< struct api_sub, the streams    */
	struct mbuf *evmb;           /**< owned; one event, encoded      */
	struct tmr ev_tmr;           /**< once a second                  */
	uint32_t ev_streams;         /**< open                           */
	uint64_t ev_seq;             /**< id of the last event           */
	uint64_t ev_opened, ev_refused, ev_dropped, ev_sent, ev_failed;
	uint64_t ev_created;         /**< api.created at the last tick   */
	uint64_t ev_cutoffs;         /**< billing's cut-offs then        */
	uint32_t ev_cps[API_EV_HISTORY]; /**< calls created, per second  */
	uint32_t ev_cut[API_EV_HISTORY]; /**< cut-offs, per second       */
	unsigned ev_hist_i, ev_hist_n;
	unsigned ev_media_tick;
	uint64_t ev_gw_changes;      /**< gateways' state changes seen   */
	unsigned ev_gw_n;            /**< gateways seen                  */
};

struct api_req {
	struct le le;                /**< api.reql                       */
	struct api *api;             /**< borrowed                       */
	struct MHD_Connection *conn; /**< borrowed                       */
	const struct api_route *route;
	enum api_meth meth;
	char *url;                   /**< owned: the path                */
	struct pl id;                /**< the '*' segment, in url        */
	struct mbuf *body;           /**< owned                          */
	bool too_large;
	bool admin;
	bool started;
	bool suspended;
	unsigned status;
	struct MHD_Response *resp;   /**< owned until queued             */
	struct db_query *q;          /**< owned                          */
	void *ctx;                   /**< owned: handler state           */
	int64_t n;                   /**< handler scratch                */
	struct b2bua_reload *reload; /**< owned; the change's reload     */
};

/* http.c */
const struct api_route *api_routes(size_t *np);
void api_reply(struct api_req *req, unsigned status, const struct odict *od);
void api_reply_list(struct api_req *req, const char *key,
		    const struct odict *arr, size_t n, int err);
void api_reply_text(struct api_req *req, unsigned status,
		    const char *ctype, const char *text, size_t len);
void api_reply_resp(struct api_req *req, unsigned status,
		    struct MHD_Response *resp);
void api_mhd_kick(struct api *api);
void api_error(struct api_req *req, unsigned status, const char *field,
	       const char *fmt, ...);
const char *api_arg(const struct api_req *req, const char *name);
const char *api_header(const struct api_req *req, const char *name);
int  api_exec(struct api_req *req, const char *stmt, int n,
	      const char *const *v, db_result_h *h);
const char *api_db_state(const struct pg_result *res);
const char *api_db_constraint(const struct pg_result *res);
void api_db_error(struct api_req *req, int err, const struct pg_result *res,
		  const char *field, const char *what);

/* util.c: JSON bodies and values */
int  api_body(struct api_req *req, struct odict **odp,
	      const char *const *allowed);
int  api_get_str(struct api_req *req, const struct odict *od,
		 const char *key, bool required, bool nullable,
		 const char **strp);
int  api_get_int(struct api_req *req, const struct odict *od,
		 const char *key, bool required, int64_t min, int64_t max,
		 int64_t *vp);
int  api_get_money(struct api_req *req, const struct odict *od,
		   const char *key, bool required, int64_t *vp);
int  api_arg_int(struct api_req *req, const char *name, int64_t min,
		 int64_t max, int64_t *vp);
int  api_id(struct api_req *req, int64_t *idp);
int  api_add_money(struct odict *od, const char *key, int64_t amount);
int  api_add_time(struct odict *od, const char *key, uint64_t ms);
int  api_add_col(struct odict *od, const char *key,
		 const struct pg_result *res, int row, int col, char type);

/* a result's rows as JSON: members named as the columns, types one
   letter a column ('i', 'm', 'b', 's'; '-' leaves the column out) */
int  api_row(struct odict **odp, const struct pg_result *res, int row,
	     const char *types);
int  api_rows(struct odict *od, const char *key, const struct pg_result *res,
	      const char *types);

int  api_time_valid(const char *s);

/* csv.c: the one CSV reader and writer */
struct api_csv {
	char *p;                     /**< next character (in the text)   */
	uint32_t line;               /**< line of p, from 1              */
};

void api_csv_init(struct api_csv *r, char *text);
int  api_csv_next(struct api_csv *r, char **cellv, unsigned max,
		  unsigned *np, uint32_t *linep);
int  api_csv_cell(struct mbuf *mb, const char *s, bool guard);
bool api_wants_csv(const struct api_req *req);

/* http.c: a reply streamed from a content reader, resuming */
int  api_reply_stream(struct api_req *req, unsigned status,
		      const char *ctype, MHD_ContentReaderCallback rd,
		      void *cls);
void api_resume(struct api_req *req);
void api_suspend(struct api_req *req);

/* handlers */
void api_rates_import_h(struct api_req *req);
void api_rates_csv(struct api_req *req);
void api_calls_h(struct api_req *req);
void api_call_h(struct api_req *req);
void api_accounts_h(struct api_req *req);
void api_account_h(struct api_req *req);
void api_credit_h(struct api_req *req);
void api_limits_h(struct api_req *req);
void api_restricted_h(struct api_req *req);
void api_restricted_one_h(struct api_req *req);
void api_rates_h(struct api_req *req);
void api_rate_h(struct api_req *req);
void api_gateways_h(struct api_req *req);
void api_gateway_h(struct api_req *req);
void api_routes_h(struct api_req *req);
void api_route_h(struct api_req *req);
void api_cdrs_h(struct api_req *req);
void api_number_rules_h(struct api_req *req);
void api_number_rule_h(struct api_req *req);
void api_deck_h(struct api_req *req);
void api_carriers_h(struct api_req *req);
int  api_deck_register(struct db *db);
void api_blocks_h(struct api_req *req);
void api_block_h(struct api_req *req);
void api_health_h(struct api_req *req);
void api_node_drain_h(struct api_req *req);
void api_metrics_h(struct api_req *req);
void api_openapi_h(struct api_req *req);

/* openapi.c: the document of docs/openapi.yaml, as JSON */
const char *api_openapi_doc(size_t *lenp);

int  api_accounts_register(struct db *db);
int  api_catalog_register(struct db *db);
int  api_limits_register(struct db *db);
int  api_cdrs_register(struct db *db);
int  api_rates_csv_register(struct db *db);
int  api_status_register(struct db *db);
uint32_t api_cut_account(struct api *api, int64_t account_id,
			 enum b2bua_reason reason, const char *hdr);
int  api_call_end_local(struct api *api, struct b2bua_call *call);
int  api_call_odict(struct odict **odp, const struct api *api,
		    const struct b2bua_call *call);
/** A call of this node for api_call_json() */
struct js_call {
	const struct api *api;          /**< borrowed                    */
	const struct b2bua_call *call;  /**< borrowed                    */
};

int  api_call_json(struct re_printf *pf, const struct js_call *jc);
void api_calls_local(struct api_req *req, const char *account,
		     int64_t account_id, bool partial, const char *after,
		     unsigned limit);

/* events.c: Server-Sent Events (GET /v1/events) */
int    api_evbuf_init(struct api_evbuf *b, size_t cap);
void   api_evbuf_reset(struct api_evbuf *b);
size_t api_evbuf_len(const struct api_evbuf *b);
int    api_evbuf_put(struct api_evbuf *b, const uint8_t *d, size_t n);
size_t api_evbuf_get(struct api_evbuf *b, uint8_t *d, size_t max);
int    api_event_encode(struct mbuf *mb, uint64_t id, const char *type,
			const struct odict *od);
void   api_events_h(struct api_req *req);
int    api_events_start(struct api *api);
void   api_events_close(struct api *api);
void   api_events_account(struct api *api, int64_t account_id,
			  int64_t balance, const char *op);
int    api_events_metrics(struct mbuf *mb, const struct api *api);

/* ui.c: the live calls page (GET /ui/) */
struct api_asset {
	const char *path;            /**< under /ui/, "" for index.html  */
	const char *ctype;
	const unsigned char *data;
	size_t len;
	const char *etag;            /**< quoted, from the content       */
};
extern const struct api_asset api_assetv[];
extern const size_t api_assetc;
const struct api_asset *api_asset_find(const char *path);
void api_ui_h(struct api_req *req);

/* gateways.c: health, limits and counts of the gateways */
int  api_gw_rows_health(struct api *api, struct odict *od);
int  api_gw_health_add(struct odict *od, const struct b2bua_gw_info *gi);
void api_gateway_get(struct api_req *req);
int  api_gw_metrics(struct mbuf *mb, const struct b2bua *b);
double api_gw_asr(const struct b2bua_gw_counts *c);
double api_gw_acd(const struct b2bua_gw_counts *c);

/* cluster.c: the calls of every node */
int  api_cluster_register(struct db *db);
void api_calls_cluster(struct api_req *req, const char *account,
		       int64_t account_id);

/* control.c: the cluster's control channel */
int  api_control_register(struct db *db);
bool api_node_valid(const char *s, size_t len);
bool api_call_id_valid(const char *s, size_t len);
uint32_t api_cut_cluster(struct api *api, int64_t account_id,
			 enum api_cut why);
void api_call_remote(struct api_req *req, const char *id);
const char *api_ctl_result_name(enum api_ctl_result r);
int  api_ctl_parse(struct api_ctl_msg *m, const char *payload);
void api_status_event(struct b2bua_call *call, enum b2bua_event ev,
		      const struct b2bua_call_record *rec, void *arg);
