/**
 * @file uas.c  The caller's leg: a new INVITE, replies, 2xx reliability
 */

#include <string.h>
#include "b2bua_int.h"


/* Q.850 34, no circuit/channel available (RFC 3398: 503): no carrier
   will carry the call at a price the customer pays */
#define REASON_NO_MARGIN \
	"Reason: Q.850;cause=34;text=\"no carrier within the margin\"\r\n"


static void cancel_handler(void *arg)
{
	struct b2bua_call *call = arg;
	const struct call_evarg end = {
		.reason = B2BUA_R_CANCELLED,
		.scode  = 487,
		.phrase = "Request Terminated",
	};

	tlog_info(call_logid(call), "caller cancelled in state %s",
		  b2bua_state_name(call->state));

	(void)call_event(call, CEV_CANCEL, &end);
}


/**
 * The dialled number as routing, rating and the gateway see it: digits
 * only, with an optional leading '+' (dropped: numbers are kept in E.164
 * form without it) and the visual separators of RFC 3966 ('-', '.', '(',
 * ')') removed.  Anything else (letters, '*', '#', escapes, parameters)
 * is not a number.
 *
 * @return 0, or EINVAL if the user part is no number
 */
int b2bua_number_normalise(char *buf, size_t sz, const struct pl *user)
{
	size_t i = 0, n = 0;

	if (!buf || !sz || !pl_isset(user))
		return EINVAL;

	if (user->p[0] == '+')
		i = 1;

	for (; i < user->l; i++) {
		const char c = user->p[i];

		if (c >= '0' && c <= '9') {
			if (n + 1 >= sz || n >= B2BUA_NUMBER_MAX)
				return EINVAL;
			buf[n++] = c;
		}
		else if (!strchr("-.()", c) || c == '\0') {
			return EINVAL;
		}
	}

	buf[n] = '\0';

	return n ? 0 : EINVAL;
}


/**
 * The dialled number as number_in rules see it: as
 * b2bua_number_normalise() but a leading '+' is kept
 *
 * @return 0, or EINVAL if the user part is no number
 */
int b2bua_number_dialled(char *buf, size_t sz, const struct pl *user)
{
	int err;

	if (!buf || sz < 2 || !pl_isset(user))
		return EINVAL;

	if (user->p[0] != '+')
		return b2bua_number_normalise(buf, sz, user);

	err = b2bua_number_normalise(buf + 1, sz - 1, user);
	if (!err)
		buf[0] = '+';

	return err;
}


/* bytes the database and the JSON of the API take as they are */
static bool text_ok(const struct pl *pl)
{
	return !pl_isset(pl) || text_utf8_valid(pl->p, pl->l);
}


/**
 * A light structural check of an SDP body: "v=0" first, then only
 * "<letter>=<value>" lines, with o=, s= and at least one m= line.
 */
static bool sdp_wellformed(const struct mbuf *mb)
{
	const char *p = (const char *)mbuf_buf(mb);
	const char *end = p + mbuf_get_left(mb);
	bool o = false, s = false, m = false, first = true;

	while (p < end) {
		const char *eol = memchr(p, '\n', end - p);
		size_t len = eol ? (size_t)(eol - p) : (size_t)(end - p);

		if (len && p[len - 1] == '\r')
			--len;

		if (len) {
			if (len < 2 || p[1] != '=' || p[0] < 'a' || p[0] > 'z')
				return false;
			if (first && (len < 3 || strncmp(p, "v=0", 3)))
				return false;
			first = false;
			o |= p[0] == 'o';
			s |= p[0] == 's';
			m |= p[0] == 'm';
		}

		if (!eol)
			break;
		p = eol + 1;
	}

	return o && s && m;
}


static int pl_strdup_unquote(char **dst, const struct pl *pl)
{
	struct pl v = *pl;

	if (!pl_isset(&v)) {
		*dst = NULL;
		return 0;
	}

	if (v.l >= 2 && v.p[0] == '"' && v.p[v.l - 1] == '"') {
		v.p += 1;
		v.l -= 2;
	}

	if (!v.l) {
		*dst = NULL;
		return 0;
	}

	return pl_strdup(dst, &v);
}


/*
 * The values an account is looked up by: the digest credentials, and a
 * trusted peer's identity header
 */
static bool identity_text_ok(const struct b2bua_conf *cfg,
			     const struct sip_msg *msg)
{
	const struct cfg_peer *peer;
	const struct sip_hdr *hdr;

	hdr = sip_msg_hdr(msg, SIP_HDR_PROXY_AUTHORIZATION);
	if (hdr && !text_ok(&hdr->val))
		return false;

	peer = cfg_peer_find(cfg, &msg->src, msg->tp);
	if (peer && peer->mode == CFG_ID_HEADER) {
		hdr = sip_msg_xhdr(msg, peer->hdr);
		if (hdr && !text_ok(&hdr->val))
			return false;
	}

	return true;
}


static void reply_stateless(struct b2bua *b, const struct sip_msg *msg,
			    uint16_t scode, const char *phrase,
			    const char *hdrs)
{
	struct sip_strans *st = NULL;
	char cid[96];

	(void)re_snprintf(cid, sizeof(cid), "%r", &msg->callid);
	tlog_info(cid, "INVITE from %J refused: %u %s", &msg->src, scode,
		  phrase);

	/* a source not authenticated hears one answer, never repeated */
	if (!b2bua_src_trusted(b, msg)) {
		(void)guard_reply(b, msg, scode, phrase, hdrs, NULL);
		return;
	}

	/* a peer's INVITE hears 100 Trying first, even one refused at once */
	if (!sip_strans_alloc(&st, b->sip, msg, NULL, NULL))
		(void)sip_treply(&st, b->sip, msg, 100, "Trying");

	(void)sip_treplyf(&st, NULL, b->sip, msg, false, scode, phrase,
			  "%sContent-Length: 0\r\n\r\n", hdrs ? hdrs : "");
}


/* an option tag of Require that tollgate does not support */
static bool unsupported(const struct sip_hdr *hdr, const struct sip_msg *msg,
			void *arg)
{
	struct pl v = hdr->val;
	(void)msg;
	(void)arg;

	while (v.l && (v.p[0] == ' ' || v.p[0] == '\t')) {
		++v.p;
		--v.l;
	}
	while (v.l && (v.p[v.l - 1] == ' ' || v.p[v.l - 1] == '\t'))
		--v.l;

	return 0 != pl_strcasecmp(&v, "timer") &&
		0 != pl_strcasecmp(&v, "100rel");
}


/** A new INVITE (no To tag) arrived */
void uas_invite(struct b2bua *b, const struct sip_msg *msg)
{
	const struct b2bua_conf *cfg = b->cfg;
	const struct sip_hdr *hdr;
	struct b2bua_call *call = NULL;
	uint32_t maxfwd = 70;
	uint16_t scode = 0;
	char buf[160], number[B2BUA_NUMBER_MAX + 1];
	char dialled[B2BUA_NUMBER_MAX + 2];
	bool trusted = b2bua_src_trusted(b, msg);
	int err;

	/* a blocked source hears what any failed authentication hears */
	if (!trusted && guard_src_blocked(b->guard, &msg->src)) {
		if (cfg->auth_fail_answer != B2BUA_FAIL_SILENCE)
			(void)guard_reply(b, msg, 403, "Forbidden", NULL,
					  NULL);
		return;
	}

	/* a node that drains takes no new call: a dispatcher in front
	   tries the next node */
	if (b->draining) {
		reply_stateless(b, msg, 503, "Service Unavailable",
				"Retry-After: " B2BUA_DRAIN_RETRY "\r\n");
		return;
	}

	if (cfg->max_calls && b->ncalls >= cfg->max_calls) {
		reply_stateless(b, msg, 503, "Service Unavailable",
				"Retry-After: 5\r\n");
		return;
	}

	hdr = sip_msg_hdr(msg, SIP_HDR_MAX_FORWARDS);
	if (hdr) {
		struct pl v = hdr->val;

		if (!v.l || v.l > 3 || re_regex(v.p, v.l, "[0-9]+", NULL)) {
			reply_stateless(b, msg, 400, "Bad Max-Forwards", NULL);
			return;
		}
		maxfwd = pl_u32(&v);
		if (maxfwd == 0) {
			reply_stateless(b, msg, 483, "Too Many Hops", NULL);
			return;
		}
	}

	hdr = sip_msg_hdr_apply(msg, true, SIP_HDR_REQUIRE, unsupported,
				NULL);
	if (hdr) {
		(void)re_snprintf(buf, sizeof(buf), "Unsupported: %r\r\n",
				  &hdr->val);
		reply_stateless(b, msg, 420, "Bad Extension", buf);
		return;
	}

	if (timer_invite_check(cfg, msg, buf, sizeof(buf), &scode)) {
		reply_stateless(b, msg, scode, scode == 422 ?
				"Session Interval Too Small" : "Bad Request",
				buf);
		return;
	}

	if (!sip_msg_hdr(msg, SIP_HDR_CONTACT)) {
		reply_stateless(b, msg, 400, "Missing Contact", NULL);
		return;
	}

	if (mbuf_get_left(msg->mb)) {
		if (!msg_ctype_cmp(&msg->ctyp, "application", "sdp")) {
			reply_stateless(b, msg, 415, "Unsupported Media Type",
					"Accept: application/sdp\r\n");
			return;
		}
		if (!sdp_wellformed(msg->mb)) {
			reply_stateless(b, msg, 400, "Malformed SDP", NULL);
			return;
		}
	}

	/* before any database work: what reaches SQL parameters, CDRs,
	 * the API's JSON and the gateway's From is well-formed UTF-8
	 * without controls */
	if (!text_ok(&msg->callid) || !text_ok(&msg->from.uri.user) ||
	    !text_ok(&msg->from.dname) || !text_ok(&msg->to.uri.user)) {
		(void)re_snprintf(buf, sizeof(buf), "%r", &msg->callid);
		tlog_warn(buf, "From \"%r\" <%r>, To <%r>: not UTF-8 text",
			  &msg->from.dname, &msg->from.uri.user,
			  &msg->to.uri.user);
		reply_stateless(b, msg, 400, "Bad Request",
				"Reason: SIP;cause=400;text=\"invalid "
				"characters\"\r\n");
		return;
	}

	if (!identity_text_ok(b->cfg, msg)) {
		reply_stateless(b, msg, 400, "Bad Request",
				"Reason: SIP;cause=400;text=\"invalid "
				"characters\"\r\n");
		return;
	}

	if (!pl_isset(&msg->uri.user) ||
	    b2bua_number_normalise(number, sizeof(number), &msg->uri.user) ||
	    b2bua_number_dialled(dialled, sizeof(dialled), &msg->uri.user)) {
		reply_stateless(b, msg, 484, "Address Incomplete",
				"Reason: SIP;cause=484;text=\"invalid number\""
				"\r\n");
		return;
	}

	err = call_alloc(&call, b, msg);
	if (err) {
		reply_stateless(b, msg, 500, "Server Internal Error", NULL);
		return;
	}

	call->maxfwd = maxfwd - 1;
	call->authed = trusted;
	call->caller_100rel = prack_caller(msg);

	/* the transaction absorbs retransmissions while the caller is
	 * identified; only a trusted peer hears 100 Trying at once */
	err = sip_strans_alloc(&call->st, b->sip, msg, cancel_handler, call);
	if (err)
		goto fail;

	if (trusted || cfg->unauth_trying) {
		err = sip_treply(&call->st, b->sip, msg, 100, "Trying");
		if (err)
			goto fail;
	}

	err  = str_dup(&call->callee, number);
	err |= str_dup(&call->dialled, dialled);
	err |= pl_isset(&msg->from.uri.user)
		? pl_strdup(&call->caller, &msg->from.uri.user)
		: str_dup(&call->caller, "anonymous");
	err |= pl_strdup_unquote(&call->from_name, &msg->from.dname);
	if (err)
		goto fail;

	tlog_info(call_logid(call), "INVITE %s from %s@%J via %s",
		  call->callee, call->caller, &msg->src,
		  sip_transp_name(msg->tp));

	auth_identify(call, msg);
	return;

 fail:
	tlog_err(call_logid(call), "cannot take the call: %m", err);
	if (!call->st || !trusted) {
		call->st = mem_deref(call->st);
		reply_stateless(b, msg, 500, "Server Internal Error", NULL);
	}
	(void)call_fail(call, B2BUA_R_FAILED, 500, "Server Internal Error",
			NULL);
}


static void append_hdr(struct mbuf *mb, const struct sip_hdr *hdr)
{
	(void)mbuf_printf(mb, "%r: %r\r\n", &hdr->name, &hdr->val);
}


/*
 * A value that every peer reads as this one header: CR LF only where it
 * folds the line (a blank follows), no other control characters (RFC 3261
 * 25.1).  libre keeps NUL, a lone CR and the like in a value; copied as
 * they are they could cut the gateway's request short or start a header
 * of the caller's choice at a gateway that ends lines at a lone CR.
 */
static bool value_clean(const struct pl *v)
{
	size_t i;

	for (i = 0; i < v->l; i++) {
		const uint8_t c = (uint8_t)v->p[i];

		if (c == '\r' && i + 2 < v->l && v->p[i + 1] == '\n' &&
		    (v->p[i + 2] == ' ' || v->p[i + 2] == '\t')) {
			i += 2;
			continue;
		}

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return false;
	}

	return true;
}


static bool copy_handler(const struct sip_hdr *hdr, const struct sip_msg *msg,
			 void *arg)
{
	(void)msg;
	if (value_clean(&hdr->val))
		append_hdr(arg, hdr);
	return false;
}


/* headers that say who calls or for whom: only a trusted peer's are
 * taken as they are */
static bool identity_hdr(const char *name)
{
	static const char * const namev[] = {
		"P-Asserted-Identity", "P-Preferred-Identity", "Privacy",
		"Diversion", "History-Info", "Remote-Party-ID",
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(namev); i++) {
		if (!str_casecmp(name, namev[i]))
			return true;
	}

	return false;
}


/* a SIP URI user part: unreserved and user-unreserved characters as
 * they are, anything else %-escaped (RFC 3261 25.1) */
static int user_print(struct re_printf *pf, const char *user)
{
	int err = 0;

	for (; user && *user && !err; user++) {
		const unsigned char c = (unsigned char)*user;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || strchr("-_.!~*'()&=+$,;?/", c))
			err = re_hprintf(pf, "%c", c);
		else
			err = re_hprintf(pf, "%%%02X", c);
	}

	return err;
}


/**
 * Build the headers copied from the caller's INVITE to the gateway's.  A
 * trusted peer's P-Asserted-Identity, Privacy and Diversion go as they
 * came; any other caller asserts nothing: the gateway hears the account's
 * own identity, sip:ACCOUNT@REALM, and no Privacy or Diversion.
 */
int uas_copy_headers(struct b2bua_call *call)
{
	/* by name: libre's header ids are 12-bit hashes of the name, which
	   other names share ("Via92.0.2.7reseed_counvacy" is one) */
	static const char *const names[] = {
		"P-Asserted-Identity", "Privacy", "Diversion"
	};
	const struct b2bua_conf *cfg = call->b->cfg;
	const struct sip_msg *msg = call->inv;
	struct le *le;
	bool trusted;
	size_t i;

	call->hdrs = mbuf_alloc(256);
	if (!call->hdrs)
		return ENOMEM;

	trusted = b2bua_src_trusted(call->b, msg);

	if (trusted) {
		for (i = 0; i < ARRAY_SIZE(names); i++)
			(void)sip_msg_xhdr_apply(msg, true, names[i],
						 copy_handler, call->hdrs);
	}
	else if (call->account) {
		(void)mbuf_printf(call->hdrs, "P-Asserted-Identity: "
				  "<sip:%H@%s>\r\n", user_print,
				  call->account,
				  cfg->realm ? cfg->realm : "tollgate");
	}

	for (le = cfg->copyl.head; le; le = le->next) {
		const struct cfg_hdr *ch = le->data;

		if (!trusted && identity_hdr(ch->name))
			continue;

		(void)sip_msg_xhdr_apply(msg, true, ch->name, copy_handler,
					 call->hdrs);
	}

	call->hdrs->pos = 0;

	return 0;
}


/*
 * The number_in rules of the call's table (from the database), or of the
 * configuration file: the normalised number, E.164 digits without '+',
 * is what routing, rating and the CDR's callee see; the dialled one is
 * kept for the CDR.  False if the call was refused (484).
 */
static bool translate_in(struct b2bua_call *call)
{
	const struct list *rulel = b2bua_routes_xlat(call->b->routes);
	const struct b2bua_xlat *hit;
	char out[B2BUA_NUMBER_MAX + B2BUA_XLAT_PREFIX + 4];
	const char *n;
	int err;

	if (!rulel)
		rulel = &call->b->cfg->xlatl;

	err = b2bua_xlat_apply(rulel, B2BUA_XLAT_IN, call->account,
			       &call->src, NULL, call->dialled, out,
			       sizeof(out), &hit);
	n = out[0] == '+' ? out + 1 : out;
	if (!err && (!*n || strlen(n) > B2BUA_NUMBER_MAX))
		err = EINVAL;
	if (err) {
		tlog_info(call_logid(call), "number %s: %s", call->dialled,
			  hit ? "number_in rule gives no number" :
			  "not a number");
		call_fail(call, B2BUA_R_REJECTED, 484, "Address Incomplete",
			  "Reason: SIP;cause=484;text=\"invalid number\""
			  "\r\n");
		return false;
	}

	if (!hit)
		return true;

	mem_deref(call->callee);
	if (str_dup(&call->callee, n)) {
		call_fail(call, B2BUA_R_FAILED, 500, "Server Internal Error",
			  NULL);
		return false;
	}

	tlog_info(call_logid(call), "number %s normalised to %s (number_in "
		  "of line %u)", call->dialled, call->callee, hit->line);

	return true;
}


/*
 * The gateways the call may go to, in order: a plain route's, each
 * priced by its carrier's deck if it has one; a least-cost route's from
 * the decks of the call's table
 */
static int candidates_build(struct b2bua_call *call)
{
	const struct b2bua_conf *cfg = call->b->cfg;
	const struct cfg_route *rt = call->route;
	int64_t now = (int64_t)b2bua_wallclock_ms();
	uint32_t i;

	if (rt->lcr) {
		if (!call->routes)
			return ENOENT;
		return b2bua_routes_lcr(call->routes, call->callee, now,
					cfg->lcr_ref_duration, &call->candv,
					&call->candc);
	}

	if (!rt->gwc)
		return ENOENT;

	call->candv = mem_zalloc(rt->gwc * sizeof(*call->candv), NULL);
	if (!call->candv)
		return ENOMEM;

	for (i = 0; i < rt->gwc; i++) {
		struct call_cand *k = &call->candv[i];
		const struct b2bua_tariff *t = NULL;

		k->gw = rt->gwv[i];
		k->pos = i;
		if (k->gw->car)
			t = b2bua_deck_lookup(k->gw->car->deck, call->callee,
					      now, NULL);
		if (t) {
			k->t = *t;
			k->priced = true;
		}
	}
	call->candc = rt->gwc;

	return 0;
}


static bool tariff_eq(const struct b2bua_tariff *a,
		      const struct b2bua_tariff *b)
{
	return a->connect_fee == b->connect_fee &&
		a->per_minute == b->per_minute &&
		a->initial == b->initial && a->subsequent == b->subsequent;
}


/*
 * b2bua_margin_ok() for a customer's and a carrier's price, remembered:
 * the answer depends on the two prices only (the margin and horizon are
 * the configuration's), and a node sees few pairs, so most calls cost a
 * hash and a compare instead of a walk over the carrier's increments
 */
static bool margin_memo_ok(struct b2bua *b, const struct b2bua_tariff *cu,
			   const struct b2bua_tariff *ca)
{
	const struct b2bua_tariff key[2] = { *cu, *ca };
	struct margin_memo *m;

	m = &b->margin[hash_joaat((const uint8_t *)key, sizeof(key)) %
		       B2BUA_MARGIN_CACHE];

	if (m->used && tariff_eq(&m->customer, cu) &&
	    tariff_eq(&m->carrier, ca))
		return m->ok;

	m->customer = *cu;
	m->carrier = *ca;
	m->ok = b2bua_margin_ok(cu, ca, b->cfg->lcr_min_margin,
				b->cfg->lcr_margin_horizon);
	m->used = true;

	return m->ok;
}


/*
 * The margin guard: with the customer's price known, a carrier of a
 * least-cost route that would cost more than it, or leave less than
 * lcr_min_margin percent of it, over every duration up to
 * lcr_margin_horizon (b2bua_margin_ok()), is not tried.
 *
 * @return the candidates left
 */
static uint32_t margin_guard(struct b2bua_call *call)
{
	uint32_t i, left = 0;

	for (i = 0; i < call->candc; i++) {
		struct call_cand *k = &call->candv[i];

		if (call->priced && call->route->lcr && k->priced &&
		    !margin_memo_ok(call->b, &call->price, &k->t)) {
			k->dropped = true;
			tlog_info(call_logid(call), "carrier %s (gateway %s) "
				  "left out: below the margin",
				  k->car ? k->car->name : "?", k->gw->name);
			continue;
		}
		++left;
	}

	return left;
}


/** The caller is known: route, announce, authorise */
void uas_proceed(struct b2bua_call *call)
{
	struct b2bua *b = call->b;
	uint32_t retry = 1;
	char hdr[32];
	int err;

	/* the account's calls per second, in memory on this node */
	if (call->max_cps && b->lim &&
	    !limiter_account(b->lim, call->account_id, call->max_cps,
			     &retry)) {
		++b->st.limit_rejected[B2BUA_LIMIT_ACCOUNT];
		tlog_info(call_logid(call), "account %s over %u calls a "
			  "second", call->account, call->max_cps);
		(void)re_snprintf(hdr, sizeof(hdr), "Retry-After: %u\r\n",
				  retry);
		call_fail(call, B2BUA_R_REJECTED, 503, "Service Unavailable",
			  hdr);
		return;
	}

	if (!translate_in(call))
		return;

	if (b->routes) {
		call->routes = mem_ref(b->routes);
		call->route = b2bua_routes_find(b->routes, call->callee);
	}
	else {
		call->route = cfg_route_find(call->cfg, call->callee);
	}

	err = call->route ? candidates_build(call) : ENOENT;
	if (err == ENOMEM) {
		call_fail(call, B2BUA_R_FAILED, 500, "Server Internal Error",
			  NULL);
		return;
	}
	if (err) {
		call_fail(call, B2BUA_R_REJECTED, 404, "No Route",
			  "Reason: Q.850;cause=3;text=\"no route to "
			  "destination\"\r\n");
		return;
	}

	err = uas_copy_headers(call);
	if (err) {
		call_fail(call, B2BUA_R_FAILED, 500, "Server Internal Error",
			  NULL);
		return;
	}

	/* the subscribers hear of the call now and may end it at once */
	mem_ref(call);
	if (call_event(call, CEV_IDENTIFIED, NULL) || call_over(call))
		goto out;

	if (b->authzh) {
		call->authz_pending = true;
		err = b->authzh(call, b->authz_arg);
		if (err && call->authz_pending) {
			call->authz_pending = false;
			call_fail(call, B2BUA_R_FAILED, 500,
				  "Server Internal Error", NULL);
		}
	}
	else {
		b2bua_call_authorized(call, 0, NULL, NULL);
	}

 out:
	mem_deref(call);
}


void b2bua_call_authorized(struct b2bua_call *call, uint16_t scode,
			   const char *reason, const char *hdrs)
{
	if (!call)
		return;

	call->authz_pending = false;

	if (scode >= 300) {
		const struct call_evarg end = {
			.reason = B2BUA_R_REJECTED,
			.scode  = scode,
			.phrase = reason ? reason : "Forbidden",
			.hdrs   = hdrs,
		};

		(void)call_event(call, CEV_REFUSED, &end);
		return;
	}

	if (!margin_guard(call)) {
		const struct call_evarg end = {
			.reason = B2BUA_R_NO_MARGIN,
			.scode  = 503,
			.phrase = "Service Unavailable",
			.hdrs   = REASON_NO_MARGIN,
		};

		tlog_info(call_logid(call), "no carrier for %s within the "
			  "margin", call->callee);
		call->gwi = call->candc;    /* no gateway saw the call */
		(void)call_event(call, CEV_REFUSED, &end);
		return;
	}

	call->gwi = call_next_usable(call, 0);
	if (call->gwi >= call->candc) {
		const struct call_evarg end = {
			.reason = B2BUA_R_REJECTED,
			.scode  = 503,
			.phrase = "Service Unavailable",
			.hdrs   = "Reason: Q.850;cause=34;text=\"no gateway "
				  "usable\"\r\n",
		};

		(void)call_event(call, CEV_REFUSED, &end);
		return;
	}

	if (call_event(call, CEV_AUTHORIZED, NULL))
		return;

	uac_start(call);
}


static void retransmit_2xx(void *arg)
{
	struct leg *leg = arg;

	(void)sip_send(leg->call->b->sip, NULL, leg->tp, &leg->dst2xx,
		       leg->mb2xx);

	leg->txc++;
	tmr_start(&leg->tmr2xx, MIN(SIP_T1 << leg->txc, SIP_T2),
		  retransmit_2xx, leg);
}


static void ack_timeout(void *arg)
{
	struct leg *leg = arg;
	struct b2bua_call *call = leg->call;

	tmr_cancel(&leg->tmr2xx);
	leg->mb2xx = mem_deref(leg->mb2xx);

	tlog_warn(call_logid(call), "no ACK for our 2xx on the %s leg",
		  leg->side == LEG_CALLER ? "caller" : "gateway");

	if (!call_over(call)) {
		const struct call_evarg end = { .reason = B2BUA_R_FAILED };

		(void)call_event(call, CEV_END, &end);
		return;
	}

	if (leg->bye_pending) {
		leg->bye_pending = false;
		(void)leg_bye(leg, call->reason_hdr);
		call_done_check(call);
	}
}


int b2bua_contact(struct re_printf *pf, const struct sip_msg *msg)
{
	struct sip_contact contact;

	sip_contact_set(&contact, "tollgate", &msg->dst, msg->tp);

	return sip_contact_print(pf, &contact);
}


/**
 * Send a 2xx to an INVITE received on this leg and keep it until the ACK
 * (retransmitted over UDP, RFC 3261 13.3.1.4).
 */
int leg_reply_2xx(struct leg *leg, struct sip_strans **stp,
		  const struct sip_msg *msg, uint16_t scode,
		  const char *reason, const char *hdrs, const char *ctype,
		  const struct mbuf *body)
{
	struct mbuf *mb = NULL;
	struct pl rp;
	bool rport;
	int err;

	err = sip_treplyf(stp, &mb, leg->call->b->sip, msg, true, scode,
			  reason,
			  "%H"
			  "Allow: " B2BUA_ALLOW "\r\n"
			  "%s%H",
			  b2bua_contact, msg, hdrs ? hdrs : "",
			  body_print, &(struct body){ctype, body});
	if (err)
		return err;

	rport = 0 == msg_param_exists(&msg->via.params, "rport", &rp);

	mem_deref(leg->mb2xx);
	leg->mb2xx = mb;
	sip_reply_addr(&leg->dst2xx, msg, rport);
	leg->cseq2xx = msg->cseq.num;
	leg->txc = 0;

	if (!sip_transp_reliable(msg->tp))
		tmr_start(&leg->tmr2xx, SIP_T1, retransmit_2xx, leg);
	tmr_start(&leg->tmr2xx_to, 64 * SIP_T1, ack_timeout, leg);

	return 0;
}


/** An ACK for our 2xx on this leg; false if it acknowledged nothing new */
bool leg_ack_2xx(struct leg *leg, const struct sip_msg *msg)
{
	if (!leg->mb2xx || msg->cseq.num != leg->cseq2xx)
		return false;

	tmr_cancel(&leg->tmr2xx);
	tmr_cancel(&leg->tmr2xx_to);
	leg->mb2xx = mem_deref(leg->mb2xx);

	return true;
}
