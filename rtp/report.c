/**
 * @file report.c  A call's media statistics as JSON (the CDR's media column)
 *
 *   {"streams":[{"media":"audio","caller":"IP:PORT","caller_latched":true,
 *     "gateway":"IP:PORT","gateway_latched":true,
 *     "to_gateway":{"packets":..,"bytes":..,"lost":..,"jitter_us":..,
 *                   "rtcp_packets":..,"dropped":..,"foreign_dropped":..,
 *                   "rtcp_report":{"fraction_lost":..,"lost":..,
 *                                  "jitter_us":..}},
 *     "to_caller":{...}}]}
 *
 * "rtcp_report" only when the receiver's RTCP said something.
 */

#include <re.h>
#include "relay.h"
#include "relay_int.h"


static int dir_add(struct odict *od, const char *key,
		   const struct relay_dir_stats *d)
{
	struct odict *o = NULL, *rr = NULL;
	int err;

	err = odict_alloc(&o, 8);
	if (err)
		return err;

	err  = odict_entry_add(o, "packets", ODICT_INT, (int64_t)d->packets);
	err |= odict_entry_add(o, "bytes", ODICT_INT, (int64_t)d->bytes);
	err |= odict_entry_add(o, "lost", ODICT_INT, (int64_t)d->lost);
	err |= odict_entry_add(o, "jitter_us", ODICT_INT,
			       (int64_t)d->jitter_us);
	err |= odict_entry_add(o, "rtcp_packets", ODICT_INT,
			       (int64_t)d->rtcp_packets);
	err |= odict_entry_add(o, "dropped", ODICT_INT, (int64_t)d->dropped);
	err |= odict_entry_add(o, "foreign_dropped", ODICT_INT,
			       (int64_t)d->foreign);
	if (err)
		goto out;

	if (d->rr_valid) {
		err = odict_alloc(&rr, 4);
		if (err)
			goto out;

		err  = odict_entry_add(rr, "fraction_lost", ODICT_INT,
				       (int64_t)d->rr_fraction);
		err |= odict_entry_add(rr, "lost", ODICT_INT,
				       (int64_t)d->rr_lost);
		err |= odict_entry_add(rr, "jitter_us", ODICT_INT,
				       (int64_t)d->rr_jitter_us);
		err |= odict_entry_add(o, "rtcp_report", ODICT_OBJECT, rr);
		if (err)
			goto out;
	}

	err = odict_entry_add(od, key, ODICT_OBJECT, o);

 out:
	mem_deref(rr);
	mem_deref(o);

	return err;
}


static int stream_add(struct odict *arr, unsigned i,
		      const struct relay_stream_stats *st)
{
	struct odict *o;
	char key[8], caller[64], gateway[64];
	int err;

	err = odict_alloc(&o, 8);
	if (err)
		return err;

	(void)re_snprintf(key, sizeof(key), "%u", i);
	(void)re_snprintf(caller, sizeof(caller), "%J", &st->caller);
	(void)re_snprintf(gateway, sizeof(gateway), "%J", &st->gateway);

	err  = odict_entry_add(o, "media", ODICT_STRING, st->media);
	err |= odict_entry_add(o, "caller", ODICT_STRING, caller);
	err |= odict_entry_add(o, "caller_latched", ODICT_BOOL,
			       st->caller_latched);
	err |= odict_entry_add(o, "gateway", ODICT_STRING, gateway);
	err |= odict_entry_add(o, "gateway_latched", ODICT_BOOL,
			       st->gateway_latched);
	if (!err)
		err = dir_add(o, "to_gateway", &st->to_gateway);
	if (!err)
		err = dir_add(o, "to_caller", &st->to_caller);
	if (!err)
		err = odict_entry_add(arr, key, ODICT_OBJECT, o);

	mem_deref(o);

	return err;
}


/**
 * Encode the statistics of a call's streams as JSON
 *
 * @param jsonp  The JSON text (allocated)
 * @param v      The streams
 * @param n      How many
 *
 * @return 0 or an errno
 */
int media_report_json(char **jsonp, const struct relay_stream_stats *v,
		      unsigned n)
{
	struct odict *od = NULL, *arr = NULL;
	unsigned i;
	int err;

	if (!jsonp || (n && !v))
		return EINVAL;

	err  = odict_alloc(&od, 4);
	err |= odict_alloc(&arr, 8);
	if (err)
		goto out;

	for (i = 0; i < n && !err; i++)
		err = stream_add(arr, i, &v[i]);
	if (err)
		goto out;

	err = odict_entry_add(od, "streams", ODICT_ARRAY, arr);
	if (err)
		goto out;

	err = re_sdprintf(jsonp, "%H", json_encode_odict, od);

 out:
	mem_deref(arr);
	mem_deref(od);

	return err;
}
