/**
 * @file gwstate.c  A gateway's health as a state machine of its own:
 *                  probe results and INVITE outcomes in, up/down out
 *
 * Pure: no timers, no SIP, no clock.  b2bua/gateway.c feeds it and acts
 * on the changes it reports (routing, log line, counters).
 *
 * The rules:
 *   - a gateway without probing is UNPROBED and stays so: always usable;
 *   - a probed gateway starts UP (a restart does not take the routes
 *     away; the first probe goes out at once);
 *   - UP -> DOWN after `fail` failed probes in a row, or after `burst`
 *     INVITEs in a row that failed with 503, 408, a timeout or a
 *     transport error (burst 0: never);
 *   - DOWN -> UP after `recover` good probes in a row; INVITE outcomes
 *     do not bring a gateway back.
 * A probe is good when any final answer but 503 and 408 comes within the
 * probe timeout; a 503, a 408, no answer or a request that could not be
 * sent is a failure.
 */

#include <re.h>
#include "b2bua_int.h"


void gw_fsm_init(struct gw_fsm *f, const struct cfg_gw_health *h)
{
	f->st = h->probe ? B2BUA_GW_UP : B2BUA_GW_UNPROBED;
	f->fail_run = 0;
	f->ok_run = 0;
	f->burst_run = 0;
}


/** Is a probe's outcome good (err: no answer; else its final code)? */
bool gw_probe_good(int err, uint16_t scode)
{
	if (err)
		return false;

	return scode >= 200 && scode != 503 && scode != 408;
}


/** Does an INVITE's outcome count toward a burst of failures? */
bool gw_invite_overload(int err, uint16_t scode)
{
	return err || scode == 503 || scode == 408;
}


static enum gw_change go(struct gw_fsm *f, enum b2bua_gw_state st)
{
	f->st = st;
	f->fail_run = 0;
	f->ok_run = 0;
	f->burst_run = 0;

	return st == B2BUA_GW_UP ? GW_WENT_UP : GW_WENT_DOWN;
}


/** A probe ended, good or not */
enum gw_change gw_fsm_probe(struct gw_fsm *f, const struct cfg_gw_health *h,
			    bool good)
{
	switch (f->st) {

	case B2BUA_GW_UP:
		if (good) {
			f->fail_run = 0;
			return GW_SAME;
		}
		if (++f->fail_run >= h->fail)
			return go(f, B2BUA_GW_DOWN);
		return GW_SAME;

	case B2BUA_GW_DOWN:
		if (!good) {
			f->ok_run = 0;
			return GW_SAME;
		}
		if (++f->ok_run >= h->recover)
			return go(f, B2BUA_GW_UP);
		return GW_SAME;

	default:
		return GW_SAME;
	}
}


/**
 * An INVITE to the gateway got its final outcome; overload: 503, 408,
 * timeout or transport error (gw_invite_overload())
 */
enum gw_change gw_fsm_invite(struct gw_fsm *f, const struct cfg_gw_health *h,
			     bool overload)
{
	if (f->st != B2BUA_GW_UP || !h->burst)
		return GW_SAME;

	if (!overload) {
		f->burst_run = 0;
		return GW_SAME;
	}

	if (++f->burst_run >= h->burst)
		return go(f, B2BUA_GW_DOWN);

	return GW_SAME;
}
