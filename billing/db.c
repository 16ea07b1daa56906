/**
 * @file db.c  Asynchronous PostgreSQL client on libre's event loop
 *
 * One connection, one command in flight, a FIFO queue behind it.  The
 * connection is made with PQconnectStart()/PQconnectPoll() driven by
 * fd_listen() on PQsocket(); queries go out with PQsendQueryPrepared() in
 * non-blocking mode (PQflush() with a write watch while it returns 1) and
 * come back through PQconsumeInput()/PQisBusy()/PQgetResult().  Nothing in
 * here blocks after db_alloc().
 *
 * When the connection breaks it is made again after a back-off that
 * doubles from DB_BACKOFF_MIN to DB_BACKOFF_MAX; queued queries wait, the
 * query in flight fails with ECONNRESET unless it was marked retry, and
 * every registered statement is prepared again before the next query.
 *
 * Handlers never run from db_exec(), db_prepare() or a destructor: only
 * from the event loop.
 */

#include <string.h>
#include <time.h>
#include <libpq-fe.h>
#include <re.h>
#include "core.h"
#include "billing.h"

enum {
	DB_BACKOFF_MIN     = 100,    /* ms, first reconnect delay      */
	DB_BACKOFF_MAX     = 5000,   /* ms, longest reconnect delay    */
	DB_CONNECT_TIMEOUT = 10000,  /* ms, one connection attempt     */
	DB_NAME_MAX        = 63,     /* NAMEDATALEN - 1                */
};

enum db_state {
	DB_DOWN = 0,     /* no connection, reconnect timer running      */
	DB_CONNECTING,   /* PQconnectPoll() in progress                 */
	DB_UP,           /* connected                                   */
};

struct db_stmt {
	struct le le;           /* in db->stmtl                           */
	char *name;             /* owned                                  */
	char *sql;              /* owned                                  */
	int nparams;
	bool prepared;          /* on the current connection              */
};

struct db_query {
	struct le le;           /* in db->queryl while waiting            */
	struct db *db;          /* borrowed; NULL once finished/dropped   */
	struct db_query **qp;   /* borrowed; caller's handle or NULL      */
	const struct db_stmt *stmt; /* borrowed from db->stmtl            */
	char **values;          /* owned; nparams strings, NULL = SQL NULL */
	int nparams;
	struct tmr tmr;         /* deadline                               */
	uint32_t timeout_ms;
	bool retry;             /* re-send after reconnect if in flight   */
	db_result_h *h;
	void *arg;              /* borrowed, or owned if own_arg          */
	bool own_arg;
	uint64_t t_start;       /* us, when db_exec() queued it           */
};

struct db {
	char *conninfo;         /* owned                                  */
	PGconn *conn;           /* owned; NULL while down                 */
	int fd;                 /* registered with fd_listen(), or -1     */
	int fd_flags;
	enum db_state state;
	bool busy;              /* a command is in flight on conn         */
	bool flushing;          /* PQflush() returned 1: watch writable   */
	bool ever_up;
	bool failing;           /* connection loss is being reported      */
	struct db_query *cur;   /* borrowed; query in flight, NULL if none
				   or if its owner went away (the result
				   is then discarded)                     */
	struct db_stmt *cur_prep; /* borrowed; statement being prepared   */
	PGresult *res;          /* owned; result of the command in flight */
	struct list stmtl;      /* struct db_stmt                         */
	struct list queryl;     /* struct db_query, FIFO                  */
	struct tmr tmr;         /* reconnect back-off, connect timeout,
				   deferred failure                       */
	uint32_t backoff;       /* ms, next reconnect delay               */
	db_state_h *stateh;
	void *state_arg;        /* borrowed                               */
	struct db_stats st;
};


static void dispatch(struct db *db);
static void conn_lost(struct db *db, const char *why);


/*
 * Every entry from the event loop holds a reference to the db while it
 * runs handlers.  If that is the only one left, the owner has freed the
 * db from a handler: run no more handlers, the destructor follows.
 */
static bool released(const struct db *db)
{
	return mem_nrefs(db) <= 1;
}


static uint64_t now_us(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);

	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}


/* libpq's messages end with a newline (or several lines): keep the first */
static void first_line(char *buf, size_t sz, const char *msg)
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


/* ----------------------------------------------------------------- queries */

static void query_destructor(void *data)
{
	struct db_query *q = data;

	tmr_cancel(&q->tmr);
	list_unlink(&q->le);

	/* in flight: the command goes on, its result is discarded */
	if (q->db && q->db->cur == q)
		q->db->cur = NULL;

	if (q->own_arg)
		mem_deref(q->arg);

	mem_deref(q->values);
}


/* Finish a query: the caller's handle goes, the handler runs, q is freed */
static void query_finish(struct db_query *q, int err, const PGresult *res)
{
	db_result_h *h = q->h;
	void *arg = q->arg;

	tmr_cancel(&q->tmr);
	list_unlink(&q->le);

	if (q->db && q->db->cur == q)
		q->db->cur = NULL;

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
static void query_drop(struct db_query *q)
{
	tmr_cancel(&q->tmr);
	list_unlink(&q->le);
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
		  q->timeout_ms, db->cur == q ? " (in flight)" : "");

	query_finish(q, ETIMEDOUT, NULL);

	mem_deref(db);
}


/* ---------------------------------------------------------------- socket */

static void fd_handler(int flags, void *arg);


static int watch(struct db *db, int flags)
{
	int fd = db->conn ? PQsocket(db->conn) : -1;
	int err;

	if (fd != db->fd && db->fd >= 0) {
		fd_close(db->fd);
		db->fd = -1;
	}

	if (fd < 0)
		return EBADF;

	if (fd == db->fd && flags == db->fd_flags)
		return 0;

	err = fd_listen(fd, flags, fd_handler, db);
	if (err) {
		tlog_err(NULL, "db: fd_listen(%d): %s", fd, strerror(err));
		return err;
	}

	db->fd = fd;
	db->fd_flags = flags;

	return 0;
}


static void conn_close(struct db *db)
{
	struct le *le;

	/* the fd leaves the loop before libpq closes it */
	if (db->fd >= 0) {
		fd_close(db->fd);
		db->fd = -1;
	}

	db->fd_flags = 0;

	if (db->res) {
		PQclear(db->res);
		db->res = NULL;
	}

	if (db->conn) {
		PQfinish(db->conn);
		db->conn = NULL;
	}

	db->busy = false;
	db->flushing = false;
	db->cur_prep = NULL;

	for (le = db->stmtl.head; le; le = le->next) {
		struct db_stmt *stmt = le->data;

		stmt->prepared = false;
	}
}


/* ------------------------------------------------------------ connecting */

static void connect_start(struct db *db);


static void reconnect_handler(void *arg)
{
	struct db *db = arg;

	mem_ref(db);
	connect_start(db);
	mem_deref(db);
}


static void schedule_reconnect(struct db *db)
{
	db->state = DB_DOWN;

	tmr_start(&db->tmr, db->backoff, reconnect_handler, db);

	db->backoff *= 2;
	if (db->backoff > DB_BACKOFF_MAX)
		db->backoff = DB_BACKOFF_MAX;
}


static void connect_failed(struct db *db, const char *why)
{
	char msg[256];

	first_line(msg, sizeof(msg), why);

	tlog_warn(NULL, "db: cannot connect: %s (next attempt in %u ms)",
		  msg, db->backoff);

	conn_close(db);
	schedule_reconnect(db);
}


static void connect_timeout(void *arg)
{
	struct db *db = arg;

	mem_ref(db);
	connect_failed(db, "timed out");
	mem_deref(db);
}


static void notice_handler(void *arg, const char *message)
{
	char msg[256];
	(void)arg;

	first_line(msg, sizeof(msg), message);
	tlog_info(NULL, "db: %s", msg);
}


static void connected(struct db *db)
{
	tmr_cancel(&db->tmr);

	if (PQsetnonblocking(db->conn, 1) != 0) {
		connect_failed(db, PQerrorMessage(db->conn));
		return;
	}

	PQsetNoticeProcessor(db->conn, notice_handler, db);

	if (watch(db, FD_READ)) {
		connect_failed(db, "cannot watch the socket");
		return;
	}

	db->state = DB_UP;
	db->backoff = DB_BACKOFF_MIN;

	if (db->ever_up)
		++db->st.reconnects;
	db->ever_up = true;

	tlog_info(NULL, "db: connected (server %d, backend pid %d)",
		  PQserverVersion(db->conn), PQbackendPID(db->conn));

	if (db->stateh)
		db->stateh(true, db->state_arg);

	if (db->state == DB_UP && !released(db))
		dispatch(db);
}


static void connect_poll(struct db *db)
{
	switch (PQconnectPoll(db->conn)) {

	case PGRES_POLLING_READING:
		if (watch(db, FD_READ))
			connect_failed(db, "cannot watch the socket");
		break;

	case PGRES_POLLING_WRITING:
		if (watch(db, FD_WRITE))
			connect_failed(db, "cannot watch the socket");
		break;

	case PGRES_POLLING_OK:
		connected(db);
		break;

	case PGRES_POLLING_FAILED:
	default:
		connect_failed(db, PQerrorMessage(db->conn));
		break;
	}
}


static void connect_start(struct db *db)
{
	db->conn = PQconnectStart(db->conninfo);
	if (!db->conn) {
		connect_failed(db, "out of memory");
		return;
	}

	if (PQstatus(db->conn) == CONNECTION_BAD) {
		connect_failed(db, PQerrorMessage(db->conn));
		return;
	}

	db->state = DB_CONNECTING;
	tmr_start(&db->tmr, DB_CONNECT_TIMEOUT, connect_timeout, db);

	/* as if PQconnectPoll() had returned PGRES_POLLING_WRITING */
	if (watch(db, FD_WRITE))
		connect_failed(db, "cannot watch the socket");
}


/* ------------------------------------------------------------- commands */

static void flush(struct db *db)
{
	int r = PQflush(db->conn);

	if (r < 0) {
		conn_lost(db, PQerrorMessage(db->conn));
		return;
	}

	db->flushing = (r == 1);

	if (watch(db, db->flushing ? FD_READ | FD_WRITE : FD_READ))
		conn_lost(db, "cannot watch the socket");
}


static void deferred_loss(void *arg)
{
	struct db *db = arg;

	mem_ref(db);
	db->failing = false;

	if (db->state == DB_UP)
		conn_lost(db, PQerrorMessage(db->conn));

	mem_deref(db);
}


/*
 * Send the next command if idle: a statement still to be prepared on this
 * connection first, else the head of the queue.  Runs no handler: a failure
 * to send is reported from the event loop.
 */
static void dispatch(struct db *db)
{
	struct db_query *q;
	struct le *le;
	int ok;

	if (db->state != DB_UP || db->busy || db->failing)
		return;

	for (le = db->stmtl.head; le; le = le->next) {
		struct db_stmt *stmt = le->data;

		if (stmt->prepared)
			continue;

		if (!PQsendPrepare(db->conn, stmt->name, stmt->sql,
				   stmt->nparams, NULL))
			goto fail;

		db->busy = true;
		db->cur_prep = stmt;
		goto sent;
	}

	le = db->queryl.head;
	if (!le)
		return;

	q = le->data;

	ok = PQsendQueryPrepared(db->conn, q->stmt->name, q->nparams,
				 (const char *const *)q->values, NULL, NULL,
				 0);
	if (!ok)
		goto fail;

	list_unlink(&q->le);
	db->busy = true;
	db->cur = q;

 sent:
	{
		int r = PQflush(db->conn);

		if (r < 0)
			goto fail;

		db->flushing = (r == 1);
		if (watch(db, db->flushing ? FD_READ | FD_WRITE : FD_READ))
			goto fail;
	}
	return;

 fail:
	db->failing = true;
	tmr_start(&db->tmr, 0, deferred_loss, db);
}


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


static void command_done(struct db *db)
{
	PGresult *res = db->res;
	struct db_query *q = db->cur;
	struct db_stmt *stmt = db->cur_prep;
	ExecStatusType status;
	char msg[256];

	db->res = NULL;
	db->busy = false;
	db->cur_prep = NULL;

	if (PQstatus(db->conn) != CONNECTION_OK || is_fatal(res)) {

		/* conn_lost() fails or re-queues db->cur */
		first_line(msg, sizeof(msg), res ? PQresultErrorMessage(res)
			   : PQerrorMessage(db->conn));
		PQclear(res);
		conn_lost(db, msg);
		return;
	}

	status = PQresultStatus(res);
	first_line(msg, sizeof(msg), PQresultErrorMessage(res));

	if (stmt) {
		/* a broken statement fails each of its queries with EPROTO */
		if (status != PGRES_COMMAND_OK) {
			tlog_err(NULL, "db: cannot prepare %s: %s",
				 stmt->name, msg);
		}
		stmt->prepared = true;
	}
	else if (q) {
		uint64_t lat = now_us() - q->t_start;
		int err = 0;

		db->cur = NULL;

		++db->st.queries;
		db->st.lat_us_sum += lat;
		if (lat > db->st.lat_us_max)
			db->st.lat_us_max = lat;

		if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
			const char *state;

			state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
			tlog_warn(NULL, "db: %s failed: %s [%s]",
				  q->stmt->name, msg, state ? state : "-");
			err = EPROTO;
		}

		query_finish(q, err, res);
	}

	PQclear(res);

	dispatch(db);
}


static void read_results(struct db *db)
{
	while (db->state == DB_UP && db->busy && !released(db) &&
	       !PQisBusy(db->conn)) {

		PGresult *r = PQgetResult(db->conn);

		if (!r) {
			command_done(db);
			continue;
		}

		/* COPY would never end: give the connection up */
		switch (PQresultStatus(r)) {

		case PGRES_COPY_IN:
		case PGRES_COPY_OUT:
		case PGRES_COPY_BOTH:
			PQclear(r);
			conn_lost(db, "COPY is not supported");
			return;

		default:
			break;
		}

		/* one statement, one result; keep an error over a success */
		if (!db->res) {
			db->res = r;
		}
		else if (PQresultStatus(r) == PGRES_FATAL_ERROR) {
			PQclear(db->res);
			db->res = r;
		}
		else {
			PQclear(r);
		}
	}
}


static void fd_handler(int flags, void *arg)
{
	struct db *db = arg;
	PGnotify *n;

	mem_ref(db);

	if (db->state == DB_CONNECTING) {
		connect_poll(db);
		goto out;
	}

	if (db->state != DB_UP)
		goto out;

	if (flags & (FD_READ | FD_EXCEPT)) {

		if (!PQconsumeInput(db->conn)) {
			conn_lost(db, PQerrorMessage(db->conn));
			goto out;
		}

		while ((n = PQnotifies(db->conn)) != NULL)
			PQfreemem(n);
	}

	if (db->flushing) {
		flush(db);
		if (db->state != DB_UP)
			goto out;
	}

	read_results(db);

	if (db->state == DB_UP && PQstatus(db->conn) == CONNECTION_BAD)
		conn_lost(db, PQerrorMessage(db->conn));

 out:
	mem_deref(db);
}


static void conn_lost(struct db *db, const char *why)
{
	struct db_query *q = db->cur;
	bool was_up = (db->state == DB_UP);
	char msg[256];

	first_line(msg, sizeof(msg), why);
	tlog_warn(NULL, "db: connection lost: %s (reconnect in %u ms,"
		  " %u queued)", msg, db->backoff,
		  list_count(&db->queryl) + (q ? 1 : 0));

	db->cur = NULL;
	db->failing = false;
	tmr_cancel(&db->tmr);

	conn_close(db);
	schedule_reconnect(db);

	if (q) {
		if (q->retry)
			list_prepend(&db->queryl, &q->le, q);
		else
			query_finish(q, ECONNRESET, NULL);
	}

	if (was_up && db->stateh && !released(db))
		db->stateh(false, db->state_arg);
}


/* ------------------------------------------------------------------ API */

static void db_destructor(void *data)
{
	struct db *db = data;
	struct le *le;

	tmr_cancel(&db->tmr);

	/* pending handlers do not run: their owners get no answer */
	if (db->cur) {
		struct db_query *q = db->cur;

		db->cur = NULL;
		query_drop(q);
	}

	while ((le = db->queryl.head) != NULL)
		query_drop(le->data);

	conn_close(db);

	list_flush(&db->stmtl);
	mem_deref(db->conninfo);
}


/**
 * Allocate an asynchronous client.  The first connection attempt starts
 * from the event loop; queries may be queued at once.
 *
 * Freeing the db (mem_deref) drops every pending query without running
 * its handler and sets each caller's handle (qp) to NULL.
 *
 * libpq resolves a host name inside PQconnectStart(), which blocks: give
 * a socket directory (host=/path) or a numeric hostaddr=.
 *
 * @param dbp       where to store the client
 * @param conninfo  libpq connection string
 *
 * @return 0 if success, EINVAL for a connection string libpq cannot parse
 */
int db_alloc(struct db **dbp, const char *conninfo)
{
	PQconninfoOption *opts;
	struct db *db;
	char *errmsg = NULL;
	int err;

	if (!dbp || !conninfo)
		return EINVAL;

	opts = PQconninfoParse(conninfo, &errmsg);
	if (!opts) {
		char msg[256];

		first_line(msg, sizeof(msg),
			   errmsg ? errmsg : "out of memory");
		tlog_err(NULL, "db: bad connection string: %s", msg);
		PQfreemem(errmsg);
		return errmsg ? EINVAL : ENOMEM;
	}
	PQconninfoFree(opts);

	db = mem_zalloc(sizeof(*db), db_destructor);
	if (!db)
		return ENOMEM;

	db->fd = -1;
	db->state = DB_DOWN;
	db->backoff = DB_BACKOFF_MIN;
	list_init(&db->stmtl);
	list_init(&db->queryl);
	tmr_init(&db->tmr);

	err = str_dup(&db->conninfo, conninfo);
	if (err)
		goto out;

	tmr_start(&db->tmr, 0, reconnect_handler, db);

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


static struct db_stmt *stmt_find(const struct db *db, const char *name)
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
 * Register a prepared statement.  It is prepared on the current connection
 * before the next query and again after every reconnect.  Registering the
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

	stmt = stmt_find(db, name);
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

	dispatch(db);

	return 0;
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

	stmt = stmt_find(db, name);
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
	q->t_start = now_us();
	tmr_init(&q->tmr);

	if (timeout_ms)
		tmr_start(&q->tmr, timeout_ms, query_timeout, q);

	list_append(&db->queryl, &q->le, q);

	if (qp) {
		q->qp = qp;
		*qp = q;
	}

	dispatch(db);

	return 0;
}


/**
 * Queue a prepared statement.  The handler runs once from the event loop,
 * unless the caller detaches it first with mem_deref(*qp) (the query is
 * then dropped if not yet sent; if in flight its result is discarded) or
 * the db is freed.  *qp is set to NULL just before the handler runs.
 *
 * A deadline does not stop the statement on the server (that would need
 * a blocking PQcancel()): the connection stays busy until it ends.  Bound
 * slow statements with statement_timeout, e.g. in the connection string
 * options='-c statement_timeout=5s'.
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


/** True while connected */
bool db_is_up(const struct db *db)
{
	return db && db->state == DB_UP;
}


/** Set the handler called when the connection comes up or goes down */
void db_set_state_handler(struct db *db, db_state_h *h, void *arg)
{
	if (!db)
		return;

	db->stateh = h;
	db->state_arg = arg;
}


/** Counters of the client */
void db_stats(const struct db *db, struct db_stats *st)
{
	if (!db || !st)
		return;

	*st = db->st;
	st->queued = list_count(&db->queryl) + (db->cur ? 1 : 0);
}
