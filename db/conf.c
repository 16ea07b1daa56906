/**
 * @file conf.c  The database client's keys: db_conninfo, db_connections,
 *               db_statement_timeout
 */

#include <string.h>
#include <re.h>
#include "core.h"
#include "db.h"


static inline bool is_ws(char c)
{
	return c == ' ' || c == '\t';
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


/** db_conninfo with its passwords masked */
static int print_db_conninfo(struct re_printf *pf, const void *mod,
			     const struct cfg_key *k)
{
	const struct db_conf *cfg = mod;
	int err = 0;

	if (!cfg->db_conninfo)
		return 0;

	err |= re_hprintf(pf, "%s ", k->name);
	err |= print_conninfo(pf, cfg->db_conninfo);
	err |= re_hprintf(pf, "\n");

	return err;
}


static int conf_check(struct cfg_parser *p, void *mod)
{
	const struct db_conf *cfg = mod;

	char msg[256];

	if (!cfg->db_conninfo)
		(void)cfg_err(p, "no db_conninfo given (it is required)");
	/* the servers it names; what libpq cannot parse is refused when
	   the client is made */
	else if (db_conninfo_check(cfg->db_conninfo, NULL, msg,
				   sizeof(msg)) == EINVAL)
		(void)cfg_err(p, "db_conninfo: %s", msg);

	return 0;
}


static void conf_destructor(void *arg)
{
	struct db_conf *cfg = arg;

	mem_deref(cfg->db_conninfo);
}


static const struct cfg_key keyv[] = {
	{ .name = "db_conninfo", .parse = cfg_key_str,
	  .print = print_db_conninfo,
	  .off = offsetof(struct db_conf, db_conninfo),
	  .doc = "libpq connection string of the PostgreSQL database "
		 "(required)" },
	CFG_U32("db_connections", struct db_conf, db_connections, 1, 32, "4",
		"connections of the query pool"),
	CFG_U32("db_statement_timeout", struct db_conf, db_statement_timeout,
		0, 600000, "3000",
		"ms a statement may run on the server (0 = no limit)"),
};


CFG_MODULE(db_conf_module, "db", keyv, struct db_conf,
	   NULL, conf_check, conf_destructor);
