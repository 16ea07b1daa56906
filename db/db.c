/**
 * @file db.c  Asynchronous PostgreSQL client on libre's event loop
 *
 * A small pool of connections, one command in flight on each, one FIFO
 * queue in front of them all.  Each connection is made with
 * PQconnectStart()/PQconnectPoll() driven by fd_listen() on its own
 * PQsocket(); queries go out with PQsendQueryPrepared() in non-blocking
 * mode (PQflush() with a write watch while it returns 1) and come back
 * through PQconsumeInput()/PQisBusy()/PQgetResult().  Nothing in here
 * blocks after db_alloc().
 *
 * This file: the client itself, its prepared statements and counters.
 * conn.c makes and remakes the connections, query.c queues the queries
 * and hands them out, batch.c sends several as one command, result.c
 * gives each its result.
 *
 * Handlers never run from db_exec(), db_prepare() or a destructor: only
 * from the event loop.
 */

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <libpq-fe.h>
#include <re.h>
#include "core.h"
#include "db.h"
#include "db_int.h"


uint64_t db_now_us(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);

	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}


/* libpq's messages end with a newline (or several lines): keep the first */
void db_first_line(char *buf, size_t sz, const char *msg)
{
	size_t n;

	if (!msg)
		msg = "";

	n = strcspn(msg, "\n");
	if (n >= sz)
		n = sz - 1;

	memcpy(buf, msg, n);
	buf[n] = '\0';
}



/**
 * One step of a non-blocking connect (PQconnectPoll)
 *
 * @param conn    The connection being made
 * @param flagsp  FD_READ or FD_WRITE: what to wait for next; 0 once the
 *                connection is up
 *
 * @return 0, or EPROTO if the connect failed (PQerrorMessage says why)
 */
int db_connect_step(PGconn *conn, int *flagsp)
{
	switch (PQconnectPoll(conn)) {

	case PGRES_POLLING_READING:
		*flagsp = FD_READ;
		return 0;

	case PGRES_POLLING_WRITING:
		*flagsp = FD_WRITE;
		return 0;

	case PGRES_POLLING_OK:
		*flagsp = 0;
		return 0;

	case PGRES_POLLING_FAILED:
	default:
		return EPROTO;
	}
}

/* ------------------------------------------------------------------ API */

static void db_destructor(void *data)
{
	struct db *db = data;
	struct le *le;
	uint32_t i;

	for (i = 0; i < db->nconn; i++) {
		struct db_conn *c = &db->connv[i];

		tmr_cancel(&c->tmr);

		/* pending handlers do not run: their owners get no answer */
		if (c->cur)
			db_query_drop(c->cur);
		while (c->bq.head)
			db_query_drop(c->bq.head->data);
		c->bn = 0;
	}

	while ((le = db->queryl.head) != NULL)
		db_query_drop(le->data);

	for (i = 0; i < db->nconn; i++)
		db_conn_close(&db->connv[i]);

	mem_deref(db->connv);
	list_flush(&db->stmtl);
	mem_deref(db->conninfo);
}


/**
 * Allocate an asynchronous client of nconn connections.  The connections
 * are made from the event loop; queries may be queued at once.
 *
 * Freeing the db (mem_deref) drops every pending query without running
 * its handler and sets each caller's handle (qp) to NULL.
 *
 * libpq resolves a host name inside PQconnectStart(), which blocks: give
 * a socket directory (host=/path) or a numeric hostaddr=.  Several
 * servers (host=/a,/b or hostaddr=x,y) with target_session_attrs
 * read-write: each connection is made to the one that is the primary
 * when it connects, and made again when that one goes away.
 *
 * @param dbp       where to store the client
 * @param conninfo  libpq connection string
 * @param nconn     connections, 1..DB_CONNECTIONS_MAX
 *
 * @return 0 if success, EINVAL for a connection string
 *         db_conninfo_check() refuses or a number of connections out of
 *         range
 */
int db_alloc(struct db **dbp, const char *conninfo, uint32_t nconn)
{
	struct db *db;
	char msg[256];
	uint32_t i;
	int err;

	if (!dbp || !conninfo)
		return EINVAL;

	if (nconn < 1 || nconn > DB_CONNECTIONS_MAX) {
		tlog_err(NULL, "db: %u connections: out of range 1..%u",
			 nconn, DB_CONNECTIONS_MAX);
		return EINVAL;
	}

	err = db_conninfo_check(conninfo, NULL, msg, sizeof(msg));
	if (err == ENOMEM)
		return err;
	else if (err) {
		tlog_err(NULL, "db: bad connection string: %s", msg);
		return EINVAL;
	}

	db = mem_zalloc(sizeof(*db), db_destructor);
	if (!db)
		return ENOMEM;

	list_init(&db->stmtl);
	list_init(&db->queryl);

	db->connv = mem_zalloc(nconn * sizeof(*db->connv), NULL);
	if (!db->connv) {
		err = ENOMEM;
		goto out;
	}

	db->nconn = nconn;
	db->stmt_timeout = DB_STATEMENT_TIMEOUT_DEFAULT;
	db->down_us = db_now_us();

	for (i = 0; i < nconn; i++) {
		struct db_conn *c = &db->connv[i];

		c->db = db;
		c->idx = i;
		c->fd = -1;
		c->state = DB_DOWN;
		c->backoff = DB_BACKOFF_MIN;
		list_init(&c->bq);
		tmr_init(&c->tmr);
	}

	err = str_dup(&db->conninfo, conninfo);
	if (err)
		goto out;

	for (i = 0; i < nconn; i++)
		tmr_start(&db->connv[i].tmr, 0, db_conn_reconnect,
			  &db->connv[i]);

 out:
	if (err)
		mem_deref(db);
	else
		*dbp = db;

	return err;
}


static void stmt_destructor(void *data)
{
	struct db_stmt *stmt = data;

	list_unlink(&stmt->le);
	mem_deref(stmt->name);
	mem_deref(stmt->sql);
}


struct db_stmt *db_stmt_find(const struct db *db, const char *name)
{
	struct le *le;

	for (le = db->stmtl.head; le; le = le->next) {
		struct db_stmt *stmt = le->data;

		if (0 == strcmp(stmt->name, name))
			return stmt;
	}

	return NULL;
}


/**
 * Register a prepared statement.  It is prepared on every connection
 * before its next query and again after every reconnect.  Registering the
 * same name with the same text again is a no-op.
 *
 * @param db       client
 * @param name     statement name (1..63 bytes)
 * @param sql      statement text with $1..$n
 * @param nparams  number of parameters; db_exec() must pass as many
 *
 * @return 0 if success, EEXIST if the name has another text, EINVAL
 */
int db_prepare(struct db *db, const char *name, const char *sql, int nparams)
{
	struct db_stmt *stmt;
	int err;

	if (!db || !name || !*name || strlen(name) > DB_NAME_MAX || !sql ||
	    !*sql || nparams < 0 || nparams > 65535)
		return EINVAL;

	stmt = db_stmt_find(db, name);
	if (stmt) {
		if (0 == strcmp(stmt->sql, sql) && stmt->nparams == nparams)
			return 0;

		tlog_err(NULL, "db: statement %s registered twice with"
			 " different text", name);
		return EEXIST;
	}

	stmt = mem_zalloc(sizeof(*stmt), stmt_destructor);
	if (!stmt)
		return ENOMEM;

	stmt->nparams = nparams;

	err = str_dup(&stmt->name, name);
	err |= str_dup(&stmt->sql, sql);
	if (err) {
		mem_deref(stmt);
		return ENOMEM;
	}

	list_append(&db->stmtl, &stmt->le, stmt);

	db_dispatch(db);

	return 0;
}


/**
 * Give a registered statement a batch form: when more than one query of
 * it waits for a connection, up to max of them go as one command (one
 * round trip, one transaction).  The batch form takes as many parameters
 * as the statement, the k-th an array of the queries' k-th values (text
 * array literals: cast them, e.g. $2::bigint[]), and returns the
 * statement's columns after a first one, the number (from 1, in the
 * arrays' order) of the query the row belongs to; a query with no row
 * gets an empty result.  Each handler sees a result of its own rows, as
 * if its query had run alone.  If the batch fails (an SQL error, e.g. one
 * query's), its queries are sent again one by one, so that only the one
 * at fault fails.
 *
 * All the queries of a batch commit or fail together: batch only
 * statements whose queries are independent of one another, and let the
 * batch form take row locks in one order (e.g. by account) so that two
 * batches cannot deadlock.
 *
 * @param db          client
 * @param name        a statement given to db_prepare()
 * @param batch_name  name of the batch form
 * @param batch_sql   its text
 * @param max         most queries in one batch (2..64)
 *
 * @return 0 if success, ENOENT for an unknown statement, EINVAL (also
 *         for a statement of more than 32 parameters)
 */
int db_prepare_batch(struct db *db, const char *name, const char *batch_name,
		     const char *batch_sql, uint32_t max)
{
	struct db_stmt *stmt, *bstmt;
	int err;

	if (!db || !name || max < 2 || max > DB_BATCH_MAX)
		return EINVAL;

	stmt = db_stmt_find(db, name);
	if (!stmt)
		return ENOENT;

	if (stmt->nparams > DB_BATCH_PARAMS)
		return EINVAL;

	err = db_prepare(db, batch_name, batch_sql, stmt->nparams);
	if (err)
		return err;

	bstmt = db_stmt_find(db, batch_name);
	if (!bstmt || bstmt == stmt)
		return EINVAL;

	stmt->batch = bstmt;
	stmt->batch_max = max;

	return 0;
}


/**
 * Set the statement_timeout of every session of the pool: the server
 * cancels a statement that runs longer (the query fails with EAGAIN), so
 * that a query whose client deadline passed does not hold its connection
 * (and the fence behind it) for long.  Sent on each connection after it
 * is made, before any other command; a change reaches the connections
 * made from then on.  Keep it just above the longest deadline given to
 * db_exec() (the default, DB_STATEMENT_TIMEOUT_DEFAULT, is 3000 ms).
 *
 * @param db  client
 * @param ms  milliseconds; 0 sends nothing: the server's own setting
 *            (normally no limit)
 */
void db_set_statement_timeout(struct db *db, uint32_t ms)
{
	if (!db)
		return;

	db->stmt_timeout = ms;
}


/** True while at least one connection is up */
bool db_is_up(const struct db *db)
{
	return db && db->nup > 0;
}


/**
 * How long the database has been out of reach: 0 while a connection is
 * up, else the milliseconds since the last one went down (since
 * db_alloc() if none was ever up).  Queries queued meanwhile wait and go
 * once a connection is back (the back-off starts at 100 ms and stays
 * short for the first seconds of a loss, so a restart of a second or two
 * is bridged).
 */
uint32_t db_down_ms(const struct db *db)
{
	uint64_t d;

	if (!db || db->nup)
		return 0;

	d = (db_now_us() - db->down_us) / 1000;

	return d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
}


/* the wait of q so far, not counting time when no connection was up */
static uint64_t waited_us(const struct db *db, const struct db_query *q,
			  uint64_t now)
{
	uint64_t from = q->t_start > db->up_us ? q->t_start : db->up_us;

	return now > from ? now - from : 0;
}


/**
 * The wait a query queued now can expect before it is sent, in ms: the
 * age of the oldest query waiting for a connection, or the moving
 * average of the wait of the last commands sent if that is longer, or
 * 0 if nothing waits and a connection is idle.  Both are measured, not
 * derived from the length of the queue: a batch takes up to its
 * statement's batch_max queries per round trip, so a long queue of
 * batchable statements drains faster than its length suggests, and the
 * measure sees that.  Time when no connection was up does not count
 * (see db_down_ms() for that).
 */
uint32_t db_queue_wait_ms(const struct db *db)
{
	const struct db_query *head;
	uint64_t now, w = 0;
	uint32_t i;

	if (!db || !db->nup)
		return 0;

	now = db_now_us();
	head = list_ledata(list_head(&db->queryl));

	if (!head) {
		for (i = 0; i < db->nconn; i++) {
			const struct db_conn *c = &db->connv[i];

			if (c->state == DB_UP && !c->busy)
				return 0;
		}

		w = db->wait_us;
	}
	else {
		w = waited_us(db, head, now);
		if (db->wait_us > w)
			w = db->wait_us;
	}

	w /= 1000;

	return w > UINT32_MAX ? UINT32_MAX : (uint32_t)w;
}


/** A command leaves the queue: its oldest query's wait joins the EWMA */
void db_note_wait(struct db *db, const struct db_query *q)
{
	uint64_t w = waited_us(db, q, db_now_us());

	if (w >= db->wait_us)
		db->wait_us += (w - db->wait_us) >> DB_WAIT_SHIFT;
	else
		db->wait_us -= (db->wait_us - w) >> DB_WAIT_SHIFT;
}


/**
 * Set the handler called with true when the first connection comes up
 * (the database is reachable) and with false when the last one goes down
 */
void db_set_state_handler(struct db *db, db_state_h *h, void *arg)
{
	if (!db)
		return;

	db->stateh = h;
	db->state_arg = arg;
}


/** Counters of the client, summed over its connections */
void db_stats(const struct db *db, struct db_stats *st)
{
	uint32_t i;

	if (!db || !st)
		return;

	*st = db->st;
	st->queued = list_count(&db->queryl);
	for (i = 0; i < db->nconn; i++) {
		if (db->connv[i].cur)
			++st->queued;
		st->queued += list_count(&db->connv[i].bq);
	}
	st->connections = db->nconn;
	st->up = db->nup;

	st->oldest_ms = 0;
	if (db->nup && db->queryl.head)
		st->oldest_ms = (uint32_t)(waited_us(db, db->queryl.head->data,
						     db_now_us()) / 1000);
	st->wait_avg_ms = (uint32_t)(db->wait_us / 1000);
	st->wait_ms = db_queue_wait_ms(db);
	st->down_ms = db_down_ms(db);
}
