/**
 * @file test_class4.c  Number translation rules (b2bua/translate.c), cost
 *                      decks, least-cost order and the margin guard
 *                      (b2bua/deck.c, b2bua/routes.c)
 */

#include <string.h>
#include <stdint.h>
#include <re.h>
#include "b2bua_int.h"
#include "check.h"


static struct list rules;


static int add(enum b2bua_xlat_dir dir, const char *text)
{
	struct b2bua_xlat *x;
	char why[128];
	struct pl pl;
	int err;

	pl_set_str(&pl, text);
	err = b2bua_xlat_parse(&x, dir, &pl, why, sizeof(why));
	if (!err)
		list_append(&rules, &x->le, x);

	return err;
}


static bool bad(enum b2bua_xlat_dir dir, const char *text,
		const char *word)
{
	struct b2bua_xlat *x = NULL;
	char why[128] = "";
	struct pl pl;
	int err;

	pl_set_str(&pl, text);
	err = b2bua_xlat_parse(&x, dir, &pl, why, sizeof(why));
	mem_deref(x);

	return err == EINVAL && strstr(why, word) != NULL;
}


/* in: the translated number, "ERR" for EINVAL, with account/src */
static const char *xin(const char *acct, const struct sa *src,
		       const char *num)
{
	static char out[128];

	if (b2bua_xlat_apply(&rules, B2BUA_XLAT_IN, acct, src, NULL, num,
			     out, sizeof(out), NULL))
		return "ERR";

	return out;
}


static const char *xout(const char *gw, const char *num)
{
	static char out[128];

	if (b2bua_xlat_apply(&rules, B2BUA_XLAT_OUT, NULL, NULL, gw, num,
			     out, sizeof(out), NULL))
		return "ERR";

	return out;
}


static void test_parse(void)
{
	struct b2bua_xlat *x;
	char why[128], buf[256];
	struct pl pl;

	CHECK(bad(B2BUA_XLAT_IN, "match=0", "needs"));
	CHECK(bad(B2BUA_XLAT_IN, "match=0A strip=1", "match"));
	CHECK(bad(B2BUA_XLAT_IN, "strip=0", "strip"));
	CHECK(bad(B2BUA_XLAT_IN, "strip=x", "strip"));
	CHECK(bad(B2BUA_XLAT_IN, "prefix=", "prefix"));
	CHECK(bad(B2BUA_XLAT_IN, "prefix=1+2", "prefix"));
	CHECK(bad(B2BUA_XLAT_IN, "len=9-3 strip=1", "len"));
	CHECK(bad(B2BUA_XLAT_IN, "national=044", "national"));
	CHECK(bad(B2BUA_XLAT_IN, "gateway=gw1 strip=1", "unknown option"));
	CHECK(bad(B2BUA_XLAT_OUT, "account=a strip=1", "unknown option"));
	CHECK(bad(B2BUA_XLAT_OUT, "national=44", "unknown option"));
	CHECK(bad(B2BUA_XLAT_IN, "peer=300.1.1.1 strip=1", "peer"));
	CHECK(bad(B2BUA_XLAT_IN, "peer=10.0.0.0/33 strip=1", "peer"));
	CHECK(bad(B2BUA_XLAT_IN, "strip", "KEY=VALUE"));

	pl_set_str(&pl, "account=alice peer=10.1.0.0/16 match=+44X "
		   "len=10-12 strip=3 prefix=0");
	CHECK(!b2bua_xlat_parse(&x, B2BUA_XLAT_IN, &pl, why, sizeof(why)));
	(void)re_snprintf(buf, sizeof(buf), "%H", b2bua_xlat_print, x);
	CHECK(!strcmp(buf, "account=alice peer=10.1.0.0/16 match=+44X "
		      "len=10-12 strip=3 prefix=0"));
	mem_deref(x);
}


static void test_apply(void)
{
	struct sa peer, other;

	(void)sa_set_str(&peer, "10.1.2.3", 5060);
	(void)sa_set_str(&other, "10.2.2.3", 5060);

	/* no rule: the number as it is, '+' kept; bad numbers refused */
	CHECK(!strcmp(xin(NULL, NULL, "+4420"), "+4420"));
	CHECK(!strcmp(xin(NULL, NULL, ""), "ERR"));
	CHECK(!strcmp(xin(NULL, NULL, "+"), "ERR"));
	CHECK(!strcmp(xin(NULL, NULL, "12a"), "ERR"));
	CHECK(!strcmp(xin(NULL, NULL, "1234567890123456789012345678901234"
			  "5678901234567890123456789012345"), "ERR"));

	CHECK(!add(B2BUA_XLAT_IN, "account=bob match=9 strip=1"));
	CHECK(!add(B2BUA_XLAT_IN, "peer=10.1.0.0/16 match=X len=4-4 "
		   "prefix=+4420"));
	CHECK(!add(B2BUA_XLAT_IN, "national=44"));
	CHECK(!add(B2BUA_XLAT_OUT, "gateway=gw1 match=44 strip=2 "
		   "prefix=0"));
	CHECK(!add(B2BUA_XLAT_OUT, "gateway=gw2 prefix=+"));
	CHECK(!add(B2BUA_XLAT_OUT, "match=1XX len=3-3 strip=1 "
		   "prefix=0049"));

	/* national: 0 -> +44, 00 -> +, '+' and others unchanged */
	CHECK(!strcmp(xin(NULL, NULL, "02079460000"), "+442079460000"));
	CHECK(!strcmp(xin(NULL, NULL, "0049301234"), "+49301234"));
	CHECK(!strcmp(xin(NULL, NULL, "+33123"), "+33123"));
	CHECK(!strcmp(xin(NULL, NULL, "4420"), "4420"));
	CHECK(!strcmp(xin(NULL, NULL, "00"), "ERR"));

	/* scope: the account's rule first, for that account only */
	CHECK(!strcmp(xin("bob", NULL, "90207"), "0207"));
	CHECK(!strcmp(xin("alice", NULL, "90207"), "90207"));

	/* peer rule with its length bounds: 4 digits from the network */
	CHECK(!strcmp(xin(NULL, &peer, "7946"), "+44207946"));
	CHECK(!strcmp(xin(NULL, &other, "7946"), "7946"));
	CHECK(!strcmp(xin(NULL, &peer, "79461"), "79461"));
	CHECK(!strcmp(xin(NULL, &peer, "0207"), "+44200207"));

	/* out: per gateway, first match wins, pattern with X and len */
	CHECK(!strcmp(xout("gw1", "442079460000"), "02079460000"));
	CHECK(!strcmp(xout("gw1", "33123"), "33123"));
	CHECK(!strcmp(xout("gw2", "442079460000"), "+442079460000"));
	CHECK(!strcmp(xout("gw3", "123"), "004923"));
	CHECK(!strcmp(xout("gw3", "1234"), "1234"));
	CHECK(!strcmp(xout("gw1", "1"), "1"));

	list_flush(&rules);

	/* strip all of it: no number left */
	CHECK(!add(B2BUA_XLAT_IN, "match=12 strip=2"));
	CHECK(!strcmp(xin(NULL, NULL, "12"), "ERR"));
	CHECK(!strcmp(xin(NULL, NULL, "123"), "3"));
	list_flush(&rules);
}


static struct b2bua_tariff T(int64_t fee, int64_t pm, uint32_t i,
				   uint32_t s)
{
	struct b2bua_tariff t = { fee, pm, i, s };

	return t;
}


static void test_deck(void)
{
	struct b2bua_deck *d;
	const struct b2bua_tariff *t;
	struct b2bua_tariff a = T(0, 1000, 60, 60), b = T(0, 2000, 1, 1);
	struct b2bua_tariff c = T(0, 3000, 30, 6), e = T(0, 4000, 1, 1);
	const char *pfx = NULL;
	char num[32];
	int64_t cost;
	uint32_t i, added;

	CHECK(!b2bua_deck_alloc(&d));
	CHECK(!b2bua_deck_lookup(d, "44", 0, NULL));
	CHECK(b2bua_deck_add(d, "4x", &a, INT64_MIN, INT64_MAX) == EINVAL);
	CHECK(b2bua_deck_add(d, "44", &a, 10, 10) == EINVAL);
	CHECK(b2bua_deck_add(d, "1234567890123456789012345", &a, INT64_MIN,
			     INT64_MAX) == EINVAL);
	CHECK(!b2bua_deck_add(d, "44", &a, INT64_MIN, INT64_MAX));
	CHECK(!b2bua_deck_add(d, "4420", &b, INT64_MIN, INT64_MAX));
	/* 4420 7 only from 1000 to 2000, then another price from 2000 */
	CHECK(!b2bua_deck_add(d, "44207", &c, 1000, 2000));
	CHECK(!b2bua_deck_add(d, "44207", &e, 2000, INT64_MAX));
	CHECK(!b2bua_deck_add(d, "", &e, INT64_MIN, 500));
	b2bua_deck_seal(d);
	CHECK(b2bua_deck_add(d, "1", &a, INT64_MIN, INT64_MAX) == EALREADY);
	CHECK(b2bua_deck_count(d) == 5);

	t = b2bua_deck_lookup(d, "4420794", 1500, &pfx);
	CHECK(t && t->per_minute == 3000 && !strcmp(pfx, "44207"));
	t = b2bua_deck_lookup(d, "4420794", 500, &pfx);
	CHECK(t && t->per_minute == 2000 && !strcmp(pfx, "4420"));
	t = b2bua_deck_lookup(d, "4420794", 2000, NULL);
	CHECK(t && t->per_minute == 4000);
	t = b2bua_deck_lookup(d, "4421", 1500, NULL);
	CHECK(t && t->per_minute == 1000);
	t = b2bua_deck_lookup(d, "44", 1500, NULL);
	CHECK(t && t->per_minute == 1000);
	t = b2bua_deck_lookup(d, "4", 1500, NULL);
	CHECK(!t);
	t = b2bua_deck_lookup(d, "4", 100, NULL);     /* the "" entry */
	CHECK(t && t->per_minute == 4000);
	CHECK(!b2bua_deck_lookup(d, "", 1500, NULL));
	CHECK(!b2bua_deck_lookup(d, "+44", 1500, NULL));
	CHECK(b2bua_deck_lookup(d, "4420794600001234567890123456789", 1500,
				NULL) != NULL);
	mem_deref(d);

	/* 50,000 prefixes: each found, a number below none not */
	CHECK(!b2bua_deck_alloc(&d));
	for (i = 0, added = 0; i < 50000; i++) {
		struct b2bua_tariff x = T(0, 1000 + i, 1, 1);

		(void)re_snprintf(num, sizeof(num), "%u", 100000 + i * 7);
		added += !b2bua_deck_add(d, num, &x, INT64_MIN, INT64_MAX);
	}
	CHECK(added == 50000);
	b2bua_deck_seal(d);
	for (i = 0; i < 50000; i += 997) {
		(void)re_snprintf(num, sizeof(num), "%u99", 100000 + i * 7);
		t = b2bua_deck_lookup(d, num, 0, NULL);
		CHECK(t && t->per_minute == 1000 + i);
	}
	CHECK(!b2bua_deck_lookup(d, "100001", 0, NULL));
	mem_deref(d);

	/* cost: as billing's rating */
	CHECK(!b2bua_tariff_cost(&cost, &c, 0) && cost == 0);
	CHECK(!b2bua_tariff_cost(&cost, &c, 1) && cost == 1500);
	CHECK(!b2bua_tariff_cost(&cost, &c, 31) && cost == 1800);
	a = T(100, 1, 1, 1);
	CHECK(!b2bua_tariff_cost(&cost, &a, 1) && cost == 101);
	a.initial = 0;
	CHECK(b2bua_tariff_cost(&cost, &a, 1) == EINVAL);
}


static void test_margin(void)
{
	/* customer 0.02/min per second; carrier 0.018/min per minute */
	struct b2bua_tariff cu = T(0, 20000, 1, 1);
	struct b2bua_tariff per_min = T(0, 18000, 60, 60);
	struct b2bua_tariff cheap = T(0, 10000, 1, 1);
	struct b2bua_tariff fee = T(5000, 10000, 1, 1);

	/* cheaper by the minute, yet at 1 s the carrier charges a minute */
	CHECK(!b2bua_margin_ok(&cu, &per_min, 0, 3600));
	CHECK(b2bua_margin_ok(&cu, &cheap, 0, 3600));
	CHECK(b2bua_margin_ok(&cu, &cheap, 49, 3600));
	CHECK(!b2bua_margin_ok(&cu, &cheap, 51, 3600));
	/* a connect fee no customer second covers */
	CHECK(!b2bua_margin_ok(&cu, &fee, 0, 3600));
	/* the same increments as the customer's, cheaper: fine */
	cu = T(0, 20000, 60, 60);
	CHECK(b2bua_margin_ok(&cu, &per_min, 10, 3600));
	CHECK(!b2bua_margin_ok(&cu, &per_min, 11, 3600));
	/* a customer billed by the minute, carrier per second: fine */
	CHECK(b2bua_margin_ok(&cu, &cheap, 50, 3600));
}


static void test_lcr(void)
{
	struct b2bua_routes *rt;
	struct call_cand *cv = NULL;
	struct b2bua_tariff a = T(0, 3000, 1, 1), b = T(0, 1000, 60, 60);
	struct b2bua_tariff c = T(0, 1000, 60, 60);
	struct sa sa;
	uint32_t n = 0;

	(void)sa_set_str(&sa, "127.0.0.1", 5080);
	CHECK(!b2bua_routes_alloc(&rt));
	CHECK(!b2bua_routes_add_gateway(rt, "a1", &sa, SIP_TRANSP_UDP));
	CHECK(!b2bua_routes_add_gateway(rt, "b1", &sa, SIP_TRANSP_UDP));
	CHECK(!b2bua_routes_add_gateway(rt, "c1", &sa, SIP_TRANSP_UDP));
	CHECK(!b2bua_routes_add_gateway(rt, "c2", &sa, SIP_TRANSP_UDP));
	CHECK(!b2bua_routes_add_gateway(rt, "d1", &sa, SIP_TRANSP_UDP));
	CHECK(!b2bua_routes_gateway_carrier(rt, "a1", "A"));
	CHECK(!b2bua_routes_gateway_carrier(rt, "b1", "B"));
	CHECK(!b2bua_routes_gateway_carrier(rt, "c1", "C"));
	CHECK(!b2bua_routes_gateway_carrier(rt, "c2", "C"));
	CHECK(!b2bua_routes_gateway_carrier(rt, "d1", "D"));
	CHECK(!b2bua_routes_add_carrier(rt, "A", 0));
	CHECK(!b2bua_routes_add_carrier(rt, "B", 5));
	CHECK(!b2bua_routes_add_carrier(rt, "C", 1));
	CHECK(!b2bua_routes_add_carrier(rt, "D", 0));
	CHECK(b2bua_routes_add_carrier(rt, "D", 0) == EEXIST);
	CHECK(!b2bua_routes_add_price(rt, "A", "44", &a, INT64_MIN,
				      INT64_MAX));
	CHECK(!b2bua_routes_add_price(rt, "B", "4", &b, INT64_MIN,
				      INT64_MAX));
	CHECK(!b2bua_routes_add_price(rt, "C", "4420", &c, INT64_MIN,
				      INT64_MAX));
	CHECK(b2bua_routes_add_price(rt, "X", "1", &c, INT64_MIN,
				     INT64_MAX) == ENOENT);
	CHECK(!b2bua_routes_add_lcr(rt, ""));
	CHECK(!b2bua_routes_seal(rt));

	/* B and C cost the same for 60 s: C's preference is lower */
	CHECK(!b2bua_routes_lcr(rt, "442079", 0, 60, &cv, &n));
	CHECK(n == 4);
	if (n == 4) {
		CHECK(!strcmp(cv[0].gw->name, "c1"));
		CHECK(!strcmp(cv[1].gw->name, "c2"));
		CHECK(!strcmp(cv[2].gw->name, "b1"));
		CHECK(!strcmp(cv[3].gw->name, "a1"));
		CHECK(cv[3].cost == 3000 && cv[3].t.per_minute == 3000);
	}
	cv = mem_deref(cv);

	/* 10 s: A is cheapest (per second) */
	CHECK(!b2bua_routes_lcr(rt, "442079", 0, 10, &cv, &n));
	CHECK(n == 4 && !strcmp(cv[0].gw->name, "a1"));
	cv = mem_deref(cv);

	/* only B covers 49 */
	CHECK(!b2bua_routes_lcr(rt, "4930", 0, 60, &cv, &n));
	CHECK(n == 1 && !strcmp(cv[0].gw->name, "b1"));
	cv = mem_deref(cv);

	CHECK(b2bua_routes_lcr(rt, "33", 0, 60, &cv, &n) == ENOENT);
	CHECK(b2bua_routes_find(rt, "33")->lcr);
	mem_deref(rt);
}


int main(void)
{
	test_parse();
	test_apply();
	test_deck();
	test_margin();
	test_lcr();

	return check_report("test_class4");
}
