/**
 * @file test_sdp.c  Unit tests of the relay's SDP parser and rewriter
 *
 * c=/o=/m=/a=rtcp rewritten to the relay, several m= lines, rejected
 * streams (port 0), directions and codecs kept, ICE attributes removed,
 * hold detection, IPv6, and malformed bodies refused.
 */

#include <stdio.h>
#include <string.h>
#include <re.h>
#include "relay_int.h"


#include "check.h"


static char outbuf[4096];

/** Rewrite text; the result is in outbuf (NUL-terminated) */
static int rewrite(const char *text, const char *addr,
		   const uint16_t *portv, unsigned portc)
{
	struct mbuf *mb = mbuf_alloc(512);
	struct sa sa;
	int err;

	outbuf[0] = '\0';
	if (!mb)
		return ENOMEM;

	(void)sa_set_str(&sa, addr, 0);
	err = media_sdp_rewrite(mb, text, strlen(text), &sa, portv, portc);
	if (!err) {
		size_t n = mb->end < sizeof(outbuf) - 1 ? mb->end
			: sizeof(outbuf) - 1;

		memcpy(outbuf, mb->buf, n);
		outbuf[n] = '\0';
	}

	mem_deref(mb);

	return err;
}


static bool has(const char *needle)
{
	bool ok = strstr(outbuf, needle) != NULL;

	if (!ok)
		fprintf(stderr, "  missing '%s' in:\n%s\n", needle, outbuf);

	return ok;
}


static void test_basic(void)
{
	static const char *offer =
		"v=0\r\n"
		"o=alice 2890844526 2890844527 IN IP4 198.51.100.7\r\n"
		"s=call\r\n"
		"c=IN IP4 198.51.100.7\r\n"
		"t=0 0\r\n"
		"m=audio 49170 RTP/AVP 0 8 101\r\n"
		"a=rtpmap:0 PCMU/8000\r\n"
		"a=rtpmap:8 PCMA/8000\r\n"
		"a=rtpmap:101 telephone-event/8000\r\n"
		"a=fmtp:101 0-15\r\n"
		"a=ptime:20\r\n"
		"a=rtcp:49171\r\n"
		"a=sendrecv\r\n";
	static const char *expect =
		"v=0\r\n"
		"o=alice 2890844526 2890844527 IN IP4 127.0.0.61\r\n"
		"s=call\r\n"
		"c=IN IP4 127.0.0.61\r\n"
		"t=0 0\r\n"
		"m=audio 30000 RTP/AVP 0 8 101\r\n"
		"a=rtpmap:0 PCMU/8000\r\n"
		"a=rtpmap:8 PCMA/8000\r\n"
		"a=rtpmap:101 telephone-event/8000\r\n"
		"a=fmtp:101 0-15\r\n"
		"a=ptime:20\r\n"
		"a=rtcp:30001\r\n"
		"a=sendrecv\r\n";
	const uint16_t portv[] = {30000};
	struct media_sdp sdp;
	struct sa sa;

	CHECK(0 == media_sdp_parse(&sdp, offer, strlen(offer)));
	CHECK(sdp.mc == 1);
	CHECK(!strcmp(sdp.m[0].type, "audio"));
	CHECK(sdp.m[0].port == 49170);
	(void)sa_set_str(&sa, "198.51.100.7", 49170);
	CHECK(sa_cmp(&sdp.m[0].rtp, &sa, SA_ALL));
	CHECK(sa_port(&sdp.m[0].rtcp) == 49171);
	CHECK(sdp.m[0].pt_pcmu == 0);
	CHECK(sdp.m[0].pt_pcma == 8);
	CHECK(sdp.m[0].srate == 8000);
	CHECK(sdp.m[0].dir == MEDIA_SENDRECV);
	CHECK(!sdp.m[0].hold);
	CHECK(!media_sdp_hold(&sdp));

	CHECK(0 == rewrite(offer, "127.0.0.61", portv, 1));
	CHECK(!strcmp(outbuf, expect));
	if (strcmp(outbuf, expect))
		fprintf(stderr, "  got:\n%s\n", outbuf);

	/* LF-only input: CRLF output, same content */
	CHECK(0 == rewrite("v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\n"
			   "c=IN IP4 10.0.0.1\nt=0 0\n"
			   "m=audio 4000 RTP/AVP 0\n", "192.0.2.1", portv, 1));
	CHECK(has("c=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 30000 RTP/AVP "
		  "0\r\n"));
	CHECK(!strstr(outbuf, "10.0.0.1"));
}


static void test_multi(void)
{
	/* audio with a media-level c=, rejected video, and an accepted
	   video with a=rtcp carrying an address */
	static const char *sdp_text =
		"v=0\r\n"
		"o=- 1 2 IN IP4 203.0.113.9\r\n"
		"s=-\r\n"
		"c=IN IP4 203.0.113.9\r\n"
		"t=0 0\r\n"
		"a=sendonly\r\n"
		"m=audio 5004 RTP/AVP 96 0\r\n"
		"c=IN IP4 203.0.113.10\r\n"
		"a=rtpmap:96 opus/48000/2\r\n"
		"a=recvonly\r\n"
		"m=video 0 RTP/AVP 31\r\n"
		"m=video 6000 RTP/AVP 97\r\n"
		"a=rtpmap:97 H264/90000\r\n"
		"a=rtcp:6101 IN IP4 203.0.113.11\r\n";
	const uint16_t portv[] = {30000, 30002, 30004};
	struct media_sdp sdp;

	CHECK(0 == media_sdp_parse(&sdp, sdp_text, strlen(sdp_text)));
	CHECK(sdp.mc == 3);
	CHECK(sdp.m[0].dir == MEDIA_RECVONLY);   /* media level wins */
	CHECK(!sdp.m[0].hold);
	CHECK(sdp.m[0].pt_pcmu == 0 && sdp.m[0].pt_pcma == -1);
	CHECK(sa_port(&sdp.m[0].rtp) == 5004);
	{
		struct sa sa;

		(void)sa_set_str(&sa, "203.0.113.10", 5004);
		CHECK(sa_cmp(&sdp.m[0].rtp, &sa, SA_ALL));
		(void)sa_set_str(&sa, "203.0.113.11", 6101);
		CHECK(sa_cmp(&sdp.m[2].rtcp, &sa, SA_ALL));
	}
	CHECK(sdp.m[1].port == 0);
	CHECK(sdp.m[2].dir == MEDIA_SENDONLY);   /* session level */
	CHECK(sdp.m[2].hold);
	CHECK(sdp.m[2].srate == 90000);
	CHECK(media_sdp_hold(&sdp));

	CHECK(0 == rewrite(sdp_text, "127.0.0.62", portv, 3));
	CHECK(has("m=audio 30000 RTP/AVP 96 0\r\nc=IN IP4 127.0.0.62\r\n"));
	CHECK(has("m=video 0 RTP/AVP 31\r\n"));
	CHECK(has("m=video 30004 RTP/AVP 97\r\n"));
	CHECK(has("a=rtcp:30005 IN IP4 127.0.0.62\r\n"));
	CHECK(has("a=sendonly\r\n"));
	CHECK(has("a=recvonly\r\n"));
	CHECK(has("a=rtpmap:96 opus/48000/2\r\n"));
	CHECK(!strstr(outbuf, "203.0.113"));
	CHECK(!strstr(outbuf, "30002"));   /* port 0 stays 0 */

	/* too few ports for the m= lines */
	CHECK(EINVAL == rewrite(sdp_text, "127.0.0.62", portv, 2));
}


static void test_directions(void)
{
	static const char *dirs[] = {"sendrecv", "sendonly", "recvonly",
				     "inactive"};
	const uint16_t portv[] = {30000};
	char text[512];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(dirs); i++) {
		struct media_sdp sdp;
		char line[32];

		(void)re_snprintf(text, sizeof(text),
				  "v=0\r\no=- 1 1 IN IP4 10.1.1.1\r\ns=-\r\n"
				  "c=IN IP4 10.1.1.1\r\nt=0 0\r\n"
				  "m=audio 7000 RTP/AVP 8\r\na=%s\r\n",
				  dirs[i]);
		CHECK(0 == media_sdp_parse(&sdp, text, strlen(text)));
		CHECK(sdp.m[0].dir == (enum media_dirattr)i);
		CHECK(sdp.m[0].hold == (i == 1 || i == 3));
		CHECK(0 == rewrite(text, "127.0.0.61", portv, 1));
		(void)re_snprintf(line, sizeof(line), "a=%s\r\n", dirs[i]);
		CHECK(has(line));
	}

	/* old-style hold: c=0.0.0.0 */
	{
		static const char *hold =
			"v=0\r\no=- 1 2 IN IP4 10.1.1.1\r\ns=-\r\n"
			"c=IN IP4 0.0.0.0\r\nt=0 0\r\n"
			"m=audio 7000 RTP/AVP 0\r\n";
		struct media_sdp sdp;

		CHECK(0 == media_sdp_parse(&sdp, hold, strlen(hold)));
		CHECK(sdp.m[0].hold);
		CHECK(sa_is_any(&sdp.m[0].rtp));
	}
}


static void test_ice(void)
{
	static const char *text =
		"v=0\r\n"
		"o=- 5 5 IN IP4 192.168.1.20\r\n"
		"s=-\r\n"
		"a=ice-lite\r\n"
		"a=ice-options:trickle\r\n"
		"t=0 0\r\n"
		"m=audio 40000 RTP/AVP 0\r\n"
		"c=IN IP4 192.168.1.20\r\n"
		"a=ice-ufrag:abcd\r\n"
		"a=ice-pwd:0123456789abcdef012345\r\n"
		"a=candidate:1 1 UDP 2130706431 192.168.1.20 40000 typ host\r\n"
		"a=candidate:2 1 UDP 1694498815 198.51.100.1 41000 typ srflx "
		"raddr 192.168.1.20 rport 40000\r\n"
		"a=end-of-candidates\r\n"
		"a=remote-candidates:1 198.51.100.2 5000\r\n"
		"a=rtcp-mux\r\n"
		"a=ptime:20\r\n";
	const uint16_t portv[] = {30010};

	CHECK(0 == rewrite(text, "127.0.0.62", portv, 1));
	CHECK(!strstr(outbuf, "candidate"));
	CHECK(!strstr(outbuf, "ice-"));
	CHECK(!strstr(outbuf, "192.168.1.20"));
	CHECK(!strstr(outbuf, "198.51.100"));
	CHECK(has("a=rtcp-mux\r\na=ptime:20\r\n"));
	CHECK(has("m=audio 30010 RTP/AVP 0\r\nc=IN IP4 127.0.0.62\r\n"));
}


static void test_ipv6(void)
{
	static const char *text =
		"v=0\r\no=- 1 1 IN IP6 2001:db8::1\r\ns=-\r\n"
		"c=IN IP6 2001:db8::1\r\nt=0 0\r\n"
		"m=audio 9000 RTP/AVP 0\r\n";
	const uint16_t portv[] = {30020};
	struct media_sdp sdp;

	CHECK(0 == media_sdp_parse(&sdp, text, strlen(text)));
	CHECK(sa_af(&sdp.m[0].rtp) == AF_INET6);

	/* an IPv6 caller, relay address IPv4 toward the gateway */
	CHECK(0 == rewrite(text, "127.0.0.62", portv, 1));
	CHECK(has("c=IN IP4 127.0.0.62\r\n"));
	CHECK(has("o=- 1 1 IN IP4 127.0.0.62\r\n"));

	CHECK(0 == rewrite(text, "::1", portv, 1));
	CHECK(has("c=IN IP6 ::1\r\n"));
}


static void test_malformed(void)
{
	static const char *bad[] = {
		"",
		"garbage",
		"o=- 1 1 IN IP4 1.2.3.4\r\nv=0\r\n",   /* v= not first */
		"v=1\r\n",
		"v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio\r\n",
		"v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 70000 RTP/AVP 0\r\n",
		"v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio x RTP/AVP 0\r\n",
		"v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 5000 RTP/AVP\r\n",
		"v=0\r\nc=IN IP4 1.2.3.4\r\nm=video 5000/2 RTP/AVP 31\r\n",
		"v=0\r\nm=audio 5000 RTP/AVP 0\r\n",             /* no c= */
		"v=0\r\nc=IN IP4 1.2.3\r\nm=audio 5000 RTP/AVP 0\r\n",
		"v=0\r\nc=IN IP6 1.2.3.4\r\nm=audio 5000 RTP/AVP 0\r\n",
		"v=0\r\nc=IN IP4 1.2.3.4 extra\r\n",
		"v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 5000 RTP/AVP 0\r\n"
		"a=rtcp:abc\r\n",
		"v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 5000 RTP/AVP 0\r\n"
		"a=rtcp:0\r\n",
		"v=0\r\nc=IN IP4 1.2.3.4\r\nX=bad\r\n",
		"v=0\r\nc=IN IP4 1.2.3.4\r\nnot a line\r\n",
	};
	const uint16_t portv[MEDIA_MAX_M] = {30000};
	struct media_sdp sdp;
	char many[2048];
	size_t i, n;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		int err = media_sdp_parse(&sdp, bad[i], strlen(bad[i]));

		CHECK(err == EBADMSG);
		if (err != EBADMSG)
			fprintf(stderr, "  accepted bad SDP %zu: %s\n", i,
				bad[i]);
		CHECK(EBADMSG == rewrite(bad[i], "127.0.0.61", portv, 1));
	}

	/* a port-0 stream may have no connection address at all */
	CHECK(0 == media_sdp_parse(&sdp, "v=0\r\nm=audio 0 RTP/AVP 0\r\n",
				   26));

	/* more m= lines than the relay handles */
	n = re_snprintf(many, sizeof(many), "v=0\r\nc=IN IP4 1.2.3.4\r\n");
	for (i = 0; i <= MEDIA_MAX_M; i++)
		n += re_snprintf(many + n, sizeof(many) - n,
				 "m=audio %zu RTP/AVP 0\r\n", 5000 + 2 * i);
	CHECK(E2BIG == media_sdp_parse(&sdp, many, n));

	CHECK(EINVAL == media_sdp_parse(NULL, "v=0\r\n", 5));
}


int main(void)
{
	test_basic();
	test_multi();
	test_directions();
	test_ice();
	test_ipv6();
	test_malformed();

	return check_report("test_sdp");
}
