/**
 * @file rates_csv.c  REST API: customers' rate decks in CSV
 *
 *   POST /v1/rates/import[?mode=merge|replace]   (text/csv)
 *   GET  /v1/rates?format=csv                    (or Accept: text/csv)
 *   tollgate --import-rates FILE                 (api_rates_import_file)
 *
 * A deck is a header line naming its columns, in any order, then one
 * rate a line:  rate_plan,prefix,price_per_minute[,connect_fee]
 * [,initial_increment][,subsequent_increment][,valid_from]; the fields
 * of POST /v1/rates, with the same checks and defaults (an empty cell
 * takes the default; an empty prefix is every number).
 *
 * The deck is checked as a whole: every bad line is named with its line
 * number and field (the first API_RDECK_ERRORS of them, and how many
 * there were), and nothing is written unless every line is good.  Then
 * tg_rates_import (sql/018) applies it in one statement: duplicates of
 * (rate plan, prefix, valid_from) are refused naming both lines; rows are
 * upserted by that key; mode=replace makes each plan the deck names hold
 * exactly the deck's rates.
 *
 * The check runs on the event loop in slices of API_RDECK_SLICE lines,
 * each slice a timer of its own, so that a deck of a million lines
 * never holds the loop for more than a few milliseconds at a time.
 */

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <libpq-fe.h>
#include "api_int.h"


enum {
	RD_NAME_MAX = 64,
	RD_PREFIX_MAX = 32,
	RD_INCREMENT_MAX = 3600,
	RD_CELL_MAX = 64,
	API_RDECK_ROWS_MAX = 1000000,
	API_RDECK_ERRORS = 100,
	API_RDECK_SLICE = 1024,
	RD_MSG_MAX = 96,
	API_RDECK_DEADLINE_MS = 60000,
};

static const char stmt_rates_csv[] = "api_rates_csv";

#define RATES_IMPORT_SQL "SELECT line, field, error, inserted, updated," \
	" deleted FROM tg_rates_import($1::text[], $2::text[]," \
	" $3::bigint[], $4::bigint[], $5::integer[], $6::integer[]," \
	" $7::timestamptz[], $8::integer[], $9::boolean)"

/* the columns of a deck, in the order of the export and of the SQL */
enum rd_col {
	RC_PLAN = 0, RC_PREFIX, RC_FEE, RC_PPM, RC_INI, RC_SUB, RC_FROM,
	RC_COUNT
};

static const char *const rd_colv[RC_COUNT] = {
	"rate_plan", "prefix", "connect_fee", "price_per_minute",
	"initial_increment", "subsequent_increment", "valid_from",
};

struct rd_err {
	uint32_t line;
	const char *field;           /**< a column name, or NULL         */
	char msg[RD_MSG_MAX];
};

/** A deck being checked, then its SQL arrays */
struct rdeck {
	struct mbuf *text;           /**< owned: the deck, split in place */
	struct api_csv rd;
	int map[RC_COUNT];           /**< cell index -> column           */
	unsigned ncol;
	bool header;                 /**< the header line was read       */
	bool done;
	struct mbuf *arr[RC_COUNT + 1]; /**< owned; + the line numbers   */
	uint32_t rows;
	uint32_t nerr;               /**< errors found (errv: the first) */
	struct rd_err errv[API_RDECK_ERRORS];
	uint64_t us_total, us_max;   /**< time spent checking            */
	uint32_t slices;
};


static void rdeck_destructor(void *arg)
{
	struct rdeck *d = arg;
	int i;

	for (i = 0; i <= RC_COUNT; i++)
		mem_deref(d->arr[i]);
	mem_deref(d->text);
}


/* a deck over the text of mb (a reference; it may hold no NUL): the
   text is split in place, no copy */
static int rdeck_alloc(struct rdeck **dp, struct mbuf *mb)
{
	struct rdeck *d = mem_zalloc(sizeof(*d), rdeck_destructor);
	size_t len = mb->end;
	int i;

	if (!d)
		return ENOMEM;

	mb->pos = mb->end;
	if (mbuf_write_u8(mb, 0))
		goto nomem;
	d->text = mem_ref(mb);
	api_csv_init(&d->rd, (char *)mb->buf);

	for (i = 0; i <= RC_COUNT; i++) {
		d->arr[i] = mbuf_alloc(len / 4 + 64);
		if (!d->arr[i] || mbuf_write_u8(d->arr[i], '{'))
			goto nomem;
	}

	*dp = d;

	return 0;

 nomem:
	mem_deref(d);
	return ENOMEM;
}


static void rd_error(struct rdeck *d, uint32_t line, const char *field,
		     const char *fmt, ...)
{
	struct rd_err *e;
	va_list ap;

	if (d->nerr++ >= API_RDECK_ERRORS)
		return;

	e = &d->errv[d->nerr - 1];
	e->line = line;
	e->field = field;
	va_start(ap, fmt);
	(void)re_vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
}


static bool name_ok(const char *s)
{
	size_t l = strlen(s);

	return l >= 1 && l <= RD_NAME_MAX &&
		strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		       "0123456789._-") == l;
}


static int header(struct rdeck *d, char **cellv, unsigned n, uint32_t line)
{
	static const enum rd_col need[] = { RC_PLAN, RC_PREFIX, RC_PPM };
	bool seen[RC_COUNT] = { false };
	unsigned i, j;
	int err = 0;

	for (i = 0; i < n; i++) {
		d->map[i] = -1;
		for (j = 0; j < RC_COUNT; j++) {
			if (!strcmp(cellv[i], rd_colv[j]))
				d->map[i] = (int)j;
		}
		if (d->map[i] < 0) {
			rd_error(d, line, NULL, "unknown column '%s'",
				 cellv[i]);
			err = EINVAL;
			continue;
		}
		if (seen[d->map[i]]) {
			rd_error(d, line, rd_colv[d->map[i]],
				 "column given twice");
			err = EINVAL;
		}
		seen[d->map[i]] = true;
	}

	for (i = 0; i < ARRAY_SIZE(need); i++) {
		if (!seen[need[i]]) {
			rd_error(d, line, rd_colv[need[i]], "a column "
				 "the header must name");
			err = EINVAL;
		}
	}

	d->ncol = n;

	return err;
}


/* check one line's cells and append them to the arrays */
static void row(struct rdeck *d, const char *const cell[RC_COUNT],
		uint32_t line)
{
	int64_t num[RC_COUNT] = { 0, 0, 0, 0, 60, 60, 0 };
	const char *plan = cell[RC_PLAN], *pfx = cell[RC_PREFIX];
	const char *from = cell[RC_FROM];
	uint32_t nerr = d->nerr;
	const char *sep;
	int i, err = 0;

	if (!plan || !name_ok(plan))
		rd_error(d, line, "rate_plan", "1 to %u letters, digits or "
			 "._-", RD_NAME_MAX);

	if (!pfx)
		pfx = "";
	if (strlen(pfx) > RD_PREFIX_MAX ||
	    strspn(pfx, "0123456789") != strlen(pfx))
		rd_error(d, line, "prefix", "0 to %u digits", RD_PREFIX_MAX);

	for (i = RC_FEE; i <= RC_SUB; i++) {
		const char *c = cell[i];

		if (!c || !*c) {
			if (i == RC_PPM)
				rd_error(d, line, rd_colv[i], "missing");
			continue;
		}

		if (i == RC_FEE || i == RC_PPM) {
			if (api_money_parse(&num[i], c))
				rd_error(d, line, rd_colv[i], "a decimal "
					 "amount such as 0.0125, not "
					 "negative, at most 6 decimals");
		}
		else {
			char *end;
			long long v = strtoll(c, &end, 10);

			if (*end || end == c || v < 1 ||
			    v > RD_INCREMENT_MAX)
				rd_error(d, line, rd_colv[i], "seconds, 1 to "
					 "%u", RD_INCREMENT_MAX);
			num[i] = v;
		}
	}

	if (from && *from && api_time_valid(from))
		rd_error(d, line, "valid_from", "an ISO 8601 date "
			 "(2027-01-01) or date-time with zone "
			 "(2027-01-01T00:00:00Z)");

	if (d->nerr != nerr)
		return;

	if (d->rows >= API_RDECK_ROWS_MAX) {
		rd_error(d, line, NULL, "more than %u rates",
			 API_RDECK_ROWS_MAX);
		return;
	}

	/* checked values need no escaping: names, digits, times */
	sep = d->rows ? "," : "";
	err |= mbuf_printf(d->arr[RC_PLAN], "%s\"%s\"", sep, plan);
	err |= mbuf_printf(d->arr[RC_PREFIX], "%s\"%s\"", sep, pfx);
	for (i = RC_FEE; i <= RC_SUB; i++)
		err |= mbuf_printf(d->arr[i], "%s%lld", sep,
				   (long long)num[i]);
	err |= mbuf_printf(d->arr[RC_FROM], "%s%s%s%s", sep,
			   from && *from ? "\"" : "",
			   from && *from ? from : "NULL",
			   from && *from ? "\"" : "");
	err |= mbuf_printf(d->arr[RC_COUNT], "%s%u", sep, line);
	if (err) {
		rd_error(d, line, NULL, "out of memory");
		return;
	}

	++d->rows;
}


static uint64_t now_us(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);

	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}


/* check up to max lines; d->done once the text is read */
static void rdeck_step(struct rdeck *d, uint32_t max)
{
	uint64_t t0 = now_us(), dt;
	uint32_t k;

	for (k = 0; k < max && !d->done; k++) {
		char *cellv[RC_COUNT + 1];
		const char *cell[RC_COUNT] = { NULL };
		uint32_t line;
		unsigned n = 0, i;
		int err;

		err = api_csv_next(&d->rd, cellv, RC_COUNT, &n, &line);
		if (err == ENOENT) {
			d->done = true;
			break;
		}
		if (err == EBADMSG) {
			rd_error(d, line, NULL, "a quote not closed, or text "
				 "after a closing quote");
			continue;
		}
		if (err == E2BIG) {
			rd_error(d, line, NULL, "more than %u columns",
				 RC_COUNT);
			continue;
		}

		if (!d->header) {
			d->header = true;
			if (header(d, cellv, n, line)) {
				d->done = true;
				break;
			}
			continue;
		}

		if (n != d->ncol) {
			rd_error(d, line, NULL, "%u columns, the header has "
				 "%u", n, d->ncol);
			continue;
		}

		for (i = 0; i < n; i++) {
			if (strlen(cellv[i]) > RD_CELL_MAX) {
				rd_error(d, line, rd_colv[d->map[i]],
					 "longer than %u characters",
					 RD_CELL_MAX);
				break;
			}
			cell[d->map[i]] = cellv[i];
		}
		if (i == n)
			row(d, cell, line);
	}

	if (d->done && !d->header)
		rd_error(d, 1, NULL, "a header line naming the columns is "
			 "required (rate_plan,prefix,price_per_minute,...)");

	if (d->done && d->header && !d->nerr && !d->rows)
		rd_error(d, d->rd.line, NULL, "no rates after the header");

	dt = now_us() - t0;
	d->us_total += dt;
	if (dt > d->us_max)
		d->us_max = dt;
	++d->slices;
}


/* the statement's parameters; closes the arrays */
static int rdeck_params(struct rdeck *d, const char *v[9], bool replace)
{
	int i, err = 0;

	for (i = 0; i <= RC_COUNT; i++) {
		err |= mbuf_write_u8(d->arr[i], '}');
		err |= mbuf_write_u8(d->arr[i], 0);
		v[i] = (const char *)d->arr[i]->buf;
	}
	v[8] = replace ? "true" : "false";

	return err ? ENOMEM : 0;
}


/* ---------------------------------------------------------------- HTTP */

/** An import in progress: checked in slices, then applied */
struct rimport {
	struct api_req *req;         /**< borrowed: owns this as ctx     */
	struct rdeck *d;             /**< owned                          */
	struct tmr tmr;
	bool replace;
};


static void rimport_destructor(void *arg)
{
	struct rimport *im = arg;

	tmr_cancel(&im->tmr);
	mem_deref(im->d);
}


/* 400 {"error", "field", "errors": [{line, field, error}], "error_count"} */
static void errors_reply(struct api_req *req, const struct rd_err *ev,
			 uint32_t n, uint32_t count)
{
	struct odict *od = NULL, *arr = NULL;
	char msg[96];
	uint32_t i;
	int err;

	(void)re_snprintf(msg, sizeof(msg), "%u line%s of the deck %s not "
			  "valid; nothing was changed", count,
			  count == 1 ? "" : "s", count == 1 ? "is" : "are");

	err  = odict_alloc(&od, 8);
	err |= odict_alloc(&arr, 16);
	if (err)
		goto out;

	err |= odict_entry_add(od, "error", ODICT_STRING, msg);
	err |= n && ev[0].field ?
		odict_entry_add(od, "field", ODICT_STRING, ev[0].field) :
		odict_entry_add(od, "field", ODICT_NULL);

	for (i = 0; i < n && !err; i++) {
		struct odict *o = NULL;
		char key[16];

		err = odict_alloc(&o, 4);
		if (err)
			break;
		err |= odict_entry_add(o, "line", ODICT_INT,
				       (int64_t)ev[i].line);
		err |= ev[i].field ?
			odict_entry_add(o, "field", ODICT_STRING,
					ev[i].field) :
			odict_entry_add(o, "field", ODICT_NULL);
		err |= odict_entry_add(o, "error", ODICT_STRING, ev[i].msg);
		(void)re_snprintf(key, sizeof(key), "%u", i);
		err |= odict_entry_add(arr, key, ODICT_OBJECT, o);
		mem_deref(o);
	}

	err |= odict_entry_add(od, "errors", ODICT_ARRAY, arr);
	err |= odict_entry_add(od, "error_count", ODICT_INT, (int64_t)count);

 out:
	if (err)
		api_error(req, 500, NULL, "out of memory");
	else
		api_reply(req, 400, od);

	mem_deref(arr);
	mem_deref(od);
}


/* tg_rates_import's rows: duplicates (line not NULL), or the counts */
static int import_result(const PGresult *res, struct rd_err *ev,
			 uint32_t *nerr, int64_t cnt[3])
{
	int i, n = PQntuples(res);

	*nerr = 0;
	if (n < 1 || PQnfields(res) != 6)
		return EPROTO;

	if (PQgetisnull(res, 0, 0)) {
		for (i = 0; i < 3; i++)
			cnt[i] = strtoll(PQgetvalue(res, 0, 3 + i), NULL, 10);
		return 0;
	}

	for (i = 0; i < n && i < API_RDECK_ERRORS; i++) {
		ev[i].line = (uint32_t)strtoul(PQgetvalue(res, i, 0), NULL,
					       10);
		ev[i].field = "prefix";
		str_ncpy(ev[i].msg, PQgetvalue(res, i, 2), sizeof(ev[i].msg));
	}
	*nerr = (uint32_t)i;

	return 0;
}


static void import_done(int err, const struct pg_result *pres, void *arg)
{
	struct api_req *req = arg;
	struct rimport *im = req->ctx;
	struct odict *od = NULL;
	int64_t cnt[3] = { 0, 0, 0 };
	uint32_t ndup;

	if (err) {
		api_db_error(req, err, pres, NULL, "a rate of the deck");
		return;
	}

	if (import_result((const PGresult *)pres, im->d->errv, &ndup, cnt)) {
		api_error(req, 500, NULL, "unexpected result of "
			  "tg_rates_import");
		return;
	}

	if (ndup) {
		errors_reply(req, im->d->errv, ndup, ndup);
		return;
	}

	if (odict_alloc(&od, 8) ||
	    odict_entry_add(od, "rates", ODICT_INT, (int64_t)im->d->rows) ||
	    odict_entry_add(od, "inserted", ODICT_INT, cnt[0]) ||
	    odict_entry_add(od, "updated", ODICT_INT, cnt[1]) ||
	    odict_entry_add(od, "deleted", ODICT_INT, cnt[2]) ||
	    odict_entry_add(od, "mode", ODICT_STRING,
			    im->replace ? "replace" : "merge"))
		api_error(req, 500, NULL, "out of memory");
	else
		api_reply(req, 200, od);

	mem_deref(od);
}


static void slice_h(void *arg)
{
	struct rimport *im = arg;
	struct api_req *req = im->req;
	struct rdeck *d = im->d;
	const char *v[9];
	uint64_t t0;

	rdeck_step(d, API_RDECK_SLICE);
	if (!d->done) {
		tmr_start(&im->tmr, 0, slice_h, im);
		return;
	}

	if (d->nerr) {
		tlog_info(NULL, "api: rate deck refused, %u errors", d->nerr);
		errors_reply(req, d->errv, d->nerr < API_RDECK_ERRORS ?
			     d->nerr : API_RDECK_ERRORS, d->nerr);
		return;
	}

	if (rdeck_params(d, v, im->replace)) {
		api_error(req, 500, NULL, "out of memory");
		return;
	}

	/* a big deck takes a while to write: a deadline of its own (the
	   session's statement_timeout still applies) */
	req->q = mem_deref(req->q);
	t0 = now_us();
	if (db_exec(&req->q, req->api->db, "api_rates_import", 9, v,
		    API_RDECK_DEADLINE_MS, false, import_done, req))
		api_error(req, 503, NULL, "database unavailable");

	tlog_info(NULL, "api: rate deck of %u rates checked in %u slices: "
		  "%llu us on the loop, the longest slice %llu us; handed to "
		  "the database in %llu us", d->rows, d->slices,
		  (unsigned long long)d->us_total,
		  (unsigned long long)d->us_max,
		  (unsigned long long)(now_us() - t0));
}


/** POST /v1/rates/import?mode=merge|replace (text/csv) */
void api_rates_import_h(struct api_req *req)
{
	const char *mode = api_arg(req, "mode");
	struct rimport *im;
	uint64_t t0;

	if (mode && strcmp(mode, "merge") && strcmp(mode, "replace")) {
		api_error(req, 400, "mode", "\"merge\" (the default) or "
			  "\"replace\"");
		return;
	}

	if (!req->body || !req->body->end) {
		api_error(req, 400, NULL, "a rate deck is required (text/csv)");
		return;
	}

	if (memchr(req->body->buf, 0, req->body->end)) {
		api_error(req, 400, NULL, "a NUL byte in the CSV");
		return;
	}

	t0 = now_us();
	im = mem_zalloc(sizeof(*im), rimport_destructor);
	if (!im || rdeck_alloc(&im->d, req->body)) {
		mem_deref(im);
		api_error(req, 500, NULL, "out of memory");
		return;
	}

	/* the deck holds the body now */
	req->body = mem_deref(req->body);
	im->d->us_max = im->d->us_total = now_us() - t0;

	im->req = req;
	im->replace = mode && !strcmp(mode, "replace");
	tmr_init(&im->tmr);
	req->ctx = mem_deref(req->ctx);
	req->ctx = im;

	tmr_start(&im->tmr, 0, slice_h, im);
}


/* -------------------------------------------------------------- export */

int api_rates_csv_register(struct db *db)
{
	int err;

	err = db_prepare(db, "api_rates_import", RATES_IMPORT_SQL, 9);
	err |= db_prepare(db, stmt_rates_csv, "SELECT p.name, r.prefix,"
			  " r.connect_fee, r.price_per_minute,"
			  " r.initial_increment, r.subsequent_increment,"
			  " CASE WHEN isfinite(r.valid_from) THEN"
			  " to_char(r.valid_from AT TIME ZONE 'UTC',"
			  " 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') END"
			  " FROM rates r JOIN rate_plans p"
			  " ON p.id = r.rate_plan_id"
			  " WHERE $1::bigint IS NULL OR r.rate_plan_id = $1"
			  " ORDER BY p.name, r.prefix, r.valid_from", 1);

	return err;
}


static void export_done(int err, const struct pg_result *pres, void *arg)
{
	struct api_req *req = arg;
	const PGresult *res = (const PGresult *)pres;
	struct mbuf *mb;
	int i, j, n;

	if (err) {
		api_db_error(req, err, pres, NULL, "rates");
		return;
	}

	n = PQntuples(res);
	mb = mbuf_alloc(64 + (size_t)n * 64);
	if (!mb) {
		api_error(req, 500, NULL, "out of memory");
		return;
	}

	for (j = 0; j < RC_COUNT; j++)
		err |= mbuf_printf(mb, "%s%s", j ? "," : "", rd_colv[j]);
	err |= mbuf_write_str(mb, "\r\n");

	for (i = 0; i < n && !err; i++) {
		for (j = 0; j < RC_COUNT; j++) {
			const char *s = PQgetvalue(res, i, j);

			if (j)
				err |= mbuf_write_u8(mb, ',');
			if (j == RC_FEE || j == RC_PPM) {
				int64_t m = strtoll(s, NULL, 10);

				err |= mbuf_printf(mb, "%H", api_money_print,
						   &m);
			}
			else if (!PQgetisnull(res, i, j)) {
				err |= api_csv_cell(mb, s, false);
			}
		}
		err |= mbuf_write_str(mb, "\r\n");
	}

	if (err)
		api_error(req, 500, NULL, "out of memory");
	else
		api_reply_text(req, 200, "text/csv; charset=utf-8",
			       (const char *)mb->buf, mb->end);

	mem_deref(mb);
}


/** GET /v1/rates?format=csv[&rate_plan_id=] */
void api_rates_csv(struct api_req *req)
{
	int64_t plan;
	char plans[24];
	const char *v[1] = { NULL };
	int err;

	err = api_arg_int(req, "rate_plan_id", 1, INT64_MAX, &plan);
	if (err == EINVAL)
		return;
	if (!err) {
		(void)re_snprintf(plans, sizeof(plans), "%lld",
				  (long long)plan);
		v[0] = plans;
	}

	(void)api_exec(req, stmt_rates_csv, 1, v, export_done);
}


/* ------------------------------------------------------ command line */

struct cli {
	struct rdeck *d;
	struct re_printf *pf, *errpf;
	const char *path;
	bool replace;
	int ret;
};


static void cli_done(int err, const struct pg_result *pres, void *arg)
{
	struct cli *c = arg;
	int64_t cnt[3] = { 0, 0, 0 };
	uint32_t ndup = 0, i;

	if (err) {
		re_hprintf(c->errpf, "%s: the database refused the deck: "
			   "%s", c->path,
			   PQresultErrorMessage((const PGresult *)pres));
		c->ret = 1;
		return;
	}

	if (import_result((const PGresult *)pres, c->d->errv, &ndup, cnt)) {
		re_hprintf(c->errpf, "%s: unexpected result of "
			   "tg_rates_import\n", c->path);
		c->ret = 1;
		return;
	}

	for (i = 0; i < ndup; i++)
		re_hprintf(c->errpf, "%s:%u: prefix: %s\n", c->path,
			   c->d->errv[i].line, c->d->errv[i].msg);
	if (ndup) {
		re_hprintf(c->errpf, "%s: %u duplicate line%s; nothing was "
			   "changed\n", c->path, ndup, ndup == 1 ? "" : "s");
		c->ret = 1;
		return;
	}

	re_hprintf(c->pf, "%s: %u rates (%s): %lld inserted, %lld updated, "
		   "%lld deleted\n", c->path, c->d->rows,
		   c->replace ? "replace" : "merge", (long long)cnt[0],
		   (long long)cnt[1], (long long)cnt[2]);
	c->ret = 0;
}


/**
 * tollgate --import-rates: check a rate deck file and apply it, blocking
 *
 * @param conninfo  libpq connection string
 * @param path      the CSV file
 * @param replace   mode replace (else merge)
 * @param pf        where the summary goes
 * @param errpf     where errors go, one "FILE:LINE: field: message" each
 *
 * @return 0 if the deck was applied, 1 if not (the reasons are printed)
 */
int api_rates_import_file(const char *conninfo, const char *path,
			  bool replace, struct re_printf *pf,
			  struct re_printf *errpf)
{
	struct cli c = { NULL, pf, errpf, path, replace, 1 };
	const char *v[9];
	struct mbuf *mb = NULL;
	uint8_t buf[65536];
	FILE *f;
	size_t n;
	uint32_t i;

	f = fopen(path, "rb");
	if (!f) {
		re_hprintf(errpf, "%s: %m\n", path, errno);
		return 1;
	}

	mb = mbuf_alloc(sizeof(buf));
	while (mb && (n = fread(buf, 1, sizeof(buf), f)) > 0) {
		if (mb->end + n > 268435456 || mbuf_write_mem(mb, buf, n)) {
			re_hprintf(errpf, "%s: too large\n", path);
			goto out;
		}
	}
	if (!mb || ferror(f)) {
		re_hprintf(errpf, "%s: cannot read it\n", path);
		goto out;
	}

	if (memchr(mb->buf, 0, mb->end)) {
		re_hprintf(errpf, "%s: a NUL byte in the CSV\n", path);
		goto out;
	}

	if (rdeck_alloc(&c.d, mb)) {
		re_hprintf(errpf, "%s: out of memory\n", path);
		goto out;
	}

	while (!c.d->done)
		rdeck_step(c.d, API_RDECK_SLICE);

	if (c.d->nerr) {
		for (i = 0; i < c.d->nerr && i < API_RDECK_ERRORS; i++) {
			const struct rd_err *e = &c.d->errv[i];

			re_hprintf(errpf, "%s:%u: %s%s%s\n", path, e->line,
				   e->field ? e->field : "",
				   e->field ? ": " : "", e->msg);
		}
		re_hprintf(errpf, "%s: %u line%s not valid; nothing was "
			   "changed\n", path, c.d->nerr,
			   c.d->nerr == 1 ? "" : "s");
		goto out;
	}

	if (rdeck_params(c.d, v, replace)) {
		re_hprintf(errpf, "%s: out of memory\n", path);
		goto out;
	}

	if (db_exec_sync(conninfo, RATES_IMPORT_SQL, 9, v, cli_done, &c,
			 errpf))
		c.ret = 1;

 out:
	if (f)
		(void)fclose(f);
	mem_deref(c.d);
	mem_deref(mb);

	return c.ret;
}
