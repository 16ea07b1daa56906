/**
 * @file catalog.c  REST API: rates, gateways and routes
 *
 *   GET/POST /v1/rates, DELETE /v1/rates/{id}
 *   GET/POST /v1/gateways, DELETE /v1/gateways/{id}
 *   GET/POST /v1/routes, DELETE /v1/routes/{id}
 *
 * Gateways and routes live in PostgreSQL, where the B2BUA keeps them
 * (b2bua/route_store.c).  The configuration file owns what it names:
 * entries with origin 'config' are read-only here (409 naming the file
 * and line), and a route prefix the configuration names takes no gateway
 * through the API.  After a change the B2BUA loads the table again
 * (b2bua_store_reload); the change is answered once the new table is in
 * use.
 */

#include <string.h>
#include <libpq-fe.h>
#include "api_int.h"


#define TS(col) "CASE WHEN isfinite(" col ") THEN to_char(" col \
	" AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') END"

#define RATE_COLS "r.id, r.rate_plan_id, p.name, r.prefix, r.connect_fee," \
	" r.price_per_minute, r.initial_increment, r.subsequent_increment," \
	" " TS("r.valid_from")

#define SOURCE(t) "CASE WHEN " t ".origin = 'config' THEN " t \
	".config_file || ':' || " t ".config_line END"

enum { NAME_MAX_LEN = 64, PREFIX_MAX_LEN = 32, INCREMENT_MAX = 3600 };

static const char stmt_rate_list[]   = "api_rate_list";
static const char stmt_rate_insert[] = "api_rate_insert";
static const char stmt_rate_delete[] = "api_rate_delete";
static const char stmt_gw_list[]     = "api_gw_list";
static const char stmt_gw_insert[]   = "api_gw_insert";
static const char stmt_gw_delete[]   = "api_gw_delete";
static const char stmt_rt_list[]     = "api_rt_list";
static const char stmt_rt_insert[]   = "api_rt_insert";
static const char stmt_rt_delete[]   = "api_rt_delete";


int api_catalog_register(struct db *db)
{
	int err = 0;

	err |= db_prepare(db, stmt_rate_list, "SELECT " RATE_COLS
			  " FROM rates r JOIN rate_plans p"
			  " ON p.id = r.rate_plan_id"
			  " WHERE $1::bigint IS NULL OR r.rate_plan_id = $1"
			  " ORDER BY r.rate_plan_id, r.prefix, r.valid_from,"
			  " r.id", 1);
	err |= db_prepare(db, stmt_rate_insert,
			  "WITH p AS (INSERT INTO rate_plans (name)"
			  " VALUES ($1) ON CONFLICT (name) DO UPDATE"
			  " SET name = EXCLUDED.name RETURNING id, name),"
			  " r AS (INSERT INTO rates (rate_plan_id, prefix,"
			  " connect_fee, price_per_minute, initial_increment,"
			  " subsequent_increment, valid_from)"
			  " SELECT p.id, $2, $3::bigint, $4::bigint,"
			  " $5::integer, $6::integer,"
			  " coalesce($7::timestamptz, '-infinity') FROM p"
			  " RETURNING *)"
			  " SELECT " RATE_COLS " FROM r JOIN p"
			  " ON p.id = r.rate_plan_id", 7);
	err |= db_prepare(db, stmt_rate_delete, "DELETE FROM rates"
			  " WHERE id = $1::bigint RETURNING id, 'api', NULL,"
			  " NULL", 1);

	err |= db_prepare(db, stmt_gw_list, "SELECT g.id, g.name,"
			  " g.address, g.transport, g.origin, " SOURCE("g")
			  " FROM gateways g ORDER BY g.id", 0);
	err |= db_prepare(db, stmt_gw_insert, "INSERT INTO gateways (name,"
			  " address, transport) VALUES ($1, $2, $3)"
			  " RETURNING id, name, address, transport, origin,"
			  " NULL", 3);
	/* the configuration's gateways stay */
	err |= db_prepare(db, stmt_gw_delete, "WITH t AS (SELECT * FROM"
			  " gateways WHERE id = $1::bigint),"
			  " d AS (DELETE FROM gateways g USING t"
			  " WHERE g.id = t.id AND t.origin = 'api')"
			  " SELECT t.id, t.origin, t.name, " SOURCE("t")
			  " FROM t", 1);

	err |= db_prepare(db, stmt_rt_list, "SELECT r.id, r.prefix,"
			  " r.position, g.name, r.gateway_id, r.origin, "
			  SOURCE("r") " FROM routes r"
			  " JOIN gateways g ON g.id = r.gateway_id"
			  " ORDER BY r.prefix, r.position, r.id", 0);
	/* not to a prefix of the configuration's: a row naming its line */
	err |= db_prepare(db, stmt_rt_insert, "WITH c AS (SELECT " SOURCE("r")
			  " AS src FROM routes r WHERE r.prefix = $1"
			  " AND r.origin = 'config' LIMIT 1),"
			  " i AS (INSERT INTO routes (prefix, position,"
			  " gateway_id) SELECT $1, $2::integer, g.id"
			  " FROM gateways g WHERE g.name = $3"
			  " AND NOT EXISTS (SELECT 1 FROM c)"
			  " RETURNING id, prefix, position, gateway_id, origin)"
			  " SELECT id, prefix, position, $3, gateway_id, origin,"
			  " NULL FROM i UNION ALL SELECT NULL, $1, NULL, $3,"
			  " NULL, 'config', src FROM c", 3);
	err |= db_prepare(db, stmt_rt_delete, "WITH t AS (SELECT * FROM"
			  " routes WHERE id = $1::bigint),"
			  " d AS (DELETE FROM routes r USING t"
			  " WHERE r.id = t.id AND t.origin = 'api')"
			  " SELECT t.id, t.origin, t.prefix, " SOURCE("t")
			  " FROM t", 1);

	return err;
}


static void reloaded(int err, void *arg)
{
	struct api_req *req = arg;
	(void)err;

	/* the change is in the database whether the load worked or not */
	req->reload = mem_deref(req->reload);
	api_reply(req, (unsigned)req->n, req->ctx);
}


/* reply once the new table is loaded: od is the reply body (a ref.) */
static void reload_then_reply(struct api_req *req, unsigned status,
			      struct odict *od)
{
	struct api *api = req->api;
	int err;

	req->ctx = mem_deref(req->ctx);
	req->ctx = mem_ref(od);
	req->n = status;

	req->reload = mem_deref(req->reload);
	err = b2bua_store_reload(&req->reload, api->b2bua, reloaded, req);
	if (err) {
		tlog_warn(NULL, "api: routing table not reloaded: %m", err);
		api_reply(req, status, od);
	}
}


/* -------------------------------------------------------------- helpers */

static bool name_ok(const char *s)
{
	size_t l = strlen(s);

	return l >= 1 && l <= NAME_MAX_LEN &&
		strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		       "0123456789._-") == l;
}


static bool prefix_ok(const char *s)
{
	size_t l = strlen(s);

	return l <= PREFIX_MAX_LEN && strspn(s, "0123456789") == l;
}




static void rows_reply(struct api_req *req, const PGresult *res,
		       const char *key, const struct api_col *colv,
		       size_t colc)
{
	struct odict *od = NULL;
	int err;

	err = odict_alloc(&od, 4);
	if (!err)
		err = api_rows(od, key, (const struct pg_result *)res, colv,
			       colc);

	if (err)
		api_error(req, 500, NULL, "out of memory");
	else
		api_reply(req, 200, od);

	mem_deref(od);
}


static void one_reply(struct api_req *req, const PGresult *res,
		      const struct api_col *colv, size_t colc, bool reload)
{
	struct odict *o;

	if (api_row(&o, res, 0, colv, colc)) {
		api_error(req, 500, NULL, "out of memory");
		return;
	}

	if (reload)
		reload_then_reply(req, 201, o);
	else
		api_reply(req, 201, o);

	mem_deref(o);
}


/* 409 for an entry of the configuration file: "route 4420 is set by
 * /etc/tollgate/tollgate.conf:12" (what: "gateway" or "route") */
static void owned_error(struct api_req *req, const char *field,
			const char *what, const char *name, const char *src)
{
	if (!strcmp(what, "route") && !*name)
		api_error(req, 409, field, "the default route is set by %s;"
			  " change it there", src);
	else
		api_error(req, 409, field, "%s %s is set by %s; change it "
			  "there", what, name, src);
}


static void delete_done(int err, const struct pg_result *res, void *arg)
{
	struct api_req *req = arg;
	const PGresult *r = (const PGresult *)res;
	struct odict *od;

	if (err) {
		api_db_error(req, err, res, "id", "this object");
		return;
	}

	if (PQntuples(r) != 1) {
		api_error(req, 404, "id", "no object with id %r", &req->id);
		return;
	}

	if (!strcmp(PQgetvalue(r, 0, 1), "config")) {
		owned_error(req, "id", req->route->h == api_gateway_h ?
			    "gateway" : "route", PQgetvalue(r, 0, 2),
			    PQgetvalue(r, 0, 3));
		return;
	}

	if (odict_alloc(&od, 4) ||
	    odict_entry_add(od, "deleted", ODICT_INT,
			    (int64_t)strtoll(PQgetvalue(r, 0, 0), NULL,
					     10))) {
		api_error(req, 500, NULL, "out of memory");
		return;
	}

	/* rates do not touch routing */
	if (req->route->h == api_rate_h)
		api_reply(req, 200, od);
	else
		reload_then_reply(req, 200, od);

	mem_deref(od);
}


static void delete_by_id(struct api_req *req, const char *stmt)
{
	char ids[24];
	const char *v[1];
	int64_t id;

	if (api_id(req, &id))
		return;

	(void)re_snprintf(ids, sizeof(ids), "%lld", (long long)id);
	v[0] = ids;
	(void)api_exec(req, stmt, 1, v, delete_done);
}


/* ---------------------------------------------------------------- rates */

static const struct api_col rate_cols[] = {
	{"id", 0, 'i'},
	{"rate_plan_id", 1, 'i'},
	{"rate_plan", 2, 's'},
	{"prefix", 3, 's'},
	{"connect_fee", 4, 'm'},
	{"price_per_minute", 5, 'm'},
	{"initial_increment", 6, 'i'},
	{"subsequent_increment", 7, 'i'},
	{"valid_from", 8, 's'},
};


static void rate_list_done(int err, const struct pg_result *res, void *arg)
{
	struct api_req *req = arg;

	if (err)
		api_db_error(req, err, res, NULL, "rates");
	else
		rows_reply(req, (const PGresult *)res, "rates",
			   API_COLS(rate_cols));
}


static void rate_insert_done(int err, const struct pg_result *res,
			     void *arg)
{
	struct api_req *req = arg;

	if (err) {
		api_db_error(req, err, res, "prefix", "a rate for this plan,"
			     " prefix and valid_from");
		return;
	}

	one_reply(req, (const PGresult *)res, API_COLS(rate_cols), false);
}


static const char *const rate_fields[] = {
	"rate_plan", "prefix", "connect_fee", "price_per_minute",
	"initial_increment", "subsequent_increment", "valid_from", NULL
};


static void rate_create(struct api_req *req)
{
	struct odict *od;
	const char *plan, *prefix, *from = NULL, *v[7];
	int64_t cf = 0, ppm, ini = 60, sub = 60;
	char cfs[24], ppms[24], inis[16], subs[16];
	int err;

	if (api_body(req, &od, rate_fields))
		return;

	if (api_get_str(req, od, "rate_plan", true, false, &plan))
		goto out;
	if (!name_ok(plan)) {
		api_error(req, 400, "rate_plan", "1 to %u letters, digits or"
			  " ._-", NAME_MAX_LEN);
		goto out;
	}

	if (api_get_str(req, od, "prefix", true, false, &prefix))
		goto out;
	if (!prefix_ok(prefix)) {
		api_error(req, 400, "prefix", "0 to %u digits",
			  PREFIX_MAX_LEN);
		goto out;
	}

	if (api_get_money(req, od, "connect_fee", false, &cf) == EINVAL ||
	    api_get_money(req, od, "price_per_minute", true, &ppm) ||
	    api_get_int(req, od, "initial_increment", false, 1,
			INCREMENT_MAX, &ini) == EINVAL ||
	    api_get_int(req, od, "subsequent_increment", false, 1,
			INCREMENT_MAX, &sub) == EINVAL)
		goto out;

	err = api_get_str(req, od, "valid_from", false, false, &from);
	if (err == EINVAL)
		goto out;
	if (!err && api_time_valid(from)) {
		api_error(req, 400, "valid_from", "an RFC 3339 date or "
			  "date-time");
		goto out;
	}

	(void)re_snprintf(cfs, sizeof(cfs), "%lld", (long long)cf);
	(void)re_snprintf(ppms, sizeof(ppms), "%lld", (long long)ppm);
	(void)re_snprintf(inis, sizeof(inis), "%lld", (long long)ini);
	(void)re_snprintf(subs, sizeof(subs), "%lld", (long long)sub);
	v[0] = plan;
	v[1] = prefix;
	v[2] = cfs;
	v[3] = ppms;
	v[4] = inis;
	v[5] = subs;
	v[6] = from;

	(void)api_exec(req, stmt_rate_insert, 7, v, rate_insert_done);

 out:
	mem_deref(od);
}


/** GET /v1/rates?rate_plan_id=, POST /v1/rates */
void api_rates_h(struct api_req *req)
{
	int64_t plan;
	char plans[24];
	const char *v[1] = { NULL };
	int err;

	if (req->meth == API_POST) {
		rate_create(req);
		return;
	}

	err = api_arg_int(req, "rate_plan_id", 1, INT64_MAX, &plan);
	if (err == EINVAL)
		return;
	if (!err) {
		(void)re_snprintf(plans, sizeof(plans), "%lld",
				  (long long)plan);
		v[0] = plans;
	}

	(void)api_exec(req, stmt_rate_list, 1, v, rate_list_done);
}


/** DELETE /v1/rates/{id}: 409 while a running call uses the rate */
void api_rate_h(struct api_req *req)
{
	delete_by_id(req, stmt_rate_delete);
}


/* ------------------------------------------------------------- gateways */

static const struct api_col gw_cols[] = {
	{"id", 0, 'i'},
	{"name", 1, 's'},
	{"address", 2, 's'},
	{"transport", 3, 's'},
	{"origin", 4, 's'},
	{"config", 5, 's'},
};


static void gw_list_done(int err, const struct pg_result *res, void *arg)
{
	struct api_req *req = arg;

	if (err)
		api_db_error(req, err, res, NULL, "gateways");
	else
		rows_reply(req, (const PGresult *)res, "gateways",
			   API_COLS(gw_cols));
}


static void gw_insert_done(int err, const struct pg_result *res, void *arg)
{
	struct api_req *req = arg;

	if (err) {
		api_db_error(req, err, res, "name", "a gateway with this "
			     "name");
		return;
	}

	one_reply(req, (const PGresult *)res, API_COLS(gw_cols), true);
}


static const char *const gw_fields[] = {
	"name", "address", "transport", NULL
};


static void gw_create(struct api_req *req)
{
	struct odict *od;
	const char *name, *addr, *tp = "udp", *v[3];
	char norm[64];
	struct sa sa;
	int err;

	if (api_body(req, &od, gw_fields))
		return;

	if (api_get_str(req, od, "name", true, false, &name))
		goto out;
	if (!name_ok(name)) {
		api_error(req, 400, "name", "1 to %u letters, digits or ._-",
			  NAME_MAX_LEN);
		goto out;
	}

	if (api_get_str(req, od, "address", true, false, &addr))
		goto out;
	if (sa_decode(&sa, addr, strlen(addr)) || !sa_port(&sa)) {
		api_error(req, 400, "address", "an IP address and port, "
			  "e.g. \"192.0.2.1:5060\" or \"[2001:db8::1]:5060\"");
		goto out;
	}

	err = api_get_str(req, od, "transport", false, false, &tp);
	if (err == EINVAL)
		goto out;
	if (err)
		tp = "udp";
	if (strcmp(tp, "udp") && strcmp(tp, "tcp")) {
		api_error(req, 400, "transport", "must be \"udp\" or \"tcp\"");
		goto out;
	}

	(void)re_snprintf(norm, sizeof(norm), "%J", &sa);
	v[0] = name;
	v[1] = norm;
	v[2] = tp;

	(void)api_exec(req, stmt_gw_insert, 3, v, gw_insert_done);

 out:
	mem_deref(od);
}


/** GET, POST /v1/gateways */
void api_gateways_h(struct api_req *req)
{
	if (req->meth == API_POST)
		gw_create(req);
	else
		(void)api_exec(req, stmt_gw_list, 0, NULL, gw_list_done);
}


/** DELETE /v1/gateways/{id}: its routes go with it */
void api_gateway_h(struct api_req *req)
{
	delete_by_id(req, stmt_gw_delete);
}


/* --------------------------------------------------------------- routes */

static const struct api_col rt_cols[] = {
	{"id", 0, 'i'},
	{"prefix", 1, 's'},
	{"position", 2, 'i'},
	{"gateway", 3, 's'},
	{"gateway_id", 4, 'i'},
	{"origin", 5, 's'},
	{"config", 6, 's'},
};


static void rt_list_done(int err, const struct pg_result *res, void *arg)
{
	struct api_req *req = arg;

	if (err)
		api_db_error(req, err, res, NULL, "routes");
	else
		rows_reply(req, (const PGresult *)res, "routes",
			   API_COLS(rt_cols));
}


static void rt_insert_done(int err, const struct pg_result *res, void *arg)
{
	struct api_req *req = arg;

	if (err) {
		api_db_error(req, err, res, "prefix", "a route for this "
			     "prefix and gateway");
		return;
	}

	if (PQntuples((const PGresult *)res) != 1) {
		api_error(req, 400, "gateway", "no such gateway");
		return;
	}

	if (PQgetisnull((const PGresult *)res, 0, 0)) {
		owned_error(req, "prefix", "route",
			    PQgetvalue((const PGresult *)res, 0, 1),
			    PQgetvalue((const PGresult *)res, 0, 6));
		return;
	}

	one_reply(req, (const PGresult *)res, API_COLS(rt_cols), true);
}


static const char *const rt_fields[] = {
	"prefix", "gateway", "position", NULL
};


static void rt_create(struct api_req *req)
{
	struct odict *od;
	const char *prefix, *gw, *v[3];
	int64_t pos = 0;
	char poss[16];

	if (api_body(req, &od, rt_fields))
		return;

	if (api_get_str(req, od, "prefix", true, false, &prefix))
		goto out;
	if (!strcmp(prefix, "default"))
		prefix = "";
	if (!prefix_ok(prefix)) {
		api_error(req, 400, "prefix", "0 to %u digits, or \"default\"",
			  PREFIX_MAX_LEN);
		goto out;
	}

	if (api_get_str(req, od, "gateway", true, false, &gw))
		goto out;
	if (!name_ok(gw)) {
		api_error(req, 400, "gateway", "a gateway name");
		goto out;
	}

	if (api_get_int(req, od, "position", false, 0, 1000, &pos) ==
	    EINVAL)
		goto out;

	(void)re_snprintf(poss, sizeof(poss), "%lld", (long long)pos);
	v[0] = prefix;
	v[1] = poss;
	v[2] = gw;

	(void)api_exec(req, stmt_rt_insert, 3, v, rt_insert_done);

 out:
	mem_deref(od);
}


/** GET, POST /v1/routes */
void api_routes_h(struct api_req *req)
{
	if (req->meth == API_POST)
		rt_create(req);
	else
		(void)api_exec(req, stmt_rt_list, 0, NULL, rt_list_done);
}


/** DELETE /v1/routes/{id} */
void api_route_h(struct api_req *req)
{
	delete_by_id(req, stmt_rt_delete);
}
