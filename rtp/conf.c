/**
 * @file conf.c  The media relay's keys: addresses, ports, threads and
 *               media timeouts
 */

#include <re.h>
#include "core.h"
#include "relay.h"


static const char * const iov[] = {"auto", "io_uring", "epoll", NULL};

/* cfg_key_choice stores an int */
_Static_assert(sizeof(enum cfg_rtp_io) == sizeof(int), "rtp_io is an int");


/** A concrete address (it goes into SDP) at the key's offset */
static int h_sdp_addr(struct cfg_parser *p, void *mod,
		      const struct cfg_key *k, const struct pl *val)
{
	struct sa sa;

	if (cfg_get_ip(val, &sa))
		return cfg_kerr(p, "'%r' is not an IPv4 or IPv6 address", val);

	if (sa_is_any(&sa))
		return cfg_kerr(p, "'%r': use a concrete address, not the "
				"unspecified one (it goes into SDP)", val);

	*CFG_FIELD(mod, k, struct sa) = sa;

	return 0;
}


static int h_rtp_ports(struct cfg_parser *p, void *mod,
		       const struct cfg_key *k, const struct pl *val)
{
	struct relay_conf *cfg = mod;
	struct pl lo, hi;
	uint32_t min, max;
	int err;
	(void)k;

	if (!cfg_pl_split(val, '-', &lo, &hi))
		return cfg_kerr(p, "'%r': expected MIN-MAX, e.g. 20000-29999",
				val);

	err = cfg_get_u32(p, "first port", &lo, 1024, 65535, &min);
	if (err)
		return err;

	err = cfg_get_u32(p, "last port", &hi, 1024, 65535, &max);
	if (err)
		return err;

	if (min >= max)
		return cfg_kerr(p, "first port %u must be below last port %u",
				min, max);

	if (min & 1)
		return cfg_kerr(p, "first port %u must be even (RTP uses even "
				"ports, RTCP the odd one above)", min);

	if (!(max & 1))
		return cfg_kerr(p, "last port %u must be odd (the RTCP port of "
				"the last even RTP port)", max);

	cfg->rtp_port_min = (uint16_t)min;
	cfg->rtp_port_max = (uint16_t)max;

	return 0;
}


static int print_rtp_ports(struct re_printf *pf, const void *mod,
			   const struct cfg_key *k)
{
	const struct relay_conf *cfg = mod;

	return re_hprintf(pf, "%s %u-%u\n", k->name, cfg->rtp_port_min,
			  cfg->rtp_port_max);
}


#define R struct relay_conf

static const struct cfg_key keyv[] = {
	{ .name = "rtp_addr", .parse = h_sdp_addr, .print = cfg_print_ip,
	  .off = offsetof(R, rtp_addr), .def = "127.0.0.1",
	  .doc = "address of the relay's media ports (written into SDP)" },
	{ .name = "rtp_ports", .parse = h_rtp_ports,
	  .print = print_rtp_ports, .def = "20000-29999",
	  .doc = "MIN-MAX: even first, odd last port of the RTP/RTCP pairs" },
	CFG_YESNO("rtp_relay", R, rtp_relay, "yes",
		  "anchor media (no: pass SDP through unchanged)"),
	{ .name = "rtp_addr_gateway", .parse = h_sdp_addr,
	  .print = cfg_print_ip, .off = offsetof(R, rtp_addr_gw),
	  .doc = "address toward the gateways, if not rtp_addr" },
	CFG_U32("rtp_threads", R, rtp_threads, 1, 16, "2",
		"relay worker threads"),
	CFG_CHOICE("rtp_io", R, rtp_io, iov, "auto",
		   "how the workers wait: auto, io_uring or epoll"),
	CFG_U32("media_timeout", R, media_timeout, 0, 86400, "30",
		"seconds without RTP before BYE, 0 = off"),
	CFG_U32("media_timeout_hold", R, media_timeout_hold, 0, 86400, "600",
		"the same while the call is on hold"),
	CFG_U32("rtp_relearn_after", R, rtp_relearn_after, 0, 3600, "5",
		"seconds a side's media source must be silent before "
		"another may take its place, 0 = only on a new SDP"),
};

#undef R


CFG_MODULE(relay_conf_module, "relay", keyv, struct relay_conf,
	   NULL, NULL, NULL);
