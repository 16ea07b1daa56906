/**
 * @file listen.c  LISTEN on a channel, on a connection of its own
 *
 * This connection only listens: the pool of the query client stays free
 * for queries, and a notification arrives the moment the transaction
 * that sent it commits.
 *
 * Non-blocking like the client: PQconnectStart()/PQconnectPoll() on
 * fd_listen(), PQsendQuery("LISTEN ..."), then PQconsumeInput() and
 * PQnotifies() whenever the socket is readable.  A lost connection is
 * made again after a back-off that doubles from DB_BACKOFF_MIN, to
 * DB_BACKOFF_FAST during the first DB_BACKOFF_SPAN ms of the loss (as the
 * pool's: a restart or a failover to a standby ends within seconds), to
 * DB_BACKOFF_MAX later; with several servers and
 * target_session_attrs=read-write it lands on the primary of the moment
 * (LISTEN is refused on a standby).  Notifications sent meanwhile are
 * lost, so the handler hears again that the LISTEN has taken effect
 * (payload NULL) and catches up on its own.
 */

#include <stdlib.h>
#include <string.h>
#include <libpq-fe.h>
#include <re.h>
#include "core.h"
#include "db.h"
#include "db_int.h"


struct db_listen {
	char *conninfo;      /**< owned                                  */
	char *channel;       /**< owned                                  */
	PGconn *conn;        /**< owned; NULL while down                 */
	int fd;              /**< registered with fd_listen(), or -1     */
	int fd_flags;
	bool connecting;     /**< PQconnectPoll() in progress            */
	bool pending;        /**< LISTEN sent, its result not yet read   */
	bool flushing;       /**< PQflush() returned 1: watch writable   */
	struct tmr tmr;      /**< reconnect back-off, connect timeout    */
	uint32_t backoff;    /**< ms, next reconnect delay               */
	uint64_t lost_us;    /**< when it went down, 0 while listening   */
	db_notify_h *h;
	void *arg;           /**< borrowed                               */
};


static void connect_start(struct db_listen *l);
static void fd_handler(int flags, void *arg);


/* the owner freed l from its handler: touch nothing more */
static bool gone(const struct db_listen *l)
{
	return mem_nrefs(l) <= 1;
}


static void conn_close(struct db_listen *l)
{
	if (l->fd >= 0) {
		fd_close(l->fd);
		l->fd = -1;
	}
	l->fd_flags = 0;

	if (l->conn) {
		PQfinish(l->conn);
		l->conn = NULL;
	}

	l->connecting = false;
	l->pending = false;
	l->flushing = false;
}


static void reconnect_handler(void *arg)
{
	connect_start(arg);
}


static void lost(struct db_listen *l, const char *why)
{
	uint32_t max = DB_BACKOFF_MAX;
	uint64_t now;
	char msg[160];

	db_first_line(msg, sizeof(msg), why);
	tlog_warn(NULL, "db: LISTEN %s: %s (again in %u ms)", l->channel,
		  msg, l->backoff);

	conn_close(l);
	tmr_start(&l->tmr, l->backoff, reconnect_handler, l);

	now = db_now_us();
	if (!l->lost_us)
		l->lost_us = now;
	if (now - l->lost_us < (uint64_t)DB_BACKOFF_SPAN * 1000)
		max = DB_BACKOFF_FAST;

	l->backoff *= 2;
	if (l->backoff > max)
		l->backoff = max;
}


static int watch(struct db_listen *l, int flags)
{
	int fd = l->conn ? PQsocket(l->conn) : -1;
	int err;

	if (fd != l->fd && l->fd >= 0) {
		fd_close(l->fd);
		l->fd = -1;
	}

	if (fd < 0)
		return EBADF;

	if (fd == l->fd && flags == l->fd_flags)
		return 0;

	err = fd_listen(fd, flags, fd_handler, l);
	if (err)
		return err;

	l->fd = fd;
	l->fd_flags = flags;

	return 0;
}


static void flush(struct db_listen *l)
{
	int r = PQflush(l->conn);

	if (r < 0) {
		lost(l, PQerrorMessage(l->conn));
		return;
	}

	l->flushing = (r == 1);
	if (watch(l, l->flushing ? FD_READ | FD_WRITE : FD_READ))
		lost(l, "cannot watch the socket");
}


static void connect_timeout(void *arg)
{
	lost(arg, "connection timed out");
}


static void notice_handler(void *arg, const char *message)
{
	char msg[256];
	(void)arg;

	db_first_line(msg, sizeof(msg), message);
	tlog_info(NULL, "db: %s", msg);
}


static void connected(struct db_listen *l)
{
	char sql[2 * DB_NAME_MAX + 16];   /* LISTEN and a quoted name */
	char *id;

	tmr_cancel(&l->tmr);
	l->connecting = false;

	if (PQsetnonblocking(l->conn, 1)) {
		lost(l, PQerrorMessage(l->conn));
		return;
	}

	PQsetNoticeProcessor(l->conn, notice_handler, l);

	id = PQescapeIdentifier(l->conn, l->channel, strlen(l->channel));
	if (!id) {
		lost(l, PQerrorMessage(l->conn));
		return;
	}

	(void)re_snprintf(sql, sizeof(sql), "LISTEN %s", id);
	PQfreemem(id);

	if (!PQsendQuery(l->conn, sql)) {
		lost(l, PQerrorMessage(l->conn));
		return;
	}

	l->pending = true;
	flush(l);
}


static void poll_connect(struct db_listen *l)
{
	int flags;

	/* libpq may have moved to another server's socket under the same
	   number: register it again (see conn.c) */
	l->fd_flags = 0;

	if (db_connect_step(l->conn, &flags))
		lost(l, PQerrorMessage(l->conn));
	else if (!flags)
		connected(l);
	else if (watch(l, flags))
		lost(l, "cannot watch the socket");
}


/* the LISTEN's own result: once in, the handler hears of it */
static void read_results(struct db_listen *l)
{
	PGresult *r;

	while (l->conn && !PQisBusy(l->conn) &&
	       (r = PQgetResult(l->conn)) != NULL) {

		bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
		char msg[160];

		db_first_line(msg, sizeof(msg), PQresultErrorMessage(r));
		PQclear(r);

		if (!l->pending)
			continue;

		if (!ok) {
			lost(l, msg);
			return;
		}

		l->pending = false;
		l->backoff = DB_BACKOFF_MIN;
		l->lost_us = 0;
		tlog_info(NULL, "db: listening on %s", l->channel);

		l->h(NULL, l->arg);
		if (gone(l))
			return;
	}
}


static void fd_handler(int flags, void *arg)
{
	struct db_listen *l = mem_ref(arg);
	PGnotify *n;

	if (l->connecting) {
		poll_connect(l);
		goto out;
	}

	if (!l->conn)
		goto out;

	if ((flags & (FD_READ | FD_EXCEPT)) && !PQconsumeInput(l->conn)) {
		lost(l, PQerrorMessage(l->conn));
		goto out;
	}

	if (l->flushing) {
		flush(l);
		if (!l->conn)
			goto out;
	}

	read_results(l);
	if (gone(l) || !l->conn)
		goto out;

	while ((n = PQnotifies(l->conn)) != NULL) {

		l->h(n->extra ? n->extra : "", l->arg);
		PQfreemem(n);

		if (gone(l) || !l->conn)
			goto out;
	}

	if (PQstatus(l->conn) == CONNECTION_BAD)
		lost(l, PQerrorMessage(l->conn));

 out:
	mem_deref(l);
}


static void connect_start(struct db_listen *l)
{
	l->conn = PQconnectStart(l->conninfo);
	if (!l->conn || PQstatus(l->conn) == CONNECTION_BAD) {
		lost(l, l->conn ? PQerrorMessage(l->conn) : "out of memory");
		return;
	}

	l->connecting = true;
	tmr_start(&l->tmr, DB_CONNECT_TIMEOUT, connect_timeout, l);

	/* as if PQconnectPoll() had returned PGRES_POLLING_WRITING */
	if (watch(l, FD_WRITE))
		lost(l, "cannot watch the socket");
}


static void listen_destructor(void *arg)
{
	struct db_listen *l = arg;

	tmr_cancel(&l->tmr);
	conn_close(l);
	mem_deref(l->channel);
	mem_deref(l->conninfo);
}


/**
 * LISTEN on a channel, on a connection of its own.  The connection is
 * made from the event loop and made again whenever it is lost.
 *
 * The handler runs from the event loop with the payload of each
 * notification, and with NULL each time the LISTEN has taken effect: once
 * after the first connection, and again after every reconnection, since
 * what was notified while the connection was down is lost.  It may free
 * the listener.
 *
 * @param lp        where to store the listener
 * @param conninfo  libpq connection string (host=/path or hostaddr=: a
 *                  host name would be resolved blocking)
 * @param channel   channel name, as NOTIFY gives it (1..63 bytes)
 * @param h         notification handler
 * @param arg       handler argument
 *
 * @return 0 if success, EINVAL
 */
int db_listen_alloc(struct db_listen **lp, const char *conninfo,
		    const char *channel, db_notify_h *h, void *arg)
{
	struct db_listen *l;
	int err;

	if (!lp || !conninfo || !channel || !*channel ||
	    strlen(channel) > DB_NAME_MAX || !h)
		return EINVAL;

	l = mem_zalloc(sizeof(*l), listen_destructor);
	if (!l)
		return ENOMEM;

	l->fd = -1;
	l->h = h;
	l->arg = arg;
	l->backoff = DB_BACKOFF_MIN;
	tmr_init(&l->tmr);

	err  = str_dup(&l->conninfo, conninfo);
	err |= str_dup(&l->channel, channel);
	if (err) {
		mem_deref(l);
		return ENOMEM;
	}

	tmr_start(&l->tmr, 0, reconnect_handler, l);
	*lp = l;

	return 0;
}
