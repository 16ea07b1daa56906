/**
 * @file test_conf.c  Unit tests of the configuration parser (core/conf.c)
 *
 * Every key valid and invalid, duplicates, comments, route resolution,
 * longest prefix match, CIDR matching for IPv4 and IPv6, cfg_load() on
 * bad files, cfg_print() round trip and the shipped example file.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <re.h>
#include "core.h"


static unsigned passed, failed;

#define CHECK(cond) check(__LINE__, (cond), #cond)

static void check(int line, bool ok, const char *what)
{
	if (ok) {
		++passed;
		return;
	}

	++failed;
	fprintf(stderr, "test_conf.c:%d: check failed: %s\n", line, what);
}


/* ------------------------------------------------------------ helpers */

/** Minimal valid configuration: the two required keys */
#define BASE "sip_listen udp:127.0.0.1:5060\n" \
	"db_conninfo dbname=tollgate\n"

static char errbuf[8192];
static size_t errlen;

static int err_handler(const char *p, size_t size, void *arg)
{
	(void)arg;

	if (errlen + size >= sizeof(errbuf))
		size = sizeof(errbuf) - 1 - errlen;

	memcpy(errbuf + errlen, p, size);
	errlen += size;
	errbuf[errlen] = '\0';

	return 0;
}

static struct re_printf errpf = {err_handler, NULL};


static int parse(struct tg_config **cfgp, const char *text)
{
	errlen = 0;
	errbuf[0] = '\0';
	*cfgp = NULL;

	return cfg_parse(cfgp, "t.conf", text, strlen(text), &errpf);
}


/** Parse text that must be accepted */
static struct tg_config *ok_cfg(int line, const char *text)
{
	struct tg_config *cfg;
	int err;

	err = parse(&cfg, text);
	check(line, err == 0 && cfg != NULL, "valid configuration accepted");
	check(line, errlen == 0, "no error printed for valid configuration");
	if (err || errlen)
		fprintf(stderr, "  text:\n%s  got err=%d: %s\n", text, err,
			errbuf);

	return err ? NULL : cfg;
}
#define OK(text) ok_cfg(__LINE__, (text))


/**
 * Parse text that must be refused with EINVAL and a message containing
 * both where ("t.conf:3: ") and reason.
 */
static void bad_cfg(int line, const char *text, const char *where,
		    const char *reason)
{
	struct tg_config *cfg;
	int err;
	bool ok;

	err = parse(&cfg, text);

	ok = err == EINVAL && cfg == NULL && strstr(errbuf, where) &&
		strstr(errbuf, reason);
	check(line, ok, reason);
	if (!ok)
		fprintf(stderr, "  text:\n%s  expected EINVAL, '%s' and '%s';"
			" got err=%d: %s\n", text, where, reason, err,
			errbuf);

	mem_deref(cfg);
}
#define BAD(text, where, reason) bad_cfg(__LINE__, (text), (where), (reason))


static unsigned count_lines(const char *s)
{
	unsigned n = 0;

	for (; *s; s++) {
		if (*s == '\n')
			++n;
	}

	return n;
}


/* -------------------------------------------------------------- tests */

static void test_defaults(void)
{
	struct tg_config *cfg = OK(BASE);
	const struct cfg_listen *l;
	struct sa sa;

	if (!cfg)
		return;

	CHECK(!strcmp(cfg->file, "t.conf"));
	CHECK(list_count(&cfg->listenl) == 1);
	l = list_ledata(list_head(&cfg->listenl));
	CHECK(l->tp == SIP_TRANSP_UDP);
	CHECK(l->line == 1);
	sa_set_str(&sa, "127.0.0.1", 5060);
	CHECK(sa_cmp(&l->addr, &sa, SA_ALL));

	CHECK(!strcmp(cfg->db_conninfo, "dbname=tollgate"));
	CHECK(!strcmp(cfg->realm, "tollgate"));
	CHECK(cfg->digest_auth);
	CHECK(cfg->nonce_ttl == 300);
	CHECK(cfg->ring_timeout == 60);
	CHECK(cfg->max_duration == 14400);
	CHECK(cfg->ack_timeout == 32);
	CHECK(cfg->shutdown_grace == 5);
	CHECK(cfg->max_calls == 0);
	sa_set_str(&sa, "127.0.0.1", 0);
	CHECK(sa_cmp(&cfg->rtp_addr, &sa, SA_ADDR));
	CHECK(cfg->rtp_port_min == 20000);
	CHECK(cfg->rtp_port_max == 29999);
	sa_set_str(&sa, "127.0.0.1", 8080);
	CHECK(sa_cmp(&cfg->api_listen, &sa, SA_ALL));
	CHECK(cfg->log_target == CFG_LOG_STDERR);
	CHECK(cfg->log_level == LOG_INFO);
	CHECK(!strcmp(cfg->state_dir, "/var/lib/tollgate"));
	CHECK(cfg->billing);
	CHECK(cfg->reserve_interval == 60);
	CHECK(cfg->low_balance_warning == 30);
	CHECK(cfg->heartbeat == 5);
	CHECK(cfg->db_connections == 4);
	CHECK(cfg->node_name && cfg->node_name[0]);
	CHECK(list_isempty(&cfg->peerl));
	CHECK(list_isempty(&cfg->gatewayl));
	CHECK(list_isempty(&cfg->routel));
	CHECK(list_isempty(&cfg->copyl));
	CHECK(list_isempty(&cfg->tokenl));

	mem_deref(cfg);
}


static void test_required(void)
{
	BAD("", "t.conf: ", "no sip_listen given");
	BAD("", "t.conf: ", "no db_conninfo given");
	BAD("sip_listen udp:127.0.0.1\n", "t.conf: ",
	    "no db_conninfo given");
	BAD("db_conninfo dbname=x\n", "t.conf: ", "no sip_listen given");
}


static void test_lexical(void)
{
	struct tg_config *cfg;

	/* comments, blank lines, indentation, tabs */
	cfg = OK("# a comment\n"
		 "\n"
		 "   \t \n"
		 "  # indented comment\n"
		 "\tsip_listen\tudp:127.0.0.1:5060\t# trailing comment\n"
		 "db_conninfo   host=/run/pg dbname=tollgate   \n"
		 "sip_realm voice#1 # the '#' in the value stays\n"
		 "state_dir /srv/my state\n");
	if (cfg) {
		CHECK(!strcmp(cfg->db_conninfo,
			      "host=/run/pg dbname=tollgate"));
		CHECK(!strcmp(cfg->realm, "voice#1"));
		CHECK(!strcmp(cfg->state_dir, "/srv/my state"));
		mem_deref(cfg);
	}

	/* CRLF, a byte order mark, no newline at the end */
	cfg = OK("\xef\xbb\xbfsip_listen udp:127.0.0.1\r\n"
		 "db_conninfo dbname=x\r\n"
		 "ring_timeout 30");
	if (cfg) {
		CHECK(cfg->ring_timeout == 30);
		CHECK(!strcmp(cfg->db_conninfo, "dbname=x"));
		mem_deref(cfg);
	}

	BAD(BASE "sip_lisen udp:127.0.0.1:5062\n", "t.conf:3: ",
	    "unknown key 'sip_lisen' (did you mean 'sip_listen'?)");
	BAD(BASE "frobnicate 1\n", "t.conf:3: ", "unknown key 'frobnicate'");
	BAD(BASE "Ring_Timeout 5\n", "t.conf:3: ", "unknown key");
	BAD(BASE "ring_timeout\n", "t.conf:3: ", "ring_timeout: missing value");
	BAD(BASE "ring_timeout # only a comment\n", "t.conf:3: ",
	    "ring_timeout: missing value");
	BAD(BASE "ring_timeout 5\x01\n", "t.conf:3: ", "control character");
}


static void test_nul_byte(void)
{
	static const char text[] = BASE "sip_realm a\0b\n";
	struct tg_config *cfg = NULL;
	int err;

	errlen = 0;
	err = cfg_parse(&cfg, "t.conf", text, sizeof(text) - 1, &errpf);
	CHECK(err == EINVAL);
	CHECK(cfg == NULL);
	CHECK(strstr(errbuf, "t.conf:3: control character 0x00") != NULL);
}


static void test_duplicates(void)
{
	BAD(BASE "ring_timeout 5\n# x\nring_timeout 6\n", "t.conf:5: ",
	    "duplicate 'ring_timeout' (first set at line 3)");
	BAD(BASE "db_conninfo dbname=other\n", "t.conf:3: ",
	    "duplicate 'db_conninfo' (first set at line 2)");
	BAD(BASE "sip_realm a\nsip_realm a\n", "t.conf:4: ",
	    "first set at line 3");
	BAD(BASE "log_level info\nlog_level debug\n", "t.conf:4: ",
	    "duplicate 'log_level'");
	BAD(BASE "sip_listen udp:127.0.0.1:5060\n", "t.conf:3: ",
	    "duplicate 'udp:127.0.0.1:5060' (first at line 1)");
}


static void test_numbers(void)
{
	struct tg_config *cfg;

	cfg = OK(BASE "nonce_ttl 10\nring_timeout 3600\n"
		 "max_call_duration 0\nack_timeout 300\nshutdown_grace 0\n"
		 "max_calls 250\n");
	if (cfg) {
		CHECK(cfg->nonce_ttl == 10);
		CHECK(cfg->ring_timeout == 3600);
		CHECK(cfg->max_duration == 0);
		CHECK(cfg->ack_timeout == 300);
		CHECK(cfg->shutdown_grace == 0);
		CHECK(cfg->max_calls == 250);
		mem_deref(cfg);
	}

	cfg = OK(BASE "nonce_ttl 86400\nring_timeout 1\nack_timeout 1\n"
		 "shutdown_grace 60\nmax_call_duration 604800\n");
	if (cfg) {
		CHECK(cfg->nonce_ttl == 86400);
		CHECK(cfg->ring_timeout == 1);
		CHECK(cfg->ack_timeout == 1);
		CHECK(cfg->shutdown_grace == 60);
		CHECK(cfg->max_duration == 604800);
		mem_deref(cfg);
	}

	BAD(BASE "nonce_ttl 9\n", "t.conf:3: ",
	    "nonce_ttl: value 9 out of range 10..86400");
	BAD(BASE "nonce_ttl 86401\n", "t.conf:3: ", "out of range 10..86400");
	BAD(BASE "ring_timeout 0\n", "t.conf:3: ", "out of range 1..3600");
	BAD(BASE "ring_timeout 3601\n", "t.conf:3: ", "out of range 1..3600");
	BAD(BASE "ring_timeout 60s\n", "t.conf:3: ",
	    "ring_timeout: value '60s' is not a decimal number");
	BAD(BASE "ring_timeout +60\n", "t.conf:3: ", "not a decimal number");
	BAD(BASE "ring_timeout -1\n", "t.conf:3: ", "not a decimal number");
	BAD(BASE "ring_timeout 0x10\n", "t.conf:3: ", "not a decimal number");
	BAD(BASE "ring_timeout 6 0\n", "t.conf:3: ", "not a decimal number");
	BAD(BASE "ring_timeout 99999999999999999999999\n", "t.conf:3: ",
	    "out of range 1..3600");
	BAD(BASE "max_call_duration 604801\n", "t.conf:3: ",
	    "max_call_duration: value 604801 out of range 0..604800");
	BAD(BASE "ack_timeout 0\n", "t.conf:3: ", "out of range 1..300");
	BAD(BASE "ack_timeout 301\n", "t.conf:3: ", "out of range 1..300");
	BAD(BASE "shutdown_grace 61\n", "t.conf:3: ", "out of range 0..60");
	BAD(BASE "max_calls 1000001\n", "t.conf:3: ",
	    "out of range 0..1000000");
	BAD(BASE "max_calls many\n", "t.conf:3: ", "not a decimal number");
}


static void test_billing_keys(void)
{
	struct tg_config *cfg;

	cfg = OK(BASE "billing no\nreserve_interval 1\n"
		 "low_balance_warning 0\nheartbeat 1\nnode_name edge-1\n");
	if (cfg) {
		CHECK(!cfg->billing);
		CHECK(cfg->reserve_interval == 1);
		CHECK(cfg->low_balance_warning == 0);
		CHECK(cfg->heartbeat == 1);
		CHECK(!strcmp(cfg->node_name, "edge-1"));
		mem_deref(cfg);
	}

	cfg = OK(BASE "billing yes\nreserve_interval 3600\n"
		 "low_balance_warning 3600\nheartbeat 300\n");
	if (cfg) {
		CHECK(cfg->billing);
		CHECK(cfg->reserve_interval == 3600);
		CHECK(cfg->low_balance_warning == 3600);
		CHECK(cfg->heartbeat == 300);
		mem_deref(cfg);
	}

	BAD(BASE "billing maybe\n", "t.conf:3: ", "billing");
	BAD(BASE "reserve_interval 0\n", "t.conf:3: ",
	    "out of range 1..3600");
	BAD(BASE "reserve_interval 3601\n", "t.conf:3: ",
	    "out of range 1..3600");
	BAD(BASE "low_balance_warning 3601\n", "t.conf:3: ",
	    "out of range 0..3600");
	BAD(BASE "heartbeat 0\n", "t.conf:3: ", "out of range 1..300");
	BAD(BASE "heartbeat 301\n", "t.conf:3: ", "out of range 1..300");
	BAD(BASE "heartbeat 5\nheartbeat 6\n", "t.conf:4: ",
	    "duplicate 'heartbeat'");
}


static void test_db_keys(void)
{
	struct tg_config *cfg;

	cfg = OK(BASE "db_connections 1\n");
	if (cfg) {
		CHECK(cfg->db_connections == 1);
		mem_deref(cfg);
	}

	cfg = OK(BASE "db_connections 32\n");
	if (cfg) {
		CHECK(cfg->db_connections == 32);
		mem_deref(cfg);
	}

	BAD(BASE "db_connections 0\n", "t.conf:3: ", "out of range 1..32");
	BAD(BASE "db_connections 33\n", "t.conf:3: ", "out of range 1..32");
	BAD(BASE "db_connections four\n", "t.conf:3: ",
	    "not a decimal number");
	BAD(BASE "db_connections 2\ndb_connections 3\n", "t.conf:4: ",
	    "duplicate 'db_connections'");
}


static void test_sip_listen(void)
{
	struct tg_config *cfg;
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

	CHECK(list_count(&cfg->listenl) == 5);
	le = list_head(&cfg->listenl);
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

	BAD(BASE "sip_listen tls:127.0.0.1:5061\n", "t.conf:3: ",
	    "sip_listen: unknown transport 'tls' (udp or tcp)");
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


static void test_trusted_peer(void)
{
	struct tg_config *cfg;
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

	CHECK(list_count(&cfg->peerl) == 5);
	le = list_head(&cfg->peerl);
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

	peer = list_ledata(list_tail(&cfg->peerl));
	CHECK(peer->bits == 0);
	mem_deref(cfg);

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
}


static void test_cidr(void)
{
	struct tg_config *cfg;
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

#define PEER(addr) (sa_set_str(&sa, (addr), 5060), cfg_peer_find(cfg, &sa))

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
		peer = cfg_peer_find(cfg, &sa);
		CHECK(peer && !strcmp(peer->account, "one"));
		a[15] = 99;
		sa_set_in6(&sa, a, 5060);
		peer = cfg_peer_find(cfg, &sa);
		CHECK(peer && !strcmp(peer->account, "net"));
		a[14] = 3;
		sa_set_in6(&sa, a, 5060);
		CHECK(cfg_peer_find(cfg, &sa) == NULL);
	}

	CHECK(cfg_peer_find(cfg, NULL) == NULL);
	CHECK(cfg_peer_find(NULL, &sa) == NULL);
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

#undef PEER
}


static void test_gateway(void)
{
	struct tg_config *cfg;
	const struct cfg_gateway *gw;
	struct sa sa;

	cfg = OK(BASE "gateway gw1 192.0.2.10:5080\n"
		 "gateway gw-2.b_c 192.0.2.11 transport=tcp\n"
		 "gateway v6 [2001:db8::5]:5090 transport=udp\n");
	if (!cfg)
		return;

	gw = cfg_gateway_find(cfg, "gw1");
	CHECK(gw != NULL);
	if (gw) {
		sa_set_str(&sa, "192.0.2.10", 5080);
		CHECK(sa_cmp(&gw->addr, &sa, SA_ALL));
		CHECK(gw->tp == SIP_TRANSP_UDP);
		CHECK(gw->line == 3);
	}

	gw = cfg_gateway_find(cfg, "gw-2.b_c");
	CHECK(gw != NULL);
	if (gw) {
		sa_set_str(&sa, "192.0.2.11", 5060);
		CHECK(sa_cmp(&gw->addr, &sa, SA_ALL));
		CHECK(gw->tp == SIP_TRANSP_TCP);
	}

	gw = cfg_gateway_find(cfg, "v6");
	CHECK(gw != NULL);
	if (gw) {
		sa_set_str(&sa, "2001:db8::5", 5090);
		CHECK(sa_cmp(&gw->addr, &sa, SA_ALL));
	}

	CHECK(cfg_gateway_find(cfg, "GW1") == NULL);
	CHECK(cfg_gateway_find(cfg, "gw3") == NULL);
	CHECK(cfg_gateway_find(cfg, NULL) == NULL);
	mem_deref(cfg);

	BAD(BASE "gateway gw1 192.0.2.1\n# c\ngateway gw1 192.0.2.2\n",
	    "t.conf:5: ", "gateway 'gw1' already defined at line 3");
	BAD(BASE "gateway gw1\n", "t.conf:3: ",
	    "expected NAME ADDRESS[:PORT]");
	BAD(BASE "gateway gw1 192.0.2.1 transport=tcp x\n", "t.conf:3: ",
	    "expected NAME ADDRESS[:PORT]");
	BAD(BASE "gateway gw1 192.0.2.1 transport=tls\n", "t.conf:3: ",
	    "unknown transport 'tls'");
	BAD(BASE "gateway gw1 192.0.2.1 tcp\n", "t.conf:3: ",
	    "unexpected 'tcp' (expected transport=udp|tcp)");
	BAD(BASE "gateway gw,1 192.0.2.1\n", "t.conf:3: ",
	    "'gw,1' is not a valid gateway name");
	BAD(BASE "gateway gw1 carrier.example:5060\n", "t.conf:3: ",
	    "'carrier.example' is not an IPv4 address");
	BAD(BASE "gateway gw1 192.0.2.1:99999\n", "t.conf:3: ",
	    "port 99999 out of range 1..65535");
	BAD(BASE "gateway gw1 0.0.0.0\n", "t.conf:3: ",
	    "not a usable destination");
}


static void test_routes(void)
{
	struct tg_config *cfg;
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

	CHECK(list_count(&cfg->routel) == 5);

	rt = cfg_route_find(cfg, "442012345678");
	CHECK(rt && !strcmp(rt->prefix, "4420"));
	if (rt) {
		CHECK(rt->gwc == 2);
		CHECK(rt->gwv[0] == cfg_gateway_find(cfg, "gw1"));
		CHECK(rt->gwv[1] == cfg_gateway_find(cfg, "gw2"));
		CHECK(rt->line == 3);
	}

	rt = cfg_route_find(cfg, "4420");
	CHECK(rt && !strcmp(rt->prefix, "4420"));
	rt = cfg_route_find(cfg, "442");
	CHECK(rt && !strcmp(rt->prefix, "44"));
	rt = cfg_route_find(cfg, "4421999");
	CHECK(rt && !strcmp(rt->prefix, "44"));
	rt = cfg_route_find(cfg, "442071234567");
	CHECK(rt && !strcmp(rt->prefix, "442071"));
	CHECK(rt && rt->gwc == 1 && rt->gwv[0] ==
	      cfg_gateway_find(cfg, "gw3"));
	rt = cfg_route_find(cfg, "49301234");
	CHECK(rt && !strcmp(rt->prefix, "4"));
	CHECK(rt && rt->gwc == 3);
	if (rt && rt->gwc == 3)
		CHECK(!strcmp(rt->gwv[2]->name, "gw3"));

	rt = cfg_route_find(cfg, "3312345");
	CHECK(rt && !strcmp(rt->prefix, ""));
	CHECK(rt && rt->line == 6);
	rt = cfg_route_find(cfg, "");
	CHECK(rt && !strcmp(rt->prefix, ""));
	CHECK(cfg_route_find(cfg, NULL) == NULL);
	mem_deref(cfg);

	/* no default route: unmatched numbers have no route */
	cfg = OK(BASE "gateway gw1 192.0.2.1\nroute 1 gw1\n");
	if (cfg) {
		CHECK(cfg_route_find(cfg, "1555") != NULL);
		CHECK(cfg_route_find(cfg, "2555") == NULL);
		CHECK(cfg_route_find(cfg, "") == NULL);
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


static void test_copy_header(void)
{
	static const char *managed[] = {
		"Via", "from", "TO", "call-id", "CSeq", "Contact", "Route",
		"record-route", "Max-Forwards", "Content-Length",
		"content-type", "Authorization", "Proxy-Authorization",
		"v", "I",
	};
	struct tg_config *cfg;
	const struct cfg_hdr *hdr;
	char text[256];
	size_t i;

	cfg = OK(BASE "copy_header X-Account-Code\n"
		 "copy_header P-Charging-Vector\ncopy_header Subject\n");
	if (cfg) {
		CHECK(list_count(&cfg->copyl) == 3);
		hdr = list_ledata(list_head(&cfg->copyl));
		CHECK(!strcmp(hdr->name, "X-Account-Code"));
		hdr = list_ledata(list_tail(&cfg->copyl));
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


static void test_scalars(void)
{
	struct tg_config *cfg;
	struct sa sa;

	cfg = OK(BASE "sip_realm voice.example.net\ndigest_auth no\n"
		 "rtp_addr 192.0.2.20\nrtp_ports 1024-65535\n"
		 "api_listen [::1]:9090\nlog_target syslog\n"
		 "log_level warning\nstate_dir ./var/state\n");
	if (cfg) {
		CHECK(!strcmp(cfg->realm, "voice.example.net"));
		CHECK(!cfg->digest_auth);
		sa_set_str(&sa, "192.0.2.20", 0);
		CHECK(sa_cmp(&cfg->rtp_addr, &sa, SA_ADDR));
		CHECK(cfg->rtp_port_min == 1024);
		CHECK(cfg->rtp_port_max == 65535);
		sa_set_str(&sa, "::1", 9090);
		CHECK(sa_cmp(&cfg->api_listen, &sa, SA_ALL));
		CHECK(cfg->log_target == CFG_LOG_SYSLOG);
		CHECK(cfg->log_level == LOG_WARNING);
		CHECK(!strcmp(cfg->state_dir, "./var/state"));
		mem_deref(cfg);
	}

	cfg = OK(BASE "digest_auth yes\nrtp_addr ::1\napi_listen 0.0.0.0\n"
		 "log_target stderr\nlog_level debug\n");
	if (cfg) {
		CHECK(cfg->digest_auth);
		CHECK(sa_af(&cfg->rtp_addr) == AF_INET6);
		CHECK(sa_port(&cfg->api_listen) == 8080);
		CHECK(sa_is_any(&cfg->api_listen));
		CHECK(cfg->log_level == LOG_DEBUG);
		mem_deref(cfg);
	}

	cfg = OK(BASE "log_level notice\n");
	CHECK(cfg && cfg->log_level == LOG_NOTICE);
	mem_deref(cfg);
	cfg = OK(BASE "log_level error\n");
	CHECK(cfg && cfg->log_level == LOG_ERR);
	mem_deref(cfg);
	cfg = OK(BASE "log_level info\n");
	CHECK(cfg && cfg->log_level == LOG_INFO);
	mem_deref(cfg);

	BAD(BASE "sip_realm a\"b\n", "t.conf:3: ", "may not contain");
	BAD(BASE "digest_auth true\n", "t.conf:3: ",
	    "digest_auth: 'true' is not one of yes|no");
	BAD(BASE "digest_auth YES\n", "t.conf:3: ", "not one of yes|no");
	BAD(BASE "rtp_addr 192.0.2.1:4000\n", "t.conf:3: ",
	    "rtp_addr: '192.0.2.1:4000' is not an IPv4 or IPv6 address");
	BAD(BASE "rtp_addr 0.0.0.0\n", "t.conf:3: ", "concrete address");
	BAD(BASE "rtp_addr media.example\n", "t.conf:3: ",
	    "not an IPv4 or IPv6 address");
	BAD(BASE "rtp_ports 20000\n", "t.conf:3: ", "expected MIN-MAX");
	BAD(BASE "rtp_ports 1000-2001\n", "t.conf:3: ",
	    "first port 1000 out of range 1024..65535");
	BAD(BASE "rtp_ports 2000-65536\n", "t.conf:3: ",
	    "last port 65536 out of range 1024..65535");
	BAD(BASE "rtp_ports 20001-29999\n", "t.conf:3: ",
	    "first port 20001 must be even");
	BAD(BASE "rtp_ports 20000-29998\n", "t.conf:3: ",
	    "last port 29998 must be odd");
	BAD(BASE "rtp_ports 30000-20001\n", "t.conf:3: ",
	    "first port 30000 must be below last port 20001");
	BAD(BASE "rtp_ports 20000-20000\n", "t.conf:3: ", "must be below");
	BAD(BASE "rtp_ports 20000-x\n", "t.conf:3: ",
	    "last port 'x' is not a decimal number");
	BAD(BASE "api_listen localhost:8080\n", "t.conf:3: ",
	    "'localhost' is not an IPv4 address");
	BAD(BASE "api_listen 127.0.0.1:0\n", "t.conf:3: ",
	    "port 0 out of range");
	BAD(BASE "log_target file\n", "t.conf:3: ",
	    "log_target: 'file' is not one of stderr|syslog");
	BAD(BASE "log_level warn\n", "t.conf:3: ",
	    "'warn' is not one of debug|info|notice|warning|error");
}


static void test_media_keys(void)
{
	struct tg_config *cfg;
	struct sa sa;

	cfg = OK(BASE);
	if (cfg) {
		CHECK(cfg->rtp_relay);
		CHECK(!sa_isset(&cfg->rtp_addr_gw, SA_ADDR));
		CHECK(cfg->rtp_threads == 2);
		CHECK(cfg->rtp_io == CFG_RTP_IO_AUTO);
		CHECK(cfg->media_timeout == 30);
		CHECK(cfg->media_timeout_hold == 600);
		mem_deref(cfg);
	}

	cfg = OK(BASE "rtp_relay no\nrtp_addr_gateway 192.0.2.30\n"
		 "rtp_threads 4\nmedia_timeout 0\nmedia_timeout_hold 7200\n");
	if (cfg) {
		CHECK(!cfg->rtp_relay);
		sa_set_str(&sa, "192.0.2.30", 0);
		CHECK(sa_cmp(&cfg->rtp_addr_gw, &sa, SA_ADDR));
		CHECK(cfg->rtp_threads == 4);
		CHECK(cfg->media_timeout == 0);
		CHECK(cfg->media_timeout_hold == 7200);
		mem_deref(cfg);
	}

	cfg = OK(BASE "rtp_relay yes\nrtp_addr_gateway 2001:db8::5\n");
	if (cfg) {
		CHECK(cfg->rtp_relay);
		CHECK(sa_af(&cfg->rtp_addr_gw) == AF_INET6);
		mem_deref(cfg);
	}

	cfg = OK(BASE "rtp_io io_uring\n");
	if (cfg) {
		CHECK(cfg->rtp_io == CFG_RTP_IO_URING);
		mem_deref(cfg);
	}

	cfg = OK(BASE "rtp_io epoll\n");
	if (cfg) {
		CHECK(cfg->rtp_io == CFG_RTP_IO_EPOLL);
		mem_deref(cfg);
	}

	cfg = OK(BASE "rtp_io auto\n");
	if (cfg) {
		CHECK(cfg->rtp_io == CFG_RTP_IO_AUTO);
		mem_deref(cfg);
	}

	BAD(BASE "rtp_relay maybe\n", "t.conf:3: ",
	    "rtp_relay: 'maybe' is not one of yes|no");
	BAD(BASE "rtp_addr_gateway gw.example\n", "t.conf:3: ",
	    "rtp_addr_gateway: 'gw.example' is not an IPv4 or IPv6 address");
	BAD(BASE "rtp_addr_gateway ::\n", "t.conf:3: ", "concrete address");
	BAD(BASE "rtp_io uring\n", "t.conf:3: ",
	    "rtp_io: 'uring' is not one of auto|io_uring|epoll");
	BAD(BASE "rtp_io\n", "t.conf:3: ", "rtp_io");
	BAD(BASE "rtp_io epoll\nrtp_io auto\n", "t.conf:4: ", "rtp_io");
	BAD(BASE "rtp_threads 0\n", "t.conf:3: ", "out of range 1..16");
	BAD(BASE "rtp_threads 17\n", "t.conf:3: ", "out of range 1..16");
	BAD(BASE "media_timeout -1\n", "t.conf:3: ", "media_timeout");
	BAD(BASE "media_timeout_hold 86401\n", "t.conf:3: ",
	    "out of range 0..86400");
	BAD(BASE "rtp_relay yes\nrtp_relay no\n", "t.conf:4: ",
	    "rtp_relay");
}


static void test_api_token(void)
{
	struct tg_config *cfg;
	const struct cfg_token *tok;

	cfg = OK(BASE "api_token 0123456789abcdef admin\n"
		 "api_token s3cr3t-t0ken#with-hash readonly\n");
	if (!cfg)
		return;

	CHECK(list_count(&cfg->tokenl) == 2);
	tok = list_ledata(list_head(&cfg->tokenl));
	CHECK(!strcmp(tok->token, "0123456789abcdef"));
	CHECK(tok->admin);
	tok = list_ledata(list_tail(&cfg->tokenl));
	CHECK(!strcmp(tok->token, "s3cr3t-t0ken#with-hash"));
	CHECK(!tok->admin);
	mem_deref(cfg);

	BAD(BASE "api_token 0123456789abcde admin\n", "t.conf:3: ",
	    "api_token: token has 15 characters, it needs 16..256");
	BAD(BASE "api_token 0123456789abcdef\n", "t.conf:3: ",
	    "expected TOKEN admin|readonly");
	BAD(BASE "api_token 0123456789abcdef root\n", "t.conf:3: ",
	    "'root' is not one of admin|readonly");
	BAD(BASE "api_token 0123456789abcdef admin x\n", "t.conf:3: ",
	    "expected TOKEN admin|readonly");
	BAD(BASE "api_token 0123456789abcdef admin\n"
	    "api_token 0123456789abcdef readonly\n", "t.conf:4: ",
	    "token already listed");
	BAD(BASE "api_token 0123456789abcdef\xc3\xa9 admin\n", "t.conf:3: ",
	    "printable ASCII");
}


static void test_api_options(void)
{
	struct tg_config *cfg;

	cfg = OK(BASE);
	if (cfg) {
		CHECK(!cfg->api_open_metrics);
		CHECK(!cfg->api_open_health);
		CHECK(cfg->api_max_body == 65536);
		mem_deref(cfg);
	}

	cfg = OK(BASE "api_open_metrics yes\napi_open_health yes\n"
		 "api_max_body 1024\n");
	if (cfg) {
		CHECK(cfg->api_open_metrics);
		CHECK(cfg->api_open_health);
		CHECK(cfg->api_max_body == 1024);
		mem_deref(cfg);
	}

	cfg = OK(BASE "api_open_metrics no\napi_max_body 16777216\n");
	if (cfg) {
		CHECK(!cfg->api_open_metrics);
		CHECK(cfg->api_max_body == 16777216);
		mem_deref(cfg);
	}

	BAD(BASE "api_open_metrics maybe\n", "t.conf:3: ",
	    "api_open_metrics");
	BAD(BASE "api_open_health\n", "t.conf:3: ", "api_open_health");
	BAD(BASE "api_max_body 1023\n", "t.conf:3: ",
	    "out of range 1024..16777216");
	BAD(BASE "api_max_body 64k\n", "t.conf:3: ", "api_max_body");
	BAD(BASE "api_max_body 2048\napi_max_body 4096\n", "t.conf:4: ",
	    "api_max_body");
}


static void test_many_errors(void)
{
	struct tg_config *cfg;
	char text[4096];
	size_t n = 0;
	int i, err;

	/* errors on several lines are all reported, in order */
	err = parse(&cfg, BASE "ring_timeout 0\nbogus 1\nlog_level x\n");
	CHECK(err == EINVAL && cfg == NULL);
	CHECK(count_lines(errbuf) == 3);
	CHECK(strstr(errbuf, "t.conf:3: ") < strstr(errbuf, "t.conf:4: "));
	CHECK(strstr(errbuf, "t.conf:4: ") < strstr(errbuf, "t.conf:5: "));

	/* a bad gateway line brings no follow-up error from its route */
	err = parse(&cfg, BASE "gateway gw1 gw.example\nroute 1 gw1\n");
	CHECK(err == EINVAL && cfg == NULL);
	CHECK(count_lines(errbuf) == 1);
	CHECK(strstr(errbuf, "t.conf:3: gateway: 'gw.example'") == errbuf);

	/* and the reporting stops after 20 */
	n += snprintf(text + n, sizeof(text) - n, BASE);
	for (i = 0; i < 40; i++)
		n += snprintf(text + n, sizeof(text) - n, "bad%d x\n", i);

	err = parse(&cfg, text);
	CHECK(err == EINVAL && cfg == NULL);
	CHECK(count_lines(errbuf) == 21);
	CHECK(strstr(errbuf, "t.conf:22: unknown key 'bad19'") != NULL);
	CHECK(strstr(errbuf, "bad20") == NULL);
	CHECK(strstr(errbuf, "t.conf: too many errors, giving up") != NULL);

	/* a NULL errpf is allowed */
	cfg = NULL;
	err = cfg_parse(&cfg, "t.conf", "x", 1, NULL);
	CHECK(err == EINVAL && cfg == NULL);
	CHECK(cfg_parse(NULL, "t.conf", BASE, strlen(BASE), NULL) == EINVAL);
}


/* ---------------------------------------------------------- cfg_print */

static int print_handler(const char *p, size_t size, void *arg)
{
	return mbuf_write_mem(arg, (const uint8_t *)p, size);
}


static char *print_cfg(const struct tg_config *cfg)
{
	struct mbuf *mb = mbuf_alloc(1024);
	struct re_printf pf = {print_handler, mb};
	char *s = NULL;

	if (!mb)
		return NULL;

	if (!cfg_print(&pf, cfg)) {
		mb->pos = 0;
		(void)mbuf_strdup(mb, &s, mb->end);
	}

	mem_deref(mb);

	return s;
}


static void test_print(void)
{
	static const char text[] =
		"sip_listen udp:192.0.2.1\n"
		"sip_listen tcp:[2001:db8::1]:5070\n"
		"trusted_peer 198.51.100.0/24 header=P-Asserted-Identity\n"
		"trusted_peer 192.0.2.9 account=demo\n"
		"trusted_peer ::1 from\n"
		"route 44 gw2,gw1\n"
		"route default gw1\n"
		"gateway gw1 198.51.100.10\n"
		"gateway gw2 [2001:db8::2]:5080 transport=tcp\n"
		"copy_header X-Account-Code\n"
		"sip_realm voice example\n"
		"digest_auth no\n"
		"nonce_ttl 120\n"
		"ring_timeout 45\n"
		"max_call_duration 0\n"
		"ack_timeout 20\n"
		"shutdown_grace 9\n"
		"max_calls 500\n"
		"db_conninfo host=/run/pg password = 'p a\\'ss' dbname=tg\n"
		"rtp_addr 2001:db8::3\n"
		"rtp_ports 30000-30999\n"
		"api_listen 127.0.0.1:9000\n"
		"api_token 0123456789abcdefXYZ admin\n"
		"log_target syslog\n"
		"log_level notice\n"
		"state_dir /srv/tollgate\n";
	struct tg_config *cfg, *cfg2;
	char *out = NULL, *out2 = NULL;

	cfg = OK(text);
	if (!cfg)
		return;

	out = print_cfg(cfg);
	CHECK(out != NULL);
	if (!out)
		goto out;

	CHECK(strstr(out, "\nsip_listen udp:192.0.2.1:5060\n") != NULL);
	CHECK(strstr(out, "\nsip_listen tcp:[2001:db8::1]:5070\n") != NULL);
	CHECK(strstr(out, "\ntrusted_peer 198.51.100.0/24 "
		      "header=P-Asserted-Identity\n") != NULL);
	CHECK(strstr(out, "\ntrusted_peer 192.0.2.9/32 account=demo\n"));
	CHECK(strstr(out, "\ntrusted_peer ::1/128 from\n") != NULL);
	CHECK(strstr(out, "\ngateway gw1 198.51.100.10:5060 "
		      "transport=udp\n") != NULL);
	CHECK(strstr(out, "\ngateway gw2 [2001:db8::2]:5080 "
		      "transport=tcp\n") != NULL);
	CHECK(strstr(out, "\nroute 44 gw2,gw1\n") != NULL);
	CHECK(strstr(out, "\nroute default gw1\n") != NULL);
	CHECK(strstr(out, "\ncopy_header X-Account-Code\n") != NULL);
	CHECK(strstr(out, "\nsip_realm voice example\n") != NULL);
	CHECK(strstr(out, "\ndigest_auth no\n") != NULL);
	CHECK(strstr(out, "\nmax_call_duration 0\n") != NULL);
	CHECK(strstr(out, "\nmax_calls 500\n") != NULL);
	CHECK(strstr(out, "\nrtp_addr 2001:db8::3\n") != NULL);
	CHECK(strstr(out, "\nrtp_ports 30000-30999\n") != NULL);
	CHECK(strstr(out, "\napi_listen 127.0.0.1:9000\n") != NULL);
	CHECK(strstr(out, "\nlog_target syslog\n") != NULL);
	CHECK(strstr(out, "\nlog_level notice\n") != NULL);
	CHECK(strstr(out, "\nstate_dir /srv/tollgate\n") != NULL);

	/* secrets are not shown */
	CHECK(strstr(out, "0123456789abcdefXYZ") == NULL);
	CHECK(strstr(out, "# api_token (19 characters, hidden) admin\n"));
	CHECK(strstr(out, "p a") == NULL);
	CHECK(strstr(out, "\ndb_conninfo host=/run/pg password = ******** "
		      "dbname=tg\n") != NULL);

	/* the dump parses again, to the same dump less the hidden token */
	cfg2 = OK(out);
	if (cfg2) {
		char *tl = strstr(out, "# api_token");
		char *nl = tl ? strchr(tl, '\n') : NULL;

		if (nl)
			memmove(tl, nl + 1, strlen(nl + 1) + 1);

		out2 = print_cfg(cfg2);
		CHECK(tl && nl);
		CHECK(out2 && !strcmp(out, out2));
		CHECK(list_isempty(&cfg2->tokenl));
		mem_deref(cfg2);
	}

 out:
	mem_deref(out);
	mem_deref(out2);
	mem_deref(cfg);
}


static void check_conninfo(int line, const char *ci, const char *want)
{
	struct tg_config *cfg;
	char text[512], expect[512];
	char *out;

	snprintf(text, sizeof(text), "sip_listen udp:127.0.0.1\n"
		 "db_conninfo %s\n", ci);
	snprintf(expect, sizeof(expect), "\ndb_conninfo %s\n", want);

	cfg = ok_cfg(line, text);
	if (!cfg)
		return;

	out = print_cfg(cfg);
	check(line, out && strstr(out, expect), want);
	if (out && !strstr(out, expect))
		fprintf(stderr, "  got: %s\n", out);

	mem_deref(out);
	mem_deref(cfg);
}
#define CONNINFO(ci, want) check_conninfo(__LINE__, (ci), (want))


static void test_print_conninfo(void)
{
	CONNINFO("host=/run/pg dbname=tollgate",
		 "host=/run/pg dbname=tollgate");
	CONNINFO("password=secret host=x", "password=******** host=x");
	CONNINFO("host=x password=secret", "host=x password=********");
	CONNINFO("host=x password='a b' user=u",
		 "host=x password=******** user=u");
	CONNINFO("host=x mypassword=keep", "host=x mypassword=keep");
	CONNINFO("postgresql://tg:secret@127.0.0.1:5432/tollgate",
		 "postgresql://tg:********@127.0.0.1:5432/tollgate");
	CONNINFO("postgres://tg@127.0.0.1/tollgate?password=secret&x=1",
		 "postgres://tg@127.0.0.1/tollgate?password=********&x=1");
	CONNINFO("postgresql:///tollgate?host=/run/pg",
		 "postgresql:///tollgate?host=/run/pg");
	CONNINFO("postgresql://h/db?mypassword=keep&password=s&a=b",
		 "postgresql://h/db?mypassword=keep&password=********&a=b");
}


/* ----------------------------------------------------------- cfg_load */

static void test_load(void)
{
	char dir[] = "/tmp/test_conf.XXXXXX";
	char path[256], big[400];
	struct tg_config *cfg = NULL;
	FILE *f;
	size_t i;
	int err;

	if (!mkdtemp(dir)) {
		CHECK(!"mkdtemp");
		return;
	}

	/* missing file */
	snprintf(path, sizeof(path), "%s/missing.conf", dir);
	errlen = 0;
	err = cfg_load(&cfg, path, &errpf);
	CHECK(err == ENOENT && cfg == NULL);
	CHECK(strstr(errbuf, path) == errbuf);
	CHECK(strstr(errbuf, ": No such file or directory") != NULL);

	/* a directory */
	errlen = 0;
	err = cfg_load(&cfg, dir, &errpf);
	CHECK(err == EISDIR && cfg == NULL);
	CHECK(strstr(errbuf, "Is a directory") != NULL);

	/* a good file */
	snprintf(path, sizeof(path), "%s/good.conf", dir);
	f = fopen(path, "w");
	CHECK(f != NULL);
	if (f) {
		fputs(BASE "ring_timeout 17\n", f);
		fclose(f);
	}
	errlen = 0;
	err = cfg_load(&cfg, path, &errpf);
	CHECK(err == 0 && cfg != NULL);
	CHECK(cfg && cfg->ring_timeout == 17);
	CHECK(cfg && !strcmp(cfg->file, path));
	cfg = mem_deref(cfg);

	/* a bad file names itself and the line */
	f = fopen(path, "w");
	if (f) {
		fputs(BASE "\nring_timeout 17s\n", f);
		fclose(f);
	}
	errlen = 0;
	err = cfg_load(&cfg, path, &errpf);
	CHECK(err == EINVAL && cfg == NULL);
	snprintf(big, sizeof(big), "%s:4: ring_timeout: value '17s' is not "
		 "a decimal number\n", path);
	CHECK(!strcmp(errbuf, big));

	/* unreadable (permission): meaningless as root, so skip then */
	if (geteuid() != 0) {
		chmod(path, 0);
		errlen = 0;
		err = cfg_load(&cfg, path, &errpf);
		CHECK(err == EACCES && cfg == NULL);
		CHECK(strstr(errbuf, "Permission denied") != NULL);
	}
	unlink(path);

	/* exactly 1 MiB of comments is fine, one byte more is not */
	snprintf(path, sizeof(path), "%s/big.conf", dir);
	f = fopen(path, "w");
	CHECK(f != NULL);
	if (f) {
		memset(big, '#', sizeof(big));
		big[99] = '\n';
		fputs(BASE, f);
		for (i = strlen(BASE); i + 100 <= 1024 * 1024; i += 100)
			fwrite(big, 1, 100, f);
		fwrite(big, 1, 1024 * 1024 - i, f);
		fclose(f);
	}
	errlen = 0;
	err = cfg_load(&cfg, path, &errpf);
	CHECK(err == 0 && cfg != NULL);
	cfg = mem_deref(cfg);

	f = fopen(path, "a");
	if (f) {
		fputc('\n', f);
		fclose(f);
	}
	errlen = 0;
	err = cfg_load(&cfg, path, &errpf);
	CHECK(err == EFBIG && cfg == NULL);
	CHECK(strstr(errbuf, "file is larger than 1 MiB") != NULL);
	unlink(path);

	rmdir(dir);
}


static void test_example(void)
{
	const char *srcdir = getenv("top_srcdir");
	struct tg_config *cfg = NULL;
	char path[512];
	int err;

	/* automake's serial harness exports only srcdir (the top one here,
	 * the Makefile being non-recursive) */
	if (!srcdir)
		srcdir = getenv("srcdir");

	snprintf(path, sizeof(path), "%s/tollgate.conf.example",
		 srcdir ? srcdir : ".");

	errlen = 0;
	err = cfg_load(&cfg, path, &errpf);
	CHECK(err == 0 && cfg != NULL);
	if (err) {
		fprintf(stderr, "  %s: %s", path, errbuf);
		return;
	}

	/* a deployment with two gateways, a default route and peers */
	CHECK(list_count(&cfg->gatewayl) == 2);
	CHECK(cfg_route_find(cfg, "99999") != NULL);
	CHECK(!list_isempty(&cfg->peerl));
	CHECK(!list_isempty(&cfg->listenl));
	CHECK(cfg->db_conninfo != NULL);

	mem_deref(cfg);
}


int main(void)
{
	test_defaults();
	test_required();
	test_lexical();
	test_nul_byte();
	test_duplicates();
	test_numbers();
	test_billing_keys();
	test_db_keys();
	test_sip_listen();
	test_trusted_peer();
	test_cidr();
	test_gateway();
	test_routes();
	test_copy_header();
	test_scalars();
	test_media_keys();
	test_api_token();
	test_api_options();
	test_many_errors();
	test_print();
	test_print_conninfo();
	test_load();
	test_example();

	printf("%u passed, %u failed\n", passed, failed);

	return failed ? 1 : 0;
}
