/**
 * @file rate.c  Rating: billed seconds and cost of a call, in micro-units
 *
 * Pure functions over struct rate, no state, no floating point.  Products
 * that could overflow 64 bits are computed in 128 bits and checked.
 */

#include <errno.h>
#include <stdint.h>
#include <re.h>
#include "billing.h"


/**
 * Check that a rate can be used
 *
 * @return 0 if valid, EINVAL if a value is out of range
 */
int rate_check(const struct rate *r)
{
	if (!r)
		return EINVAL;

	if (r->connect_fee < 0 || r->price_per_minute < 0)
		return EINVAL;

	if (r->initial < 1 || r->subsequent < 1)
		return EINVAL;

	return 0;
}


/** Seconds of a duration in milliseconds: every started second counts */
uint64_t rate_seconds(uint64_t ms)
{
	return ms / 1000 + (ms % 1000 ? 1 : 0);
}


/**
 * Billed seconds of a call that lasted d seconds from answer
 *
 * @return 0, EINVAL for a bad rate, ERANGE if d > RATE_MAX_SECONDS
 */
int rate_billed(uint64_t *billedp, const struct rate *r, uint64_t d)
{
	uint64_t rest, n;

	if (!billedp || rate_check(r))
		return EINVAL;

	if (d > RATE_MAX_SECONDS)
		return ERANGE;

	if (d == 0) {
		*billedp = 0;
		return 0;
	}

	rest = d > r->initial ? d - r->initial : 0;
	n = rest / r->subsequent + (rest % r->subsequent ? 1 : 0);

	*billedp = r->initial + n * r->subsequent;

	return 0;
}


/**
 * Cost of billed seconds: connect fee + ceil(billed * price / 60)
 *
 * @return 0, EINVAL for a bad rate, ERANGE if it does not fit in int64_t
 */
int rate_cost(int64_t *costp, const struct rate *r, uint64_t billed)
{
	unsigned __int128 x;

	if (!costp || rate_check(r))
		return EINVAL;

	x = (unsigned __int128)billed * (uint64_t)r->price_per_minute;
	x = x / 60 + (x % 60 ? 1 : 0);
	x += (uint64_t)r->connect_fee;

	if (x > INT64_MAX)
		return ERANGE;

	*costp = (int64_t)x;

	return 0;
}


/**
 * Billed seconds and cost of an answered call of d seconds
 *
 * @param costp    cost in micro-units (may be NULL)
 * @param billedp  billed seconds (may be NULL)
 * @param r        the rate
 * @param d        seconds from answer (see rate_seconds())
 *
 * @return 0, EINVAL, ERANGE
 */
int rate_call(int64_t *costp, uint64_t *billedp, const struct rate *r,
	      uint64_t d)
{
	uint64_t billed;
	int64_t cost;
	int err;

	err = rate_billed(&billed, r, d);
	if (err)
		return err;

	err = rate_cost(&cost, r, billed);
	if (err)
		return err;

	if (costp)
		*costp = cost;
	if (billedp)
		*billedp = billed;

	return 0;
}


/**
 * The longest call an amount pays for
 *
 * @param r       the rate
 * @param amount  micro-units available for the call (connect fee included)
 *
 * @return the largest d (seconds) with cost(d) <= amount, 0 if only the
 *         connect fee is covered, -1 if not even that (or a bad rate);
 *         RATE_MAX_SECONDS for a free rate
 */
int64_t rate_affordable(const struct rate *r, int64_t amount)
{
	unsigned __int128 m;
	uint64_t billed, k, d;

	if (rate_check(r) || amount < r->connect_fee)
		return -1;

	if (r->price_per_minute == 0)
		return (int64_t)RATE_MAX_SECONDS;

	/* ceil(b * p / 60) <= m  <=>  b * p <= 60 m  (integers) */
	m = (unsigned __int128)(uint64_t)(amount - r->connect_fee) * 60;
	m /= (uint64_t)r->price_per_minute;
	if (m > RATE_MAX_SECONDS)
		m = RATE_MAX_SECONDS;

	billed = (uint64_t)m;
	if (billed < r->initial)
		return 0;

	k = (billed - r->initial) / r->subsequent;
	d = r->initial + k * r->subsequent;

	return (int64_t)d;
}


/**
 * What a call must be able to pay before it may start: the connect fee
 * and the first increment
 *
 * @return micro-units, or -1 for a bad rate or an overflow
 */
int64_t rate_first_cost(const struct rate *r)
{
	int64_t cost;

	if (!r || rate_cost(&cost, r, r->initial))
		return -1;

	return cost;
}
