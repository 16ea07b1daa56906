/**
 * @file gateway.c  Gateway health and limits: OPTIONS probes, the
 *                  choice of the next usable gateway, per-gateway counts
 *
 * One entry per gateway name of the routing table in use (the
 * configuration's at start, then the database's; an entry outlives a
 * table swap, so its counts go on).  A gateway line's options, or the
 * gateway_* keys for what it does not say, set how it is probed and
 * limited; a gateway that only the database names takes the keys'.
 *
 * Probes run on the event loop: an OPTIONS client transaction every
 * `probe` seconds over the gateway's transport, answered within
 * `probe_timeout` ms or counted as failed.  b2bua/gwstate.c decides from
 * the results (and from bursts of failed INVITEs) whether the gateway is
 * up or down; every change is logged with its reason and counted.
 *
 * A call takes a channel of a gateway (max_calls) from its INVITE until
 * it is over or fails over to the next gateway, and one token of the
 * gateway's bucket (cps, a second and at once) when the gateway is
 * chosen.
 */

#include <string.h>
#include "b2bua_int.h"


struct gwh {
	struct le le;                /**< gwtab.l, in order of creation  */
	struct le he;                /**< gwtab.ht, by name              */
	struct gwtab *tab;           /**< borrowed; NULL once it is gone */
	char *name;                  /**< owned                          */
	struct sa addr;
	enum sip_transp tp;
	struct cfg_gw_health h;
	struct gw_fsm fsm;
	bool present;                /**< in the routing table in use    */
	uint64_t since_ms;           /**< wall clock: the state began    */
	char reason[128];            /**< why it is in its state         */
	char carrier[65];            /**< its carrier's name, "" if none */

	struct tmr tmr_probe;        /**< next probe                     */
	struct tmr tmr_to;           /**< the probe's answer is late     */
	struct sip_request *req;     /**< owned: the probe in flight     */
	uint64_t sent_jif;
	uint64_t probe_ms;
	bool probe_ok;
	uint16_t probe_code;
	uint32_t probe_rtt_ms;

	struct lim_bucket bucket;    /**< cps                            */
	struct b2bua_gw_counts c;
};

struct gwtab {
	struct b2bua *b;             /**< borrowed: the B2BUA owns us    */
	struct list l;               /**< struct gwh, owned              */
	struct hash *ht;             /**< owned                          */
};


static const char * const statev[] = { "unprobed", "up", "down" };
static const char * const failv[B2BUA_GWF_COUNT] = {
	"3xx", "4xx", "5xx", "6xx", "timeout", "transport",
};
static const char * const skipv[B2BUA_GWS_COUNT] = {
	"down", "max_calls", "cps",
};


const char *b2bua_gw_state_name(enum b2bua_gw_state st)
{
	return (unsigned)st < ARRAY_SIZE(statev) ? statev[st] : "?";
}


const char *b2bua_gw_fail_name(enum b2bua_gw_fail f)
{
	return (unsigned)f < B2BUA_GWF_COUNT ? failv[f] : "?";
}


const char *b2bua_gw_skip_name(enum b2bua_gw_skip s)
{
	return (unsigned)s < B2BUA_GWS_COUNT ? skipv[s] : "?";
}


/** Add the counters of one gateway to a sum (a group's) */
void b2bua_gw_counts_add(struct b2bua_gw_counts *sum,
			 const struct b2bua_gw_counts *c)
{
	unsigned i;

	if (!sum || !c)
		return;

	sum->attempts += c->attempts;
	sum->answered += c->answered;
	for (i = 0; i < B2BUA_GWF_COUNT; i++)
		sum->failed[i] += c->failed[i];
	sum->talked += c->talked;
	sum->talk_ms += c->talk_ms;
	for (i = 0; i < B2BUA_GWS_COUNT; i++)
		sum->skipped[i] += c->skipped[i];
	sum->probes_ok += c->probes_ok;
	sum->probes_failed += c->probes_failed;
	sum->went_down += c->went_down;
	sum->went_up += c->went_up;
	sum->calls += c->calls;
	sum->up += c->up;
}


static bool name_cmp(struct le *le, void *arg)
{
	const struct gwh *g = le->data;

	return 0 == strcmp(g->name, arg);
}


static struct gwh *gwh_find(const struct gwtab *t, const char *name)
{
	struct le *le;

	if (!t || !name)
		return NULL;

	le = hash_lookup(t->ht, hash_joaat_str(name), name_cmp, (void *)name);

	return le ? le->data : NULL;
}


/* ------------------------------------------------------------ changes */

static void state_change(struct gwh *g, enum gw_change ch, const char *why)
{
	if (ch == GW_SAME)
		return;

	g->since_ms = b2bua_wallclock_ms();
	str_ncpy(g->reason, why, sizeof(g->reason));

	if (ch == GW_WENT_DOWN) {
		++g->c.went_down;
		tlog_warn(NULL, "gateway %s (%J) down: %s", g->name, &g->addr,
			  why);
	}
	else {
		++g->c.went_up;
		tlog_info(NULL, "gateway %s (%J) up: %s", g->name, &g->addr,
			  why);
	}
}


/* ------------------------------------------------------------- probes */

static void probe_tick(void *arg);


static void probe_done(struct gwh *g, int err, uint16_t scode)
{
	const bool good = gw_probe_good(err, scode);
	enum gw_change ch;
	char why[128], last[32];

	tmr_cancel(&g->tmr_to);

	g->probe_ms = b2bua_wallclock_ms();
	g->probe_ok = good;
	g->probe_code = scode;
	g->probe_rtt_ms = (uint32_t)(tmr_jiffies() - g->sent_jif);

	if (good)
		++g->c.probes_ok;
	else
		++g->c.probes_failed;

	if (scode)
		(void)re_snprintf(last, sizeof(last), "%u", scode);
	else
		str_ncpy(last, err == ETIMEDOUT ? "no answer" :
			 "not sent", sizeof(last));

	ch = gw_fsm_probe(&g->fsm, &g->h, good);
	if (ch == GW_WENT_DOWN)
		(void)re_snprintf(why, sizeof(why), "%u probes in a row "
				  "failed (last: %s)", g->h.fail, last);
	else
		(void)re_snprintf(why, sizeof(why), "%u probes in a row "
				  "answered (last: %s)", g->h.recover, last);

	state_change(g, ch, why);
}


static void probe_resp(int err, const struct sip_msg *msg, void *arg)
{
	struct gwh *g = arg;

	if (!err && msg && msg->scode < 200)
		return;

	/* libre has cleared g->req: the transaction is over */
	probe_done(g, err, err || !msg ? 0 : msg->scode);
}


static void probe_late(void *arg)
{
	struct gwh *g = arg;

	if (!g->req)
		return;

	/* no answer in time: the transaction is dropped (no handler) */
	g->req = mem_deref(g->req);
	probe_done(g, ETIMEDOUT, 0);
}


static int probe_send(struct gwh *g)
{
	struct b2bua *b = g->tab->b;
	struct mbuf *mb = NULL;
	struct sa laddr;
	struct uri route;
	struct pl pl;
	char uri[128];
	int err;

	err = sip_transp_laddr(b->sip, &laddr, g->tp, &g->addr);
	if (err)
		return err;

	(void)re_snprintf(uri, sizeof(uri), "sip:%J%s", &g->addr,
			  sip_transp_param(g->tp));
	pl_set_str(&pl, uri);
	err = uri_decode(&route, &pl);
	if (err)
		return err;

	mb = mbuf_alloc(512);
	if (!mb)
		return ENOMEM;

	err = mbuf_printf(mb, "Max-Forwards: 70\r\n"
			  "To: <%s>\r\n"
			  "From: <sip:tollgate@%J>;tag=%08x\r\n"
			  "Call-ID: %08x%08x@tollgate\r\n"
			  "CSeq: 1 OPTIONS\r\n"
			  "Accept: application/sdp\r\n"
			  "Content-Length: 0\r\n\r\n",
			  uri, &laddr, rand_u32(), rand_u32(), rand_u32());
	if (err)
		goto out;

	mb->pos = 0;

	if (g->tp == SIP_TRANSP_TLS)
		b2bua_tls_expect(b->tls, &route.host);

	err = sip_request(&g->req, b->sip, true, "OPTIONS", -1, uri, -1,
			  &route, mb, hash_joaat_str(g->name), NULL,
			  probe_resp, g);

	b2bua_tls_expect(b->tls, NULL);

 out:
	mem_deref(mb);

	return err;
}


static void probe_tick(void *arg)
{
	struct gwh *g = arg;
	int err;

	tmr_start(&g->tmr_probe, (uint64_t)g->h.probe * 1000, probe_tick, g);

	/* the last one still open when the next is due */
	if (g->req)
		probe_late(g);

	g->sent_jif = tmr_jiffies();
	err = probe_send(g);
	if (err) {
		tlog_dbg(NULL, "gateway %s: probe not sent: %m", g->name, err);
		probe_done(g, err, 0);
		return;
	}

	/* unless it ended at once (libre answered it itself) */
	if (g->req)
		tmr_start(&g->tmr_to, g->h.probe_timeout, probe_late, g);
}


static void probe_stop(struct gwh *g)
{
	tmr_cancel(&g->tmr_probe);
	tmr_cancel(&g->tmr_to);
	g->req = mem_deref(g->req);
}


static void probe_start(struct gwh *g)
{
	if (!g->h.probe || tmr_isrunning(&g->tmr_probe))
		return;

	/* the first at once, so that a dead gateway is found soon */
	tmr_start(&g->tmr_probe, 0, probe_tick, g);
}


/* -------------------------------------------------------------- table */

static void gwh_destructor(void *arg)
{
	struct gwh *g = arg;

	probe_stop(g);
	list_unlink(&g->le);
	hash_unlink(&g->he);
	mem_deref(g->name);
}


static void gwh_configure(struct gwh *g, const struct cfg_gw_health *h)
{
	const struct cfg_limit lim = { h->cps, h->cps };

	g->h = *h;
	gw_fsm_init(&g->fsm, h);
	g->since_ms = b2bua_wallclock_ms();
	str_ncpy(g->reason, h->probe ? "started" : "not probed",
		 sizeof(g->reason));
	if (h->cps)
		lim_bucket_fill(&g->bucket, &lim, tmr_jiffies());
}


static struct gwh *gwh_add(struct gwtab *t, const char *name,
			   const struct sa *addr, enum sip_transp tp)
{
	const struct cfg_gateway *cg = cfg_gateway_find(t->b->cfg, name);
	struct gwh *g;

	g = mem_zalloc(sizeof(*g), gwh_destructor);
	if (!g)
		return NULL;

	if (str_dup(&g->name, name)) {
		mem_deref(g);
		return NULL;
	}

	g->tab = t;
	g->addr = *addr;
	g->tp = tp;
	tmr_init(&g->tmr_probe);
	tmr_init(&g->tmr_to);
	gwh_configure(g, cg ? &cg->h : &t->b->cfg->gw);

	list_append(&t->l, &g->le, g);
	hash_append(t->ht, hash_joaat_str(name), &g->he, g);

	return g;
}


static void tab_destructor(void *arg)
{
	struct gwtab *t = arg;
	struct le *le;

	/* calls may still hold entries: they only lose their table */
	while ((le = list_head(&t->l))) {
		struct gwh *g = le->data;

		probe_stop(g);
		list_unlink(&g->le);
		hash_unlink(&g->he);
		g->tab = NULL;
		mem_deref(g);
	}
	mem_deref(t->ht);
}


/**
 * Make the table of the configuration's gateways and start their probes
 */
int gw_table_alloc(struct b2bua *b)
{
	struct gwtab *t;
	int err;

	t = mem_zalloc(sizeof(*t), tab_destructor);
	if (!t)
		return ENOMEM;

	t->b = b;
	list_init(&t->l);
	err = hash_alloc(&t->ht, 64);
	if (err) {
		mem_deref(t);
		return err;
	}

	b->gwtab = t;
	gw_table_sync(b, &b->cfg->gatewayl);

	return 0;
}


/**
 * The routing table in use changed: an entry for each of its gateways
 * (struct cfg_gateway), probes for those that are probed and present,
 * none for those no longer in it
 */
void gw_table_sync(struct b2bua *b, const struct list *gatewayl)
{
	struct gwtab *t = b ? b->gwtab : NULL;
	struct le *le;

	if (!t)
		return;

	LIST_FOREACH(&t->l, le) {
		struct gwh *g = le->data;

		g->present = false;
	}

	LIST_FOREACH(gatewayl, le) {
		const struct cfg_gateway *cg = le->data;
		struct gwh *g = gwh_find(t, cg->name);

		if (!g)
			g = gwh_add(t, cg->name, &cg->addr, cg->tp);
		if (!g)
			continue;

		if (!sa_cmp(&g->addr, &cg->addr, SA_ALL) || g->tp != cg->tp) {
			tlog_info(NULL, "gateway %s now at %s:%J", g->name,
				  sip_transp_name(cg->tp), &cg->addr);
			g->addr = cg->addr;
			g->tp = cg->tp;
		}
		g->present = true;
		str_ncpy(g->carrier, cg->carrier ? cg->carrier : "",
			 sizeof(g->carrier));
	}

	LIST_FOREACH(&t->l, le) {
		struct gwh *g = le->data;

		if (g->present)
			probe_start(g);
		else
			probe_stop(g);
	}
}


/**
 * A new configuration is in use (a reload): each gateway takes the
 * settings of its line, or the gateway_* keys'.  A gateway whose
 * settings did not change keeps everything; one whose did keeps its
 * counts and, unless probing was turned on or off, its state; its probes
 * start again at the new interval.
 *
 * @return the number of gateways whose settings changed
 */
uint32_t gw_table_reconf(struct b2bua *b)
{
	struct gwtab *t = b ? b->gwtab : NULL;
	uint32_t n = 0;
	struct le *le;

	if (!t)
		return 0;

	LIST_FOREACH(&t->l, le) {
		struct gwh *g = le->data;
		const struct cfg_gateway *cg = cfg_gateway_find(b->cfg,
								g->name);
		const struct cfg_gw_health *h = cg ? &cg->h : &b->cfg->gw;
		const struct cfg_limit lim = { h->cps, h->cps };

		if (!memcmp(&g->h, h, sizeof(*h)))
			continue;

		++n;
		if (!g->h.probe != !h->probe) {
			gw_fsm_init(&g->fsm, h);
			g->since_ms = b2bua_wallclock_ms();
			str_ncpy(g->reason, h->probe ? "probing turned on" :
				 "not probed", sizeof(g->reason));
		}
		if (h->cps != g->h.cps && h->cps)
			lim_bucket_fill(&g->bucket, &lim, tmr_jiffies());

		g->h = *h;
		tlog_info(NULL, "gateway %s: probe %us, max_calls %u, cps %u",
			  g->name, h->probe, h->max_calls, h->cps);

		probe_stop(g);
		if (g->present)
			probe_start(g);
	}

	return n;
}


/* ------------------------------------------------------------- calls */

static struct gwh *call_gw(const struct b2bua_call *call, uint32_t i)
{
	return gwh_find(call->b->gwtab, call->candv[i].gw->name);
}


/**
 * The next usable gateway of the call's candidates from position `from`
 * on: one the margin guard kept (call_next_usable()), not down, under
 * its max_calls, with a token of its cps (taken here).
 * Every gateway passed over is counted and logged.  This is the one
 * place that decides which gateway a call tries next.
 *
 * @return its position, or the call's candc if none is usable
 */
uint32_t gw_next_usable(struct b2bua_call *call, uint32_t from)
{
	uint32_t i;

	for (i = call_next_usable(call, from); i < call->candc;
	     i = call_next_usable(call, i + 1)) {
		struct gwh *g = call_gw(call, i);
		const struct cfg_limit lim = { g ? g->h.cps : 0,
					       g ? g->h.cps : 0 };
		enum b2bua_gw_skip why;
		uint32_t waits;

		if (!g)
			return i;

		if (g->fsm.st == B2BUA_GW_DOWN)
			why = B2BUA_GWS_DOWN;
		else if (g->h.max_calls && g->c.calls >= g->h.max_calls)
			why = B2BUA_GWS_MAX_CALLS;
		else if (g->h.cps && !lim_bucket_take(&g->bucket, &lim,
						      tmr_jiffies(), &waits))
			why = B2BUA_GWS_CPS;
		else
			return i;

		++g->c.skipped[why];
		tlog_info(call_logid(call), "gateway %s skipped: %s",
			  g->name, why == B2BUA_GWS_DOWN ? "down" :
			  why == B2BUA_GWS_MAX_CALLS ? "at max_calls" :
			  "over its cps");
	}

	return call->candc;
}


/** An INVITE goes to the call's current gateway: a channel is taken */
void gw_attempt(struct b2bua_call *call)
{
	struct gwh *g = call_gw(call, call->gwi);

	gw_release(call);
	if (!g)
		return;

	++g->c.attempts;
	++g->c.calls;
	call->gwh = mem_ref(g);
	call->gw_open = true;
}


/**
 * The attempt on the current gateway has its outcome: a final answer
 * (err 0) or none (ETIMEDOUT: timed out, else not sent)
 */
void gw_outcome(struct b2bua_call *call, int err, uint16_t scode)
{
	struct gwh *g = call->gwh;
	enum gw_change ch;
	char why[128];

	if (!g || !call->gw_open)
		return;

	call->gw_open = false;

	if (!err && scode >= 200 && scode < 300)
		++g->c.answered;
	else if (err == ETIMEDOUT)
		++g->c.failed[B2BUA_GWF_TIMEOUT];
	else if (err)
		++g->c.failed[B2BUA_GWF_TRANSPORT];
	else if (scode >= 300 && scode < 700)
		++g->c.failed[scode / 100 - 3];

	ch = gw_fsm_invite(&g->fsm, &g->h, gw_invite_overload(err, scode));
	(void)re_snprintf(why, sizeof(why), "%u INVITEs in a row failed "
			  "with 503, 408 or no answer (last: %s)", g->h.burst,
			  err == ETIMEDOUT ? "timeout" : err ? "not sent" :
			  scode == 503 ? "503" : "408");
	state_change(g, ch, why);
}


/**
 * The call leaves its gateway (over, or on to the next one): the
 * channel is given back and an answered call's talk time counted
 */
void gw_release(struct b2bua_call *call)
{
	struct gwh *g = call->gwh;

	if (!g)
		return;

	if (g->c.calls)
		--g->c.calls;

	if (call->answer_ms && !call->gw_open) {
		uint64_t end = call->end_ms ? call->end_ms :
			b2bua_wallclock_ms();

		++g->c.talked;
		if (end > call->answer_ms)
			g->c.talk_ms += end - call->answer_ms;
	}

	call->gw_open = false;
	call->gwh = mem_deref(g);
}


/* ---------------------------------------------------------------- API */

static void info_fill(struct b2bua_gw_info *gi, const struct gwh *g)
{
	memset(gi, 0, sizeof(*gi));
	gi->name = g->name;
	gi->carrier = g->carrier[0] ? g->carrier : NULL;
	gi->addr = &g->addr;
	gi->tp = g->tp;
	gi->state = g->fsm.st;
	gi->since_ms = g->since_ms;
	gi->reason = g->reason;
	gi->h = g->h;
	gi->probe_ms = g->probe_ms;
	gi->probe_ok = g->probe_ok;
	gi->probe_code = g->probe_code;
	gi->probe_rtt_ms = g->probe_rtt_ms;
	gi->c = g->c;
	gi->c.up = g->fsm.st != B2BUA_GW_DOWN;
}


/** Each gateway of the routing table in use, in the table's order */
void b2bua_gw_apply(const struct b2bua *b, b2bua_gw_h *h, void *arg)
{
	struct b2bua_gw_info gi;
	struct le *le;

	if (!b || !b->gwtab || !h)
		return;

	LIST_FOREACH(&b->gwtab->l, le) {
		const struct gwh *g = le->data;

		if (!g->present)
			continue;

		info_fill(&gi, g);
		if (h(&gi, arg))
			break;
	}
}


/**
 * One gateway of the routing table in use, by name
 *
 * @return 0 (h was called), EINVAL, ENOENT
 */
int b2bua_gw_find(const struct b2bua *b, const char *name, b2bua_gw_h *h,
		  void *arg)
{
	struct b2bua_gw_info gi;
	const struct gwh *g;

	if (!b || !name || !h)
		return EINVAL;

	g = gwh_find(b->gwtab, name);
	if (!g || !g->present)
		return ENOENT;

	info_fill(&gi, g);
	(void)h(&gi, arg);

	return 0;
}
