/**
 * @file log.c  Logging to stderr or syslog; every call's line carries its
 *              Call-ID
 */

#include <stdio.h>
#include <time.h>
#include <sys/time.h>
#include "core.h"


static struct {
	enum cfg_logtarget target;
	int level;
	bool syslog_open;
} lg = { CFG_LOG_STDERR, LOG_INFO, false };


static const char *level_name(int level)
{
	switch (level) {

	case LOG_DEBUG:   return "debug";
	case LOG_INFO:    return "info";
	case LOG_NOTICE:  return "notice";
	case LOG_WARNING: return "warning";
	default:          return "error";
	}
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
}


void tlog_set_level(int level)
{
	lg.level = level;
}


bool tlog_enabled(int level)
{
	return level <= lg.level;
}


void tlog(int level, const char *callid, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (!tlog_enabled(level))
		return;

	va_start(ap, fmt);
	(void)re_vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	if (lg.target == CFG_LOG_SYSLOG) {
		if (callid)
			syslog(level, "[%s] %s", callid, msg);
		else
			syslog(level, "%s", msg);
		return;
	}
	else {
		struct timeval tv;
		struct tm tm;
		char ts[32];

		(void)gettimeofday(&tv, NULL);
		(void)gmtime_r(&tv.tv_sec, &tm);
		(void)strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);

		(void)fprintf(stderr, "%s.%03ldZ %-7s %s%s%s%s\n", ts,
			      (long)(tv.tv_usec / 1000), level_name(level),
			      callid ? "[" : "", callid ? callid : "",
			      callid ? "] " : "", msg);
	}
}
