/**
 * @file test_db_conninfo.c  Without a server: connection strings naming
 *                           several servers (db/conninfo.c), the node's
 *                           name added as fallback_application_name
 *                           (db_conninfo_appname()), and how SQL errors
 *                           are classified (db_sqlstate_err())
 */

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <libpq-fe.h>
#include <re.h>
#include "core.h"
#include "db.h"


#include "check.h"


struct ci_row {
	int line;
	const char *conninfo;
	int err;             /* db_conninfo_check()'s */
	uint32_t nhosts;     /* when err is 0 */
	const char *msg;     /* a part of the message when err is not 0 */
};

static const struct ci_row ci_rows[] = {
	/* one server, or libpq's default */
	{__LINE__, "", 0, 1, NULL},
	{__LINE__, "dbname=tollgate", 0, 1, NULL},
	{__LINE__, "host=/run/pg dbname=tollgate user=tollgate", 0, 1, NULL},
	{__LINE__, "hostaddr=127.0.0.1 port=5433", 0, 1, NULL},
	{__LINE__, "postgresql:///tollgate?host=/run/pg", 0, 1, NULL},

	/* several, going to the primary */
	{__LINE__, "host=/a/run,/b/run dbname=tollgate "
		   "target_session_attrs=read-write", 0, 2, NULL},
	{__LINE__, "host=/a,/b,/c target_session_attrs=primary", 0, 3, NULL},
	{__LINE__, "hostaddr=127.0.0.1,127.0.0.2 port=5432,5433 "
		   "target_session_attrs=read-write", 0, 2, NULL},
	{__LINE__, "hostaddr=127.0.0.1,127.0.0.2 port=5432 "
		   "target_session_attrs=read-write", 0, 2, NULL},
	{__LINE__, "host=db1,db2 hostaddr=10.0.0.1,10.0.0.2 "
		   "target_session_attrs=read-write", 0, 2, NULL},
	{__LINE__, "postgresql://10.0.0.1:5432,10.0.0.2:5433/tollgate"
		   "?target_session_attrs=read-write", 0, 2, NULL},
	/* the last setting of a keyword wins, as in libpq */
	{__LINE__, "host=/a,/b target_session_attrs=any "
		   "target_session_attrs=read-write", 0, 2, NULL},

	/* several, without a way to the primary */
	{__LINE__, "host=/a,/b", EINVAL, 0, "target_session_attrs is not"
		   " given"},
	{__LINE__, "host=/a,/b target_session_attrs=any", EINVAL, 0,
		   "target_session_attrs is any"},
	{__LINE__, "hostaddr=127.0.0.1,127.0.0.2 "
		   "target_session_attrs=prefer-standby", EINVAL, 0,
		   "add target_session_attrs=read-write"},
	{__LINE__, "postgresql://h1,h2/tollgate", EINVAL, 0,
		   "2 servers"},

	/* lists that do not agree */
	{__LINE__, "host=/a,/b,/c port=5432,5433 "
		   "target_session_attrs=read-write", EINVAL, 0,
		   "port lists 2 ports for 3 servers"},
	{__LINE__, "host=a,b hostaddr=10.0.0.1 "
		   "target_session_attrs=read-write", EINVAL, 0,
		   "host names 2 servers and hostaddr 1"},

	/* what libpq cannot parse */
	{__LINE__, "host=/a dbname", EBADMSG, 0, "dbname"},
	{__LINE__, "nosuchkey=1", EBADMSG, 0, "nosuchkey"},
	{__LINE__, "host='/a", EBADMSG, 0, "quoted"},
	{__LINE__, "postgresql://[::1/x", EBADMSG, 0, "IPv6"},
};


static void test_conninfo(void)
{
	char msg[256];
	uint32_t n;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(ci_rows); i++) {
		const struct ci_row *r = &ci_rows[i];
		int err;

		n = 0;
		memset(msg, 'x', sizeof(msg));
		err = db_conninfo_check(r->conninfo, &n, msg, sizeof(msg));

		if (err != r->err) {
			fprintf(stderr, "line %d: %s: err %d (%s), want %d\n",
				r->line, r->conninfo, err, msg, r->err);
		}
		CHECK(err == r->err);

		if (!r->err) {
			if (n != r->nhosts)
				fprintf(stderr, "line %d: %u servers, want "
					"%u\n", r->line, n, r->nhosts);
			CHECK(n == r->nhosts);
			CHECK(msg[0] == '\0');
		}
		else if (r->msg) {
			if (!strstr(msg, r->msg))
				fprintf(stderr, "line %d: message '%s' lacks"
					" '%s'\n", r->line, msg, r->msg);
			CHECK(strstr(msg, r->msg) != NULL);
			CHECK(strchr(msg, '\n') == NULL);
		}
	}

	/* bad arguments; a message cut to its buffer */
	CHECK(db_conninfo_check(NULL, NULL, msg, sizeof(msg)) == EINVAL);
	CHECK(db_conninfo_check("", NULL, NULL, 0) == EINVAL);
	CHECK(db_conninfo_check("host=/a,/b", NULL, msg, 8) == EINVAL);
	CHECK(strlen(msg) == 7);
	CHECK(db_conninfo_check("host=/a", NULL, msg, sizeof(msg)) == 0);
}


struct st_row {
	int line;
	const char *state;
	int err;
};

static const struct st_row st_rows[] = {
	/* transient: nothing committed, the same query may succeed */
	{__LINE__, "25006", EAGAIN},   /* read-only: a standby */
	{__LINE__, "57014", EAGAIN},   /* statement_timeout, cancel */
	{__LINE__, "40P01", EAGAIN},   /* deadlock */
	{__LINE__, "40001", EAGAIN},   /* serialization, recovery conflict */
	{__LINE__, "55P03", EAGAIN},   /* lock not available */
	{__LINE__, "53300", EAGAIN},   /* too many connections */
	{__LINE__, "53100", EAGAIN},   /* disk full */
	{__LINE__, "08006", EAGAIN},   /* connection failure */
	{__LINE__, "08P01", EAGAIN},   /* protocol violation */
	{__LINE__, "57P01", EAGAIN},   /* admin shutdown (-m fast) */
	{__LINE__, "57P02", EAGAIN},   /* crash shutdown */
	{__LINE__, "57P03", EAGAIN},   /* cannot connect now */

	/* refusals: the statement itself is wrong */
	{__LINE__, "25001", EPROTO},   /* active SQL transaction */
	{__LINE__, "25P02", EPROTO},   /* in failed SQL transaction */
	{__LINE__, "23505", EPROTO},   /* unique violation */
	{__LINE__, "23514", EPROTO},   /* check violation */
	{__LINE__, "22P02", EPROTO},   /* invalid text representation */
	{__LINE__, "22021", EPROTO},   /* bad UTF-8 */
	{__LINE__, "42883", EPROTO},   /* undefined function */
	{__LINE__, "P0001", EPROTO},   /* RAISE EXCEPTION */
	{__LINE__, "57000", EPROTO},   /* operator intervention, not 57P */
	{__LINE__, "XX000", EPROTO},   /* internal error */
	{__LINE__, "",      EPROTO},
	{__LINE__, NULL,    EPROTO},   /* no SQLSTATE */
};


static void test_sqlstate(void)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(st_rows); i++) {
		const struct st_row *r = &st_rows[i];
		int err = db_sqlstate_err(r->state);

		if (err != r->err)
			fprintf(stderr, "line %d: %s: %d, want %d\n", r->line,
				r->state ? r->state : "NULL", err, r->err);
		CHECK(err == r->err);
	}

	CHECK(!strcmp(DB_SQLSTATE_READ_ONLY, "25006"));
}


/* the value libpq reads for key from s, or NULL */
static char *value_of(const char *s, const char *key, char *buf, size_t sz)
{
	PQconninfoOption *opts, *o;
	char *found = NULL;

	opts = PQconninfoParse(s, NULL);
	if (!opts)
		return NULL;

	for (o = opts; o->keyword; o++) {
		if (!strcmp(o->keyword, key) && o->val) {
			str_ncpy(buf, o->val, sz);
			found = buf;
		}
	}
	PQconninfoFree(opts);

	return found;
}


static void test_appname_kv(void)
{
	char *s = NULL, buf[128];

	CHECK(!db_conninfo_appname(&s, "host=/tmp/pg dbname=tg", "node1"));
	CHECK(s && value_of(s, "fallback_application_name", buf, sizeof(buf))
	      && !strcmp(buf, "node1"));
	CHECK(s && value_of(s, "host", buf, sizeof(buf)) &&
	      !strcmp(buf, "/tmp/pg"));
	CHECK(s && value_of(s, "dbname", buf, sizeof(buf)) &&
	      !strcmp(buf, "tg"));
	CHECK(s && !value_of(s, "application_name", buf, sizeof(buf)));
	s = mem_deref(s);

	/* a user's application_name stays: libpq prefers it */
	CHECK(!db_conninfo_appname(&s, "dbname=tg application_name=mine",
				   "node1"));
	CHECK(s && value_of(s, "application_name", buf, sizeof(buf)) &&
	      !strcmp(buf, "mine"));
	s = mem_deref(s);

	/* and so does a fallback given in the string */
	CHECK(!db_conninfo_appname(&s, "dbname=tg"
				   " fallback_application_name=theirs",
				   "node1"));
	CHECK(s && value_of(s, "fallback_application_name", buf,
			    sizeof(buf)) && !strcmp(buf, "theirs"));
	s = mem_deref(s);

	/* quoting */
	CHECK(!db_conninfo_appname(&s, "dbname='a b' password='x\\'y'",
				   "it's\\n"));
	CHECK(s && value_of(s, "dbname", buf, sizeof(buf)) &&
	      !strcmp(buf, "a b"));
	CHECK(s && value_of(s, "password", buf, sizeof(buf)) &&
	      !strcmp(buf, "x'y"));
	CHECK(s && value_of(s, "fallback_application_name", buf,
			    sizeof(buf)) && !strcmp(buf, "it's\\n"));
	s = mem_deref(s);
}


static void test_appname_uri(void)
{
	char *s = NULL, buf[128];

	CHECK(!db_conninfo_appname(&s, "postgresql://u@127.0.0.1:5433/tg"
				   "?application_name=app", "node2"));
	CHECK(s && value_of(s, "hostaddr", buf, sizeof(buf)) == NULL);
	CHECK(s && value_of(s, "host", buf, sizeof(buf)) &&
	      !strcmp(buf, "127.0.0.1"));
	CHECK(s && value_of(s, "port", buf, sizeof(buf)) &&
	      !strcmp(buf, "5433"));
	CHECK(s && value_of(s, "user", buf, sizeof(buf)) &&
	      !strcmp(buf, "u"));
	CHECK(s && value_of(s, "application_name", buf, sizeof(buf)) &&
	      !strcmp(buf, "app"));
	CHECK(s && value_of(s, "fallback_application_name", buf,
			    sizeof(buf)) && !strcmp(buf, "node2"));
	s = mem_deref(s);
}


static void test_appname_bad(void)
{
	char *s = NULL;

	CHECK(db_conninfo_appname(&s, "dbname='open", "n") == EINVAL);
	CHECK(s == NULL);
	CHECK(db_conninfo_appname(&s, "nosuchkey=1", "n") == EINVAL);
	CHECK(db_conninfo_appname(NULL, "dbname=x", "n") == EINVAL);

	/* no name: the string as it was */
	CHECK(!db_conninfo_appname(&s, "dbname=x", NULL));
	CHECK(s && !strcmp(s, "dbname=x"));
	s = mem_deref(s);
	CHECK(!db_conninfo_appname(&s, "dbname=x", ""));
	CHECK(s && !strcmp(s, "dbname=x"));
	s = mem_deref(s);
}


int main(void)
{
	tlog_init(CFG_LOG_STDERR, LOG_CRIT, "test_db_conninfo");

	test_conninfo();
	test_sqlstate();
	test_appname_kv();
	test_appname_uri();
	test_appname_bad();

	return check_report("test_db_conninfo");
}
