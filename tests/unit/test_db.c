/**
 * @file test_db.c  PostgreSQL client tests against a real server
 *
 * One program of several files: this one holds what they share and
 * main(); test_db_migrate.c, test_db_query.c, test_db_batch.c,
 * test_db_conn.c, test_db_pool.c, test_db_account.c and
 * test_db_listen.c the tests.
 *
 * Run by tests/unit/test_db.sh, which starts a private cluster with
 * tests/lib/pgtest.sh and exports:
 *   PGTEST_CONNINFO  connection string of the migrated database
 *   PGTEST_DIR       the cluster directory
 *   PGTEST_CLUSTER   path of tools/pg-cluster.sh (to stop and start it)
 *   top_srcdir       source tree (for sql/)
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <libpq-fe.h>
#include <re.h>
#include "core.h"
#include "db.h"
#include "test_db.h"

const char *conninfo;
const char *cluster_dir;
const char *cluster_tool;
const char *srcdir;

static unsigned n_passed, n_failed;


uint64_t now_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);

	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}


/* ------------------------------------------------------------- helpers */

static bool loop_expired;

static void guard_handler(void *arg)
{
	(void)arg;
	loop_expired = true;
	re_cancel();
}


/* run the event loop until re_cancel() or max_ms */
int run_loop(uint32_t max_ms)
{
	struct tmr guard;
	int err;

	tmr_init(&guard);
	loop_expired = false;
	tmr_start(&guard, max_ms, guard_handler, NULL);

	err = re_main(NULL);

	tmr_cancel(&guard);

	if (err)
		return err;

	return loop_expired ? ETIMEDOUT : 0;
}


/* blocking SQL for set-up (tests only) */
int sql(const char *cinfo, const char *text)
{
	PGconn *conn = PQconnectdb(cinfo);
	PGresult *res;
	int err = 0;

	if (PQstatus(conn) != CONNECTION_OK) {
		(void)re_fprintf(stderr, "  connect: %s", PQerrorMessage(conn));
		PQfinish(conn);
		return ECONNREFUSED;
	}

	res = PQexec(conn, text);
	if (PQresultStatus(res) != PGRES_COMMAND_OK &&
	    PQresultStatus(res) != PGRES_TUPLES_OK) {
		(void)re_fprintf(stderr, "  sql: %s",
				 PQresultErrorMessage(res));
		err = EPROTO;
	}

	PQclear(res);
	PQfinish(conn);

	return err;
}


/* one integer from a blocking query, -1 on error */
long sql_int(const char *cinfo, const char *text)
{
	PGconn *conn = PQconnectdb(cinfo);
	PGresult *res;
	long v = -1;

	if (PQstatus(conn) == CONNECTION_OK) {
		res = PQexec(conn, text);
		if (PQresultStatus(res) == PGRES_TUPLES_OK &&
		    PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
			v = atol(PQgetvalue(res, 0, 0));
		PQclear(res);
	}

	PQfinish(conn);

	return v;
}


/* a connection string whose default schema is a fresh schema */
int schema_conninfo(char **cip, const char *schema)
{
	char *drop = NULL;
	int err;

	err = re_sdprintf(&drop, "SET client_min_messages = warning;"
			  " DROP SCHEMA IF EXISTS %s CASCADE;"
			  " CREATE SCHEMA %s", schema, schema);
	if (err)
		return err;

	err = sql(conninfo, drop);
	mem_deref(drop);
	if (err)
		return err;

	return re_sdprintf(cip, "%s options='-c search_path=%s'", conninfo,
			   schema);
}


/* tools/pg-cluster.sh CMD DIR [MODE] */
int cluster(const char *cmd, const char *mode)
{
	char *line = NULL;
	int r, err;

	err = re_sdprintf(&line, "'%s' %s '%s' %s >/dev/null", cluster_tool,
			  cmd, cluster_dir, mode ? mode : "");
	if (err)
		return err;

	r = system(line);
	mem_deref(line);

	return (r == 0) ? 0 : EIO;
}


/* ------------------------------------------------------- async client */


static void state_handler(bool up, void *arg)
{
	struct waiter *w = arg;

	if (up)
		++w->up;
	else
		++w->down;

	if (w->stop_on_state && up == w->want_up)
		re_cancel();
}


int db_open(struct db **dbp, uint32_t nconn, struct waiter *w)
{
	static const char *stmts[][2] = {
		{"t_echo",  "SELECT $1::int"},
		{"t_div",   "SELECT 1 / $1::int"},
		{"t_sleep", "SELECT pg_sleep($1::float8), $1::text"},
		{"t_len",   "SELECT length($1::text)"},
		{"t_pid",   "SELECT pg_backend_pid(), pg_sleep($1::float8)"},
	};
	struct db *db;
	size_t i;
	int err;

	err = db_alloc(&db, conninfo, nconn);
	if (err)
		return err;

	for (i = 0; i < ARRAY_SIZE(stmts); i++) {
		err = db_prepare(db, stmts[i][0], stmts[i][1], 1);
		if (err)
			goto out;
	}

	if (w)
		db_set_state_handler(db, state_handler, w);

 out:
	if (err)
		mem_deref(db);
	else
		*dbp = db;

	return err;
}


/* wait until the client is up (or down) */
int wait_state(struct db *db, struct waiter *w, bool up,
		      uint32_t max_ms)
{
	int err;

	if (db_is_up(db) == up)
		return 0;

	w->want_up = up;
	w->stop_on_state = true;
	err = run_loop(max_ms);
	w->stop_on_state = false;

	if (err)
		return err;

	return db_is_up(db) == up ? 0 : EINVAL;
}





void seq_handler(int err, const struct pg_result *r, void *arg)
{
	const PGresult *res = (const PGresult *)r;
	struct seq_item *it = arg;
	struct seq *s = it->seq;
	unsigned n = s->done++;

	if (n < ARRAY_SIZE(s->errv)) {
		s->errv[n] = err;
		s->at[n] = now_ms();
		s->order[n] = it->idx;
		s->val[n][0] = '\0';
		if (res && PQresultStatus(res) == PGRES_TUPLES_OK &&
		    PQntuples(res) == 1)
			str_ncpy(s->val[n], PQgetvalue(res, 0, 0),
				 sizeof(s->val[n]));
	}

	if (it->idx != n)
		++s->bad;

	if (s->done == s->total)
		re_cancel();
}


/* echo handler: checks the value against the submission index */
void echo_handler(int err, const struct pg_result *r, void *arg)
{
	const PGresult *res = (const PGresult *)r;
	struct seq_item *it = arg;

	if (err || !res || PQntuples(res) != 1 ||
	    (unsigned)atoi(PQgetvalue(res, 0, 0)) != it->idx)
		++it->seq->bad;

	seq_handler(err, r, arg);
}


/* queue n t_echo queries (values 0..n-1) checked by echo_handler, run
   the loop until all are done; their order and values are in s */
int echo_run(struct db *db, struct seq_item *items, struct seq *s,
		    unsigned n)
{
	unsigned i;
	int err = 0;

	memset(s, 0, sizeof(*s));
	s->total = n;

	for (i = 0; i < n; i++) {
		char v[16];
		const char *values[1] = {v};

		(void)re_snprintf(v, sizeof(v), "%u", i);
		items[i].seq = s;
		items[i].idx = i;
		CHECK_ERR(db_exec(NULL, db, "t_echo", 1, values, 0, false,
				  echo_handler, &items[i]), 0);
	}

	CHECK_ERR(run_loop(20000), 0);
	CHECK(s->done == n);
	CHECK(s->bad == 0);

 out:
	return err;
}


unsigned detached_calls;

void detached_handler(int err, const struct pg_result *r, void *arg)
{
	(void)err;
	(void)r;
	(void)arg;
	++detached_calls;
}



void detach_timer(void *arg)
{
	struct detach_ctx *ctx = arg;

	ctx->q = mem_deref(ctx->q);
}



void cluster_timer(void *arg)
{
	struct restart_ctx *rc = arg;

	rc->err = cluster(rc->cmd, rc->mode);
	if (rc->err)
		re_cancel();
}


/* ----------------------------------------------------------------- main */

static void run(const char *name, int (*fn)(void))
{
	uint64_t t0 = now_ms();
	int err = fn();

	if (err) {
		++n_failed;
		(void)re_printf("FAIL %s (%s)\n", name, strerror(err));
	}
	else {
		++n_passed;
		(void)re_printf("ok   %s (%llu ms)\n", name,
				(unsigned long long)(now_ms() - t0));
	}
}


int main(void)
{
	int err;

	conninfo = getenv("PGTEST_CONNINFO");
	cluster_dir = getenv("PGTEST_DIR");
	cluster_tool = getenv("PGTEST_CLUSTER");
	srcdir = getenv("top_srcdir");

	if (!conninfo || !cluster_dir || !cluster_tool || !srcdir) {
		(void)fprintf(stderr, "test_db: run it from test_db.sh"
			      " (needs PGTEST_CONNINFO, PGTEST_DIR,"
			      " PGTEST_CLUSTER, top_srcdir)\n");
		return 2;
	}

	setvbuf(stdout, NULL, _IOLBF, 0);

	err = libre_init();
	if (err)
		return 1;

	/* the tests provoke errors on purpose: log them only on request */
	tlog_init(CFG_LOG_STDERR, getenv("TEST_DEBUG") ? LOG_DEBUG
		  : LOG_CRIT, "test_db");

	run("migrate", test_migrate);
	run("migrate_errors", test_migrate_errors);
	run("migrate_race", test_migrate_race);
	run("api_errors", test_api_errors);
	run("queue_order", test_queue_order);
	run("large", test_large);
	run("copy", test_copy);
	run("sql_error", test_sql_error);
	run("sql_error_result", test_sql_error_result);
	run("timeout", test_timeout);
	run("detach", test_detach);
	run("statement_timeout", test_statement_timeout);
	run("queue_wait", test_queue_wait);
	run("batch_results", test_batch_results);
	run("batch_errors", test_batch_errors);
	run("batch_detach", test_batch_detach);
	run("free_pending", test_free_pending);
	run("free_in_handler", test_free_in_handler);
	run("unreachable", test_unreachable);
	run("multi_host", test_multi_host);
	run("read_only", test_read_only);
	run("accounts", test_accounts);
	run("listen", test_listen);
	run("restart", test_restart);
	run("pool_many", test_pool_many);
	run("pool_spread", test_pool_spread);
	run("pool_fence", test_pool_fence);
	run("pool_restart", test_pool_restart);

	libre_close();

	if (n_failed)
		(void)re_printf("(TEST_DEBUG=1 shows the client's log)\n");

	(void)re_printf("%u passed, %u failed\n", n_passed, n_failed);

	return n_failed ? 1 : 0;
}
