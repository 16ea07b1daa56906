/**
 * @file test_tmr_load.c  Many timers at once, and a wheel per thread
 */

#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <re.h>
#include "core.h"
#include "test_tmr.h"


/* -------------------------------------------------------- many timers */

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
void test_random_realtime(void)
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


void test_threads(void)
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
