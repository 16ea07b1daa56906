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
 * The head of the queue goes to a connection that is up and idle (the
 * fewest commands: none), the search starting after the connection used
 * last so that light load turns over all of them.  A connection that is
 * not idle takes nothing: a query never waits behind a slow one while
 * another connection is free.  With one connection this is the FIFO
 * client it always was.
 *
 * When a connection breaks it is made again after a back-off that doubles
 * from DB_BACKOFF_MIN to DB_BACKOFF_MAX; its query in flight fails with
 * ECONNRESET, or goes back to the head of the queue if it was marked retry,
 * and every registered statement is prepared on it again before its next
 * query.  Queries wait in the queue while no connection is up.
 *
 * Order (see db.h): a command whose outcome nobody waits for any more
 * (no handler, detached or past its deadline while on the server) raises a
 * fence on its connection: queries queued after that moment are handed
 * out only once it has ended.
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

enum {
	DB_BACKOFF_MIN     = 100,    /* ms, first reconnect delay      */
	DB_BACKOFF_MAX     = 5000,   /* ms, longest reconnect delay    */
	DB_CONNECT_TIMEOUT = 10000,  /* ms, one connection attempt     */
	DB_NAME_MAX        = 63,     /* NAMEDATALEN - 1                */
	DB_BATCH_MAX       = 64,     /* most queries in one batch      */
	DB_BATCH_PARAMS    = 32,     /* most parameters of a batch form */
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
	uint32_t prepared;      /* bit i: prepared on connection i        */
	struct db_stmt *batch;  /* borrowed; its batch form, or NULL      */
	uint32_t batch_max;     /* most queries in one batch              */
};

struct db_conn;

struct db_query {
	struct le le;           /* in db->queryl while waiting            */
	struct db *db;          /* borrowed; NULL once finished/dropped   */
	struct db_conn *conn;   /* borrowed; the connection while in flight */
	struct db_query **qp;   /* borrowed; caller's handle or NULL      */
	const struct db_stmt *stmt; /* borrowed from db->stmtl            */
	char **values;          /* owned; nparams strings, NULL = SQL NULL */
	int nparams;
	struct tmr tmr;         /* deadline                               */
	uint32_t timeout_ms;
	bool retry;             /* re-send after a loss if in flight      */
	db_result_h *h;
	void *arg;              /* borrowed, or owned if own_arg          */
	bool own_arg;
	uint64_t t_start;       /* us, when db_exec() queued it           */
	uint64_t seq;           /* db_exec() order, from 1                */
	uint32_t bidx;          /* its place in the batch in flight       */
	bool inbatch;           /* in conn->bq: part of a batch in flight */
	bool single;            /* its batch failed: goes alone now       */
};

/* one connection of the pool */
struct db_conn {
	struct db *db;          /* borrowed; the pool that holds it       */
	uint32_t idx;           /* in db->connv                           */
	PGconn *conn;           /* owned; NULL while down                 */
	int fd;                 /* registered with fd_listen(), or -1     */
	int fd_flags;
	enum db_state state;
	bool busy;              /* a command is in flight on conn         */
	bool flushing;          /* PQflush() returned 1: watch writable   */
	bool ever_up;
	bool failing;           /* connection loss is being reported      */
	bool fenced;            /* the command in flight goes first       */
	uint64_t fence_seq;     /* queries after this one wait for it     */
	struct db_query *cur;   /* borrowed; query in flight, NULL if none
				   or if its owner went away (the result
				   is then discarded)                     */
	struct list bq;         /* the queries of the batch in flight,
				   by their place in it; one that went
				   away has left it                       */
	uint32_t bn;            /* queries the batch in flight was sent
				   with, 0 if no batch is in flight       */
	struct db_stmt *cur_prep; /* borrowed; statement being prepared   */
	PGresult *res;          /* owned; result of the command in flight */
	struct tmr tmr;         /* reconnect back-off, connect timeout,
				   deferred failure                       */
	uint32_t backoff;       /* ms, next reconnect delay               */
};

struct db {
	char *conninfo;         /* owned                                  */
	struct db_conn *connv;  /* owned; nconn connections               */
	uint32_t nconn;
	uint32_t nup;           /* connections up                         */
	uint32_t next;          /* where the search for an idle one starts */
	uint64_t seq;           /* of the last query queued               */
	struct list stmtl;      /* struct db_stmt                         */
	struct list queryl;     /* struct db_query, FIFO, not yet sent    */
	db_state_h *stateh;
	void *state_arg;        /* borrowed                               */
	struct db_stats st;
};


static void dispatch(struct db *db);
static void conn_lost(struct db_conn *c, const char *why);


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
static void query_finish(struct db_query *q, int err, const PGresult *res)
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
static void query_drop(struct db_query *q)
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

	query_finish(q, ETIMEDOUT, NULL);

	/* a fence may have been raised, or nothing changed */
	mem_deref(db);
}


/* ---------------------------------------------------------------- socket */

static void fd_handler(int flags, void *arg);


static int watch(struct db_conn *c, int flags)
{
	int fd = c->conn ? PQsocket(c->conn) : -1;
	int err;

	if (fd != c->fd && c->fd >= 0) {
		fd_close(c->fd);
		c->fd = -1;
	}

	if (fd < 0)
		return EBADF;

	if (fd == c->fd && flags == c->fd_flags)
		return 0;

	err = fd_listen(fd, flags, fd_handler, c);
	if (err) {
		tlog_err(NULL, "db: fd_listen(%d): %s", fd, strerror(err));
		return err;
	}

	c->fd = fd;
	c->fd_flags = flags;

	return 0;
}


static void conn_close(struct db_conn *c)
{
	struct le *le;

	/* the fd leaves the loop before libpq closes it */
	if (c->fd >= 0) {
		fd_close(c->fd);
		c->fd = -1;
	}

	c->fd_flags = 0;

	if (c->res) {
		PQclear(c->res);
		c->res = NULL;
	}

	if (c->conn) {
		PQfinish(c->conn);
		c->conn = NULL;
	}

	c->busy = false;
	c->flushing = false;
	c->fenced = false;
	c->cur_prep = NULL;

	for (le = c->db->stmtl.head; le; le = le->next) {
		struct db_stmt *stmt = le->data;

		stmt->prepared &= ~(1u << c->idx);
	}
}


/* ------------------------------------------------------------ connecting */

static void connect_start(struct db_conn *c);


static void reconnect_handler(void *arg)
{
	struct db_conn *c = arg;
	struct db *db = mem_ref(c->db);

	connect_start(c);
	mem_deref(db);
}


static void schedule_reconnect(struct db_conn *c)
{
	c->state = DB_DOWN;

	tmr_start(&c->tmr, c->backoff, reconnect_handler, c);

	c->backoff *= 2;
	if (c->backoff > DB_BACKOFF_MAX)
		c->backoff = DB_BACKOFF_MAX;
}


static void connect_failed(struct db_conn *c, const char *why)
{
	char msg[256];

	first_line(msg, sizeof(msg), why);

	tlog_warn(NULL, "db: connection %u: cannot connect: %s (next attempt"
		  " in %u ms)", c->idx, msg, c->backoff);

	conn_close(c);
	schedule_reconnect(c);
}


static void connect_timeout(void *arg)
{
	struct db_conn *c = arg;
	struct db *db = mem_ref(c->db);

	connect_failed(c, "timed out");
	mem_deref(db);
}


static void notice_handler(void *arg, const char *message)
{
	char msg[256];
	(void)arg;

	first_line(msg, sizeof(msg), message);
	tlog_info(NULL, "db: %s", msg);
}


static void connected(struct db_conn *c)
{
	struct db *db = c->db;

	tmr_cancel(&c->tmr);

	if (PQsetnonblocking(c->conn, 1) != 0) {
		connect_failed(c, PQerrorMessage(c->conn));
		return;
	}

	PQsetNoticeProcessor(c->conn, notice_handler, c);

	if (watch(c, FD_READ)) {
		connect_failed(c, "cannot watch the socket");
		return;
	}

	c->state = DB_UP;
	c->backoff = DB_BACKOFF_MIN;
	++db->nup;

	if (c->ever_up)
		++db->st.reconnects;
	c->ever_up = true;

	tlog_info(NULL, "db: connection %u of %u up (server %d, backend"
		  " pid %d)", c->idx, db->nconn, PQserverVersion(c->conn),
		  PQbackendPID(c->conn));

	/* the database is reachable again: the first connection says so */
	if (db->nup == 1 && db->stateh)
		db->stateh(true, db->state_arg);

	if (c->state == DB_UP && !released(db))
		dispatch(db);
}


static void connect_poll(struct db_conn *c)
{
	switch (PQconnectPoll(c->conn)) {

	case PGRES_POLLING_READING:
		if (watch(c, FD_READ))
			connect_failed(c, "cannot watch the socket");
		break;

	case PGRES_POLLING_WRITING:
		if (watch(c, FD_WRITE))
			connect_failed(c, "cannot watch the socket");
		break;

	case PGRES_POLLING_OK:
		connected(c);
		break;

	case PGRES_POLLING_FAILED:
	default:
		connect_failed(c, PQerrorMessage(c->conn));
		break;
	}
}


static void connect_start(struct db_conn *c)
{
	c->conn = PQconnectStart(c->db->conninfo);
	if (!c->conn) {
		connect_failed(c, "out of memory");
		return;
	}

	if (PQstatus(c->conn) == CONNECTION_BAD) {
		connect_failed(c, PQerrorMessage(c->conn));
		return;
	}

	c->state = DB_CONNECTING;
	tmr_start(&c->tmr, DB_CONNECT_TIMEOUT, connect_timeout, c);

	/* as if PQconnectPoll() had returned PGRES_POLLING_WRITING */
	if (watch(c, FD_WRITE))
		connect_failed(c, "cannot watch the socket");
}


/* ------------------------------------------------------------- commands */

static void flush(struct db_conn *c)
{
	int r = PQflush(c->conn);

	if (r < 0) {
		conn_lost(c, PQerrorMessage(c->conn));
		return;
	}

	c->flushing = (r == 1);

	if (watch(c, c->flushing ? FD_READ | FD_WRITE : FD_READ))
		conn_lost(c, "cannot watch the socket");
}


static void deferred_loss(void *arg)
{
	struct db_conn *c = arg;
	struct db *db = mem_ref(c->db);

	c->failing = false;

	if (c->state == DB_UP)
		conn_lost(c, PQerrorMessage(c->conn));

	mem_deref(db);
}


/* true if no fence holds q back: it was queued before every fence */
static bool may_send(const struct db *db, const struct db_query *q)
{
	uint32_t i;

	for (i = 0; i < db->nconn; i++) {
		const struct db_conn *c = &db->connv[i];

		if (c->fenced && q->seq > c->fence_seq)
			return false;
	}

	return true;
}


/* append v to an array literal as one quoted element (NULL for NULL) */
static int array_elem(struct mbuf *mb, const char *v)
{
	int err = 0;

	if (!v)
		return mbuf_write_str(mb, "NULL");

	err |= mbuf_write_u8(mb, '"');
	for (; *v && !err; v++) {
		if (*v == '"' || *v == '\\')
			err |= mbuf_write_u8(mb, '\\');
		err |= mbuf_write_u8(mb, (uint8_t)*v);
	}
	err |= mbuf_write_u8(mb, '"');

	return err;
}


/*
 * Send q together with the queries of the same statement queued after it
 * (those no fence holds back, at most the statement's batch_max) as one
 * command: the batch form of the statement, its k-th parameter an array
 * of their k-th values.  Its first column numbers the query a row belongs
 * to, from 1; command_done() gives each query its own rows.
 *
 * @return 1 if sent, 0 if q goes alone (nothing to batch it with), -1 if
 *         the connection failed
 */
static int batch_send(struct db_conn *c, struct db_query *q)
{
	struct db *db = c->db;
	const struct db_stmt *stmt = q->stmt;
	struct db_query *mv[DB_BATCH_MAX];
	struct mbuf *pv[DB_BATCH_PARAMS];
	const char *vv[DB_BATCH_PARAMS];
	uint64_t fence = 0;
	uint32_t n = 0, i;
	struct le *le;
	int k, ok = 0, err = 0;

	for (le = &q->le; le && n < stmt->batch_max; le = le->next) {
		struct db_query *p = le->data;

		if (p->stmt == stmt && !p->single && may_send(db, p))
			mv[n++] = p;
	}

	if (n < 2)
		return 0;

	/* more parameters than a batch form may have are refused by
	   db_prepare_batch() */
	memset(pv, 0, sizeof(pv));
	for (k = 0; k < stmt->nparams && !err; k++) {
		pv[k] = mbuf_alloc(64 * n);
		if (!pv[k]) {
			err = ENOMEM;
			break;
		}

		err |= mbuf_write_u8(pv[k], '{');
		for (i = 0; i < n && !err; i++) {
			if (i)
				err |= mbuf_write_u8(pv[k], ',');
			err |= array_elem(pv[k], mv[i]->values[k]);
		}
		err |= mbuf_write_u8(pv[k], '}');
		err |= mbuf_write_u8(pv[k], 0);
		vv[k] = (const char *)pv[k]->buf;
	}

	if (!err)
		ok = PQsendQueryPrepared(c->conn, stmt->batch->name,
					 stmt->nparams, vv, NULL, NULL, 0);

	for (k = 0; k < stmt->nparams; k++)
		mem_deref(pv[k]);

	if (err) {
		/* out of memory: they go one by one */
		tlog_warn(NULL, "db: cannot build a batch of %s: %s",
			  stmt->name, strerror(err));
		return 0;
	}

	if (!ok)
		return -1;

	for (i = 0; i < n; i++) {
		struct db_query *p = mv[i];

		list_unlink(&p->le);
		list_append(&c->bq, &p->le, p);
		p->conn = c;
		p->inbatch = true;
		p->bidx = i;

		if (!p->h && p->seq > fence)
			fence = p->seq;
	}

	c->busy = true;
	c->bn = n;
	++db->st.batches;
	db->st.batched += n;

	/* nobody waits for some of them: what follows waits for them */
	if (fence) {
		c->fenced = true;
		c->fence_seq = fence;
	}

	return 1;
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
	if (!may_send(db, q))
		return false;

	if (q->stmt->batch && !q->single) {
		switch (batch_send(c, q)) {

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
	if (watch(c, c->flushing ? FD_READ | FD_WRITE : FD_READ))
		goto fail;

	return true;

 fail:
	c->failing = true;
	tmr_start(&c->tmr, 0, deferred_loss, c);

	return false;
}


/* Hand out work to every idle connection, starting after the last used */
static void dispatch(struct db *db)
{
	uint32_t k;

	for (k = 0; k < db->nconn; k++) {
		uint32_t i = (db->next + k) % db->nconn;

		if (conn_dispatch(&db->connv[i]))
			db->next = (i + 1) % db->nconn;
	}
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


/* take the queries of c's batch out of it, into l (same order) */
static void batch_take(struct db_conn *c, struct list *l)
{
	struct le *le;

	list_init(l);
	c->bn = 0;

	while ((le = c->bq.head)) {
		struct db_query *q = le->data;

		list_unlink(le);
		list_append(l, le, q);
		q->conn = NULL;
		q->inbatch = false;
	}
}


/* the queries of a failed batch go again, one by one, first in line */
static void batch_requeue(struct db *db, struct list *l)
{
	struct le *le;

	while ((le = list_tail(l))) {
		struct db_query *q = le->data;

		list_unlink(le);
		q->single = true;
		list_prepend(&db->queryl, le, q);
	}
}


/*
 * Split a batch's result into one result per query: the same columns but
 * the first (the query's number, from 1), and the rows that carry its
 * number.  res is PGRES_TUPLES_OK.
 *
 * @return 0, or ENOMEM/EPROTO (then nothing is left in subv)
 */
static int batch_split(PGconn *conn, const PGresult *res, PGresult **subv,
		       uint32_t n)
{
	PGresAttDesc attv[64];
	int nf = PQnfields(res) - 1, ntup = PQntuples(res), r, k;
	uint32_t i;
	int err = 0;

	if (nf < 0 || nf > (int)ARRAY_SIZE(attv))
		return EPROTO;

	for (k = 0; k < nf; k++) {
		attv[k].name      = PQfname(res, k + 1);
		attv[k].tableid   = PQftable(res, k + 1);
		attv[k].columnid  = PQftablecol(res, k + 1);
		attv[k].format    = PQfformat(res, k + 1);
		attv[k].typid     = PQftype(res, k + 1);
		attv[k].typlen    = PQfsize(res, k + 1);
		attv[k].atttypmod = PQfmod(res, k + 1);
	}

	for (i = 0; i < n && !err; i++) {
		subv[i] = PQmakeEmptyPGresult(conn, PGRES_TUPLES_OK);
		if (!subv[i] || !PQsetResultAttrs(subv[i], nf, attv))
			err = ENOMEM;
	}

	for (r = 0; r < ntup && !err; r++) {
		const char *v = PQgetvalue(res, r, 0);
		char *end;
		unsigned long ord;
		PGresult *sub;
		int t;

		ord = strtoul(v, &end, 10);
		if (end == v || *end || ord < 1 || ord > n) {
			tlog_err(NULL, "db: batch row %d names query '%s'"
				 " of %u", r, v, n);
			err = EPROTO;
			break;
		}

		sub = subv[ord - 1];
		t = PQntuples(sub);

		for (k = 0; k < nf && !err; k++) {
			bool null = PQgetisnull(res, r, k + 1);

			if (!PQsetvalue(sub, t, k,
					null ? NULL : PQgetvalue(res, r, k + 1),
					null ? -1 : PQgetlength(res, r, k + 1)))
				err = ENOMEM;
		}
	}

	if (err) {
		for (i = 0; i < n; i++) {
			PQclear(subv[i]);
			subv[i] = NULL;
		}
	}

	return err;
}


/* A batch ended: each query gets its rows, or all go again one by one */
static void batch_done(struct db_conn *c, PGresult *res, const char *msg)
{
	struct db *db = c->db;
	uint32_t n = c->bn;
	PGresult *subv[DB_BATCH_MAX];
	const char *name = "?";
	struct list l;
	struct le *le;
	int err = EPROTO;

	memset(subv, 0, sizeof(subv));
	batch_take(c, &l);

	if (l.head)
		name = ((struct db_query *)l.head->data)->stmt->name;

	if (PQresultStatus(res) == PGRES_TUPLES_OK)
		err = batch_split(c->conn, res, subv, n);

	if (err) {
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

		tlog_warn(NULL, "db: a batch of %u %s failed: %s [%s]: they"
			  " go one by one", n, name,
			  err == EPROTO ? msg : strerror(err),
			  state ? state : "-");
		batch_requeue(db, &l);
		return;
	}

	/* a handler may queue (and send on c), detach a query of l, or
	   free the db */
	while ((le = l.head)) {
		struct db_query *q = le->data;
		uint64_t lat = now_us() - q->t_start;

		if (released(db)) {
			query_drop(q);
			continue;
		}

		++db->st.queries;
		db->st.lat_us_sum += lat;
		if (lat > db->st.lat_us_max)
			db->st.lat_us_max = lat;

		query_finish(q, 0, subv[q->bidx]);
	}

	for (n = 0; n < DB_BATCH_MAX; n++)
		PQclear(subv[n]);
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

		/* conn_lost() fails or re-queues c->cur */
		first_line(msg, sizeof(msg), res ? PQresultErrorMessage(res)
			   : PQerrorMessage(c->conn));
		PQclear(res);
		conn_lost(c, msg);
		return;
	}

	status = PQresultStatus(res);
	first_line(msg, sizeof(msg), PQresultErrorMessage(res));

	if (c->bn) {
		batch_done(c, res, msg);
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
		uint64_t lat = now_us() - q->t_start;
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
			err = EPROTO;
		}

		query_finish(q, err, res);
	}

	PQclear(res);

	if (!released(db))
		dispatch(db);
}


static void read_results(struct db_conn *c)
{
	while (c->state == DB_UP && c->busy && !released(c->db) &&
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
			conn_lost(c, "COPY is not supported");
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


static void fd_handler(int flags, void *arg)
{
	struct db_conn *c = arg;
	struct db *db = mem_ref(c->db);
	PGnotify *n;

	if (c->state == DB_CONNECTING) {
		connect_poll(c);
		goto out;
	}

	if (c->state != DB_UP)
		goto out;

	if (flags & (FD_READ | FD_EXCEPT)) {

		if (!PQconsumeInput(c->conn)) {
			conn_lost(c, PQerrorMessage(c->conn));
			goto out;
		}

		while ((n = PQnotifies(c->conn)) != NULL)
			PQfreemem(n);
	}

	if (c->flushing) {
		flush(c);
		if (c->state != DB_UP)
			goto out;
	}

	read_results(c);

	if (c->state == DB_UP && PQstatus(c->conn) == CONNECTION_BAD)
		conn_lost(c, PQerrorMessage(c->conn));

 out:
	mem_deref(db);
}


static void conn_lost(struct db_conn *c, const char *why)
{
	struct db *db = c->db;
	struct db_query *q = c->cur;
	bool was_up = (c->state == DB_UP);
	struct list bl;
	struct le *le;
	char msg[256];

	first_line(msg, sizeof(msg), why);
	batch_take(c, &bl);
	tlog_warn(NULL, "db: connection %u lost: %s (reconnect in %u ms,"
		  " %u queued, %u of %u up)", c->idx, msg, c->backoff,
		  list_count(&db->queryl) + (q ? 1 : 0) + list_count(&bl),
		  db->nup - (was_up ? 1 : 0), db->nconn);

	c->cur = NULL;
	c->failing = false;
	tmr_cancel(&c->tmr);

	conn_close(c);
	schedule_reconnect(c);

	if (was_up)
		--db->nup;

	if (q) {
		q->conn = NULL;
		if (q->retry)
			list_prepend(&db->queryl, &q->le, q);
		else
			query_finish(q, ECONNRESET, NULL);
	}

	/* a batch's queries: again, in their order, or failed */
	for (le = list_tail(&bl); le; ) {
		struct db_query *p = le->data;

		le = le->prev;
		if (p->retry) {
			list_unlink(&p->le);
			list_prepend(&db->queryl, &p->le, p);
		}
	}
	while ((le = bl.head)) {
		if (released(db))
			query_drop(le->data);
		else
			query_finish(le->data, ECONNRESET, NULL);
	}

	if (released(db))
		return;

	/* the last connection went: the database is out of reach */
	if (was_up && !db->nup && db->stateh) {
		db->stateh(false, db->state_arg);
		if (released(db))
			return;
	}

	/* what it carried or held back goes to the others */
	dispatch(db);
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
			query_drop(c->cur);
		while (c->bq.head)
			query_drop(c->bq.head->data);
		c->bn = 0;
	}

	while ((le = db->queryl.head) != NULL)
		query_drop(le->data);

	for (i = 0; i < db->nconn; i++)
		conn_close(&db->connv[i]);

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
 * a socket directory (host=/path) or a numeric hostaddr=.
 *
 * @param dbp       where to store the client
 * @param conninfo  libpq connection string
 * @param nconn     connections, 1..DB_CONNECTIONS_MAX
 *
 * @return 0 if success, EINVAL for a connection string libpq cannot parse
 *         or a number of connections out of range
 */
int db_alloc(struct db **dbp, const char *conninfo, uint32_t nconn)
{
	PQconninfoOption *opts;
	struct db *db;
	char *errmsg = NULL;
	uint32_t i;
	int err;

	if (!dbp || !conninfo)
		return EINVAL;

	if (nconn < 1 || nconn > DB_CONNECTIONS_MAX) {
		tlog_err(NULL, "db: %u connections: out of range 1..%u",
			 nconn, DB_CONNECTIONS_MAX);
		return EINVAL;
	}

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

	list_init(&db->stmtl);
	list_init(&db->queryl);

	db->connv = mem_zalloc(nconn * sizeof(*db->connv), NULL);
	if (!db->connv) {
		err = ENOMEM;
		goto out;
	}

	db->nconn = nconn;

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
		tmr_start(&db->connv[i].tmr, 0, reconnect_handler,
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

	stmt = stmt_find(db, name);
	if (!stmt)
		return ENOENT;

	if (stmt->nparams > DB_BATCH_PARAMS)
		return EINVAL;

	err = db_prepare(db, batch_name, batch_sql, stmt->nparams);
	if (err)
		return err;

	bstmt = stmt_find(db, batch_name);
	if (!bstmt || bstmt == stmt)
		return EINVAL;

	stmt->batch = bstmt;
	stmt->batch_max = max;

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
	q->seq = ++db->seq;
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


/** True while at least one connection is up */
bool db_is_up(const struct db *db)
{
	return db && db->nup > 0;
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
}
