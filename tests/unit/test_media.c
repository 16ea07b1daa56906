/**
 * @file test_media.c  Unit tests of the relay's port pool and statistics
 *
 * Port pool: pairs, exhaustion, order of reuse, bad and double returns,
 * random picks.  Source control of the packet path (src_accept()).
 * RFC 3550 estimator: loss from sequence numbers (gaps, wrap, reorder,
 * duplicates, new SSRC, probation), jitter for constant and alternating
 * transit.  RTCP report blocks and RTP payload boundaries.
 */

#define _GNU_SOURCE 1
#include <stdio.h>
#include <string.h>
#include <re.h>
#include "worker_int.h"


#include "check.h"


static void test_pool(void)
{
	struct media_pool *p = NULL;
	uint16_t port, got[4];
	unsigned i;

	CHECK(EINVAL == media_pool_alloc(&p, 20001, 20009));
	CHECK(EINVAL == media_pool_alloc(&p, 20000, 20008));
	CHECK(EINVAL == media_pool_alloc(&p, 20000, 19999));

	CHECK(0 == media_pool_alloc(&p, 20000, 20007));
	if (!p)
		return;

	CHECK(media_pool_size(p) == 4);
	CHECK(media_pool_free(p) == 4);

	for (i = 0; i < 4; i++) {
		CHECK(0 == media_pool_get(p, &got[i]));
		CHECK(got[i] == 20000 + 2 * i);
	}
	CHECK(media_pool_free(p) == 0);
	CHECK(ENOSPC == media_pool_get(p, &port));

	/* returned pairs come back last-in-last-out (oldest first) */
	CHECK(0 == media_pool_put(p, 20004));
	CHECK(0 == media_pool_put(p, 20000));
	CHECK(media_pool_free(p) == 2);
	CHECK(0 == media_pool_get(p, &port) && port == 20004);
	CHECK(0 == media_pool_put(p, 20004));
	CHECK(0 == media_pool_get(p, &port) && port == 20000);
	CHECK(0 == media_pool_get(p, &port) && port == 20004);
	CHECK(ENOSPC == media_pool_get(p, &port));

	/* bad returns */
	CHECK(EINVAL == media_pool_put(p, 20001));
	CHECK(EINVAL == media_pool_put(p, 19998));
	CHECK(EINVAL == media_pool_put(p, 20008));
	CHECK(0 == media_pool_put(p, 20002));
	CHECK(EALREADY == media_pool_put(p, 20002));
	CHECK(media_pool_free(p) == 1);

	/* everything back, then every pair once more */
	CHECK(0 == media_pool_put(p, 20000));
	CHECK(0 == media_pool_put(p, 20004));
	CHECK(0 == media_pool_put(p, 20006));
	CHECK(media_pool_free(p) == 4);
	for (i = 0; i < 4; i++)
		CHECK(0 == media_pool_get(p, &got[i]));
	CHECK(got[0] != got[1] && got[0] != got[2] && got[0] != got[3] &&
	      got[1] != got[2] && got[1] != got[3] && got[2] != got[3]);
	CHECK(ENOSPC == media_pool_get(p, &port));

	mem_deref(p);

	/* the whole range */
	CHECK(0 == media_pool_alloc(&p, 1024, 65535));
	CHECK(media_pool_size(p) == 32256);
	mem_deref(p);
}


/** Random picks: every pair once, not in order, late reuse kept */
static void test_pool_random(void)
{
	struct media_pool *p = NULL;
	uint8_t seen[100];
	uint16_t port, first[8];
	unsigned i, seq = 0;

	CHECK(0 == media_pool_alloc(&p, 20000, 20199));
	if (!p)
		return;

	media_pool_set_random(p, true);
	memset(seen, 0, sizeof(seen));

	for (i = 0; i < 100; i++) {
		CHECK(0 == media_pool_get(p, &port));
		CHECK(port >= 20000 && port <= 20198 && !(port & 1));
		if (port < 20000 || port > 20198)
			break;
		CHECK(!seen[(port - 20000) / 2]);
		seen[(port - 20000) / 2] = 1;
		if (i < 8)
			first[i] = port;
	}
	CHECK(ENOSPC == media_pool_get(p, &port));

	for (i = 1; i < 8; i++)
		seq += first[i] == first[i - 1] + 2;
	CHECK(seq < 7);

	/* the one pair free is the one given */
	CHECK(0 == media_pool_put(p, 20100));
	CHECK(0 == media_pool_get(p, &port) && port == 20100);

	/* a pair just given back waits behind the older half */
	for (i = 0; i < 100; i++)
		CHECK(0 == media_pool_put(p, (uint16_t)(20000 + 2 * i)));
	for (i = 0; i < 49; i++) {
		CHECK(0 == media_pool_get(p, &port));
		CHECK(port != 20198);
	}

	mem_deref(p);
}


/** A packet's source as the kernel gives it */
static struct sockaddr_in from(const char *ip, uint16_t port)
{
	struct sa sa;

	(void)sa_set_str(&sa, ip, port);

	return sa.u.in;
}


static bool take(struct media_side *sd, unsigned k, const char *ip,
		 uint16_t port, uint64_t now_ms)
{
	struct sockaddr_in sin = from(ip, port);

	return src_accept(sd, k, &sin, sizeof(sin), now_ms);
}


static void test_src(void)
{
	struct media_side sd;
	struct sa dst;

	/* strict: SDP 192.0.2.1:6000, SIP from 198.51.100.7 */
	memset(&sd, 0, sizeof(sd));
	(void)sa_set_str(&sd.from[0], "192.0.2.1", 6000);
	(void)sa_set_str(&sd.from[1], "192.0.2.1", 6001);
	(void)sa_set_str(&sd.sip, "198.51.100.7", 5060);
	sd.src = MEDIA_SRC_STRICT;
	sd.relearn_ms = 5000;

	CHECK(!take(&sd, 0, "203.0.113.9", 6000, 1000));
	CHECK(!take(&sd, 0, "192.0.2.2", 6000, 1000));
	CHECK(!sd.latched[0] && sd.pub.foreign == 2);

	/* the SDP's IP, another port: latched, then that source alone */
	CHECK(take(&sd, 0, "192.0.2.1", 6100, 1000));
	CHECK(sd.latched[0]);
	(void)sa_set_str(&dst, "192.0.2.1", 6100);
	CHECK(sa_cmp(&sd.latch[0], &dst, SA_ALL));
	CHECK(sa_cmp(&sd.pub.dst, &dst, SA_ALL));
	CHECK(take(&sd, 0, "192.0.2.1", 6100, 1020));
	CHECK(!take(&sd, 0, "192.0.2.1", 6000, 1040));
	CHECK(!take(&sd, 0, "198.51.100.7", 7000, 1060));
	CHECK(!take(&sd, 0, "203.0.113.9", 6100, 1080));
	CHECK(sd.pub.foreign == 5);

	/* silent for less than relearn_ms: still locked */
	CHECK(!take(&sd, 0, "198.51.100.7", 7000, 6000));
	/* silent long enough: a source the side may use takes over, one
	   it may not does not */
	CHECK(!take(&sd, 0, "203.0.113.9", 7000, 6100));
	CHECK(take(&sd, 0, "198.51.100.7", 7000, 6100));
	(void)sa_set_str(&dst, "198.51.100.7", 7000);
	CHECK(sa_cmp(&sd.latch[0], &dst, SA_ALL));
	CHECK(!take(&sd, 0, "192.0.2.1", 6100, 6120));

	/* RTCP is latched on its own */
	CHECK(!sd.latched[1]);
	CHECK(!take(&sd, 1, "203.0.113.9", 6001, 6200));
	CHECK(take(&sd, 1, "198.51.100.7", 7001, 6200));
	CHECK(!take(&sd, 1, "192.0.2.1", 6001, 6220));

	/* relearn_ms 0: only a new SDP address unlocks it */
	sd.relearn_ms = 0;
	CHECK(!take(&sd, 0, "192.0.2.1", 6100, 600000));

	/* latch: the first source, whoever it is, then it alone */
	memset(&sd, 0, sizeof(sd));
	(void)sa_set_str(&sd.from[0], "192.0.2.1", 6000);
	sd.src = MEDIA_SRC_LATCH;
	sd.relearn_ms = 5000;
	CHECK(take(&sd, 0, "203.0.113.9", 4000, 1000));
	CHECK(!take(&sd, 0, "192.0.2.1", 6000, 1020));
	CHECK(take(&sd, 0, "192.0.2.1", 6000, 7000));

	/* any: everything goes on, the first source is answered */
	memset(&sd, 0, sizeof(sd));
	sd.src = MEDIA_SRC_ANY;
	CHECK(take(&sd, 0, "203.0.113.9", 4000, 1000));
	CHECK(take(&sd, 0, "192.0.2.1", 6000, 1020));
	(void)sa_set_str(&dst, "203.0.113.9", 4000);
	CHECK(sa_cmp(&sd.latch[0], &dst, SA_ALL) && sd.pub.foreign == 0);

	/* no usable source address */
	memset(&sd, 0, sizeof(sd));
	sd.src = MEDIA_SRC_ANY;
	CHECK(!src_accept(&sd, 0, "", 0, 1000) && sd.pub.foreign == 1);
}


/** Feed seqs at 20 ms / 160 samples with constant transit */
static void feed(struct media_rx *rx, uint32_t ssrc, const int *seqv,
		 size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		uint16_t seq = (uint16_t)seqv[i];

		media_rx_update(rx, ssrc, seq, (uint32_t)seq * 160,
				(uint32_t)seq * 160 + 1000);
	}
}


static void test_loss(void)
{
	struct media_rx rx;
	int seqv[400];
	size_t i, n;

	/* 100 in a row: nothing lost, no jitter */
	memset(&rx, 0, sizeof(rx));
	for (i = 0; i < 100; i++)
		seqv[i] = 1000 + (int)i;
	feed(&rx, 1, seqv, 100);
	CHECK(media_rx_lost(&rx) == 0);
	CHECK(media_rx_jitter_us(&rx, 8000) == 0);

	/* every 10th of 200 dropped after the start: 19 lost */
	memset(&rx, 0, sizeof(rx));
	for (i = 0, n = 0; i < 200; i++) {
		if (i > 5 && i % 10 == 0)
			continue;
		seqv[n++] = 500 + (int)i;
	}
	feed(&rx, 7, seqv, n);
	CHECK(media_rx_lost(&rx) == 19);

	/* across the 16-bit wrap, 3 lost */
	memset(&rx, 0, sizeof(rx));
	for (i = 0, n = 0; i < 40; i++) {
		int s = (65520 + (int)i) & 0xffff;

		if (s == 0 || s == 1 || s == 65530)
			continue;
		seqv[n++] = s;
	}
	feed(&rx, 9, seqv, n);
	CHECK(media_rx_lost(&rx) == 3);
	CHECK(rx.cycles == 65536);

	/* reordered: nothing lost */
	memset(&rx, 0, sizeof(rx));
	{
		const int v[] = {10, 11, 12, 14, 13, 15, 17, 16, 18};

		feed(&rx, 3, v, ARRAY_SIZE(v));
	}
	CHECK(media_rx_lost(&rx) == 0);

	/* a duplicate counts as received: lost goes below zero */
	memset(&rx, 0, sizeof(rx));
	{
		const int v[] = {10, 11, 12, 12, 13};

		feed(&rx, 3, v, ARRAY_SIZE(v));
	}
	CHECK(media_rx_lost(&rx) == -1);

	/* a new SSRC: earlier losses kept, new sequence space */
	memset(&rx, 0, sizeof(rx));
	{
		const int a[] = {100, 101, 103, 104};     /* 1 lost */
		const int b[] = {9000, 9001, 9002, 9005}; /* 2 lost */

		feed(&rx, 1, a, ARRAY_SIZE(a));
		feed(&rx, 2, b, ARRAY_SIZE(b));
	}
	CHECK(media_rx_lost(&rx) == 3);

	/* probation: a lone packet of a source is not counted yet */
	memset(&rx, 0, sizeof(rx));
	{
		const int v[] = {42};

		feed(&rx, 5, v, 1);
	}
	CHECK(media_rx_lost(&rx) == 0);
	CHECK(rx.probation != 0);
}


static void test_jitter(void)
{
	struct media_rx rx;
	uint32_t j;
	int i;

	/* transit alternating by 80 timestamp units (10 ms at 8 kHz):
	   J converges to 80 units = 10000 us */
	memset(&rx, 0, sizeof(rx));
	for (i = 0; i < 500; i++) {
		uint32_t ts = (uint32_t)i * 160;

		media_rx_update(&rx, 1, (uint16_t)i, ts,
				ts + 5000 + (i & 1) * 80);
	}
	j = media_rx_jitter_us(&rx, 8000);
	CHECK(j > 9500 && j <= 10000);

	/* one late packet after a steady stream: J = D/16 */
	memset(&rx, 0, sizeof(rx));
	for (i = 0; i < 50; i++) {
		uint32_t ts = (uint32_t)i * 160;

		media_rx_update(&rx, 1, (uint16_t)i, ts,
				ts + 100 + (i == 49 ? 160 : 0));
	}
	CHECK(rx.jitter >> 4 == 10);    /* 160 / 16 */
	CHECK(media_rx_jitter_us(&rx, 8000) == 1250);
	CHECK(media_rx_jitter_us(&rx, 0) == 0);
}


static void test_rtcp(void)
{
	/* SR with one report block, then an SDES chunk */
	uint8_t sr[28 + 24 + 8];
	uint8_t rr[8 + 24];
	struct media_rr r;

	memset(sr, 0, sizeof(sr));
	sr[0] = 0x81;            /* V=2, RC=1 */
	sr[1] = 200;
	sr[3] = 12;              /* (28 + 24) / 4 - 1 */
	sr[28 + 4] = 64;         /* fraction lost 25 % */
	sr[28 + 5] = 0x00;
	sr[28 + 6] = 0x01;
	sr[28 + 7] = 0x02;       /* cumulative lost 258 */
	sr[28 + 15] = 80;        /* jitter 80 units */
	sr[52] = 0x81;
	sr[53] = 202;
	sr[55] = 1;

	CHECK(0 == media_rtcp_rr(&r, sr, sizeof(sr)));
	CHECK(r.fraction == 64);
	CHECK(r.lost == 258);
	CHECK(r.jitter == 80);

	/* RR with a negative cumulative count */
	memset(rr, 0, sizeof(rr));
	rr[0] = 0x81;
	rr[1] = 201;
	rr[3] = 7;
	rr[8 + 5] = 0xff;
	rr[8 + 6] = 0xff;
	rr[8 + 7] = 0xfe;
	CHECK(0 == media_rtcp_rr(&r, rr, sizeof(rr)));
	CHECK(r.lost == -2);

	/* no report block; not RTCP; length beyond the packet */
	rr[0] = 0x80;
	rr[3] = 1;
	CHECK(ENOENT == media_rtcp_rr(&r, rr, 8));
	rr[0] = 0x41;
	CHECK(EBADMSG == media_rtcp_rr(&r, rr, sizeof(rr)));
	rr[0] = 0x81;
	rr[3] = 40;
	CHECK(EBADMSG == media_rtcp_rr(&r, rr, sizeof(rr)));
}


static void test_payload(void)
{
	uint8_t p[12 + 8 + 8 + 160 + 4];
	size_t off, len;

	memset(p, 0, sizeof(p));
	p[0] = 0x80;
	CHECK(0 == media_rtp_payload(p, 172, &off, &len));
	CHECK(off == 12 && len == 160);

	/* two CSRCs, a one-word extension, 4 bytes of padding */
	p[0] = 0x80 | 0x20 | 0x10 | 2;
	p[12 + 8 + 3] = 1;
	p[sizeof(p) - 1] = 4;
	CHECK(0 == media_rtp_payload(p, sizeof(p), &off, &len));
	CHECK(off == 28 && len == 160);

	p[0] = 0x40;
	CHECK(EBADMSG == media_rtp_payload(p, sizeof(p), &off, &len));
	p[0] = 0x80;
	CHECK(EBADMSG == media_rtp_payload(p, 11, &off, &len));
	p[0] = 0x8f;             /* 15 CSRCs in 20 bytes */
	CHECK(EBADMSG == media_rtp_payload(p, 20, &off, &len));
}


int main(void)
{
	test_pool();
	test_pool_random();
	test_src();
	test_loss();
	test_jitter();
	test_rtcp();
	test_payload();

	return check_report("test_media");
}
