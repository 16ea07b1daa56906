/**
 * @file tollgate_conf.c  The configuration file of the daemon: its own
 *                        keys and the list of modules that declare the
 *                        others
 */

#include <re.h>
#include "core.h"
#include "b2bua.h"
#include "db.h"
#include "relay.h"
#include "api.h"
#include "billing.h"
#include "tollgate.h"


static const struct cfg_key keyv[] = {
	CFG_U32("shutdown_grace", struct tg_conf, shutdown_grace, 0, 86400,
		"5", "seconds running calls may go on once the node drains "
		"(SIGTERM, POST /v1/node/drain), then BYE"),
};


CFG_MODULE_RELOAD(tg_conf_module, "tollgate", keyv, struct tg_conf,
		  NULL, NULL, NULL, NULL, NULL);


const struct cfg_module *const tollgate_modv[] = {
	&b2bua_conf_module,
	&tg_conf_module,
	&db_conf_module,
	&relay_conf_module,
	&api_conf_module,
	&log_conf_module,
	&billing_conf_module,
};

const size_t tollgate_modc = ARRAY_SIZE(tollgate_modv);
