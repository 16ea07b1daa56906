/**
 * @file settle.c  Prepaid billing: settlement of ended calls, heartbeat
 *
 * A call that ends is rated (never beyond what it had reserved) and
 * settled with one tg_settle round trip: CDR, cost, refund.  Pending
 * settlements are owned by the engine's list until the database confirms
 * them.  Each is first made durable in the spool (write-ahead, group
 * commit in the spool's writer thread), then sent; the database's
 * confirmation marks it done there.  Transient failures are sent again
 * after a back-off; a settlement the database refuses goes to the dead
 * letters and is tried once more in a sanitised form.  The heartbeat
 * records that the node is alive and the answer times of calls answered
 * since the last beat.
 */

#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <libpq-fe.h>
#include "billing_int.h"


enum {
	SETTLE_BACKOFF_MIN_MS = 200,
	SETTLE_BACKOFF_MAX_MS = 5000,
};


static void settle_destructor(void *arg)
{
	struct settle *st = arg;
	int i;

	list_unlink(&st->le);
	tmr_cancel(&st->tmr);
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
	tmr_init(&st->tmr);
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


void billing_flush_check(struct billing *bl)
{
	void (*h)(void *arg) = bl->flushh;

	if (!h || !list_isempty(&bl->settlel) || bl->recq || bl->replays)
		return;

	bl->flushh = NULL;
	h(bl->flush_arg);
}


/**
 * Text for the database: a copy of s, or, if s is not printable UTF-8,
 * its escaped form (text_escape), which is
 *
 * @return 0 or ENOMEM
 */
int billing_text_safe(char **dst, const char *s)
{
	size_t len, sz;
	char *d;

	if (!s)
		return str_dup(dst, "");

	len = strlen(s);
	if (text_utf8_valid(s, len))
		return str_dup(dst, s);

	sz = 4 * len + 1;
	d = mem_alloc(sz, NULL);
	if (!d)
		return ENOMEM;

	(void)text_escape(d, sz, s, len);
	*dst = d;

	return 0;
}


static void settle_send(struct settle *st);


static void settle_retry(void *arg)
{
	settle_send(arg);
}


/* try again later: 200 ms, doubling up to 5 s */
static void settle_later(struct settle *st, int err)
{
	st->backoff = st->backoff ? 2 * st->backoff : SETTLE_BACKOFF_MIN_MS;
	if (st->backoff > SETTLE_BACKOFF_MAX_MS)
		st->backoff = SETTLE_BACKOFF_MAX_MS;

	tlog_warn(st->v[0], "billing: settlement: %m (again in %u ms)", err,
		  st->backoff);
	tmr_start(&st->tmr, st->backoff, settle_retry, st);
}


/* SQL errors that go away by themselves (db_sqlstate_err()): statement
   timeout, deadlock, serialisation failure, lock not available,
   insufficient resources, a server shutting down or read-only */
static bool sql_transient(const PGresult *res)
{
	return res && db_sqlstate_err(PQresultErrorField(res,
						   PG_DIAG_SQLSTATE)) == EAGAIN;
}


/* the first line of the database's message */
static void sql_message(char *buf, size_t sz, const PGresult *res)
{
	const char *msg = res ? PQresultErrorMessage(res) : NULL;
	size_t n;

	if (!msg || !*msg)
		msg = "no message";

	n = strcspn(msg, "\r\n");
	if (n >= sz)
		n = sz - 1;
	memcpy(buf, msg, n);
	buf[n] = '\0';
}


/* the second form: text fields the database can take, no media */
static int settle_sanitise(struct settle *st)
{
	static const int textv[] = { 2, 3, 4, 11, 12, 14, 15, 16 };
	size_t i;

	for (i = 0; i < ARRAY_SIZE(textv); i++) {
		char **f = &st->v[textv[i]], *safe;

		if (!*f || text_utf8_valid(*f, strlen(*f)))
			continue;

		if (billing_text_safe(&safe, *f))
			return ENOMEM;
		mem_deref(*f);
		*f = safe;
	}

	st->v[13] = mem_deref(st->v[13]);
	st->sanitised = true;

	return 0;
}


/* confirmed or given up: it leaves the pending list (the spool's writer
   may still hold a reference) */
static void settle_finish(struct settle *st)
{
	struct billing *bl = st->bl;

	if (bl->spool)
		(void)spool_done(bl->spool, st->v[0]);

	list_unlink(&st->le);
	tmr_cancel(&st->tmr);
	st->finished = true;

	/* the spool is written: the live calls it left can be recovered */
	if (st->replay && bl->replays && !--bl->replays) {
		if (recover_start(bl))
			tlog_err(NULL, "billing: cannot queue the recovery of"
				 " the last run's calls");
	}

	mem_deref(st);
	billing_flush_check(bl);
}


/*
 * The database refused the settlement (an SQL error): the original goes
 * to the dead letters, a sanitised form is tried once, so that the money
 * is settled and a CDR written; if that is refused too the call stays
 * in the dead letters only.  Either way the spool is not held up.
 */
static void settle_refused(struct settle *st, const PGresult *res)
{
	struct billing *bl = st->bl;
	char msg[256];
	int err;

	sql_message(msg, sizeof(msg), res);

	if (st->sanitised) {
		tlog_err(st->v[0], "billing: the sanitised settlement was "
			 "refused too (%s): the call is only in %s", msg,
			 bl->spool ? spool_dead_path(bl->spool) : "the log");
		settle_finish(st);
		return;
	}

	++bl->st.dead_letters;
	err = bl->spool ? spool_dead(bl->spool, (const char *const *)st->v)
		: ENOENT;
	if (err) {
		struct mbuf *mb = mbuf_alloc(512);

		if (mb && !spool_line_settle(mb, (const char *const *)st->v))
			tlog_err(st->v[0], "billing: dead letter: %b",
				 mb->buf, mb->end - 1);
		mem_deref(mb);
	}

	tlog_err(st->v[0], "billing: settlement of account %s refused by the"
		 " database (%s): kept in %s; trying once without media and"
		 " with safe text", st->v[1], msg,
		 bl->spool ? spool_dead_path(bl->spool) : "the log");

	if (settle_sanitise(st)) {
		settle_finish(st);
		return;
	}

	st->backoff = 0;
	settle_send(st);
}


static void settle_handler(int err, const struct pg_result *pres, void *arg)
{
	const PGresult *res = (const PGresult *)pres;
	struct settle *st = arg;
	struct billing *bl = st->bl;
	int64_t refunded = 0;

	if (err == EPROTO && !sql_transient(res)) {
		settle_refused(st, res);
		return;
	}
	else if (err) {
		settle_later(st, err == EPROTO ? EAGAIN : err);
		return;
	}

	if (PQntuples(res) == 1) {
		refunded = billing_col_i64(res, 0, 1);
		bacct_balance(bacct_find(bl, st->account_id), res, 2);
		tlog_dbg(st->v[0], "billing: %s, refunded %lld, balance %s",
			 billing_col_str(res, 0, 0), (long long)refunded,
			 billing_col_str(res, 0, 2));
	}

	/* money came back: exhausted calls of the account may go on */
	if (refunded > 0 && st->account_id)
		billing_account_changed(bl, st->account_id);

	settle_finish(st);
}


static void settle_send(struct settle *st)
{
	struct billing *bl = st->bl;
	int err;

	st->sent = true;

	err = db_exec(&st->q, bl->db, STMT_SETTLE, SETTLE_NPARAMS,
		      (const char *const *)st->v, 0, true, settle_handler,
		      st);
	if (err) {
		tlog_err(st->v[0], "billing: cannot queue settlement: %m",
			 err);
		settle_later(st, err);
		return;
	}

	++bl->st.q_settle;
}


/**
 * The spool's writer made a settlement durable (err 0), or could not:
 * now it goes to the database
 */
void settle_durable(void *arg, int err, void *harg)
{
	struct settle *st = arg;
	(void)harg;

	st->spooling = false;

	if (st->finished)
		return;

	if (!err) {
		st->durable = true;
		++st->bl->st.spooled;
	}
	else {
		tlog_warn(st->v[0], "billing: settlement not written to the "
			  "spool (%m): it is only in memory", err);
	}

	if (!st->sent)
		settle_send(st);
}


/* hand a settlement to the spool's writer */
static int settle_spool(struct billing *bl, struct settle *st)
{
	int err;

	err = spool_settle(bl->spool, (const char *const *)st->v, st);
	if (err) {
		tlog_err(st->v[0], "billing: cannot spool settlement: %m; "
			 "it is only in memory", err);
		return err;
	}

	st->spooling = true;

	return 0;
}


/**
 * The spool's health changed.  Unhealthy: new calls are refused, and
 * what reaches the writer is sent without waiting.  Healthy again: the
 * settlements that are only in memory are written.
 */
void settle_spool_health(bool ok, int err, void *arg)
{
	struct billing *bl = arg;
	struct le *le;

	if (!ok) {
		++bl->st.spool_failures;
		(void)err;
		return;
	}

	for (le = bl->settlel.head; le; le = le->next) {
		struct settle *st = le->data;

		if (!st->durable && !st->spooling && !st->replay)
			(void)settle_spool(bl, st);
	}
}


/**
 * May new calls start?  Not while the spool cannot be written: their
 * settlements would not be durable
 */
bool billing_spool_ok(const struct billing *bl)
{
	return !bl || !bl->spool || spool_ok(bl->spool);
}


/**
 * Settle: the settlement joins the pending list (owned), is written to
 * the spool and, once durable there, sent.  Read back from the spool
 * (replay), without a spool, or while the spool is unhealthy, it is
 * sent at once.
 */
void billing_settle_queue(struct billing *bl, struct settle *st)
{
	list_append(&bl->settlel, &st->le, st);

	if (st->replay) {
		st->durable = true;
		settle_send(st);
		return;
	}

	if (!bl->spool) {
		tlog_warn(st->v[0], "billing: no spool file: settlement kept"
			  " in memory only");
		settle_send(st);
		return;
	}

	if (settle_spool(bl, st)) {
		settle_send(st);
		return;
	}

	if (!spool_ok(bl->spool)) {
		tlog_warn(st->v[0], "billing: the spool cannot be written: "
			  "settlement sent before it is durable");
		settle_send(st);
	}
}


/**
 * The media statistics of a call that ended, as JSON for its CDR.  They
 * must come before the call's B2BUA_EV_ENDED or B2BUA_EV_FAILED reaches
 * the engine (the relay subscribes to the B2BUA first).
 *
 * @param bl    the engine
 * @param call  the call
 * @param json  the statistics
 */
void billing_call_media(struct billing *bl, const struct b2bua_call *call,
			const char *json)
{
	struct bcall *bc;

	if (!bl || !call || !json)
		return;

	bc = b2bua_call_udata(call, bl->slot);
	if (!bc) {
		tlog_warn(b2bua_call_id(call), "billing: media statistics of "
			  "a call not held (settled already?)");
		return;
	}

	bc->media = mem_deref(bc->media);
	if (str_dup(&bc->media, json))
		tlog_warn(bc->id, "billing: media statistics lost");
}


/* the relay's statistics for the CDR, if small enough for a spool line */
static const char *media_json(const struct bcall *bc)
{
	const char *json = bc->media;

	if (json && strlen(json) > MEDIA_JSON_MAX) {
		tlog_warn(bc->id, "billing: media statistics "
			  "(%zu bytes) too large for the CDR",
			  strlen(json));
		return NULL;
	}

	return json;
}


/*
 * The seconds an answered call is rated for: from answer, every started
 * second.  A call ended for media timeout really ended with its last
 * packet (the relay set the call's end time to it), one ended by a
 * session timer with its last good refresh (the B2BUA set it): that ends
 * the billing, not the timeout that noticed it.  Never beyond what was
 * reserved: a cut-off a few ms late is tollgate's, not the customer's.
 */
static uint64_t call_seconds(const struct bcall *bc,
				const struct b2bua_call_record *rec)
{
	uint64_t talk = tmr_jiffies() - bc->answer_jif, d;

	/*
	 * The CDR's answer and end are wall-clock milliseconds; the talk
	 * time is the monotonic clock's, read a moment later.  The two may
	 * differ by a millisecond, and at a second's boundary that is a
	 * second billed beyond what the CDR shows: the call is charged up
	 * to the shorter of the two.  A media or session-timer end is
	 * dated back to the last packet or refresh, which only the wall
	 * clock of the record knows.
	 */
	if (rec->end_ms || rec->reason == B2BUA_R_MEDIA_TIMEOUT ||
	    rec->reason == B2BUA_R_SESSION_TIMER) {
		uint64_t end = rec->end_ms ? rec->end_ms : b2bua_wallclock_ms();
		uint64_t wall = end > bc->answer_ms ? end - bc->answer_ms : 0;

		if (wall < talk)
			talk = wall;
	}

	d = rate_seconds(talk);
	if (d > (uint64_t)bc->funded_s)
		d = (uint64_t)bc->funded_s;

	return d;
}


/**
 * The call is over: rate it and settle.  Everything of the call comes
 * from its record, and its media statistics from the relay (which told
 * us just before).
 */
void bcall_end(struct bcall *bc, struct b2bua_call *call,
	       const struct b2bua_call_record *rec)
{
	struct billing *bl = bc->bl;
	char acct[24], setup[24], answer[24], end[24], billeds[24];
	char costs[24], scodes[8], ccosts[24], margins[24];
	const char *v[SETTLE_NPARAMS];
	enum b2bua_reason reason = rec->reason;
	uint64_t billed = 0, end_ms, d = 0;
	int64_t cost = 0;
	uint16_t scode = rec->scode;
	struct settle *st;
	int err;

	b2bua_call_set_udata(call, bl->slot, NULL);
	bc->call = NULL;
	tmr_cancel(&bc->tmr_cut);
	tmr_cancel(&bc->tmr_refill);
	tmr_cancel(&bc->tmr_low);
	bc->q = mem_deref(bc->q);

	/* tg_authorize refused it and wrote its CDR */
	if (bc->refused)
		goto out;

	/* another node settled it (its lease was taken over): no second
	   settlement, and no answer for the next start's recovery */
	if (bc->elsewhere) {
		tlog_info(bc->id, "billing: ended, settled by another node");
		spool_forget(bl->spool, bc->id);
		goto out;
	}

	end_ms = rec->end_ms;
	if (!end_ms)
		end_ms = b2bua_wallclock_ms();

	if (bc->answered) {
		d = call_seconds(bc, rec);

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
	v[4]  = rec->gateway;
	v[5]  = setup;
	v[6]  = answer;
	v[7]  = end;
	v[8]  = billeds;
	v[9]  = costs;
	v[10] = scodes;
	v[11] = b2bua_party_name(rec->hangup);
	v[12] = b2bua_reason_name(reason);
	v[13] = media_json(bc);
	v[14] = rec->dialled;
	v[15] = rec->callee;
	v[16] = rec->carrier;
	v[17] = NULL;
	v[18] = NULL;

	/* what the carrier charges for the seconds billed to the customer,
	   by its own increments (0 for an unanswered call) */
	if (rec->carrier_tariff) {
		const struct b2bua_tariff *t = rec->carrier_tariff;
		struct rate cr = {
			.connect_fee      = t->connect_fee,
			.price_per_minute = t->per_minute,
			.initial          = t->initial,
			.subsequent       = t->subsequent,
		};
		int64_t ccost = 0;

		if (!bc->answered ||
		    !rate_call(&ccost, NULL, &cr, d)) {
			(void)re_snprintf(ccosts, sizeof(ccosts), "%lld",
					  (long long)ccost);
			(void)re_snprintf(margins, sizeof(margins), "%lld",
					  (long long)(cost - ccost));
			v[17] = ccosts;
			v[18] = margins;
		}
	}

	tlog_info(bc->id, "billing: %s, %llu s billed, cost %lld of %lld "
		  "reserved", v[12], (unsigned long long)billed,
		  (long long)cost, (long long)bc->reserved);

	err = settle_alloc(&st, bl, v);
	if (err) {
		tlog_err(bc->id, "billing: settlement lost: %m", err);
		spool_forget(bl->spool, bc->id);
		goto out;
	}

	++bl->st.calls;
	billing_settle_queue(bl, st);

 out:
	mem_deref(bc);
}



/* ------------------------------------------------------------ heartbeat */

void hb_note_answer(struct billing *bl, const struct bcall *bc)
{
	struct hbent *e = mem_zalloc(sizeof(*e), NULL);

	if (!e)
		return;

	str_ncpy(e->id, bc->id, sizeof(e->id));
	e->answer_ms = bc->answer_ms;
	list_append(&bl->hbl, &e->le, e);
}




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


void hb_tick(void *arg)
{
	struct billing *bl = arg;
	struct mbuf *ids = NULL, *ans = NULL;
	struct le *le;
	const char *v[3];
	int err = 0;

	tmr_start(&bl->tmr_hb, (uint64_t)bl->cfg->heartbeat * 1000, hb_tick,
		  bl);

	lease_tick(bl);

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

	err = db_exec(&bl->hbq, bl->db, STMT_HEARTBEAT, 3, v,
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

