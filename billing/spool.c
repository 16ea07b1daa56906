/**
 * @file spool.c  Settlements not yet written to the database, on disk
 *
 * An append-only text file, state_dir/billing.spool, one record a line:
 *
 *   S <13 fields of tg_settle, tab separated>   a settlement
 *   D <call id>                                 it reached the database
 *
 * A field is "-" for SQL NULL, else "=" and the value with '%', tab,
 * newline, carriage return and backslash written as %XX.  A record is
 * written with one write(2) on an O_APPEND descriptor, so a process killed
 * at any moment leaves whole lines (a torn last line is skipped on load).
 * When nothing is pending any more the file is truncated.  Replaying a
 * settlement twice is harmless: tg_settle is idempotent on the call id.
 */

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include "billing_int.h"


enum { SPOOL_MAX_LINE = 8192 };

struct spool {
	char *path;          /**< owned */
	int fd;
	uint32_t pending;
};


static void spool_destructor(void *arg)
{
	struct spool *sp = arg;

	if (sp->fd >= 0)
		(void)close(sp->fd);
	mem_deref(sp->path);
}


/**
 * Open (create) the spool file in a directory, creating the directory if
 * it does not exist
 *
 * @return 0 or an errno of open(2)/mkdir(2)
 */
int spool_open(struct spool **spp, const char *dir)
{
	struct spool *sp;
	int err;

	if (!spp || !dir || !*dir)
		return EINVAL;

	sp = mem_zalloc(sizeof(*sp), spool_destructor);
	if (!sp)
		return ENOMEM;

	sp->fd = -1;

	err = re_sdprintf(&sp->path, "%s/billing.spool", dir);
	if (err)
		goto out;

	if (mkdir(dir, 0750) && errno != EEXIST) {
		err = errno;
		goto out;
	}

	sp->fd = open(sp->path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC,
		      0600);
	if (sp->fd < 0) {
		err = errno;
		goto out;
	}

 out:
	if (err)
		mem_deref(sp);
	else
		*spp = sp;

	return err;
}


static bool must_escape(char c)
{
	return c == '%' || c == '\t' || c == '\n' || c == '\r' || c == '\\';
}


static int field_encode(struct mbuf *mb, const char *v)
{
	int err = 0;

	if (!v)
		return mbuf_write_u8(mb, '-');

	err |= mbuf_write_u8(mb, '=');
	for (; *v && !err; v++) {
		if (must_escape(*v))
			err = mbuf_printf(mb, "%%%02X", (uint8_t)*v);
		else
			err = mbuf_write_u8(mb, (uint8_t)*v);
	}

	return err;
}


static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}


/* decode one field in place; *nullp for "-" */
static int field_decode(char *f, bool *nullp)
{
	char *r, *w;

	if (!strcmp(f, "-")) {
		*nullp = true;
		return 0;
	}

	if (f[0] != '=')
		return EBADMSG;

	*nullp = false;
	for (r = f + 1, w = f; *r; r++) {
		if (*r == '%') {
			int h = hexval(r[1]), l = h < 0 ? -1 : hexval(r[2]);

			if (h < 0 || l < 0)
				return EBADMSG;
			*w++ = (char)(h * 16 + l);
			r += 2;
		}
		else {
			*w++ = *r;
		}
	}
	*w = '\0';

	return 0;
}


static int write_all(int fd, const uint8_t *p, size_t n)
{
	ssize_t r = write(fd, p, n);

	if (r < 0)
		return errno;

	return (size_t)r == n ? 0 : EIO;
}


/** Append a settlement */
int spool_add(struct spool *sp, const char *const v[SETTLE_NPARAMS])
{
	struct mbuf *mb;
	int i, err;

	if (!sp || !v || !v[0])
		return EINVAL;

	mb = mbuf_alloc(512);
	if (!mb)
		return ENOMEM;

	err = mbuf_write_u8(mb, 'S');
	for (i = 0; i < SETTLE_NPARAMS && !err; i++) {
		err |= mbuf_write_u8(mb, '\t');
		err |= field_encode(mb, v[i]);
	}
	err |= mbuf_write_u8(mb, '\n');
	if (err)
		goto out;

	if (mb->end > SPOOL_MAX_LINE) {
		err = EMSGSIZE;
		goto out;
	}

	err = write_all(sp->fd, mb->buf, mb->end);
	if (!err)
		++sp->pending;

 out:
	mem_deref(mb);

	return err;
}


/** A spooled settlement reached the database */
int spool_done(struct spool *sp, const char *call_id)
{
	struct mbuf *mb;
	int err;

	if (!sp || !call_id)
		return EINVAL;

	mb = mbuf_alloc(64);
	if (!mb)
		return ENOMEM;

	err  = mbuf_write_str(mb, "D\t");
	err |= field_encode(mb, call_id);
	err |= mbuf_write_u8(mb, '\n');
	if (!err)
		err = write_all(sp->fd, mb->buf, mb->end);
	mem_deref(mb);

	if (sp->pending)
		--sp->pending;

	if (!sp->pending && ftruncate(sp->fd, 0))
		tlog_warn(NULL, "billing: cannot truncate %s: %m", sp->path,
			  errno);

	return err;
}


struct entry {
	struct le le;
	char *line;                    /**< owned, decoded in place */
	const char *v[SETTLE_NPARAMS]; /**< into line               */
	bool done;
};


static void entry_destructor(void *arg)
{
	struct entry *e = arg;

	list_unlink(&e->le);
	mem_deref(e->line);
}


/* a settlement keeps the line (*keptp), a done record does not */
static int parse_line(struct list *entries, char *line, bool *keptp)
{
	char *fields[SETTLE_NPARAMS + 2], *save = NULL, *f;
	unsigned n = 0, i;
	struct entry *e;
	bool null;

	for (f = strtok_r(line, "\t", &save); f && n < ARRAY_SIZE(fields);
	     f = strtok_r(NULL, "\t", &save))
		fields[n++] = f;

	*keptp = false;

	if (n > SETTLE_NPARAMS + 1)
		return EBADMSG;

	if (n == 2 && !strcmp(fields[0], "D")) {
		struct le *le;

		if (field_decode(fields[1], &null) || null)
			return EBADMSG;

		for (le = entries->head; le; le = le->next) {
			e = le->data;
			if (!e->done && !strcmp(e->v[0], fields[1]))
				e->done = true;
		}
		return 0;
	}

	if (n != SETTLE_NPARAMS + 1 || strcmp(fields[0], "S"))
		return EBADMSG;

	e = mem_zalloc(sizeof(*e), entry_destructor);
	if (!e)
		return ENOMEM;

	for (i = 0; i < SETTLE_NPARAMS; i++) {
		if (field_decode(fields[i + 1], &null)) {
			mem_deref(e);
			return EBADMSG;
		}
		e->v[i] = null ? NULL : fields[i + 1];
	}

	if (!e->v[0] || !e->v[1]) {
		mem_deref(e);
		return EBADMSG;
	}

	e->line = line;
	*keptp = true;
	list_append(entries, &e->le, e);

	return 0;
}


/**
 * Read the spool: every settlement without its done record is handed to
 * h (in file order) and counts as pending
 *
 * @return 0, or an errno of read(2)
 */
int spool_load(struct spool *sp, spool_entry_h *h, void *arg)
{
	struct list entries = LIST_INIT;
	struct mbuf *mb = NULL;
	struct le *le;
	uint32_t bad = 0, n = 0;
	char *p, *end;
	int err = 0;

	if (!sp || !h)
		return EINVAL;

	mb = mbuf_alloc(4096);
	if (!mb)
		return ENOMEM;

	if (lseek(sp->fd, 0, SEEK_SET) < 0) {
		err = errno;
		goto out;
	}

	for (;;) {
		ssize_t r;

		err = mbuf_resize(mb, mb->end + 65536);
		if (err)
			goto out;

		r = read(sp->fd, mb->buf + mb->end, 65536);
		if (r < 0) {
			err = errno;
			goto out;
		}
		if (r == 0)
			break;
		mb->end += (size_t)r;
	}

	p = (char *)mb->buf;
	end = p + mb->end;
	while (p < end) {
		char *nl = memchr(p, '\n', end - p);
		char *line = NULL;
		bool kept = false;

		if (!nl) {
			++bad;          /* torn last line */
			break;
		}

		*nl = '\0';
		if (str_dup(&line, p)) {
			err = ENOMEM;
			goto out;
		}

		if (parse_line(&entries, line, &kept))
			++bad;
		if (!kept)
			mem_deref(line);

		p = nl + 1;
	}

	if (bad)
		tlog_warn(NULL, "billing: %s: %u unreadable lines skipped",
			  sp->path, bad);

	for (le = entries.head; le; le = le->next) {
		struct entry *e = le->data;

		if (e->done)
			continue;

		++n;
		h(e->v, arg);
	}

	sp->pending = n;
	if (n)
		tlog_info(NULL, "billing: %u settlements to replay from %s",
			  n, sp->path);
	else if (ftruncate(sp->fd, 0))
		err = errno;

 out:
	list_flush(&entries);
	mem_deref(mb);

	return err;
}


uint32_t spool_pending(const struct spool *sp)
{
	return sp ? sp->pending : 0;
}


const char *spool_path(const struct spool *sp)
{
	return sp ? sp->path : NULL;
}
