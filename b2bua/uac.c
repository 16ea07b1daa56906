/**
 * @file uac.c  The gateway's leg: INVITE, failover, CANCEL, ACK
 */

#include <string.h>
#include "b2bua_int.h"


static void uac_resp_handler(int err, const struct sip_msg *msg, void *arg);
static int  leg_dialog_final(struct leg *leg, const struct sip_msg *msg);


static void ring_timeout(void *arg)
{
	struct b2bua_call *call = arg;
	const struct call_evarg end = {
		.reason = B2BUA_R_NO_ANSWER,
		.scode  = 408,
		.phrase = "Request Timeout",
	};

	tlog_info(call_logid(call), "no answer from gateway %s within %u s",
		  b2bua_call_gateway(call), call->b->cfg->ring_timeout);

	(void)call_event(call, CEV_RING_TIMEOUT, &end);
}


static void max_duration(void *arg)
{
	struct b2bua_call *call = arg;

	tlog_info(call_logid(call), "maximum call duration (%u s) reached",
		  call->b->cfg->max_duration);

	(void)b2bua_call_end(call, B2BUA_R_MAX_DURATION,
			     "SIP;cause=200;text=\"maximum call duration\"");
}


/**
 * The next candidate that may be tried, from index i on: one the margin
 * guard did not leave out.  Every filter of the gateways a call may use
 * goes here.
 *
 * @return its index, call->candc if there is none
 */
uint32_t call_next_usable(const struct b2bua_call *call, uint32_t i)
{
	for (; i < call->candc; i++) {
		if (!call->candv[i].dropped)
			break;
	}

	return i;
}


/* the number in the gateway's format: the first number_out rule of the
   call's table (or of the configuration) for the gateway */
static int number_out(const struct b2bua_call *call,
		      const struct cfg_gateway *gw, char *buf, size_t sz)
{
	const struct list *rulel = b2bua_routes_xlat(call->routes);
	const struct b2bua_xlat *hit;
	int err;

	if (!rulel)
		rulel = &call->b->cfg->xlatl;

	err = b2bua_xlat_apply(rulel, B2BUA_XLAT_OUT, NULL, NULL, gw->name,
			       call->callee, buf, sz, &hit);
	if (err)
		tlog_warn(call_logid(call), "number_out of line %u makes no "
			  "number of %s for gateway %s", hit ? hit->line : 0,
			  call->callee, gw->name);

	return err;
}


/**
 * Send the INVITE to the current gateway of the call; again: in the
 * dialog of the last one (the next CSeq, after a 422)
 */
static int uac_send(struct b2bua_call *call, bool again)
{
	struct b2bua *b = call->b;
	const struct cfg_gateway *gw = call->candv[call->gwi].gw;
	struct sip_dialog *dlg = NULL;
	char *uri = NULL, *from = NULL;
	char number[B2BUA_NUMBER_MAX + B2BUA_XLAT_PREFIX + 4];
	struct mbuf *mb = NULL;
	size_t blen = call->offer ? mbuf_get_left(call->offer) : 0;
	struct sa laddr;
	int err;

	err = number_out(call, gw, number, sizeof(number));
	if (err)
		return err;

	if (again && call->g && call->g->dlg) {
		dlg = mem_ref(call->g->dlg);
		goto send;
	}

	err = sip_transp_laddr(b->sip, &laddr, gw->tp, &gw->addr);
	if (err)
		return err;

	err  = re_sdprintf(&uri, "sip:%s@%J%s", number, &gw->addr,
			   sip_transp_param(gw->tp));
	err |= re_sdprintf(&from, "sip:%s@%j", call->caller, &laddr);
	if (err)
		goto out;

	err = sip_dialog_alloc(&dlg, uri, uri, call->from_name, from,
			       NULL, 0);
	if (err)
		goto out;

	call->g = mem_deref(call->g);
	err = leg_alloc(&call->g, call, LEG_GATEWAY, sip_dialog_callid(dlg),
			gw->tp);
	if (err)
		goto out;
	call->g->dlg = mem_ref(dlg);

 send:
	mb = mbuf_alloc(1024 + blen);
	if (!mb) {
		err = ENOMEM;
		goto out;
	}

	err  = mbuf_printf(mb, "Max-Forwards: %u\r\n", call->maxfwd);
	err |= sip_dialog_encode(mb, dlg, 0, "INVITE");
	err |= mbuf_write_mem(mb, mbuf_buf(call->hdrs),
			      mbuf_get_left(call->hdrs));
	err |= mbuf_printf(mb,
			   "Allow: " B2BUA_ALLOW "\r\n"
			   "%H%H%H", timer_uac_hdrs, call, prack_hdrs, call,
			   body_print,
			   &(struct body){call->ctype, call->offer});
	if (err)
		goto out;

	mb->pos = 0;

	if (gw->tp == SIP_TRANSP_TLS)
		b2bua_tls_expect(b->tls, &sip_dialog_route(dlg)->host);

	err = sip_request(&call->req, b->sip, true, "INVITE", -1,
			  sip_dialog_uri(dlg), -1, sip_dialog_route(dlg), mb,
			  sip_dialog_hash(dlg), contact_sendh,
			  uac_resp_handler, call);

	b2bua_tls_expect(b->tls, NULL);
	if (err)
		goto out;

	gw_attempt(call);

	tlog_info(call_logid(call), "INVITE %s to gateway %s (%J) as "
		  "Call-ID %s", number, gw->name, &gw->addr,
		  call->g->callid);

	tmr_start(&call->tmr_ring, (uint64_t)b->cfg->ring_timeout * 1000,
		  ring_timeout, call);

 out:
	mem_deref(mb);
	mem_deref(dlg);
	mem_deref(uri);
	mem_deref(from);

	return err;
}


/*
 * Make the next usable gateway of the call's candidates, from position
 * `from` on, the call's (gw_next_usable() decides: the margin guard's
 * choice, health and limits)
 */
static bool next_gateway(struct b2bua_call *call, uint32_t from)
{
	uint32_t i = gw_next_usable(call, from);

	if (i >= call->candc)
		return false;

	call->gwi = i;

	return true;
}


/* the INVITE could not go to the current gateway: an attempt failed */
static void send_failed(struct b2bua_call *call, int err)
{
	tlog_warn(call_logid(call), "gateway %s: %m",
		  b2bua_call_gateway(call), err);
	gw_attempt(call);
	gw_outcome(call, err == ETIMEDOUT ? EIO : err, 0);
}


/** Try the next gateway of the route, or give the caller the last answer */
static void failover(struct b2bua_call *call, uint16_t scode,
		     const char *phrase)
{
	tmr_cancel(&call->tmr_ring);
	gw_release(call);

	call->last_scode = scode;
	str_ncpy(call->last_reason, phrase, sizeof(call->last_reason));

	while (!call->b->shutting_down && next_gateway(call, call->gwi + 1)) {

		int err;

		if (call_event(call, CEV_FAILOVER, NULL))
			return;

		/* the next gateway's own 422 may be retried once */
		call->se_gw = call->b->cfg->session_expires;
		call->se_retried = false;

		tlog_info(call_logid(call), "gateway answered %u, trying "
			  "gateway %s", scode, b2bua_call_gateway(call));

		err = uac_send(call, false);
		if (!err)
			return;

		send_failed(call, err);
		gw_release(call);
		call->last_scode = 503;
		str_ncpy(call->last_reason, "Service Unavailable",
			 sizeof(call->last_reason));
	}

	call_fail(call, B2BUA_R_REJECTED, call->last_scode,
		  call->last_reason, NULL);
}


void uac_start(struct b2bua_call *call)
{
	const struct sip_msg *msg = call->inv;
	int err;

	/* none of the route's gateways may take it: no gateway is tried */
	if (!next_gateway(call, 0)) {
		tlog_info(call_logid(call), "no usable gateway among the "
			  "call's %u", call->candc);
		call->gwi = call->candc;
		call_fail(call, B2BUA_R_REJECTED, 503, "Service Unavailable",
			  B2BUA_REASON_NO_CIRCUIT);
		return;
	}
	if (!call->se_gw)
		call->se_gw = call->b->cfg->session_expires;

	if (!call->offer && mbuf_get_left(msg->mb)) {
		err = sdp_apply(call, B2BUA_DIR_TO_GATEWAY, msg, &call->offer);
		if (err) {
			tlog_warn(call_logid(call), "offer refused: %m", err);
			call_fail(call, B2BUA_R_FAILED,
				  err == ENOSPC ? 503 : 488,
				  err == ENOSPC ? "Service Unavailable"
				  : "Not Acceptable Here",
				  err == ENOSPC ? "Retry-After: 5\r\n" : NULL);
			return;
		}

		err = re_sdprintf(&call->ctype, "%r/%r", &msg->ctyp.type,
				  &msg->ctyp.subtype);
		if (err) {
			call_fail(call, B2BUA_R_FAILED, 500,
				  "Server Internal Error", NULL);
			return;
		}
	}

	err = uac_send(call, false);
	if (err) {
		send_failed(call, err);
		failover(call, 503, "Service Unavailable");
	}
}


/**
 * CANCEL the INVITE toward the gateway (sent once a 1xx arrived); without
 * one the gateway is done with at once
 */
void uac_cancel(struct b2bua_call *call)
{
	tmr_cancel(&call->tmr_ring);

	if (call->req) {
		sip_request_cancel(call->req);
		return;
	}

	(void)call_event(call, CEV_UAC_FINAL, NULL);
}


static void ack_forget(void *arg)
{
	struct leg *leg = arg;

	leg->mback = mem_deref(leg->mback);
}


static int ack_send_handler(enum sip_transp tp, const struct sa *src,
			    const struct sa *dst, struct mbuf *mb, void *arg)
{
	struct leg *leg = arg;
	(void)src;

	mem_deref(leg->mback);
	leg->mback = mem_ref(mb);
	leg->dstack = *dst;
	leg->tpack = tp;
	tmr_start(&leg->tmrack, 64 * SIP_T1, ack_forget, leg);

	return 0;
}


/** ACK a 2xx received on this leg; kept to answer retransmissions */
int leg_send_ack(struct leg *leg, const struct sip_msg *resp,
		 const char *ctype, const struct mbuf *body)
{
	leg->cseqack = resp->cseq.num;

	return leg_drequestf(NULL, leg, false, "ACK", resp->cseq.num,
			     ack_send_handler, NULL, leg, "%H", body_print,
			     &(struct body){ctype, body});
}


/** A 2xx to an INVITE that no transaction waits for: ACK it again */
bool leg_ack_again(struct b2bua *b, const struct sip_msg *msg)
{
	struct leg *leg = leg_find(b, msg);

	if (!leg || !leg->mback || leg->cseqack != msg->cseq.num)
		return false;

	(void)sip_send(b->sip, NULL, leg->tpack, &leg->dstack, leg->mback);

	return true;
}


/** The gateway answered an INVITE we had already given up on */
static void late_response(struct b2bua_call *call, const struct sip_msg *msg)
{
	if (msg->scode < 200)
		return;

	if (msg->scode < 300) {
		tlog_info(call_logid(call), "gateway answered after CANCEL: "
			  "ACK and BYE");
		if (!leg_dialog_final(call->g, msg))
			(void)leg_send_ack(call->g, msg, NULL, NULL);

		/* terminating: BYE toward the gateway */
		(void)call_event(call, CEV_ANSWER, NULL);
	}
	else {
		(void)call_event(call, CEV_UAC_FINAL, NULL);
	}
}


static void relay_provisional(struct b2bua_call *call,
			      const struct sip_msg *msg)
{
	struct mbuf *body = NULL, *mb = NULL;
	char *ctype = NULL;
	char phrase[64], rel[64] = "";
	uint32_t rseq;
	int err;

	if (msg->scode == 100)
		return;

	/* early dialogs on both legs (an UPDATE may cross them) */
	if (pl_isset(&msg->to.tag) && !call->g->early_tag &&
	    !sip_dialog_established(call->g->dlg) &&
	    !sip_dialog_create(call->g->dlg, msg))
		(void)pl_strdup(&call->g->early_tag, &msg->to.tag);
	if (!call->a->dlg)
		(void)sip_dialog_accept(&call->a->dlg, call->inv);

	/* a retransmission of a reliable 1xx relayed already */
	if (!prack_1xx(call, msg, &rseq))
		return;
	if (rseq)
		(void)re_snprintf(rel, sizeof(rel), "Require: 100rel\r\n"
				  "RSeq: %u\r\n", rseq);

	err = sdp_apply(call, B2BUA_DIR_TO_CALLER, msg, &body);
	if (!err && body)
		err = re_sdprintf(&ctype, "%r/%r", &msg->ctyp.type,
				  &msg->ctyp.subtype);
	if (err) {
		tlog_warn(call_logid(call), "early media refused: %m", err);
		body = mem_deref(body);
	}

	if (call_event(call, CEV_PROVISIONAL, NULL))
		goto out;

	(void)re_snprintf(phrase, sizeof(phrase), "%r", &msg->reason);

	err = sip_treplyf(&call->st, rseq ? &mb : NULL, call->b->sip,
			  call->inv, true, msg->scode, phrase, "%H%s%H",
			  b2bua_contact, call->inv, rel,
			  body_print, &(struct body){ctype, body});
	if (err)
		tlog_warn(call_logid(call), "relaying %u: %m", msg->scode,
			  err);
	else
		leg_sdp_keep(call->a, ctype, body);
	if (!err && rseq)
		prack_sent(call, mb, rseq);
	mem_deref(mb);

 out:
	mem_deref(body);
	mem_deref(ctype);
}


/*
 * The gateway's dialog from its 2xx: made now, or the early one of its
 * 1xx brought up to date, or a new one forked from it when the 2xx has
 * another To tag
 */
static int leg_dialog_final(struct leg *leg, const struct sip_msg *msg)
{
	struct sip_dialog *dlg = NULL;
	int err;

	if (!leg->early_tag)
		return sip_dialog_create(leg->dlg, msg);

	if (!pl_strcmp(&msg->to.tag, leg->early_tag))
		return sip_dialog_update(leg->dlg, msg);

	err = sip_dialog_fork(&dlg, leg->dlg, msg);
	if (err)
		return err;

	mem_deref(leg->dlg);
	leg->dlg = dlg;
	leg->early_tag = mem_deref(leg->early_tag);

	return 0;
}


static void relay_answer(struct b2bua_call *call, const struct sip_msg *msg)
{
	struct mbuf *body = NULL;
	char *ctype = NULL;
	char hdrs[160] = "";
	bool late;
	int err;

	tmr_cancel(&call->tmr_ring);
	prack_stop(call);

	/* late offer: the 2xx has the gateway's offer, the caller's ACK
	   will have the answer the gateway's ACK needs */
	late = !call->offer && mbuf_get_left(msg->mb);

	err = leg_dialog_final(call->g, msg);
	if (!err && late)
		call->late2xx = mem_ref((void *)msg);
	else if (!err)
		err = leg_send_ack(call->g, msg, NULL, NULL);
	if (err) {
		tlog_warn(call_logid(call), "bad 2xx from gateway: %m", err);
		call_fail(call, B2BUA_R_FAILED, 502, "Bad Gateway", NULL);
		return;
	}

	if (mbuf_get_left(msg->mb)) {
		err = sdp_apply(call, B2BUA_DIR_TO_CALLER, msg, &body);
		if (!err)
			err = re_sdprintf(&ctype, "%r/%r", &msg->ctyp.type,
					  &msg->ctyp.subtype);
	}
	if (!err && !call->a->dlg)
		err = sip_dialog_accept(&call->a->dlg, call->inv);
	if (!err)
		err = timer_offer_received(call->a, call->inv, hdrs,
					   sizeof(hdrs));
	if (!err)
		err = leg_reply_2xx(call->a, &call->st, call->inv, msg->scode,
				    "OK", hdrs, ctype, body);
	if (!err) {
		/* each leg's session timer runs from the answer */
		leg_sdp_keep(call->a, ctype, body);
		leg_sdp_keep(call->g, call->ctype, call->offer);
		timer_start(call->a);
		timer_answer_received(call->g, msg);
	}
	mem_deref(body);
	mem_deref(ctype);

	if (err) {
		const struct call_evarg end = {
			.reason = B2BUA_R_FAILED,
			.scode  = msg->scode,
		};

		tlog_warn(call_logid(call), "cannot answer the caller: %m",
			  err);
		(void)call_event(call, CEV_ANSWER_LOST, &end);
		return;
	}

	(void)call_event(call, CEV_ANSWER,
			 &(struct call_evarg){ .scode = msg->scode });
}


/**
 * The ACK of a late-offer call: the caller's ACK (NULL: none is coming)
 * brings the answer to the gateway's offer, which goes, rewritten, in
 * the ACK to the gateway's 2xx
 */
void uac_ack_late(struct b2bua_call *call, const struct sip_msg *ack)
{
	struct mbuf *body = NULL;
	char *ctype = NULL;
	int err = 0;

	if (!call->late2xx || !call->g)
		return;

	if (ack && mbuf_get_left(ack->mb)) {
		err = sdp_apply(call, B2BUA_DIR_TO_GATEWAY, ack, &body);
		if (!err)
			err = re_sdprintf(&ctype, "%r/%r", &ack->ctyp.type,
					  &ack->ctyp.subtype);
		if (err) {
			tlog_warn(call_logid(call), "the caller's answer in "
				  "its ACK: %m", err);
			body = mem_deref(body);
		}
	}
	else if (ack) {
		tlog_warn(call_logid(call), "late offer: the caller's ACK "
			  "has no answer");
	}

	err = leg_send_ack(call->g, call->late2xx, ctype, body);
	if (err)
		tlog_warn(call_logid(call), "ACK to the gateway: %m", err);
	else
		leg_sdp_keep(call->g, ctype, body);

	call->late2xx = mem_deref((void *)call->late2xx);
	mem_deref(body);
	mem_deref(ctype);
}


/** The call was answered: what only another gateway would need goes */
void uac_answered(struct b2bua_call *call)
{
	struct b2bua *b = call->b;

	call->offer = mem_deref(call->offer);
	call->hdrs  = mem_deref(call->hdrs);
	call->ctype = mem_deref(call->ctype);

	tlog_info(call_logid(call), "answered by gateway %s",
		  b2bua_call_gateway(call));

	if (b->cfg->max_duration)
		tmr_start(&call->tmr_dur,
			  (uint64_t)b->cfg->max_duration * 1000,
			  max_duration, call);
}


static void uac_resp_handler(int err, const struct sip_msg *msg, void *arg)
{
	struct b2bua_call *call = arg;

	mem_ref(call);

	if (call_over(call)) {
		if (err || !msg)
			(void)call_event(call, CEV_UAC_FINAL, NULL);
		else
			late_response(call, msg);
		goto out;
	}

	if (err || !msg) {
		tlog_warn(call_logid(call), "gateway %s: %m",
			  b2bua_call_gateway(call), err);
		gw_outcome(call, err == ETIMEDOUT ? ETIMEDOUT :
			   err ? err : EIO, 0);
		failover(call, err == ETIMEDOUT ? 408 : 503,
			 err == ETIMEDOUT ? "Request Timeout"
			 : "Service Unavailable");
		goto out;
	}

	if (msg->scode < 200) {
		relay_provisional(call, msg);
	}
	else if (msg->scode < 300) {
		gw_outcome(call, 0, msg->scode);
		relay_answer(call, msg);
	}
	else {
		char phrase[64];
		uint16_t scode = msg->scode;

		gw_outcome(call, 0, scode);

		(void)re_snprintf(phrase, sizeof(phrase), "%r", &msg->reason);
		tmr_cancel(&call->tmr_ring);

		tlog_info(call_logid(call), "gateway %s answered %u %s",
			  b2bua_call_gateway(call), scode, phrase);

		if (scode == 422 && !call->se_retried &&
		    call->b->cfg->session_expires && timer_min_se(msg) &&
		    timer_min_se(msg) <= 86400) {
			/* once, with the interval the gateway asks for */
			call->se_retried = true;
			call->se_gw = MAX(call->se_gw, timer_min_se(msg));
			tlog_info(call_logid(call), "gateway %s wants a "
				  "session timer of %u s at least: again",
				  b2bua_call_gateway(call), call->se_gw);
			err = uac_send(call, true);
			if (err)
				failover(call, 503, "Service Unavailable");
		}
		else if (scode == 408 || scode == 422 ||
			 (scode >= 500 && scode < 600)) {
			failover(call, scode, phrase);
		}
		else {
			/* never hand the gateway's redirect targets or
			 * authentication realm to the caller */
			if (scode < 400) {
				scode = 480;
				str_ncpy(phrase, "Temporarily Unavailable",
					 sizeof(phrase));
			}
			else if (scode == 401 || scode == 407) {
				scode = 403;
				str_ncpy(phrase, "Forbidden", sizeof(phrase));
			}
			call_fail(call, B2BUA_R_REJECTED, scode, phrase,
				  NULL);
		}
	}

 out:
	mem_deref(call);
}
