/**
 * @file conf_parse.c  Configuration values: lexical helpers, typed parsers
 *                     and the generic keys (numbers, yes/no, strings,
 *                     choices) with their printers
 *
 * Key parsers of every module use these, so that a value means the same
 * and is refused with the same words wherever it appears.  cfg_load()
 * reads the file for cfg_parse().
 */

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <re.h>
#include "core.h"


enum { CFG_MAX_SIZE = 1024 * 1024 };  /* cfg_load() refuses larger files */


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


bool cfg_pl_is_token(const struct pl *pl)
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


void cfg_pl_trim(struct pl *pl)
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
unsigned cfg_split_args(const struct pl *val, struct pl *argv,
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
bool cfg_pl_skip_prefix(struct pl *pl, const char *prefix)
{
	size_t n = strlen(prefix);

	if (pl->l < n || memcmp(pl->p, prefix, n))
		return false;

	pl_advance(pl, n);

	return true;
}


/** Split pl at the first occurrence of c; false if c does not occur */
bool cfg_pl_split(const struct pl *pl, char c, struct pl *left,
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
int cfg_get_u32(struct cfg_parser *p, const char *what, const struct pl *pl,
		uint32_t min, uint32_t max, uint32_t *vp)
{
	uint64_t v = 0;
	bool big = false;
	size_t i;

	if (!pl->l)
		return cfg_kerr(p, "%s is empty, expected a number %u..%u",
				what, min, max);

	for (i = 0; i < pl->l; i++) {
		if (!is_digit(pl->p[i]))
			return cfg_kerr(p, "%s '%r' is not a decimal number",
					what, pl);

		v = v * 10 + (uint64_t)(pl->p[i] - '0');
		if (v > UINT32_MAX) {
			big = true;
			v = UINT32_MAX;
		}
	}

	if (big || v < min || v > max)
		return cfg_kerr(p, "%s %r out of range %u..%u", what, pl,
				min, max);

	*vp = (uint32_t)v;

	return 0;
}


/** Numeric IPv4 or IPv6 address, no port, no brackets */
int cfg_get_ip(const struct pl *pl, struct sa *sa)
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
int cfg_get_hostport(struct cfg_parser *p, const struct pl *pl,
		     uint16_t defport, struct sa *sa)
{
	struct pl host, port = PL_INIT;
	uint32_t v = defport;
	int err;

	if (pl->l && pl->p[0] == '[') {
		struct pl rest = *pl;

		pl_advance(&rest, 1);
		if (!cfg_pl_split(&rest, ']', &host, &rest))
			return cfg_kerr(p, "'%r': missing ']' after IPv6 "
					"address", pl);

		if (rest.l) {
			if (rest.p[0] != ':')
				return cfg_kerr(p, "'%r': expected ':PORT' "
						"after ']'", pl);
			port = rest;
			pl_advance(&port, 1);
		}

		if (!pl_strchr(&host, ':') || cfg_get_ip(&host, sa))
			return cfg_kerr(p, "'%r' is not an IPv6 address",
					&host);
	}
	else {
		host = *pl;
		if (cfg_pl_split(pl, ':', &host, &port) &&
		    pl_strchr(&port, ':'))
			return cfg_kerr(p, "'%r': write an IPv6 address in "
					"brackets, e.g. [::1]:%u", pl,
					defport);

		if (cfg_get_ip(&host, sa))
			return cfg_kerr(p, "'%r' is not an IPv4 address (host "
					"names are not accepted)", &host);
	}

	if (port.p) {
		err = cfg_get_u32(p, "port", &port, 1, 65535, &v);
		if (err)
			return err;
	}

	sa_set_port(sa, (uint16_t)v);

	return 0;
}


int cfg_get_transport(struct cfg_parser *p, const struct pl *pl,
		      enum sip_transp *tpp)
{
	if (!pl_strcmp(pl, "udp"))
		*tpp = SIP_TRANSP_UDP;
	else if (!pl_strcmp(pl, "tcp"))
		*tpp = SIP_TRANSP_TCP;
	else if (!pl_strcmp(pl, "tls"))
		*tpp = SIP_TRANSP_TLS;
	else
		return cfg_kerr(p, "unknown transport '%r' (udp, tcp or tls)",
				pl);

	return 0;
}


int cfg_set_str(char **dst, const struct pl *pl)
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
int cfg_one_arg(struct cfg_parser *p, const struct pl *val, struct pl *arg,
		const char *expect)
{
	if (cfg_split_args(val, arg, 1) != 1)
		return cfg_kerr(p, "'%r': expected %s", val, expect);

	return 0;
}




/**
 * One of a list of words
 *
 * @return 0 and the index in *ip, or EINVAL naming the words allowed
 */
int cfg_get_choice(struct cfg_parser *p, const struct pl *val,
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

	return cfg_kerr(p, "'%r' is not one of %s", val, list);
}


const char *cfg_transp_name(enum sip_transp tp)
{
	switch (tp) {

	case SIP_TRANSP_TCP: return "tcp";
	case SIP_TRANSP_TLS: return "tls";
	default:             return "udp";
	}
}


/* ------------------------------------------------------- generic keys */

/** A number in the key's range, stored at the key's offset */
int cfg_key_u32(struct cfg_parser *p, void *mod, const struct cfg_key *k,
		const struct pl *val)
{
	return cfg_get_u32(p, "value", val, k->min, k->max,
			   CFG_FIELD(mod, k, uint32_t));
}


/** yes|no, stored as a bool at the key's offset */
int cfg_key_yesno(struct cfg_parser *p, void *mod, const struct cfg_key *k,
		  const struct pl *val)
{
	static const char * const v[] = {"yes", "no"};
	size_t i;
	int err;

	err = cfg_get_choice(p, val, v, ARRAY_SIZE(v), &i);
	if (err)
		return err;

	*CFG_FIELD(mod, k, bool) = (i == 0);

	return 0;
}


/** The rest of the line, stored at the key's offset */
int cfg_key_str(struct cfg_parser *p, void *mod, const struct cfg_key *k,
		const struct pl *val)
{
	(void)p;

	return cfg_set_str(CFG_FIELD(mod, k, char *), val);
}


static size_t choice_count(const struct cfg_key *k)
{
	size_t n = 0;

	while (k->choices && k->choices[n])
		++n;

	return n;
}


/** One of k->choices, stored as its index (an int) at the key's offset */
int cfg_key_choice(struct cfg_parser *p, void *mod, const struct cfg_key *k,
		   const struct pl *val)
{
	size_t i;
	int err;

	err = cfg_get_choice(p, val, k->choices, choice_count(k), &i);
	if (err)
		return err;

	*CFG_FIELD(mod, k, int) = (int)i;

	return 0;
}


int cfg_print_u32(struct re_printf *pf, const void *mod,
		  const struct cfg_key *k)
{
	return re_hprintf(pf, "%s %u\n", k->name,
			  *CFG_CFIELD(mod, k, uint32_t));
}


int cfg_print_yesno(struct re_printf *pf, const void *mod,
		    const struct cfg_key *k)
{
	return re_hprintf(pf, "%s %s\n", k->name,
			  *CFG_CFIELD(mod, k, bool) ? "yes" : "no");
}


/** The string, no line at all if it is not set */
int cfg_print_str(struct re_printf *pf, const void *mod,
		  const struct cfg_key *k)
{
	const char *s = *CFG_CFIELD(mod, k, char *);

	if (!s)
		return 0;

	return re_hprintf(pf, "%s %s\n", k->name, s);
}


int cfg_print_choice(struct re_printf *pf, const void *mod,
		     const struct cfg_key *k)
{
	int i = *CFG_CFIELD(mod, k, int);

	if (i < 0 || (size_t)i >= choice_count(k))
		return EINVAL;

	return re_hprintf(pf, "%s %s\n", k->name, k->choices[i]);
}


/** The address without port, no line at all if it is not set */
int cfg_print_ip(struct re_printf *pf, const void *mod,
		 const struct cfg_key *k)
{
	const struct sa *sa = CFG_CFIELD(mod, k, struct sa);

	if (!sa_isset(sa, SA_ADDR))
		return 0;

	return re_hprintf(pf, "%s %j\n", k->name, sa);
}


int cfg_print_hostport(struct re_printf *pf, const void *mod,
		       const struct cfg_key *k)
{
	return re_hprintf(pf, "%s %J\n", k->name,
			  CFG_CFIELD(mod, k, struct sa));
}


/* ------------------------------------------------------- reading the file */

/**
 * Read and parse a configuration file
 *
 * @param cfgp  Pointer to the new configuration
 * @param file  Path of the file (at most 1 MiB)
 * @param modv  The modules whose keys the file may set
 * @param modc  Number of modules
 * @param errpf Where to print errors (may be NULL)
 *
 * @return 0 if success, EINVAL for a bad configuration, otherwise the
 *         errno of opening or reading the file (EFBIG if too large)
 */
int cfg_load(struct cfg **cfgp, const char *file,
	     const struct cfg_module *const *modv, size_t modc,
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

	err = cfg_parse(cfgp, file, buf, len, modv, modc, errpf);
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
