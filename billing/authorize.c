/**
 * @file authorize.c  Prepaid billing: authorisation, reservations, cut-off
 *
 * Authorisation and the first reservation are one round trip
 * (tg_authorize).  Once the call is answered, the cut-off timer is armed
 * at the millisecond the reserved money ends; half an interval before
 * that tg_reserve asks for the next interval and the timer moves with
 * what it grants.  When the money ends both legs get BYE with the credit
 * Reason, and if the account has nothing left its ringing calls are
 * CANCELled.
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
	int64_t granted, reserved;

	if (!bc->call)
		return;

	if (err || PQntuples(res) != 1) {
		tlog_warn(bc->id, "billing: reservation failed: %m; the call"
			  " keeps %lld s", err ? err : EPROTO,
			  (long long)bc->funded_s);
		tmr_start(&bc->tmr_refill, REFILL_RETRY_MS, bcall_refill,
			  bc);
		return;
	}

	granted  = billing_col_i64(res, 0, 0);
	reserved = billing_col_i64(res, 0, 1);

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

	bcall_arm(bc);
}


/* reserve the next interval (a timer handler) */
void bcall_refill(void *arg)
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

	err = db_exec(&bc->q, bl->db, STMT_RESERVE, 3, v, RESERVE_TIMEOUT_MS,
		      true, reserve_handler, bc);
	if (err) {
		tlog_warn(bc->id, "billing: cannot reserve: %m", err);
		tmr_start(&bc->tmr_refill, REFILL_RETRY_MS, bcall_refill,
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
		lead = (uint64_t)cfg->reserve_interval * 500;
		if (lead < REFILL_LEAD_MIN_MS)
			lead = REFILL_LEAD_MIN_MS;
		if (lead > REFILL_LEAD_MAX_MS)
			lead = REFILL_LEAD_MAX_MS;

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

	result = billing_col_str(res, 0, 0);
	scode  = (uint16_t)billing_col_i64(res, 0, 1);

	if (strcmp(result, "ok")) {
		const struct refusal *rf = refusal_find(result);

		bc->refused = true;
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

	bcall_arm(bc);
	bc->exhausted = bc->funded_s <
		(int64_t)bl->cfg->reserve_interval &&
		bc->funded_s < (int64_t)RATE_MAX_SECONDS;

	++bl->st.authorized;
	tlog_info(bc->id, "billing: authorised, rate %lld, %lld reserved "
		  "(%lld s), balance %s", (long long)bc->rate.id,
		  (long long)bc->reserved, (long long)bc->funded_s,
		  billing_col_str(res, 0, 8));

	b2bua_call_authorized(call, 0, NULL, NULL);
}


int billing_authz(struct b2bua_call *call, void *arg)
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

	if (!db_is_up(bl->db) || !billing_spool_ok(bl)) {
		++bl->st.refused;
		tlog_warn(bc->id, "billing: %s: call refused", db_is_up(bl->db)
			  ? "the spool cannot be written" : "database down");
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

	err = db_exec(&bc->q, bl->db, STMT_AUTHORIZE, 8, v, AUTHZ_TIMEOUT_MS,
		      true, authorize_handler, bc);
	if (err) {
		b2bua_call_set_udata(call, bl->slot, NULL);
		bc->call = NULL;
		mem_deref(bc);
		return err;
	}

	++bl->st.q_authorize;

	return 0;
}

