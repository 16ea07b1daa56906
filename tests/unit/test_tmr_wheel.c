/**
 * @file test_tmr_wheel.c  libre's timer semantics on the wheel, in real time
 */

#include <limits.h>
#include <poll.h>
#include <string.h>
#include <time.h>
#include <re.h>
#include "core.h"
#include "test_tmr.h"


/* ---------------------------------------------------------- real time */

void test_jiffies(void)
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


void test_start_cancel(void)
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


void test_zero_delay(void)
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
void test_equal_expiry(void)
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


void test_handler_cancel(void)
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
void test_self_rearm(void)
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


void test_nested_poll(void)
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


void test_next_timeout(void)
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


void test_long_delays(void)
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
