/**
 * @file conf_route.c  The B2BUA's gateways and routes in the
 *                     configuration: parse, resolve, look up and print
 */

#include <stddef.h>
#include <string.h>
#include "b2bua_int.h"


enum {
	CFG_MAX_PREFIX  = 32,           /* digits of a route prefix        */
	CFG_MAX_NAME    = 64,           /* gateway name                    */
	GW_ARGS_MAX     = 13,           /* words of a gateway line         */
};


static inline bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}


static bool pl_is_name(const struct pl *pl)
{
	size_t i;

	if (!pl->l || pl->l > CFG_MAX_NAME)
		return false;

	for (i = 0; i < pl->l; i++) {
		char c = pl->p[i];

		if (!(is_digit(c) || (c >= 'a' && c <= 'z') ||
		      (c >= 'A' && c <= 'Z')) &&
		    c != '-' && c != '_' && c != '.')
			return false;
	}

	return true;
}


static void gateway_destructor(void *arg)
{
	struct cfg_gateway *gw = arg;

	mem_deref(gw->name);
	mem_deref(gw->carrier);
}


static void route_destructor(void *arg)
{
	struct cfg_route *rt = arg;

	mem_deref(rt->prefix);
	mem_deref(rt->gwv);
	mem_deref(rt->gwnames);
}


/* the numeric options of a gateway line: name=, bounds, where they go */
static const struct gw_opt {
	const char *name;            /**< with its '='                   */
	const char *what;            /**< in messages                    */
	enum cfg_gw_opt bit;
	size_t off;                  /**< in struct cfg_gw_health        */
	uint32_t min, max;
} gw_optv[] = {
	{ "probe=", "probe", CFG_GW_PROBE,
	  offsetof(struct cfg_gw_health, probe), 0, 3600 },
	{ "probe_timeout=", "probe_timeout", CFG_GW_PROBE_TIMEOUT,
	  offsetof(struct cfg_gw_health, probe_timeout), 50, 60000 },
	{ "fail=", "fail", CFG_GW_FAIL,
	  offsetof(struct cfg_gw_health, fail), 1, 100 },
	{ "recover=", "recover", CFG_GW_RECOVER,
	  offsetof(struct cfg_gw_health, recover), 1, 100 },
	{ "burst=", "burst", CFG_GW_BURST,
	  offsetof(struct cfg_gw_health, burst), 0, 10000 },
	{ "max_calls=", "max_calls", CFG_GW_MAX_CALLS,
	  offsetof(struct cfg_gw_health, max_calls), 0, 1000000 },
	{ "cps=", "cps", CFG_GW_CPS,
	  offsetof(struct cfg_gw_health, cps), 0, 100000 },
};


/**
 * One KEY=VALUE option of a gateway line.  Each option is one entry
 * here (or in gw_optv), so that options are added without touching the
 * rest of the line's parser.
 */
static int gateway_opt(struct cfg_parser *p, struct cfg_gateway *gw,
		       bool *tp_given, const struct pl *arg)
{
	struct pl v = *arg;
	size_t i;

	if (cfg_pl_skip_prefix(&v, "transport=")) {
		if (*tp_given)
			return cfg_kerr(p, "transport given twice");
		*tp_given = true;
		return cfg_get_transport(p, &v, &gw->tp);
	}

	v = *arg;
	if (cfg_pl_skip_prefix(&v, "carrier=")) {
		if (gw->carrier)
			return cfg_kerr(p, "carrier= given twice");
		if (!pl_is_name(&v))
			return cfg_kerr(p, "'%r' is not a valid carrier name "
					"(letters, digits, '-', '_', '.'; at "
					"most %u)", &v, CFG_MAX_NAME);
		return pl_strdup(&gw->carrier, &v);
	}

	for (i = 0; i < ARRAY_SIZE(gw_optv); i++) {
		const struct gw_opt *o = &gw_optv[i];
		uint32_t *field = (uint32_t *)(void *)
			((char *)&gw->h + o->off);

		v = *arg;
		if (!cfg_pl_skip_prefix(&v, o->name))
			continue;

		if (gw->given & o->bit)
			return cfg_kerr(p, "%s given twice", o->what);

		gw->given |= o->bit;

		return cfg_get_u32(p, o->what, &v, o->min, o->max, field);
	}

	return cfg_kerr(p, "unknown option '%r' (expected transport=, carrier=, probe=,"
			" probe_timeout=, fail=, recover=, burst=, "
			"max_calls= or cps=)", arg);
}


int b2bua_conf_gateway(struct cfg_parser *p, void *mod,
		       const struct cfg_key *k, const struct pl *val)
{
	struct b2bua_conf *cfg = mod;
	const char *expect = "NAME ADDRESS[:PORT] [transport=udp|tcp|tls] "
		"[OPTION=VALUE...]";
	struct pl argv[GW_ARGS_MAX + 1];
	struct cfg_gateway *gw;
	const struct cfg_gateway *o;
	bool tp_given = false;
	unsigned n, i;
	int err;
	(void)k;

	n = cfg_split_args(val, argv, GW_ARGS_MAX + 1);
	if (n < 2 || n > GW_ARGS_MAX)
		return cfg_kerr(p, "'%r': expected %s", val, expect);

	if (!pl_is_name(&argv[0]))
		return cfg_kerr(p, "'%r' is not a valid gateway name (letters, "
				"digits, '-', '_', '.'; at most %u)", &argv[0],
				CFG_MAX_NAME);

	gw = mem_zalloc(sizeof(*gw), gateway_destructor);
	if (!gw)
		return ENOMEM;

	gw->line = cfg_line(p);
	gw->tp = SIP_TRANSP_UDP;

	err = pl_strdup(&gw->name, &argv[0]);
	if (err)
		goto out;

	o = cfg_gateway_find(cfg, gw->name);
	if (o) {
		err = cfg_kerr(p, "gateway '%s' already defined at line %u",
			       gw->name, o->line);
		goto out;
	}

	for (i = 2; i < n; i++) {
		err = gateway_opt(p, gw, &tp_given, &argv[i]);
		if (err)
			goto out;
	}

	err = cfg_get_hostport(p, &argv[1],
			       gw->tp == SIP_TRANSP_TLS ? 5061 : 5060,
			       &gw->addr);
	if (err)
		goto out;

	if (sa_is_any(&gw->addr)) {
		err = cfg_kerr(p, "'%r' is not a usable destination", &argv[1]);
		goto out;
	}

	list_append(&cfg->gatewayl, &gw->le, gw);

 out:
	if (err)
		mem_deref(gw);

	return err;
}


int b2bua_conf_route(struct cfg_parser *p, void *mod,
		     const struct cfg_key *k, const struct pl *val)
{
	struct b2bua_conf *cfg = mod;
	struct cfg_route *rt;
	struct pl prefix, names, rest;
	struct le *le;
	size_t i;
	int err;
	(void)k;

	if (cfg_split_args(val, &prefix, 1) < 2)
		return cfg_kerr(p, "'%r': expected PREFIX GATEWAY[,GATEWAY...]",
				val);

	names.p = prefix.p + prefix.l;
	names.l = val->l - (names.p - val->p);
	cfg_pl_trim(&names);

	if (!pl_strcmp(&prefix, "default")) {
		prefix.l = 0;
	}
	else {
		for (i = 0; i < prefix.l; i++) {
			if (!is_digit(prefix.p[i]))
				return cfg_kerr(p, "prefix '%r' must be digits "
						"or 'default'", &prefix);
		}
		if (prefix.l > CFG_MAX_PREFIX)
			return cfg_kerr(p, "prefix '%r' is longer than %u "
					"digits", &prefix, CFG_MAX_PREFIX);
	}

	LIST_FOREACH(&cfg->routel, le) {
		const struct cfg_route *o = le->data;

		if (pl_strcmp(&prefix, o->prefix))
			continue;

		if (prefix.l)
			return cfg_kerr(p, "duplicate prefix %r (first at line "
					"%u)", &prefix, o->line);
		else
			return cfg_kerr(p, "duplicate default route (first at "
					"line %u)", o->line);
	}

	if (!pl_strcmp(&names, "lcr")) {
		rt = mem_zalloc(sizeof(*rt), route_destructor);
		if (!rt)
			return ENOMEM;
		rt->line = cfg_line(p);
		rt->lcr = true;
		err = pl_strdup(&rt->prefix, &prefix);
		if (err) {
			mem_deref(rt);
			return err;
		}
		list_append(&cfg->routel, &rt->le, rt);
		return 0;
	}

	/* check the syntax of the gateway list now, resolve it at the end */
	rest = names;
	for (;;) {
		struct pl name, after;
		bool last = !cfg_pl_split(&rest, ',', &name, &after);

		if (last)
			name = rest;

		cfg_pl_trim(&name);
		if (!name.l)
			return cfg_kerr(p, "empty gateway name in '%r'",
					&names);

		if (!pl_is_name(&name))
			return cfg_kerr(p, "'%r' is not a valid gateway name",
					&name);

		if (last)
			break;

		rest = after;
	}

	rt = mem_zalloc(sizeof(*rt), route_destructor);
	if (!rt)
		return ENOMEM;

	rt->line = cfg_line(p);

	err = pl_strdup(&rt->prefix, &prefix);
	if (err)
		goto out;

	err = pl_strdup(&rt->gwnames, &names);
	if (err)
		goto out;

	list_append(&cfg->routel, &rt->le, rt);

 out:
	if (err)
		mem_deref(rt);

	return err;
}


/** Resolve the gateway names of a route once the whole file is read */
static int resolve_route(struct cfg_parser *p, struct b2bua_conf *cfg,
			 struct cfg_route *rt)
{
	struct pl rest;
	uint32_t n = 1;
	size_t i;
	int err = 0;

	pl_set_str(&rest, rt->gwnames);

	for (i = 0; i < rest.l; i++) {
		if (rest.p[i] == ',')
			++n;
	}

	rt->gwv = mem_zalloc(n * sizeof(*rt->gwv), NULL);
	if (!rt->gwv)
		return ENOMEM;

	cfg_set_line(p, rt->line);

	for (;;) {
		struct pl name, after;
		struct cfg_gateway *gw = NULL;
		bool last = !cfg_pl_split(&rest, ',', &name, &after);
		struct le *le;
		uint32_t j;

		if (last)
			name = rest;

		cfg_pl_trim(&name);

		LIST_FOREACH(&cfg->gatewayl, le) {
			struct cfg_gateway *g = le->data;

			if (!pl_strcmp(&name, g->name)) {
				gw = g;
				break;
			}
		}

		for (j = 0; gw && j < rt->gwc; j++) {
			if (rt->gwv[j] == gw)
				break;
		}

		if (!gw)
			err = cfg_err(p, "route %s: unknown gateway '%r'",
				      rt->prefix[0] ? rt->prefix : "default",
				      &name);
		else if (j < rt->gwc)
			err = cfg_err(p, "route %s: gateway '%r' listed twice",
				      rt->prefix[0] ? rt->prefix : "default",
				      &name);
		else
			rt->gwv[rt->gwc++] = gw;

		if (last)
			break;

		rest = after;
	}

	rt->gwnames = mem_deref(rt->gwnames);

	return err;
}


/**
 * The longest prefix of a number among a list of struct cfg_route; the
 * route with the empty prefix (the default) matches every number.  Of
 * equal prefixes the first in the list wins.
 *
 * @return The route, NULL if none matches
 */
const struct cfg_route *b2bua_route_match(const struct list *routel,
					  const char *number)
{
	const struct cfg_route *best = NULL;
	size_t bestlen = 0, n;
	struct le *le;

	n = strlen(number);

	LIST_FOREACH(routel, le) {
		const struct cfg_route *rt = le->data;
		size_t l = strlen(rt->prefix);

		if (l > n || (best && l <= bestlen))
			continue;

		if (!memcmp(number, rt->prefix, l)) {
			best = rt;
			bestlen = l;
		}
	}

	return best;
}


/**
 * Find the route for a number: the longest matching prefix, the default
 * route if no prefix matches.
 *
 * @return The route, NULL if there is none
 */
const struct cfg_route *cfg_route_find(const struct b2bua_conf *cfg,
				       const char *number)
{
	if (!cfg || !number)
		return NULL;

	return b2bua_route_match(&cfg->routel, number);
}


/** Find a gateway by name (case-sensitive) */
const struct cfg_gateway *cfg_gateway_find(const struct b2bua_conf *cfg,
					   const char *name)
{
	struct le *le;

	if (!cfg || !name)
		return NULL;

	LIST_FOREACH(&cfg->gatewayl, le) {
		const struct cfg_gateway *gw = le->data;

		if (!strcmp(gw->name, name))
			return gw;
	}

	return NULL;
}


/* a gateway's effective health settings: its line's, else the keys' */
static void resolve_gateway(struct cfg_parser *p, const struct b2bua_conf *cfg,
			    struct cfg_gateway *gw)
{
	const struct cfg_gw_health *d = &cfg->gw;
	struct cfg_gw_health *h = &gw->h;

	if (!(gw->given & CFG_GW_PROBE))         h->probe = d->probe;
	if (!(gw->given & CFG_GW_PROBE_TIMEOUT)) h->probe_timeout =
						 d->probe_timeout;
	if (!(gw->given & CFG_GW_FAIL))          h->fail = d->fail;
	if (!(gw->given & CFG_GW_RECOVER))       h->recover = d->recover;
	if (!(gw->given & CFG_GW_BURST))         h->burst = d->burst;
	if (!(gw->given & CFG_GW_MAX_CALLS))     h->max_calls = d->max_calls;
	if (!(gw->given & CFG_GW_CPS))           h->cps = d->cps;

	if (h->probe && h->probe_timeout > h->probe * 1000) {
		cfg_set_line(p, gw->line);
		(void)cfg_err(p, "gateway %s: probe_timeout %u ms is longer "
			      "than its probe interval (%u s)", gw->name,
			      h->probe_timeout, h->probe);
	}
}


/** Resolve every route's gateways (the check after the whole file) */
int b2bua_conf_resolve(struct cfg_parser *p, struct b2bua_conf *cfg)
{
	struct le *le;
	int err;

	LIST_FOREACH(&cfg->gatewayl, le)
		resolve_gateway(p, cfg, le->data);

	LIST_FOREACH(&cfg->routel, le) {
		const struct cfg_route *rt = le->data;

		if (rt->lcr)
			continue;
		err = resolve_route(p, cfg, le->data);
		if (err && err != EINVAL)
			return err;
	}

	return 0;
}


int b2bua_conf_print_gateway(struct re_printf *pf, const void *mod,
			     const struct cfg_key *k)
{
	const struct b2bua_conf *cfg = mod;
	struct le *le;
	int err = 0;

	LIST_FOREACH(&cfg->gatewayl, le) {
		const struct cfg_gateway *gw = le->data;

		const struct cfg_gw_health *h = &gw->h;

		err |= re_hprintf(pf, "%s %s %J transport=%s", k->name,
				  gw->name, &gw->addr,
				  cfg_transp_name(gw->tp));
		if (gw->carrier)
			err |= re_hprintf(pf, " carrier=%s", gw->carrier);
		if (h->probe)
			err |= re_hprintf(pf, " probe=%u probe_timeout=%u "
					  "fail=%u recover=%u burst=%u",
					  h->probe, h->probe_timeout, h->fail,
					  h->recover, h->burst);
		if (h->max_calls)
			err |= re_hprintf(pf, " max_calls=%u", h->max_calls);
		if (h->cps)
			err |= re_hprintf(pf, " cps=%u", h->cps);
		err |= re_hprintf(pf, "\n");
	}

	return err;
}


int b2bua_conf_print_route(struct re_printf *pf, const void *mod,
			   const struct cfg_key *k)
{
	const struct b2bua_conf *cfg = mod;
	struct le *le;
	int err = 0;

	LIST_FOREACH(&cfg->routel, le) {
		const struct cfg_route *rt = le->data;
		uint32_t j;

		err |= re_hprintf(pf, "%s %s ", k->name,
				  rt->prefix[0] ? rt->prefix : "default");
		if (rt->lcr)
			err |= re_hprintf(pf, "lcr");

		for (j = 0; j < rt->gwc; j++)
			err |= re_hprintf(pf, "%s%s", j ? "," : "",
					  rt->gwv[j]->name);

		err |= re_hprintf(pf, "\n");
	}

	return err;
}
