/**
 * @file test_timer.c  Session timers (RFC 4028): the checks of a request,
 *                     the interval and refresher settled with a peer, the
 *                     headers tollgate writes
 */

#include <string.h>
#include "b2bua_int.h"
#include "check.h"


static struct b2bua_conf cfg;
static struct b2bua b;
static struct b2bua_call call;


/* a request or response with these extra header lines, decoded */
static struct sip_msg *msg_of(const char *first, const char *hdrs)
{
	struct sip_msg *msg = NULL;
	struct mbuf *mb = mbuf_alloc(1024);
	int err;

	if (!mb)
		return NULL;

	err = mbuf_printf(mb, "%s\r\n"
			  "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKt1\r\n"
			  "From: <sip:a@example.com>;tag=f1\r\n"
			  "To: <sip:1000@example.com>\r\n"
			  "Call-ID: t1@example.com\r\n"
			  "CSeq: 1 INVITE\r\n"
			  "Max-Forwards: 70\r\n"
			  "%s"
			  "Content-Length: 0\r\n\r\n", first, hdrs);
	mb->pos = 0;
	if (!err)
		err = sip_msg_decode(&msg, mb);
	mem_deref(mb);

	return err ? NULL : msg;
}


static struct sip_msg *req(const char *hdrs)
{
	return msg_of("INVITE sip:1000@example.com SIP/2.0", hdrs);
}


static void test_check(void)
{
	struct sip_msg *m;
	uint16_t scode = 0;
	char hdrs[128];

	cfg.min_se = 90;

	m = req("");
	CHECK(m && !timer_invite_check(&cfg, m, hdrs, sizeof(hdrs), &scode));
	mem_deref(m);

	m = req("Session-Expires: 90\r\n");
	CHECK(m && !timer_invite_check(&cfg, m, hdrs, sizeof(hdrs), &scode));
	mem_deref(m);

	m = req("Session-Expires: 89;refresher=uac\r\n");
	CHECK(m && timer_invite_check(&cfg, m, hdrs, sizeof(hdrs), &scode));
	CHECK(scode == 422 && !strcmp(hdrs, "Min-SE: 90\r\n"));
	mem_deref(m);

	scode = 0;
	m = req("Session-Expires: soon\r\n");
	CHECK(m && timer_invite_check(&cfg, m, hdrs, sizeof(hdrs), &scode));
	CHECK(scode == 400);
	mem_deref(m);

	scode = 0;
	m = req("Session-Expires: 1800\r\nMin-SE: 0\r\n");
	CHECK(m && timer_invite_check(&cfg, m, hdrs, sizeof(hdrs), &scode));
	CHECK(scode == 400);
	mem_deref(m);

	m = req("Min-SE: 120\r\n");
	CHECK(m && timer_min_se(m) == 120);
	mem_deref(m);
}


/* settle a caller's request on a fresh leg; the 2xx's headers in hdrs */
static int offer(struct leg *leg, const char *reqhdrs, char *hdrs,
		 size_t sz)
{
	struct sip_msg *m = req(reqhdrs);
	int err;

	memset(leg, 0, sizeof(*leg));
	leg->call = &call;
	leg->side = LEG_CALLER;

	if (!m)
		return EBADMSG;

	err = timer_offer_received(leg, m, hdrs, sz);
	mem_deref(m);

	return err;
}


static void test_offer(void)
{
	struct leg leg;
	char hdrs[160];

	cfg.session_expires = 1800;
	cfg.min_se = 90;

	/* the caller refreshes, as it asks */
	CHECK(!offer(&leg, "Supported: timer\r\n"
		     "Session-Expires: 600;refresher=uac\r\n", hdrs,
		     sizeof(hdrs)));
	CHECK(leg.se == 600 && !leg.se_ours && leg.se_peer_timer);
	CHECK(strstr(hdrs, "Session-Expires: 600;refresher=uac\r\n"));
	CHECK(strstr(hdrs, "Require: timer\r\n"));

	/* a proxy put it there, the caller knows nothing: tollgate */
	CHECK(!offer(&leg, "Session-Expires: 600\r\n", hdrs, sizeof(hdrs)));
	CHECK(leg.se == 600 && leg.se_ours && !leg.se_peer_timer);
	CHECK(strstr(hdrs, "refresher=uas"));
	CHECK(!strstr(hdrs, "Require"));

	/* none asked for: ours, refreshed by a caller that can */
	CHECK(!offer(&leg, "Supported: 100rel, timer\r\n", hdrs,
		     sizeof(hdrs)));
	CHECK(leg.se == 1800 && !leg.se_ours);
	CHECK(strstr(hdrs, "Session-Expires: 1800;refresher=uac\r\n"));
	CHECK(!offer(&leg, "", hdrs, sizeof(hdrs)));
	CHECK(leg.se == 1800 && leg.se_ours);
	CHECK(strstr(hdrs, "Session-Expires: 1800;refresher=uas\r\n"));

	/* shortened to ours, not below the caller's Min-SE */
	CHECK(!offer(&leg, "Supported: timer\r\nSession-Expires: 7200;"
		     "refresher=uas\r\n", hdrs, sizeof(hdrs)));
	CHECK(leg.se == 1800 && leg.se_ours);
	CHECK(!offer(&leg, "Supported: timer\r\nSession-Expires: 7200\r\n"
		     "Min-SE: 3600\r\n", hdrs, sizeof(hdrs)));
	CHECK(leg.se == 7200);

	/* whether a refresh may be an UPDATE */
	CHECK(!offer(&leg, "Allow: INVITE, ACK, BYE, UPDATE\r\n", hdrs,
		     sizeof(hdrs)));
	CHECK(leg.peer_update);
	CHECK(!offer(&leg, "Allow: INVITE, ACK, BYE\r\n", hdrs,
		     sizeof(hdrs)));
	CHECK(!leg.peer_update);

	/* off: only what the caller asks for */
	cfg.session_expires = 0;
	CHECK(!offer(&leg, "Supported: timer\r\n", hdrs, sizeof(hdrs)));
	CHECK(leg.se == 0 && hdrs[0] == '\0');
	CHECK(!offer(&leg, "Supported: timer\r\nSession-Expires: 300\r\n",
		     hdrs, sizeof(hdrs)));
	CHECK(leg.se == 300 && !leg.se_ours);
	cfg.session_expires = 1800;
}


static void test_answer(void)
{
	struct sip_msg *m;
	struct leg leg;

	memset(&leg, 0, sizeof(leg));
	leg.call = &call;
	leg.side = LEG_GATEWAY;
	call.se_gw = 1800;

	/* the gateway refreshes */
	m = msg_of("SIP/2.0 200 OK", "Require: timer\r\n"
		   "Session-Expires: 900;refresher=uas\r\n");
	CHECK(m != NULL);
	if (m)
		timer_answer_received(&leg, m);
	CHECK(leg.se == 900 && !leg.se_ours && leg.se_peer_timer);
	CHECK(tmr_isrunning(&leg.tmr_expire) &&
	      !tmr_isrunning(&leg.tmr_refresh));
	mem_deref(m);

	/* a gateway without timers: tollgate refreshes it anyway */
	memset(&leg, 0, sizeof(leg));
	leg.call = &call;
	leg.side = LEG_GATEWAY;
	m = msg_of("SIP/2.0 200 OK", "Allow: INVITE, UPDATE\r\n");
	CHECK(m != NULL);
	if (m)
		timer_answer_received(&leg, m);
	CHECK(leg.se == 1800 && leg.se_ours && leg.peer_update);
	CHECK(tmr_get_expire(&leg.tmr_refresh) > 899000 &&
	      tmr_get_expire(&leg.tmr_refresh) <= 900000);
	/* expiry 32 s before the end */
	CHECK(tmr_get_expire(&leg.tmr_expire) > 1767000 &&
	      tmr_get_expire(&leg.tmr_expire) <= 1768000);
	timer_stop(&leg);
	CHECK(!tmr_isrunning(&leg.tmr_expire));
	mem_deref(m);
}


int main(void)
{
	int err = libre_init();

	if (err)
		return 1;

	b.cfg = &cfg;
	call.b = &b;

	test_check();
	test_offer();
	test_answer();

	libre_close();

	return check_report("test_timer");
}
