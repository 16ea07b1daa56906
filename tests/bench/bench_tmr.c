/**
 * @file bench_tmr.c  Cost of the timer wheel at 1k, 10k and 100k timers
 *
 * Keeps N timers pending with delays like a SIP B2BUA's (retransmissions
 * of 0.5-4 s, transaction timeouts of 32 s, call cut-offs of up to two
 * hours) and measures, in ns per operation:
 *
 *   start    tmr_start() of a stopped timer while N are pending
 *   restart  tmr_start() of a pending timer (moves it)
 *   cancel   tmr_cancel() of a pending timer
 *   expire   tmr_poll() per timer that fires, N timers over 0.5 s
 *
 * Only the wheel is measured: once it is linked in, libre's own timer
 * list cannot be called.  Usage: bench_tmr [operations per size]
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <re.h>
#include "core.h"


static uint64_t rng_state = 0x2545f4914f6cdd1dULL;

static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;

	return rng_state * 0x2545f4914f6cdd1dULL;
}


static uint64_t sip_delay(void)
{
	const uint64_t r = rnd() % 100;

	if (r < 50)
		return 500 + rnd() % 3500;
	else if (r < 90)
		return 32000;
	else
		return 60000 + rnd() % 7200000;
}


static uint64_t ns_now(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);

	return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}


static void bench_h(void *arg)
{
	uint64_t *fired = arg;

	++*fired;
}


static int bench(size_t n, size_t ops)
{
	struct tmr *tv, *spare;
	size_t *order;
	struct tmr_wheel_stats st;
	uint64_t t0, t_start, t_restart, t_cancel, t_expire;
	uint64_t fired = 0, end;
	size_t i;

	tv = calloc(n, sizeof(*tv));
	spare = calloc(ops, sizeof(*spare));
	order = calloc(n, sizeof(*order));
	if (spare)
		memset(spare, 0, ops * sizeof(*spare));   /* fault pages in */
	if (!tv || !spare || !order) {
		free(tv);
		free(spare);
		free(order);
		return ENOMEM;
	}

	for (i = 0; i < n; i++)
		tmr_start(&tv[i], sip_delay(), bench_h, &fired);

	/* start: ops new timers on top of the n pending ones */
	t0 = ns_now();
	for (i = 0; i < ops; i++)
		tmr_start(&spare[i], sip_delay(), bench_h, &fired);
	t_start = ns_now() - t0;

	for (i = 0; i < ops; i++)
		tmr_cancel(&spare[i]);

	/* restart: move pending timers */
	t0 = ns_now();
	for (i = 0; i < ops; i++)
		tmr_start(&tv[rnd() % n], sip_delay(), bench_h, &fired);
	t_restart = ns_now() - t0;

	/* cancel all n, in random order as calls end */
	for (i = 0; i < n; i++)
		order[i] = i;
	for (i = n; i > 1; i--) {
		const size_t j = rnd() % i;
		const size_t tmp = order[j];

		order[j] = order[i - 1];
		order[i - 1] = tmp;
	}
	t0 = ns_now();
	for (i = 0; i < n; i++)
		tmr_cancel(&tv[order[i]]);
	t_cancel = ns_now() - t0;

	/* expire: n timers over 500 ms, driven like re_main drives them */
	for (i = 0; i < n; i++)
		tmr_start(&tv[i], rnd() % 500, bench_h, &fired);

	t_expire = 0;
	end = tmr_jiffies() + 2000;
	while (fired < n && tmr_jiffies() < end) {
		struct timespec ts = {0, 0};
		const uint64_t to = tmr_next_timeout(NULL);

		ts.tv_nsec = (long)(to < 1000 ? to : 999) * 1000000;
		(void)nanosleep(&ts, NULL);

		t0 = ns_now();
		tmr_poll(NULL);
		t_expire += ns_now() - t0;
	}

	tmr_wheel_stats(&st);

	printf("%7zu %10.1f %10.1f %10.1f %10.1f%s\n", n,
	       (double)t_start / (double)ops,
	       (double)t_restart / (double)ops,
	       (double)t_cancel / (double)n,
	       fired ? (double)t_expire / (double)fired : 0.0,
	       fired == n && st.live == 0 ? "" : "  (incomplete)");

	for (i = 0; i < n; i++)
		tmr_cancel(&tv[i]);

	free(tv);
	free(spare);
	free(order);

	return fired == n ? 0 : ETIMEDOUT;
}


int main(int argc, char *argv[])
{
	static const size_t sizes[] = {1000, 10000, 100000};
	size_t ops = 1000000;
	uint64_t t0;
	unsigned i;
	int err = 0;

	if (argc > 1) {
		char *e;

		ops = strtoul(argv[1], &e, 10);
		if (*e || !ops || ops > 100000000) {
			fprintf(stderr, "usage: %s [operations 1..1e8]\n",
				argv[0]);
			return 2;
		}
	}

	t0 = ns_now();
	for (i = 0; i < 1000000; i++)
		(void)tmr_jiffies();
	printf("tmr_jiffies: %.1f ns\n", (double)(ns_now() - t0) / 1e6);

	printf("%7s %10s %10s %10s %10s   [ns per operation]\n",
	       "live", "start", "restart", "cancel", "expire");

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		err |= bench(sizes[i], ops);

	return err ? 1 : 0;
}
