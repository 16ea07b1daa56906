/**
 * @file test_db_account.c  Account look-ups
 */

#include <string.h>
#include <libpq-fe.h>
#include <re.h>
#include "core.h"
#include "db.h"
#include "test_db.h"


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


int test_accounts(void)
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
	CHECK_ERR(acct_by_name(NULL, db, "t-\xff", 0, acct_handler, &ar),
		  EINVAL);
	CHECK_ERR(acct_by_sipuser(NULL, db, "t-\r\n", 0, acct_handler, &ar),
		  EINVAL);
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
