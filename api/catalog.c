/**
 * @file catalog.c  REST API: rates, gateways and routes
 *
 *   GET/POST /v1/rates, DELETE /v1/rates/{id}
 *   GET/POST /v1/gateways, DELETE /v1/gateways/{id} (GET of one, and
 *   the health in the list: api/gateways.c)
 *   GET/POST /v1/routes, DELETE /v1/routes/{id}
 *   GET/POST /v1/number_rules, DELETE /v1/number_rules/{id}
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

#define RATE_COLS "r.id, r.rate_plan_id, p.name AS rate_plan, r.prefix," \
	" r.connect_fee, r.price_per_minute, r.initial_increment," \
	" r.subsequent_increment, " TS("r.valid_from") " AS valid_from"

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
static const char stmt_rt_insert_lcr[] = "api_rt_insert_lcr";
static const char stmt_rt_delete[]   = "api_rt_delete";
static const char stmt_nr_list[]    = "api_nr_list";
static const char stmt_nr_insert[]  = "api_nr_insert";
static const char stmt_nr_delete[]  = "api_nr_delete";


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
			  " g.address, g.transport, g.origin, " SOURCE("g") " AS config"
			  " FROM gateways g ORDER BY g.id", 0);
	err |= db_prepare(db, stmt_gw_insert, "INSERT INTO gateways (name,"
			  " address, transport) VALUES ($1, $2, $3)"
			  " RETURNING id, name, address, transport, origin,"
			  " NULL AS config", 3);
	/* the configuration's gateways stay */
	err |= db_prepare(db, stmt_gw_delete, "WITH t AS (SELECT * FROM"
			  " gateways WHERE id = $1::bigint),"
			  " d AS (DELETE FROM gateways g USING t"
			  " WHERE g.id = t.id AND t.origin = 'api')"
			  " SELECT t.id, t.origin, t.name, " SOURCE("t")
			  " FROM t", 1);

	err |= db_prepare(db, stmt_rt_list, "SELECT r.id, r.prefix,"
			  " r.position, g.name AS gateway, r.gateway_id,"
			  " r.origin, " SOURCE("r") " AS config, r.mode"
			  " FROM routes r"
			  " LEFT JOIN gateways g ON g.id = r.gateway_id"
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
			  " SELECT id, prefix, position, $3 AS gateway, gateway_id,"
			  " origin, NULL AS config, 'static' AS mode FROM i"
			  " UNION ALL SELECT NULL, $1, NULL, $3,"
			  " NULL, 'config', src, NULL FROM c", 3);
	/* a least-cost route: gateways from the carriers' decks */
	err |= db_prepare(db, stmt_rt_insert_lcr, "WITH c AS (SELECT "
			  SOURCE("r") " AS src FROM routes r WHERE r.prefix = $1"
			  " AND r.origin = 'config' LIMIT 1),"
			  " i AS (INSERT INTO routes (prefix, position,"
			  " gateway_id, mode) SELECT $1, $2::integer, NULL,"
			  " 'lcr' WHERE $3::text IS NULL"
			  " AND NOT EXISTS (SELECT 1 FROM c)"
			  " RETURNING id, prefix, position, gateway_id, origin,"
			  " mode)"
			  " SELECT id, prefix, position, NULL AS gateway,"
			  " gateway_id, origin, NULL AS config, mode FROM i"
			  " UNION ALL SELECT NULL, $1, NULL, NULL, NULL,"
			  " 'config', src, NULL FROM c", 3);
	err |= db_prepare(db, stmt_rt_delete, "WITH t AS (SELECT * FROM"
			  " routes WHERE id = $1::bigint),"
			  " d AS (DELETE FROM routes r USING t"
			  " WHERE r.id = t.id AND t.origin = 'api')"
			  " SELECT t.id, t.origin, t.prefix, " SOURCE("t")
			  " FROM t", 1);

	err |= db_prepare(db, stmt_nr_list, "SELECT n.id, n.direction,"
			  " n.position, n.rule, n.origin, " SOURCE("n")
			  " AS config FROM number_rules n"
			  " ORDER BY n.direction, n.origin = 'api',"
			  " n.position, n.id", 0);
	err |= db_prepare(db, stmt_nr_insert, "INSERT INTO number_rules"
			  " (direction, rule, position) VALUES ($1, $2,"
			  " $3::integer) RETURNING id, direction, position,"
			  " rule, origin, NULL AS config", 3);
	err |= db_prepare(db, stmt_nr_delete, "WITH t AS (SELECT * FROM"
			  " number_rules WHERE id = $1::bigint),"
			  " d AS (DELETE FROM number_rules n USING t"
			  " WHERE n.id = t.id AND t.origin = 'api')"
			  " SELECT t.id, t.origin, t.direction || ' rule ' ||"
			  " t.id, " SOURCE("t") " FROM t", 1);

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
		       const char *key, const char *types)
{
	struct odict *od = NULL;
	int err;

	err = odict_alloc(&od, 4);
	if (!err)
		err = api_rows(od, key, (const struct pg_result *)res, types);

	/* each gateway with what this node knows of it */
	if (!err && !strcmp(key, "gateways"))
		err = api_gw_rows_health(req->api, od);

	if (err)
		api_error(req, 500, NULL, "out of memory");
	else
		api_reply(req, 200, od);

	mem_deref(od);
}


static void one_reply(struct api_req *req, const PGresult *res,
		      const char *types, bool reload)
{
	struct odict *o;

	if (api_row(&o, res, 0, types)) {
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


/** An insert's parameters as text, checked from a POST body */
struct params {
	const char *v[7];            /**< borrowed from the body or num  */
	char num[4][64];             /**< numbers, an address, for v     */
	int n;
	const char *stmt;            /**< insert of its own, or NULL     */
};

/** Check a POST body into p: 0, or errno once the error is answered */
typedef int (params_h)(struct api_req *req, const struct odict *od,
		       struct params *p);


/* ---------------------------------------------------------------- rates */


static const char *const rate_fields[] = {
	"rate_plan", "prefix", "connect_fee", "price_per_minute",
	"initial_increment", "subsequent_increment", "valid_from", NULL
};


static int rate_params(struct api_req *req, const struct odict *od,
		       struct params *p)
{
	const char *plan, *prefix, *from = NULL;
	int64_t cf = 0, ppm, ini = 60, sub = 60;
	int err;

	if (api_get_str(req, od, "rate_plan", true, false, &plan))
		return EINVAL;
	if (!name_ok(plan)) {
		api_error(req, 400, "rate_plan", "1 to %u letters, digits or"
			  " ._-", NAME_MAX_LEN);
		return EINVAL;
	}

	if (api_get_str(req, od, "prefix", true, false, &prefix))
		return EINVAL;
	if (!prefix_ok(prefix)) {
		api_error(req, 400, "prefix", "0 to %u digits",
			  PREFIX_MAX_LEN);
		return EINVAL;
	}

	if (api_get_money(req, od, "connect_fee", false, &cf) == EINVAL ||
	    api_get_money(req, od, "price_per_minute", true, &ppm) ||
	    api_get_int(req, od, "initial_increment", false, 1,
			INCREMENT_MAX, &ini) == EINVAL ||
	    api_get_int(req, od, "subsequent_increment", false, 1,
			INCREMENT_MAX, &sub) == EINVAL)
		return EINVAL;

	err = api_get_str(req, od, "valid_from", false, false, &from);
	if (err == EINVAL)
		return EINVAL;
	if (!err && api_time_valid(from)) {
		api_error(req, 400, "valid_from", "an RFC 3339 date or "
			  "date-time");
		return EINVAL;
	}

	(void)re_snprintf(p->num[0], sizeof(p->num[0]), "%lld",
			  (long long)cf);
	(void)re_snprintf(p->num[1], sizeof(p->num[1]), "%lld",
			  (long long)ppm);
	(void)re_snprintf(p->num[2], sizeof(p->num[2]), "%lld",
			  (long long)ini);
	(void)re_snprintf(p->num[3], sizeof(p->num[3]), "%lld",
			  (long long)sub);
	p->v[0] = plan;
	p->v[1] = prefix;
	p->v[2] = p->num[0];
	p->v[3] = p->num[1];
	p->v[4] = p->num[2];
	p->v[5] = p->num[3];
	p->v[6] = from;
	p->n = 7;

	return 0;
}


/* ------------------------------------------------------------- gateways */


static const char *const gw_fields[] = {
	"name", "address", "transport", NULL
};


static int gw_params(struct api_req *req, const struct odict *od,
		     struct params *p)
{
	const char *name, *addr, *tp = "udp";
	struct sa sa;
	int err;

	if (api_get_str(req, od, "name", true, false, &name))
		return EINVAL;
	if (!name_ok(name)) {
		api_error(req, 400, "name", "1 to %u letters, digits or ._-",
			  NAME_MAX_LEN);
		return EINVAL;
	}

	if (api_get_str(req, od, "address", true, false, &addr))
		return EINVAL;
	if (sa_decode(&sa, addr, strlen(addr)) || !sa_port(&sa)) {
		api_error(req, 400, "address", "an IP address and port, "
			  "e.g. \"192.0.2.1:5060\" or \"[2001:db8::1]:5060\"");
		return EINVAL;
	}

	err = api_get_str(req, od, "transport", false, false, &tp);
	if (err == EINVAL)
		return EINVAL;
	if (err)
		tp = "udp";
	if (strcmp(tp, "udp") && strcmp(tp, "tcp") && strcmp(tp, "tls")) {
		api_error(req, 400, "transport",
			  "must be \"udp\", \"tcp\" or \"tls\"");
		return EINVAL;
	}

	/* the address normalised, e.g. [2001:db8::1]:5060 */
	(void)re_snprintf(p->num[0], sizeof(p->num[0]), "%J", &sa);
	p->v[0] = name;
	p->v[1] = p->num[0];
	p->v[2] = tp;
	p->n = 3;

	return 0;
}


/* --------------------------------------------------------------- routes */


static const char *const rt_fields[] = {
	"prefix", "gateway", "position", "mode", NULL
};


static int rt_params(struct api_req *req, const struct odict *od,
		     struct params *p)
{
	const char *prefix, *gw = NULL, *mode = "static";
	int64_t pos = 0;
	int err;

	if (api_get_str(req, od, "prefix", true, false, &prefix))
		return EINVAL;
	if (!strcmp(prefix, "default"))
		prefix = "";
	if (!prefix_ok(prefix)) {
		api_error(req, 400, "prefix", "0 to %u digits, or \"default\"",
			  PREFIX_MAX_LEN);
		return EINVAL;
	}

	err = api_get_str(req, od, "mode", false, false, &mode);
	if (err == EINVAL)
		return EINVAL;
	if (err)
		mode = "static";
	if (strcmp(mode, "static") && strcmp(mode, "lcr")) {
		api_error(req, 400, "mode", "must be \"static\" or \"lcr\"");
		return EINVAL;
	}

	if (!strcmp(mode, "lcr")) {
		if (odict_lookup(od, "gateway")) {
			api_error(req, 400, "gateway", "an lcr route takes its"
				  " gateways from the carriers' decks");
			return EINVAL;
		}
		p->stmt = stmt_rt_insert_lcr;
	}
	else if (api_get_str(req, od, "gateway", true, false, &gw)) {
		return EINVAL;
	}
	if (gw && !name_ok(gw)) {
		api_error(req, 400, "gateway", "a gateway name");
		return EINVAL;
	}

	if (api_get_int(req, od, "position", false, 0, 1000, &pos) ==
	    EINVAL)
		return EINVAL;

	(void)re_snprintf(p->num[0], sizeof(p->num[0]), "%lld",
			  (long long)pos);
	p->v[0] = prefix;
	p->v[1] = p->num[0];
	p->v[2] = gw;
	p->n = 3;

	return 0;
}


/* a route's insert: the gateway must exist, the prefix not be the file's */
static bool rt_refused(struct api_req *req, const PGresult *res)
{
	if (PQntuples(res) != 1) {
		api_error(req, 400, "gateway", "no such gateway");
		return true;
	}

	if (PQgetisnull(res, 0, 0)) {
		owned_error(req, "prefix", "route", PQgetvalue(res, 0, 1),
			    PQgetvalue(res, 0, 6));
		return true;
	}

	return false;
}


/* --------------------------------------------------------- number rules */


static const char *const nr_fields[] = {
	"direction", "rule", "position", NULL
};


/* the rule in the words of number_in / number_out, checked by the
   B2BUA's own parser */
static int nr_params(struct api_req *req, const struct odict *od,
		     struct params *p)
{
	const char *dir, *rule;
	struct b2bua_xlat *x = NULL;
	char why[128] = "";
	int64_t pos = 0;
	struct pl pl;
	int err;

	if (api_get_str(req, od, "direction", true, false, &dir))
		return EINVAL;
	if (strcmp(dir, "in") && strcmp(dir, "out")) {
		api_error(req, 400, "direction", "must be \"in\" or "
			  "\"out\"");
		return EINVAL;
	}

	if (api_get_str(req, od, "rule", true, false, &rule))
		return EINVAL;
	pl_set_str(&pl, rule);
	err = strlen(rule) > 512 ? EINVAL :
		b2bua_xlat_parse(&x, strcmp(dir, "in") ? B2BUA_XLAT_OUT :
				 B2BUA_XLAT_IN, &pl, why, sizeof(why));
	mem_deref(x);
	if (err) {
		api_error(req, 400, "rule", "%s", why[0] ? why :
			  "not a rule of number_in / number_out");
		return EINVAL;
	}

	if (api_get_int(req, od, "position", false, 0, 1000000, &pos) ==
	    EINVAL)
		return EINVAL;

	(void)re_snprintf(p->num[0], sizeof(p->num[0]), "%lld",
			  (long long)pos);
	p->v[0] = dir;
	p->v[1] = rule;
	p->v[2] = p->num[0];
	p->n = 3;

	return 0;
}


/* ---------------------------------------------------------- collections */

/** What rates, gateways and routes differ in */
struct collection {
	const char *key;             /**< the list's member: "rates"     */
	const char *what;            /**< one of them: "rate"            */
	const char *types;           /**< of the columns, for api_row    */
	const char *list, *insert, *del;  /**< statements                */
	const char *const *fields;   /**< a POST body's members          */
	params_h *params;
	const char *unique;          /**< field a duplicate names        */
	const char *dup;             /**< what a duplicate would repeat  */
	bool reload;                 /**< a change reloads the routing   */
	/** an insert's result refused (optional): true once answered */
	bool (*refused)(struct api_req *req, const PGresult *res);
};

static const struct collection rates = {
	"rates", "rate", "iissmmiis",
	stmt_rate_list, stmt_rate_insert, stmt_rate_delete,
	rate_fields, rate_params, "prefix",
	"a rate for this plan, prefix and valid_from", false, NULL
};

static const struct collection gateways = {
	"gateways", "gateway", "isssss",
	stmt_gw_list, stmt_gw_insert, stmt_gw_delete,
	gw_fields, gw_params, "name",
	"a gateway with this name", true, NULL
};

static const struct collection routes = {
	"routes", "route", "isisisss",
	stmt_rt_list, stmt_rt_insert, stmt_rt_delete,
	rt_fields, rt_params, "prefix",
	"a route for this prefix and gateway", true, rt_refused
};


static const struct collection number_rules = {
	"number_rules", "number rule", "isisss",
	stmt_nr_list, stmt_nr_insert, stmt_nr_delete,
	nr_fields, nr_params, "rule",
	"this rule", true, NULL
};


static const struct collection *coll_of(const struct api_req *req)
{
	api_h *h = req->route->h;

	if (h == api_number_rules_h || h == api_number_rule_h)
		return &number_rules;

	if (h == api_rates_h || h == api_rate_h)
		return &rates;

	if (h == api_gateways_h || h == api_gateway_h)
		return &gateways;

	return &routes;
}


static void list_done(int err, const struct pg_result *res, void *arg)
{
	struct api_req *req = arg;
	const struct collection *c = coll_of(req);

	if (err)
		api_db_error(req, err, res, NULL, c->key);
	else
		rows_reply(req, (const PGresult *)res, c->key, c->types);
}


static void insert_done(int err, const struct pg_result *res, void *arg)
{
	struct api_req *req = arg;
	const struct collection *c = coll_of(req);

	if (err) {
		api_db_error(req, err, res, c->unique, c->dup);
		return;
	}

	if (c->refused && c->refused(req, (const PGresult *)res))
		return;

	one_reply(req, (const PGresult *)res, c->types, c->reload);
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
		owned_error(req, "id", coll_of(req)->what,
			    PQgetvalue(r, 0, 2), PQgetvalue(r, 0, 3));
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
	if (!coll_of(req)->reload)
		api_reply(req, 200, od);
	else
		reload_then_reply(req, 200, od);

	mem_deref(od);
}


/* POST: the body checked into the insert's parameters */
static void create(struct api_req *req)
{
	const struct collection *c = coll_of(req);
	struct params p;
	struct odict *od;

	if (api_body(req, &od, c->fields))
		return;

	memset(&p, 0, sizeof(p));
	if (!c->params(req, od, &p))
		(void)api_exec(req, p.stmt ? p.stmt : c->insert, p.n, p.v,
			       insert_done);

	mem_deref(od);
}


static void list_or_create(struct api_req *req)
{
	if (req->meth == API_POST)
		create(req);
	else
		(void)api_exec(req, coll_of(req)->list, 0, NULL, list_done);
}


static void delete_by_id(struct api_req *req)
{
	char ids[24];
	const char *v[1];
	int64_t id;

	if (api_id(req, &id))
		return;

	(void)re_snprintf(ids, sizeof(ids), "%lld", (long long)id);
	v[0] = ids;
	(void)api_exec(req, coll_of(req)->del, 1, v, delete_done);
}


/* ------------------------------------------------------------- handlers */

/** GET /v1/rates?rate_plan_id=[&format=csv] (CSV: rates_csv.c),
    POST /v1/rates */
void api_rates_h(struct api_req *req)
{
	int64_t plan;
	char plans[24];
	const char *v[1] = { NULL };
	int err;

	if (req->meth == API_POST) {
		create(req);
		return;
	}

	if (api_wants_csv(req)) {
		api_rates_csv(req);
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

	(void)api_exec(req, stmt_rate_list, 1, v, list_done);
}


/** DELETE /v1/rates/{id}: 409 while a running call uses the rate */
void api_rate_h(struct api_req *req)
{
	delete_by_id(req);
}


/** GET, POST /v1/gateways */
void api_gateways_h(struct api_req *req)
{
	list_or_create(req);
}


/**
 * GET /v1/gateways/{name}: its health (api/gateways.c);
 * DELETE /v1/gateways/{id}: its routes go with it
 */
void api_gateway_h(struct api_req *req)
{
	if (req->meth == API_GET)
		api_gateway_get(req);
	else
		delete_by_id(req);
}


/** GET, POST /v1/routes */
void api_routes_h(struct api_req *req)
{
	list_or_create(req);
}


/** DELETE /v1/routes/{id} */
void api_route_h(struct api_req *req)
{
	delete_by_id(req);
}


/** GET, POST /v1/number_rules */
void api_number_rules_h(struct api_req *req)
{
	list_or_create(req);
}


/** DELETE /v1/number_rules/{id} */
void api_number_rule_h(struct api_req *req)
{
	delete_by_id(req);
}
