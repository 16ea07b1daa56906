/**
 * @file limits.c  REST API: fraud limits of accounts
 *
 *   GET   /v1/accounts/{id}/limits       daily spend cap, spent today,
 *                                        allowed prefixes
 *   PATCH /v1/accounts/{id}/limits       {"daily_spend_cap": "50.00"|null,
 *                                         "allowed_prefixes": ["1900"]}
 *   GET   /v1/restricted_prefixes        destinations that need an allow
 *   POST  /v1/restricted_prefixes        {"prefix": "1900",
 *                                         "description": "premium"}
 *   DELETE /v1/restricted_prefixes/{prefix}
 *
 * The limits are enforced by tg_authorize and tg_reserve
 * (sql/009_fraud_limits.sql) under the account's row lock.
 */

#include <string.h>
#include <libpq-fe.h>
#include "api_int.h"


enum { PREFIX_MAX_LEN = 32, PREFIXES_MAX = 100, DESCR_MAX_LEN = 200 };

static const char stmt_get[]     = "api_limits_get";
static const char stmt_set[]     = "api_limits_set";
static const char stmt_rp_list[] = "api_rp_list";
static const char stmt_rp_add[]  = "api_rp_add";
static const char stmt_rp_del[]  = "api_rp_del";


int api_limits_register(struct db *db)
{
	int err = 0;

	err |= db_prepare(db, stmt_get, "SELECT * FROM"
			  " tg_limits_get($1::bigint)", 1);
	err |= db_prepare(db, stmt_set, "SELECT * FROM"
			  " tg_limits_set($1::bigint, $2::boolean,"
			  " $3::bigint, $4::boolean, $5::text[])", 5);
	err |= db_prepare(db, stmt_rp_list, "SELECT prefix, description,"
			  " to_char(created_at AT TIME ZONE 'UTC',"
			  "   'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') AS created_at"
			  " FROM restricted_prefixes ORDER BY prefix", 0);
	err |= db_prepare(db, stmt_rp_add, "INSERT INTO restricted_prefixes"
			  " (prefix, description) VALUES ($1, coalesce($2,"
			  " '')) RETURNING prefix, description,"
			  " to_char(created_at AT TIME ZONE 'UTC',"
			  "   'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') AS created_at",
			  2);
	err |= db_prepare(db, stmt_rp_del, "DELETE FROM restricted_prefixes"
			  " WHERE prefix = $1 RETURNING prefix", 1);

	return err;
}


static bool prefix_ok(const char *s, size_t len)
{
	return len >= 1 && len <= PREFIX_MAX_LEN &&
		strspn(s, "0123456789") >= len;
}


/* ------------------------------------------------------ account limits */

static void limits_done(int err, const struct pg_result *res, void *arg)
{
	struct api_req *req = arg;
	const PGresult *r = (const PGresult *)res;
	struct odict *od = NULL, *arr = NULL;
	const char *p;
	unsigned i = 0;

	if (err || PQnfields(r) != 4) {
		api_db_error(req, err ? err : EPROTO, res, NULL, "limits");
		return;
	}

	if (PQntuples(r) != 1) {
		api_error(req, 404, "id", "no account %r", &req->id);
		return;
	}

	err  = odict_alloc(&od, 8);
	err |= odict_alloc(&arr, 16);
	if (err)
		goto out;

	err  = api_add_col(od, "account_id", res, 0, 0, 'i');
	err |= api_add_col(od, "daily_spend_cap", res, 0, 1, 'm');
	err |= api_add_col(od, "spent_today", res, 0, 2, 'm');

	/* digits only (a CHECK of the table), comma-separated */
	for (p = PQgetvalue(r, 0, 3); *p && !err; ) {
		size_t l = strcspn(p, ",");
		char k[16], v[PREFIX_MAX_LEN + 1];

		(void)re_snprintf(k, sizeof(k), "%u", i++);
		(void)re_snprintf(v, sizeof(v), "%b", p, l);
		err = odict_entry_add(arr, k, ODICT_STRING, v);
		p += l;
		if (*p == ',')
			++p;
	}

	if (!err)
		err = odict_entry_add(od, "allowed_prefixes", ODICT_ARRAY, arr);

	if (!err && req->meth == API_PATCH) {
		tlog_info(NULL, "api: account %r limits changed", &req->id);
		if (req->api->hooks.account_changed)
			req->api->hooks.account_changed(req->n,
							req->api->hooks.arg);
	}

 out:
	if (err)
		api_error(req, 500, NULL, "out of memory");
	else
		api_reply(req, 200, od);

	mem_deref(arr);
	mem_deref(od);
}


static const char *const limits_fields[] = {
	"daily_spend_cap", "allowed_prefixes", NULL
};


/* "allowed_prefixes": [...] as a PostgreSQL array literal */
static int prefixes_get(struct api_req *req, const struct odict_entry *e,
			struct mbuf *mb)
{
	struct le *le;
	unsigned n = 0;
	int err = 0;

	if (e->type != ODICT_ARRAY) {
		api_error(req, 400, "allowed_prefixes", "must be an array of "
			  "digit strings");
		return EINVAL;
	}

	err |= mbuf_write_str(mb, "{");

	LIST_FOREACH(&e->u.odict->lst, le) {
		const struct odict_entry *pe = le->data;

		if (pe->type != ODICT_STRING ||
		    !prefix_ok(pe->u.str, strlen(pe->u.str))) {
			api_error(req, 400, "allowed_prefixes", "each one 1 "
				  "to %u digits", PREFIX_MAX_LEN);
			return EINVAL;
		}
		if (++n > PREFIXES_MAX) {
			api_error(req, 400, "allowed_prefixes", "at most %u",
				  PREFIXES_MAX);
			return EINVAL;
		}
		err |= mbuf_printf(mb, "%s%s", n > 1 ? "," : "",
				   pe->u.str);
	}

	err |= mbuf_write_str(mb, "}");
	err |= mbuf_write_u8(mb, 0);

	if (err)
		api_error(req, 500, NULL, "out of memory");

	return err ? ENOMEM : 0;
}


static void limits_patch(struct api_req *req, const char *ids)
{
	const struct odict_entry *e;
	struct odict *od = NULL;
	struct mbuf *mb = NULL;
	char cap[24] = "";
	bool set_cap = false, set_pfx = false;
	const char *v[5];

	if (api_body(req, &od, limits_fields))
		return;

	e = odict_lookup(od, "daily_spend_cap");
	if (e) {
		int64_t m;

		set_cap = true;
		if (e->type != ODICT_NULL) {
			if (api_get_money(req, od, "daily_spend_cap", true,
					  &m))
				goto out;
			(void)re_snprintf(cap, sizeof(cap), "%lld",
					  (long long)m);
		}
	}

	e = odict_lookup(od, "allowed_prefixes");
	if (e) {
		set_pfx = true;
		mb = mbuf_alloc(64);
		if (!mb) {
			api_error(req, 500, NULL, "out of memory");
			goto out;
		}
		if (prefixes_get(req, e, mb))
			goto out;
	}

	if (!set_cap && !set_pfx) {
		api_error(req, 400, NULL, "nothing to change");
		goto out;
	}

	v[0] = ids;
	v[1] = set_cap ? "t" : "f";
	v[2] = cap[0] ? cap : NULL;
	v[3] = set_pfx ? "t" : "f";
	v[4] = mb ? (const char *)mb->buf : NULL;

	(void)api_exec(req, stmt_set, 5, v, limits_done);

 out:
	mem_deref(mb);
	mem_deref(od);
}


/** GET, PATCH /v1/accounts/{id}/limits */
void api_limits_h(struct api_req *req)
{
	char ids[24];
	const char *v[1];
	int64_t id;

	if (api_id(req, &id))
		return;

	req->n = id;
	(void)re_snprintf(ids, sizeof(ids), "%lld", (long long)id);

	if (req->meth == API_PATCH) {
		limits_patch(req, ids);
		return;
	}

	v[0] = ids;
	(void)api_exec(req, stmt_get, 1, v, limits_done);
}


/* ------------------------------------------------ restricted prefixes */

static void rp_list_done(int err, const struct pg_result *res, void *arg)
{
	struct api_req *req = arg;
	struct odict *od = NULL;

	if (err) {
		api_db_error(req, err, res, NULL, "restricted prefixes");
		return;
	}

	err = odict_alloc(&od, 4);
	if (!err)
		err = api_rows(od, "restricted_prefixes", res, "sss");

	if (err)
		api_error(req, 500, NULL, "out of memory");
	else
		api_reply(req, 200, od);

	mem_deref(od);
}


static void rp_add_done(int err, const struct pg_result *res, void *arg)
{
	struct api_req *req = arg;
	struct odict *od = NULL;

	if (err || PQntuples((const PGresult *)res) != 1) {
		api_db_error(req, err ? err : EPROTO, res, "prefix",
			     "the restricted prefix");
		return;
	}

	if (api_row(&od, res, 0, "sss")) {
		api_error(req, 500, NULL, "out of memory");
		return;
	}

	tlog_info(NULL, "api: restricted prefix %s added",
		  PQgetvalue((const PGresult *)res, 0, 0));
	api_reply(req, 201, od);
	mem_deref(od);
}


static const char *const rp_fields[] = { "prefix", "description", NULL };


/** GET, POST /v1/restricted_prefixes */
void api_restricted_h(struct api_req *req)
{
	struct odict *od = NULL;
	const char *prefix, *descr = NULL, *v[2];
	int err;

	if (req->meth != API_POST) {
		(void)api_exec(req, stmt_rp_list, 0, NULL, rp_list_done);
		return;
	}

	if (api_body(req, &od, rp_fields))
		return;

	if (api_get_str(req, od, "prefix", true, false, &prefix))
		goto out;
	if (!prefix_ok(prefix, strlen(prefix))) {
		api_error(req, 400, "prefix", "1 to %u digits",
			  PREFIX_MAX_LEN);
		goto out;
	}

	err = api_get_str(req, od, "description", false, true, &descr);
	if (err == EINVAL)
		goto out;
	if (!err && descr && (strlen(descr) > DESCR_MAX_LEN ||
			      !text_utf8_valid(descr, strlen(descr)))) {
		api_error(req, 400, "description", "at most %u printable "
			  "characters", DESCR_MAX_LEN);
		goto out;
	}

	v[0] = prefix;
	v[1] = err ? NULL : descr;
	(void)api_exec(req, stmt_rp_add, 2, v, rp_add_done);

 out:
	mem_deref(od);
}


static void rp_del_done(int err, const struct pg_result *res, void *arg)
{
	struct api_req *req = arg;
	struct odict *od = NULL;

	if (err) {
		api_db_error(req, err, res, NULL, "restricted prefix");
		return;
	}

	if (PQntuples((const PGresult *)res) != 1) {
		api_error(req, 404, "id", "no restricted prefix %r",
			  &req->id);
		return;
	}

	tlog_info(NULL, "api: restricted prefix %r removed", &req->id);

	if (odict_alloc(&od, 2) ||
	    odict_entry_add(od, "deleted", ODICT_STRING,
			    PQgetvalue((const PGresult *)res, 0, 0)))
		api_error(req, 500, NULL, "out of memory");
	else
		api_reply(req, 200, od);

	mem_deref(od);
}


/** DELETE /v1/restricted_prefixes/{prefix} */
void api_restricted_one_h(struct api_req *req)
{
	char prefix[PREFIX_MAX_LEN + 1];
	const char *v[1];

	if (!prefix_ok(req->id.p, req->id.l)) {
		api_error(req, 404, "id", "no restricted prefix %r",
			  &req->id);
		return;
	}

	(void)pl_strcpy(&req->id, prefix, sizeof(prefix));
	v[0] = prefix;
	(void)api_exec(req, stmt_rp_del, 1, v, rp_del_done);
}
