/**
 * @file dialog.c  In-dialog requests: ACK, BYE, re-INVITE, UPDATE, INFO
 */

#include <string.h>
#include "b2bua_int.h"


static void bye_resp_handler(int err, const struct sip_msg *msg, void *arg)
{
	struct leg *leg = arg;
	struct b2bua_call *call = leg->call;

	if (!err && msg && msg->scode < 200)
		return;

	if (err)
		tlog_warn(call_logid(call), "BYE toward the %s: %m",
			  leg->side == LEG_CALLER ? "caller" : "gateway", err);

	call_done_check(call);
}


/**
 * The next hop of a request on a leg.  libre takes the transport from the
 * dialog's route (the peer's Contact, or its first Record-Route) and falls
 * back to UDP when it names none, even on a dialog made over TCP or TLS:
 * such a request stays on the leg's own transport instead.  A sips: URI
 * means TLS (RFC 3261 19.1), which libre's request layer does not read.
 */
static const struct uri *leg_route(const struct leg *leg, struct uri *tmp)
{
	const struct uri *route = sip_dialog_route(leg->dlg);
	bool sips;
	struct pl pl;

	if (!route)
		return NULL;

	sips = !pl_strcasecmp(&route->scheme, "sips");
	if (!sips && (leg->tp == SIP_TRANSP_UDP ||
		      !msg_param_decode(&route->params, "transport", &pl)))
		return route;

	*tmp = *route;
	pl_set_str(&tmp->scheme, "sip");
	pl_set_str(&tmp->params, sip_transp_param(sips ? SIP_TRANSP_TLS :
						  leg->tp));

	return tmp;
}


/**
 * sip_drequestf() on a leg's dialog, with the next hop of leg_route()
 *
 * @param cseq  CSeq number (ACK), 0 for the dialog's next one
 */
int leg_drequestf(struct sip_request **reqp, struct leg *leg, bool stateful,
		  const char *met, uint32_t cseq, sip_send_h *sendh,
		  sip_resp_h *resph, void *arg, const char *fmt, ...)
{
	struct uri tmp;
	const struct uri *route;
	struct mbuf *mb;
	va_list ap;
	int err;

	if (!leg || !leg->dlg || !met || !fmt)
		return EINVAL;

	route = leg_route(leg, &tmp);
	if (!route)
		return EINVAL;

	mb = mbuf_alloc(2048);
	if (!mb)
		return ENOMEM;

	err  = mbuf_write_str(mb, "Max-Forwards: 70\r\n");
	err |= sip_dialog_encode(mb, leg->dlg, cseq, met);
	err |= mbuf_write_str(mb, "User-Agent: tollgate/" TOLLGATE_VERSION
			      "\r\n");
	if (err)
		goto out;

	va_start(ap, fmt);
	err = mbuf_vprintf(mb, fmt, ap);
	va_end(ap);
	if (err)
		goto out;

	mb->pos = 0;

	if (leg->tp == SIP_TRANSP_TLS)
		b2bua_tls_expect(leg->call->b->tls, &route->host);

	err = sip_request(reqp, leg->call->b->sip, stateful, met, -1,
			  sip_dialog_uri(leg->dlg), -1, route, mb,
			  sip_dialog_hash(leg->dlg), sendh, resph, arg);

	b2bua_tls_expect(leg->call->b->tls, NULL);

 out:
	mem_deref(mb);

	return err;
}


/** Send BYE on a leg (once), with an optional Reason header value */
int leg_bye(struct leg *leg, const char *reason_hdr)
{
	int err;

	if (!leg || !leg->dlg || !sip_dialog_established(leg->dlg) ||
	    leg->byereq)
		return 0;

	/* RFC 3261 15: no BYE before the ACK for our 2xx */
	if (leg->mb2xx && leg->side == LEG_CALLER &&
	    leg->call->state != B2BUA_ST_CLOSED) {
		leg->bye_pending = true;
		return 0;
	}

	err = leg_drequestf(&leg->byereq, leg, true, "BYE", 0, NULL,
			    bye_resp_handler, leg,
			    "%s%s%s"
			    "Content-Length: 0\r\n"
			    "\r\n",
			    reason_hdr ? "Reason: " : "",
			    reason_hdr ? reason_hdr : "",
			    reason_hdr ? "\r\n" : "");
	if (err)
		tlog_warn(call_logid(leg->call), "cannot send BYE: %m", err);

	return err;
}


static void bye_received(struct leg *leg, const struct sip_msg *msg)
{
	struct b2bua_call *call = leg->call;
	const struct sip_hdr *reason = sip_msg_hdr(msg, SIP_HDR_REASON);
	bool caller = leg->side == LEG_CALLER;
	const struct call_evarg end = {
		.reason     = caller ? B2BUA_R_CALLER : B2BUA_R_CALLEE,
		.reason_hdr = reason ? &reason->val : NULL,
	};

	(void)sip_treply(NULL, call->b->sip, msg, 200, "OK");

	tlog_info(call_logid(call), "BYE from the %s",
		  caller ? "caller" : "gateway");

	/* the peer that hung up needs no BYE from us any more */
	tmr_cancel(&leg->tmr2xx);
	leg->bye_pending = false;

	if (call_event(call, caller ? CEV_BYE_CALLER : CEV_BYE_GATEWAY,
		       &end))
		return;

	/* a call that was ending already may have waited for this leg */
	call_done_check(call);
}


static void relay_destructor(void *arg)
{
	struct relay *relay = arg;

	list_unlink(&relay->le);
	mem_deref(relay->req);
	mem_deref(relay->st);
	mem_deref((void *)relay->msg);
}


/** End every pending relayed request (the call is going) */
void relay_flush(struct b2bua_call *call)
{
	struct le *le;

	for (le = call->relayl.head; le; le = le->next) {
		struct relay *relay = le->data;

		if (relay->st)
			(void)sip_treply(&relay->st, call->b->sip, relay->msg,
					 487, "Request Terminated");
	}

	list_flush(&call->relayl);
}


static int ctype_dup(char **ctype, const struct sip_msg *msg)
{
	if (!mbuf_get_left(msg->mb)) {
		*ctype = NULL;
		return 0;
	}

	return re_sdprintf(ctype, "%r/%r", &msg->ctyp.type,
			   &msg->ctyp.subtype);
}


/* ringing: the legs' dialogs are early ones */
static bool call_early(const struct b2bua_call *call)
{
	return call->state == B2BUA_ST_CALLING ||
		call->state == B2BUA_ST_RINGING;
}


/* prints nothing (the place of a Contact a reply does not carry) */
static int body_none(struct re_printf *pf, const struct sip_msg *msg)
{
	(void)pf;
	(void)msg;

	return 0;
}


static void relay_resp_handler(int err, const struct sip_msg *msg, void *arg)
{
	struct relay *relay = arg;
	struct b2bua_call *call = relay->call;
	struct sip *sip = call->b->sip;
	enum b2bua_dir dir;
	struct mbuf *body = NULL;
	char *ctype = NULL;
	char phrase[64], hdrs[160] = "";
	bool end = false, early;

	if (!err && msg && msg->scode < 200)
		return;

	mem_ref(call);

	if (err || !msg) {
		tlog_warn(call_logid(call), "relayed %r: %m",
			  &relay->msg->met, err);
		(void)sip_treply(&relay->st, sip, relay->msg,
				 err == ETIMEDOUT ? 408 : 503,
				 err == ETIMEDOUT ? "Request Timeout"
				 : "Service Unavailable");
		end = relay->invite;
		goto out;
	}

	(void)re_snprintf(phrase, sizeof(phrase), "%r", &msg->reason);
	dir = relay->from->side == LEG_CALLER ? B2BUA_DIR_TO_CALLER
		: B2BUA_DIR_TO_GATEWAY;

	if (msg->scode < 300 && relay->invite) {

		(void)sip_dialog_update(relay->to->dlg, msg);
		(void)leg_send_ack(relay->to, msg, NULL, NULL);
		timer_answer_received(relay->to, msg);

		err = sdp_apply(call, dir, msg, &body);
		if (!err)
			err = ctype_dup(&ctype, msg);
		if (!err)
			err = timer_offer_received(relay->from, relay->msg,
						   hdrs, sizeof(hdrs));
		if (!err)
			err = leg_reply_2xx(relay->from, &relay->st,
					    relay->msg, msg->scode, phrase,
					    hdrs, ctype, body);
		if (!err) {
			timer_start(relay->from);
			leg_sdp_keep(relay->from, ctype, body);
		}
		if (err) {
			tlog_warn(call_logid(call), "re-INVITE answer: %m",
				  err);
			(void)sip_treply(&relay->st, sip, relay->msg, 500,
					 "Server Internal Error");
		}
	}
	else {
		uint16_t scode = msg->scode;

		if (scode == 401 || scode == 407) {
			scode = 403;
			str_ncpy(phrase, "Forbidden", sizeof(phrase));
		}

		if (scode < 300)
			err = sdp_apply(call, dir, msg, &body);
		if (!err && body)
			err = ctype_dup(&ctype, msg);

		/* a 2xx to an UPDATE refreshes both legs' sessions (of a
		   call answered: the timers run from the answer) */
		early = call_early(call);
		if (!err && scode < 300 && relay->update) {
			(void)sip_dialog_update(relay->to->dlg, msg);
			if (!early)
				timer_answer_received(relay->to, msg);
			if (!early)
				err = timer_offer_received(relay->from,
							   relay->msg, hdrs,
							   sizeof(hdrs));
		}
		if (err && scode < 300) {
			tlog_warn(call_logid(call), "%r answer: %m",
				  &relay->msg->met, err);
			scode = 500;
			str_ncpy(phrase, "Server Internal Error",
				 sizeof(phrase));
			body = mem_deref(body);
			hdrs[0] = '\0';
		}

		err = sip_treplyf(&relay->st, NULL, sip, relay->msg, false,
				  scode, phrase, "%H%s%H",
				  relay->update && scode < 300 ? b2bua_contact
				  : body_none, relay->msg, hdrs, body_print,
				  &(struct body){ctype, body});
		if (!err && scode < 300 && relay->update && !early) {
			timer_start(relay->from);
			leg_sdp_keep(relay->from, ctype, body);
		}

		/* the far dialog is gone */
		end = scode == 481 || (relay->invite && scode == 408);
	}

 out:
	mem_deref(body);
	mem_deref(ctype);
	mem_deref(relay);

	if (end)
		(void)b2bua_call_end(call, B2BUA_R_FAILED, NULL);

	mem_deref(call);
}


static int hdrs_none(struct re_printf *pf, const struct leg *leg)
{
	(void)pf;
	(void)leg;

	return 0;
}


/**
 * Relay an in-dialog request to the other leg; answer with its answer.
 * xhdrs: header lines of tollgate's own for the relayed request
 */
void relay_start(struct leg *from, const struct sip_msg *msg, bool invite,
		 bool update, const char *xhdrs)
{
	struct b2bua_call *call = from->call;
	struct sip *sip = call->b->sip;
	struct leg *to = leg_peer(from);
	struct relay *relay;
	struct mbuf *body = NULL;
	char *ctype = NULL;
	char met[32];
	int err;

	if (!to || !to->dlg || !sip_dialog_established(to->dlg)) {
		(void)sip_treply(NULL, sip, msg, 481,
				 "Call/Transaction Does Not Exist");
		return;
	}

	relay = mem_zalloc(sizeof(*relay), relay_destructor);
	if (!relay) {
		(void)sip_treply(NULL, sip, msg, 500, "Server Internal Error");
		return;
	}

	list_append(&call->relayl, &relay->le, relay);
	relay->call = call;
	relay->from = from;
	relay->to = to;
	relay->invite = invite;
	relay->update = update;
	relay->msg = mem_ref((void *)msg);

	err = sip_strans_alloc(&relay->st, sip, msg, NULL, NULL);
	if (err)
		goto out;

	if (invite) {
		(void)sip_treply(&relay->st, sip, msg, 100, "Trying");
		(void)sip_dialog_update(from->dlg, msg);
	}

	err = sdp_apply(call, from->side == LEG_CALLER ? B2BUA_DIR_TO_GATEWAY
			: B2BUA_DIR_TO_CALLER, msg, &body);
	if (err)
		goto out;

	err = ctype_dup(&ctype, msg);
	if (err)
		goto out;

	(void)re_snprintf(met, sizeof(met), "%r", &msg->met);

	err = leg_drequestf(&relay->req, to, true, met, 0,
			    invite || update ? contact_sendh : NULL,
			    relay_resp_handler, relay, "%H%s%H",
			    invite || update ? timer_req_hdrs : hdrs_none, to,
			    xhdrs ? xhdrs : "",
			    body_print, &(struct body){ctype, body});
	if (err)
		goto out;

	leg_sdp_keep(to, ctype, body);

	tlog_dbg(call_logid(call), "%s from the %s relayed", met,
		 from->side == LEG_CALLER ? "caller" : "gateway");

 out:
	mem_deref(body);
	mem_deref(ctype);

	if (err) {
		tlog_warn(call_logid(call), "cannot relay %r: %m", &msg->met,
			  err);
		if (relay->st)
			(void)sip_treply(&relay->st, sip, msg,
					 err == ENOSPC ? 503 : 500,
					 err == ENOSPC ? "Service Unavailable"
					 : "Server Internal Error");
		mem_deref(relay);
	}
}


static bool invite_pending(const struct b2bua_call *call)
{
	struct le *le;

	for (le = call->relayl.head; le; le = le->next) {
		const struct relay *relay = le->data;

		if (relay->invite)
			return true;
	}

	return false;
}


/* a session timer below min_se (422) or malformed (400) */
static bool timer_refused(struct leg *leg, const struct sip_msg *msg)
{
	struct sip *sip = leg->call->b->sip;
	uint16_t scode = 0;
	char hdrs[128];

	if (!timer_invite_check(leg->call->b->cfg, msg, hdrs, sizeof(hdrs),
				&scode))
		return false;

	(void)sip_treplyf(NULL, NULL, sip, msg, false, scode,
			  scode == 422 ? "Session Interval Too Small"
			  : "Bad Request", "%sContent-Length: 0\r\n\r\n",
			  hdrs);

	return true;
}


/*
 * A session refresh without an offer, answered on its own leg: the other
 * leg has its own timer.  A re-INVITE gets the SDP tollgate last sent on
 * the leg (the same version: nothing changes), an UPDATE no body.
 */
static void refresh_answer(struct leg *leg, const struct sip_msg *msg,
			   bool invite)
{
	struct b2bua_call *call = leg->call;
	struct sip *sip = call->b->sip;
	char hdrs[160];
	int err;

	(void)sip_dialog_update(leg->dlg, msg);

	/* a session timer runs from the answer only */
	hdrs[0] = '\0';
	err = call_early(call) ? 0 : timer_offer_received(leg, msg, hdrs,
							   sizeof(hdrs));
	if (err)
		goto out;

	if (invite)
		err = leg_reply_2xx(leg, NULL, msg, 200, "OK", hdrs, NULL,
				    leg->sdp_out);
	else
		err = sip_treplyf(NULL, NULL, sip, msg, false, 200, "OK",
				  "%H%sContent-Length: 0\r\n\r\n",
				  b2bua_contact, msg, hdrs);
	if (err)
		goto out;

	tlog_dbg(call_logid(call), "session refresh (%r) from the %s "
		 "answered", &msg->met,
		 leg->side == LEG_CALLER ? "caller" : "gateway");
	if (!call_early(call))
		timer_start(leg);

 out:
	if (err) {
		tlog_warn(call_logid(call), "cannot answer %r: %m", &msg->met,
			  err);
		(void)sip_treply(NULL, sip, msg, 500, "Server Internal Error");
	}
}


static void reinvite(struct leg *leg, const struct sip_msg *msg)
{
	struct b2bua_call *call = leg->call;
	struct sip *sip = call->b->sip;
	struct leg *peer = leg_peer(leg);

	if (invite_pending(call) || leg->mb2xx || (peer && peer->mb2xx) ||
	    (leg->sereq && leg->sereq_invite) ||
	    (peer && peer->sereq && peer->sereq_invite)) {
		tlog_info(call_logid(call), "re-INVITE from the %s while one "
			  "is pending: 491",
			  leg->side == LEG_CALLER ? "caller" : "gateway");
		(void)sip_treply(NULL, sip, msg, 491, "Request Pending");
		return;
	}

	if (mbuf_get_left(msg->mb) &&
	    !msg_ctype_cmp(&msg->ctyp, "application", "sdp")) {
		(void)sip_treplyf(NULL, NULL, sip, msg, false, 415,
				  "Unsupported Media Type",
				  "Accept: application/sdp\r\n"
				  "Content-Length: 0\r\n\r\n");
		return;
	}

	if (timer_refused(leg, msg))
		return;

	if (!mbuf_get_left(msg->mb) && leg->sdp_out) {
		refresh_answer(leg, msg, true);
		return;
	}

	relay_start(leg, msg, true, false, NULL);
}


/* UPDATE (RFC 3311) in a confirmed dialog */
static void update(struct leg *leg, const struct sip_msg *msg)
{
	struct b2bua_call *call = leg->call;
	struct sip *sip = call->b->sip;

	if (timer_refused(leg, msg))
		return;

	if (!mbuf_get_left(msg->mb)) {
		refresh_answer(leg, msg, false);
		return;
	}

	if (!msg_ctype_cmp(&msg->ctyp, "application", "sdp")) {
		(void)sip_treplyf(NULL, NULL, sip, msg, false, 415,
				  "Unsupported Media Type",
				  "Accept: application/sdp\r\n"
				  "Content-Length: 0\r\n\r\n");
		return;
	}

	/* an offer while another is open */
	if (timer_busy(leg) || timer_busy(leg_peer(leg)) ||
	    call->relayl.head) {
		(void)sip_treplyf(NULL, NULL, sip, msg, false, 491,
				  "Request Pending",
				  "Retry-After: 1\r\n"
				  "Content-Length: 0\r\n\r\n");
		return;
	}

	relay_start(leg, msg, false, true, NULL);
}


/** A request that matched the dialog of one of the call's legs */
void dialog_request(struct leg *leg, const struct sip_msg *msg)
{
	struct b2bua_call *call = leg->call;
	struct sip *sip = call->b->sip;

	mem_ref(call);

	if (!pl_strcmp(&msg->met, "ACK")) {

		if (!leg_ack_2xx(leg, msg))
			goto out;

		if (leg->side == LEG_CALLER) {
			uac_ack_late(call, msg);
			(void)call_event(call, CEV_ACK, NULL);
		}

		if (leg->bye_pending) {
			leg->bye_pending = false;
			(void)leg_bye(leg, call->reason_hdr);
			call_done_check(call);
		}
		goto out;
	}

	if (!sip_dialog_rseq_valid(leg->dlg, msg)) {
		(void)sip_treply(NULL, sip, msg, 500, "Server Internal Error");
		goto out;
	}

	/* an early dialog (a 1xx with a To tag) takes UPDATE and PRACK */
	if (call_early(call) && !pl_strcmp(&msg->met, "UPDATE")) {
		update(leg, msg);
		goto out;
	}

	if (!pl_strcmp(&msg->met, "PRACK")) {
		prack_request(leg, msg);
		goto out;
	}

	if (!pl_strcmp(&msg->met, "BYE") && !call_early(call)) {
		bye_received(leg, msg);
		goto out;
	}

	if (call->state != B2BUA_ST_ANSWERED &&
	    call->state != B2BUA_ST_CONFIRMED) {
		(void)sip_treply(NULL, sip, msg, 481,
				 "Call/Transaction Does Not Exist");
		goto out;
	}

	if (!pl_strcmp(&msg->met, "INVITE")) {
		reinvite(leg, msg);
	}
	else if (!pl_strcmp(&msg->met, "INFO")) {
		relay_start(leg, msg, false, false, NULL);
	}
	else if (!pl_strcmp(&msg->met, "UPDATE")) {
		update(leg, msg);
	}
	else if (!pl_strcmp(&msg->met, "OPTIONS")) {
		(void)sip_treplyf(NULL, NULL, sip, msg, false, 200, "OK",
				  "Allow: " B2BUA_ALLOW "\r\n"
				  "Supported: timer\r\n"
				  "Content-Length: 0\r\n\r\n");
	}
	else if (!pl_strcmp(&msg->met, "REFER")) {
		/* a transfer would let a caller reach any number unrated */
		(void)sip_treply(NULL, sip, msg, 403, "Forbidden");
	}
	else {
		(void)sip_treplyf(NULL, NULL, sip, msg, false, 405,
				  "Method Not Allowed",
				  "Allow: " B2BUA_ALLOW "\r\n"
				  "Content-Length: 0\r\n\r\n");
	}

 out:
	mem_deref(call);
}
