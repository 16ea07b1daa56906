/**
 * @file account.c  Account look-ups for caller identification
 *
 * The B2BUA identifies a caller either by digest authentication (the SIP
 * user name gives the account and its HA1s = md5("user:realm:password")
 * and sha256("user:realm:password"), never a password) or, for a trusted peer, by an account name taken from
 * the configuration or a header.  Both are one prepared statement on the
 * asynchronous client.
 */

#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <libpq-fe.h>
#include <re.h>
#include "core.h"
#include "db.h"

#define ACCT_COLUMNS "id, name, status = 'active'," \
	" coalesce(sip_ha1, ''), coalesce(sip_username, ''), max_cps," \
	" coalesce(sip_ha1_sha256, '')"

static const char stmt_by_sipuser[] = "acct_by_sipuser";
static const char stmt_by_name[]    = "acct_by_name";

struct acct_lookup {
	acct_h *h;
	void *arg;      /* borrowed */
};


/**
 * Register the statements of the look-ups; call once after db_alloc()
 *
 * @return 0 if success
 */
int acct_register_statements(struct db *db)
{
	int err;

	err = db_prepare(db, stmt_by_sipuser,
			 "SELECT " ACCT_COLUMNS " FROM accounts"
			 " WHERE sip_username = $1", 1);
	if (err)
		return err;

	err = db_prepare(db, stmt_by_name,
			 "SELECT " ACCT_COLUMNS " FROM accounts"
			 " WHERE name = $1", 1);
	if (err)
		return err;

	/* look-ups waiting for a connection go together */
	err = db_prepare_batch(db, stmt_by_sipuser, "acct_by_sipuser_batch",
			       "SELECT u.i, " ACCT_COLUMNS
			       " FROM unnest($1::text[]) WITH ORDINALITY"
			       " AS u(k, i) JOIN accounts"
			       " ON accounts.sip_username = u.k", 32);
	if (err)
		return err;

	return db_prepare_batch(db, stmt_by_name, "acct_by_name_batch",
				"SELECT u.i, " ACCT_COLUMNS
				" FROM unnest($1::text[]) WITH ORDINALITY"
				" AS u(k, i) JOIN accounts"
				" ON accounts.name = u.k", 32);
}


/* copy a text column; false if it does not fit */
static bool copy_col(char *dst, size_t sz, const PGresult *res, int col)
{
	if ((size_t)PQgetlength(res, 0, col) >= sz)
		return false;

	str_ncpy(dst, PQgetvalue(res, 0, col), sz);

	return true;
}


static int acct_parse(struct acct_info *acct, const PGresult *res)
{
	const char *id;
	char *end;

	if (PQnfields(res) != 7 || PQgetisnull(res, 0, 0) ||
	    PQgetisnull(res, 0, 5))
		return EPROTO;

	memset(acct, 0, sizeof(*acct));

	id = PQgetvalue(res, 0, 0);
	errno = 0;
	acct->id = strtoll(id, &end, 10);
	if (errno || end == id || *end)
		return EPROTO;

	acct->active = (0 == strcmp(PQgetvalue(res, 0, 2), "t"));
	acct->max_cps = (uint32_t)strtoul(PQgetvalue(res, 0, 5), NULL, 10);

	if (!copy_col(acct->name, sizeof(acct->name), res, 1) ||
	    !copy_col(acct->ha1, sizeof(acct->ha1), res, 3) ||
	    !copy_col(acct->sip_username, sizeof(acct->sip_username), res, 4) ||
	    !copy_col(acct->ha1_sha256, sizeof(acct->ha1_sha256), res, 6))
		return EOVERFLOW;

	return 0;
}


static void lookup_handler(int err, const struct pg_result *r, void *arg)
{
	const PGresult *res = (const PGresult *)r;
	struct acct_lookup *lk = arg;
	struct acct_info acct;

	if (err)
		goto out;

	if (PQntuples(res) < 1) {
		err = ENOENT;
		goto out;
	}

	err = acct_parse(&acct, res);
	if (err) {
		tlog_err(NULL, "account: row of account %s does not fit"
			 " struct acct_info (%s)", PQgetvalue(res, 0, 0),
			 strerror(err));
	}

 out:
	lk->h(err, err ? NULL : &acct, lk->arg);
}


static int lookup(struct db_query **qp, struct db *db, const char *stmt,
		  const char *key, size_t keymax, uint32_t timeout_ms,
		  acct_h *h, void *arg)
{
	struct acct_lookup *lk;
	const char *values[1];
	int err;

	if (!db || !key || !*key || !h)
		return EINVAL;

	/* a longer key cannot name an account that fits struct acct_info;
	 * one that is not UTF-8 text would be refused by the database */
	if (strlen(key) >= keymax || !text_utf8_valid(key, strlen(key)))
		return EINVAL;

	lk = mem_zalloc(sizeof(*lk), NULL);
	if (!lk)
		return ENOMEM;

	lk->h = h;
	lk->arg = arg;
	values[0] = key;

	/* reads are idempotent: re-send after a reconnect */
	err = db_exec_owned(qp, db, stmt, 1, values, timeout_ms, true,
			    lookup_handler, lk);
	if (err)
		mem_deref(lk);

	return err;
}


/**
 * Find the account of a SIP user name (digest authentication)
 *
 * @param qp          optional handle: mem_deref(*qp) detaches the handler
 * @param db          client with acct_register_statements() done
 * @param username    SIP user name
 * @param timeout_ms  deadline, 0 for none
 * @param h           handler: 0 and the account, ENOENT, or a db error
 * @param arg         handler argument
 *
 * @return 0 if the look-up is queued, EINVAL for an empty or too long name
 */
int acct_by_sipuser(struct db_query **qp, struct db *db, const char *username,
		    uint32_t timeout_ms, acct_h *h, void *arg)
{
	return lookup(qp, db, stmt_by_sipuser, username,
		      sizeof(((struct acct_info *)0)->sip_username),
		      timeout_ms, h, arg);
}


/**
 * Find an account by its name (trusted peers)
 *
 * @see acct_by_sipuser()
 */
int acct_by_name(struct db_query **qp, struct db *db, const char *name,
		 uint32_t timeout_ms, acct_h *h, void *arg)
{
	return lookup(qp, db, stmt_by_name, name,
		      sizeof(((struct acct_info *)0)->name), timeout_ms, h,
		      arg);
}
