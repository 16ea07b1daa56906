/**
 * @file timer.c  Session timers (RFC 4028), on each leg of a call apart
 *
 * Each leg has its own interval and refresher, negotiated with its peer:
 * toward the gateway tollgate asks for session_expires (Supported: timer,
 * Session-Expires, Min-SE; a 422 is retried once with the gateway's
 * Min-SE), toward the caller it takes the caller's Session-Expires (422
 * below min_se) or offers session_expires itself.  Every 2xx to an
 * INVITE or UPDATE on a leg, either way, is a refresh of that leg.
 *
 * Where tollgate is the refresher it sends an UPDATE without SDP (if the
 * peer allows UPDATE) or a re-INVITE with the SDP it last sent on the leg,
 * at half the interval.  A peer that does not support the extension gets
 * the same refreshes.  The call ends, with BYE on both legs, when a leg's
 * session expires unrefreshed (the RFC's margin before the end: 32 s or a
 * third of the interval, whichever is less) or when a refresh of
 * tollgate's is answered 408 or 481 or not at all; the call's end time is
 * that leg's last good refresh.
 */

#include <string.h>
#include "b2bua_int.h"


enum {
	BUSY_RETRY_MS = 2000,    /**< refresh put off: a re-INVITE runs  */
	SE_MAX        = 86400,   /**< s, longest interval taken           */
};


static bool tag_handler(const struct sip_hdr *hdr, const struct sip_msg *msg,
			void *arg)
{
	struct pl v = hdr->val;
	(void)msg;

	while (v.l && (v.p[0] == ' ' || v.p[0] == '\t')) {
		++v.p;
		--v.l;
	}
	while (v.l && (v.p[v.l - 1] == ' ' || v.p[v.l - 1] == '\t'))
		--v.l;

	return 0 == pl_strcasecmp(&v, arg);
}


/* does a header list (Supported, Require, Allow) name this option? */
static bool hdr_has_tag(const struct sip_msg *msg, enum sip_hdrid id,
			const char *tag)
{
	return NULL != sip_msg_hdr_apply(msg, true, id, tag_handler,
					 (void *)tag);
}


/*
 * delta-seconds at the start of a header value; *rest is what follows
 * (the parameters).  EBADMSG for anything else.
 */
static int delta_parse(const struct pl *val, uint32_t *dp, struct pl *rest)
{
	struct pl v;
	uint64_t d;

	if (hdr_number(val, &d, &v) ||
	    (v.l && v.p[0] != ';' && v.p[0] != ' ' && v.p[0] != '\t'))
		return EBADMSG;

	*dp = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
	if (rest)
		*rest = v;

	return 0;
}


/* Session-Expires: interval and refresher ("" if none); ENOENT: none */
static int se_parse(const struct sip_msg *msg, uint32_t *sep,
		    struct pl *refresher)
{
	const struct sip_hdr *hdr = sip_msg_hdr(msg, SIP_HDR_SESSION_EXPIRES);
	struct pl rest;
	int err;

	pl_set_str(refresher, "");

	if (!hdr)
		return ENOENT;

	err = delta_parse(&hdr->val, sep, &rest);
	if (err)
		return err;

	if (rest.l && msg_param_decode(&rest, "refresher", refresher))
		pl_set_str(refresher, "");

	return 0;
}


/** Min-SE of a message, 0 if it has none (or a bad one) */
uint32_t timer_min_se(const struct sip_msg *msg)
{
	const struct sip_hdr *hdr = sip_msg_hdr(msg, SIP_HDR_MIN_SE);
	uint32_t v;

	if (!hdr || delta_parse(&hdr->val, &v, NULL))
		return 0;

	return v;
}


/**
 * Check the session timer of an INVITE or UPDATE received: a
 * Session-Expires below min_se gets 422 with our Min-SE, a malformed one
 * 400.
 *
 * @param cfg     The B2BUA's configuration
 * @param msg     The request
 * @param hdrs    Header lines of the refusal (written on refusal)
 * @param sz      Their buffer's size
 * @param scodep  The refusal's status code
 *
 * @return 0 if the request may go on, EINVAL if it is refused
 */
int timer_invite_check(const struct b2bua_conf *cfg,
		       const struct sip_msg *msg, char *hdrs, size_t sz,
		       uint16_t *scodep)
{
	struct pl refresher;
	uint32_t se;
	int err;

	hdrs[0] = '\0';

	err = se_parse(msg, &se, &refresher);
	if (err == ENOENT)
		return 0;

	if (err || (sip_msg_hdr(msg, SIP_HDR_MIN_SE) && !timer_min_se(msg))) {
		*scodep = 400;
		(void)re_snprintf(hdrs, sz, "Reason: SIP;cause=400;text=\""
				  "bad Session-Expires or Min-SE\"\r\n");
		return EINVAL;
	}

	if (se < cfg->min_se) {
		*scodep = 422;
		(void)re_snprintf(hdrs, sz, "Min-SE: %u\r\n", cfg->min_se);
		return EINVAL;
	}

	return 0;
}


/** The session-timer headers of the first INVITE toward a gateway */
int timer_uac_hdrs(struct re_printf *pf, const struct b2bua_call *call)
{
	const struct b2bua_conf *cfg = call->b->cfg;

	if (!cfg->session_expires)
		return 0;

	return re_hprintf(pf, "Supported: timer\r\n"
			  "Session-Expires: %u\r\n"
			  "Min-SE: %u\r\n", call->se_gw,
			  call->se_retried ? call->se_gw : cfg->min_se);
}


/**
 * The session-timer headers of an INVITE or UPDATE tollgate sends in a
 * leg's dialog (a refresh of its own, or one relayed from the other leg):
 * the leg's interval and refresher as negotiated, seen from the sender
 */
int timer_req_hdrs(struct re_printf *pf, const struct leg *leg)
{
	const struct b2bua_conf *cfg = leg->call->b->cfg;

	if (!leg->se)
		return 0;

	return re_hprintf(pf, "Supported: timer\r\n"
			  "Session-Expires: %u;refresher=%s\r\n"
			  "Min-SE: %u\r\n", leg->se,
			  leg->se_ours ? "uac" : "uas", cfg->min_se);
}


/**
 * An INVITE or UPDATE received on a leg is about to get its 2xx: settle
 * the leg's interval and refresher and write the 2xx's session-timer
 * headers.  timer_start() then starts the leg's timers.
 *
 * @return 0 or an errno
 */
int timer_offer_received(struct leg *leg, const struct sip_msg *msg,
			 char *hdrs, size_t sz)
{
	const struct b2bua_conf *cfg = leg->call->b->cfg;
	uint32_t se = 0, minse = timer_min_se(msg);
	struct pl refresher;
	bool has, ours;

	hdrs[0] = '\0';

	leg->se_peer_timer = hdr_has_tag(msg, SIP_HDR_SUPPORTED, "timer") ||
		hdr_has_tag(msg, SIP_HDR_REQUIRE, "timer");
	if (sip_msg_hdr(msg, SIP_HDR_ALLOW))
		leg->peer_update = hdr_has_tag(msg, SIP_HDR_ALLOW, "UPDATE");

	has = 0 == se_parse(msg, &se, &refresher);

	if (!has) {
		if (!cfg->session_expires) {
			leg->se = 0;
			return 0;
		}

		/* the peer asked for none: ours, refreshed by the peer if it
		   knows the extension, else by tollgate */
		se = MAX(cfg->session_expires, minse);
		ours = !leg->se_peer_timer;
	}
	else {
		/* we may shorten it, but not below either Min-SE */
		if (cfg->session_expires && cfg->session_expires < se &&
		    cfg->session_expires >= MAX(minse, cfg->min_se))
			se = cfg->session_expires;

		if (!pl_strcasecmp(&refresher, "uac"))
			ours = false;
		else if (!pl_strcasecmp(&refresher, "uas"))
			ours = true;
		else
			ours = !leg->se_peer_timer;
	}

	leg->se = MIN(se, SE_MAX);
	leg->se_ours = ours;

	return re_snprintf(hdrs, sz, "Supported: timer\r\n"
			   "Session-Expires: %u;refresher=%s\r\n%s",
			   leg->se, ours ? "uas" : "uac",
			   leg->se_peer_timer ? "Require: timer\r\n" : "") < 0
		? ENOMEM : 0;
}


/**
 * A 2xx to an INVITE or UPDATE tollgate sent on a leg: the leg's interval
 * and refresher as the peer answered them, and the leg's timers started
 * again.  A 2xx without Session-Expires comes from a peer that does not
 * take part: tollgate refreshes it all the same (session_expires, or the
 * interval the leg had).
 */
void timer_answer_received(struct leg *leg, const struct sip_msg *msg)
{
	const struct b2bua_conf *cfg = leg->call->b->cfg;
	struct pl refresher;
	uint32_t se;

	if (sip_msg_hdr(msg, SIP_HDR_ALLOW))
		leg->peer_update = hdr_has_tag(msg, SIP_HDR_ALLOW, "UPDATE");

	if (!se_parse(msg, &se, &refresher) && se) {
		leg->se = MIN(se, SE_MAX);
		leg->se_ours = 0 != pl_strcasecmp(&refresher, "uas");
		leg->se_peer_timer = true;
	}
	else {
		if (!leg->se)
			leg->se = leg->side == LEG_GATEWAY && leg->call->se_gw
				? leg->call->se_gw : cfg->session_expires;
		leg->se_ours = true;
		leg->se_peer_timer = false;
	}

	timer_start(leg);
}


/**
 * A transaction on the leg leaves no room for a refresh now: a refresh of
 * ours, a 2xx waiting for its ACK, a re-INVITE relayed (across both legs)
 */
bool timer_busy(const struct leg *leg)
{
	struct le *le;

	if (!leg)
		return false;

	if (leg->mb2xx || leg->sereq)
		return true;

	for (le = leg->call->relayl.head; le; le = le->next) {
		const struct relay *relay = le->data;

		if (relay->invite)
			return true;
	}

	return false;
}


static void refresh_send(void *arg);


/* the session of a leg is over: the call ends at its last good refresh */
static void leg_session_lost(struct leg *leg, uint16_t scode)
{
	struct b2bua_call *call = leg->call;
	char reason[96];

	if (scode)
		(void)re_snprintf(reason, sizeof(reason), "SIP;cause=%u;text="
				  "\"session refresh failed\"", scode);
	else
		str_ncpy(reason, "Q.850;cause=102;text=\"session timer "
			 "expired\"", sizeof(reason));

	timer_stop(call->a);
	timer_stop(call->g);

	b2bua_call_set_end_ms(call, leg->se_ok_ms);
	(void)b2bua_call_end(call, B2BUA_R_SESSION_TIMER, reason);
}


static void expire_handler(void *arg)
{
	struct leg *leg = arg;

	tlog_info(call_logid(leg->call), "session timer of the %s leg "
		  "expired (%u s, refreshed by %s)",
		  leg->side == LEG_CALLER ? "caller" : "gateway", leg->se,
		  leg->se_ours ? "tollgate" : "the peer");

	leg_session_lost(leg, 0);
}


/* put the refresh off, if the session has time left for it */
static void refresh_later(struct leg *leg, uint64_t ms)
{
	uint64_t left = tmr_get_expire(&leg->tmr_expire);

	if (left > ms)
		tmr_start(&leg->tmr_refresh, ms, refresh_send, leg);
}


static void refresh_resp_handler(int err, const struct sip_msg *msg,
				 void *arg)
{
	struct leg *leg = arg;
	struct b2bua_call *call = leg->call;
	const char *side = leg->side == LEG_CALLER ? "caller" : "gateway";

	if (!err && msg && msg->scode < 200)
		return;

	mem_ref(call);

	if (call_over(call))
		goto out;

	if (err || !msg) {
		tlog_warn(call_logid(call), "session refresh toward the %s: "
			  "%m", side, err);
		leg_session_lost(leg, err == ETIMEDOUT ? 408 : 503);
		goto out;
	}

	if (msg->scode < 300) {
		(void)sip_dialog_update(leg->dlg, msg);
		if (leg->sereq_invite)
			(void)leg_send_ack(leg, msg, NULL, NULL);
		tlog_dbg(call_logid(call), "session refreshed toward the %s",
			 side);
		timer_answer_received(leg, msg);
		goto out;
	}

	tlog_info(call_logid(call), "session refresh toward the %s "
		  "answered %u %r", side, msg->scode, &msg->reason);

	if (msg->scode == 408 || msg->scode == 481) {
		leg_session_lost(leg, msg->scode);
	}
	else if (msg->scode == 422 && timer_min_se(msg) &&
		 timer_min_se(msg) <= SE_MAX) {
		leg->se = MAX(leg->se, timer_min_se(msg));
		refresh_later(leg, 0);
	}
	else if (msg->scode == 405 || msg->scode == 501) {
		/* no UPDATE after all: a re-INVITE next time */
		if (!leg->sereq_invite)
			leg->peer_update = false;
		refresh_later(leg, BUSY_RETRY_MS);
	}
	else {
		/* the session stays; try again while it has time */
		refresh_later(leg, MAX((uint64_t)BUSY_RETRY_MS,
				       tmr_get_expire(&leg->tmr_expire) / 2));
	}

 out:
	mem_deref(call);
}


/* tollgate's refresh of a leg: UPDATE if the peer allows it, re-INVITE */
static void refresh_send(void *arg)
{
	struct leg *leg = arg;
	struct b2bua_call *call = leg->call;
	bool invite = !leg->peer_update && leg->sdp_out;
	int err;

	if (call_over(call) || leg->sereq)
		return;

	if (timer_busy(leg)) {
		refresh_later(leg, BUSY_RETRY_MS);
		return;
	}

	leg->sereq_invite = invite;
	err = leg_drequestf(&leg->sereq, leg, true, invite ? "INVITE" :
			    "UPDATE", 0, contact_sendh, refresh_resp_handler,
			    leg, "%H%H", timer_req_hdrs, leg, body_print,
			    &(struct body){NULL, invite ? leg->sdp_out
					   : NULL});
	if (err) {
		tlog_warn(call_logid(call), "cannot send the session "
			  "refresh: %m", err);
		refresh_later(leg, BUSY_RETRY_MS);
		return;
	}

	tlog_dbg(call_logid(call), "session refresh (%s) toward the %s",
		 invite ? "re-INVITE" : "UPDATE",
		 leg->side == LEG_CALLER ? "caller" : "gateway");
}


/** The leg was refreshed now: its timers run from here */
void timer_start(struct leg *leg)
{
	uint64_t se_ms, margin_ms;

	if (!leg)
		return;

	tmr_cancel(&leg->tmr_refresh);
	tmr_cancel(&leg->tmr_expire);

	if (!leg->se)
		return;

	leg->se_ok_ms = b2bua_wallclock_ms();

	se_ms = (uint64_t)leg->se * 1000;
	margin_ms = MIN((uint64_t)32000, se_ms / 3);

	tmr_start(&leg->tmr_expire, se_ms - margin_ms, expire_handler, leg);
	if (leg->se_ours)
		tmr_start(&leg->tmr_refresh, se_ms / 2, refresh_send, leg);
}


/** No more refreshes on the leg (the call ends) */
void timer_stop(struct leg *leg)
{
	if (!leg)
		return;

	tmr_cancel(&leg->tmr_refresh);
	tmr_cancel(&leg->tmr_expire);
	leg->sereq = mem_deref(leg->sereq);
}


/** Keep the SDP just sent on a leg: a re-INVITE refresh offers it again */
void leg_sdp_keep(struct leg *leg, const char *ctype,
		  const struct mbuf *body)
{
	if (!leg || !body || !mbuf_get_left(body))
		return;

	if (ctype && str_casecmp(ctype, "application/sdp"))
		return;

	mem_deref(leg->sdp_out);
	leg->sdp_out = mem_ref((void *)body);
}
