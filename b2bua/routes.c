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

#include <string.h>
#include "b2bua_int.h"


struct b2bua_routes {
	struct list gatewayl;        /**< struct cfg_gateway, owned      */
	struct list routel;          /**< struct cfg_route, owned        */
};


static void gw_destructor(void *arg)
{
	struct cfg_gateway *gw = arg;

	list_unlink(&gw->le);
	mem_deref(gw->name);
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
