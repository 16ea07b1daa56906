/**
 * @file schema.c  Blocking start-up helpers: connection, schema version
 *
 * Used only before the event loop runs (tollgate --migrate, the schema
 * check at start-up): one blocking connection, commands whose failure is
 * printed, and the version the schema is at (the highest row of
 * schema_version, 0 before the first migration).
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libpq-fe.h>
#include <re.h>
#include "db.h"
#include "db_int.h"


static void vreport(struct re_printf *pf, FILE *f, const char *fmt,
		    va_list ap)
{
	if (pf)
		(void)re_vhprintf(fmt, ap, pf->vph, pf->arg);
	else
		(void)re_vfprintf(f, fmt, ap);
}


/* a line of progress: errpf, else stdout */
void db_say(struct re_printf *pf, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(pf, stdout, fmt, ap);
	va_end(ap);
}


/* an error: errpf, else stderr */
void db_complain(struct re_printf *pf, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(pf, stderr, fmt, ap);
	va_end(ap);
}


/* libpq's messages end with a newline: print up to it */
struct pl db_line_of(const char *msg)
{
	struct pl pl;

	if (!msg)
		msg = "";

	pl.p = msg;
	pl.l = strcspn(msg, "\n");

	return pl;
}


static void notice_handler(void *arg, const char *message)
{
	struct re_printf *pf = arg;
	struct pl pl = db_line_of(message);

	db_complain(pf, "%r\n", &pl);
}


int db_connect_sync(PGconn **connp, const char *conninfo,
		    struct re_printf *pf)
{
	PGconn *conn;
	PGresult *res;
	struct pl pl;

	if (!conninfo) {
		db_complain(pf, "no database connection string"
			    " (db_conninfo)\n");
		return EINVAL;
	}

	conn = PQconnectdb(conninfo);
	if (!conn) {
		db_complain(pf, "cannot connect to the database:"
			    " out of memory\n");
		return ENOMEM;
	}

	if (PQstatus(conn) != CONNECTION_OK) {
		pl = db_line_of(PQerrorMessage(conn));
		db_complain(pf, "cannot connect to the database: %r\n", &pl);
		PQfinish(conn);
		return ECONNREFUSED;
	}

	PQsetNoticeProcessor(conn, notice_handler, pf);

	res = PQexec(conn, "SET client_min_messages = warning");
	PQclear(res);

	*connp = conn;

	return 0;
}


/* run a command that returns no rows; report what failed */
int db_exec_cmd(PGconn *conn, const char *sql, const char *what,
		struct re_printf *pf)
{
	PGresult *res = PQexec(conn, sql);
	ExecStatusType st = PQresultStatus(res);
	int err = 0;

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		struct pl pl = db_line_of(res ? PQresultErrorMessage(res)
					  : PQerrorMessage(conn));

		db_complain(pf, "%s: %r\n", what, &pl);
		err = EPROTO;
	}

	PQclear(res);

	return err;
}


/* one integer from a one-row query */
static int query_int(PGconn *conn, const char *sql, int *val,
		     struct re_printf *pf)
{
	PGresult *res = PQexec(conn, sql);
	int err = 0;

	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
	    PQnfields(res) != 1) {
		struct pl pl = db_line_of(res ? PQresultErrorMessage(res)
					  : PQerrorMessage(conn));

		db_complain(pf, "cannot read the schema version: %r\n", &pl);
		err = EPROTO;
		goto out;
	}

	*val = PQgetisnull(res, 0, 0) ? 0 : atoi(PQgetvalue(res, 0, 0));

 out:
	PQclear(res);

	return err;
}


int db_version_of(PGconn *conn, int *version, struct re_printf *pf)
{
	int exists = 0;
	int err;

	err = query_int(conn, "SELECT (to_regclass('schema_version')"
			" IS NOT NULL)::int", &exists, pf);
	if (err)
		return err;

	if (!exists) {
		*version = 0;
		return 0;
	}

	return query_int(conn, "SELECT coalesce(max(version), 0)"
			 " FROM schema_version", version, pf);
}


/**
 * Highest migration applied to the database
 *
 * @param conninfo  libpq connection string
 * @param version   0 when schema_version does not exist
 * @param errpf     where errors go (NULL: stderr)
 *
 * @return 0 if success, else an errno (the reason is printed)
 */
int db_schema_version_sync(const char *conninfo, int *version,
			   struct re_printf *errpf)
{
	PGconn *conn = NULL;
	int err;

	if (!version)
		return EINVAL;

	err = db_connect_sync(&conn, conninfo, errpf);
	if (err)
		return err;

	err = db_version_of(conn, version, errpf);

	PQfinish(conn);

	return err;
}


/**
 * Check that the database has the schema this build needs.  If it has not,
 * print what to do.
 *
 * @return 0 if the schema is recent enough, EPROTO if it is older, or the
 *         error of db_schema_version_sync()
 */
int db_schema_check_sync(const char *conninfo, struct re_printf *errpf)
{
	int version = 0;
	int err;

	err = db_schema_version_sync(conninfo, &version, errpf);
	if (err)
		return err;

	if (version < DB_SCHEMA_VERSION) {
		db_complain(errpf, "database schema is at version %d, this"
			    " build needs version %d: run 'tollgate --migrate"
			    " -f FILE' with the same configuration file"
			    " first\n", version, DB_SCHEMA_VERSION);
		return EPROTO;
	}

	return 0;
}
