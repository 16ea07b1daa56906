/**
 * @file text.c  Bytes from the network as text: UTF-8 checks and escapes
 *               for log lines
 */

#include <string.h>
#include "core.h"


/**
 * Length of the well-formed UTF-8 sequence at p (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF), 0 if there is none.
 */
static size_t utf8_seq(const unsigned char *p, size_t len)
{
	size_t n, i;
	uint32_t cp;

	if (!len)
		return 0;

	if (p[0] < 0x80)
		return 1;
	else if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		n = 2;
		cp = p[0] & 0x1f;
	}
	else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		n = 3;
		cp = p[0] & 0x0f;
	}
	else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 4;
		cp = p[0] & 0x07;
	}
	else
		return 0;

	if (len < n)
		return 0;

	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}

	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;

	return n;
}


/**
 * Is a byte string well-formed UTF-8 without control characters (C0, DEL
 * and C1)?
 *
 * @param p    the bytes (NULL only with len 0)
 * @param len  their number
 *
 * @return true if every byte belongs to a printable UTF-8 character
 */
bool text_utf8_valid(const char *p, size_t len)
{
	const unsigned char *u = (const unsigned char *)p;
	size_t i = 0;

	while (i < len) {
		size_t n = utf8_seq(u + i, len - i);

		if (!n || u[i] < 0x20 || u[i] == 0x7f ||
		    (n == 2 && u[i] == 0xc2 && u[i + 1] < 0xa0))
			return false;
		i += n;
	}

	return true;
}


/* is the sequence at p (n bytes) a line break for some reader: NEL,
 * U+2028 LINE SEPARATOR, U+2029 PARAGRAPH SEPARATOR, or a C1 control */
static bool breaks_line(const unsigned char *p, size_t n)
{
	if (n == 2 && p[0] == 0xc2 && p[1] < 0xa0)
		return true;

	return n == 3 && p[0] == 0xe2 && p[1] == 0x80 &&
		(p[2] == 0xa8 || p[2] == 0xa9);
}


/**
 * Write bytes as one line of log text: the backslash, control characters
 * (line breaks included), C1 controls, U+2028/U+2029 and every byte that
 * is not part of well-formed UTF-8 become escapes (\\ \n \r \t \xNN), so
 * that no value from the network can end a line or forge one.
 *
 * @param dst   where to write; always NUL-terminated if sz > 0
 * @param sz    its size
 * @param p     the bytes, not necessarily NUL-terminated
 * @param len   their number
 *
 * @return How many bytes of p were written (less than len if dst was too
 *         small)
 */
size_t text_escape(char *dst, size_t sz, const char *p, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)p;
	size_t i = 0, o = 0;

	if (!sz)
		return 0;

	while (i < len) {
		size_t n = utf8_seq(u + i, len - i), k;
		const unsigned char c = u[i];

		if (n == 1 && c >= 0x20 && c != 0x7f && c != '\\') {
			if (o + 1 >= sz)
				break;
			dst[o++] = (char)c;
		}
		else if (n == 1 && (c == '\\' || c == '\n' || c == '\r' ||
				    c == '\t')) {
			if (o + 2 >= sz)
				break;
			dst[o++] = '\\';
			dst[o++] = c == '\\' ? '\\' : c == '\n' ? 'n' :
				c == '\r' ? 'r' : 't';
		}
		else if (n > 1 && !breaks_line(u + i, n)) {
			if (o + n >= sz)
				break;
			memcpy(dst + o, u + i, n);
			o += n;
		}
		else {
			if (!n)
				n = 1;
			if (o + 4 * n >= sz)
				break;
			for (k = 0; k < n; k++) {
				dst[o++] = '\\';
				dst[o++] = 'x';
				dst[o++] = hex[u[i + k] >> 4];
				dst[o++] = hex[u[i + k] & 0xf];
			}
		}

		i += n;
	}

	dst[o] = '\0';

	return i;
}
