/**
 * @file exec_sync.c  Blocking helper: one statement on a connection of
 *                    its own
 *
 * Used only outside the event loop (tollgate --import-rates): connect,
 * run one statement with text parameters in its own transaction, hand
 * its result to a db_result_h as the asynchronous client would, close.
 */

#include <libpq-fe.h>
#include <re.h>
#include "db.h"
#include "db_int.h"


/**
 * Run one statement and wait for its result
 *
 * @param conninfo  libpq connection string
 * @param sql       the statement ($1.. for the parameters)
 * @param n         number of parameters
 * @param v         their values as text (NULL: SQL NULL)
 * @param h         handler of the result (as db_result_h of db_exec)
 * @param arg       handler argument
 * @param errpf     where connection errors go (NULL: stderr)
 *
 * @return 0 if the statement ran (its result went to h, success or
 *         not), else an errno and h is not called
 */
int db_exec_sync(const char *conninfo, const char *sql, int n,
		 const char *const *v, db_result_h *h, void *arg,
		 struct re_printf *errpf)
{
	PGconn *conn = NULL;
	PGresult *res;
	int err;

	if (!sql || !h)
		return EINVAL;

	err = db_connect_sync(&conn, conninfo, errpf);
	if (err)
		return err;

	res = PQexecParams(conn, sql, n, NULL, v, NULL, NULL, 0);
	if (!res) {
		struct pl pl = db_line_of(PQerrorMessage(conn));

		db_complain(errpf, "database: %r\n", &pl);
		err = ECONNRESET;
		goto out;
	}

	switch (PQresultStatus(res)) {

	case PGRES_TUPLES_OK:
	case PGRES_COMMAND_OK:
		h(0, (const struct pg_result *)res, arg);
		break;

	default:
		h(EPROTO, (const struct pg_result *)res, arg);
		break;
	}

 out:
	PQclear(res);
	PQfinish(conn);

	return err;
}
