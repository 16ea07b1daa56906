/**
 * @file fuzz_spool.c  Fuzz target: the billing spool reader
 *
 * The input is a spool file (billing.spool, as a killed daemon may leave
 * it).  It is loaded as the daemon loads it at start, which compacts the
 * file to what is still pending; loading the compacted file again must
 * hand over the same settlements and answers.
 */

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "billing_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char base[] = "/tmp/fuzz_spool.XXXXXX";
static char path[96];


static void cleanup(void)
{
	char p[128];

	(void)snprintf(p, sizeof(p), "%s.new", path);
	(void)unlink(p);
	(void)unlink(path);
	(void)rmdir(base);
}


static void init(void)
{
	tlog_set_level(-1);

	if (!mkdtemp(base))
		abort();

	(void)snprintf(path, sizeof(path), "%s/billing.spool", base);
	atexit(cleanup);
}


static void put_file(const uint8_t *p, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0)
		abort();
	if (size && write(fd, p, size) != (ssize_t)size)
		abort();
	(void)close(fd);
}


/* what was handed over, as one string: fields separated, NULL told
   apart */
static void settle_h(const char *const v[SETTLE_NPARAMS], void *arg)
{
	struct mbuf *mb = arg;
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


static void answer_h(const char *id, uint64_t answer_ms, uint64_t alive_ms,
		     void *arg)
{
	(void)mbuf_printf(arg, "A%s %llu %llu\n", id,
			  (unsigned long long)answer_ms,
			  (unsigned long long)alive_ms);
}


static const struct spool_load_h handlers = { settle_h, answer_h, NULL };


static int load(struct mbuf *mb, uint32_t *pending)
{
	struct spool *sp;
	int err;

	err = spool_alloc(&sp, base, 0, NULL, NULL, NULL);
	if (err)
		abort();

	err = spool_load(sp, &handlers, mb);
	*pending = spool_pending(sp);
	mem_deref(sp);

	return err;
}


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mbuf *m1, *m2;
	uint32_t p1, p2;

	if (!path[0])
		init();

	put_file(data, size);

	m1 = mbuf_alloc(256);
	m2 = mbuf_alloc(256);
	if (!m1 || !m2)
		abort();

	if (load(m1, &p1))
		goto out;

	if (load(m2, &p2))
		abort();

	if (p1 != p2 || m1->end != m2->end ||
	    memcmp(m1->buf, m2->buf, m1->end))
		abort();

 out:
	mem_deref(m2);
	mem_deref(m1);

	return 0;
}
