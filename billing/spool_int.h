/**
 * @file spool_int.h  The spool's internals (billing/spool*.c only)
 */

#include <pthread.h>


/** A record on its way to the writer thread and back */
enum srec_type {
	SREC_SETTLE,     /* spool, synced, reported                      */
	SREC_ANSWER,     /* spool, synced                                */
	SREC_DONE,       /* spool, no sync of its own                    */
	SREC_DEAD,       /* dead-letter file, synced                     */
	SREC_COMPACT,    /* line is the whole new file                   */
};

struct srec {
	struct le le;
	enum srec_type type;
	struct mbuf *mb;      /**< owned: the line(s)                    */
	void *arg;            /**< (ref.) settlement; main thread only    */
	int err;              /**< set by the writer                     */
};

/** What the file must still hold: a pending settlement or an answer */
struct sent {
	struct le he;         /**< spool.live                            */
	struct le le;         /**< spool.order                           */
	bool settle;          /**< S, else A                             */
	char *id;             /**< owned                                 */
	struct mbuf *line;    /**< owned, S2 line (settlements)           */
	uint64_t answer_ms;
	uint64_t alive_ms;    /**< 0: this run's ticks bound it          */
};

struct spool {
	char *dir;                 /**< owned */
	char *path;                /**< owned */
	char *dead_path;           /**< owned */
	uint64_t compact_size;
	spool_durable_h *durh;
	spool_health_h *healthh;
	void *arg;

	/* main thread */
	struct hash *live;         /**< struct sent by call id            */
	struct list order;         /**< struct sent in file order         */
	struct mqueue *mq;         /**< owned                             */
	uint32_t pending;          /**< settlements in live               */
	uint64_t compact_next;     /**< compact once the file is this big */
	uint64_t compactions;
	bool compacting;
	bool ok;                   /**< health the engine was told of     */
	bool started;

	/* shared, under mtx */
	pthread_mutex_t mtx;
	pthread_cond_t cond;
	struct list q;             /**< struct srec for the writer        */
	struct list done;          /**< struct srec back to main          */
	bool stop;
	bool notified;             /**< a report waits in the mqueue      */
	int werr;                  /**< last write: 0 or its errno        */
	uint64_t size;             /**< length of the file                */
	struct spool_stats st;

	/* writer thread (or main before spool_start) */
	pthread_t tid;
	int fd;
	int dfd;                   /**< dead-letter file, opened on use   */
	bool torn;                 /**< a cut back failed: newline first  */
	uint32_t tick_ms;
	uint64_t tick_due;         /**< monotonic ms                      */
	struct mbuf *wb;           /**< owned: batch for the spool        */
	struct mbuf *db;           /**< owned: batch for the dead letters */
};



/* spool.c */
int  spool_sync_fd(struct spool *sp, int fd);
int  spool_open_append(const char *path);
int  spool_compact_write(struct spool *sp, const uint8_t *p, size_t n,
			 int *fdp);

/* spool_load.c */
struct sent *spool_sent_find(const struct spool *sp, const char *id,
			     bool settle);
void spool_sent_drop(struct spool *sp, const char *id, bool settle);
int  spool_sent_add(struct spool *sp, const char *id, bool settle,
		    struct sent **ep);
int  spool_snapshot(const struct spool *sp, struct mbuf *mb);
