/**
 * @file conn.c  PostgreSQL client: one connection of the pool
 *
 * A connection is made with PQconnectStart()/PQconnectPoll() on
 * fd_listen(), bounded by DB_CONNECT_TIMEOUT; when the connection string
 * names several servers libpq tries them in turn within that attempt
 * (and with target_session_attrs=read-write passes over standbys).
 * Its first command sets the session's statement_timeout.  When it
 * breaks it is made again after a back-off that doubles from
 * DB_BACKOFF_MIN to DB_BACKOFF_FAST during the first DB_BACKOFF_SPAN ms
 * of the loss, to DB_BACKOFF_MAX later; once one connection is back the
 * others try at once.  Its query in flight fails with ECONNRESET, or goes
 * back to the head of the queue if it was marked retry, and every
 * registered statement is prepared on it again before its next query.
 * Queries wait in the queue while no connection is up.  A session that
 * turns out read-only (result.c) is given up the same way.
 */

#include <stdlib.h>
#include <string.h>
#include <libpq-fe.h>
#include <re.h>
#include "core.h"
#include "db.h"
#include "db_int.h"


static void fd_handler(int flags, void *arg);


int db_conn_watch(struct db_conn *c, int flags)
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


void db_conn_close(struct db_conn *c)
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
	c->need_set = false;
	c->setting = false;
	c->cur_prep = NULL;

	for (le = c->db->stmtl.head; le; le = le->next) {
		struct db_stmt *stmt = le->data;

		stmt->prepared &= ~(1u << c->idx);
	}
}


/* ------------------------------------------------------------ connecting */

static void connect_start(struct db_conn *c);


void db_conn_reconnect(void *arg)
{
	struct db_conn *c = arg;
	struct db *db = mem_ref(c->db);

	connect_start(c);
	mem_deref(db);
}


/*
 * The next attempt after the back-off; the delay doubles, up to
 * DB_BACKOFF_FAST for the first DB_BACKOFF_SPAN ms of a loss (a restart
 * of the server takes a second or two: the queries waiting meanwhile
 * must not miss its end by seconds), up to DB_BACKOFF_MAX after that.
 */
static void schedule_reconnect(struct db_conn *c)
{
	uint64_t now = db_now_us();
	uint32_t max = DB_BACKOFF_MAX;

	c->state = DB_DOWN;
	if (!c->lost_us)
		c->lost_us = now;

	tmr_start(&c->tmr, c->backoff, db_conn_reconnect, c);

	if (now - c->lost_us < (uint64_t)DB_BACKOFF_SPAN * 1000)
		max = DB_BACKOFF_FAST;

	c->backoff *= 2;
	if (c->backoff > max)
		c->backoff = max;
}


static void connect_failed(struct db_conn *c, const char *why)
{
	char msg[256];

	db_first_line(msg, sizeof(msg), why);

	tlog_warn(NULL, "db: connection %u: cannot connect: %s (next attempt"
		  " in %u ms)", c->idx, msg, c->backoff);

	db_conn_close(c);
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

	db_first_line(msg, sizeof(msg), message);
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

	if (db_conn_watch(c, FD_READ)) {
		connect_failed(c, "cannot watch the socket");
		return;
	}

	c->state = DB_UP;
	c->backoff = DB_BACKOFF_MIN;
	c->lost_us = 0;
	c->need_set = db->stmt_timeout > 0;
	if (!db->nup++)
		db->up_us = db_now_us();

	if (c->ever_up)
		++db->st.reconnects;
	c->ever_up = true;

	tlog_info(NULL, "db: connection %u of %u up (server %d, backend"
		  " pid %d)", c->idx, db->nconn, PQserverVersion(c->conn),
		  PQbackendPID(c->conn));

	/* the database is reachable again: the first connection says so,
	   and the others waiting for their back-off try at once */
	if (db->nup == 1) {
		uint32_t i;

		for (i = 0; i < db->nconn; i++) {
			struct db_conn *o = &db->connv[i];

			if (o != c && o->state == DB_DOWN && o->ever_up)
				tmr_start(&o->tmr, 0, db_conn_reconnect, o);
		}

		if (db->stateh)
			db->stateh(true, db->state_arg);
	}

	if (c->state == DB_UP && !db_released(db))
		db_dispatch(db);
}


static void connect_poll(struct db_conn *c)
{
	int flags;

	/* with several servers, or a host with several addresses, libpq
	   closes the socket of one it gives up on and opens another, which
	   often gets the same number: closing took it out of the loop's
	   epoll set, so every step registers the socket again */
	c->fd_flags = 0;

	if (db_connect_step(c->conn, &flags))
		connect_failed(c, PQerrorMessage(c->conn));
	else if (!flags)
		connected(c);
	else if (db_conn_watch(c, flags))
		connect_failed(c, "cannot watch the socket");
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
	if (db_conn_watch(c, FD_WRITE))
		connect_failed(c, "cannot watch the socket");
}


/* ------------------------------------------------------------ the socket */

static void flush(struct db_conn *c)
{
	int r = PQflush(c->conn);

	if (r < 0) {
		db_conn_lost(c, PQerrorMessage(c->conn));
		return;
	}

	c->flushing = (r == 1);

	if (db_conn_watch(c, c->flushing ? FD_READ | FD_WRITE : FD_READ))
		db_conn_lost(c, "cannot watch the socket");
}


void db_conn_deferred_loss(void *arg)
{
	struct db_conn *c = arg;
	struct db *db = mem_ref(c->db);

	c->failing = false;

	if (c->state == DB_UP)
		db_conn_lost(c, PQerrorMessage(c->conn));

	mem_deref(db);
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
			db_conn_lost(c, PQerrorMessage(c->conn));
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

	db_conn_read(c);

	if (c->state == DB_UP && PQstatus(c->conn) == CONNECTION_BAD)
		db_conn_lost(c, PQerrorMessage(c->conn));

 out:
	mem_deref(db);
}


void db_conn_lost(struct db_conn *c, const char *why)
{
	struct db *db = c->db;
	struct db_query *q = c->cur;
	bool was_up = (c->state == DB_UP);
	struct list bl;
	struct le *le;
	char msg[256];

	db_first_line(msg, sizeof(msg), why);
	db_batch_take(c, &bl);
	tlog_warn(NULL, "db: connection %u lost: %s (reconnect in %u ms,"
		  " %u queued, %u of %u up)", c->idx, msg, c->backoff,
		  list_count(&db->queryl) + (q ? 1 : 0) + list_count(&bl),
		  db->nup - (was_up ? 1 : 0), db->nconn);

	c->cur = NULL;
	c->failing = false;
	tmr_cancel(&c->tmr);

	db_conn_close(c);
	schedule_reconnect(c);

	if (was_up && !--db->nup)
		db->down_us = db_now_us();

	if (q) {
		q->conn = NULL;
		if (q->retry)
			list_prepend(&db->queryl, &q->le, q);
		else
			db_query_finish(q, ECONNRESET, NULL);
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
		if (db_released(db))
			db_query_drop(le->data);
		else
			db_query_finish(le->data, ECONNRESET, NULL);
	}

	if (db_released(db))
		return;

	/* the last connection went: the database is out of reach */
	if (was_up && !db->nup && db->stateh) {
		db->stateh(false, db->state_arg);
		if (db_released(db))
			return;
	}

	/* what it carried or held back goes to the others */
	db_dispatch(db);
}
