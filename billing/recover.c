/**
 * @file recover.c  Settle the calls a crashed run of this node left behind
 *
 * At start, every live_calls row of this node belongs to a previous run
 * (the recovery query is queued before the first authorisation can be).
 * Each is settled with reason 'recovered': an answered call is charged
 * from its answer up to the last moment the node was known to be up (the
 * later of the node's heartbeat and the row's own last reservation),
 * never beyond what it had reserved; the rest of the reservation goes
 * back.  tg_settle is idempotent on the call id, so a call whose
 * settlement was also in the spool is settled once.
 */

#include <stdlib.h>
#include <string.h>
#include <libpq-fe.h>
#include "billing_int.h"


static const char stmt_recover[] = "tg_recover";

enum { RECOVER_COLS = 14 };


int recover_register(struct db *db)
{
	return db_prepare(db, stmt_recover,
			  "SELECT l.call_id, l.account_id, l.caller, l.callee,"
			  " l.gateway,"
			  " (extract(epoch FROM l.setup_at) * 1000)::bigint,"
			  " coalesce((extract(epoch FROM l.answer_at)"
			  " * 1000)::bigint, 0),"
			  " (extract(epoch FROM GREATEST(l.seen_at,"
			  " n.seen_at)) * 1000)::bigint,"
			  " l.reserved, coalesce(r.id, 0),"
			  " coalesce(r.connect_fee, 0),"
			  " coalesce(r.price_per_minute, 0),"
			  " coalesce(r.initial_increment, 1),"
			  " coalesce(r.subsequent_increment, 1)"
			  " FROM live_calls l"
			  " LEFT JOIN nodes n ON n.name = l.node"
			  " LEFT JOIN rates r ON r.id = l.rate_id"
			  " WHERE l.node = $1"
			  " AND l.setup_at < to_timestamp($2::bigint / 1000.0)"
			  " ORDER BY l.setup_at", 2);
}


static int64_t i64(const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return 0;

	return strtoll(PQgetvalue(res, row, col), NULL, 10);
}


static void recover_row(struct billing *bl, const PGresult *res, int row)
{
	char billeds[24], costs[24], end[24];
	const char *v[SETTLE_NPARAMS];
	int64_t answer = i64(res, row, 6), seen = i64(res, row, 7);
	int64_t reserved = i64(res, row, 8), cost = 0, funded;
	uint64_t billed = 0, d = 0;
	struct rate rate;
	struct settle *st;
	int err;

	rate.id               = i64(res, row, 9);
	rate.connect_fee      = i64(res, row, 10);
	rate.price_per_minute = i64(res, row, 11);
	rate.initial          = (uint32_t)i64(res, row, 12);
	rate.subsequent       = (uint32_t)i64(res, row, 13);

	if (answer > 0 && rate.id) {
		d = seen > answer ? rate_seconds((uint64_t)(seen - answer)) : 0;

		funded = rate_affordable(&rate, reserved);
		if (funded < 0)
			funded = 0;
		if (d > (uint64_t)funded)
			d = (uint64_t)funded;

		err = rate_call(&cost, &billed, &rate, d);
		if (err || cost > reserved) {
			tlog_err(PQgetvalue(res, row, 0), "billing: recovery "
				 "cannot rate %llu s", (unsigned long long)d);
			cost = 0;
			billed = 0;
		}
	}

	(void)re_snprintf(billeds, sizeof(billeds), "%llu",
			  (unsigned long long)billed);
	(void)re_snprintf(costs, sizeof(costs), "%lld", (long long)cost);
	(void)re_snprintf(end, sizeof(end), "%lld", (long long)
			  (answer > 0 ? answer + (int64_t)d * 1000 : seen));

	v[0]  = PQgetvalue(res, row, 0);
	v[1]  = PQgetvalue(res, row, 1);
	v[2]  = PQgetvalue(res, row, 2);
	v[3]  = PQgetvalue(res, row, 3);
	v[4]  = PQgetisnull(res, row, 4) ? NULL : PQgetvalue(res, row, 4);
	v[5]  = PQgetvalue(res, row, 5);
	v[6]  = PQgetvalue(res, row, 6);
	v[7]  = end;
	v[8]  = billeds;
	v[9]  = costs;
	v[10] = answer > 0 ? "200" : "500";
	v[11] = "tollgate";
	v[12] = "recovered";
	v[13] = NULL;   /* the media statistics died with the node */

	tlog_info(v[0], "billing: recovering a call of account %s: %llu s "
		  "billed, cost %lld of %lld reserved", v[1],
		  (unsigned long long)billed, (long long)cost,
		  (long long)reserved);

	err = settle_alloc(&st, bl, v);
	if (err) {
		tlog_err(v[0], "billing: recovery: %m", err);
		return;
	}

	++bl->st.recovered;
	billing_settle_queue(bl, st);
}


static void recover_handler(int err, const struct pg_result *pres,
			    void *arg)
{
	const PGresult *res = (const PGresult *)pres;
	struct billing *bl = arg;
	int i, n;

	if (err || PQnfields(res) != RECOVER_COLS) {
		tlog_err(NULL, "billing: cannot read the live calls left by "
			 "the last run: %m; they stay for the next start",
			 err ? err : EPROTO);
		return;
	}

	n = PQntuples(res);
	if (n)
		tlog_warn(NULL, "billing: %d calls of node %s left by the "
			  "last run: settling them", n, bl->cfg->node_name);

	for (i = 0; i < n; i++)
		recover_row(bl, res, i);
}


/**
 * Queue the recovery of the calls this node left, those set up before
 * this run began: it may read live_calls after calls of this run have
 * been authorised (it waits for the spool to be written first)
 */
int recover_start(struct billing *bl)
{
	char start[24];
	const char *v[2];
	int err;

	(void)re_snprintf(start, sizeof(start), "%llu",
			  (unsigned long long)bl->start_ms);
	v[0] = bl->cfg->node_name;
	v[1] = start;

	err = db_exec(&bl->recq, bl->db, stmt_recover, 2, v, 0, true,
		      recover_handler, bl);
	if (!err)
		++bl->st.q_recover;

	return err;
}
