/**
 * @file test_api.c  Unit tests of the REST API's pure parts and of the
 *                   B2BUA's swappable routing tables
 *
 * Money strings to micro-units and back (exact, 6 decimals at most, no
 * sign, overflow), RFC 3339 checks of query arguments, and routing
 * tables: longest prefix, default route, unknown gateways, duplicates,
 * and a table kept alive by a reference after the B2BUA let it go; the
 * control messages between nodes: every field checked, nothing else
 * taken; the CSV reader (quotes, line numbers, errors) and writer
 * (quoting, the formula guard).
 */

#include <stdio.h>
#include <string.h>
#include <re.h>
#include "core.h"
#include "b2bua.h"
#include "api_int.h"

#include "check.h"


static void money_ok(int line, const char *s, int64_t want,
		     const char *printed)
{
	int64_t v = -1;
	char buf[40];
	int err = api_money_parse(&v, s);

	check_at(__FILE__, line, err == 0 && v == want, s);
	(void)re_snprintf(buf, sizeof(buf), "%H", api_money_print, &want);
	check_at(__FILE__, line, !strcmp(buf, printed), printed);
}


static void money_bad(int line, const char *s, int want)
{
	int64_t v = 77;

	check_at(__FILE__, line, api_money_parse(&v, s) == want && v == 77, s);
}


static void test_money(void)
{
	money_ok(__LINE__, "12.50", 12500000, "12.50");
	money_ok(__LINE__, "0", 0, "0.00");
	money_ok(__LINE__, "7", 7000000, "7.00");
	money_ok(__LINE__, "0.000001", 1, "0.000001");
	money_ok(__LINE__, "1.23456", 1234560, "1.23456");
	money_ok(__LINE__, "1.2345600", 1234560, "1.23456");
	money_ok(__LINE__, "007.1", 7100000, "7.10");
	money_ok(__LINE__, "0.0000010", 1, "0.000001");
	money_ok(__LINE__, "9223372036854.775807", INT64_MAX,
		 "9223372036854.775807");

	money_bad(__LINE__, "9223372036854.775808", ERANGE);
	money_bad(__LINE__, "99999999999999999999", ERANGE);
	money_bad(__LINE__, "1.0000001", EBADMSG);
	money_bad(__LINE__, "-1", EDOM);
	money_bad(__LINE__, "-0.5", EDOM);
	money_bad(__LINE__, "+1", EINVAL);
	money_bad(__LINE__, "", EINVAL);
	money_bad(__LINE__, ".5", EINVAL);
	money_bad(__LINE__, "5.", EINVAL);
	money_bad(__LINE__, "1e3", EINVAL);
	money_bad(__LINE__, " 1", EINVAL);
	money_bad(__LINE__, "1 ", EINVAL);
	money_bad(__LINE__, "1,5", EINVAL);
	money_bad(__LINE__, "abc", EINVAL);
	money_bad(__LINE__, "-", EINVAL);
}


static void test_time(void)
{
	CHECK(api_time_valid("2024-05-01") == 0);
	CHECK(api_time_valid("2024-05-01T12:00:00Z") == 0);
	CHECK(api_time_valid("2024-05-01T12:00:00.250Z") == 0);
	CHECK(api_time_valid("2024-05-01T12:00:00+02:00") == 0);
	CHECK(api_time_valid("2024-05-01 12:00:00-05:30") == 0);
	CHECK(api_time_valid("2024-13-01") != 0);
	CHECK(api_time_valid("2024-05-00") != 0);
	CHECK(api_time_valid("2024-05-01T24:00:00Z") != 0);
	CHECK(api_time_valid("2024-05-01T12:00:00") != 0);
	CHECK(api_time_valid("2024-05-01T12:00Z") != 0);
	CHECK(api_time_valid("yesterday") != 0);
	CHECK(api_time_valid("2024-05-01T12:00:00Z; DROP") != 0);
	CHECK(api_time_valid(NULL) != 0);
}


static void test_routes(void)
{
	struct b2bua_routes *rt = NULL;
	const struct cfg_route *r;
	const char *ab[] = {"gwa", "gwb"}, *b[] = {"gwb"}, *x[] = {"gwx"};
	struct sa a1, a2;

	CHECK(sa_set_str(&a1, "127.0.0.74", 5080) == 0);
	CHECK(sa_set_str(&a2, "127.0.0.75", 5080) == 0);

	CHECK(b2bua_routes_alloc(&rt) == 0);
	if (!rt)
		return;

	CHECK(b2bua_routes_find(rt, "4420") == NULL);
	CHECK(b2bua_routes_add_gateway(rt, "gwa", &a1, SIP_TRANSP_UDP) == 0);
	CHECK(b2bua_routes_add_gateway(rt, "gwb", &a2, SIP_TRANSP_TCP) == 0);
	CHECK(b2bua_routes_add_gateway(rt, "gwa", &a2, SIP_TRANSP_UDP) ==
	      EEXIST);
	CHECK(b2bua_routes_add_gateway(rt, "gwc", &a2, SIP_TRANSP_WS) ==
	      EINVAL);
	CHECK(b2bua_routes_add_gateway(rt, "", &a2, SIP_TRANSP_UDP) ==
	      EINVAL);

	CHECK(b2bua_routes_add_route(rt, "", ab, 2) == 0);
	CHECK(b2bua_routes_add_route(rt, "44", b, 1) == 0);
	CHECK(b2bua_routes_add_route(rt, "4420", ab, 1) == 0);
	CHECK(b2bua_routes_add_route(rt, "44", ab, 2) == EEXIST);
	CHECK(b2bua_routes_add_route(rt, "33", x, 1) == ENOENT);
	CHECK(b2bua_routes_add_route(rt, "33", ab, 0) == EINVAL);
	CHECK(b2bua_routes_count(rt) == 3);

	r = b2bua_routes_find(rt, "4420123");
	CHECK(r && !strcmp(r->prefix, "4420") && r->gwc == 1 &&
	      !strcmp(r->gwv[0]->name, "gwa"));
	r = b2bua_routes_find(rt, "4430");
	CHECK(r && !strcmp(r->prefix, "44") &&
	      r->gwv[0]->tp == SIP_TRANSP_TCP &&
	      sa_cmp(&r->gwv[0]->addr, &a2, SA_ALL));
	r = b2bua_routes_find(rt, "1000");
	CHECK(r && !strcmp(r->prefix, "") && r->gwc == 2 &&
	      !strcmp(r->gwv[1]->name, "gwb"));
	r = b2bua_routes_find(rt, "442");
	CHECK(r && !strcmp(r->prefix, "44"));

	/* a call's reference keeps the table after it is replaced */
	mem_ref(rt);
	mem_deref(rt);
	r = b2bua_routes_find(rt, "4420");
	CHECK(r && !strcmp(r->gwv[0]->name, "gwa"));

	mem_deref(rt);
}


static void ctl_bad(int line, const char *payload)
{
	struct api_ctl_msg m;
	int err = api_ctl_parse(&m, payload);

	if (err != EBADMSG)
		printf("line %d: '%s' parsed (%d)\n", line, payload, err);
	CHECK(err == EBADMSG);
}


static void test_control(void)
{
	char buf[300];
	struct api_ctl_msg m;

	CHECK(api_ctl_parse(&m, "end node1 5f1c0e9a2b3d4c6e") == 0);
	CHECK(m.verb == API_CTL_END && !strcmp(m.node, "node1") &&
	      !strcmp(m.call_id, "5f1c0e9a2b3d4c6e"));

	CHECK(api_ctl_parse(&m, "cut * 42 block") == 0);
	CHECK(m.verb == API_CTL_CUT && !strcmp(m.node, "*") &&
	      m.account_id == 42 && m.why == API_CUT_BLOCK);

	CHECK(api_ctl_parse(&m, "cut gw-2.example_x 999999999999999999 "
			    "credit") == 0);
	CHECK(m.verb == API_CTL_CUT && m.why == API_CUT_CREDIT &&
	      m.account_id == 999999999999999999LL &&
	      !strcmp(m.node, "gw-2.example_x"));

	/* the longest node name and call id */
	memset(buf, 0, sizeof(buf));
	memcpy(buf, "end ", 4);
	memset(buf + 4, 'n', 63);
	buf[67] = ' ';
	memset(buf + 68, 'c', 63);
	CHECK(api_ctl_parse(&m, buf) == 0);
	CHECK(strlen(m.node) == 63 && strlen(m.call_id) == 63);
	buf[131] = 'c';
	ctl_bad(__LINE__, buf);          /* call id of 64 */
	buf[131] = '\0';
	buf[67] = 'n';
	buf[68] = ' ';
	ctl_bad(__LINE__, buf);          /* node of 64 */

	ctl_bad(__LINE__, "");
	ctl_bad(__LINE__, "end");
	ctl_bad(__LINE__, "end ");
	ctl_bad(__LINE__, "end node1");
	ctl_bad(__LINE__, "end node1 ");
	ctl_bad(__LINE__, "end node1 abc extra");
	ctl_bad(__LINE__, "end  node1 abc");
	ctl_bad(__LINE__, " end node1 abc");
	ctl_bad(__LINE__, "END node1 abc");
	ctl_bad(__LINE__, "end * abc");             /* one node only */
	ctl_bad(__LINE__, "end node1 ../abc");
	ctl_bad(__LINE__, "end node1 abc;DROP");
	ctl_bad(__LINE__, "end node1 abc\n");
	ctl_bad(__LINE__, "end node1\tabc");
	ctl_bad(__LINE__, "end n\xc3\xa9 abc");
	ctl_bad(__LINE__, "cut * 0 block");
	ctl_bad(__LINE__, "cut * 007x block");
	ctl_bad(__LINE__, "cut * 007 block");
	ctl_bad(__LINE__, "cut * -1 block");
	ctl_bad(__LINE__, "cut * +1 block");
	ctl_bad(__LINE__, "cut * 1234567890123456789 block");
	ctl_bad(__LINE__, "cut * 1 Block");
	ctl_bad(__LINE__, "cut * 1 unblock");
	ctl_bad(__LINE__, "cut * 1");
	ctl_bad(__LINE__, "cut * 1 block x");
	ctl_bad(__LINE__, "cut ** 1 block");
	ctl_bad(__LINE__, "cut node/1 1 block");
	ctl_bad(__LINE__, "kill node1 abc");

	/* at most PAYLOAD_MAX - 1 bytes */
	memset(buf, 'a', sizeof(buf) - 1);
	buf[sizeof(buf) - 1] = '\0';
	memcpy(buf, "end n ", 6);
	ctl_bad(__LINE__, buf);

	CHECK(api_ctl_parse(NULL, "end a b") == EINVAL);
	CHECK(api_ctl_parse(&m, NULL) == EINVAL);

	CHECK(api_node_valid("a", 1));
	CHECK(!api_node_valid("", 0));
	CHECK(!api_node_valid("a b", 3));
	CHECK(api_call_id_valid("0123456789abcdef", 16));
	CHECK(!api_call_id_valid("x%20", 4));
}


/* read text whole: the records as "a|b;c|d;" ("!;" for a bad one) and
   the lines they start on "1,3," */
static void csv_read(int line, const char *text, const char *want,
		     const char *wlines)
{
	char buf[256], got[256] = "", lines[64] = "";
	struct api_csv rd;
	int err;

	str_ncpy(buf, text, sizeof(buf));
	api_csv_init(&rd, buf);

	for (;;) {
		char *cellv[4];
		unsigned n = 0, i;
		uint32_t l = 0;

		err = api_csv_next(&rd, cellv, 4, &n, &l);
		if (err == ENOENT)
			break;
		if (err)
			strcat(got, "!;");
		for (i = 0; !err && i < n; i++) {
			strcat(got, cellv[i]);
			strcat(got, i + 1 < n ? "|" : ";");
		}
		(void)re_snprintf(lines + strlen(lines),
				  sizeof(lines) - strlen(lines), "%u,", l);
	}

	check_at(__FILE__, line, !strcmp(got, want), got);
	check_at(__FILE__, line, !strcmp(lines, wlines), lines);
}


static void csv_write(int line, const char *s, bool guard, const char *want)
{
	struct mbuf *mb = mbuf_alloc(64);
	char out[128] = "";

	check_at(__FILE__, line, mb && !api_csv_cell(mb, s, guard), s);
	if (mb)
		(void)re_snprintf(out, sizeof(out), "%b", mb->buf, mb->end);
	check_at(__FILE__, line, !strcmp(out, want), out);
	mem_deref(mb);
}


static void test_csv(void)
{
	csv_read(__LINE__, "a,b\n1,2\n", "a|b;1|2;", "1,2,");
	csv_read(__LINE__, "a,b\r\n\r\n 1 , 2 \r\n", "a|b;1|2;", "1,3,");
	csv_read(__LINE__, "x\n\"q,\"\"z\"\"\",\"two\nlines\"\ny\n",
		 "x;q,\"z\"|two\nlines;y;", "1,2,4,");
	csv_read(__LINE__, "a,,\n", "a||;", "1,");
	csv_read(__LINE__, "last", "last;", "1,");
	csv_read(__LINE__, "ok\n\"open\n", "ok;!;", "1,2,");
	csv_read(__LINE__, "\"a\"b,c\nok\n", "!;ok;", "1,2,");
	csv_read(__LINE__, "1,2,3,4,5\nok\n", "!;ok;", "1,2,");

	csv_write(__LINE__, "plain", true, "plain");
	csv_write(__LINE__, NULL, true, "");
	csv_write(__LINE__, "a,b", false, "\"a,b\"");
	csv_write(__LINE__, "say \"hi\"", false, "\"say \"\"hi\"\"\"");
	csv_write(__LINE__, "two\nlines", false, "\"two\nlines\"");
	csv_write(__LINE__, "=1+2", true, "'=1+2");
	csv_write(__LINE__, "=1+2", false, "=1+2");
	csv_write(__LINE__, "+4420", true, "'+4420");
	csv_write(__LINE__, "-x", true, "'-x");
	csv_write(__LINE__, "@SUM(A1)", true, "'@SUM(A1)");
	csv_write(__LINE__, "\tx", true, "\"'\tx\"");
	csv_write(__LINE__, "=a,b", true, "\"'=a,b\"");
}


/* the event streams' bounded buffers and the text/event-stream form */
static void test_events(void)
{
	struct api_evbuf b;
	struct mbuf *mb = mbuf_alloc(256);
	struct odict *od = NULL;
	uint8_t out[32];
	size_t n;

	CHECK(api_evbuf_init(&b, 0) == EINVAL);
	CHECK(api_evbuf_init(&b, 16) == 0);
	CHECK(api_evbuf_put(&b, (const uint8_t *)"0123456789", 10) == 0);
	CHECK(api_evbuf_len(&b) == 10);

	/* all or nothing: 7 more do not fit in 6 free bytes */
	CHECK(api_evbuf_put(&b, (const uint8_t *)"abcdefg", 7) == ENOSPC);
	CHECK(api_evbuf_len(&b) == 10);
	CHECK(api_evbuf_put(&b, (const uint8_t *)"abcdef", 6) == 0);
	CHECK(api_evbuf_len(&b) == 16);
	CHECK(api_evbuf_put(&b, (const uint8_t *)"x", 1) == ENOSPC);

	/* read part, then the free room at the front is used again */
	n = api_evbuf_get(&b, out, 4);
	CHECK(n == 4 && !memcmp(out, "0123", 4));
	CHECK(api_evbuf_put(&b, (const uint8_t *)"WXYZ", 4) == 0);
	n = api_evbuf_get(&b, out, sizeof(out));
	CHECK(n == 16 && !memcmp(out, "456789abcdefWXYZ", 16));
	CHECK(api_evbuf_len(&b) == 0);
	CHECK(api_evbuf_get(&b, out, sizeof(out)) == 0);
	api_evbuf_reset(&b);
	CHECK(b.p == NULL && b.cap == 0);
	CHECK(api_evbuf_put(&b, (const uint8_t *)"x", 1) == EINVAL);

	/* one event: id, type, the JSON on one data line, a blank line */
	CHECK(mb != NULL);
	CHECK(odict_alloc(&od, 4) == 0);
	if (mb && od) {
		CHECK(odict_entry_add(od, "id", ODICT_STRING, "a\nb") == 0);
		CHECK(odict_entry_add(od, "n", ODICT_INT, (int64_t)3) == 0);
		CHECK(api_event_encode(mb, 7, "call_new", od) == 0);
		CHECK(mb->end == strlen("id: 7\nevent: call_new\n"
					"data: {\"id\":\"a\\nb\",\"n\":3}\n\n"));
		CHECK(!memcmp(mb->buf, "id: 7\nevent: call_new\n"
			      "data: {\"id\":\"a\\nb\",\"n\":3}\n\n",
			      mb->end));
		/* a type that would break the framing is refused */
		mbuf_reset(mb);
		CHECK(api_event_encode(mb, 8, "x\ndata: y", od) == EINVAL);
		CHECK(api_event_encode(mb, 8, "", od) == EINVAL);
		CHECK(api_event_encode(mb, 8, "stats", NULL) == EINVAL);
		CHECK(mb->end == 0);
	}
	mem_deref(od);
	mem_deref(mb);

	/* the page is compiled in, with types and tags */
	CHECK(api_asset_find("") != NULL);
	CHECK(api_asset_find("") == api_asset_find("index.html"));
	CHECK(api_asset_find("console.js") != NULL &&
	      !strncmp(api_asset_find("console.js")->ctype,
		       "text/javascript", 15));
	CHECK(api_asset_find("console.css") != NULL &&
	      api_asset_find("console.css")->etag[0] == '"');
	CHECK(api_asset_find("../api.h") == NULL);
	CHECK(api_asset_find(NULL) == NULL);
}


int main(void)
{
	int err = libre_init();

	if (err)
		return 1;

	test_money();
	test_time();
	test_routes();
	test_control();
	test_csv();
	test_events();

	libre_close();

	return check_report(NULL);
}
