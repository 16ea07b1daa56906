/**
 * @file billing_int.h  Prepaid billing internals (private to billing/)
 */

#include <re.h>
#include "core.h"
#include "b2bua.h"
#include "db.h"
#include "billing.h"


/** Number of the settlement parameters of tg_settle() */
/* the parameters of tg_settle_class4 (sql/016): those of tg_settle_media
   and dialled, normalised, carrier, carrier_cost, margin */
enum { SETTLE_NPARAMS = 19, SETTLE_NPARAMS_S2 = 14, MEDIA_JSON_MAX = 4096 };

/** ms the update of nodes.draining may take */
enum { BILLING_DRAIN_TIMEOUT_MS = 10000 };

/** One settlement: the parameters of tg_settle(), as text */
struct settle {
	struct le le;                /**< billing.settlel while pending  */
	struct billing *bl;          /**< borrowed                       */
	struct db_query *q;          /**< owned, in flight               */
	struct tmr tmr;              /**< sent again after a back-off    */
	char *v[SETTLE_NPARAMS];     /**< owned; NULL = SQL NULL         */
	int64_t account_id;
	uint32_t backoff;            /**< ms before the next try         */
	bool spooling;               /**< with the spool's writer        */
	bool durable;                /**< synced to the spool file       */
	bool sent;                   /**< handed to the database once    */
	bool finished;               /**< confirmed or given up          */
	bool replay;                 /**< read from the spool at start   */
	bool sanitised;              /**< the second, safe form          */
};

/** Answer time of a call of an earlier run, from the spool */
struct spool_answer {
	struct le he;                /**< billing.answers                */
	char *id;                    /**< owned                          */
	uint64_t answer_ms;
	uint64_t alive_ms;           /**< that run's last tick           */
};

/** A running call of an account, from authorisation to settlement */
struct bcall {
	struct le le;                /**< bacct.calls                    */
	struct bacct *acct;          /**< (ref.)                         */
	struct billing *bl;          /**< borrowed                       */
	struct b2bua_call *call;     /**< borrowed; NULL once it ended   */
	struct db_query *q;          /**< owned; authorise/reserve       */
	char id[24];
	char *caller;                /**< owned                          */
	char *callee;                /**< owned                          */
	char *media;                 /**< owned: the relay's statistics  */
	int64_t account_id;
	uint64_t setup_ms;           /**< wall clock                     */

	struct rate rate;
	bool authorized;             /**< tg_authorize said ok           */
	bool refused;                /**< tg_authorize wrote the CDR     */
	bool answered;
	bool exhausted;              /**< a reservation fell short       */
	bool low_sent;
	bool cutting;                /**< ended by the cut-off timer     */
	bool elsewhere;              /**< another node settled it: ended
					  without a settlement           */
	uint64_t answer_ms;          /**< wall clock                     */
	uint64_t answer_jif;         /**< tmr_jiffies() at answer        */
	uint64_t cut_jif;            /**< when the money ends            */
	int64_t reserved;            /**< micro-units held for the call  */
	int64_t funded_s;            /**< seconds 'reserved' pays for    */
	uint32_t seq;                /**< reservations granted           */
	uint32_t chunk_s;            /**< s, the last step asked for     */
	uint32_t ask_s;              /**< s, the step in flight          */
	int64_t want_s;              /**< funded s the step in flight
					  would reach                    */
	uint64_t q_jif;              /**< when the step was sent         */
	uint64_t hold_jif;           /**< cut-off held since (0 = not)   */
	uint64_t lease_hold_jif;     /**< held for the lease since       */
	struct tmr tmr_cut;
	struct tmr tmr_refill;
	struct tmr tmr_low;
};

/** The calls of one account, so that a change re-arms them all */
struct bacct {
	struct le he;                /**< billing.accts                  */
	int64_t id;
	struct list calls;           /**< struct bcall (owned)           */
	int64_t balance;             /**< last balance the DB reported   */
	bool balance_known;
};

/** Answer time waiting for the next heartbeat */
struct hbent {
	struct le le;
	char id[24];
	uint64_t answer_ms;
};

struct spool;
struct notify;

enum { LAT_BUCKETS = 1024 };   /* ms; the last bucket takes the rest */

struct billing {
	const struct billing_conf *cfg; /**< borrowed                    */
	struct db *db;               /**< borrowed                       */
	struct b2bua *b2bua;         /**< borrowed                       */
	unsigned slot;               /**< our per-call data in the B2BUA */
	struct hash *accts;          /**< struct bacct by account id     */
	struct list settlel;         /**< struct settle, owned, pending  */
	struct list hbl;             /**< struct hbent, owned, to send   */
	struct list hbsent;          /**< struct hbent, owned, in flight */
	struct spool *spool;         /**< owned; NULL if no state_dir    */
	struct hash *answers;        /**< struct spool_answer, owned:
					  answers the recovery uses      */
	uint64_t last_tick;          /**< the last run's last tick (ms)  */
	struct notify *notify;       /**< owned                          */
	struct db_query *hbq;        /**< owned; heartbeat in flight     */
	struct db_query *drainq;     /**< owned; nodes.draining update   */
	struct db_query *recq;       /**< owned; recovery list           */
	struct tmr tmr_rec;          /**< recovery again after a
					  temporary error                */
	bool rec_done;               /**< the last run's calls are read  */

	/* the node's lease (lease.c) */
	char *instance;              /**< owned; NULL: no lease          */
	char *sip_addr;              /**< owned                          */
	char *api_addr;              /**< owned                          */
	char *lock_key;              /**< owned                          */
	struct db_query *leaseq;     /**< owned; renew, lost or claim    */
	struct db_query *takeq;      /**< owned; takeover in flight      */
	uint64_t lease_jif;          /**< last renewal sent that held    */
	uint64_t steady_jif;         /**< held again from here after it
					  ran out; 0: held since start   */
	bool lease_lost;             /**< another node took its calls    */
	bool take_unsure;            /**< a takeover's answer was lost   */
	billing_lease_lost_h *losth;
	void *lost_arg;
	uint32_t replays;            /**< spool replays not yet written;
					  the recovery waits for them    */
	uint64_t start_ms;           /**< wall clock when this run began */
	struct tmr tmr_hb;
	void (*flushh)(void *arg);
	void *flush_arg;
	struct billing_stats st;
	bool shedding;               /**< new calls refused: overload    */
	uint32_t shed_share;         /**< per mille of new calls shed    */
	uint32_t shed_acc;           /**< spreads the admitted calls     */
	uint64_t shed_step_jif;      /**< last change of shed_share      */
	uint64_t shed_log_jif;       /**< last overload log line         */
	uint64_t shed_logged;        /**< st.shed at that line           */
	uint32_t rsv_lat_ms;         /**< EWMA of tg_reserve round trips */
	uint32_t lat[LAT_BUCKETS];   /**< cut-off lateness histogram     */
	billing_armed_h *armedh;     /**< a call's cut-off moved; NULL   */
	void *armed_arg;
};

/* prepared statements of the engine */
#define STMT_AUTHORIZE "tg_authorize"
#define STMT_RESERVE   "tg_reserve"
#define STMT_SETTLE    "tg_settle"
#define STMT_HEARTBEAT "tg_heartbeat"
#define STMT_NODE_DRAINING "billing_node_draining"

/** Most authorisations or settlements in one batch */
#define BILLING_BATCH_MAX 32

struct pg_result;

/* engine.c */
int64_t billing_col_i64(const struct pg_result *res, int row, int col);
const char *billing_col_str(const struct pg_result *res, int row, int col);
struct bacct *bacct_find(const struct billing *bl, int64_t id);
void bacct_balance(struct bacct *a, const struct pg_result *res, int col);
int  bcall_alloc(struct bcall **bcp, struct billing *bl,
		 struct b2bua_call *call);

/* authorize.c */
int  billing_authz(struct b2bua_call *call, void *arg);
bool billing_admit(uint32_t *retry_s, void *arg);
void bcall_arm(struct bcall *bc);
void bcall_refill(void *arg);

/* settle.c */
void bcall_end(struct bcall *bc, struct b2bua_call *call,
	       const struct b2bua_call_record *rec);
void billing_settle_queue(struct billing *bl, struct settle *st);
int  settle_alloc(struct settle **stp, struct billing *bl,
		  const char *const v[SETTLE_NPARAMS]);
void settle_durable(void *arg, int err, void *harg);
void settle_spool_health(bool ok, int err, void *arg);
int  billing_text_safe(char **dst, const char *s);
bool billing_spool_ok(const struct billing *bl);
void billing_flush_check(struct billing *bl);
void hb_note_answer(struct billing *bl, const struct bcall *bc);
void hb_tick(void *arg);

/* spool.c, spool_fmt.c, spool_load.c */
enum {
	SPOOL_MAX_LINE = 32768,           /* bytes, without the newline  */
	SPOOL_COMPACT_SIZE = 4 * 1024 * 1024,
	SPOOL_TICK_MS = 1000,
};

/** One parsed spool line (pointers into the line) */
struct spool_rec {
	char type;                        /* 'S', 'A', 'T' or 'D'        */
	const char *id;                   /* call id (S, A, D)           */
	const char *v[SETTLE_NPARAMS];    /* S; NULL = SQL NULL          */
	uint64_t answer_ms;               /* A                           */
	uint64_t alive_ms;                /* A, 0 if not given           */
	uint64_t tick_ms;                 /* T                           */
};

/** Counters of the spool */
struct spool_stats {
	uint64_t syncs;          /**< fdatasync calls                    */
	uint64_t sync_us_sum;    /**< their time, summed                 */
	uint64_t sync_us_max;
	uint64_t errors;         /**< batches that could not be written  */
	uint64_t bad_lines;      /**< lines skipped at load              */
	uint64_t compactions;
	uint64_t size;           /**< bytes in the file                  */
	uint32_t pending;        /**< settlements the file still holds   */
	bool ok;
};

/** What loading the spool found (each handler may be NULL) */
struct spool_load_h {
	void (*settleh)(const char *const v[SETTLE_NPARAMS], void *arg);
	void (*answerh)(const char *id, uint64_t answer_ms,
			uint64_t alive_ms, void *arg);
	void (*tickh)(uint64_t tick_ms, void *arg);
};

/** A settlement is durable (err 0) or could not be written (main) */
typedef void (spool_durable_h)(void *arg, int err, void *harg);
/** The spool became unhealthy (a write failed) or healthy again */
typedef void (spool_health_h)(bool ok, int err, void *arg);

int  spool_alloc(struct spool **spp, const char *dir, uint64_t compact_size,
		 spool_durable_h *durh, spool_health_h *healthh, void *arg);
int  spool_load(struct spool *sp, const struct spool_load_h *h, void *arg);
int  spool_start(struct spool *sp, uint32_t tick_ms);
int  spool_settle(struct spool *sp, const char *const v[SETTLE_NPARAMS],
		  void *arg);
int  spool_answer(struct spool *sp, const char *id, uint64_t answer_ms);
int  spool_done(struct spool *sp, const char *id);
void spool_forget(struct spool *sp, const char *id);
int  spool_dead(struct spool *sp, const char *const v[SETTLE_NPARAMS]);
bool spool_ok(const struct spool *sp);
uint32_t spool_pending(const struct spool *sp);
const char *spool_path(const struct spool *sp);
const char *spool_dead_path(const struct spool *sp);
void spool_stats(const struct spool *sp, struct spool_stats *st);

int  spool_field_encode(struct mbuf *mb, const char *v);
int  spool_line_settle(struct mbuf *mb, const char *const v[SETTLE_NPARAMS]);
int  spool_line_answer(struct mbuf *mb, const char *id, uint64_t answer_ms,
		       uint64_t alive_ms);
int  spool_parse(char *line, struct spool_rec *rec);

/* recover.c */
enum { RECOVER_COLS = 15 };
int  recover_register(struct db *db);
int  recover_start(struct billing *bl);
void recover_row(struct billing *bl, const struct pg_result *res, int row);
uint64_t recover_seconds(const struct rate *rate, int64_t reserved,
			 int64_t answer_ms, int64_t alive_ms);

/* lease.c */
int  lease_register(struct db *db);
void lease_tick(struct billing *bl);
bool lease_refuse(struct billing *bl, struct b2bua_call *call);
bool lease_hold(struct bcall *bc);

/* notify.c */
typedef void (notify_h)(int64_t account_id, void *arg);
int  notify_alloc(struct notify **np, const char *conninfo, notify_h *h,
		  void *arg);
