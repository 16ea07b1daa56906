/**
 * @file test_db_pool.c  A pool of connections: spread, fences, restarts
 */

#include <stdlib.h>
#include <string.h>
#include <libpq-fe.h>
#include <re.h>
#include "core.h"
#include "db.h"
#include "test_db.h"


/* run the loop until all nconn connections are up */
static int wait_all_up(struct db *db, uint32_t nconn, uint32_t max_ms)
{
	uint64_t t0 = now_ms();
	struct db_stats st;

	for (;;) {
		db_stats(db, &st);
		if (st.up == nconn)
			return 0;

		if (now_ms() - t0 > max_ms)
			return ETIMEDOUT;

		(void)run_loop(20);
	}
}


struct pool {
	unsigned total;
	unsigned done;
	unsigned bad;          /* error or wrong value                 */
	unsigned ooo;          /* completed out of submission order    */
	int pids[64];          /* distinct backends seen               */
	unsigned npids;
	uint64_t last_at;      /* ms, last completion                  */
};

struct pool_item {
	struct pool *pool;
	unsigned idx;
	int err;
	uint64_t at;           /* ms, completion                       */
	int pid;
};


static void pool_note_pid(struct pool *p, int pid)
{
	unsigned i;

	for (i = 0; i < p->npids; i++) {
		if (p->pids[i] == pid)
			return;
	}

	if (p->npids < ARRAY_SIZE(p->pids))
		p->pids[p->npids++] = pid;
}


static void pool_handler(int err, const struct pg_result *r, void *arg)
{
	const PGresult *res = (const PGresult *)r;
	struct pool_item *it = arg;
	struct pool *p = it->pool;

	it->err = err;
	it->at = p->last_at = now_ms();

	if (it->idx != p->done)
		++p->ooo;
	++p->done;

	if (err || !res || PQntuples(res) != 1)
		++p->bad;
	else if (PQnfields(res) == 2) {          /* t_pid */
		it->pid = atoi(PQgetvalue(res, 0, 0));
		pool_note_pid(p, it->pid);
	}
	else if ((unsigned)atoi(PQgetvalue(res, 0, 0)) != it->idx) {
		++p->bad;                        /* t_echo */
	}

	if (p->done == p->total)
		re_cancel();
}


/* many queries at once on four connections: all answered, all correct */
int test_pool_many(void)
{
	enum { N = 2000, NCONN = 4 };
	static struct pool_item items[N];
	struct db_stats st;
	struct pool p;
	struct db *db = NULL;
	unsigned i;
	int err;

	memset(&p, 0, sizeof(p));
	memset(items, 0, sizeof(items));
	p.total = N;

	err = db_open(&db, NCONN, NULL);
	if (err)
		goto out;

	db_stats(db, &st);
	CHECK(st.connections == NCONN && st.up == 0);

	/* half queued before any connection exists, half once all are up */
	for (i = 0; i < N; i++) {
		char v[16];
		const char *values[1] = {v};

		/* (the first half may or may not have run by then: the
		   connections come up side by side with its queries) */
		if (i == N / 2)
			CHECK_ERR(wait_all_up(db, NCONN, 10000), 0);

		(void)re_snprintf(v, sizeof(v), "%u", i);
		items[i].pool = &p;
		items[i].idx = i;
		CHECK_ERR(db_exec(NULL, db, "t_echo", 1, values, 0, false,
				  pool_handler, &items[i]), 0);
	}

	CHECK_ERR(run_loop(20000), 0);
	CHECK(p.done == N);
	CHECK(p.bad == 0);

	db_stats(db, &st);
	CHECK(st.queries == N);
	CHECK(st.errors == 0);
	CHECK(st.queued == 0);
	CHECK(st.up == NCONN);
	CHECK(st.reconnects == 0);

 out:
	mem_deref(db);

	return err;
}


/* slow queries run side by side, each on a backend of its own */
int test_pool_spread(void)
{
	enum { N = 8, NCONN = 4 };
	static struct pool_item items[N];
	const char *slow[1] = {"0.3"};
	struct db_stats st;
	struct pool p;
	struct db *db = NULL;
	uint64_t t0;
	unsigned i;
	int err;

	memset(&p, 0, sizeof(p));
	memset(items, 0, sizeof(items));
	p.total = N;

	err = db_open(&db, NCONN, NULL);
	if (err)
		goto out;

	CHECK_ERR(wait_all_up(db, NCONN, 10000), 0);

	t0 = now_ms();
	for (i = 0; i < N; i++) {
		items[i].pool = &p;
		items[i].idx = i;
		CHECK_ERR(db_exec(NULL, db, "t_pid", 1, slow, 0, false,
				  pool_handler, &items[i]), 0);
	}

	/* four in flight, four waiting */
	db_stats(db, &st);
	CHECK(st.queued == N);

	CHECK_ERR(run_loop(10000), 0);
	CHECK(p.done == N && p.bad == 0);

	/* two rounds of 0.3 s, not eight */
	CHECK(p.last_at - t0 >= 590);
	CHECK(p.last_at - t0 < 1500);
	CHECK(p.npids == NCONN);

	/* each round used every connection */
	for (i = 0; i < NCONN; i++) {
		unsigned j;

		for (j = i + 1; j < NCONN; j++)
			CHECK(items[i].pid != items[j].pid);
	}

 out:
	mem_deref(db);

	return err;
}


/*
 * A query nobody waits for goes first: a handler-less, detached or timed
 * out query still on the server holds back what is queued after it.
 */
int test_pool_fence(void)
{
	enum { NCONN = 4, NINS = 20 };
	static struct pool_item items[4];
	const char *slow[1] = {"0.4"}, *fast[1] = {"0"};
	struct db_query *q = NULL;
	struct pool p;
	struct db *db = NULL;
	uint64_t t0;
	unsigned i;
	int err;

	memset(&p, 0, sizeof(p));
	memset(items, 0, sizeof(items));
	for (i = 0; i < ARRAY_SIZE(items); i++) {
		items[i].pool = &p;
		items[i].idx = i;
	}

	err = sql(conninfo, "DROP TABLE IF EXISTS t_pool;"
		  " CREATE TABLE t_pool (x int)");
	if (err)
		goto out;

	err = db_open(&db, NCONN, NULL);
	if (err)
		goto out;

	CHECK_ERR(db_prepare(db, "t_ins", "INSERT INTO t_pool (x) SELECT $1"
			     " FROM pg_sleep(0.01)", 1), 0);
	CHECK_ERR(db_prepare(db, "t_count", "SELECT count(*) FROM t_pool"
			     " WHERE x >= $1::int", 1), 0);
	CHECK_ERR(wait_all_up(db, NCONN, 10000), 0);

	/* 1. with a handler, a slow query does not hold the next one */
	p.total = 2;
	t0 = now_ms();
	CHECK_ERR(db_exec(NULL, db, "t_pid", 1, slow, 0, false, pool_handler,
			  &items[0]), 0);
	CHECK_ERR(db_exec(NULL, db, "t_pid", 1, fast, 0, false, pool_handler,
			  &items[1]), 0);
	CHECK_ERR(run_loop(5000), 0);
	CHECK(p.done == 2 && p.bad == 0);
	CHECK(items[1].at - t0 < 300);
	CHECK(items[0].at - t0 >= 390);
	CHECK(items[0].pid != items[1].pid);

	/* 2. handler-less writes, then a read: it sees every one of them */
	for (i = 0; i < NINS; i++) {
		char v[16];
		const char *values[1] = {v};

		(void)re_snprintf(v, sizeof(v), "%u", i + 1);
		CHECK_ERR(db_exec(NULL, db, "t_ins", 1, values, 0, false,
				  NULL, NULL), 0);
	}
	memset(&p, 0, sizeof(p));
	p.total = 1;
	items[0].idx = NINS;   /* pool_handler compares the count with it */
	CHECK_ERR(db_exec(NULL, db, "t_count", 1, (const char *[]){"1"}, 0,
			  false, pool_handler, &items[0]), 0);
	CHECK_ERR(run_loop(5000), 0);
	CHECK(p.done == 1 && p.bad == 0);

	/* 3. detached while in flight: the next query waits for it */
	memset(&p, 0, sizeof(p));
	p.total = 1;
	items[0].idx = 0;
	t0 = now_ms();
	CHECK_ERR(db_exec(&q, db, "t_pid", 1, slow, 0, false, pool_handler,
			  &items[3]), 0);
	q = mem_deref(q);
	CHECK_ERR(db_exec(NULL, db, "t_pid", 1, fast, 0, false, pool_handler,
			  &items[0]), 0);
	CHECK_ERR(run_loop(5000), 0);
	CHECK(p.done == 1 && p.bad == 0);
	CHECK(items[0].at - t0 >= 390);
	CHECK(items[3].at == 0);

	/* 4. past its deadline on the server: the same */
	memset(&p, 0, sizeof(p));
	p.total = 1;
	items[0].idx = 0;
	items[1].idx = 1;
	t0 = now_ms();
	CHECK_ERR(db_exec(NULL, db, "t_pid", 1, slow, 100, false,
			  pool_handler, &items[0]), 0);
	CHECK_ERR(run_loop(5000), 0);
	CHECK(p.done == 1 && items[0].err == ETIMEDOUT);
	CHECK(items[0].at - t0 < 300);
	p.total = 2;
	CHECK_ERR(db_exec(NULL, db, "t_pid", 1, fast, 0, false, pool_handler,
			  &items[1]), 0);
	CHECK_ERR(run_loop(5000), 0);
	CHECK(p.done == 2 && items[1].err == 0);
	CHECK(items[1].at - t0 >= 390);

 out:
	mem_deref(q);
	mem_deref(db);
	(void)sql(conninfo, "DROP TABLE IF EXISTS t_pool");

	return err;
}


/* four connections, server stopped and restarted */
int test_pool_restart(void)
{
	enum { N = 20, NCONN = 4 };
	static struct pool_item items[N];
	const char *longer[1] = {"5"}, *mid[1] = {"1"};
	struct restart_ctx rc;
	struct db_stats st;
	struct waiter w;
	struct pool p;
	struct db *db = NULL;
	unsigned i;
	int err;

	memset(&p, 0, sizeof(p));
	memset(&w, 0, sizeof(w));
	memset(&rc, 0, sizeof(rc));
	memset(items, 0, sizeof(items));
	tmr_init(&rc.tmr);

	err = db_open(&db, NCONN, &w);
	if (err)
		goto out;

	CHECK_ERR(wait_all_up(db, NCONN, 10000), 0);
	CHECK(w.up == 1 && w.down == 0);

	/* 1. stopped while idle: one "down", queries wait for the restart */
	CHECK_ERR(cluster("stop", "fast"), 0);
	CHECK_ERR(wait_state(db, &w, false, 10000), 0);
	CHECK(w.down == 1);
	db_stats(db, &st);
	CHECK(st.up == 0);

	p.total = N;
	for (i = 0; i < N; i++) {
		char v[16];
		const char *values[1] = {v};

		(void)re_snprintf(v, sizeof(v), "%u", i);
		items[i].pool = &p;
		items[i].idx = i;
		CHECK_ERR(db_exec(NULL, db, "t_echo", 1, values, 0, false,
				  pool_handler, &items[i]), 0);
	}

	rc.cmd = "start";
	rc.mode = NULL;
	tmr_start(&rc.tmr, 300, cluster_timer, &rc);
	CHECK_ERR(run_loop(30000), 0);
	CHECK_ERR(rc.err, 0);
	CHECK(p.done == N && p.bad == 0);
	CHECK(w.up == 2 && w.down == 1);
	CHECK_ERR(wait_all_up(db, NCONN, 10000), 0);
	db_stats(db, &st);
	CHECK(st.reconnects == NCONN);
	CHECK(st.errors == 0);

	/* 2. killed with every connection busy and queries queued: the
	 *    in-flight ones fail with ECONNRESET, or are sent again when
	 *    retry; the queued ones wait for the restart */
	memset(&p, 0, sizeof(p));
	memset(items, 0, sizeof(items));
	p.total = 8;
	for (i = 0; i < 8; i++) {
		items[i].pool = &p;
		items[i].idx = i;
	}

	for (i = 0; i < 2; i++)
		CHECK_ERR(db_exec(NULL, db, "t_pid", 1, longer, 0, false,
				  pool_handler, &items[i]), 0);
	for (i = 2; i < 4; i++)
		CHECK_ERR(db_exec(NULL, db, "t_pid", 1, mid, 0, true,
				  pool_handler, &items[i]), 0);
	for (i = 4; i < 8; i++) {
		char v[16];
		const char *values[1] = {v};

		(void)re_snprintf(v, sizeof(v), "%u", i);
		CHECK_ERR(db_exec(NULL, db, "t_echo", 1, values, 0, false,
				  pool_handler, &items[i]), 0);
	}

	db_stats(db, &st);
	CHECK(st.queued == 8);

	rc.cmd = "stop";
	rc.mode = "immediate";
	tmr_start(&rc.tmr, 300, cluster_timer, &rc);
	CHECK_ERR(wait_state(db, &w, false, 10000), 0);
	CHECK_ERR(rc.err, 0);
	CHECK(w.down == 2);
	CHECK(p.done == 2);
	CHECK(items[0].err == ECONNRESET && items[1].err == ECONNRESET);
	db_stats(db, &st);
	CHECK(st.queued == 6);

	rc.cmd = "start";
	rc.mode = NULL;
	tmr_start(&rc.tmr, 200, cluster_timer, &rc);
	CHECK_ERR(run_loop(30000), 0);
	CHECK_ERR(rc.err, 0);
	CHECK(p.done == 8);
	for (i = 2; i < 8; i++)
		CHECK(items[i].err == 0);
	CHECK(p.bad == 2);   /* the two ECONNRESET */
	CHECK(w.up == 3 && w.down == 2);

	CHECK_ERR(wait_all_up(db, NCONN, 10000), 0);
	db_stats(db, &st);
	CHECK(st.reconnects == 2 * NCONN);
	CHECK(st.queued == 0);

 out:
	tmr_cancel(&rc.tmr);
	mem_deref(db);

	/* leave the server running for the tests after this one */
	if (err)
		(void)cluster("start", NULL);

	return err;
}
