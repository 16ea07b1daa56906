/**
 * @file log_conf.c  The logger's keys: log_target, log_level
 */

#include <string.h>
#include <re.h>
#include "core.h"


static const char * const targetv[] = {"stderr", "syslog", NULL};

/* cfg_key_choice stores an int */
_Static_assert(sizeof(enum cfg_logtarget) == sizeof(int),
	       "log_target is an int");

static const char * const levelv[] = {
	"debug", "info", "notice", "warning", "error"
};
static const int levelnumv[] = {
	LOG_DEBUG, LOG_INFO, LOG_NOTICE, LOG_WARNING, LOG_ERR
};


static int h_log_level(struct cfg_parser *p, void *mod,
		       const struct cfg_key *k, const struct pl *val)
{
	struct log_conf *cfg = mod;
	size_t i;
	int err;
	(void)k;

	err = cfg_get_choice(p, val, levelv, ARRAY_SIZE(levelv), &i);
	if (err)
		return err;

	cfg->log_level = levelnumv[i];

	return 0;
}


static int print_log_level(struct re_printf *pf, const void *mod,
			   const struct cfg_key *k)
{
	const struct log_conf *cfg = mod;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(levelnumv); i++) {
		if (levelnumv[i] == cfg->log_level)
			break;
	}

	return re_hprintf(pf, "%s %s\n", k->name,
			  i < ARRAY_SIZE(levelv) ? levelv[i] : "info");
}


static const struct cfg_key keyv[] = {
	CFG_CHOICE("log_target", struct log_conf, log_target, targetv,
		   "stderr", "where log lines go: stderr or syslog"),
	{ .name = "log_level", .parse = h_log_level,
	  .print = print_log_level, .def = "info",
	  .doc = "lowest level logged: debug, info, notice, warning, "
		 "error" },
};


/* log_level changes on a reload; the target is opened once */
static const char *const fixedv[] = { "log_target", NULL };


static int conf_keep(void *mod, const void *oldmod, const struct cfg_key *k)
{
	struct log_conf *cfg = mod;
	const struct log_conf *old = oldmod;

	if (strcmp(k->name, "log_target"))
		return ENOENT;

	cfg->log_target = old->log_target;

	return 0;
}


CFG_MODULE_RELOAD(log_conf_module, "log", keyv, struct log_conf,
		  NULL, NULL, NULL, fixedv, conf_keep);
