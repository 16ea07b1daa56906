/**
 * @file fuzz_spool.c  Fuzz target: the billing spool reader
 *
 * The input is a spool file (billing.spool, as a killed daemon may leave
 * it).  It is loaded as the daemon loads it at start; every settlement
 * still pending is written again to a second spool with spool_add() and
 * that one loaded too: both loads must hand over the same settlements.
 */

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "billing_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct spool *sp_in, *sp_out;
static char base[] = "/tmp/fuzz_spool.XXXXXX";
static char dir_in[64], dir_out[64];


static void cleanup(void)
{
	(void)unlink(spool_path(sp_in));
	(void)unlink(spool_path(sp_out));
	sp_in = mem_deref(sp_in);
	sp_out = mem_deref(sp_out);
	(void)rmdir(dir_in);
	(void)rmdir(dir_out);
	(void)rmdir(base);
}


static void init(void)
{
	tlog_set_level(-1);

	if (!mkdtemp(base))
		abort();

	/* spool_open() makes the directories */
	(void)snprintf(dir_in, sizeof(dir_in), "%s/in", base);
	(void)snprintf(dir_out, sizeof(dir_out), "%s/out", base);
	if (spool_open(&sp_in, dir_in) || spool_open(&sp_out, dir_out))
		abort();

	atexit(cleanup);
}


static void put_file(const char *path, const uint8_t *data, size_t size)
{
	int fd = open(path, O_WRONLY | O_TRUNC);

	if (fd < 0)
		abort();
	if (size && write(fd, data, size) != (ssize_t)size)
		abort();
	(void)close(fd);
}


/* the settlements as one string: fields separated, NULL told apart */
static void digest(struct mbuf *mb, const char *const v[SETTLE_NPARAMS])
{
	int i;

	for (i = 0; i < SETTLE_NPARAMS; i++) {
		if (v[i])
			(void)mbuf_printf(mb, "=%s", v[i]);
		else
			(void)mbuf_write_u8(mb, '-');
		(void)mbuf_write_u8(mb, 0);
	}
	(void)mbuf_write_u8(mb, '\n');
}


struct state {
	struct mbuf *mb;
	bool rewrite;
	bool toolong;
};


static void entry_h(const char *const v[SETTLE_NPARAMS], void *arg)
{
	struct state *s = arg;
	int err;

	digest(s->mb, v);

	if (!s->rewrite)
		return;

	err = spool_add(sp_out, v);
	if (err == EMSGSIZE)
		s->toolong = true;     /* the reader takes longer lines */
	else if (err)
		abort();
}


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct state s1 = { NULL, true, false }, s2 = { NULL, false, false };

	if (!sp_in)
		init();

	put_file(spool_path(sp_in), data, size);
	put_file(spool_path(sp_out), NULL, 0);

	s1.mb = mbuf_alloc(256);
	s2.mb = mbuf_alloc(256);
	if (!s1.mb || !s2.mb)
		abort();

	if (spool_load(sp_in, entry_h, &s1))
		goto out;

	if (spool_load(sp_out, entry_h, &s2))
		abort();

	if (!s1.toolong && (spool_pending(sp_in) != spool_pending(sp_out) ||
			    s1.mb->end != s2.mb->end ||
			    memcmp(s1.mb->buf, s2.mb->buf, s1.mb->end)))
		abort();

 out:
	mem_deref(s2.mb);
	mem_deref(s1.mb);

	return 0;
}
