/**
 * @file log.c  Logging to stderr or syslog; every call's line carries its
 *              Call-ID
 *
 * libre's own messages come here too, with our timestamp and level: what
 * it prints through its debug module (DEBUG_WARNING ..., dbg_printf)
 * reaches the handler set with dbg_handler_set(), and what libre 1.1.0
 * writes straight to stderr with re_fprintf() ("sip: msg decode err",
 * "unhandeled response from ...") reaches our own re_fprintf(), which the
 * executable defines and exports so that libre's PLT calls bind to it.
 */

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/time.h>
#include "core.h"

/* re.h leaves out re_dbg.h, which wants these defined */
#define DEBUG_MODULE "tollgate"
#define DEBUG_LEVEL 0
#include <re_dbg.h>


enum { TEXT_LINE_MAX = 512, MSG_MAX = 1024, CALLID_MAX = 128 };


static struct {
	enum cfg_logtarget target;
	int level;
	bool syslog_open;
	bool libre;                /**< libre's messages come to tlog */
} lg = { CFG_LOG_STDERR, LOG_INFO, false, false };


static const char *level_name(int level)
{
	switch (level) {

	case LOG_DEBUG:   return "debug";
	case LOG_INFO:    return "info";
	case LOG_NOTICE:  return "notice";
	case LOG_WARNING: return "warning";
	case LOG_ERR:     return "error";
	case LOG_CRIT:    return "crit";
	case LOG_ALERT:   return "alert";
	default:          return "emerg";
	}
}


/** libre's debug level (re_dbg.h) as a syslog level */
static int level_of_dbg(int dbg)
{
	switch (dbg) {

	case DBG_EMERG:   return LOG_EMERG;
	case DBG_ALERT:   return LOG_ALERT;
	case DBG_CRIT:    return LOG_CRIT;
	case DBG_ERR:     return LOG_ERR;
	case DBG_WARNING: return LOG_WARNING;
	case DBG_NOTICE:  return LOG_NOTICE;
	case DBG_INFO:    return LOG_INFO;
	default:          return LOG_DEBUG;
	}
}


/** A syslog level as libre's debug level: libre drops what we would */
static int dbg_of_level(int level)
{
	switch (level) {

	case LOG_EMERG:   return DBG_EMERG;
	case LOG_ALERT:   return DBG_ALERT;
	case LOG_CRIT:    return DBG_CRIT;
	case LOG_ERR:     return DBG_ERR;
	case LOG_WARNING: return DBG_WARNING;
	case LOG_NOTICE:  return DBG_NOTICE;
	case LOG_INFO:    return DBG_INFO;
	default:          return DBG_DEBUG;
	}
}


static void emit(int level, const char *callid, const char *msg,
		 bool more);


/**
 * Log a message of a library's (libre, libmicrohttpd) as one line: trailing
 * newlines go, the rest is escaped as tlog() escapes (an inner newline
 * included), so that one message stays one line and bytes from the network
 * cannot forge one.
 *
 * @param level  syslog level
 * @param tag    what the line starts with, before ": "
 * @param p      the message, not necessarily NUL-terminated
 * @param len    its length
 */
void tlog_text(int level, const char *tag, const char *p, size_t len)
{
	char line[TEXT_LINE_MAX], esc[TEXT_LINE_MAX + 64];
	size_t n;

	while (len && (p[len - 1] == '\n' || p[len - 1] == '\r'))
		--len;

	if (!len || !tlog_enabled(level))
		return;

	n = text_escape(line, sizeof(line), p, len);
	(void)re_snprintf(esc, sizeof(esc), "%s: %s", tag, line);

	emit(level, NULL, esc, n < len);
}


static void dbg_handler(int level, const char *p, size_t len, void *arg)
{
	(void)arg;

	tlog_text(level_of_dbg(level), "libre", p, len);
}


/**
 * libre's re_fprintf(), defined here so that libre's calls bind to it:
 * what libre writes to stderr becomes a warning of ours once tlog_init()
 * ran; any other stream, and stderr before that, is printed as libre
 * would.
 */
int re_fprintf(FILE *stream, const char *fmt, ...)
{
	struct mbuf *mb;
	va_list ap;
	int n, err;

	va_start(ap, fmt);

	if (stream != stderr || !lg.libre) {
		n = re_vfprintf(stream, fmt, ap);
		va_end(ap);
		return n;
	}

	mb = mbuf_alloc(256);
	err = mb ? mbuf_vprintf(mb, fmt, ap) : ENOMEM;
	va_end(ap);

	if (!err)
		tlog_text(LOG_WARNING, "libre", (const char *)mb->buf,
			  mb->end);

	n = err ? -1 : (int)mb->end;
	mem_deref(mb);

	return n;
}


void tlog_init(enum cfg_logtarget target, int level, const char *ident)
{
	if (lg.syslog_open && target != CFG_LOG_SYSLOG) {
		closelog();
		lg.syslog_open = false;
	}

	lg.target = target;
	lg.level = level;

	if (target == CFG_LOG_SYSLOG && !lg.syslog_open) {
		openlog(ident ? ident : "tollgate", LOG_PID | LOG_NDELAY,
			LOG_DAEMON);
		lg.syslog_open = true;
	}

	dbg_init(dbg_of_level(level), DBG_NONE);
	dbg_handler_set(dbg_handler, NULL);
	lg.libre = true;
}


void tlog_set_level(int level)
{
	lg.level = level;

	if (lg.libre)
		dbg_init(dbg_of_level(level), DBG_NONE);
}


bool tlog_enabled(int level)
{
	return level <= lg.level;
}


/* write one line: msg and callid are escaped already */
static void emit(int level, const char *callid, const char *msg, bool more)
{
	const char *tail = more ? " ..." : "";

	if (lg.target == CFG_LOG_SYSLOG) {
		if (callid)
			syslog(level, "[%s] %s%s", callid, msg, tail);
		else
			syslog(level, "%s%s", msg, tail);
	}
	else {
		struct timeval tv;
		struct tm tm;
		char ts[32];

		(void)gettimeofday(&tv, NULL);
		(void)gmtime_r(&tv.tv_sec, &tm);
		(void)strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);

		(void)fprintf(stderr, "%s.%03ldZ %-7s %s%s%s%s%s\n", ts,
			      (long)(tv.tv_usec / 1000), level_name(level),
			      callid ? "[" : "", callid ? callid : "",
			      callid ? "] " : "", msg, tail);
	}
}


/**
 * Log one line.  The Call-ID and the formatted message are escaped with
 * text_escape(): values from SIP (a Call-ID with a folded continuation, a
 * From user with binary bytes) can never end the line or forge another.
 */
void tlog(int level, const char *callid, const char *fmt, ...)
{
	char msg[MSG_MAX], esc[MSG_MAX * 4], cid[CALLID_MAX * 4 + 1];
	va_list ap;
	size_t n, done;

	if (!tlog_enabled(level))
		return;

	va_start(ap, fmt);
	(void)re_vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	/* a line ends with our newline alone (printers such as
	 * billing_debug end theirs with one) */
	n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = '\0';

	done = text_escape(esc, sizeof(esc), msg, n);

	if (callid)
		(void)text_escape(cid, sizeof(cid), callid,
				  strnlen(callid, CALLID_MAX));

	emit(level, callid ? cid : NULL, esc, done < n);
}
