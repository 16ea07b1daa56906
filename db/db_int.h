/**
 * @file db_int.h  PostgreSQL client internals (private to db/)
 *
 * db.c     the client: allocation, statements, counters
 * conn.c   one connection of the pool: connect, reconnect, socket, loss
 * query.c  the queue: db_exec(), deadlines, fences, handing out work
 * batch.c  several queries of one statement as one command
 * result.c the end of a command: results to their queries
 * listen.c a LISTEN connection of its own
 * schema.c blocking start-up helpers, schema version
 * migrate.c migrations (blocking)
 * ledger.c the ledger check (blocking)
 */

#include <libpq-fe.h>
#include <re.h>


enum {
	DB_BACKOFF_MIN     = 100,    /* ms, first reconnect delay      */
	DB_BACKOFF_FAST    = 250,    /* ms, longest delay early on     */
	DB_BACKOFF_SPAN    = 10000,  /* ms of a loss with fast retries */
	DB_BACKOFF_MAX     = 5000,   /* ms, longest reconnect delay    */
	DB_CONNECT_TIMEOUT = 10000,  /* ms, one connection attempt     */
	DB_NAME_MAX        = 63,     /* NAMEDATALEN - 1                */
	DB_BATCH_MAX       = 64,     /* most queries in one batch      */
	DB_BATCH_PARAMS    = 32,     /* most parameters of a batch form */
	DB_WAIT_SHIFT      = 3,      /* queue wait EWMA: 1/8 per sample */
};

enum db_state {
	DB_DOWN = 0,     /* no connection, reconnect timer running      */
	DB_CONNECTING,   /* PQconnectPoll() in progress                 */
	DB_UP,           /* connected                                   */
};

struct db_stmt {
	struct le le;           /* in db->stmtl                           */
	char *name;             /* owned                                  */
	char *sql;              /* owned                                  */
	int nparams;
	uint32_t prepared;      /* bit i: prepared on connection i        */
	struct db_stmt *batch;  /* borrowed; its batch form, or NULL      */
	uint32_t batch_max;     /* most queries in one batch              */
};

struct db_conn;

struct db_query {
	struct le le;           /* in db->queryl while waiting            */
	struct db *db;          /* borrowed; NULL once finished/dropped   */
	struct db_conn *conn;   /* borrowed; the connection while in flight */
	struct db_query **qp;   /* borrowed; caller's handle or NULL      */
	const struct db_stmt *stmt; /* borrowed from db->stmtl            */
	char **values;          /* owned; nparams strings, NULL = SQL NULL */
	int nparams;
	struct tmr tmr;         /* deadline                               */
	uint32_t timeout_ms;
	bool retry;             /* re-send after a loss if in flight      */
	db_result_h *h;
	void *arg;              /* borrowed, or owned if own_arg          */
	bool own_arg;
	uint64_t t_start;       /* us, when db_exec() queued it           */
	uint64_t seq;           /* db_exec() order, from 1                */
	uint32_t bidx;          /* its place in the batch in flight       */
	bool inbatch;           /* in conn->bq: part of a batch in flight */
	bool single;            /* its batch failed: goes alone now       */
};

/* one connection of the pool */
struct db_conn {
	struct db *db;          /* borrowed; the pool that holds it       */
	uint32_t idx;           /* in db->connv                           */
	PGconn *conn;           /* owned; NULL while down                 */
	int fd;                 /* registered with fd_listen(), or -1     */
	int fd_flags;
	enum db_state state;
	bool busy;              /* a command is in flight on conn         */
	bool flushing;          /* PQflush() returned 1: watch writable   */
	bool ever_up;
	bool failing;           /* connection loss is being reported      */
	bool fenced;            /* the command in flight goes first       */
	bool need_set;          /* the session settings are still to send */
	bool setting;           /* they are the command in flight         */
	uint64_t fence_seq;     /* queries after this one wait for it     */
	struct db_query *cur;   /* borrowed; query in flight, NULL if none
				   or if its owner went away (the result
				   is then discarded)                     */
	struct list bq;         /* the queries of the batch in flight,
				   by their place in it; one that went
				   away has left it                       */
	uint32_t bn;            /* queries the batch in flight was sent
				   with, 0 if no batch is in flight       */
	struct db_stmt *cur_prep; /* borrowed; statement being prepared   */
	PGresult *res;          /* owned; result of the command in flight */
	struct tmr tmr;         /* reconnect back-off, connect timeout,
				   deferred failure                       */
	uint32_t backoff;       /* ms, next reconnect delay               */
	uint64_t lost_us;       /* when it went down, 0 while up          */
};

struct db {
	char *conninfo;         /* owned                                  */
	struct db_conn *connv;  /* owned; nconn connections               */
	uint32_t nconn;
	uint32_t nup;           /* connections up                         */
	uint32_t next;          /* where the search for an idle one starts */
	uint64_t seq;           /* of the last query queued               */
	struct list stmtl;      /* struct db_stmt                         */
	struct list queryl;     /* struct db_query, FIFO, not yet sent    */
	uint32_t stmt_timeout;  /* ms, the sessions' statement_timeout    */
	uint64_t up_us;         /* when the first connection came up
				   (after none was), 0 if never           */
	uint64_t down_us;       /* when the last one went down (or the
				   client was made), while none is up     */
	uint64_t wait_us;       /* EWMA of the queue wait of commands     */
	db_state_h *stateh;
	void *state_arg;        /* borrowed                               */
	struct db_stats st;
};


/*
 * Every entry from the event loop holds a reference to the db while it
 * runs handlers.  If that is the only one left, the owner has freed the
 * db from a handler: run no more handlers, the destructor follows.
 */
static inline bool db_released(const struct db *db)
{
	return mem_nrefs(db) <= 1;
}


/* db.c */
uint64_t db_now_us(void);
void db_first_line(char *buf, size_t sz, const char *msg);
int  db_connect_step(PGconn *conn, int *flagsp);
struct db_stmt *db_stmt_find(const struct db *db, const char *name);

/* conn.c */
void db_conn_reconnect(void *arg);
int  db_conn_watch(struct db_conn *c, int flags);
void db_conn_close(struct db_conn *c);
void db_conn_lost(struct db_conn *c, const char *why);
void db_conn_deferred_loss(void *arg);

/* query.c */
void db_query_finish(struct db_query *q, int err, const PGresult *res);
void db_query_drop(struct db_query *q);
bool db_may_send(const struct db *db, const struct db_query *q);
void db_note_wait(struct db *db, const struct db_query *q);
void db_dispatch(struct db *db);

/* batch.c */
int  db_batch_send(struct db_conn *c, struct db_query *q);
void db_batch_take(struct db_conn *c, struct list *l);
void db_batch_done(struct db_conn *c, PGresult *res, const char *msg);

/* result.c */
void db_conn_read(struct db_conn *c);
int  db_result_err(const PGresult *res);

/* schema.c: blocking, start-up only; messages go to pf, else stdout
   (db_say) or stderr (db_complain) */
void db_say(struct re_printf *pf, const char *fmt, ...);
void db_complain(struct re_printf *pf, const char *fmt, ...);
struct pl db_line_of(const char *msg);
int  db_connect_sync(PGconn **connp, const char *conninfo,
		     struct re_printf *pf);
int  db_exec_cmd(PGconn *conn, const char *sql, const char *what,
		 struct re_printf *pf);
int  db_version_of(PGconn *conn, int *version, struct re_printf *pf);
