/**
 * @file ledger.c  Blocking helper: check the money ledger
 *
 * Used only outside the event loop (tollgate --ledger-check): one
 * blocking connection, one read-only transaction that sees one snapshot,
 * tg_ledger_check() (sql/011_ledger.sql) and the size of what it looked
 * at.  Every violation is one line of the report, then a summary line.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libpq-fe.h>
#include <re.h>
#include "db.h"
#include "db_int.h"


/* the schema version that has tg_ledger_check() */
enum { LEDGER_SCHEMA = 11 };


static const char *col(const PGresult *res, int row, int c)
{
	return PQgetisnull(res, row, c) ? "-" : PQgetvalue(res, row, c);
}


/* a query that returns rows; report what failed */
static PGresult *query_rows(PGconn *conn, const char *sql, int ncols,
			    const char *what, struct re_printf *errpf)
{
	PGresult *res = PQexec(conn, sql);

	if (PQresultStatus(res) != PGRES_TUPLES_OK ||
	    PQnfields(res) != ncols) {
		struct pl pl = db_line_of(res ? PQresultErrorMessage(res)
					  : PQerrorMessage(conn));

		db_complain(errpf, "%s: %r\n", what, &pl);
		PQclear(res);
		return NULL;
	}

	return res;
}


/**
 * Check that the ledger and the balances agree (tg_ledger_check()):
 * print every violation, one line each, and a summary line such as
 * "ledger: 12 accounts, 345 rows, 0 violations" to pf
 *
 * @param conninfo    libpq connection string
 * @param pf          where the report goes (NULL: stdout)
 * @param violations  the number of violations found
 * @param errpf       where errors go (NULL: stderr)
 *
 * @return 0 if the check ran (whatever it found), else an errno (the
 *         reason is printed)
 */
int db_ledger_check_sync(const char *conninfo, struct re_printf *pf,
			 uint32_t *violations, struct re_printf *errpf)
{
	PGconn *conn = NULL;
	PGresult *res = NULL, *cnt = NULL;
	int version = 0, i, n;
	int err;

	if (!violations)
		return EINVAL;

	err = db_connect_sync(&conn, conninfo, errpf);
	if (err)
		return err;

	err = db_version_of(conn, &version, errpf);
	if (err)
		goto out;

	if (version < LEDGER_SCHEMA) {
		db_complain(errpf, "database schema is at version %d, the"
			    " ledger needs version %d: run 'tollgate"
			    " --migrate' first\n", version, LEDGER_SCHEMA);
		err = EPROTO;
		goto out;
	}

	err = db_exec_cmd(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ"
			  " READ ONLY", "ledger check", errpf);
	if (err)
		goto out;

	res = query_rows(conn, "SELECT what, account_id, call_id, expected,"
			 " found FROM tg_ledger_check()", 5,
			 "ledger check", errpf);
	cnt = query_rows(conn, "SELECT (SELECT count(*) FROM accounts),"
			 " (SELECT count(*) FROM ledger)", 2,
			 "ledger check", errpf);
	if (!res || !cnt || PQntuples(cnt) != 1) {
		err = EPROTO;
		goto out;
	}

	(void)db_exec_cmd(conn, "COMMIT", "ledger check", errpf);

	n = PQntuples(res);
	for (i = 0; i < n; i++) {
		db_say(pf, "ledger: violation %s: account %s, call %s:"
		       " expected %s, found %s\n", col(res, i, 0),
		       col(res, i, 1), col(res, i, 2), col(res, i, 3),
		       col(res, i, 4));
	}

	db_say(pf, "ledger: %s accounts, %s rows, %d violation%s\n",
	       col(cnt, 0, 0), col(cnt, 0, 1), n, n == 1 ? "" : "s");

	*violations = (uint32_t)n;

 out:
	PQclear(res);
	PQclear(cnt);
	PQfinish(conn);

	return err;
}
