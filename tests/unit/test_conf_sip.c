/**
 * @file test_conf_sip.c  Unit tests of the B2BUA's keys: sip_listen,
 *                        trusted_peer (and CIDR matching), gateway, route
 *                        (and longest prefix match), copy_header, the
 *                        limits at the door
 */

#include "test_conf.h"


void test_sip_listen(void)
{
	struct cfg *cfg;
	struct le *le;
	struct sa sa;

	cfg = OK("sip_listen udp:127.0.0.1:5060\n"
		 "sip_listen tcp:127.0.0.1:5060\n"
		 "sip_listen udp:127.0.0.2\n"
		 "sip_listen tcp:[::1]:5070\n"
		 "sip_listen udp:[::1]\n"
		 "db_conninfo dbname=x\n");
	if (!cfg)
		return;

	CHECK(list_count(&SIP(cfg)->listenl) == 5);
	le = list_head(&SIP(cfg)->listenl);
	{
		const struct cfg_listen *l = le->data;
		CHECK(l->tp == SIP_TRANSP_UDP && l->line == 1);
	}
	le = le->next;
	{
		const struct cfg_listen *l = le->data;
		CHECK(l->tp == SIP_TRANSP_TCP && l->line == 2);
	}
	le = le->next;
	{
		const struct cfg_listen *l = le->data;
		sa_set_str(&sa, "127.0.0.2", 5060);
		CHECK(sa_cmp(&l->addr, &sa, SA_ALL));
	}
	le = le->next;
	{
		const struct cfg_listen *l = le->data;
		sa_set_str(&sa, "::1", 5070);
		CHECK(l->tp == SIP_TRANSP_TCP);
		CHECK(sa_cmp(&l->addr, &sa, SA_ALL));
	}
	le = le->next;
	{
		const struct cfg_listen *l = le->data;
		sa_set_str(&sa, "::1", 5060);
		CHECK(l->tp == SIP_TRANSP_UDP);
		CHECK(sa_cmp(&l->addr, &sa, SA_ALL));
		CHECK(l->line == 5);
	}
	mem_deref(cfg);

	BAD(BASE "sip_listen sctp:127.0.0.1:5061\n", "t.conf:3: ",
	    "sip_listen: unknown transport 'sctp' (udp, tcp or tls)");
	BAD(BASE "sip_listen tls:127.0.0.1:5061\n", "t.conf:3: ",
	    "SIP over TLS needs sip_tls_cert and sip_tls_key");
	BAD(BASE "sip_listen tls:127.0.0.1\nsip_tls_cert /nonexistent.pem\n"
	    "sip_tls_key /nonexistent.key\n", "t.conf:4: ",
	    "cannot load certificate '/nonexistent.pem'");
	BAD(BASE "sip_listen 127.0.0.1:5060\n", "t.conf:3: ",
	    "unknown transport '127.0.0.1'");
	BAD(BASE "sip_listen 127.0.0.1\n", "t.conf:3: ",
	    "expected TRANSPORT:ADDRESS[:PORT]");
	BAD(BASE "sip_listen udp:localhost:5060\n", "t.conf:3: ",
	    "'localhost' is not an IPv4 address");
	BAD(BASE "sip_listen udp:127.0.0.1:0\n", "t.conf:3: ",
	    "port 0 out of range 1..65535");
	BAD(BASE "sip_listen udp:127.0.0.1:65536\n", "t.conf:3: ",
	    "port 65536 out of range 1..65535");
	BAD(BASE "sip_listen udp:127.0.0.1:50x\n", "t.conf:3: ",
	    "port '50x' is not a decimal number");
	BAD(BASE "sip_listen udp:127.0.0.1:\n", "t.conf:3: ",
	    "port is empty");
	BAD(BASE "sip_listen udp:::1:5060\n", "t.conf:3: ",
	    "write an IPv6 address in brackets");
	BAD(BASE "sip_listen udp:[::1\n", "t.conf:3: ", "missing ']'");
	BAD(BASE "sip_listen udp:[::1]5060\n", "t.conf:3: ",
	    "expected ':PORT' after ']'");
	BAD(BASE "sip_listen udp:[127.0.0.1]:5060\n", "t.conf:3: ",
	    "'127.0.0.1' is not an IPv6 address");
	BAD(BASE "sip_listen udp:0.0.0.0:5060\n", "t.conf:3: ",
	    "concrete address");
	BAD(BASE "sip_listen udp:[::]:5060\n", "t.conf:3: ",
	    "concrete address");
	BAD(BASE "sip_listen udp:127.0.0.1 udp:127.0.0.2\n", "t.conf:3: ",
	    "expected TRANSPORT:ADDRESS[:PORT]");
	BAD(BASE "sip_listen udp:127.0.0.256\n", "t.conf:3: ",
	    "not an IPv4 address");
	BAD(BASE "sip_listen udp:127.1\n", "t.conf:3: ",
	    "not an IPv4 address");
}


void test_trusted_peer(void)
{
	struct cfg *cfg;
	const struct cfg_peer *peer;
	struct le *le;

	cfg = OK(BASE
		 "trusted_peer 127.0.0.1 account=demo\n"
		 "trusted_peer 10.0.0.0/8 header=P-Asserted-Identity\n"
		 "trusted_peer ::1 from\n"
		 "trusted_peer 2001:db8::/32 account=carrier-7\n"
		 "trusted_peer 0.0.0.0/0 from\n");
	if (!cfg)
		return;

	CHECK(list_count(&SIP(cfg)->peerl) == 5);
	le = list_head(&SIP(cfg)->peerl);
	peer = le->data;
	CHECK(peer->bits == 32 && peer->mode == CFG_ID_FIXED);
	CHECK(peer->account && !strcmp(peer->account, "demo"));
	CHECK(peer->hdr == NULL);
	CHECK(peer->line == 3);

	peer = le->next->data;
	CHECK(peer->bits == 8 && peer->mode == CFG_ID_HEADER);
	CHECK(peer->hdr && !strcmp(peer->hdr, "P-Asserted-Identity"));
	CHECK(peer->account == NULL);

	peer = le->next->next->data;
	CHECK(peer->bits == 128 && peer->mode == CFG_ID_FROM);
	CHECK(sa_af(&peer->addr) == AF_INET6);

	peer = le->next->next->next->data;
	CHECK(peer->bits == 32 && sa_af(&peer->addr) == AF_INET6);
	CHECK(!strcmp(peer->account, "carrier-7"));

	peer = list_ledata(list_tail(&SIP(cfg)->peerl));
	CHECK(peer->bits == 0);
	/* where their media may come from: strict unless said otherwise */
	CHECK(peer->rtp == CFG_RTP_STRICT);
	mem_deref(cfg);

	cfg = OK(BASE
		 "trusted_peer 192.0.2.1 account=a rtp=latch\n"
		 "trusted_peer 192.0.2.2 from rtp=any\n"
		 "trusted_peer 192.0.2.3 header=X-Acc rtp=strict\n");
	if (cfg) {
		le = list_head(&SIP(cfg)->peerl);
		CHECK(((struct cfg_peer *)le->data)->rtp == CFG_RTP_LATCH);
		CHECK(((struct cfg_peer *)le->next->data)->rtp ==
		      CFG_RTP_ANY);
		CHECK(((struct cfg_peer *)le->next->next->data)->rtp ==
		      CFG_RTP_STRICT);
		CHECK(((struct cfg_peer *)le->next->next->data)->mode ==
		      CFG_ID_HEADER);
		mem_deref(cfg);
	}

	BAD(BASE "trusted_peer 127.0.0.1 account=\n", "t.conf:3: ",
	    "trusted_peer: account name is empty");
	BAD(BASE "trusted_peer 127.0.0.1 header=\n", "t.conf:3: ",
	    "'' is not a valid header name");
	BAD(BASE "trusted_peer 127.0.0.1 header=P-Asserted:Id\n",
	    "t.conf:3: ", "'P-Asserted:Id' is not a valid header name");
	BAD(BASE "trusted_peer 127.0.0.1 header=X(y)\n", "t.conf:3: ",
	    "not a valid header name");
	BAD(BASE "trusted_peer 127.0.0.1\n", "t.conf:3: ",
	    "expected NETWORK[/BITS]");
	BAD(BASE "trusted_peer 127.0.0.1 from extra\n", "t.conf:3: ",
	    "expected NETWORK[/BITS]");
	BAD(BASE "trusted_peer 127.0.0.1 from rtp=loose\n", "t.conf:3: ",
	    "unknown media source mode 'loose' (strict, latch or any)");
	BAD(BASE "trusted_peer 127.0.0.1 from rtp=any x\n", "t.conf:3: ",
	    "expected NETWORK[/BITS]");
	BAD(BASE "trusted_peer 127.0.0.1 user=demo\n", "t.conf:3: ",
	    "unknown mode 'user=demo'");
	BAD(BASE "trusted_peer 127.0.0.1 From\n", "t.conf:3: ",
	    "unknown mode 'From'");
	BAD(BASE "trusted_peer 10.0.0.0/33 from\n", "t.conf:3: ",
	    "prefix length 33 out of range 0..32");
	BAD(BASE "trusted_peer ::/129 from\n", "t.conf:3: ",
	    "prefix length 129 out of range 0..128");
	BAD(BASE "trusted_peer 10.0.0.0/ from\n", "t.conf:3: ",
	    "prefix length is empty");
	BAD(BASE "trusted_peer 10.0.0.0/8x from\n", "t.conf:3: ",
	    "prefix length '8x' is not a decimal number");
	BAD(BASE "trusted_peer 10.0.0.1/8 from\n", "t.conf:3: ",
	    "'10.0.0.1/8' has host bits set (the network is 10.0.0.0/8)");
	BAD(BASE "trusted_peer 2001:db8::1/64 from\n", "t.conf:3: ",
	    "has host bits set (the network is 2001:db8::/64)");
	BAD(BASE "trusted_peer gw.example.com from\n", "t.conf:3: ",
	    "'gw.example.com' is not an IPv4 or IPv6 address");
	BAD(BASE "trusted_peer [::1] from\n", "t.conf:3: ",
	    "not an IPv4 or IPv6 address");
	BAD(BASE "trusted_peer ::ffff:10.0.0.0/104 from\n", "t.conf:3: ",
	    "'::ffff:10.0.0.0' is an IPv4-mapped address");
	BAD(BASE "trusted_peer 10.0.0.0/8 from\n"
	    "trusted_peer 10.0.0.0/8 account=x\n", "t.conf:4: ",
	    "duplicate network '10.0.0.0/8' (first at line 3)");
	BAD(BASE "trusted_peer ::1 from\ntrusted_peer ::1/128 from\n",
	    "t.conf:4: ", "(first at line 3)");
	BAD(BASE "trusted_peer 10.0.0.5 from port=0\n", "t.conf:3: ",
	    "port 0 out of range 1..65535");
	BAD(BASE "trusted_peer 10.0.0.5 from transport=sctp\n",
	    "t.conf:3: ", "unknown transport 'sctp'");
	BAD(BASE "trusted_peer 10.0.0.5 from port=5060 port=5061\n",
	    "t.conf:3: ", "port given twice");
	BAD(BASE "trusted_peer 10.0.0.5 port=5060\n", "t.conf:3: ",
	    "expected NETWORK[/BITS]");
}


void test_cidr(void)
{
	struct cfg *cfg;
	const struct cfg_peer *peer;
	struct sa sa;

	cfg = OK(BASE
		 "trusted_peer 192.0.2.7 account=one\n"
		 "trusted_peer 192.0.2.0/24 account=net\n"
		 "trusted_peer 198.51.96.0/20 account=twenty\n"
		 "trusted_peer 2001:db8::1 account=v6host\n"
		 "trusted_peer 2001:db8:0:0:8000::/65 account=v6odd\n"
		 "trusted_peer 2001:db8::/32 account=v6net\n");
	if (!cfg)
		return;

#define PEER(addr) (sa_set_str(&sa, (addr), 5060), \
				cfg_peer_find(SIP(cfg), &sa, SIP_TRANSP_UDP))

	peer = PEER("192.0.2.7");
	CHECK(peer && !strcmp(peer->account, "one"));
	peer = PEER("192.0.2.8");
	CHECK(peer && !strcmp(peer->account, "net"));
	peer = PEER("192.0.2.255");
	CHECK(peer && !strcmp(peer->account, "net"));
	CHECK(PEER("192.0.3.1") == NULL);
	peer = PEER("198.51.96.1");
	CHECK(peer && !strcmp(peer->account, "twenty"));
	peer = PEER("198.51.111.255");
	CHECK(peer && !strcmp(peer->account, "twenty"));
	CHECK(PEER("198.51.112.0") == NULL);
	CHECK(PEER("198.51.95.255") == NULL);
	CHECK(PEER("127.0.0.1") == NULL);

	peer = PEER("2001:db8::1");
	CHECK(peer && !strcmp(peer->account, "v6host"));
	peer = PEER("2001:db8::2");
	CHECK(peer && !strcmp(peer->account, "v6net"));
	peer = PEER("2001:db8::8000:0:0:1");
	CHECK(peer && !strcmp(peer->account, "v6odd"));
	peer = PEER("2001:db8::7fff:0:0:1");
	CHECK(peer && !strcmp(peer->account, "v6net"));
	peer = PEER("2001:db8:ffff::1");
	CHECK(peer && !strcmp(peer->account, "v6net"));
	CHECK(PEER("2001:db9::1") == NULL);
	CHECK(PEER("::1") == NULL);

	/* an IPv4-mapped source is matched as the IPv4 address it carries */
	{
		uint8_t a[16] = {0,0,0,0, 0,0,0,0, 0,0,0xff,0xff, 192,0,2,7};

		sa_set_in6(&sa, a, 5060);
		peer = cfg_peer_find(SIP(cfg), &sa, SIP_TRANSP_UDP);
		CHECK(peer && !strcmp(peer->account, "one"));
		a[15] = 99;
		sa_set_in6(&sa, a, 5060);
		peer = cfg_peer_find(SIP(cfg), &sa, SIP_TRANSP_UDP);
		CHECK(peer && !strcmp(peer->account, "net"));
		a[14] = 3;
		sa_set_in6(&sa, a, 5060);
		CHECK(cfg_peer_find(SIP(cfg), &sa, SIP_TRANSP_UDP) == NULL);
	}

	CHECK(cfg_peer_find(SIP(cfg), NULL, SIP_TRANSP_UDP) == NULL);
	CHECK(cfg_peer_find(NULL, &sa, SIP_TRANSP_UDP) == NULL);
	mem_deref(cfg);

	/* /0 matches everything of its family, the first match wins */
	cfg = OK(BASE "trusted_peer 10.1.2.3 account=a\n"
		 "trusted_peer 0.0.0.0/0 from\n"
		 "trusted_peer ::/0 header=X-Id\n");
	if (!cfg)
		return;

	peer = PEER("10.1.2.3");
	CHECK(peer && peer->mode == CFG_ID_FIXED);
	peer = PEER("203.0.113.9");
	CHECK(peer && peer->mode == CFG_ID_FROM);
	peer = PEER("fe80::1");
	CHECK(peer && peer->mode == CFG_ID_HEADER);
	mem_deref(cfg);

	/* pinned to a transport and a source port */
	cfg = OK(BASE "trusted_peer 10.0.0.5 transport=udp port=5060 "
		 "account=pin\n"
		 "trusted_peer 10.0.0.6 account=tcp transport=tcp\n"
		 "trusted_peer 10.0.0.5 port=5062 from\n");
	if (!cfg)
		return;

	peer = PEER("10.0.0.5");
	CHECK(peer && !strcmp(peer->account, "pin"));
	CHECK(peer && peer->tp == SIP_TRANSP_UDP && peer->port == 5060);
	sa_set_str(&sa, "10.0.0.5", 5061);
	CHECK(cfg_peer_find(SIP(cfg), &sa, SIP_TRANSP_UDP) == NULL);
	sa_set_str(&sa, "10.0.0.5", 5060);
	CHECK(cfg_peer_find(SIP(cfg), &sa, SIP_TRANSP_TCP) == NULL);
	sa_set_str(&sa, "10.0.0.5", 5062);
	peer = cfg_peer_find(SIP(cfg), &sa, SIP_TRANSP_TCP);
	CHECK(peer && peer->mode == CFG_ID_FROM);
	CHECK(PEER("10.0.0.6") == NULL);
	sa_set_str(&sa, "10.0.0.6", 40000);
	peer = cfg_peer_find(SIP(cfg), &sa, SIP_TRANSP_TCP);
	CHECK(peer && !strcmp(peer->account, "tcp"));
	mem_deref(cfg);

#undef PEER
}


/* the dialled number as routing, rating and the gateway see it */
void test_number(void)
{
	char buf[B2BUA_NUMBER_MAX + 1], big[80];
	struct pl pl;

#define NUM(s) (pl_set_str(&pl, (s)), \
		b2bua_number_normalise(buf, sizeof(buf), &pl))

	CHECK(NUM("+1-900-555-0100") == 0 && !strcmp(buf, "19005550100"));
	CHECK(NUM("(1)900.555-0101") == 0 && !strcmp(buf, "19005550101"));
	CHECK(NUM("4420") == 0 && !strcmp(buf, "4420"));
	CHECK(NUM("+44") == 0 && !strcmp(buf, "44"));
	CHECK(NUM("1900abc") == EINVAL);
	CHECK(NUM("*123#") == EINVAL);
	CHECK(NUM("%2B1900") == EINVAL);
	CHECK(NUM("1900;phone-context=x") == EINVAL);
	CHECK(NUM("++1") == EINVAL);
	CHECK(NUM("1+1") == EINVAL);
	CHECK(NUM("+-.") == EINVAL);
	CHECK(NUM("+") == EINVAL);
	CHECK(NUM("1 900") == EINVAL);
	pl.p = "19\0" "00";
	pl.l = 5;
	CHECK(b2bua_number_normalise(buf, sizeof(buf), &pl) == EINVAL);

	memset(big, '1', 64);
	big[64] = '\0';
	CHECK(NUM(big) == 0 && strlen(buf) == 64);
	big[64] = '1';
	big[65] = '\0';
	CHECK(NUM(big) == EINVAL);
	CHECK(b2bua_number_normalise(buf, 3, &pl) == EINVAL);

#undef NUM
}


void test_gateway(void)
{
	struct cfg *cfg;
	const struct cfg_gateway *gw;
	struct sa sa;

	cfg = OK(BASE "gateway gw1 192.0.2.10:5080\n"
		 "gateway gw-2.b_c 192.0.2.11 transport=tcp\n"
		 "gateway v6 [2001:db8::5]:5090 transport=udp\n");
	if (!cfg)
		return;

	gw = cfg_gateway_find(SIP(cfg), "gw1");
	CHECK(gw != NULL);
	if (gw) {
		sa_set_str(&sa, "192.0.2.10", 5080);
		CHECK(sa_cmp(&gw->addr, &sa, SA_ALL));
		CHECK(gw->tp == SIP_TRANSP_UDP);
		CHECK(gw->line == 3);
	}

	gw = cfg_gateway_find(SIP(cfg), "gw-2.b_c");
	CHECK(gw != NULL);
	if (gw) {
		sa_set_str(&sa, "192.0.2.11", 5060);
		CHECK(sa_cmp(&gw->addr, &sa, SA_ALL));
		CHECK(gw->tp == SIP_TRANSP_TCP);
	}

	gw = cfg_gateway_find(SIP(cfg), "v6");
	CHECK(gw != NULL);
	if (gw) {
		sa_set_str(&sa, "2001:db8::5", 5090);
		CHECK(sa_cmp(&gw->addr, &sa, SA_ALL));
	}

	CHECK(cfg_gateway_find(SIP(cfg), "GW1") == NULL);
	CHECK(cfg_gateway_find(SIP(cfg), "gw3") == NULL);
	CHECK(cfg_gateway_find(SIP(cfg), NULL) == NULL);
	mem_deref(cfg);

	BAD(BASE "gateway gw1 192.0.2.1\n# c\ngateway gw1 192.0.2.2\n",
	    "t.conf:5: ", "gateway 'gw1' already defined at line 3");
	BAD(BASE "gateway gw1\n", "t.conf:3: ",
	    "expected NAME ADDRESS[:PORT]");
	BAD(BASE "gateway gw1 192.0.2.1 transport=tcp x\n", "t.conf:3: ",
	    "gateway: unknown option 'x' (expected transport=, carrier=, probe=");
	BAD(BASE "gateway gw1 192.0.2.1 carrier=a carrier=b\n", "t.conf:3: ",
	    "carrier= given twice");
	BAD(BASE "gateway gw1 192.0.2.1 carrier=a/b\n", "t.conf:3: ",
	    "'a/b' is not a valid carrier name");
	BAD(BASE "gateway gw1 192.0.2.1 probe=yes\n", "t.conf:3: ",
	    "probe 'yes' is not a decimal number");
	BAD(BASE "number_in match=0 strip=x\n", "t.conf:3: ",
	    "bad strip 'x'");
	BAD(BASE "number_in match=0\n", "t.conf:3: ",
	    "a rule needs national=, strip= or prefix=");
	BAD(BASE "number_out account=a prefix=0\n", "t.conf:3: ",
	    "unknown option 'account' of a number_out rule");
	BAD(BASE "gateway gw1 192.0.2.1\nnumber_out gateway=gw2 prefix=0\n",
	    "t.conf:4: ", "number_out: unknown gateway 'gw2'");
	BAD(BASE "gateway gw1 192.0.2.1 transport=sctp\n", "t.conf:3: ",
	    "unknown transport 'sctp'");
	BAD(BASE "gateway gw1 192.0.2.1 transport=tls\n", "t.conf:3: ",
	    "gateway gw1: transport=tls needs a 'sip_listen tls:...'");
	BAD(BASE "gateway gw1 192.0.2.1 tcp\n", "t.conf:3: ",
	    "unknown option 'tcp'");
	BAD(BASE "gateway gw,1 192.0.2.1\n", "t.conf:3: ",
	    "'gw,1' is not a valid gateway name");
	BAD(BASE "gateway gw1 carrier.example:5060\n", "t.conf:3: ",
	    "'carrier.example' is not an IPv4 address");
	BAD(BASE "gateway gw1 192.0.2.1:99999\n", "t.conf:3: ",
	    "port 99999 out of range 1..65535");
	BAD(BASE "gateway gw1 0.0.0.0\n", "t.conf:3: ",
	    "not a usable destination");
}


/* the health and limit options of a gateway line, and their keys */
void test_gateway_health(void)
{
	struct cfg *cfg;
	const struct cfg_gateway *gw;

	cfg = OK(BASE "gateway_probe_interval 10\n"
		 "gateway gw1 192.0.2.10 probe=2 probe_timeout=700 fail=4 "
		 "recover=3 burst=0 max_calls=30 cps=5 transport=tcp\n"
		 "gateway gw2 192.0.2.11 max_calls=7\n"
		 "gateway gw3 192.0.2.12 probe=0\n"
		 "gateway_probe_fail 6\n");
	if (!cfg)
		return;

	gw = cfg_gateway_find(SIP(cfg), "gw1");
	CHECK(gw && gw->tp == SIP_TRANSP_TCP);
	CHECK(gw && gw->h.probe == 2 && gw->h.probe_timeout == 700);
	CHECK(gw && gw->h.fail == 4 && gw->h.recover == 3);
	CHECK(gw && gw->h.burst == 0);
	CHECK(gw && gw->h.max_calls == 30 && gw->h.cps == 5);

	/* what the line does not say is the keys', wherever they are */
	gw = cfg_gateway_find(SIP(cfg), "gw2");
	CHECK(gw && gw->h.probe == 10 && gw->h.probe_timeout == 1000);
	CHECK(gw && gw->h.fail == 6 && gw->h.recover == 2);
	CHECK(gw && gw->h.burst == 5);
	CHECK(gw && gw->h.max_calls == 7 && gw->h.cps == 0);

	gw = cfg_gateway_find(SIP(cfg), "gw3");
	CHECK(gw && gw->h.probe == 0);
	mem_deref(cfg);

	/* without the keys nothing is probed or limited */
	cfg = OK(BASE "gateway gw1 192.0.2.10\n");
	if (cfg) {
		gw = cfg_gateway_find(SIP(cfg), "gw1");
		CHECK(gw && gw->h.probe == 0 && gw->h.max_calls == 0 &&
		      gw->h.cps == 0);
		mem_deref(cfg);
	}

	BAD(BASE "gateway gw1 192.0.2.1 probe=abc\n", "t.conf:3: ",
	    "gateway: probe 'abc' is not a decimal number");
	BAD(BASE "gateway gw1 192.0.2.1 cps=1 cps=2\n", "t.conf:3: ",
	    "gateway: cps given twice");
	BAD(BASE "gateway gw1 192.0.2.1 transport=udp transport=tcp\n",
	    "t.conf:3: ", "gateway: transport given twice");
	BAD(BASE "gateway gw1 192.0.2.1 fail=0\n", "t.conf:3: ",
	    "gateway: fail 0 out of range 1..100");
	BAD(BASE "gateway gw1 192.0.2.1 probe=3601\n", "t.conf:3: ",
	    "gateway: probe 3601 out of range 0..3600");
	BAD(BASE "gateway gw1 192.0.2.1 probe_timeout=10\n", "t.conf:3: ",
	    "gateway: probe_timeout 10 out of range 50..60000");
	BAD(BASE "gateway gw1 192.0.2.1 weight=3\n", "t.conf:3: ",
	    "gateway: unknown option 'weight=3'");
	BAD(BASE "gateway gw1 192.0.2.1 probe=1 probe_timeout=1001\n",
	    "t.conf:3: ", "gateway gw1: probe_timeout 1001 ms is longer "
	    "than its probe interval (1 s)");
	/* the key's timeout against the line's interval, at the line */
	BAD(BASE "gateway_probe_timeout 2000\ngateway gw1 192.0.2.1 "
	    "probe=1\n", "t.conf:4: ", "gateway gw1: probe_timeout 2000 ms");
	BAD(BASE "gateway_probe_interval 4000\n", "t.conf:3: ",
	    "out of range");
}


void test_routes(void)
{
	struct cfg *cfg;
	const struct cfg_route *rt;

	/* routes may name gateways declared further down */
	cfg = OK(BASE
		 "route 4420 gw1,gw2\n"
		 "route 44 gw2\n"
		 "route 4 gw1 , gw2 ,gw3\n"
		 "route default gw3\n"
		 "route 442071 gw3\n"
		 "gateway gw1 192.0.2.1\n"
		 "gateway gw2 192.0.2.2\n"
		 "gateway gw3 198.51.100.3\n");
	if (!cfg)
		return;

	CHECK(list_count(&SIP(cfg)->routel) == 5);

	rt = cfg_route_find(SIP(cfg), "442012345678");
	CHECK(rt && !strcmp(rt->prefix, "4420"));
	if (rt) {
		CHECK(rt->gwc == 2);
		CHECK(rt->gwv[0] == cfg_gateway_find(SIP(cfg), "gw1"));
		CHECK(rt->gwv[1] == cfg_gateway_find(SIP(cfg), "gw2"));
		CHECK(rt->line == 3);
	}

	rt = cfg_route_find(SIP(cfg), "4420");
	CHECK(rt && !strcmp(rt->prefix, "4420"));
	rt = cfg_route_find(SIP(cfg), "442");
	CHECK(rt && !strcmp(rt->prefix, "44"));
	rt = cfg_route_find(SIP(cfg), "4421999");
	CHECK(rt && !strcmp(rt->prefix, "44"));
	rt = cfg_route_find(SIP(cfg), "442071234567");
	CHECK(rt && !strcmp(rt->prefix, "442071"));
	CHECK(rt && rt->gwc == 1 && rt->gwv[0] ==
	      cfg_gateway_find(SIP(cfg), "gw3"));
	rt = cfg_route_find(SIP(cfg), "49301234");
	CHECK(rt && !strcmp(rt->prefix, "4"));
	CHECK(rt && rt->gwc == 3);
	if (rt && rt->gwc == 3)
		CHECK(!strcmp(rt->gwv[2]->name, "gw3"));

	rt = cfg_route_find(SIP(cfg), "3312345");
	CHECK(rt && !strcmp(rt->prefix, ""));
	CHECK(rt && rt->line == 6);
	rt = cfg_route_find(SIP(cfg), "");
	CHECK(rt && !strcmp(rt->prefix, ""));
	CHECK(cfg_route_find(SIP(cfg), NULL) == NULL);
	mem_deref(cfg);

	/* no default route: unmatched numbers have no route */
	cfg = OK(BASE "gateway gw1 192.0.2.1\nroute 1 gw1\n");
	if (cfg) {
		CHECK(cfg_route_find(SIP(cfg), "1555") != NULL);
		CHECK(cfg_route_find(SIP(cfg), "2555") == NULL);
		CHECK(cfg_route_find(SIP(cfg), "") == NULL);
		mem_deref(cfg);
	}

	BAD(BASE "route 4420 gw1,gw9\n"
	    "gateway gw1 192.0.2.1\n", "t.conf:3: ",
	    "route 4420: unknown gateway 'gw9'");
	BAD(BASE "gateway gw1 192.0.2.1\n"
	    "route default gw2\n", "t.conf:4: ",
	    "route default: unknown gateway 'gw2'");
	BAD(BASE "gateway gw1 192.0.2.1\n"
	    "route 4420 gw1\n"
	    "route 4420 gw1\n", "t.conf:5: ",
	    "duplicate prefix 4420 (first at line 4)");
	BAD(BASE "gateway gw1 192.0.2.1\n"
	    "route default gw1\n"
	    "route default gw1\n", "t.conf:5: ",
	    "duplicate default route (first at line 4)");
	BAD(BASE "gateway gw1 192.0.2.1\n"
	    "route 44 gw1,gw1\n", "t.conf:4: ",
	    "route 44: gateway 'gw1' listed twice");
	BAD(BASE "gateway gw1 192.0.2.1\nroute 44a gw1\n", "t.conf:4: ",
	    "prefix '44a' must be digits or 'default'");
	BAD(BASE "gateway gw1 192.0.2.1\nroute +44 gw1\n", "t.conf:4: ",
	    "must be digits or 'default'");
	BAD(BASE "gateway gw1 192.0.2.1\nroute 44\n", "t.conf:4: ",
	    "expected PREFIX GATEWAY");
	BAD(BASE "gateway gw1 192.0.2.1\nroute 44 gw1,\n", "t.conf:4: ",
	    "empty gateway name");
	BAD(BASE "gateway gw1 192.0.2.1\nroute 44 ,gw1\n", "t.conf:4: ",
	    "empty gateway name");
	BAD(BASE "gateway gw1 192.0.2.1\nroute 44 gw1 gw2\n", "t.conf:4: ",
	    "'gw1 gw2' is not a valid gateway name");
	BAD(BASE "gateway gw1 192.0.2.1\n"
	    "route 123456789012345678901234567890123 gw1\n", "t.conf:4: ",
	    "longer than 32 digits");
}


void test_copy_header(void)
{
	static const char *managed[] = {
		"Via", "from", "TO", "call-id", "CSeq", "Contact", "Route",
		"record-route", "Max-Forwards", "Content-Length",
		"content-type", "Authorization", "Proxy-Authorization",
		"v", "I",
	};
	struct cfg *cfg;
	const struct cfg_hdr *hdr;
	char text[256];
	size_t i;

	cfg = OK(BASE "copy_header X-Account-Code\n"
		 "copy_header P-Charging-Vector\ncopy_header Subject\n");
	if (cfg) {
		CHECK(list_count(&SIP(cfg)->copyl) == 3);
		hdr = list_ledata(list_head(&SIP(cfg)->copyl));
		CHECK(!strcmp(hdr->name, "X-Account-Code"));
		hdr = list_ledata(list_tail(&SIP(cfg)->copyl));
		CHECK(!strcmp(hdr->name, "Subject"));
		mem_deref(cfg);
	}

	for (i = 0; i < sizeof(managed) / sizeof(managed[0]); i++) {
		char reason[128];

		snprintf(text, sizeof(text), BASE "copy_header %s\n",
			 managed[i]);
		snprintf(reason, sizeof(reason), "copy_header: '%s' is "
			 "managed by tollgate itself", managed[i]);
		BAD(text, "t.conf:3: ", reason);
	}

	BAD(BASE "copy_header X-A\ncopy_header x-a\n", "t.conf:4: ",
	    "'x-a' already listed");
	BAD(BASE "copy_header X-A:\n", "t.conf:3: ",
	    "'X-A:' is not a valid header name");
	BAD(BASE "copy_header X-A X-B\n", "t.conf:3: ",
	    "expected one header name");
	BAD(BASE "copy_header X@A\n", "t.conf:3: ", "not a valid header");
}


void test_limits(void)
{
	const struct cfg_peer *peer;
	struct cfg *cfg;

	cfg = OK(BASE);
	if (cfg) {
		const struct b2bua_conf *c = SIP(cfg);

		CHECK(c->src_invite.rate == 10 && c->src_invite.burst == 20);
		CHECK(c->src_request.rate == 50 && c->src_request.burst == 100);
		CHECK(c->peer_invite.rate == 2000);
		CHECK(c->global_invite.rate == 2000 &&
		      c->global_invite.burst == 4000);
		CHECK(c->limit_sources == 65536 && c->limit_reply == 0);
		mem_deref(cfg);
	}

	cfg = OK(BASE
		 "limit_invite_per_source 2 3\n"
		 "limit_requests_per_source off\n"
		 "limit_invite_global 100 100\n"
		 "limit_reply none\n"
		 "trusted_peer 127.0.0.1 from limit=off\n"
		 "trusted_peer 127.0.0.2 from limit=5/6 request_limit=off\n"
		 "trusted_peer 127.0.0.3 account=x request_limit=7/8\n");
	if (cfg) {
		const struct b2bua_conf *c = SIP(cfg);
		struct le *le = list_head(&c->peerl);

		CHECK(c->src_invite.rate == 2 && c->src_invite.burst == 3);
		CHECK(c->src_request.rate == 0);
		CHECK(c->limit_reply == 1);
		peer = le->data;
		CHECK(peer->limit_off && !peer->invite_set);
		peer = le->next->data;
		CHECK(!peer->limit_off && peer->invite_set &&
		      peer->invite.rate == 5 && peer->invite.burst == 6);
		CHECK(peer->request_set && peer->request.rate == 0);
		peer = le->next->next->data;
		CHECK(!peer->invite_set && peer->request_set &&
		      peer->request.rate == 7 && peer->request.burst == 8);
		mem_deref(cfg);
	}

	BAD(BASE "limit_invite_per_source 0 5\n", "t.conf:3: ",
	    "rate 0 out of range 1..1000000");
	BAD(BASE "limit_invite_per_source 5\n", "t.conf:3: ",
	    "expected RATE BURST");
	BAD(BASE "limit_invite_global 5 0\n", "t.conf:3: ",
	    "burst 0 out of range 1..1000000");
	BAD(BASE "limit_reply drop\n", "t.conf:3: ", "limit_reply");
	BAD(BASE "trusted_peer 127.0.0.1 from limit=5\n", "t.conf:3: ",
	    "expected RATE/BURST or off");
	BAD(BASE "trusted_peer 127.0.0.1 from limit=off limit=1/1\n",
	    "t.conf:3: ", "limit=off leaves no other limit");
}
