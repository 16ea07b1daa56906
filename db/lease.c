/**
 * @file lease.c  The node's lease at start and at exit (blocking)
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
