/**
 * @file test_db.c  PostgreSQL client tests against a real server
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

static const char *conninfo;
static const char *cluster_dir;
static const char *cluster_tool;
static const char *srcdir;

static unsigned n_passed, n_failed;


#define CHECK(cond) do {						\
		if (!(cond)) {						\
			(void)re_fprintf(stderr, "  %s:%d: check failed:" \
					 " %s\n", __FILE__, __LINE__, #cond); \
			err = EINVAL;					\
			goto out;					\
		}							\
	} while (0)

#define CHECK_ERR(e, want) do {						\
		int e_ = (e);						\
		if (e_ != (want)) {					\
			(void)re_fprintf(stderr, "  %s:%d: %s returned %d" \
					 " (%s), want %d\n", __FILE__,	\
					 __LINE__, #e, e_, strerror(e_), \
					 (want));			\
			err = EINVAL;					\
			goto out;					\
		}							\
	} while (0)


static uint64_t now_ms(void)
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
static int run_loop(uint32_t max_ms)
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
static int sql(const char *cinfo, const char *text)
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
static long sql_int(const char *cinfo, const char *text)
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
static int schema_conninfo(char **cip, const char *schema)
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
static int cluster(const char *cmd, const char *mode)
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


/* output of the migration helpers, kept for checks */
static char outbuf[8192];
static size_t outlen;

static int out_vph(const char *p, size_t size, void *arg)
{
	(void)arg;

	if (outlen + size >= sizeof(outbuf))
		size = sizeof(outbuf) - 1 - outlen;

	memcpy(outbuf + outlen, p, size);
	outlen += size;
	outbuf[outlen] = '\0';

	return 0;
}

static struct re_printf outpf = {out_vph, NULL};

static void out_reset(void)
{
	outlen = 0;
	outbuf[0] = '\0';
}


static int write_file(const char *dir, const char *name, const char *text)
{
	char path[512];
	FILE *f;

	(void)re_snprintf(path, sizeof(path), "%s/%s", dir, name);

	f = fopen(path, "w");
	if (!f)
		return errno;

	(void)fputs(text, f);

	return fclose(f) ? errno : 0;
}


static void remove_dir(const char *dir)
{
	char cmd[600];

	(void)re_snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	(void)system(cmd);
}


/* ----------------------------------------------------------- migrations */

static int test_migrate(void)
{
	char *ci = NULL, *sqldir = NULL;
	int version = -1;
	long rows;
	int err;

	err = re_sdprintf(&sqldir, "%s/sql", srcdir);
	err |= schema_conninfo(&ci, "t_mig");
	if (err)
		goto out;

	CHECK_ERR(db_schema_version_sync(ci, &version, &outpf), 0);
	CHECK(version == 0);
	CHECK_ERR(db_schema_check_sync(ci, &outpf), EPROTO);
	CHECK(strstr(outbuf, "tollgate --migrate") != NULL);

	out_reset();
	CHECK_ERR(db_migrate_sync(ci, sqldir, &outpf), 0);
	CHECK(strstr(outbuf, "applied 001_init.sql") != NULL);

	CHECK_ERR(db_schema_version_sync(ci, &version, &outpf), 0);
	CHECK(version >= DB_SCHEMA_VERSION);
	CHECK_ERR(db_schema_check_sync(ci, &outpf), 0);
	CHECK(sql_int(conninfo, "SELECT count(*) FROM pg_tables"
		      " WHERE schemaname = 't_mig'"
		      " AND tablename IN ('accounts', 'cdrs', 'rates',"
		      " 'schema_version')") == 4);
	rows = sql_int(conninfo, "SELECT count(*) FROM t_mig.schema_version");
	CHECK(rows == version);

	/* idempotent */
	out_reset();
	CHECK_ERR(db_migrate_sync(ci, sqldir, &outpf), 0);
	CHECK(strstr(outbuf, "applied") == NULL);
	CHECK(strstr(outbuf, "up to date") != NULL);
	CHECK(sql_int(conninfo, "SELECT count(*) FROM t_mig.schema_version")
	      == rows);

 out:
	if (err)
		(void)re_fprintf(stderr, "  output: %s\n", outbuf);
	mem_deref(ci);
	mem_deref(sqldir);
	out_reset();

	return err;
}


static int test_migrate_errors(void)
{
	char dir[] = "/tmp/tollgate-mig-XXXXXX";
	char *ci = NULL, *path = NULL;
	int version = -1;
	int err;

	if (!mkdtemp(dir))
		return errno;

	err = schema_conninfo(&ci, "t_migerr");
	if (err)
		goto out;

	/* nothing to apply */
	CHECK_ERR(db_migrate_sync(ci, dir, &outpf), ENOENT);
	CHECK(strstr(outbuf, "no migrations") != NULL);

	/* gap */
	out_reset();
	CHECK_ERR(write_file(dir, "001_one.sql",
			     "CREATE TABLE one (x int);\n"), 0);
	CHECK_ERR(write_file(dir, "003_three.sql",
			     "CREATE TABLE three (x int);\n"), 0);
	CHECK_ERR(write_file(dir, "README", "not a migration\n"), 0);
	CHECK_ERR(db_migrate_sync(ci, dir, &outpf), EINVAL);
	CHECK(strstr(outbuf, "migration 2 is missing") != NULL);
	CHECK_ERR(db_schema_version_sync(ci, &version, &outpf), 0);
	CHECK(version == 0);

	/* duplicate number */
	out_reset();
	CHECK_ERR(re_sdprintf(&path, "%s/003_three.sql", dir), 0);
	CHECK(unlink(path) == 0);
	CHECK_ERR(write_file(dir, "1_uno.sql", "CREATE TABLE uno (x int);\n"),
		  0);
	CHECK_ERR(db_migrate_sync(ci, dir, &outpf), EINVAL);
	CHECK(strstr(outbuf, "same number 1") != NULL);
	path = mem_deref(path);
	CHECK_ERR(re_sdprintf(&path, "%s/1_uno.sql", dir), 0);
	CHECK(unlink(path) == 0);

	/* bad name */
	out_reset();
	CHECK_ERR(write_file(dir, "002.sql", "SELECT 1;\n"), 0);
	CHECK_ERR(db_migrate_sync(ci, dir, &outpf), EINVAL);
	CHECK(strstr(outbuf, "bad migration file name") != NULL);
	path = mem_deref(path);
	CHECK_ERR(re_sdprintf(&path, "%s/002.sql", dir), 0);
	CHECK(unlink(path) == 0);

	/* a failing migration: the earlier one stays, it is rolled back */
	out_reset();
	CHECK_ERR(write_file(dir, "002_two.sql",
			     "CREATE TABLE two (x int);\n"
			     "INSERT INTO two VALUES (1);\n"
			     "SELEC broken;\n"), 0);
	CHECK_ERR(db_migrate_sync(ci, dir, &outpf), EPROTO);
	CHECK(strstr(outbuf, "applied 001_one.sql") != NULL);
	CHECK(strstr(outbuf, "002_two.sql:3: syntax error") != NULL);
	CHECK_ERR(db_schema_version_sync(ci, &version, &outpf), 0);
	CHECK(version == 1);
	CHECK(sql_int(conninfo, "SELECT count(*) FROM pg_tables WHERE"
		      " schemaname = 't_migerr' AND tablename = 'two'") == 0);

	/* a migration must not end the transaction */
	out_reset();
	CHECK_ERR(write_file(dir, "002_two.sql",
			     "CREATE TABLE two (x int);\nCOMMIT;\n"), 0);
	CHECK_ERR(db_migrate_sync(ci, dir, &outpf), EPROTO);
	CHECK(strstr(outbuf, "ends the transaction itself") != NULL);
	CHECK_ERR(db_schema_version_sync(ci, &version, &outpf), 0);
	CHECK(version == 1);
	CHECK_ERR(sql(conninfo, "DROP TABLE t_migerr.two"), 0);

	/* fixed */
	out_reset();
	CHECK_ERR(write_file(dir, "002_two.sql",
			     "CREATE TABLE two (x int);\n"
			     "INSERT INTO two VALUES (1);\n"), 0);
	CHECK_ERR(db_migrate_sync(ci, dir, &outpf), 0);
	CHECK(strstr(outbuf, "applied 002_two.sql") != NULL);
	CHECK(strstr(outbuf, "applied 001_one.sql") == NULL);
	CHECK_ERR(db_schema_version_sync(ci, &version, &outpf), 0);
	CHECK(version == 2);

	/* unreachable server, missing directory */
	out_reset();
	CHECK_ERR(db_migrate_sync("host=/nonexistent dbname=x", dir, &outpf),
		  ECONNREFUSED);
	CHECK(strstr(outbuf, "cannot connect") != NULL);
	CHECK_ERR(db_migrate_sync(ci, "/nonexistent/sql", &outpf), ENOENT);

 out:
	if (err)
		(void)re_fprintf(stderr, "  output: %s\n", outbuf);
	remove_dir(dir);
	mem_deref(path);
	mem_deref(ci);
	out_reset();

	return err;
}


/* two migrators at once: each file applied exactly once */
static int test_migrate_race(void)
{
	char *ci = NULL, *sqldir = NULL;
	pid_t pid[2];
	int i, err;

	err = re_sdprintf(&sqldir, "%s/sql", srcdir);
	err |= schema_conninfo(&ci, "t_race");
	if (err)
		goto out;

	for (i = 0; i < 2; i++) {
		pid[i] = fork();
		if (pid[i] == 0) {
			int e = db_migrate_sync(ci, sqldir, &outpf);

			/* the child's copies: valgrind checks it too */
			mem_deref(ci);
			mem_deref(sqldir);
			_exit(e ? 1 : 0);
		}
		CHECK(pid[i] > 0);
	}

	for (i = 0; i < 2; i++) {
		int status = -1;

		CHECK(waitpid(pid[i], &status, 0) == pid[i]);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}

	CHECK(sql_int(conninfo, "SELECT count(*) FROM t_race.schema_version")
	      == sql_int(conninfo, "SELECT max(version)"
			 " FROM t_race.schema_version"));
	CHECK(sql_int(conninfo, "SELECT max(version)"
		      " FROM t_race.schema_version") >= DB_SCHEMA_VERSION);

 out:
	mem_deref(ci);
	mem_deref(sqldir);

	return err;
}


/* ------------------------------------------------------- async client */

struct waiter {
	int up, down;
	bool want_up;      /* re_cancel() when the state becomes this */
	bool stop_on_state;
};

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


static int db_open(struct db **dbp, uint32_t nconn, struct waiter *w)
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
static int wait_state(struct db *db, struct waiter *w, bool up,
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


struct seq {
	unsigned total;      /* expected completions                 */
	unsigned done;       /* completions so far                   */
	unsigned bad;        /* out of order or wrong value          */
	int errv[64];        /* err of the first completions         */
	char val[64][16];    /* first column of the first completions */
	uint64_t at[64];     /* ms                                   */
	unsigned order[64];  /* index in submission order            */
};

struct seq_item {
	struct seq *seq;
	unsigned idx;
};


static void seq_handler(int err, const struct pg_result *r, void *arg)
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
static void echo_handler(int err, const struct pg_result *r, void *arg)
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
static int echo_run(struct db *db, struct seq_item *items, struct seq *s,
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


static int test_queue_order(void)
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
static int test_large(void)
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
static int test_copy(void)
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


static int test_api_errors(void)
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


static int test_sql_error(void)
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


static int test_sql_error_result(void)
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


static int test_timeout(void)
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


static unsigned detached_calls;

static void detached_handler(int err, const struct pg_result *r, void *arg)
{
	(void)err;
	(void)r;
	(void)arg;
	++detached_calls;
}


struct detach_ctx {
	struct db_query *q;
};

static void detach_timer(void *arg)
{
	struct detach_ctx *ctx = arg;

	ctx->q = mem_deref(ctx->q);
}


static int test_detach(void)
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


/* ------------------------------------------------------------ batches */

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
static int test_batch_results(void)
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


static int test_batch_errors(void)
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
static int test_batch_detach(void)
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
static int test_free_pending(void)
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


static int test_free_in_handler(void)
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


/* no server at all: queries wait, then time out; reconnects go on */
static int test_unreachable(void)
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

 out:
	mem_deref(db);

	return err;
}


/* server stopped and restarted */

struct restart_ctx {
	struct tmr tmr;
	int err;
	const char *cmd;
	const char *mode;
};

static void cluster_timer(void *arg)
{
	struct restart_ctx *rc = arg;

	rc->err = cluster(rc->cmd, rc->mode);
	if (rc->err)
		re_cancel();
}


static int test_restart(void)
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


/* ----------------------------------------------------------------- pool */

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
static int test_pool_many(void)
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
static int test_pool_spread(void)
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
static int test_pool_fence(void)
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
static int test_pool_restart(void)
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


/* ------------------------------------------------------------- accounts */

struct acct_res {
	int err;
	bool called;
	struct acct_info acct;
};

static void acct_handler(int err, const struct acct_info *acct, void *arg)
{
	struct acct_res *ar = arg;

	ar->err = err;
	ar->called = true;
	if (acct)
		ar->acct = *acct;

	re_cancel();
}


static int test_accounts(void)
{
	struct acct_res ar;
	struct db *db = NULL;
	uint8_t md[MD5_SIZE];
	char ha1[MD5_STR_SIZE];
	char longname[100];
	int err;

	md5((const uint8_t *)"t-alice:tollgate:secret", 23, md);
	(void)re_snprintf(ha1, sizeof(ha1), "%w", md, sizeof(md));

	err = sql(conninfo,
		  "DELETE FROM accounts WHERE name LIKE 't-%';"
		  "INSERT INTO accounts (name, balance, sip_username, sip_ha1)"
		  " VALUES ('t-alice', 5000000, 't-alice',"
		  " md5('t-alice:tollgate:secret'));"
		  "INSERT INTO accounts (name, status) VALUES"
		  " ('t-bob', 'blocked')");
	if (err)
		goto out;

	err = db_alloc(&db, conninfo, 2);
	if (err)
		goto out;

	CHECK_ERR(acct_register_statements(db), 0);
	CHECK_ERR(acct_register_statements(db), 0);   /* again: no-op */

	memset(&ar, 0, sizeof(ar));
	CHECK_ERR(acct_by_sipuser(NULL, db, "t-alice", 5000, acct_handler,
				  &ar), 0);
	CHECK_ERR(run_loop(10000), 0);
	CHECK(ar.called && ar.err == 0);
	CHECK(0 == strcmp(ar.acct.name, "t-alice"));
	CHECK(0 == strcmp(ar.acct.sip_username, "t-alice"));
	CHECK(0 == strcmp(ar.acct.ha1, ha1));
	CHECK(ar.acct.active);
	CHECK(ar.acct.id == sql_int(conninfo, "SELECT id FROM accounts"
				    " WHERE name = 't-alice'"));

	memset(&ar, 0, sizeof(ar));
	CHECK_ERR(acct_by_name(NULL, db, "t-bob", 5000, acct_handler, &ar), 0);
	CHECK_ERR(run_loop(10000), 0);
	CHECK(ar.called && ar.err == 0);
	CHECK(0 == strcmp(ar.acct.name, "t-bob"));
	CHECK(!ar.acct.active);
	CHECK(ar.acct.ha1[0] == '\0' && ar.acct.sip_username[0] == '\0');

	memset(&ar, 0, sizeof(ar));
	CHECK_ERR(acct_by_sipuser(NULL, db, "t-nobody", 5000, acct_handler,
				  &ar), 0);
	CHECK_ERR(run_loop(10000), 0);
	CHECK(ar.called && ar.err == ENOENT);

	memset(&ar, 0, sizeof(ar));
	CHECK_ERR(acct_by_name(NULL, db, "t-bob'; --", 5000, acct_handler,
			       &ar), 0);
	CHECK_ERR(run_loop(10000), 0);
	CHECK(ar.called && ar.err == ENOENT);

	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	CHECK_ERR(acct_by_name(NULL, db, "", 0, acct_handler, &ar), EINVAL);
	CHECK_ERR(acct_by_name(NULL, db, longname, 0, acct_handler, &ar),
		  EINVAL);
	CHECK_ERR(acct_by_sipuser(NULL, db, NULL, 0, acct_handler, &ar),
		  EINVAL);

	/* detached look-up: no handler, nothing leaks */
	{
		struct db_query *q = NULL;

		memset(&ar, 0, sizeof(ar));
		CHECK_ERR(acct_by_name(&q, db, "t-bob", 0, acct_handler, &ar),
			  0);
		q = mem_deref(q);
		CHECK_ERR(acct_by_name(&q, db, "t-alice", 0, acct_handler,
				       &ar), 0);
		CHECK_ERR(run_loop(10000), 0);
		CHECK(q == NULL);
		CHECK(ar.called && ar.err == 0);
		CHECK(0 == strcmp(ar.acct.name, "t-alice"));
	}

 out:
	mem_deref(db);
	(void)sql(conninfo, "DELETE FROM accounts WHERE name LIKE 't-%'");

	return err;
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
	run("batch_results", test_batch_results);
	run("batch_errors", test_batch_errors);
	run("batch_detach", test_batch_detach);
	run("free_pending", test_free_pending);
	run("free_in_handler", test_free_in_handler);
	run("unreachable", test_unreachable);
	run("accounts", test_accounts);
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
