/**
 * @file result.c  PostgreSQL client: a command's end, results to queries
 *
 * libpq's results of the command in flight are read as they come
 * (PQisBusy()/PQgetResult()); once it has ended, its query (or each
 * query of its batch) gets the result, or the connection is given up if
 * the server is ending it.
 */

#include <stdlib.h>
#include <string.h>
#include <libpq-fe.h>
#include <re.h>
#include "core.h"
#include "db.h"
#include "db_int.h"


/* an error that means the server is ending this connection */
static bool is_fatal(const PGresult *res)
{
	const char *state;

	if (!res)
		return true;

	state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	/* 57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect */
	return state && 0 == strncmp(state, "57P", 3);
}


/*
 * An SQL error that says nothing about the statement itself: the server
 * cancelled it (57014: statement_timeout, a cancel), it lost a deadlock
 * (40P01) or a serialization conflict (40001), could not take a lock at
 * once (55P03), ran short of resources (53xxx) or of its connection
 * (08xxx).  Nothing was committed; the same query may succeed again.
 */
static bool is_transient(const char *state)
{
	if (!state)
		return false;

	return !strcmp(state, "57014") || !strcmp(state, "40P01") ||
		!strcmp(state, "40001") || !strcmp(state, "55P03") ||
		!strncmp(state, "53", 2) || !strncmp(state, "08", 2);
}


/** The error of a failed query's result: EAGAIN if transient, else EPROTO */
int db_result_err(const PGresult *res)
{
	return is_transient(PQresultErrorField(res, PG_DIAG_SQLSTATE)) ?
		EAGAIN : EPROTO;
}


static void command_done(struct db_conn *c)
{
	struct db *db = c->db;
	PGresult *res = c->res;
	struct db_query *q = c->cur;
	struct db_stmt *stmt = c->cur_prep;
	ExecStatusType status;
	char msg[256];

	c->res = NULL;
	c->busy = false;
	c->fenced = false;
	c->cur_prep = NULL;

	if (PQstatus(c->conn) != CONNECTION_OK || is_fatal(res)) {

		/* db_conn_lost() fails or re-queues c->cur */
		db_first_line(msg, sizeof(msg), res ? PQresultErrorMessage(res)
			   : PQerrorMessage(c->conn));
		PQclear(res);
		db_conn_lost(c, msg);
		return;
	}

	status = PQresultStatus(res);
	db_first_line(msg, sizeof(msg), PQresultErrorMessage(res));

	if (c->setting) {
		c->setting = false;
		if (status != PGRES_COMMAND_OK)
			tlog_err(NULL, "db: connection %u: cannot set "
				 "statement_timeout: %s", c->idx, msg);
	}
	else if (c->bn) {
		db_batch_done(c, res, msg);
	}
	else if (stmt) {
		/* a broken statement fails each of its queries with EPROTO */
		if (status != PGRES_COMMAND_OK) {
			tlog_err(NULL, "db: cannot prepare %s: %s",
				 stmt->name, msg);
		}
		stmt->prepared |= 1u << c->idx;
	}
	else if (q) {
		uint64_t lat = db_now_us() - q->t_start;
		int err = 0;

		c->cur = NULL;
		q->conn = NULL;

		++db->st.queries;
		db->st.lat_us_sum += lat;
		if (lat > db->st.lat_us_max)
			db->st.lat_us_max = lat;

		if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
			const char *state;

			state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
			tlog_warn(NULL, "db: %s failed: %s [%s]",
				  q->stmt->name, msg, state ? state : "-");
			err = db_result_err(res);
		}

		db_query_finish(q, err, res);
	}

	PQclear(res);

	if (!db_released(db))
		db_dispatch(db);
}


void db_conn_read(struct db_conn *c)
{
	while (c->state == DB_UP && c->busy && !db_released(c->db) &&
	       !PQisBusy(c->conn)) {

		PGresult *r = PQgetResult(c->conn);

		if (!r) {
			command_done(c);
			continue;
		}

		/* COPY would never end: give the connection up */
		switch (PQresultStatus(r)) {

		case PGRES_COPY_IN:
		case PGRES_COPY_OUT:
		case PGRES_COPY_BOTH:
			PQclear(r);
			db_conn_lost(c, "COPY is not supported");
			return;

		default:
			break;
		}

		/* one statement, one result; keep an error over a success */
		if (!c->res) {
			c->res = r;
		}
		else if (PQresultStatus(r) == PGRES_FATAL_ERROR) {
			PQclear(c->res);
			c->res = r;
		}
		else {
			PQclear(r);
		}
	}
}
