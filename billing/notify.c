/**
 * @file notify.c  LISTEN tollgate_account on a connection of its own
 *
 * sql/002_billing.sql sends NOTIFY tollgate_account, payload the account
 * id, whenever an account's balance, status, rate plan or call limit is
 * changed by anything but tollgate's own billing functions (a top-up in
 * the database, the REST API).  This connection only listens: the query
 * connection (db.c) stays free for calls, and a notification arrives the
 * moment the changing transaction commits.
 *
 * Non-blocking like db.c: PQconnectStart()/PQconnectPoll() on fd_listen(),
 * PQsendQuery("LISTEN ..."), then PQconsumeInput()/PQnotifies() whenever
 * the socket is readable.  A lost connection is made again after a
 * back-off (100 ms doubling to 5 s); notifications sent meanwhile are
 * lost, so the handler is then called with account 0 ("any account").
 */

#include <stdlib.h>
#include <string.h>
#include <libpq-fe.h>
#include "billing_int.h"


enum {
	NOTIFY_BACKOFF_MIN = 100,
	NOTIFY_BACKOFF_MAX = 5000,
	NOTIFY_CONNECT_TIMEOUT = 10000,
};

struct notify {
	char *conninfo;      /**< owned                         */
	PGconn *conn;        /**< owned                         */
	int fd;
	int fd_flags;
	bool connecting;
	bool ever_up;
	struct tmr tmr;
	uint32_t backoff;
	notify_h *h;
	void *arg;           /**< borrowed                      */
};


static void connect_start(struct notify *nt);
static void fd_handler(int flags, void *arg);


static void conn_close(struct notify *nt)
{
	if (nt->fd >= 0) {
		fd_close(nt->fd);
		nt->fd = -1;
	}
	nt->fd_flags = 0;

	if (nt->conn) {
		PQfinish(nt->conn);
		nt->conn = NULL;
	}

	nt->connecting = false;
}


static void reconnect_handler(void *arg)
{
	connect_start(arg);
}


static void lost(struct notify *nt, const char *why)
{
	char msg[160];
	size_t n;

	n = strcspn(why ? why : "", "\n");
	if (n >= sizeof(msg))
		n = sizeof(msg) - 1;
	memcpy(msg, why ? why : "", n);
	msg[n] = '\0';

	tlog_warn(NULL, "billing: account notifications: %s (again in %u ms)",
		  msg, nt->backoff);

	conn_close(nt);
	tmr_start(&nt->tmr, nt->backoff, reconnect_handler, nt);

	nt->backoff *= 2;
	if (nt->backoff > NOTIFY_BACKOFF_MAX)
		nt->backoff = NOTIFY_BACKOFF_MAX;
}


static int watch(struct notify *nt, int flags)
{
	int fd = nt->conn ? PQsocket(nt->conn) : -1;
	int err;

	if (fd != nt->fd && nt->fd >= 0) {
		fd_close(nt->fd);
		nt->fd = -1;
	}

	if (fd < 0)
		return EBADF;

	if (fd == nt->fd && flags == nt->fd_flags)
		return 0;

	err = fd_listen(fd, flags, fd_handler, nt);
	if (err)
		return err;

	nt->fd = fd;
	nt->fd_flags = flags;

	return 0;
}


static void connect_timeout(void *arg)
{
	lost(arg, "connection timed out");
}


static void up(struct notify *nt)
{
	tmr_cancel(&nt->tmr);
	nt->connecting = false;

	if (PQsetnonblocking(nt->conn, 1) ||
	    !PQsendQuery(nt->conn, "LISTEN tollgate_account") ||
	    PQflush(nt->conn) < 0) {
		lost(nt, PQerrorMessage(nt->conn));
		return;
	}

	if (watch(nt, FD_READ)) {
		lost(nt, "cannot watch the socket");
		return;
	}

	nt->backoff = NOTIFY_BACKOFF_MIN;
	tlog_info(NULL, "billing: listening for account changes");

	/* anything may have changed while we were away */
	if (nt->ever_up)
		nt->h(0, nt->arg);
	nt->ever_up = true;
}


static void poll_connect(struct notify *nt)
{
	switch (PQconnectPoll(nt->conn)) {

	case PGRES_POLLING_READING:
		if (watch(nt, FD_READ))
			lost(nt, "cannot watch the socket");
		break;

	case PGRES_POLLING_WRITING:
		if (watch(nt, FD_WRITE))
			lost(nt, "cannot watch the socket");
		break;

	case PGRES_POLLING_OK:
		up(nt);
		break;

	default:
		lost(nt, PQerrorMessage(nt->conn));
		break;
	}
}


static void fd_handler(int flags, void *arg)
{
	struct notify *nt = arg;
	PGnotify *n;
	PGresult *r;
	(void)flags;

	if (nt->connecting) {
		poll_connect(nt);
		return;
	}

	if (!nt->conn)
		return;

	if (!PQconsumeInput(nt->conn)) {
		lost(nt, PQerrorMessage(nt->conn));
		return;
	}

	/* the LISTEN's own result */
	while (!PQisBusy(nt->conn) && (r = PQgetResult(nt->conn)) != NULL)
		PQclear(r);

	while ((n = PQnotifies(nt->conn)) != NULL) {
		int64_t id = strtoll(n->extra ? n->extra : "", NULL, 10);

		PQfreemem(n);
		if (id > 0)
			nt->h(id, nt->arg);

		/* the handler may not free us, but be safe on the loop */
		if (!nt->conn)
			return;
	}

	if (PQstatus(nt->conn) == CONNECTION_BAD)
		lost(nt, PQerrorMessage(nt->conn));
}


static void connect_start(struct notify *nt)
{
	nt->conn = PQconnectStart(nt->conninfo);
	if (!nt->conn || PQstatus(nt->conn) == CONNECTION_BAD) {
		lost(nt, nt->conn ? PQerrorMessage(nt->conn) :
		     "out of memory");
		return;
	}

	nt->connecting = true;
	tmr_start(&nt->tmr, NOTIFY_CONNECT_TIMEOUT, connect_timeout, nt);

	if (watch(nt, FD_WRITE))
		lost(nt, "cannot watch the socket");
}


static void notify_destructor(void *arg)
{
	struct notify *nt = arg;

	tmr_cancel(&nt->tmr);
	conn_close(nt);
	mem_deref(nt->conninfo);
}


/**
 * Listen for account changes; h(account_id) for each, h(0) after a
 * reconnection.  The first connection is made from the event loop.
 */
int notify_alloc(struct notify **ntp, const char *conninfo, notify_h *h,
		 void *arg)
{
	struct notify *nt;
	int err;

	if (!ntp || !conninfo || !h)
		return EINVAL;

	nt = mem_zalloc(sizeof(*nt), notify_destructor);
	if (!nt)
		return ENOMEM;

	nt->fd = -1;
	nt->h = h;
	nt->arg = arg;
	nt->backoff = NOTIFY_BACKOFF_MIN;
	tmr_init(&nt->tmr);

	err = str_dup(&nt->conninfo, conninfo);
	if (err) {
		mem_deref(nt);
		return err;
	}

	tmr_start(&nt->tmr, 0, reconnect_handler, nt);
	*ntp = nt;

	return 0;
}
