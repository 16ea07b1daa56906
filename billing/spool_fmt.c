/**
 * @file spool_fmt.c  The spool's line format (see spool.c): encoding and
 *                    parsing of settlement, answer, tick and done lines
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "billing_int.h"


/* ------------------------------------------------------------ format */

static bool must_escape(char c)
{
	return c == '%' || c == '\t' || c == '\n' || c == '\r' || c == '\\';
}


int spool_field_encode(struct mbuf *mb, const char *v)
{
	int err = 0;

	if (!v)
		return mbuf_write_u8(mb, '-');

	err |= mbuf_write_u8(mb, '=');
	for (; *v && !err; v++) {
		if (must_escape(*v))
			err = mbuf_printf(mb, "%%%02X", (uint8_t)*v);
		else
			err = mbuf_write_u8(mb, (uint8_t)*v);
	}

	return err;
}


static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}


/* decode one field in place; *nullp for "-"; a NUL in it is refused */
static int field_decode(char *f, bool *nullp)
{
	char *r, *w;

	if (!strcmp(f, "-")) {
		*nullp = true;
		return 0;
	}

	if (f[0] != '=')
		return EBADMSG;

	*nullp = false;
	for (r = f + 1, w = f; *r; r++) {
		if (*r == '%') {
			int h = hexval(r[1]), l = h < 0 ? -1 : hexval(r[2]);

			if (h < 0 || l < 0 || (h == 0 && l == 0))
				return EBADMSG;
			*w++ = (char)(h * 16 + l);
			r += 2;
		}
		else {
			*w++ = *r;
		}
	}
	*w = '\0';

	return 0;
}


static bool parse_ms(const char *s, uint64_t *msp)
{
	char *end;
	unsigned long long v;

	if (!*s || *s < '0' || *s > '9')
		return false;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return false;

	*msp = v;

	return true;
}


/**
 * Encode a settlement as one spool line (with its newline)
 *
 * @return 0, ENOMEM or EMSGSIZE (longer than SPOOL_MAX_LINE)
 */
int spool_line_settle(struct mbuf *mb, const char *const v[SETTLE_NPARAMS])
{
	size_t start = mb->pos;
	int i, err;

	err = mbuf_write_str(mb, "S3");
	for (i = 0; i < SETTLE_NPARAMS && !err; i++) {
		err |= mbuf_write_u8(mb, '\t');
		err |= spool_field_encode(mb, v[i]);
	}
	err |= mbuf_write_u8(mb, '\n');
	if (err)
		return ENOMEM;

	return mb->pos - start > SPOOL_MAX_LINE + 1 ? EMSGSIZE : 0;
}


int spool_line_answer(struct mbuf *mb, const char *id, uint64_t answer_ms,
		       uint64_t alive_ms)
{
	int err;

	err  = mbuf_write_str(mb, "A2\t");
	err |= spool_field_encode(mb, id);
	err |= mbuf_printf(mb, "\t%llu", (unsigned long long)answer_ms);
	if (alive_ms)
		err |= mbuf_printf(mb, "\t%llu", (unsigned long long)alive_ms);
	err |= mbuf_write_u8(mb, '\n');

	return err ? ENOMEM : 0;
}


/* split a line at its tabs, in place */
static unsigned split(char *line, char **fv, unsigned max)
{
	unsigned n = 0;
	char *p = line;

	for (;;) {
		char *t = strchr(p, '\t');

		if (n == max)
			return max + 1;
		fv[n++] = p;
		if (!t)
			break;
		*t = '\0';
		p = t + 1;
	}

	return n;
}


/**
 * Parse one spool line (without its newline), in place
 *
 * @return 0 with *recp filled, or EBADMSG
 */
int spool_parse(char *line, struct spool_rec *rec)
{
	char *fv[SETTLE_NPARAMS + 2];
	unsigned n, i;
	bool null;

	memset(rec, 0, sizeof(*rec));

	n = split(line, fv, ARRAY_SIZE(fv));
	if (n > SETTLE_NPARAMS + 1 || n < 2)
		return EBADMSG;

	/* S3: every field of tg_settle_class4; S2 (without the class-4
	   fields) and S (without media too) of earlier versions */
	if (!strcmp(fv[0], "S3") || !strcmp(fv[0], "S2") ||
	    !strcmp(fv[0], "S")) {
		unsigned want = fv[0][1] == '3' ? SETTLE_NPARAMS :
			fv[0][1] == '2' ? SETTLE_NPARAMS_S2 :
			SETTLE_NPARAMS_S2 - 1;

		/* "S" lines had media (14 fields) or not (13) */
		if (n != want + 1 && !(want == SETTLE_NPARAMS_S2 - 1 &&
				       n == SETTLE_NPARAMS_S2 + 1))
			return EBADMSG;

		for (i = 0; i < n - 1; i++) {
			if (field_decode(fv[i + 1], &null))
				return EBADMSG;
			rec->v[i] = null ? NULL : fv[i + 1];
		}

		if (!rec->v[0] || !rec->v[0][0] || !rec->v[1])
			return EBADMSG;

		rec->type = 'S';
		rec->id = rec->v[0];
		return 0;
	}

	if (!strcmp(fv[0], "D2") || !strcmp(fv[0], "D")) {
		if (n != 2 || field_decode(fv[1], &null) || null || !*fv[1])
			return EBADMSG;

		rec->type = 'D';
		rec->id = fv[1];
		return 0;
	}

	if (!strcmp(fv[0], "A2")) {
		if (n < 3 || n > 4 || field_decode(fv[1], &null) || null ||
		    !*fv[1] || !parse_ms(fv[2], &rec->answer_ms) ||
		    (n == 4 && !parse_ms(fv[3], &rec->alive_ms)))
			return EBADMSG;

		rec->type = 'A';
		rec->id = fv[1];
		return 0;
	}

	if (!strcmp(fv[0], "T2")) {
		if (n != 2 || !parse_ms(fv[1], &rec->tick_ms))
			return EBADMSG;

		rec->type = 'T';
		return 0;
	}

	return EBADMSG;
}


