/**
 * @file test_spool.c  Unit tests of the settlement spool (billing/spool*.c)
 *
 * The line format (round trip with escapes, version 1 lines, refused
 * lines), loading a file with old and new records, a torn last line and a
 * line longer than the buffer, compaction at load and by size, the writer
 * thread (a settlement is in the file when reported durable, answers and
 * ticks come back at the next start), the dead-letter file, and a full
 * disk simulated with RLIMIT_FSIZE (EFBIG): the file is cut back to its
 * last whole line, the spool is unhealthy and healthy again once a write
 * succeeds.
 */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <re.h>
#include "billing_int.h"

#include "check.h"


static char dir[] = "/tmp/test_spool.XXXXXX";
static char path[128], dead[128];


/* ------------------------------------------------------------ helpers */

static void put_file(const char *p, const char *s, size_t n)
{
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || (n && write(fd, s, n) != (ssize_t)n)) {
		perror(p);
		exit(99);
	}
	(void)close(fd);
}


/* the file's content (caller frees) */
static char *get_file(const char *p, size_t *np)
{
	struct stat s;
	char *b;
	int fd = open(p, O_RDONLY);

	*np = 0;
	if (fd < 0)
		return NULL;
	if (fstat(fd, &s)) {
		(void)close(fd);
		return NULL;
	}

	b = calloc(1, (size_t)s.st_size + 1);
	if (b && s.st_size && read(fd, b, (size_t)s.st_size) != s.st_size) {
		free(b);
		b = NULL;
	}
	(void)close(fd);
	*np = b ? (size_t)s.st_size : 0;

	return b;
}


static size_t file_size(const char *p)
{
	struct stat s;

	return stat(p, &s) ? 0 : (size_t)s.st_size;
}


static unsigned count_lines(const char *s, const char *prefix)
{
	unsigned n = 0;
	size_t l = strlen(prefix);

	while (s && *s) {
		if (!strncmp(s, prefix, l))
			++n;
		s = strchr(s, '\n');
		if (s)
			++s;
	}

	return n;
}


/* every line whole and readable */
static bool all_lines_ok(const char *s, size_t n)
{
	char *copy, *p, *nl;
	bool ok = true;

	if (!n)
		return true;
	if (s[n - 1] != '\n')
		return false;

	copy = strdup(s);
	for (p = copy; ok && (nl = strchr(p, '\n')); p = nl + 1) {
		struct spool_rec rec;

		*nl = '\0';
		ok = !spool_parse(p, &rec);
	}
	free(copy);

	return ok;
}


static void settle_v(const char *v[SETTLE_NPARAMS], const char *id,
		     const char *media)
{
	static const char *const tmpl[SETTLE_NPARAMS] = {
		NULL, "7", "alice", "4930123", "gwa", "1700000000000",
		"1700000001000", "1700000005000", "4", "130000", "200",
		"caller", "caller", NULL, "004930123", "4930123", "beta",
		"90000", "40000"
	};
	int i;

	for (i = 0; i < SETTLE_NPARAMS; i++)
		v[i] = tmpl[i];
	v[0] = id;
	v[13] = media;
}


/* ----------------------------------------------------- event loop waits */

static bool (*pred)(void);

static void poll_h(void *arg)
{
	struct tmr *t = arg;

	if (pred())
		re_cancel();
	else
		tmr_start(t, 5, poll_h, t);
}


static void deadline_h(void *arg)
{
	(void)arg;
	re_cancel();
}


/* run the loop until p() holds, at most ms */
static bool wait_for(bool (*p)(void), uint32_t ms)
{
	struct tmr tp, td;

	if (p())
		return true;

	pred = p;
	tmr_init(&tp);
	tmr_init(&td);
	tmr_start(&tp, 5, poll_h, &tp);
	tmr_start(&td, ms, deadline_h, NULL);
	(void)re_main(NULL);
	tmr_cancel(&tp);
	tmr_cancel(&td);

	return p();
}


struct tok {
	int err;
	bool durable;
	bool in_file;     /* its line was in the file when reported */
	char id[32];
};

static unsigned reports;
static bool healthy = true;
static unsigned health_changes;


static void durable_h(void *arg, int err, void *harg)
{
	struct tok *t = arg;
	size_t n;
	char *s = get_file(path, &n);
	(void)harg;

	++reports;
	if (!t) {
		free(s);
		return;
	}

	t->err = err;
	t->durable = true;
	t->in_file = s && strstr(s, t->id) != NULL;
	free(s);
}


static void health_h(bool ok, int err, void *arg)
{
	(void)err;
	(void)arg;

	healthy = ok;
	++health_changes;
}


static struct tok *tok_new(const char *id)
{
	struct tok *t = mem_zalloc(sizeof(*t), NULL);

	if (t)
		(void)re_snprintf(t->id, sizeof(t->id), "=%s\t", id);

	return t;
}


/* -------------------------------------------------------- loaded state */

struct loaded {
	char settles[1024];
	char answers[256];
	unsigned nsettles;
	unsigned nanswers;
	uint64_t tick;
	char media[64];
};

static void ld_settle(const char *const v[SETTLE_NPARAMS], void *arg)
{
	struct loaded *l = arg;
	size_t n = strlen(l->settles);

	(void)re_snprintf(l->settles + n, sizeof(l->settles) - n, "%s ",
			  v[0]);
	if (v[13])
		str_ncpy(l->media, v[13], sizeof(l->media));
	++l->nsettles;
}


static void ld_answer(const char *id, uint64_t answer_ms, uint64_t alive_ms,
		      void *arg)
{
	struct loaded *l = arg;
	size_t n = strlen(l->answers);

	(void)re_snprintf(l->answers + n, sizeof(l->answers) - n,
			  "%s:%llu:%llu ", id, (unsigned long long)answer_ms,
			  (unsigned long long)alive_ms);
	++l->nanswers;
}


static void ld_tick(uint64_t tick_ms, void *arg)
{
	struct loaded *l = arg;

	l->tick = tick_ms;
}

static const struct spool_load_h ldh = { ld_settle, ld_answer, ld_tick };


static struct spool *open_load(struct loaded *l, uint64_t compact)
{
	struct spool *sp = NULL;

	memset(l, 0, sizeof(*l));
	if (spool_alloc(&sp, dir, compact, durable_h, health_h, NULL))
		return NULL;
	if (spool_load(sp, &ldh, l)) {
		mem_deref(sp);
		return NULL;
	}

	return sp;
}


/* -------------------------------------------------------------- format */

static void test_format(void)
{
	const char *v[SETTLE_NPARAMS], *w[SETTLE_NPARAMS];
	struct spool_rec rec;
	struct mbuf *mb = mbuf_alloc(256);
	char *line = NULL;
	int i;

	settle_v(v, "c%1", "{\"a\":\"x\\ty\"}");
	v[2] = "tab\there\nnew\rline 100% \\back";
	v[4] = NULL;
	v[3] = "";

	CHECK(!spool_line_settle(mb, v));
	CHECK(mb->end > 3 && mb->buf[mb->end - 1] == '\n');
	CHECK(!memcmp(mb->buf, "S3\t", 3));
	/* one line: no tab, newline or CR of the values survives raw */
	CHECK(memchr(mb->buf, '\n', mb->end - 1) == NULL);
	CHECK(memchr(mb->buf, '\r', mb->end) == NULL);

	CHECK(!re_sdprintf(&line, "%b", mb->buf, mb->end - 1));
	CHECK(!spool_parse(line, &rec));
	CHECK(rec.type == 'S');
	for (i = 0; i < SETTLE_NPARAMS; i++) {
		w[i] = rec.v[i];
		CHECK((v[i] == NULL) == (w[i] == NULL));
		if (v[i] && w[i])
			CHECK(!strcmp(v[i], w[i]));
	}
	line = mem_deref(line);

	/* answer, tick, done */
	mb->end = mb->pos = 0;
	CHECK(!spool_line_answer(mb, "a\tb", 1700000000123ULL, 0));
	CHECK(!re_sdprintf(&line, "%b", mb->buf, mb->end - 1));
	CHECK(!spool_parse(line, &rec));
	CHECK(rec.type == 'A' && !strcmp(rec.id, "a\tb"));
	CHECK(rec.answer_ms == 1700000000123ULL && rec.alive_ms == 0);
	line = mem_deref(line);

	{
		char a[] = "A2\t=x\t10\t20", t[] = "T2\t12345",
			d[] = "D2\t=x%25", d1[] = "D\t=y";

		CHECK(!spool_parse(a, &rec) && rec.alive_ms == 20);
		CHECK(!spool_parse(t, &rec) && rec.type == 'T' &&
		      rec.tick_ms == 12345);
		CHECK(!spool_parse(d, &rec) && rec.type == 'D' &&
		      !strcmp(rec.id, "x%"));
		CHECK(!spool_parse(d1, &rec) && rec.type == 'D' &&
		      !strcmp(rec.id, "y"));
	}

	/* version 1: 13 fields (no media) and 14 */
	{
		char s13[] = "S\t=c1\t=7\t=alice\t=bob\t-\t=1\t=2\t=3\t=4"
			"\t=5\t=200\t=caller\t=caller";
		char s14[] = "S\t=c2\t=7\t=alice\t=bob\t-\t=1\t=2\t=3\t=4"
			"\t=5\t=200\t=caller\t=caller\t={}";

		CHECK(!spool_parse(s13, &rec) && rec.type == 'S' &&
		      !strcmp(rec.id, "c1") && rec.v[13] == NULL &&
		      !strcmp(rec.v[12], "caller") && rec.v[4] == NULL);
		CHECK(!spool_parse(s14, &rec) && !strcmp(rec.v[13], "{}"));
	}

	/* version 2: the 14 fields of tg_settle_media, no class-4 fields;
	   version 3 needs all 19 */
	{
		char s2[] = "S2\t=c3\t=7\t=alice\t=bob\t-\t=1\t=2\t=3\t=4"
			"\t=5\t=200\t=caller\t=caller\t={}";
		char s3[] = "S3\t=c4\t=7\t=alice\t=bob\t-\t=1\t=2\t=3\t=4"
			"\t=5\t=200\t=caller\t=caller\t-\t=0049\t=49\t=beta"
			"\t=3\t=2";
		char s3short[] = "S3\t=c5\t=7\t=alice\t=bob\t-\t=1\t=2\t=3"
			"\t=4\t=5\t=200\t=caller\t=caller\t={}";

		CHECK(!spool_parse(s2, &rec) && !strcmp(rec.id, "c3") &&
		      !strcmp(rec.v[13], "{}") && rec.v[14] == NULL &&
		      rec.v[18] == NULL);
		CHECK(!spool_parse(s3, &rec) && rec.v[13] == NULL &&
		      !strcmp(rec.v[14], "0049") &&
		      !strcmp(rec.v[16], "beta") && !strcmp(rec.v[18], "2"));
		CHECK(spool_parse(s3short, &rec) == EBADMSG);
	}

	/* refused */
	{
		char b1[] = "S2\t=c1\t=7";              /* too few        */
		char b2[] = "S\t=c1\t=7\t=a\t=b\t-\t=1\t=2\t=3\t=4\t=5"
			"\t=200\t=caller";               /* 12 fields      */
		char b3[] = "D2\t=x%G1";                /* bad hex        */
		char b4[] = "D2\t=x%00";                /* NUL            */
		char b5[] = "X2\t=x";                   /* unknown        */
		char b6[] = "A2\t=x\t12a";              /* not a number   */
		char b7[] = "T2\t";                     /* empty          */
		char b8[] = "D2\tx";                    /* no '='         */
		char b9[] = "S2\t-\t=7\t=a\t=b\t-\t=1\t=2\t=3\t=4\t=5"
			"\t=200\t=caller\t=caller\t-";   /* NULL call id   */
		char b10[] = "";

		CHECK(spool_parse(b1, &rec) == EBADMSG);
		CHECK(spool_parse(b2, &rec) == EBADMSG);
		CHECK(spool_parse(b3, &rec) == EBADMSG);
		CHECK(spool_parse(b4, &rec) == EBADMSG);
		CHECK(spool_parse(b5, &rec) == EBADMSG);
		CHECK(spool_parse(b6, &rec) == EBADMSG);
		CHECK(spool_parse(b7, &rec) == EBADMSG);
		CHECK(spool_parse(b8, &rec) == EBADMSG);
		CHECK(spool_parse(b9, &rec) == EBADMSG);
		CHECK(spool_parse(b10, &rec) == EBADMSG);
	}

	mem_deref(mb);
}


/* ---------------------------------------------------------------- load */

static void test_load(void)
{
	struct mbuf *mb = mbuf_alloc(200000);
	struct spool_stats ss;
	struct loaded l;
	struct spool *sp;
	const char *v[SETTLE_NPARAMS];
	char *s;
	size_t n, i;

	/* old and new records, a bad line, a huge line, a torn last one */
	(void)mbuf_write_str(mb, "S\t=c1\t=7\t=alice\t=bob\t-\t=1\t=2\t=3"
			     "\t=4\t=5\t=200\t=caller\t=caller\n");
	(void)mbuf_write_str(mb, "S\t=c2\t=7\t=alice\t=bob\t-\t=1\t=2\t=3"
			     "\t=4\t=5\t=200\t=caller\t=caller\t={}\n");
	(void)mbuf_write_str(mb, "A2\t=c3\t1000\n");
	(void)mbuf_write_str(mb, "D\t=c2\n");
	settle_v(v, "c3", "{\"m\":1}");
	(void)spool_line_settle(mb, v);
	(void)mbuf_write_str(mb, "A2\t=c4\t2000\n");
	(void)mbuf_write_str(mb, "T2\t5000\n");
	(void)mbuf_write_str(mb, "this is not a record\n");
	(void)mbuf_write_str(mb, "S2\t=huge\t");
	for (i = 0; i < 100000; i++)
		(void)mbuf_write_u8(mb, 'x');
	(void)mbuf_write_u8(mb, '\n');
	(void)mbuf_write_str(mb, "T2\t7000\n");
	settle_v(v, "c5", NULL);
	(void)spool_line_settle(mb, v);
	(void)mbuf_write_str(mb, "A2\t=c6\t3000\n");
	(void)mbuf_write_str(mb, "D2\t=c6\n");
	(void)mbuf_write_str(mb, "S2\t=c7\t=7\t=al");      /* torn */
	put_file(path, (char *)mb->buf, mb->end);

	sp = open_load(&l, 0);
	CHECK(sp != NULL);
	if (!sp)
		goto out;

	CHECK(!strcmp(l.settles, "c1 c3 c5 "));
	CHECK(l.nsettles == 3);
	CHECK(spool_pending(sp) == 3);
	/* c3 was settled: its answer is gone; c6 is done */
	CHECK(!strcmp(l.answers, "c4:2000:7000 "));
	CHECK(l.tick == 7000);
	CHECK(!strcmp(l.media, "{\"m\":1}"));
	spool_stats(sp, &ss);
	CHECK(ss.bad_lines == 2);
	CHECK(ss.pending == 3);

	/* compacted at load: exactly the pending state, in version 3 */
	s = get_file(path, &n);
	CHECK(s != NULL);
	CHECK(count_lines(s, "S3\t") == 3);
	CHECK(count_lines(s, "A2\t=c4\t2000\t7000\n") == 1);
	CHECK(count_lines(s, "") == 4);
	CHECK(all_lines_ok(s, n));
	CHECK(s && !strstr(s, "huge") && !strstr(s, "=c7"));
	free(s);
	mem_deref(sp);

	/* and it loads to the same state */
	sp = open_load(&l, 0);
	CHECK(sp && !strcmp(l.settles, "c1 c3 c5 "));
	CHECK(!strcmp(l.answers, "c4:2000:7000 "));
	mem_deref(sp);

	/* an empty or missing file */
	(void)unlink(path);
	sp = open_load(&l, 0);
	CHECK(sp && l.nsettles == 0 && l.nanswers == 0 && l.tick == 0);
	mem_deref(sp);

 out:
	mem_deref(mb);
}


/* -------------------------------------------------------------- writer */

static struct tok *tk[4];

static bool tk0(void) { return tk[0]->durable; }
static bool tk1(void) { return tk[1]->durable; }
static bool tk2(void) { return tk[2]->durable; }
static bool unhealthy(void) { return !healthy; }
static bool is_healthy(void) { return healthy; }


static void test_writer(void)
{
	const char *v[SETTLE_NPARAMS];
	struct spool_stats ss;
	struct loaded l;
	struct spool *sp;
	char *s;
	size_t n;

	(void)unlink(path);
	sp = open_load(&l, 0);
	CHECK(sp != NULL);
	if (!sp)
		return;
	CHECK(!spool_start(sp, 50));

	tk[0] = tok_new("k1");
	tk[1] = tok_new("k3");

	settle_v(v, "k1", "{}");
	CHECK(!spool_settle(sp, v, tk[0]));
	CHECK(!spool_answer(sp, "k2", 1700000000500ULL));
	CHECK(wait_for(tk0, 5000));
	CHECK(tk[0]->err == 0);
	CHECK(tk[0]->in_file);     /* in the file before it is reported */

	CHECK(!spool_done(sp, "k1"));
	settle_v(v, "k3", NULL);
	CHECK(!spool_settle(sp, v, tk[1]));
	CHECK(spool_pending(sp) == 1);
	CHECK(!spool_dead(sp, v));
	CHECK(wait_for(tk1, 5000));
	CHECK(tk[1]->err == 0);

	spool_stats(sp, &ss);
	CHECK(ss.syncs >= 1);
	CHECK(ss.ok);

	/* the destructor waits for the writer: everything is in the file */
	mem_deref(sp);

	s = get_file(path, &n);
	CHECK(count_lines(s, "S3\t=k1\t") == 1);
	CHECK(count_lines(s, "D2\t=k1\n") == 1);
	CHECK(count_lines(s, "A2\t=k2\t1700000000500\n") == 1);
	CHECK(count_lines(s, "T2\t") >= 1);
	CHECK(all_lines_ok(s, n));
	free(s);

	s = get_file(dead, &n);
	CHECK(count_lines(s, "S3\t=k3\t") == 1);
	free(s);

	/* the next start: k3 pending, k2's answer and the last tick */
	sp = open_load(&l, 0);
	CHECK(sp && !strcmp(l.settles, "k3 "));
	CHECK(!strncmp(l.answers, "k2:1700000000500:", 17));
	CHECK(l.tick > 1700000000000ULL);
	mem_deref(sp);

	mem_deref(tk[0]);
	mem_deref(tk[1]);
}


/* ---------------------------------------------------------- compaction */

static struct spool *csp;
static bool compacted(void)
{
	struct spool_stats ss;

	spool_stats(csp, &ss);

	return ss.compactions >= 1 && tk[2]->durable;
}


static void test_compact(void)
{
	const char *v[SETTLE_NPARAMS];
	struct spool_stats ss;
	struct loaded l;
	char id[16], *s;
	size_t n;
	int i;

	(void)unlink(path);
	csp = open_load(&l, 4096);
	CHECK(csp != NULL);
	if (!csp)
		return;
	CHECK(!spool_start(csp, 0));

	/* 200 calls: answered, settled, confirmed; 3 stay pending, 2
	   answered calls still run */
	tk[2] = tok_new("last");
	for (i = 0; i < 200; i++) {
		(void)re_snprintf(id, sizeof(id), "call%d", i);
		CHECK(!spool_answer(csp, id, 1000 + i));
		settle_v(v, id, "{\"rtp\":[1,2,3]}");
		CHECK(!spool_settle(csp, v, NULL));
		if (i % 70 != 5)
			CHECK(!spool_done(csp, id));
	}
	CHECK(!spool_answer(csp, "run1", 5));
	CHECK(!spool_answer(csp, "run2", 6));
	/* one report after the others */
	settle_v(v, "last", NULL);
	CHECK(!spool_settle(csp, v, tk[2]));
	CHECK(!spool_done(csp, "last"));

	CHECK(wait_for(compacted, 10000));
	spool_stats(csp, &ss);
	CHECK(spool_pending(csp) == 3);
	csp = mem_deref(csp);

	/* far below 200 calls' worth of lines */
	CHECK(file_size(path) < 200 * 100);
	s = get_file(path, &n);
	CHECK(all_lines_ok(s, n));
	free(s);

	csp = open_load(&l, 0);
	CHECK(csp && !strcmp(l.settles, "call5 call75 call145 "));
	CHECK(l.nanswers == 2 && strstr(l.answers, "run1:5:") &&
	      strstr(l.answers, "run2:6:"));
	csp = mem_deref(csp);
	mem_deref(tk[2]);
}


/* ---------------------------------------------------------- full disk */

static void test_full(void)
{
	const char *v[SETTLE_NPARAMS];
	struct rlimit old, lim;
	struct loaded l;
	struct spool *sp;
	char media[2048], *s;
	size_t n, before;

	memset(media, 'm', sizeof(media) - 1);
	media[sizeof(media) - 1] = '\0';

	(void)unlink(path);
	sp = open_load(&l, 0);
	CHECK(sp != NULL);
	if (!sp)
		return;
	CHECK(!spool_start(sp, 20));

	tk[0] = tok_new("f1");
	tk[1] = tok_new("f2");
	tk[2] = tok_new("f3");
	settle_v(v, "f1", NULL);
	CHECK(!spool_settle(sp, v, tk[0]));
	CHECK(wait_for(tk0, 5000) && tk[0]->err == 0);

	/* writes beyond the limit fail with EFBIG (SIGXFSZ ignored) */
	(void)signal(SIGXFSZ, SIG_IGN);
	CHECK(!getrlimit(RLIMIT_FSIZE, &old));
	before = file_size(path);
	lim = old;
	lim.rlim_cur = before + 1000;
	CHECK(!setrlimit(RLIMIT_FSIZE, &lim));

	settle_v(v, "f2", media);
	CHECK(!spool_settle(sp, v, tk[1]));
	CHECK(wait_for(tk1, 5000));
	CHECK(tk[1]->err == EFBIG);
	CHECK(wait_for(unhealthy, 5000));
	CHECK(!spool_ok(sp));

	/* cut back: only whole lines, nothing of f2 */
	s = get_file(path, &n);
	CHECK(n <= before + 1000);
	CHECK(all_lines_ok(s, n));
	CHECK(s && !strstr(s, "=f2\t"));
	free(s);

	/* room again: the next tick succeeds, the spool is healthy */
	CHECK(!setrlimit(RLIMIT_FSIZE, &old));
	CHECK(wait_for(is_healthy, 5000));
	CHECK(spool_ok(sp));
	CHECK(health_changes == 2);

	settle_v(v, "f3", media);
	CHECK(!spool_settle(sp, v, tk[2]));
	CHECK(wait_for(tk2, 5000) && tk[2]->err == 0);
	mem_deref(sp);

	/* f2 stayed in the state: the compaction once the file could be
	   written again put it there, and the next start has it */
	sp = open_load(&l, 0);
	CHECK(sp && !strcmp(l.settles, "f1 f2 f3 "));
	mem_deref(sp);

	mem_deref(tk[0]);
	mem_deref(tk[1]);
	mem_deref(tk[2]);
}


int main(void)
{
	int rc;

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 99;
	}
	(void)snprintf(path, sizeof(path), "%s/billing.spool", dir);
	(void)snprintf(dead, sizeof(dead), "%s/billing.dead", dir);

	if (libre_init())
		return 99;
	tlog_set_level(LOG_ERR);

	test_format();
	test_load();
	test_writer();
	test_compact();
	test_full();

	(void)unlink(path);
	(void)unlink(dead);
	(void)rmdir(dir);

	libre_close();
	rc = check_report("test_spool");
	(void)reports;

	return rc;
}
