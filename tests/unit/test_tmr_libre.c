/**
 * @file test_tmr_libre.c  libre's loop and SIP transactions on the wheel
 */

#define _GNU_SOURCE 1
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <re.h>
#include "core.h"
#include "test_tmr.h"


/* ------------------------------------------------------ libre's loop */

static bool alarm_hit;

static void signal_h(int sig)
{
	if (sig == SIGALRM)
		alarm_hit = true;

	re_cancel();
}


static void act_re_cancel(struct probe *p)
{
	if (p->runs < 5)
		probe_start(p, 10);
	else
		re_cancel();
}


/* our tmr_* are the ones in the dynamic symbol table */
void test_symbols(void)
{
	static const struct {
		const char *name;
		void *addr;
	} syms[] = {
#define SYM(f) { #f, (void *)f }
		SYM(tmr_poll), SYM(tmr_jiffies), SYM(tmr_next_timeout),
		SYM(tmr_debug), SYM(tmr_status), SYM(tmr_init),
		SYM(tmr_start), SYM(tmr_cancel), SYM(tmr_get_expire),
		SYM(tmr_wheel_stats),
#undef SYM
	};
	unsigned i;

	for (i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
		void *a = dlsym(RTLD_DEFAULT, syms[i].name);

		if (a != syms[i].addr) {
			fprintf(stderr, "  %s: dlsym %p, ours %p\n",
				syms[i].name, a, syms[i].addr);
		}
		CHECK(a == syms[i].addr);
	}
}


/* re_main (in libre.so) sleeps on our tmr_next_timeout and calls our
 * tmr_poll: with libre's own, its empty list would make it wait forever */
void test_re_main(void)
{
	struct tmr_wheel_stats s0, s1;
	struct probe p;
	uint64_t t0, el;
	int err;

	memset(&p, 0, sizeof(p));
	p.act = act_re_cancel;
	tmr_wheel_stats(&s0);

	probe_start(&p, 10);
	alarm_hit = false;
	alarm(3);
	t0 = real_ms();
	err = re_main(signal_h);
	el = real_ms() - t0;
	alarm(0);

	tmr_wheel_stats(&s1);
	CHECK(err == 0);
	CHECK(!alarm_hit);
	CHECK(p.runs == 5);
	CHECK(s1.fired == s0.fired + 5);
	CHECK(el >= 45 && el < 50 + 60);
	CHECK(wheel_live() == 0);

	printf("  re_main: 5 x 10 ms timers took %llu ms\n",
	       (unsigned long long)el);
}


struct sip_run {
	unsigned rx;
	uint64_t t_rx[2];
};


static void probe_udp_h(const struct sa *src, struct mbuf *mb, void *arg)
{
	struct sip_run *r = arg;

	(void)src;

	if (mbuf_get_left(mb) < 7 || memcmp(mbuf_buf(mb), "OPTIONS", 7))
		return;

	if (r->rx < 2)
		r->t_rx[r->rx] = real_ms();

	if (++r->rx == 2)
		re_cancel();
}


static void probe_resp_h(int err, const struct sip_msg *msg, void *arg)
{
	(void)err;
	(void)msg;
	(void)arg;
}


/* libre's SIP client transaction retransmits with its timer E, started
 * inside libre.so: the retransmission comes from our wheel */
void test_sip_retransmit(void)
{
	struct tmr_wheel_stats s0, s1, s2;
	struct sip_request *req = NULL;
	struct udp_sock *us = NULL;
	struct sip *sip = NULL;
	struct sip_run r;
	struct sa peer, laddr;
	char uri[64];
	uint64_t gap = 0;
	int err;

	memset(&r, 0, sizeof(r));
	tmr_wheel_stats(&s0);

	err  = sa_set_str(&peer, "127.0.0.1", 0);
	err |= sa_set_str(&laddr, "127.0.0.1", 0);
	CHECK(err == 0);

	err = udp_listen(&us, &peer, probe_udp_h, &r);
	CHECK(err == 0);
	if (err)
		goto out;
	err = udp_local_get(us, &peer);
	CHECK(err == 0);

	err = sip_alloc(&sip, NULL, 16, 16, 16, "tmr-test", NULL, NULL);
	CHECK(err == 0);
	if (err)
		goto out;
	err = sip_transp_add(sip, SIP_TRANSP_UDP, &laddr);
	CHECK(err == 0);
	if (err)
		goto out;

	(void)re_snprintf(uri, sizeof(uri), "sip:probe@%J", &peer);
	err = sip_requestf(&req, sip, true, "OPTIONS", uri, NULL, NULL,
			   NULL, probe_resp_h, NULL,
			   "To: <%s>\r\n"
			   "From: <sip:test@127.0.0.1>;tag=t1\r\n"
			   "Call-ID: tmr-test-1\r\n"
			   "CSeq: 1 OPTIONS\r\n"
			   "Max-Forwards: 70\r\n"
			   "Content-Length: 0\r\n"
			   "\r\n", uri);
	CHECK(err == 0);
	if (err)
		goto out;

	/* timers B/F (64*T1) and E (T1) are in our wheel */
	tmr_wheel_stats(&s1);
	CHECK(s1.live >= s0.live + 2);
	CHECK(s1.started >= s0.started + 2);

	alarm_hit = false;
	alarm(3);
	err = re_main(signal_h);
	alarm(0);
	CHECK(err == 0);
	CHECK(!alarm_hit);
	CHECK(r.rx == 2);

	if (r.rx == 2)
		gap = r.t_rx[1] - r.t_rx[0];
	CHECK(gap >= 490 && gap < 600);

	tmr_wheel_stats(&s2);
	CHECK(s2.fired > s1.fired);

	printf("  sip: retransmission after %llu ms (T1 = 500)\n",
	       (unsigned long long)gap);

 out:
	mem_deref(req);
	if (sip)
		sip_close(sip, true);
	mem_deref(sip);
	mem_deref(us);

	/* libre stopped its transaction timers through our tmr_cancel */
	CHECK(wheel_live() == s0.live);
}
