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

/** Which token-less access a route may get from the configuration */
enum api_open { API_OPEN_NEVER = 0, API_OPEN_HEALTH, API_OPEN_METRICS };

struct api_route {
	const char *pattern;         /**< path, '*' is one segment (id)  */
	unsigned meths;              /**< enum api_meth allowed           */
	enum api_open open;
	api_h *h;
};

struct api {
	const struct api_conf *cfg;  /**< borrowed                       */
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
void api_reply(struct api_req *req, unsigned status, const struct odict *od);
void api_reply_list(struct api_req *req, const char *key,
		    const struct odict *arr, size_t n, int err);
void api_reply_text(struct api_req *req, unsigned status,
		    const char *ctype, const char *text, size_t len);
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

/* handlers */
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

int  api_accounts_register(struct db *db);
int  api_catalog_register(struct db *db);
int  api_limits_register(struct db *db);
int  api_cdrs_register(struct db *db);
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

/* gateways.c: health, limits and counts of the gateways */
int  api_gw_rows_health(struct api *api, struct odict *od);
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
