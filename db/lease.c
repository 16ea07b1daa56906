/**
 * @file lease.c  The node's lease at start and at exit (blocking), and
 *                the application_name of its sessions
 *
 * Used only outside the event loop: the claim before re_main() runs, the
 * release after it has ended (sql/013_lease.sql).  While the loop runs,
 * billing renews, loses and claims the lease again with the asynchronous
 * client.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libpq-fe.h>
#include <re.h>
#include "db.h"
#include "db_int.h"


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


/* one row of tg_lease_claim(): claimed, instance, sip, api, since, until */
static void holder_fill(struct db_lease_holder *h, const PGresult *res)
{
	memset(h, 0, sizeof(*h));
	if (!PQgetisnull(res, 0, 1))
		str_ncpy(h->instance, PQgetvalue(res, 0, 1),
			 sizeof(h->instance));
	if (!PQgetisnull(res, 0, 2))
		str_ncpy(h->sip_addr, PQgetvalue(res, 0, 2),
			 sizeof(h->sip_addr));
	if (!PQgetisnull(res, 0, 3))
		str_ncpy(h->api_addr, PQgetvalue(res, 0, 3),
			 sizeof(h->api_addr));
	if (!PQgetisnull(res, 0, 4))
		h->since_ms = strtoull(PQgetvalue(res, 0, 4), NULL, 10);
	if (!PQgetisnull(res, 0, 5))
		h->until_ms = strtoull(PQgetvalue(res, 0, 5), NULL, 10);
}


/**
 * Claim the node's lease (tg_lease_claim)
 *
 * @param conninfo  libpq connection string
 * @param req       name, instance, addresses, lock key, seconds, and
 *                  whether the flock of state_dir/node.lock was free
 * @param holder    the holder (ourselves if claimed)
 * @param errpf     where errors go (NULL: stderr)
 *
 * @return 0 if the lease is ours, EBUSY if another live instance holds
 *         it (holder says who), another errno on error (printed)
 */
int db_lease_claim_sync(const char *conninfo, const struct db_lease *req,
			struct db_lease_holder *holder,
			struct re_printf *errpf)
{
	char secs[16];
	const char *v[7];
	PGconn *conn;
	PGresult *res;
	int err;

	if (!req || !req->name || !req->instance || !holder)
		return EINVAL;

	err = db_connect_sync(&conn, conninfo, errpf);
	if (err)
		return err;

	(void)re_snprintf(secs, sizeof(secs), "%u", req->seconds);
	v[0] = req->name;
	v[1] = req->instance;
	v[2] = req->sip_addr;
	v[3] = req->api_addr;
	v[4] = req->lock_key;
	v[5] = secs;
	v[6] = req->lock_free ? "true" : "false";

	res = PQexecParams(conn, "SELECT claimed, instance, sip_addr,"
			   " api_addr, since_ms, until_ms FROM tg_lease_claim("
			   "$1, $2, $3, $4, $5, $6::integer, $7::boolean)",
			   7, NULL, v, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
	    PQnfields(res) != 6) {
		struct pl pl = db_line_of(res ? PQresultErrorMessage(res)
					  : PQerrorMessage(conn));

		db_complain(errpf, "cannot claim the lease of node %s: %r\n",
			    req->name, &pl);
		err = EPROTO;
		goto out;
	}

	holder_fill(holder, res);
	err = strcmp(PQgetvalue(res, 0, 0), "t") ? EBUSY : 0;

 out:
	PQclear(res);
	PQfinish(conn);

	return err;
}


/**
 * Release the node's lease at a clean exit (tg_lease_release): the name
 * is free at once, unless the node still has live calls in the database
 *
 * @return 0 if released, ENOENT if it was not ours any more or calls
 *         remain, another errno on error (printed)
 */
int db_lease_release_sync(const char *conninfo, const char *name,
			  const char *instance, struct re_printf *errpf)
{
	const char *v[2] = {name, instance};
	PGconn *conn;
	PGresult *res;
	int err;

	if (!name || !instance)
		return EINVAL;

	err = db_connect_sync(&conn, conninfo, errpf);
	if (err)
		return err;

	res = PQexecParams(conn, "SELECT tg_lease_release($1, $2)", 2, NULL,
			   v, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		struct pl pl = db_line_of(res ? PQresultErrorMessage(res)
					  : PQerrorMessage(conn));

		db_complain(errpf, "cannot release the lease of node %s: %r\n",
			    name, &pl);
		err = EPROTO;
	}
	else if (strcmp(PQgetvalue(res, 0, 0), "t")) {
		err = ENOENT;
	}

	PQclear(res);
	PQfinish(conn);

	return err;
}
