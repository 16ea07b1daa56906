/**
 * @file route_store.c  Gateways and routes kept in PostgreSQL
 *
 * The database holds the routing table; the configuration file owns what
 * it names.  b2bua_store_start() writes the configuration's `gateway` and
 * `route` lines to the gateways and routes tables (tg_routes_sync of
 * sql/006: created or updated to match, entries of an earlier
 * configuration removed, entries made through the REST API kept), then
 * loads the whole table and routes new calls by it (b2bua_set_routes).
 * Until the first load, calls are routed by the configuration file.
 *
 * The table is loaded again after b2bua_store_reload() (the API's
 * changes) and whenever the tables change in the database (NOTIFY
 * tollgate_routes, db_listen_alloc()).  Calls in progress keep the table
 * they were routed by.
 */

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <libpq-fe.h>
#include "db.h"
#include "b2bua_int.h"


enum { STORE_RETRY_MS = 5000, STORE_TIMEOUT_MS = 5000, STORE_GWV = 64,
       STORE_DECK_TIMEOUT_MS = 30000 };

static const char stmt_sync[]  = "b2bua_routes_sync";
static const char stmt_load[]  = "b2bua_routes_load";
static const char stmt_decks[] = "b2bua_decks_load";
static const char stmt_rules[] = "b2bua_rules_load";

struct route_store {
	struct b2bua *b;             /**< borrowed: the B2BUA owns us    */
	struct db *db;               /**< borrowed                       */
	struct db_query *q;          /**< owned; sync or load in flight  */
	struct db_listen *lsn;       /**< owned; NOTIFY tollgate_routes  */
	struct tmr tmr;              /**< retry of a failed query        */
	struct list waitl;           /**< struct b2bua_reload, borrowed  */
	char *cfgjson;               /**< owned; the config's entries    */
	struct b2bua_routes *building; /**< owned; table being loaded    */
	uint32_t prices;             /**< in its decks                   */
	bool synced;                 /**< the config is in the database  */
	bool again;                  /**< load again when this one ends  */
	uint64_t started;            /**< loads started                  */
	uint64_t inflight;           /**< number of the one in flight    */
	uint64_t loaded;             /**< tables handed to the B2BUA     */
};

/** A caller waiting for a load that includes its change */
struct b2bua_reload {
	struct le le;                /**< route_store.waitl              */
	struct route_store *rs;      /**< borrowed; NULL once it is gone */
	uint64_t need;               /**< load number that answers it    */
	b2bua_reload_h *h;
	void *arg;
};


static void store_next(struct route_store *rs);


static void retry_handler(void *arg)
{
	store_next(arg);
}


/* columns: gateway name, address, transport, route prefix, carrier,
   route mode (see stmt_load) */
static int table_build(struct b2bua_routes **rtp, const PGresult *res)
{
	struct b2bua_routes *rt;
	const char *gwv[STORE_GWV];
	uint32_t gwc = 0;
	int i, n = PQntuples(res), err;

	if (PQnfields(res) != 6)
		return EPROTO;

	err = b2bua_routes_alloc(&rt);
	if (err)
		return err;

	for (i = 0; i < n; i++) {
		const char *name = PQgetvalue(res, i, 0);
		const char *a = PQgetvalue(res, i, 1);
		const char *tps = PQgetvalue(res, i, 2);
		enum sip_transp tp = !strcmp(tps, "tcp") ? SIP_TRANSP_TCP :
			!strcmp(tps, "tls") ? SIP_TRANSP_TLS : SIP_TRANSP_UDP;
		struct sa sa;

		if (PQgetisnull(res, i, 0))
			continue;

		if (sa_decode(&sa, a, strlen(a))) {
			tlog_warn(NULL, "b2bua: gateway %s: bad address '%s':"
				  " skipped", name, a);
			continue;
		}

		err = b2bua_routes_add_gateway(rt, name, &sa, tp);
		if (err && err != EEXIST)
			goto out;
		err = 0;

		if (!PQgetisnull(res, i, 4)) {
			err = b2bua_routes_gateway_carrier(rt, name,
						PQgetvalue(res, i, 4));
			if (err)
				goto out;
		}
	}

	/* rows come by prefix, then position: one route per prefix */
	for (i = 0; i < n; i++) {
		const char *prefix;

		if (PQgetisnull(res, i, 3))
			continue;

		prefix = PQgetvalue(res, i, 3);

		if (!strcmp(PQgetvalue(res, i, 5), "lcr")) {
			err = b2bua_routes_add_lcr(rt, prefix);
			if (err == EEXIST) {
				tlog_warn(NULL, "b2bua: route '%s' is both "
					  "lcr and static: the first kept",
					  prefix);
				err = 0;
			}
			if (err)
				goto out;
			continue;
		}

		if (PQgetisnull(res, i, 0))
			continue;

		if (gwc < ARRAY_SIZE(gwv))
			gwv[gwc++] = PQgetvalue(res, i, 0);

		if (i + 1 < n && !PQgetisnull(res, i + 1, 3) &&
		    !PQgetisnull(res, i + 1, 0) &&
		    strcmp(PQgetvalue(res, i + 1, 5), "lcr") &&
		    !strcmp(PQgetvalue(res, i + 1, 3), prefix))
			continue;

		err = b2bua_routes_add_route(rt, prefix, gwv, gwc);
		if (err == ENOENT || err == EEXIST) {
			tlog_warn(NULL, "b2bua: route '%s' names a gateway "
				  "that cannot be used, or is lcr too: "
				  "skipped", prefix);
			err = 0;
		}
		if (err)
			goto out;
		gwc = 0;
	}

 out:
	if (err)
		mem_deref(rt);
	else
		*rtp = rt;

	return err;
}


static int64_t col_i64(const PGresult *res, int row, int col, int64_t null)
{
	if (PQgetisnull(res, row, col))
		return null;

	return strtoll(PQgetvalue(res, row, col), NULL, 10);
}


/* columns: carrier, preference, prefix, connect fee, price a minute,
   increments, valid from and to (ms; NULL: unbounded) (stmt_decks) */
static int decks_build(struct b2bua_routes *rt, const PGresult *res,
		       uint32_t *pricesp)
{
	const char *last = NULL;
	int i, n = PQntuples(res), err = 0;
	uint32_t prices = 0, bad = 0;

	if (PQnfields(res) != 9)
		return EPROTO;

	for (i = 0; i < n; i++) {
		const char *name = PQgetvalue(res, i, 0);
		struct b2bua_tariff t;

		if (!last || strcmp(last, name)) {
			err = b2bua_routes_add_carrier(rt, name,
				(int32_t)col_i64(res, i, 1, 0));
			if (err && err != EEXIST)
				return err;
			last = name;
		}

		if (PQgetisnull(res, i, 2))
			continue;

		t.connect_fee = col_i64(res, i, 3, -1);
		t.per_minute  = col_i64(res, i, 4, -1);
		t.initial     = (uint32_t)col_i64(res, i, 5, 0);
		t.subsequent  = (uint32_t)col_i64(res, i, 6, 0);

		err = b2bua_routes_add_price(rt, name, PQgetvalue(res, i, 2),
					     &t, col_i64(res, i, 7, INT64_MIN),
					     col_i64(res, i, 8, INT64_MAX));
		if (err == EINVAL) {
			++bad;
			continue;
		}
		if (err)
			return err;
		++prices;
	}

	if (bad)
		tlog_warn(NULL, "b2bua: %u carrier prices not usable: "
			  "skipped", bad);
	*pricesp = prices;

	return 0;
}


/* columns: direction, rule, configuration line, id (stmt_rules) */
static int rules_build(struct b2bua_routes *rt, const PGresult *res)
{
	int i, n = PQntuples(res), err;

	if (PQnfields(res) != 4)
		return EPROTO;

	err = b2bua_routes_add_xlat(rt, B2BUA_XLAT_IN, NULL, 0, NULL, 0);
	if (err)
		return err;

	for (i = 0; i < n; i++) {
		enum b2bua_xlat_dir dir = strcmp(PQgetvalue(res, i, 0), "in")
			? B2BUA_XLAT_OUT : B2BUA_XLAT_IN;
		char why[128] = "";

		err = b2bua_routes_add_xlat(rt, dir, PQgetvalue(res, i, 1),
				(unsigned)col_i64(res, i, 2, 0), why,
				sizeof(why));
		if (err == EINVAL) {
			tlog_warn(NULL, "b2bua: number rule %s ('%s'): %s: "
				  "skipped", PQgetvalue(res, i, 3),
				  PQgetvalue(res, i, 1), why);
			continue;
		}
		if (err)
			return err;
	}

	return 0;
}


/* answer the callers whose change the load that ended includes */
static void waiters_reply(struct route_store *rs, int err)
{
	struct le *le = list_head(&rs->waitl);

	while (le) {
		struct b2bua_reload *w = le->data;

		le = le->next;
		if (w->need > rs->inflight)
			continue;

		list_unlink(&w->le);
		w->rs = NULL;
		w->h(err, w->arg);
	}
}


static void load_failed(struct route_store *rs, int err)
{
	rs->building = mem_deref(rs->building);
	tlog_warn(NULL, "b2bua: cannot load gateways, routes, decks and "
		  "number rules (%m): routing unchanged, trying again", err);
	tmr_start(&rs->tmr, STORE_RETRY_MS, retry_handler, rs);
	waiters_reply(rs, err);
}


static void rules_done(int err, const struct pg_result *pres, void *arg)
{
	struct route_store *rs = arg;
	struct b2bua_routes *rt = rs->building;

	if (!err)
		err = rules_build(rt, (const PGresult *)pres);
	if (!err)
		err = b2bua_routes_seal(rt);
	if (err) {
		load_failed(rs, err);
		return;
	}

	rs->building = NULL;
	b2bua_set_routes(rs->b, rt);
	++rs->loaded;
	tlog_info(NULL, "b2bua: routing by the database: %u routes, %u "
		  "carriers (%u prices), %u number rules",
		  b2bua_routes_count(rt), b2bua_routes_carriers(rt),
		  rs->prices, list_count(b2bua_routes_xlat(rt)));
	mem_deref(rt);

	waiters_reply(rs, 0);

	if (rs->again && !tmr_isrunning(&rs->tmr)) {
		rs->again = false;
		store_next(rs);
	}
}


static void decks_done(int err, const struct pg_result *pres, void *arg)
{
	struct route_store *rs = arg;

	if (!err)
		err = decks_build(rs->building, (const PGresult *)pres,
				  &rs->prices);
	if (!err)
		err = db_exec(&rs->q, rs->db, stmt_rules, 0, NULL,
			      STORE_TIMEOUT_MS, true, rules_done, rs);
	if (err)
		load_failed(rs, err);
}


static void load_done(int err, const struct pg_result *pres, void *arg)
{
	struct route_store *rs = arg;

	rs->building = mem_deref(rs->building);

	if (!err)
		err = table_build(&rs->building, (const PGresult *)pres);
	if (!err)
		err = db_exec(&rs->q, rs->db, stmt_decks, 0, NULL,
			      STORE_DECK_TIMEOUT_MS, true, decks_done, rs);
	if (err)
		load_failed(rs, err);
}


static void sync_done(int err, const struct pg_result *pres, void *arg)
{
	struct route_store *rs = arg;
	const PGresult *res = (const PGresult *)pres;
	const struct b2bua_conf *cfg = rs->b->cfg;

	if (!err && PQntuples(res) != 1)
		err = EPROTO;
	if (err) {
		tlog_warn(NULL, "b2bua: cannot write the configuration's "
			  "gateways and routes to the database (%m): routing"
			  " by %s for now, trying again", err,
			  cfg->file ? cfg->file : "the configuration");
		tmr_start(&rs->tmr, STORE_RETRY_MS, retry_handler, rs);
		return;
	}

	rs->synced = true;
	tlog_info(NULL, "b2bua: gateways and routes of %s written to the "
		  "database (%s gateways, %s routes; %s gateways and %s route"
		  " entries no longer in it removed)",
		  cfg->file ? cfg->file : "the configuration",
		  PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1),
		  PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 3));

	store_next(rs);
}


/* sync first, then loads; one query at a time */
static void store_next(struct route_store *rs)
{
	const char *v[1];
	int err;

	if (rs->q || tmr_isrunning(&rs->tmr)) {
		rs->again = true;
		return;
	}

	if (!rs->synced) {
		v[0] = rs->cfgjson;
		err = db_exec(&rs->q, rs->db, stmt_sync, 1, v,
			      STORE_TIMEOUT_MS, true, sync_done, rs);
	}
	else {
		rs->again = false;
		err = db_exec(&rs->q, rs->db, stmt_load, 0, NULL,
			      STORE_TIMEOUT_MS, true, load_done, rs);
		if (!err)
			rs->inflight = ++rs->started;
	}

	if (err) {
		tlog_warn(NULL, "b2bua: routing table query: %m", err);
		tmr_start(&rs->tmr, STORE_RETRY_MS, retry_handler, rs);
	}
}


/* ------------------------------------------ the configuration as JSON */

static int gateways_print(struct re_printf *pf, const struct b2bua_conf *cfg)
{
	struct le *le;
	int err = 0;

	LIST_FOREACH(&cfg->gatewayl, le) {
		const struct cfg_gateway *gw = le->data;

		err |= re_hprintf(pf, "%s{\"name\":\"%H\",\"address\":\"%J\","
				  "\"transport\":\"%s\",\"line\":%u",
				  le == list_head(&cfg->gatewayl) ? "" : ",",
				  utf8_encode, gw->name, &gw->addr,
				  cfg_transp_name(gw->tp),
				  gw->line);
		if (gw->carrier)
			err |= re_hprintf(pf, ",\"carrier\":\"%H\"",
					  utf8_encode, gw->carrier);
		err |= re_hprintf(pf, "}");
	}

	return err;
}


static int routes_print(struct re_printf *pf, const struct b2bua_conf *cfg)
{
	struct le *le;
	int err = 0;

	LIST_FOREACH(&cfg->routel, le) {
		const struct cfg_route *r = le->data;
		uint32_t i;

		err |= re_hprintf(pf, "%s{\"prefix\":\"%H\",\"line\":%u,"
				  "\"lcr\":%s,\"gateways\":[",
				  le == list_head(&cfg->routel) ? "" : ",",
				  utf8_encode, r->prefix, r->line,
				  r->lcr ? "true" : "false");
		for (i = 0; i < r->gwc; i++)
			err |= re_hprintf(pf, "%s\"%H\"", i ? "," : "",
					  utf8_encode, r->gwv[i]->name);
		err |= re_hprintf(pf, "]}");
	}

	return err;
}


static int rules_print(struct re_printf *pf, const struct b2bua_conf *cfg)
{
	struct le *le;
	int err = 0;

	LIST_FOREACH(&cfg->xlatl, le) {
		const struct b2bua_xlat *x = le->data;
		char *text = NULL;

		err |= re_sdprintf(&text, "%H", b2bua_xlat_print, x);
		if (err)
			break;
		err |= re_hprintf(pf, "%s{\"direction\":\"%s\","
				  "\"rule\":\"%H\",\"line\":%u}",
				  le == list_head(&cfg->xlatl) ? "" : ",",
				  x->dir == B2BUA_XLAT_IN ? "in" : "out",
				  utf8_encode, text, x->line);
		mem_deref(text);
	}

	return err;
}


static int config_json(char **jsonp, const struct b2bua_conf *cfg)
{
	char *path = cfg->file ? realpath(cfg->file, NULL) : NULL;
	const char *file = path ? path : cfg->file ? cfg->file : "";
	int err;

	err = re_sdprintf(jsonp, "{\"file\":\"%H\",\"gateways\":[%H],"
			  "\"routes\":[%H],\"rules\":[%H]}", utf8_encode,
			  file, gateways_print, cfg, routes_print, cfg,
			  rules_print, cfg);
	free(path);

	return err;
}


/* ---------------------------------------------------------- interface */

static void store_destructor(void *arg)
{
	struct route_store *rs = arg;
	struct le *le;

	tmr_cancel(&rs->tmr);
	mem_deref(rs->q);
	mem_deref(rs->lsn);
	while ((le = list_head(&rs->waitl)) != NULL) {
		struct b2bua_reload *w = le->data;

		list_unlink(&w->le);
		w->rs = NULL;
	}
	mem_deref(rs->cfgjson);
	mem_deref(rs->building);
}


/* a change notified, or the LISTEN (again) in effect: changes made while
 * it was down are not notified, so load the table again either way */
static void changed_handler(const char *payload, void *arg)
{
	(void)payload;
	store_next(arg);
}


/**
 * Keep the routing table in the database: write the configuration's
 * gateways and routes to it, then route new calls by the table it holds,
 * loaded again after every change.  Queries run on the event loop.
 *
 * @param b         the B2BUA
 * @param db        asynchronous database client (outlives the B2BUA)
 * @param conninfo  for the connection that listens for changes
 *
 * @return 0, EINVAL, EALREADY (started before), ENOMEM
 */
int b2bua_store_start(struct b2bua *b, struct db *db, const char *conninfo)
{
	struct route_store *rs;
	int err;

	if (!b || !db || !conninfo)
		return EINVAL;

	if (b->store)
		return EALREADY;

	rs = mem_zalloc(sizeof(*rs), store_destructor);
	if (!rs)
		return ENOMEM;

	rs->b = b;
	rs->db = db;
	tmr_init(&rs->tmr);
	list_init(&rs->waitl);

	err = config_json(&rs->cfgjson, b->cfg);
	if (err)
		goto out;

	err  = db_prepare(db, stmt_sync, "SELECT gateways, routes,"
			  " gateways_removed, routes_removed"
			  " FROM tg_routes_sync($1::jsonb)", 1);
	err |= db_prepare(db, stmt_load, "SELECT g.name, g.address,"
			  " g.transport, r.prefix, c.name, r.mode"
			  " FROM gateways g"
			  " LEFT JOIN carriers c ON c.id = g.carrier_id"
			  " FULL JOIN routes r ON r.gateway_id = g.id"
			  " ORDER BY r.prefix NULLS FIRST, r.position, r.id",
			  0);
	err |= db_prepare(db, stmt_decks, "SELECT c.name, c.preference,"
			  " d.prefix, d.connect_fee, d.price_per_minute,"
			  " d.initial_increment, d.subsequent_increment,"
			  " CASE WHEN isfinite(d.valid_from) THEN"
			  " (extract(epoch FROM d.valid_from) * 1000)::bigint"
			  " END, CASE WHEN isfinite(d.valid_to) THEN"
			  " (extract(epoch FROM d.valid_to) * 1000)::bigint"
			  " END FROM carriers c LEFT JOIN carrier_rates d"
			  " ON d.carrier_id = c.id AND d.valid_to > now()"
			  " ORDER BY c.id", 0);
	err |= db_prepare(db, stmt_rules, "SELECT direction, rule,"
			  " coalesce(config_line, 0), id FROM number_rules"
			  " ORDER BY origin = 'api', position, id", 0);
	if (err)
		goto out;

	err = db_listen_alloc(&rs->lsn, conninfo, "tollgate_routes",
			      changed_handler, rs);
	if (err)
		goto out;

	b->store = rs;
	store_next(rs);

 out:
	if (err)
		mem_deref(rs);

	return err;
}


/**
 * The B2BUA has a new configuration: its gateways and routes are written
 * to the database again (those of the old one no longer in it removed,
 * the API's kept), then the table is loaded again
 */
void store_reconf(struct route_store *rs)
{
	char *json = NULL;
	int err;

	if (!rs)
		return;

	err = config_json(&json, rs->b->cfg);
	if (err) {
		tlog_warn(NULL, "b2bua: the new configuration's gateways and "
			  "routes: %m", err);
		return;
	}

	mem_deref(rs->cfgjson);
	rs->cfgjson = json;
	rs->synced = false;
	tmr_cancel(&rs->tmr);
	store_next(rs);
}


static void reload_destructor(void *arg)
{
	struct b2bua_reload *w = arg;

	if (w->rs)
		list_unlink(&w->le);
}


/**
 * Load the routing table again, e.g. after a change of the gateways or
 * routes tables.  h is called once a load that started after this call
 * has ended (err 0: new calls are routed by it), unless *rlp is
 * dereferenced first.
 *
 * @return 0, EINVAL, ENOENT (b2bua_store_start() was not called), ENOMEM
 */
int b2bua_store_reload(struct b2bua_reload **rlp, struct b2bua *b,
		       b2bua_reload_h *h, void *arg)
{
	struct route_store *rs;
	struct b2bua_reload *w;

	if (!rlp || !b || !h)
		return EINVAL;

	rs = b->store;
	if (!rs)
		return ENOENT;

	w = mem_zalloc(sizeof(*w), reload_destructor);
	if (!w)
		return ENOMEM;

	w->rs = rs;
	w->need = rs->started + 1;
	w->h = h;
	w->arg = arg;
	list_append(&rs->waitl, &w->le, w);

	store_next(rs);
	*rlp = w;

	return 0;
}


/** Number of routing tables loaded from the database so far */
uint64_t b2bua_store_loads(const struct b2bua *b)
{
	return b && b->store ? b->store->loaded : 0;
}
