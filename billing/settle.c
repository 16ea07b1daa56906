/**
 * @file settle.c  Prepaid billing: settlement of ended calls, heartbeat
 *
 * A call that ends is rated (never beyond what it had reserved) and
 * settled with one tg_settle round trip: CDR, cost, refund.  Pending
 * settlements are owned by the engine's list until the database confirms
 * them; while the database is down they also go to the spool file.  The
 * heartbeat records that the node is alive and the answer times of calls
 * answered since the last beat, for crash recovery.
 */

#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <libpq-fe.h>
#include "billing_int.h"


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


void settle_spool(struct billing *bl, struct settle *st)
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


void billing_flush_check(struct billing *bl)
{
	void (*h)(void *arg) = bl->flushh;

	if (!h || !list_isempty(&bl->settlel) || bl->recq || bl->replays)
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
		refunded = billing_col_i64(res, 0, 1);
		bacct_balance(bacct_find(bl, st->account_id), res, 2);
		tlog_dbg(st->v[0], "billing: %s, refunded %lld, balance %s",
			 billing_col_str(res, 0, 0), (long long)refunded,
			 billing_col_str(res, 0, 2));
	}

	if (st->spooled && bl->spool)
		(void)spool_done(bl->spool, st->v[0]);

	/* money came back: exhausted calls of the account may go on */
	if (refunded > 0 && st->account_id)
		billing_account_changed(bl, st->account_id);

 done:
	/* the spool is written: the live calls it left can be recovered */
	if (st->replay && bl->replays && !--bl->replays) {
		if (recover_start(bl))
			tlog_err(NULL, "billing: cannot queue the recovery of"
				 " the last run's calls");
	}

	mem_deref(st);
	billing_flush_check(bl);
}


static void settle_send(struct settle *st)
{
	struct billing *bl = st->bl;
	int err;

	err = db_exec(&st->q, bl->db, STMT_SETTLE, SETTLE_NPARAMS,
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
	char costs[24], scodes[8];
	const char *v[SETTLE_NPARAMS];
	enum b2bua_reason reason = rec->reason;
	uint64_t billed = 0, end_ms;
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

	end_ms = rec->end_ms;
	if (!end_ms)
		end_ms = b2bua_wallclock_ms();

	if (bc->answered) {
		uint64_t talk = tmr_jiffies() - bc->answer_jif, d;

		/* a call ended for media timeout really ended with its last
		 * packet (the relay set the call's end time to it): that
		 * ends the billing, not the timeout that noticed it */
		if (reason == B2BUA_R_MEDIA_TIMEOUT) {
			uint64_t wall = end_ms > bc->answer_ms
				? end_ms - bc->answer_ms : 0;

			if (wall < talk)
				talk = wall;
		}
		d = rate_seconds(talk);

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

