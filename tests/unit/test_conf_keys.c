/**
 * @file test_conf_keys.c  Unit tests of the other modules' keys (billing,
 *                         database, media, API, logging, the B2BUA's
 *                         scalars) and of many errors in one file
 */

#include "test_conf.h"


void test_billing_keys(void)
{
	struct cfg *cfg;

	cfg = OK(BASE "billing no\nreserve_interval 1\n"
		 "low_balance_warning 0\nheartbeat 1\nnode_name edge-1\n");
	if (cfg) {
		CHECK(!BIL(cfg)->billing);
		CHECK(BIL(cfg)->reserve_interval == 1);
		CHECK(BIL(cfg)->low_balance_warning == 0);
		CHECK(BIL(cfg)->heartbeat == 1);
		CHECK(!strcmp(BIL(cfg)->node_name, "edge-1"));
		mem_deref(cfg);
	}

	cfg = OK(BASE "billing yes\nreserve_interval 3600\n"
		 "low_balance_warning 3600\nheartbeat 300\n");
	if (cfg) {
		CHECK(BIL(cfg)->billing);
		CHECK(BIL(cfg)->reserve_interval == 3600);
		CHECK(BIL(cfg)->low_balance_warning == 3600);
		CHECK(BIL(cfg)->heartbeat == 300);
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

	/* the node's lease: three heartbeats unless given, longer than one */
	cfg = OK(BASE "heartbeat 2\n");
	if (cfg) {
		CHECK(BIL(cfg)->node_lease == 0);
		CHECK(billing_lease_seconds(BIL(cfg)) == 6);
		mem_deref(cfg);
	}
	cfg = OK(BASE "heartbeat 2\nnode_lease 3\n");
	if (cfg) {
		CHECK(BIL(cfg)->node_lease == 3);
		CHECK(billing_lease_seconds(BIL(cfg)) == 3);
		mem_deref(cfg);
	}
	CHECK(billing_lease_seconds(NULL) == 0);
	BAD(BASE "node_lease 3601\n", "t.conf:3: ", "out of range 0..3600");
	BAD(BASE "heartbeat 5\nnode_lease 5\n", "t.conf: ",
	    "node_lease 5 s is not longer than the heartbeat (5 s)");

	cfg = OK(BASE "reserve_first 1\noverload_wait 0\n");
	if (cfg) {
		CHECK(BIL(cfg)->reserve_first == 1);
		CHECK(BIL(cfg)->overload_wait == 0);
		mem_deref(cfg);
	}

	cfg = OK(BASE "reserve_first 3600\noverload_wait 2000\n");
	if (cfg) {
		CHECK(BIL(cfg)->reserve_first == 3600);
		CHECK(BIL(cfg)->overload_wait == 2000);
		mem_deref(cfg);
	}

	BAD(BASE "reserve_first 0\n", "t.conf:3: ", "out of range 1..3600");
	BAD(BASE "overload_wait 2001\n", "t.conf:3: ",
	    "out of range 0..2000");
}


void test_db_keys(void)
{
	struct cfg *cfg;

	cfg = OK(BASE "db_connections 1\n");
	if (cfg) {
		CHECK(DB(cfg)->db_connections == 1);
		mem_deref(cfg);
	}

	cfg = OK(BASE "db_connections 32\n");
	if (cfg) {
		CHECK(DB(cfg)->db_connections == 32);
		mem_deref(cfg);
	}

	cfg = OK(BASE "db_statement_timeout 0\n");
	if (cfg) {
		CHECK(DB(cfg)->db_statement_timeout == 0);
		mem_deref(cfg);
	}

	BAD(BASE "db_statement_timeout 600001\n", "t.conf:3: ",
	    "out of range 0..600000");
	BAD(BASE "db_connections 0\n", "t.conf:3: ", "out of range 1..32");
	BAD(BASE "db_connections 33\n", "t.conf:3: ", "out of range 1..32");
	BAD(BASE "db_connections four\n", "t.conf:3: ",
	    "not a decimal number");
	BAD(BASE "db_connections 2\ndb_connections 3\n", "t.conf:4: ",
	    "duplicate 'db_connections'");
}


void test_scalars(void)
{
	struct cfg *cfg;
	struct sa sa;

	cfg = OK(BASE "sip_realm voice.example.net\ndigest_auth no\n"
		 "rtp_addr 192.0.2.20\nrtp_ports 1024-65535\n"
		 "api_listen [::1]:9090\nlog_target syslog\n"
		 "log_level warning\nstate_dir ./var/state\n");
	if (cfg) {
		CHECK(!strcmp(SIP(cfg)->realm, "voice.example.net"));
		CHECK(!SIP(cfg)->digest_auth);
		sa_set_str(&sa, "192.0.2.20", 0);
		CHECK(sa_cmp(&RTP(cfg)->rtp_addr, &sa, SA_ADDR));
		CHECK(RTP(cfg)->rtp_port_min == 1024);
		CHECK(RTP(cfg)->rtp_port_max == 65535);
		sa_set_str(&sa, "::1", 9090);
		CHECK(sa_cmp(&API(cfg)->api_listen, &sa, SA_ALL));
		CHECK(LOG(cfg)->log_target == CFG_LOG_SYSLOG);
		CHECK(LOG(cfg)->log_level == LOG_WARNING);
		CHECK(!strcmp(BIL(cfg)->state_dir, "./var/state"));
		mem_deref(cfg);
	}

	cfg = OK(BASE "digest_auth yes\nrtp_addr ::1\napi_listen 0.0.0.0\n"
		 "log_target stderr\nlog_level debug\n");
	if (cfg) {
		CHECK(SIP(cfg)->digest_auth);
		CHECK(sa_af(&RTP(cfg)->rtp_addr) == AF_INET6);
		CHECK(sa_port(&API(cfg)->api_listen) == 8080);
		CHECK(sa_is_any(&API(cfg)->api_listen));
		CHECK(LOG(cfg)->log_level == LOG_DEBUG);
		mem_deref(cfg);
	}

	cfg = OK(BASE "log_level notice\n");
	CHECK(cfg && LOG(cfg)->log_level == LOG_NOTICE);
	mem_deref(cfg);
	cfg = OK(BASE "log_level error\n");
	CHECK(cfg && LOG(cfg)->log_level == LOG_ERR);
	mem_deref(cfg);
	cfg = OK(BASE "log_level info\n");
	CHECK(cfg && LOG(cfg)->log_level == LOG_INFO);
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


void test_media_keys(void)
{
	struct cfg *cfg;
	struct sa sa;

	cfg = OK(BASE);
	if (cfg) {
		CHECK(RTP(cfg)->rtp_relay);
		CHECK(!sa_isset(&RTP(cfg)->rtp_addr_gw, SA_ADDR));
		CHECK(RTP(cfg)->rtp_threads == 2);
		CHECK(RTP(cfg)->rtp_io == CFG_RTP_IO_AUTO);
		CHECK(RTP(cfg)->media_timeout == 30);
		CHECK(RTP(cfg)->media_timeout_hold == 600);
		mem_deref(cfg);
	}

	cfg = OK(BASE "rtp_relay no\nrtp_addr_gateway 192.0.2.30\n"
		 "rtp_threads 4\nmedia_timeout 0\nmedia_timeout_hold 7200\n");
	if (cfg) {
		CHECK(!RTP(cfg)->rtp_relay);
		sa_set_str(&sa, "192.0.2.30", 0);
		CHECK(sa_cmp(&RTP(cfg)->rtp_addr_gw, &sa, SA_ADDR));
		CHECK(RTP(cfg)->rtp_threads == 4);
		CHECK(RTP(cfg)->media_timeout == 0);
		CHECK(RTP(cfg)->media_timeout_hold == 7200);
		mem_deref(cfg);
	}

	cfg = OK(BASE "rtp_relay yes\nrtp_addr_gateway 2001:db8::5\n");
	if (cfg) {
		CHECK(RTP(cfg)->rtp_relay);
		CHECK(sa_af(&RTP(cfg)->rtp_addr_gw) == AF_INET6);
		mem_deref(cfg);
	}

	cfg = OK(BASE "rtp_io io_uring\n");
	if (cfg) {
		CHECK(RTP(cfg)->rtp_io == CFG_RTP_IO_URING);
		mem_deref(cfg);
	}

	cfg = OK(BASE "rtp_io epoll\n");
	if (cfg) {
		CHECK(RTP(cfg)->rtp_io == CFG_RTP_IO_EPOLL);
		mem_deref(cfg);
	}

	cfg = OK(BASE "rtp_io auto\n");
	if (cfg) {
		CHECK(RTP(cfg)->rtp_io == CFG_RTP_IO_AUTO);
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


void test_api_token(void)
{
	struct cfg *cfg;
	const struct cfg_token *tok;

	cfg = OK(BASE "api_token 0123456789abcdef admin\n"
		 "api_token s3cr3t-t0ken#with-hash readonly\n");
	if (!cfg)
		return;

	CHECK(list_count(&API(cfg)->tokenl) == 2);
	tok = list_ledata(list_head(&API(cfg)->tokenl));
	CHECK(!strcmp(tok->token, "0123456789abcdef"));
	CHECK(tok->admin);
	tok = list_ledata(list_tail(&API(cfg)->tokenl));
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


void test_api_options(void)
{
	struct cfg *cfg;

	cfg = OK(BASE);
	if (cfg) {
		CHECK(!API(cfg)->api_open_metrics);
		CHECK(!API(cfg)->api_open_health);
		CHECK(API(cfg)->api_max_body == 65536);
		CHECK(API(cfg)->api_max_event_streams == 8);
		mem_deref(cfg);
	}

	cfg = OK(BASE "api_open_metrics yes\napi_open_health yes\n"
		 "api_max_body 1024\n");
	if (cfg) {
		CHECK(API(cfg)->api_open_metrics);
		CHECK(API(cfg)->api_open_health);
		CHECK(API(cfg)->api_max_body == 1024);
		mem_deref(cfg);
	}

	cfg = OK(BASE "api_open_metrics no\napi_max_body 16777216\n");
	if (cfg) {
		CHECK(!API(cfg)->api_open_metrics);
		CHECK(API(cfg)->api_max_body == 16777216);
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


void test_many_errors(void)
{
	struct cfg *cfg;
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
	err = cfg_parse(&cfg, "t.conf", "x", 1, MODV, NULL);
	CHECK(err == EINVAL && cfg == NULL);
	CHECK(cfg_parse(NULL, "t.conf", BASE, strlen(BASE), MODV, NULL) ==
	      EINVAL);
}
