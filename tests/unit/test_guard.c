/**
 * @file test_guard.c  Authentication-failure blocks (b2bua/guard.c) and
 *                     digest nonces (b2bua/nonce.c)
 *
 * The blocks on the real clock with blocks of one and two seconds: the
 * limit, the window, the doubling, the lift, the user name and the source
 * counted apart; then nonces bound to the source and each count taken
 * once.
 */

#include <string.h>
#include <time.h>
#include <re.h>
#include "b2bua_int.h"
#include "check.h"


struct seen {
	unsigned n;
	uint64_t id[8];
	enum b2bua_block_kind kind[8];
	uint64_t dur_ms[8];
	bool blocked[8];
};


static bool seen_h(const struct b2bua_block *blk, void *arg)
{
	struct seen *s = arg;

	if (s->n < 8) {
		s->id[s->n] = blk->id;
		s->kind[s->n] = blk->kind;
		s->blocked[s->n] = blk->blocked;
		s->dur_ms[s->n] = blk->until_ms - blk->since_ms;
		++s->n;
	}

	return false;
}


static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	(void)nanosleep(&ts, NULL);
}


static void test_blocks(void)
{
	struct b2bua_conf cfg;
	struct b2bua b;
	struct sa src, other;
	struct seen s;
	unsigned i;

	memset(&cfg, 0, sizeof(cfg));
	memset(&b, 0, sizeof(b));
	cfg.auth_fail_limit = 3;
	cfg.auth_fail_window = 60;
	cfg.auth_block_time = 1;
	cfg.auth_block_max = 2;
	b.cfg = &cfg;
	CHECK(0 == guard_alloc(&b.guard, &b));
	(void)sa_set_str(&src, "192.0.2.1", 5060);
	(void)sa_set_str(&other, "192.0.2.2", 5060);

	/* below the limit: nothing blocked */
	guard_fail(b.guard, &src, "bob");
	guard_fail(b.guard, &src, "bob");
	CHECK(!guard_src_blocked(b.guard, &src));
	CHECK(!guard_user_blocked(b.guard, "bob"));
	memset(&s, 0, sizeof(s));
	b2bua_block_apply(&b, true, seen_h, &s);
	CHECK(s.n == 0);
	memset(&s, 0, sizeof(s));
	b2bua_block_apply(&b, false, seen_h, &s);
	CHECK(s.n == 2);

	/* the limit blocks the source and the user name, not others */
	guard_fail(b.guard, &src, "bob");
	CHECK(guard_src_blocked(b.guard, &src));
	CHECK(guard_user_blocked(b.guard, "bob"));
	CHECK(!guard_src_blocked(b.guard, &other));
	CHECK(!guard_user_blocked(b.guard, "alice"));
	CHECK(b.st.auth_failures == 3);
	CHECK(b.st.auth_blocks == 2);
	CHECK(b.st.auth_blocked == 2);
	memset(&s, 0, sizeof(s));
	b2bua_block_apply(&b, true, seen_h, &s);
	CHECK(s.n == 2);
	CHECK(s.dur_ms[0] >= 990 && s.dur_ms[0] <= 1010);

	/* failures while blocked do not lengthen it; the block ends */
	for (i = 0; i < 5; i++)
		guard_fail(b.guard, &src, NULL);
	sleep_ms(1100);
	CHECK(!guard_src_blocked(b.guard, &src));
	CHECK(!guard_user_blocked(b.guard, "bob"));

	/* the second block lasts twice as long (auth_block_max: 2 s) */
	for (i = 0; i < 3; i++)
		guard_fail(b.guard, &src, NULL);
	CHECK(guard_src_blocked(b.guard, &src));
	CHECK(!guard_user_blocked(b.guard, "bob"));
	memset(&s, 0, sizeof(s));
	b2bua_block_apply(&b, true, seen_h, &s);
	CHECK(s.n == 1);
	CHECK(s.kind[0] == B2BUA_BLOCK_SOURCE);
	CHECK(s.dur_ms[0] >= 1990 && s.dur_ms[0] <= 2010);

	/* lifted: gone, its failures forgotten */
	CHECK(0 == b2bua_block_lift(&b, s.id[0]));
	CHECK(ENOENT == b2bua_block_lift(&b, s.id[0]));
	CHECK(!guard_src_blocked(b.guard, &src));
	guard_fail(b.guard, &src, NULL);
	CHECK(!guard_src_blocked(b.guard, &src));

	/* a user name that is not printable ASCII is not tracked */
	for (i = 0; i < 3; i++)
		guard_fail(b.guard, &other, "ev\nil");
	CHECK(!guard_user_blocked(b.guard, "ev\nil"));
	CHECK(guard_src_blocked(b.guard, &other));
	memset(&s, 0, sizeof(s));
	b2bua_block_apply(&b, true, seen_h, &s);
	CHECK(s.n == 1);
	CHECK(0 == b2bua_block_lift(&b, s.id[0]));

	/* limit 0: never blocked */
	cfg.auth_fail_limit = 0;
	for (i = 0; i < 20; i++)
		guard_fail(b.guard, &other, "carol");
	CHECK(!guard_src_blocked(b.guard, &other));
	CHECK(!guard_user_blocked(b.guard, "carol"));

	mem_deref(b.guard);
}


static void test_nonces(void)
{
	struct b2bua_conf cfg;
	struct b2bua b;
	struct sa src, other;
	char n1[64], n2[64];
	struct pl p1, p2;
	uint64_t now = tmr_jiffies() / 1000;

	memset(&cfg, 0, sizeof(cfg));
	memset(&b, 0, sizeof(b));
	cfg.nonce_ttl = 300;
	b.cfg = &cfg;
	rand_bytes(b.nonce_key, sizeof(b.nonce_key));
	CHECK(0 == nonce_alloc(&b));
	(void)sa_set_str(&src, "192.0.2.1", 5060);
	(void)sa_set_str(&other, "192.0.2.2", 5060);

	CHECK(0 == nonce_make(n1, sizeof(n1), &b, &src, now, rand_u64()));
	CHECK(0 == nonce_make(n2, sizeof(n2), &b, &src, now, rand_u64()));
	CHECK(strcmp(n1, n2) != 0);
	pl_set_str(&p1, n1);
	pl_set_str(&p2, n2);

	/* bound to the source, expiring, not forgeable */
	CHECK(0 == nonce_check(&b, &p1, &src));
	CHECK(EAUTH == nonce_check(&b, &p1, &other));
	n2[30] = n2[30] == '0' ? '1' : '0';
	CHECK(EAUTH == nonce_check(&b, &p2, &src));
	CHECK(0 == nonce_make(n2, sizeof(n2), &b, &src, now - 301, 7));
	pl_set_str(&p2, n2);
	CHECK(ETIMEDOUT == nonce_check(&b, &p2, &src));

	/* each count once, growing */
	CHECK(!nonce_seen(&b, &p1, 1));
	CHECK(0 == nonce_take(&b, &p1, 1));
	CHECK(nonce_seen(&b, &p1, 1));
	CHECK(EALREADY == nonce_take(&b, &p1, 1));
	CHECK(!nonce_seen(&b, &p1, 2));
	CHECK(0 == nonce_take(&b, &p1, 3));
	CHECK(EALREADY == nonce_take(&b, &p1, 2));

	mem_deref(b.nonces);
}


int main(void)
{
	test_nonces();
	test_blocks();

	return check_report("test_guard");
}
