/**
 * @file test_rate.c  Unit tests of rating (billing/rate.c)
 *
 * Tables of billed seconds and costs for the usual increments (60/60,
 * 1/1, 30/6), the boundaries around each increment, 0 s and 1 s calls,
 * rounding of fractions of a micro-unit, large values and overflow, and
 * the inverse: the longest call an amount pays for, checked against the
 * forward rating over a pseudo-random sweep.
 */

#include <errno.h>
#include <stdio.h>
#include <stdint.h>
#include <re.h>
#include "billing.h"


#include "check.h"


struct row {
	int line;
	int64_t cf, ppm;
	uint32_t ini, sub;
	uint64_t d;
	uint64_t billed;
	int64_t cost;
};

#define UNIT 1000000LL

static const struct row rows[] = {
	/* 60/60, 1 unit a minute, no connect fee */
	{__LINE__, 0, UNIT, 60, 60,     0,   0, 0},
	{__LINE__, 0, UNIT, 60, 60,     1,  60, UNIT},
	{__LINE__, 0, UNIT, 60, 60,    59,  60, UNIT},
	{__LINE__, 0, UNIT, 60, 60,    60,  60, UNIT},
	{__LINE__, 0, UNIT, 60, 60,    61, 120, 2 * UNIT},
	{__LINE__, 0, UNIT, 60, 60,   120, 120, 2 * UNIT},
	{__LINE__, 0, UNIT, 60, 60,   121, 180, 3 * UNIT},
	{__LINE__, 0, UNIT, 60, 60,  3600, 3600, 60 * UNIT},

	/* 1/1, 0.6 units a minute = 10,000 micro-units a second */
	{__LINE__, 0, 600000, 1, 1,     0,   0, 0},
	{__LINE__, 0, 600000, 1, 1,     1,   1, 10000},
	{__LINE__, 0, 600000, 1, 1,     2,   2, 20000},
	{__LINE__, 0, 600000, 1, 1,    59,  59, 590000},
	{__LINE__, 0, 600000, 1, 1,    60,  60, 600000},
	{__LINE__, 0, 600000, 1, 1,    61,  61, 610000},

	/* 30/6 with a connect fee */
	{__LINE__, 50000, 120000, 30, 6,   0,  0, 50000},
	{__LINE__, 50000, 120000, 30, 6,   1, 30, 110000},
	{__LINE__, 50000, 120000, 30, 6,  29, 30, 110000},
	{__LINE__, 50000, 120000, 30, 6,  30, 30, 110000},
	{__LINE__, 50000, 120000, 30, 6,  31, 36, 122000},
	{__LINE__, 50000, 120000, 30, 6,  36, 36, 122000},
	{__LINE__, 50000, 120000, 30, 6,  37, 42, 134000},
	{__LINE__, 50000, 120000, 30, 6, 600, 600, 1250000},

	/* fractions of a micro-unit round up, per call (not per second) */
	{__LINE__, 0, 1, 1, 1,   1,   1, 1},
	{__LINE__, 0, 1, 1, 1,  60,  60, 1},
	{__LINE__, 0, 1, 1, 1,  61,  61, 2},
	{__LINE__, 0, 7, 1, 1,   1,   1, 1},
	{__LINE__, 0, 59, 1, 1, 60,  60, 59},
	{__LINE__, 0, 61, 1, 1, 60,  60, 61},
	{__LINE__, 0, 61, 1, 1, 59,  59, 60},

	/* free rate, connect fee only */
	{__LINE__, 30000, 0, 60, 60, 1000, 1020, 30000},

	/* initial longer than subsequent, and the reverse */
	{__LINE__, 0, 60 * UNIT, 10, 1,  5, 10, 10 * UNIT},
	{__LINE__, 0, 60 * UNIT, 10, 1, 11, 11, 11 * UNIT},
	{__LINE__, 0, 60 * UNIT, 1, 10,  1,  1, 1 * UNIT},
	{__LINE__, 0, 60 * UNIT, 1, 10,  2, 11, 11 * UNIT},

	/* large: ten years at 1,000,000 units a minute, 1/1 */
	{__LINE__, 0, 1000000 * UNIT, 1, 1, RATE_MAX_SECONDS,
	 RATE_MAX_SECONDS, 5256000000000000000LL},
	{__LINE__, 0, 1000000 * UNIT, 60, 60, RATE_MAX_SECONDS - 1,
	 RATE_MAX_SECONDS, 5256000000000000000LL},
};


static void test_table(void)
{
	size_t i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *w = &rows[i];
		struct rate r = {0, w->cf, w->ppm, w->ini, w->sub};
		uint64_t billed = 12345;
		int64_t cost = 12345;
		int err;

		err = rate_call(&cost, &billed, &r, w->d);
		if (err || billed != w->billed || cost != w->cost) {
			++failed;
			fprintf(stderr, "test_rate.c:%d: d=%llu: got err %d billed"
				" %llu cost %lld, want billed %llu cost"
				" %lld\n", w->line,
				(unsigned long long)w->d, err,
				(unsigned long long)billed, (long long)cost,
				(unsigned long long)w->billed,
				(long long)w->cost);
		}
		else {
			++passed;
		}
	}
}


static void test_seconds(void)
{
	CHECK(rate_seconds(0) == 0);
	CHECK(rate_seconds(1) == 1);
	CHECK(rate_seconds(999) == 1);
	CHECK(rate_seconds(1000) == 1);
	CHECK(rate_seconds(1001) == 2);
	CHECK(rate_seconds(59999) == 60);
	CHECK(rate_seconds(60000) == 60);
	CHECK(rate_seconds(60001) == 61);
}


static void test_errors(void)
{
	struct rate r = {0, 0, UNIT, 60, 60};
	uint64_t billed;
	int64_t cost;

	CHECK(rate_check(&r) == 0);
	CHECK(rate_check(NULL) == EINVAL);

	r.initial = 0;
	CHECK(rate_check(&r) == EINVAL);
	CHECK(rate_call(&cost, &billed, &r, 10) == EINVAL);
	CHECK(rate_affordable(&r, UNIT) == -1);
	CHECK(rate_first_cost(&r) == -1);
	r.initial = 60;

	r.subsequent = 0;
	CHECK(rate_check(&r) == EINVAL);
	r.subsequent = 60;

	r.price_per_minute = -1;
	CHECK(rate_check(&r) == EINVAL);
	r.price_per_minute = UNIT;

	r.connect_fee = -1;
	CHECK(rate_check(&r) == EINVAL);
	r.connect_fee = 0;

	/* longer than rating accepts */
	CHECK(rate_billed(&billed, &r, RATE_MAX_SECONDS + 1) == ERANGE);
	CHECK(rate_billed(&billed, &r, UINT64_MAX) == ERANGE);

	/* a cost that does not fit in 64 bits */
	r.price_per_minute = INT64_MAX;
	r.initial = r.subsequent = 1;
	CHECK(rate_call(&cost, &billed, &r, 61) == ERANGE);
	CHECK(rate_call(&cost, &billed, &r, 60) == 0);
	CHECK(cost == INT64_MAX);

	r.price_per_minute = 60;
	r.connect_fee = INT64_MAX;
	CHECK(rate_call(&cost, &billed, &r, 0) == 0);
	CHECK(cost == INT64_MAX);
	CHECK(rate_call(&cost, &billed, &r, 1) == ERANGE);

	CHECK(rate_billed(NULL, &r, 1) == EINVAL);
	CHECK(rate_cost(NULL, &r, 1) == EINVAL);
}


static void test_affordable(void)
{
	struct rate s1 = {0, 0, 60 * UNIT, 1, 1};       /* 1 unit a second */
	struct rate m60 = {0, 0, UNIT, 60, 60};
	struct rate r306 = {0, 50000, 120000, 30, 6};
	struct rate fee = {0, 100, 60 * UNIT, 1, 1};
	struct rate free_r = {0, 100, 0, 60, 60};

	CHECK(rate_affordable(&s1, 0) == 0);
	CHECK(rate_affordable(&s1, UNIT - 1) == 0);
	CHECK(rate_affordable(&s1, UNIT) == 1);
	CHECK(rate_affordable(&s1, 5 * UNIT) == 5);
	CHECK(rate_affordable(&s1, 6 * UNIT - 1) == 5);
	CHECK(rate_affordable(&s1, -1) == -1);

	CHECK(rate_affordable(&m60, UNIT - 1) == 0);
	CHECK(rate_affordable(&m60, UNIT) == 60);
	CHECK(rate_affordable(&m60, 2 * UNIT - 1) == 60);
	CHECK(rate_affordable(&m60, 2 * UNIT) == 120);

	CHECK(rate_affordable(&r306, 49999) == -1);
	CHECK(rate_affordable(&r306, 50000) == 0);
	CHECK(rate_affordable(&r306, 109999) == 0);
	CHECK(rate_affordable(&r306, 110000) == 30);
	CHECK(rate_affordable(&r306, 121999) == 30);
	CHECK(rate_affordable(&r306, 122000) == 36);

	CHECK(rate_affordable(&fee, 99) == -1);
	CHECK(rate_affordable(&fee, 100) == 0);
	CHECK(rate_affordable(&fee, 100 + UNIT) == 1);

	CHECK(rate_affordable(&free_r, 100) == (int64_t)RATE_MAX_SECONDS);
	CHECK(rate_affordable(&free_r, 99) == -1);

	/* the whole int64 range does not overflow */
	CHECK(rate_affordable(&s1, INT64_MAX) == (int64_t)RATE_MAX_SECONDS);

	CHECK(rate_first_cost(&s1) == UNIT);
	CHECK(rate_first_cost(&m60) == UNIT);
	CHECK(rate_first_cost(&r306) == 110000);
	CHECK(rate_first_cost(&fee) == 100 + UNIT);
}


/* a deterministic generator, so a failure can be replayed */
static uint64_t lcg_state = 0x9e3779b97f4a7c15ULL;

static uint64_t lcg(void)
{
	lcg_state = lcg_state * 6364136223846793005ULL +
		1442695040888963407ULL;
	return lcg_state >> 17;
}


/* affordable(amount) is the longest d with cost(d) <= amount */
static void test_sweep(void)
{
	static const uint32_t incs[] = {1, 6, 10, 30, 60};
	unsigned i, bad = 0;

	for (i = 0; i < 20000; i++) {
		struct rate r;
		int64_t amount, d, c0, c1;

		r.id = 0;
		r.connect_fee = (int64_t)(lcg() % 4) * (int64_t)(lcg() % 100000);
		r.price_per_minute = (int64_t)(lcg() % 5000000) + 1;
		r.initial = incs[lcg() % 5];
		r.subsequent = incs[lcg() % 5];
		amount = (int64_t)(lcg() % (100 * UNIT));

		d = rate_affordable(&r, amount);
		if (amount < r.connect_fee) {
			bad += d != -1;
			continue;
		}

		if (d < 0 || rate_call(&c0, NULL, &r, (uint64_t)d) ||
		    rate_call(&c1, NULL, &r, (uint64_t)d + 1)) {
			++bad;
			continue;
		}

		if (c0 > amount || c1 <= amount) {
			if (bad < 5)
				fprintf(stderr, "sweep: cf %lld ppm %lld %u/%u"
					" amount %lld: d %lld costs %lld,"
					" d+1 costs %lld\n",
					(long long)r.connect_fee,
					(long long)r.price_per_minute,
					r.initial, r.subsequent,
					(long long)amount, (long long)d,
					(long long)c0, (long long)c1);
			++bad;
		}
	}

	CHECK(bad == 0);
}


int main(void)
{
	test_table();
	test_seconds();
	test_errors();
	test_affordable();
	test_sweep();

	return check_report(NULL);
}
