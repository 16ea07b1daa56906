/**
 * @file tmr.c  Hierarchical timer wheel that replaces libre's timer list
 *
 * libre 1.1.0 keeps every timer of a thread in one sorted linked list and
 * tmr_start() walks it, which costs O(n) per start.  With tens of thousands
 * of live SIP transaction timers that walk dominates the CPU.  libre calls
 * the whole tmr_* family through its PLT, so the executable defines the
 * family here and the dynamic linker binds libre's calls to these
 * definitions.  Checked against Debian's libre 1.1.0 (configure verifies
 * that libre.so still calls tmr_start through its PLT).
 *
 * Structure
 *
 *   Eleven levels of 64 slots; level k slot s holds timers whose expiry
 *   agrees with the last processed tick ("last") in every bit above group
 *   k (bits 6k..6k+5) and has s in group k.  A timer's level is the group
 *   of the highest bit in which its expiry differs from last, so 66 bits
 *   cover every uint64_t expiry: no far list, no overflow.  A timer is
 *   threaded through its slot by struct tmr's own le, so start and cancel
 *   are O(1) and allocate nothing.  A 64-bit occupancy mask per level
 *   finds the next slot with one ctz; ticks without work are skipped, so
 *   an idle hour costs nothing.  When time reaches a slot of level k >= 1
 *   its timers move down ("cascade"), each at most once per level.
 *
 * Semantics kept from libre's tmr.c
 *
 *   - Handlers run in expiry order; equal expiries run in start order
 *     (a restart counts as a new start).  Cascading keeps this order: all
 *     pending timers of one expiry always share one slot, appended in
 *     start order.
 *   - tmr_start(t, 0, h, a) runs h on the next tmr_poll().
 *   - Restarting a pending timer moves it; tmr_start(t, d, NULL, NULL)
 *     and tmr_cancel(t) stop it.  t->th is non-NULL exactly while the
 *     timer is pending, so tmr_isrunning() stays correct; t->th is NULL
 *     when its handler runs.
 *   - A handler may start or cancel any timer, itself included.
 *
 * Timers started from inside a handler
 *
 *   tmr_poll() reads the clock once ("now") and processes, in order, the
 *   timers that were overdue before it started and then each tick from
 *   last + 1 up to now, each tick once.  A timer (re)started by a handler
 *   runs in the same pass only if its expiry is a tick later than the one
 *   being processed and not later than now; an expiry at or before the
 *   tick being processed goes to the overdue list, which the next
 *   tmr_poll() runs first.  So a handler that re-arms itself with delay 0
 *   runs at most once per remaining tick of the pass (in practice once or
 *   twice) and can never spin inside one tmr_poll(); tmr_next_timeout()
 *   returns 1 for it, so re_main comes back after 1 ms.
 *
 * Time base
 *
 *   tmr_jiffies() is CLOCK_MONOTONIC in milliseconds, not gettimeofday()
 *   as in libre: a wall-clock step (NTP, an operator) must neither fire
 *   a call's duration cut-off early nor delay it.  Its epoch is arbitrary
 *   (boot), so tmr_jiffies() values are only good for differences.
 *
 * tmr_next_timeout()
 *
 *   Returns the ms until the earliest expiry, 1 if a timer is overdue and
 *   0 only if no timer is pending.  Each slot keeps the lowest expiry ever
 *   linked into it since it was last empty.  That is exact unless the
 *   timer holding it was cancelled; then it is earlier, never later, and
 *   costs one extra wake-up: the tmr_poll() at that time cascades the
 *   slot (its first tick has passed) and the bound is exact again.  The
 *   result is capped at INT_MAX because re_main casts it to int for
 *   epoll_wait().
 *
 * Threads
 *
 *   Every thread has its own wheel (thread-local storage), as libre keeps
 *   one timer list per thread (re_thread_init).  The struct list argument
 *   of tmr_poll() and tmr_next_timeout() is libre's own, always empty now,
 *   and is ignored.  A timer belongs to the thread that started it; a
 *   thread must not restart or cancel a timer pending in another thread's
 *   wheel: that call is refused with a warning, never carried out.  A
 *   thread must stop its timers before it exits.
 *
 *   One difference from libre: there, a thread without re_thread_init()
 *   shares the main loop's timer list (meant for use between
 *   re_thread_enter() and re_thread_leave()).  Here its timers go to its
 *   own wheel, which only its own tmr_poll() runs.  Such a thread hands
 *   work to the main thread through mqueue instead.
 */

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <re.h>
#include "core.h"

#define DEBUG_MODULE "tmr"
#define DEBUG_LEVEL 5
#include <re_dbg.h>


enum {
	WHEEL_BITS   = 6,
	WHEEL_SLOTS  = 1 << WHEEL_BITS,
	WHEEL_LEVELS = 11,          /* 11 * 6 = 66 bits >= 64 bits     */
	STATUS_MAX   = 100,         /* timers printed by tmr_status()  */
};


/** One slot of the wheel */
struct wheel_slot {
	struct list l;              /**< struct tmr, in start order      */
	uint64_t min;               /**< <= every expiry in l, see below */
};

/** The timers of one thread */
struct wheel {
	struct wheel_slot slot[WHEEL_LEVELS][WHEEL_SLOTS];
	uint64_t occ[WHEEL_LEVELS]; /**< bit s set: slot s not empty     */
	struct list overdue;        /**< expiry <= last, for next poll   */
	struct list due;            /**< being run by tmr_poll()         */
	uint64_t last;              /**< last processed tick [ms]        */
	bool ready;                 /**< last has been set               */
	bool polling;               /**< inside tmr_poll()               */
	struct tmr_wheel_stats st;
};


static _Thread_local struct wheel wheel;
static _Thread_local uint64_t jiffies_last;


static struct wheel *wheel_get(void)
{
	struct wheel *w = &wheel;

	if (!w->ready) {
		w->last  = tmr_jiffies();
		w->ready = true;
	}

	return w;
}


/* The slot a timer's list pointer belongs to, NULL if not a slot */
static struct wheel_slot *wheel_slot_of(struct wheel *w,
					const struct list *l,
					unsigned *lvlp, unsigned *idxp)
{
	const uintptr_t base = (uintptr_t)&w->slot[0][0];
	const uintptr_t p = (uintptr_t)l;
	size_t n;

	if (p < base || p >= base + sizeof(w->slot))
		return NULL;

	if ((p - base) % sizeof(struct wheel_slot))
		return NULL;

	n = (p - base) / sizeof(struct wheel_slot);
	*lvlp = (unsigned)(n / WHEEL_SLOTS);
	*idxp = (unsigned)(n % WHEEL_SLOTS);

	return &w->slot[*lvlp][*idxp];
}


static bool wheel_owns(struct wheel *w, const struct list *l)
{
	unsigned lvl, idx;

	if (!l)
		return false;

	if (l == &w->overdue || l == &w->due)
		return true;

	return wheel_slot_of(w, l, &lvl, &idx) != NULL;
}


/* First tick of slot s of level lvl, relative to last */
static uint64_t wheel_slot_tick(uint64_t last, unsigned lvl, unsigned s)
{
	const unsigned shift = lvl * WHEEL_BITS;
	const unsigned above = shift + WHEEL_BITS;
	uint64_t hi = 0;

	if (above < 64)
		hi = (last >> above) << above;

	return hi | ((uint64_t)s << shift);
}


/* Lowest level with a pending timer, or -1 */
static int wheel_lowest(const struct wheel *w)
{
	int lvl;

	for (lvl = 0; lvl < WHEEL_LEVELS; lvl++) {
		if (w->occ[lvl])
			return lvl;
	}

	return -1;
}


/* Link a timer (th, jfs set) into the slot or list it belongs to */
static void wheel_link(struct wheel *w, struct tmr *t)
{
	const uint64_t e = t->jfs;
	struct wheel_slot *slot;
	unsigned lvl, s;

	if (e <= w->last) {
		list_append(&w->overdue, &t->le, t);
		return;
	}

	lvl = (unsigned)(63 - __builtin_clzll(e ^ w->last)) / WHEEL_BITS;
	s   = (unsigned)(e >> (lvl * WHEEL_BITS)) & (WHEEL_SLOTS - 1);
	slot = &w->slot[lvl][s];

	if (!slot->l.head) {
		slot->min = e;
		w->occ[lvl] |= (uint64_t)1 << s;
	}
	else if (e < slot->min) {
		slot->min = e;
	}

	list_append(&slot->l, &t->le, t);
}


/* Unlink a pending timer of this wheel; its th is left to the caller */
static void wheel_unlink(struct wheel *w, struct tmr *t)
{
	struct wheel_slot *slot;
	unsigned lvl, s;

	slot = wheel_slot_of(w, t->le.list, &lvl, &s);

	list_unlink(&t->le);
	--w->st.live;

	/* slot->min stays: still a lower bound, exact again after the
	 * slot has been cascaded */
	if (slot && !slot->l.head)
		w->occ[lvl] &= ~((uint64_t)1 << s);
}


/* Run every timer of list l, in order, until l is empty */
static void wheel_run(struct wheel *w, struct list *l)
{
	struct le *le;

	while ((le = l->head)) {
		struct tmr *t = le->data;
		tmr_h *th = t->th;
		void *arg = t->arg;

		wheel_unlink(w, t);
		t->th = NULL;

		if (!th)
			continue;

		++w->st.fired;
		th(arg);
	}
}


/* Process one slot whose first tick is tick (w->last already = tick) */
static void wheel_expire(struct wheel *w, unsigned lvl, unsigned s,
			 uint64_t tick)
{
	struct wheel_slot *slot = &w->slot[lvl][s];
	struct le *le;

	if (lvl == 0) {
		/* every timer here expires at tick; no handler can add one
		 * to this slot since its expiry would be <= last */
		wheel_run(w, &slot->l);
		return;
	}

	/* cascade: re-link each timer relative to the new last, in order */
	w->occ[lvl] &= ~((uint64_t)1 << s);

	while ((le = slot->l.head)) {
		struct tmr *t = le->data;

		list_unlink(le);

		if (t->jfs == tick)
			list_append(&w->due, le, t);
		else
			wheel_link(w, t);
	}

	wheel_run(w, &w->due);
}


/**
 * Run the handlers of all due timers of the calling thread
 *
 * @param tmrl libre's timer list (ignored)
 */
void tmr_poll(struct list *tmrl)
{
	struct wheel *w = wheel_get();
	struct le *le;
	uint64_t now;

	(void)tmrl;

	if (w->polling)
		return;

	w->polling = true;
	now = tmr_jiffies();

	/* timers that were due before this pass began, in order */
	while ((le = w->overdue.head)) {
		list_unlink(le);
		list_append(&w->due, le, le->data);
	}
	wheel_run(w, &w->due);

	for (;;) {
		int lvl = wheel_lowest(w);
		unsigned s;
		uint64_t tick;

		if (lvl < 0)
			break;

		s = (unsigned)__builtin_ctzll(w->occ[lvl]);
		tick = wheel_slot_tick(w->last, (unsigned)lvl, s);
		if (tick > now)
			break;

		w->last = tick;
		wheel_expire(w, (unsigned)lvl, s, tick);
	}

	/* no slot starts at or before now: skipping to now keeps every
	 * timer at its level */
	if (w->last < now)
		w->last = now;

	w->polling = false;
}


/**
 * Get the timer jiffies in milliseconds (CLOCK_MONOTONIC)
 *
 * @return Jiffies in [ms]
 */
uint64_t tmr_jiffies(void)
{
	struct timespec ts;
	uint64_t jfs;

	if (clock_gettime(CLOCK_MONOTONIC, &ts)) {
		DEBUG_WARNING("jiffies: clock_gettime failed (%m)\n", errno);
		return jiffies_last;
	}

	jfs  = (uint64_t)ts.tv_sec * 1000;
	jfs += (uint64_t)ts.tv_nsec / 1000000;

	if (jfs < jiffies_last)
		jfs = jiffies_last;

	jiffies_last = jfs;

	return jfs;
}


/**
 * Get number of milliseconds until the next timer of the calling thread
 *
 * @param tmrl libre's timer list (ignored)
 *
 * @return ms until the earliest expiry (may be earlier, never later),
 *         1 if a timer is overdue, 0 if no timer is pending
 */
uint64_t tmr_next_timeout(struct list *tmrl)
{
	struct wheel *w = wheel_get();
	uint64_t bound, now;
	int lvl;

	(void)tmrl;

	if (w->overdue.head || w->due.head)
		return 1;

	lvl = wheel_lowest(w);
	if (lvl < 0)
		return 0;

	/* the lowest slot of the lowest level holds the earliest expiry */
	bound = w->slot[lvl][__builtin_ctzll(w->occ[lvl])].min;

	now = tmr_jiffies();
	if (bound <= now)
		return 1;

	return MIN(bound - now, (uint64_t)INT_MAX);
}


static int status_print(struct re_printf *pf, const struct list *l,
			uint64_t now, uint32_t *np)
{
	const struct le *le;
	int err = 0;

	for (le = l->head; le && *np < STATUS_MAX; le = le->next) {
		const struct tmr *t = le->data;

		err |= re_hprintf(pf, "  %p: th=%p expire=%llums\n",
				  t, t->th, (unsigned long long)
				  (t->jfs > now ? t->jfs - now : 0));
		++*np;
	}

	return err;
}


/**
 * Print the pending timers of the calling thread, earliest first
 *
 * @param pf     Print handler
 * @param unused Unused
 *
 * @return 0 if success, otherwise errorcode
 */
int tmr_status(struct re_printf *pf, void *unused)
{
	struct wheel *w = wheel_get();
	const uint64_t now = tmr_jiffies();
	uint32_t n = 0;
	unsigned lvl, s;
	int err;

	(void)unused;

	if (!w->st.live)
		return 0;

	err = re_hprintf(pf, "Timers (%llu):\n",
			 (unsigned long long)w->st.live);

	err |= status_print(pf, &w->due, now, &n);
	err |= status_print(pf, &w->overdue, now, &n);

	/* slots at or below last's index of a level are always empty, so
	 * index order is expiry order */
	for (lvl = 0; lvl < WHEEL_LEVELS; lvl++) {
		for (s = 0; s < WHEEL_SLOTS; s++)
			err |= status_print(pf, &w->slot[lvl][s].l, now, &n);
	}

	if (w->st.live > n) {
		err |= re_hprintf(pf, "    (%llu more not shown)\n",
				  (unsigned long long)(w->st.live - n));
	}

	return err;
}


/**
 * Print the pending timers of the calling thread to stderr
 */
void tmr_debug(void)
{
	if (wheel_get()->st.live)
		(void)re_fprintf(stderr, "%H", tmr_status, NULL);
}


/**
 * Initialise a timer object
 *
 * @param tmr Timer to initialise
 */
void tmr_init(struct tmr *tmr)
{
	if (!tmr)
		return;

	memset(tmr, 0, sizeof(*tmr));
}


/**
 * Start, restart or (with th == NULL) stop a timer
 *
 * @param tmr   Timer to start
 * @param delay Timer delay in [ms]; saturates at the end of time
 * @param th    Timeout handler, NULL to stop the timer
 * @param arg   Handler argument
 */
void tmr_start(struct tmr *tmr, uint64_t delay, tmr_h *th, void *arg)
{
	struct wheel *w;
	uint64_t now;

	if (!tmr)
		return;

	w = wheel_get();

	if (tmr->th) {
		if (!wheel_owns(w, tmr->le.list)) {
			DEBUG_WARNING("timer %p is pending in another thread's"
				      " wheel: left alone\n", tmr);
			return;
		}

		wheel_unlink(w, tmr);
	}

	tmr->th  = th;
	tmr->arg = arg;

	if (!th)
		return;

	now = tmr_jiffies();
	tmr->jfs = delay > UINT64_MAX - now ? UINT64_MAX : now + delay;

	wheel_link(w, tmr);
	++w->st.started;
	++w->st.live;
}


/**
 * Cancel an active timer
 *
 * @param tmr Timer to cancel
 */
void tmr_cancel(struct tmr *tmr)
{
	tmr_start(tmr, 0, NULL, NULL);
}


/**
 * Get the time left until timer expires
 *
 * @param tmr Timer object
 *
 * @return Time in [ms] until expiration, 0 if not pending or overdue
 */
uint64_t tmr_get_expire(const struct tmr *tmr)
{
	uint64_t now;

	if (!tmr || !tmr->th)
		return 0;

	now = tmr_jiffies();

	return tmr->jfs > now ? tmr->jfs - now : 0;
}


/**
 * Get the statistics of the calling thread's timer wheel
 *
 * @param st Statistics, filled in
 */
void tmr_wheel_stats(struct tmr_wheel_stats *st)
{
	if (!st)
		return;

	*st = wheel_get()->st;
}
