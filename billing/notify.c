/**
 * @file notify.c  Account changes notified by the database
 *
 * sql/002_billing.sql sends NOTIFY tollgate_account, payload the account
 * id, whenever an account's balance, status, rate plan or call limit is
 * changed by anything but tollgate's own billing functions (a top-up in
 * the database, the REST API).  The engine listens on a connection of its
 * own (db_listen_alloc()), so a change reaches its calls the moment the
 * changing transaction commits.  Notifications sent while that
 * connection was down are lost: once it listens again the handler is
 * called with account 0 ("any account").
 */

#include <stdlib.h>
#include "billing_int.h"


#define NOTIFY_CHANNEL "tollgate_account"

struct notify {
	struct db_listen *listen;  /**< owned                          */
	bool ever_up;
	notify_h *h;
	void *arg;                 /**< borrowed                       */
};


static void listen_handler(const char *payload, void *arg)
{
	struct notify *nt = arg;
	int64_t id;

	if (!payload) {
		tlog_info(NULL, "billing: listening for account changes");

		/* anything may have changed while we were away */
		if (nt->ever_up)
			nt->h(0, nt->arg);
		nt->ever_up = true;
		return;
	}

	id = strtoll(payload, NULL, 10);
	if (id > 0)
		nt->h(id, nt->arg);
}


static void notify_destructor(void *arg)
{
	struct notify *nt = arg;

	mem_deref(nt->listen);
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

	nt->h = h;
	nt->arg = arg;

	err = db_listen_alloc(&nt->listen, conninfo, NOTIFY_CHANNEL,
			      listen_handler, nt);
	if (err) {
		mem_deref(nt);
		return err;
	}

	*ntp = nt;

	return 0;
}
