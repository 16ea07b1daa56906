/**
 * @file spool_load.c  The spool's state: what the file must still hold,
 *                     loaded at start and kept by the main thread
 */

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include "billing_int.h"
#include "spool_int.h"


enum { SPOOL_LOAD_BUF = SPOOL_MAX_LINE + 1 };


/* --------------------------------------------------------- live state */

static void sent_destructor(void *arg)
{
	struct sent *e = arg;

	hash_unlink(&e->he);
	list_unlink(&e->le);
	mem_deref(e->id);
	mem_deref(e->line);
}


struct sent_key {
	const char *id;
	bool settle;
};


static bool sent_cmp(struct le *le, void *arg)
{
	const struct sent *e = le->data;
	const struct sent_key *k = arg;

	return e->settle == k->settle && !strcmp(e->id, k->id);
}


struct sent *spool_sent_find(const struct spool *sp, const char *id,
			      bool settle)
{
	struct sent_key k = { id, settle };

	return list_ledata(hash_lookup(sp->live, hash_joaat_str(id),
				       sent_cmp, &k));
}


void spool_sent_drop(struct spool *sp, const char *id, bool settle)
{
	struct sent *e = spool_sent_find(sp, id, settle);

	if (!e)
		return;

	if (e->settle && sp->pending)
		--sp->pending;
	mem_deref(e);
}


int spool_sent_add(struct spool *sp, const char *id, bool settle,
		    struct sent **ep)
{
	struct sent *e;

	spool_sent_drop(sp, id, settle);

	e = mem_zalloc(sizeof(*e), sent_destructor);
	if (!e)
		return ENOMEM;

	if (str_dup(&e->id, id)) {
		mem_deref(e);
		return ENOMEM;
	}

	e->settle = settle;
	hash_append(sp->live, hash_joaat_str(id), &e->he, e);
	list_append(&sp->order, &e->le, e);
	if (settle)
		++sp->pending;

	*ep = e;

	return 0;
}


/* the whole state the file must hold, as file content */
int spool_snapshot(const struct spool *sp, struct mbuf *mb)
{
	struct le *le;
	int err = 0;

	for (le = sp->order.head; le && !err; le = le->next) {
		const struct sent *e = le->data;

		if (e->settle)
			err = mbuf_write_mem(mb, e->line->buf, e->line->end);
		else
			err = spool_line_answer(mb, e->id, e->answer_ms,
					  e->alive_ms);
	}

	return err;
}


/* ---------------------------------------------------------------- load */

struct loader {
	struct spool *sp;
	uint64_t tick;
	uint32_t bad;
	uint32_t answers;
};


static void load_line(struct loader *ld, char *line, uint64_t lineno)
{
	struct spool *sp = ld->sp;
	struct spool_rec rec;
	struct sent *e;
	int err;

	if (spool_parse(line, &rec)) {
		++ld->bad;
		tlog_warn(NULL, "billing: %s:%llu: unreadable line skipped",
			  sp->path, (unsigned long long)lineno);
		return;
	}

	switch (rec.type) {

	case 'S':
		spool_sent_drop(sp, rec.id, false);
		err = spool_sent_add(sp, rec.id, true, &e);
		if (!err) {
			e->line = mbuf_alloc(256);
			err = e->line ? spool_line_settle(e->line, rec.v)
				: ENOMEM;
			if (err)
				spool_sent_drop(sp, rec.id, true);
		}
		if (err) {
			++ld->bad;
			tlog_warn(NULL, "billing: %s:%llu: settlement skipped:"
				  " %m", sp->path, (unsigned long long)lineno,
				  err);
		}
		break;

	case 'D':
		spool_sent_drop(sp, rec.id, true);
		spool_sent_drop(sp, rec.id, false);
		break;

	case 'A':
		if (spool_sent_find(sp, rec.id, true))
			break;
		if (spool_sent_add(sp, rec.id, false, &e))
			break;
		e->answer_ms = rec.answer_ms;
		e->alive_ms = rec.alive_ms;
		break;

	case 'T':
		if (rec.tick_ms > ld->tick)
			ld->tick = rec.tick_ms;
		break;
	}
}


/* stream the file through a bounded buffer; *goodp: end of the last
   whole line */
static int load_stream(struct loader *ld, int fd, uint64_t *goodp)
{
	struct spool *sp = ld->sp;
	uint64_t lineno = 0, off = 0, good = 0;
	size_t have = 0;
	bool skip = false;
	char *buf;
	int err = 0;

	buf = mem_alloc(SPOOL_LOAD_BUF, NULL);
	if (!buf)
		return ENOMEM;

	for (;;) {
		ssize_t r = read(fd, buf + have, SPOOL_LOAD_BUF - have);
		char *p, *nl;

		if (r < 0) {
			if (errno == EINTR)
				continue;
			err = errno;
			break;
		}
		if (r == 0)
			break;

		have += (size_t)r;
		p = buf;
		while ((nl = memchr(p, '\n', (size_t)(buf + have - p)))) {
			++lineno;
			off += (uint64_t)(nl - p) + 1;
			good = off;
			*nl = '\0';
			if (skip)
				skip = false;
			else
				load_line(ld, p, lineno);
			p = nl + 1;
		}

		have = (size_t)(buf + have - p);
		memmove(buf, p, have);

		if (have == SPOOL_LOAD_BUF) {
			if (!skip) {
				++ld->bad;
				tlog_warn(NULL, "billing: %s:%llu: line longer"
					  " than %u bytes skipped", sp->path,
					  (unsigned long long)lineno + 1,
					  SPOOL_MAX_LINE);
			}
			skip = true;
			off += have;
			have = 0;
		}
	}

	if (!err && (have || skip))
		tlog_warn(NULL, "billing: %s:%llu: torn last line ignored",
			  sp->path, (unsigned long long)lineno + 1);

	*goodp = good;
	mem_deref(buf);

	return err;
}


/**
 * Read the spool (at start, before spool_start(); it blocks).  Pending
 * settlements go to h->settleh in file order, answers of calls not
 * settled to h->answerh, the last tick to h->tickh.  Then the file is
 * compacted to that state.
 *
 * @return 0, or an errno of open(2)/read(2)
 */
int spool_load(struct spool *sp, const struct spool_load_h *h, void *arg)
{
	struct loader ld;
	struct mbuf *mb = NULL;
	struct le *le;
	uint64_t good = 0;
	int fd, err;

	if (!sp || !h || sp->started)
		return EINVAL;

	memset(&ld, 0, sizeof(ld));
	ld.sp = sp;

	fd = open(sp->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;

	err = load_stream(&ld, fd, &good);
	(void)close(fd);
	if (err)
		return err;

	pthread_mutex_lock(&sp->mtx);
	sp->st.bad_lines += ld.bad;
	pthread_mutex_unlock(&sp->mtx);

	/* answers of an earlier run: what bounds them is its last tick, not
	   the ticks of this run */
	for (le = sp->order.head; le; le = le->next) {
		struct sent *e = le->data;

		if (!e->settle && !e->alive_ms)
			e->alive_ms = ld.tick;
	}

	if (ld.bad)
		tlog_warn(NULL, "billing: %s: %u unreadable lines skipped",
			  sp->path, ld.bad);
	if (sp->pending)
		tlog_info(NULL, "billing: %u settlements to replay from %s",
			  sp->pending, sp->path);

	/* the state, compacted: a torn line is gone, and so is what the
	   database has */
	mb = mbuf_alloc(4096);
	if (!mb)
		return ENOMEM;

	err = spool_snapshot(sp, mb);
	if (!err)
		err = spool_compact_write(sp, mb->buf, mb->end, &sp->fd);
	if (!err) {
		sp->size = mb->end;
	}
	else {
		tlog_warn(NULL, "billing: cannot compact %s: %m", sp->path,
			  err);
		/* at least no torn line to append to */
		if (sp->size > good && !ftruncate(sp->fd, (off_t)good))
			sp->size = good;
		err = 0;
	}
	mem_deref(mb);

	if (h->tickh)
		h->tickh(ld.tick, arg);

	for (le = sp->order.head; le; ) {
		struct sent *e = le->data;

		le = le->next;

		if (!e->settle) {
			if (h->answerh)
				h->answerh(e->id, e->answer_ms, e->alive_ms,
					   arg);
		}
		else if (h->settleh) {
			struct spool_rec rec;
			char *line;

			/* decode a copy: the handler may forget it */
			if (re_sdprintf(&line, "%b", e->line->buf,
					e->line->end - 1))
				return ENOMEM;
			if (!spool_parse(line, &rec))
				h->settleh((const char *const *)rec.v, arg);
			mem_deref(line);
		}
	}

	return 0;
}
