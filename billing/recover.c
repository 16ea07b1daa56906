/**
 * @file recover.c  Settle the calls a crashed run of this node left behind
 *
 * At start, every live_calls row of this node belongs to a previous run
 * (the recovery query is queued before the first authorisation can be).
 * Each is settled with reason 'recovered'.  A call is answered if the
 * spool has its answer record (durable within a group commit of the
 * answer), else if the database has its answer time (heartbeat).  It is
 * charged from its answer up to the last moment the node was known to
 * be alive: the latest of the spool's last tick (about a second before
 * the crash), the node's heartbeat and the row's own last reservation;
 * at least one second, rounded up to the rate's increments, never
 * beyond what its reservation pays for.  The rest of the reservation
 * goes back.  tg_settle is idempotent on the call id, so a call whose
 * settlement was also in the spool is settled once.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <libpq-fe.h>
#include "billing_int.h"


static const char stmt_recover[] = "tg_recover";

enum { RECOVER_RETRY_MS = 1000 };


int recover_register(struct db *db)
{
	return db_prepare(db, stmt_recover,
			  "SELECT l.call_id, l.account_id, l.caller, l.callee,"
			  " l.gateway,"
			  " (extract(epoch FROM l.setup_at) * 1000)::bigint,"
			  " coalesce((extract(epoch FROM l.answer_at)"
			  " * 1000)::bigint, 0),"
			  " (extract(epoch FROM CASE WHEN t.call_id IS NULL"
			  " THEN GREATEST(l.seen_at, n.seen_at)"
			  " ELSE t.alive_at END) * 1000)::bigint,"
			  " l.reserved, coalesce(r.id, 0),"
			  " coalesce(r.connect_fee, 0),"
			  " coalesce(r.price_per_minute, 0),"
			  " coalesce(r.initial_increment, 1),"
			  " coalesce(r.subsequent_increment, 1), t.node"
			  " FROM live_calls l"
			  " LEFT JOIN nodes n ON n.name = l.node"
			  " LEFT JOIN node_takeovers t ON t.call_id = l.call_id"
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


static bool answer_cmp(struct le *le, void *arg)
{
	const struct spool_answer *a = le->data;

	return !strcmp(a->id, arg);
}


static const struct spool_answer *answer_find(const struct billing *bl,
					      const char *id)
{
	return list_ledata(hash_lookup(bl->answers, hash_joaat_str(id),
				       answer_cmp, (void *)id));
}


/**
 * What a recovered call costs: answered at answer_ms, the node last alive
 * at alive_ms, charged at least 1 s, rounded up to the increments of the
 * rate, never beyond what reserved pays for
 *
 * @return seconds charged (0 if not answered or no rate)
 */
uint64_t recover_seconds(const struct rate *rate, int64_t reserved,
			 int64_t answer_ms, int64_t alive_ms)
{
	int64_t funded;
	uint64_t d;

	if (answer_ms <= 0 || !rate->id)
		return 0;

	d = alive_ms > answer_ms ?
		rate_seconds((uint64_t)(alive_ms - answer_ms)) : 0;
	if (d < 1)
		d = 1;

	funded = rate_affordable(rate, reserved);
	if (funded < 0)
		funded = 0;
	if (d > (uint64_t)funded)
		d = (uint64_t)funded;

	return d;
}


/**
 * Settle one call of a dead run (RECOVER_COLS columns: those of the
 * recovery query and of tg_takeover).  Column 14 names the node a call
 * was taken over from (NULL: a call of this node's last run): such a
 * call's last moment alive is that node's, and this node's spool knows
 * nothing of it.
 */
void recover_row(struct billing *bl, const struct pg_result *pres, int row)
{
	const PGresult *res = (const PGresult *)pres;
	char billeds[24], costs[24], end[24], answers[24];
	const char *v[SETTLE_NPARAMS] = { NULL };
	const char *id = PQgetvalue(res, row, 0);
	const bool taken = !PQgetisnull(res, row, 14);
	const struct spool_answer *sa = taken ? NULL : answer_find(bl, id);
	int64_t answer = i64(res, row, 6), seen = i64(res, row, 7);
	int64_t reserved = i64(res, row, 8), cost = 0, alive;
	uint64_t billed = 0, d = 0;
	struct rate rate;
	struct settle *st;
	int err;

	rate.id               = i64(res, row, 9);
	rate.connect_fee      = i64(res, row, 10);
	rate.price_per_minute = i64(res, row, 11);
	rate.initial          = (uint32_t)i64(res, row, 12);
	rate.subsequent       = (uint32_t)i64(res, row, 13);

	/* the spool knows answers the heartbeat did not carry yet */
	if (sa && sa->answer_ms)
		answer = (int64_t)sa->answer_ms;

	alive = seen;
	if (!taken && (int64_t)bl->last_tick > alive)
		alive = (int64_t)bl->last_tick;
	if (sa && (int64_t)sa->alive_ms > alive)
		alive = (int64_t)sa->alive_ms;

	d = recover_seconds(&rate, reserved, answer, alive);
	if (answer > 0 && rate.id) {
		err = rate_call(&cost, &billed, &rate, d);
		if (err || cost > reserved) {
			tlog_err(id, "billing: recovery cannot rate %llu s",
				 (unsigned long long)d);
			cost = 0;
			billed = 0;
		}
	}

	(void)re_snprintf(billeds, sizeof(billeds), "%llu",
			  (unsigned long long)billed);
	(void)re_snprintf(costs, sizeof(costs), "%lld", (long long)cost);
	(void)re_snprintf(answers, sizeof(answers), "%lld",
			  (long long)(answer > 0 ? answer : 0));
	(void)re_snprintf(end, sizeof(end), "%lld", (long long)
			  (answer > 0 ? answer + (int64_t)d * 1000 : alive));

	v[0]  = id;
	v[1]  = PQgetvalue(res, row, 1);
	v[2]  = PQgetvalue(res, row, 2);
	v[3]  = PQgetvalue(res, row, 3);
	v[4]  = PQgetisnull(res, row, 4) ? NULL : PQgetvalue(res, row, 4);
	v[5]  = PQgetvalue(res, row, 5);
	v[6]  = answers;
	v[7]  = end;
	v[8]  = billeds;
	v[9]  = costs;
	v[10] = answer > 0 ? "200" : "500";
	v[11] = "tollgate";
	v[12] = "recovered";
	v[13] = NULL;   /* the media statistics died with the node */

	tlog_info(id, "billing: recovering a call of account %s%s%s%s: "
		  "%llu s billed, cost %lld of %lld reserved", v[1],
		  taken ? " taken over from node " : "",
		  taken ? PQgetvalue(res, row, 14) : "",
		  sa ? " (answer from the spool)" : "",
		  (unsigned long long)billed, (long long)cost,
		  (long long)reserved);

	err = settle_alloc(&st, bl, v);
	if (err) {
		tlog_err(id, "billing: recovery: %m", err);
		return;
	}

	++bl->st.recovered;
	billing_settle_queue(bl, st);
}


/* the last run's answers are settled or were not in live_calls */
static bool answer_forget(struct le *le, void *arg)
{
	struct billing *bl = arg;
	struct spool_answer *a = le->data;

	spool_forget(bl->spool, a->id);

	return false;
}


static void recover_retry(void *arg)
{
	struct billing *bl = arg;

	if (recover_start(bl))
		tlog_err(NULL, "billing: cannot queue the recovery of the "
			 "last run's calls");
}


static void recover_handler(int err, const struct pg_result *pres,
			    void *arg)
{
	const PGresult *res = (const PGresult *)pres;
	struct billing *bl = arg;
	int i, n;

	if (err && err != EPROTO) {
		/* a statement timeout, a lost connection: try again */
		tlog_warn(NULL, "billing: cannot read the live calls left by "
			  "the last run: %m; trying again in %u ms", err,
			  RECOVER_RETRY_MS);
		tmr_start(&bl->tmr_rec, RECOVER_RETRY_MS, recover_retry, bl);
		return;
	}

	if (err || PQnfields(res) != RECOVER_COLS) {
		tlog_err(NULL, "billing: cannot read the live calls left by "
			 "the last run: %m; they stay for the next start",
			 err ? err : EPROTO);
		bl->rec_done = true;
		return;
	}

	bl->rec_done = true;

	n = PQntuples(res);
	if (n)
		tlog_warn(NULL, "billing: %d calls of node %s left by the "
			  "last run: settling them", n, bl->cfg->node_name);

	for (i = 0; i < n; i++)
		recover_row(bl, pres, i);

	(void)hash_apply(bl->answers, answer_forget, bl);
	hash_flush(bl->answers);
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
