/**
 * @file http.c  REST API: libmicrohttpd on libre's loop, auth, dispatch
 *
 * MHD runs in external-poll mode with its own epoll set: the epoll
 * descriptor is watched with fd_listen(), MHD_run() is called when it is
 * readable and when the timeout MHD asks for (a libre timer) expires.  A
 * request whose handler waits for the database is suspended
 * (MHD_suspend_connection) and resumed when the reply is ready.
 *
 * Checks before a handler runs, in this order: token (401), path (404),
 * method (405), role (403), Content-Type of a body (415), body size (413).
 */

#include <string.h>
#include <stdarg.h>
#include <strings.h>
#include <libpq-fe.h>
#include "api_int.h"


static const struct api_route routev[] = {
	{"/v1/calls",            API_GET,              API_OPEN_NEVER,
	 api_calls_h},
	{"/v1/calls/*",          API_GET | API_DELETE, API_OPEN_NEVER,
	 api_call_h},
	{"/v1/accounts",         API_GET | API_POST,   API_OPEN_NEVER,
	 api_accounts_h},
	{"/v1/accounts/*",       API_GET | API_PATCH,  API_OPEN_NEVER,
	 api_account_h},
	{"/v1/accounts/*/credit", API_POST,            API_OPEN_NEVER,
	 api_credit_h},
	{"/v1/accounts/*/limits", API_GET | API_PATCH, API_OPEN_NEVER,
	 api_limits_h},
	{"/v1/restricted_prefixes", API_GET | API_POST, API_OPEN_NEVER,
	 api_restricted_h},
	{"/v1/restricted_prefixes/*", API_DELETE,      API_OPEN_NEVER,
	 api_restricted_one_h},
	{"/v1/rates",            API_GET | API_POST,   API_OPEN_NEVER,
	 api_rates_h},
	{"/v1/rates/import",     API_POST,             API_OPEN_NEVER,
	 api_rates_import_h},
	{"/v1/rates/*",          API_DELETE,           API_OPEN_NEVER,
	 api_rate_h},
	{"/v1/gateways",         API_GET | API_POST,   API_OPEN_NEVER,
	 api_gateways_h},
	{"/v1/gateways/*",       API_GET | API_DELETE, API_OPEN_NEVER,
	 api_gateway_h},
	{"/v1/routes",           API_GET | API_POST,   API_OPEN_NEVER,
	 api_routes_h},
	{"/v1/routes/*",         API_DELETE,           API_OPEN_NEVER,
	 api_route_h},
	{"/v1/number_rules",     API_GET | API_POST,   API_OPEN_NEVER,
	 api_number_rules_h},
	{"/v1/number_rules/*",   API_DELETE,           API_OPEN_NEVER,
	 api_number_rule_h},
	{"/v1/carriers",         API_GET,              API_OPEN_NEVER,
	 api_carriers_h},
	{"/v1/carriers/*/deck",  API_POST,             API_OPEN_NEVER,
	 api_deck_h},
	{"/v1/cdrs",             API_GET,              API_OPEN_NEVER,
	 api_cdrs_h},
	{"/v1/blocks",           API_GET,              API_OPEN_NEVER,
	 api_blocks_h},
	{"/v1/blocks/*",         API_DELETE,           API_OPEN_NEVER,
	 api_block_h},
	{"/v1/health",           API_GET,              API_OPEN_HEALTH,
	 api_health_h},
	{"/v1/node/drain",       API_POST,             API_OPEN_NEVER,
	 api_node_drain_h},
	{"/v1/openapi.json",     API_GET,              API_OPEN_ALWAYS,
	 api_openapi_h},
	{"/metrics",             API_GET,              API_OPEN_METRICS,
	 api_metrics_h},
	{"/v1/events",           API_GET,              API_OPEN_NEVER,
	 api_events_h},
	{"/ui",                  API_GET,              API_OPEN_ALWAYS,
	 api_ui_h},
	{"/ui/",                 API_GET,              API_OPEN_ALWAYS,
	 api_ui_h},
	{"/ui/*",                API_GET,              API_OPEN_ALWAYS,
	 api_ui_h},
};


static void mhd_run(struct api *api);
static void tmr_handler(void *arg);


/** The route table (tests/unit/test_openapi compares it with the
 *  OpenAPI document); *np gets its length */
const struct api_route *api_routes(size_t *np)
{
	*np = ARRAY_SIZE(routev);

	return routev;
}


/* ------------------------------------------------------------- replies */

static void resp_set(struct api_req *req, unsigned status,
		     struct MHD_Response *resp)
{
	if (!resp) {
		tlog_err(NULL, "api: cannot make a response");
		return;
	}

	if (req->resp)
		MHD_destroy_response(req->resp);

	req->resp = resp;
	req->status = status;

	if (req->suspended) {
		req->suspended = false;
		MHD_resume_connection(req->conn);
		api_mhd_kick(req->api);
	}
}


/** Reply with a response made by the handler (a stream, an asset) */
void api_reply_resp(struct api_req *req, unsigned status,
		    struct MHD_Response *resp)
{
	if (req)
		resp_set(req, status, resp);
	else if (resp)
		MHD_destroy_response(resp);
}


/** Let MHD run soon: a connection was resumed */
void api_mhd_kick(struct api *api)
{
	api->kick = true;
	tmr_start(&api->tmr, 0, tmr_handler, api);
}


void api_reply_text(struct api_req *req, unsigned status, const char *ctype,
		    const char *text, size_t len)
{
	struct MHD_Response *resp;

	if (!req)
		return;

	resp = MHD_create_response_from_buffer(len, (void *)text,
					       MHD_RESPMEM_MUST_COPY);
	if (resp) {
		(void)MHD_add_response_header(resp, "Content-Type", ctype);
		(void)MHD_add_response_header(resp, "Cache-Control",
					      "no-store");
	}

	resp_set(req, status, resp);
}


/** Resume a request suspended while its handler waited */
void api_resume(struct api_req *req)
{
	if (!req || !req->suspended)
		return;

	req->suspended = false;
	MHD_resume_connection(req->conn);
	tmr_start(&req->api->tmr, 0, tmr_handler, req->api);
}


/** Suspend a request until api_resume() (a content reader with no data) */
void api_suspend(struct api_req *req)
{
	if (!req || req->suspended)
		return;

	req->suspended = true;
	MHD_suspend_connection(req->conn);
}


/**
 * Reply with a body of unknown length read from rd (chunked): rd may
 * return 0 after api_suspend() and the request is resumed by api_resume()
 * when it has more; cls must live as long as the request
 */
int api_reply_stream(struct api_req *req, unsigned status, const char *ctype,
		     MHD_ContentReaderCallback rd, void *cls)
{
	struct MHD_Response *resp;

	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 65536, rd,
						 cls, NULL);
	if (!resp)
		return ENOMEM;

	(void)MHD_add_response_header(resp, "Content-Type", ctype);
	(void)MHD_add_response_header(resp, "Cache-Control", "no-store");
	resp_set(req, status, resp);

	return 0;
}


/** Does a GET ask for CSV (?format=csv, or Accept: text/csv)? */
bool api_wants_csv(const struct api_req *req)
{
	const char *f = api_arg(req, "format");
	const char *a = api_header(req, "Accept");

	if (f)
		return !strcmp(f, "csv");

	return a && strstr(a, "text/csv") != NULL;
}


/** Reply with a JSON object (NULL: an empty object) */
void api_reply(struct api_req *req, unsigned status, const struct odict *od)
{
	char *s = NULL;
	int err;

	if (od)
		err = re_sdprintf(&s, "%H", json_encode_odict, od);
	else
		err = str_dup(&s, "{}");
	if (err) {
		api_reply_text(req, 500, "application/json",
			       "{\"error\":\"out of memory\",\"field\":null}",
			       38);
		return;
	}

	api_reply_text(req, status, "application/json", s, strlen(s));
	mem_deref(s);
}


/** Reply {"error": message, "field": field or null} */
void api_error(struct api_req *req, unsigned status, const char *field,
	       const char *fmt, ...)
{
	struct odict *od = NULL;
	char *msg = NULL;
	va_list ap;
	int err;

	va_start(ap, fmt);
	err = re_vsdprintf(&msg, fmt, ap);
	va_end(ap);

	err |= odict_alloc(&od, 4);
	if (!err) {
		err  = odict_entry_add(od, "error", ODICT_STRING, msg);
		err |= field ? odict_entry_add(od, "field", ODICT_STRING,
					       field) :
			odict_entry_add(od, "field", ODICT_NULL);
	}

	if (err)
		api_reply_text(req, status, "application/json",
			       "{\"error\":\"error\",\"field\":null}", 29);
	else
		api_reply(req, status, od);

	mem_deref(od);
	mem_deref(msg);
}


const char *api_arg(const struct api_req *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND,
					   name);
}


const char *api_header(const struct api_req *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
					   name);
}


const char *api_db_state(const struct pg_result *res)
{
	const char *s;

	if (!res)
		return "";

	s = PQresultErrorField((const PGresult *)res, PG_DIAG_SQLSTATE);

	return s ? s : "";
}


const char *api_db_constraint(const struct pg_result *res)
{
	const char *s;

	if (!res)
		return "";

	s = PQresultErrorField((const PGresult *)res,
			       PG_DIAG_CONSTRAINT_NAME);

	return s ? s : "";
}


/**
 * A database failure as a reply: 409, 400, 503 (unreachable, too slow or
 * a transient error: try again) or 500
 */
void api_db_error(struct api_req *req, int err, const struct pg_result *res,
		  const char *field, const char *what)
{
	const char *state = NULL;

	if (err == EPROTO && res)
		state = PQresultErrorField((const PGresult *)res,
					   PG_DIAG_SQLSTATE);

	if (state && !strcmp(state, "23505")) {
		api_error(req, 409, field, "%s already exists", what);
	}
	else if (state && !strcmp(state, "23503")) {
		api_error(req, 409, field, "%s is referenced by another "
			  "object or refers to one that does not exist", what);
	}
	else if (state && (!strncmp(state, "22", 2) ||
			   !strncmp(state, "23", 2))) {
		api_error(req, 400, field, "%s: value not accepted by the "
			  "database", what);
	}
	else if (err == ETIMEDOUT || err == ECONNRESET || err == ENOTCONN ||
		 err == EAGAIN) {
		api_error(req, 503, NULL, "database unavailable (%m)", err);
	}
	else {
		api_error(req, 500, NULL, "database error (%m)", err);
	}
}


/** Run a prepared statement for a request; on failure the reply is 503 */
int api_exec(struct api_req *req, const char *stmt, int n,
	     const char *const *v, db_result_h *h)
{
	int err;

	req->q = mem_deref(req->q);
	err = db_exec(&req->q, req->api->db, stmt, n, v, API_DB_TIMEOUT_MS,
		      false, h, req);
	if (err)
		api_error(req, 503, NULL, "database unavailable (%m)", err);

	return err;
}


/* ------------------------------------------------------------ requests */

static void req_destructor(void *arg)
{
	struct api_req *req = arg;

	list_unlink(&req->le);
	mem_deref(req->reload);
	mem_deref(req->q);
	mem_deref(req->ctx);
	mem_deref(req->body);
	mem_deref(req->url);
	if (req->resp)
		MHD_destroy_response(req->resp);
}


static enum api_meth meth_parse(const char *m)
{
	if (!strcmp(m, "GET") || !strcmp(m, "HEAD"))
		return API_GET;
	if (!strcmp(m, "POST"))
		return API_POST;
	if (!strcmp(m, "PATCH"))
		return API_PATCH;
	if (!strcmp(m, "DELETE"))
		return API_DELETE;

	return API_OTHER;
}


/* does a path match a pattern?  '*' takes one non-empty segment */
static bool path_match(const char *pat, const char *path, struct pl *id)
{
	while (*pat && *path) {

		if (*pat == '*') {
			const char *e = strchr(path, '/');
			size_t l = e ? (size_t)(e - path) : strlen(path);

			if (!l)
				return false;
			id->p = path;
			id->l = l;
			path += l;
			++pat;
			continue;
		}

		if (*pat != *path)
			return false;
		++pat;
		++path;
	}

	return !*pat && !*path;
}


static const char *allow_str(unsigned m, char *buf, size_t sz)
{
	(void)re_snprintf(buf, sz, "%s%s%s%s",
			  m & API_GET ? "GET, HEAD, " : "",
			  m & API_POST ? "POST, " : "",
			  m & API_PATCH ? "PATCH, " : "",
			  m & API_DELETE ? "DELETE, " : "");
	if (strlen(buf) >= 2)
		buf[strlen(buf) - 2] = '\0';

	return buf;
}


/* constant time over the token's length */
static bool token_eq(const char *a, const char *b, size_t bl)
{
	size_t al = strlen(a), i;
	unsigned char d = 0;

	if (al != bl)
		return false;

	for (i = 0; i < al; i++)
		d |= (unsigned char)(a[i] ^ b[i]);

	return d == 0;
}


/* 0 and the role, or 401 */
static int authorize(struct api_req *req)
{
	const struct api_conf *cfg = req->api->cfg;
	const char *h = api_header(req, "Authorization");
	struct le *le;
	size_t l;

	if (!h || strncasecmp(h, "Bearer ", 7))
		return 401;

	h += 7;
	while (*h == ' ')
		++h;
	l = strlen(h);
	while (l && h[l - 1] == ' ')
		--l;

	LIST_FOREACH(&cfg->tokenl, le) {
		const struct cfg_token *tok = le->data;

		if (token_eq(tok->token, h, l)) {
			req->admin = tok->admin;
			return 0;
		}
	}

	return 401;
}


static bool is_open(const struct api_req *req)
{
	const struct api_conf *cfg = req->api->cfg;

	if (!req->route || req->meth != API_GET)
		return false;

	switch (req->route->open) {

	case API_OPEN_HEALTH:  return cfg->api_open_health;
	case API_OPEN_METRICS: return cfg->api_open_metrics;
	case API_OPEN_ALWAYS:  return true;
	default:               return false;
	}
}


static bool json_ctype(const char *ct)
{
	struct pl pl;

	if (!ct)
		return false;

	pl_set_str(&pl, ct);
	if (pl.l < 16 || strncasecmp(ct, "application/json", 16))
		return false;

	/* nothing, or parameters (charset) */
	return ct[16] == '\0' || ct[16] == ';' || ct[16] == ' ';
}


/* does the request announce a body? */
static bool has_body(const struct api_req *req)
{
	const char *cl = api_header(req, "Content-Length");

	if (cl)
		return strtoull(cl, NULL, 10) > 0;

	return api_header(req, "Transfer-Encoding") != NULL;
}


/* the largest body a request may have: a rate deck has its own bound */
static uint32_t body_max(const struct api_req *req)
{
	if (req->route && req->route->h == api_rates_import_h)
		return req->api->cfg->api_max_import;

	return req->api->cfg->api_max_body;
}


/* everything that can be checked before the body is read */
static void req_check(struct api_req *req)
{
	const char *cl;
	size_t i;
	char allow[64];

	for (i = 0; i < ARRAY_SIZE(routev); i++) {
		struct pl id = PL_INIT;

		if (path_match(routev[i].pattern, req->url, &id)) {
			req->route = &routev[i];
			req->id = id;
			break;
		}
	}

	if (!is_open(req) && authorize(req)) {
		struct MHD_Response *resp;

		api_error(req, 401, "Authorization", "missing or unknown "
			  "bearer token");
		resp = req->resp;
		if (resp)
			(void)MHD_add_response_header(resp,
				"WWW-Authenticate", "Bearer realm=\"tollgate\"");
		return;
	}

	if (!req->route) {
		api_error(req, 404, NULL, "no resource %s", req->url);
		return;
	}

	if (!(req->route->meths & req->meth)) {
		api_error(req, 405, NULL, "method not allowed on %s",
			  req->route->pattern);
		if (req->resp)
			(void)MHD_add_response_header(req->resp, "Allow",
				allow_str(req->route->meths, allow,
					  sizeof(allow)));
		return;
	}

	if (req->meth != API_GET && !req->admin) {
		api_error(req, 403, "Authorization", "this token may only "
			  "read");
		return;
	}

	/* a body must be JSON (a deck may be CSV); a POST without one
	   (drain) needs no type */
	if ((req->meth == API_POST || req->meth == API_PATCH) &&
	    has_body(req)) {
		const char *ct = api_header(req, "Content-Type");
		bool import = req->route->h == api_rates_import_h;
		bool csv = ct && !strncasecmp(ct, "text/csv", 8);

		if (import && !csv) {
			api_error(req, 415, "Content-Type", "the body must "
				  "be text/csv");
			return;
		}

		if (!import && !(csv && req->route->h == api_deck_h) &&
		    !json_ctype(ct)) {
			api_error(req, 415, "Content-Type", "the body must "
				  "be application/json%s",
				  req->route->h == api_deck_h ?
				  " or text/csv" : "");
			return;
		}
	}

	cl = api_header(req, "Content-Length");
	if (cl && strtoull(cl, NULL, 10) > (unsigned long long)body_max(req)) {
		api_error(req, 413, NULL, "body larger than %u bytes",
			  body_max(req));
		return;
	}
}


static enum MHD_Result queue(struct api_req *req)
{
	enum MHD_Result r;
	unsigned c = req->status / 100;

	r = MHD_queue_response(req->conn, req->status, req->resp);
	MHD_destroy_response(req->resp);
	req->resp = NULL;

	if (c < ARRAY_SIZE(req->api->responses))
		++req->api->responses[c];

	return r;
}


static enum MHD_Result access_h(void *cls, struct MHD_Connection *conn,
				const char *url, const char *method,
				const char *version, const char *upload_data,
				size_t *upload_data_size, void **con_cls)
{
	struct api *api = cls;
	struct api_req *req = *con_cls;
	(void)version;

	if (!req) {
		req = mem_zalloc(sizeof(*req), req_destructor);
		if (!req)
			return MHD_NO;

		req->api = api;
		req->conn = conn;
		req->meth = meth_parse(method);
		list_append(&api->reql, &req->le, req);
		*con_cls = req;
		++api->requests;

		if (str_dup(&req->url, url))
			return MHD_NO;

		req_check(req);
		if (req->resp)
			return queue(req);

		return MHD_YES;
	}

	if (*upload_data_size) {
		size_t n = *upload_data_size;

		*upload_data_size = 0;
		if (req->too_large)
			return MHD_YES;

		if ((req->body ? req->body->end : 0) + n > body_max(req)) {
			req->too_large = true;
			req->body = mem_deref(req->body);
			return MHD_YES;
		}

		if (!req->body)
			req->body = mbuf_alloc(n);
		if (!req->body ||
		    mbuf_write_mem(req->body, (const uint8_t *)upload_data,
				   n))
			return MHD_NO;

		return MHD_YES;
	}

	if (req->resp)
		return queue(req);

	if (!req->started) {
		req->started = true;

		if (req->too_large)
			api_error(req, 413, NULL, "body larger than %u bytes",
				  body_max(req));
		else
			req->route->h(req);

		if (req->resp)
			return queue(req);
	}

	/* the handler waits for the database */
	req->suspended = true;
	MHD_suspend_connection(conn);

	return MHD_YES;
}


static void completed_h(void *cls, struct MHD_Connection *conn,
			void **con_cls, enum MHD_RequestTerminationCode toe)
{
	struct api_req *req = *con_cls;
	(void)cls;
	(void)conn;
	(void)toe;

	*con_cls = NULL;
	mem_deref(req);
}


/* ----------------------------------------------------------- event loop */

static void mhd_run(struct api *api)
{
	MHD_UNSIGNED_LONG_LONG to;

	api->kick = false;
	(void)MHD_run(api->mhd);

	/* a connection resumed during the run (an event for a stream
	   written by a handler) is taken up by the next run, at once: MHD's
	   own timeout may be that of its idle connections */
	if (api->kick)
		tmr_start(&api->tmr, 0, tmr_handler, api);
	else if (MHD_get_timeout(api->mhd, &to) == MHD_YES)
		tmr_start(&api->tmr, to, tmr_handler, api);
	else
		tmr_start(&api->tmr, 1000, tmr_handler, api);
}


static void tmr_handler(void *arg)
{
	mhd_run(arg);
}


static void epoll_h(int flags, void *arg)
{
	(void)flags;

	mhd_run(arg);
}


/** libmicrohttpd's messages (printf formats) as warnings of ours */
static void mhd_log(void *arg, const char *fmt, va_list ap)
{
	char buf[512];
	int n;
	(void)arg;

	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	if (n < 0)
		return;

	tlog_text(LOG_WARNING, "api", buf, strlen(buf));
}


static void api_destructor(void *arg)
{
	struct api *api = arg;
	struct le *le;

	tmr_cancel(&api->tmr);
	api_events_close(api);
	api->ctl = mem_deref(api->ctl);
	api->node = mem_deref(api->node);

	/* MHD frees suspended connections only once resumed */
	LIST_FOREACH(&api->reql, le) {
		struct api_req *req = le->data;

		req->q = mem_deref(req->q);
		req->reload = mem_deref(req->reload);
		if (req->suspended) {
			req->suspended = false;
			MHD_resume_connection(req->conn);
		}
	}

	if (api->epfd >= 0)
		fd_close(api->epfd);

	if (api->mhd)
		MHD_stop_daemon(api->mhd);

	list_flush(&api->reql);
	mem_deref((void *)api->cfg);
}


/** Does the configuration ask for the API (a token or an open path)? */
bool api_enabled(const struct api_conf *cfg)
{
	return cfg && (!list_isempty(&cfg->tokenl) || cfg->api_open_health ||
		       cfg->api_open_metrics);
}


/**
 * Start the REST API on cfg->api_listen
 *
 * @param apip     where to store it
 * @param cfg      configuration (borrowed)
 * @param realm    digest realm of the accounts' HA1 (borrowed)
 * @param db       asynchronous database client (borrowed)
 * @param b2bua    the B2BUA (borrowed; free the API first)
 * @param hooks    what the API asks of billing (copied; NULL if off)
 * @param relay    the media relay (borrowed, may be NULL)
 *
 * @return 0 if success
 */
int api_alloc(struct api **apip, const struct api_conf *cfg,
	      const char *realm, struct db *db, struct b2bua *b2bua,
	      const struct api_hooks *hooks, struct media_relay *relay)
{
	const union MHD_DaemonInfo *info;
	struct api *api;
	struct sa sa;
	unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
		MHD_USE_ERROR_LOG;
	int err;

	if (!apip || !cfg || !realm || !db || !b2bua)
		return EINVAL;

	api = mem_zalloc(sizeof(*api), api_destructor);
	if (!api)
		return ENOMEM;

	api->cfg = mem_ref((void *)cfg);
	api->reload_ok_ms = b2bua_wallclock_ms();
	api->realm = realm;
	api->db = db;
	api->b2bua = b2bua;
	if (hooks) {
		api->hooks = *hooks;
		api->billing = true;
	}
	api->relay = relay;
	api->epfd = -1;
	api->start_jif = tmr_jiffies();
	list_init(&api->reql);
	list_init(&api->subl);
	tmr_init(&api->tmr);
	tmr_init(&api->ev_tmr);

	err  = api_accounts_register(db);
	err |= api_catalog_register(db);
	err |= api_deck_register(db);
	err |= api_limits_register(db);
	err |= api_cdrs_register(db);
	err |= api_rates_csv_register(db);
	err |= api_status_register(db);
	err |= api_control_register(db);
	err |= api_cluster_register(db);
	if (err) {
		err = EINVAL;
		goto out;
	}

	sa = cfg->api_listen;
	if (sa_af(&sa) == AF_INET6)
		flags |= MHD_USE_IPv6;

	/* the logger first: MHD logs what it parses after it with its own
	 * (and complains on stderr when it is not first) */
	api->mhd = MHD_start_daemon(flags, sa_port(&sa), NULL, NULL,
				    access_h, api,
				    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, api,
				    MHD_OPTION_SOCK_ADDR, &sa.u.sa,
				    MHD_OPTION_NOTIFY_COMPLETED, completed_h,
				    api,
				    MHD_OPTION_CONNECTION_TIMEOUT,
				    (unsigned)30,
				    MHD_OPTION_CONNECTION_LIMIT,
				    (unsigned)4096,
				    MHD_OPTION_LISTEN_BACKLOG_SIZE,
				    (unsigned)1024,
				    MHD_OPTION_END);
	if (!api->mhd) {
		err = errno ? errno : EADDRINUSE;
		tlog_err(NULL, "api: cannot listen on %J: %m",
			 &cfg->api_listen, err);
		goto out;
	}

	info = MHD_get_daemon_info(api->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (!info) {
		err = ENOTSUP;
		goto out;
	}

	api->epfd = info->epoll_fd;
	err = fd_listen(api->epfd, FD_READ, epoll_h, api);
	if (err)
		goto out;

	err = b2bua_subscribe(b2bua, api_status_event, api);
	if (err)
		goto out;

	err = api_events_start(api);
	if (err)
		goto out;

	mhd_run(api);

	tlog_info(NULL, "api: listening on http://%J (%u tokens%s%s)",
		  &cfg->api_listen, list_count(&cfg->tokenl),
		  cfg->api_open_health ? ", health open" : "",
		  cfg->api_open_metrics ? ", metrics open" : "");

 out:
	if (err) {
		if (api->epfd >= 0)
			fd_close(api->epfd);
		api->epfd = -1;
		mem_deref(api);
	}
	else {
		*apip = api;
	}

	return err;
}


int api_debug(struct re_printf *pf, const struct api *api)
{
	if (!api)
		return 0;

	return re_hprintf(pf, "api: %llu requests, %llu 2xx, %llu 4xx, "
			  "%llu 5xx, %u open; control messages: %llu sent, "
			  "%llu acted on, %llu malformed\n",
			  (unsigned long long)api->requests,
			  (unsigned long long)api->responses[2],
			  (unsigned long long)api->responses[4],
			  (unsigned long long)api->responses[5],
			  list_count(&api->reql),
			  (unsigned long long)api->ctl_sent,
			  (unsigned long long)api->ctl_heard[API_CTL_DONE],
			  (unsigned long long)api->ctl_heard[API_CTL_BAD]);
}
