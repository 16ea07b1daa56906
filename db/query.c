/**
 * @file query.c  PostgreSQL client: the queue, deadlines and fences
 *
 * The head of the queue goes to a connection that is up and idle (the
 * fewest commands: none), the search starting after the connection used
 * last so that light load turns over all of them.  A connection that is
 * not idle takes nothing: a query never waits behind a slow one while
 * another connection is free.  With one connection this is the FIFO
 * client it always was.
 *
 * Order (see db.h): a command whose outcome nobody waits for any more
 * (no handler, detached or past its deadline while on the server) raises a
 * fence on its connection: queries queued after that moment are handed
 * out only once it has ended.
 */

#include <stdlib.h>
#include <string.h>
#include <libpq-fe.h>
#include <re.h>
#include "core.h"
#include "db.h"
#include "db_int.h"


/*
 * The query in flight on c lost its owner (detached, deadline): the
 * command goes on, its result is discarded, and what is queued from now
 * on waits until it has ended.
 */
static void conn_orphan(struct db_conn *c)
{
	c->cur = NULL;
	c->fenced = true;
	c->fence_seq = c->db->seq;
}


/* q goes away while on c's server: later queries wait for c's command */
static void query_leave_conn(struct db_query *q)
{
	struct db_conn *c = q->conn;

	if (!c)
		return;

	if (c->cur == q) {
		conn_orphan(c);
	}
	else if (q->inbatch) {
		c->fenced = true;
		c->fence_seq = c->db->seq;
	}
}


static void query_destructor(void *data)
{
	struct db_query *q = data;

	tmr_cancel(&q->tmr);
	list_unlink(&q->le);

	query_leave_conn(q);

	if (q->own_arg)
		mem_deref(q->arg);

	mem_deref(q->values);
}


/* Finish a query: the caller's handle goes, the handler runs, q is freed */
void db_query_finish(struct db_query *q, int err, const PGresult *res)
{
	db_result_h *h = q->h;
	void *arg = q->arg;

	tmr_cancel(&q->tmr);
	list_unlink(&q->le);

	query_leave_conn(q);
	q->conn = NULL;
	q->inbatch = false;

	if (q->db && err)
		++q->db->st.errors;

	q->db = NULL;

	if (q->qp) {
		*q->qp = NULL;
		q->qp = NULL;
	}

	if (h)
		h(err, (const struct pg_result *)res, arg);

	mem_deref(q);
}


/* Drop a query without running its handler (the db is going away) */
void db_query_drop(struct db_query *q)
{
	tmr_cancel(&q->tmr);
	list_unlink(&q->le);

	if (q->conn && q->conn->cur == q)
		q->conn->cur = NULL;
	q->conn = NULL;
	q->inbatch = false;
	q->db = NULL;

	if (q->qp) {
		*q->qp = NULL;
		q->qp = NULL;
	}

	mem_deref(q);
}


static void query_timeout(void *arg)
{
	struct db_query *q = arg;
	struct db *db = mem_ref(q->db);

	tlog_warn(NULL, "db: %s timed out after %u ms%s", q->stmt->name,
		  q->timeout_ms, q->conn ? " (in flight)" : "");

	db_query_finish(q, ETIMEDOUT, NULL);

	/* a fence may have been raised, or nothing changed */
	mem_deref(db);
}


/* true if no fence holds q back: it was queued before every fence */
bool db_may_send(const struct db *db, const struct db_query *q)
{
	uint32_t i;

	for (i = 0; i < db->nconn; i++) {
		const struct db_conn *c = &db->connv[i];

		if (c->fenced && q->seq > c->fence_seq)
			return false;
	}

	return true;
}


/*
 * Send the next command on c if it is up and idle: a statement still to
 * be prepared on this connection first, else the head of the queue (with
 * the queries it can be batched with).  Runs no handler: a failure to
 * send is reported from the event loop.
 *
 * @return true if c took a command
 */
static bool conn_dispatch(struct db_conn *c)
{
	struct db *db = c->db;
	struct db_query *q;
	struct le *le;
	int ok, r;

	if (c->state != DB_UP || c->busy || c->failing)
		return false;

	/* the session's settings before anything else */
	if (c->need_set) {
		char sql[64];

		(void)re_snprintf(sql, sizeof(sql),
				  "SET statement_timeout = %u",
				  db->stmt_timeout);
		if (!PQsendQuery(c->conn, sql))
			goto fail;

		c->need_set = false;
		c->setting = true;
		c->busy = true;
		goto sent;
	}

	for (le = db->stmtl.head; le; le = le->next) {
		struct db_stmt *stmt = le->data;

		if (stmt->prepared & (1u << c->idx))
			continue;

		if (!PQsendPrepare(c->conn, stmt->name, stmt->sql,
				   stmt->nparams, NULL))
			goto fail;

		c->busy = true;
		c->cur_prep = stmt;
		goto sent;
	}

	le = db->queryl.head;
	if (!le)
		return false;

	q = le->data;
	if (!db_may_send(db, q))
		return false;

	if (q->stmt->batch && !q->single) {
		switch (db_batch_send(c, q)) {

		case 1:
			goto sent;

		case -1:
			goto fail;

		default:
			break;
		}
	}

	ok = PQsendQueryPrepared(c->conn, q->stmt->name, q->nparams,
				 (const char *const *)q->values, NULL, NULL,
				 0);
	if (!ok)
		goto fail;

	db_note_wait(db, q);
	list_unlink(&q->le);
	c->busy = true;
	c->cur = q;
	q->conn = c;

	/* nobody waits for its result: what follows waits for it */
	if (!q->h) {
		c->fenced = true;
		c->fence_seq = q->seq;
	}

 sent:
	r = PQflush(c->conn);
	if (r < 0)
		goto fail;

	c->flushing = (r == 1);
	if (db_conn_watch(c, c->flushing ? FD_READ | FD_WRITE : FD_READ))
		goto fail;

	return true;

 fail:
	c->failing = true;
	tmr_start(&c->tmr, 0, db_conn_deferred_loss, c);

	return false;
}


/* Hand out work to every idle connection, starting after the last used */
void db_dispatch(struct db *db)
{
	uint32_t k;

	for (k = 0; k < db->nconn; k++) {
		uint32_t i = (db->next + k) % db->nconn;

		if (conn_dispatch(&db->connv[i]))
			db->next = (i + 1) % db->nconn;
	}
}


static int values_dup(char ***vp, int n, const char *const *values)
{
	size_t sz = (size_t)n * sizeof(char *);
	char **v;
	char *p;
	int i;

	for (i = 0; i < n; i++)
		sz += values[i] ? strlen(values[i]) + 1 : 0;

	v = mem_zalloc(sz ? sz : 1, NULL);
	if (!v)
		return ENOMEM;

	p = (char *)(v + n);
	for (i = 0; i < n; i++) {
		size_t len;

		if (!values[i])
			continue;

		len = strlen(values[i]) + 1;
		memcpy(p, values[i], len);
		v[i] = p;
		p += len;
	}

	*vp = v;

	return 0;
}


static int exec(struct db_query **qp, struct db *db, const char *name,
		int nparams, const char *const *values, uint32_t timeout_ms,
		bool retry, db_result_h *h, void *arg, bool own_arg)
{
	const struct db_stmt *stmt;
	struct db_query *q;
	int err;

	if (!db || !name || nparams < 0 || (nparams > 0 && !values))
		return EINVAL;

	stmt = db_stmt_find(db, name);
	if (!stmt) {
		tlog_err(NULL, "db: no statement %s (db_prepare it first)",
			 name);
		return ENOENT;
	}

	if (stmt->nparams != nparams) {
		tlog_err(NULL, "db: %s takes %d parameters, not %d", name,
			 stmt->nparams, nparams);
		return EINVAL;
	}

	q = mem_zalloc(sizeof(*q), query_destructor);
	if (!q)
		return ENOMEM;

	err = values_dup(&q->values, nparams, values);
	if (err) {
		mem_deref(q);
		return err;
	}

	q->db = db;
	q->stmt = stmt;
	q->nparams = nparams;
	q->timeout_ms = timeout_ms;
	q->retry = retry;
	q->h = h;
	q->arg = arg;
	q->own_arg = own_arg;
	q->t_start = db_now_us();
	q->seq = ++db->seq;
	tmr_init(&q->tmr);

	if (timeout_ms)
		tmr_start(&q->tmr, timeout_ms, query_timeout, q);

	list_append(&db->queryl, &q->le, q);

	if (qp) {
		q->qp = qp;
		*qp = q;
	}

	db_dispatch(db);

	return 0;
}


/**
 * Queue a prepared statement.  The handler runs once from the event loop,
 * unless the caller detaches it first with mem_deref(*qp) (the query is
 * then dropped if not yet sent; if in flight its result is discarded) or
 * the db is freed.  *qp is set to NULL just before the handler runs.
 *
 * A deadline does not stop the statement on the server (that would need
 * libpq's PQcancel(), which blocks): the connection stays busy until it
 * ends, and a statement past its deadline may still commit.  Each session
 * of the pool bounds its statements with statement_timeout
 * (db_set_statement_timeout(), the db_statement_timeout key): a statement
 * the server cancels fails with EAGAIN.
 *
 * @param qp          optional handle, owned by the caller until completion
 * @param db          client
 * @param stmt        name given to db_prepare()
 * @param nparams     number of values (as registered)
 * @param values      parameter values as text, NULL entries are SQL NULL;
 *                    copied
 * @param timeout_ms  deadline from now (ETIMEDOUT), 0 for none
 * @param retry       idempotent: re-send after a reconnect if the
 *                    connection broke while it was in flight
 * @param h           result handler (may be NULL)
 * @param arg         handler argument
 *
 * @return 0 if queued, ENOENT for an unknown statement, EINVAL
 */
int db_exec(struct db_query **qp, struct db *db, const char *stmt,
	    int nparams, const char *const *values, uint32_t timeout_ms,
	    bool retry, db_result_h *h, void *arg)
{
	return exec(qp, db, stmt, nparams, values, timeout_ms, retry, h, arg,
		    false);
}


/**
 * Like db_exec(), but the query owns arg (a mem_alloc'd object): it is
 * mem_deref'd when the query is freed, after the handler if it runs.  On
 * failure arg stays the caller's.
 */
int db_exec_owned(struct db_query **qp, struct db *db, const char *stmt,
		  int nparams, const char *const *values, uint32_t timeout_ms,
		  bool retry, db_result_h *h, void *arg)
{
	return exec(qp, db, stmt, nparams, values, timeout_ms, retry, h, arg,
		    true);
}
