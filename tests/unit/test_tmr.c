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
 */

#define _GNU_SOURCE 1
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <re.h>
#include "core.h"


/* ------------------------------------------------------------- harness */

static unsigned n_pass, n_fail;

static void check(bool ok, const char *what, const char *file, int line)
{
	if (ok) {
		++n_pass;
		return;
	}

	++n_fail;
	fprintf(stderr, "FAIL %s:%d: %s\n", file, line, what);
}

#define CHECK(c) check((c), #c, __FILE__, __LINE__)


static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
	uint64_t x = rng_state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;

	return x * 0x2545f4914f6cdd1dULL;
}

static uint64_t rnd_below(uint64_t n)
{
	return n ? rnd() % n : 0;
}


/* ---------------------------------------------------------- test clock */

typedef int (clock_gettime_f)(clockid_t id, struct timespec *ts);

static clock_gettime_f *clk_real;
static bool clk_frozen;         /* CLOCK_MONOTONIC returns clk_ms      */
static uint64_t clk_ms;         /* frozen time [ms]                     */
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
static uint64_t real_ms(void)
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

struct probe;
typedef void (probe_act_h)(struct probe *p);

/** A timer under test and what happened to it */
struct probe {
	struct tmr tmr;
	uint32_t id;
	uint64_t seq;           /* start order of the last start         */
	uint64_t jfs;           /* expiry of the last start              */
	unsigned runs;
	bool running_in_h;      /* tmr_isrunning() inside its handler    */
	uint64_t fired_at;      /* tmr_jiffies() in the handler          */
	uint64_t poll_no;       /* poll_count when it fired              */
	probe_act_h *act;       /* optional action in the handler        */
	void *ctx;              /* borrowed; for act                     */
	size_t hidx;            /* reference heap index, HEAP_NONE = out */
	bool deferred;          /* reference: started for the next pass  */
};

static uint64_t seq_count;
static uint64_t poll_count;

static struct probe **flog;     /* probes in firing order (main thread) */
static size_t flog_n, flog_cap;


static void flog_reset(void)
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


static void probe_h(void *arg)
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


static void probe_start(struct probe *p, uint64_t delay)
{
	tmr_start(&p->tmr, delay, probe_h, p);
	p->seq = ++seq_count;
	p->jfs = p->tmr.jfs;
}


/* Start a probe so that it expires exactly at tick (real clock) */
static bool probe_start_at(struct probe *p, uint64_t tick)
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


static void poll_once(void)
{
	++poll_count;
	tmr_poll(NULL);
}


static uint64_t wheel_live(void)
{
	struct tmr_wheel_stats st;

	tmr_wheel_stats(&st);

	return st.live;
}


typedef bool (done_h)(void *arg);

/* Sleep on tmr_next_timeout() and poll, until done or ms have passed */
static void drive(uint64_t ms, done_h *done, void *arg)
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


static bool done_nothing_live(void *arg)
{
	(void)arg;

	return wheel_live() == 0;
}


static bool done_flog_n(void *arg)
{
	return flog_n >= *(const size_t *)arg;
}


/* ---------------------------------------------------------- real time */

static void test_jiffies(void)
{
	uint64_t a, b, prev;
	struct timespec ts;
	bool mono = true;
	int i;

	a = tmr_jiffies();
	clk_real(CLOCK_MONOTONIC, &ts);
	b = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	CHECK(b >= a && b - a <= 1);

	prev = tmr_jiffies();
	for (i = 0; i < 100000; i++) {
		const uint64_t j = tmr_jiffies();

		mono = mono && j >= prev;
		prev = j;
	}
	CHECK(mono);

	a = tmr_jiffies();
	(void)poll(NULL, 0, 20);
	b = tmr_jiffies();
	CHECK(b - a >= 20 && b - a < 100);
}


static void test_start_cancel(void)
{
	struct tmr_wheel_stats s0, s1;
	struct probe p;
	uint64_t e;

	memset(&p, 0, sizeof(p));
	tmr_wheel_stats(&s0);

	tmr_init(&p.tmr);
	CHECK(!tmr_isrunning(&p.tmr));
	CHECK(tmr_get_expire(&p.tmr) == 0);

	probe_start(&p, 1000);
	tmr_wheel_stats(&s1);
	CHECK(tmr_isrunning(&p.tmr));
	CHECK(s1.live == s0.live + 1);
	CHECK(s1.started == s0.started + 1);
	e = tmr_get_expire(&p.tmr);
	CHECK(e >= 990 && e <= 1000);

	tmr_cancel(&p.tmr);
	CHECK(!tmr_isrunning(&p.tmr));
	CHECK(tmr_get_expire(&p.tmr) == 0);
	CHECK(wheel_live() == s0.live);

	/* cancel twice, and start with a NULL handler, stop it too */
	tmr_cancel(&p.tmr);
	probe_start(&p, 5);
	tmr_start(&p.tmr, 5, NULL, &p);
	CHECK(!tmr_isrunning(&p.tmr));
	CHECK(p.tmr.arg == &p);
	CHECK(wheel_live() == s0.live);

	/* a stopped timer never fires */
	(void)poll(NULL, 0, 15);
	poll_once();
	CHECK(p.runs == 0);

	/* NULL is ignored */
	tmr_init(NULL);
	tmr_start(NULL, 1, probe_h, NULL);
	tmr_cancel(NULL);
	CHECK(tmr_get_expire(NULL) == 0);
	tmr_wheel_stats(NULL);
	CHECK(wheel_live() == s0.live);
}


static void test_zero_delay(void)
{
	struct tmr_wheel_stats s0, s1;
	struct probe p;

	memset(&p, 0, sizeof(p));
	tmr_wheel_stats(&s0);

	probe_start(&p, 0);
	CHECK(p.runs == 0);
	CHECK(tmr_isrunning(&p.tmr));
	CHECK(tmr_next_timeout(NULL) == 1);
	CHECK(tmr_get_expire(&p.tmr) == 0);

	poll_once();
	CHECK(p.runs == 1);
	CHECK(!p.running_in_h);
	CHECK(!tmr_isrunning(&p.tmr));
	CHECK(p.fired_at >= p.jfs);

	poll_once();
	CHECK(p.runs == 1);

	tmr_wheel_stats(&s1);
	CHECK(s1.fired == s0.fired + 1);
	CHECK(s1.live == s0.live);
	CHECK(tmr_next_timeout(NULL) == 0 || s1.live > 0);
}


/* equal expiries started at different times (so from different levels
 * of the wheel) run in start order, a restart counting as a new start */
static void test_equal_expiry(void)
{
	enum { N = 40, MARGIN = 40, TRIES = 3 };
	struct probe p[N + 1];
	struct probe *d = &p[N];
	uint64_t target, poll0;
	unsigned n = 0, i;
	int tries;
	bool ok = true;

	/* the starts must all come before the expiry: a pause of the
	   process (a loaded machine) that runs past it spoils a try, which
	   is then made again; the wheel has no part in that */
	for (tries = 0; tries < TRIES; tries++) {
		memset(p, 0, sizeof(p));
		flog_reset();
		n = 0;
		ok = true;

		target = tmr_jiffies() + 200;
		ok = ok && probe_start_at(&p[n++], target);
		ok = ok && probe_start_at(d, target);

		while (n < N && tmr_jiffies() + MARGIN < target) {
			(void)poll(NULL, 0, 3);
			poll_once();
			ok = ok && probe_start_at(&p[n++], target);
		}

		ok = ok && probe_start_at(d, target);   /* the last start */
		if (ok && flog_n == 0 && tmr_jiffies() < target)
			break;

		for (i = 0; i <= N; i++)
			tmr_cancel(&p[i].tmr);
		drive(300, done_nothing_live, NULL);
	}

	CHECK(ok);
	CHECK(n >= 20);
	CHECK(flog_n == 0);

	drive(1000, done_nothing_live, NULL);

	CHECK(flog_n == n + 1);
	if (flog_n != n + 1)
		return;

	poll0 = flog[0]->poll_no;
	for (i = 0; i < n; i++) {
		ok = ok && flog[i] == &p[i];
		ok = ok && p[i].runs == 1 && p[i].poll_no == poll0;
		ok = ok && p[i].fired_at >= target;
	}
	CHECK(ok);
	CHECK(flog[n] == d && d->runs == 1 && d->poll_no == poll0);
}


/* start a group of probes that all expire at one tick */
static bool group_start(struct probe **v, unsigned n, uint64_t delay)
{
	int tries;
	unsigned i;

	for (tries = 0; tries < 100; tries++) {
		bool same = true;

		for (i = 0; i < n; i++)
			probe_start(v[i], delay);

		for (i = 1; i < n; i++)
			same = same && v[i]->jfs == v[0]->jfs;

		if (same)
			return true;
	}

	return false;
}


static struct probe *hc_b2, *hc_b4, *hc_c;

static void act_cancel_others(struct probe *p)
{
	tmr_cancel(&hc_b2->tmr);        /* pending, same tick, later     */
	tmr_cancel(&p->tmr);            /* itself: already stopped        */
	probe_start(hc_c, 0);           /* new, behind the rest           */
	probe_start(hc_b4, 0);          /* moved behind c                 */
}

static void act_rearm_20(struct probe *p)
{
	if (p->runs == 1)
		probe_start(p, 20);
}


static void test_handler_cancel(void)
{
	struct probe a, b1, b2, b3, b4, c;
	struct probe *grp[] = {&a, &b1, &b2, &b3, &b4};
	struct probe *want[] = {&a, &b1, &b3, &c, &b4, &b3};
	unsigned i;
	bool ok;

	memset(&a, 0, sizeof(a));
	b1 = b2 = b3 = b4 = c = a;
	a.act = act_cancel_others;
	b3.act = act_rearm_20;
	hc_b2 = &b2;
	hc_b4 = &b4;
	hc_c = &c;
	flog_reset();

	CHECK(group_start(grp, 5, 5));
	drive(500, done_nothing_live, NULL);

	CHECK(flog_n == 6);
	ok = flog_n == 6;
	for (i = 0; ok && i < 6; i++)
		ok = flog[i] == want[i];
	CHECK(ok);
	CHECK(a.runs == 1 && b2.runs == 0 && c.runs == 1 && b4.runs == 1);
	CHECK(!tmr_isrunning(&b2.tmr));
	CHECK(b3.runs == 2 && b3.fired_at >= b3.jfs && b3.jfs >= a.jfs + 20);
}


static unsigned rearm_limit;

static void act_rearm_0(struct probe *p)
{
	if (p->runs < rearm_limit)
		probe_start(p, 0);
}

static void act_rearm_0_busy(struct probe *p)
{
	const uint64_t end = real_ms() + 3;

	while (real_ms() < end)
		;

	act_rearm_0(p);
}


/* a handler re-arming itself with delay 0 cannot spin inside a poll */
static void test_self_rearm(void)
{
	struct probe p;
	unsigned r0, i;
	bool bounded = true;

	memset(&p, 0, sizeof(p));
	p.act = act_rearm_0;
	rearm_limit = 1000000;

	probe_start(&p, 0);
	poll_once();
	CHECK(p.runs >= 1 && p.runs <= 2);
	CHECK(tmr_isrunning(&p.tmr));
	CHECK(tmr_next_timeout(NULL) == 1);

	for (i = 0; i < 200; i++) {
		r0 = p.runs;
		poll_once();
		bounded = bounded && p.runs - r0 >= 1 && p.runs - r0 <= 2;
		if (i % 50 == 0)
			(void)poll(NULL, 0, 2);
	}
	CHECK(bounded);

	rearm_limit = 0;
	poll_once();
	poll_once();
	CHECK(!tmr_isrunning(&p.tmr));

	/* time passes inside the handler */
	memset(&p, 0, sizeof(p));
	p.act = act_rearm_0_busy;
	rearm_limit = 1000000;
	probe_start(&p, 0);
	poll_once();
	CHECK(p.runs >= 1 && p.runs <= 2);
	r0 = p.runs;
	poll_once();
	CHECK(p.runs - r0 >= 1 && p.runs - r0 <= 2);
	tmr_cancel(&p.tmr);
	CHECK(!tmr_isrunning(&p.tmr));
	CHECK(wheel_live() == 0);
}


static struct probe *nest_q;
static unsigned nest_q_runs;

static void act_nested_poll(struct probe *p)
{
	(void)p;
	tmr_poll(NULL);                 /* must do nothing               */
	nest_q_runs = nest_q->runs;
}


static void test_nested_poll(void)
{
	struct probe p, q;
	struct probe *grp[] = {&p, &q};

	memset(&p, 0, sizeof(p));
	q = p;
	p.act = act_nested_poll;
	nest_q = &q;
	nest_q_runs = 99;

	CHECK(group_start(grp, 2, 0));
	poll_once();
	CHECK(p.runs == 1 && q.runs == 1);
	CHECK(nest_q_runs == 0);
}


static void test_next_timeout(void)
{
	struct probe a, b;
	uint64_t to;

	memset(&a, 0, sizeof(a));
	b = a;

	CHECK(wheel_live() == 0);
	CHECK(tmr_next_timeout(NULL) == 0);

	probe_start(&a, 250);
	to = tmr_next_timeout(NULL);
	CHECK(to >= 249 && to <= 250);

	probe_start(&b, 100);
	to = tmr_next_timeout(NULL);
	CHECK(to >= 99 && to <= 100);

	tmr_cancel(&b.tmr);
	to = tmr_next_timeout(NULL);
	CHECK(to >= 1 && to <= 250);

	tmr_cancel(&a.tmr);
	CHECK(tmr_next_timeout(NULL) == 0);

	/* overdue but not yet polled */
	probe_start(&a, 5);
	(void)poll(NULL, 0, 10);
	CHECK(tmr_next_timeout(NULL) == 1);
	poll_once();
	CHECK(a.runs == 1);
	CHECK(tmr_next_timeout(NULL) == 0);

	/* re_main casts it to int */
	probe_start(&a, UINT64_MAX / 2);
	CHECK(tmr_next_timeout(NULL) == INT_MAX);
	tmr_cancel(&a.tmr);
	CHECK(wheel_live() == 0);
}


static void test_long_delays(void)
{
	static const uint64_t delays[] = {
		3600000, 86400000ULL * 30, 1ULL << 40, UINT64_MAX / 2,
		UINT64_MAX - 1, UINT64_MAX,
	};
	enum { N = sizeof(delays) / sizeof(delays[0]) };
	struct probe p[N];
	uint64_t now, to;
	char *str = NULL;
	bool ok = true;
	unsigned i;

	memset(p, 0, sizeof(p));

	now = tmr_jiffies();
	for (i = 0; i < N; i++)
		probe_start(&p[i], delays[i]);

	for (i = 0; i < N; i++) {
		const uint64_t want = delays[i] > UINT64_MAX - now ?
			UINT64_MAX - now : delays[i];
		const uint64_t e = tmr_get_expire(&p[i].tmr);

		ok = ok && tmr_isrunning(&p[i].tmr);
		ok = ok && e <= want && e + 100 >= want;
	}
	CHECK(ok);
	CHECK(p[N - 1].jfs == UINT64_MAX);
	CHECK(p[N - 2].jfs == UINT64_MAX);

	to = tmr_next_timeout(NULL);
	CHECK(to >= 3599000 && to <= 3600000);

	for (i = 0; i < 5; i++) {
		(void)poll(NULL, 0, 2);
		poll_once();
	}
	for (i = 0; i < N; i++)
		ok = ok && p[i].runs == 0 && tmr_isrunning(&p[i].tmr);
	CHECK(ok);

	CHECK(0 == re_sdprintf(&str, "%H", tmr_status, NULL));
	CHECK(str && strstr(str, "Timers (6):"));
	str = mem_deref(str);

	for (i = 0; i < N; i++)
		tmr_cancel(&p[i].tmr);
	CHECK(wheel_live() == 0);
	CHECK(tmr_next_timeout(NULL) == 0);
}


static int probe_cmp(const void *a, const void *b)
{
	const struct probe *x = *(struct probe * const *)a;
	const struct probe *y = *(struct probe * const *)b;

	if (x->jfs != y->jfs)
		return x->jfs < y->jfs ? -1 : 1;

	return x->seq < y->seq ? -1 : (x->seq > y->seq);
}


struct rt_run {
	struct probe **want;    /* sorted by (jfs, seq)                  */
	size_t nwant;
	uint64_t prev_pre;      /* tmr_jiffies() before the previous poll */
	uint64_t early, late;   /* violations                            */
	uint64_t loop_start;    /* lateness counts from here             */
	uint64_t lat_max;
	uint64_t oversleep;     /* worst poll(2) overshoot [ms]          */
	uint64_t lat_hist[4];   /* 0, 1, 2..5, > 5 ms                    */
};

static struct rt_run *rt;

static void act_rt(struct probe *p)
{
	const uint64_t due = MAX(p->jfs, rt->loop_start);
	const uint64_t lat = p->fired_at - due;

	if (p->fired_at < p->jfs)
		++rt->early;
	if (p->jfs <= rt->prev_pre)
		++rt->late;         /* was due before the previous poll */

	if (p->fired_at >= due) {
		rt->lat_max = MAX(rt->lat_max, lat);
		++rt->lat_hist[lat == 0 ? 0 : lat == 1 ? 1 : lat <= 5 ? 2 : 3];
	}
}


/* 100,000 timers with random delays, canceled and restarted at random,
 * driven by tmr_next_timeout() and tmr_poll() in real time */
static void test_random_realtime(void)
{
	enum { N = 100000, SPAN = 1500 };
	struct probe *p = calloc(N, sizeof(*p));
	struct rt_run run;
	uint64_t to_bad = 0, order_bad = 0, end, pre;
	size_t i, n = 0;

	CHECK(p != NULL);
	if (!p)
		return;

	memset(&run, 0, sizeof(run));
	run.want = calloc(N, sizeof(*run.want));
	rt = &run;
	flog_reset();

	for (i = 0; i < N; i++) {
		p[i].id = (uint32_t)i;
		p[i].act = act_rt;
		probe_start(&p[i], rnd_below(SPAN));
	}
	for (i = 0; i < N; i++) {
		const uint64_t r = rnd_below(100);

		if (r < 10)
			tmr_cancel(&p[i].tmr);
		else if (r < 15)
			probe_start(&p[i], rnd_below(SPAN));
	}
	for (i = 0; i < N; i++) {
		if (tmr_isrunning(&p[i].tmr))
			run.want[n++] = &p[i];
	}
	run.nwant = n;
	qsort(run.want, n, sizeof(*run.want), probe_cmp);
	CHECK(wheel_live() == n);

	run.loop_start = tmr_jiffies();
	end = real_ms() + SPAN + 3000;
	while (wheel_live() && real_ms() < end) {
		const uint64_t t0 = tmr_jiffies();
		const uint64_t to = tmr_next_timeout(NULL);

		/* never later than the earliest pending expiry */
		if (flog_n < n) {
			const uint64_t m = run.want[flog_n]->jfs;

			if (to < 1 || (m > t0 && to > m - t0) ||
			    (m <= t0 && to != 1))
				++to_bad;
		}

		(void)poll(NULL, 0, (int)MIN(to, (uint64_t)100));
		pre = tmr_jiffies();
		if (pre > t0 + to)
			run.oversleep = MAX(run.oversleep, pre - t0 - to);
		poll_once();
		run.prev_pre = pre;
	}

	CHECK(flog_n == n);
	for (i = 0; i < flog_n && i < n; i++) {
		if (flog[i] != run.want[i])
			++order_bad;
	}
	for (i = 0; i < N; i++) {
		if (p[i].runs > 1)
			++order_bad;
	}

	CHECK(order_bad == 0);
	CHECK(to_bad == 0);
	CHECK(run.early == 0);
	CHECK(run.late == 0);
	CHECK(wheel_live() == 0);

	printf("  random_realtime: %zu fired; lateness 0 ms: %llu, 1 ms: %llu,"
	       " 2-5 ms: %llu, >5 ms: %llu, max %llu ms (poll(2) overslept"
	       " up to %llu ms)\n", n,
	       (unsigned long long)run.lat_hist[0],
	       (unsigned long long)run.lat_hist[1],
	       (unsigned long long)run.lat_hist[2],
	       (unsigned long long)run.lat_hist[3],
	       (unsigned long long)run.lat_max,
	       (unsigned long long)run.oversleep);

	free(run.want);
	free(p);
	rt = NULL;
}


/* -------------------------------------------------------------- threads */

struct thr {
	pthread_barrier_t bar;
	struct probe foreign;
	struct probe p[1000];
	uint64_t live0;
	uint64_t fired;
	uint64_t live_end;
	unsigned runs;
	unsigned order_bad;
	uint64_t last_jfs;
	bool foreign_kept;
};


static void thr_h(void *arg)
{
	struct probe *p = arg;
	struct thr *t = p->ctx;

	++p->runs;
	++t->runs;
	if (p->tmr.jfs < t->last_jfs)
		++t->order_bad;
	t->last_jfs = p->tmr.jfs;
}


static void *thr_main(void *arg)
{
	struct thr *t = arg;
	struct tmr_wheel_stats st;
	uint64_t end;
	unsigned i;

	tmr_wheel_stats(&st);
	t->live0 = st.live;

	for (i = 0; i < 1000; i++) {
		t->p[i].ctx = t;
		tmr_start(&t->p[i].tmr, (uint64_t)(i * 7919) % 40, thr_h,
			  &t->p[i]);
	}
	tmr_start(&t->foreign.tmr, 10000, thr_h, &t->foreign);

	(void)pthread_barrier_wait(&t->bar);   /* main meddles       */
	(void)pthread_barrier_wait(&t->bar);   /* main is done       */

	t->foreign_kept = tmr_isrunning(&t->foreign.tmr) &&
		tmr_get_expire(&t->foreign.tmr) > 5000;
	tmr_cancel(&t->foreign.tmr);

	end = real_ms() + 3000;
	while (t->runs < 1000 && real_ms() < end) {
		const uint64_t to = tmr_next_timeout(NULL);

		(void)poll(NULL, 0, (int)MIN(MAX(to, 1), (uint64_t)50));
		tmr_poll(NULL);
	}

	tmr_wheel_stats(&st);
	t->fired = st.fired;
	t->live_end = st.live;

	return NULL;
}


static void test_threads(void)
{
	struct thr *t = calloc(1, sizeof(*t));
	struct probe m, own[200];
	struct tmr_wheel_stats s0, s1;
	size_t want = 200;
	pthread_t tid;
	unsigned i;
	bool ok = true;

	CHECK(t != NULL);
	if (!t)
		return;

	memset(&m, 0, sizeof(m));
	memset(own, 0, sizeof(own));
	flog_reset();

	probe_start(&m, 10000);
	tmr_wheel_stats(&s0);

	CHECK(0 == pthread_barrier_init(&t->bar, NULL, 2));
	CHECK(0 == pthread_create(&tid, NULL, thr_main, t));

	(void)pthread_barrier_wait(&t->bar);

	/* the other thread's timer is refused, not unlinked */
	fprintf(stderr, "  (two warnings about another thread's wheel"
		" are expected)\n");
	tmr_cancel(&t->foreign.tmr);
	tmr_start(&t->foreign.tmr, 5, probe_h, &t->foreign);
	CHECK(tmr_isrunning(&t->foreign.tmr));
	CHECK(wheel_live() == s0.live);

	(void)pthread_barrier_wait(&t->bar);

	/* both threads run their wheels at once */
	for (i = 0; i < 200; i++)
		probe_start(&own[i], rnd_below(40));
	drive(2000, done_flog_n, &want);

	(void)pthread_join(tid, NULL);
	(void)pthread_barrier_destroy(&t->bar);

	CHECK(t->live0 == 0);
	CHECK(t->foreign_kept);
	CHECK(t->runs == 1000 && t->fired == 1000 && t->live_end == 0);
	CHECK(t->order_bad == 0);
	CHECK(t->foreign.runs == 0);

	for (i = 0; i < 200; i++)
		ok = ok && own[i].runs == 1;
	CHECK(ok);

	tmr_wheel_stats(&s1);
	CHECK(s1.live == 1 && tmr_isrunning(&m.tmr));
	CHECK(s1.fired == s0.fired + 200);
	tmr_cancel(&m.tmr);

	free(t);
}


/* ------------------------------------------------------ libre's loop */

static bool alarm_hit;

static void signal_h(int sig)
{
	if (sig == SIGALRM)
		alarm_hit = true;

	re_cancel();
}


static void act_re_cancel(struct probe *p)
{
	if (p->runs < 5)
		probe_start(p, 10);
	else
		re_cancel();
}


/* our tmr_* are the ones in the dynamic symbol table */
static void test_symbols(void)
{
	static const struct {
		const char *name;
		void *addr;
	} syms[] = {
#define SYM(f) { #f, (void *)f }
		SYM(tmr_poll), SYM(tmr_jiffies), SYM(tmr_next_timeout),
		SYM(tmr_debug), SYM(tmr_status), SYM(tmr_init),
		SYM(tmr_start), SYM(tmr_cancel), SYM(tmr_get_expire),
		SYM(tmr_wheel_stats),
#undef SYM
	};
	unsigned i;

	for (i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
		void *a = dlsym(RTLD_DEFAULT, syms[i].name);

		if (a != syms[i].addr) {
			fprintf(stderr, "  %s: dlsym %p, ours %p\n",
				syms[i].name, a, syms[i].addr);
		}
		CHECK(a == syms[i].addr);
	}
}


/* re_main (in libre.so) sleeps on our tmr_next_timeout and calls our
 * tmr_poll: with libre's own, its empty list would make it wait forever */
static void test_re_main(void)
{
	struct tmr_wheel_stats s0, s1;
	struct probe p;
	uint64_t t0, el;
	int err;

	memset(&p, 0, sizeof(p));
	p.act = act_re_cancel;
	tmr_wheel_stats(&s0);

	probe_start(&p, 10);
	alarm_hit = false;
	alarm(3);
	t0 = real_ms();
	err = re_main(signal_h);
	el = real_ms() - t0;
	alarm(0);

	tmr_wheel_stats(&s1);
	CHECK(err == 0);
	CHECK(!alarm_hit);
	CHECK(p.runs == 5);
	CHECK(s1.fired == s0.fired + 5);
	CHECK(el >= 45 && el < 50 + 60);
	CHECK(wheel_live() == 0);

	printf("  re_main: 5 x 10 ms timers took %llu ms\n",
	       (unsigned long long)el);
}


struct sip_run {
	unsigned rx;
	uint64_t t_rx[2];
};


static void probe_udp_h(const struct sa *src, struct mbuf *mb, void *arg)
{
	struct sip_run *r = arg;

	(void)src;

	if (mbuf_get_left(mb) < 7 || memcmp(mbuf_buf(mb), "OPTIONS", 7))
		return;

	if (r->rx < 2)
		r->t_rx[r->rx] = real_ms();

	if (++r->rx == 2)
		re_cancel();
}


static void probe_resp_h(int err, const struct sip_msg *msg, void *arg)
{
	(void)err;
	(void)msg;
	(void)arg;
}


/* libre's SIP client transaction retransmits with its timer E, started
 * inside libre.so: the retransmission comes from our wheel */
static void test_sip_retransmit(void)
{
	struct tmr_wheel_stats s0, s1, s2;
	struct sip_request *req = NULL;
	struct udp_sock *us = NULL;
	struct sip *sip = NULL;
	struct sip_run r;
	struct sa peer, laddr;
	char uri[64];
	uint64_t gap = 0;
	int err;

	memset(&r, 0, sizeof(r));
	tmr_wheel_stats(&s0);

	err  = sa_set_str(&peer, "127.0.0.1", 0);
	err |= sa_set_str(&laddr, "127.0.0.1", 0);
	CHECK(err == 0);

	err = udp_listen(&us, &peer, probe_udp_h, &r);
	CHECK(err == 0);
	if (err)
		goto out;
	err = udp_local_get(us, &peer);
	CHECK(err == 0);

	err = sip_alloc(&sip, NULL, 16, 16, 16, "tmr-test", NULL, NULL);
	CHECK(err == 0);
	if (err)
		goto out;
	err = sip_transp_add(sip, SIP_TRANSP_UDP, &laddr);
	CHECK(err == 0);
	if (err)
		goto out;

	(void)re_snprintf(uri, sizeof(uri), "sip:probe@%J", &peer);
	err = sip_requestf(&req, sip, true, "OPTIONS", uri, NULL, NULL,
			   NULL, probe_resp_h, NULL,
			   "To: <%s>\r\n"
			   "From: <sip:test@127.0.0.1>;tag=t1\r\n"
			   "Call-ID: tmr-test-1\r\n"
			   "CSeq: 1 OPTIONS\r\n"
			   "Max-Forwards: 70\r\n"
			   "Content-Length: 0\r\n"
			   "\r\n", uri);
	CHECK(err == 0);
	if (err)
		goto out;

	/* timers B/F (64*T1) and E (T1) are in our wheel */
	tmr_wheel_stats(&s1);
	CHECK(s1.live >= s0.live + 2);
	CHECK(s1.started >= s0.started + 2);

	alarm_hit = false;
	alarm(3);
	err = re_main(signal_h);
	alarm(0);
	CHECK(err == 0);
	CHECK(!alarm_hit);
	CHECK(r.rx == 2);

	if (r.rx == 2)
		gap = r.t_rx[1] - r.t_rx[0];
	CHECK(gap >= 490 && gap < 600);

	tmr_wheel_stats(&s2);
	CHECK(s2.fired > s1.fired);

	printf("  sip: retransmission after %llu ms (T1 = 500)\n",
	       (unsigned long long)gap);

 out:
	mem_deref(req);
	if (sip)
		sip_close(sip, true);
	mem_deref(sip);
	mem_deref(us);

	/* libre stopped its transaction timers through our tmr_cancel */
	CHECK(wheel_live() == s0.live);
}


/* ------------------------------------------------------ frozen clock */

static void clk_set(uint64_t ms)
{
	clk_ms = ms;
}


static void frozen_poll(void)
{
	poll_once();
}


/* tmr_next_timeout() is exact for a lone timer at every level */
static void test_frozen_exact(void)
{
	static const uint64_t delays[] = {
		1, 2, 63, 64, 65, 100, 4095, 4096, 4097, 32000, 262143,
		262144, 3600000, 1ULL << 30, (1ULL << 31) - 2,
	};
	struct probe p;
	bool ok = true;
	unsigned i, k;

	memset(&p, 0, sizeof(p));
	clk_set(clk_ms + 1);
	frozen_poll();

	/* from several phases of the clock */
	for (k = 0; k < 64; k++) {
		clk_set(clk_ms + rnd_below(5000));
		frozen_poll();

		for (i = 0; i < sizeof(delays) / sizeof(delays[0]); i++) {
			const uint64_t d = delays[i];

			probe_start(&p, d);
			ok = ok && tmr_next_timeout(NULL) == d;
			ok = ok && tmr_get_expire(&p.tmr) == d;

			clk_set(clk_ms + d - 1);
			frozen_poll();
			ok = ok && p.runs == 0;
			ok = ok && tmr_next_timeout(NULL) == 1;

			clk_set(clk_ms + 1);
			frozen_poll();
			ok = ok && p.runs == 1 && p.fired_at == p.jfs;
			p.runs = 0;
		}
	}
	CHECK(ok);
	CHECK(wheel_live() == 0);
}


/* a slot's lowest expiry: lowered by a later, earlier timer; after the
 * timer holding it is cancelled, one early wake-up and exact again */
static void test_frozen_min(void)
{
	struct probe x, y;
	bool ok = true;
	unsigned k;

	memset(&x, 0, sizeof(x));

	for (k = 12; k <= 24; k += 6) {       /* below INT_MAX ms */
		const uint64_t base = ((clk_ms >> k) + 3) << k;
		uint64_t to;

		y = x;
		probe_start(&x, base + 2000 - clk_ms);
		probe_start(&y, base + 1000 - clk_ms);
		ok = ok && tmr_next_timeout(NULL) == base + 1000 - clk_ms;

		tmr_cancel(&y.tmr);
		to = tmr_next_timeout(NULL);
		ok = ok && to >= 1 && to <= base + 2000 - clk_ms;

		clk_set(clk_ms + to);
		frozen_poll();
		ok = ok && x.runs == 0;
		ok = ok && tmr_next_timeout(NULL) == base + 2000 - clk_ms;

		clk_set(base + 2000);
		frozen_poll();
		ok = ok && x.runs == 1 && y.runs == 0;
		x.runs = 0;
	}

	CHECK(ok);
	CHECK(wheel_live() == 0);
}


/* equal expiries that meet from every level, with and without a poll
 * between the clock moving and the start */
static void test_frozen_equal(void)
{
	static const uint64_t before[] = {
		(1ULL << 40), (1ULL << 33) + 5, 1ULL << 28, 3000000,
		262144, 262143, 70000, 4097, 4096, 4095, 500, 64, 63, 5, 1,
	};
	enum { N = sizeof(before) / sizeof(before[0]) };
	struct probe a, d, b[2 * N];
	uint64_t x;
	unsigned i, n = 0;
	bool ok = true;

	memset(&a, 0, sizeof(a));
	d = a;
	memset(b, 0, sizeof(b));
	flog_reset();

	x = clk_ms + (1ULL << 50) + 12345;
	probe_start(&a, x - clk_ms);
	probe_start(&d, x - clk_ms);

	for (i = 0; i < N; i++) {
		clk_set(x - before[i]);
		probe_start(&b[n++], x - clk_ms);   /* wheel not moved yet */
		frozen_poll();
		probe_start(&b[n++], x - clk_ms);   /* wheel moved          */

		ok = ok && flog_n == 0;
		ok = ok && tmr_next_timeout(NULL) >= 1;
		ok = ok && tmr_next_timeout(NULL) <= x - clk_ms;
	}
	probe_start(&d, x - clk_ms);
	CHECK(ok);

	clk_set(x);
	frozen_poll();

	CHECK(flog_n == n + 2);
	if (flog_n != n + 2)
		return;

	ok = flog[0] == &a && flog[n + 1] == &d;
	for (i = 0; i < n; i++)
		ok = ok && flog[i + 1] == &b[i];
	CHECK(ok);
	CHECK(wheel_live() == 0);
}


/* equal expiries on a tick that starts a slot of every level: the last
 * poll jumps past it, so they go from a cascade straight to the run */
static void test_frozen_cascade(void)
{
	static const uint64_t before[] = {
		1ULL << 35, (1ULL << 30) + 7, 1ULL << 24, (1ULL << 18) + 3,
		5000, 70,
	};
	enum { N = sizeof(before) / sizeof(before[0]) };
	struct probe a, b[2 * N], late;
	uint64_t x;
	unsigned i, n = 0;
	bool ok;

	memset(&a, 0, sizeof(a));
	memset(b, 0, sizeof(b));
	late = a;
	flog_reset();

	x = ((clk_ms >> 36) + 2) << 36;
	probe_start(&a, x - clk_ms);
	probe_start(&late, x + 1 - clk_ms);

	for (i = 0; i < N; i++) {
		clk_set(x - before[i]);
		probe_start(&b[n++], x - clk_ms);
		frozen_poll();
		probe_start(&b[n++], x - clk_ms);
	}
	CHECK(flog_n == 0);

	clk_set(x + 3);
	frozen_poll();

	CHECK(flog_n == n + 2);
	if (flog_n != n + 2)
		return;

	ok = flog[0] == &a && flog[n + 1] == &late;
	for (i = 0; i < n; i++)
		ok = ok && flog[i + 1] == &b[i] && b[i].fired_at == x + 3;
	CHECK(ok);
	CHECK(wheel_live() == 0);
}


/* reference model: binary heap on (jfs, seq) */

#define HEAP_NONE ((size_t)-1)

struct heap {
	struct probe **v;
	size_t n;
};

static bool heap_less(const struct probe *a, const struct probe *b)
{
	return a->jfs < b->jfs || (a->jfs == b->jfs && a->seq < b->seq);
}

static void heap_set(struct heap *h, size_t i, struct probe *p)
{
	h->v[i] = p;
	p->hidx = i;
}

static void heap_up(struct heap *h, size_t i)
{
	struct probe *p = h->v[i];

	while (i > 0 && heap_less(p, h->v[(i - 1) / 2])) {
		heap_set(h, i, h->v[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	heap_set(h, i, p);
}

static void heap_down(struct heap *h, size_t i)
{
	struct probe *p = h->v[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= h->n)
			break;
		if (c + 1 < h->n && heap_less(h->v[c + 1], h->v[c]))
			++c;
		if (!heap_less(h->v[c], p))
			break;
		heap_set(h, i, h->v[c]);
		i = c;
	}
	heap_set(h, i, p);
}

static void heap_push(struct heap *h, struct probe *p)
{
	h->v[h->n] = p;
	heap_up(h, h->n++);
}

static void heap_remove(struct heap *h, struct probe *p)
{
	const size_t i = p->hidx;
	struct probe *last;

	if (i == HEAP_NONE)
		return;

	p->hidx = HEAP_NONE;
	last = h->v[--h->n];
	if (i == h->n)
		return;

	heap_set(h, i, last);
	heap_up(h, i);
	heap_down(h, last->hidx);
}

static struct probe *heap_top(const struct heap *h)
{
	return h->n ? h->v[0] : NULL;
}


struct model {
	struct heap h;
	struct probe *p;
	size_t np;
	struct probe **defv;    /* probes with deferred set             */
	size_t ndef, defmax;
	uint64_t t_prev;        /* clock at the previous poll            */
	uint64_t cur;           /* expiry of the timer being run         */
	bool in_pass;
	uint64_t fired;
	uint64_t bad_order;
	uint64_t bad_state;
	uint64_t bad_to;
	uint64_t to_exact, to_early;
};

static struct model *mdl;


static uint64_t model_delay(void)
{
	const unsigned lvl = (unsigned)rnd_below(9);

	if (rnd_below(20) == 0)
		return 0;

	return rnd() & (((uint64_t)1 << (6 * lvl + 6)) - 1);
}


/* start p, in the wheel and in the model */
static void model_start(struct probe *p, uint64_t delay)
{
	heap_remove(&mdl->h, p);
	probe_start(p, delay);
	p->deferred = false;

	if (mdl->in_pass && p->jfs <= MAX(mdl->cur, mdl->t_prev)) {
		p->deferred = true;
		if (mdl->ndef < mdl->defmax)
			mdl->defv[mdl->ndef++] = p;
		else
			++mdl->bad_state;
	}

	heap_push(&mdl->h, p);
}


static void model_cancel(struct probe *p)
{
	heap_remove(&mdl->h, p);
	tmr_cancel(&p->tmr);
}


static void act_model(struct probe *p)
{
	struct probe *top = heap_top(&mdl->h);
	const uint64_t r = rnd_below(100);

	++mdl->fired;

	if (top != p || p->deferred || p->fired_at != clk_ms)
		++mdl->bad_order;

	heap_remove(&mdl->h, p);
	mdl->cur = p->jfs;

	if (r < 20) {
		model_start(p, model_delay());
	}
	else if (r < 25) {
		model_cancel(&mdl->p[rnd_below(mdl->np)]);
	}
	else if (r < 30) {
		model_start(&mdl->p[rnd_below(mdl->np)], model_delay());
	}
	else if (r < 32) {
		model_start(p, 0);
		model_start(&mdl->p[rnd_below(mdl->np)], 0);
	}
}


static void model_verify_all(void)
{
	size_t i;

	for (i = 0; i < mdl->np; i++) {
		const struct probe *p = &mdl->p[i];
		const bool in = p->hidx != HEAP_NONE;
		const uint64_t e = p->jfs > clk_ms ? p->jfs - clk_ms : 0;

		if (tmr_isrunning(&p->tmr) != in)
			++mdl->bad_state;
		else if (in && tmr_get_expire(&p->tmr) != e)
			++mdl->bad_state;
	}

	if (wheel_live() != mdl->h.n)
		++mdl->bad_state;
}


/* the wheel against the reference model, over random starts, restarts,
 * cancels (also from handlers) and random jumps of the clock */
static void test_frozen_model(void)
{
	enum { N = 100000, ITER = 30000, DEFMAX = 8 * N };
	struct model m;
	struct tmr_wheel_stats s0, s1;
	const uint64_t clk0 = clk_ms;
	size_t i, it;

	memset(&m, 0, sizeof(m));
	m.np = N;
	m.defmax = DEFMAX;
	m.p = calloc(N, sizeof(*m.p));
	m.h.v = calloc(N, sizeof(*m.h.v));
	m.defv = calloc(DEFMAX, sizeof(*m.defv));
	CHECK(m.p && m.h.v && m.defv);
	if (!m.p || !m.h.v || !m.defv)
		goto out;

	mdl = &m;
	tmr_wheel_stats(&s0);
	frozen_poll();
	m.t_prev = clk_ms;

	for (i = 0; i < N; i++) {
		m.p[i].id = (uint32_t)i;
		m.p[i].act = act_model;
		m.p[i].hidx = HEAP_NONE;
		model_start(&m.p[i], model_delay());
	}

	for (it = 0; it < ITER; it++) {
		const uint64_t r = rnd_below(100);
		struct probe *top;
		uint64_t to;
		unsigned k;

		/* a few operations between polls */
		for (k = 0; k < 3; k++) {
			struct probe *p = &m.p[rnd_below(N)];

			if (rnd_below(2))
				model_start(p, model_delay());
			else
				model_cancel(p);
		}

		to = tmr_next_timeout(NULL);
		top = heap_top(&m.h);
		if (!top) {
			if (to != 0)
				++m.bad_to;
		}
		else if (top->jfs <= clk_ms) {
			if (to != 1)
				++m.bad_to;
		}
		else {
			const uint64_t w = MIN(top->jfs - clk_ms,
					       (uint64_t)INT_MAX);

			if (to < 1 || to > w)
				++m.bad_to;
			else if (to == w)
				++m.to_exact;
			else
				++m.to_early;
		}

		if (r < 40)
			clk_set(clk_ms + to);
		else if (r < 70)
			clk_set(clk_ms + rnd_below(4));
		else
			clk_set(clk_ms + rnd_below((uint64_t)1 <<
						   rnd_below(41)));

		m.in_pass = true;
		m.cur = 0;
		frozen_poll();
		m.in_pass = false;

		/* all due timers ran, except those started for next pass */
		top = heap_top(&m.h);
		if (top && top->jfs <= clk_ms && !top->deferred)
			++m.bad_order;

		for (i = 0; i < m.ndef; i++)
			m.defv[i]->deferred = false;
		m.ndef = 0;
		m.t_prev = clk_ms;

		if (it % 3000 == 0)
			model_verify_all();
	}
	model_verify_all();

	CHECK(m.fired > N);
	CHECK(m.bad_order == 0);
	CHECK(m.bad_state == 0);
	CHECK(m.bad_to == 0);

	tmr_wheel_stats(&s1);
	CHECK(s1.fired - s0.fired == m.fired);

	printf("  frozen_model: %zu polls, %llu fired, next_timeout exact"
	       " %llu, early %llu, clock at +%llu ms\n", (size_t)ITER,
	       (unsigned long long)m.fired,
	       (unsigned long long)m.to_exact,
	       (unsigned long long)m.to_early,
	       (unsigned long long)(clk_ms - clk0));

	for (i = 0; i < N; i++)
		model_cancel(&m.p[i]);
	CHECK(wheel_live() == 0);
	CHECK(m.h.n == 0);

 out:
	free(m.p);
	free(m.h.v);
	free(m.defv);
	mdl = NULL;
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
