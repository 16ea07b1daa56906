/**
 * @file spool.c  Write-ahead log of settlements, answers and liveness
 *
 * state_dir/billing.spool is a text file, one record a line, each line
 * starting with its type and the format version:
 *
 *   S3 <19 fields of tg_settle_class4>  a settlement, durable before it
 *                                       is sent to the database
 *   A2 <call id> <answer ms> [<alive ms>]
 *                                       a call was answered; an alive time
 *                                       bounds its recovery (written only
 *                                       for calls of an earlier run)
 *   T2 <ms>                             the node was alive then (tick)
 *   D2 <call id>                        its settlement reached the database
 *
 * Fields are separated by a tab.  A text field is "-" for SQL NULL, else
 * "=" and the value with '%', tab, newline, carriage return and backslash
 * written as %XX; a time is decimal ms since the epoch.  Lines of earlier
 * versions are still read: "S2" with the 14 fields of tg_settle_media
 * (the class-4 fields NULL), "S" with 13 fields (no media) or 14, "D".
 *
 * One writer thread owns the file.  The main thread hands it records
 * (list under a mutex, condition variable); the thread writes all that
 * is queued, makes it durable with one fdatasync (group commit) and
 * reports back through libre's mqueue; only then is a settlement sent.
 * Done records need no sync: a settlement replayed after a crash is
 * harmless (tg_settle is idempotent on the call id).  Once a second the
 * thread adds a tick.  A write or sync that fails (ENOSPC, EIO, EDQUOT,
 * EFBIG) truncates the file to its last good length, so no torn line is
 * left in the middle, and the spool counts as unhealthy until a later
 * write (at the latest the next tick) succeeds.
 *
 * The main thread keeps what the file must still hold (pending
 * settlements, answers of calls not yet settled) in a hash by call id.
 * When the file grows past its limit, and at start after loading, it is
 * compacted: a new file with only that state, fdatasync, rename over the
 * old one, fsync of the directory.  Records queued after the snapshot go
 * to the new file.  Settlements the database refuses go to
 * state_dir/billing.dead, same format, synced.
 *
 * Loading streams the file through a bounded line buffer; lines too long
 * or unparseable are counted and logged with their number, a torn last
 * line is ignored and cut off.
 */

#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include "billing_int.h"
#include "spool_int.h"


enum { SPOOL_MQ_REPORT = 1 };


/* ------------------------------------------------------------ clocks */

static uint64_t mono_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);

	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}


static uint64_t mono_us(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);

	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}


static uint64_t wall_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_REALTIME, &ts);

	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}


/* ---------------------------------------------------------- file I/O */

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t r = write(fd, p, n);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		if (r == 0)
			return EIO;

		p += r;
		n -= (size_t)r;
	}

	return 0;
}


int spool_sync_fd(struct spool *sp, int fd)
{
	uint64_t t = mono_us(), d;
	int err = 0;

	if (fdatasync(fd))
		err = errno;

	d = mono_us() - t;

	pthread_mutex_lock(&sp->mtx);
	++sp->st.syncs;
	sp->st.sync_us_sum += d;
	if (d > sp->st.sync_us_max)
		sp->st.sync_us_max = d;
	pthread_mutex_unlock(&sp->mtx);

	return err;
}


int spool_open_append(const char *path)
{
	return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
}


/*
 * Replace the spool file by content: a new file, fdatasync, rename over
 * the old one, fsync of the directory.  On success *fdp is the new file's
 * descriptor (the old one is closed); on failure nothing changed.
 */
int spool_compact_write(struct spool *sp, const uint8_t *p, size_t n,
			 int *fdp)
{
	char *tmp = NULL;
	int fd = -1, dfd = -1, err;

	err = re_sdprintf(&tmp, "%s.new", sp->path);
	if (err)
		return err;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC,
		  0600);
	if (fd < 0) {
		err = errno;
		goto out;
	}

	err = write_all(fd, p, n);
	if (!err)
		err = spool_sync_fd(sp, fd);
	if (err)
		goto out;

	if (rename(tmp, sp->path)) {
		err = errno;
		goto out;
	}

	dfd = open(sp->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		if (fsync(dfd))
			err = errno;
		(void)close(dfd);
	}

	/* renamed: the new file is the spool even if the directory's sync
	   failed (then only the rename may be lost at a crash) */
	if (*fdp >= 0)
		(void)close(*fdp);
	*fdp = fd;
	fd = -1;

 out:
	if (fd >= 0) {
		(void)close(fd);
		(void)unlink(tmp);
	}
	mem_deref(tmp);

	return err;
}


/* ------------------------------------------------------ writer thread */

/* write the dead letters of a batch, synced */
static int flush_dead(struct spool *sp)
{
	int err;

	if (!sp->db->end)
		return 0;

	if (sp->dfd < 0)
		sp->dfd = spool_open_append(sp->dead_path);
	if (sp->dfd < 0)
		err = errno;
	else
		err = write_all(sp->dfd, sp->db->buf, sp->db->end);
	if (!err)
		err = spool_sync_fd(sp, sp->dfd);

	sp->db->end = sp->db->pos = 0;

	return err;
}


/* write the batch buffer; sync if asked; on failure cut the file back to
   its last good length */
static int flush_spool(struct spool *sp, bool sync, uint64_t *sizep)
{
	int err;

	if (!sp->wb->end)
		return 0;

	if (sp->torn) {
		err = write_all(sp->fd, (const uint8_t *)"\n", 1);
		if (err)
			goto out;
		sp->torn = false;
		*sizep = (uint64_t)lseek(sp->fd, 0, SEEK_END);
	}

	err = write_all(sp->fd, sp->wb->buf, sp->wb->end);
	if (!err && sync)
		err = spool_sync_fd(sp, sp->fd);

	/* if even the truncation fails, the next load skips the torn
	   line and the next batch starts on a line of its own */
	if (!err)
		*sizep += sp->wb->end;
	else if (ftruncate(sp->fd, (off_t)*sizep))
		sp->torn = true;

 out:
	sp->wb->end = sp->wb->pos = 0;

	return err;
}


static void tick_line(struct spool *sp)
{
	(void)mbuf_printf(sp->wb, "T2\t%llu\n",
			  (unsigned long long)wall_ms());
}


/* the outcome of the records from..to (exclusive) */
static void set_errs(struct le *from, struct le *to, int err, int derr)
{
	struct le *le;

	for (le = from; le && le != to; le = le->next) {
		struct srec *r = le->data;

		if (!r->err)
			r->err = r->type == SREC_DEAD ? derr : err;
	}
}


/* one batch: what was queued, then a tick if one is due; returns the
   spool's error, *wrotep if the spool was written */
static int write_batch(struct spool *sp, struct list *batch, bool tick,
		       uint64_t *sizep, bool *wrotep)
{
	struct le *le, *seg = batch->head;
	bool sync = tick;
	int err, derr;

	*wrotep = tick;

	for (le = batch->head; le; le = le->next) {
		struct srec *r = le->data;

		switch (r->type) {

		case SREC_SETTLE:
		case SREC_ANSWER:
			sync = true;
			/* fall through */
		case SREC_DONE:
			*wrotep = true;
			if (mbuf_write_mem(sp->wb, r->mb->buf, r->mb->end))
				r->err = ENOMEM;
			break;

		case SREC_DEAD:
			if (mbuf_write_mem(sp->db, r->mb->buf, r->mb->end))
				r->err = ENOMEM;
			break;

		case SREC_COMPACT:
			/* what came before goes to the old file first */
			derr = flush_dead(sp);
			err = flush_spool(sp, sync, sizep);
			set_errs(seg, le, err, derr);
			sync = false;
			seg = le->next;

			/* the node is alive now: the new file says so */
			tick_line(sp);
			if (mbuf_write_mem(r->mb, sp->wb->buf, sp->wb->end))
				r->err = ENOMEM;
			sp->wb->end = sp->wb->pos = 0;

			if (!r->err)
				r->err = spool_compact_write(sp, r->mb->buf,
						       r->mb->end, &sp->fd);
			if (!r->err) {
				*sizep = r->mb->end;
				sp->torn = false;
			}
			break;
		}
	}

	if (tick)
		tick_line(sp);

	derr = flush_dead(sp);
	err = flush_spool(sp, sync, sizep);
	set_errs(seg, NULL, err, derr);

	return err;
}


static void *writer(void *arg)
{
	struct spool *sp = arg;
	uint64_t size;

	pthread_mutex_lock(&sp->mtx);
	size = sp->size;
	pthread_mutex_unlock(&sp->mtx);

	for (;;) {
		struct list batch = LIST_INIT;
		bool stop, tick = false, wrote = false, push = false;
		uint64_t now;
		int err;

		pthread_mutex_lock(&sp->mtx);
		for (;;) {
			now = mono_ms();
			if (sp->tick_ms && now >= sp->tick_due)
				tick = true;
			if (tick || sp->stop || !list_isempty(&sp->q))
				break;

			if (sp->tick_ms) {
				struct timespec ts;
				uint64_t d = sp->tick_due;

				ts.tv_sec = (time_t)(d / 1000);
				ts.tv_nsec = (long)(d % 1000) * 1000000;
				(void)pthread_cond_timedwait(&sp->cond,
							     &sp->mtx, &ts);
			}
			else {
				(void)pthread_cond_wait(&sp->cond, &sp->mtx);
			}
		}
		while (sp->q.head) {
			struct le *le = sp->q.head;

			list_unlink(le);
			list_append(&batch, le, le->data);
		}
		stop = sp->stop;
		pthread_mutex_unlock(&sp->mtx);

		if (tick)
			sp->tick_due = now + sp->tick_ms;

		err = write_batch(sp, &batch, tick, &size, &wrote);

		pthread_mutex_lock(&sp->mtx);
		sp->size = size;
		if (wrote) {
			if (err)
				++sp->st.errors;
			if (err != sp->werr)
				push = true;
			sp->werr = err;
		}
		while (batch.head) {
			struct le *le = batch.head;

			list_unlink(le);
			list_append(&sp->done, le, le->data);
			push = true;
		}
		if (push && !sp->notified) {
			sp->notified = true;
			(void)mqueue_push(sp->mq, SPOOL_MQ_REPORT, NULL);
		}
		pthread_mutex_unlock(&sp->mtx);

		if (stop)
			break;
	}

	return NULL;
}


/* -------------------------------------------------------- main thread */

static void srec_destructor(void *arg)
{
	struct srec *r = arg;

	list_unlink(&r->le);
	mem_deref(r->mb);
	mem_deref(r->arg);
}


static void compact_start(struct spool *sp);


/* the writer reported: durable settlements, health, size */
static void mqueue_handler(int id, void *data, void *arg)
{
	struct spool *sp = arg;
	struct list l = LIST_INIT;
	struct le *le;
	bool restored = false;
	uint64_t size;
	int werr;
	(void)id;
	(void)data;

	pthread_mutex_lock(&sp->mtx);
	sp->notified = false;
	while ((le = sp->done.head)) {
		list_unlink(le);
		list_append(&l, le, le->data);
	}
	werr = sp->werr;
	size = sp->size;
	pthread_mutex_unlock(&sp->mtx);

	/* health first: a settlement reported as failed is sent at once */
	if (sp->ok != !werr) {
		restored = !werr;
		sp->ok = !werr;
		if (werr)
			tlog_err(NULL, "billing: cannot write %s: %m; new calls"
				 " are refused until it can be written again",
				 sp->path, werr);
		else
			tlog_warn(NULL, "billing: %s can be written again",
				  sp->path);
		if (sp->healthh)
			sp->healthh(sp->ok, werr, sp->arg);
	}

	while ((le = l.head)) {
		struct srec *r = le->data;

		list_unlink(le);

		if (r->type == SREC_COMPACT) {
			sp->compacting = false;
			if (r->err) {
				tlog_warn(NULL, "billing: cannot compact %s:"
					  " %m", sp->path, r->err);
				sp->compact_next = size + sp->compact_size;
			}
			else {
				++sp->compactions;
				sp->compact_next = 2 * size > sp->compact_size
					? 2 * size : sp->compact_size;
			}
		}
		else if (r->type == SREC_DEAD && r->err) {
			tlog_err(NULL, "billing: cannot write %s: %m",
				 sp->dead_path, r->err);
		}
		else if (r->type == SREC_SETTLE && sp->durh) {
			sp->durh(r->arg, r->err, sp->arg);
		}

		mem_deref(r);
	}

	/* writable again: what failed to reach the file goes there now */
	if (!sp->compacting && (restored || size >= sp->compact_next))
		compact_start(sp);
}


static int enqueue(struct spool *sp, enum srec_type type, struct mbuf *mb,
		   void *arg)
{
	struct srec *r;

	r = mem_zalloc(sizeof(*r), srec_destructor);
	if (!r) {
		mem_deref(mb);
		return ENOMEM;
	}

	r->type = type;
	r->mb = mb;
	r->arg = mem_ref(arg);

	pthread_mutex_lock(&sp->mtx);
	list_append(&sp->q, &r->le, r);
	pthread_cond_signal(&sp->cond);
	pthread_mutex_unlock(&sp->mtx);

	return 0;
}


static void compact_start(struct spool *sp)
{
	struct mbuf *mb = mbuf_alloc(4096);

	if (!mb || spool_snapshot(sp, mb)) {
		mem_deref(mb);
		return;
	}

	tlog_info(NULL, "billing: compacting %s (%u settlements pending)",
		  sp->path, sp->pending);
	if (!enqueue(sp, SREC_COMPACT, mb, NULL))
		sp->compacting = true;
}


static void spool_destructor(void *arg)
{
	struct spool *sp = arg;
	struct le *le;

	if (sp->started) {
		pthread_mutex_lock(&sp->mtx);
		sp->stop = true;
		pthread_cond_signal(&sp->cond);
		pthread_mutex_unlock(&sp->mtx);
		(void)pthread_join(sp->tid, NULL);
	}

	/* written, but not reported: the next start reads them */
	while ((le = sp->q.head))
		mem_deref(le->data);
	while ((le = sp->done.head))
		mem_deref(le->data);

	if (sp->fd >= 0)
		(void)close(sp->fd);
	if (sp->dfd >= 0)
		(void)close(sp->dfd);

	list_flush(&sp->order);
	hash_flush(sp->live);
	mem_deref(sp->live);
	mem_deref(sp->mq);
	mem_deref(sp->wb);
	mem_deref(sp->db);
	mem_deref(sp->path);
	mem_deref(sp->dead_path);
	mem_deref(sp->dir);

	pthread_cond_destroy(&sp->cond);
	pthread_mutex_destroy(&sp->mtx);
}


/**
 * Open (create) the spool file in a directory, creating the directory if
 * it does not exist.  Nothing is written before spool_load() and
 * spool_start().
 *
 * @param spp           where to store the spool
 * @param dir           the state directory
 * @param compact_size  compact the file once it is this long (bytes)
 * @param durh          a settlement is durable (or could not be written)
 * @param healthh       the spool became unhealthy or healthy again
 * @param arg           handler argument
 *
 * @return 0 or an errno of open(2)/mkdir(2)
 */
int spool_alloc(struct spool **spp, const char *dir, uint64_t compact_size,
		spool_durable_h *durh, spool_health_h *healthh, void *arg)
{
	struct spool *sp;
	pthread_condattr_t ca;
	struct stat s;
	int err;

	if (!spp || !dir || !*dir)
		return EINVAL;

	sp = mem_zalloc(sizeof(*sp), spool_destructor);
	if (!sp)
		return ENOMEM;

	sp->fd = sp->dfd = -1;
	pthread_mutex_init(&sp->mtx, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&sp->cond, &ca);
	pthread_condattr_destroy(&ca);

	list_init(&sp->order);
	list_init(&sp->q);
	list_init(&sp->done);
	sp->compact_size = compact_size ? compact_size : SPOOL_COMPACT_SIZE;
	sp->compact_next = sp->compact_size;
	sp->durh = durh;
	sp->healthh = healthh;
	sp->arg = arg;
	sp->ok = true;

	err  = str_dup(&sp->dir, dir);
	err |= re_sdprintf(&sp->path, "%s/billing.spool", dir);
	err |= re_sdprintf(&sp->dead_path, "%s/billing.dead", dir);
	if (err) {
		err = ENOMEM;
		goto out;
	}

	err = hash_alloc(&sp->live, 1024);
	if (err)
		goto out;

	sp->wb = mbuf_alloc(8192);
	sp->db = mbuf_alloc(1024);
	if (!sp->wb || !sp->db) {
		err = ENOMEM;
		goto out;
	}

	err = mqueue_alloc(&sp->mq, mqueue_handler, sp);
	if (err)
		goto out;

	if (mkdir(dir, 0750) && errno != EEXIST) {
		err = errno;
		goto out;
	}

	sp->fd = spool_open_append(sp->path);
	if (sp->fd < 0) {
		err = errno;
		goto out;
	}

	if (!fstat(sp->fd, &s))
		sp->size = (uint64_t)s.st_size;

 out:
	if (err)
		mem_deref(sp);
	else
		*spp = sp;

	return err;
}


/**
 * Start the writer thread
 *
 * @param sp       the spool
 * @param tick_ms  a tick record this often (0: none)
 *
 * @return 0 or an errno of pthread_create()
 */
int spool_start(struct spool *sp, uint32_t tick_ms)
{
	int err;

	if (!sp || sp->started)
		return EINVAL;

	sp->tick_ms = tick_ms;
	sp->tick_due = mono_ms();

	err = pthread_create(&sp->tid, NULL, writer, sp);
	if (err)
		return err;

	sp->started = true;

	return 0;
}


/* ---------------------------------------------------------- records */

/**
 * Append a settlement; durh runs once it is durable (or could not be
 * written).  arg must be a mem object: the spool holds a reference to it
 * until then.
 *
 * @return 0, EINVAL, ENOMEM or EMSGSIZE (too long for a line)
 */
int spool_settle(struct spool *sp, const char *const v[SETTLE_NPARAMS],
		 void *arg)
{
	struct mbuf *mb, *copy;
	struct sent *e;
	int err;

	if (!sp || !v || !v[0] || !v[0][0] || !v[1])
		return EINVAL;

	mb = mbuf_alloc(512);
	if (!mb)
		return ENOMEM;

	/* room left for what a reader of an older line adds */
	err = spool_line_settle(mb, v);
	if (!err && mb->end > SPOOL_MAX_LINE - 16)
		err = EMSGSIZE;
	if (err)
		goto out;

	copy = mbuf_alloc(mb->end);
	if (!copy) {
		err = ENOMEM;
		goto out;
	}
	(void)mbuf_write_mem(copy, mb->buf, mb->end);

	/* settled: its answer is no longer needed */
	spool_sent_drop(sp, v[0], false);
	err = spool_sent_add(sp, v[0], true, &e);
	if (err) {
		mem_deref(copy);
		goto out;
	}
	e->line = copy;

	err = enqueue(sp, SREC_SETTLE, mb, arg);
	mb = NULL;
	if (err)
		spool_sent_drop(sp, v[0], true);

 out:
	mem_deref(mb);

	return err;
}


/**
 * A call was answered: its answer time, durable with the next group
 * commit, bounds its recovery after a crash
 */
int spool_answer(struct spool *sp, const char *id, uint64_t answer_ms)
{
	struct mbuf *mb;
	struct sent *e;
	int err;

	if (!sp || !id || !*id)
		return EINVAL;

	mb = mbuf_alloc(64);
	if (!mb)
		return ENOMEM;

	err = spool_line_answer(mb, id, answer_ms, 0);
	if (!err)
		err = spool_sent_add(sp, id, false, &e);
	if (err) {
		mem_deref(mb);
		return err;
	}

	e->answer_ms = answer_ms;

	return enqueue(sp, SREC_ANSWER, mb, NULL);
}


/** A settlement reached the database (no sync of its own) */
int spool_done(struct spool *sp, const char *id)
{
	struct mbuf *mb;
	int err;

	if (!sp || !id)
		return EINVAL;

	if (!spool_sent_find(sp, id, true))
		return 0;

	spool_sent_drop(sp, id, true);
	spool_sent_drop(sp, id, false);

	mb = mbuf_alloc(64);
	if (!mb)
		return ENOMEM;

	err  = mbuf_write_str(mb, "D2\t");
	err |= spool_field_encode(mb, id);
	err |= mbuf_write_u8(mb, '\n');
	if (err) {
		mem_deref(mb);
		return ENOMEM;
	}

	return enqueue(sp, SREC_DONE, mb, NULL);
}


/**
 * Forget the answer of a call that will have no settlement from this run
 * (the next compaction leaves it out)
 */
void spool_forget(struct spool *sp, const char *id)
{
	if (!sp || !id)
		return;

	spool_sent_drop(sp, id, false);
}


/** Append a settlement to the dead-letter file (synced) */
int spool_dead(struct spool *sp, const char *const v[SETTLE_NPARAMS])
{
	struct mbuf *mb;
	int err;

	if (!sp || !v)
		return EINVAL;

	mb = mbuf_alloc(512);
	if (!mb)
		return ENOMEM;

	err = spool_line_settle(mb, v);
	if (err == EMSGSIZE)
		err = 0;     /* nothing reads it back but an operator */
	if (err) {
		mem_deref(mb);
		return err;
	}

	return enqueue(sp, SREC_DEAD, mb, NULL);
}


/** Is the spool file writable, as the last write found? */
bool spool_ok(const struct spool *sp)
{
	return sp ? sp->ok : false;
}


/** Settlements the file holds that the database has not confirmed */
uint32_t spool_pending(const struct spool *sp)
{
	return sp ? sp->pending : 0;
}


const char *spool_path(const struct spool *sp)
{
	return sp ? sp->path : NULL;
}


const char *spool_dead_path(const struct spool *sp)
{
	return sp ? sp->dead_path : NULL;
}


void spool_stats(const struct spool *sp, struct spool_stats *st)
{
	struct spool *m = (struct spool *)sp;

	if (!sp || !st)
		return;

	pthread_mutex_lock(&m->mtx);
	*st = sp->st;
	st->size = sp->size;
	pthread_mutex_unlock(&m->mtx);

	st->compactions = sp->compactions;
	st->ok = sp->ok;
	st->pending = sp->pending;
}
