/**
 * @file svcnotify.c  The service manager's readiness protocol
 *
 * systemd's sd_notify(3) datagrams, written here rather than linked from
 * libsystemd: when NOTIFY_SOCKET names a unix datagram socket (a path, or
 * an abstract name written with a leading '@'), each state ("READY=1",
 * "STOPPING=1", "STATUS=...") goes there as one datagram.  Without
 * NOTIFY_SOCKET nothing is sent.  The socket is non-blocking: a manager
 * that does not read costs the daemon a lost message, never a stall.
 */

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "core.h"


/* the NOTIFY_SOCKET address: 0, ENOENT (not set) or EINVAL */
static int notify_addr(struct sockaddr_un *un, socklen_t *lenp)
{
	const char *e = getenv("NOTIFY_SOCKET");
	size_t n;

	if (!e || !*e)
		return ENOENT;

	n = strlen(e);
	if ((e[0] != '/' && e[0] != '@') || n < 2 ||
	    n >= sizeof(un->sun_path))
		return EINVAL;

	memset(un, 0, sizeof(*un));
	un->sun_family = AF_UNIX;
	memcpy(un->sun_path, e, n);

	/* an abstract name: a NUL first, and the length counts no end NUL */
	if (e[0] == '@')
		un->sun_path[0] = '\0';

	*lenp = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
			    (e[0] == '/' ? 1 : 0));

	return 0;
}


/**
 * Send one state datagram to the service manager.
 *
 * @param state  newline-separated assignments, e.g. "READY=1"
 *
 * @return 0 when sent, ENOENT when NOTIFY_SOCKET is not set, else errno
 */
int svc_notify(const char *state)
{
	struct sockaddr_un un;
	socklen_t len;
	ssize_t n;
	int fd, err;

	if (!state)
		return EINVAL;

	err = notify_addr(&un, &len);
	if (err)
		return err;

	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return errno;

	n = sendto(fd, state, strlen(state), MSG_NOSIGNAL | MSG_DONTWAIT,
		   (struct sockaddr *)&un, len);
	err = n < 0 ? errno : 0;
	(void)close(fd);

	return err;
}


/**
 * Format a state and send it (see svc_notify), e.g.
 * svc_notifyf("STATUS=draining, %u calls", n).
 */
int svc_notifyf(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = re_vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);

	if (n < 0)
		return EINVAL;

	return svc_notify(buf);
}
