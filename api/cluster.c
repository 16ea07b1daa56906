/**
 * @file cluster.c  REST API: GET /v1/calls over every node of a cluster
 *
 * The calls of every node are their live_calls rows (written by
 * tg_authorize on the node that holds the call), read in pages in the
 * order of (node, call_id) (index live_calls_page, sql/014).  A row of
 * this node is shown as the node knows it (state, money, media; calls.c);
 * a row of this node whose call is no longer in memory has ended and
 * waits for its settlement, and is left out.  Rows of other nodes carry
 * what the database knows.
 *
 * The cursor is opaque to clients: the hex of the last row's node, a dot,
 * the hex of its call id.  If the database cannot be read, the answer is
 * this node's calls with "partial": true.
 */

#include <string.h>
#include <libpq-fe.h>
#include "api_int.h"


enum { CALLS_LIMIT_DEFAULT = 100, CALLS_LIMIT_MAX = 1000,
       CURSOR_PART_MAX = 255, PAGE_TIMEOUT_MS = 2000 };

static const char stmt_page[] = "api_calls_page";

#define TIME_COL(c) \
	"to_char(" c " AT TIME ZONE 'UTC'," \
	" 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

/* columns of a page, in this order */
enum { C_ID = 0, C_NODE, C_ACCT_ID, C_ACCT, C_CALLER, C_CALLEE, C_GW,
       C_RATE, C_SETUP, C_ANSWER, C_SECONDS, C_RESERVED, C_ALIVE };


int api_cluster_register(struct db *db)
{
	return db_prepare(db, stmt_page,
			  "SELECT l.call_id, l.node, l.account_id, a.name,"
			  " l.caller, l.callee, l.gateway, l.rate_id, "
			  TIME_COL("l.setup_at") ", "
			  TIME_COL("l.answer_at") ","
			  " coalesce(extract(epoch FROM now() - l.answer_at)"
			  "::bigint, 0),"
			  " l.reserved,"
			  " " API_NODE_ALIVE
			  " FROM live_calls l"
			  " LEFT JOIN accounts a ON a.id = l.account_id"
			  " LEFT JOIN nodes n ON n.name = l.node"
			  " WHERE (l.node, l.call_id) > ($1, $2)"
			  " AND ($3::text IS NULL OR l.node = $3)"
			  " AND ($4::bigint IS NULL OR l.account_id = $4)"
			  " AND ($5::text IS NULL OR a.name = $5)"
			  " ORDER BY l.node, l.call_id"
			  " LIMIT $6::integer", 6);
}


struct page {
	char *account;        /**< owned; name filter, or NULL          */
	int64_t account_id;   /**< id filter, or 0                      */
	char *node;           /**< owned; node= filter, or NULL         */
	int64_t limit;
	char cnode[CURSOR_PART_MAX + 1]; /**< the cursor's node, or ""   */
	char cid[CURSOR_PART_MAX + 1];   /**< the cursor's call id       */
};


static void page_destructor(void *arg)
{
	struct page *pg = arg;

	mem_deref(pg->account);
	mem_deref(pg->node);
}


static int hex_decode(char *dst, size_t sz, const char *p, size_t len)
{
	size_t i;

	if (!len || len % 2 || len / 2 >= sz || len / 2 > CURSOR_PART_MAX)
		return EINVAL;

	for (i = 0; i < len; i += 2) {
		char hx[3] = { p[i], p[i + 1], 0 };
		char *end;
		long v;

		if (!strchr("0123456789abcdef", hx[0]) ||
		    !strchr("0123456789abcdef", hx[1]))
			return EINVAL;

		v = strtol(hx, &end, 16);
		if (v == 0)
			return EINVAL;
		dst[i / 2] = (char)v;
	}
	dst[len / 2] = '\0';

	return text_utf8_valid(dst, len / 2) ? 0 : EINVAL;
}


/* "HEX(node).HEX(call_id)" as next_cursor gave it */
static int cursor_parse(const char *s, char *node, size_t nsz, char *id,
			size_t isz)
{
	const char *dot = strchr(s, '.');

	if (!dot)
		return EINVAL;

	if (hex_decode(node, nsz, s, (size_t)(dot - s)))
		return EINVAL;

	return hex_decode(id, isz, dot + 1, strlen(dot + 1));
}


struct cursor_row {
	const PGresult *r;
	int row;
};


static int cursor_print(struct re_printf *pf, const struct cursor_row *cr)
{
	const char *node = PQgetvalue(cr->r, cr->row, C_NODE);
	const char *id = PQgetvalue(cr->r, cr->row, C_ID);
	int err = 0;

	for (; *node && !err; node++)
		err = re_hprintf(pf, "%02x", (unsigned char)*node);
	err |= re_hprintf(pf, ".");
	for (; *id && !err; id++)
		err = re_hprintf(pf, "%02x", (unsigned char)*id);

	return err;
}


static int col_str(struct odict *od, const char *key, const PGresult *r,
		   int row, int col)
{
	if (PQgetisnull(r, row, col))
		return odict_entry_add(od, key, ODICT_NULL);

	return odict_entry_add(od, key, ODICT_STRING, PQgetvalue(r, row, col));
}


/* a call of another node, as the database knows it */
static int row_odict(struct odict **odp, const PGresult *r, int row)
{
	struct odict *od;
	int err;

	err = odict_alloc(&od, 32);
	if (err)
		return err;

	err  = col_str(od, "id", r, row, C_ID);
	err |= col_str(od, "node", r, row, C_NODE);
	err |= odict_entry_add(od, "node_alive", ODICT_BOOL,
			       !strcmp(PQgetvalue(r, row, C_ALIVE), "t"));
	err |= odict_entry_add(od, "sip_call_id", ODICT_NULL);
	err |= col_str(od, "account", r, row, C_ACCT);
	err |= api_add_col(od, "account_id", r, row, C_ACCT_ID, 'i');
	err |= col_str(od, "caller", r, row, C_CALLER);
	err |= col_str(od, "callee", r, row, C_CALLEE);
	err |= col_str(od, "gateway", r, row, C_GW);
	err |= odict_entry_add(od, "state", ODICT_NULL);
	err |= col_str(od, "setup_at", r, row, C_SETUP);
	err |= col_str(od, "answer_at", r, row, C_ANSWER);
	err |= api_add_col(od, "seconds", r, row, C_SECONDS, 'i');
	err |= api_add_col(od, "reserved", r, row, C_RESERVED, 'm');
	err |= odict_entry_add(od, "spent", ODICT_NULL);
	err |= odict_entry_add(od, "seconds_left", ODICT_NULL);
	err |= api_add_col(od, "rate_id", r, row, C_RATE, 'i');
	err |= odict_entry_add(od, "media", ODICT_NULL);

	if (err)
		mem_deref(od);
	else
		*odp = od;

	return err ? ENOMEM : 0;
}


/* the database cannot be read: this node's calls, if node= lets them */
static void fallback(struct api_req *req, const struct page *pg)
{
	const char *self = req->api->node;
	struct odict *od = NULL, *arr = NULL;
	int err;

	/* the cluster's order is (node, id): this node's calls are the
	 * part of it between the other nodes' */
	if ((!pg->node || !strcmp(pg->node, self)) &&
	    strcmp(pg->cnode, self) <= 0) {
		api_calls_local(req, pg->account, pg->account_id, true,
				strcmp(pg->cnode, self) ? NULL : pg->cid,
				(unsigned)pg->limit);
		return;
	}

	err  = odict_alloc(&od, 8);
	err |= odict_alloc(&arr, 1);
	if (!err) {
		err  = odict_entry_add(od, "calls", ODICT_ARRAY, arr);
		err |= odict_entry_add(od, "count", ODICT_INT, (int64_t)0);
		err |= odict_entry_add(od, "next_cursor", ODICT_NULL);
		err |= odict_entry_add(od, "partial", ODICT_BOOL, true);
	}

	if (err)
		api_error(req, 500, NULL, "out of memory");
	else
		api_reply(req, 200, od);

	mem_deref(arr);
	mem_deref(od);
}


static void page_done(int err, const struct pg_result *res, void *arg)
{
	struct api_req *req = arg;
	const struct page *pg = req->ctx;
	const PGresult *r = (const PGresult *)res;
	struct mbuf *mb = NULL;
	char *cursor = NULL;
	int rows, i, shown;
	unsigned n = 0;

	if (err) {
		tlog_warn(NULL, "api: calls of the cluster not read (%m): "
			  "this node's calls only", err);
		fallback(req, pg);
		return;
	}

	rows = PQntuples(r);
	shown = rows > pg->limit ? (int)pg->limit : rows;

	/* written straight as JSON: this node's calls by api_call_json(),
	 * the others' as their odict */
	mb = mbuf_alloc(1024 + 512 * (size_t)shown);
	err = mb ? mbuf_printf(mb, "{\"calls\":[") : ENOMEM;
	for (i = 0; i < shown && !err; i++) {
		const char *node = PQgetvalue(r, i, C_NODE);

		if (!strcmp(node, req->api->node)) {
			struct b2bua_call *call = b2bua_call_find(
				req->api->b2bua, PQgetvalue(r, i, C_ID));
			struct js_call jc = { req->api, call };

			if (!call ||
			    b2bua_call_state(call) == B2BUA_ST_CLOSED)
				continue;

			err = mbuf_printf(mb, "%s%H", n ? "," : "",
					  api_call_json, &jc);
		}
		else {
			struct odict *c = NULL;

			err = row_odict(&c, r, i);
			if (!err)
				err = mbuf_printf(mb, "%s%H", n ? "," : "",
						  json_encode_odict, c);
			mem_deref(c);
		}
		++n;
	}

	if (!err && rows > pg->limit) {
		struct cursor_row cr = { r, shown - 1 };

		err = re_sdprintf(&cursor, "%H", cursor_print, &cr);
	}

	if (!err)
		err = mbuf_printf(mb, "],\"count\":%u,\"next_cursor\":", n);
	if (!err)
		err = cursor ? mbuf_printf(mb, "\"%s\"", cursor) :
			mbuf_printf(mb, "null");
	if (!err)
		err = mbuf_printf(mb, ",\"partial\":false}");

	if (err)
		api_error(req, 500, NULL, "cannot list calls (%m)", err);
	else
		api_reply_text(req, 200, "application/json",
			       (const char *)mb->buf, mb->end);

	mem_deref(cursor);
	mem_deref(mb);
}


/**
 * GET /v1/calls of every node: limit, cursor, node and the account filter
 * (a name, or an id when account_id is not 0)
 */
void api_calls_cluster(struct api_req *req, const char *account,
		       int64_t account_id)
{
	const char *cur = api_arg(req, "cursor");
	const char *node = api_arg(req, "node");
	char ids[24], lims[24];
	const char *v[6];
	struct page *pg;

	pg = mem_zalloc(sizeof(*pg), page_destructor);
	if (!pg) {
		api_error(req, 500, NULL, "out of memory");
		return;
	}
	req->ctx = pg;
	pg->limit = CALLS_LIMIT_DEFAULT;
	pg->account_id = account_id;

	if (api_arg_int(req, "limit", 1, CALLS_LIMIT_MAX, &pg->limit) ==
	    EINVAL)
		return;

	if (cur && cursor_parse(cur, pg->cnode, sizeof(pg->cnode), pg->cid,
				sizeof(pg->cid))) {
		api_error(req, 400, "cursor", "not a cursor this API gave");
		return;
	}

	if (node && !api_node_valid(node, strlen(node))) {
		api_error(req, 400, "node", "must be 1..%u of [A-Za-z0-9._-]",
			  API_NODE_MAX);
		return;
	}

	if ((node && str_dup(&pg->node, node)) ||
	    (account && str_dup(&pg->account, account))) {
		api_error(req, 500, NULL, "out of memory");
		return;
	}

	(void)re_snprintf(ids, sizeof(ids), "%lld", (long long)account_id);
	(void)re_snprintf(lims, sizeof(lims), "%lld",
			  (long long)pg->limit + 1);

	v[0] = pg->cnode;
	v[1] = pg->cid;
	v[2] = pg->node;
	v[3] = account_id ? ids : NULL;
	v[4] = account && !account_id ? pg->account : NULL;
	v[5] = lims;

	/* out of reach: no need to wait for the deadline */
	if (!db_is_up(req->api->db)) {
		fallback(req, pg);
		return;
	}

	req->q = mem_deref(req->q);
	if (db_exec(&req->q, req->api->db, stmt_page, 6, v, PAGE_TIMEOUT_MS,
		    true, page_done, req))
		fallback(req, pg);
}
