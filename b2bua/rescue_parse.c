/**
 * @file rescue_parse.c  The answer to a request libre could not decode
 *
 * A parser of just what a response needs: the request line, the Via
 * headers, From, To, Call-ID and CSeq, long or compact, folded or not.
 * Nothing here trusts the bytes: a value holding a control character is
 * never copied into the answer (the request then stays unanswered).
 */

#include <string.h>
#include "b2bua_int.h"


enum { VIA_MAX = 64 };

struct hval {
	const char *p;
	size_t l;
};

struct rreq {
	struct hval met, uri, ver;
	bool method;               /**< a method token and a space          */
	bool line_ok;
	struct hval via[VIA_MAX];
	unsigned nvia;
	struct hval from, to, callid, cseq;
	unsigned nfrom, nto, ncallid, ncseq;
	bool ctl;                  /**< a copied value holds a CTL          */
};


static bool is_token(int c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return true;

	return c && strchr("-.!%*_+`'~", c) != NULL;
}


static bool is_lws(int c)
{
	return c == ' ' || c == '\t';
}


static bool hv_eq(const struct hval *v, const char *s)
{
	size_t n = strlen(s);

	return v->l == n && 0 == strncasecmp(v->p, s, n);
}


/* the end of the line starting at p: the '\n' or e */
static const char *line_end(const char *p, const char *e)
{
	const char *q = memchr(p, '\n', (size_t)(e - p));

	return q ? q : e;
}


static void request_line(struct rreq *r, const char *p, const char *e)
{
	const char *s, *t;

	if (e > p && e[-1] == '\r')
		--e;

	for (s = p; s < e && is_token(*s); s++)
		;
	r->met.p = p;
	r->met.l = (size_t)(s - p);

	if (s >= e || *s != ' ')
		return;

	r->method = true;
	t = ++s;
	while (s < e && *s != ' ')
		++s;
	r->uri.p = t;
	r->uri.l = (size_t)(s - t);

	if (s >= e)
		return;

	r->ver.p = s + 1;
	r->ver.l = (size_t)(e - s - 1);

	r->line_ok = r->uri.l && r->uri.p[0] != '<' &&
		memchr(r->uri.p, '\t', r->uri.l) == NULL &&
		hv_eq(&r->ver, "SIP/2.0");
}


static void take(struct rreq *r, const struct hval *name,
		 const struct hval *val)
{
	size_t i;

	for (i = 0; i < val->l; i++) {
		unsigned char c = (unsigned char)val->p[i];

		if (c == '\r' || c == '\n')
			continue;
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			r->ctl = true;
	}

	if (hv_eq(name, "via") || hv_eq(name, "v")) {
		if (r->nvia < VIA_MAX)
			r->via[r->nvia] = *val;
		++r->nvia;
	}
	else if (hv_eq(name, "from") || hv_eq(name, "f")) {
		if (!r->nfrom++)
			r->from = *val;
	}
	else if (hv_eq(name, "to") || hv_eq(name, "t")) {
		if (!r->nto++)
			r->to = *val;
	}
	else if (hv_eq(name, "call-id") || hv_eq(name, "i")) {
		if (!r->ncallid++)
			r->callid = *val;
	}
	else if (hv_eq(name, "cseq")) {
		if (!r->ncseq++)
			r->cseq = *val;
	}
}


/* one header from p (its first line) to e (the end of its last line) */
static void header(struct rreq *r, const char *p, const char *e)
{
	struct hval name, val;
	const char *c = memchr(p, ':', (size_t)(e - p));
	const char *n;

	if (!c)
		return;

	for (n = c; n > p && is_lws(n[-1]); n--)
		;
	name.p = p;
	name.l = (size_t)(n - p);

	for (++c; c < e && (is_lws(*c) || *c == '\r' || *c == '\n'); c++)
		;
	while (e > c && (is_lws(e[-1]) || e[-1] == '\r' || e[-1] == '\n'))
		--e;
	val.p = c;
	val.l = (size_t)(e - c);

	take(r, &name, &val);
}


static void parse(struct rreq *r, const char *p, size_t n)
{
	const char *e = p + n, *le, *hs = NULL;

	le = line_end(p, e);
	request_line(r, p, le);

	for (p = le + 1; p < e; p = le + 1) {

		le = line_end(p, e);

		/* the blank line ends the headers */
		if (le == p || (le == p + 1 && *p == '\r'))
			break;

		/* a continuation line belongs to the header before it */
		if (is_lws(*p) && hs)
			continue;

		if (hs)
			header(r, hs, p);
		hs = p;
	}

	if (hs)
		header(r, hs, p < e ? p : e);
}


/* the URI of a name-addr or addr-spec value */
static struct hval addr_uri(const struct hval *v)
{
	struct hval u = *v;
	const char *lt = memchr(v->p, '<', v->l), *gt;
	size_t i;

	if (lt) {
		gt = memchr(lt, '>', (size_t)(v->p + v->l - lt));
		u.p = lt + 1;
		u.l = gt ? (size_t)(gt - lt - 1) : 0;
		return u;
	}

	for (i = 0; i < u.l && u.p[i] != ';' && !is_lws(u.p[i]); i++)
		;
	u.l = i;

	return u;
}


static bool scheme_known(const struct hval *uri, bool tel)
{
	const char *c = memchr(uri->p, ':', uri->l);
	struct hval s;

	if (!c)
		return false;

	s.p = uri->p;
	s.l = (size_t)(c - uri->p);

	return hv_eq(&s, "sip") || hv_eq(&s, "sips") ||
		(tel && hv_eq(&s, "tel"));
}


static bool has_tag(const struct hval *to)
{
	const char *gt = memchr(to->p, '>', to->l);
	const char *p = gt ? gt : to->p, *e = to->p + to->l;

	for (; p + 4 < e; p++) {
		const char *q;

		if (*p != ';')
			continue;
		for (q = p + 1; q < e && is_lws(*q); q++)
			;
		if (e - q >= 3 && 0 == strncasecmp(q, "tag", 3))
			return true;
	}

	return false;
}


/* a value with its line folds as single spaces */
static int print_unfolded(struct mbuf *mb, const struct hval *v)
{
	size_t i;
	int err = 0;

	for (i = 0; i < v->l && !err; i++) {
		char c = v->p[i];

		if (c == '\r')
			continue;
		if (c == '\n') {
			while (i + 1 < v->l && is_lws(v->p[i + 1]))
				++i;
			c = ' ';
		}
		err = mbuf_write_u8(mb, (uint8_t)c);
	}

	return err;
}


static int print_reply(struct mbuf *mb, const struct rreq *r,
		       uint16_t scode, const char *reason, bool allow)
{
	unsigned i;
	int err;

	mb->pos = mb->end = 0;

	err = mbuf_printf(mb, "SIP/2.0 %u %s\r\n", scode, reason);

	for (i = 0; i < r->nvia && i < VIA_MAX; i++) {
		err |= mbuf_write_str(mb, "v: ");
		err |= print_unfolded(mb, &r->via[i]);
		err |= mbuf_write_str(mb, "\r\n");
	}

	err |= mbuf_write_str(mb, "f: ");
	err |= print_unfolded(mb, &r->from);
	err |= mbuf_write_str(mb, "\r\nt: ");
	err |= print_unfolded(mb, &r->to);
	if (!has_tag(&r->to))
		err |= mbuf_printf(mb, ";tag=%08x", rand_u32());
	err |= mbuf_write_str(mb, "\r\ni: ");
	err |= print_unfolded(mb, &r->callid);
	err |= mbuf_write_str(mb, "\r\nCSeq: ");
	err |= print_unfolded(mb, &r->cseq);
	err |= mbuf_write_str(mb, "\r\n");
	if (allow)
		err |= mbuf_write_str(mb, "Allow: " B2BUA_ALLOW "\r\n");
	err |= mbuf_write_str(mb, "l: 0\r\n\r\n");

	return err;
}


static bool method_allowed(const struct hval *met)
{
	return hv_eq(met, "INVITE") || hv_eq(met, "ACK") ||
		hv_eq(met, "CANCEL") || hv_eq(met, "BYE") ||
		hv_eq(met, "OPTIONS") || hv_eq(met, "INFO");
}


/**
 * The answer to a request that libre's decoder refused
 *
 * @param mb     the response is written here (from its start)
 * @param p      the datagram
 * @param n      its length
 * @param scodep the status code, 0 when the datagram gets no answer
 *
 * @return 0 or an errno
 */
int rescue_reply(struct mbuf *mb, const uint8_t *p, size_t n,
		 uint16_t *scodep)
{
	struct rreq *r;
	struct hval ruri, furi, turi;
	uint16_t scode;
	const char *reason;
	bool allow = false;
	int err = 0;

	if (!mb || !p || !scodep)
		return EINVAL;

	*scodep = 0;

	r = mem_zalloc(sizeof(*r), NULL);
	if (!r)
		return ENOMEM;

	parse(r, (const char *)p, n);

	/* responses, ACKs and the unanswerable stay unanswered */
	if ((n >= 4 && !memcmp(p, "SIP/", 4)) || !r->method || !r->met.l ||
	    hv_eq(&r->met, "ACK") ||
	    !r->nvia || r->nvia > VIA_MAX || !r->nfrom || !r->nto ||
	    !r->ncallid || !r->ncseq || r->ctl)
		goto out;

	ruri = r->uri;
	furi = addr_uri(&r->from);
	turi = addr_uri(&r->to);

	if (r->ver.l > 4 && !strncmp(r->ver.p, "SIP/", 4) &&
	    !hv_eq(&r->ver, "SIP/2.0") && r->ver.p[r->ver.l - 1] != ' ') {
		scode = 505;
		reason = "Version Not Supported";
	}
	else if (!r->line_ok) {
		scode = 400;
		reason = "Bad Request-Line";
	}
	else if (!method_allowed(&r->met)) {
		scode = 405;
		reason = "Method Not Allowed";
		allow = true;
	}
	else if (!scheme_known(&ruri, false) || !scheme_known(&furi, true) ||
		 !scheme_known(&turi, true)) {
		scode = 416;
		reason = "Unsupported URI Scheme";
	}
	else if (r->nfrom > 1 || r->nto > 1 || r->ncallid > 1 ||
		 r->ncseq > 1) {
		scode = 400;
		reason = "Duplicate Header";
	}
	else {
		scode = 400;
		reason = "Bad Request";
	}

	err = print_reply(mb, r, scode, reason, allow);
	if (!err && allow && mb->end > n)
		err = print_reply(mb, r, scode, reason, false);
	if (err)
		goto out;

	/* never more bytes back than came in */
	if (mb->end > n)
		goto out;

	*scodep = scode;

 out:
	mem_deref(r);
	return err;
}
