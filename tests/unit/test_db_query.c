/**
 * @file test_db_query.c  The client: order, results, errors, deadlines,
 *                         detaching
 */

#include <stdlib.h>
#include <string.h>
#include <libpq-fe.h>
#include <re.h>
#include "core.h"
#include "db.h"
#include "test_db.h"


int test_queue_order(void)
{
	enum { N = 300 };
	static struct seq_item items[N];
	struct seq s;
	struct db_stats st;
	struct db *db = NULL;
	unsigned i;
	int err;

	memset(&s, 0, sizeof(s));
	s.total = N;

	err = db_open(&db, 1, NULL);
	if (err)
		goto out;

	/* all queued before the connection exists */
	CHECK(!db_is_up(db));

	for (i = 0; i < N; i++) {
		char v[16];
		const char *values[1] = {v};

		(void)re_snprintf(v, sizeof(v), "%u", i);
		items[i].seq = &s;
		items[i].idx = i;
		CHECK_ERR(db_exec(NULL, db, "t_echo", 1, values, 0, false,
				  echo_handler, &items[i]), 0);
	}

	db_stats(db, &st);
	CHECK(st.queued == N);

	CHECK_ERR(run_loop(20000), 0);
	CHECK(s.done == N);
	CHECK(s.bad == 0);
	CHECK(db_is_up(db));

	db_stats(db, &st);
	CHECK(st.queries == N);
	CHECK(st.errors == 0);
	CHECK(st.queued == 0);
	CHECK(st.reconnects == 0);
	CHECK(st.lat_us_max > 0 && st.lat_us_sum >= st.lat_us_max);

 out:
	mem_deref(db);

	return err;
}


/* a parameter larger than the socket buffer: PQflush() returns 1 */
int test_large(void)
{
	enum { LEN = 4 << 20 };
	static struct seq_item items[2];
	const char *values[1];
	struct seq s;
	struct db *db = NULL;
	char *big;
	int err = 0;

	memset(&s, 0, sizeof(s));
	s.total = 2;
	items[0].seq = items[1].seq = &s;
	items[0].idx = 0;
	items[1].idx = 1;

	big = mem_alloc(LEN + 1, NULL);
	if (!big)
		return ENOMEM;
	memset(big, 'a', LEN);
	big[LEN] = '\0';
	values[0] = big;

	err = db_open(&db, 1, NULL);
	if (err)
		goto out;

	CHECK_ERR(db_exec(NULL, db, "t_len", 1, values, 0, false,
			  seq_handler, &items[0]), 0);
	CHECK_ERR(db_exec(NULL, db, "t_len", 1, (const char *[]){"abc"}, 0,
			  false, seq_handler, &items[1]), 0);

	CHECK_ERR(run_loop(20000), 0);
	CHECK(s.done == 2 && s.bad == 0);
	CHECK(s.errv[0] == 0 && 0 == strcmp(s.val[0], "4194304"));
	CHECK(s.errv[1] == 0 && 0 == strcmp(s.val[1], "3"));

 out:
	mem_deref(db);
	mem_deref(big);

	return err;
}


/* COPY cannot be served: the query fails, the client carries on */
int test_copy(void)
{
	static struct seq_item items[2];
	struct seq s;
	struct db *db = NULL;
	int err = 0;

	memset(&s, 0, sizeof(s));
	s.total = 2;
	items[0].seq = items[1].seq = &s;
	items[0].idx = 0;
	items[1].idx = 1;

	err = db_open(&db, 1, NULL);
	if (err)
		goto out;

	CHECK_ERR(db_prepare(db, "t_copy", "COPY (SELECT 1) TO STDOUT", 0), 0);
	CHECK_ERR(db_exec(NULL, db, "t_copy", 0, NULL, 0, false, seq_handler,
			  &items[0]), 0);
	CHECK_ERR(db_exec(NULL, db, "t_echo", 1, (const char *[]){"5"}, 0,
			  false, seq_handler, &items[1]), 0);

	CHECK_ERR(run_loop(20000), 0);
	CHECK(s.done == 2 && s.bad == 0);
	CHECK(s.errv[0] == ECONNRESET || s.errv[0] == EPROTO);
	CHECK(s.errv[1] == 0 && 0 == strcmp(s.val[1], "5"));

 out:
	mem_deref(db);

	return err;
}


int test_api_errors(void)
{
	struct db *db = NULL, *db2 = NULL;
	const char *values[1] = {"1"};
	int err = 0;

	CHECK_ERR(db_alloc(&db2, "this is not=a conninfo", 1), EINVAL);
	CHECK(db2 == NULL);
	CHECK_ERR(db_alloc(&db2, conninfo, 0), EINVAL);
	CHECK_ERR(db_alloc(&db2, conninfo, DB_CONNECTIONS_MAX + 1), EINVAL);
	CHECK(db2 == NULL);

	err = db_open(&db, 1, NULL);
	if (err)
		goto out;

	CHECK_ERR(db_exec(NULL, db, "t_nosuch", 1, values, 0, false, NULL,
			  NULL), ENOENT);
	CHECK_ERR(db_exec(NULL, db, "t_echo", 0, NULL, 0, false, NULL, NULL),
		  EINVAL);
	CHECK_ERR(db_exec(NULL, db, "t_echo", 1, NULL, 0, false, NULL, NULL),
		  EINVAL);
	CHECK_ERR(db_prepare(db, "t_echo", "SELECT $1::int", 1), 0);
	CHECK_ERR(db_prepare(db, "t_echo", "SELECT $1::text", 1), EEXIST);
	CHECK_ERR(db_prepare(db, "", "SELECT 1", 0), EINVAL);
	CHECK_ERR(db_prepare(db, "x", "", 0), EINVAL);

 out:
	mem_deref(db);

	return err;
}


int test_sql_error(void)
{
	static struct seq_item items[3];
	const char *zero[1] = {"0"}, *two[1] = {"2"}, *bad[1] = {"abc"};
	struct db_stats st;
	struct seq s;
	struct db *db = NULL;
	unsigned i;
	int err;

	memset(&s, 0, sizeof(s));
	s.total = 3;
	for (i = 0; i < 3; i++) {
		items[i].seq = &s;
		items[i].idx = i;
	}

	err = db_open(&db, 1, NULL);
	if (err)
		goto out;

	CHECK_ERR(db_exec(NULL, db, "t_div", 1, zero, 0, false, seq_handler,
			  &items[0]), 0);
	CHECK_ERR(db_exec(NULL, db, "t_div", 1, bad, 0, false, seq_handler,
			  &items[1]), 0);
	CHECK_ERR(db_exec(NULL, db, "t_div", 1, two, 0, false, seq_handler,
			  &items[2]), 0);

	CHECK_ERR(run_loop(10000), 0);
	CHECK(s.done == 3 && s.bad == 0);
	CHECK(s.errv[0] == EPROTO);
	CHECK(s.errv[1] == EPROTO);
	CHECK(s.errv[2] == 0);
	CHECK(0 == strcmp(s.val[2], "0"));

	db_stats(db, &st);
	CHECK(st.errors == 2);
	CHECK(st.queries == 3);

 out:
	mem_deref(db);

	return err;
}


/* the EPROTO result carries the SQL error */
static bool eproto_ok;

static void sqlstate_handler(int err, const struct pg_result *r, void *arg)
{
	const PGresult *res = (const PGresult *)r;
	const char *state;
	(void)arg;

	state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	eproto_ok = (err == EPROTO && state && !strcmp(state, "22012"));
	re_cancel();
}


int test_sql_error_result(void)
{
	const char *zero[1] = {"0"};
	struct db *db = NULL;
	int err;

	err = db_open(&db, 1, NULL);
	if (err)
		goto out;

	eproto_ok = false;
	CHECK_ERR(db_exec(NULL, db, "t_div", 1, zero, 0, false,
			  sqlstate_handler, NULL), 0);
	CHECK_ERR(run_loop(10000), 0);
	CHECK(eproto_ok);

 out:
	mem_deref(db);

	return err;
}


int test_timeout(void)
{
	static struct seq_item items[3];
	const char *slow[1] = {"1.0"}, *fast[1] = {"0"};
	struct seq s;
	struct db_stats st;
	struct waiter w;
	struct db *db = NULL;
	uint64_t t0;
	unsigned i;
	int err;

	memset(&s, 0, sizeof(s));
	memset(&w, 0, sizeof(w));
	s.total = 3;
	for (i = 0; i < 3; i++) {
		items[i].seq = &s;
		items[i].idx = i;
	}

	err = db_open(&db, 1, &w);
	if (err)
		goto out;

	CHECK_ERR(wait_state(db, &w, true, 10000), 0);

	t0 = now_ms();

	/* in flight for 1 s, deadline 200 ms */
	CHECK_ERR(db_exec(NULL, db, "t_sleep", 1, slow, 200, false,
			  seq_handler, &items[0]), 0);
	/* waits behind it, deadline 400 ms */
	CHECK_ERR(db_exec(NULL, db, "t_sleep", 1, fast, 400, false,
			  seq_handler, &items[1]), 0);
	/* no deadline: runs once the slow one is over */
	CHECK_ERR(db_exec(NULL, db, "t_sleep", 1, fast, 0, false,
			  seq_handler, &items[2]), 0);

	CHECK_ERR(run_loop(10000), 0);
	CHECK(s.done == 3 && s.bad == 0);
	CHECK(s.errv[0] == ETIMEDOUT);
	CHECK(s.errv[1] == ETIMEDOUT);
	CHECK(s.errv[2] == 0);
	CHECK(s.at[0] - t0 >= 190 && s.at[0] - t0 < 900);
	CHECK(s.at[1] - t0 >= 390 && s.at[1] - t0 < 950);
	CHECK(s.at[2] - t0 >= 990);
	CHECK(0 == strcmp(s.val[2], ""));   /* pg_sleep() returns void */

	db_stats(db, &st);
	CHECK(st.errors == 2);
	CHECK(st.queries == 1);

 out:
	mem_deref(db);

	return err;
}


int test_detach(void)
{
	static struct seq_item items[2];
	const char *slow[1] = {"0.3"}, *fast[1] = {"0"};
	struct detach_ctx ctx = {NULL};
	struct db_query *q1 = NULL, *q3 = NULL;
	struct seq s;
	struct tmr t;
	struct waiter w;
	struct db *db = NULL;
	int err;

	memset(&s, 0, sizeof(s));
	memset(&w, 0, sizeof(w));
	tmr_init(&t);
	s.total = 2;
	items[0].seq = items[1].seq = &s;
	items[0].idx = 0;
	items[1].idx = 1;
	detached_calls = 0;

	err = db_open(&db, 1, &w);
	if (err)
		goto out;

	CHECK_ERR(wait_state(db, &w, true, 10000), 0);

	/* detached while in flight: its result is discarded */
	CHECK_ERR(db_exec(&ctx.q, db, "t_sleep", 1, slow, 0, false,
			  detached_handler, NULL), 0);
	/* detached while queued: dropped */
	CHECK_ERR(db_exec(&q1, db, "t_sleep", 1, fast, 0, false,
			  detached_handler, NULL), 0);
	CHECK(q1 != NULL);
	q1 = mem_deref(q1);

	/* kept: *qp is cleared when it completes */
	CHECK_ERR(db_exec(&q3, db, "t_sleep", 1, fast, 0, false,
			  seq_handler, &items[0]), 0);
	CHECK_ERR(db_exec(NULL, db, "t_echo", 1, (const char *[]){"1"}, 0,
			  false, seq_handler, &items[1]), 0);

	tmr_start(&t, 100, detach_timer, &ctx);

	CHECK_ERR(run_loop(10000), 0);
	CHECK(s.done == 2 && s.bad == 0);
	CHECK(s.errv[0] == 0 && s.errv[1] == 0);
	CHECK(ctx.q == NULL);
	CHECK(q3 == NULL);
	CHECK(detached_calls == 0);

 out:
	tmr_cancel(&t);
	mem_deref(ctx.q);
	mem_deref(q1);
	mem_deref(q3);
	mem_deref(db);

	return err;
}


/* the session's statement_timeout cancels a long statement: EAGAIN */
static int stmt_err;
static char stmt_state[8];

static void stmt_handler(int err, const struct pg_result *r, void *arg)
{
	const PGresult *res = (const PGresult *)r;
	const char *state;
	(void)arg;

	state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	stmt_err = err;
	str_ncpy(stmt_state, state ? state : "", sizeof(stmt_state));
	re_cancel();
}


int test_statement_timeout(void)
{
	static struct seq_item items[1];
	const char *slow[1] = {"5"};
	struct seq s;
	struct db *db = NULL;
	int err;

	memset(&s, 0, sizeof(s));
	s.total = 1;
	items[0].seq = &s;

	err = db_open(&db, 1, NULL);
	if (err)
		goto out;

	db_set_statement_timeout(db, 300);

	/* no client deadline: the server ends it */
	stmt_err = -1;
	CHECK_ERR(db_exec(NULL, db, "t_sleep", 1, slow, 0, false,
			  stmt_handler, NULL), 0);
	CHECK_ERR(run_loop(4000), 0);
	CHECK(stmt_err == EAGAIN);
	CHECK(0 == strcmp(stmt_state, "57014"));

	/* the connection goes on serving */
	CHECK_ERR(db_exec(NULL, db, "t_echo", 1, (const char *[]){"7"}, 0,
			  false, seq_handler, &items[0]), 0);
	CHECK_ERR(run_loop(4000), 0);
	CHECK(s.done == 1 && s.errv[0] == 0);
	CHECK(0 == strcmp(s.val[0], "7"));

 out:
	mem_deref(db);

	return err;
}


/* the expected queue wait: 0 when idle, the head's age while it waits */
struct wait_probe {
	struct db *db;
	uint32_t busy_ms;
	uint32_t oldest_ms;
};

static void wait_probe_h(void *arg)
{
	struct wait_probe *p = arg;
	struct db_stats st;

	db_stats(p->db, &st);
	p->busy_ms = db_queue_wait_ms(p->db);
	p->oldest_ms = st.oldest_ms;
}


int test_queue_wait(void)
{
	static struct seq_item items[2];
	const char *slow[1] = {"0.6"}, *fast[1] = {"1"};
	struct wait_probe p;
	struct waiter w;
	struct seq s;
	struct tmr t;
	struct db *db = NULL;
	int err;

	memset(&s, 0, sizeof(s));
	memset(&w, 0, sizeof(w));
	memset(&p, 0, sizeof(p));
	tmr_init(&t);
	s.total = 2;
	items[0].seq = items[1].seq = &s;
	items[0].idx = 0;
	items[1].idx = 1;

	err = db_open(&db, 1, &w);
	if (err)
		goto out;

	CHECK_ERR(wait_state(db, &w, true, 10000), 0);
	CHECK(db_down_ms(db) == 0);

	/* warm up (the statements are prepared) */
	CHECK_ERR(db_exec(NULL, db, "t_echo", 1, fast, 0, false, seq_handler,
			  &items[0]), 0);
	CHECK_ERR(db_exec(NULL, db, "t_sleep", 1, (const char *[]){"0"}, 0,
			  false, seq_handler, &items[1]), 0);
	CHECK_ERR(run_loop(4000), 0);
	CHECK(db_queue_wait_ms(db) == 0);

	memset(&s, 0, sizeof(s));
	s.total = 2;

	/* one connection, busy for 0.6 s: the echo behind it waits */
	p.db = db;
	CHECK_ERR(db_exec(NULL, db, "t_sleep", 1, slow, 0, false,
			  seq_handler, &items[0]), 0);
	CHECK_ERR(db_exec(NULL, db, "t_echo", 1, fast, 0, false, seq_handler,
			  &items[1]), 0);
	tmr_start(&t, 300, wait_probe_h, &p);

	CHECK_ERR(run_loop(4000), 0);
	CHECK(s.done == 2 && s.errv[0] == 0 && s.errv[1] == 0);
	CHECK(p.oldest_ms >= 250);
	CHECK(p.busy_ms >= p.oldest_ms);

	/* nothing waits, the connection is idle */
	CHECK(db_queue_wait_ms(db) == 0);

 out:
	tmr_cancel(&t);
	mem_deref(db);

	return err;
}
