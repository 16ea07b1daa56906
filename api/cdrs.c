/**
 * @file cdrs.c  REST API: call detail records
 *
 *   GET /v1/cdrs?account=&from=&to=&limit=&cursor=
 *
 * Newest first, by (setup_at, id) descending, with keyset pagination: the
 * reply's next_cursor names the last record returned, and the next page
 * starts strictly after it, whatever was written in between.
 */

#include <string.h>
#include <libpq-fe.h>
#include "api_int.h"


#define TS(col) "to_char(" col " AT TIME ZONE 'UTC'," \
	" 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

/* api_row's types of the columns; the last, the cursor, is left out */
#define CDR_TYPES "isissssssimisssssmm-"

enum { CDR_LIMIT_DEFAULT = 100, CDR_LIMIT_MAX = 1000 };

static const char stmt_cdrs[] = "api_cdrs";


int api_cdrs_register(struct db *db)
{
	return db_prepare(db, stmt_cdrs,
			  "SELECT id, call_id, account_id, caller, callee,"
			  " gateway, " TS("setup_at") " AS setup_at,"
			  " " TS("answer_at") " AS answer_at,"
			  " " TS("end_at") " AS end_at, billed_seconds, cost,"
			  " sip_code, hangup_by, reason, dialled, normalised,"
			  " carrier, carrier_cost, margin,"
			  " (extract(epoch FROM setup_at) * 1000000)::bigint"
			  " FROM cdrs"
			  " WHERE ($1::bigint IS NULL OR account_id = $1)"
			  " AND ($2::timestamptz IS NULL OR setup_at >= $2)"
			  " AND ($3::timestamptz IS NULL OR setup_at < $3)"
			  " AND ($4::bigint IS NULL OR (setup_at, id) <"
			  "  (timestamptz 'epoch' + $4 * interval"
			  "   '1 microsecond', $5::bigint))"
			  " ORDER BY cdrs.setup_at DESC, cdrs.id DESC"
			  " LIMIT $6::integer", 6);
}


static void cdrs_done(int err, const struct pg_result *pres, void *arg)
{
	struct api_req *req = arg;
	const PGresult *res = (const PGresult *)pres;
	struct odict *od = NULL;
	int n;

	if (err) {
		api_db_error(req, err, pres, NULL, "cdrs");
		return;
	}

	n = PQntuples(res);
	err = odict_alloc(&od, 4);
	if (!err)
		err = api_rows(od, "cdrs", pres, CDR_TYPES);

	if (!err) {
		if (n && n == req->n) {
			char cur[48];

			(void)re_snprintf(cur, sizeof(cur), "%s-%s",
					  PQgetvalue(res, n - 1, 19),
					  PQgetvalue(res, n - 1, 0));
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


/* "MICROSECONDS-ID" as next_cursor gave it */
static int cursor_parse(const char *s, char *us, size_t usz, char *id,
			size_t idsz)
{
	const char *dash = strchr(s, '-');
	size_t l1, l2;

	if (!dash)
		return EINVAL;

	l1 = (size_t)(dash - s);
	l2 = strlen(dash + 1);
	if (!l1 || !l2 || l1 >= usz || l2 >= idsz || l1 > 18 || l2 > 18 ||
	    strspn(s, "0123456789") != l1 ||
	    strspn(dash + 1, "0123456789") != l2)
		return EINVAL;

	memcpy(us, s, l1);
	us[l1] = '\0';
	memcpy(id, dash + 1, l2 + 1);

	return 0;
}


/** GET /v1/cdrs */
void api_cdrs_h(struct api_req *req)
{
	int64_t acct, limit = CDR_LIMIT_DEFAULT;
	const char *from = api_arg(req, "from"), *to = api_arg(req, "to");
	const char *cur = api_arg(req, "cursor"), *v[6];
	char accts[24], lims[16], us[24], id[24];
	int err;

	memset(v, 0, sizeof(v));

	err = api_arg_int(req, "account", 1, INT64_MAX, &acct);
	if (err == EINVAL)
		return;
	if (!err) {
		(void)re_snprintf(accts, sizeof(accts), "%lld",
				  (long long)acct);
		v[0] = accts;
	}

	if (from && api_time_valid(from)) {
		api_error(req, 400, "from", "an RFC 3339 date or date-time");
		return;
	}
	if (to && api_time_valid(to)) {
		api_error(req, 400, "to", "an RFC 3339 date or date-time");
		return;
	}
	v[1] = from;
	v[2] = to;

	if (cur) {
		if (cursor_parse(cur, us, sizeof(us), id, sizeof(id))) {
			api_error(req, 400, "cursor", "not a cursor this API "
				  "gave");
			return;
		}
		v[3] = us;
		v[4] = id;
	}

	if (api_arg_int(req, "limit", 1, CDR_LIMIT_MAX, &limit) == EINVAL)
		return;
	req->n = limit;
	(void)re_snprintf(lims, sizeof(lims), "%lld", (long long)limit);
	v[5] = lims;

	(void)api_exec(req, stmt_cdrs, 6, v, cdrs_done);
}
