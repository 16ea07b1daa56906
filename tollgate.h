/**
 * @file tollgate.h  The composition root: the daemon's own keys and the
 *                   modules whose keys make up the configuration file
 */

#ifndef TOLLGATE_H
#define TOLLGATE_H

struct cfg_module;

/** Keys of the daemon itself (tollgate_conf.c) */
struct tg_conf {
	uint32_t shutdown_grace;    /**< s, calls may run on once draining */
};

extern const struct cfg_module tg_conf_module;

/** Every module with keys, in the order tollgate -t prints them */
extern const struct cfg_module *const tollgate_modv[];
extern const size_t tollgate_modc;

#endif
