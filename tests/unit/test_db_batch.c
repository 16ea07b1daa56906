/**
 * @file test_db_batch.c  Batches, and freeing the client with queries pending
 */

#include <stdlib.h>
#include <string.h>
#include <libpq-fe.h>
#include <re.h>
#include "core.h"
#include "db.h"
#include "test_db.h"


/* a batchable echo, division and optional row; queued before the only
   connection is up, so that they wait and go in batches */
static int batch_open(struct db **dbp)
{
	static const char *forms[][3] = {
		{"t_echo", "t_echo_b", "SELECT u.i, u.v::int FROM"
		 " unnest($1::text[]) WITH ORDINALITY AS u(v, i)"},
		{"t_div", "t_div_b", "SELECT u.i, 1 / u.v FROM"
		 " unnest($1::int[]) WITH ORDINALITY AS u(v, i)"},
		{"t_sleep", "t_sleep_b", "SELECT u.i, pg_sleep(u.v), u.v::text"
		 " FROM unnest($1::float8[]) WITH ORDINALITY AS u(v, i)"},
	};
	struct db *db;
	size_t i;
	int err;

	err = db_open(&db, 1, NULL);
	if (err)
		return err;

	err = db_prepare(db, "t_opt", "SELECT $1::int WHERE $1::int % 3 <> 0",
			 1);
	err |= db_prepare_batch(db, "t_opt", "t_opt_b", "SELECT u.i, u.v"
				" FROM unnest($1::int[]) WITH ORDINALITY"
				" AS u(v, i) WHERE u.v % 3 <> 0", 8);
	for (i = 0; i < ARRAY_SIZE(forms) && !err; i++)
		err = db_prepare_batch(db, forms[i][0], forms[i][1],
				       forms[i][2], 64);

	if (err)
		mem_deref(db);
	else
		*dbp = db;

	return err;
}


/* rows of a batch reach their own queries, in order, with the values
   and NULLs of each */
int test_batch_results(void)
{
	enum { N = 150 };
	static struct seq_item items[N];
	static const char *odd[] = {"a\"b", "c\\d", "{e,f}", "NULL", "", NULL};
	struct seq s;
	struct db_stats st;
	struct db *db = NULL;
	char lens[ARRAY_SIZE(odd)][8];
	unsigned i;
	int err;

	memset(&s, 0, sizeof(s));
	s.total = N;

	err = batch_open(&db);
	if (err)
		goto out;

	CHECK_ERR(db_prepare_batch(db, "t_len", "t_len_b", "SELECT u.i,"
				   " length(u.v) FROM unnest($1::text[])"
				   " WITH ORDINALITY AS u(v, i)", 8), 0);
	CHECK_ERR(db_prepare_batch(db, "t_nosuch", "x", "SELECT 1", 8),
		  ENOENT);
	CHECK_ERR(db_prepare_batch(db, "t_len", "t_len_b2", "SELECT 1", 1),
		  EINVAL);

	CHECK_ERR(echo_run(db, items, &s, N), 0);

	db_stats(db, &st);
	CHECK(st.queries == N);
	CHECK(st.errors == 0);
	CHECK(st.batched == N);          /* 64 + 64 + 22 */
	CHECK(st.batches == 3);

	/* quotes, backslashes, braces, the word NULL, "" and SQL NULL
	   survive the array literal */
	memset(&s, 0, sizeof(s));
	s.total = ARRAY_SIZE(odd);
	for (i = 0; i < ARRAY_SIZE(odd); i++) {
		const char *values[1] = {odd[i]};

		items[i].seq = &s;
		items[i].idx = i;
		CHECK_ERR(db_exec(NULL, db, "t_len", 1, values, 0, false,
				  seq_handler, &items[i]), 0);
		(void)re_snprintf(lens[i], sizeof(lens[i]), "%zu",
				  odd[i] ? strlen(odd[i]) : 0);
	}
	CHECK_ERR(run_loop(20000), 0);
	CHECK(s.done == ARRAY_SIZE(odd) && s.bad == 0);
	for (i = 0; i + 1 < ARRAY_SIZE(odd); i++)
		CHECK(0 == strcmp(s.val[i], lens[i]));
	CHECK(s.val[ARRAY_SIZE(odd) - 1][0] == '\0');  /* NULL: no value */

 out:
	mem_deref(db);

	return err;
}


/* a query with no row gets an empty result; a failing batch goes again
   one by one and only the query at fault fails */
static unsigned opt_rows[9], opt_err;

static void opt_handler(int err, const struct pg_result *r, void *arg)
{
	const PGresult *res = (const PGresult *)r;
	struct seq_item *it = arg;

	if (err)
		++opt_err;
	else
		opt_rows[it->idx] = (unsigned)PQntuples(res) + 1;

	seq_handler(err, r, arg);
}


int test_batch_errors(void)
{
	static struct seq_item items[16];
	static const char *divs[] = {"5", "4", "0", "2", "1"};
	struct seq s;
	struct db_stats st;
	struct db *db = NULL;
	unsigned i;
	int err;

	memset(&s, 0, sizeof(s));
	memset(opt_rows, 0, sizeof(opt_rows));
	opt_err = 0;
	s.total = 9 + ARRAY_SIZE(divs);

	err = batch_open(&db);
	if (err)
		goto out;

	for (i = 0; i < 9; i++) {
		char v[8];
		const char *values[1] = {v};

		(void)re_snprintf(v, sizeof(v), "%u", i + 1);
		items[i].seq = &s;
		items[i].idx = i;
		CHECK_ERR(db_exec(NULL, db, "t_opt", 1, values, 0, false,
				  opt_handler, &items[i]), 0);
	}
	for (i = 0; i < ARRAY_SIZE(divs); i++) {
		items[9 + i].seq = &s;
		items[9 + i].idx = 9 + i;
		CHECK_ERR(db_exec(NULL, db, "t_div", 1, &divs[i], 0, false,
				  seq_handler, &items[9 + i]), 0);
	}

	CHECK_ERR(run_loop(20000), 0);
	CHECK(s.done == s.total && s.bad == 0);
	CHECK(opt_err == 0);
	for (i = 0; i < 9; i++)
		CHECK(opt_rows[i] == ((i + 1) % 3 ? 2u : 1u));

	/* 1/5 = 0, 1/4 = 0, 1/0 fails, 1/2 = 0, 1/1 = 1 */
	CHECK(s.errv[9] == 0 && s.errv[10] == 0 && s.errv[12] == 0);
	CHECK(s.errv[11] == EPROTO);
	CHECK(s.errv[13] == 0 && 0 == strcmp(s.val[13], "1"));

	db_stats(db, &st);
	CHECK(st.errors == 1);
	/* t_opt's first 8 (its batch_max), the 9th alone, t_div's batch
	   that failed */
	CHECK(st.batches == 2);
	CHECK(st.batched == 8 + ARRAY_SIZE(divs));

 out:
	mem_deref(db);

	return err;
}


/* a query of a batch detached while the batch runs: its handler never
   runs, the others' do, and what is queued after waits for the batch */
int test_batch_detach(void)
{
	static struct seq_item items[4];
	const char *slow[1] = {"0.3"};
	struct detach_ctx ctx = {NULL};
	struct db_query *q0 = NULL, *q2 = NULL;
	struct seq s;
	struct tmr t;
	struct db *db = NULL;
	unsigned i;
	int err;

	memset(&s, 0, sizeof(s));
	tmr_init(&t);
	s.total = 3;
	detached_calls = 0;
	for (i = 0; i < ARRAY_SIZE(items); i++) {
		items[i].seq = &s;
		items[i].idx = i;
	}

	err = batch_open(&db);
	if (err)
		goto out;

	CHECK_ERR(db_exec(&q0, db, "t_sleep", 1, slow, 0, false, seq_handler,
			  &items[0]), 0);
	CHECK_ERR(db_exec(&ctx.q, db, "t_sleep", 1, slow, 0, false,
			  detached_handler, NULL), 0);
	CHECK_ERR(db_exec(&q2, db, "t_sleep", 1, slow, 0, false, seq_handler,
			  &items[1]), 0);

	/* 100 ms after the batch went: the connection is up within 1 s */
	for (i = 0; i < 100 && !db_is_up(db); i++)
		(void)run_loop(10);
	CHECK(db_is_up(db));
	tmr_start(&t, 100, detach_timer, &ctx);
	CHECK_ERR(db_exec(NULL, db, "t_echo", 1, (const char *[]){"2"}, 0,
			  false, seq_handler, &items[2]), 0);

	CHECK_ERR(run_loop(10000), 0);
	CHECK(s.done == 3 && s.bad == 0);
	CHECK(s.errv[0] == 0 && s.errv[1] == 0 && s.errv[2] == 0);
	CHECK(0 == strcmp(s.val[0], "") && q0 == NULL && q2 == NULL);
	CHECK(ctx.q == NULL);
	CHECK(detached_calls == 0);

 out:
	tmr_cancel(&t);
	mem_deref(ctx.q);
	mem_deref(q0);
	mem_deref(q2);
	mem_deref(db);

	return err;
}


/* freeing the db drops pending queries without running handlers */
int test_free_pending(void)
{
	const char *values[1] = {"1"};
	struct db_query *q = NULL;
	struct db *db = NULL;
	int err, i;

	detached_calls = 0;

	err = db_open(&db, 1, NULL);
	if (err)
		goto out;

	CHECK_ERR(db_exec(&q, db, "t_echo", 1, values, 100, false,
			  detached_handler, NULL), 0);
	for (i = 0; i < 5; i++)
		CHECK_ERR(db_exec(NULL, db, "t_echo", 1, values, 100, false,
				  detached_handler, NULL), 0);

	db = mem_deref(db);
	CHECK(q == NULL);

	CHECK_ERR(run_loop(300), ETIMEDOUT);   /* nothing left to fire */
	CHECK(detached_calls == 0);

 out:
	mem_deref(db);

	return err;
}


/* the owner frees the db from a handler: no handler runs after that */
static struct db *freed_db;
static unsigned freed_calls;

static void free_db_handler(int err, const struct pg_result *r, void *arg)
{
	(void)err;
	(void)r;
	(void)arg;

	if (++freed_calls == 2)
		freed_db = mem_deref(freed_db);
}


int test_free_in_handler(void)
{
	const char *values[1] = {"1"};
	int err = 0, i;

	freed_calls = 0;

	err = db_open(&freed_db, 1, NULL);
	if (err)
		goto out;

	for (i = 0; i < 6; i++)
		CHECK_ERR(db_exec(NULL, freed_db, "t_echo", 1, values, 0,
				  false, free_db_handler, NULL), 0);

	CHECK_ERR(run_loop(1000), ETIMEDOUT);
	CHECK(freed_db == NULL);
	CHECK(freed_calls == 2);

 out:
	freed_db = mem_deref(freed_db);

	return err;
}
