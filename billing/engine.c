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
 *   end        one round trip (tg_settle): CDR, cost, refund.  Settlements
 *              that cannot be written wait in the database client's queue
 *              and, once the database is down, in the spool file.
 *
 * A call shorter than one reservation interval costs two round trips.
 * The calls of one account hang together (hash by account id), so that a
 * top-up (NOTIFY from the database, or billing_account_changed()) re-arms
 * every exhausted call of the account at once.
 */

#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <libpq-fe.h>
#include "billing_int.h"


#define REASON_CREDIT "Q.850;cause=16;text=\"credit exhausted\""

enum {
	AUTHZ_TIMEOUT_MS   = 2000,
	RESERVE_TIMEOUT_MS = 5000,
	REFILL_RETRY_MS    = 1000,
	REFILL_LEAD_MIN_MS = 2000,
	REFILL_LEAD_MAX_MS = 10000,
};

static const char stmt_authorize[] = "tg_authorize";
static const char stmt_reserve[]   = "tg_reserve";
static const char stmt_settle[]    = "tg_settle";
static const char stmt_heartbeat[] = "tg_heartbeat";


static void arm(struct bcall *bc);


/* ------------------------------------------------------------- helpers */

static int64_t col_i64(const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return 0;

	return strtoll(PQgetvalue(res, row, col), NULL, 10);
}


static const char *col_str(const PGresult *res, int row, int col)
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


static struct bacct *bacct_find(const struct billing *bl, int64_t id)
{
	return list_ledata(hash_lookup(bl->accts, (uint32_t)id, bacct_cmp,
				       &id));
}


static void bacct_balance(struct bacct *a, const PGresult *res, int col)
{
	if (!a || PQgetisnull(res, 0, col))
		return;

	a->balance = col_i64(res, 0, col);
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
		b2bua_call_set_udata(bc->call, B2BUA_UDATA_BILLING, NULL);

	list_unlink(&bc->le);
	mem_deref(bc->acct);
	mem_deref(bc->caller);
	mem_deref(bc->callee);
}


static int bcall_alloc(struct bcall **bcp, struct billing *bl,
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

	err  = str_dup(&bc->caller, b2bua_call_caller(call) ?
		       b2bua_call_caller(call) : "anonymous");
	err |= str_dup(&bc->callee, b2bua_call_callee(call) ?
		       b2bua_call_callee(call) : "");
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
	b2bua_call_set_udata(call, B2BUA_UDATA_BILLING, bc);

 out:
	if (err)
		mem_deref(bc);
	else
		*bcp = bc;

	return err;
}


/* ----------------------------------------------------------- settlement */

static void settle_destructor(void *arg)
{
	struct settle *st = arg;
	int i;

	list_unlink(&st->le);
	mem_deref(st->q);
	for (i = 0; i < SETTLE_NPARAMS; i++)
		mem_deref(st->v[i]);
}


int settle_alloc(struct settle **stp, struct billing *bl,
		 const char *const v[SETTLE_NPARAMS])
{
	struct settle *st;
	int i, err = 0;

	st = mem_zalloc(sizeof(*st), settle_destructor);
	if (!st)
		return ENOMEM;

	st->bl = bl;
	for (i = 0; i < SETTLE_NPARAMS; i++) {
		if (v[i])
			err |= str_dup(&st->v[i], v[i]);
	}

	if (err || !st->v[0] || !st->v[1]) {
		mem_deref(st);
		return err ? ENOMEM : EINVAL;
	}

	st->account_id = strtoll(st->v[1], NULL, 10);
	*stp = st;

	return 0;
}


static void settle_spool(struct billing *bl, struct settle *st)
{
	int err;

	if (st->spooled)
		return;

	if (!bl->spool) {
		tlog_warn(st->v[0], "billing: no spool file: settlement kept"
			  " in memory only");
		return;
	}

	err = spool_add(bl->spool, (const char *const *)st->v);
	if (err) {
		tlog_err(st->v[0], "billing: cannot spool settlement: %m",
			 err);
		return;
	}

	st->spooled = true;
	++bl->st.spooled;
}


static void flush_check(struct billing *bl)
{
	void (*h)(void *arg) = bl->flushh;

	if (!h || !list_isempty(&bl->settlel) || bl->recq)
		return;

	bl->flushh = NULL;
	h(bl->flush_arg);
}


static void settle_send(struct settle *st);


static void settle_handler(int err, const struct pg_result *pres, void *arg)
{
	const PGresult *res = (const PGresult *)pres;
	struct settle *st = arg;
	struct billing *bl = st->bl;
	int64_t refunded = 0;

	if (err == EPROTO) {
		/* the database refused it: retrying cannot help */
		tlog_err(st->v[0], "billing: settlement refused by the "
			 "database; kept in the spool for the operator");
		settle_spool(bl, st);
		goto done;
	}
	else if (err) {
		tlog_warn(st->v[0], "billing: settlement: %m (again)", err);
		settle_send(st);
		return;
	}

	if (PQntuples(res) == 1) {
		refunded = col_i64(res, 0, 1);
		bacct_balance(bacct_find(bl, st->account_id), res, 2);
		tlog_dbg(st->v[0], "billing: %s, refunded %lld, balance %s",
			 col_str(res, 0, 0), (long long)refunded,
			 col_str(res, 0, 2));
	}

	if (st->spooled && bl->spool)
		(void)spool_done(bl->spool, st->v[0]);

	/* money came back: exhausted calls of the account may go on */
	if (refunded > 0 && st->account_id)
		billing_account_changed(bl, st->account_id);

 done:
	mem_deref(st);
	flush_check(bl);
}


static void settle_send(struct settle *st)
{
	struct billing *bl = st->bl;
	int err;

	err = db_exec(&st->q, bl->db, stmt_settle, SETTLE_NPARAMS,
		      (const char *const *)st->v, 0, true, settle_handler,
		      st);
	if (err) {
		tlog_err(st->v[0], "billing: cannot queue settlement: %m",
			 err);
		settle_spool(bl, st);
		return;
	}

	++bl->st.q_settle;
}


/**
 * Settle: the settlement joins the pending list (owned) and is written;
 * while the database is down it also goes to the spool file.
 */
void billing_settle_queue(struct billing *bl, struct settle *st)
{
	list_append(&bl->settlel, &st->le, st);

	if (!db_is_up(bl->db))
		settle_spool(bl, st);

	settle_send(st);
}


static const char *hangup_by(enum b2bua_reason r, bool by_caller)
{
	switch (r) {

	case B2BUA_R_CALLER:
	case B2BUA_R_CANCELLED:
		return "caller";

	case B2BUA_R_CALLEE:
		return "callee";

	case B2BUA_R_REJECTED:
		return by_caller ? "caller" : "callee";

	default:
		return by_caller ? "caller" : "tollgate";
	}
}


/* The call is over: rate it and settle */
static void bcall_end(struct bcall *bc, struct b2bua_call *call)
{
	struct billing *bl = bc->bl;
	char acct[24], setup[24], answer[24], end[24], billeds[24];
	char costs[24], scodes[8];
	const char *v[SETTLE_NPARAMS];
	enum b2bua_reason reason = b2bua_call_reason(call);
	uint64_t billed = 0, end_ms;
	int64_t cost = 0;
	uint16_t scode = b2bua_call_scode(call);
	struct settle *st;
	int err;

	b2bua_call_set_udata(call, B2BUA_UDATA_BILLING, NULL);
	bc->call = NULL;
	tmr_cancel(&bc->tmr_cut);
	tmr_cancel(&bc->tmr_refill);
	tmr_cancel(&bc->tmr_low);
	bc->q = mem_deref(bc->q);

	/* tg_authorize refused it and wrote its CDR */
	if (bc->refused)
		goto out;

	end_ms = b2bua_call_end_ms(call);
	if (!end_ms)
		end_ms = b2bua_wallclock_ms();

	if (bc->answered) {
		uint64_t d = rate_seconds(tmr_jiffies() - bc->answer_jif);

		/* never beyond what was reserved: a cut-off a few ms late
		 * is tollgate's, not the customer's */
		if (d > (uint64_t)bc->funded_s)
			d = (uint64_t)bc->funded_s;

		err = rate_call(&cost, &billed, &bc->rate, d);
		if (err) {
			tlog_err(bc->id, "billing: cannot rate %llu s: %m",
				 (unsigned long long)d, err);
			cost = bc->reserved;
		}

		if (cost > bc->reserved) {
			tlog_err(bc->id, "billing: cost %lld above the "
				 "reservation %lld", (long long)cost,
				 (long long)bc->reserved);
			cost = bc->reserved;
		}

		if (!scode)
			scode = 200;
	}
	else if (!scode) {
		scode = 500;
	}

	(void)re_snprintf(acct, sizeof(acct), "%lld",
			  (long long)bc->account_id);
	(void)re_snprintf(setup, sizeof(setup), "%llu",
			  (unsigned long long)bc->setup_ms);
	(void)re_snprintf(answer, sizeof(answer), "%llu",
			  (unsigned long long)(bc->answered ?
					       bc->answer_ms : 0));
	(void)re_snprintf(end, sizeof(end), "%llu",
			  (unsigned long long)end_ms);
	(void)re_snprintf(billeds, sizeof(billeds), "%llu",
			  (unsigned long long)billed);
	(void)re_snprintf(costs, sizeof(costs), "%lld", (long long)cost);
	(void)re_snprintf(scodes, sizeof(scodes), "%u", scode);

	v[0]  = bc->id;
	v[1]  = acct;
	v[2]  = bc->caller;
	v[3]  = bc->callee;
	v[4]  = b2bua_call_gateway(call);
	v[5]  = setup;
	v[6]  = answer;
	v[7]  = end;
	v[8]  = billeds;
	v[9]  = costs;
	v[10] = scodes;
	v[11] = hangup_by(reason, b2bua_call_hangup_by_caller(call));
	v[12] = b2bua_reason_name(reason);

	tlog_info(bc->id, "billing: %s, %llu s billed, cost %lld of %lld "
		  "reserved", v[12], (unsigned long long)billed,
		  (long long)cost, (long long)bc->reserved);

	err = settle_alloc(&st, bl, v);
	if (err) {
		tlog_err(bc->id, "billing: settlement lost: %m", err);
		goto out;
	}

	++bl->st.calls;
	billing_settle_queue(bl, st);

 out:
	mem_deref(bc);
}


/* ----------------------------------------------------------- cut-off */

static void record_lateness(struct billing *bl, uint64_t due)
{
	uint64_t now = tmr_jiffies();
	uint64_t ms = now > due ? now - due : 0;

	if (ms >= LAT_BUCKETS)
		ms = LAT_BUCKETS - 1;

	++bl->lat[ms];
	if (ms > bl->st.lat_max)
		bl->st.lat_max = (uint32_t)ms;
}


static void cut_handler(void *arg)
{
	struct bcall *bc = arg;
	struct billing *bl = bc->bl;
	struct b2bua_call *call = bc->call;
	struct bacct *acct;
	bool exhausted = bc->exhausted;
	uint64_t due = bc->cut_jif;
	struct le *le;

	if (!call)
		return;

	acct = mem_ref(bc->acct);
	bc->cutting = true;
	++bl->st.cutoffs;

	tlog_info(bc->id, "billing: money ends after %lld s: cut off",
		  (long long)bc->funded_s);

	/* BYE on both legs now; ENDED settles and frees bc */
	(void)b2bua_call_end(call, B2BUA_R_CREDIT, REASON_CREDIT);

	record_lateness(bl, due);

	if (!exhausted)
		goto out;

	/* the account's money is gone: calls still ringing cannot talk */
	le = list_head(&acct->calls);
	while (le) {
		struct bcall *o = le->data;

		le = le->next;

		if (!o->call || o->answered || o->cutting)
			continue;

		if (b2bua_call_state(o->call) != B2BUA_ST_CALLING &&
		    b2bua_call_state(o->call) != B2BUA_ST_RINGING)
			continue;

		tlog_info(o->id, "billing: account %lld out of money: "
			  "cancelling the ringing call",
			  (long long)acct->id);
		o->cutting = true;
		(void)b2bua_call_end(o->call, B2BUA_R_CREDIT, REASON_CREDIT);
	}

 out:
	mem_deref(acct);
}


static void low_handler(void *arg)
{
	struct bcall *bc = arg;

	if (!bc->call || bc->low_sent)
		return;

	/* the account still has money: the next reservation will come */
	if (!bc->exhausted && bc->acct->balance_known &&
	    bc->acct->balance > 0)
		return;

	bc->low_sent = true;
	tlog_info(bc->id, "billing: low balance, cut-off in %llu ms",
		  (unsigned long long)(bc->cut_jif > tmr_jiffies() ?
				       bc->cut_jif - tmr_jiffies() : 0));
	b2bua_call_emit(bc->call, B2BUA_EV_LOW_BALANCE);
}


/* ---------------------------------------------------------- reservation */

static void refill_handler(void *arg);


static void reserve_handler(int err, const struct pg_result *pres,
			    void *arg)
{
	const PGresult *res = (const PGresult *)pres;
	struct bcall *bc = arg;
	int64_t granted, reserved;

	if (!bc->call)
		return;

	if (err || PQntuples(res) != 1) {
		tlog_warn(bc->id, "billing: reservation failed: %m; the call"
			  " keeps %lld s", err ? err : EPROTO,
			  (long long)bc->funded_s);
		tmr_start(&bc->tmr_refill, REFILL_RETRY_MS, refill_handler,
			  bc);
		return;
	}

	granted  = col_i64(res, 0, 0);
	reserved = col_i64(res, 0, 1);

	++bc->seq;
	bacct_balance(bc->acct, res, 2);
	if (reserved > bc->reserved)
		bc->reserved = reserved;

	/* short of the interval asked for: the balance is spent */
	bc->exhausted = (granted <= 0) ||
		rate_affordable(&bc->rate, bc->reserved) <
		bc->funded_s + (int64_t)bc->bl->cfg->reserve_interval;

	if (granted > 0)
		bc->low_sent = false;

	tlog_dbg(bc->id, "billing: reserved %lld more (%lld in all)%s",
		 (long long)granted, (long long)bc->reserved,
		 bc->exhausted ? ", account exhausted" : "");

	arm(bc);
}


/* reserve the next interval */
static void refill_handler(void *arg)
{
	struct bcall *bc = arg;
	struct billing *bl = bc->bl;
	char id[24], seq[16], want[24];
	const char *v[3];
	int64_t target, cost;
	int err;

	if (!bc->call || bc->q)
		return;

	target = bc->funded_s + (int64_t)bl->cfg->reserve_interval;
	if (target > (int64_t)RATE_MAX_SECONDS)
		target = (int64_t)RATE_MAX_SECONDS;

	err = rate_call(&cost, NULL, &bc->rate, (uint64_t)target);
	if (err)
		return;

	if (cost <= bc->reserved)
		return;

	str_ncpy(id, bc->id, sizeof(id));
	(void)re_snprintf(seq, sizeof(seq), "%u", bc->seq + 1);
	(void)re_snprintf(want, sizeof(want), "%lld",
			  (long long)(cost - bc->reserved));
	v[0] = id;
	v[1] = seq;
	v[2] = want;

	err = db_exec(&bc->q, bl->db, stmt_reserve, 3, v, RESERVE_TIMEOUT_MS,
		      true, reserve_handler, bc);
	if (err) {
		tlog_warn(bc->id, "billing: cannot reserve: %m", err);
		tmr_start(&bc->tmr_refill, REFILL_RETRY_MS, refill_handler,
			  bc);
		return;
	}

	++bl->st.q_reserve;
}


/*
 * (Re)arm the timers of an answered call from its reservation: the
 * cut-off at the exact end of the money, the next reservation half an
 * interval (2..10 s) before it, and the low-balance warning, which the
 * handler gives only if the account is known to have nothing left.
 */
static void arm(struct bcall *bc)
{
	const struct tg_config *cfg = bc->bl->cfg;
	uint64_t now = tmr_jiffies(), warn, lead;
	int64_t f;

	f = rate_affordable(&bc->rate, bc->reserved);
	bc->funded_s = f < 0 ? 0 : f;

	if (!bc->answered || !bc->call)
		return;

	bc->cut_jif = bc->answer_jif + (uint64_t)bc->funded_s * 1000;
	tmr_start(&bc->tmr_cut, bc->cut_jif > now ? bc->cut_jif - now : 0,
		  cut_handler, bc);

	warn = (uint64_t)cfg->low_balance_warning * 1000;

	if (!bc->exhausted && bc->funded_s < (int64_t)RATE_MAX_SECONDS) {
		lead = (uint64_t)cfg->reserve_interval * 500;
		if (lead < REFILL_LEAD_MIN_MS)
			lead = REFILL_LEAD_MIN_MS;
		if (lead > REFILL_LEAD_MAX_MS)
			lead = REFILL_LEAD_MAX_MS;

		if (!bc->q)
			tmr_start(&bc->tmr_refill,
				  bc->cut_jif > now + lead ?
				  bc->cut_jif - lead - now : 0,
				  refill_handler, bc);
	}
	else {
		tmr_cancel(&bc->tmr_refill);
	}

	if (warn && !bc->low_sent && bc->funded_s < (int64_t)RATE_MAX_SECONDS)
		tmr_start(&bc->tmr_low, bc->cut_jif > now + warn ?
			  bc->cut_jif - warn - now : 0, low_handler, bc);
	else
		tmr_cancel(&bc->tmr_low);
}


/* ---------------------------------------------------------- authorise */

static void refuse(struct b2bua_call *call, uint16_t scode,
		   const char *phrase, const char *hdrs)
{
	b2bua_call_authorized(call, scode, phrase, hdrs);
}


static void authorize_handler(int err, const struct pg_result *pres,
			      void *arg)
{
	const PGresult *res = (const PGresult *)pres;
	struct bcall *bc = arg;
	struct billing *bl = bc->bl;
	struct b2bua_call *call = bc->call;
	const char *result;
	uint16_t scode;

	if (!call)
		return;

	if (err || PQntuples(res) != 1 || PQnfields(res) != 9) {
		tlog_warn(bc->id, "billing: authorisation failed: %m",
			  err ? err : EPROTO);
		++bl->st.refused;
		refuse(call, 503, "Service Unavailable",
		       "Retry-After: 10\r\n"
		       "Reason: Q.850;cause=41;text=\"billing unavailable\""
		       "\r\n");
		return;
	}

	result = col_str(res, 0, 0);
	scode  = (uint16_t)col_i64(res, 0, 1);

	if (strcmp(result, "ok")) {
		const char *phrase, *hdr;

		bc->refused = true;
		++bl->st.refused;

		if (!strcmp(result, "no_credit")) {
			phrase = "Payment Required";
			hdr = "Reason: Q.850;cause=31;text=\"insufficient "
				"credit\"\r\n";
		}
		else if (!strcmp(result, "no_rate")) {
			phrase = "Not Found";
			hdr = "Reason: Q.850;cause=1;text=\"no rate for "
				"destination\"\r\n";
		}
		else if (!strcmp(result, "limit")) {
			phrase = "Busy Here";
			hdr = "Reason: Q.850;cause=17;text=\"too many calls "
				"of the account\"\r\n";
		}
		else if (!strcmp(result, "blocked")) {
			phrase = "Forbidden";
			hdr = "Reason: Q.850;cause=21;text=\"account "
				"blocked\"\r\n";
		}
		else {
			phrase = "Forbidden";
			hdr = "Reason: Q.850;cause=21;text=\"unknown "
				"account\"\r\n";
		}

		tlog_info(bc->id, "billing: refused (%s, balance %s)",
			  result, col_str(res, 0, 8));
		refuse(call, scode >= 300 ? scode : 403, phrase, hdr);
		return;
	}

	bc->rate.id               = col_i64(res, 0, 2);
	bc->rate.connect_fee      = col_i64(res, 0, 3);
	bc->rate.price_per_minute = col_i64(res, 0, 4);
	bc->rate.initial          = (uint32_t)col_i64(res, 0, 5);
	bc->rate.subsequent       = (uint32_t)col_i64(res, 0, 6);
	bc->reserved              = col_i64(res, 0, 7);
	bc->seq = 1;
	bacct_balance(bc->acct, res, 8);
	bc->authorized = true;

	if (rate_check(&bc->rate)) {
		tlog_err(bc->id, "billing: rate %lld is not usable",
			 (long long)bc->rate.id);
		refuse(call, 500, "Server Internal Error", NULL);
		return;
	}

	arm(bc);
	bc->exhausted = bc->funded_s <
		(int64_t)bl->cfg->reserve_interval &&
		bc->funded_s < (int64_t)RATE_MAX_SECONDS;

	++bl->st.authorized;
	tlog_info(bc->id, "billing: authorised, rate %lld, %lld reserved "
		  "(%lld s), balance %s", (long long)bc->rate.id,
		  (long long)bc->reserved, (long long)bc->funded_s,
		  col_str(res, 0, 8));

	b2bua_call_authorized(call, 0, NULL, NULL);
}


static int authz_handler(struct b2bua_call *call, void *arg)
{
	struct billing *bl = arg;
	char acct[24], setup[24], interval[16];
	const char *v[8];
	struct bcall *bc;
	int err;

	err = bcall_alloc(&bc, bl, call);
	if (err)
		return err;

	if (!bc->account_id) {
		++bl->st.refused;
		refuse(call, 403, "Forbidden",
		       "Reason: Q.850;cause=21;text=\"no account\"\r\n");
		return 0;
	}

	if (!db_is_up(bl->db)) {
		++bl->st.refused;
		tlog_warn(bc->id, "billing: database down: call refused");
		refuse(call, 503, "Service Unavailable",
		       "Retry-After: 10\r\n"
		       "Reason: Q.850;cause=41;text=\"billing unavailable\""
		       "\r\n");
		return 0;
	}

	(void)re_snprintf(acct, sizeof(acct), "%lld",
			  (long long)bc->account_id);
	(void)re_snprintf(setup, sizeof(setup), "%llu",
			  (unsigned long long)bc->setup_ms);
	(void)re_snprintf(interval, sizeof(interval), "%u",
			  bl->cfg->reserve_interval);

	v[0] = bc->id;
	v[1] = bl->cfg->node_name;
	v[2] = acct;
	v[3] = bc->caller;
	v[4] = bc->callee;
	v[5] = b2bua_call_gateway(call);
	v[6] = setup;
	v[7] = interval;

	err = db_exec(&bc->q, bl->db, stmt_authorize, 8, v, AUTHZ_TIMEOUT_MS,
		      true, authorize_handler, bc);
	if (err) {
		b2bua_call_set_udata(call, B2BUA_UDATA_BILLING, NULL);
		bc->call = NULL;
		mem_deref(bc);
		return err;
	}

	++bl->st.q_authorize;

	return 0;
}


/* --------------------------------------------------------------- events */

static void hb_note_answer(struct billing *bl, const struct bcall *bc)
{
	struct hbent *e = mem_zalloc(sizeof(*e), NULL);

	if (!e)
		return;

	str_ncpy(e->id, bc->id, sizeof(e->id));
	e->answer_ms = bc->answer_ms;
	list_append(&bl->hbl, &e->le, e);
}


static void event_handler(struct b2bua_call *call, enum b2bua_event ev,
			  void *arg)
{
	struct billing *bl = arg;
	struct bcall *bc = b2bua_call_udata(call, B2BUA_UDATA_BILLING);

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
		arm(bc);
		break;

	case B2BUA_EV_ENDED:
	case B2BUA_EV_FAILED:
		bcall_end(bc, call);
		break;

	default:
		break;
	}
}


/* ------------------------------------------------------------ heartbeat */

static void hb_handler(int err, const struct pg_result *pres, void *arg)
{
	struct billing *bl = arg;
	struct le *le;
	(void)pres;

	if (!err) {
		list_flush(&bl->hbsent);
		return;
	}

	/* not recorded: they go with the next beat */
	while ((le = list_tail(&bl->hbsent))) {
		list_unlink(le);
		list_prepend(&bl->hbl, le, le->data);
	}
}


static void hb_tick(void *arg)
{
	struct billing *bl = arg;
	struct mbuf *ids = NULL, *ans = NULL;
	struct le *le;
	const char *v[3];
	int err = 0;

	tmr_start(&bl->tmr_hb, (uint64_t)bl->cfg->heartbeat * 1000, hb_tick,
		  bl);

	if (bl->hbq || !db_is_up(bl->db))
		return;

	ids = mbuf_alloc(256);
	ans = mbuf_alloc(256);
	if (!ids || !ans) {
		err = ENOMEM;
		goto out;
	}

	err |= mbuf_write_u8(ids, '{');
	err |= mbuf_write_u8(ans, '{');
	for (le = bl->hbl.head; le; le = le->next) {
		const struct hbent *e = le->data;
		const char *sep = le == bl->hbl.head ? "" : ",";

		err |= mbuf_printf(ids, "%s%s", sep, e->id);
		err |= mbuf_printf(ans, "%s%llu", sep,
				   (unsigned long long)e->answer_ms);
	}
	err |= mbuf_write_u8(ids, '}');
	err |= mbuf_write_u8(ans, '}');
	err |= mbuf_write_u8(ids, 0);
	err |= mbuf_write_u8(ans, 0);
	if (err)
		goto out;

	v[0] = bl->cfg->node_name;
	v[1] = (const char *)ids->buf;
	v[2] = (const char *)ans->buf;

	err = db_exec(&bl->hbq, bl->db, stmt_heartbeat, 3, v,
		      bl->cfg->heartbeat * 1000, false, hb_handler, bl);
	if (err)
		goto out;

	/* what went out with this beat */
	while ((le = list_head(&bl->hbl))) {
		list_unlink(le);
		list_append(&bl->hbsent, le, le->data);
	}
	++bl->st.q_heartbeat;

 out:
	if (err)
		tlog_warn(NULL, "billing: heartbeat: %m", err);
	mem_deref(ids);
	mem_deref(ans);
}


/* ---------------------------------------------------------------- state */

static void db_state(bool up, void *arg)
{
	struct billing *bl = arg;
	struct le *le;

	if (up)
		return;

	/* the database went away: what is not yet written goes to disk */
	for (le = bl->settlel.head; le; le = le->next)
		settle_spool(bl, le->data);
}


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
		tmr_start(&bc->tmr_refill, 0, refill_handler, bc);
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
	struct le *le;

	tmr_cancel(&bl->tmr_hb);
	bl->hbq = mem_deref(bl->hbq);
	bl->recq = mem_deref(bl->recq);

	if (bl->db)
		db_set_state_handler(bl->db, NULL, NULL);

	/* settlements not confirmed: the next start writes them */
	for (le = bl->settlel.head; le; le = le->next)
		settle_spool(bl, le->data);
	if (!list_isempty(&bl->settlel))
		tlog_warn(NULL, "billing: %u settlements not confirmed at "
			  "exit, kept in %s", list_count(&bl->settlel),
			  bl->spool ? spool_path(bl->spool) : "(nowhere)");
	list_flush(&bl->settlel);

	(void)hash_apply(bl->accts, flush_acct, NULL);
	hash_flush(bl->accts);
	mem_deref(bl->accts);
	list_flush(&bl->hbl);
	list_flush(&bl->hbsent);
	mem_deref(bl->notify);
	mem_deref(bl->spool);
}


static int register_statements(struct db *db)
{
	int err;

	err = db_prepare(db, stmt_authorize,
			 "SELECT result, sip_code, rate_id, connect_fee,"
			 " price_per_minute, initial_increment,"
			 " subsequent_increment, reserved, balance"
			 " FROM tg_authorize($1, $2, $3::bigint, $4, $5, $6,"
			 " $7::bigint, $8::integer)", 8);
	if (err)
		return err;

	err = db_prepare(db, stmt_reserve,
			 "SELECT granted, reserved, balance"
			 " FROM tg_reserve($1, $2::integer, $3::bigint)", 3);
	if (err)
		return err;

	err = db_prepare(db, stmt_settle,
			 "SELECT result, refunded, balance"
			 " FROM tg_settle($1, $2::bigint, $3, $4, $5,"
			 " $6::bigint, $7::bigint, $8::bigint, $9::integer,"
			 " $10::bigint, $11::integer, $12, $13)",
			 SETTLE_NPARAMS);
	if (err)
		return err;

	err = db_prepare(db, stmt_heartbeat,
			 "SELECT tg_heartbeat($1, $2::text[], $3::bigint[])",
			 3);
	if (err)
		return err;

	return recover_register(db);
}


static void spool_entry(const char *const v[SETTLE_NPARAMS], void *arg)
{
	struct billing *bl = arg;
	struct settle *st;

	if (settle_alloc(&st, bl, v)) {
		tlog_err(v[0], "billing: bad spool entry skipped");
		return;
	}

	st->spooled = true;
	tlog_info(st->v[0], "billing: settling from the spool");
	billing_settle_queue(bl, st);
}


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
int billing_alloc(struct billing **blp, const struct tg_config *cfg,
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
	list_init(&bl->settlel);
	list_init(&bl->hbl);
	list_init(&bl->hbsent);
	tmr_init(&bl->tmr_hb);

	err = hash_alloc(&bl->accts, 1024);
	if (err)
		goto out;

	err = register_statements(db);
	if (err)
		goto out;

	err = spool_open(&bl->spool, cfg->state_dir);
	if (err) {
		tlog_warn(NULL, "billing: no spool file in %s (%m): "
			  "settlements wait in memory only", cfg->state_dir,
			  err);
		err = 0;
	}

	/* first what a previous run could not write, then its live calls */
	if (bl->spool) {
		err = spool_load(bl->spool, spool_entry, bl);
		if (err)
			goto out;
	}

	err = recover_start(bl);
	if (err)
		goto out;

	err = notify_alloc(&bl->notify, conninfo, notify_handler, bl);
	if (err)
		goto out;

	db_set_state_handler(db, db_state, bl);
	err = b2bua_subscribe(b2bua, event_handler, bl);
	if (err)
		goto out;

	b2bua_set_authz(b2bua, authz_handler, bl);
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
 * what is still pending when the engine is freed goes to the spool file.
 */
void billing_flush(struct billing *bl, void (*doneh)(void *arg), void *arg)
{
	if (!bl || !doneh)
		return;

	bl->flushh = doneh;
	bl->flush_arg = arg;

	tlog_info(NULL, "billing: flushing %u settlements",
		  list_count(&bl->settlel));
	flush_check(bl);
}


static bool count_calls(struct le *le, void *arg)
{
	const struct bacct *a = le->data;
	uint32_t *n = arg;

	*n += list_count(&a->calls);

	return false;
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
	uint64_t q;

	if (!bl)
		return 0;

	billing_stats(bl, &st);
	q = st.q_authorize + st.q_reserve + st.q_settle;

	return re_hprintf(pf, "billing: %llu calls settled, %llu authorised,"
			  " %llu refused, %llu cut off, %llu recovered, %u"
			  " live, %u pending, %llu spooled; round trips:"
			  " %llu authorise, %llu reserve, %llu settle"
			  " (%llu.%02llu per call), %llu heartbeat;"
			  " cut-off lateness p50 %u ms, p99 %u ms,"
			  " max %u ms\n",
			  (unsigned long long)st.calls,
			  (unsigned long long)st.authorized,
			  (unsigned long long)st.refused,
			  (unsigned long long)st.cutoffs,
			  (unsigned long long)st.recovered, st.live,
			  st.pending, (unsigned long long)st.spooled,
			  (unsigned long long)st.q_authorize,
			  (unsigned long long)st.q_reserve,
			  (unsigned long long)st.q_settle,
			  (unsigned long long)(st.calls ? q / st.calls : 0),
			  (unsigned long long)(st.calls ?
					       (q * 100 / st.calls) % 100 : 0),
			  (unsigned long long)st.q_heartbeat,
			  st.lat_p50, st.lat_p99, st.lat_max);
}
