/**
 * @file conf.c  The B2BUA's keys: where it listens, whom it trusts, the
 *               gateways and routes, digest authentication and the limits
 *               of a call
 */

#include <string.h>
#include <arpa/inet.h>
#include "b2bua_int.h"


enum {
	CFG_MAX_HDR     = 64,           /* header name                     */
	CFG_MAX_REALM   = 128,
};


static void peer_destructor(void *arg)
{
	struct cfg_peer *peer = arg;

	mem_deref(peer->account);
	mem_deref(peer->hdr);
}


static void hdr_destructor(void *arg)
{
	struct cfg_hdr *hdr = arg;

	mem_deref(hdr->name);
}


/** Copy of an address with all but the first bits cleared, port 0 */
static void net_mask(struct sa *out, const struct sa *in, unsigned bits)
{
	sa_init(out, AF_UNSPEC);

	if (sa_af(in) == AF_INET) {
		uint32_t mask = bits ? 0xffffffffu << (32 - bits) : 0;

		sa_set_in(out, sa_in(in) & mask, 0);
	}
	else {
		uint8_t a[16];
		unsigned i;

		sa_in6(in, a);
		for (i = 0; i < 16; i++) {
			unsigned b = i * 8;

			if (b >= bits)
				a[i] = 0;
			else if (bits - b < 8)
				a[i] &= (uint8_t)(0xff << (8 - (bits - b)));
		}

		sa_set_in6(out, a, 0);
	}
}


/** True if the first bits of two addresses of one family are equal */
bool b2bua_same_net(const struct sa *a, const struct sa *b, unsigned bits)
{
	struct sa x, y;
	int af = sa_af(a);

	if (af != sa_af(b) || (af != AF_INET && af != AF_INET6))
		return false;

	if (bits > (af == AF_INET ? 32u : 128u))
		return false;

	net_mask(&x, a, bits);
	net_mask(&y, b, bits);

	return sa_cmp(&x, &y, SA_ADDR);
}


static int h_sip_listen(struct cfg_parser *p, void *mod,
			const struct cfg_key *k, const struct pl *val)
{
	struct b2bua_conf *cfg = mod;
	const char *expect = "TRANSPORT:ADDRESS[:PORT], "
		"e.g. udp:127.0.0.1:5060";
	struct cfg_listen *l;
	struct pl arg, tp, addr;
	struct le *le;
	int err;
	(void)k;

	err = cfg_one_arg(p, val, &arg, expect);
	if (err)
		return err;

	if (!cfg_pl_split(&arg, ':', &tp, &addr))
		return cfg_kerr(p, "'%r': expected %s", &arg, expect);

	l = mem_zalloc(sizeof(*l), NULL);
	if (!l)
		return ENOMEM;

	l->line = cfg_line(p);

	err = cfg_get_transport(p, &tp, &l->tp);
	if (err)
		goto out;

	err = cfg_get_hostport(p, &addr, l->tp == SIP_TRANSP_TLS ? 5061 : 5060,
			       &l->addr);
	if (err)
		goto out;

	if (sa_is_any(&l->addr)) {
		err = cfg_kerr(p, "'%r': listen on a concrete address, not the "
			       "unspecified one (it goes into Via and Contact)",
			       &addr);
		goto out;
	}

	LIST_FOREACH(&cfg->listenl, le) {
		const struct cfg_listen *o = le->data;

		if (o->tp == l->tp && sa_cmp(&o->addr, &l->addr, SA_ALL)) {
			err = cfg_kerr(p, "duplicate '%r' (first at line %u)",
				       &arg, o->line);
			goto out;
		}
	}

	list_append(&cfg->listenl, &l->le, l);

 out:
	if (err)
		mem_deref(l);

	return err;
}


static const char * const rtp_srcv[] = {
	[CFG_RTP_STRICT] = "strict",
	[CFG_RTP_LATCH]  = "latch",
	[CFG_RTP_ANY]    = "any",
};


/** rtp=strict|latch|any of a trusted_peer line */
static int peer_rtp(struct cfg_parser *p, enum cfg_rtp_source *srcp,
		    const struct pl *arg)
{
	struct pl v = *arg;
	unsigned i;

	if (!cfg_pl_skip_prefix(&v, "rtp="))
		return ENOENT;

	for (i = 0; i < ARRAY_SIZE(rtp_srcv); i++) {
		if (!pl_strcmp(&v, rtp_srcv[i])) {
			*srcp = (enum cfg_rtp_source)i;
			return 0;
		}
	}

	return cfg_kerr(p, "unknown media source mode '%r' (strict, latch "
			"or any)", &v);
}


/* account=NAME | header=NAME | from */
static int peer_mode(struct cfg_parser *p, struct cfg_peer *peer,
		     const struct pl *arg)
{
	struct pl v = *arg;

	if (!pl_strcmp(&v, "from")) {
		peer->mode = CFG_ID_FROM;
		return 0;
	}

	if (cfg_pl_skip_prefix(&v, "account=")) {
		if (!v.l)
			return cfg_kerr(p, "account name is empty");
		peer->mode = CFG_ID_FIXED;
		return pl_strdup(&peer->account, &v);
	}

	if (cfg_pl_skip_prefix(&v, "header=")) {
		if (!cfg_pl_is_token(&v) || v.l > CFG_MAX_HDR)
			return cfg_kerr(p, "'%r' is not a valid header name",
					&v);
		peer->mode = CFG_ID_HEADER;
		return pl_strdup(&peer->hdr, &v);
	}

	return cfg_kerr(p, "unknown mode '%r' (account=NAME, header=NAME or "
			"from)", arg);
}


static int h_trusted_peer(struct cfg_parser *p, void *mod,
			  const struct cfg_key *k, const struct pl *val)
{
	struct b2bua_conf *cfg = mod;
	const char *expect = "NETWORK[/BITS] followed by account=NAME, "
		"header=NAME or from, then optionally rtp=strict|latch|any, "
		"limit=off|RATE/BURST, request_limit=RATE/BURST|off, "
		"transport=udp|tcp and port=N";
	struct pl argv[8], net, bits = PL_INIT, v;
	struct cfg_peer *peer;
	struct sa masked;
	unsigned i, n, maxbits;
	bool mode = false;
	struct le *le;
	int err;
	(void)k;

	n = cfg_split_args(val, argv, 8);
	if (n < 2 || n > 7)
		return cfg_kerr(p, "'%r': expected %s", val, expect);

	peer = mem_zalloc(sizeof(*peer), peer_destructor);
	if (!peer)
		return ENOMEM;

	peer->line = cfg_line(p);
	peer->tp = SIP_TRANSP_NONE;

	if (!cfg_pl_split(&argv[0], '/', &net, &bits))
		net = argv[0];

	if (cfg_get_ip(&net, &peer->addr)) {
		err = cfg_kerr(p, "'%r' is not an IPv4 or IPv6 address", &net);
		goto out;
	}

	if (sa_af(&peer->addr) == AF_INET && pl_strchr(&net, ':')) {
		err = cfg_kerr(p, "'%r' is an IPv4-mapped address: write the "
			       "IPv4 network instead", &net);
		goto out;
	}

	maxbits = sa_af(&peer->addr) == AF_INET ? 32 : 128;
	peer->bits = maxbits;

	if (bits.p) {
		err = cfg_get_u32(p, "prefix length", &bits, 0, maxbits,
				  &peer->bits);
		if (err)
			goto out;
	}

	net_mask(&masked, &peer->addr, peer->bits);
	if (!sa_cmp(&masked, &peer->addr, SA_ADDR)) {
		err = cfg_kerr(p, "'%r' has host bits set (the network is "
			       "%j/%u)", &argv[0], &masked, peer->bits);
		goto out;
	}

	/* the mode (once) and the options, in any order */
	for (i = 1; i < n; i++) {
		v = argv[i];

		if (cfg_pl_skip_prefix(&v, "transport=")) {
			if (peer->tp != SIP_TRANSP_NONE) {
				err = cfg_kerr(p, "transport given twice");
				goto out;
			}
			err = cfg_get_transport(p, &v, &peer->tp);
			if (err)
				goto out;
			continue;
		}

		if (cfg_pl_skip_prefix(&v, "port=")) {
			uint32_t port;

			if (peer->port) {
				err = cfg_kerr(p, "port given twice");
				goto out;
			}
			err = cfg_get_u32(p, "port", &v, 1, 65535, &port);
			if (err)
				goto out;
			peer->port = (uint16_t)port;
			continue;
		}

		err = peer_rtp(p, &peer->rtp, &argv[i]);
		if (err == ENOENT)
			err = b2bua_conf_peer_limit(p, peer, &argv[i]);
		if (err == ENOENT && !mode) {
			mode = true;
			err = peer_mode(p, peer, &argv[i]);
		}
		else if (err == ENOENT) {
			err = cfg_kerr(p, "unknown option '%r': expected %s",
				       &argv[i], expect);
		}
		if (err)
			goto out;
	}

	if (!mode) {
		err = cfg_kerr(p, "'%r': expected %s", val, expect);
		goto out;
	}

	if (peer->limit_off && (peer->invite_set || peer->request_set)) {
		err = cfg_kerr(p, "limit=off leaves no other limit to set");
		goto out;
	}

	LIST_FOREACH(&cfg->peerl, le) {
		const struct cfg_peer *o = le->data;

		if (o->bits == peer->bits && o->tp == peer->tp &&
		    o->port == peer->port &&
		    b2bua_same_net(&o->addr, &peer->addr, peer->bits)) {
			err = cfg_kerr(p, "duplicate network '%r' (first at "
				       "line %u)", &argv[0], o->line);
			goto out;
		}
	}

	list_append(&cfg->peerl, &peer->le, peer);

 out:
	if (err)
		mem_deref(peer);

	return err;
}


static const char * const managed_hdrv[] = {
	"Via", "From", "To", "Call-ID", "CSeq", "Contact", "Route",
	"Record-Route", "Max-Forwards", "Content-Length", "Content-Type",
	"Authorization", "Proxy-Authorization",
	/* compact forms (RFC 3261 section 7.3.3) of the above */
	"v", "f", "t", "i", "m", "l", "c",
};


static int h_copy_header(struct cfg_parser *p, void *mod,
			 const struct cfg_key *k, const struct pl *val)
{
	struct b2bua_conf *cfg = mod;
	struct cfg_hdr *hdr;
	struct pl arg;
	struct le *le;
	size_t i;
	int err;
	(void)k;

	err = cfg_one_arg(p, val, &arg, "one header name");
	if (err)
		return err;

	if (!cfg_pl_is_token(&arg) || arg.l > CFG_MAX_HDR)
		return cfg_kerr(p, "'%r' is not a valid header name", &arg);

	for (i = 0; i < ARRAY_SIZE(managed_hdrv); i++) {
		if (!pl_strcasecmp(&arg, managed_hdrv[i]))
			return cfg_kerr(p, "'%r' is managed by tollgate itself "
					"and cannot be copied", &arg);
	}

	LIST_FOREACH(&cfg->copyl, le) {
		const struct cfg_hdr *o = le->data;

		if (!pl_strcasecmp(&arg, o->name))
			return cfg_kerr(p, "'%r' already listed", &arg);
	}

	hdr = mem_zalloc(sizeof(*hdr), hdr_destructor);
	if (!hdr)
		return ENOMEM;

	err = pl_strdup(&hdr->name, &arg);
	if (err) {
		mem_deref(hdr);
		return err;
	}

	list_append(&cfg->copyl, &hdr->le, hdr);

	return 0;
}


static int h_sip_realm(struct cfg_parser *p, void *mod,
		       const struct cfg_key *k, const struct pl *val)
{
	struct b2bua_conf *cfg = mod;
	size_t i;
	(void)k;

	if (val->l > CFG_MAX_REALM)
		return cfg_kerr(p, "longer than %u characters", CFG_MAX_REALM);

	for (i = 0; i < val->l; i++) {
		if (val->p[i] == '"' || val->p[i] == '\\')
			return cfg_kerr(p, "'%r' may not contain '\"' or '\\'",
					val);
	}

	return cfg_set_str(&cfg->realm, val);
}


/**
 * Find the first trusted peer whose network contains a source address
 * and whose transport and port, if it names them, are those the request
 * came over and from.  An IPv4-mapped IPv6 address (from a dual-stack
 * socket) is taken as the IPv4 address it carries.
 *
 * @param cfg  the B2BUA's configuration
 * @param src  source address and port of a request
 * @param tp   transport it came over
 *
 * @return The peer, NULL if the source is not trusted
 */
const struct cfg_peer *cfg_peer_find(const struct b2bua_conf *cfg,
				     const struct sa *src, enum sip_transp tp)
{
	struct sa v4;
	struct le *le;

	if (!cfg || !src)
		return NULL;

	if (sa_af(src) == AF_INET6 &&
	    IN6_IS_ADDR_V4MAPPED(&src->u.in6.sin6_addr)) {
		uint8_t a[16];

		sa_in6(src, a);
		sa_init(&v4, AF_INET);
		sa_set_in(&v4, (uint32_t)a[12] << 24 | (uint32_t)a[13] << 16 |
			  (uint32_t)a[14] << 8 | a[15], sa_port(src));
		src = &v4;
	}

	LIST_FOREACH(&cfg->peerl, le) {
		const struct cfg_peer *peer = le->data;

		if (peer->tp != SIP_TRANSP_NONE && peer->tp != tp)
			continue;
		if (peer->port && peer->port != sa_port(src))
			continue;
		if (b2bua_same_net(&peer->addr, src, peer->bits))
			return peer;
	}

	return NULL;
}


/* ---------------------------------------------------------------- print */

static int print_listen(struct re_printf *pf, const void *mod,
			const struct cfg_key *k)
{
	const struct b2bua_conf *cfg = mod;
	struct le *le;
	int err = 0;

	LIST_FOREACH(&cfg->listenl, le) {
		const struct cfg_listen *l = le->data;

		err |= re_hprintf(pf, "%s %s:%J\n", k->name,
				  cfg_transp_name(l->tp), &l->addr);
	}

	return err;
}


static int print_peer(struct re_printf *pf, const void *mod,
		      const struct cfg_key *k)
{
	const struct b2bua_conf *cfg = mod;
	struct le *le;
	int err = 0;

	LIST_FOREACH(&cfg->peerl, le) {
		const struct cfg_peer *peer = le->data;

		err |= re_hprintf(pf, "%s %j/%u ", k->name, &peer->addr,
				  peer->bits);

		switch (peer->mode) {

		case CFG_ID_FIXED:
			err |= re_hprintf(pf, "account=%s", peer->account);
			break;

		case CFG_ID_HEADER:
			err |= re_hprintf(pf, "header=%s", peer->hdr);
			break;

		case CFG_ID_FROM:
		default:
			err |= re_hprintf(pf, "from");
			break;
		}

		if (peer->rtp != CFG_RTP_STRICT)
			err |= re_hprintf(pf, " rtp=%s", rtp_srcv[peer->rtp]);
		err |= b2bua_conf_print_peer_limit(pf, peer);
		if (peer->tp != SIP_TRANSP_NONE)
			err |= re_hprintf(pf, " transport=%s",
					  cfg_transp_name(peer->tp));
		if (peer->port)
			err |= re_hprintf(pf, " port=%u", peer->port);
		err |= re_hprintf(pf, "\n");
	}

	return err;
}


static int print_copy_header(struct re_printf *pf, const void *mod,
			     const struct cfg_key *k)
{
	const struct b2bua_conf *cfg = mod;
	struct le *le;
	int err = 0;

	LIST_FOREACH(&cfg->copyl, le) {
		const struct cfg_hdr *hdr = le->data;

		err |= re_hprintf(pf, "%s %s\n", k->name, hdr->name);
	}

	return err;
}


/* --------------------------------------------------------------- module */

static void conf_destructor(void *arg)
{
	struct b2bua_conf *cfg = arg;

	list_flush(&cfg->listenl);
	list_flush(&cfg->peerl);
	list_flush(&cfg->routel);
	list_flush(&cfg->gatewayl);
	list_flush(&cfg->xlatl);
	list_flush(&cfg->copyl);

	mem_deref(cfg->file);
	mem_deref(cfg->realm);
	mem_deref(cfg->tls_cert.path);
	mem_deref(cfg->tls_key.path);
	mem_deref(cfg->tls_ca.path);
}


/* session_expires: remember its line for the check against min_se */
static int h_session_expires(struct cfg_parser *p, void *mod,
			     const struct cfg_key *k, const struct pl *val)
{
	struct b2bua_conf *cfg = mod;
	int err;

	err = cfg_key_u32(p, mod, k, val);
	if (!err)
		cfg->session_expires_line = cfg_line(p);

	return err;
}


static int conf_check(struct cfg_parser *p, void *mod)
{
	struct b2bua_conf *cfg = mod;
	int err;

	if (cfg->session_expires && cfg->session_expires < cfg->min_se) {
		cfg_set_line(p, cfg->session_expires_line);
		return cfg_err(p, "session_expires: %u is below min_se %u "
			       "(0 turns session timers off)",
			       cfg->session_expires, cfg->min_se);
	}

	err = b2bua_conf_resolve(p, cfg);
	if (err)
		return err;

	b2bua_conf_tls_check(p, cfg);
	b2bua_conf_xlat_check(p, cfg);

	cfg_set_line(p, 0);

	if (!cfg->listenl.head)
		(void)cfg_err(p, "no sip_listen given (at least one is "
			      "required)");

	return str_dup(&cfg->file, cfg_file(p));
}


#define B struct b2bua_conf
#define LIMIT_KEY(nm, field, dflt, text) \
	{ .name = (nm), .parse = b2bua_conf_limit, \
	  .print = b2bua_conf_print_limit, .off = offsetof(B, field), \
	  .def = (dflt), .doc = "RATE BURST|off: " text }

static const char * const limit_replyv[] = { "503", "none", NULL };

static const char *const fail_answerv[] = { "403", "silence", NULL };
static const char *const digest_uriv[] = { "strict", "host", NULL };

static const struct cfg_key keyv[] = {
	{ .name = "sip_listen", .parse = h_sip_listen, .print = print_listen,
	  .repeat = true,
	  .doc = "udp|tcp|tls:ADDRESS[:PORT] SIP listens on (at least "
		 "one)" },
	{ .name = "sip_tls_cert", .parse = b2bua_conf_tls_file,
	  .print = b2bua_conf_print_tls_file, .off = offsetof(B, tls_cert),
	  .doc = "FILE: PEM certificate (chain) of the tls: listeners" },
	{ .name = "sip_tls_key", .parse = b2bua_conf_tls_file,
	  .print = b2bua_conf_print_tls_file, .off = offsetof(B, tls_key),
	  .doc = "FILE: PEM private key of sip_tls_cert" },
	{ .name = "sip_tls_ca", .parse = b2bua_conf_tls_file,
	  .print = b2bua_conf_print_tls_file, .off = offsetof(B, tls_ca),
	  .doc = "FILE: PEM CAs that sign TLS gateways' certificates "
		 "(default: the system's)" },
	{ .name = "trusted_peer", .parse = h_trusted_peer,
	  .print = print_peer, .repeat = true,
	  .doc = "NETWORK[/BITS] account=NAME|header=NAME|from "
		 "[rtp=strict|latch|any] [limit=...] [request_limit=...] "
		 "[transport=udp|tcp] [port=N]: callers let in without "
		 "digest, and whose media the relay takes" },
	{ .name = "gateway", .parse = b2bua_conf_gateway,
	  .print = b2bua_conf_print_gateway, .repeat = true,
	  .doc = "NAME ADDRESS[:PORT] [transport=udp|tcp|tls] "
		 "[carrier=NAME] [probe=S] [probe_timeout=MS] [fail=N] "
		 "[recover=N] [burst=N] [max_calls=N] [cps=N]: where calls "
		 "go; the options override the gateway_* keys" },
	{ .name = "route", .parse = b2bua_conf_route,
	  .print = b2bua_conf_print_route, .repeat = true,
	  .doc = "PREFIX|default GATEWAY[,GATEWAY...]|lcr: longest prefix "
		 "wins, gateways tried in order; lcr: the carriers whose "
		 "deck covers the number, cheapest first" },
	{ .name = "number_in", .parse = b2bua_conf_number_in,
	  .print = b2bua_conf_print_xlat, .repeat = true,
	  .doc = "[account=NAME] [peer=NET[/BITS]] [match=PATTERN] "
		 "[len=MIN[-MAX]] [national=CC] [strip=N] [prefix=P]: "
		 "the caller's number before routing; first match wins" },
	{ .name = "number_out", .parse = b2bua_conf_number_out,
	  .print = b2bua_conf_print_xlat, .repeat = true,
	  .doc = "[gateway=NAME] [match=PATTERN] [len=MIN[-MAX]] [strip=N] "
		 "[prefix=P]: the number a gateway gets; first match wins" },
	CFG_U32("lcr_min_margin", B, lcr_min_margin, 0, 99, "0",
		"percent of the customer's price a carrier must leave; "
		"carriers below are never used"),
	CFG_U32("lcr_ref_duration", B, lcr_ref_duration, 1, 86400, "60",
		"seconds of the call whose cost orders the carriers of an "
		"lcr route"),
	CFG_U32("lcr_margin_horizon", B, lcr_margin_horizon, 1, 604800,
		"7200", "seconds of call the margin guard checks every "
		"carrier's cost over"),
	{ .name = "copy_header", .parse = h_copy_header,
	  .print = print_copy_header, .repeat = true,
	  .doc = "header copied from the caller's INVITE to the gateway's" },
	{ .name = "sip_realm", .parse = h_sip_realm, .print = cfg_print_str,
	  .off = offsetof(B, realm), .def = "tollgate",
	  .doc = "digest realm (also in the accounts' HA1)" },
	CFG_YESNO("digest_auth", B, digest_auth, "yes",
		  "challenge callers that are no trusted_peer"),
	CFG_U32("nonce_ttl", B, nonce_ttl, 10, 86400, "300",
		"seconds a digest nonce stays valid"),
	CFG_U32("ring_timeout", B, ring_timeout, 1, 3600, "60",
		"seconds without answer before CANCEL and 408"),
	CFG_U32("max_call_duration", B, max_duration, 0, 604800, "14400",
		"seconds an answered call may last, 0 = unlimited"),
	CFG_U32("ack_timeout", B, ack_timeout, 1, 300, "32",
		"seconds a 2xx waits for its ACK"),
	{ .name = "session_expires", .parse = h_session_expires,
	  .print = cfg_print_u32, .off = offsetof(B, session_expires),
	  .min = 0, .max = 86400, .def = "1800",
	  .doc = "seconds of the session timer (RFC 4028) asked of "
		 "gateways and of callers that ask for none, 0 = off" },
	CFG_U32("min_se", B, min_se, 2, 86400, "90",
		"shortest session timer taken from a peer (Min-SE; RFC 4028 "
		"wants 90 at least, less is for tests)"),
	CFG_U32("max_calls", B, max_calls, 0, 1000000, "0",
		"calls at once on this node, 0 = no limit"),
	LIMIT_KEY("limit_invite_per_source", src_invite, "10 20",
		  "INVITEs a second and at once from one untrusted address"),
	LIMIT_KEY("limit_requests_per_source", src_request, "50 100",
		  "other requests a second and at once from one untrusted "
		  "address"),
	LIMIT_KEY("limit_invite_per_peer", peer_invite, "2000 4000",
		  "INVITEs a second and at once from one trusted address"),
	LIMIT_KEY("limit_requests_per_peer", peer_request, "5000 10000",
		  "other requests a second and at once from one trusted "
		  "address"),
	LIMIT_KEY("limit_invite_global", global_invite, "2000 4000",
		  "INVITEs a second and at once on this node"),
	CFG_U32("limit_sources", B, limit_sources, 16, 10000000, "65536",
		"source addresses whose buckets are kept at most"),
	CFG_CHOICE("limit_reply", B, limit_reply, limit_replyv, "503",
		   "answer to a request over a limit: 503 (stateless, with "
		   "Retry-After) or none"),
	CFG_U32("auth_fail_limit", B, auth_fail_limit, 0, 100000, "10",
		"failed authentications of a source or user name that "
		"block it, 0 = never block"),
	CFG_U32("auth_fail_window", B, auth_fail_window, 1, 86400, "60",
		"seconds in which auth_fail_limit failures block"),
	CFG_U32("auth_block_time", B, auth_block_time, 1, 604800, "900",
		"seconds of a first block; each block after doubles it"),
	CFG_U32("auth_block_max", B, auth_block_max, 1, 2592000, "86400",
		"seconds a block lasts at most"),
	CFG_CHOICE("auth_fail_answer", B, auth_fail_answer, fail_answerv,
		   "403", "answer to a failed or blocked authentication: "
		   "403|silence"),
	CFG_CHOICE("digest_uri", B, digest_uri, digest_uriv, "strict",
		   "digest uri: strict = the Request-URI; host = also a uri "
		   "of this host without user part (weaker: not bound to "
		   "the number)"),
	CFG_YESNO("unauth_trying", B, unauth_trying, "no",
		  "100 Trying at once to sources not authenticated (yes "
		  "doubles what a spoofed source receives)"),
	CFG_U32("gateway_probe_interval", B, gw.probe, 0, 3600, "0",
		"seconds between OPTIONS probes of a gateway, 0 = not "
		"probed (always in routing)"),
	CFG_U32("gateway_probe_timeout", B, gw.probe_timeout, 50, 60000,
		"1000", "milliseconds a probe waits for its answer (at most "
		"the interval)"),
	CFG_U32("gateway_probe_fail", B, gw.fail, 1, 100, "3",
		"failed probes in a row that take a gateway out of routing"),
	CFG_U32("gateway_probe_recover", B, gw.recover, 1, 100, "2",
		"good probes in a row that put it back"),
	CFG_U32("gateway_burst_failures", B, gw.burst, 0, 10000, "5",
		"INVITEs in a row answered 503 or 408 or unanswered that take "
		"a probed gateway out of routing, 0 = never"),
	CFG_U32("gateway_max_calls", B, gw.max_calls, 0, 1000000, "0",
		"calls at once on a gateway, 0 = no limit"),
	CFG_U32("gateway_cps", B, gw.cps, 0, 100000, "0",
		"new calls a second (and at once) to a gateway, 0 = no "
		"limit"),
};

#undef LIMIT_KEY
#undef B


/*
 * A reload gives the B2BUA a new struct (b2bua_reconfigure()), except for
 * these keys: the listening sockets and the TLS context are made once,
 * the realm is in every account's HA1, and the table of sources is sized
 * at start.
 */
static const char *const fixedv[] = {
	"sip_listen", "sip_tls_cert", "sip_tls_key", "sip_tls_ca",
	"sip_realm", "limit_sources", NULL
};


static int file_keep(struct cfg_file *dst, const struct cfg_file *src)
{
	dst->path = mem_deref(dst->path);
	dst->line = src->line;

	return src->path ? str_dup(&dst->path, src->path) : 0;
}


static int conf_keep(void *mod, const void *oldmod, const struct cfg_key *k)
{
	struct b2bua_conf *cfg = mod;
	const struct b2bua_conf *old = oldmod;
	struct le *le;

	if (!strcmp(k->name, "sip_listen")) {
		list_flush(&cfg->listenl);
		LIST_FOREACH(&old->listenl, le) {
			const struct cfg_listen *o = le->data;
			struct cfg_listen *l = mem_zalloc(sizeof(*l), NULL);

			if (!l)
				return ENOMEM;
			l->tp = o->tp;
			l->addr = o->addr;
			l->line = o->line;
			list_append(&cfg->listenl, &l->le, l);
		}
		return 0;
	}

	if (!strcmp(k->name, "sip_tls_cert"))
		return file_keep(&cfg->tls_cert, &old->tls_cert);
	if (!strcmp(k->name, "sip_tls_key"))
		return file_keep(&cfg->tls_key, &old->tls_key);
	if (!strcmp(k->name, "sip_tls_ca"))
		return file_keep(&cfg->tls_ca, &old->tls_ca);

	if (!strcmp(k->name, "sip_realm")) {
		cfg->realm = mem_deref(cfg->realm);
		return str_dup(&cfg->realm, old->realm);
	}

	if (!strcmp(k->name, "limit_sources")) {
		cfg->limit_sources = old->limit_sources;
		return 0;
	}

	return ENOENT;
}


CFG_MODULE_RELOAD(b2bua_conf_module, "b2bua", keyv, struct b2bua_conf,
		  NULL, conf_check, conf_destructor, fixedv, conf_keep);
