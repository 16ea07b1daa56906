/**
 * @file engine.c  Prepaid billing: authorise, reserve, cut off, settle
 *
 * The engine hears about calls only through the B2BUA's call events and
 * its authorisation hook:
 *
 *   authorise  one round trip (tg_authorize): account, rate, concurrent
 *              calls, first increment; reserves the first interval.
 *   answer     the cut-off timer is armed at the exact millisecond the
 *              reserved money ends (rate_affordable() of the reservation,
 *              counted from answer on the monotonic clock).  Before it
 *              ends, tg_reserve asks for the next interval; what it grants
 *              moves the timer.  A grant that falls short marks the call
 *              exhausted: its cut-off is final unless the account changes.
 *   cut-off    BYE on both legs with Reason Q.850 cause 16; the account's
 *              calls still ringing are CANCELled (487).
 *   end        one round trip (tg_settle): CDR, cost, refund.  Each
 *              settlement is durable in the spool file before it is sent,
 *              and waits in the database client's queue while the
 *              database is down.  Answer times go to the spool as well,
 *              so that a crash cannot make a call that talked free.
 *
 * A call shorter than one reservation interval costs two round trips.
 * This file: accounts, calls, events, account changes, the engine itself;
 * authorize.c: authorisation, reservations, cut-off; settle.c: settlement
 * and heartbeat.
 * The calls of one account hang together (hash by account id), so that a
 * top-up (NOTIFY from the database, or billing_account_changed()) re-arms
 * every exhausted call of the account at once.
 */

#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <libpq-fe.h>
#include "billing_int.h"


/* ------------------------------------------------------------- helpers */

int64_t billing_col_i64(const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return 0;

	return strtoll(PQgetvalue(res, row, col), NULL, 10);
}


const char *billing_col_str(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? "" : PQgetvalue(res, row, col);
}


/* ------------------------------------------------------------- accounts */

static void bacct_destructor(void *arg)
{
	struct bacct *a = arg;

	hash_unlink(&a->he);
}


static bool bacct_cmp(struct le *le, void *arg)
{
	const struct bacct *a = le->data;

	return a->id == *(const int64_t *)arg;
}


struct bacct *bacct_find(const struct billing *bl, int64_t id)
{
	return list_ledata(hash_lookup(bl->accts, (uint32_t)id, bacct_cmp,
				       &id));
}


void bacct_balance(struct bacct *a, const PGresult *res, int col)
{
	if (!a || PQgetisnull(res, 0, col))
		return;

	a->balance = billing_col_i64(res, 0, col);
	a->balance_known = true;
}


/* the account of a call, created on first use; returns a new reference */
static struct bacct *bacct_get(struct billing *bl, int64_t id)
{
	struct bacct *a = bacct_find(bl, id);

	if (a)
		return mem_ref(a);

	a = mem_zalloc(sizeof(*a), bacct_destructor);
	if (!a)
		return NULL;

	a->id = id;
	list_init(&a->calls);
	hash_append(bl->accts, (uint32_t)id, &a->he, a);

	return a;
}


/* ---------------------------------------------------------------- calls */

static void bcall_destructor(void *arg)
{
	struct bcall *bc = arg;

	tmr_cancel(&bc->tmr_cut);
	tmr_cancel(&bc->tmr_refill);
	tmr_cancel(&bc->tmr_low);
	mem_deref(bc->q);

	if (bc->call)
		b2bua_call_set_udata(bc->call, bc->bl->slot, NULL);

	list_unlink(&bc->le);
	mem_deref(bc->acct);
	mem_deref(bc->caller);
	mem_deref(bc->callee);
	mem_deref(bc->media);
}


int bcall_alloc(struct bcall **bcp, struct billing *bl,
		       struct b2bua_call *call)
{
	struct bcall *bc;
	int err;

	bc = mem_zalloc(sizeof(*bc), bcall_destructor);
	if (!bc)
		return ENOMEM;

	bc->bl = bl;
	bc->call = call;
	bc->account_id = b2bua_call_account_id(call);
	bc->setup_ms = b2bua_call_setup_ms(call);
	str_ncpy(bc->id, b2bua_call_id(call), sizeof(bc->id));
	tmr_init(&bc->tmr_cut);
	tmr_init(&bc->tmr_refill);
	tmr_init(&bc->tmr_low);

	/* bound for SQL: printable UTF-8 only */
	err  = billing_text_safe(&bc->caller, b2bua_call_caller(call) ?
				 b2bua_call_caller(call) : "anonymous");
	err |= billing_text_safe(&bc->callee, b2bua_call_callee(call));
	if (err) {
		err = ENOMEM;
		goto out;
	}

	bc->acct = bacct_get(bl, bc->account_id);
	if (!bc->acct) {
		err = ENOMEM;
		goto out;
	}

	list_append(&bc->acct->calls, &bc->le, bc);
	b2bua_call_set_udata(call, bl->slot, bc);

 out:
	if (err)
		mem_deref(bc);
	else
		*bcp = bc;

	return err;
}


/* --------------------------------------------------------------- events */

static void event_handler(struct b2bua_call *call, enum b2bua_event ev,
			  const struct b2bua_call_record *rec, void *arg)
{
	struct billing *bl = arg;
	struct bcall *bc = b2bua_call_udata(call, bl->slot);

	if (!bc)
		return;

	switch (ev) {

	case B2BUA_EV_ANSWERED:
		if (!bc->authorized)
			break;
		bc->answered = true;
		bc->answer_jif = tmr_jiffies();
		bc->answer_ms = b2bua_call_answer_ms(call);
		if (!bc->answer_ms)
			bc->answer_ms = b2bua_wallclock_ms();
		hb_note_answer(bl, bc);
		if (bl->spool && spool_answer(bl->spool, bc->id,
					      bc->answer_ms))
			tlog_warn(bc->id, "billing: answer time not spooled");
		bcall_arm(bc);
		break;

	case B2BUA_EV_ENDED:
	case B2BUA_EV_FAILED:
		bcall_end(bc, call, rec);
		break;

	default:
		break;
	}
}


/* ---------------------------------------------------------------- state */

static void notify_handler(int64_t account_id, void *arg)
{
	struct billing *bl = arg;

	billing_account_changed(bl, account_id);
}


static bool rearm_account(struct le *le, void *arg)
{
	struct bacct *a = le->data;
	struct le *c;
	(void)arg;

	for (c = a->calls.head; c; c = c->next) {
		struct bcall *bc = c->data;

		if (!bc->call || !bc->answered || !bc->exhausted ||
		    bc->cutting)
			continue;

		bc->exhausted = false;
		tmr_start(&bc->tmr_refill, 0, bcall_refill, bc);
	}

	return false;
}


/**
 * The account's balance, status or rate plan changed (top-up, credit
 * change): calls of the account whose money was about to end ask for
 * more at once, and their cut-off moves with what they get.
 *
 * @param bl          the billing engine
 * @param account_id  the account, or 0 for every account
 */
void billing_account_changed(struct billing *bl, int64_t account_id)
{
	struct bacct *a;

	if (!bl)
		return;

	if (!account_id) {
		(void)hash_apply(bl->accts, rearm_account, NULL);
		return;
	}

	a = bacct_find(bl, account_id);
	if (!a)
		return;

	tlog_dbg(NULL, "billing: account %lld changed", (long long)a->id);
	(void)rearm_account(&a->he, NULL);
}


/* ------------------------------------------------------------------ API */

static bool flush_acct(struct le *le, void *arg)
{
	struct bacct *a = mem_ref(le->data);
	(void)arg;

	list_flush(&a->calls);
	mem_deref(a);

	return false;
}


static void billing_destructor(void *arg)
{
	struct billing *bl = arg;
	uint32_t lost = 0;
	struct le *le;

	tmr_cancel(&bl->tmr_hb);
	bl->hbq = mem_deref(bl->hbq);
	bl->drainq = mem_deref(bl->drainq);
	tmr_cancel(&bl->tmr_rec);
	bl->recq = mem_deref(bl->recq);
	bl->leaseq = mem_deref(bl->leaseq);
	bl->takeq = mem_deref(bl->takeq);
	mem_deref(bl->instance);
	mem_deref(bl->sip_addr);
	mem_deref(bl->api_addr);
	mem_deref(bl->lock_key);

	/* the writer finishes its queue: what is pending is durable */
	bl->spool = mem_deref(bl->spool);

	for (le = bl->settlel.head; le; le = le->next) {
		const struct settle *st = le->data;

		if (!st->durable)
			++lost;
	}
	if (!list_isempty(&bl->settlel))
		tlog_warn(NULL, "billing: %u settlements not confirmed at "
			  "exit (%u of them only in memory, lost)",
			  list_count(&bl->settlel), lost);
	list_flush(&bl->settlel);

	(void)hash_apply(bl->accts, flush_acct, NULL);
	hash_flush(bl->accts);
	mem_deref(bl->accts);
	list_flush(&bl->hbl);
	list_flush(&bl->hbsent);
	hash_flush(bl->answers);
	mem_deref(bl->answers);
	mem_deref(bl->notify);
}


static int register_statements(struct db *db)
{
	int err;

	err = db_prepare(db, STMT_AUTHORIZE,
			 "SELECT result, sip_code, rate_id, connect_fee,"
			 " price_per_minute, initial_increment,"
			 " subsequent_increment, reserved, balance"
			 " FROM tg_authorize($1, $2, $3::bigint, $4, $5, $6,"
			 " $7::bigint, $8::integer)", 8);
	if (err)
		return err;

	err = db_prepare(db, STMT_RESERVE,
			 "SELECT granted, reserved, balance"
			 " FROM tg_reserve($1, $2::integer, $3::bigint)", 3);
	if (err)
		return err;

	err = db_prepare(db, STMT_SETTLE,
			 "SELECT result, refunded, balance"
			 " FROM tg_settle_class4($1, $2::bigint, $3, $4, $5,"
			 " $6::bigint, $7::bigint, $8::bigint, $9::integer,"
			 " $10::bigint, $11::integer, $12, $13, $14::jsonb,"
			 " $15, $16, $17, $18::bigint, $19::bigint)",
			 SETTLE_NPARAMS);
	if (err)
		return err;

	/*
	 * Batch forms: under load, authorisations and settlements waiting
	 * for a connection go together, one round trip and one commit for
	 * all.  Each call still runs through the same function, in account
	 * order (then call id), so that two batches, or a batch and the
	 * heartbeat (sql/005), take their row locks in one order.
	 */
	err = db_prepare_batch(db, STMT_AUTHORIZE, STMT_AUTHORIZE "_batch",
			       "SELECT u.i, t.result, t.sip_code, t.rate_id,"
			       " t.connect_fee, t.price_per_minute,"
			       " t.initial_increment, t.subsequent_increment,"
			       " t.reserved, t.balance"
			       " FROM (SELECT * FROM unnest($1::text[],"
			       " $2::text[], $3::bigint[], $4::text[],"
			       " $5::text[], $6::text[], $7::bigint[],"
			       " $8::integer[]) WITH ORDINALITY"
			       " AS u(c, n, a, cr, ce, g, s, iv, i)"
			       " ORDER BY u.a, u.c OFFSET 0) u"
			       " CROSS JOIN LATERAL tg_authorize(u.c, u.n, u.a,"
			       " u.cr, u.ce, u.g, u.s, u.iv) AS t",
			       BILLING_BATCH_MAX);
	if (err)
		return err;

	err = db_prepare_batch(db, STMT_SETTLE, STMT_SETTLE "_batch",
			       "SELECT u.i, t.result, t.refunded, t.balance"
			       " FROM (SELECT * FROM unnest($1::text[],"
			       " $2::bigint[], $3::text[], $4::text[],"
			       " $5::text[], $6::bigint[], $7::bigint[],"
			       " $8::bigint[], $9::integer[], $10::bigint[],"
			       " $11::integer[], $12::text[], $13::text[],"
			       " $14::jsonb[], $15::text[], $16::text[],"
			       " $17::text[], $18::bigint[], $19::bigint[])"
			       " WITH ORDINALITY"
			       " AS u(c, a, cr, ce, g, s, an, e, b, co, sc, h,"
			       " r, m, di, no, ca, cc, mg, i)"
			       " ORDER BY u.a, u.c OFFSET 0) u"
			       " CROSS JOIN LATERAL tg_settle_class4(u.c, u.a,"
			       " u.cr, u.ce, u.g, u.s, u.an, u.e, u.b, u.co,"
			       " u.sc, u.h, u.r, u.m, u.di, u.no, u.ca, u.cc,"
			       " u.mg) AS t",
			       BILLING_BATCH_MAX);
	if (err)
		return err;

	err = db_prepare(db, STMT_HEARTBEAT,
			 "SELECT tg_heartbeat($1, $2::text[], $3::bigint[])",
			 3);
	if (err)
		return err;

	err = db_prepare(db, STMT_NODE_DRAINING,
			 "INSERT INTO nodes (name, draining)"
			 " VALUES ($1, $2::boolean)"
			 " ON CONFLICT (name) DO UPDATE"
			 " SET draining = EXCLUDED.draining", 2);
	if (err)
		return err;

	err = recover_register(db);
	if (err)
		return err;

	return lease_register(db);
}


static void spool_entry(const char *const v[SETTLE_NPARAMS], void *arg)
{
	struct billing *bl = arg;
	struct settle *st;

	if (settle_alloc(&st, bl, v)) {
		tlog_err(v[0], "billing: bad spool entry skipped");
		return;
	}

	st->replay = true;
	++bl->replays;
	tlog_info(st->v[0], "billing: settling from the spool");
	billing_settle_queue(bl, st);
}


static void answer_destructor(void *arg)
{
	struct spool_answer *a = arg;

	hash_unlink(&a->he);
	mem_deref(a->id);
}


/* a call of the last run was answered: the recovery charges from then */
static void spool_answer_h(const char *id, uint64_t answer_ms,
			   uint64_t alive_ms, void *arg)
{
	struct billing *bl = arg;
	struct spool_answer *a;

	a = mem_zalloc(sizeof(*a), answer_destructor);
	if (!a)
		return;

	if (str_dup(&a->id, id)) {
		mem_deref(a);
		return;
	}

	a->answer_ms = answer_ms;
	a->alive_ms = alive_ms;
	hash_append(bl->answers, hash_joaat_str(id), &a->he, a);
}


static void spool_tick_h(uint64_t tick_ms, void *arg)
{
	struct billing *bl = arg;

	bl->last_tick = tick_ms;
}


static const struct spool_load_h spool_load_handlers = {
	spool_entry, spool_answer_h, spool_tick_h
};


/**
 * Start the billing engine: authorise every call of the B2BUA, follow its
 * events, settle what a previous run left (spool file, then live calls of
 * this node), listen for account changes and beat the heart.
 *
 * @param blp       where to store the engine
 * @param cfg       configuration (borrowed; node_name, reserve_interval,
 *                  low_balance_warning, heartbeat, state_dir)
 * @param db        asynchronous client (borrowed; must outlive the engine)
 * @param b2bua     the B2BUA (borrowed; the engine must be freed first)
 * @param conninfo  connection string for the LISTEN connection
 *
 * @return 0 if success
 */
int billing_alloc(struct billing **blp, const struct billing_conf *cfg,
		  struct db *db, struct b2bua *b2bua, const char *conninfo)
{
	struct billing *bl;
	int err;

	if (!blp || !cfg || !db || !b2bua || !conninfo || !cfg->node_name)
		return EINVAL;

	bl = mem_zalloc(sizeof(*bl), billing_destructor);
	if (!bl)
		return ENOMEM;

	bl->cfg = cfg;
	bl->db = db;
	bl->b2bua = b2bua;
	bl->start_ms = b2bua_wallclock_ms();
	list_init(&bl->settlel);
	list_init(&bl->hbl);
	list_init(&bl->hbsent);
	tmr_init(&bl->tmr_hb);
	tmr_init(&bl->tmr_rec);

	err = b2bua_udata_slot_alloc(b2bua, &bl->slot);
	if (err)
		goto out;

	err  = hash_alloc(&bl->accts, 1024);
	err |= hash_alloc(&bl->answers, 256);
	if (err) {
		err = ENOMEM;
		goto out;
	}

	err = register_statements(db);
	if (err)
		goto out;

	err = spool_alloc(&bl->spool, cfg->state_dir, SPOOL_COMPACT_SIZE,
			  settle_durable, settle_spool_health, bl);
	if (err) {
		tlog_warn(NULL, "billing: no spool file in %s (%m): "
			  "settlements wait in memory only", cfg->state_dir,
			  err);
		err = 0;
	}

	/* first what a previous run could not write, then its live calls:
	   a settlement in the spool deletes its call's live_calls row, so
	   the recovery reads them only once the spool has been written
	   (else it would settle that call again, as 'recovered') */
	if (bl->spool) {
		err = spool_load(bl->spool, &spool_load_handlers, bl);
		if (err)
			goto out;

		err = spool_start(bl->spool, SPOOL_TICK_MS);
		if (err)
			goto out;
	}

	if (!bl->replays) {
		err = recover_start(bl);
		if (err)
			goto out;
	}

	err = notify_alloc(&bl->notify, conninfo, notify_handler, bl);
	if (err)
		goto out;

	err = b2bua_subscribe(b2bua, event_handler, bl);
	if (err)
		goto out;

	b2bua_set_authz(b2bua, billing_authz, bl);
	b2bua_set_admit(b2bua, billing_admit, bl);
	tmr_start(&bl->tmr_hb, 0, hb_tick, bl);

	tlog_info(NULL, "billing: node %s, reserve %u s ahead, warn %u s "
		  "before the cut-off, heartbeat %u s", cfg->node_name,
		  cfg->reserve_interval, cfg->low_balance_warning,
		  cfg->heartbeat);

 out:
	if (err)
		mem_deref(bl);
	else
		*blp = bl;

	return err;
}


/**
 * Call doneh once every settlement is confirmed by the database (at once
 * if none is pending).  The caller bounds the wait with its own timer;
 * what is still pending when the engine is freed is in the spool file.
 */
void billing_flush(struct billing *bl, void (*doneh)(void *arg), void *arg)
{
	if (!bl || !doneh)
		return;

	bl->flushh = doneh;
	bl->flush_arg = arg;

	tlog_info(NULL, "billing: flushing %u settlements",
		  list_count(&bl->settlel));
	billing_flush_check(bl);
}


static void draining_done(int err, const struct pg_result *res, void *arg)
{
	(void)res;
	(void)arg;

	if (err)
		tlog_warn(NULL, "billing: nodes.draining not written: %m",
			  err);
}


/**
 * Write whether this node drains to its row of nodes (nodes.draining),
 * without waiting: the node takes no new calls whatever the database
 * says; the row tells operators and the other nodes.  A later call
 * replaces an update still in flight.
 */
void billing_node_draining(struct billing *bl, bool draining)
{
	const char *v[2];
	int err;

	if (!bl)
		return;

	v[0] = bl->cfg->node_name;
	v[1] = draining ? "true" : "false";

	bl->drainq = mem_deref(bl->drainq);
	err = db_exec(&bl->drainq, bl->db, STMT_NODE_DRAINING, 2, v,
		      BILLING_DRAIN_TIMEOUT_MS, true, draining_done, bl);
	if (err)
		tlog_warn(NULL, "billing: nodes.draining: %m", err);
}


static bool count_calls(struct le *le, void *arg)
{
	const struct bacct *a = le->data;
	uint32_t *n = arg;

	*n += list_count(&a->calls);

	return false;
}


/** Hear of every move of a running call's cut-off (NULL: no one) */
void billing_set_armed(struct billing *bl, billing_armed_h *h, void *arg)
{
	if (!bl)
		return;

	bl->armedh = h;
	bl->armed_arg = arg;
}


void billing_stats(const struct billing *bl, struct billing_stats *st)
{
	uint64_t total = 0, acc = 0;
	uint32_t i, n = 0;
	bool p50 = false;

	if (!bl || !st)
		return;

	*st = bl->st;

	(void)hash_apply(bl->accts, count_calls, &n);
	st->live = n;
	st->pending = list_count(&bl->settlel);

	st->spool_ok = billing_spool_ok(bl);
	if (bl->spool) {
		struct spool_stats ss;

		spool_stats(bl->spool, &ss);
		st->spool_syncs = ss.syncs;
		st->spool_sync_us_sum = ss.sync_us_sum;
		st->spool_sync_us_max = ss.sync_us_max;
		st->spool_bytes = ss.size;
	}

	for (i = 0; i < LAT_BUCKETS; i++)
		total += bl->lat[i];

	st->lat_p50 = st->lat_p99 = 0;
	for (i = 0; i < LAT_BUCKETS && total; i++) {
		acc += bl->lat[i];
		if (!p50 && acc * 2 >= total) {
			st->lat_p50 = i;
			p50 = true;
		}
		if (acc * 100 >= total * 99) {
			st->lat_p99 = i;
			break;
		}
	}
}


int billing_debug(struct re_printf *pf, const struct billing *bl)
{
	struct billing_stats st;
	struct db_stats ds;
	uint64_t q;

	if (!bl)
		return 0;

	billing_stats(bl, &st);
	db_stats(bl->db, &ds);
	q = st.q_authorize + st.q_reserve + st.q_settle;

	return re_hprintf(pf, "billing: %llu calls settled, %llu authorised,"
			  " %llu refused, %llu shed, %llu cut off,"
			  " %llu recovered (%llu taken from %llu dead"
			  " nodes), %u live, %u pending, %llu spooled;"
			  " round trips:"
			  " %llu authorise, %llu reserve, %llu settle"
			  " (%llu.%02llu per call), %llu heartbeat;"
			  " %llu queries went in %llu batches;"
			  " cut-off lateness p50 %u ms, p99 %u ms,"
			  " max %u ms; spool %s, %llu syncs, %llu dead"
			  " letters\n",
			  (unsigned long long)st.calls,
			  (unsigned long long)st.authorized,
			  (unsigned long long)st.refused,
			  (unsigned long long)st.shed,
			  (unsigned long long)st.cutoffs,
			  (unsigned long long)st.recovered,
			  (unsigned long long)st.taken_over,
			  (unsigned long long)st.takeovers, st.live,
			  st.pending, (unsigned long long)st.spooled,
			  (unsigned long long)st.q_authorize,
			  (unsigned long long)st.q_reserve,
			  (unsigned long long)st.q_settle,
			  (unsigned long long)(st.calls ? q / st.calls : 0),
			  (unsigned long long)(st.calls ?
					       (q * 100 / st.calls) % 100 : 0),
			  (unsigned long long)st.q_heartbeat,
			  (unsigned long long)ds.batched,
			  (unsigned long long)ds.batches,
			  st.lat_p50, st.lat_p99, st.lat_max,
			  st.spool_ok ? "ok" : "failing",
			  (unsigned long long)st.spool_syncs,
			  (unsigned long long)st.dead_letters);
}
