/**
 * @file test_db_conn.c  No server, and a server stopped and started again
 */

#include <stdlib.h>
#include <string.h>
#include <libpq-fe.h>
#include <re.h>
#include "core.h"
#include "db.h"
#include "test_db.h"


/* no server at all: queries wait, then time out; reconnects go on */
int test_unreachable(void)
{
	static struct seq_item items[1];
	const char *values[1] = {"1"};
	struct seq s;
	struct db *db = NULL;
	uint64_t t0;
	int err;

	memset(&s, 0, sizeof(s));
	s.total = 1;
	items[0].seq = &s;

	err = db_alloc(&db, "host=/nonexistent/tollgate dbname=x user=x", 4);
	if (err)
		goto out;

	CHECK_ERR(db_prepare(db, "t_echo", "SELECT $1::int", 1), 0);

	t0 = now_ms();
	CHECK_ERR(db_exec(NULL, db, "t_echo", 1, values, 700, true,
			  seq_handler, &items[0]), 0);
	CHECK_ERR(run_loop(5000), 0);
	CHECK(s.done == 1 && s.errv[0] == ETIMEDOUT);
	CHECK(now_ms() - t0 >= 690);
	CHECK(!db_is_up(db));
	CHECK(db_down_ms(db) >= 690);
	CHECK(db_queue_wait_ms(db) == 0);

 out:
	mem_deref(db);

	return err;
}


/* server stopped and restarted */
int test_restart(void)
{
	enum { N = 20 };
	static struct seq_item items[N + 4];
	const char *slow[1] = {"5"}, *mid[1] = {"0.5"};
	struct restart_ctx rc;
	struct db_stats st;
	struct waiter w;
	struct seq s;
	struct db *db = NULL;
	unsigned i;
	int err;

	memset(&s, 0, sizeof(s));
	memset(&w, 0, sizeof(w));
	memset(&rc, 0, sizeof(rc));
	tmr_init(&rc.tmr);

	err = db_open(&db, 1, &w);
	if (err)
		goto out;

	CHECK_ERR(wait_state(db, &w, true, 10000), 0);

	/* 1. stopped while idle: queries wait for the restart */
	CHECK_ERR(cluster("stop", "fast"), 0);   /* the server says goodbye */
	CHECK_ERR(wait_state(db, &w, false, 10000), 0);
	CHECK(w.down == 1);

	s.total = N;
	for (i = 0; i < N; i++) {
		char v[16];
		const char *values[1] = {v};

		(void)re_snprintf(v, sizeof(v), "%u", i);
		items[i].seq = &s;
		items[i].idx = i;
		CHECK_ERR(db_exec(NULL, db, "t_echo", 1, values, 0, false,
				  echo_handler, &items[i]), 0);
	}

	rc.cmd = "start";
	rc.mode = NULL;
	tmr_start(&rc.tmr, 300, cluster_timer, &rc);
	CHECK_ERR(run_loop(30000), 0);
	CHECK_ERR(rc.err, 0);
	CHECK(s.done == N && s.bad == 0);
	CHECK(w.up == 2);
	db_stats(db, &st);
	CHECK(st.reconnects == 1);
	CHECK(st.errors == 0);

	/* 2. killed with a query in flight (not retry): ECONNRESET; the
	 *    query behind it waits for the restart */
	memset(&s, 0, sizeof(s));
	s.total = 2;
	for (i = 0; i < 2; i++) {
		items[i].seq = &s;
		items[i].idx = i;
	}

	CHECK_ERR(db_exec(NULL, db, "t_sleep", 1, slow, 0, false,
			  seq_handler, &items[0]), 0);
	CHECK_ERR(db_exec(NULL, db, "t_echo", 1, (const char *[]){"7"}, 0,
			  false, seq_handler, &items[1]), 0);

	rc.cmd = "stop";
	rc.mode = "immediate";
	tmr_start(&rc.tmr, 300, cluster_timer, &rc);
	CHECK_ERR(wait_state(db, &w, false, 10000), 0);
	CHECK_ERR(rc.err, 0);
	CHECK(s.done == 1 && s.errv[0] == ECONNRESET);

	rc.cmd = "start";
	rc.mode = NULL;
	tmr_start(&rc.tmr, 200, cluster_timer, &rc);
	CHECK_ERR(run_loop(30000), 0);
	CHECK_ERR(rc.err, 0);
	CHECK(s.done == 2 && s.bad == 0);
	CHECK(s.errv[1] == 0 && 0 == strcmp(s.val[1], "7"));

	/* 3. killed with a retry query in flight: sent again, succeeds */
	memset(&s, 0, sizeof(s));
	s.total = 1;
	items[0].seq = &s;
	items[0].idx = 0;

	CHECK_ERR(db_exec(NULL, db, "t_sleep", 1, mid, 0, true,
			  seq_handler, &items[0]), 0);

	rc.cmd = "stop";
	rc.mode = "immediate";
	tmr_start(&rc.tmr, 200, cluster_timer, &rc);
	CHECK_ERR(wait_state(db, &w, false, 10000), 0);
	CHECK_ERR(rc.err, 0);
	CHECK(s.done == 0);

	rc.cmd = "start";
	rc.mode = NULL;
	tmr_start(&rc.tmr, 200, cluster_timer, &rc);
	CHECK_ERR(run_loop(30000), 0);
	CHECK_ERR(rc.err, 0);
	CHECK(s.done == 1 && s.errv[0] == 0);
	CHECK(0 == strcmp(s.val[0], ""));

	db_stats(db, &st);
	CHECK(st.reconnects == 3);
	CHECK(st.queued == 0);

 out:
	tmr_cancel(&rc.tmr);
	mem_deref(db);

	/* leave the server running for the tests after this one */
	if (err)
		(void)cluster("start", NULL);

	return err;
}
