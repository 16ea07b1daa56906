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


/**
 * How a failed query's SQLSTATE is reported: EAGAIN if it says nothing
 * about the statement itself, so that the same query may succeed when
 * tried again (nothing was committed), else EPROTO (a refusal).
 *
 * Transient: the server cancelled it (57014: statement_timeout, a
 * cancel), it lost a deadlock (40P01) or a serialization conflict
 * (40001, also a standby's conflict with recovery), could not take a
 * lock at once (55P03), ran short of resources (53xxx) or of its
 * connection (08xxx), is shutting down or not accepting connections
 * (57P01..57P05), or is not the primary (25006 read-only SQL
 * transaction: a standby, or a server reached before a promotion
 * finished).
 *
 * @param state  five-character SQLSTATE, or NULL (no SQLSTATE: EPROTO)
 */
int db_sqlstate_err(const char *state)
{
	if (!state)
		return EPROTO;

	if (!strcmp(state, "57014") || !strcmp(state, "40P01") ||
	    !strcmp(state, "40001") || !strcmp(state, "55P03") ||
	    !strcmp(state, DB_SQLSTATE_READ_ONLY) ||
	    !strncmp(state, "53", 2) || !strncmp(state, "08", 2) ||
	    !strncmp(state, "57P", 3))
		return EAGAIN;

	return EPROTO;
}


/** The error of a failed query's result: EAGAIN if transient, else EPROTO */
int db_result_err(const PGresult *res)
{
	return db_sqlstate_err(PQresultErrorField(res, PG_DIAG_SQLSTATE));
}


/* the server said it is read-only: this session is not on the primary */
static bool is_read_only(const PGresult *res)
{
	const char *state;

	if (!res || PQresultStatus(res) != PGRES_FATAL_ERROR)
		return false;

	state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	return state && !strcmp(state, DB_SQLSTATE_READ_ONLY);
}


/*
 * The session is on a server that does not take writes (a standby, or
 * one reached while a promotion raced the connection's check of
 * target_session_attrs).  The refused command committed nothing: its
 * query, or each query of its batch, goes back to the head of the queue
 * whether or not it was marked retry, its deadline still running, and
 * the connection is made again, which lands on the primary.
 */
static void read_only(struct db_conn *c, PGresult *res, const char *msg)
{
	struct db *db = c->db;
	struct db_query *q = c->cur;
	struct list bl;
	struct le *le;

	tlog_warn(NULL, "db: connection %u: the server is read-only (%s):"
		  " connecting again to find the primary", c->idx, msg);

	db_batch_take(c, &bl);
	while ((le = list_tail(&bl))) {
		list_unlink(le);
		list_prepend(&db->queryl, le, le->data);
	}

	if (q) {
		c->cur = NULL;
		q->conn = NULL;
		list_prepend(&db->queryl, &q->le, q);
	}

	++db->st.read_only;
	PQclear(res);
	db_conn_lost(c, msg);
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

	if (!c->setting && !stmt && is_read_only(res)) {
		read_only(c, res, msg);
		return;
	}

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
