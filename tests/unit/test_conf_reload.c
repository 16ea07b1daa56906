/**
 * @file test_conf_reload.c  cfg_reload(): the new text checked whole,
 *                           fixed keys named and kept, modules that
 *                           cannot take a new struct keep theirs
 */

#include "test_conf.h"


static char kept[4096];
static size_t keptlen;

static int kept_handler(const char *p, size_t size, void *arg)
{
	(void)arg;

	if (keptlen + size >= sizeof(kept))
		size = sizeof(kept) - 1 - keptlen;

	memcpy(kept + keptlen, p, size);
	keptlen += size;
	kept[keptlen] = '\0';

	return 0;
}

static struct re_printf keptpf = {kept_handler, NULL};


#define OLD BASE "api_listen 127.0.0.1:8080\n" \
	"api_token reload-unit-token-aaaaaaaaaa admin\n" \
	"node_name edge-1\n" \
	"gateway gw1 127.0.0.2:5080\n" \
	"route 44 gw1\n"


static int reload(struct cfg **cfgp, const struct cfg *old, const char *text,
		  unsigned *np)
{
	keptlen = 0;
	kept[0] = '\0';
	errlen = 0;
	errbuf[0] = '\0';
	*cfgp = NULL;

	return cfg_reload_text(cfgp, old, text, strlen(text), &errpf,
			       &keptpf, np);
}


/* routes, gateways, tokens and log level change; nothing is kept */
static void test_reload_applies(struct cfg *old)
{
	struct cfg *cfg = NULL;
	const struct cfg_route *r;
	unsigned n = 99;
	int err;

	err = reload(&cfg, old, BASE "api_listen 127.0.0.1:8080\n"
		     "api_token reload-unit-token-bbbbbbbbbb readonly\n"
		     "node_name edge-1\nlog_level debug\n"
		     "gateway gw2 127.0.0.3:5080 max_calls=3\n"
		     "route 44 gw2\nroute 55 gw2\n", &n);
	CHECK(err == 0 && cfg != NULL);
	if (!cfg)
		return;

	CHECK(n == 0);
	CHECK(keptlen == 0);
	CHECK(SIP(cfg) != SIP(old));
	CHECK(cfg_gateway_find(SIP(cfg), "gw1") == NULL);
	CHECK(cfg_gateway_find(SIP(cfg), "gw2") != NULL);
	CHECK(cfg_gateway_find(SIP(cfg), "gw2")->h.max_calls == 3);
	r = cfg_route_find(SIP(cfg), "4412");
	CHECK(r && r->gwc == 1 && !strcmp(r->gwv[0]->name, "gw2"));
	CHECK(list_count(&SIP(cfg)->routel) == 2);
	CHECK(LOG(cfg)->log_level == LOG_DEBUG);
	CHECK(list_count(&API(cfg)->tokenl) == 1);
	CHECK(!((const struct cfg_token *)
		list_ledata(list_head(&API(cfg)->tokenl)))->admin);

	/* the modules that cannot take a new struct keep theirs */
	CHECK(DB(cfg) == DB(old));
	CHECK(RTP(cfg) == RTP(old));
	CHECK(BIL(cfg) == BIL(old));

	/* the old one is untouched */
	CHECK(cfg_gateway_find(SIP(old), "gw1") != NULL);
	CHECK(LOG(old)->log_level == LOG_INFO);

	mem_deref(cfg);
}


/* fixed keys: named with their old value, which they keep */
static void test_reload_fixed(struct cfg *old)
{
	const struct cfg_listen *l;
	struct cfg *cfg = NULL;
	struct sa sa;
	unsigned n = 0;
	int err;

	err = reload(&cfg, old, "sip_listen udp:127.0.0.1:5070\n"
		     "sip_listen tcp:127.0.0.1:5070\n"
		     "db_conninfo dbname=other\n"
		     "api_listen 127.0.0.1:9090\n"
		     "api_token reload-unit-token-aaaaaaaaaa admin\n"
		     "node_name edge-2\nring_timeout 30\n"
		     "gateway gw1 127.0.0.2:5080\nroute 44 gw1\n", &n);
	CHECK(err == 0 && cfg != NULL);
	if (!cfg)
		return;

	CHECK(n == 4);
	CHECK(strstr(kept, "reload: sip_listen cannot change while running;"
		     " keeping udp:127.0.0.1:5060\n") != NULL);
	CHECK(strstr(kept, "reload: api_listen cannot change while running;"
		     " keeping 127.0.0.1:8080\n") != NULL);
	CHECK(strstr(kept, "reload: node_name cannot change while running;"
		     " keeping edge-1\n") != NULL);
	CHECK(strstr(kept, "reload: db_conninfo cannot change while "
		     "running; keeping ") != NULL);
	CHECK(count_lines(kept) == 4);

	l = list_ledata(list_head(&SIP(cfg)->listenl));
	CHECK(list_count(&SIP(cfg)->listenl) == 1);
	CHECK(l && l->tp == SIP_TRANSP_UDP && sa_port(&l->addr) == 5060);
	(void)sa_set_str(&sa, "127.0.0.1", 8080);
	CHECK(sa_cmp(&API(cfg)->api_listen, &sa, SA_ALL));
	CHECK(!strcmp(BIL(cfg)->node_name, "edge-1"));
	CHECK(!strcmp(DB(cfg)->db_conninfo, "dbname=tollgate"));

	/* and what may change did */
	CHECK(SIP(cfg)->ring_timeout == 30);

	mem_deref(cfg);
}


/* a bad text changes nothing and says where */
static void test_reload_bad(struct cfg *old)
{
	struct cfg *cfg = NULL;
	unsigned n = 0;
	int err;

	err = reload(&cfg, old, OLD "route 55 nosuch\n", &n);
	CHECK(err == EINVAL && cfg == NULL);
	CHECK(strstr(errbuf, "t.conf:") != NULL);
	CHECK(strstr(errbuf, "nosuch") != NULL);
	CHECK(keptlen == 0);

	err = reload(&cfg, old, OLD "ring_timeout 99999\n", &n);
	CHECK(err == EINVAL && cfg == NULL);
	CHECK(strstr(errbuf, "t.conf:8: ring_timeout:") != NULL);

	err = reload(&cfg, old, OLD "sip_lisen udp:127.0.0.1:5070\n", &n);
	CHECK(err == EINVAL && cfg == NULL);
	CHECK(strstr(errbuf, "t.conf:8: unknown key 'sip_lisen'") != NULL);
}


/* a struct a call holds outlives the configuration it came from */
static void test_reload_ref(void)
{
	struct b2bua_conf *held;
	struct cfg *old = OK(OLD);

	if (!old)
		return;

	held = mem_ref((void *)SIP(old));
	mem_deref(old);
	CHECK(cfg_gateway_find(held, "gw1") != NULL);
	mem_deref(held);
}


void test_reload(void)
{
	struct cfg *old = OK(OLD);

	if (!old)
		return;

	test_reload_applies(old);
	test_reload_fixed(old);
	test_reload_bad(old);
	mem_deref(old);
	test_reload_ref();

	CHECK(cfg_key_fixed(&b2bua_conf_module,
			    &b2bua_conf_module.keyv[0]));
}
