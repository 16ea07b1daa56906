/**
 * @file notify_lat.c  NOTIFY fan-out latency: one sender, N listeners
 *
 *   notify_lat CONNINFO LISTENERS COUNT INTERVAL_MS
 *
 * LISTENERS connections LISTEN on one channel; one more sends COUNT
 * notifications, INTERVAL_MS apart, each carrying the sender's
 * CLOCK_REALTIME in microseconds, each in its own transaction.  Every
 * listener's delivery latency (receive time - payload) is collected;
 * prints deliveries, p50, p99 and max in microseconds, and the sender's
 * mean commit time of a NOTIFY.  Bounded: it gives up 10 s after the
 * last notification.  Used by tests/bench/db-bench.sh notify.
 */

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <libpq-fe.h>


static long long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);

	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}


static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return (x > y) - (x < y);
}


static void drain(PGconn *c, long long *lat, long *n, long cap)
{
	PGnotify *nt;

	if (!PQconsumeInput(c))
		return;

	while ((nt = PQnotifies(c)) != NULL) {
		if (*n < cap)
			lat[(*n)++] = now_us() - atoll(nt->extra);
		PQfreemem(nt);
	}
}


int main(int argc, char **argv)
{
	long nl, count, interval, i, k, n = 0, cap;
	long long *lat, commit_sum = 0, end;
	struct pollfd *pfd;
	PGconn **lv, *snd;

	if (argc != 5) {
		fprintf(stderr, "usage: notify_lat CONNINFO LISTENERS COUNT "
			"INTERVAL_MS\n");
		return 2;
	}

	nl = atol(argv[2]);
	count = atol(argv[3]);
	interval = atol(argv[4]);
	if (nl < 1 || nl > 1000 || count < 1 || count > 100000 ||
	    interval < 0 || interval > 10000) {
		fprintf(stderr, "notify_lat: LISTENERS 1..1000, COUNT "
			"1..100000, INTERVAL_MS 0..10000\n");
		return 2;
	}

	cap = nl * count;
	lat = calloc(cap, sizeof(*lat));
	lv = calloc(nl, sizeof(*lv));
	pfd = calloc(nl, sizeof(*pfd));
	if (!lat || !lv || !pfd)
		return 1;

	for (i = 0; i < nl; i++) {
		PGresult *r;

		lv[i] = PQconnectdb(argv[1]);
		if (PQstatus(lv[i]) != CONNECTION_OK) {
			fprintf(stderr, "notify_lat: listener %ld: %s", i,
				PQerrorMessage(lv[i]));
			return 1;
		}
		r = PQexec(lv[i], "LISTEN bench_notify");
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			fprintf(stderr, "notify_lat: LISTEN: %s",
				PQresultErrorMessage(r));
			return 1;
		}
		PQclear(r);
		PQsetnonblocking(lv[i], 1);
		pfd[i].fd = PQsocket(lv[i]);
		pfd[i].events = POLLIN;
	}

	snd = PQconnectdb(argv[1]);
	if (PQstatus(snd) != CONNECTION_OK) {
		fprintf(stderr, "notify_lat: sender: %s", PQerrorMessage(snd));
		return 1;
	}

	for (k = 0; k < count; k++) {
		long long t0 = now_us(), next = t0 + interval * 1000;
		char sql[64];
		PGresult *r;

		snprintf(sql, sizeof(sql), "NOTIFY bench_notify, '%lld'", t0);
		r = PQexec(snd, sql);
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			fprintf(stderr, "notify_lat: NOTIFY: %s",
				PQresultErrorMessage(r));
			return 1;
		}
		PQclear(r);
		commit_sum += now_us() - t0;

		/* receive until the next one is due */
		do {
			long long left = (next - now_us()) / 1000;

			if (poll(pfd, nl, left > 0 ? (int)left : 0) > 0) {
				for (i = 0; i < nl; i++) {
					if (pfd[i].revents)
						drain(lv[i], lat, &n, cap);
				}
			}
		} while (now_us() < next);
	}

	end = now_us() + 10000000;
	while (n < cap && now_us() < end) {
		if (poll(pfd, nl, 100) > 0) {
			for (i = 0; i < nl; i++) {
				if (pfd[i].revents)
					drain(lv[i], lat, &n, cap);
			}
		}
	}

	qsort(lat, n, sizeof(*lat), cmp_ll);
	printf("listeners %ld notifications %ld deliveries %ld of %ld "
	       "p50_us %lld p99_us %lld max_us %lld notify_commit_us %lld\n",
	       nl, count, n, cap, n ? lat[n / 2] : -1,
	       n ? lat[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1] : -1,
	       n ? lat[n - 1] : -1, commit_sum / count);

	for (i = 0; i < nl; i++)
		PQfinish(lv[i]);
	PQfinish(snd);
	free(lat);
	free(lv);
	free(pfd);

	return n == cap ? 0 : 1;
}
