/**
 * @file translate.c  Number translation: the caller's number normalised
 *                    before routing, the gateway's in its own format
 *
 * A rule has a scope (in: every caller, one account or the callers of
 * one network; out: every gateway or one), a pattern and actions.  The
 * pattern is matched against the start of the number as it stands: an
 * optional '+', then digits, 'X' for any digit; len=MIN[-MAX] bounds the
 * number's digits ('+' not counted).  The actions run in this order:
 * national=CC ("00" -> "+", "0" -> "+CC", a number with '+' stays),
 * strip=N (the first N characters go, '+' counted), prefix=P (P, which
 * may start with '+', is put before).  Rules are tried in the order of
 * the file; the first whose scope and pattern match is applied and the
 * others are not.
 */

#include <string.h>
#include "b2bua_int.h"


static void xlat_destructor(void *arg)
{
	struct b2bua_xlat *x = arg;

	list_unlink(&x->le);
	mem_deref(x->account);
	mem_deref(x->gateway);
}


static bool pl_digits(const struct pl *pl, bool plus)
{
	size_t i = 0;

	if (plus && pl->l && pl->p[0] == '+')
		i = 1;

	for (; i < pl->l; i++) {
		if (pl->p[i] < '0' || pl->p[i] > '9')
			return false;
	}

	return true;
}


static bool pl_name(const struct pl *pl)
{
	size_t i;

	if (!pl->l || pl->l > 64)
		return false;

	for (i = 0; i < pl->l; i++) {
		char c = pl->p[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
		      (c >= 'A' && c <= 'Z') || strchr("-_.@", c)))
			return false;
	}

	return true;
}


static int num_u32(const struct pl *pl, uint32_t max, uint32_t *vp)
{
	uint64_t v = 0;
	size_t i;

	if (!pl->l || pl->l > 9)
		return EINVAL;

	for (i = 0; i < pl->l; i++) {
		if (pl->p[i] < '0' || pl->p[i] > '9')
			return EINVAL;
		v = v * 10 + (uint64_t)(pl->p[i] - '0');
	}

	if (v > max)
		return EINVAL;

	*vp = (uint32_t)v;

	return 0;
}


static int parse_peer(struct b2bua_xlat *x, const struct pl *v)
{
	struct pl net = *v, bits = PL_INIT;
	unsigned max;
	uint32_t b;
	char buf[64];

	if (cfg_pl_split(v, '/', &net, &bits)) {
		if (!bits.l)
			return EINVAL;
	}
	else {
		net = *v;
	}

	if (net.l >= sizeof(buf))
		return EINVAL;

	(void)pl_strcpy(&net, buf, sizeof(buf));
	if (sa_set_str(&x->peer, buf, 0))
		return EINVAL;

	max = sa_af(&x->peer) == AF_INET ? 32 : 128;
	x->peer_bits = max;
	if (bits.p) {
		if (num_u32(&bits, max, &b))
			return EINVAL;
		x->peer_bits = b;
	}

	x->peer_set = true;

	return 0;
}


/**
 * Parse a rule's options (the value of number_in or number_out, or a rule
 * from the database in the same words)
 *
 * @param xp    the rule (owned by the caller)
 * @param dir   in or out
 * @param text  key=value words
 * @param why   what is wrong (for an error naming the word)
 *
 * @return 0, EINVAL (why filled), ENOMEM
 */
int b2bua_xlat_parse(struct b2bua_xlat **xp, enum b2bua_xlat_dir dir,
		     const struct pl *text, char *why, size_t whysz)
{
	struct b2bua_xlat *x;
	struct pl rest;
	bool action = false;
	int err = 0;

	if (!xp || !text)
		return EINVAL;

	x = mem_zalloc(sizeof(*x), xlat_destructor);
	if (!x)
		return ENOMEM;

	x->dir = dir;
	rest = *text;
	cfg_pl_trim(&rest);

	while (rest.l && !err) {
		struct pl w, k, v;
		size_t i = 0;

		while (i < rest.l && rest.p[i] != ' ' && rest.p[i] != '\t')
			++i;
		w.p = rest.p;
		w.l = i;
		rest.p += i;
		rest.l -= i;
		cfg_pl_trim(&rest);

		if (!cfg_pl_split(&w, '=', &k, &v)) {
			(void)re_snprintf(why, whysz, "'%r': expected "
					  "KEY=VALUE", &w);
			err = EINVAL;
			break;
		}

		if (!pl_strcmp(&k, "account") && dir == B2BUA_XLAT_IN) {
			if (!pl_name(&v) || x->account)
				goto bad;
			err = pl_strdup(&x->account, &v);
		}
		else if (!pl_strcmp(&k, "peer") && dir == B2BUA_XLAT_IN) {
			if (x->peer_set || parse_peer(x, &v))
				goto bad;
		}
		else if (!pl_strcmp(&k, "gateway") && dir == B2BUA_XLAT_OUT) {
			if (!pl_name(&v) || x->gateway)
				goto bad;
			err = pl_strdup(&x->gateway, &v);
		}
		else if (!pl_strcmp(&k, "match")) {
			size_t j = v.l && v.p[0] == '+' ? 1 : 0;

			if (!v.l || v.l - j > B2BUA_XLAT_MATCH)
				goto bad;
			for (; j < v.l; j++) {
				if (!((v.p[j] >= '0' && v.p[j] <= '9') ||
				      v.p[j] == 'X' || v.p[j] == 'x'))
					goto bad;
			}
			(void)pl_strcpy(&v, x->match, sizeof(x->match));
		}
		else if (!pl_strcmp(&k, "len")) {
			struct pl lo = v, hi = PL_INIT;

			if (!cfg_pl_split(&v, '-', &lo, &hi))
				hi = lo;
			if (num_u32(&lo, B2BUA_NUMBER_MAX, &x->min_len) ||
			    num_u32(&hi, B2BUA_NUMBER_MAX, &x->max_len) ||
			    x->min_len > x->max_len)
				goto bad;
		}
		else if (!pl_strcmp(&k, "national") && dir == B2BUA_XLAT_IN) {
			if (!v.l || v.l > 3 || !pl_digits(&v, false) ||
			    v.p[0] == '0')
				goto bad;
			(void)pl_strcpy(&v, x->national, sizeof(x->national));
			action = true;
		}
		else if (!pl_strcmp(&k, "strip")) {
			if (num_u32(&v, B2BUA_NUMBER_MAX, &x->strip) ||
			    !x->strip)
				goto bad;
			action = true;
		}
		else if (!pl_strcmp(&k, "prefix")) {
			if (!v.l || v.l > B2BUA_XLAT_PREFIX ||
			    !pl_digits(&v, true))
				goto bad;
			(void)pl_strcpy(&v, x->prefix, sizeof(x->prefix));
			action = true;
		}
		else {
			(void)re_snprintf(why, whysz, "unknown option '%r' "
					  "of a number_%s rule", &k,
					  dir == B2BUA_XLAT_IN ? "in" : "out");
			err = EINVAL;
		}
		continue;

	bad:
		(void)re_snprintf(why, whysz, "bad %r '%r'", &k, &v);
		err = EINVAL;
	}

	if (!err && !action) {
		(void)re_snprintf(why, whysz, "a rule needs national=, "
				  "strip= or prefix=");
		err = EINVAL;
	}

	if (err)
		mem_deref(x);
	else
		*xp = x;

	return err;
}


/** Print a rule's options as b2bua_xlat_parse() reads them */
int b2bua_xlat_print(struct re_printf *pf, const struct b2bua_xlat *x)
{
	int err = 0;
	const char *sep = "";

	if (!x)
		return 0;

	if (x->account) {
		err |= re_hprintf(pf, "account=%s", x->account);
		sep = " ";
	}
	if (x->peer_set) {
		err |= re_hprintf(pf, "%speer=%j/%u", sep, &x->peer,
				  x->peer_bits);
		sep = " ";
	}
	if (x->gateway) {
		err |= re_hprintf(pf, "%sgateway=%s", sep, x->gateway);
		sep = " ";
	}
	if (x->match[0]) {
		err |= re_hprintf(pf, "%smatch=%s", sep, x->match);
		sep = " ";
	}
	if (x->max_len) {
		err |= re_hprintf(pf, "%slen=%u-%u", sep, x->min_len,
				  x->max_len);
		sep = " ";
	}
	if (x->national[0]) {
		err |= re_hprintf(pf, "%snational=%s", sep, x->national);
		sep = " ";
	}
	if (x->strip) {
		err |= re_hprintf(pf, "%sstrip=%u", sep, x->strip);
		sep = " ";
	}
	if (x->prefix[0])
		err |= re_hprintf(pf, "%sprefix=%s", sep, x->prefix);

	return err;
}


static bool pattern_match(const char *pat, const char *num)
{
	for (; *pat; pat++, num++) {
		if (!*num)
			return false;
		if (*pat == 'X' || *pat == 'x') {
			if (*num < '0' || *num > '9')
				return false;
		}
		else if (*pat != *num) {
			return false;
		}
	}

	return true;
}


static bool scope_match(const struct b2bua_xlat *x, const char *account,
			const struct sa *src, const char *gateway)
{
	if (x->account && (!account || strcmp(x->account, account)))
		return false;

	if (x->peer_set && (!src || !b2bua_same_net(&x->peer, src,
						   x->peer_bits)))
		return false;

	if (x->gateway && (!gateway || strcmp(x->gateway, gateway)))
		return false;

	return true;
}


/* the rule's actions on in, into out */
static int rewrite(const struct b2bua_xlat *x, const char *in, char *out,
		   size_t sz)
{
	char tmp[B2BUA_NUMBER_MAX + B2BUA_XLAT_PREFIX + 8];
	const char *p = in;
	size_t n, pl;

	if (x->national[0] && p[0] != '+') {
		if (p[0] == '0' && p[1] == '0') {
			(void)re_snprintf(tmp, sizeof(tmp), "+%s", p + 2);
		}
		else if (p[0] == '0') {
			(void)re_snprintf(tmp, sizeof(tmp), "+%s%s",
					  x->national, p + 1);
		}
		else {
			str_ncpy(tmp, p, sizeof(tmp));
		}
	}
	else {
		str_ncpy(tmp, p, sizeof(tmp));
	}

	p = tmp;
	n = strlen(p);
	if (x->strip) {
		if (x->strip >= n)
			return EINVAL;
		p += x->strip;
		n -= x->strip;
	}

	pl = strlen(x->prefix);
	if (pl && x->prefix[0] == '+' && p[0] == '+')
		return EINVAL;
	if (pl + n + 1 > sz)
		return EINVAL;

	memcpy(out, x->prefix, pl);
	memcpy(out + pl, p, n + 1);

	return 0;
}


/* ['+'] then 1..B2BUA_NUMBER_MAX digits */
static bool number_ok(const char *s)
{
	size_t i = s[0] == '+' ? 1 : 0, n = strlen(s + i);

	return n && n <= B2BUA_NUMBER_MAX && strspn(s + i, "0123456789") == n;
}


/**
 * Translate a number by the first rule of a direction whose scope and
 * pattern match
 *
 * @param rulel    struct b2bua_xlat
 * @param dir      which rules
 * @param account  the caller's account (in), or NULL
 * @param src      the caller's address (in), or NULL
 * @param gateway  the gateway's name (out), or NULL
 * @param in       the number: ['+'] digits
 * @param out      the translated number (in when no rule matched)
 * @param hitp     the rule applied, NULL if none (may be NULL)
 *
 * @return 0, EINVAL (the number, or the rule's result, is no number:
 *         empty, too long, '+' twice)
 */
int b2bua_xlat_apply(const struct list *rulel, enum b2bua_xlat_dir dir,
		     const char *account, const struct sa *src,
		     const char *gateway, const char *in, char *out,
		     size_t sz, const struct b2bua_xlat **hitp)
{
	struct le *le;
	size_t digits;

	if (hitp)
		*hitp = NULL;

	if (!in || !out || !sz || !number_ok(in))
		return EINVAL;

	digits = strlen(in) - (in[0] == '+');

	LIST_FOREACH(rulel, le) {
		const struct b2bua_xlat *x = le->data;
		int err;

		if (x->dir != dir || !scope_match(x, account, src, gateway))
			continue;
		if (x->max_len && (digits < x->min_len ||
				   digits > x->max_len))
			continue;
		if (!pattern_match(x->match, in))
			continue;

		err = rewrite(x, in, out, sz);
		if (!err && !number_ok(out))
			err = EINVAL;
		if (hitp)
			*hitp = x;

		return err;
	}

	if (strlen(in) + 1 > sz)
		return EINVAL;
	memcpy(out, in, strlen(in) + 1);

	return 0;
}


/* ---------------------------------------------------- configuration */

static int conf_rule(struct cfg_parser *p, struct b2bua_conf *cfg,
		     enum b2bua_xlat_dir dir, const struct pl *val)
{
	struct b2bua_xlat *x;
	char why[128] = "";
	int err;

	err = b2bua_xlat_parse(&x, dir, val, why, sizeof(why));
	if (err == EINVAL)
		return cfg_kerr(p, "%s", why);
	if (err)
		return err;

	x->line = cfg_line(p);
	list_append(&cfg->xlatl, &x->le, x);

	return 0;
}


int b2bua_conf_number_in(struct cfg_parser *p, void *mod,
			 const struct cfg_key *k, const struct pl *val)
{
	(void)k;
	return conf_rule(p, mod, B2BUA_XLAT_IN, val);
}


int b2bua_conf_number_out(struct cfg_parser *p, void *mod,
			  const struct cfg_key *k, const struct pl *val)
{
	(void)k;
	return conf_rule(p, mod, B2BUA_XLAT_OUT, val);
}


/** After the whole file: the gateways number_out names exist */
void b2bua_conf_xlat_check(struct cfg_parser *p, const struct b2bua_conf *cfg)
{
	struct le *le;

	LIST_FOREACH(&cfg->xlatl, le) {
		const struct b2bua_xlat *x = le->data;

		if (!x->gateway || cfg_gateway_find(cfg, x->gateway))
			continue;

		cfg_set_line(p, x->line);
		(void)cfg_err(p, "number_out: unknown gateway '%s'",
			      x->gateway);
	}
}


int b2bua_conf_print_xlat(struct re_printf *pf, const void *mod,
			  const struct cfg_key *k)
{
	const struct b2bua_conf *cfg = mod;
	enum b2bua_xlat_dir dir = strcmp(k->name, "number_in") ?
		B2BUA_XLAT_OUT : B2BUA_XLAT_IN;
	struct le *le;
	int err = 0;

	LIST_FOREACH(&cfg->xlatl, le) {
		const struct b2bua_xlat *x = le->data;

		if (x->dir != dir)
			continue;

		err |= re_hprintf(pf, "%s %H\n", k->name, b2bua_xlat_print,
				  x);
	}

	return err;
}
