/**
 * @file prack.c  Reliable provisional responses (RFC 3262) across the legs
 *
 * A gateway's 18x with Require: 100rel and RSeq goes to a caller that
 * supports 100rel as a reliable 18x of tollgate's own (its own RSeq,
 * retransmitted from T1, doubling up to T2, for 64*T1 at most); the
 * caller's PRACK goes on to the gateway with the RAck of the gateway's
 * 18x, and the gateway's answer comes back.  A caller without 100rel
 * gets the 18x as an ordinary one, and tollgate PRACKs the gateway
 * itself.  One reliable 18x at a time is relayed reliably: one that
 * comes while the caller has not yet acknowledged the last is handled
 * like one for a caller without 100rel.
 */

#include <string.h>
#include "b2bua_int.h"


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


static bool has_100rel(const struct sip_msg *msg, enum sip_hdrid id)
{
	return NULL != sip_msg_hdr_apply(msg, true, id, tag_handler,
					 "100rel");
}


/* a number of 1..2^31-1 at the start of a header value */
static int num_parse(const struct pl *val, uint32_t *np, struct pl *rest)
{
	struct pl v;
	uint64_t n;

	if (hdr_number(val, &n, &v) || !n || n > 0x7fffffff)
		return EBADMSG;

	*np = (uint32_t)n;
	if (rest)
		*rest = v;

	return 0;
}


/** Supported: 100rel of tollgate's INVITE toward a gateway */
int prack_hdrs(struct re_printf *pf, const struct b2bua_call *call)
{
	(void)call;

	return re_hprintf(pf, "Supported: 100rel\r\n");
}


static void prack_resp_handler(int err, const struct sip_msg *msg,
			       void *arg)
{
	struct leg *leg = arg;

	if (!err && msg && msg->scode < 200)
		return;

	if (err || !msg || msg->scode >= 300)
		tlog_warn(call_logid(leg->call), "our PRACK to the gateway: "
			  "%m %u", err, msg ? msg->scode : 0);
}


/* tollgate acknowledges the gateway's reliable 1xx itself */
static void prack_own(struct b2bua_call *call, uint32_t rseq, uint32_t cseq)
{
	int err;

	call->g->prackreq = mem_deref(call->g->prackreq);

	err = leg_drequestf(&call->g->prackreq, call->g, true, "PRACK", 0,
			    NULL, prack_resp_handler, call->g,
			    "RAck: %u %u INVITE\r\n"
			    "Content-Length: 0\r\n\r\n", rseq, cseq);
	if (err)
		tlog_warn(call_logid(call), "cannot PRACK the gateway: %m",
			  err);
	else
		tlog_dbg(call_logid(call), "PRACK %u to the gateway",
			 rseq);
}


/** No more retransmissions of a reliable 1xx (answered, or over) */
void prack_stop(struct b2bua_call *call)
{
	tmr_cancel(&call->tmr_rel);
	call->rel1xx = mem_deref(call->rel1xx);
	call->rel_rseq = 0;
}


static void rel_retransmit(void *arg)
{
	struct b2bua_call *call = arg;
	uint64_t ms;

	if (tmr_jiffies() - call->rel_start >= 64 * SIP_T1) {
		tlog_warn(call_logid(call), "no PRACK for the reliable 1xx "
			  "(RSeq %u)", call->rel_rseq);
		prack_stop(call);
		(void)b2bua_call_end(call, B2BUA_R_FAILED, "SIP;cause=504;"
				     "text=\"no PRACK\"");
		return;
	}

	if (call->a && !sip_transp_reliable(call->a->tp))
		(void)sip_send(call->b->sip, NULL, call->a->tp,
			       &call->rel_dst, call->rel1xx);

	++call->rel_txc;
	ms = MIN((uint64_t)SIP_T1 << call->rel_txc, (uint64_t)SIP_T2);
	tmr_start(&call->tmr_rel, ms, rel_retransmit, call);
}


/**
 * A gateway's 1xx about to be relayed: is it reliable, and may the
 * caller get it reliably?  A reliable one the caller cannot take is
 * PRACKed here.
 *
 * @param call   The call
 * @param msg    The gateway's 1xx
 * @param rseqp  Our RSeq for the caller's 1xx (0: relay it unreliably)
 *
 * @return false if the 1xx is a retransmission not to relay again
 */
bool prack_1xx(struct b2bua_call *call, const struct sip_msg *msg,
	       uint32_t *rseqp)
{
	const struct sip_hdr *hdr = sip_msg_hdr(msg, SIP_HDR_RSEQ);
	uint32_t rseq;

	*rseqp = 0;

	if (!has_100rel(msg, SIP_HDR_REQUIRE) || !hdr ||
	    num_parse(&hdr->val, &rseq, NULL) || !pl_isset(&msg->to.tag))
		return true;

	if (call->gw_rseq_last && rseq <= call->gw_rseq_last)
		return false;   /* seen: our PRACK is on its way */

	call->gw_rseq_last = rseq;

	if (!call->caller_100rel || call->rel_rseq) {
		prack_own(call, rseq, msg->cseq.num);
		return true;
	}

	if (!call->rseq)
		call->rseq = (uint32_t)(rand_u32() % 0x3fffffff) + 1;
	else
		++call->rseq;

	call->gw_rseq = rseq;
	call->gw_cseq = msg->cseq.num;
	*rseqp = call->rseq;

	return true;
}


/**
 * Our reliable 1xx just went to the caller (mb: the message): keep it
 * until the caller's PRACK
 */
void prack_sent(struct b2bua_call *call, struct mbuf *mb, uint32_t rseq)
{
	struct pl rp;

	mem_deref(call->rel1xx);
	call->rel1xx = mem_ref(mb);
	call->rel_rseq = rseq;
	call->rel_txc = 0;
	call->rel_start = tmr_jiffies();
	sip_reply_addr(&call->rel_dst, call->inv,
		       0 == msg_param_exists(&call->inv->via.params, "rport",
					     &rp));

	tmr_start(&call->tmr_rel, SIP_T1, rel_retransmit, call);
}


/** A PRACK in one of the call's dialogs */
void prack_request(struct leg *leg, const struct sip_msg *msg)
{
	struct b2bua_call *call = leg->call;
	struct sip *sip = call->b->sip;
	const struct sip_hdr *hdr = sip_msg_hdr(msg, SIP_HDR_RACK);
	uint32_t rseq, cseq;
	struct pl rest;
	char xhdrs[64];

	if (leg->side != LEG_CALLER || !hdr ||
	    num_parse(&hdr->val, &rseq, &rest) ||
	    num_parse(&rest, &cseq, NULL) || rseq != call->rel_rseq ||
	    !call->rel_rseq) {
		(void)sip_treply(NULL, sip, msg, 481,
				 "Call/Transaction Does Not Exist");
		return;
	}

	prack_stop(call);

	tlog_dbg(call_logid(call), "PRACK %u from the caller: RAck %u %u to "
		 "the gateway", rseq, call->gw_rseq, call->gw_cseq);

	(void)re_snprintf(xhdrs, sizeof(xhdrs), "RAck: %u %u INVITE\r\n",
			  call->gw_rseq, call->gw_cseq);

	relay_start(leg, msg, false, false, xhdrs);
}


/** Does the caller's INVITE support 100rel? */
bool prack_caller(const struct sip_msg *msg)
{
	return has_100rel(msg, SIP_HDR_SUPPORTED) ||
		has_100rel(msg, SIP_HDR_REQUIRE);
}
