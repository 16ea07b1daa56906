/**
 * @file gateways.c  REST API: the health, limits and counts of gateways
 *
 *   GET /v1/gateways          the database's rows, each with its health
 *   GET /v1/gateways/{name}   one gateway of the routing table in use
 *
 * The rows come from PostgreSQL (api/catalog.c); what this node knows of
 * each gateway (b2bua/gateway.c: state, probes, calls, limits, counts)
 * is added to them from memory.  The same counts feed /metrics
 * (api_gw_metrics), where a group of gateways (a label) is the sum of
 * its members' counts.
 */

#include <string.h>
#include "api_int.h"


static int add_limit(struct odict *od, const char *key, uint32_t v)
{
	return v ? odict_entry_add(od, key, ODICT_INT, (int64_t)v) :
		odict_entry_add(od, key, ODICT_NULL);
}


/** Answer seizure ratio of counts, -1 without attempts */
double api_gw_asr(const struct b2bua_gw_counts *c)
{
	return c->attempts ? (double)c->answered / (double)c->attempts : -1;
}


/** Average call duration in seconds, -1 without an ended answered call */
double api_gw_acd(const struct b2bua_gw_counts *c)
{
	return c->talked ? (double)c->talk_ms / 1000.0 / (double)c->talked
		: -1;
}


static int add_ratio(struct odict *od, const char *key, double v)
{
	/* three decimals, exact in the JSON text */
	return v < 0 ? odict_entry_add(od, key, ODICT_NULL) :
		odict_entry_add(od, key, ODICT_DOUBLE,
				(double)(int64_t)(v * 1000 + 0.5) / 1000);
}


static int probe_odict(struct odict **odp, const struct b2bua_gw_info *gi)
{
	const struct cfg_gw_health *h = &gi->h;
	struct odict *od = NULL, *last = NULL;
	int err;

	err  = odict_alloc(&od, 8);
	if (err)
		return err;

	err |= odict_entry_add(od, "interval_s", ODICT_INT,
			       (int64_t)h->probe);
	err |= odict_entry_add(od, "timeout_ms", ODICT_INT,
			       (int64_t)h->probe_timeout);
	err |= odict_entry_add(od, "fail", ODICT_INT, (int64_t)h->fail);
	err |= odict_entry_add(od, "recover", ODICT_INT,
			       (int64_t)h->recover);
	err |= odict_entry_add(od, "burst", ODICT_INT, (int64_t)h->burst);
	err |= odict_entry_add(od, "ok", ODICT_INT,
			       (int64_t)gi->c.probes_ok);
	err |= odict_entry_add(od, "failed", ODICT_INT,
			       (int64_t)gi->c.probes_failed);

	if (!gi->probe_ms) {
		err |= odict_entry_add(od, "last", ODICT_NULL);
		goto out;
	}

	err |= odict_alloc(&last, 4);
	if (err)
		goto out;

	err |= api_add_time(last, "at", gi->probe_ms);
	err |= odict_entry_add(last, "result", ODICT_STRING,
			       gi->probe_ok ? "ok" : "failed");
	err |= gi->probe_code ?
		odict_entry_add(last, "code", ODICT_INT,
				(int64_t)gi->probe_code) :
		odict_entry_add(last, "code", ODICT_NULL);
	err |= odict_entry_add(last, "rtt_ms", ODICT_INT,
			       (int64_t)gi->probe_rtt_ms);
	err |= odict_entry_add(od, "last", ODICT_OBJECT, last);

 out:
	mem_deref(last);
	if (err)
		mem_deref(od);
	else
		*odp = od;

	return err;
}


/** Add what this node knows of a gateway to its JSON object */
int api_gw_health_add(struct odict *od, const struct b2bua_gw_info *gi)
{
	const struct b2bua_gw_counts *c = &gi->c;
	struct odict *fail = NULL, *skip = NULL, *probe = NULL;
	unsigned i;
	int err;

	err  = odict_alloc(&fail, 8);
	err |= odict_alloc(&skip, 4);
	if (err)
		goto out;

	for (i = 0; i < B2BUA_GWF_COUNT; i++)
		err |= odict_entry_add(fail, b2bua_gw_fail_name(i), ODICT_INT,
				       (int64_t)c->failed[i]);
	for (i = 0; i < B2BUA_GWS_COUNT; i++)
		err |= odict_entry_add(skip, b2bua_gw_skip_name(i), ODICT_INT,
				       (int64_t)c->skipped[i]);

	err |= odict_entry_add(od, "state", ODICT_STRING,
			       b2bua_gw_state_name(gi->state));
	err |= api_add_time(od, "since", gi->since_ms);
	err |= odict_entry_add(od, "state_reason", ODICT_STRING,
			       gi->reason ? gi->reason : "");
	if (gi->h.probe) {
		err |= probe_odict(&probe, gi);
		if (!err)
			err = odict_entry_add(od, "probe", ODICT_OBJECT,
					      probe);
	}
	else {
		err |= odict_entry_add(od, "probe", ODICT_NULL);
	}
	err |= odict_entry_add(od, "calls", ODICT_INT, (int64_t)c->calls);
	err |= add_limit(od, "max_calls", gi->h.max_calls);
	err |= add_limit(od, "cps", gi->h.cps);
	err |= odict_entry_add(od, "attempts", ODICT_INT,
			       (int64_t)c->attempts);
	err |= odict_entry_add(od, "answered", ODICT_INT,
			       (int64_t)c->answered);
	err |= odict_entry_add(od, "failures", ODICT_OBJECT, fail);
	err |= odict_entry_add(od, "skipped", ODICT_OBJECT, skip);
	err |= add_ratio(od, "asr", api_gw_asr(c));
	err |= add_ratio(od, "acd_s", api_gw_acd(c));
	err |= odict_entry_add(od, "went_down", ODICT_INT,
			       (int64_t)c->went_down);
	err |= odict_entry_add(od, "went_up", ODICT_INT,
			       (int64_t)c->went_up);

 out:
	mem_deref(fail);
	mem_deref(skip);
	mem_deref(probe);

	return err;
}


struct add_ctx {
	int err;
	struct odict *od;
};


static bool ctx_h(const struct b2bua_gw_info *gi, void *arg)
{
	struct add_ctx *ctx = arg;

	ctx->err = api_gw_health_add(ctx->od, gi);

	return true;
}


/* a row not in the routing table in use (yet): nothing known of it */
static int unknown_add(struct odict *od, const char *name)
{
	struct b2bua_gw_info gi;

	memset(&gi, 0, sizeof(gi));
	gi.name = name;
	gi.state = B2BUA_GW_UNPROBED;
	gi.reason = "not in the routing table in use";

	return api_gw_health_add(od, &gi);
}


/**
 * Add each gateway's health to the rows of GET /v1/gateways (od holds
 * the array "gateways" of objects with a "name")
 */
int api_gw_rows_health(struct api *api, struct odict *od)
{
	const struct odict_entry *arr = odict_lookup(od, "gateways");
	struct le *le;
	int err = 0;

	if (!arr || arr->type != ODICT_ARRAY)
		return 0;

	LIST_FOREACH(&arr->u.odict->lst, le) {
		const struct odict_entry *e = le->data;
		const struct odict_entry *name;
		struct add_ctx ctx = { ENOENT, NULL };

		if (e->type != ODICT_OBJECT)
			continue;

		name = odict_lookup(e->u.odict, "name");
		if (!name || name->type != ODICT_STRING)
			continue;

		ctx.od = e->u.odict;
		if (b2bua_gw_find(api->b2bua, name->u.str, ctx_h, &ctx))
			ctx.err = unknown_add(e->u.odict, name->u.str);
		err |= ctx.err;
	}

	return err;
}


static bool one_h(const struct b2bua_gw_info *gi, void *arg)
{
	struct add_ctx *ctx = arg;
	char addr[64];
	int err;

	(void)re_snprintf(addr, sizeof(addr), "%J", gi->addr);
	err  = odict_entry_add(ctx->od, "name", ODICT_STRING, gi->name);
	err |= odict_entry_add(ctx->od, "address", ODICT_STRING, addr);
	err |= odict_entry_add(ctx->od, "transport", ODICT_STRING,
			       cfg_transp_name(gi->tp));
	err |= api_gw_health_add(ctx->od, gi);
	ctx->err = err;

	return true;
}


/** GET /v1/gateways/{name}: from this node's routing table */
void api_gateway_get(struct api_req *req)
{
	struct add_ctx ctx = { 0, NULL };
	char name[72];

	if (!req->id.l || req->id.l >= sizeof(name)) {
		api_error(req, 404, "name", "no gateway %r", &req->id);
		return;
	}

	pl_strcpy(&req->id, name, sizeof(name));

	if (odict_alloc(&ctx.od, 16)) {
		api_error(req, 500, NULL, "out of memory");
		return;
	}

	if (b2bua_gw_find(req->api->b2bua, name, one_h, &ctx))
		api_error(req, 404, "name", "no gateway %s in the routing "
			  "table in use", name);
	else if (ctx.err)
		api_error(req, 500, NULL, "out of memory");
	else
		api_reply(req, 200, ctx.od);

	mem_deref(ctx.od);
}


/* ------------------------------------------------------------ metrics */

struct series {
	const char *name, *type, *help;
};

enum gw_metric {
	GM_UP = 0, GM_CALLS, GM_ATTEMPTS, GM_ANSWERED, GM_FAILURES,
	GM_SKIPPED, GM_ASR, GM_ACD, GM_PROBES, GM_CHANGES, GM_COUNT
};

static const struct series gmv[GM_COUNT] = {
	[GM_UP] = { "tollgate_gateway_up", "gauge",
		"Gateways in routing (not down)" },
	[GM_CALLS] = { "tollgate_gateway_calls", "gauge",
		"Calls holding a channel of the gateway" },
	[GM_ATTEMPTS] = { "tollgate_gateway_attempts_total", "counter",
		"INVITEs sent to the gateway" },
	[GM_ANSWERED] = { "tollgate_gateway_answered_total", "counter",
		"INVITEs the gateway answered 2xx" },
	[GM_FAILURES] = { "tollgate_gateway_failures_total", "counter",
		"INVITEs that failed at the gateway, by class" },
	[GM_SKIPPED] = { "tollgate_gateway_skipped_total", "counter",
		"Calls that passed the gateway over: down or at a limit" },
	[GM_ASR] = { "tollgate_gateway_asr", "gauge",
		"Answered INVITEs per INVITE sent (answer seizure ratio)" },
	[GM_ACD] = { "tollgate_gateway_acd_seconds", "gauge",
		"Average duration of the answered calls that ended" },
	[GM_PROBES] = { "tollgate_gateway_probes_total", "counter",
		"OPTIONS probes of the gateway, by result" },
	[GM_CHANGES] = { "tollgate_gateway_state_changes_total", "counter",
		"Times the gateway went down or up" },
};


/* the series of one metric, named n, for one label value */
static int series_print(struct mbuf *mb, enum gw_metric m, const char *n,
			const char *lbl, const char *val,
			const struct b2bua_gw_counts *c)
{
	uint64_t milli;
	unsigned i;
	double d;
	int err = 0;

	switch (m) {

	case GM_UP:
		return mbuf_printf(mb, "%s{%s=\"%s\"} %u\n", n, lbl, val,
				   c->up);
	case GM_CALLS:
		return mbuf_printf(mb, "%s{%s=\"%s\"} %u\n", n, lbl, val,
				   c->calls);
	case GM_ATTEMPTS:
		return mbuf_printf(mb, "%s{%s=\"%s\"} %llu\n", n, lbl, val,
				   (unsigned long long)c->attempts);
	case GM_ANSWERED:
		return mbuf_printf(mb, "%s{%s=\"%s\"} %llu\n", n, lbl, val,
				   (unsigned long long)c->answered);
	case GM_FAILURES:
		for (i = 0; i < B2BUA_GWF_COUNT; i++)
			err |= mbuf_printf(mb, "%s{%s=\"%s\",class=\"%s\"} "
					   "%llu\n", n, lbl, val,
					   b2bua_gw_fail_name(i),
					   (unsigned long long)c->failed[i]);
		return err;
	case GM_SKIPPED:
		for (i = 0; i < B2BUA_GWS_COUNT; i++)
			err |= mbuf_printf(mb, "%s{%s=\"%s\",why=\"%s\"} "
					   "%llu\n", n, lbl, val,
					   b2bua_gw_skip_name(i),
					   (unsigned long long)c->skipped[i]);
		return err;
	case GM_ASR:
	case GM_ACD:
		d = m == GM_ASR ? api_gw_asr(c) : api_gw_acd(c);
		milli = d < 0 ? 0 : (uint64_t)(d * 1000 + 0.5);
		return mbuf_printf(mb, "%s{%s=\"%s\"} %llu.%03llu\n", n, lbl,
				   val, (unsigned long long)(milli / 1000),
				   (unsigned long long)(milli % 1000));
	case GM_PROBES:
		return mbuf_printf(mb, "%s{%s=\"%s\",result=\"ok\"} %llu\n"
				   "%s{%s=\"%s\",result=\"failed\"} %llu\n",
				   n, lbl, val,
				   (unsigned long long)c->probes_ok,
				   n, lbl, val,
				   (unsigned long long)c->probes_failed);
	case GM_CHANGES:
		return mbuf_printf(mb, "%s{%s=\"%s\",to=\"down\"} %llu\n"
				   "%s{%s=\"%s\",to=\"up\"} %llu\n",
				   n, lbl, val,
				   (unsigned long long)c->went_down,
				   n, lbl, val,
				   (unsigned long long)c->went_up);
	default:
		return 0;
	}
}


struct metric_ctx {
	struct mbuf *mb;
	enum gw_metric m;
	int err;
};


static bool metric_h(const struct b2bua_gw_info *gi, void *arg)
{
	struct metric_ctx *ctx = arg;

	ctx->err |= series_print(ctx->mb, ctx->m, gmv[ctx->m].name,
				 "gateway", gi->name, &gi->c);

	return false;
}


/* the counters of one carrier: the sum of its gateways' */
struct carrier_sum {
	struct le le;
	char name[65];
	struct b2bua_gw_counts c;
};


static bool carrier_h(const struct b2bua_gw_info *gi, void *arg)
{
	struct list *l = arg;
	struct carrier_sum *cs = NULL;
	struct le *le;

	if (!gi->carrier)
		return false;

	LIST_FOREACH(l, le) {
		struct carrier_sum *x = le->data;

		if (!strcmp(x->name, gi->carrier)) {
			cs = x;
			break;
		}
	}

	if (!cs) {
		cs = mem_zalloc(sizeof(*cs), NULL);
		if (!cs)
			return true;
		str_ncpy(cs->name, gi->carrier, sizeof(cs->name));
		list_append(l, &cs->le, cs);
	}

	b2bua_gw_counts_add(&cs->c, &gi->c);

	return false;
}


/* the series that make sense for a carrier, and their names */
static const struct {
	enum gw_metric m;
	const char *name;
	const char *help;
} cmv[] = {
	{ GM_CALLS, "tollgate_carrier_calls",
	  "Calls holding a channel of the carrier's gateways" },
	{ GM_ATTEMPTS, "tollgate_carrier_attempts_total",
	  "INVITEs sent to the carrier's gateways" },
	{ GM_ANSWERED, "tollgate_carrier_answered_total",
	  "INVITEs the carrier's gateways answered 2xx" },
	{ GM_FAILURES, "tollgate_carrier_failures_total",
	  "INVITEs that failed at the carrier's gateways, by class" },
	{ GM_ASR, "tollgate_carrier_asr",
	  "Answered INVITEs per INVITE sent to the carrier" },
	{ GM_ACD, "tollgate_carrier_acd_seconds",
	  "Average duration of the carrier's answered calls that ended" },
};


/**
 * The per-gateway series of /metrics, then the per-carrier ones (the
 * sums of b2bua_gw_counts_add() over a carrier's gateways, under
 * tollgate_carrier_* names so that no sum counts a call twice).
 */
int api_gw_metrics(struct mbuf *mb, const struct b2bua *b)
{
	struct metric_ctx ctx = { mb, GM_UP, 0 };
	struct list carriers = LIST_INIT;
	unsigned m;
	struct le *le;

	for (m = 0; m < GM_COUNT; m++) {
		ctx.m = (enum gw_metric)m;
		ctx.err |= mbuf_printf(mb, "# HELP %s %s\n# TYPE %s %s\n",
				       gmv[m].name, gmv[m].help, gmv[m].name,
				       gmv[m].type);
		b2bua_gw_apply(b, metric_h, &ctx);
	}

	b2bua_gw_apply(b, carrier_h, &carriers);

	for (m = 0; m < ARRAY_SIZE(cmv); m++) {
		ctx.err |= mbuf_printf(mb, "# HELP %s %s\n# TYPE %s %s\n",
				       cmv[m].name, cmv[m].help, cmv[m].name,
				       gmv[cmv[m].m].type);
		LIST_FOREACH(&carriers, le) {
			const struct carrier_sum *cs = le->data;

			ctx.err |= series_print(mb, cmv[m].m, cmv[m].name,
						"carrier", cs->name, &cs->c);
		}
	}

	list_flush(&carriers);

	return ctx.err;
}
