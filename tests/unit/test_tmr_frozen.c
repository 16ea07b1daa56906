/**
 * @file test_tmr_frozen.c  The wheel on a frozen clock moved by hand, and
 *                          against a reference model (a binary heap)
 */

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <re.h>
#include "core.h"
#include "test_tmr.h"


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
void test_frozen_exact(void)
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
void test_frozen_min(void)
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
void test_frozen_equal(void)
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
void test_frozen_cascade(void)
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
void test_frozen_model(void)
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
