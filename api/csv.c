/**
 * @file csv.c  CSV of the REST API: one reader and one writer
 *
 * The reader (RFC 4180) splits a NUL-terminated text, in place, into
 * records: cells separated by ',', records by LF or CRLF; a cell in
 * double quotes may hold commas, line breaks and "" for a quote.
 * Unquoted cells lose the spaces and tabs around them; empty lines are
 * skipped.  Each record knows the line it starts on, for errors.  Both
 * the carriers' decks (deck.c) and the customers' rate decks
 * (rates_csv.c) are read by it.
 *
 * The writer quotes a cell when it must (a comma, quote, CR or LF, or
 * spaces at an end), and may guard text against spreadsheet formula
 * injection: a value that starts with = + - @ TAB or CR gets a leading
 * apostrophe, which spreadsheets show as text.
 */

#include <string.h>
#include "api_int.h"


void api_csv_init(struct api_csv *r, char *text)
{
	r->p = text;
	r->line = 1;
}


static bool blank(char c)
{
	return c == ' ' || c == '\t';
}


/* the end of a cell: ',' or end of record; skips trailing blanks/CR */
static int cell_end(struct api_csv *r, char **endp, bool quoted)
{
	char *p = r->p, *e;

	if (quoted) {
		while (blank(*p) || *p == '\r')
			++p;
		if (*p && *p != ',' && *p != '\n')
			return EBADMSG;
		*endp = NULL;
		r->p = p;
		return 0;
	}

	while (*p && *p != ',' && *p != '\n')
		++p;
	e = p;
	while (e > r->p && (blank(e[-1]) || e[-1] == '\r'))
		--e;
	*endp = e;
	r->p = p;

	return 0;
}


/* skip the rest of a record after an error */
static void skip_record(struct api_csv *r)
{
	char *nl = strchr(r->p, '\n');

	r->p = nl ? nl + 1 : r->p + strlen(r->p);
	if (nl)
		++r->line;
}


/**
 * The next record
 *
 * @param r      reader
 * @param cellv  its cells (pointers into the text, NUL-terminated)
 * @param max    room in cellv
 * @param np     number of cells
 * @param linep  the line the record starts on
 *
 * @return 0, ENOENT (no more records), E2BIG (more than max cells: the
 *         record is skipped), EBADMSG (a quote not closed, or text after
 *         a closing quote: the rest of the line is skipped)
 */
int api_csv_next(struct api_csv *r, char **cellv, unsigned max,
		 unsigned *np, uint32_t *linep)
{
	unsigned n = 0;

	/* empty lines */
	for (;;) {
		char *p = r->p;

		while (blank(*p) || *p == '\r')
			++p;
		if (*p == '\n') {
			r->p = p + 1;
			++r->line;
			continue;
		}
		if (!*p) {
			r->p = p;
			return ENOENT;
		}
		break;
	}

	*linep = r->line;

	for (;;) {
		char *start, *end, sep;

		while (blank(*r->p))
			++r->p;

		if (*r->p == '"') {
			char *w = r->p, *p = r->p + 1;

			start = w;
			for (;;) {
				if (!*p) {
					r->p = p;
					return EBADMSG;
				}
				if (*p == '"' && p[1] == '"') {
					*w++ = '"';
					p += 2;
				}
				else if (*p == '"') {
					++p;
					break;
				}
				else {
					if (*p == '\n')
						++r->line;
					*w++ = *p++;
				}
			}
			r->p = p;
			if (cell_end(r, &end, true)) {
				skip_record(r);
				return EBADMSG;
			}
			end = w;
		}
		else {
			start = r->p;
			(void)cell_end(r, &end, false);
		}

		sep = *r->p;
		*end = '\0';

		if (n == max) {
			if (sep)
				++r->p;
			if (sep == '\n')
				++r->line;
			if (sep == ',')
				skip_record(r);
			return E2BIG;
		}
		cellv[n++] = start;

		if (sep == ',') {
			++r->p;
			continue;
		}
		if (sep == '\n') {
			++r->p;
			++r->line;
		}
		break;
	}

	*np = n;

	return 0;
}


/**
 * Append one cell to a CSV line
 *
 * @param mb     the line
 * @param s      the value (NULL: an empty cell)
 * @param guard  text from callers: guard against formula injection
 *
 * @return 0 or ENOMEM
 */
int api_csv_cell(struct mbuf *mb, const char *s, bool guard)
{
	size_t l;
	bool quote;
	int err = 0;

	if (!s || !*s)
		return 0;

	l = strlen(s);
	quote = strpbrk(s, ",\"\r\n") || blank(s[0]) || blank(s[l - 1]);
	guard = guard && strchr("=+-@\t\r", s[0]);

	if (quote)
		err |= mbuf_write_u8(mb, '"');
	if (guard)
		err |= mbuf_write_u8(mb, '\'');

	if (!quote) {
		err |= mbuf_write_mem(mb, (const uint8_t *)s, l);
	}
	else {
		const char *q;

		while ((q = strchr(s, '"'))) {
			err |= mbuf_write_mem(mb, (const uint8_t *)s,
					      (size_t)(q - s) + 1);
			err |= mbuf_write_u8(mb, '"');
			s = q + 1;
		}
		err |= mbuf_write_str(mb, s);
		err |= mbuf_write_u8(mb, '"');
	}

	return err ? ENOMEM : 0;
}
