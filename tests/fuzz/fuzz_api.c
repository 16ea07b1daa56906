/**
 * @file fuzz_api.c  Fuzz target: REST API request bodies
 *
 * The first byte picks what the rest is:
 *
 *   0  POST  /v1/accounts             body
 *   1  PATCH /v1/accounts/7           body
 *   2  POST  /v1/accounts/7/credit    body
 *   3  POST  /v1/rates                body
 *   4  POST  /v1/gateways             body
 *   5  POST  /v1/routes               body
 *   6  a money string: parsed, printed and parsed again to the same value
 *   7  an RFC 3339 time of a query argument
 *   8  a control message between nodes (NOTIFY tollgate_control): what
 *      parses has valid fields and prints back to the same payload
 *
 * A body runs through the real handler, JSON decoding and validation
 * included, up to the database query, which fails here (no database): a
 * request is answered either way.
 */

#include <stdlib.h>
#include <string.h>
#include "api_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool ready;


static void init(void)
{
	tlog_set_level(-1);
	ready = true;
}


static void body(api_h *h, enum api_meth meth, const uint8_t *data,
		 size_t size)
{
	struct api_route route;
	struct api api;
	struct api_req req;

	memset(&route, 0, sizeof(route));
	memset(&api, 0, sizeof(api));
	memset(&req, 0, sizeof(req));
	route.meths = (unsigned)meth;
	route.h = h;
	req.route = &route;
	api.realm = "tollgate";
	req.api = &api;
	req.meth = meth;
	pl_set_str(&req.id, "7");

	req.body = mbuf_alloc(size + 1);
	if (!req.body)
		return;
	(void)mbuf_write_mem(req.body, data, size);

	h(&req);

	/* every request gets an answer, here a refusal or "no database" */
	if (!req.resp || req.status < 400)
		abort();

	MHD_destroy_response(req.resp);
	mem_deref(req.q);
	mem_deref(req.ctx);
	mem_deref(req.body);
}


static void money(const uint8_t *data, size_t size)
{
	char *s = NULL, *printed = NULL;
	int64_t v, v2;

	s = mem_zalloc(size + 1, NULL);
	if (!s)
		return;
	memcpy(s, data, size);

	if (!api_money_parse(&v, s)) {
		if (v < 0 || re_sdprintf(&printed, "%H", api_money_print, &v))
			abort();
		if (api_money_parse(&v2, printed) || v2 != v)
			abort();
	}

	mem_deref(printed);
	mem_deref(s);
}


static void time_arg(const uint8_t *data, size_t size)
{
	char *s = mem_zalloc(size + 1, NULL);

	if (!s)
		return;
	memcpy(s, data, size);
	(void)api_time_valid(s);
	mem_deref(s);
}


static void control(const uint8_t *data, size_t size)
{
	static const char *const why[] = { "block", "credit" };
	struct api_ctl_msg m;
	char *s = mem_zalloc(size + 1, NULL);
	char back[256];

	if (!s)
		return;
	memcpy(s, data, size);

	if (!api_ctl_parse(&m, s)) {
		if (m.verb == API_CTL_END)
			(void)re_snprintf(back, sizeof(back), "end %s %s",
					  m.node, m.call_id);
		else
			(void)re_snprintf(back, sizeof(back), "cut %s %lld %s",
					  m.node, (long long)m.account_id,
					  why[m.why]);

		if (m.account_id < 0 || strcmp(back, s))
			abort();
	}

	mem_deref(s);
}


/* CSV: every record read, written again and read back is the same */
static void csv(const uint8_t *data, size_t size)
{
	char *s = mem_zalloc(size + 1, NULL);
	struct mbuf *mb = mbuf_alloc(size * 2 + 16);
	struct api_csv rd;

	if (!s || !mb)
		goto out;
	memcpy(s, data, size);
	api_csv_init(&rd, s);

	for (;;) {
		char *cellv[8], *back[8];
		unsigned n = 0, m = 0, i;
		uint32_t line, line2;
		struct api_csv rd2;
		int err;

		err = api_csv_next(&rd, cellv, 8, &n, &line);
		if (err == ENOENT)
			break;
		if (err)
			continue;
		if (!n || n > 8)
			abort();
		if (n == 1 && !*cellv[0])
			continue;       /* "" alone is written as an empty line */

		mb->pos = mb->end = 0;
		for (i = 0; i < n; i++) {
			if ((i && mbuf_write_u8(mb, ',')) ||
			    api_csv_cell(mb, cellv[i], false))
				goto out;
		}
		if (mbuf_write_u8(mb, 0))
			goto out;

		api_csv_init(&rd2, (char *)mb->buf);
		if (api_csv_next(&rd2, back, 8, &m, &line2) || m != n)
			abort();
		for (i = 0; i < n; i++) {
			if (strcmp(back[i], cellv[i]))
				abort();
		}
	}

 out:
	mem_deref(mb);
	mem_deref(s);
}


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!ready)
		init();

	if (!size)
		return 0;

	switch (data[0] % 10) {

	case 0: body(api_accounts_h, API_POST, data + 1, size - 1);  break;
	case 1: body(api_account_h, API_PATCH, data + 1, size - 1);  break;
	case 2: body(api_credit_h, API_POST, data + 1, size - 1);    break;
	case 3: body(api_rates_h, API_POST, data + 1, size - 1);     break;
	case 4: body(api_gateways_h, API_POST, data + 1, size - 1);  break;
	case 5: body(api_routes_h, API_POST, data + 1, size - 1);    break;
	case 6: money(data + 1, size - 1);                           break;
	case 7: time_arg(data + 1, size - 1);                        break;
	case 9: csv(data + 1, size - 1);                             break;
	default: control(data + 1, size - 1);                        break;
	}

	return 0;
}
