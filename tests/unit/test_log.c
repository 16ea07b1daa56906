/**
 * @file test_log.c  Unit tests of the log (core/log.c)
 *
 * libre's messages, both those of its debug module (dbg_printf) and those
 * it writes to stderr with re_fprintf, come out as tollgate log lines:
 * timestamp, level mapped from libre's, "libre: ", trailing newlines
 * gone, control characters escaped.  Other streams are left alone.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <re.h>
#include "core.h"

#define DEBUG_MODULE "test_log"
#define DEBUG_LEVEL 7
#include <re_dbg.h>

#include "check.h"


static char out[8192];
static size_t outlen;
static int fd_log = -1;   /* where stderr goes while a test runs */
static int fd_err = -1;   /* the real stderr, for failed checks  */


/* stderr is the log file while a test runs; a failed check goes to the
 * real one */
#define EXPECT(cond) do {						\
		bool ok_ = (cond);					\
		(void)dup2(fd_err, STDERR_FILENO);			\
		check_at(__FILE__, __LINE__, ok_, #cond);		\
		(void)dup2(fd_log, STDERR_FILENO);			\
	} while (0)


/** Everything written to stderr since the last call, stderr emptied */
static const char *take(FILE *f)
{
	size_t n;

	(void)fflush(stderr);
	rewind(f);
	n = fread(out, 1, sizeof(out) - 1, f);
	out[n] = '\0';
	outlen = n;

	if (ftruncate(fileno(f), 0))
		perror("ftruncate");
	rewind(f);

	return out;
}


/** Number of lines in out */
static unsigned lines(void)
{
	unsigned n = 0;
	size_t i;

	for (i = 0; i < outlen; i++)
		n += out[i] == '\n';

	return n;
}


/** One line "YYYY-MM-DDTHH:MM:SS.mmmZ LEVEL   MSG\n" with this level, msg */
static bool line_is(const char *level, const char *msg)
{
	char want[1024];

	if (lines() != 1 || outlen < 25)
		return false;

	if (out[4] != '-' || out[10] != 'T' || out[19] != '.' ||
	    out[23] != 'Z' || out[24] != ' ')
		return false;

	(void)re_snprintf(want, sizeof(want), "%-7s %s\n", level, msg);

	return 0 == strcmp(out + 25, want);
}


static void test_dbg(FILE *f)
{
	dbg_printf(DBG_WARNING, "tmr: long async blocking: %u>%u ms\n",
		   120, 100);
	(void)take(f);
	EXPECT(line_is("warning",
		      "libre: tmr: long async blocking: 120>100 ms"));

	dbg_printf(DBG_NOTICE, "tcp: connection closed\n");
	(void)take(f);
	EXPECT(line_is("notice", "libre: tcp: connection closed"));

	dbg_printf(DBG_INFO, "sip: info\n\n");
	(void)take(f);
	EXPECT(line_is("info", "libre: sip: info"));

	dbg_printf(DBG_ERR, "x: err\n");
	(void)take(f);
	EXPECT(line_is("error", "libre: x: err"));

	dbg_printf(DBG_CRIT, "x: crit\n");
	(void)take(f);
	EXPECT(line_is("crit", "libre: x: crit"));

	/* below the log level: libre does not even format it */
	dbg_printf(DBG_DEBUG, "x: debug\n");
	(void)take(f);
	EXPECT(outlen == 0);

	tlog_set_level(LOG_DEBUG);
	dbg_printf(DBG_DEBUG, "x: debug\n");
	(void)take(f);
	EXPECT(line_is("debug", "libre: x: debug"));

	tlog_set_level(LOG_WARNING);
	dbg_printf(DBG_NOTICE, "x: notice\n");
	(void)take(f);
	EXPECT(outlen == 0);
	tlog_set_level(LOG_INFO);

	/* control characters are escaped, an inner newline too */
	dbg_printf(DBG_WARNING, "x: a\x1b[31mb\tc\rd\ne\\f\x7f\n");
	(void)take(f);
	EXPECT(line_is("warning",
		      "libre: x: a\\x1b[31mb\\tc\\rd\\ne\\\\f\\x7f"));
}


static void test_stderr(FILE *f)
{
	char big[700];
	const char *p;
	FILE *g;

	(void)re_fprintf(stderr, "sip: msg decode err: %m\n", EBADMSG);
	(void)take(f);
	EXPECT(line_is("warning", "libre: sip: msg decode err: Bad message"));

	(void)re_fprintf(stderr, "unhandeled response from %s: %u %b\r\n",
			 "127.0.0.1:5099", 200, "O\0K", (size_t)3);
	(void)take(f);
	EXPECT(line_is("warning", "libre: unhandeled response from "
		      "127.0.0.1:5099: 200 O\\x00K"));

	/* nothing but newlines: no line at all */
	(void)re_fprintf(stderr, "\n\n");
	(void)take(f);
	EXPECT(outlen == 0);

	/* too long: cut, and it says so */
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	(void)re_fprintf(stderr, "%s\n", big);
	p = take(f);
	EXPECT(lines() == 1);
	EXPECT(strstr(p, " warning libre: aaaa") != NULL);
	EXPECT(outlen > 6 && 0 == strcmp(p + outlen - 5, " ...\n"));

	/* any other stream is printed as libre would */
	g = tmpfile();
	EXPECT(g != NULL);
	if (g) {
		char buf[64] = "";
		size_t n;

		EXPECT(re_fprintf(g, "raw %d\n", 7) == 6);
		rewind(g);
		n = fread(buf, 1, sizeof(buf) - 1, g);
		buf[n] = '\0';
		EXPECT(0 == strcmp(buf, "raw 7\n"));
		(void)fclose(g);
	}

	(void)take(f);
	EXPECT(outlen == 0);
}


static void test_tlog(FILE *f)
{
	tlog_info(NULL, "stats\n%s", "\n");
	(void)take(f);
	EXPECT(line_is("info", "stats"));

	tlog_warn("abc@host", "call %u", 1);
	(void)take(f);
	EXPECT(line_is("warning", "[abc@host] call 1"));
}


/* values from SIP never end a line nor put raw control bytes in it */
static void test_escape(FILE *f)
{
	char buf[64];

	tlog_info("fz4309\r\n  folded continuation] INVITE from x",
		  "INVITE from %s", "b\x01\xff\xc3(\x1b[2J");
	(void)take(f);
	EXPECT(line_is("info", "[fz4309\\r\\n  folded continuation] "
		       "INVITE from x] INVITE from b\\x01\\xff\\xc3("
		       "\\x1b[2J"));

	/* well-formed UTF-8 stays; NEL, U+2028 and a lone surrogate go */
	tlog_info(NULL, "J\xc3\xbcrgen \xe2\x82\xac \xc2\x85|\xe2\x80\xa8|"
		  "\xed\xa0\x80|\xc0\xaf");
	(void)take(f);
	EXPECT(line_is("info", "J\xc3\xbcrgen \xe2\x82\xac \\xc2\\x85|"
		       "\\xe2\\x80\\xa8|\\xed\\xa0\\x80|\\xc0\\xaf"));

	EXPECT(text_utf8_valid("J\xc3\xbcrgen", 7));
	EXPECT(!text_utf8_valid("a\r\nb", 4));
	EXPECT(!text_utf8_valid("\xff", 1));
	EXPECT(!text_utf8_valid("\xe2\x82", 2));
	EXPECT(!text_utf8_valid("\xf4\x90\x80\x80", 4));
	EXPECT(!text_utf8_valid("\xc2\x9b", 2));
	EXPECT(text_utf8_valid("", 0));

	/* a full buffer stops before a character, never inside one */
	EXPECT(text_escape(buf, 4, "ab\n", 3) == 2);
	EXPECT(!strcmp(buf, "ab"));
	EXPECT(text_escape(buf, sizeof(buf), "a\\b", 3) == 3);
	EXPECT(!strcmp(buf, "a\\\\b"));
}


int main(void)
{
	FILE *f;

	f = tmpfile();
	fd_err = dup(STDERR_FILENO);
	if (f)
		fd_log = fileno(f);
	if (!f || fd_err < 0 || dup2(fd_log, STDERR_FILENO) < 0) {
		perror("test_log");
		return 1;
	}

	tlog_init(CFG_LOG_STDERR, LOG_INFO, "test_log");

	test_dbg(f);
	test_stderr(f);
	test_tlog(f);
	test_escape(f);

	(void)dup2(fd_err, STDERR_FILENO);
	(void)close(fd_err);
	(void)fclose(f);

	return check_report(NULL);
}
