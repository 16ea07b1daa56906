/**
 * @file sanity.c  Checks every request passes before the B2BUA looks at it
 *
 * libre's decoder accepts messages that RFC 3261 calls malformed: two
 * Content-Length values, a negative one, a body shorter than it says over
 * UDP, two From or To headers, a CSeq whose method is not the request's,
 * whitespace inside a bracketed URI, a display name that is neither a
 * quoted string nor tokens.  Such a request gets 400 here, statelessly (an
 * ACK is dropped), and never reaches a handler that could answer 2xx.  A
 * Request-URI that is not a SIP URI gets 416.
 */

#include <string.h>
#include "b2bua_int.h"


enum { CLEN_DIGITS_MAX = 9 };


static bool lws(char c)
{
	return c == ' ' || c == '\t';
}


static bool token_char(char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return true;

	return c && strchr("-.!%*_+`'~", c) != NULL;
}


/* a To or From value libre parsed: is its URI and display name sound? */
static bool addr_sound(const struct sip_taddr *a)
{
	struct pl u = a->auri;
	bool bracketed;
	size_t i;

	if (!pl_isset(&u))
		return false;

	bracketed = u.p > a->val.p && u.p[-1] == '<';

	if (lws(u.p[0]))
		return false;

	/* an addr-spec may be followed by LWS before its parameters */
	if (!bracketed)
		while (u.l && lws(u.p[u.l - 1]))
			--u.l;

	for (i = 0; i < u.l; i++) {
		char c = u.p[i];

		if (lws(c) || c == '"' || c == '<' || c == '>')
			return false;
	}

	/* a display name is a quoted string or tokens */
	if (bracketed) {
		const char *p = a->val.p, *e = u.p - 1;

		while (p < e && lws(*p))
			++p;
		while (e > p && lws(e[-1]))
			--e;

		if (p < e && *p == '"')
			return e - p >= 2 && e[-1] == '"';

		for (; p < e; p++)
			if (!lws(*p) && !token_char(*p))
				return false;
	}

	return true;
}


static bool sip_scheme(const struct pl *uri)
{
	const char *c = pl_strchr(uri, ':');
	struct pl s;

	if (!c)
		return false;

	s.p = uri->p;
	s.l = (size_t)(c - uri->p);

	return !pl_strcasecmp(&s, "sip") || !pl_strcasecmp(&s, "sips");
}


static void refuse(struct b2bua *b, const struct sip_msg *msg,
		   uint16_t scode, const char *reason)
{
	tlog_dbg(NULL, "sip: request from %J refused: %u %s", &msg->src,
		 scode, reason);

	if (!pl_strcmp(&msg->met, "ACK"))
		return;

	/* no transaction: nothing is kept for a request refused here,
	 * and a source that is no trusted peer gets no more bytes back
	 * than it sent */
	if (!b2bua_src_trusted(b, msg)) {
		(void)guard_reply(b, msg, scode, reason, NULL, NULL);
		return;
	}

	(void)sip_replyf(b->sip, msg, scode, reason,
			 "Content-Length: 0\r\n\r\n");
}


/**
 * Check a request before any handler sees it
 *
 * @return true if the request was answered (or dropped) here
 */
bool request_refused(struct b2bua *b, const struct sip_msg *msg)
{
	const struct sip_hdr *hdr;
	bool udp = msg->tp == SIP_TRANSP_UDP;

	/* nothing to address an answer to */
	if (!pl_isset(&msg->from.auri) || !pl_isset(&msg->to.auri) ||
	    !pl_isset(&msg->callid) || !pl_isset(&msg->cseq.met) ||
	    !msg->via.branch.p)
		return true;

	if (sip_msg_hdr_count(msg, SIP_HDR_CONTENT_LENGTH) > 1 ||
	    sip_msg_hdr_count(msg, SIP_HDR_FROM) > 1 ||
	    sip_msg_hdr_count(msg, SIP_HDR_TO) > 1 ||
	    sip_msg_hdr_count(msg, SIP_HDR_CALL_ID) > 1 ||
	    sip_msg_hdr_count(msg, SIP_HDR_CSEQ) > 1) {
		refuse(b, msg, 400, "Duplicate Header");
		return true;
	}

	hdr = sip_msg_hdr(msg, SIP_HDR_CONTENT_LENGTH);
	if (hdr) {
		const struct pl *v = &hdr->val;
		size_t i, left = mbuf_get_left(msg->mb);
		uint32_t clen;

		for (i = 0; i < v->l; i++)
			if (v->p[i] < '0' || v->p[i] > '9')
				break;

		if (!v->l || i < v->l || v->l > CLEN_DIGITS_MAX) {
			refuse(b, msg, 400, "Bad Content-Length");
			return true;
		}

		clen = pl_u32(v);

		/* a datagram holds the whole message (RFC 3261 18.3) */
		if (udp && clen > left) {
			refuse(b, msg, 400, "Body Shorter Than Content-Length");
			return true;
		}
		if (udp && clen < left)
			msg->mb->end = msg->mb->pos + clen;
	}

	if (pl_cmp(&msg->cseq.met, &msg->met)) {
		refuse(b, msg, 400, "CSeq Method Mismatch");
		return true;
	}

	if (!addr_sound(&msg->from) || !addr_sound(&msg->to)) {
		refuse(b, msg, 400, "Malformed From or To");
		return true;
	}

	if (!sip_scheme(&msg->ruri)) {
		refuse(b, msg, 416, "Unsupported URI Scheme");
		return true;
	}

	return false;
}
