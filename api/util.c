/**
 * @file util.c  REST API: money, JSON bodies, values and timestamps
 */

#include <string.h>
#include <ctype.h>
#include <time.h>
#include <libpq-fe.h>
#include "api_int.h"


/* ---------------------------------------------------------------- money */

/**
 * Parse a decimal amount ("12.50", "0.000001", "7") into micro-units,
 * exactly.  No sign, no exponent, no blanks.
 *
 * @return 0, EINVAL (not a decimal number), EDOM (negative), EBADMSG (more
 *         than 6 decimals), ERANGE (too large)
 */
int api_money_parse(int64_t *amountp, const char *str)
{
	const char *p = str;
	uint64_t units = 0, frac = 0;
	unsigned nd = 0, nf = 0;

	if (!amountp || !str)
		return EINVAL;

	if (*p == '-')
		return (p[1] >= '0' && p[1] <= '9') ? EDOM : EINVAL;

	for (; *p >= '0' && *p <= '9'; p++, nd++) {
		if (units > (uint64_t)INT64_MAX / 10)
			return ERANGE;
		units = units * 10 + (uint64_t)(*p - '0');
	}

	if (!nd)
		return EINVAL;

	if (*p == '.') {
		++p;
		for (; *p >= '0' && *p <= '9'; p++, nf++) {
			if (nf < API_MONEY_DECIMALS)
				frac = frac * 10 + (uint64_t)(*p - '0');
			else if (*p != '0')
				return EBADMSG;
		}
		if (!nf)
			return EINVAL;
	}

	if (*p)
		return EINVAL;

	for (; nf < API_MONEY_DECIMALS; nf++)
		frac *= 10;

	if (units > ((uint64_t)INT64_MAX - frac) / 1000000)
		return ERANGE;

	*amountp = (int64_t)(units * 1000000 + frac);

	return 0;
}


/** Print micro-units as a decimal string with 2 to 6 decimals */
int api_money_print(struct re_printf *pf, const int64_t *amount)
{
	uint64_t a, units, frac;
	char dec[8];
	int n;

	if (!amount)
		return 0;

	a = *amount < 0 ? (uint64_t)0 - (uint64_t)*amount : (uint64_t)*amount;
	units = a / 1000000;
	frac = a % 1000000;

	(void)re_snprintf(dec, sizeof(dec), "%06llu",
			  (unsigned long long)frac);
	for (n = 6; n > 2 && dec[n - 1] == '0'; n--)
		;
	dec[n] = '\0';

	return re_hprintf(pf, "%s%llu.%s", *amount < 0 ? "-" : "",
			  (unsigned long long)units, dec);
}


int api_add_money(struct odict *od, const char *key, int64_t amount)
{
	char buf[32];

	(void)re_snprintf(buf, sizeof(buf), "%H", api_money_print, &amount);

	return odict_entry_add(od, key, ODICT_STRING, buf);
}


/** Wall-clock ms as RFC 3339 UTC ("2024-05-01T12:00:00.250Z"), 0: null */
int api_add_time(struct odict *od, const char *key, uint64_t ms)
{
	char buf[40];
	struct tm tm;
	time_t t;

	if (!ms)
		return odict_entry_add(od, key, ODICT_NULL);

	t = (time_t)(ms / 1000);
	if (!gmtime_r(&t, &tm))
		return odict_entry_add(od, key, ODICT_NULL);

	(void)re_snprintf(buf, sizeof(buf),
			  "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ",
			  tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
			  tm.tm_hour, tm.tm_min, tm.tm_sec,
			  (unsigned)(ms % 1000));

	return odict_entry_add(od, key, ODICT_STRING, buf);
}


/**
 * A column of a result as a JSON value: 'i' integer, 's' string, 'm'
 * money (micro-units in the column), 'b' boolean; SQL NULL is null.
 */
int api_add_col(struct odict *od, const char *key,
		const struct pg_result *pres, int row, int col, char type)
{
	const PGresult *res = (const PGresult *)pres;
	const char *v;

	if (PQgetisnull(res, row, col))
		return odict_entry_add(od, key, ODICT_NULL);

	v = PQgetvalue(res, row, col);

	switch (type) {

	case 'i':
		return odict_entry_add(od, key, ODICT_INT,
				       (int64_t)strtoll(v, NULL, 10));
	case 'm':
		return api_add_money(od, key, strtoll(v, NULL, 10));
	case 'b':
		return odict_entry_add(od, key, ODICT_BOOL, v[0] == 't');
	default:
		return odict_entry_add(od, key, ODICT_STRING, v);
	}
}


/**
 * A result row as a JSON object: one member a column, named as the
 * column and typed by its letter in types (see api_add_col); a column
 * marked '-', or past the end of types, is left out.
 */
int api_row(struct odict **odp, const struct pg_result *res, int row,
	    const char *types)
{
	const PGresult *r = (const PGresult *)res;
	int i, n = PQnfields(r), err;
	struct odict *o;

	err = odict_alloc(&o, 16);
	if (err)
		return err;

	for (i = 0; i < n && types[i] && !err; i++) {
		if (types[i] != '-')
			err = api_add_col(o, PQfname(r, i), res, row, i,
					  types[i]);
	}

	if (err)
		mem_deref(o);
	else
		*odp = o;

	return err;
}


/**
 * Every row of a result, as objects of a JSON array stored under key in
 * od
 */
int api_rows(struct odict *od, const char *key, const struct pg_result *res,
	     const char *types)
{
	struct odict *arr;
	int i, n = PQntuples((const PGresult *)res), err;

	err = odict_alloc(&arr, 64);
	if (err)
		return err;

	for (i = 0; i < n && !err; i++) {
		struct odict *o;
		char k[16];

		err = api_row(&o, res, i, types);
		if (err)
			break;
		(void)re_snprintf(k, sizeof(k), "%d", i);
		err = odict_entry_add(arr, k, ODICT_OBJECT, o);
		mem_deref(o);
	}

	if (!err)
		err = odict_entry_add(od, key, ODICT_ARRAY, arr);

	mem_deref(arr);

	return err;
}


/* ---------------------------------------------------------------- bodies */

/**
 * The request body as a JSON object with only allowed keys, each once.
 * On error the reply (400) is made and the error returned.
 */
int api_body(struct api_req *req, struct odict **odp,
	     const char *const *allowed)
{
	struct odict *od = NULL;
	const char *s;
	size_t len;
	struct le *le;
	int err;

	if (!req->body || !req->body->end) {
		api_error(req, 400, NULL, "a JSON object is required");
		return EINVAL;
	}

	s = (const char *)req->body->buf;
	len = req->body->end;
	while (len && isspace((unsigned char)*s)) {
		++s;
		--len;
	}

	if (!len || *s != '{') {
		api_error(req, 400, NULL, "the body must be a JSON object");
		return EINVAL;
	}

	err = json_decode_odict(&od, 16, s, len, 8);
	if (err) {
		api_error(req, 400, NULL, "malformed JSON (%m)", err);
		return EINVAL;
	}

	LIST_FOREACH(&od->lst, le) {
		const struct odict_entry *e = le->data;
		size_t i;
		bool ok = false;

		for (i = 0; allowed[i]; i++) {
			if (!strcmp(allowed[i], e->key)) {
				ok = true;
				break;
			}
		}

		if (!ok) {
			api_error(req, 400, e->key, "unknown field");
			goto fail;
		}

		if (odict_lookup(od, e->key) != e) {
			api_error(req, 400, e->key, "field given twice");
			goto fail;
		}
	}

	*odp = od;

	return 0;

 fail:
	mem_deref(od);
	return EINVAL;
}


static const struct odict_entry *entry(const struct odict *od,
				       const char *key)
{
	const struct odict_entry *e = odict_lookup(od, key);

	/* a duplicate key: the first of them (api_body() refuses both) */
	return e;
}


/**
 * A string field.  0 (*strp set; NULL for JSON null if nullable),
 * ENOENT (absent and optional), EINVAL (replied 400)
 */
int api_get_str(struct api_req *req, const struct odict *od,
		const char *key, bool required, bool nullable,
		const char **strp)
{
	const struct odict_entry *e = entry(od, key);

	if (!e) {
		if (!required)
			return ENOENT;
		api_error(req, 400, key, "required");
		return EINVAL;
	}

	if (e->type == ODICT_NULL && nullable) {
		*strp = NULL;
		return 0;
	}

	if (e->type != ODICT_STRING) {
		api_error(req, 400, key, "must be a string%s",
			  nullable ? " or null" : "");
		return EINVAL;
	}

	*strp = e->u.str;

	return 0;
}


int api_get_int(struct api_req *req, const struct odict *od,
		const char *key, bool required, int64_t min, int64_t max,
		int64_t *vp)
{
	const struct odict_entry *e = entry(od, key);

	if (!e) {
		if (!required)
			return ENOENT;
		api_error(req, 400, key, "required");
		return EINVAL;
	}

	if (e->type != ODICT_INT) {
		api_error(req, 400, key, "must be an integer");
		return EINVAL;
	}

	if (e->u.integer < min || e->u.integer > max) {
		api_error(req, 400, key, "must be in %lld..%lld",
			  (long long)min, (long long)max);
		return EINVAL;
	}

	*vp = e->u.integer;

	return 0;
}


int api_get_money(struct api_req *req, const struct odict *od,
		  const char *key, bool required, int64_t *vp)
{
	const char *s;
	int err;

	err = api_get_str(req, od, key, required, false, &s);
	if (err == EINVAL && entry(od, key) &&
	    entry(od, key)->type != ODICT_STRING) {
		/* the reply says "string": say which */
		api_error(req, 400, key, "must be a decimal string such as "
			  "\"12.50\"");
		return EINVAL;
	}
	if (err)
		return err;

	err = api_money_parse(vp, s);
	switch (err) {

	case 0:
		return 0;
	case EDOM:
		api_error(req, 400, key, "must not be negative");
		break;
	case EBADMSG:
		api_error(req, 400, key, "more than %u decimals",
			  API_MONEY_DECIMALS);
		break;
	case ERANGE:
		api_error(req, 400, key, "too large");
		break;
	default:
		api_error(req, 400, key, "must be a decimal string such as "
			  "\"12.50\"");
		break;
	}

	return EINVAL;
}


/** An integer query argument: 0, ENOENT (absent), EINVAL (replied 400) */
int api_arg_int(struct api_req *req, const char *name, int64_t min,
		int64_t max, int64_t *vp)
{
	const char *s = api_arg(req, name);
	const char *p;
	long long v;

	if (!s)
		return ENOENT;

	p = s + (*s == '-');
	if (!*p || strspn(p, "0123456789") != strlen(p) || strlen(p) > 18) {
		api_error(req, 400, name, "must be an integer");
		return EINVAL;
	}

	v = strtoll(s, NULL, 10);
	if (v < min || v > max) {
		api_error(req, 400, name, "must be in %lld..%lld",
			  (long long)min, (long long)max);
		return EINVAL;
	}

	*vp = v;

	return 0;
}


/** The id in the path: 0, or ENOENT (replied 404) */
int api_id(struct api_req *req, int64_t *idp)
{
	char buf[24];
	size_t i;

	if (!req->id.l || req->id.l > 18)
		goto notfound;

	for (i = 0; i < req->id.l; i++) {
		if (req->id.p[i] < '0' || req->id.p[i] > '9')
			goto notfound;
	}

	(void)pl_strcpy(&req->id, buf, sizeof(buf));
	*idp = strtoll(buf, NULL, 10);
	if (*idp <= 0)
		goto notfound;

	return 0;

 notfound:
	api_error(req, 404, "id", "no object with id %r", &req->id);
	return ENOENT;
}


static bool digits(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
	}

	return true;
}


/**
 * Is s an RFC 3339 date ("2024-05-01") or date-time
 * ("2024-05-01T12:00:00Z", fractions and +hh:mm offsets allowed)?
 */
int api_time_valid(const char *s)
{
	size_t l;
	int mon, day;

	if (!s)
		return EINVAL;

	l = strlen(s);
	if (l < 10 || !digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) ||
	    s[7] != '-' || !digits(s + 8, 2))
		return EINVAL;

	mon = (s[5] - '0') * 10 + (s[6] - '0');
	day = (s[8] - '0') * 10 + (s[9] - '0');
	if (mon < 1 || mon > 12 || day < 1 || day > 31)
		return EINVAL;

	if (l == 10)
		return 0;

	s += 10;
	if ((*s != 'T' && *s != 't' && *s != ' ') || strlen(s) < 9 ||
	    !digits(s + 1, 2) || s[3] != ':' || !digits(s + 4, 2) ||
	    s[6] != ':' || !digits(s + 7, 2))
		return EINVAL;

	if ((s[1] - '0') * 10 + (s[2] - '0') > 23 ||
	    (s[4] - '0') * 10 + (s[5] - '0') > 59 ||
	    (s[7] - '0') * 10 + (s[8] - '0') > 60)
		return EINVAL;

	s += 9;
	if (*s == '.') {
		size_t n = strspn(s + 1, "0123456789");

		if (!n || n > 6)
			return EINVAL;
		s += 1 + n;
	}

	if (!strcmp(s, "Z") || !strcmp(s, "z"))
		return 0;

	if ((*s == '+' || *s == '-') && strlen(s) == 6 && digits(s + 1, 2) &&
	    s[3] == ':' && digits(s + 4, 2))
		return 0;

	return EINVAL;
}


/**
 * Reply {"KEY": [...], "count": N} with the rows a listing collected, or
 * 500 naming what could not be listed
 *
 * @param err  what collecting the rows ended with
 */
void api_reply_list(struct api_req *req, const char *key,
		    const struct odict *arr, size_t n, int err)
{
	struct odict *od = NULL;

	if (!err)
		err = odict_alloc(&od, 4);
	if (!err) {
		err  = odict_entry_add(od, key, ODICT_ARRAY, arr);
		err |= odict_entry_add(od, "count", ODICT_INT, (int64_t)n);
	}

	if (err)
		api_error(req, 500, NULL, "cannot list %s (%m)", key, err);
	else
		api_reply(req, 200, od);

	mem_deref(od);
}
