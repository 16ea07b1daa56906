/**
 * @file migrate.c  Blocking start-up helper: migrations
 *
 * Used only before the event loop runs (tollgate --migrate); schema.c
 * has the blocking connection it uses.  Migrations are the files
 * sqldir/NNN_name.sql, numbered 1, 2, 3 ... without gaps; each is applied
 * in its own transaction together with its row in schema_version, under
 * a transaction-level advisory lock so that two migrators cannot both
 * apply the same file.  A file must not COMMIT or ROLLBACK itself, nor
 * use statements that cannot run in a transaction block.
 */

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libpq-fe.h>
#include <re.h>
#include "db.h"
#include "db_int.h"

/* key of the advisory lock taken by every migration transaction: "toll" */
#define MIGRATE_LOCK "SELECT pg_advisory_xact_lock(x'746f6c6c'::int)"

enum {
	MIGRATION_MAX    = 100000,        /* highest file number accepted  */
	MIGRATION_BYTES  = 64 << 20,      /* largest file read             */
};

struct migration {
	unsigned num;
	char *file;        /* owned; file name without directory */
};

struct mig_list {
	struct migration *v;   /* owned array */
	size_t n;
	size_t sz;
};


static void mig_list_reset(struct mig_list *ml)
{
	size_t i;

	for (i = 0; i < ml->n; i++)
		mem_deref(ml->v[i].file);

	ml->v = mem_deref(ml->v);
	ml->n = ml->sz = 0;
}


static int mig_add(struct mig_list *ml, unsigned num, const char *file)
{
	int err;

	if (ml->n == ml->sz) {
		size_t sz = ml->sz ? ml->sz * 2 : 16;
		struct migration *v;

		/* libre's mem_realloc() does not allocate from NULL */
		v = ml->v ? mem_realloc(ml->v, sz * sizeof(*v))
			: mem_zalloc(sz * sizeof(*v), NULL);
		if (!v)
			return ENOMEM;

		ml->v = v;
		ml->sz = sz;
	}

	err = str_dup(&ml->v[ml->n].file, file);
	if (err)
		return err;

	ml->v[ml->n].num = num;
	++ml->n;

	return 0;
}


static int mig_cmp(const void *a, const void *b)
{
	const struct migration *x = a, *y = b;

	if (x->num != y->num)
		return x->num < y->num ? -1 : 1;

	return strcmp(x->file, y->file);
}


/*
 * NNN_name.sql: NNN digits, at least one character of name.  Returns
 * 1 and the number for a migration file, 0 for a file that is not one
 * (no .sql suffix, hidden), -1 for a .sql file with a bad name.
 */
static int mig_parse_name(const char *file, unsigned *num)
{
	size_t len = strlen(file);
	const char *p = file;
	unsigned long n = 0;

	if (file[0] == '.' || len < 4 || strcmp(file + len - 4, ".sql"))
		return 0;

	if (*p < '0' || *p > '9')
		return -1;

	while (*p >= '0' && *p <= '9') {
		n = n * 10 + (unsigned long)(*p - '0');
		if (n > MIGRATION_MAX)
			return -1;
		++p;
	}

	/* "_" and at least one character before ".sql" */
	if (*p != '_' || p + 1 >= file + len - 4 || n == 0)
		return -1;

	*num = (unsigned)n;

	return 1;
}


static int mig_scan(struct mig_list *ml, const char *sqldir,
		    struct re_printf *pf)
{
	struct dirent *de;
	DIR *dir;
	size_t i;
	int err = 0;

	dir = opendir(sqldir);
	if (!dir) {
		err = errno;
		db_complain(pf, "cannot read migration directory %s: %s\n",
			    sqldir, strerror(err));
		return err;
	}

	while ((de = readdir(dir)) != NULL) {
		unsigned num = 0;
		int r = mig_parse_name(de->d_name, &num);

		if (r == 0)
			continue;

		if (r < 0) {
			db_complain(pf, "%s/%s: bad migration file name (want"
				    " NNN_name.sql, NNN from 1 to %u)\n",
				    sqldir, de->d_name, MIGRATION_MAX);
			err = EINVAL;
			goto out;
		}

		err = mig_add(ml, num, de->d_name);
		if (err)
			goto out;
	}

	if (ml->n == 0) {
		db_complain(pf, "no migrations (NNN_name.sql) in %s\n", sqldir);
		err = ENOENT;
		goto out;
	}

	qsort(ml->v, ml->n, sizeof(*ml->v), mig_cmp);

	for (i = 0; i < ml->n; i++) {
		unsigned want = i ? ml->v[i - 1].num + 1 : 1;

		if (i && ml->v[i].num == ml->v[i - 1].num) {
			db_complain(pf, "%s: %s and %s have the same number"
				    " %u\n", sqldir, ml->v[i - 1].file,
				    ml->v[i].file, ml->v[i].num);
			err = EINVAL;
			goto out;
		}

		if (ml->v[i].num != want) {
			db_complain(pf, "%s: migration %u is missing (gap"
				    " before %s): numbers must run 1, 2, 3"
				    " ...\n", sqldir, want, ml->v[i].file);
			err = EINVAL;
			goto out;
		}
	}

 out:
	closedir(dir);

	return err;
}


static int file_read(char **bufp, const char *path, struct re_printf *pf)
{
	FILE *f;
	char *buf = NULL;
	long len;
	int err = 0;

	f = fopen(path, "rb");
	if (!f) {
		err = errno;
		db_complain(pf, "cannot open %s: %s\n", path, strerror(err));
		return err;
	}

	if (fseek(f, 0, SEEK_END) || (len = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET)) {
		err = errno ? errno : EIO;
		db_complain(pf, "cannot read %s: %s\n", path, strerror(err));
		goto out;
	}

	if (len > MIGRATION_BYTES) {
		db_complain(pf, "%s: larger than %d bytes\n", path,
			    MIGRATION_BYTES);
		err = EFBIG;
		goto out;
	}

	buf = mem_alloc((size_t)len + 1, NULL);
	if (!buf) {
		err = ENOMEM;
		goto out;
	}

	if (len && fread(buf, 1, (size_t)len, f) != (size_t)len) {
		err = ferror(f) ? EIO : EINVAL;
		db_complain(pf, "cannot read %s\n", path);
		goto out;
	}

	buf[len] = '\0';

	if (strlen(buf) != (size_t)len) {
		db_complain(pf, "%s: contains a NUL byte\n", path);
		err = EINVAL;
		goto out;
	}

 out:
	fclose(f);

	if (err)
		mem_deref(buf);
	else
		*bufp = buf;

	return err;
}


/* line of the 1-based character position pos in UTF-8 text */
static unsigned line_at(const char *text, long pos)
{
	unsigned line = 1;
	long chars = 0;
	const unsigned char *p;

	for (p = (const unsigned char *)text; *p; p++) {
		if ((*p & 0xc0) != 0x80 && ++chars >= pos)
			break;
		if (*p == '\n')
			++line;
	}

	return line;
}


static void report_sql_error(struct re_printf *pf, const char *file,
			     const char *text, const PGresult *res,
			     PGconn *conn)
{
	const char *msg, *state, *pos;
	struct pl pl;

	if (!res) {
		pl = db_line_of(PQerrorMessage(conn));
		db_complain(pf, "%s: %r\n", file, &pl);
		return;
	}

	msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	pos = PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION);

	if (!msg) {
		pl = db_line_of(PQresultErrorMessage(res));
		db_complain(pf, "%s: %r\n", file, &pl);
		return;
	}

	if (pos)
		db_complain(pf, "%s:%u: %s [%s]\n", file,
			    line_at(text, atol(pos)), msg, state ? state : "-");
	else
		db_complain(pf, "%s: %s [%s]\n", file, msg,
			    state ? state : "-");
}


/* apply one file unless recorded; *applied tells which */
static int mig_apply(PGconn *conn, const char *sqldir,
		     const struct migration *m, bool *applied,
		     struct re_printf *pf)
{
	char num[16];
	const char *params[2];
	char *path = NULL, *text = NULL;
	PGresult *res = NULL;
	ExecStatusType st;
	bool begun = false;
	int err;

	*applied = false;

	(void)re_snprintf(num, sizeof(num), "%u", m->num);
	params[0] = num;
	params[1] = m->file;

	err = re_sdprintf(&path, "%s/%s", sqldir, m->file);
	if (err)
		goto out;

	err = file_read(&text, path, pf);
	if (err)
		goto out;

	err = db_exec_cmd(conn, "BEGIN", m->file, pf);
	if (err)
		goto out;
	begun = true;

	err = db_exec_cmd(conn, MIGRATE_LOCK, m->file, pf);
	if (err)
		goto out;

	res = PQexecParams(conn, "SELECT 1 FROM schema_version"
			   " WHERE version = $1::int", 1, NULL, params,
			   NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		report_sql_error(pf, m->file, "", res, conn);
		err = EPROTO;
		goto out;
	}

	if (PQntuples(res) > 0)
		goto out;   /* recorded: by an earlier run or a racing one */

	PQclear(res);
	res = PQexec(conn, text);
	st = PQresultStatus(res);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK &&
	    st != PGRES_EMPTY_QUERY) {
		report_sql_error(pf, path, text, res, conn);
		err = EPROTO;
		goto out;
	}

	if (PQtransactionStatus(conn) != PQTRANS_INTRANS) {
		db_complain(pf, "%s: ends the transaction itself (COMMIT or"
			    " ROLLBACK in a migration): not recorded\n", path);
		begun = false;
		err = EPROTO;
		goto out;
	}

	PQclear(res);
	res = PQexecParams(conn, "INSERT INTO schema_version (version, name)"
			   " VALUES ($1::int, $2)", 2, NULL, params, NULL,
			   NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		report_sql_error(pf, m->file, "", res, conn);
		err = EPROTO;
		goto out;
	}

	err = db_exec_cmd(conn, "COMMIT", m->file, pf);
	begun = false;
	if (err)
		goto out;

	*applied = true;

 out:
	PQclear(res);

	if (begun)
		(void)db_exec_cmd(conn, "ROLLBACK", m->file, pf);

	mem_deref(text);
	mem_deref(path);

	return err;
}


/**
 * Apply the migrations of sqldir that the database has not recorded
 *
 * @param conninfo  libpq connection string
 * @param sqldir    directory of NNN_name.sql files
 * @param errpf     where progress and errors go (NULL: stdout, stderr)
 *
 * @return 0 if the schema is up to date, else an errno (reason printed):
 *         EINVAL bad file names, duplicate numbers or gaps; EPROTO a
 *         migration failed (it and later ones are not applied)
 */
int db_migrate_sync(const char *conninfo, const char *sqldir,
		    struct re_printf *errpf)
{
	struct mig_list ml = {NULL, 0, 0};
	PGconn *conn = NULL;
	unsigned count = 0;
	int version = 0;
	size_t i;
	int err;

	if (!sqldir)
		return EINVAL;

	err = mig_scan(&ml, sqldir, errpf);
	if (err)
		goto out;

	err = db_connect_sync(&conn, conninfo, errpf);
	if (err)
		goto out;

	err  = db_exec_cmd(conn, "BEGIN", "schema_version", errpf);
	err |= db_exec_cmd(conn, MIGRATE_LOCK, "schema_version", errpf);
	err |= db_exec_cmd(conn,
			   "CREATE TABLE IF NOT EXISTS schema_version ("
			   " version INTEGER PRIMARY KEY,"
			   " name TEXT NOT NULL,"
			   " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
			   "cannot create table schema_version", errpf);
	err |= db_exec_cmd(conn, "COMMIT", "schema_version", errpf);
	if (err) {
		err = EPROTO;
		goto out;
	}

	for (i = 0; i < ml.n; i++) {
		bool applied;

		err = mig_apply(conn, sqldir, &ml.v[i], &applied, errpf);
		if (err) {
			db_complain(errpf, "migration %s failed: not applied,"
				    " later ones not tried\n", ml.v[i].file);
			goto out;
		}

		if (applied) {
			db_say(errpf, "applied %s\n", ml.v[i].file);
			++count;
		}
	}

	err = db_version_of(conn, &version, errpf);
	if (err)
		goto out;

	if ((unsigned)version > ml.v[ml.n - 1].num) {
		db_say(errpf, "note: the database is at version %d, newer"
		       " than the newest file in %s (%u)\n", version, sqldir,
		       ml.v[ml.n - 1].num);
	}

	if (!count)
		db_say(errpf, "schema up to date (version %d)\n", version);
	else
		db_say(errpf, "schema at version %d\n", version);

 out:
	if (conn)
		PQfinish(conn);

	mig_list_reset(&ml);

	return err;
}
