/**
 * @file db_conf.h  The database client's part of the configuration
 */

#ifndef TOLLGATE_DB_CONF_H
#define TOLLGATE_DB_CONF_H

struct cfg_module;

/** db_conninfo, db_connections (db/conf.c) */
struct db_conf {
	char *db_conninfo;          /**< owned                           */
	uint32_t db_connections;    /**< connections of the query pool   */
};

extern const struct cfg_module db_conf_module;

#endif
