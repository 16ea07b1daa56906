/**
 * @file deck.c  REST API: a carrier's cost deck, imported in bulk
 *
 *   GET  /v1/carriers
 *   POST /v1/carriers/{name}/deck   (text/csv, or a JSON object)
 *
 * The body replaces the carrier's whole deck (the carrier is created if
 * new) in one transaction (tg_deck_import of sql/016).  Every row is
 * checked first; the first bad one is answered 400 naming its line
 * (CSV) or index (JSON) and field, and nothing is written.  Once the
 * deck is in the database the B2BUA loads its tables again and the reply
 * comes when the new deck is in use.
 *
 * CSV (api/csv.c's reader: RFC 4180 quotes): a header line naming the
 * columns, in any order, then one price a line:  prefix,price_per_minute[,connect_fee][,initial_increment]
 *        [,subsequent_increment][,valid_from][,valid_to]
 * ?preference=N (or "preference" of a JSON body) orders carriers whose
 * costs tie, lower first; without it the carrier keeps its own.
 * JSON:  {"preference": 0, "rates": [{"prefix": "44",
 *        "price_per_minute": "0.0100", ...}, ...]}
 * Money is a decimal string of units, increments are seconds (default
 * 60), validity bounds RFC 3339 (default: always); empty CSV cells take
 * the default.
 */

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <libpq-fe.h>
#include "api_int.h"


enum {
	DECK_PREFIX_MAX = 24,
	DECK_INCREMENT_MAX = 3600,
	DECK_ROWS_MAX = 1000000,
	DECK_CELL_MAX = 64,
};

static const char stmt_deck_import[] = "api_deck_import";
static const char stmt_carriers[]    = "api_carriers";

/* the columns of a deck row, in tg_deck_import's order */
enum deck_col {
	COL_PREFIX = 0, COL_PPM, COL_FEE, COL_INI, COL_SUB, COL_FROM, COL_TO,
	COL_COUNT
};

static const char *const colv[COL_COUNT] = {
	"prefix", "price_per_minute", "connect_fee", "initial_increment",
	"subsequent_increment", "valid_from", "valid_to",
};

/** The deck as SQL array literals, built a row at a time */
struct deck {
	struct mbuf *arr[COL_COUNT];  /**< owned                         */
	uint32_t rows;
};


int api_deck_register(struct db *db)
{
	int err;

	err = db_prepare(db, stmt_deck_import, "SELECT carrier_id, prices"
			 " FROM tg_deck_import($1, $2::text[], $3::bigint[],"
			 " $4::bigint[], $5::integer[], $6::integer[],"
			 " $7::timestamptz[], $8::timestamptz[],"
			 " $9::integer)", 9);
	err |= db_prepare(db, stmt_carriers, "SELECT c.id, c.name,"
			  " c.preference, (SELECT count(*) FROM carrier_rates r"
			  " WHERE r.carrier_id = c.id) AS prices,"
			  " (SELECT count(*) FROM carrier_rates r"
			  " WHERE r.carrier_id = c.id AND r.valid_from <= now()"
			  " AND now() < r.valid_to) AS prices_valid,"
			  " (SELECT coalesce(string_agg(g.name, ',' ORDER BY"
			  " g.id), '') FROM gateways g WHERE g.carrier_id = c.id)"
			  " AS gateways FROM carriers c ORDER BY c.name", 0);

	return err;
}


static void carriers_done(int err, const struct pg_result *res, void *arg)
{
	struct api_req *req = arg;
	struct odict *od = NULL;

	if (err) {
		api_db_error(req, err, res, NULL, "carriers");
		return;
	}

	err = odict_alloc(&od, 4);
	if (!err)
		err = api_rows(od, "carriers", res, "isiiis");
	if (err)
		api_error(req, 500, NULL, "out of memory");
	else
		api_reply(req, 200, od);

	mem_deref(od);
}


/** GET /v1/carriers: each with its preference, prices and gateways */
void api_carriers_h(struct api_req *req)
{
	(void)api_exec(req, stmt_carriers, 0, NULL, carriers_done);
}


static void deck_destructor(void *arg)
{
	struct deck *d = arg;
	int i;

	for (i = 0; i < COL_COUNT; i++)
		mem_deref(d->arr[i]);
}


static int deck_alloc(struct deck **dp)
{
	struct deck *d = mem_zalloc(sizeof(*d), deck_destructor);
	int i;

	if (!d)
		return ENOMEM;

	for (i = 0; i < COL_COUNT; i++) {
		d->arr[i] = mbuf_alloc(4096);
		if (!d->arr[i] || mbuf_write_u8(d->arr[i], '{')) {
			mem_deref(d);
			return ENOMEM;
		}
	}

	*dp = d;

	return 0;
}


/* where a row is, for an error: "line 4" or "rates[3]" */
struct where {
	bool csv;
	uint32_t n;
};


static void row_error(struct api_req *req, const struct where *w, int col,
		      const char *what)
{
	if (w->csv)
		api_error(req, 400, colv[col], "line %u: %s", w->n, what);
	else
		api_error(req, 400, colv[col], "rates[%u]: %s", w->n, what);
}


/*
 * Check one row (cells NULL or "" for defaults) and append it to the
 * arrays: 0, or EINVAL once answered 400
 */
static int row_add(struct api_req *req, struct deck *d,
		   const char *const cell[COL_COUNT], const struct where *w)
{
	const char *pfx = cell[COL_PREFIX];
	int64_t ppm = 0, fee = 0, ini = 60, sub = 60;
	int64_t *num[] = { NULL, &ppm, &fee, &ini, &sub };
	size_t l;
	int i, err = 0;

	if (d->rows >= DECK_ROWS_MAX) {
		row_error(req, w, COL_PREFIX, "too many rows");
		return EINVAL;
	}

	if (!pfx) {
		row_error(req, w, COL_PREFIX, "missing");
		return EINVAL;
	}
	l = strlen(pfx);
	if (l > DECK_PREFIX_MAX || strspn(pfx, "0123456789") != l) {
		row_error(req, w, COL_PREFIX, "0 to 24 digits");
		return EINVAL;
	}

	for (i = COL_PPM; i <= COL_SUB; i++) {
		const char *c = cell[i];

		if (!c || !*c) {
			if (i == COL_PPM) {
				row_error(req, w, i, "missing");
				return EINVAL;
			}
			continue;
		}

		if (i == COL_PPM || i == COL_FEE) {
			if (api_money_parse(num[i], c)) {
				row_error(req, w, i, "a decimal amount such "
					  "as 0.0125, not negative, at most "
					  "6 decimals");
				return EINVAL;
			}
		}
		else {
			char *end;
			long long v = strtoll(c, &end, 10);

			if (*end || end == c || v < 1 ||
			    v > DECK_INCREMENT_MAX) {
				row_error(req, w, i, "seconds, 1 to 3600");
				return EINVAL;
			}
			*num[i] = v;
		}
	}

	for (i = COL_FROM; i <= COL_TO; i++) {
		if (cell[i] && *cell[i] && api_time_valid(cell[i])) {
			row_error(req, w, i, "an RFC 3339 date or date-time");
			return EINVAL;
		}
	}

	/* two UTC times of one form compare as text */
	if (cell[COL_FROM] && *cell[COL_FROM] && cell[COL_TO] &&
	    *cell[COL_TO] && strlen(cell[COL_FROM]) == strlen(cell[COL_TO]) &&
	    (strlen(cell[COL_FROM]) == 10 ||
	     (cell[COL_FROM][strlen(cell[COL_FROM]) - 1] == 'Z' &&
	      cell[COL_TO][strlen(cell[COL_TO]) - 1] == 'Z')) &&
	    strcmp(cell[COL_FROM], cell[COL_TO]) >= 0) {
		row_error(req, w, COL_TO, "must come after valid_from");
		return EINVAL;
	}

	{
		const char *sep = d->rows ? "," : "";

		err |= mbuf_printf(d->arr[COL_PREFIX], "%s\"%s\"", sep, pfx);
		err |= mbuf_printf(d->arr[COL_PPM], "%s%lld", sep,
				   (long long)ppm);
		err |= mbuf_printf(d->arr[COL_FEE], "%s%lld", sep,
				   (long long)fee);
		err |= mbuf_printf(d->arr[COL_INI], "%s%lld", sep,
				   (long long)ini);
		err |= mbuf_printf(d->arr[COL_SUB], "%s%lld", sep,
				   (long long)sub);
		for (i = COL_FROM; i <= COL_TO; i++)
			err |= mbuf_printf(d->arr[i], "%s%s%s%s", sep,
					   cell[i] && *cell[i] ? "\"" : "",
					   cell[i] && *cell[i] ? cell[i] :
					   "NULL",
					   cell[i] && *cell[i] ? "\"" : "");
	}
	if (err) {
		api_error(req, 500, NULL, "out of memory");
		return ENOMEM;
	}

	++d->rows;

	return 0;
}


/* ------------------------------------------------------------------ CSV */

/* the deck's records, read by the API's one CSV reader (csv.c) */
static int deck_csv(struct api_req *req, struct deck *d, char *text)
{
	int map[COL_COUNT + 1];
	unsigned ncol = 0, i, j;
	struct api_csv rd;
	bool header = true;

	api_csv_init(&rd, text);

	for (;;) {
		char *cellv[COL_COUNT + 1];
		const char *cell[COL_COUNT] = { NULL };
		struct where w = { true, 0 };
		uint32_t lineno;
		unsigned n = 0;
		int err;

		err = api_csv_next(&rd, cellv, COL_COUNT, &n, &lineno);
		if (err == ENOENT)
			break;
		w.n = lineno;
		if (err == E2BIG) {
			api_error(req, 400, NULL, "line %u: more than %u "
				  "columns", lineno, COL_COUNT);
			return EINVAL;
		}
		if (err) {
			api_error(req, 400, NULL, "line %u: a quote not "
				  "closed, or text after a closing quote",
				  lineno);
			return EINVAL;
		}

		if (header) {
			for (i = 0; i < n; i++) {
				map[i] = -1;
				for (j = 0; j < COL_COUNT; j++) {
					if (!strcmp(cellv[i], colv[j]))
						map[i] = (int)j;
				}
				if (map[i] < 0) {
					api_error(req, 400, NULL, "line %u: "
						  "unknown column '%s'",
						  lineno, cellv[i]);
					return EINVAL;
				}
				for (j = 0; j < i; j++) {
					if (map[j] == map[i]) {
						api_error(req, 400,
							  colv[map[i]],
							  "line %u: column "
							  "given twice",
							  lineno);
						return EINVAL;
					}
				}
			}
			ncol = n;
			header = false;
			continue;
		}

		if (n != ncol) {
			api_error(req, 400, NULL, "line %u: %u columns, the "
				  "header has %u", lineno, n, ncol);
			return EINVAL;
		}

		for (i = 0; i < n; i++) {
			if (strlen(cellv[i]) > DECK_CELL_MAX) {
				row_error(req, &w, map[i], "too long");
				return EINVAL;
			}
			cell[map[i]] = cellv[i];
		}

		if (row_add(req, d, cell, &w))
			return EINVAL;
	}

	if (header) {
		api_error(req, 400, NULL, "line 1: a header line naming the "
			  "columns is required (prefix,price_per_minute,...)");
		return EINVAL;
	}

	return 0;
}


/* ----------------------------------------------------------------- JSON */

static int deck_json(struct api_req *req, struct deck *d, int64_t *prefp,
		     bool *prefsetp)
{
	struct odict *od = NULL;
	const struct odict_entry *e;
	struct le *le;
	uint32_t idx = 0;
	int err = EINVAL;

	if (json_decode_odict(&od, 64, (const char *)req->body->buf,
			      req->body->end, 4) || !od) {
		api_error(req, 400, NULL, "the body must be CSV (Content-Type"
			  " text/csv) or a JSON object");
		return EINVAL;
	}

	LIST_FOREACH(&od->lst, le) {
		e = le->data;
		if (strcmp(e->key, "rates") && strcmp(e->key, "preference")) {
			api_error(req, 400, e->key, "unknown field");
			goto out;
		}
	}

	e = odict_lookup(od, "preference");
	if (e) {
		if (e->type != ODICT_INT || e->u.integer < -1000000 ||
		    e->u.integer > 1000000) {
			api_error(req, 400, "preference", "an integer");
			goto out;
		}
		*prefp = e->u.integer;
		*prefsetp = true;
	}

	e = odict_lookup(od, "rates");
	if (!e || e->type != ODICT_ARRAY) {
		api_error(req, 400, "rates", "an array of prices is required");
		goto out;
	}

	LIST_FOREACH(&e->u.odict->lst, le) {
		const struct odict_entry *r = le->data;
		const char *cell[COL_COUNT] = { NULL };
		char ints[2][24];
		struct where w = { false, idx };
		struct le *fe;

		if (r->type != ODICT_OBJECT) {
			api_error(req, 400, "rates", "rates[%u]: an object",
				  idx);
			goto out;
		}

		LIST_FOREACH(&r->u.odict->lst, fe) {
			const struct odict_entry *f = fe->data;
			int c;

			for (c = 0; c < COL_COUNT; c++) {
				if (!strcmp(f->key, colv[c]))
					break;
			}
			if (c == COL_COUNT) {
				api_error(req, 400, f->key, "rates[%u]: "
					  "unknown field", idx);
				goto out;
			}

			if ((c == COL_INI || c == COL_SUB) &&
			    f->type == ODICT_INT) {
				(void)re_snprintf(ints[c - COL_INI],
						  sizeof(ints[0]), "%lld",
						  (long long)f->u.integer);
				cell[c] = ints[c - COL_INI];
			}
			else if (f->type == ODICT_STRING) {
				cell[c] = f->u.str;
			}
			else if (f->type != ODICT_NULL) {
				row_error(req, &w, c, c == COL_INI ||
					  c == COL_SUB ? "an integer" :
					  "a string");
				goto out;
			}
		}

		if (row_add(req, d, cell, &w))
			goto out;
		++idx;
	}

	err = 0;

 out:
	mem_deref(od);

	return err;
}


/* ------------------------------------------------------------- handler */

static void deck_reloaded(int err, void *arg)
{
	struct api_req *req = arg;
	(void)err;

	req->reload = mem_deref(req->reload);
	api_reply(req, 201, req->ctx);
}


static void import_done(int err, const struct pg_result *pres, void *arg)
{
	struct api_req *req = arg;
	const PGresult *res = (const PGresult *)pres;
	struct odict *od = NULL;

	if (err) {
		api_db_error(req, err, pres, NULL, "deck");
		return;
	}

	if (PQntuples(res) != 1 || odict_alloc(&od, 4) ||
	    odict_entry_add(od, "carrier", ODICT_STRING,
			    (const char *)req->ctx) ||
	    odict_entry_add(od, "carrier_id", ODICT_INT,
			    (int64_t)strtoll(PQgetvalue(res, 0, 0), NULL,
					     10)) ||
	    odict_entry_add(od, "prices", ODICT_INT,
			    (int64_t)strtoll(PQgetvalue(res, 0, 1), NULL,
					     10))) {
		mem_deref(od);
		api_error(req, 500, NULL, "out of memory");
		return;
	}

	req->ctx = mem_deref(req->ctx);
	req->ctx = od;

	err = b2bua_store_reload(&req->reload, req->api->b2bua,
				 deck_reloaded, req);
	if (err) {
		tlog_warn(NULL, "api: decks not reloaded: %m", err);
		api_reply(req, 201, od);
	}
}


/** POST /v1/carriers/{name}/deck */
void api_deck_h(struct api_req *req)
{
	const char *ctype = api_header(req, "Content-Type");
	struct deck *d = NULL;
	char *name = NULL, *text = NULL, pref[16];
	const char *v[9];
	int64_t preference = 0;
	bool prefset = false;
	size_t l;
	int i, err;

	if (req->meth != API_POST) {
		api_error(req, 405, NULL, "POST a deck");
		return;
	}

	l = req->id.l;
	if (!l || l > 64 || pl_strdup(&name, &req->id) ||
	    strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		   "0123456789._-") != l) {
		api_error(req, 400, "name", "a carrier name: 1 to 64 letters,"
			  " digits or ._-");
		goto out;
	}

	if (!req->body || !req->body->end) {
		api_error(req, 400, NULL, "a deck is required (CSV or JSON)");
		goto out;
	}

	if (deck_alloc(&d)) {
		api_error(req, 500, NULL, "out of memory");
		goto out;
	}

	/* ?preference=N, for a CSV body (a JSON body may say it too) */
	err = api_arg_int(req, "preference", -1000000, 1000000, &preference);
	if (err == EINVAL)
		goto out;
	prefset = !err;

	if (ctype && !strncasecmp(ctype, "text/csv", 8)) {
		if (re_sdprintf(&text, "%b", req->body->buf, req->body->end)) {
			api_error(req, 500, NULL, "out of memory");
			goto out;
		}
		if (strlen(text) != req->body->end) {
			api_error(req, 400, NULL, "a NUL byte in the CSV");
			goto out;
		}
		err = deck_csv(req, d, text);
	}
	else {
		err = deck_json(req, d, &preference, &prefset);
	}
	if (err)
		goto out;

	for (i = 0; i < COL_COUNT; i++) {
		if (mbuf_write_u8(d->arr[i], '}') ||
		    mbuf_write_u8(d->arr[i], 0)) {
			api_error(req, 500, NULL, "out of memory");
			goto out;
		}
	}

	(void)re_snprintf(pref, sizeof(pref), "%lld", (long long)preference);
	v[0] = name;
	for (i = 0; i < COL_COUNT; i++)
		v[i + 1] = (const char *)d->arr[i]->buf;
	v[8] = prefset ? pref : NULL;

	req->ctx = mem_deref(req->ctx);
	req->ctx = mem_ref(name);
	(void)api_exec(req, stmt_deck_import, 9, v, import_done);

 out:
	mem_deref(d);
	mem_deref(name);
	mem_deref(text);
}
