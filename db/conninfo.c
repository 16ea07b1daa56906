/**
 * @file conninfo.c  Checking a libpq connection string before it is used,
 *                   and naming the node's sessions in it
 *
 * A connection string may name several servers (host=/a,/b or
 * hostaddr=10.0.0.1,10.0.0.2, with one port or one port per server):
 * libpq then tries them in order on every connection attempt.  With
 * target_session_attrs=read-write (or primary) it passes over a standby,
 * so that each connection the client makes again after a loss lands on
 * whichever server is the primary now.  Without it a connection could
 * land on a standby, where every write fails: several servers therefore
 * need it.
 */

#include <string.h>
#include <libpq-fe.h>
#include <re.h>
#include "core.h"
#include "db.h"
#include "db_int.h"


/* entries of a comma-separated libpq list ("" and NULL: none) */
static uint32_t list_len(const char *v)
{
	uint32_t n = 1;

	if (!v || !*v)
		return 0;

	for (; *v; v++) {
		if (*v == ',')
			++n;
	}

	return n;
}


/**
 * Check a connection string: libpq parses it, its lists of servers and
 * ports agree, and several servers come with target_session_attrs
 * read-write or primary.
 *
 * @param conninfo  libpq connection string (keyword/value or URI)
 * @param nhostsp   where to store how many servers it names (1 if none
 *                  is named: libpq's default), or NULL
 * @param msg       where to write why it is refused
 * @param sz        size of msg
 *
 * @return 0 if usable, EBADMSG if libpq cannot parse it, EINVAL if it
 *         names servers it cannot use (msg says why for both), ENOMEM
 */
int db_conninfo_check(const char *conninfo, uint32_t *nhostsp, char *msg,
		      size_t sz)
{
	const char *host = NULL, *hostaddr = NULL, *port = NULL;
	const char *tsa = NULL;
	PQconninfoOption *opts, *o;
	uint32_t nhost, naddr, nport, n;
	char *errmsg = NULL, why[256];
	int err = 0;

	if (!conninfo || !msg || !sz)
		return EINVAL;

	*msg = '\0';

	opts = PQconninfoParse(conninfo, &errmsg);
	if (!opts) {
		if (!errmsg)
			return ENOMEM;
		db_first_line(msg, sz, errmsg);
		PQfreemem(errmsg);
		return EBADMSG;
	}

	for (o = opts; o->keyword; o++) {
		if (!o->val)
			continue;
		if (!strcmp(o->keyword, "host"))
			host = o->val;
		else if (!strcmp(o->keyword, "hostaddr"))
			hostaddr = o->val;
		else if (!strcmp(o->keyword, "port"))
			port = o->val;
		else if (!strcmp(o->keyword, "target_session_attrs"))
			tsa = o->val;
	}

	nhost = list_len(host);
	naddr = list_len(hostaddr);
	nport = list_len(port);

	if (nhost && naddr && nhost != naddr) {
		(void)re_snprintf(why, sizeof(why), "host names %u servers"
				  " and hostaddr %u: they must name the same"
				  " ones", nhost, naddr);
		err = EINVAL;
		goto out;
	}

	n = nhost ? nhost : naddr;
	if (!n)
		n = 1;

	if (nport > 1 && nport != n) {
		(void)re_snprintf(why, sizeof(why), "port lists %u ports"
				  " for %u servers: give one port, or one for"
				  " each", nport, n);
		err = EINVAL;
		goto out;
	}

	if (n > 1 && (!tsa || (strcmp(tsa, "read-write") &&
			       strcmp(tsa, "primary")))) {
		(void)re_snprintf(why, sizeof(why), "%u servers but"
				  " target_session_attrs is %s: add"
				  " target_session_attrs=read-write so that"
				  " connections land on the primary", n,
				  tsa ? tsa : "not given");
		err = EINVAL;
		goto out;
	}

	if (nhostsp)
		*nhostsp = n;

 out:
	if (err)
		str_ncpy(msg, why, sz);
	PQconninfoFree(opts);

	return err;
}


/* a keyword/value pair of a connection string, the value quoted */
static int kv_print(struct mbuf *mb, const char *key, const char *val)
{
	int err;

	err = mbuf_printf(mb, "%s%s='", mb->end ? " " : "", key);
	for (; !err && *val; val++) {
		if (*val == '\'' || *val == '\\')
			err = mbuf_write_u8(mb, '\\');
		if (!err)
			err = mbuf_write_u8(mb, (uint8_t)*val);
	}
	if (!err)
		err = mbuf_write_u8(mb, '\'');

	return err;
}


/**
 * The connection string with fallback_application_name = appname, so that
 * every session of the node names it (pg_stat_activity, the default of
 * cdrs.settled_by) unless the string, or PGAPPNAME, gives an
 * application_name of its own.  Works for keyword/value strings and URIs
 * alike: the result is the keyword/value form of what was given.
 *
 * @param dstp      where to store the new string (mem_alloc'ed)
 * @param conninfo  libpq connection string
 * @param appname   the name; NULL or "" leaves the string as it is
 *
 * @return 0 if success, EINVAL if libpq cannot parse conninfo
 */
int db_conninfo_appname(char **dstp, const char *conninfo,
			const char *appname)
{
	PQconninfoOption *opts, *o;
	struct mbuf *mb;
	char *errmsg = NULL;
	bool given = false;
	int err = 0;

	if (!dstp || !conninfo)
		return EINVAL;

	if (!appname || !*appname)
		return str_dup(dstp, conninfo);

	opts = PQconninfoParse(conninfo, &errmsg);
	if (!opts) {
		PQfreemem(errmsg);
		return errmsg ? EINVAL : ENOMEM;
	}

	mb = mbuf_alloc(strlen(conninfo) + 64);
	if (!mb) {
		err = ENOMEM;
		goto out;
	}

	for (o = opts; o->keyword && !err; o++) {
		if (!o->val)
			continue;
		if (!strcmp(o->keyword, "fallback_application_name"))
			given = true;
		err = kv_print(mb, o->keyword, o->val);
	}
	if (!err && !given)
		err = kv_print(mb, "fallback_application_name", appname);
	if (err)
		goto out;

	mb->pos = 0;
	err = mbuf_strdup(mb, dstp, mb->end);

 out:
	mem_deref(mb);
	PQconninfoFree(opts);

	return err;
}
