/**
 * @file callinfo.c  Prepaid billing: what a running call holds and spent
 *
 * Read-only view of the engine's state of one call, for the REST API.
 */

#include <string.h>
#include "billing_int.h"


/**
 * Money and time of a running call as the engine sees it now
 *
 * @param bl    the engine
 * @param call  the call
 * @param info  filled in
 *
 * @return 0, EINVAL (no engine), or ENOENT if billing does not hold the
 *         call
 */
int billing_call_info(const struct billing *bl, const struct b2bua_call *call,
		      struct billing_call_info *info)
{
	const struct bcall *bc;
	uint64_t now = tmr_jiffies(), d = 0;
	int64_t cost = 0;

	if (!info)
		return EINVAL;

	memset(info, 0, sizeof(*info));
	info->seconds_left = -1;

	if (!bl || !call)
		return EINVAL;

	bc = b2bua_call_udata(call, bl->slot);
	if (!bc)
		return ENOENT;

	info->authorized = bc->authorized;
	info->answered = bc->answered;
	info->exhausted = bc->exhausted;
	info->rate_id = bc->rate.id;
	info->reserved = bc->reserved;

	if (!bc->answered)
		return 0;

	d = rate_seconds(now > bc->answer_jif ? now - bc->answer_jif : 0);
	if (d > (uint64_t)bc->funded_s)
		d = (uint64_t)bc->funded_s;

	if (!rate_call(&cost, NULL, &bc->rate, d))
		info->spent = cost > bc->reserved ? bc->reserved : cost;

	info->seconds = (now > bc->answer_jif ? now - bc->answer_jif : 0) /
		1000;
	info->seconds_left = bc->cut_jif > now ?
		(int64_t)((bc->cut_jif - now) / 1000) : 0;
	info->cutoff_ms = bc->cut_jif > now ? bc->cut_jif - now : 0;

	return 0;
}
