/**
 * @file test_conf_file.c  Unit tests of cfg_print() (and its masking of
 *                         secrets), cfg_load() on files, the shipped
 *                         example and the module tables themselves
 */

#include "test_conf.h"


/* ---------------------------------------------------------- cfg_print */

static int print_handler(const char *p, size_t size, void *arg)
{
	return mbuf_write_mem(arg, (const uint8_t *)p, size);
}


static char *print_cfg(const struct cfg *cfg)
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


void test_print(void)
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
		"gateway gw2 [2001:db8::2]:5080 transport=tcp probe=5 "
		"max_calls=40 cps=3\n"
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
	struct cfg *cfg, *cfg2;
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
		      "transport=tcp probe=5 probe_timeout=1000 fail=3 "
		      "recover=2 burst=5 max_calls=40 cps=3\n") != NULL);
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
		CHECK(list_isempty(&API(cfg2)->tokenl));
		mem_deref(cfg2);
	}

 out:
	mem_deref(out);
	mem_deref(out2);
	mem_deref(cfg);
}


static void check_conninfo(const char *file, int line, const char *ci,
			   const char *want)
{
	struct cfg *cfg;
	char text[512], expect[512];
	char *out;

	snprintf(text, sizeof(text), "sip_listen udp:127.0.0.1\n"
		 "db_conninfo %s\n", ci);
	snprintf(expect, sizeof(expect), "\ndb_conninfo %s\n", want);

	cfg = ok_cfg(file, line, text);
	if (!cfg)
		return;

	out = print_cfg(cfg);
	check(file, line, out && strstr(out, expect), want);
	if (out && !strstr(out, expect))
		fprintf(stderr, "  got: %s\n", out);

	mem_deref(out);
	mem_deref(cfg);
}
#define CONNINFO(ci, want) check_conninfo(__FILE__, __LINE__, (ci), (want))


void test_print_conninfo(void)
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

void test_load(void)
{
	char dir[] = "/tmp/test_conf.XXXXXX";
	char path[256], big[400];
	struct cfg *cfg = NULL;
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
	err = cfg_load(&cfg, path, MODV, &errpf);
	CHECK(err == ENOENT && cfg == NULL);
	CHECK(strstr(errbuf, path) == errbuf);
	CHECK(strstr(errbuf, ": No such file or directory") != NULL);

	/* a directory */
	errlen = 0;
	err = cfg_load(&cfg, dir, MODV, &errpf);
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
	err = cfg_load(&cfg, path, MODV, &errpf);
	CHECK(err == 0 && cfg != NULL);
	CHECK(cfg && SIP(cfg)->ring_timeout == 17);
	CHECK(cfg && !strcmp(cfg_filename(cfg), path));
	cfg = mem_deref(cfg);

	/* a bad file names itself and the line */
	f = fopen(path, "w");
	if (f) {
		fputs(BASE "\nring_timeout 17s\n", f);
		fclose(f);
	}
	errlen = 0;
	err = cfg_load(&cfg, path, MODV, &errpf);
	CHECK(err == EINVAL && cfg == NULL);
	snprintf(big, sizeof(big), "%s:4: ring_timeout: value '17s' is not "
		 "a decimal number\n", path);
	CHECK(!strcmp(errbuf, big));

	/* unreadable (permission): meaningless as root, so skip then */
	if (geteuid() != 0) {
		chmod(path, 0);
		errlen = 0;
		err = cfg_load(&cfg, path, MODV, &errpf);
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
	err = cfg_load(&cfg, path, MODV, &errpf);
	CHECK(err == 0 && cfg != NULL);
	cfg = mem_deref(cfg);

	f = fopen(path, "a");
	if (f) {
		fputc('\n', f);
		fclose(f);
	}
	errlen = 0;
	err = cfg_load(&cfg, path, MODV, &errpf);
	CHECK(err == EFBIG && cfg == NULL);
	CHECK(strstr(errbuf, "file is larger than 1 MiB") != NULL);
	unlink(path);

	rmdir(dir);
}


void test_example(void)
{
	const char *srcdir = getenv("top_srcdir");
	struct cfg *cfg = NULL;
	char path[512];
	int err;

	/* automake's serial harness exports only srcdir (the top one here,
	 * the Makefile being non-recursive) */
	if (!srcdir)
		srcdir = getenv("srcdir");

	snprintf(path, sizeof(path), "%s/tollgate.conf.example",
		 srcdir ? srcdir : ".");

	errlen = 0;
	err = cfg_load(&cfg, path, MODV, &errpf);
	CHECK(err == 0 && cfg != NULL);
	if (err) {
		fprintf(stderr, "  %s: %s", path, errbuf);
		return;
	}

	/* a deployment with two gateways, a default route and peers */
	CHECK(list_count(&SIP(cfg)->gatewayl) == 2);
	CHECK(cfg_route_find(SIP(cfg), "99999") != NULL);
	CHECK(!list_isempty(&SIP(cfg)->peerl));
	CHECK(!list_isempty(&SIP(cfg)->listenl));
	CHECK(DB(cfg)->db_conninfo != NULL);

	mem_deref(cfg);
}


/* ------------------------------------------------------ module tables */

void test_modules(void)
{
	static const struct cfg_module *const logv[] = {&log_conf_module};
	struct mbuf *mb = mbuf_alloc(4096);
	struct re_printf pf = {print_handler, mb};
	struct cfg *cfg;
	size_t i, j, m, n;
	bool docs = true, unique = true, handlers = true, documented = true;
	char *doc = NULL;
	int err;

	/* every key has a parser, a printer and a line of doc; no name is
	 * declared twice, even across modules */
	for (i = 0; i < tollgate_modc; i++) {
		const struct cfg_module *mi = tollgate_modv[i];

		for (j = 0; j < mi->keyc; j++) {
			const struct cfg_key *k = &mi->keyv[j];

			if (!k->parse || !k->print)
				handlers = false;
			if (!k->doc || !k->doc[0])
				docs = false;

			for (m = 0; m < tollgate_modc; m++) {
				const struct cfg_module *mm = tollgate_modv[m];

				for (n = 0; n < mm->keyc; n++) {
					if ((m != i || n != j) &&
					    !strcmp(k->name,
						    mm->keyv[n].name))
						unique = false;
				}
			}
		}
	}
	CHECK(handlers);
	CHECK(docs);
	CHECK(unique);

	/* cfg_doc() names every key */
	CHECK(mb != NULL);
	if (mb && !cfg_doc(&pf, tollgate_modv, tollgate_modc)) {
		mb->pos = 0;
		(void)mbuf_strdup(mb, &doc, mb->end);
	}
	CHECK(doc != NULL);
	for (i = 0; doc && i < tollgate_modc; i++) {
		for (j = 0; j < tollgate_modv[i]->keyc; j++) {
			char want[80];

			snprintf(want, sizeof(want), "# %s",
				 tollgate_modv[i]->keyv[j].name);
			if (!strstr(doc, want))
				documented = false;
		}
	}
	CHECK(documented);
	CHECK(doc && strstr(doc, "# ring_timeout: ") &&
	      strstr(doc, "[60]\n"));
	mem_deref(doc);
	mem_deref(mb);

	/* each module gets its own struct; the B2BUA knows its file */
	cfg = OK(BASE);
	if (cfg) {
		CHECK(SIP(cfg) != NULL && BIL(cfg) != NULL);
		CHECK((const void *)SIP(cfg) != (const void *)BIL(cfg));
		CHECK(SIP(cfg)->file && !strcmp(SIP(cfg)->file, "t.conf"));
		CHECK(cfg_get(cfg, NULL) == NULL);
		mem_deref(cfg);
	}
	CHECK(cfg_get(NULL, &b2bua_conf_module) == NULL);
	CHECK(cfg_filename(NULL) == NULL);

	/* a file read with only some modules knows only their keys */
	errlen = 0;
	err = cfg_parse(&cfg, "l.conf", "log_level debug\n", 16, logv, 1,
			&errpf);
	CHECK(err == 0 && errlen == 0);
	if (!err) {
		CHECK(LOG(cfg)->log_level == LOG_DEBUG);
		CHECK(LOG(cfg)->log_target == CFG_LOG_STDERR);
		CHECK(cfg_get(cfg, &b2bua_conf_module) == NULL);
		mem_deref(cfg);
	}

	errlen = 0;
	cfg = NULL;
	err = cfg_parse(&cfg, "l.conf", "ring_timeout 5\n", 15, logv, 1,
			&errpf);
	CHECK(err == EINVAL && cfg == NULL);
	CHECK(strstr(errbuf, "l.conf:1: unknown key 'ring_timeout'") != NULL);

	/* no module at all: an empty file is a valid one */
	err = cfg_parse(&cfg, "e.conf", "", 0, NULL, 0, &errpf);
	CHECK(err == 0);
	if (!err)
		mem_deref(cfg);
}
