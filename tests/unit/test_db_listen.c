/**
 * @file test_db_listen.c  LISTEN on a connection of its own
 */

#include <string.h>
#include <libpq-fe.h>
#include <re.h>
#include "core.h"
#include "db.h"
#include "test_db.h"


struct lsn_res {
	struct db_listen *l;   /* freed by the handler on "free"       */
	unsigned listening;    /* times the LISTEN took effect         */
	unsigned n;            /* notifications                        */
	char payload[4][16];   /* the first ones                       */
	unsigned stop_listening; /* re_cancel() at this many listenings */
	unsigned stop_n;       /* re_cancel() at this many notifications */
};

static void lsn_handler(const char *payload, void *arg)
{
	struct lsn_res *lr = arg;

	if (!payload) {
		if (++lr->listening == lr->stop_listening)
			re_cancel();
		return;
	}

	if (lr->n < ARRAY_SIZE(lr->payload))
		str_ncpy(lr->payload[lr->n], payload,
			 sizeof(lr->payload[0]));
	++lr->n;

	if (0 == strcmp(payload, "free"))
		lr->l = mem_deref(lr->l);

	if (lr->n == lr->stop_n)
		re_cancel();
}


/* notifications of the channel, and none other; again after the
   connection was cut; freed by its own handler */
int test_listen(void)
{
	static const char chan[] = "t_chan Mixed";
	struct lsn_res lr;
	char longname[80];
	int err = 0;

	memset(&lr, 0, sizeof(lr));
	memset(longname, 'c', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';

	CHECK_ERR(db_listen_alloc(NULL, conninfo, chan, lsn_handler, &lr),
		  EINVAL);
	CHECK_ERR(db_listen_alloc(&lr.l, NULL, chan, lsn_handler, &lr),
		  EINVAL);
	CHECK_ERR(db_listen_alloc(&lr.l, conninfo, "", lsn_handler, &lr),
		  EINVAL);
	CHECK_ERR(db_listen_alloc(&lr.l, conninfo, longname, lsn_handler,
				  &lr), EINVAL);
	CHECK_ERR(db_listen_alloc(&lr.l, conninfo, chan, NULL, &lr), EINVAL);
	CHECK(lr.l == NULL);

	CHECK_ERR(db_listen_alloc(&lr.l, conninfo, chan, lsn_handler, &lr),
		  0);
	CHECK(lr.listening == 0);

	lr.stop_listening = 1;
	CHECK_ERR(run_loop(10000), 0);
	CHECK(lr.listening == 1 && lr.n == 0);

	/* another channel, the same name folded to lower case, then ours */
	CHECK_ERR(sql(conninfo, "SELECT pg_notify('t_other', 'x');"
		      " SELECT pg_notify('t_chan mixed', 'y');"
		      " SELECT pg_notify('t_chan Mixed', '42');"
		      " NOTIFY \"t_chan Mixed\""), 0);
	lr.stop_n = 2;
	CHECK_ERR(run_loop(10000), 0);
	CHECK(lr.n == 2);
	CHECK(0 == strcmp(lr.payload[0], "42"));
	CHECK(0 == strcmp(lr.payload[1], ""));

	/* cut the connection: it listens again and says so */
	CHECK(sql_int(conninfo, "SELECT count(pg_terminate_backend(pid))"
		      " FROM pg_stat_activity WHERE query LIKE 'LISTEN %'"
		      " AND pid <> pg_backend_pid()") == 1);
	lr.stop_listening = 2;
	CHECK_ERR(run_loop(10000), 0);
	CHECK(lr.listening == 2 && lr.n == 2);

	/* the handler frees the listener: what follows is not delivered */
	CHECK_ERR(sql(conninfo, "SELECT pg_notify('t_chan Mixed', 'free');"
		      " SELECT pg_notify('t_chan Mixed', 'after')"), 0);
	lr.stop_n = 3;
	CHECK_ERR(run_loop(10000), 0);
	CHECK(lr.l == NULL);
	CHECK(lr.n == 3);
	(void)run_loop(200);
	CHECK(lr.n == 3);

 out:
	mem_deref(lr.l);

	return err;
}
