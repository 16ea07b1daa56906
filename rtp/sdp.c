/**
 * @file sdp.c  SDP parsing and rewriting for the media relay
 *
 * Pure functions: the relay reads what it needs of a body (addresses,
 * ports, directions, G.711 payload types) and writes the same body back
 * with its own address and ports in c=, o=, m= and a=rtcp, and without
 * the far side's ICE attributes (tollgate is the media peer).  Everything
 * else is kept as the far side wrote it.
 */

#include <string.h>
#include "relay_int.h"


/** Next line of [*pp, end): without its CR LF; false at the end */
static bool next_line(const char **pp, const char *end, struct pl *line)
{
	const char *p = *pp, *eol;

	if (p >= end)
		return false;

	eol = memchr(p, '\n', end - p);
	if (!eol)
		eol = end;

	line->p = p;
	line->l = eol - p;
	if (line->l && line->p[line->l - 1] == '\r')
		--line->l;

	*pp = eol < end ? eol + 1 : end;

	return true;
}


/** Next space-separated token of *src (src advances past it) */
static bool next_tok(struct pl *src, struct pl *tok)
{
	while (src->l && src->p[0] == ' ') {
		++src->p;
		--src->l;
	}

	if (!src->l)
		return false;

	tok->p = src->p;
	while (src->l && src->p[0] != ' ') {
		++src->p;
		--src->l;
	}
	tok->l = src->p - tok->p;

	return true;
}


static bool pl_isnum(const struct pl *pl)
{
	size_t i;

	if (!pl->l || pl->l > 5)
		return false;

	for (i = 0; i < pl->l; i++) {
		if (pl->p[i] < '0' || pl->p[i] > '9')
			return false;
	}

	return pl_u32(pl) <= 65535;
}


static bool is_ice(const struct pl *v)
{
	static const char *const attrv[] = {
		"candidate:", "ice-ufrag:", "ice-pwd:", "ice-options:",
		"ice-lite", "ice-mismatch", "end-of-candidates",
		"remote-candidates:", "ice-pacing:"
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(attrv); i++) {
		size_t n = strlen(attrv[i]);

		if (v->l >= n && !memcmp(v->p, attrv[i], n))
			return true;
	}

	return false;
}


/** c=IN IP4 192.0.2.1 (a multicast /ttl is ignored) */
static int parse_conn(const struct pl *v, struct sa *sa)
{
	struct pl src = *v, nt, at, addr, extra;
	const char *slash;

	if (!next_tok(&src, &nt) || !next_tok(&src, &at) ||
	    !next_tok(&src, &addr) || next_tok(&src, &extra))
		return EBADMSG;

	if (pl_strcmp(&nt, "IN") ||
	    (pl_strcmp(&at, "IP4") && pl_strcmp(&at, "IP6")))
		return EBADMSG;

	slash = pl_strchr(&addr, '/');
	if (slash)
		addr.l = slash - addr.p;

	if (sa_set(sa, &addr, 0))
		return EBADMSG;

	if ((at.p[2] == '4') != (sa_af(sa) == AF_INET))
		return EBADMSG;

	return 0;
}


static int parse_dir(const struct pl *v, enum media_dirattr *dir)
{
	if (!pl_strcmp(v, "sendrecv"))
		*dir = MEDIA_SENDRECV;
	else if (!pl_strcmp(v, "sendonly"))
		*dir = MEDIA_SENDONLY;
	else if (!pl_strcmp(v, "recvonly"))
		*dir = MEDIA_RECVONLY;
	else if (!pl_strcmp(v, "inactive"))
		*dir = MEDIA_INACTIVE;
	else
		return ENOENT;

	return 0;
}


/** m=audio 49170 RTP/AVP 0 8 101 */
static int parse_m(const struct pl *v, struct media_sdp_m *m)
{
	struct pl src = *v, type, port, proto, fmt;
	bool any = false;

	if (!next_tok(&src, &type) || !next_tok(&src, &port) ||
	    !next_tok(&src, &proto))
		return EBADMSG;

	/* a port count (m=video 49170/2) is not supported */
	if (type.l >= sizeof(m->type) || !pl_isnum(&port))
		return EBADMSG;

	memset(m, 0, sizeof(*m));
	pl_strcpy(&type, m->type, sizeof(m->type));
	m->port = (uint16_t)pl_u32(&port);
	m->pt_pcmu = -1;
	m->pt_pcma = -1;
	m->srate = strcmp(m->type, "audio") ? 90000 : 8000;

	/* static payload types */
	while (next_tok(&src, &fmt)) {
		any = true;
		if (!pl_strcmp(&fmt, "0"))
			m->pt_pcmu = 0;
		else if (!pl_strcmp(&fmt, "8"))
			m->pt_pcma = 8;
	}

	return any ? 0 : EBADMSG;
}


/** a=rtpmap:96 PCMU/8000 */
static void parse_rtpmap(const struct pl *v, struct media_sdp_m *m)
{
	struct pl src = *v, pt, enc, name, rate;
	const char *slash;

	if (v->l < 8 || memcmp(v->p, "rtpmap:", 7))
		return;

	src.p += 7;
	src.l -= 7;
	if (!next_tok(&src, &pt) || !next_tok(&src, &enc) || !pl_isnum(&pt))
		return;

	slash = pl_strchr(&enc, '/');
	if (!slash)
		return;

	name.p = enc.p;
	name.l = slash - enc.p;
	rate.p = slash + 1;
	rate.l = enc.p + enc.l - rate.p;
	slash = pl_strchr(&rate, '/');
	if (slash)
		rate.l = slash - rate.p;

	if (!pl_strcasecmp(&name, "PCMU") && pl_u32(&rate) == 8000)
		m->pt_pcmu = (int)pl_u32(&pt);
	else if (!pl_strcasecmp(&name, "PCMA") && pl_u32(&rate) == 8000)
		m->pt_pcma = (int)pl_u32(&pt);
}


/** a=rtcp:53021 [IN IP4 192.0.2.1]: port and the rest after it */
static int parse_rtcp(const struct pl *v, uint32_t *port, struct pl *rest)
{
	struct pl src = *v, tok;

	src.p += 5;
	src.l -= 5;
	if (!next_tok(&src, &tok) || !pl_isnum(&tok) || !pl_u32(&tok))
		return EBADMSG;

	*port = pl_u32(&tok);
	*rest = src;
	while (rest->l && rest->p[0] == ' ') {
		++rest->p;
		--rest->l;
	}

	return 0;
}


/**
 * Parse what the relay needs of an SDP body
 *
 * @return 0, or EBADMSG for a body that is not SDP the relay understands
 */
int media_sdp_parse(struct media_sdp *sdp, const char *p, size_t len)
{
	const char *end = p + len;
	struct sa sconn, mconn;
	bool shave = false, mhave = false;
	enum media_dirattr sdir = MEDIA_SENDRECV;
	struct media_sdp_m *m = NULL;
	uint32_t rtcp_port = 0;
	struct sa rtcp_addr;
	struct pl line;
	bool first = true;
	int err;

	if (!sdp || !p)
		return EINVAL;

	memset(sdp, 0, sizeof(*sdp));
	sa_init(&sconn, AF_UNSPEC);
	sa_init(&mconn, AF_UNSPEC);
	sa_init(&rtcp_addr, AF_UNSPEC);

	for (;;) {
		bool more = next_line(&p, end, &line);
		struct pl val;

		if (more && !line.l)
			continue;   /* tolerate empty lines */

		/* close the previous m= section */
		if (m && (!more || line.p[0] == 'm')) {
			const struct sa *c = mhave ? &mconn : &sconn;
			const bool have = mhave || shave;

			if (!have && m->port)
				return EBADMSG;

			if (have) {
				m->rtp = *c;
				sa_set_port(&m->rtp, m->port);
				m->rtcp = sa_af(&rtcp_addr) ? rtcp_addr : *c;
				sa_set_port(&m->rtcp, rtcp_port ? rtcp_port
					    : (uint16_t)(m->port + 1));
			}
			m->hold = m->dir == MEDIA_SENDONLY ||
				m->dir == MEDIA_INACTIVE ||
				(have && sa_is_any(c));
			m = NULL;
		}

		if (!more)
			break;

		if (line.l < 2 || line.p[1] != '=' ||
		    line.p[0] < 'a' || line.p[0] > 'z')
			return EBADMSG;

		if (first && pl_strcmp(&line, "v=0"))
			return EBADMSG;
		first = false;

		val.p = line.p + 2;
		val.l = line.l - 2;

		switch (line.p[0]) {

		case 'c':
			err = parse_conn(&val, m ? &mconn : &sconn);
			if (err)
				return err;
			if (m)
				mhave = true;
			else
				shave = true;
			break;

		case 'm':
			if (sdp->mc >= MEDIA_MAX_M)
				return E2BIG;
			m = &sdp->m[sdp->mc++];
			err = parse_m(&val, m);
			if (err)
				return err;
			m->dir = sdir;
			mhave = false;
			sa_init(&mconn, AF_UNSPEC);
			sa_init(&rtcp_addr, AF_UNSPEC);
			rtcp_port = 0;
			break;

		case 'a':
			if (!m) {
				(void)parse_dir(&val, &sdir);
				break;
			}

			(void)parse_dir(&val, &m->dir);
			parse_rtpmap(&val, m);

			if (val.l > 5 && !memcmp(val.p, "rtcp:", 5)) {
				struct pl rest;

				if (parse_rtcp(&val, &rtcp_port, &rest))
					return EBADMSG;
				if (rest.l && parse_conn(&rest, &rtcp_addr))
					return EBADMSG;
			}
			break;

		default:
			break;
		}
	}

	if (first)
		return EBADMSG;

	return 0;
}


/** Is any stream of the body put on hold by its sender? */
bool media_sdp_hold(const struct media_sdp *sdp)
{
	unsigned i;

	for (i = 0; i < sdp->mc; i++) {
		if (sdp->m[i].port && sdp->m[i].hold)
			return true;
	}

	return false;
}


static const char *ipver(const struct sa *addr)
{
	return sa_af(addr) == AF_INET6 ? "IP6" : "IP4";
}


/**
 * Rewrite an SDP body so that every stream points at the relay
 *
 * @param out    Where to write the new body
 * @param p      The body
 * @param len    Its length
 * @param addr   The relay's address toward the receiver of the body
 * @param portv  RTP port of the relay for each m= line (RTCP = port + 1)
 * @param portc  Number of entries in portv (at least the m= line count)
 *
 * @return 0, EBADMSG for a body media_sdp_parse() refuses, EINVAL
 */
int media_sdp_rewrite(struct mbuf *out, const char *p, size_t len,
		      const struct sa *addr, const uint16_t *portv,
		      unsigned portc)
{
	const char *end = p + len;
	struct media_sdp sdp;
	struct pl line;
	int mi = -1;
	bool zero = false;
	int err;

	if (!out || !p || !addr || (portc && !portv))
		return EINVAL;

	err = media_sdp_parse(&sdp, p, len);
	if (err)
		return err;

	if (sdp.mc > portc)
		return EINVAL;

	while (!err && next_line(&p, end, &line)) {
		struct pl val, a, b, c, d, rest;
		uint32_t rport;

		if (!line.l)
			continue;

		val.p = line.p + 2;
		val.l = line.l - 2;

		switch (line.p[0]) {

		case 'o':
			rest = val;
			if (!next_tok(&rest, &a) || !next_tok(&rest, &b) ||
			    !next_tok(&rest, &c) || !next_tok(&rest, &d) ||
			    pl_strcmp(&d, "IN")) {
				err = mbuf_printf(out, "o=%r\r\n", &val);
				break;
			}
			err = mbuf_printf(out, "o=%r %r %r IN %s %j\r\n",
					  &a, &b, &c, ipver(addr), addr);
			break;

		case 'c':
			err = mbuf_printf(out, "c=IN %s %j\r\n",
					  ipver(addr), addr);
			break;

		case 'm':
			++mi;
			zero = sdp.m[mi].port == 0;
			rest = val;
			(void)next_tok(&rest, &a);
			(void)next_tok(&rest, &b);
			err = mbuf_printf(out, "m=%r %u%r\r\n", &a,
					  zero ? 0 : portv[mi], &rest);
			break;

		case 'a':
			if (is_ice(&val))
				break;

			if (mi >= 0 && !zero && val.l > 5 &&
			    !memcmp(val.p, "rtcp:", 5) &&
			    !parse_rtcp(&val, &rport, &rest)) {
				err = mbuf_printf(out, "a=rtcp:%u",
						  portv[mi] + 1);
				if (!err && rest.l)
					err = mbuf_printf(out, " IN %s %j",
							  ipver(addr), addr);
				if (!err)
					err = mbuf_write_str(out, "\r\n");
				break;
			}

			err = mbuf_printf(out, "%r\r\n", &line);
			break;

		default:
			err = mbuf_printf(out, "%r\r\n", &line);
			break;
		}
	}

	return err;
}
