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


/* the database's sessions start read-only (as on a standby) */
static int set_read_only(bool on)
{
	char *ci = NULL;
	int err;

	/* this session itself must be writable to change the setting */
	err = re_sdprintf(&ci, "%s options='-c default_transaction_read_only"
			  "=off'", conninfo);
	if (err)
		return err;

	err = sql(ci, on ? "ALTER DATABASE tollgate SET "
		  "default_transaction_read_only = on" : "ALTER DATABASE "
		  "tollgate RESET default_transaction_read_only");
	mem_deref(ci);

	return err;
}


static void writable_timer(void *arg)
{
	struct restart_ctx *rc = arg;

	rc->err = set_read_only(false);
	if (rc->err)
		re_cancel();
}


/*
 * A write refused as read-only (25006) is never a refusal: the query goes
 * again on a new connection within its deadline, whether or not it was
 * marked retry; when the sessions stay read-only it times out.
 */
int test_read_only(void)
{
	static struct seq_item items[4];
	struct restart_ctx rc;
	struct db_stats st;
	struct waiter w;
	struct seq s;
	struct db *db = NULL;
	uint64_t t0;
	unsigned i;
	int err;

	memset(&s, 0, sizeof(s));
	memset(&w, 0, sizeof(w));
	memset(&rc, 0, sizeof(rc));
	tmr_init(&rc.tmr);

	CHECK_ERR(sql(conninfo, "CREATE SEQUENCE IF NOT EXISTS t_ro_seq"), 0);
	CHECK_ERR(set_read_only(true), 0);

	err = db_open(&db, 2, &w);
	if (err)
		goto out;
	CHECK_ERR(db_prepare(db, "t_next", "SELECT nextval($1::regclass)",
			     1), 0);
	CHECK_ERR(wait_state(db, &w, true, 10000), 0);

	/* 1. read-only for 600 ms: a plain and a retry query both succeed
	      once the sessions are writable again */
	s.total = 2;
	for (i = 0; i < 2; i++) {
		items[i].seq = &s;
		items[i].idx = i;
		CHECK_ERR(db_exec(NULL, db, "t_next", 1,
				  (const char *[]){"t_ro_seq"}, 5000, i == 1,
				  seq_handler, &items[i]), 0);
	}

	t0 = now_ms();
	rc.cmd = "writable";
	tmr_start(&rc.tmr, 600, writable_timer, &rc);
	CHECK_ERR(run_loop(10000), 0);
	CHECK_ERR(rc.err, 0);
	CHECK(s.done == 2);
	CHECK(s.errv[0] == 0 && s.errv[1] == 0);
	CHECK(atoi(s.val[0]) > 0 && atoi(s.val[1]) > 0);
	CHECK(now_ms() - t0 >= 590);
	CHECK(now_ms() - t0 < 4000);

	db_stats(db, &st);
	CHECK(st.read_only >= 2);
	CHECK(st.errors == 0);
	CHECK(st.reconnects >= 2);
	CHECK(st.queued == 0);

	/* 2. read-only for good: the deadline ends it, never EPROTO */
	CHECK_ERR(set_read_only(true), 0);
	memset(&s, 0, sizeof(s));
	s.total = 1;
	items[2].seq = &s;
	items[2].idx = 0;

	/* the sessions made before are writable: lose them first */
	CHECK_ERR(sql(conninfo, "SELECT pg_terminate_backend(pid) FROM "
		      "pg_stat_activity WHERE datname = 'tollgate' AND "
		      "pid <> pg_backend_pid()"), 0);

	t0 = now_ms();
	CHECK_ERR(db_exec(NULL, db, "t_next", 1, (const char *[]){"t_ro_seq"},
			  800, true, seq_handler, &items[2]), 0);
	CHECK_ERR(run_loop(10000), 0);
	CHECK(s.done == 1 && s.errv[0] == ETIMEDOUT);
	CHECK(now_ms() - t0 >= 790);

	db_stats(db, &st);
	CHECK(st.queued == 0);

 out:
	tmr_cancel(&rc.tmr);
	mem_deref(db);
	if (set_read_only(false) && !err)
		err = EIO;

	return err;
}


/*
 * Several servers with target_session_attrs=read-write: the first named
 * is not there (a socket directory, then two TCP servers that refuse),
 * the pool lands on the one that is.
 */
int test_multi_host(void)
{
	static struct seq_item items[1];
	struct waiter w;
	struct seq s;
	struct db *db = NULL;
	char *ci = NULL;
	uint64_t t0;
	int err;

	memset(&s, 0, sizeof(s));
	memset(&w, 0, sizeof(w));

	err = re_sdprintf(&ci, "%s host=/nonexistent/tollgate,%s/run "
			  "target_session_attrs=read-write", conninfo,
			  cluster_dir);
	if (err)
		goto out;

	CHECK_ERR(db_alloc(&db, ci, 2), 0);
	CHECK_ERR(db_prepare(db, "t_echo", "SELECT $1::int", 1), 0);

	s.total = 1;
	items[0].seq = &s;
	CHECK_ERR(db_exec(NULL, db, "t_echo", 1, (const char *[]){"42"},
			  5000, false, seq_handler, &items[0]), 0);
	CHECK_ERR(run_loop(6000), 0);
	CHECK(s.done == 1 && s.errv[0] == 0 && !strcmp(s.val[0], "42"));
	CHECK(db_is_up(db));

	/* two TCP servers that refuse, each after its connect() was in
	   progress: libpq opens the next socket under the number of the
	   last one, waiting to write again; the loop must watch it */
	db = mem_deref(db);
	ci = mem_deref(ci);
	CHECK_ERR(re_sdprintf(&ci, "%s host=127.0.0.1,127.0.0.1,%s/run "
			      "port=1,1,5432 target_session_attrs=read-write",
			      conninfo, cluster_dir), 0);
	CHECK_ERR(db_alloc(&db, ci, 2), 0);
	CHECK_ERR(db_prepare(db, "t_echo", "SELECT $1::int", 1), 0);

	memset(&s, 0, sizeof(s));
	s.total = 1;
	items[0].seq = &s;
	t0 = now_ms();
	CHECK_ERR(db_exec(NULL, db, "t_echo", 1, (const char *[]){"43"},
			  5000, false, seq_handler, &items[0]), 0);
	CHECK_ERR(run_loop(6000), 0);
	CHECK(s.done == 1 && s.errv[0] == 0 && !strcmp(s.val[0], "43"));
	CHECK(now_ms() - t0 < 2000);

	/* several servers without target_session_attrs are refused */
	db = mem_deref(db);
	ci = mem_deref(ci);
	CHECK_ERR(re_sdprintf(&ci, "%s host=%s/run,%s/run", conninfo,
			      cluster_dir, cluster_dir), 0);
	CHECK_ERR(db_alloc(&db, ci, 1), EINVAL);

 out:
	mem_deref(db);
	mem_deref(ci);

	return err;
}
