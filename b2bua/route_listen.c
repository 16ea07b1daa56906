/**
 * @file route_listen.c  LISTEN tollgate_routes on a connection of its own
 *
 * sql/006's triggers send NOTIFY tollgate_routes after every statement
 * that changes the gateways or routes tables, whoever runs it: the REST
 * API, another node, an operator in psql.  This connection only listens
 * and calls the handler once per batch of notifications read; the
 * routing table is then loaded again (route_store.c).
 *
 * It never blocks the loop: PQconnectStart()/PQconnectPoll() driven by
 * fd_listen(), PQsendQuery("LISTEN ..."), then PQconsumeInput() and
 * PQnotifies() when the socket is readable.  A lost connection is made
 * again after a back-off (200 ms doubling up to 10 s); since changes may
 * have been missed meanwhile, the handler is called once it is back.
 */

#include <string.h>
#include <libpq-fe.h>
#include "b2bua_int.h"


enum {
	LISTEN_BACKOFF_MIN = 200,
	LISTEN_BACKOFF_MAX = 10000,
	LISTEN_CONNECT_TIMEOUT = 10000,
};

struct route_listen {
	char *conninfo;              /**< owned                          */
	PGconn *conn;                /**< owned                          */
	int fd;                      /**< PQsocket() we listen on, or -1 */
	int flags;                   /**< fd_listen() flags in use       */
	bool connecting;
	bool listening;              /**< the LISTEN went through once   */
	struct tmr tmr;              /**< reconnect or connect timeout   */
	uint32_t backoff;
	route_changed_h *h;
	void *arg;                   /**< borrowed                       */
};


static void lsn_connect(struct route_listen *l);
static void lsn_fd_handler(int flags, void *arg);


static void lsn_close(struct route_listen *l)
{
	if (l->fd >= 0)
		fd_close(l->fd);
	l->fd = -1;
	l->flags = 0;

	if (l->conn)
		PQfinish(l->conn);
	l->conn = NULL;
	l->connecting = false;
}


static void reconnect_handler(void *arg)
{
	lsn_connect(arg);
}


static void lsn_lost(struct route_listen *l, const char *why)
{
	size_t n = strcspn(why ? why : "", "\n");

	tlog_warn(NULL, "b2bua: route change notifications: %b (again in "
		  "%u ms)", why ? why : "", n, l->backoff);

	lsn_close(l);
	tmr_start(&l->tmr, l->backoff, reconnect_handler, l);

	l->backoff = min(2 * l->backoff, (uint32_t)LISTEN_BACKOFF_MAX);
}


static int lsn_watch(struct route_listen *l, int flags)
{
	int fd = l->conn ? PQsocket(l->conn) : -1;
	int err;

	if (fd < 0)
		return EBADF;

	if (fd != l->fd && l->fd >= 0) {
		fd_close(l->fd);
		l->fd = -1;
	}

	if (fd == l->fd && flags == l->flags)
		return 0;

	err = fd_listen(fd, flags, lsn_fd_handler, l);
	if (err)
		return err;

	l->fd = fd;
	l->flags = flags;

	return 0;
}


static void connect_timeout(void *arg)
{
	lsn_lost(arg, "connection timed out");
}


static void lsn_up(struct route_listen *l)
{
	bool again = l->listening;

	tmr_cancel(&l->tmr);
	l->connecting = false;

	if (PQsetnonblocking(l->conn, 1) ||
	    !PQsendQuery(l->conn, "LISTEN tollgate_routes") ||
	    PQflush(l->conn) < 0) {
		lsn_lost(l, PQerrorMessage(l->conn));
		return;
	}

	if (lsn_watch(l, FD_READ)) {
		lsn_lost(l, "cannot watch the socket");
		return;
	}

	l->backoff = LISTEN_BACKOFF_MIN;
	l->listening = true;
	tlog_info(NULL, "b2bua: listening for route changes");

	/* something may have changed while the connection was down */
	if (again)
		l->h(l->arg);
}


static void lsn_poll_connect(struct route_listen *l)
{
	switch (PQconnectPoll(l->conn)) {

	case PGRES_POLLING_READING:
		if (lsn_watch(l, FD_READ))
			lsn_lost(l, "cannot watch the socket");
		break;

	case PGRES_POLLING_WRITING:
		if (lsn_watch(l, FD_WRITE))
			lsn_lost(l, "cannot watch the socket");
		break;

	case PGRES_POLLING_OK:
		lsn_up(l);
		break;

	default:
		lsn_lost(l, PQerrorMessage(l->conn));
		break;
	}
}


static void lsn_fd_handler(int flags, void *arg)
{
	struct route_listen *l = arg;
	PGresult *r;
	PGnotify *n;
	bool changed = false;
	(void)flags;

	if (l->connecting) {
		lsn_poll_connect(l);
		return;
	}

	if (!l->conn)
		return;

	if (!PQconsumeInput(l->conn)) {
		lsn_lost(l, PQerrorMessage(l->conn));
		return;
	}

	/* the LISTEN's own result */
	while (!PQisBusy(l->conn) && (r = PQgetResult(l->conn)) != NULL)
		PQclear(r);

	while ((n = PQnotifies(l->conn)) != NULL) {
		PQfreemem(n);
		changed = true;
	}

	if (PQstatus(l->conn) == CONNECTION_BAD) {
		lsn_lost(l, PQerrorMessage(l->conn));
		return;
	}

	if (changed)
		l->h(l->arg);
}


static void lsn_connect(struct route_listen *l)
{
	l->conn = PQconnectStart(l->conninfo);
	if (!l->conn || PQstatus(l->conn) == CONNECTION_BAD) {
		lsn_lost(l, l->conn ? PQerrorMessage(l->conn) :
			 "out of memory");
		return;
	}

	l->connecting = true;
	tmr_start(&l->tmr, LISTEN_CONNECT_TIMEOUT, connect_timeout, l);

	if (lsn_watch(l, FD_WRITE))
		lsn_lost(l, "cannot watch the socket");
}


static void lsn_destructor(void *arg)
{
	struct route_listen *l = arg;

	tmr_cancel(&l->tmr);
	lsn_close(l);
	mem_deref(l->conninfo);
}


/**
 * Listen for changes of the gateways and routes tables; h() after each
 * batch of them and after a reconnection.  The connection is made from
 * the event loop.
 */
int route_listen_alloc(struct route_listen **lp, const char *conninfo,
		       route_changed_h *h, void *arg)
{
	struct route_listen *l;
	int err;

	if (!lp || !conninfo || !h)
		return EINVAL;

	l = mem_zalloc(sizeof(*l), lsn_destructor);
	if (!l)
		return ENOMEM;

	l->fd = -1;
	l->h = h;
	l->arg = arg;
	l->backoff = LISTEN_BACKOFF_MIN;
	tmr_init(&l->tmr);

	err = str_dup(&l->conninfo, conninfo);
	if (err) {
		mem_deref(l);
		return err;
	}

	tmr_start(&l->tmr, 0, reconnect_handler, l);
	*lp = l;

	return 0;
}
