/**
 * @file calls.c  REST API: running calls (GET /v1/calls, GET and DELETE
 *                /v1/calls/{id})
 *
 * Everything here is read from memory on the event loop: the B2BUA's
 * calls, billing's view of their money, the relay's media statistics.
 * The calls of other nodes are read from the database (cluster.c) and
 * ended through them (control.c).
 */

#include <string.h>
#include <time.h>
#include "api_int.h"


static int add_dir(struct odict *od, const char *key,
		   const struct relay_dir_stats *d)
{
	struct odict *o;
	int err;

	err = odict_alloc(&o, 8);
	if (err)
		return err;

	err  = odict_entry_add(o, "packets", ODICT_INT, (int64_t)d->packets);
	err |= odict_entry_add(o, "bytes", ODICT_INT, (int64_t)d->bytes);
	err |= odict_entry_add(o, "lost", ODICT_INT, d->lost);
	err |= odict_entry_add(o, "jitter_us", ODICT_INT,
			       (int64_t)d->jitter_us);
	err |= odict_entry_add(o, "rtcp_packets", ODICT_INT,
			       (int64_t)d->rtcp_packets);
	err |= odict_entry_add(o, "dropped", ODICT_INT, (int64_t)d->dropped);
	err |= odict_entry_add(o, "foreign_dropped", ODICT_INT,
			       (int64_t)d->foreign);
	err |= odict_entry_add(od, key, ODICT_OBJECT, o);
	mem_deref(o);

	return err;
}


static int add_media(struct odict *od, const struct api *api,
		     const struct b2bua_call *call)
{
	struct relay_stream_stats v[RELAY_MAX_STREAMS];
	struct odict *arr;
	unsigned n = RELAY_MAX_STREAMS, i;
	int err;

	err = odict_alloc(&arr, 4);
	if (err)
		return err;

	if (relay_call_stats(api->relay, call, v, &n))
		n = 0;

	for (i = 0; i < n && !err; i++) {
		struct odict *s;
		char key[8];

		err = odict_alloc(&s, 8);
		if (err)
			break;

		(void)re_snprintf(key, sizeof(key), "%u", i);
		err  = odict_entry_add(s, "media", ODICT_STRING, v[i].media);
		err |= add_dir(s, "to_gateway", &v[i].to_gateway);
		err |= add_dir(s, "to_caller", &v[i].to_caller);
		err |= odict_entry_add(arr, key, ODICT_OBJECT, s);
		mem_deref(s);
	}

	if (!err)
		err = odict_entry_add(od, "media", ODICT_ARRAY, arr);
	mem_deref(arr);

	return err;
}


static int str_or_null(struct odict *od, const char *key, const char *v)
{
	return v ? odict_entry_add(od, key, ODICT_STRING, v) :
		odict_entry_add(od, key, ODICT_NULL);
}


/** One call of this node as a JSON object */
int api_call_odict(struct odict **odp, const struct api *api,
		      const struct b2bua_call *call)
{
	const struct api_hooks *hk = &api->hooks;
	struct api_call_money bi;
	struct odict *od;
	bool billed;
	int err;

	err = odict_alloc(&od, 32);
	if (err)
		return err;

	billed = hk->call_money && !hk->call_money(call, &bi, hk->arg);

	err  = odict_entry_add(od, "id", ODICT_STRING, b2bua_call_id(call));
	err |= str_or_null(od, "node", api->node);
	err |= str_or_null(od, "sip_call_id", b2bua_call_sipid(call));
	err |= str_or_null(od, "account", b2bua_call_account(call));
	err |= odict_entry_add(od, "account_id", ODICT_INT,
			       b2bua_call_account_id(call));
	err |= str_or_null(od, "caller", b2bua_call_caller(call));
	err |= str_or_null(od, "callee", b2bua_call_callee(call));
	err |= str_or_null(od, "gateway", b2bua_call_gateway(call));
	err |= odict_entry_add(od, "state", ODICT_STRING,
			       b2bua_state_name(b2bua_call_state(call)));
	err |= api_add_time(od, "setup_at", b2bua_call_setup_ms(call));
	err |= api_add_time(od, "answer_at", b2bua_call_answer_ms(call));

	if (billed) {
		err |= odict_entry_add(od, "seconds", ODICT_INT,
				       (int64_t)bi.seconds);
		err |= api_add_money(od, "reserved", bi.reserved);
		err |= api_add_money(od, "spent", bi.spent);
		err |= bi.seconds_left >= 0 ?
			odict_entry_add(od, "seconds_left", ODICT_INT,
					bi.seconds_left) :
			odict_entry_add(od, "seconds_left", ODICT_NULL);
		err |= bi.rate_id ?
			odict_entry_add(od, "rate_id", ODICT_INT, bi.rate_id) :
			odict_entry_add(od, "rate_id", ODICT_NULL);
	}
	else {
		uint64_t ans = b2bua_call_answer_ms(call);
		uint64_t now = b2bua_wallclock_ms();

		err |= odict_entry_add(od, "seconds", ODICT_INT,
				       (int64_t)(ans && now > ans ?
						 (now - ans) / 1000 : 0));
		err |= odict_entry_add(od, "reserved", ODICT_NULL);
		err |= odict_entry_add(od, "spent", ODICT_NULL);
		err |= odict_entry_add(od, "seconds_left", ODICT_NULL);
		err |= odict_entry_add(od, "rate_id", ODICT_NULL);
	}

	err |= add_media(od, api, call);

	if (err)
		mem_deref(od);
	else
		*odp = od;

	return err ? ENOMEM : 0;
}


/* ---- the same CALL written straight as JSON, for pages of calls ---- */

static int js_str(struct re_printf *pf, const char *key, const char *v)
{
	return v ? re_hprintf(pf, "\"%s\":\"%H\"", key, utf8_encode, v) :
		re_hprintf(pf, "\"%s\":null", key);
}


static int js_time(struct re_printf *pf, const char *key, uint64_t ms)
{
	struct tm tm;
	time_t t = (time_t)(ms / 1000);

	if (!ms || !gmtime_r(&t, &tm))
		return re_hprintf(pf, "\"%s\":null", key);

	return re_hprintf(pf, "\"%s\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03uZ\"",
			  key, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
			  tm.tm_hour, tm.tm_min, tm.tm_sec,
			  (unsigned)(ms % 1000));
}


static int js_dir(struct re_printf *pf, const char *key,
		  const struct relay_dir_stats *d)
{
	return re_hprintf(pf, "\"%s\":{\"packets\":%lld,\"bytes\":%lld,"
			  "\"lost\":%lld,\"jitter_us\":%lld,"
			  "\"rtcp_packets\":%lld,\"dropped\":%lld,"
			  "\"foreign_dropped\":%lld}", key,
			  (long long)d->packets, (long long)d->bytes,
			  (long long)d->lost, (long long)d->jitter_us,
			  (long long)d->rtcp_packets, (long long)d->dropped,
			  (long long)d->foreign);
}


/*
 * One call of this node as api_call_odict() describes it, printed as
 * json_encode_odict() would print that object (same members, same
 * order), without building it: a page of calls costs a tenth as much.
 */
int api_call_json(struct re_printf *pf, const struct js_call *jc)
{
	const struct api *api = jc->api;
	const struct b2bua_call *call = jc->call;
	const struct api_hooks *hk = &api->hooks;
	struct relay_stream_stats v[RELAY_MAX_STREAMS];
	struct api_call_money bi;
	unsigned n = RELAY_MAX_STREAMS, i;
	bool billed;
	int err;

	billed = hk->call_money && !hk->call_money(call, &bi, hk->arg);

	err  = re_hprintf(pf, "{");
	err |= js_str(pf, "id", b2bua_call_id(call));
	err |= re_hprintf(pf, ",");
	err |= js_str(pf, "node", api->node);
	err |= re_hprintf(pf, ",");
	err |= js_str(pf, "sip_call_id", b2bua_call_sipid(call));
	err |= re_hprintf(pf, ",");
	err |= js_str(pf, "account", b2bua_call_account(call));
	err |= re_hprintf(pf, ",\"account_id\":%lld,",
			  (long long)b2bua_call_account_id(call));
	err |= js_str(pf, "caller", b2bua_call_caller(call));
	err |= re_hprintf(pf, ",");
	err |= js_str(pf, "callee", b2bua_call_callee(call));
	err |= re_hprintf(pf, ",");
	err |= js_str(pf, "gateway", b2bua_call_gateway(call));
	err |= re_hprintf(pf, ",");
	err |= js_str(pf, "state", b2bua_state_name(b2bua_call_state(call)));
	err |= re_hprintf(pf, ",");
	err |= js_time(pf, "setup_at", b2bua_call_setup_ms(call));
	err |= re_hprintf(pf, ",");
	err |= js_time(pf, "answer_at", b2bua_call_answer_ms(call));

	if (billed) {
		err |= re_hprintf(pf, ",\"seconds\":%lld,\"reserved\":\"%H\","
				  "\"spent\":\"%H\"", (long long)bi.seconds,
				  api_money_print, &bi.reserved,
				  api_money_print, &bi.spent);
		err |= bi.seconds_left >= 0 ?
			re_hprintf(pf, ",\"seconds_left\":%lld",
				   (long long)bi.seconds_left) :
			re_hprintf(pf, ",\"seconds_left\":null");
		err |= bi.rate_id ?
			re_hprintf(pf, ",\"rate_id\":%lld",
				   (long long)bi.rate_id) :
			re_hprintf(pf, ",\"rate_id\":null");
	}
	else {
		uint64_t ans = b2bua_call_answer_ms(call);
		uint64_t now = b2bua_wallclock_ms();

		err |= re_hprintf(pf, ",\"seconds\":%lld,\"reserved\":null,"
				  "\"spent\":null,\"seconds_left\":null,"
				  "\"rate_id\":null",
				  (long long)(ans && now > ans ?
					      (now - ans) / 1000 : 0));
	}

	if (relay_call_stats(api->relay, call, v, &n))
		n = 0;

	err |= re_hprintf(pf, ",\"media\":[");
	for (i = 0; i < n; i++) {
		err |= re_hprintf(pf, "%s{", i ? "," : "");
		err |= js_str(pf, "media", v[i].media);
		err |= re_hprintf(pf, ",");
		err |= js_dir(pf, "to_gateway", &v[i].to_gateway);
		err |= re_hprintf(pf, ",");
		err |= js_dir(pf, "to_caller", &v[i].to_caller);
		err |= re_hprintf(pf, "}");
	}
	err |= re_hprintf(pf, "]}");

	return err;
}


enum { LOCAL_LIMIT_DEFAULT = 100, LOCAL_LIMIT_MAX = 1000,
       LOCAL_SCAN_MAX = 5000 };

struct list_ctx {
	const struct api *api;       /**< borrowed                       */
	struct mbuf *mb;             /**< borrowed: the calls' JSON      */
	int state;
	unsigned n;
	unsigned limit;
	unsigned visited;
	char last[24];               /**< id of the last call looked at  */
	bool more;                   /**< calls may follow: a cursor     */
	int err;
};


/*
 * The calls come in the order of their id, those of the account alone
 * when there is an account filter (its own tree): the state filter is
 * the only one checked here, within LOCAL_SCAN_MAX calls a page.
 */
static bool calls_apply(struct b2bua_call *call, void *arg)
{
	struct list_ctx *ctx = arg;
	struct js_call jc;

	if (b2bua_call_state(call) == B2BUA_ST_CLOSED)
		return false;

	if (ctx->state >= 0 && (int)b2bua_call_state(call) != ctx->state) {
		if (++ctx->visited >= LOCAL_SCAN_MAX) {
			/* bounded: the next page goes on from here */
			str_ncpy(ctx->last, b2bua_call_id(call),
				 sizeof(ctx->last));
			ctx->more = true;
			return true;
		}
		return false;
	}

	if (ctx->n >= ctx->limit) {
		ctx->more = true;
		return true;
	}

	++ctx->visited;
	jc.api = ctx->api;
	jc.call = call;
	ctx->err = mbuf_printf(ctx->mb, "%s%H", ctx->n ? "," : "",
			       api_call_json, &jc);
	if (ctx->err)
		return true;

	++ctx->n;
	str_ncpy(ctx->last, b2bua_call_id(call), sizeof(ctx->last));

	return ctx->err != 0;
}


static int state_parse(const char *s)
{
	int i;

	for (i = 0; i < B2BUA_ST_COUNT; i++) {
		if (!strcmp(s, b2bua_state_name(i)))
			return i;
	}

	return -1;
}


/* a call id as next_cursor gave it: 1..16 lowercase hex digits */
static bool local_cursor_ok(const char *s)
{
	size_t l = strlen(s);

	return l >= 1 && l <= 16 && strspn(s, "0123456789abcdef") == l;
}


static int cursor_hex(struct re_printf *pf, const char *s)
{
	int err = 0;

	for (; *s && !err; s++)
		err = re_hprintf(pf, "%02x", (unsigned char)*s);

	return err;
}


/**
 * This node's calls (GET /v1/calls?scope=local, or of every node while
 * the database cannot be read: partial), a page of them in the order of
 * their id: limit, and the call id to go on after (after, NULL: from the
 * first).  A partial page's next_cursor is in the form of the cluster's
 * (cluster.c): HEX(node).HEX(call id).
 */
void api_calls_local(struct api_req *req, const char *account,
		     int64_t account_id, bool partial, const char *after,
		     unsigned limit)
{
	const char *st = api_arg(req, "state");
	struct list_ctx ctx;
	char *cursor = NULL;
	int err;

	memset(&ctx, 0, sizeof(ctx));
	ctx.api = req->api;
	ctx.state = st ? state_parse(st) : -1;
	ctx.limit = limit;

	ctx.mb = mbuf_alloc(1024 + 512 * (size_t)limit);
	err = ctx.mb ? mbuf_printf(ctx.mb, "{\"calls\":[") : ENOMEM;
	if (!err) {
		(void)b2bua_call_apply_sorted(req->api->b2bua, after,
					      account_id ? NULL : account,
					      account_id, calls_apply, &ctx);
		err = ctx.err;
	}

	if (!err && ctx.more) {
		if (partial)
			err = re_sdprintf(&cursor, "%H.%H", cursor_hex,
					  req->api->node ? req->api->node : "",
					  cursor_hex, ctx.last);
		else
			err = str_dup(&cursor, ctx.last);
	}

	if (!err)
		err = mbuf_printf(ctx.mb, "],\"count\":%u,\"next_cursor\":",
				  ctx.n);
	if (!err)
		err = cursor ? mbuf_printf(ctx.mb, "\"%s\"", cursor) :
			mbuf_printf(ctx.mb, "null");
	if (!err)
		err = mbuf_printf(ctx.mb, "%s}",
				  partial ? ",\"partial\":true" : "");

	if (err)
		api_error(req, 500, NULL, "cannot list calls (%m)", err);
	else
		api_reply_text(req, 200, "application/json",
			       (const char *)ctx.mb->buf, ctx.mb->end);

	mem_deref(cursor);
	mem_deref(ctx.mb);
}


/**
 * GET /v1/calls?account=NAME|ID&state=STATE&scope=local|cluster
 *   &node=&limit=&cursor=
 *
 * Every node's calls (cluster.c); this node's alone with scope=local, with
 * state= (only the node that holds a call knows its state), and when the
 * node is not part of a cluster (billing off).
 */
void api_calls_h(struct api_req *req)
{
	const char *st = api_arg(req, "state");
	const char *scope = api_arg(req, "scope");
	const char *account = api_arg(req, "account");
	int64_t account_id = 0;
	bool local;

	if (account) {
		size_t l = strlen(account);

		if (!l) {
			api_error(req, 400, "account", "empty");
			return;
		}
		if (l <= 18 && strspn(account, "0123456789") == l)
			account_id = strtoll(account, NULL, 10);
	}

	if (st && state_parse(st) < 0) {
		api_error(req, 400, "state", "unknown state '%s'", st);
		return;
	}

	if (scope && strcmp(scope, "local") && strcmp(scope, "cluster")) {
		api_error(req, 400, "scope", "must be \"local\" or "
			  "\"cluster\"");
		return;
	}

	local = (scope && !strcmp(scope, "local")) || st || !req->api->node;
	if (local) {
		const char *cur = api_arg(req, "cursor");
		int64_t limit = LOCAL_LIMIT_DEFAULT;

		if (api_arg_int(req, "limit", 1, LOCAL_LIMIT_MAX, &limit) ==
		    EINVAL)
			return;

		if (cur && !local_cursor_ok(cur)) {
			api_error(req, 400, "cursor",
				  "not a cursor this API gave");
			return;
		}

		api_calls_local(req, account, account_id, false, cur,
				(unsigned)limit);
		return;
	}

	api_calls_cluster(req, account, account_id);
}


/** End a call of this node as the operator asked (BYE both legs) */
int api_call_end_local(struct api *api, struct b2bua_call *call)
{
	int err;

	mem_ref(call);
	err = b2bua_call_end(call, B2BUA_R_ADMIN, API_REASON_ADMIN);
	mem_deref(call);
	if (!err)
		++api->admin_ends;

	return err;
}


/** GET /v1/calls/{id}, DELETE /v1/calls/{id} */
void api_call_h(struct api_req *req)
{
	struct b2bua_call *call;
	struct odict *od = NULL;
	char id[64];
	int err;

	if (req->id.l >= sizeof(id)) {
		api_error(req, 404, "id", "no call %r", &req->id);
		return;
	}

	(void)pl_strcpy(&req->id, id, sizeof(id));
	call = b2bua_call_find(req->api->b2bua, id);
	if (!call || b2bua_call_state(call) == B2BUA_ST_CLOSED) {

		/* another node's call: that node ends it */
		if (req->meth == API_DELETE)
			api_call_remote(req, id);
		else
			api_error(req, 404, "id", "no call %s", id);
		return;
	}

	mem_ref(call);

	if (req->meth == API_DELETE) {
		enum b2bua_state s = b2bua_call_state(call);

		if (s == B2BUA_ST_TERMINATING || s == B2BUA_ST_CANCELLING) {
			mem_deref(call);
			api_error(req, 409, "id", "call %s is already ending",
				  id);
			return;
		}

		err = api_call_end_local(req->api, call);
		if (err) {
			mem_deref(call);
			api_error(req, 409, "id", "cannot end call %s (%m)",
				  id, err);
			return;
		}

		tlog_info(id, "api: call ended by operator (was %s)",
			  b2bua_state_name(s));
	}

	err = api_call_odict(&od, req->api, call);
	mem_deref(call);
	if (err) {
		api_error(req, 500, NULL, "cannot describe call (%m)", err);
		return;
	}

	api_reply(req, 200, od);
	mem_deref(od);
}


struct cut_ctx {
	int64_t id;
	struct b2bua_call **v;       /**< owned array of references      */
	uint32_t n, max;
};


static bool cut_apply(struct b2bua_call *call, void *arg)
{
	struct cut_ctx *ctx = arg;
	enum b2bua_state s = b2bua_call_state(call);

	if (b2bua_call_account_id(call) != ctx->id || ctx->n >= ctx->max)
		return false;

	if (s == B2BUA_ST_TERMINATING || s == B2BUA_ST_CANCELLING ||
	    s == B2BUA_ST_CLOSED)
		return false;

	ctx->v[ctx->n++] = mem_ref(call);

	return false;
}


/**
 * End every call of an account on this node (credit set to zero, account
 * blocked).  The calls are collected first: ending one may free it.
 *
 * @return number of calls ended
 */
uint32_t api_cut_account(struct api *api, int64_t account_id,
			 enum b2bua_reason reason, const char *hdr)
{
	struct cut_ctx ctx;
	uint32_t i;

	memset(&ctx, 0, sizeof(ctx));
	ctx.id = account_id;
	ctx.max = b2bua_call_count(api->b2bua);
	if (!ctx.max)
		return 0;

	ctx.v = mem_zalloc(ctx.max * sizeof(*ctx.v), NULL);
	if (!ctx.v)
		return 0;

	/* the account's own calls, not every call */
	(void)b2bua_call_apply_sorted(api->b2bua, NULL, NULL, account_id,
				      cut_apply, &ctx);

	for (i = 0; i < ctx.n; i++) {
		tlog_info(b2bua_call_id(ctx.v[i]), "api: account %lld: "
			  "call cut", (long long)account_id);
		(void)b2bua_call_end(ctx.v[i], reason, hdr);
		mem_deref(ctx.v[i]);
	}

	mem_deref(ctx.v);

	return ctx.n;
}
