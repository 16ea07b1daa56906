/**
 * @file db.h  tollgate database: PostgreSQL client, migrations, accounts
 *
 * The one way to PostgreSQL for billing, the REST API and the B2BUA's
 * caller identification.  Three ways to reach the database:
 *
 * - db_*_sync(): blocking helpers for start-up only (migrations, schema
 *   check, the ledger check of tollgate --ledger-check), before re_main()
 *   runs.
 * - struct db: an asynchronous client on libre's event loop.  It never
 *   blocks: a pool of connections (db_alloc()'s nconn, the db_connections
 *   key) with one query in flight on each, one FIFO queue in front of
 *   them, reconnection with back-off, prepared statements prepared on
 *   each connection again after every reconnect.
 * - struct db_listen: a connection of its own that LISTENs on a channel
 *   and hands each NOTIFY to its handler, on the same event loop.
 *
 * Order.  Queries are handed out in the order of db_exec(), but with more
 * than one connection they run side by side: two queries queued one after
 * the other may run, commit and answer in either order.  A caller that
 * needs one query to see the effect of another queues the second from
 * the first one's handler.  Every user does so today: a call's look-up,
 * tg_authorize, tg_reserve and tg_settle follow each other (billing's
 * engine.c, authorize.c, settle.c), as do a request's queries in api/ and
 * the settlements of billing's recover.c.  Its look-up of the calls left
 * by a crash is queued at start-up, before any call can exist, so it is
 * sent before any authorisation; a heartbeat may meet a settlement of the
 * same call in either order (it then updates nothing).
 *
 * One exception keeps the old single-connection order where nobody can
 * wait for a handler: a query without a handler, or one whose caller
 * detached it (mem_deref(*qp)) or whose deadline passed while it was on
 * the server, still runs; every query queued after that moment is sent
 * only once it has ended.  So a seed of handler-less INSERTs (gateways,
 * then routes naming them, then the load) and a tg_settle queued after
 * its call's tg_authorize or tg_reserve was abandoned still run in order.
 *
 * With one connection everything runs in db_exec() order, but for
 * batches: a statement with a batch form (db_prepare_batch()) takes the
 * queries of that statement waiting behind it along, ahead of other
 * statements queued between them.  Batched statements (look-ups,
 * tg_authorize, tg_settle) are about different calls and independent of
 * whatever else waits.  LISTEN/NOTIFY does not use this client but a
 * struct db_listen; notifications arriving here are dropped.
 *
 * Handlers read results with libpq (include <libpq-fe.h>; a
 * "const struct pg_result *" is a "const PGresult *").  A result is valid
 * only while the handler runs.
 */

#ifndef TOLLGATE_DB_H
#define TOLLGATE_DB_H

#include <re.h>


/* ------------------------------------------------------ start-up, blocking */

/** Schema version this build needs (highest sql/NNN_*.sql it knows) */
#define DB_SCHEMA_VERSION 18

int db_migrate_sync(const char *conninfo, const char *sqldir,
		    struct re_printf *errpf);
int db_schema_version_sync(const char *conninfo, int *version,
			   struct re_printf *errpf);
int db_schema_check_sync(const char *conninfo, struct re_printf *errpf);
int db_ledger_check_sync(const char *conninfo, struct re_printf *pf,
			 uint32_t *violations, struct re_printf *errpf);

/** A node's lease to claim (db_lease_claim_sync, sql/013_lease.sql) */
struct db_lease {
	const char *name;        /**< node_name                          */
	const char *instance;    /**< random id of this process          */
	const char *sip_addr;    /**< where it listens, or NULL          */
	const char *api_addr;
	const char *lock_key;    /**< host name and state_dir            */
	uint32_t seconds;        /**< lease length                       */
	bool lock_free;          /**< got state_dir/node.lock at once:
				      a holder with the same lock_key is
				      dead                               */
};

/** Who holds a node's lease */
struct db_lease_holder {
	char instance[64];
	char sip_addr[128];
	char api_addr[128];
	uint64_t since_ms;       /**< holds it since (wall clock)        */
	uint64_t until_ms;       /**< lease runs until                   */
};

int db_lease_claim_sync(const char *conninfo, const struct db_lease *req,
			struct db_lease_holder *holder,
			struct re_printf *errpf);
int db_lease_release_sync(const char *conninfo, const char *name,
			  const char *instance, struct re_printf *errpf);
struct pg_result;

/**
 * Result of one query (also of db_exec_sync()).
 *
 * @param err  0 (res is PGRES_TUPLES_OK or PGRES_COMMAND_OK);
 *             EPROTO: the database refused the statement (res is the SQL
 *             error, already logged): the same query would fail again;
 *             EAGAIN: a transient SQL error (res is the error, already
 *             logged): statement_timeout or cancel (57014), deadlock
 *             (40P01), serialization failure (40001), lock not available
 *             (55P03), insufficient resources (53xxx), connection
 *             exception (08xxx), server shutting down (57P0x): nothing
 *             was committed and the same query may succeed when tried
 *             again (db_sqlstate_err()).  A read-only refusal (25006,
 *             the session is on a standby) never reaches the handler:
 *             the query is sent again on a new connection, which lands
 *             on the primary, within the query's deadline;
 *             ETIMEDOUT: the deadline passed (the statement may still run
 *             and commit on the server);
 *             ECONNRESET: the connection was lost while the query was in
 *             flight (it may have committed)
 * @param res  the result, or NULL for ETIMEDOUT and ECONNRESET
 * @param arg  handler argument
 */
typedef void (db_result_h)(int err, const struct pg_result *res, void *arg);

/* one statement on a connection of its own, blocking (exec_sync.c) */
int db_exec_sync(const char *conninfo, const char *sql, int n,
		 const char *const *v, db_result_h *h, void *arg,
		 struct re_printf *errpf);
int db_conninfo_appname(char **dstp, const char *conninfo,
			const char *appname);


/* ------------------------------------------------------ asynchronous client */

struct db;
struct db_query;
struct pg_result;

/**
 * Reachability: called with true when the first connection comes up and
 * false when the last one goes down (the database is out of reach)
 */
typedef void (db_state_h)(bool up, void *arg);

struct db_stats {
	uint64_t queries;     /**< queries that got a result from the server */
	uint64_t errors;      /**< queries that ended with err != 0           */
	uint64_t reconnects;  /**< connections made again after a loss        */
	uint32_t queued;      /**< waiting or in flight now                   */
	uint32_t connections; /**< connections of the pool                    */
	uint32_t up;          /**< connections up now                         */
	uint64_t lat_us_sum;  /**< db_exec() to result, summed over queries   */
	uint64_t lat_us_max;
	uint64_t batches;     /**< round trips that carried a batch           */
	uint64_t batched;     /**< queries that went in a batch               */
	uint32_t wait_ms;     /**< expected queue wait now (db_queue_wait_ms) */
	uint32_t oldest_ms;   /**< age of the oldest query not yet sent       */
	uint32_t wait_avg_ms; /**< EWMA of the queue wait of commands sent    */
	uint32_t down_ms;     /**< how long no connection has been up, 0 = up */
	uint64_t read_only;   /**< commands refused as read-only (25006): the
				   connection was on a standby and was made
				   again                                     */
};

/** SQLSTATE read_only_sql_transaction: the server is not the primary */
#define DB_SQLSTATE_READ_ONLY "25006"

int db_sqlstate_err(const char *sqlstate);
int db_conninfo_check(const char *conninfo, uint32_t *nhostsp, char *msg,
		      size_t sz);

/** Default and bounds of db_statement_timeout (ms, 0 = off) */
#define DB_STATEMENT_TIMEOUT_DEFAULT 3000

/** Most connections one client may have (db_connections) */
#define DB_CONNECTIONS_MAX 32

int  db_alloc(struct db **dbp, const char *conninfo, uint32_t nconn);
int  db_prepare(struct db *db, const char *name, const char *sql,
		int nparams);
int  db_prepare_batch(struct db *db, const char *name,
		      const char *batch_name, const char *batch_sql,
		      uint32_t max);
int  db_exec(struct db_query **qp, struct db *db, const char *stmt,
	     int nparams, const char *const *values, uint32_t timeout_ms,
	     bool retry, db_result_h *h, void *arg);
int  db_exec_owned(struct db_query **qp, struct db *db, const char *stmt,
		   int nparams, const char *const *values,
		   uint32_t timeout_ms, bool retry, db_result_h *h,
		   void *arg);
void db_set_statement_timeout(struct db *db, uint32_t ms);
bool db_is_up(const struct db *db);
uint32_t db_down_ms(const struct db *db);
uint32_t db_queue_wait_ms(const struct db *db);
void db_set_state_handler(struct db *db, db_state_h *h, void *arg);
void db_stats(const struct db *db, struct db_stats *st);


/* ------------------------------------------------------------ LISTEN/NOTIFY */

struct db_listen;

/**
 * A notification on the channel, or the LISTEN taking effect
 *
 * @param payload  the notification's payload ("" if none), or NULL once
 *                 the LISTEN has taken effect: after the first connection
 *                 and after every reconnection (what was notified while
 *                 the connection was down is lost)
 * @param arg      handler argument
 */
typedef void (db_notify_h)(const char *payload, void *arg);

int  db_listen_alloc(struct db_listen **lp, const char *conninfo,
		     const char *channel, db_notify_h *h, void *arg);


/* ----------------------------------------------------------------- accounts */

struct acct_info {
	int64_t id;
	char name[64];
	bool active;            /**< status 'active' (not 'blocked')   */
	char ha1[33];           /**< md5("user:realm:password"), "" if none */
	char ha1_sha256[65];    /**< sha256("user:realm:password"), "" if none */
	char sip_username[64];  /**< "" if none                        */
	uint32_t max_cps;       /**< calls a second, 0 = no limit      */
};

/**
 * Account look-up result
 *
 * @param err   0, ENOENT (no such account), or an error of db_result_h
 * @param acct  the account if err is 0, else NULL
 */
typedef void (acct_h)(int err, const struct acct_info *acct, void *arg);

int acct_register_statements(struct db *db);
int acct_by_sipuser(struct db_query **qp, struct db *db, const char *username,
		    uint32_t timeout_ms, acct_h *h, void *arg);
int acct_by_name(struct db_query **qp, struct db *db, const char *name,
		 uint32_t timeout_ms, acct_h *h, void *arg);

/* ------------------------------------------------------------ configuration */

struct cfg_module;

/** db_conninfo, db_connections, db_statement_timeout (db/conf.c) */
struct db_conf {
	char *db_conninfo;          /**< owned                           */
	uint32_t db_connections;    /**< connections of the query pool   */
	uint32_t db_statement_timeout; /**< ms, per session; 0 = off     */
};

extern const struct cfg_module db_conf_module;

#endif
