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
struct b2bua_call;
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
	uint32_t api_max_import;    /**< bytes of a rate deck (import)   */
	uint32_t api_max_event_streams; /**< GET /v1/events at once      */
};

extern const struct cfg_module api_conf_module;

/** Money: int64 micro-units <-> exact decimal strings ("12.50") */
enum { API_MONEY_DECIMALS = 6 };

int  api_money_parse(int64_t *amountp, const char *str);
int  api_money_print(struct re_printf *pf, const int64_t *amount);

/** tollgate --import-rates: a CSV rate deck applied, blocking (0, 1) */
int  api_rates_import_file(const char *conninfo, const char *path,
			   bool replace, struct re_printf *pf,
			   struct re_printf *errpf);

/** Money of a running call, micro-units (api_call_money_h) */
struct api_call_money {
	int64_t rate_id;        /**< 0 if none                          */
	int64_t reserved;       /**< held for the call                  */
	int64_t spent;          /**< cost of the seconds talked so far  */
	uint64_t seconds;       /**< since answer                       */
	int64_t seconds_left;   /**< before the cut-off, -1 if not set  */
};

/** Counters of the billing engine for GET /metrics */
struct api_billing_metrics {
	uint64_t cutoffs;       /**< calls cut because their money ended */
	uint64_t authorized;    /**< authorisations granted             */
	uint64_t refused;       /**< authorisations refused             */
	uint64_t shed;          /**< calls refused at once: overload    */
	uint64_t takeovers;     /**< dead nodes taken over              */
	uint64_t taken_over;    /**< their calls this node settled      */
	uint32_t pending;       /**< settlements not yet confirmed      */
	uint64_t dead_letters;  /**< settlements the database refused   */
	uint64_t spool_syncs;   /**< fdatasyncs of the spool            */
	uint64_t spool_sync_us_sum; /**< their time, summed             */
	uint64_t spool_sync_us_max;
	uint64_t spool_bytes;   /**< length of the spool file           */
	bool spool_ok;          /**< the spool can be written           */
};

/** The API changed an account's balance or status (credit, PATCH) */
typedef void (api_account_changed_h)(int64_t account_id, void *arg);

/**
 * Money of a running call
 *
 * @return 0 with *money filled, or an error (ENOENT: the call is not
 *         charged) and the call is shown without money
 */
typedef int  (api_call_money_h)(const struct b2bua_call *call,
				struct api_call_money *money, void *arg);

/** Fill in the billing counters of GET /metrics */
typedef void (api_billing_metrics_h)(struct api_billing_metrics *m,
				     void *arg);

/**
 * What the API asks of the billing engine, filled in by whoever puts the
 * daemon together.  Every handler may be NULL, and api_alloc() may be
 * given no hooks at all (billing off): account changes then go unheard,
 * calls show no money and /metrics carries no billing counters.
 */
struct api_hooks {
	api_account_changed_h *account_changed;
	api_call_money_h *call_money;
	api_billing_metrics_h *billing_metrics;
	void *arg;              /**< borrowed, for each handler         */
};

/**
 * The node drains (POST /v1/node/drain): take no new calls, let the
 * running ones end, then stop.  Called again while draining, it changes
 * nothing.
 *
 * @return the number of calls still running
 */
typedef uint32_t (api_drain_h)(void *arg);

int  api_alloc(struct api **apip, const struct api_conf *cfg,
	       const char *realm, struct db *db, struct b2bua *b2bua,
	       const struct api_hooks *hooks, struct media_relay *relay);
void api_set_drain(struct api *api, api_drain_h *h, void *arg);
int  api_cluster_start(struct api *api, const char *node,
		       const char *conninfo);
bool api_enabled(const struct api_conf *cfg);
void api_reconfigure(struct api *api, const struct api_conf *cfg);
void api_reload_count(struct api *api, bool ok, uint64_t wall_ms);
void api_call_money_changed(struct api *api, const struct b2bua_call *call);
int  api_debug(struct re_printf *pf, const struct api *api);

#endif
