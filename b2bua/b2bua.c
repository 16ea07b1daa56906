/**
 * @file b2bua.c  The B2BUA: SIP stack, message dispatch, subscribers
 */

#include <string.h>
#include "b2bua_int.h"


struct sub {
	struct le le;
	b2bua_event_h *h;
	void *arg;
};


/** Tell every subscriber; rec with B2BUA_EV_ENDED and B2BUA_EV_FAILED */
void b2bua_emit(struct b2bua_call *call, enum b2bua_event ev,
		const struct b2bua_call_record *rec)
{
	struct le *le;

	tlog_dbg(call_logid(call), "event %s", b2bua_event_name(ev));

	le = call->b->subl.head;
	while (le) {
		struct sub *sub = le->data;
		le = le->next;
		sub->h(call, ev, rec, sub->arg);
	}
}


/**
 * Content-Type, Content-Length, the blank line and the body (or just
 * "Content-Length: 0" and the blank line)
 */
int body_print(struct re_printf *pf, const struct body *body)
{
	size_t len = body->mb ? mbuf_get_left(body->mb) : 0;

	if (!len)
		return re_hprintf(pf, "Content-Length: 0\r\n\r\n");

	return re_hprintf(pf, "Content-Type: %s\r\n"
			  "Content-Length: %zu\r\n"
			  "\r\n"
			  "%b",
			  body->ctype ? body->ctype : "application/sdp", len,
			  mbuf_buf(body->mb), len);
}


/** Send handler that adds our Contact for the transport libre chose */
int contact_sendh(enum sip_transp tp, const struct sa *src,
		  const struct sa *dst, struct mbuf *mb, void *arg)
{
	struct sip_contact contact;

	(void)dst;
	(void)arg;

	sip_contact_set(&contact, "tollgate", src, tp);

	return mbuf_printf(mb, "%H", sip_contact_print, &contact);
}


/*
 * A reply without a transaction.  A source that is no trusted peer gets
 * it only if it is no larger than the request (hdrs_small, if given, is
 * tried when hdrs makes it too large): no reflection of bigger answers.
 */
/** Does the request come from a trusted peer (address, transport, port)? */
bool b2bua_src_trusted(const struct b2bua *b, const struct sip_msg *msg)
{
	return cfg_peer_find(b->cfg, &msg->src, msg->tp) != NULL;
}


static void reply_plain(struct b2bua *b, const struct sip_msg *msg,
			uint16_t scode, const char *phrase, const char *hdrs,
			const char *hdrs_small)
{
	if (!b2bua_src_trusted(b, msg)) {
		(void)guard_reply(b, msg, scode, phrase, hdrs, hdrs_small);
		return;
	}

	(void)sip_treplyf(NULL, NULL, b->sip, msg, false, scode, phrase,
			  "%sContent-Length: 0\r\n\r\n", hdrs ? hdrs : "");
}


#define ALLOW "Allow: " B2BUA_ALLOW "\r\n"


/*
 * OPTIONS outside a dialog: what SIP proxies and dispatchers probe a node
 * with.  A draining node answers 503, so that they send it no new calls.
 */
static void reply_options(struct b2bua *b, const struct sip_msg *msg)
{
	const struct sip_hdr *req = sip_msg_hdr(msg, SIP_HDR_REQUIRE);

	if (b->draining) {
		reply_plain(b, msg, 503, "Service Unavailable",
			    "Retry-After: " B2BUA_DRAIN_RETRY "\r\n", "");
		return;
	}

	if (req) {
		char buf[160];

		(void)re_snprintf(buf, sizeof(buf), "Unsupported: %r\r\n",
				  &req->val);
		reply_plain(b, msg, 420, "Bad Extension", buf, "");
		return;
	}

	reply_plain(b, msg, 200, "OK",
		    ALLOW "Accept: application/sdp\r\n"
		    "Supported: timer\r\n", "");
}


/*
 * libre receives every UDP datagram into an 8 KB buffer that the parsed
 * message keeps; the INVITE server transaction keeps that message for 64*T1
 * after the 2xx.  SIP over UDP is meant for messages well under the path
 * MTU (RFC 3261 18.1.1), so a smaller buffer costs nothing and saves about
 * half the memory of every recent call.
 */
enum { SIP_UDP_RXSZ = 4096 };

/*
 * The kernel's default UDP receive buffer (about 200 KB) holds a few
 * hundred messages: at several hundred calls a second, a pause of the
 * process of a tenth of a second (a busy or shared machine) overflows it
 * and the datagrams are lost, to be retransmitted 500 ms later.  Ask for
 * 4 MB (the kernel caps it at net.core.rmem_max), as SIP proxies do.
 */
enum { SIP_UDP_SOCKBUF = 4 << 20 };


/* first message on a UDP socket: its buffer sizes */
static void udp_tune(struct b2bua *b, struct udp_sock *us)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(b->tuned); i++) {
		if (b->tuned[i] == us)
			return;

		if (!b->tuned[i]) {
			b->tuned[i] = us;
			udp_rxsz_set(us, SIP_UDP_RXSZ);
			if (udp_sockbuf_set(us, SIP_UDP_SOCKBUF))
				tlog_warn(NULL, "sip: cannot enlarge a UDP"
					  " socket's buffers");
			return;
		}
	}

	/* more sockets than expected: still the small receive size */
	udp_rxsz_set(us, SIP_UDP_RXSZ);
}


/*
 * A request outside any known dialog over a limit: a stateless 503 (no
 * transaction, never retransmitted) or nothing.  An ACK is never charged:
 * it is never answered and creates nothing.
 */
static bool door_refused(struct b2bua *b, const struct sip_msg *msg,
			 bool invite)
{
	enum b2bua_limit lim;
	uint32_t retry = 1;

	if (!b->lim || !pl_strcmp(&msg->met, "ACK"))
		return false;

	lim = limiter_request(b->lim, msg, invite, &retry);
	if (lim == B2BUA_LIMIT_COUNT)
		return false;

	++b->st.limit_rejected[lim];

	if (b->cfg->limit_reply == 0)
		(void)sip_replyf(b->sip, msg, 503, "Service Unavailable",
				 "Retry-After: %u\r\n"
				 "Content-Length: 0\r\n\r\n", retry);

	return true;
}


/*
 * A new INVITE while the node is over its capacity (the admission hook,
 * billing's view of the database queue): the cheapest answer there is, a
 * stateless 503 with Retry-After before any transaction or database work,
 * so that what the node can do goes to the calls it took.
 */
static bool admit_refused(struct b2bua *b, const struct sip_msg *msg)
{
	uint32_t retry = 1;

	if (!b->admith || b->admith(&retry, b->admit_arg))
		return false;

	(void)sip_replyf(b->sip, msg, 503, "Service Unavailable",
			 "Retry-After: %u\r\n"
			 "Reason: Q.850;cause=42;text=\"switching equipment"
			 " congestion\"\r\n"
			 "Content-Length: 0\r\n\r\n", retry);

	return true;
}


/* a datagram libre could not decode is answered within the limits */
static bool rescue_gate(const struct sa *src, void *arg)
{
	struct b2bua *b = arg;
	enum b2bua_limit lim;
	uint32_t retry = 1;

	if (!b->lim)
		return true;

	lim = limiter_source(b->lim, src, SIP_TRANSP_UDP, false, &retry);
	if (lim == B2BUA_LIMIT_COUNT)
		return true;

	++b->st.limit_rejected[lim];

	return false;
}


static bool request_handler(const struct sip_msg *msg, void *arg)
{
	struct b2bua *b = arg;
	struct leg *leg;
	bool invite;

	if (msg->tp == SIP_TRANSP_UDP && msg->sock)
		udp_tune(b, msg->sock);

	if (pl_isset(&msg->to.tag)) {

		leg = leg_find(b, msg);
		if (leg) {
			if (!request_refused(b, msg))
				dialog_request(leg, msg);
			return true;
		}

		if (door_refused(b, msg, false) || request_refused(b, msg))
			return true;

		if (pl_strcmp(&msg->met, "ACK"))
			reply_plain(b, msg, 481,
				    "Call/Transaction Does Not Exist", NULL,
				    NULL);
		return true;
	}

	invite = !pl_strcmp(&msg->met, "INVITE");
	if (door_refused(b, msg, invite) ||
	    (invite && !b->draining && admit_refused(b, msg)) ||
	    request_refused(b, msg))
		return true;

	if (invite) {
		uas_invite(b, msg);
	}
	else if (!pl_strcmp(&msg->met, "OPTIONS")) {
		reply_options(b, msg);
	}
	else if (!pl_strcmp(&msg->met, "ACK")) {
		/* stray ACK: nothing to answer */
	}
	else if (!pl_strcmp(&msg->met, "CANCEL") ||
		 !pl_strcmp(&msg->met, "BYE")) {
		reply_plain(b, msg, 481, "Call/Transaction Does Not Exist",
			    NULL, NULL);
	}
	else {
		reply_plain(b, msg, 405, "Method Not Allowed", ALLOW, "");
	}

	return true;
}


/* responses no client transaction claimed: 2xx retransmissions */
static bool response_handler(const struct sip_msg *msg, void *arg)
{
	struct b2bua *b = arg;

	if (pl_strcmp(&msg->cseq.met, "INVITE"))
		return false;

	if (msg->scode < 200 || msg->scode > 299)
		return false;

	return leg_ack_again(b, msg);
}


static void destructor(void *arg)
{
	struct b2bua *b = arg;

	hash_flush(b->ht_calls);
	mem_deref(b->ht_calls);
	call_index_flush(b);
	mem_deref(b->ht_acct_id);
	mem_deref(b->ht_acct_name);
	mem_deref(b->gwtab);
	mem_deref(b->lsnr_req);
	mem_deref(b->lsnr_resp);
	hash_clear(b->ht_legs);
	mem_deref(b->ht_legs);
	list_flush(&b->subl);
	mem_deref(b->store);
	mem_deref(b->routes);
	mem_deref(b->lim);
	mem_deref(b->nonces);
	mem_deref(b->guard);
	if (b->rescue)
		rescue_use(false, NULL, b);
	if (b->sip)
		sip_close(b->sip, true);
	mem_deref(b->sip);
	mem_deref(b->tls);
	mem_deref((void *)b->cfg);
}


/**
 * Take a new configuration (a reload), at once, for new calls: their
 * trusted peers, number rules, limits, timers, gateways' settings and
 * the configuration's gateways and routes.  Running calls keep what they
 * hold (their routing table, gateways and the configuration they came
 * under).  The listening sockets, TLS context and realm stay (the new
 * configuration has the old values of those keys, see cfg_reload()).
 * With the routing table in the database, the configuration's gateways
 * and routes are written there and the table loaded again: h is called
 * once new calls are routed by it (err 0), unless *rlp is dereferenced
 * first.  Without it (b2bua_store_start() not called) h is not called
 * and *rlp stays NULL.
 *
 * @return 0 or EINVAL
 */
int b2bua_reconfigure(struct b2bua *b, const struct b2bua_conf *cfg,
		      struct b2bua_reload **rlp, b2bua_reload_h *h,
		      void *arg)
{
	const struct b2bua_conf *old;
	int err = 0;

	if (!b || !cfg || !rlp)
		return EINVAL;

	*rlp = NULL;
	if (cfg == b->cfg)
		return 0;

	old = b->cfg;
	b->cfg = mem_ref((void *)cfg);
	limiter_set_conf(b->lim, cfg);
	mem_deref((void *)old);

	/* new gateways of the routing table take their settings from it */
	(void)gw_table_reconf(b);

	if (b->store) {
		store_reconf(b->store);
		if (h)
			err = b2bua_store_reload(rlp, b, h, arg);
	}
	else {
		b2bua_set_routes(b, b->routes);
	}

	return err;
}


int b2bua_alloc(struct b2bua **bp, const struct b2bua_conf *cfg)
{
	struct b2bua *b;
	struct le *le;
	int err;

	if (!bp || !cfg)
		return EINVAL;

	b = mem_zalloc(sizeof(*b), destructor);
	if (!b)
		return ENOMEM;

	b->cfg = mem_ref((void *)cfg);
	rand_bytes(b->nonce_key, sizeof(b->nonce_key));

	err  = hash_alloc(&b->ht_legs, 16384);
	err |= hash_alloc(&b->ht_calls, 16384);
	err |= hash_alloc(&b->ht_acct_name, 1024);
	err |= hash_alloc(&b->ht_acct_id, 1024);
	err |= limiter_alloc(&b->lim, cfg);
	err |= nonce_alloc(b);
	err |= guard_alloc(&b->guard, b);
	if (err)
		goto out;

	err = sip_alloc(&b->sip, NULL, 16384, 16384, 4096,
			"tollgate/" TOLLGATE_VERSION, NULL, NULL);
	if (err)
		goto out;

	if (b2bua_tls_needed(cfg)) {
		char why[256] = "";
		unsigned line;

		err = b2bua_tls_alloc(&b->tls, cfg, why, sizeof(why), &line);
		if (err) {
			tlog_err(NULL, "%s:%u: %s", cfg->file, line, why);
			goto out;
		}
	}

	for (le = cfg->listenl.head; le; le = le->next) {
		const struct cfg_listen *l = le->data;

		/* a UDP transport answers what libre cannot decode */
		rescue_arm(l->tp == SIP_TRANSP_UDP);
		if (l->tp == SIP_TRANSP_TLS)
			err = sip_transp_add(b->sip, l->tp, &l->addr, b->tls);
		else
			err = sip_transp_add(b->sip, l->tp, &l->addr);
		rescue_arm(false);
		if (err) {
			tlog_err(NULL, "%s: cannot listen on %s:%J: %m",
				 cfg->file, sip_transp_name(l->tp), &l->addr,
				 err);
			goto out;
		}
		tlog_info(NULL, "SIP listening on %s:%J",
			  sip_transp_name(l->tp), &l->addr);
	}

	rescue_use(true, rescue_gate, b);
	b->rescue = true;

	err  = sip_listen(&b->lsnr_req, b->sip, true, request_handler, b);
	err |= sip_listen(&b->lsnr_resp, b->sip, false, response_handler, b);
	if (err)
		goto out;

	/* the gateways' probes start once the loop runs */
	err = gw_table_alloc(b);
	if (err)
		goto out;

 out:
	if (err)
		mem_deref(b);
	else
		*bp = b;

	return err;
}


int b2bua_subscribe(struct b2bua *b, b2bua_event_h *h, void *arg)
{
	struct sub *sub;

	if (!b || !h)
		return EINVAL;

	sub = mem_zalloc(sizeof(*sub), NULL);
	if (!sub)
		return ENOMEM;

	sub->h = h;
	sub->arg = arg;
	list_append(&b->subl, &sub->le, sub);

	return 0;
}


void b2bua_set_authz(struct b2bua *b, b2bua_authz_h *h, void *arg)
{
	if (!b)
		return;

	b->authzh = h;
	b->authz_arg = arg;
}


void b2bua_set_admit(struct b2bua *b, b2bua_admit_h *h, void *arg)
{
	if (!b)
		return;

	b->admith = h;
	b->admit_arg = arg;
}


void b2bua_set_sdp(struct b2bua *b, b2bua_sdp_h *h, void *arg)
{
	if (!b)
		return;

	b->sdph = h;
	b->sdp_arg = arg;
}


void b2bua_set_cred(struct b2bua *b, b2bua_cred_h *h, void *arg)
{
	if (!b)
		return;

	b->credh = h;
	b->cred_arg = arg;
}


uint32_t b2bua_call_count(const struct b2bua *b)
{
	return b ? b->ncalls : 0;
}


struct apply_ctx {
	b2bua_call_apply_h *h;
	void *arg;
};


static bool apply_handler(struct le *le, void *arg)
{
	struct apply_ctx *ctx = arg;

	return ctx->h(le->data, ctx->arg);
}


struct b2bua_call *b2bua_call_apply(const struct b2bua *b,
				    b2bua_call_apply_h *h, void *arg)
{
	struct apply_ctx ctx = { h, arg };
	struct le *le;

	if (!b || !h)
		return NULL;

	le = hash_apply(b->ht_calls, apply_handler, &ctx);

	return le ? le->data : NULL;
}


static bool id_cmp(struct le *le, void *arg)
{
	const struct b2bua_call *call = le->data;

	return 0 == strcmp(call->id, arg);
}


struct b2bua_call *b2bua_call_find(const struct b2bua *b, const char *id)
{
	if (!b || !id)
		return NULL;

	return list_ledata(hash_lookup(b->ht_calls, hash_joaat_str(id),
				       id_cmp, (void *)id));
}


static bool shutdown_handler(struct le *le, void *arg)
{
	struct b2bua_call *call = le->data;
	(void)arg;

	(void)b2bua_call_end(call, B2BUA_R_SHUTDOWN,
			     "SIP;cause=503;text=\"service shutting down\"");

	return false;
}


static bool collect_handler(struct le *le, void *arg)
{
	struct list *calls = arg;
	struct le *e = mem_zalloc(sizeof(*e), NULL);

	if (e)
		list_append(calls, e, mem_ref(le->data));

	return false;
}


/**
 * Drain: take no new calls (an INVITE or OPTIONS outside a dialog gets
 * 503 with Retry-After) and let the running calls go on, in-dialog
 * requests included; doneh runs once the last call is gone (at once if
 * there is none).  Calling it again only replaces doneh.
 */
void b2bua_drain(struct b2bua *b, void (*doneh)(void *arg), void *arg)
{
	if (!b)
		return;

	if (!b->draining)
		tlog_info(NULL, "draining: no new calls, %u running",
			  b->ncalls);

	b->draining = true;
	b->shutdownh = doneh;
	b->shutdown_arg = arg;

	if (!b->ncalls && b->shutdownh) {
		b->shutdownh = NULL;
		doneh(arg);
	}
}


bool b2bua_draining(const struct b2bua *b)
{
	return b ? b->draining : false;
}


/**
 * Stop taking calls (503) and end every call with BYE on both legs;
 * doneh runs once the last call is gone.
 */
void b2bua_shutdown(struct b2bua *b, void (*doneh)(void *arg), void *arg)
{
	struct list calls = LIST_INIT;
	struct le *le;

	if (!b)
		return;

	b->draining = true;
	b->shutting_down = true;
	b->shutdownh = doneh;
	b->shutdown_arg = arg;

	tlog_info(NULL, "shutting down: ending %u calls", b->ncalls);

	/* collect first: ending a call may unlink it from the hash */
	(void)hash_apply(b->ht_calls, collect_handler, &calls);

	while ((le = list_head(&calls))) {
		struct b2bua_call *call = le->data;

		list_unlink(le);
		mem_deref(le);
		shutdown_handler(&call->he, NULL);
		mem_deref(call);
	}

	if (!b->ncalls && b->shutdownh) {
		b->shutdownh = NULL;
		doneh(arg);
	}
}


static bool debug_handler(struct le *le, void *arg)
{
	const struct b2bua_call *call = le->data;
	struct re_printf *pf = arg;

	(void)re_hprintf(pf, "  %s %-11s %s -> %s via %s\n", call->id,
			 b2bua_state_name(call->state), call->caller,
			 call->callee, b2bua_call_gateway(call));

	return false;
}


int b2bua_debug(struct re_printf *pf, const struct b2bua *b)
{
	int err;

	if (!b)
		return 0;

	err = re_hprintf(pf, "calls: %u\n", b->ncalls);
	hash_apply(b->ht_calls, debug_handler, pf);

	return err;
}
