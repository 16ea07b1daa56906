/**
 * @file test_conf.c  Unit tests of the configuration machinery (core/conf.c)
 *                    with the daemon's modules
 *
 * Every key valid and invalid, duplicates, comments, route resolution,
 * longest prefix match, CIDR matching for IPv4 and IPv6, cfg_load() on
 * bad files, cfg_print() round trip and the shipped example file.  This
 * part: the helpers, defaults, lexical rules, duplicates and numbers;
 * test_conf_sip.c the B2BUA's keys, test_conf_keys.c the others,
 * test_conf_file.c printing, files and the module tables.
 */

#include "test_conf.h"


unsigned passed, failed;


void check(const char *file, int line, bool ok, const char *what)
{
	const char *base = file, *p;

	for (p = file; *p; p++) {
		if (*p == '/')
			base = p + 1;
	}

	if (ok) {
		++passed;
		return;
	}

	++failed;
	fprintf(stderr, "%s:%d: check failed: %s\n", base, line, what);
}


/* ------------------------------------------------------------ helpers */

char errbuf[8192];
size_t errlen;

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

struct re_printf errpf = {err_handler, NULL};


int parse(struct cfg **cfgp, const char *text)
{
	errlen = 0;
	errbuf[0] = '\0';
	*cfgp = NULL;

	return cfg_parse(cfgp, "t.conf", text, strlen(text), MODV, &errpf);
}


/** Parse text that must be accepted */
struct cfg *ok_cfg(const char *file, int line, const char *text)
{
	struct cfg *cfg;
	int err;

	err = parse(&cfg, text);
	check(file, line, err == 0 && cfg != NULL,
	      "valid configuration accepted");
	check(file, line, errlen == 0,
	      "no error printed for valid configuration");
	if (err || errlen)
		fprintf(stderr, "  text:\n%s  got err=%d: %s\n", text, err,
			errbuf);

	return err ? NULL : cfg;
}


/**
 * Parse text that must be refused with EINVAL and a message containing
 * both where ("t.conf:3: ") and reason.
 */
void bad_cfg(const char *file, int line, const char *text,
	     const char *where, const char *reason)
{
	struct cfg *cfg;
	int err;
	bool ok;

	err = parse(&cfg, text);

	ok = err == EINVAL && cfg == NULL && strstr(errbuf, where) &&
		strstr(errbuf, reason);
	check(file, line, ok, reason);
	if (!ok)
		fprintf(stderr, "  text:\n%s  expected EINVAL, '%s' and '%s';"
			" got err=%d: %s\n", text, where, reason, err,
			errbuf);

	mem_deref(cfg);
}


unsigned count_lines(const char *s)
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
	struct cfg *cfg = OK(BASE);
	const struct cfg_listen *l;
	struct sa sa;

	if (!cfg)
		return;

	CHECK(!strcmp(cfg_filename(cfg), "t.conf"));
	CHECK(list_count(&SIP(cfg)->listenl) == 1);
	l = list_ledata(list_head(&SIP(cfg)->listenl));
	CHECK(l->tp == SIP_TRANSP_UDP);
	CHECK(l->line == 1);
	sa_set_str(&sa, "127.0.0.1", 5060);
	CHECK(sa_cmp(&l->addr, &sa, SA_ALL));

	CHECK(!strcmp(DB(cfg)->db_conninfo, "dbname=tollgate"));
	CHECK(!strcmp(SIP(cfg)->realm, "tollgate"));
	CHECK(SIP(cfg)->digest_auth);
	CHECK(SIP(cfg)->nonce_ttl == 300);
	CHECK(SIP(cfg)->ring_timeout == 60);
	CHECK(SIP(cfg)->max_duration == 14400);
	CHECK(SIP(cfg)->ack_timeout == 32);
	CHECK(TG(cfg)->shutdown_grace == 5);
	CHECK(SIP(cfg)->max_calls == 0);
	sa_set_str(&sa, "127.0.0.1", 0);
	CHECK(sa_cmp(&RTP(cfg)->rtp_addr, &sa, SA_ADDR));
	CHECK(RTP(cfg)->rtp_port_min == 20000);
	CHECK(RTP(cfg)->rtp_port_max == 29999);
	sa_set_str(&sa, "127.0.0.1", 8080);
	CHECK(sa_cmp(&API(cfg)->api_listen, &sa, SA_ALL));
	CHECK(LOG(cfg)->log_target == CFG_LOG_STDERR);
	CHECK(LOG(cfg)->log_level == LOG_INFO);
	CHECK(!strcmp(BIL(cfg)->state_dir, "/var/lib/tollgate"));
	CHECK(BIL(cfg)->billing);
	CHECK(BIL(cfg)->reserve_interval == 60);
	CHECK(BIL(cfg)->low_balance_warning == 30);
	CHECK(BIL(cfg)->heartbeat == 5);
	CHECK(BIL(cfg)->reserve_first == 4);
	CHECK(BIL(cfg)->overload_wait == 100);
	CHECK(DB(cfg)->db_connections == 4);
	CHECK(DB(cfg)->db_statement_timeout == 3000);
	CHECK(BIL(cfg)->node_name && BIL(cfg)->node_name[0]);
	CHECK(list_isempty(&SIP(cfg)->peerl));
	CHECK(list_isempty(&SIP(cfg)->gatewayl));
	CHECK(list_isempty(&SIP(cfg)->routel));
	CHECK(list_isempty(&SIP(cfg)->copyl));
	CHECK(list_isempty(&API(cfg)->tokenl));

	mem_deref(cfg);
}


static void test_required(void)
{
	BAD("", "t.conf: ", "no sip_listen given");
	BAD("", "t.conf: ", "no db_conninfo given");
	BAD("sip_listen udp:127.0.0.1\n", "t.conf: ",
	    "no db_conninfo given");
	BAD("db_conninfo dbname=x\n", "t.conf: ", "no sip_listen given");

	/* several servers need a way to the primary; lists must agree */
	BAD("sip_listen udp:127.0.0.1\ndb_conninfo host=/a,/b\n", "t.conf: ",
	    "db_conninfo: 2 servers but target_session_attrs is not given");
	BAD("sip_listen udp:127.0.0.1\ndb_conninfo host=/a,/b,/c "
	    "port=1,2 target_session_attrs=read-write\n", "t.conf: ",
	    "db_conninfo: port lists 2 ports for 3 servers");
}


static void test_lexical(void)
{
	struct cfg *cfg;

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
		CHECK(!strcmp(DB(cfg)->db_conninfo,
			      "host=/run/pg dbname=tollgate"));
		CHECK(!strcmp(SIP(cfg)->realm, "voice#1"));
		CHECK(!strcmp(BIL(cfg)->state_dir, "/srv/my state"));
		mem_deref(cfg);
	}

	/* CRLF, a byte order mark, no newline at the end */
	cfg = OK("\xef\xbb\xbfsip_listen udp:127.0.0.1\r\n"
		 "db_conninfo dbname=x\r\n"
		 "ring_timeout 30");
	if (cfg) {
		CHECK(SIP(cfg)->ring_timeout == 30);
		CHECK(!strcmp(DB(cfg)->db_conninfo, "dbname=x"));
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
	struct cfg *cfg = NULL;
	int err;

	errlen = 0;
	err = cfg_parse(&cfg, "t.conf", text, sizeof(text) - 1, MODV, &errpf);
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
	struct cfg *cfg;

	cfg = OK(BASE "nonce_ttl 10\nring_timeout 3600\n"
		 "max_call_duration 0\nack_timeout 300\nshutdown_grace 0\n"
		 "max_calls 250\n");
	if (cfg) {
		CHECK(SIP(cfg)->nonce_ttl == 10);
		CHECK(SIP(cfg)->ring_timeout == 3600);
		CHECK(SIP(cfg)->max_duration == 0);
		CHECK(SIP(cfg)->ack_timeout == 300);
		CHECK(TG(cfg)->shutdown_grace == 0);
		CHECK(SIP(cfg)->max_calls == 250);
		mem_deref(cfg);
	}

	cfg = OK(BASE "nonce_ttl 86400\nring_timeout 1\nack_timeout 1\n"
		 "shutdown_grace 86400\nmax_call_duration 604800\n");
	if (cfg) {
		CHECK(SIP(cfg)->nonce_ttl == 86400);
		CHECK(SIP(cfg)->ring_timeout == 1);
		CHECK(SIP(cfg)->ack_timeout == 1);
		CHECK(TG(cfg)->shutdown_grace == 86400);
		CHECK(SIP(cfg)->max_duration == 604800);
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
	BAD(BASE "shutdown_grace 86401\n", "t.conf:3: ",
	    "out of range 0..86400");
	BAD(BASE "max_calls 1000001\n", "t.conf:3: ",
	    "out of range 0..1000000");
	BAD(BASE "max_calls many\n", "t.conf:3: ", "not a decimal number");
}


/* session timers: the interval, its floor, and the two together */
static void test_session_timer(void)
{
	struct cfg *cfg;

	cfg = OK(BASE);
	if (cfg) {
		CHECK(SIP(cfg)->session_expires == 1800);
		CHECK(SIP(cfg)->min_se == 90);
		mem_deref(cfg);
	}

	cfg = OK(BASE "session_expires 0\nmin_se 600\n");
	if (cfg) {
		CHECK(SIP(cfg)->session_expires == 0);
		CHECK(SIP(cfg)->min_se == 600);
		mem_deref(cfg);
	}

	cfg = OK(BASE "min_se 120\nsession_expires 120\n");
	if (cfg) {
		CHECK(SIP(cfg)->session_expires == 120);
		mem_deref(cfg);
	}

	BAD(BASE "min_se 1\n", "t.conf:3: ",
	    "min_se: value 1 out of range 2..86400");
	BAD(BASE "session_expires 86401\n", "t.conf:3: ",
	    "out of range 0..86400");
	BAD(BASE "session_expires 30m\n", "t.conf:3: ",
	    "not a decimal number");
	/* the error names the line of session_expires, not of min_se */
	BAD(BASE "session_expires 100\nmin_se 300\n", "t.conf:3: ",
	    "session_expires: 100 is below min_se 300");
}


int main(void)
{
	test_defaults();
	test_session_timer();
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
	test_gateway_health();
	test_number();
	test_routes();
	test_copy_header();
	test_limits();
	test_scalars();
	test_media_keys();
	test_api_token();
	test_api_options();
	test_many_errors();
	test_print();
	test_print_conninfo();
	test_load();
	test_example();
	test_modules();
	test_reload();

	printf("%u passed, %u failed\n", passed, failed);

	return failed ? 1 : 0;
}
