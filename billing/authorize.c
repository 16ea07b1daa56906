/**
 * @file authorize.c  Prepaid billing: authorisation, reservations, cut-off
 *
 * Authorisation and the first reservation are one round trip
 * (tg_authorize).  A call reserves in steps that grow while it lasts:
 * reserve_first seconds at authorisation, then each tg_reserve twice the
 * step before, up to reserve_interval, so that concurrent calls of one
 * account share its balance instead of the first taking it all.  Once
 * the call is answered, the cut-off timer is armed at the millisecond
 * the reserved money ends; half a step (1..10 s, and more than the round
 * trips of tg_reserve take) before that tg_reserve asks for the next
 * step and the timer moves with what it grants.  A cut-off that comes
 * while a reservation is on its way to a reachable database waits for
 * its answer.  When the money ends both legs get BYE with the credit
 * Reason, and if the account has nothing left its ringing calls are
 * CANCELled.
 *
 * Every call that reached authorisation ends with one CDR: tg_authorize
 * writes it for a refusal of its own (bc->refused); every other outcome
 * (granted, timed out, database down or refusing, failed at the gateway)
 * is settled by bcall_end() once the B2BUA reports the call failed or
 * ended, and tg_settle, idempotent on the call id, also removes a
 * reservation that an authorisation past its deadline may still have
 * committed.  Only calls shed for overload leave no CDR: they are refused
 * at the B2BUA's door (billing_admit(), a stateless 503) before a call
 * exists.
 */

#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <libpq-fe.h>
#include "billing_int.h"


#define REASON_CREDIT "Q.850;cause=16;text=\"credit exhausted\""

#define REFUSE_UNAVAILABLE "Retry-After: 10\r\n" \
	"Reason: Q.850;cause=41;text=\"billing unavailable\"\r\n"

enum {
	AUTHZ_TIMEOUT_MS   = 2000,
	RESERVE_TIMEOUT_MS = 2500,
	REFILL_RETRY_MS    = 500,
	REFILL_LEAD_MIN_MS = 1000,
	REFILL_LEAD_MAX_MS = 10000,
	REFILL_LEAD_PAD_MS = 250,    /* beyond twice the round trip    */
	CUT_HOLD_POLL_MS   = 50,
	SHED_LOG_MS        = 1000,
	SHED_STEP_MS       = 50,
	SHED_RETRY_AFTER   = 1,      /* s */
};


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
	uint64_t due = bc->cut_jif, now;
	struct le *le;

	if (!call)
		return;

	/* a reservation is on its way to a reachable database: its answer
	   moves the cut-off (or, if it fails, cuts at once) */
	if (bc->q && !exhausted && db_is_up(bl->db) &&
	    tmr_jiffies() < bc->q_jif + RESERVE_TIMEOUT_MS) {
		if (!bc->hold_jif) {
			bc->hold_jif = tmr_jiffies();
			tlog_dbg(bc->id, "billing: money ends: cut-off waits"
				 " for the reservation in flight");
		}
		tmr_start(&bc->tmr_cut, CUT_HOLD_POLL_MS, cut_handler, bc);
		return;
	}

	/* the node's lease is in doubt (stopped or cut off from the
	   database for longer than the lease): another node may have
	   settled the call.  The next renewal tells; the cut-off waits for
	   it, a bounded time */
	if (lease_hold(bc)) {
		tmr_start(&bc->tmr_cut, CUT_HOLD_POLL_MS, cut_handler, bc);
		return;
	}

	acct = mem_ref(bc->acct);
	bc->cutting = true;
	++bl->st.cutoffs;

	now = tmr_jiffies();
	tlog_info(bc->id, "billing: money ends after %lld s: cut off"
		  " (%llu ms after the due time)", (long long)bc->funded_s,
		  (unsigned long long)(now > due ? now - due : 0));

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



static void reserve_handler(int err, const struct pg_result *pres,
			    void *arg)
{
	const PGresult *res = (const PGresult *)pres;
	struct bcall *bc = arg;
	struct billing *bl = bc->bl;
	int64_t granted, reserved;
	uint64_t lat = tmr_jiffies() - bc->q_jif;

	if (!bc->call)
		return;

	if (!err && PQntuples(res) == 1) {
		/* how long tg_reserve takes: the refill lead covers it */
		if (lat > RESERVE_TIMEOUT_MS)
			lat = RESERVE_TIMEOUT_MS;
		bl->rsv_lat_ms = (uint32_t)(((uint64_t)bl->rsv_lat_ms * 7 +
					     lat) / 8);
	}

	if (err || PQntuples(res) != 1) {
		tlog_warn(bc->id, "billing: reservation failed: %m; the call"
			  " keeps %lld s", err ? err : EPROTO,
			  (long long)bc->funded_s);

		/* the money ended while it was on its way: cut now */
		if (bc->hold_jif) {
			tmr_start(&bc->tmr_cut, 0, cut_handler, bc);
			return;
		}

		tmr_start(&bc->tmr_refill, REFILL_RETRY_MS, bcall_refill,
			  bc);
		return;
	}

	granted  = billing_col_i64(res, 0, 0);
	reserved = billing_col_i64(res, 0, 1);

	++bc->seq;
	bc->hold_jif = 0;
	bacct_balance(bc->acct, res, 2);
	if (reserved > bc->reserved)
		bc->reserved = reserved;
	if (granted > 0)
		bc->chunk_s = bc->ask_s;

	/* short of the step asked for: the balance is spent */
	bc->exhausted = (granted <= 0) ||
		rate_affordable(&bc->rate, bc->reserved) < bc->want_s;

	if (granted > 0)
		bc->low_sent = false;

	tlog_dbg(bc->id, "billing: reserved %lld more (%lld in all)%s",
		 (long long)granted, (long long)bc->reserved,
		 bc->exhausted ? ", account exhausted" : "");

	bcall_arm(bc);
}


/* the first step: reserve_first, at most reserve_interval */
static uint32_t first_step(const struct billing_conf *cfg)
{
	uint32_t s = cfg->reserve_first ? cfg->reserve_first : 1;

	return s < cfg->reserve_interval ? s : cfg->reserve_interval;
}


/* the step after chunk: twice as much, at most reserve_interval */
static uint32_t next_step(const struct billing_conf *cfg, uint32_t chunk)
{
	uint64_t s = chunk ? (uint64_t)chunk * 2 : first_step(cfg);

	return s < cfg->reserve_interval ? (uint32_t)s : cfg->reserve_interval;
}


/* reserve the next step (a timer handler) */
void bcall_refill(void *arg)
{
	struct bcall *bc = arg;
	struct billing *bl = bc->bl;
	char id[24], seq[16], want[24];
	const char *v[3];
	int64_t target, cost;
	uint32_t step;
	int err;

	if (!bc->call || bc->q)
		return;

	step = next_step(bl->cfg, bc->chunk_s);
	target = bc->funded_s + (int64_t)step;
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

	err = db_exec(&bc->q, bl->db, STMT_RESERVE, 3, v, RESERVE_TIMEOUT_MS,
		      true, reserve_handler, bc);
	if (err) {
		tlog_warn(bc->id, "billing: cannot reserve: %m", err);
		tmr_start(&bc->tmr_refill, REFILL_RETRY_MS, bcall_refill,
			  bc);
		return;
	}

	bc->ask_s = step;
	bc->want_s = target;
	bc->q_jif = tmr_jiffies();
	++bl->st.q_reserve;
}


/*
 * How long before the money ends the next step is asked for: half the
 * current step (1..10 s), and never less than twice the recent round
 * trip of tg_reserve and a margin, so that the answer comes in time.
 */
static uint64_t refill_lead(const struct bcall *bc)
{
	uint64_t lead = (uint64_t)bc->chunk_s * 500;
	uint64_t cover = (uint64_t)bc->bl->rsv_lat_ms * 2 + REFILL_LEAD_PAD_MS;

	if (lead < REFILL_LEAD_MIN_MS)
		lead = REFILL_LEAD_MIN_MS;
	if (lead > REFILL_LEAD_MAX_MS)
		lead = REFILL_LEAD_MAX_MS;

	return lead > cover ? lead : cover;
}


/*
 * (Re)arm the timers of an answered call from its reservation: the
 * cut-off at the exact end of the money, the next reservation its lead
 * (refill_lead()) before it, and the low-balance warning, which the
 * handler gives only if the account is known to have nothing left.
 */
void bcall_arm(struct bcall *bc)
{
	const struct billing_conf *cfg = bc->bl->cfg;
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
		lead = refill_lead(bc);

		if (!bc->q)
			tmr_start(&bc->tmr_refill,
				  bc->cut_jif > now + lead ?
				  bc->cut_jif - lead - now : 0,
				  bcall_refill, bc);
	}
	else {
		tmr_cancel(&bc->tmr_refill);
	}

	if (warn && !bc->low_sent && bc->funded_s < (int64_t)RATE_MAX_SECONDS)
		tmr_start(&bc->tmr_low, bc->cut_jif > now + warn ?
			  bc->cut_jif - warn - now : 0, low_handler, bc);
	else
		tmr_cancel(&bc->tmr_low);

	if (bc->bl->armedh)
		bc->bl->armedh(bc->call, bc->bl->armed_arg);
}


/* ---------------------------------------------------------- authorise */

static void refuse(struct b2bua_call *call, uint16_t scode,
		   const char *phrase, const char *hdrs)
{
	b2bua_call_authorized(call, scode, phrase, hdrs);
}



/** How a refusal of tg_authorize reaches the caller (besides its code) */
struct refusal {
	const char *result;     /**< tg_authorize's result               */
	const char *phrase;
	const char *hdr;
};

static const struct refusal refusalv[] = {
	{ "no_credit",  "Payment Required",
	  "Reason: Q.850;cause=31;text=\"insufficient credit\"\r\n" },
	{ "no_rate",    "Not Found",
	  "Reason: Q.850;cause=1;text=\"no rate for destination\"\r\n" },
	{ "limit",      "Busy Here",
	  "Reason: Q.850;cause=17;text=\"too many calls of the account\""
	  "\r\n" },
	{ "spend_cap",  "Forbidden",
	  "Reason: Q.850;cause=21;text=\"daily spend cap reached\"\r\n" },
	{ "restricted", "Forbidden",
	  "Reason: Q.850;cause=21;text=\"destination not allowed\"\r\n" },
	{ "blocked",    "Forbidden",
	  "Reason: Q.850;cause=21;text=\"account blocked\"\r\n" },
	/* the call already has its CDR (it was settled first) */
	{ "ended",      "Service Unavailable", REFUSE_UNAVAILABLE },
	/* the last one answers every other result */
	{ NULL,         "Forbidden",
	  "Reason: Q.850;cause=21;text=\"unknown account\"\r\n" },
};


static const struct refusal *refusal_find(const char *result)
{
	size_t i;

	for (i = 0; refusalv[i].result; i++) {
		if (!strcmp(result, refusalv[i].result))
			break;
	}

	return &refusalv[i];
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

	/* not known whether it committed: the settlement of the failed
	   call (bcall_end) writes its CDR and removes what it reserved */
	if (err || PQntuples(res) != 1 || PQnfields(res) != 9) {
		tlog_warn(bc->id, "billing: authorisation failed: %m",
			  err ? err : EPROTO);
		++bl->st.refused;
		refuse(call, 503, "Service Unavailable", REFUSE_UNAVAILABLE);
		return;
	}

	result = billing_col_str(res, 0, 0);
	scode  = (uint16_t)billing_col_i64(res, 0, 1);

	if (strcmp(result, "ok")) {
		const struct refusal *rf = refusal_find(result);

		/* tg_authorize wrote the 'rejected' CDR, unless the call
		   had one already ('ended'): settling again is harmless */
		bc->refused = strcmp(result, "ended") != 0;
		++bl->st.refused;

		tlog_info(bc->id, "billing: refused (%s, balance %s)",
			  result, billing_col_str(res, 0, 8));
		refuse(call, scode >= 300 ? scode : 403, rf->phrase,
		       rf->hdr);
		return;
	}

	bc->rate.id               = billing_col_i64(res, 0, 2);
	bc->rate.connect_fee      = billing_col_i64(res, 0, 3);
	bc->rate.price_per_minute = billing_col_i64(res, 0, 4);
	bc->rate.initial          = (uint32_t)billing_col_i64(res, 0, 5);
	bc->rate.subsequent       = (uint32_t)billing_col_i64(res, 0, 6);
	bc->reserved              = billing_col_i64(res, 0, 7);
	bc->seq = 1;
	bacct_balance(bc->acct, res, 8);
	bc->authorized = true;

	if (rate_check(&bc->rate)) {
		tlog_err(bc->id, "billing: rate %lld is not usable",
			 (long long)bc->rate.id);
		refuse(call, 500, "Server Internal Error", NULL);
		return;
	}

	bc->chunk_s = first_step(bl->cfg);
	bcall_arm(bc);
	bc->exhausted = bc->funded_s < (int64_t)bc->chunk_s &&
		bc->funded_s < (int64_t)RATE_MAX_SECONDS;

	++bl->st.authorized;
	tlog_info(bc->id, "billing: authorised, rate %lld, %lld reserved "
		  "(%lld s), balance %s", (long long)bc->rate.id,
		  (long long)bc->reserved, (long long)bc->funded_s,
		  billing_col_str(res, 0, 8));

	/* the customer's price: the B2BUA's margin guard compares the
	   carriers' with it */
	b2bua_call_set_price(call, &(struct b2bua_tariff){
			.connect_fee = bc->rate.connect_fee,
			.per_minute  = bc->rate.price_per_minute,
			.initial     = bc->rate.initial,
			.subsequent  = bc->rate.subsequent,
		});
	b2bua_call_authorized(call, 0, NULL, NULL);
}


/*
 * Overload: is the database's queue so long that a new call would wait
 * beyond overload_wait for its authorisation?  Rather than refusing every
 * call while it is (which empties the queue, admits everything again and
 * flaps), the engine sheds a share of the new calls and moves the share
 * every SHED_STEP_MS: up by a tenth while the queue waits beyond the
 * budget, down by a twentieth for every step gone by once it waits less
 * than half of it.  The
 * calls admitted are spread evenly over the shed ones.
 */
static bool overloaded(struct billing *bl)
{
	uint32_t budget = bl->cfg->overload_wait, wait;
	uint64_t now = tmr_jiffies();

	if (!budget || !db_is_up(bl->db)) {
		bl->shed_share = 0;
		bl->shedding = false;
		return false;
	}

	if (!bl->shed_step_jif || now >= bl->shed_step_jif + SHED_STEP_MS) {
		/* the share comes down by the steps that went by, asked or
		   not: after a burst, sparse calls are not shed for long */
		uint64_t steps = bl->shed_step_jif ?
			(now - bl->shed_step_jif) / SHED_STEP_MS : 1;
		uint32_t down = steps > 20 ? 1000 : (uint32_t)steps * 50;

		wait = db_queue_wait_ms(bl->db);
		bl->shed_step_jif = now;

		if (wait > budget && bl->shed_share < 1000)
			bl->shed_share = bl->shed_share + 100 > 1000 ? 1000 :
				bl->shed_share + 100;
		else if (wait < budget / 2 && bl->shed_share)
			bl->shed_share = bl->shed_share < down ? 0 :
				bl->shed_share - down;

		if (!!bl->shed_share != bl->shedding)
			tlog_dbg(NULL, "billing: database queue waits %u ms "
				 "(budget %u ms): %s", wait, budget,
				 bl->shed_share ? "shedding new calls" :
				 "every call admitted again");
		bl->shedding = bl->shed_share > 0;
	}

	if (!bl->shed_share)
		return false;

	/* admit (1000 - share) of every 1000 calls, evenly */
	bl->shed_acc += 1000 - bl->shed_share;
	if (bl->shed_acc >= 1000) {
		bl->shed_acc -= 1000;
		return false;
	}

	return true;
}


/* count a call shed for overload; one log line a second at most */
static void shed(struct billing *bl)
{
	uint64_t now = tmr_jiffies();

	++bl->st.shed;

	if (!bl->shed_log_jif || now >= bl->shed_log_jif + SHED_LOG_MS) {
		tlog_warn(NULL, "billing: overload: database queue waits %u "
			  "ms (over %u ms): %llu calls got 503 since the "
			  "last line", db_queue_wait_ms(bl->db),
			  bl->cfg->overload_wait,
			  (unsigned long long)(bl->st.shed - bl->shed_logged));
		bl->shed_log_jif = now;
		bl->shed_logged = bl->st.shed;
	}
}


/*
 * The B2BUA's admission hook, asked for each new INVITE before any
 * transaction exists: false sheds the call with a stateless 503 and
 * Retry-After.  Shedding there costs a parse and a datagram, where a
 * call refused after identification would have cost a transaction, a
 * call object and, for a digest caller, an account look-up.
 */
bool billing_admit(uint32_t *retry_s, void *arg)
{
	struct billing *bl = arg;

	if (!overloaded(bl))
		return true;

	shed(bl);
	*retry_s = SHED_RETRY_AFTER;

	return false;
}


/*
 * The B2BUA's authorisation hook.  Every call gets its struct bcall
 * first, and from then on one CDR whatever happens (see the top of this
 * file); overload was dealt with at the door (billing_admit()).
 */
int billing_authz(struct b2bua_call *call, void *arg)
{
	struct billing *bl = arg;
	char acct[24], setup[24], interval[16];
	const char *v[8];
	struct bcall *bc;
	int err;

	/* taken over, or not renewed within the lease: another node may
	   hold this node's calls now */
	if (lease_refuse(bl, call))
		return 0;

	err = bcall_alloc(&bc, bl, call);
	if (err)
		return err;

	if (!bc->account_id) {
		++bl->st.refused;
		refuse(call, 403, "Forbidden",
		       "Reason: Q.850;cause=21;text=\"no account\"\r\n");
		return 0;
	}

	if (!billing_spool_ok(bl)) {
		++bl->st.refused;
		tlog_warn(bc->id, "billing: the spool cannot be written: "
			  "call refused");
		refuse(call, 503, "Service Unavailable", REFUSE_UNAVAILABLE);
		return 0;
	}

	/* a restart of the database is bridged: the authorisation waits
	   in the queue, within its deadline; out of reach for longer than
	   that, the call is refused at once */
	if (!db_is_up(bl->db) && db_down_ms(bl->db) >= AUTHZ_TIMEOUT_MS) {
		++bl->st.refused;
		tlog_warn(bc->id, "billing: database out of reach for %u ms:"
			  " call refused", db_down_ms(bl->db));
		refuse(call, 503, "Service Unavailable", REFUSE_UNAVAILABLE);
		return 0;
	}

	(void)re_snprintf(acct, sizeof(acct), "%lld",
			  (long long)bc->account_id);
	(void)re_snprintf(setup, sizeof(setup), "%llu",
			  (unsigned long long)bc->setup_ms);
	(void)re_snprintf(interval, sizeof(interval), "%u",
			  first_step(bl->cfg));

	v[0] = bc->id;
	v[1] = bl->cfg->node_name;
	v[2] = acct;
	v[3] = bc->caller;
	v[4] = bc->callee;
	v[5] = b2bua_call_gateway(call);
	v[6] = setup;
	v[7] = interval;

	err = db_exec(&bc->q, bl->db, STMT_AUTHORIZE, 8, v, AUTHZ_TIMEOUT_MS,
		      true, authorize_handler, bc);
	if (err) {
		/* nothing was sent; the failed call is settled all the same */
		tlog_err(bc->id, "billing: cannot queue the authorisation: %m",
			 err);
		++bl->st.refused;
		refuse(call, 503, "Service Unavailable", REFUSE_UNAVAILABLE);
		return 0;
	}

	++bl->st.q_authorize;

	return 0;
}

