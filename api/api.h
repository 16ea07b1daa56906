/**
 * @file api.h  tollgate REST API: calls, accounts, credit, rates,
 *              gateways, routes, CDRs, health and metrics over HTTP
 *
 * The API serves JSON under /v1 (and Prometheus text at /metrics) with
 * libmicrohttpd driven by libre's event loop: MHD runs in external-poll
 * mode on its epoll descriptor, every database access goes through the
 * asynchronous client (struct db) while the HTTP connection is suspended.
 * Nothing it does blocks the loop.  docs/api.md is the reference.
 */

#ifndef TOLLGATE_API_H
#define TOLLGATE_API_H

#include <re.h>

struct cfg_module;
struct db;
struct b2bua;
struct billing;
struct media_relay;
struct api;

/** api_token SECRET admin|readonly */
struct cfg_token {
	struct le le;
	char *token;            /**< owned                               */
	bool admin;
};

/** The REST API's keys (api/conf.c) */
struct api_conf {
	struct sa api_listen;
	struct list tokenl;         /**< struct cfg_token                */
	bool api_open_metrics;      /**< GET /metrics without a token    */
	bool api_open_health;       /**< GET /v1/health without a token  */
	uint32_t api_max_body;      /**< bytes, larger bodies get 413    */
};

extern const struct cfg_module api_conf_module;

/** Money: int64 micro-units <-> exact decimal strings ("12.50") */
enum { API_MONEY_DECIMALS = 6 };

int  api_money_parse(int64_t *amountp, const char *str);
int  api_money_print(struct re_printf *pf, const int64_t *amount);

int  api_alloc(struct api **apip, const struct api_conf *cfg,
	       const char *realm, struct db *db, struct b2bua *b2bua,
	       struct billing *billing, struct media_relay *relay);
bool api_enabled(const struct api_conf *cfg);
int  api_debug(struct re_printf *pf, const struct api *api);

#endif
