/**
 * @file test_conf.h  What the parts of the configuration parser's unit
 *                    test share: the check counter and the parse helpers
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <re.h>
#include "core.h"
#include "b2bua.h"
#include "db.h"
#include "relay.h"
#include "api.h"
#include "billing.h"
#include "tollgate.h"


extern unsigned passed, failed;

void check(const char *file, int line, bool ok, const char *what);
#define CHECK(cond) check(__FILE__, __LINE__, (cond), #cond)

/** The daemon's own list of modules */
#define MODV tollgate_modv, tollgate_modc

/** Each module's part of a parsed configuration */
#define SIP(c) ((const struct b2bua_conf *)cfg_get((c), &b2bua_conf_module))
#define TG(c)  ((const struct tg_conf *)cfg_get((c), &tg_conf_module))
#define DB(c)  ((const struct db_conf *)cfg_get((c), &db_conf_module))
#define RTP(c) ((const struct relay_conf *)cfg_get((c), &relay_conf_module))
#define API(c) ((const struct api_conf *)cfg_get((c), &api_conf_module))
#define LOG(c) ((const struct log_conf *)cfg_get((c), &log_conf_module))
#define BIL(c) ((const struct billing_conf *)cfg_get((c), \
						     &billing_conf_module))

/** Minimal valid configuration: the two required keys */
#define BASE "sip_listen udp:127.0.0.1:5060\n" \
	"db_conninfo dbname=tollgate\n"

extern char errbuf[8192];
extern size_t errlen;
extern struct re_printf errpf;

int  parse(struct cfg **cfgp, const char *text);
struct cfg *ok_cfg(const char *file, int line, const char *text);
void bad_cfg(const char *file, int line, const char *text,
	     const char *where, const char *reason);
unsigned count_lines(const char *s);

#define OK(text) ok_cfg(__FILE__, __LINE__, (text))
#define BAD(text, where, reason) \
	bad_cfg(__FILE__, __LINE__, (text), (where), (reason))

/* test_conf_sip.c */
void test_sip_listen(void);
void test_trusted_peer(void);
void test_cidr(void);
void test_gateway_health(void);
void test_gateway(void);
void test_number(void);
void test_routes(void);
void test_copy_header(void);
void test_limits(void);

/* test_conf_keys.c */
void test_billing_keys(void);
void test_db_keys(void);
void test_scalars(void);
void test_media_keys(void);
void test_api_token(void);
void test_api_options(void);
void test_many_errors(void);

/* test_conf_reload.c */
void test_reload(void);

/* test_conf_file.c */
void test_print(void);
void test_print_conninfo(void);
void test_load(void);
void test_example(void);
void test_modules(void);
