/**
 * @file test_db.h  What the files of tests/unit/test_db share
 */

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <re.h>
#include "db.h"


/* from the environment (test_db.sh) */
extern const char *conninfo;      /* PGTEST_CONNINFO */
extern const char *cluster_dir;   /* PGTEST_DIR      */
extern const char *cluster_tool;  /* PGTEST_CLUSTER  */
extern const char *srcdir;        /* top_srcdir      */


/* in a function with "int err" and an "out:" label */
#define CHECK(cond) do {						\
		if (!(cond)) {						\
			(void)re_fprintf(stderr, "  %s:%d: check failed:" \
					 " %s\n", __FILE__, __LINE__, #cond); \
			err = EINVAL;					\
			goto out;					\
		}							\
	} while (0)

#define CHECK_ERR(e, want) do {						\
		int e_ = (e);						\
		if (e_ != (want)) {					\
			(void)re_fprintf(stderr, "  %s:%d: %s returned %d" \
					 " (%s), want %d\n", __FILE__,	\
					 __LINE__, #e, e_, strerror(e_), \
					 (want));			\
			err = EINVAL;					\
			goto out;					\
		}							\
	} while (0)



/* counts the client's state changes (db_set_state_handler) */
struct waiter {
	int up, down;
	bool want_up;      /* re_cancel() when the state becomes this */
	bool stop_on_state;
};

/* completions of a run of queries, in the order they came */
struct seq {
	unsigned total;      /* expected completions                 */
	unsigned done;       /* completions so far                   */
	unsigned bad;        /* out of order or wrong value          */
	int errv[64];        /* err of the first completions         */
	char val[64][16];    /* first column of the first completions */
	uint64_t at[64];     /* ms                                   */
	unsigned order[64];  /* index in submission order            */
};

struct seq_item {
	struct seq *seq;
	unsigned idx;
};

/* detach_timer() detaches q */
struct detach_ctx {
	struct db_query *q;
};

/* cluster_timer() runs tools/pg-cluster.sh cmd [mode] from the loop */
struct restart_ctx {
	struct tmr tmr;
	int err;
	const char *cmd;
	const char *mode;
};


/* test_db.c: helpers */
uint64_t now_ms(void);
int  run_loop(uint32_t max_ms);
int  sql(const char *cinfo, const char *text);
long sql_int(const char *cinfo, const char *text);
int  schema_conninfo(char **cip, const char *schema);
int  cluster(const char *cmd, const char *mode);
int  db_open(struct db **dbp, uint32_t nconn, struct waiter *w);
int  wait_state(struct db *db, struct waiter *w, bool up, uint32_t max_ms);
void seq_handler(int err, const struct pg_result *r, void *arg);
void echo_handler(int err, const struct pg_result *r, void *arg);
int  echo_run(struct db *db, struct seq_item *items, struct seq *s,
	      unsigned n);
extern unsigned detached_calls;
void detached_handler(int err, const struct pg_result *r, void *arg);
void detach_timer(void *arg);
void cluster_timer(void *arg);

/* test_db_migrate.c */
int test_migrate(void);
int test_migrate_errors(void);
int test_migrate_race(void);

/* test_db_query.c */
int test_api_errors(void);
int test_queue_order(void);
int test_large(void);
int test_copy(void);
int test_sql_error(void);
int test_sql_error_result(void);
int test_timeout(void);
int test_detach(void);
int test_statement_timeout(void);
int test_queue_wait(void);

/* test_db_batch.c */
int test_batch_results(void);
int test_batch_errors(void);
int test_batch_detach(void);
int test_free_pending(void);
int test_free_in_handler(void);

/* test_db_conn.c */
int test_unreachable(void);
int test_restart(void);
int test_read_only(void);
int test_multi_host(void);

/* test_db_pool.c */
int test_pool_many(void);
int test_pool_spread(void);
int test_pool_fence(void);
int test_pool_restart(void);

/* test_db_account.c */
int test_accounts(void);

/* test_db_listen.c */
int test_listen(void);
