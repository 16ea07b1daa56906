/**
 * @file conf.c  The billing engine's keys: on or off, how much talk is
 *               reserved at a time, overload shedding, the warning, the
 *               heartbeat, the node and its lease
 */

#include <unistd.h>
#include <re.h>
#include "core.h"
#include "billing.h"


/** node_name defaults to the host name */
static int conf_init(void *mod)
{
	struct billing_conf *cfg = mod;
	char host[256] = "";

	if (gethostname(host, sizeof(host) - 1) || !host[0])
		str_ncpy(host, "tollgate", sizeof(host));

	return str_dup(&cfg->node_name, host);
}


/* a lease must outlive the heartbeat that renews it */
static int conf_check(struct cfg_parser *p, void *mod)
{
	const struct billing_conf *cfg = mod;

	if (cfg->node_lease && cfg->node_lease <= cfg->heartbeat)
		return cfg_err(p, "node_lease %u s is not longer than the "
			       "heartbeat (%u s): give more, or 0 for three "
			       "heartbeats", cfg->node_lease, cfg->heartbeat);

	return 0;
}


/**
 * Seconds of the node's lease: node_lease, or three heartbeats
 */
uint32_t billing_lease_seconds(const struct billing_conf *cfg)
{
	if (!cfg)
		return 0;

	return cfg->node_lease ? cfg->node_lease : 3 * cfg->heartbeat;
}


static void conf_destructor(void *arg)
{
	struct billing_conf *cfg = arg;

	mem_deref(cfg->state_dir);
	mem_deref(cfg->node_name);
}


#define L struct billing_conf

static const struct cfg_key keyv[] = {
	CFG_STR("state_dir", L, state_dir, "/var/lib/tollgate",
		"directory of the settlement spool"),
	CFG_YESNO("billing", L, billing, "yes",
		  "rate, reserve and cut off calls (no: calls are free)"),
	CFG_U32("reserve_interval", L, reserve_interval, 1, 3600, "60",
		"most seconds of talk reserved from the balance at a time"),
	CFG_U32("reserve_first", L, reserve_first, 1, 3600, "4",
		"seconds reserved at authorisation (at most reserve_interval);"
		" each later step doubles"),
	CFG_U32("overload_wait", L, overload_wait, 0, 2000, "100",
		"ms of database queue wait above which new calls get 503 at"
		" once (0 = never)"),
	CFG_U32("low_balance_warning", L, low_balance_warning, 0, 3600, "30",
		"seconds before the cut-off the caller is warned, 0 = never"),
	CFG_U32("heartbeat", L, heartbeat, 1, 300, "5",
		"seconds between the node's liveness updates"),
	CFG_U32("node_lease", L, node_lease, 0, 3600, "0",
		"seconds the node's lease lasts unrenewed; then a surviving"
		" node settles its calls (0 = three heartbeats)"),
	CFG_STR("node_name", L, node_name, NULL,
		"this node in live_calls (default: the host name)"),
};

#undef L


CFG_MODULE(billing_conf_module, "billing", keyv,
	   struct billing_conf, conf_init, conf_check, conf_destructor);
