/**
 * @file accounts.c  REST API: accounts and their credit
 *
 *   GET   /v1/accounts?limit=&cursor=     by id, ascending
 *   POST  /v1/accounts
 *   GET   /v1/accounts/{id}
 *   PATCH /v1/accounts/{id}               status, limits, credit limit,
 *                                         rate plan, SIP credentials
 *                                         (password in, HA1 stored)
 *   POST  /v1/accounts/{id}/credit        {"op": "add"|"set",
 *                                          "amount": "12.50"}
 *
 * A credit change is one call of tg_credit() (sql/003_api.sql): atomic,
 * and with an Idempotency-Key applied at most once.  Its effect on running
 * calls is immediate: billing re-arms the account's calls (their cut-off
 * moves), a set to zero or a block ends them, on every node of the
 * cluster (control.c).
 */

#include <string.h>
#include <openssl/evp.h>
#include <libpq-fe.h>
#include "api_int.h"


/* an account as the API shows it, in the reply's order */
#define ACCT_COLS \
	"a.id, a.name, a.status, a.currency, a.balance, a.credit_limit," \
	" (SELECT coalesce(sum(l.reserved), 0) FROM live_calls l" \
	"   WHERE l.account_id = a.id) AS reserved," \
	" (SELECT count(*) FROM live_calls l WHERE l.account_id = a.id)" \
	"   AS live_calls," \
	" a.max_calls, a.max_cps, a.rate_plan_id, a.sip_username," \
	" a.sip_ha1 IS NOT NULL AS sip_password_set," \
	" to_char(a.created_at AT TIME ZONE 'UTC'," \
	"   'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') AS created_at," \
	" to_char(a.updated_at AT TIME ZONE 'UTC'," \
	"   'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') AS updated_at"

/* api_row's types of ACCT_COLS */
#define ACCT_TYPES "isssmmmiiiisbss"


enum { NAME_MAX_LEN = 64, PASSWORD_MAX_LEN = 128, KEY_MAX_LEN = 255,
       LIST_MAX = 1000 };

static const char stmt_list[]   = "api_acct_list";
static const char stmt_get[]    = "api_acct_get";
static const char stmt_insert[] = "api_acct_insert";
static const char stmt_update[] = "api_acct_update";
static const char stmt_credit[] = "api_credit";


/* billing, if on, re-arms the account's calls */
static void account_changed(const struct api *api, int64_t id)
{
	if (api->hooks.account_changed)
		api->hooks.account_changed(id, api->hooks.arg);
}


int api_accounts_register(struct db *db)
{
	int err = 0;

	err |= db_prepare(db, stmt_list, "SELECT " ACCT_COLS
			  " FROM accounts a WHERE a.id > $1::bigint"
			  " ORDER BY a.id LIMIT $2::integer", 2);
	err |= db_prepare(db, stmt_get, "SELECT " ACCT_COLS
			  " FROM accounts a WHERE a.id = $1::bigint", 1);
	err |= db_prepare(db, stmt_insert,
			  "WITH a AS (INSERT INTO accounts (name, status,"
			  " currency, max_calls, rate_plan_id, sip_username,"
			  " sip_ha1, sip_ha1_sha256, max_cps, credit_limit)"
			  " VALUES ($1, coalesce($2, 'active'),"
			  " coalesce($3, 'EUR'), coalesce($4::integer, 10),"
			  " $5::bigint, $6, $7, $8,"
			  " coalesce($9::integer, 0), coalesce($10::bigint, 0))"
			  " RETURNING *)"
			  " SELECT " ACCT_COLS " FROM a", 10);
	err |= db_prepare(db, stmt_update,
			  "WITH a AS (UPDATE accounts SET"
			  " status = coalesce($2, status),"
			  " max_calls = coalesce($3::integer, max_calls),"
			  " rate_plan_id = CASE WHEN $4::boolean THEN"
			  "   $5::bigint ELSE rate_plan_id END,"
			  " sip_username = CASE WHEN $6::boolean THEN $7"
			  "   ELSE sip_username END,"
			  " sip_ha1 = CASE WHEN $6::boolean THEN $8"
			  "   ELSE sip_ha1 END,"
			  " sip_ha1_sha256 = CASE WHEN $6::boolean THEN $9"
			  "   ELSE sip_ha1_sha256 END,"
			  " max_cps = coalesce($10::integer, max_cps),"
			  " credit_limit = coalesce($11::bigint, credit_limit),"
			  " updated_at = now()"
			  " WHERE id = $1::bigint RETURNING *)"
			  " SELECT " ACCT_COLS " FROM a", 11);
	err |= db_prepare(db, stmt_credit,
			  "SELECT result, balance FROM tg_credit($1,"
			  " $2::bigint, $3, $4::bigint, $5)", 5);

	return err;
}


/* reply with the one account of a result, or 404 */
static void acct_reply(struct api_req *req, unsigned status,
		       const struct pg_result *res)
{
	struct odict *od;

	if (PQntuples((const PGresult *)res) != 1) {
		api_error(req, 404, "id", "no account %r", &req->id);
		return;
	}

	if (api_row(&od, res, 0, ACCT_TYPES)) {
		api_error(req, 500, NULL, "out of memory");
		return;
	}

	api_reply(req, status, od);
	mem_deref(od);
}


static bool name_ok(const char *s, size_t max)
{
	size_t l = strlen(s);

	return l >= 1 && l <= max &&
		strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		       "0123456789._@+-") == l;
}


/* ----------------------------------------------------------------- list */

static void list_done(int err, const struct pg_result *res, void *arg)
{
	struct api_req *req = arg;
	struct odict *od = NULL;
	int n;

	if (err) {
		api_db_error(req, err, res, NULL, "accounts");
		return;
	}

	n = PQntuples((const PGresult *)res);
	err = odict_alloc(&od, 4);
	if (!err)
		err = api_rows(od, "accounts", res, ACCT_TYPES);

	if (!err) {
		if (n && n == req->n) {
			char cur[24];

			(void)re_snprintf(cur, sizeof(cur), "%s",
					  PQgetvalue((const PGresult *)res,
						     n - 1, 0));
			err = odict_entry_add(od, "next_cursor",
					       ODICT_STRING, cur);
		}
		else {
			err = odict_entry_add(od, "next_cursor", ODICT_NULL);
		}
	}

	if (err)
		api_error(req, 500, NULL, "out of memory");
	else
		api_reply(req, 200, od);

	mem_deref(od);
}


static void get_done(int err, const struct pg_result *res, void *arg)
{
	struct api_req *req = arg;

	if (err) {
		api_db_error(req, err, res, NULL, "account");
		return;
	}

	acct_reply(req, 200, res);
}


/* -------------------------------------------------------------- create */

static const char *const create_fields[] = {
	"name", "status", "currency", "max_calls", "max_cps", "rate_plan_id",
	"sip_username", "sip_password", "credit_limit", NULL
};


static void create_done(int err, const struct pg_result *res, void *arg)
{
	struct api_req *req = arg;

	if (err == EPROTO && !strcmp(api_db_state(res), "23503")) {
		api_error(req, 400, "rate_plan_id", "no such rate plan");
		return;
	}
	if (err) {
		bool sip = strstr(api_db_constraint(res), "sip") != NULL;

		api_db_error(req, err, res, sip ? "sip_username" : "name",
			     sip ? "an account with this sip_username" :
			     "an account with this name");
		return;
	}

	acct_reply(req, 201, res);
}


/* status, limits, plan and credentials: shared by POST and PATCH */
struct acct_fields {
	const char *status;
	const char *currency;
	char max_calls[16];
	char max_cps[16];
	char credit_limit[24];
	bool set_plan;
	char plan[24];
	bool set_sip;
	const char *sip_username;
	char ha1[33];
	char ha1_sha256[65];
	unsigned n;
};


static int fields_get(struct api_req *req, const struct odict *od,
		      struct acct_fields *f)
{
	const char *pw = NULL;
	int64_t v;
	int err;

	err = api_get_str(req, od, "status", false, false, &f->status);
	if (err == EINVAL)
		return err;
	if (!err) {
		++f->n;
		if (strcmp(f->status, "active") && strcmp(f->status,
							   "blocked")) {
			api_error(req, 400, "status", "must be \"active\" or "
				  "\"blocked\"");
			return EINVAL;
		}
	}

	err = api_get_int(req, od, "max_calls", false, 0, 1000000, &v);
	if (err == EINVAL)
		return err;
	if (!err) {
		++f->n;
		(void)re_snprintf(f->max_calls, sizeof(f->max_calls), "%lld",
				  (long long)v);
	}

	err = api_get_int(req, od, "max_cps", false, 0, 1000000, &v);
	if (err == EINVAL)
		return err;
	if (!err) {
		++f->n;
		(void)re_snprintf(f->max_cps, sizeof(f->max_cps), "%lld",
				  (long long)v);
	}

	err = api_get_money(req, od, "credit_limit", false, &v);
	if (err == EINVAL)
		return err;
	if (!err) {
		++f->n;
		(void)re_snprintf(f->credit_limit, sizeof(f->credit_limit),
				  "%lld", (long long)v);
	}

	if (odict_lookup(od, "rate_plan_id")) {
		const struct odict_entry *e = odict_lookup(od,
							   "rate_plan_id");

		++f->n;
		f->set_plan = true;
		if (e->type != ODICT_NULL) {
			err = api_get_int(req, od, "rate_plan_id", true, 1,
					  INT64_MAX, &v);
			if (err)
				return err;
			(void)re_snprintf(f->plan, sizeof(f->plan), "%lld",
					  (long long)v);
		}
	}

	err = api_get_str(req, od, "sip_username", false, true,
			  &f->sip_username);
	if (err == EINVAL)
		return err;
	if (!err) {
		++f->n;
		f->set_sip = true;
		if (f->sip_username && !name_ok(f->sip_username,
						NAME_MAX_LEN)) {
			api_error(req, 400, "sip_username", "1 to %u letters,"
				  " digits or ._@+-", NAME_MAX_LEN);
			return EINVAL;
		}
	}

	err = api_get_str(req, od, "sip_password", false, false, &pw);
	if (err == EINVAL)
		return err;
	if (!err) {
		uint8_t md[16], md256[32];
		unsigned md256_len = sizeof(md256);
		char *s = NULL;
		int ok;

		++f->n;
		if (!f->sip_username) {
			api_error(req, 400, "sip_password", "needs "
				  "sip_username in the same request");
			return EINVAL;
		}
		if (!*pw || strlen(pw) > PASSWORD_MAX_LEN) {
			api_error(req, 400, "sip_password", "1 to %u "
				  "characters", PASSWORD_MAX_LEN);
			return EINVAL;
		}

		if (re_sdprintf(&s, "%s:%s:%s", f->sip_username,
				req->api->realm, pw)) {
			api_error(req, 500, NULL, "out of memory");
			return ENOMEM;
		}
		md5((const uint8_t *)s, strlen(s), md);
		ok = EVP_Digest(s, strlen(s), md256, &md256_len, EVP_sha256(),
				NULL);
		memset(s, 0, strlen(s));
		mem_deref(s);
		if (!ok) {
			api_error(req, 500, NULL, "no SHA-256");
			return EPROTO;
		}
		(void)re_snprintf(f->ha1, sizeof(f->ha1), "%w", md,
				  sizeof(md));
		(void)re_snprintf(f->ha1_sha256, sizeof(f->ha1_sha256), "%w",
				  md256, (size_t)md256_len);
	}
	else if (f->set_sip && f->sip_username) {
		api_error(req, 400, "sip_password", "required with "
			  "sip_username (the digest HA1 depends on both)");
		return EINVAL;
	}

	return 0;
}


static void create(struct api_req *req)
{
	struct acct_fields f;
	struct odict *od;
	const char *name, *v[10];
	int err;

	memset(&f, 0, sizeof(f));
	if (api_body(req, &od, create_fields))
		return;

	err = api_get_str(req, od, "name", true, false, &name);
	if (err)
		goto out;
	if (!name_ok(name, NAME_MAX_LEN)) {
		api_error(req, 400, "name", "1 to %u letters, digits or "
			  "._@+-", NAME_MAX_LEN);
		goto out;
	}

	err = api_get_str(req, od, "currency", false, false, &f.currency);
	if (err == EINVAL)
		goto out;
	if (!err && (strlen(f.currency) != 3 ||
		     strspn(f.currency, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != 3)) {
		api_error(req, 400, "currency", "three capital letters "
			  "(ISO 4217)");
		goto out;
	}
	if (err)
		f.currency = NULL;

	if (fields_get(req, od, &f))
		goto out;

	v[0] = name;
	v[1] = f.status;
	v[2] = f.currency;
	v[3] = f.max_calls[0] ? f.max_calls : NULL;
	v[4] = f.plan[0] ? f.plan : NULL;
	v[5] = f.sip_username;
	v[6] = f.ha1[0] ? f.ha1 : NULL;
	v[7] = f.ha1_sha256[0] ? f.ha1_sha256 : NULL;
	v[8] = f.max_cps[0] ? f.max_cps : NULL;
	v[9] = f.credit_limit[0] ? f.credit_limit : NULL;

	(void)api_exec(req, stmt_insert, 10, v, create_done);

 out:
	mem_deref(od);
}


/** GET, POST /v1/accounts */
void api_accounts_h(struct api_req *req)
{
	int64_t limit = 100, cursor = 0;
	char lims[16], curs[24];
	const char *v[2];

	if (req->meth == API_POST) {
		create(req);
		return;
	}

	if (api_arg_int(req, "limit", 1, LIST_MAX, &limit) == EINVAL ||
	    api_arg_int(req, "cursor", 0, INT64_MAX, &cursor) == EINVAL)
		return;

	req->n = limit;
	(void)re_snprintf(lims, sizeof(lims), "%lld", (long long)limit);
	(void)re_snprintf(curs, sizeof(curs), "%lld", (long long)cursor);
	v[0] = curs;
	v[1] = lims;

	(void)api_exec(req, stmt_list, 2, v, list_done);
}


/* --------------------------------------------------------------- update */

static const char *const patch_fields[] = {
	"status", "max_calls", "max_cps", "rate_plan_id", "sip_username",
	"sip_password", "credit_limit", NULL
};


static void patch_done(int err, const struct pg_result *res, void *arg)
{
	struct api_req *req = arg;
	const PGresult *r = (const PGresult *)res;

	if (err == EPROTO && !strcmp(api_db_state(res), "23503")) {
		api_error(req, 400, "rate_plan_id", "no such rate plan");
		return;
	}
	if (err == EPROTO && !strcmp(api_db_state(res), "23514") &&
	    !strcmp(api_db_constraint(res), "accounts_balance_check")) {
		api_error(req, 400, "credit_limit", "below what the account "
			  "owes (the balance may not go under -credit_limit)");
		return;
	}
	if (err) {
		api_db_error(req, err, res, "sip_username", "an account with "
			     "this sip_username");
		return;
	}

	/* blocked: the account's calls end now, not at their next
	 * reservation */
	if (PQntuples(r) == 1 && !strcmp(PQgetvalue(r, 0, 2), "blocked")) {
		uint32_t n = api_cut_cluster(req->api, req->n,
					     API_CUT_BLOCK);
		if (n)
			tlog_info(NULL, "api: account %lld blocked: %u calls"
				  " ended", (long long)req->n, n);
	}

	if (PQntuples(r) == 1)
		account_changed(req->api, req->n);

	acct_reply(req, 200, res);
}


static void patch(struct api_req *req, int64_t id)
{
	struct acct_fields f;
	struct odict *od;
	char ids[24];
	const char *v[11];

	memset(&f, 0, sizeof(f));
	if (api_body(req, &od, patch_fields))
		return;

	if (fields_get(req, od, &f))
		goto out;

	if (!f.n) {
		api_error(req, 400, NULL, "nothing to change");
		goto out;
	}

	req->n = id;
	(void)re_snprintf(ids, sizeof(ids), "%lld", (long long)id);
	v[0] = ids;
	v[1] = f.status;
	v[2] = f.max_calls[0] ? f.max_calls : NULL;
	v[3] = f.set_plan ? "t" : "f";
	v[4] = f.plan[0] ? f.plan : NULL;
	v[5] = f.set_sip ? "t" : "f";
	v[6] = f.sip_username;
	v[7] = f.ha1[0] ? f.ha1 : NULL;
	v[8] = f.ha1_sha256[0] ? f.ha1_sha256 : NULL;
	v[9] = f.max_cps[0] ? f.max_cps : NULL;
	v[10] = f.credit_limit[0] ? f.credit_limit : NULL;

	(void)api_exec(req, stmt_update, 11, v, patch_done);

 out:
	mem_deref(od);
}


/** GET, PATCH /v1/accounts/{id} */
void api_account_h(struct api_req *req)
{
	char ids[24];
	const char *v[1];
	int64_t id;

	if (api_id(req, &id))
		return;

	if (req->meth == API_PATCH) {
		patch(req, id);
		return;
	}

	(void)re_snprintf(ids, sizeof(ids), "%lld", (long long)id);
	v[0] = ids;
	(void)api_exec(req, stmt_get, 1, v, get_done);
}


/* --------------------------------------------------------------- credit */

struct credit {
	int64_t id;
	int64_t amount;
	bool set;
};


static const char *const credit_fields[] = { "op", "amount", NULL };


static void credit_done(int err, const struct pg_result *res, void *arg)
{
	struct api_req *req = arg;
	const struct credit *c = req->ctx;
	const PGresult *r = (const PGresult *)res;
	struct odict *od = NULL;
	const char *result;
	uint32_t cut = 0;
	bool replayed;

	if (err || PQntuples(r) != 1) {
		api_db_error(req, err ? err : EPROTO, res, "amount",
			     "credit");
		return;
	}

	result = PQgetvalue(r, 0, 0);
	if (!strcmp(result, "no_account")) {
		api_error(req, 404, "id", "no account %lld",
			  (long long)c->id);
		return;
	}
	if (!strcmp(result, "key_mismatch")) {
		api_error(req, 409, "Idempotency-Key", "key already used for "
			  "another request");
		return;
	}
	if (!strcmp(result, "overflow")) {
		api_error(req, 400, "amount", "the balance would overflow");
		return;
	}

	replayed = !strcmp(result, "replayed");
	if (!replayed) {
		tlog_info(NULL, "api: account %lld credit %s %H: balance %s",
			  (long long)c->id, c->set ? "set" : "add",
			  api_money_print, &c->amount, PQgetvalue(r, 0, 1));
		account_changed(req->api, c->id);
		api_events_account(req->api, c->id,
				   strtoll(PQgetvalue(r, 0, 1), NULL, 10),
				   c->set ? "set" : "add");
		if (c->set && c->amount == 0)
			cut = api_cut_cluster(req->api, c->id,
					      API_CUT_CREDIT);
	}

	err  = odict_alloc(&od, 8);
	if (!err) {
		err  = odict_entry_add(od, "account_id", ODICT_INT, c->id);
		err |= odict_entry_add(od, "op", ODICT_STRING,
				       c->set ? "set" : "add");
		err |= api_add_money(od, "amount", c->amount);
		err |= api_add_col(od, "balance", res, 0, 1, 'm');
		err |= odict_entry_add(od, "replayed", ODICT_BOOL, replayed);
		err |= odict_entry_add(od, "calls_cut", ODICT_INT,
				       (int64_t)cut);
	}

	if (err)
		api_error(req, 500, NULL, "out of memory");
	else
		api_reply(req, 200, od);

	mem_deref(od);
}


/** POST /v1/accounts/{id}/credit  {"op": "add"|"set", "amount": "1.5"} */
void api_credit_h(struct api_req *req)
{
	struct odict *od = NULL;
	struct credit *c;
	const char *op, *key, *v[5];
	char ids[24], amount[24], fp[96];
	int64_t id;

	if (api_id(req, &id))
		return;

	key = api_header(req, "Idempotency-Key");
	if (key && (!*key || strlen(key) > KEY_MAX_LEN)) {
		api_error(req, 400, "Idempotency-Key", "1 to %u characters",
			  KEY_MAX_LEN);
		return;
	}

	if (api_body(req, &od, credit_fields))
		return;

	c = mem_zalloc(sizeof(*c), NULL);
	if (!c) {
		api_error(req, 500, NULL, "out of memory");
		goto out;
	}
	req->ctx = c;
	c->id = id;

	if (api_get_str(req, od, "op", true, false, &op))
		goto out;

	if (!strcmp(op, "set")) {
		c->set = true;
	}
	else if (strcmp(op, "add")) {
		api_error(req, 400, "op", "must be \"add\" or \"set\"");
		goto out;
	}

	if (api_get_money(req, od, "amount", true, &c->amount))
		goto out;

	if (!c->set && c->amount == 0) {
		api_error(req, 400, "amount", "must be greater than zero");
		goto out;
	}

	(void)re_snprintf(ids, sizeof(ids), "%lld", (long long)id);
	(void)re_snprintf(amount, sizeof(amount), "%lld",
			  (long long)c->amount);
	(void)re_snprintf(fp, sizeof(fp), "%s:%s:%s", ids, op, amount);

	v[0] = key;
	v[1] = ids;
	v[2] = c->set ? "set" : "add";
	v[3] = amount;
	v[4] = fp;

	(void)api_exec(req, stmt_credit, 5, v, credit_done);

 out:
	mem_deref(od);
}
