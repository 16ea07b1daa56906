/**
 * @file routes.c  Routing tables the B2BUA can swap while calls run
 *
 * A routing table holds gateways and prefix routes of its own (the same
 * shapes as the configuration's).  b2bua_set_routes() makes a table the
 * one new calls are routed by; each call keeps a reference to the table
 * its route came from, so a call in progress keeps its gateways (and its
 * failover order) after a swap.  Without a table, calls are routed by the
 * configuration file.
 */

#include <stdlib.h>
#include <string.h>
#include "b2bua_int.h"


struct b2bua_routes {
	struct list gatewayl;        /**< struct cfg_gateway, owned      */
	struct list routel;          /**< struct cfg_route, owned        */
	struct list carrierl;        /**< struct b2bua_carrier, owned    */
	struct list xlatl;           /**< struct b2bua_xlat, owned       */
	bool xlat;                   /**< the table has its own rules    */
	bool sealed;                 /**< decks sorted, carriers linked  */
};


static void gw_destructor(void *arg)
{
	struct cfg_gateway *gw = arg;

	list_unlink(&gw->le);
	mem_deref(gw->name);
	mem_deref(gw->carrier);
}


static void carrier_destructor(void *arg)
{
	struct b2bua_carrier *c = arg;

	list_unlink(&c->le);
	mem_deref(c->name);
	mem_deref(c->deck);
	mem_deref(c->gwv);
}


static void route_destructor(void *arg)
{
	struct cfg_route *rt = arg;

	list_unlink(&rt->le);
	mem_deref(rt->prefix);
	mem_deref(rt->gwv);
}


static void routes_destructor(void *arg)
{
	struct b2bua_routes *rt = arg;

	list_flush(&rt->routel);
	list_flush(&rt->gatewayl);
	list_flush(&rt->carrierl);
	list_flush(&rt->xlatl);
}


int b2bua_routes_alloc(struct b2bua_routes **rtp)
{
	struct b2bua_routes *rt;

	if (!rtp)
		return EINVAL;

	rt = mem_zalloc(sizeof(*rt), routes_destructor);
	if (!rt)
		return ENOMEM;

	list_init(&rt->gatewayl);
	list_init(&rt->routel);
	list_init(&rt->carrierl);
	*rtp = rt;

	return 0;
}


static struct cfg_gateway *gw_find(const struct b2bua_routes *rt,
				   const char *name)
{
	struct le *le;

	LIST_FOREACH(&rt->gatewayl, le) {
		struct cfg_gateway *gw = le->data;

		if (!strcmp(gw->name, name))
			return gw;
	}

	return NULL;
}


/**
 * Add a gateway to a table
 *
 * @return 0, EINVAL (bad argument), EEXIST (the name is taken), ENOMEM
 */
int b2bua_routes_add_gateway(struct b2bua_routes *rt, const char *name,
			     const struct sa *addr, enum sip_transp tp)
{
	struct cfg_gateway *gw;
	int err;

	if (!rt || !str_isset(name) || !addr || !sa_isset(addr, SA_ALL) ||
	    (tp != SIP_TRANSP_UDP && tp != SIP_TRANSP_TCP &&
	     tp != SIP_TRANSP_TLS))
		return EINVAL;

	if (gw_find(rt, name))
		return EEXIST;

	gw = mem_zalloc(sizeof(*gw), gw_destructor);
	if (!gw)
		return ENOMEM;

	gw->addr = *addr;
	gw->tp = tp;

	err = str_dup(&gw->name, name);
	if (err) {
		mem_deref(gw);
		return err;
	}

	list_append(&rt->gatewayl, &gw->le, gw);

	return 0;
}


/**
 * Add a prefix route ("" matches every number) over gateways of the
 * table, tried in the order given
 *
 * @return 0, EINVAL, ENOENT (a gateway is not in the table), EEXIST
 */
int b2bua_routes_add_route(struct b2bua_routes *rt, const char *prefix,
			   const char *const *gwv, uint32_t gwc)
{
	struct cfg_route *r;
	struct le *le;
	uint32_t i;
	int err;

	if (!rt || !prefix || !gwv || !gwc)
		return EINVAL;

	LIST_FOREACH(&rt->routel, le) {
		const struct cfg_route *o = le->data;

		if (!strcmp(o->prefix, prefix))
			return EEXIST;
	}

	for (i = 0; i < gwc; i++) {
		if (!gwv[i] || !gw_find(rt, gwv[i]))
			return ENOENT;
	}

	r = mem_zalloc(sizeof(*r), route_destructor);
	if (!r)
		return ENOMEM;

	r->gwv = mem_zalloc(gwc * sizeof(*r->gwv), NULL);
	err = str_dup(&r->prefix, prefix);
	if (err || !r->gwv) {
		mem_deref(r);
		return ENOMEM;
	}

	for (i = 0; i < gwc; i++)
		r->gwv[i] = gw_find(rt, gwv[i]);
	r->gwc = gwc;

	list_append(&rt->routel, &r->le, r);

	return 0;
}


/** The route with the longest prefix of a number, NULL if none */
const struct cfg_route *b2bua_routes_find(const struct b2bua_routes *rt,
					  const char *number)
{
	if (!rt || !number)
		return NULL;

	return b2bua_route_match(&rt->routel, number);
}


/** A least-cost route for a prefix ("" matches every number) */
int b2bua_routes_add_lcr(struct b2bua_routes *rt, const char *prefix)
{
	struct cfg_route *r;
	struct le *le;
	int err;

	if (!rt || !prefix)
		return EINVAL;

	LIST_FOREACH(&rt->routel, le) {
		const struct cfg_route *o = le->data;

		if (!strcmp(o->prefix, prefix))
			return EEXIST;
	}

	r = mem_zalloc(sizeof(*r), route_destructor);
	if (!r)
		return ENOMEM;

	r->lcr = true;
	err = str_dup(&r->prefix, prefix);
	if (err) {
		mem_deref(r);
		return err;
	}

	list_append(&rt->routel, &r->le, r);

	return 0;
}


/** Name the carrier a gateway of the table belongs to */
int b2bua_routes_gateway_carrier(struct b2bua_routes *rt, const char *gw,
				 const char *carrier)
{
	struct cfg_gateway *g;

	if (!rt || !gw || !str_isset(carrier) || rt->sealed)
		return EINVAL;

	g = gw_find(rt, gw);
	if (!g)
		return ENOENT;

	g->carrier = mem_deref(g->carrier);

	return str_dup(&g->carrier, carrier);
}


static struct b2bua_carrier *carrier_find(const struct b2bua_routes *rt,
					  const char *name)
{
	struct le *le;

	LIST_FOREACH(&rt->carrierl, le) {
		struct b2bua_carrier *c = le->data;

		if (!strcmp(c->name, name))
			return c;
	}

	return NULL;
}


/**
 * Add a carrier (its deck empty); a lower preference wins a tie of cost
 *
 * @return 0, EINVAL, EEXIST, ENOMEM
 */
int b2bua_routes_add_carrier(struct b2bua_routes *rt, const char *name,
			     int32_t preference)
{
	struct b2bua_carrier *c;
	int err;

	if (!rt || !str_isset(name) || rt->sealed)
		return EINVAL;

	if (carrier_find(rt, name))
		return EEXIST;

	c = mem_zalloc(sizeof(*c), carrier_destructor);
	if (!c)
		return ENOMEM;

	c->preference = preference;
	err  = str_dup(&c->name, name);
	err |= b2bua_deck_alloc(&c->deck);
	if (err) {
		mem_deref(c);
		return ENOMEM;
	}

	list_append(&rt->carrierl, &c->le, c);

	return 0;
}


/** Add a price to a carrier's deck (see b2bua_deck_add()) */
int b2bua_routes_add_price(struct b2bua_routes *rt, const char *carrier,
			   const char *prefix, const struct b2bua_tariff *t,
			   int64_t from_ms, int64_t to_ms)
{
	struct b2bua_carrier *c;

	if (!rt || !carrier || rt->sealed)
		return EINVAL;

	c = carrier_find(rt, carrier);
	if (!c)
		return ENOENT;

	return b2bua_deck_add(c->deck, prefix, t, from_ms, to_ms);
}


/**
 * The table is complete: decks are sorted and every carrier knows its
 * gateways (in the order they were added)
 */
int b2bua_routes_seal(struct b2bua_routes *rt)
{
	struct le *le, *ge;

	if (!rt)
		return EINVAL;

	if (rt->sealed)
		return 0;

	LIST_FOREACH(&rt->carrierl, le) {
		struct b2bua_carrier *c = le->data;
		uint32_t n = 0;

		b2bua_deck_seal(c->deck);

		LIST_FOREACH(&rt->gatewayl, ge) {
			const struct cfg_gateway *gw = ge->data;

			if (gw->carrier && !strcmp(gw->carrier, c->name))
				++n;
		}

		if (!n)
			continue;

		c->gwv = mem_zalloc(n * sizeof(*c->gwv), NULL);
		if (!c->gwv)
			return ENOMEM;

		LIST_FOREACH(&rt->gatewayl, ge) {
			struct cfg_gateway *gw = ge->data;

			if (gw->carrier && !strcmp(gw->carrier, c->name)) {
				gw->car = c;
				c->gwv[c->gwc++] = gw;
			}
		}
	}

	rt->sealed = true;

	return 0;
}


uint32_t b2bua_routes_carriers(const struct b2bua_routes *rt)
{
	return rt ? list_count(&rt->carrierl) : 0;
}


static int cand_cmp(const void *a, const void *b)
{
	const struct call_cand *x = a, *y = b;
	int c;

	if (x->cost != y->cost)
		return x->cost < y->cost ? -1 : 1;

	if (x->car->preference != y->car->preference)
		return x->car->preference < y->car->preference ? -1 : 1;

	c = strcmp(x->car->name, y->car->name);
	if (c)
		return c;

	return x->pos < y->pos ? -1 : x->pos > y->pos;
}


/**
 * The candidates of a least-cost route: every gateway of every carrier
 * whose deck has a price of the number valid now (its longest prefix),
 * ordered by the cost of a call of ref_s seconds, then by the carriers'
 * preference and name, then by the order of the carrier's gateways
 *
 * @return 0 with *cvp (owned by the caller) and *cnp, ENOENT if no
 *         carrier covers the number, ENOMEM
 */
int b2bua_routes_lcr(const struct b2bua_routes *rt, const char *number,
		     int64_t now_ms, uint32_t ref_s, struct call_cand **cvp,
		     uint32_t *cnp)
{
	struct call_cand *cv;
	uint32_t n = 0, cap = 0;
	struct le *le;

	if (!rt || !rt->sealed || !number || !cvp || !cnp)
		return EINVAL;

	LIST_FOREACH(&rt->carrierl, le) {
		const struct b2bua_carrier *c = le->data;

		cap += c->gwc;
	}

	if (!cap)
		return ENOENT;

	cv = mem_zalloc(cap * sizeof(*cv), NULL);
	if (!cv)
		return ENOMEM;

	LIST_FOREACH(&rt->carrierl, le) {
		const struct b2bua_carrier *c = le->data;
		const struct b2bua_tariff *t;
		int64_t cost;
		uint32_t i;

		if (!c->gwc)
			continue;

		t = b2bua_deck_lookup(c->deck, number, now_ms, NULL);
		if (!t || b2bua_tariff_cost(&cost, t, ref_s))
			continue;

		for (i = 0; i < c->gwc; i++) {
			struct call_cand *k = &cv[n++];

			k->gw = c->gwv[i];
			k->car = c;
			k->t = *t;
			k->priced = true;
			k->cost = cost;
			k->pos = i;
		}
	}

	if (!n) {
		mem_deref(cv);
		return ENOENT;
	}

	qsort(cv, n, sizeof(*cv), cand_cmp);
	*cvp = cv;
	*cnp = n;

	return 0;
}


/**
 * Give the table number translation rules of its own (from then on the
 * configuration's are not used for its calls, even if it has none):
 * one rule, in the words of number_in/number_out, after those added
 * before; text NULL adds none
 *
 * @return 0, EINVAL (why filled), ENOMEM
 */
int b2bua_routes_add_xlat(struct b2bua_routes *rt, enum b2bua_xlat_dir dir,
			  const char *text, unsigned line, char *why,
			  size_t whysz)
{
	struct b2bua_xlat *x;
	struct pl pl;
	int err;

	if (!rt)
		return EINVAL;

	rt->xlat = true;
	if (!text)
		return 0;

	pl_set_str(&pl, text);
	err = b2bua_xlat_parse(&x, dir, &pl, why, whysz);
	if (err)
		return err;

	x->line = line;
	list_append(&rt->xlatl, &x->le, x);

	return 0;
}


/** The table's translation rules, NULL if it has none of its own */
const struct list *b2bua_routes_xlat(const struct b2bua_routes *rt)
{
	return rt && rt->xlat ? &rt->xlatl : NULL;
}


uint32_t b2bua_routes_count(const struct b2bua_routes *rt)
{
	return rt ? list_count(&rt->routel) : 0;
}


/**
 * Route new calls by a table (a reference is taken), or by the
 * configuration file again if rt is NULL.  Calls in progress keep the
 * table they were routed by.
 */
void b2bua_set_routes(struct b2bua *b, struct b2bua_routes *rt)
{
	if (!b)
		return;

	mem_deref(b->routes);
	b->routes = mem_ref(rt);

	gw_table_sync(b, rt ? &rt->gatewayl : &b->cfg->gatewayl);
}
