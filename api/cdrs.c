/**
 * @file cdrs.c  REST API: call detail records
 *
 *   GET /v1/cdrs?account=&from=&to=&limit=&cursor=
 *
 * Newest first, by (setup_at, id) descending, with keyset pagination: the
 * reply's next_cursor names the last record returned, and the next page
 * starts strictly after it, whatever was written in between.
 *
 *   GET /v1/cdrs?format=csv (or Accept: text/csv), the same filters
 *
 * streams every matching record, however many, as CSV (chunked), in
 * bounded memory: the records are fetched CDR_BATCH at a time by the
 * same keyset query, each batch only once the client has taken the one
 * before.  The content reader suspends the connection while the next
 * batch is on its way and the batch's result resumes it; a client that
 * reads slowly leaves the database alone.  A client that goes away ends
 * the request: the batch in flight is detached and its connection goes
 * back to the pool when it is done.
 */

#include <string.h>
#include <libpq-fe.h>
#include "api_int.h"


#define TS(col) "to_char(" col " AT TIME ZONE 'UTC'," \
	" 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

/* api_row's types of the columns; the last, the cursor, is left out */
#define CDR_TYPES "isissssssimisssssmm-"

enum { CDR_LIMIT_DEFAULT = 100, CDR_LIMIT_MAX = 1000, CDR_BATCH = 1000,
       CDR_COLS = 19 };

/* the CSV columns (the JSON members) and which are caller's text ('t')
   or money ('m') */
static const char *const cdr_colv[CDR_COLS] = {
	"id", "call_id", "account_id", "caller", "callee", "gateway",
	"setup_at", "answer_at", "end_at", "billed_seconds", "cost",
	"sip_code", "hangup_by", "reason", "dialled", "normalised",
	"carrier", "carrier_cost", "margin",
};
static const char cdr_kind[CDR_COLS + 1] = "-t-ttt----m---tttmm";

/** A CSV export in progress */
struct cdr_stream {
	struct api_req *req;         /**< borrowed: owns this as ctx     */
	char acct[24], from[64], to[64];
	bool has_acct, has_from, has_to;
	char us[24], id[24];         /**< the last record sent (cursor)  */
	bool has_cur;
	struct mbuf *mb;             /**< owned: CSV not yet sent        */
	bool busy;                   /**< a batch on its way             */
	bool started;                /**< the reply is made          */
	bool eof, failed;
	uint64_t rows;
};

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


static void stream_destructor(void *arg)
{
	struct cdr_stream *s = arg;

	mem_deref(s->mb);
}


static void batch_done(int err, const struct pg_result *pres, void *arg);


static int batch_fetch(struct cdr_stream *s)
{
	const char *v[6];
	char lims[16];

	(void)re_snprintf(lims, sizeof(lims), "%u", CDR_BATCH);
	v[0] = s->has_acct ? s->acct : NULL;
	v[1] = s->has_from ? s->from : NULL;
	v[2] = s->has_to ? s->to : NULL;
	v[3] = s->has_cur ? s->us : NULL;
	v[4] = s->has_cur ? s->id : NULL;
	v[5] = lims;

	s->busy = true;
	s->req->q = mem_deref(s->req->q);

	return db_exec(&s->req->q, s->req->api->db, stmt_cdrs, 6, v,
		       API_DB_TIMEOUT_MS, false, batch_done, s->req);
}


static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct api_req *req = cls;
	struct cdr_stream *s = req->ctx;
	size_t n;
	(void)pos;

	n = mbuf_get_left(s->mb);
	if (n) {
		if (n > max)
			n = max;
		(void)mbuf_read_mem(s->mb, (uint8_t *)buf, n);
		return (ssize_t)n;
	}

	if (s->failed)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	if (s->eof)
		return MHD_CONTENT_READER_END_OF_STREAM;

	if (!s->busy && batch_fetch(s)) {
		s->failed = true;
		return MHD_CONTENT_READER_END_WITH_ERROR;
	}

	/* nothing yet: the batch's result resumes the connection */
	api_suspend(req);

	return 0;
}


static int batch_csv(struct cdr_stream *s, const PGresult *res)
{
	int i, j, n = PQntuples(res), err = 0;

	for (i = 0; i < n && !err; i++) {
		for (j = 0; j < CDR_COLS; j++) {
			const char *v = PQgetvalue(res, i, j);

			if (j)
				err |= mbuf_write_u8(s->mb, ',');
			if (PQgetisnull(res, i, j))
				continue;
			if (cdr_kind[j] == 'm') {
				int64_t m = strtoll(v, NULL, 10);

				err |= mbuf_printf(s->mb, "%H",
						   api_money_print, &m);
			}
			else {
				err |= api_csv_cell(s->mb, v,
						    cdr_kind[j] == 't');
			}
		}
		err |= mbuf_write_str(s->mb, "\r\n");
	}

	if (!err && n) {
		str_ncpy(s->us, PQgetvalue(res, n - 1, 19), sizeof(s->us));
		str_ncpy(s->id, PQgetvalue(res, n - 1, 0), sizeof(s->id));
		s->has_cur = true;
	}

	s->rows += (uint64_t)n;
	if (n < CDR_BATCH)
		s->eof = true;

	return err ? ENOMEM : 0;
}


static void batch_done(int err, const struct pg_result *pres, void *arg)
{
	struct api_req *req = arg;
	struct cdr_stream *s = req->ctx;
	bool first = !s->started;
	int i;

	s->busy = false;
	s->started = true;

	if (err && first) {
		api_db_error(req, err, pres, NULL, "cdrs");
		return;
	}

	/* what the client has taken goes */
	s->mb->pos = 0;
	s->mb->end = 0;

	if (first) {
		for (i = 0; i < CDR_COLS; i++)
			err |= mbuf_printf(s->mb, "%s%s", i ? "," : "",
					   cdr_colv[i]);
		err |= mbuf_write_str(s->mb, "\r\n");
	}

	if (!err)
		err = batch_csv(s, (const PGresult *)pres);
	s->mb->pos = 0;

	if (err) {
		tlog_warn(NULL, "api: CSV export of cdrs ended after %llu "
			  "rows: %m", (unsigned long long)s->rows, err);
		s->failed = true;
	}

	if (first && !s->failed) {
		if (api_reply_stream(req, 200, "text/csv; charset=utf-8",
				     stream_read, req))
			api_error(req, 500, NULL, "out of memory");
		return;
	}

	if (first)
		api_error(req, 500, NULL, "out of memory");
	else
		api_resume(req);
}


static void cdrs_csv(struct api_req *req, const char *const v[6])
{
	struct cdr_stream *s;

	s = mem_zalloc(sizeof(*s), stream_destructor);
	if (!s || !(s->mb = mbuf_alloc(CDR_BATCH * 256))) {
		mem_deref(s);
		api_error(req, 500, NULL, "out of memory");
		return;
	}

	s->req = req;
	s->has_acct = v[0] != NULL;
	s->has_from = v[1] != NULL;
	s->has_to = v[2] != NULL;
	if (v[0])
		str_ncpy(s->acct, v[0], sizeof(s->acct));
	if (v[1])
		str_ncpy(s->from, v[1], sizeof(s->from));
	if (v[2])
		str_ncpy(s->to, v[2], sizeof(s->to));
	if (v[3]) {
		str_ncpy(s->us, v[3], sizeof(s->us));
		str_ncpy(s->id, v[4], sizeof(s->id));
		s->has_cur = true;
	}

	req->ctx = mem_deref(req->ctx);
	req->ctx = s;

	if (batch_fetch(s))
		api_error(req, 503, NULL, "database unavailable");
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

	if (api_wants_csv(req)) {
		cdrs_csv(req, v);
		return;
	}

	if (api_arg_int(req, "limit", 1, CDR_LIMIT_MAX, &limit) == EINVAL)
		return;
	req->n = limit;
	(void)re_snprintf(lims, sizeof(lims), "%lld", (long long)limit);
	v[5] = lims;

	(void)api_exec(req, stmt_cdrs, 6, v, cdrs_done);
}
