/**
 * @file events.c  REST API: live events as Server-Sent Events
 *                 (GET /v1/events)
 *
 * Each stream is a subscriber with a buffer of its own of a fixed size
 * (API_EV_BUF), allocated when it connects.  An event is encoded once
 * ("id:", "event:", "data:" with one line of JSON) and copied into every
 * subscriber's buffer; with no subscriber nothing is encoded and nothing
 * allocated.  A subscriber whose buffer cannot take an event is a reader
 * too slow for the rate of events: it is dropped (its stream ends) and
 * counted.
 *
 * MHD runs in external-poll mode: the response is a content reader that
 * hands out what the buffer holds; with the buffer empty the connection
 * is suspended (MHD_suspend_connection) and resumed when the next event
 * or keepalive comes.
 *
 * What is sent: call_new, call_update, call_end from the B2BUA's call
 * events, call_update from billing when a call's cut-off moves
 * (api_call_money_changed()) and, every API_EV_MEDIA_S seconds, for each
 * call with its media; account after a credit change through this API;
 * gateway when a gateway's state changes (the counters of state changes
 * are looked at once a second); stats once a second; a keepalive comment
 * every API_EV_KEEPALIVE_S seconds.
 */

#include <string.h>
#include "api_int.h"


/* ------------------------------------------------------------ buffers */

static void evbuf_destructor(void *arg)
{
	(void)arg;
}


/** A buffer of cap bytes, allocated once */
int api_evbuf_init(struct api_evbuf *b, size_t cap)
{
	if (!b || !cap)
		return EINVAL;

	memset(b, 0, sizeof(*b));
	b->p = mem_alloc(cap, evbuf_destructor);
	if (!b->p)
		return ENOMEM;

	b->cap = cap;

	return 0;
}


void api_evbuf_reset(struct api_evbuf *b)
{
	if (!b)
		return;

	b->p = mem_deref(b->p);
	b->cap = b->head = b->tail = 0;
}


size_t api_evbuf_len(const struct api_evbuf *b)
{
	return b ? b->tail - b->head : 0;
}


/**
 * Append n bytes, all or nothing
 *
 * @return 0, or ENOSPC if they do not fit in what is free
 */
int api_evbuf_put(struct api_evbuf *b, const uint8_t *d, size_t n)
{
	if (!b || !b->p || (!d && n))
		return EINVAL;

	if (n > b->cap - api_evbuf_len(b))
		return ENOSPC;

	if (b->tail + n > b->cap) {
		memmove(b->p, b->p + b->head, b->tail - b->head);
		b->tail -= b->head;
		b->head = 0;
	}

	memcpy(b->p + b->tail, d, n);
	b->tail += n;

	return 0;
}


/** Take up to max bytes from the front; returns how many */
size_t api_evbuf_get(struct api_evbuf *b, uint8_t *d, size_t max)
{
	size_t n;

	if (!b || !d)
		return 0;

	n = min(max, api_evbuf_len(b));
	memcpy(d, b->p + b->head, n);
	b->head += n;
	if (b->head == b->tail)
		b->head = b->tail = 0;

	return n;
}


/**
 * One event in the text/event-stream format: "id: N", "event: TYPE" and
 * the JSON of od on one "data:" line (odict's JSON has no line breaks).
 * type must be a plain word.
 */
int api_event_encode(struct mbuf *mb, uint64_t id, const char *type,
		     const struct odict *od)
{
	size_t i;

	if (!mb || !type || !*type || !od)
		return EINVAL;

	for (i = 0; type[i]; i++) {
		char c = type[i];

		if (!(c == '_' || (c >= 'a' && c <= 'z')))
			return EINVAL;
	}

	return mbuf_printf(mb, "id: %llu\nevent: %s\ndata: %H\n\n",
			   (unsigned long long)id, type, json_encode_odict,
			   od);
}


/* -------------------------------------------------------- subscribers */

struct api_sub {
	struct le le;                /**< api.subl                       */
	struct api *api;             /**< borrowed; NULL once it is gone */
	struct MHD_Connection *conn; /**< borrowed                       */
	struct api_evbuf buf;        /**< owned                          */
	bool suspended;
	bool dropped;                /**< too slow: its stream ends      */
	uint64_t wrote_jif;          /**< last event or keepalive put    */
};


static void sub_destructor(void *arg)
{
	struct api_sub *s = arg;

	if (s->api && s->api->ev_streams)
		--s->api->ev_streams;
	list_unlink(&s->le);
	api_evbuf_reset(&s->buf);
}


static void sub_wake(struct api_sub *s)
{
	if (!s->suspended)
		return;

	s->suspended = false;
	MHD_resume_connection(s->conn);
	if (s->api)
		api_mhd_kick(s->api);
}


static void sub_drop(struct api_sub *s)
{
	if (s->dropped)
		return;

	s->dropped = true;
	if (s->api)
		++s->api->ev_dropped;
	tlog_warn(NULL, "api: event stream dropped: its reader is too slow "
		  "(%zu bytes waiting)", api_evbuf_len(&s->buf));
	sub_wake(s);
}


static void sub_put(struct api_sub *s, const uint8_t *d, size_t n)
{
	if (s->dropped)
		return;

	if (api_evbuf_put(&s->buf, d, n)) {
		sub_drop(s);
		return;
	}

	s->wrote_jif = tmr_jiffies();
	sub_wake(s);
}


static ssize_t sub_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct api_sub *s = cls;
	size_t n;
	(void)pos;

	if (!s->api || s->dropped)
		return MHD_CONTENT_READER_END_WITH_ERROR;

	n = api_evbuf_get(&s->buf, (uint8_t *)buf, max);
	if (n)
		return (ssize_t)n;

	if (!s->suspended) {
		s->suspended = true;
		MHD_suspend_connection(s->conn);
	}

	return 0;
}


static void sub_free(void *cls)
{
	mem_deref(cls);
}


/* encode once, copy to every subscriber */
static void emit(struct api *api, const char *type, const struct odict *od)
{
	struct le *le;

	if (!api->evmb)
		return;

	mbuf_reset(api->evmb);
	if (api_event_encode(api->evmb, ++api->ev_seq, type, od)) {
		++api->ev_failed;
		return;
	}

	le = list_head(&api->subl);
	while (le) {
		struct api_sub *s = le->data;

		le = le->next;
		sub_put(s, api->evmb->buf, api->evmb->end);
	}

	++api->ev_sent;
}


static bool has_subs(const struct api *api)
{
	return api && !list_isempty(&api->subl);
}


/* ------------------------------------------------------------- events */

/* a call that is ending has had its call_end: no update follows it */
static bool ending(const struct b2bua_call *call)
{
	enum b2bua_state s = b2bua_call_state(call);

	return s == B2BUA_ST_TERMINATING || s == B2BUA_ST_CANCELLING ||
		s == B2BUA_ST_CLOSED;
}


static void emit_call(struct api *api, const char *type,
		      const struct b2bua_call *call)
{
	struct odict *od = NULL;

	if (api_call_odict(&od, api, call))
		return;

	if (!odict_entry_add(od, "sent_at_ms", ODICT_INT,
			     (int64_t)b2bua_wallclock_ms()))
		emit(api, type, od);

	mem_deref(od);
}


static void emit_end(struct api *api, const struct b2bua_call_record *rec,
		     bool answered)
{
	struct odict *od = NULL;
	int err;

	if (!rec || odict_alloc(&od, 16))
		return;

	err  = odict_entry_add(od, "id", ODICT_STRING, rec->id);
	err |= odict_entry_add(od, "reason", ODICT_STRING,
			       b2bua_reason_name(rec->reason));
	err |= odict_entry_add(od, "code", ODICT_INT, (int64_t)rec->scode);
	err |= odict_entry_add(od, "hangup", ODICT_STRING,
			       b2bua_party_name(rec->hangup));
	err |= odict_entry_add(od, "answered", ODICT_BOOL, answered);
	err |= api_add_time(od, "setup_at", rec->setup_ms);
	err |= api_add_time(od, "answer_at", rec->answer_ms);
	err |= api_add_time(od, "end_at", rec->end_ms);
	err |= odict_entry_add(od, "seconds", ODICT_INT, (int64_t)
			       (rec->answer_ms && rec->end_ms > rec->answer_ms ?
				(rec->end_ms - rec->answer_ms) / 1000 : 0));
	if (!err)
		emit(api, "call_end", od);

	mem_deref(od);
}


/* the B2BUA's call events */
static void call_event(struct b2bua_call *call, enum b2bua_event ev,
		       const struct b2bua_call_record *rec, void *arg)
{
	struct api *api = arg;

	if (!has_subs(api))
		return;

	switch (ev) {

	case B2BUA_EV_CREATED:
		emit_call(api, "call_new", call);
		break;

	case B2BUA_EV_RINGING:
	case B2BUA_EV_ANSWERED:
	case B2BUA_EV_LOW_BALANCE:
		if (!ending(call))
			emit_call(api, "call_update", call);
		break;

	case B2BUA_EV_ENDED:
	case B2BUA_EV_FAILED:
		emit_end(api, rec, ev == B2BUA_EV_ENDED);
		break;

	default:
		break;
	}
}


/**
 * Billing moved a call's cut-off (a reservation granted, a top-up): its
 * seconds_left changed.  Nothing is done without a subscriber.
 */
void api_call_money_changed(struct api *api, const struct b2bua_call *call)
{
	if (!has_subs(api) || !call)
		return;

	if (ending(call))
		return;

	emit_call(api, "call_update", call);
}


/** An account's balance changed through this API (credit) */
void api_events_account(struct api *api, int64_t account_id,
			int64_t balance, const char *op)
{
	struct odict *od = NULL;
	int err;

	if (!has_subs(api) || odict_alloc(&od, 8))
		return;

	err  = odict_entry_add(od, "id", ODICT_INT, account_id);
	err |= api_add_money(od, "balance", balance);
	err |= odict_entry_add(od, "op", ODICT_STRING, op ? op : "");
	if (!err)
		emit(api, "account", od);

	mem_deref(od);
}


struct gw_ctx {
	struct odict *arr;           /**< borrowed                       */
	uint64_t changes;
	unsigned n;
	int err;
};


static bool gw_sum_h(const struct b2bua_gw_info *gi, void *arg)
{
	struct gw_ctx *ctx = arg;

	ctx->changes += gi->c.went_down + gi->c.went_up;
	++ctx->n;

	return false;
}


static bool gw_add_h(const struct b2bua_gw_info *gi, void *arg)
{
	struct gw_ctx *ctx = arg;
	struct odict *o;
	char key[16];

	ctx->err = odict_alloc(&o, 16);
	if (ctx->err)
		return true;

	ctx->err  = odict_entry_add(o, "name", ODICT_STRING, gi->name);
	ctx->err |= api_gw_health_add(o, gi);
	(void)re_snprintf(key, sizeof(key), "%u", ctx->n++);
	ctx->err |= odict_entry_add(ctx->arr, key, ODICT_OBJECT, o);
	mem_deref(o);

	return ctx->err != 0;
}


/* a gateway went up or down (or the table changed): every gateway's
   health, as GET /v1/gateways/{name} shows it */
static void gw_check(struct api *api)
{
	struct gw_ctx ctx;
	struct odict *od = NULL;

	memset(&ctx, 0, sizeof(ctx));
	b2bua_gw_apply(api->b2bua, gw_sum_h, &ctx);
	if (ctx.changes == api->ev_gw_changes && ctx.n == api->ev_gw_n)
		return;

	api->ev_gw_changes = ctx.changes;
	api->ev_gw_n = ctx.n;
	ctx.n = 0;

	if (odict_alloc(&od, 4))
		return;
	if (odict_alloc(&ctx.arr, 16)) {
		mem_deref(od);
		return;
	}

	b2bua_gw_apply(api->b2bua, gw_add_h, &ctx);
	if (!ctx.err &&
	    !odict_entry_add(od, "gateways", ODICT_ARRAY, ctx.arr))
		emit(api, "gateway", od);

	mem_deref(ctx.arr);
	mem_deref(od);
}


static bool media_apply(struct b2bua_call *call, void *arg)
{
	struct api *api = arg;

	if (ending(call))
		return false;

	emit_call(api, "call_update", call);

	return !has_subs(api);
}


static uint64_t cutoffs_now(const struct api *api)
{
	struct api_billing_metrics m;

	if (!api->hooks.billing_metrics)
		return 0;

	memset(&m, 0, sizeof(m));
	api->hooks.billing_metrics(&m, api->hooks.arg);

	return m.cutoffs;
}


static int add_series(struct odict *od, const char *key,
		      const uint32_t *v, unsigned last, unsigned n)
{
	struct odict *arr;
	unsigned i;
	int err;

	err = odict_alloc(&arr, 64);
	if (err)
		return err;

	/* oldest first: the slot after the last one written */
	for (i = 0; i < n && !err; i++) {
		char k[8];
		unsigned j = (last + 1 + API_EV_HISTORY - n + i) %
			API_EV_HISTORY;

		(void)re_snprintf(k, sizeof(k), "%u", i);
		err = odict_entry_add(arr, k, ODICT_INT, (int64_t)v[j]);
	}

	if (!err)
		err = odict_entry_add(od, key, ODICT_ARRAY, arr);
	mem_deref(arr);

	return err;
}


/* stats: the last n seconds (1: the one just over) */
static int stats_odict(struct odict **odp, const struct api *api,
		       unsigned n)
{
	struct odict *od;
	int err;

	if (n > api->ev_hist_n)
		n = api->ev_hist_n;

	err = odict_alloc(&od, 8);
	if (err)
		return err;

	err  = odict_entry_add(od, "at_ms", ODICT_INT,
			       (int64_t)b2bua_wallclock_ms());
	err |= odict_entry_add(od, "period_s", ODICT_INT, (int64_t)1);
	err |= odict_entry_add(od, "calls", ODICT_INT,
			       (int64_t)b2bua_call_count(api->b2bua));
	err |= add_series(od, "calls_per_s", api->ev_cps, api->ev_hist_i, n);
	err |= add_series(od, "cutoffs_per_s", api->ev_cut, api->ev_hist_i, n);

	if (err)
		mem_deref(od);
	else
		*odp = od;

	return err;
}


static void tick(void *arg)
{
	struct api *api = arg;
	uint64_t now = tmr_jiffies(), created, cut;
	struct odict *od = NULL;
	struct le *le;

	tmr_start(&api->ev_tmr, 1000, tick, api);

	/* the history runs whether anyone listens or not: the page draws
	   the last minutes at once */
	created = api->created;
	cut = cutoffs_now(api);
	api->ev_hist_i = (api->ev_hist_i + 1) % API_EV_HISTORY;
	api->ev_cps[api->ev_hist_i] = (uint32_t)(created - api->ev_created);
	api->ev_cut[api->ev_hist_i] = (uint32_t)(cut - api->ev_cutoffs);
	api->ev_created = created;
	api->ev_cutoffs = cut;
	if (api->ev_hist_n < API_EV_HISTORY)
		++api->ev_hist_n;

	if (!has_subs(api))
		return;

	if (!stats_odict(&od, api, 1)) {
		emit(api, "stats", od);
		mem_deref(od);
	}

	gw_check(api);

	if (++api->ev_media_tick >= API_EV_MEDIA_S) {
		api->ev_media_tick = 0;
		(void)b2bua_call_apply(api->b2bua, media_apply, api);
	}

	le = list_head(&api->subl);
	while (le) {
		struct api_sub *s = le->data;
		static const char ka[] = ": keepalive\n\n";

		le = le->next;
		if (now - s->wrote_jif >= API_EV_KEEPALIVE_S * 1000)
			sub_put(s, (const uint8_t *)ka, sizeof(ka) - 1);
	}
}


/* the first event of a stream: who the token is, the server's clock,
   the history of the chart */
static int hello(struct api_sub *s, bool admin)
{
	struct api *api = s->api;
	struct odict *od = NULL;
	struct mbuf *mb;
	static const char pre[] = "retry: 2000\n\n";
	int err;

	err = stats_odict(&od, api, API_EV_HISTORY);
	if (err)
		return err;

	err  = odict_entry_add(od, "role", ODICT_STRING,
			       admin ? "admin" : "readonly");
	err |= api->node ? odict_entry_add(od, "node", ODICT_STRING,
					   api->node) :
		odict_entry_add(od, "node", ODICT_NULL);
	err |= odict_entry_add(od, "billing", ODICT_BOOL, api->billing);
	err |= odict_entry_add(od, "media_period_s", ODICT_INT,
			       (int64_t)API_EV_MEDIA_S);
	if (err)
		goto out;

	mb = mbuf_alloc(1024);
	if (!mb) {
		err = ENOMEM;
		goto out;
	}

	err  = mbuf_write_str(mb, pre);
	err |= api_event_encode(mb, api->ev_seq, "hello", od);
	if (!err)
		err = api_evbuf_put(&s->buf, mb->buf, mb->end);
	mem_deref(mb);

 out:
	mem_deref(od);

	return err;
}


/** GET /v1/events: a stream of events (text/event-stream) */
void api_events_h(struct api_req *req)
{
	struct api *api = req->api;
	struct MHD_Response *resp;
	struct api_sub *s;
	int err;

	if (api->ev_streams >= api->cfg->api_max_event_streams) {
		++api->ev_refused;
		api_error(req, 503, NULL, "too many event streams (%u)",
			  api->cfg->api_max_event_streams);
		if (req->resp)
			(void)MHD_add_response_header(req->resp,
						      "Retry-After", "5");
		return;
	}

	if (!api->evmb) {
		api->evmb = mbuf_alloc(4096);
		if (!api->evmb) {
			api_error(req, 500, NULL, "out of memory");
			return;
		}
	}

	s = mem_zalloc(sizeof(*s), sub_destructor);
	if (!s) {
		api_error(req, 500, NULL, "out of memory");
		return;
	}

	s->conn = req->conn;
	s->wrote_jif = tmr_jiffies();
	err = api_evbuf_init(&s->buf, API_EV_BUF);
	if (err) {
		mem_deref(s);
		api_error(req, 500, NULL, "out of memory");
		return;
	}

	s->api = api;
	++api->ev_streams;
	err = hello(s, req->admin);
	if (err) {
		mem_deref(s);
		api_error(req, 500, NULL, "cannot start the stream (%m)",
			  err);
		return;
	}

	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096,
						 sub_read, s, sub_free);
	if (!resp) {
		mem_deref(s);
		api_error(req, 500, NULL, "cannot make a response");
		return;
	}

	list_append(&api->subl, &s->le, s);
	++api->ev_opened;

	(void)MHD_add_response_header(resp, "Content-Type",
				      "text/event-stream; charset=utf-8");
	(void)MHD_add_response_header(resp, "Cache-Control", "no-store");
	(void)MHD_add_response_header(resp, "X-Accel-Buffering", "no");
	(void)MHD_add_response_header(resp, "X-Content-Type-Options",
				      "nosniff");
	api_reply_resp(req, 200, resp);
}


/** Start the events: the B2BUA's call events and the tick */
int api_events_start(struct api *api)
{
	list_init(&api->subl);
	tmr_init(&api->ev_tmr);
	api->ev_cutoffs = cutoffs_now(api);
	tmr_start(&api->ev_tmr, 1000, tick, api);

	return b2bua_subscribe(api->b2bua, call_event, api);
}


/**
 * The API goes: every stream ends.  Suspended connections are resumed
 * (MHD must not be stopped with any) and their readers end the stream.
 */
void api_events_close(struct api *api)
{
	struct le *le;

	tmr_cancel(&api->ev_tmr);

	LIST_FOREACH(&api->subl, le) {
		struct api_sub *s = le->data;

		s->api = NULL;
		if (s->suspended) {
			s->suspended = false;
			MHD_resume_connection(s->conn);
		}
	}

	api->ev_streams = 0;
	api->evmb = mem_deref(api->evmb);
}


int api_events_metrics(struct mbuf *mb, const struct api *api)
{
	return mbuf_printf(mb,
		"# HELP tollgate_api_event_streams Event streams open "
		"(GET /v1/events).\n"
		"# TYPE tollgate_api_event_streams gauge\n"
		"tollgate_api_event_streams %u\n"
		"# HELP tollgate_api_event_streams_total Event streams "
		"opened, and refused over api_max_event_streams.\n"
		"# TYPE tollgate_api_event_streams_total counter\n"
		"tollgate_api_event_streams_total{result=\"opened\"} %llu\n"
		"tollgate_api_event_streams_total{result=\"refused\"} %llu\n"
		"# HELP tollgate_api_event_streams_dropped_total Event "
		"streams ended because their reader was too slow.\n"
		"# TYPE tollgate_api_event_streams_dropped_total counter\n"
		"tollgate_api_event_streams_dropped_total %llu\n"
		"# HELP tollgate_api_events_total Events sent to the "
		"streams.\n"
		"# TYPE tollgate_api_events_total counter\n"
		"tollgate_api_events_total %llu\n",
		api->ev_streams,
		(unsigned long long)api->ev_opened,
		(unsigned long long)api->ev_refused,
		(unsigned long long)api->ev_dropped,
		(unsigned long long)api->ev_sent);
}
