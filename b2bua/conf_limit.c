/**
 * @file conf_limit.c  The limit keys of the B2BUA (RATE BURST pairs) and the
 *                     limit options of a trusted peer
 */

#include <string.h>
#include "b2bua_int.h"


enum { LIMIT_MAX = 1000000 };


static int limit_get(struct cfg_parser *p, const struct pl *rate,
		     const struct pl *burst, struct cfg_limit *lim)
{
	int err;

	/* no limit is written "off", never rate 0 */
	err = cfg_get_u32(p, "rate", rate, 1, LIMIT_MAX, &lim->rate);
	if (err)
		return err;

	return cfg_get_u32(p, "burst", burst, 1, LIMIT_MAX, &lim->burst);
}


/** limit_*: "RATE BURST" (a second, at once) or "off" */
int b2bua_conf_limit(struct cfg_parser *p, void *mod, const struct cfg_key *k,
		     const struct pl *val)
{
	struct cfg_limit *lim = CFG_FIELD(mod, k, struct cfg_limit);
	struct pl argv[3];
	unsigned n;

	n = cfg_split_args(val, argv, 3);
	if (n == 1 && !pl_strcmp(&argv[0], "off")) {
		lim->rate = 0;
		lim->burst = 0;
		return 0;
	}

	if (n != 2)
		return cfg_kerr(p, "'%r': expected RATE BURST (requests a "
				"second and at once) or off", val);

	return limit_get(p, &argv[0], &argv[1], lim);
}


int b2bua_conf_print_limit(struct re_printf *pf, const void *mod,
			   const struct cfg_key *k)
{
	const struct cfg_limit *lim = CFG_CFIELD(mod, k, struct cfg_limit);

	if (!lim->rate)
		return re_hprintf(pf, "%s off\n", k->name);

	return re_hprintf(pf, "%s %u %u\n", k->name, lim->rate, lim->burst);
}


/* RATE/BURST or off */
static int peer_limit(struct cfg_parser *p, const struct pl *v,
		      struct cfg_limit *lim)
{
	struct pl rate, burst;

	if (!pl_strcmp(v, "off")) {
		lim->rate = 0;
		lim->burst = 0;
		return 0;
	}

	if (!cfg_pl_split(v, '/', &rate, &burst))
		return cfg_kerr(p, "'%r': expected RATE/BURST or off", v);

	return limit_get(p, &rate, &burst, lim);
}


/**
 * A trusted peer's limit option: limit=off (no limit at the door for its
 * addresses, the node's included), limit=RATE/BURST (its INVITEs per
 * source address), request_limit=RATE/BURST|off (its other requests)
 *
 * @return 0, ENOENT if opt is no limit option, or a parse error
 */
int b2bua_conf_peer_limit(struct cfg_parser *p, struct cfg_peer *peer,
			  const struct pl *opt)
{
	struct pl v = *opt;

	if (cfg_pl_skip_prefix(&v, "limit=")) {
		if (!pl_strcmp(&v, "off")) {
			peer->limit_off = true;
			return 0;
		}
		peer->invite_set = true;
		return peer_limit(p, &v, &peer->invite);
	}

	if (cfg_pl_skip_prefix(&v, "request_limit=")) {
		peer->request_set = true;
		return peer_limit(p, &v, &peer->request);
	}

	return ENOENT;
}


/** The limit options of a trusted peer's line, each with a space first */
int b2bua_conf_print_peer_limit(struct re_printf *pf,
				const struct cfg_peer *peer)
{
	int err = 0;

	if (peer->limit_off)
		return re_hprintf(pf, " limit=off");

	if (peer->invite_set)
		err |= re_hprintf(pf, " limit=%u/%u", peer->invite.rate,
				  peer->invite.burst);

	if (peer->request_set) {
		if (peer->request.rate)
			err |= re_hprintf(pf, " request_limit=%u/%u",
					  peer->request.rate,
					  peer->request.burst);
		else
			err |= re_hprintf(pf, " request_limit=off");
	}

	return err;
}
