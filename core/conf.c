/**
 * @file conf.c  Configuration file: parse, check, look up and print
 *
 * The format is libre's: one "key value" pair a line, '#' starts a comment
 * at the start of a line or after whitespace, blank lines are ignored and
 * the value is the rest of the line with surrounding whitespace removed.
 * libre's own conf parser cannot say on which line a mistake is, so the
 * file is parsed here; every error is reported as FILE:LINE: reason and
 * start-up stops.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <re.h>
#include "core.h"


enum {
	CFG_MAX_SIZE    = 1024 * 1024,  /* cfg_load() refuses larger files */
	CFG_MAX_ERRORS  = 20,           /* give up after this many errors  */
	CFG_MAX_PREFIX  = 32,           /* digits of a route prefix        */
	CFG_MAX_NAME    = 64,           /* gateway name                    */
	CFG_MAX_HDR     = 64,           /* header name                     */
	CFG_MAX_REALM   = 128,
	CFG_MIN_TOKEN   = 16,
	CFG_MAX_TOKEN   = 256,
	CFG_MAX_ARGS    = 4,
};


/** A route whose gateway names are resolved once the whole file is read */
struct pending_route {
	struct le le;
	struct cfg_route *rt;   /**< borrowed; owned by cfg->routel       */
	struct pl names;        /**< borrowed; points into the file text  */
	unsigned line;
};

struct parser;

typedef int (key_h)(struct parser *p, struct tg_config *cfg,
		    const struct pl *val);

/** A key of the file and its handler */
struct key {
	const char *name;
	key_h *h;
	bool repeat;            /**< may appear more than once           */
	size_t off;             /**< h_u32, h_str: field in tg_config    */
	uint32_t min, max;      /**< h_u32: range                        */
};

struct parser {
	const char *file;           /**< borrowed; name used in messages  */
	struct re_printf *errpf;    /**< borrowed; may be NULL            */
	const struct key *k;        /**< borrowed; key of current line    */
	unsigned line;              /**< current line, 0 = whole file     */
	unsigned nerr;
	unsigned *seen;             /**< borrowed; line per key in keyv   */
	struct list pendl;          /**< struct pending_route             */
};


/* ---------------------------------------------------------- error output */

static int vreport(struct parser *p, bool withkey, const char *fmt,
		   va_list ap)
{
	struct re_printf *pf = p->errpf;

	++p->nerr;

	if (!pf || p->nerr > CFG_MAX_ERRORS)
		return EINVAL;

	if (p->line)
		(void)re_hprintf(pf, "%s:%u: ", p->file, p->line);
	else
		(void)re_hprintf(pf, "%s: ", p->file);

	if (withkey && p->k)
		(void)re_hprintf(pf, "%s: ", p->k->name);

	(void)re_vhprintf(fmt, ap, pf->vph, pf->arg);
	(void)re_hprintf(pf, "\n");

	if (p->nerr == CFG_MAX_ERRORS)
		(void)re_hprintf(pf, "%s: too many errors, giving up\n",
				 p->file);

	return EINVAL;
}


/** Report an error about the current line; returns EINVAL */
static int perr(struct parser *p, const char *fmt, ...)
{
	va_list ap;
	int err;

	va_start(ap, fmt);
	err = vreport(p, false, fmt, ap);
	va_end(ap);

	return err;
}


/** Report an error about the value of the current key; returns EINVAL */
static int kerr(struct parser *p, const char *fmt, ...)
{
	va_list ap;
	int err;

	va_start(ap, fmt);
	err = vreport(p, true, fmt, ap);
	va_end(ap);

	return err;
}


/* ------------------------------------------------------- lexical helpers */

static inline bool is_ws(char c)
{
	return c == ' ' || c == '\t';
}


static inline bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}


static inline bool is_alnum(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') ||
		(c >= 'A' && c <= 'Z');
}


/** RFC 3261 token character */
static bool is_token_char(char c)
{
	return is_alnum(c) || (c && strchr("-.!%*_+`'~", c));
}


static bool pl_is_token(const struct pl *pl)
{
	size_t i;

	if (!pl->l)
		return false;

	for (i = 0; i < pl->l; i++) {
		if (!is_token_char(pl->p[i]))
			return false;
	}

	return true;
}


static bool pl_is_name(const struct pl *pl)
{
	size_t i;

	if (!pl->l || pl->l > CFG_MAX_NAME)
		return false;

	for (i = 0; i < pl->l; i++) {
		char c = pl->p[i];

		if (!is_alnum(c) && c != '-' && c != '_' && c != '.')
			return false;
	}

	return true;
}


static void pl_trim_ws(struct pl *pl)
{
	while (pl->l && is_ws(pl->p[0]))
		pl_advance(pl, 1);

	while (pl->l && is_ws(pl->p[pl->l - 1]))
		--pl->l;
}


/**
 * Split a value at whitespace into at most max arguments.
 *
 * @return Number of arguments found (may exceed max; the excess is not
 *         stored)
 */
static unsigned split_args(const struct pl *val, struct pl *argv,
			   unsigned max)
{
	const char *s = val->p, *end = val->p + val->l;
	unsigned n = 0;

	for (;;) {
		const char *start;

		while (s < end && is_ws(*s))
			++s;

		if (s == end)
			break;

		start = s;
		while (s < end && !is_ws(*s))
			++s;

		if (n < max) {
			argv[n].p = start;
			argv[n].l = s - start;
		}
		++n;
	}

	return n;
}


/** If pl starts with prefix, strip it and return true */
static bool pl_skip_prefix(struct pl *pl, const char *prefix)
{
	size_t n = strlen(prefix);

	if (pl->l < n || memcmp(pl->p, prefix, n))
		return false;

	pl_advance(pl, n);

	return true;
}


/** Split pl at the first occurrence of c; false if c does not occur */
static bool pl_split(const struct pl *pl, char c, struct pl *left,
		     struct pl *right)
{
	const char *q = pl_strchr(pl, c);

	if (!q)
		return false;

	left->p  = pl->p;
	left->l  = q - pl->p;
	right->p = q + 1;
	right->l = pl->l - left->l - 1;

	return true;
}


/* ------------------------------------------------------- value parsers */

/**
 * Strict decimal number: digits only, range-checked.  what names the
 * value in messages (the key, or e.g. "port").
 */
static int get_u32(struct parser *p, const char *what, const struct pl *pl,
		   uint32_t min, uint32_t max, uint32_t *vp)
{
	uint64_t v = 0;
	bool big = false;
	size_t i;

	if (!pl->l)
		return kerr(p, "%s is empty, expected a number %u..%u",
			    what, min, max);

	for (i = 0; i < pl->l; i++) {
		if (!is_digit(pl->p[i]))
			return kerr(p, "%s '%r' is not a decimal number",
				    what, pl);

		v = v * 10 + (uint64_t)(pl->p[i] - '0');
		if (v > UINT32_MAX) {
			big = true;
			v = UINT32_MAX;
		}
	}

	if (big || v < min || v > max)
		return kerr(p, "%s %r out of range %u..%u", what, pl,
			    min, max);

	*vp = (uint32_t)v;

	return 0;
}


/**
 * Numeric IPv4 or IPv6 address, no port, no brackets.  libre's sa_set
 * turns an IPv4-mapped IPv6 address into plain IPv4.
 */
static int get_ip(const struct pl *pl, struct sa *sa)
{
	if (!pl->l || pl->l >= INET6_ADDRSTRLEN)
		return EINVAL;

	sa_init(sa, AF_UNSPEC);

	return sa_set(sa, pl, 0);
}


/**
 * ADDRESS[:PORT] with a numeric IPv4 address or [IPv6]; the port is
 * defport when omitted.
 */
static int get_hostport(struct parser *p, const struct pl *pl,
			uint16_t defport, struct sa *sa)
{
	struct pl host, port = PL_INIT;
	uint32_t v = defport;
	int err;

	if (pl->l && pl->p[0] == '[') {
		struct pl rest = *pl;

		pl_advance(&rest, 1);
		if (!pl_split(&rest, ']', &host, &rest))
			return kerr(p, "'%r': missing ']' after IPv6 address",
				    pl);

		if (rest.l) {
			if (rest.p[0] != ':')
				return kerr(p, "'%r': expected ':PORT' after "
					    "']'", pl);
			port = rest;
			pl_advance(&port, 1);
		}

		if (!pl_strchr(&host, ':') || get_ip(&host, sa))
			return kerr(p, "'%r' is not an IPv6 address", &host);
	}
	else {
		host = *pl;
		if (pl_split(pl, ':', &host, &port) && pl_strchr(&port, ':'))
			return kerr(p, "'%r': write an IPv6 address in "
				    "brackets, e.g. [::1]:%u", pl, defport);

		if (get_ip(&host, sa))
			return kerr(p, "'%r' is not an IPv4 address (host "
				    "names are not accepted)", &host);
	}

	if (port.p) {
		err = get_u32(p, "port", &port, 1, 65535, &v);
		if (err)
			return err;
	}

	sa_set_port(sa, (uint16_t)v);

	return 0;
}


static int get_transport(struct parser *p, const struct pl *pl,
			 enum sip_transp *tpp)
{
	if (!pl_strcmp(pl, "udp"))
		*tpp = SIP_TRANSP_UDP;
	else if (!pl_strcmp(pl, "tcp"))
		*tpp = SIP_TRANSP_TCP;
	else
		return kerr(p, "unknown transport '%r' (udp or tcp)", pl);

	return 0;
}


static int set_str(char **dst, const struct pl *pl)
{
	char *s;
	int err;

	err = pl_strdup(&s, pl);
	if (err)
		return err;

	mem_deref(*dst);
	*dst = s;

	return 0;
}


/** Value that must be one word */
static int one_arg(struct parser *p, const struct pl *val, struct pl *arg,
		   const char *expect)
{
	if (split_args(val, arg, 1) != 1)
		return kerr(p, "'%r': expected %s", val, expect);

	return 0;
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
static bool same_net(const struct sa *a, const struct sa *b, unsigned bits)
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


/* ------------------------------------------------------- list elements */

static void peer_destructor(void *arg)
{
	struct cfg_peer *peer = arg;

	mem_deref(peer->account);
	mem_deref(peer->hdr);
}


static void gateway_destructor(void *arg)
{
	struct cfg_gateway *gw = arg;

	mem_deref(gw->name);
}


static void route_destructor(void *arg)
{
	struct cfg_route *rt = arg;

	mem_deref(rt->prefix);
	mem_deref(rt->gwv);
}


static void hdr_destructor(void *arg)
{
	struct cfg_hdr *hdr = arg;

	mem_deref(hdr->name);
}


static void token_destructor(void *arg)
{
	struct cfg_token *tok = arg;

	if (tok->token)
		memset(tok->token, 0, strlen(tok->token));

	mem_deref(tok->token);
}


/* ---------------------------------------------------------- key handlers */

static int h_sip_listen(struct parser *p, struct tg_config *cfg,
			const struct pl *val)
{
	const char *expect = "TRANSPORT:ADDRESS[:PORT], "
		"e.g. udp:127.0.0.1:5060";
	struct cfg_listen *l;
	struct pl arg, tp, addr;
	struct le *le;
	int err;

	err = one_arg(p, val, &arg, expect);
	if (err)
		return err;

	if (!pl_split(&arg, ':', &tp, &addr))
		return kerr(p, "'%r': expected %s", &arg, expect);

	l = mem_zalloc(sizeof(*l), NULL);
	if (!l)
		return ENOMEM;

	l->line = p->line;

	err = get_transport(p, &tp, &l->tp);
	if (err)
		goto out;

	err = get_hostport(p, &addr, 5060, &l->addr);
	if (err)
		goto out;

	if (sa_is_any(&l->addr)) {
		err = kerr(p, "'%r': listen on a concrete address, not the "
			   "unspecified one (it goes into Via and Contact)",
			   &addr);
		goto out;
	}

	LIST_FOREACH(&cfg->listenl, le) {
		const struct cfg_listen *o = le->data;

		if (o->tp == l->tp && sa_cmp(&o->addr, &l->addr, SA_ALL)) {
			err = kerr(p, "duplicate '%r' (first at line %u)",
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


static int h_trusted_peer(struct parser *p, struct tg_config *cfg,
			  const struct pl *val)
{
	const char *expect = "NETWORK[/BITS] followed by account=NAME, "
		"header=NAME or from";
	struct pl argv[2], net, bits = PL_INIT, v;
	struct cfg_peer *peer;
	struct sa masked;
	unsigned n, maxbits;
	struct le *le;
	int err;

	n = split_args(val, argv, 2);
	if (n != 2)
		return kerr(p, "'%r': expected %s", val, expect);

	peer = mem_zalloc(sizeof(*peer), peer_destructor);
	if (!peer)
		return ENOMEM;

	peer->line = p->line;

	if (!pl_split(&argv[0], '/', &net, &bits))
		net = argv[0];

	if (get_ip(&net, &peer->addr)) {
		err = kerr(p, "'%r' is not an IPv4 or IPv6 address", &net);
		goto out;
	}

	if (sa_af(&peer->addr) == AF_INET && pl_strchr(&net, ':')) {
		err = kerr(p, "'%r' is an IPv4-mapped address: write the "
			   "IPv4 network instead", &net);
		goto out;
	}

	maxbits = sa_af(&peer->addr) == AF_INET ? 32 : 128;
	peer->bits = maxbits;

	if (bits.p) {
		err = get_u32(p, "prefix length", &bits, 0, maxbits,
			      &peer->bits);
		if (err)
			goto out;
	}

	net_mask(&masked, &peer->addr, peer->bits);
	if (!sa_cmp(&masked, &peer->addr, SA_ADDR)) {
		err = kerr(p, "'%r' has host bits set (the network is %j/%u)",
			   &argv[0], &masked, peer->bits);
		goto out;
	}

	v = argv[1];
	if (!pl_strcmp(&v, "from")) {
		peer->mode = CFG_ID_FROM;
	}
	else if (pl_skip_prefix(&v, "account=")) {
		if (!v.l) {
			err = kerr(p, "account name is empty");
			goto out;
		}
		peer->mode = CFG_ID_FIXED;
		err = pl_strdup(&peer->account, &v);
		if (err)
			goto out;
	}
	else if (pl_skip_prefix(&v, "header=")) {
		if (!pl_is_token(&v) || v.l > CFG_MAX_HDR) {
			err = kerr(p, "'%r' is not a valid header name", &v);
			goto out;
		}
		peer->mode = CFG_ID_HEADER;
		err = pl_strdup(&peer->hdr, &v);
		if (err)
			goto out;
	}
	else {
		err = kerr(p, "unknown mode '%r' (account=NAME, header=NAME "
			   "or from)", &argv[1]);
		goto out;
	}

	LIST_FOREACH(&cfg->peerl, le) {
		const struct cfg_peer *o = le->data;

		if (o->bits == peer->bits &&
		    same_net(&o->addr, &peer->addr, peer->bits)) {
			err = kerr(p, "duplicate network '%r' (first at line "
				   "%u)", &argv[0], o->line);
			goto out;
		}
	}

	list_append(&cfg->peerl, &peer->le, peer);

 out:
	if (err)
		mem_deref(peer);

	return err;
}


static int h_gateway(struct parser *p, struct tg_config *cfg,
		     const struct pl *val)
{
	const char *expect = "NAME ADDRESS[:PORT] [transport=udp|tcp]";
	struct pl argv[3];
	struct cfg_gateway *gw;
	const struct cfg_gateway *o;
	unsigned n;
	int err;

	n = split_args(val, argv, 3);
	if (n < 2 || n > 3)
		return kerr(p, "'%r': expected %s", val, expect);

	if (!pl_is_name(&argv[0]))
		return kerr(p, "'%r' is not a valid gateway name (letters, "
			    "digits, '-', '_', '.'; at most %u)", &argv[0],
			    CFG_MAX_NAME);

	gw = mem_zalloc(sizeof(*gw), gateway_destructor);
	if (!gw)
		return ENOMEM;

	gw->line = p->line;
	gw->tp = SIP_TRANSP_UDP;

	err = pl_strdup(&gw->name, &argv[0]);
	if (err)
		goto out;

	o = cfg_gateway_find(cfg, gw->name);
	if (o) {
		err = kerr(p, "gateway '%s' already defined at line %u",
			   gw->name, o->line);
		goto out;
	}

	err = get_hostport(p, &argv[1], 5060, &gw->addr);
	if (err)
		goto out;

	if (sa_is_any(&gw->addr)) {
		err = kerr(p, "'%r' is not a usable destination", &argv[1]);
		goto out;
	}

	if (n == 3) {
		struct pl v = argv[2];

		if (!pl_skip_prefix(&v, "transport=")) {
			err = kerr(p, "unexpected '%r' (expected "
				   "transport=udp|tcp)", &v);
			goto out;
		}

		err = get_transport(p, &v, &gw->tp);
		if (err)
			goto out;
	}

	list_append(&cfg->gatewayl, &gw->le, gw);

 out:
	if (err)
		mem_deref(gw);

	return err;
}


static int h_route(struct parser *p, struct tg_config *cfg,
		   const struct pl *val)
{
	struct pending_route *pr = NULL;
	struct cfg_route *rt;
	struct pl prefix, names, rest;
	struct le *le;
	size_t i;
	int err;

	if (split_args(val, &prefix, 1) < 2)
		return kerr(p, "'%r': expected PREFIX GATEWAY[,GATEWAY...]",
			    val);

	names.p = prefix.p + prefix.l;
	names.l = val->l - (names.p - val->p);
	pl_trim_ws(&names);

	if (!pl_strcmp(&prefix, "default")) {
		prefix.l = 0;
	}
	else {
		for (i = 0; i < prefix.l; i++) {
			if (!is_digit(prefix.p[i]))
				return kerr(p, "prefix '%r' must be digits "
					    "or 'default'", &prefix);
		}
		if (prefix.l > CFG_MAX_PREFIX)
			return kerr(p, "prefix '%r' is longer than %u digits",
				    &prefix, CFG_MAX_PREFIX);
	}

	LIST_FOREACH(&cfg->routel, le) {
		const struct cfg_route *o = le->data;

		if (pl_strcmp(&prefix, o->prefix))
			continue;

		if (prefix.l)
			return kerr(p, "duplicate prefix %r (first at line "
				    "%u)", &prefix, o->line);
		else
			return kerr(p, "duplicate default route (first at "
				    "line %u)", o->line);
	}

	/* check the syntax of the gateway list now, resolve it at the end */
	rest = names;
	for (;;) {
		struct pl name, after;
		bool last = !pl_split(&rest, ',', &name, &after);

		if (last)
			name = rest;

		pl_trim_ws(&name);
		if (!name.l)
			return kerr(p, "empty gateway name in '%r'", &names);

		if (!pl_is_name(&name))
			return kerr(p, "'%r' is not a valid gateway name",
				    &name);

		if (last)
			break;

		rest = after;
	}

	rt = mem_zalloc(sizeof(*rt), route_destructor);
	if (!rt)
		return ENOMEM;

	rt->line = p->line;

	err = pl_strdup(&rt->prefix, &prefix);
	if (err)
		goto out;

	pr = mem_zalloc(sizeof(*pr), NULL);
	if (!pr) {
		err = ENOMEM;
		goto out;
	}

	pr->rt    = rt;
	pr->names = names;
	pr->line  = p->line;

	list_append(&cfg->routel, &rt->le, rt);
	list_append(&p->pendl, &pr->le, pr);

 out:
	if (err)
		mem_deref(rt);

	return err;
}


static int resolve_route(struct parser *p, struct tg_config *cfg,
			 struct pending_route *pr)
{
	struct cfg_route *rt = pr->rt;
	struct pl rest = pr->names;
	uint32_t n = 1;
	size_t i;
	int err = 0;

	for (i = 0; i < rest.l; i++) {
		if (rest.p[i] == ',')
			++n;
	}

	rt->gwv = mem_zalloc(n * sizeof(*rt->gwv), NULL);
	if (!rt->gwv)
		return ENOMEM;

	p->line = pr->line;
	p->k    = NULL;

	for (;;) {
		struct pl name, after;
		struct cfg_gateway *gw = NULL;
		bool last = !pl_split(&rest, ',', &name, &after);
		struct le *le;
		uint32_t j;

		if (last)
			name = rest;

		pl_trim_ws(&name);

		LIST_FOREACH(&cfg->gatewayl, le) {
			struct cfg_gateway *g = le->data;

			if (!pl_strcmp(&name, g->name)) {
				gw = g;
				break;
			}
		}

		for (j = 0; gw && j < rt->gwc; j++) {
			if (rt->gwv[j] == gw)
				break;
		}

		if (!gw)
			err = perr(p, "route %s: unknown gateway '%r'",
				   rt->prefix[0] ? rt->prefix : "default",
				   &name);
		else if (j < rt->gwc)
			err = perr(p, "route %s: gateway '%r' listed twice",
				   rt->prefix[0] ? rt->prefix : "default",
				   &name);
		else
			rt->gwv[rt->gwc++] = gw;

		if (last)
			break;

		rest = after;
	}

	return err;
}


static const char * const managed_hdrv[] = {
	"Via", "From", "To", "Call-ID", "CSeq", "Contact", "Route",
	"Record-Route", "Max-Forwards", "Content-Length", "Content-Type",
	"Authorization", "Proxy-Authorization",
	/* compact forms (RFC 3261 section 7.3.3) of the above */
	"v", "f", "t", "i", "m", "l", "c",
};


static int h_copy_header(struct parser *p, struct tg_config *cfg,
			 const struct pl *val)
{
	struct cfg_hdr *hdr;
	struct pl arg;
	struct le *le;
	size_t i;
	int err;

	err = one_arg(p, val, &arg, "one header name");
	if (err)
		return err;

	if (!pl_is_token(&arg) || arg.l > CFG_MAX_HDR)
		return kerr(p, "'%r' is not a valid header name", &arg);

	for (i = 0; i < ARRAY_SIZE(managed_hdrv); i++) {
		if (!pl_strcasecmp(&arg, managed_hdrv[i]))
			return kerr(p, "'%r' is managed by tollgate itself "
				    "and cannot be copied", &arg);
	}

	LIST_FOREACH(&cfg->copyl, le) {
		const struct cfg_hdr *o = le->data;

		if (!pl_strcasecmp(&arg, o->name))
			return kerr(p, "'%r' already listed", &arg);
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


static int h_sip_realm(struct parser *p, struct tg_config *cfg,
		       const struct pl *val)
{
	size_t i;

	if (val->l > CFG_MAX_REALM)
		return kerr(p, "longer than %u characters", CFG_MAX_REALM);

	for (i = 0; i < val->l; i++) {
		if (val->p[i] == '"' || val->p[i] == '\\')
			return kerr(p, "'%r' may not contain '\"' or '\\'",
				    val);
	}

	return set_str(&cfg->realm, val);
}


static int get_choice(struct parser *p, const struct pl *val,
		      const char * const *namev, size_t namec, size_t *ip)
{
	char list[128] = "";
	size_t i, n = 0;

	for (i = 0; i < namec; i++) {
		if (!pl_strcmp(val, namev[i])) {
			*ip = i;
			return 0;
		}
	}

	for (i = 0; i < namec; i++)
		n += re_snprintf(list + n, sizeof(list) - n, "%s%s",
				 i ? "|" : "", namev[i]);

	return kerr(p, "'%r' is not one of %s", val, list);
}


static int h_digest_auth(struct parser *p, struct tg_config *cfg,
			 const struct pl *val)
{
	static const char * const v[] = {"yes", "no"};
	size_t i;
	int err;

	err = get_choice(p, val, v, ARRAY_SIZE(v), &i);
	if (err)
		return err;

	cfg->digest_auth = (i == 0);

	return 0;
}


/** yes|no, stored as a bool at the key's offset */
static int h_yesno(struct parser *p, struct tg_config *cfg,
		   const struct pl *val)
{
	static const char * const v[] = {"yes", "no"};
	bool *b = (bool *)(void *)((char *)cfg + p->k->off);
	size_t i;
	int err;

	err = get_choice(p, val, v, ARRAY_SIZE(v), &i);
	if (err)
		return err;

	*b = (i == 0);

	return 0;
}


/** A number in the key's range, stored at the key's offset */
static int h_billing(struct parser *p, struct tg_config *cfg,
		     const struct pl *val)
{
	static const char * const v[] = {"yes", "no"};
	size_t i;
	int err;

	err = get_choice(p, val, v, ARRAY_SIZE(v), &i);
	if (err)
		return err;

	cfg->billing = (i == 0);

	return 0;
}


static int h_u32(struct parser *p, struct tg_config *cfg,
		 const struct pl *val)
{
	uint32_t *v = (uint32_t *)(void *)((char *)cfg + p->k->off);

	return get_u32(p, "value", val, p->k->min, p->k->max, v);
}


/** The rest of the line, stored at the key's offset */
static int h_str(struct parser *p, struct tg_config *cfg,
		 const struct pl *val)
{
	return set_str((char **)(void *)((char *)cfg + p->k->off), val);
}


static int h_rtp_addr(struct parser *p, struct tg_config *cfg,
		      const struct pl *val)
{
	struct sa sa;

	if (get_ip(val, &sa))
		return kerr(p, "'%r' is not an IPv4 or IPv6 address", val);

	if (sa_is_any(&sa))
		return kerr(p, "'%r': use a concrete address, not the "
			    "unspecified one (it goes into SDP)", val);

	cfg->rtp_addr = sa;

	return 0;
}


static int h_rtp_ports(struct parser *p, struct tg_config *cfg,
		       const struct pl *val)
{
	struct pl lo, hi;
	uint32_t min, max;
	int err;

	if (!pl_split(val, '-', &lo, &hi))
		return kerr(p, "'%r': expected MIN-MAX, e.g. 20000-29999",
			    val);

	err = get_u32(p, "first port", &lo, 1024, 65535, &min);
	if (err)
		return err;

	err = get_u32(p, "last port", &hi, 1024, 65535, &max);
	if (err)
		return err;

	if (min >= max)
		return kerr(p, "first port %u must be below last port %u",
			    min, max);

	if (min & 1)
		return kerr(p, "first port %u must be even (RTP uses even "
			    "ports, RTCP the odd one above)", min);

	if (!(max & 1))
		return kerr(p, "last port %u must be odd (the RTCP port of "
			    "the last even RTP port)", max);

	cfg->rtp_port_min = (uint16_t)min;
	cfg->rtp_port_max = (uint16_t)max;

	return 0;
}


static int h_rtp_relay(struct parser *p, struct tg_config *cfg,
		       const struct pl *val)
{
	static const char * const v[] = {"yes", "no"};
	size_t i;
	int err;

	err = get_choice(p, val, v, ARRAY_SIZE(v), &i);
	if (err)
		return err;

	cfg->rtp_relay = (i == 0);

	return 0;
}


static int h_rtp_io(struct parser *p, struct tg_config *cfg,
		    const struct pl *val)
{
	static const char * const v[] = {"auto", "io_uring", "epoll"};
	static const enum cfg_rtp_io iov[] = {
		CFG_RTP_IO_AUTO, CFG_RTP_IO_URING, CFG_RTP_IO_EPOLL
	};
	size_t i;
	int err;

	err = get_choice(p, val, v, ARRAY_SIZE(v), &i);
	if (err)
		return err;

	cfg->rtp_io = iov[i];

	return 0;
}


static int h_rtp_addr_gw(struct parser *p, struct tg_config *cfg,
			 const struct pl *val)
{
	struct sa sa;

	if (get_ip(val, &sa))
		return kerr(p, "'%r' is not an IPv4 or IPv6 address", val);

	if (sa_is_any(&sa))
		return kerr(p, "'%r': use a concrete address, not the "
			    "unspecified one (it goes into SDP)", val);

	cfg->rtp_addr_gw = sa;

	return 0;
}


static int h_api_listen(struct parser *p, struct tg_config *cfg,
			const struct pl *val)
{
	struct pl arg;
	struct sa sa;
	int err;

	err = one_arg(p, val, &arg, "ADDRESS[:PORT], e.g. 127.0.0.1:8080");
	if (err)
		return err;

	err = get_hostport(p, &arg, 8080, &sa);
	if (err)
		return err;

	cfg->api_listen = sa;

	return 0;
}


static int h_api_token(struct parser *p, struct tg_config *cfg,
		       const struct pl *val)
{
	static const char * const rolev[] = {"admin", "readonly"};
	struct pl argv[2];
	struct cfg_token *tok;
	struct le *le;
	size_t i, role;
	int err;

	if (split_args(val, argv, 2) != 2)
		return kerr(p, "expected TOKEN admin|readonly");

	if (argv[0].l < CFG_MIN_TOKEN || argv[0].l > CFG_MAX_TOKEN)
		return kerr(p, "token has %zu characters, it needs %u..%u",
			    argv[0].l, CFG_MIN_TOKEN, CFG_MAX_TOKEN);

	for (i = 0; i < argv[0].l; i++) {
		unsigned char c = argv[0].p[i];

		if (c < 0x21 || c > 0x7e)
			return kerr(p, "token may only contain printable "
				    "ASCII characters");
	}

	err = get_choice(p, &argv[1], rolev, ARRAY_SIZE(rolev), &role);
	if (err)
		return err;

	LIST_FOREACH(&cfg->tokenl, le) {
		const struct cfg_token *o = le->data;

		if (!pl_strcmp(&argv[0], o->token))
			return kerr(p, "token already listed");
	}

	tok = mem_zalloc(sizeof(*tok), token_destructor);
	if (!tok)
		return ENOMEM;

	tok->admin = (role == 0);

	err = pl_strdup(&tok->token, &argv[0]);
	if (err) {
		mem_deref(tok);
		return err;
	}

	list_append(&cfg->tokenl, &tok->le, tok);

	return 0;
}


static int h_log_target(struct parser *p, struct tg_config *cfg,
			const struct pl *val)
{
	static const char * const v[] = {"stderr", "syslog"};
	size_t i;
	int err;

	err = get_choice(p, val, v, ARRAY_SIZE(v), &i);
	if (err)
		return err;

	cfg->log_target = i ? CFG_LOG_SYSLOG : CFG_LOG_STDERR;

	return 0;
}


static const char * const levelv[] = {
	"debug", "info", "notice", "warning", "error"
};
static const int levelnumv[] = {
	LOG_DEBUG, LOG_INFO, LOG_NOTICE, LOG_WARNING, LOG_ERR
};


static int h_log_level(struct parser *p, struct tg_config *cfg,
		       const struct pl *val)
{
	size_t i;
	int err;

	err = get_choice(p, val, levelv, ARRAY_SIZE(levelv), &i);
	if (err)
		return err;

	cfg->log_level = levelnumv[i];

	return 0;
}


#define OFF(field) offsetof(struct tg_config, field)

static const struct key keyv[] = {
	{"sip_listen",        h_sip_listen,   true,  0, 0, 0},
	{"trusted_peer",      h_trusted_peer, true,  0, 0, 0},
	{"gateway",           h_gateway,      true,  0, 0, 0},
	{"route",             h_route,        true,  0, 0, 0},
	{"copy_header",       h_copy_header,  true,  0, 0, 0},
	{"sip_realm",         h_sip_realm,    false, 0, 0, 0},
	{"digest_auth",       h_digest_auth,  false, 0, 0, 0},
	{"nonce_ttl",         h_u32, false, OFF(nonce_ttl),      10, 86400},
	{"ring_timeout",      h_u32, false, OFF(ring_timeout),   1, 3600},
	{"max_call_duration", h_u32, false, OFF(max_duration),   0, 604800},
	{"ack_timeout",       h_u32, false, OFF(ack_timeout),    1, 300},
	{"shutdown_grace",    h_u32, false, OFF(shutdown_grace), 0, 60},
	{"max_calls",         h_u32, false, OFF(max_calls),      0, 1000000},
	{"db_conninfo",       h_str, false, OFF(db_conninfo),    0, 0},
	{"db_connections",    h_u32, false, OFF(db_connections), 1, 32},
	{"rtp_addr",          h_rtp_addr,     false, 0, 0, 0},
	{"rtp_ports",         h_rtp_ports,    false, 0, 0, 0},
	{"rtp_relay",         h_rtp_relay,    false, 0, 0, 0},
	{"rtp_addr_gateway",  h_rtp_addr_gw,  false, 0, 0, 0},
	{"rtp_threads",       h_u32, false, OFF(rtp_threads),    1, 16},
	{"rtp_io",            h_rtp_io,       false, 0, 0, 0},
	{"media_timeout",     h_u32, false, OFF(media_timeout),  0, 86400},
	{"media_timeout_hold", h_u32, false, OFF(media_timeout_hold), 0,
	 86400},
	{"api_listen",        h_api_listen,   false, 0, 0, 0},
	{"api_token",         h_api_token,    true,  0, 0, 0},
	{"api_open_metrics",  h_yesno, false, OFF(api_open_metrics), 0, 0},
	{"api_open_health",   h_yesno, false, OFF(api_open_health),  0, 0},
	{"api_max_body",      h_u32, false, OFF(api_max_body), 1024, 16777216},
	{"log_target",        h_log_target,   false, 0, 0, 0},
	{"log_level",         h_log_level,    false, 0, 0, 0},
	{"state_dir",         h_str, false, OFF(state_dir),      0, 0},
	{"billing",           h_billing,      false, 0, 0, 0},
	{"reserve_interval",  h_u32, false, OFF(reserve_interval), 1, 3600},
	{"low_balance_warning", h_u32, false, OFF(low_balance_warning),
	 0, 3600},
	{"heartbeat",         h_u32, false, OFF(heartbeat),      1, 300},
	{"node_name",         h_str, false, OFF(node_name),      0, 0},
};

#undef OFF


/* ------------------------------------------------------------ the parser */

/** Edit distance, for "did you mean" on unknown keys */
static size_t edit_distance(const struct pl *a, const char *b)
{
	size_t lb = strlen(b), i, j;
	size_t row[40];

	if (a->l >= ARRAY_SIZE(row) || lb >= ARRAY_SIZE(row))
		return (size_t)-1;

	for (j = 0; j <= lb; j++)
		row[j] = j;

	for (i = 1; i <= a->l; i++) {
		size_t diag = row[0];

		row[0] = i;
		for (j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (a->p[i - 1] != b[j - 1]);

			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;

			row[j] = best;
			diag = up;
		}
	}

	return row[lb];
}


static int unknown_key(struct parser *p, const struct pl *key)
{
	const char *best = NULL;
	size_t bestd = 3, i;

	for (i = 0; i < ARRAY_SIZE(keyv); i++) {
		size_t d = edit_distance(key, keyv[i].name);

		if (d < bestd) {
			bestd = d;
			best = keyv[i].name;
		}
	}

	if (best)
		return perr(p, "unknown key '%r' (did you mean '%s'?)", key,
			    best);

	return perr(p, "unknown key '%r'", key);
}


static int parse_line(struct parser *p, struct tg_config *cfg,
		      const char *s, size_t n)
{
	struct pl line, key, val;
	size_t i;
	int err;

	/* a comment starts at '#' at the start or after whitespace */
	for (i = 0; i < n; i++) {
		if (s[i] == '#' && (i == 0 || is_ws(s[i - 1]))) {
			n = i;
			break;
		}
	}

	for (i = 0; i < n; i++) {
		unsigned char c = s[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return perr(p, "control character 0x%02x in line", c);
	}

	line.p = s;
	line.l = n;
	pl_trim_ws(&line);
	if (!line.l)
		return 0;

	key = line;
	for (i = 0; i < line.l; i++) {
		if (is_ws(line.p[i])) {
			key.l = i;
			break;
		}
	}

	val.p = key.p + key.l;
	val.l = line.l - key.l;
	pl_trim_ws(&val);

	for (i = 0; i < ARRAY_SIZE(keyv); i++) {
		if (!pl_strcmp(&key, keyv[i].name))
			break;
	}

	if (i == ARRAY_SIZE(keyv))
		return unknown_key(p, &key);

	p->k = &keyv[i];

	if (!keyv[i].repeat) {
		if (p->seen[i])
			return perr(p, "duplicate '%s' (first set at line "
				    "%u)", keyv[i].name, p->seen[i]);

		p->seen[i] = p->line;
	}

	if (!val.l)
		return kerr(p, "missing value");

	err = keyv[i].h(p, cfg, &val);
	p->k = NULL;

	return err;
}


static void cfg_destructor(void *arg)
{
	struct tg_config *cfg = arg;

	list_flush(&cfg->listenl);
	list_flush(&cfg->peerl);
	list_flush(&cfg->routel);
	list_flush(&cfg->gatewayl);
	list_flush(&cfg->copyl);
	list_flush(&cfg->tokenl);

	mem_deref(cfg->file);
	mem_deref(cfg->realm);
	mem_deref(cfg->db_conninfo);
	mem_deref(cfg->state_dir);
	mem_deref(cfg->node_name);
}


static int set_defaults(struct tg_config *cfg)
{
	int err;

	cfg->digest_auth    = true;
	cfg->nonce_ttl      = 300;
	cfg->ring_timeout   = 60;
	cfg->max_duration   = 14400;
	cfg->ack_timeout    = 32;
	cfg->shutdown_grace = 5;
	cfg->max_calls      = 0;
	cfg->rtp_port_min   = 20000;
	cfg->rtp_port_max   = 29999;
	cfg->rtp_relay      = true;
	cfg->rtp_threads    = 2;
	cfg->media_timeout  = 30;
	cfg->media_timeout_hold = 600;
	cfg->log_target     = CFG_LOG_STDERR;
	cfg->log_level      = LOG_INFO;

	sa_set_in(&cfg->rtp_addr, 0x7f000001, 0);
	sa_set_in(&cfg->api_listen, 0x7f000001, 8080);
	cfg->api_max_body = 65536;

	err  = str_dup(&cfg->realm, "tollgate");
	err |= str_dup(&cfg->state_dir, "/var/lib/tollgate");

	cfg->billing             = true;
	cfg->reserve_interval    = 60;
	cfg->low_balance_warning = 30;
	cfg->heartbeat           = 5;
	cfg->db_connections      = 4;
	{
		char host[256] = "";

		if (gethostname(host, sizeof(host) - 1) || !host[0])
			str_ncpy(host, "tollgate", sizeof(host));
		err |= str_dup(&cfg->node_name, host);
	}

	return err ? ENOMEM : 0;
}


/**
 * Parse configuration text
 *
 * @param cfgp  Pointer to the new configuration
 * @param file  File name for messages (and cfg->file)
 * @param text  The text, need not be NUL-terminated
 * @param len   Length of text
 * @param errpf Where to print errors as FILE:LINE: reason (may be NULL)
 *
 * @return 0 if success, EINVAL for a bad configuration, ENOMEM
 */
int cfg_parse(struct tg_config **cfgp, const char *file, const char *text,
	      size_t len, struct re_printf *errpf)
{
	unsigned seen[ARRAY_SIZE(keyv)];
	struct tg_config *cfg;
	struct parser p;
	const char *s, *end;
	struct le *le;
	int err;

	if (!cfgp || (!text && len))
		return EINVAL;

	if (!file)
		file = "(config)";

	if (!text)
		text = "";

	memset(seen, 0, sizeof(seen));
	memset(&p, 0, sizeof(p));
	p.file  = file;
	p.errpf = errpf;
	p.seen  = seen;

	cfg = mem_zalloc(sizeof(*cfg), cfg_destructor);
	if (!cfg)
		return ENOMEM;

	err = str_dup(&cfg->file, file);
	if (err)
		goto out;

	err = set_defaults(cfg);
	if (err)
		goto out;

	s = text;
	end = text + len;

	/* UTF-8 byte order mark */
	if (len >= 3 && !memcmp(s, "\xef\xbb\xbf", 3))
		s += 3;

	while (s < end && p.nerr < CFG_MAX_ERRORS) {
		const char *nl = memchr(s, '\n', end - s);
		size_t n = nl ? (size_t)(nl - s) : (size_t)(end - s);

		++p.line;

		if (n && s[n - 1] == '\r')
			--n;

		err = parse_line(&p, cfg, s, n);
		if (err && err != EINVAL)
			goto out;

		s = nl ? nl + 1 : end;
	}

	err = 0;

	/* the checks that need the whole file; pointless after errors */
	if (p.nerr)
		goto out;

	LIST_FOREACH(&p.pendl, le) {
		err = resolve_route(&p, cfg, le->data);
		if (err && err != EINVAL)
			goto out;
	}

	err = 0;
	p.line = 0;
	p.k = NULL;

	if (!cfg->listenl.head)
		(void)perr(&p, "no sip_listen given (at least one is "
			   "required)");

	if (!cfg->db_conninfo)
		(void)perr(&p, "no db_conninfo given (it is required)");

 out:
	list_flush(&p.pendl);

	if (!err && p.nerr)
		err = EINVAL;

	if (err)
		mem_deref(cfg);
	else
		*cfgp = cfg;

	return err;
}


/**
 * Read and parse a configuration file
 *
 * @param cfgp  Pointer to the new configuration
 * @param file  Path of the file (at most 1 MiB)
 * @param errpf Where to print errors (may be NULL)
 *
 * @return 0 if success, EINVAL for a bad configuration, otherwise the
 *         errno of opening or reading the file (EFBIG if too large)
 */
int cfg_load(struct tg_config **cfgp, const char *file,
	     struct re_printf *errpf)
{
	char *buf = NULL;
	size_t len = 0;
	struct stat st;
	int fd, err = 0;

	if (!cfgp || !file)
		return EINVAL;

	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = errno;
		goto out;
	}

	if (fstat(fd, &st) < 0) {
		err = errno;
		goto out;
	}

	if (S_ISDIR(st.st_mode)) {
		err = EISDIR;
		goto out;
	}

	buf = mem_alloc(CFG_MAX_SIZE + 1, NULL);
	if (!buf) {
		err = ENOMEM;
		goto out;
	}

	/* read one byte more than allowed to notice a file too large */
	while (len <= CFG_MAX_SIZE) {
		ssize_t n = read(fd, buf + len, CFG_MAX_SIZE + 1 - len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = errno;
			goto out;
		}

		if (n == 0)
			break;

		len += (size_t)n;
	}

	if (len > CFG_MAX_SIZE) {
		if (errpf)
			(void)re_hprintf(errpf, "%s: file is larger than "
					 "1 MiB\n", file);
		err = EFBIG;
		goto out;
	}

	(void)close(fd);
	fd = -1;

	err = cfg_parse(cfgp, file, buf, len, errpf);
	buf = mem_deref(buf);

	return err;

 out:
	if (fd >= 0)
		(void)close(fd);

	mem_deref(buf);

	if (err && err != EFBIG && errpf)
		(void)re_hprintf(errpf, "%s: %m\n", file, err);

	return err;
}


/* --------------------------------------------------------------- lookups */

/**
 * Find the route for a number: the longest matching prefix, the default
 * route if no prefix matches.
 *
 * @return The route, NULL if there is none
 */
const struct cfg_route *cfg_route_find(const struct tg_config *cfg,
				       const char *number)
{
	const struct cfg_route *best = NULL;
	size_t bestlen = 0, n;
	struct le *le;

	if (!cfg || !number)
		return NULL;

	n = strlen(number);

	LIST_FOREACH(&cfg->routel, le) {
		const struct cfg_route *rt = le->data;
		size_t l = strlen(rt->prefix);

		if (l > n || (best && l <= bestlen))
			continue;

		if (!memcmp(number, rt->prefix, l)) {
			best = rt;
			bestlen = l;
		}
	}

	return best;
}


/**
 * Find the first trusted peer whose network contains an address.  An
 * IPv4-mapped IPv6 address (from a dual-stack socket) is taken as the
 * IPv4 address it carries.
 *
 * @return The peer, NULL if the address is not trusted
 */
const struct cfg_peer *cfg_peer_find(const struct tg_config *cfg,
				     const struct sa *src)
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

		if (same_net(&peer->addr, src, peer->bits))
			return peer;
	}

	return NULL;
}


/** Find a gateway by name (case-sensitive) */
const struct cfg_gateway *cfg_gateway_find(const struct tg_config *cfg,
					   const char *name)
{
	struct le *le;

	if (!cfg || !name)
		return NULL;

	LIST_FOREACH(&cfg->gatewayl, le) {
		const struct cfg_gateway *gw = le->data;

		if (!strcmp(gw->name, name))
			return gw;
	}

	return NULL;
}


/* ---------------------------------------------------------------- print */

static const char *tp_name(enum sip_transp tp)
{
	return tp == SIP_TRANSP_TCP ? "tcp" : "udp";
}


/** Length of the password value at s in keyword/value conninfo */
static size_t kv_value_len(const char *s)
{
	const char *q = s;

	if (*q != '\'') {
		while (*q && !is_ws(*q))
			++q;
		return q - s;
	}

	for (++q; *q && *q != '\''; ++q) {
		if (*q == '\\' && q[1])
			++q;
	}

	return (*q ? q + 1 : q) - s;
}


/**
 * Print a libpq connection string with passwords replaced by asterisks,
 * in keyword/value form (password=x, password = 'x y') and in URI form
 * (postgresql://user:x@host/db, ?password=x).
 */
static int print_conninfo(struct re_printf *pf, const char *ci)
{
	bool uri = !strncmp(ci, "postgresql://", 13) ||
		!strncmp(ci, "postgres://", 11);
	const char *s = ci;
	int err = 0;

	if (uri) {
		const char *auth = strstr(ci, "://") + 3;
		size_t alen = strcspn(auth, "/?");
		const char *at = NULL, *colon, *q;

		for (q = auth; q < auth + alen; q++) {
			if (*q == '@')
				at = q;
		}

		colon = at ? memchr(auth, ':', at - auth) : NULL;
		if (colon) {
			err |= re_hprintf(pf, "%b********", ci,
					  (size_t)(colon + 1 - ci));
			s = at;
		}

		/* a password among the query parameters */
		for (;;) {
			const char *pw = strstr(s, "password=");
			bool param;

			if (!pw)
				break;

			param = pw[-1] == '?' || pw[-1] == '&';
			pw += 9;
			err |= re_hprintf(pf, "%b%s", s, (size_t)(pw - s),
					  param ? "********" : "");
			s = param ? pw + strcspn(pw, "&") : pw;
		}

		return err | re_hprintf(pf, "%s", s);
	}

	for (;;) {
		const char *pw = strstr(s, "password");
		const char *q;

		if (!pw)
			break;

		q = pw + 8;
		while (is_ws(*q))
			++q;

		if ((pw != ci && !is_ws(pw[-1])) || *q != '=') {
			err |= re_hprintf(pf, "%b", s, (size_t)(q - s));
			s = q;
			continue;
		}

		++q;
		while (is_ws(*q))
			++q;

		err |= re_hprintf(pf, "%b********", s, (size_t)(q - s));
		s = q + kv_value_len(q);
	}

	return err | re_hprintf(pf, "%s", s);
}


/**
 * Print the configuration in the file format, every key with its
 * effective value, defaults included.  Passwords in db_conninfo are
 * masked and API tokens left out (as comments), so the output is safe to
 * show and still parses.
 */
int cfg_print(struct re_printf *pf, const struct tg_config *cfg)
{
	struct le *le;
	size_t i;
	int err = 0;

	if (!pf || !cfg)
		return EINVAL;

	err |= re_hprintf(pf, "# effective configuration of %s\n",
			  cfg->file);

	LIST_FOREACH(&cfg->listenl, le) {
		const struct cfg_listen *l = le->data;

		err |= re_hprintf(pf, "sip_listen %s:%J\n", tp_name(l->tp),
				  &l->addr);
	}

	LIST_FOREACH(&cfg->peerl, le) {
		const struct cfg_peer *peer = le->data;

		err |= re_hprintf(pf, "trusted_peer %j/%u ", &peer->addr,
				  peer->bits);

		switch (peer->mode) {

		case CFG_ID_FIXED:
			err |= re_hprintf(pf, "account=%s\n", peer->account);
			break;

		case CFG_ID_HEADER:
			err |= re_hprintf(pf, "header=%s\n", peer->hdr);
			break;

		case CFG_ID_FROM:
		default:
			err |= re_hprintf(pf, "from\n");
			break;
		}
	}

	LIST_FOREACH(&cfg->gatewayl, le) {
		const struct cfg_gateway *gw = le->data;

		err |= re_hprintf(pf, "gateway %s %J transport=%s\n",
				  gw->name, &gw->addr, tp_name(gw->tp));
	}

	LIST_FOREACH(&cfg->routel, le) {
		const struct cfg_route *rt = le->data;
		uint32_t j;

		err |= re_hprintf(pf, "route %s ",
				  rt->prefix[0] ? rt->prefix : "default");

		for (j = 0; j < rt->gwc; j++)
			err |= re_hprintf(pf, "%s%s", j ? "," : "",
					  rt->gwv[j]->name);

		err |= re_hprintf(pf, "\n");
	}

	LIST_FOREACH(&cfg->copyl, le) {
		const struct cfg_hdr *hdr = le->data;

		err |= re_hprintf(pf, "copy_header %s\n", hdr->name);
	}

	err |= re_hprintf(pf, "sip_realm %s\n", cfg->realm);
	err |= re_hprintf(pf, "digest_auth %s\n",
			  cfg->digest_auth ? "yes" : "no");
	err |= re_hprintf(pf, "nonce_ttl %u\n", cfg->nonce_ttl);
	err |= re_hprintf(pf, "ring_timeout %u\n", cfg->ring_timeout);
	err |= re_hprintf(pf, "max_call_duration %u\n", cfg->max_duration);
	err |= re_hprintf(pf, "ack_timeout %u\n", cfg->ack_timeout);
	err |= re_hprintf(pf, "shutdown_grace %u\n", cfg->shutdown_grace);
	err |= re_hprintf(pf, "max_calls %u\n", cfg->max_calls);

	if (cfg->db_conninfo) {
		err |= re_hprintf(pf, "db_conninfo ");
		err |= print_conninfo(pf, cfg->db_conninfo);
		err |= re_hprintf(pf, "\n");
	}
	err |= re_hprintf(pf, "db_connections %u\n", cfg->db_connections);

	err |= re_hprintf(pf, "rtp_addr %j\n", &cfg->rtp_addr);
	err |= re_hprintf(pf, "rtp_ports %u-%u\n", cfg->rtp_port_min,
			  cfg->rtp_port_max);
	err |= re_hprintf(pf, "rtp_relay %s\n", cfg->rtp_relay ? "yes" : "no");
	if (sa_isset(&cfg->rtp_addr_gw, SA_ADDR))
		err |= re_hprintf(pf, "rtp_addr_gateway %j\n",
				  &cfg->rtp_addr_gw);
	err |= re_hprintf(pf, "rtp_threads %u\n", cfg->rtp_threads);
	err |= re_hprintf(pf, "rtp_io %s\n",
			  cfg->rtp_io == CFG_RTP_IO_URING ? "io_uring" :
			  cfg->rtp_io == CFG_RTP_IO_EPOLL ? "epoll" : "auto");
	err |= re_hprintf(pf, "media_timeout %u\n", cfg->media_timeout);
	err |= re_hprintf(pf, "media_timeout_hold %u\n",
			  cfg->media_timeout_hold);
	err |= re_hprintf(pf, "api_listen %J\n", &cfg->api_listen);

	LIST_FOREACH(&cfg->tokenl, le) {
		const struct cfg_token *tok = le->data;

		err |= re_hprintf(pf, "# api_token (%zu characters, hidden) "
				  "%s\n", strlen(tok->token),
				  tok->admin ? "admin" : "readonly");
	}

	err |= re_hprintf(pf, "api_open_metrics %s\n",
			  cfg->api_open_metrics ? "yes" : "no");
	err |= re_hprintf(pf, "api_open_health %s\n",
			  cfg->api_open_health ? "yes" : "no");
	err |= re_hprintf(pf, "api_max_body %u\n", cfg->api_max_body);
	err |= re_hprintf(pf, "log_target %s\n",
			  cfg->log_target == CFG_LOG_SYSLOG ?
			  "syslog" : "stderr");

	for (i = 0; i < ARRAY_SIZE(levelnumv); i++) {
		if (levelnumv[i] == cfg->log_level)
			break;
	}

	err |= re_hprintf(pf, "log_level %s\n",
			  i < ARRAY_SIZE(levelv) ? levelv[i] : "info");
	err |= re_hprintf(pf, "state_dir %s\n", cfg->state_dir);
	err |= re_hprintf(pf, "billing %s\n", cfg->billing ? "yes" : "no");
	err |= re_hprintf(pf, "reserve_interval %u\n", cfg->reserve_interval);
	err |= re_hprintf(pf, "low_balance_warning %u\n",
			  cfg->low_balance_warning);
	err |= re_hprintf(pf, "heartbeat %u\n", cfg->heartbeat);
	err |= re_hprintf(pf, "node_name %s\n", cfg->node_name);

	return err ? EIO : 0;
}
