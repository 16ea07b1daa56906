/**
 * @file deck.c  Carriers' cost decks: prices by prefix, the cost of a
 *               call at a price, and the margin guard's comparison
 *
 * A deck is a table sorted by (prefix, valid_from).  A look-up tries the
 * number's prefixes from the longest the deck holds down to the empty
 * one, each by binary search, and takes the first whose entry is valid
 * at the given time: a 50,000-prefix deck answers in at most
 * (longest prefix + 1) * 16 comparisons, with no allocation.
 *
 * The cost of a call at a price is billing's rating (billing/rate.c)
 * over struct b2bua_tariff: the B2BUA prices carriers without depending
 * on billing.
 */

#include <stdlib.h>
#include <string.h>
#include "b2bua_int.h"


enum { DECK_PREFIX_MAX = 24, DECK_GROW = 1024 };

struct deck_ent {
	char prefix[DECK_PREFIX_MAX + 1];
	uint8_t plen;
	int64_t from_ms;          /**< valid from (INT64_MIN: always)    */
	int64_t to_ms;            /**< valid until, excluded (INT64_MAX)  */
	struct b2bua_tariff t;
};

struct b2bua_deck {
	struct deck_ent *v;       /**< owned                             */
	uint32_t n, sz;
	uint8_t maxlen;           /**< longest prefix                    */
	bool sealed;
};


static void deck_destructor(void *arg)
{
	struct b2bua_deck *d = arg;

	mem_deref(d->v);
}


int b2bua_deck_alloc(struct b2bua_deck **dp)
{
	struct b2bua_deck *d;

	if (!dp)
		return EINVAL;

	d = mem_zalloc(sizeof(*d), deck_destructor);
	if (!d)
		return ENOMEM;

	*dp = d;

	return 0;
}


/** A price can be used: fees not negative, increments of 1 s or more */
int b2bua_tariff_check(const struct b2bua_tariff *t)
{
	if (!t || t->connect_fee < 0 || t->per_minute < 0 ||
	    t->initial < 1 || t->subsequent < 1)
		return EINVAL;

	return 0;
}


/**
 * Add a price to a deck (before b2bua_deck_seal())
 *
 * @param prefix   digits, "" for every number
 * @param from_ms  valid from (INT64_MIN: always)
 * @param to_ms    valid until, excluded (INT64_MAX: for ever)
 *
 * @return 0, EINVAL (bad prefix, price or window), EALREADY (sealed),
 *         ENOMEM
 */
int b2bua_deck_add(struct b2bua_deck *d, const char *prefix,
		   const struct b2bua_tariff *t, int64_t from_ms,
		   int64_t to_ms)
{
	struct deck_ent *e;
	size_t l;

	if (!d || !prefix || b2bua_tariff_check(t) || from_ms >= to_ms)
		return EINVAL;

	if (d->sealed)
		return EALREADY;

	l = strlen(prefix);
	if (l > DECK_PREFIX_MAX || strspn(prefix, "0123456789") != l)
		return EINVAL;

	if (d->n == d->sz) {
		uint32_t sz = d->sz + DECK_GROW + d->sz / 2;
		struct deck_ent *v = d->v ? mem_realloc(d->v, sz * sizeof(*v))
			: mem_alloc(sz * sizeof(*v), NULL);

		if (!v)
			return ENOMEM;
		d->v = v;
		d->sz = sz;
	}

	e = &d->v[d->n++];
	memcpy(e->prefix, prefix, l + 1);
	e->plen = (uint8_t)l;
	e->from_ms = from_ms;
	e->to_ms = to_ms;
	e->t = *t;

	if (l > d->maxlen)
		d->maxlen = (uint8_t)l;

	return 0;
}


static int ent_cmp(const void *a, const void *b)
{
	const struct deck_ent *x = a, *y = b;
	int c = strcmp(x->prefix, y->prefix);

	if (c)
		return c;

	return x->from_ms < y->from_ms ? -1 : x->from_ms > y->from_ms;
}


/** Sort the deck for look-ups; nothing can be added after */
void b2bua_deck_seal(struct b2bua_deck *d)
{
	if (!d || d->sealed)
		return;

	if (d->n)
		qsort(d->v, d->n, sizeof(*d->v), ent_cmp);
	d->sealed = true;
}


uint32_t b2bua_deck_count(const struct b2bua_deck *d)
{
	return d ? d->n : 0;
}


/* compare the first l characters of number, as a whole prefix, with an
   entry's prefix */
static int key_cmp(const char *num, size_t l, const struct deck_ent *e)
{
	size_t m = l < e->plen ? l : e->plen;
	int c = memcmp(num, e->prefix, m);

	if (c)
		return c;

	return l < e->plen ? -1 : l > e->plen;
}


/* the first entry whose prefix is exactly the first l digits, or -1 */
static int64_t find_first(const struct b2bua_deck *d, const char *num,
			  size_t l)
{
	uint32_t lo = 0, hi = d->n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (key_cmp(num, l, &d->v[mid]) > 0)
			lo = mid + 1;
		else
			hi = mid;
	}

	if (lo < d->n && !key_cmp(num, l, &d->v[lo]))
		return lo;

	return -1;
}


/**
 * The price of a number: the longest prefix of it with an entry valid at
 * now_ms.  Of several valid entries of one prefix the one that became
 * valid last wins.
 *
 * @param d        a sealed deck
 * @param number   digits
 * @param now_ms   wall clock
 * @param prefixp  the prefix that matched (may be NULL)
 *
 * @return the price, NULL if the deck has none for the number
 */
const struct b2bua_tariff *b2bua_deck_lookup(const struct b2bua_deck *d,
					     const char *number,
					     int64_t now_ms,
					     const char **prefixp)
{
	size_t n, l;

	if (!d || !d->sealed || !number || !d->n)
		return NULL;

	n = strlen(number);
	if (strspn(number, "0123456789") != n)
		return NULL;

	l = n < d->maxlen ? n : d->maxlen;

	for (;;) {
		int64_t i = find_first(d, number, l);

		if (i >= 0) {
			const struct deck_ent *best = NULL;
			uint32_t j;

			for (j = (uint32_t)i; j < d->n &&
				     !key_cmp(number, l, &d->v[j]); j++) {
				const struct deck_ent *e = &d->v[j];

				if (e->from_ms <= now_ms && now_ms < e->to_ms)
					best = e;
			}

			if (best) {
				if (prefixp)
					*prefixp = best->prefix;
				return &best->t;
			}
		}

		if (!l)
			break;
		--l;
	}

	return NULL;
}


/**
 * Cost of an answered call of some seconds at a price: as billing's
 * rate_call() (0 for 0 s)
 *
 * @return 0, EINVAL (bad price), ERANGE (overflow)
 */
int b2bua_tariff_cost(int64_t *costp, const struct b2bua_tariff *t,
		      uint64_t seconds)
{
	unsigned __int128 x;
	uint64_t billed, rest;

	if (!costp || b2bua_tariff_check(t))
		return EINVAL;

	if (!seconds) {
		*costp = 0;
		return 0;
	}

	rest = seconds > t->initial ? seconds - t->initial : 0;
	billed = t->initial + (rest / t->subsequent +
			       (rest % t->subsequent ? 1 : 0)) *
		(uint64_t)t->subsequent;

	x = (unsigned __int128)billed * (uint64_t)t->per_minute;
	x = x / 60 + (x % 60 ? 1 : 0);
	x += (uint64_t)t->connect_fee;
	if (x > INT64_MAX)
		return ERANGE;

	*costp = (int64_t)x;

	return 0;
}


/* does the customer pay at least (100 + ...) : cust * (100 - pct) >=
   carrier * 100, for a call of d seconds */
static bool margin_at(const struct b2bua_tariff *cu,
		      const struct b2bua_tariff *ca, uint32_t pct, uint64_t d)
{
	int64_t c1, c2;

	if (b2bua_tariff_cost(&c1, cu, d) || b2bua_tariff_cost(&c2, ca, d))
		return false;

	return (__int128)c1 * (100 - pct) >= (__int128)c2 * 100;
}


/**
 * The margin guard's test: for every duration a call can have, from 1 s
 * up to horizon_s, the customer's cost leaves at least min_pct percent of
 * it after the carrier's cost (min_pct 0: the carrier costs no more than
 * the customer pays).  Both costs are step functions of the duration;
 * the carrier's is constant on each of its increments and the
 * customer's grows, so the worst point of each carrier increment is its
 * first second: 1 s, initial + 1, initial + subsequent + 1, ... and the
 * test looks at those only (horizon_s / subsequent + 2 points at most).
 *
 * @return true if the carrier may carry the call
 */
bool b2bua_margin_ok(const struct b2bua_tariff *customer,
		     const struct b2bua_tariff *carrier, uint32_t min_pct,
		     uint32_t horizon_s)
{
	uint64_t d;

	if (b2bua_tariff_check(customer) || b2bua_tariff_check(carrier) ||
	    min_pct >= 100)
		return false;

	if (!margin_at(customer, carrier, min_pct, 1))
		return false;

	for (d = (uint64_t)carrier->initial + 1; d <= horizon_s;
	     d += carrier->subsequent) {
		if (!margin_at(customer, carrier, min_pct, d))
			return false;
	}

	return true;
}
