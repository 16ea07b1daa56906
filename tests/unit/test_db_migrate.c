/**
 * @file test_db_migrate.c  Migrations: apply, errors, two migrators at once
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <string.h>
#include <libpq-fe.h>
#include <re.h>
#include "core.h"
#include "db.h"
#include "test_db.h"


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

int test_migrate(void)
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


int test_migrate_errors(void)
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
int test_migrate_race(void)
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
