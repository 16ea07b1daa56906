/**
 * @file billing.h  tollgate billing: rating and prepaid billing
 *
 * Rating (rate_*) is pure arithmetic on integer micro-units.  The prepaid
 * engine (billing_*) listens to the B2BUA's call events, authorises,
 * reserves, cuts off and settles calls through the database client of
 * db.h.
 */

#ifndef TOLLGATE_BILLING_H
#define TOLLGATE_BILLING_H

#include <re.h>


/* ------------------------------------------------------------------- rating */

/**
 * One rate of a rate plan.  Money is in micro-units (1 unit = 1,000,000).
 *
 * A call of d seconds (from answer, every started second counts) is billed
 *   billed = 0                                              if d = 0
 *   billed = initial + ceil(max(0, d - initial) / subsequent) * subsequent
 * and costs
 *   cost   = connect_fee + ceil(billed * price_per_minute / 60)
 * An unanswered call costs nothing.
 */
struct rate {
	int64_t id;
	int64_t connect_fee;      /**< micro-units, charged at answer    */
	int64_t price_per_minute; /**< micro-units                       */
	uint32_t initial;         /**< s, first increment (>= 1)         */
	uint32_t subsequent;      /**< s, later increments (>= 1)        */
};

/** Longest duration rating accepts: ten years of seconds */
#define RATE_MAX_SECONDS 315360000ULL

int      rate_check(const struct rate *r);
uint64_t rate_seconds(uint64_t ms);
int      rate_billed(uint64_t *billedp, const struct rate *r, uint64_t d);
int      rate_cost(int64_t *costp, const struct rate *r, uint64_t billed);
int      rate_call(int64_t *costp, uint64_t *billedp, const struct rate *r,
		   uint64_t d);
int64_t  rate_affordable(const struct rate *r, int64_t amount);
int64_t  rate_first_cost(const struct rate *r);

/* ---------------------------------------------------------- prepaid billing */

struct billing;
struct b2bua;
struct cfg_module;
struct db;

/** The billing engine's keys (billing/conf.c) */
struct billing_conf {
	char *state_dir;            /**< owned; where the spool lives    */
	bool billing;               /**< rate, reserve and cut off calls */
	uint32_t reserve_interval;  /**< s, largest reservation step     */
	uint32_t reserve_first;     /**< s, the first step (authorise)   */
	uint32_t overload_wait;     /**< ms of queue wait that sheds new
					 calls, 0 = never shed         */
	uint32_t low_balance_warning; /**< s before cut-off, 0 = none   */
	uint32_t heartbeat;         /**< s, liveness kept in the DB      */
	uint32_t node_lease;        /**< s, the node's lease; 0 = three
					 heartbeats                    */
	char *node_name;            /**< owned; this node in live_calls  */
};

extern const struct cfg_module billing_conf_module;

/** Counters of the billing engine */
struct billing_stats {
	uint64_t calls;        /**< calls settled (CDR sent or spooled)   */
	uint64_t authorized;   /**< authorisations granted                */
	uint64_t refused;      /**< refused (402, 403, 404, 486, 503)     */
	uint64_t shed;         /**< refused at once (503): overload        */
	uint64_t cutoffs;      /**< calls cut because their money ended   */
	uint64_t recovered;    /**< calls of a crashed run settled        */
	uint64_t takeovers;    /**< dead nodes this node took over        */
	uint64_t taken_over;   /**< calls of dead nodes it settled        */
	uint64_t spooled;      /**< settlements made durable in the spool */
	uint64_t dead_letters; /**< settlements the database refused      */
	uint64_t spool_failures; /**< times the spool became unwritable   */
	uint64_t spool_syncs;  /**< fdatasyncs of the spool's writer      */
	uint64_t spool_sync_us_sum; /**< their time, summed               */
	uint64_t spool_sync_us_max;
	uint64_t spool_bytes;  /**< length of the spool file              */
	uint64_t q_authorize;  /**< database round trips, by statement    */
	uint64_t q_reserve;
	uint64_t q_settle;
	uint64_t q_heartbeat;
	uint64_t q_recover;
	uint32_t live;         /**< calls held now                        */
	uint32_t pending;      /**< settlements not yet confirmed         */
	uint32_t lat_p50;      /**< ms, cut-off lateness percentiles      */
	uint32_t lat_p99;
	uint32_t lat_max;
	bool spool_ok;         /**< the spool can be written              */
};

int  billing_alloc(struct billing **blp, const struct billing_conf *cfg,
		   struct db *db, struct b2bua *b2bua, const char *conninfo);
void billing_account_changed(struct billing *bl, int64_t account_id);
void billing_flush(struct billing *bl, void (*doneh)(void *arg), void *arg);
void billing_node_draining(struct billing *bl, bool draining);
void billing_stats(const struct billing *bl, struct billing_stats *st);

/** The lease this run claimed at start (db_lease_claim_sync()) */
struct billing_lease {
	const char *instance;       /**< random id of this process       */
	const char *sip_addr;       /**< where it listens, or NULL       */
	const char *api_addr;       /**< or NULL                         */
	const char *lock_key;       /**< host name and state_dir         */
};

/**
 * The node lost its lease and another live instance holds its name now:
 * this process must end (tollgate exits 1)
 */
typedef void (billing_lease_lost_h)(const char *instance,
				    const char *sip_addr, uint64_t since_ms,
				    void *arg);

uint32_t billing_lease_seconds(const struct billing_conf *cfg);
int  billing_lease_start(struct billing *bl, const struct billing_lease *ls,
			 billing_lease_lost_h *losth, void *arg);
bool billing_lease_held(const struct billing *bl);
int  billing_debug(struct re_printf *pf, const struct billing *bl);

/** A running call's money as the engine holds it (billing_call_info) */
struct billing_call_info {
	bool authorized;
	bool answered;
	bool exhausted;          /**< the account gave less than asked  */
	int64_t rate_id;
	int64_t reserved;        /**< micro-units held for the call     */
	int64_t spent;           /**< cost of the seconds talked so far */
	uint64_t seconds;        /**< since answer                      */
	int64_t seconds_left;    /**< before the cut-off, -1 if not set */
	uint64_t cutoff_ms;      /**< ms before the cut-off             */
};

struct b2bua_call;

/**
 * A running call's cut-off moved (answer, a reservation granted, a
 * top-up re-armed it).  Called on the event loop, after the move; the
 * call's money (billing_call_info()) is up to date.
 */
typedef void (billing_armed_h)(const struct b2bua_call *call, void *arg);
void billing_set_armed(struct billing *bl, billing_armed_h *h, void *arg);
int  billing_call_info(const struct billing *bl, const struct b2bua_call *call,
		       struct billing_call_info *info);
void billing_call_media(struct billing *bl, const struct b2bua_call *call,
			const char *json);

#endif
