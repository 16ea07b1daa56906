/**
 * @file test_conninfo.c  Unit tests of db_conninfo_appname() (db/lease.c)
 *
 * The node's name goes into every connection string as
 * fallback_application_name: an application_name the string gives stays
 * the one libpq uses, URIs become keyword/value strings, values with
 * quotes and backslashes survive, what libpq cannot parse is refused.
 */

#include <string.h>
#include <libpq-fe.h>
#include <re.h>
#include "db.h"


#include "check.h"


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


static void test_kv(void)
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


static void test_uri(void)
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


static void test_bad(void)
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
	test_kv();
	test_uri();
	test_bad();

	return check_report("test_conninfo");
}
