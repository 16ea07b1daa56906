/**
 * @file test_gwstate.c  A gateway's up/down state machine (b2bua/gwstate.c)
 *
 * The thresholds exactly: `fail` failed probes in a row take a probed
 * gateway down and one fewer does not, a good probe in between starts the
 * count again; `recover` good probes in a row bring it back, a failure in
 * between starts again; a burst of `burst` INVITEs failed with 503, 408
 * or no answer takes it down, any other outcome in between starts again,
 * burst 0 never does; INVITEs never bring a gateway back; a gateway
 * without probing never changes.  And which answers count as what.
 */

#include <errno.h>
#include <re.h>
#include "b2bua_int.h"
#include "check.h"


static const struct cfg_gw_health probed = {
	.probe = 5, .probe_timeout = 1000, .fail = 3, .recover = 2,
	.burst = 4,
};


static void test_answers(void)
{
	CHECK(gw_probe_good(0, 200));
	CHECK(gw_probe_good(0, 404));
	CHECK(gw_probe_good(0, 405));
	CHECK(gw_probe_good(0, 500));
	CHECK(gw_probe_good(0, 603));
	CHECK(!gw_probe_good(0, 503));
	CHECK(!gw_probe_good(0, 408));
	CHECK(!gw_probe_good(0, 100));
	CHECK(!gw_probe_good(ETIMEDOUT, 0));
	CHECK(!gw_probe_good(ECONNREFUSED, 0));

	CHECK(gw_invite_overload(0, 503));
	CHECK(gw_invite_overload(0, 408));
	CHECK(gw_invite_overload(ETIMEDOUT, 0));
	CHECK(gw_invite_overload(ECONNREFUSED, 0));
	CHECK(!gw_invite_overload(0, 200));
	CHECK(!gw_invite_overload(0, 486));
	CHECK(!gw_invite_overload(0, 500));
	CHECK(!gw_invite_overload(0, 502));
}


static void test_probes(void)
{
	struct gw_fsm f;

	gw_fsm_init(&f, &probed);
	CHECK(f.st == B2BUA_GW_UP);

	/* two failures, a good one: the count starts again */
	CHECK(gw_fsm_probe(&f, &probed, false) == GW_SAME);
	CHECK(gw_fsm_probe(&f, &probed, false) == GW_SAME);
	CHECK(gw_fsm_probe(&f, &probed, true) == GW_SAME);
	CHECK(gw_fsm_probe(&f, &probed, false) == GW_SAME);
	CHECK(gw_fsm_probe(&f, &probed, false) == GW_SAME);
	CHECK(f.st == B2BUA_GW_UP);

	/* the third in a row */
	CHECK(gw_fsm_probe(&f, &probed, false) == GW_WENT_DOWN);
	CHECK(f.st == B2BUA_GW_DOWN);
	CHECK(gw_fsm_probe(&f, &probed, false) == GW_SAME);

	/* one good, one failed, then two good */
	CHECK(gw_fsm_probe(&f, &probed, true) == GW_SAME);
	CHECK(gw_fsm_probe(&f, &probed, false) == GW_SAME);
	CHECK(gw_fsm_probe(&f, &probed, true) == GW_SAME);
	CHECK(f.st == B2BUA_GW_DOWN);
	CHECK(gw_fsm_probe(&f, &probed, true) == GW_WENT_UP);
	CHECK(f.st == B2BUA_GW_UP);

	/* back up, the failures count from zero */
	CHECK(gw_fsm_probe(&f, &probed, false) == GW_SAME);
	CHECK(gw_fsm_probe(&f, &probed, false) == GW_SAME);
	CHECK(f.st == B2BUA_GW_UP);
}


static void test_burst(void)
{
	struct cfg_gw_health h = probed;
	struct gw_fsm f;
	int i;

	gw_fsm_init(&f, &h);

	for (i = 0; i < 3; i++)
		CHECK(gw_fsm_invite(&f, &h, true) == GW_SAME);
	CHECK(gw_fsm_invite(&f, &h, false) == GW_SAME);
	for (i = 0; i < 3; i++)
		CHECK(gw_fsm_invite(&f, &h, true) == GW_SAME);
	CHECK(f.st == B2BUA_GW_UP);
	CHECK(gw_fsm_invite(&f, &h, true) == GW_WENT_DOWN);
	CHECK(f.st == B2BUA_GW_DOWN);

	/* answered INVITEs of calls still running do not bring it back */
	for (i = 0; i < 5; i++)
		CHECK(gw_fsm_invite(&f, &h, false) == GW_SAME);
	CHECK(f.st == B2BUA_GW_DOWN);

	/* probes do, after recover in a row */
	CHECK(gw_fsm_probe(&f, &h, true) == GW_SAME);
	CHECK(gw_fsm_probe(&f, &h, true) == GW_WENT_UP);

	/* a good probe between INVITE failures starts no count again */
	CHECK(gw_fsm_invite(&f, &h, true) == GW_SAME);
	CHECK(gw_fsm_probe(&f, &h, true) == GW_SAME);
	CHECK(gw_fsm_invite(&f, &h, true) == GW_SAME);
	CHECK(gw_fsm_invite(&f, &h, true) == GW_SAME);
	CHECK(gw_fsm_invite(&f, &h, true) == GW_WENT_DOWN);

	/* burst 0: never */
	h.burst = 0;
	gw_fsm_init(&f, &h);
	for (i = 0; i < 100; i++)
		CHECK(gw_fsm_invite(&f, &h, true) == GW_SAME);
	CHECK(f.st == B2BUA_GW_UP);
}


static void test_thresholds_one(void)
{
	const struct cfg_gw_health h = {
		.probe = 1, .probe_timeout = 500, .fail = 1, .recover = 1,
		.burst = 1,
	};
	struct gw_fsm f;

	gw_fsm_init(&f, &h);
	CHECK(gw_fsm_probe(&f, &h, false) == GW_WENT_DOWN);
	CHECK(gw_fsm_probe(&f, &h, true) == GW_WENT_UP);
	CHECK(gw_fsm_invite(&f, &h, true) == GW_WENT_DOWN);
	CHECK(gw_fsm_probe(&f, &h, true) == GW_WENT_UP);
}


static void test_unprobed(void)
{
	const struct cfg_gw_health h = { .fail = 1, .recover = 1,
					 .burst = 1 };
	struct gw_fsm f;
	int i;

	gw_fsm_init(&f, &h);
	CHECK(f.st == B2BUA_GW_UNPROBED);
	for (i = 0; i < 10; i++) {
		CHECK(gw_fsm_invite(&f, &h, true) == GW_SAME);
		CHECK(gw_fsm_probe(&f, &h, false) == GW_SAME);
	}
	CHECK(f.st == B2BUA_GW_UNPROBED);
}


int main(void)
{
	test_answers();
	test_probes();
	test_burst();
	test_thresholds_one();
	test_unprobed();

	return check_report("test_gwstate");
}
