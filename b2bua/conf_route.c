/**
 * @file conf_route.c  The B2BUA's gateways and routes in the
 *                     configuration: parse, resolve, look up and print
 */

#include <string.h>
#include "b2bua_int.h"


enum {
	CFG_MAX_PREFIX  = 32,           /* digits of a route prefix        */
	CFG_MAX_NAME    = 64,           /* gateway name                    */
	CFG_GW_ARGS     = 8,            /* words of a gateway line         */
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


/* one key=value option of a gateway line */
static int gateway_option(struct cfg_parser *p, struct cfg_gateway *gw,
			  const struct pl *opt)
{
	struct pl k, v;

	if (!cfg_pl_split(opt, '=', &k, &v))
		return cfg_kerr(p, "unexpected '%r' (expected KEY=VALUE: "
				"transport=, carrier=)", opt);

	if (!pl_strcmp(&k, "transport"))
		return cfg_get_transport(p, &v, &gw->tp);

	if (!pl_strcmp(&k, "carrier")) {
		if (gw->carrier)
			return cfg_kerr(p, "carrier= given twice");
		if (!pl_is_name(&v))
			return cfg_kerr(p, "'%r' is not a valid carrier name "
					"(letters, digits, '-', '_', '.'; at "
					"most %u)", &v, CFG_MAX_NAME);
		return pl_strdup(&gw->carrier, &v);
	}

	return cfg_kerr(p, "unknown option '%r' (expected transport=, "
			"carrier=)", &k);
}


int b2bua_conf_gateway(struct cfg_parser *p, void *mod,
		       const struct cfg_key *k, const struct pl *val)
{
	struct b2bua_conf *cfg = mod;
	const char *expect = "NAME ADDRESS[:PORT] [transport=udp|tcp|tls] "
		"[carrier=NAME]";
	struct pl argv[CFG_GW_ARGS + 1];
	struct cfg_gateway *gw;
	const struct cfg_gateway *o;
	unsigned n, i;
	int err = 0;
	(void)k;

	n = cfg_split_args(val, argv, ARRAY_SIZE(argv));
	if (n < 2 || n > CFG_GW_ARGS)
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

	for (i = 2; i < n && !err; i++)
		err = gateway_option(p, gw, &argv[i]);
	if (err)
		goto out;

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


/** Resolve every route's gateways (the check after the whole file) */
int b2bua_conf_resolve(struct cfg_parser *p, struct b2bua_conf *cfg)
{
	struct le *le;
	int err;

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

		err |= re_hprintf(pf, "%s %s %J transport=%s%s%s\n", k->name,
				  gw->name, &gw->addr,
				  cfg_transp_name(gw->tp),
				  gw->carrier ? " carrier=" : "",
				  gw->carrier ? gw->carrier : "");
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
