/**
 * @file test_tmr.c  Tests of the timer wheel that replaces libre's timers
 *
 * The program links core/tmr.c from libtollgate.a, so its tmr_* are the
 * ones libre.so calls.  It checks libre's timer semantics against the
 * wheel in real time, that libre's own re_main and SIP transactions run
 * on the wheel, and that each thread has its own wheel.
 *
 * The test clock: this program defines clock_gettime() itself, so the
 * wheel's tmr_jiffies() reads CLOCK_MONOTONIC through it.  Normally it
 * passes the real clock through; the last tests freeze it and move it by
 * hand, to test delays of hours and centuries exactly and to compare the
 * wheel with a reference model (a binary heap) over millions of random
 * operations.
 *
 * Output: a line per failed check, a summary line per test, and the
 * final line "N passed, M failed"; the exit status is 1 on any failure.
 * TMR_SEED=<n> in the environment changes the random seed; a watchdog
 * fails the program after TMR_WATCHDOG seconds (default 300).
 *
 * The program's files: this one has the harness (checks, random numbers,
 * the test clock, probes) and main; test_tmr_wheel.c libre's timer
 * semantics in real time, test_tmr_load.c many timers and threads,
 * test_tmr_libre.c libre's loop and SIP stack on the wheel,
 * test_tmr_frozen.c the frozen clock and the reference model.  They meet
 * in test_tmr.h.
 */

#define _GNU_SOURCE 1
#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <re.h>
#include "core.h"
#include "test_tmr.h"


/* ------------------------------------------------------------- harness */

static unsigned n_pass, n_fail;

void check(bool ok, const char *what, const char *file, int line)
{
	if (ok) {
		++n_pass;
		return;
	}

	++n_fail;
	fprintf(stderr, "FAIL %s:%d: %s\n", file, line, what);
}


static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

uint64_t rnd(void)
{
	uint64_t x = rng_state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;

	return x * 0x2545f4914f6cdd1dULL;
}

uint64_t rnd_below(uint64_t n)
{
	return n ? rnd() % n : 0;
}


/* ---------------------------------------------------------- test clock */

clock_gettime_f *clk_real;
static bool clk_frozen;         /* CLOCK_MONOTONIC returns clk_ms      */
uint64_t clk_ms;                /* frozen time [ms]                     */
static uint64_t clk_off;        /* ms added to the real clock           */


static void clk_init(void)
{
	void *sym = dlsym(RTLD_NEXT, "clock_gettime");

	memcpy(&clk_real, &sym, sizeof(clk_real));
	if (!clk_real) {
		fprintf(stderr, "test clock: no clock_gettime: %s\n",
			dlerror());
		exit(2);
	}
}


int clock_gettime(clockid_t id, struct timespec *ts)
{
	int err;

	if (!clk_real) {
		errno = ENOSYS;
		return -1;
	}

	if (id != CLOCK_MONOTONIC)
		return clk_real(id, ts);

	if (clk_frozen) {
		ts->tv_sec  = (time_t)(clk_ms / 1000);
		ts->tv_nsec = (long)(clk_ms % 1000) * 1000000;
		return 0;
	}

	err = clk_real(id, ts);
	if (err || !clk_off)
		return err;

	ts->tv_sec  += (time_t)(clk_off / 1000);
	ts->tv_nsec += (long)(clk_off % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_nsec -= 1000000000;
		++ts->tv_sec;
	}

	return 0;
}


/* The real monotonic clock in ms, never frozen nor shifted */
uint64_t real_ms(void)
{
	struct timespec ts;

	clk_real(CLOCK_MONOTONIC, &ts);

	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}


static void clk_freeze(void)
{
	clk_ms = tmr_jiffies() + 10;
	clk_frozen = true;
}


static void clk_thaw(void)
{
	const uint64_t r = real_ms();

	clk_off = clk_ms > r ? clk_ms - r + 1 : 0;
	clk_frozen = false;
}


/* -------------------------------------------------------------- probes */

static uint64_t seq_count;
static uint64_t poll_count;

struct probe **flog;            /* probes in firing order (main thread) */
size_t flog_n;
static size_t flog_cap;


void flog_reset(void)
{
	flog_n = 0;
}


static void flog_add(struct probe *p)
{
	if (flog_n == flog_cap) {
		size_t cap = flog_cap ? flog_cap * 2 : 1024;
		struct probe **v = realloc(flog, cap * sizeof(*v));

		if (!v) {
			fprintf(stderr, "out of memory\n");
			exit(2);
		}

		flog = v;
		flog_cap = cap;
	}

	flog[flog_n++] = p;
}


void probe_h(void *arg)
{
	struct probe *p = arg;

	++p->runs;
	p->running_in_h = tmr_isrunning(&p->tmr);
	p->fired_at = tmr_jiffies();
	p->poll_no = poll_count;
	flog_add(p);

	if (p->act)
		p->act(p);
}


void probe_start(struct probe *p, uint64_t delay)
{
	tmr_start(&p->tmr, delay, probe_h, p);
	p->seq = ++seq_count;
	p->jfs = p->tmr.jfs;
}


/* Start a probe so that it expires exactly at tick (real clock) */
bool probe_start_at(struct probe *p, uint64_t tick)
{
	int i;

	for (i = 0; i < 100; i++) {
		const uint64_t now = tmr_jiffies();

		if (tick < now)
			return false;

		probe_start(p, tick - now);
		if (p->jfs == tick)
			return true;
	}

	return false;
}


void poll_once(void)
{
	++poll_count;
	tmr_poll(NULL);
}


uint64_t wheel_live(void)
{
	struct tmr_wheel_stats st;

	tmr_wheel_stats(&st);

	return st.live;
}


/* Sleep on tmr_next_timeout() and poll, until done or ms have passed */
void drive(uint64_t ms, done_h *done, void *arg)
{
	const uint64_t end = real_ms() + ms;

	for (;;) {
		uint64_t to, now;

		if (done && done(arg))
			return;

		now = real_ms();
		if (now >= end)
			return;

		to = tmr_next_timeout(NULL);
		if (!to || to > end - now)
			to = end - now;

		(void)poll(NULL, 0, (int)to);
		poll_once();
	}
}


bool done_nothing_live(void *arg)
{
	(void)arg;

	return wheel_live() == 0;
}


bool done_flog_n(void *arg)
{
	return flog_n >= *(const size_t *)arg;
}


/* ---------------------------------------------------------------- main */

/* a wheel that loops forever must fail the test, not hang it */
static void *watchdog(void *arg)
{
	const unsigned secs = *(const unsigned *)arg;
	struct timespec ts = {(time_t)secs, 0};

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;

	fprintf(stderr, "watchdog: no result after %u s\n", secs);
	printf("%u passed, %u failed\n", n_pass, n_fail + 1);
	fflush(stdout);
	_exit(1);

	return NULL;
}


struct test {
	const char *name;
	void (*fn)(void);
};


static void run(const struct test *t)
{
	const unsigned f0 = n_fail;
	const uint64_t t0 = real_ms();

	t->fn();

	if (wheel_live()) {
		fprintf(stderr, "  %s left %llu timers\n", t->name,
			(unsigned long long)wheel_live());
	}

	printf("%s %s (%llu ms)\n", n_fail == f0 ? "ok  " : "FAIL", t->name,
	       (unsigned long long)(real_ms() - t0));
	fflush(stdout);
}


int main(void)
{
	static const struct test real[] = {
		{"symbols",          test_symbols},
		{"jiffies",          test_jiffies},
		{"start_cancel",     test_start_cancel},
		{"zero_delay",       test_zero_delay},
		{"equal_expiry",     test_equal_expiry},
		{"handler_cancel",   test_handler_cancel},
		{"self_rearm",       test_self_rearm},
		{"nested_poll",      test_nested_poll},
		{"next_timeout",     test_next_timeout},
		{"long_delays",      test_long_delays},
		{"random_realtime",  test_random_realtime},
		{"threads",          test_threads},
		{"re_main",          test_re_main},
		{"sip_retransmit",   test_sip_retransmit},
	};
	static const struct test frozen[] = {
		{"frozen_exact",     test_frozen_exact},
		{"frozen_min",       test_frozen_min},
		{"frozen_equal",     test_frozen_equal},
		{"frozen_cascade",   test_frozen_cascade},
		{"frozen_model",     test_frozen_model},
	};
	const char *seed = getenv("TMR_SEED");
	const char *wd = getenv("TMR_WATCHDOG");
	static unsigned wd_secs = 300;
	pthread_t wd_tid;
	unsigned i;
	int err;

	clk_init();

	if (wd && atoi(wd) > 0)
		wd_secs = (unsigned)atoi(wd);
	if (pthread_create(&wd_tid, NULL, watchdog, &wd_secs)) {
		fprintf(stderr, "cannot start the watchdog thread\n");
		return 1;
	}

	if (seed && *seed)
		rng_state = strtoull(seed, NULL, 0) | 1;
	printf("seed 0x%llx\n", (unsigned long long)rng_state);

	err = libre_init();
	if (err) {
		fprintf(stderr, "libre_init: %s\n", strerror(err));
		return 1;
	}

	for (i = 0; i < sizeof(real) / sizeof(real[0]); i++)
		run(&real[i]);

	clk_freeze();
	for (i = 0; i < sizeof(frozen) / sizeof(frozen[0]); i++)
		run(&frozen[i]);
	clk_thaw();

	libre_close();
	free(flog);

	(void)pthread_cancel(wd_tid);
	(void)pthread_join(wd_tid, NULL);

	printf("%u passed, %u failed\n", n_pass, n_fail);

	return n_fail ? 1 : 0;
}
