/**
 * @file lease.c  The node's lease: renewal, takeover of dead nodes, and
 *                what a node does when it finds its lease taken
 *
 * tollgate.c claims the lease before the event loop runs
 * (db_lease_claim_sync()) and hands it over with billing_lease_start().
 * From then on, with every heartbeat:
 *
 *   renew     tg_lease_renew.  While it holds, and only then, tg_takeover
 *             follows: every node whose lease has expired (on the
 *             database's clock) is taken by exactly one survivor, whose
 *             recovery settles its live calls (reason 'recovered'),
 *             charged from their answer up to the last moment that node
 *             was known alive, never beyond their reservation.  A node
 *             whose renewals fail takes nobody over (tg_takeover checks
 *             the survivor's own lease), and takes no new calls once its
 *             last good renewal is older than the lease.
 *   lost      the renewal says the lease is no longer this instance's (it
 *             was stopped, or cut off from the database, for longer than
 *             the lease, and a survivor took its calls): new calls get
 *             503 with Retry-After; tg_lease_lost names the calls it still
 *             holds that another node settled, and those end with BYE on
 *             both legs and no settlement of their own (no second CDR).
 *   claim     then tg_lease_claim: the name is free again and the node
 *             takes calls; or another live instance has it, and the
 *             lease-lost handler ends the process.
 */

#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <libpq-fe.h>
#include "billing_int.h"


#define STMT_LEASE_RENEW "tg_lease_renew"
#define STMT_LEASE_CLAIM "tg_lease_claim"
#define STMT_LEASE_LOST  "tg_lease_lost"
#define STMT_TAKEOVER    "tg_takeover"

#define LOST_REASON "Q.850;cause=41;text=\"the node lost its lease\""

enum { LEASE_RETRY_AFTER = 5 };   /* s, for callers while it has none */


int lease_register(struct db *db)
{
	int err;

	err = db_prepare(db, STMT_LEASE_RENEW,
			 "SELECT tg_lease_renew($1, $2, $3::integer)", 3);
	if (err)
		return err;

	err = db_prepare(db, STMT_LEASE_CLAIM,
			 "SELECT claimed, instance, sip_addr, api_addr,"
			 " since_ms, until_ms FROM tg_lease_claim($1, $2, $3,"
			 " $4, $5, $6::integer, true)", 6);
	if (err)
		return err;

	err = db_prepare(db, STMT_LEASE_LOST,
			 "SELECT tg_lease_lost($1, $2::text[])", 2);
	if (err)
		return err;

	return db_prepare(db, STMT_TAKEOVER,
			  "SELECT call_id, account_id, caller, callee, gateway,"
			  " setup_ms, answer_ms, alive_ms, reserved, rate_id,"
			  " connect_fee, price_per_minute, initial_increment,"
			  " subsequent_increment, node"
			  " FROM tg_takeover($1, $2, $3::boolean)", 3);
}


static uint64_t lease_ms(const struct billing *bl)
{
	return (uint64_t)billing_lease_seconds(bl->cfg) * 1000;
}


/**
 * Whether the node holds its lease: claimed, not taken, and renewed
 * within the lease (true if the node runs without one)
 */
bool billing_lease_held(const struct billing *bl)
{
	if (!bl || !bl->instance)
		return true;

	if (bl->lease_lost)
		return false;

	return tmr_jiffies() < bl->lease_jif + lease_ms(bl);
}


/**
 * A new call while the node holds no lease: 503 with Retry-After, before
 * anything of the call exists here (no reservation, no CDR)
 *
 * @return true if the call was refused
 */
bool lease_refuse(struct billing *bl, struct b2bua_call *call)
{
	char hdrs[64];

	if (billing_lease_held(bl))
		return false;

	++bl->st.refused;
	tlog_warn(b2bua_call_id(call), "billing: node %s holds no lease: "
		  "call refused", bl->cfg->node_name);
	(void)re_snprintf(hdrs, sizeof(hdrs), "Retry-After: %u\r\n",
			  LEASE_RETRY_AFTER);
	b2bua_call_authorized(call, 503, "Service Unavailable", hdrs);

	return true;
}


/**
 * Whether a call's cut-off waits for the lease: while the node is not
 * sure it holds it but can ask (it was stopped, its database is
 * reachable), for at most two heartbeats and a second from the first
 * time it asked.  Cut off from the database, it cuts on time.
 */
bool lease_hold(struct bcall *bc)
{
	const struct billing *bl = bc->bl;
	uint64_t now = tmr_jiffies();

	if (billing_lease_held(bl) || !db_is_up(bl->db)) {
		bc->lease_hold_jif = 0;
		return false;
	}

	if (!bc->lease_hold_jif) {
		bc->lease_hold_jif = now;
		tlog_info(bc->id, "billing: money ends while the node's lease "
			  "is in doubt: the cut-off waits for the renewal");
	}

	return now < bc->lease_hold_jif +
		2 * (uint64_t)bl->cfg->heartbeat * 1000 + 1000;
}


/* ------------------------------------------------------------ takeover */

static void takeover_handler(int err, const struct pg_result *pres,
			     void *arg)
{
	const PGresult *res = (const PGresult *)pres;
	struct billing *bl = arg;
	int i, n, calls = 0;

	if (err == ETIMEDOUT || err == ECONNRESET) {
		/* it may have committed: the next one asks for its calls */
		bl->take_unsure = true;
		tlog_warn(NULL, "billing: takeover unanswered: %m", err);
		return;
	}

	if (err || PQnfields(res) != RECOVER_COLS) {
		tlog_warn(NULL, "billing: takeover failed: %m",
			  err ? err : EPROTO);
		return;
	}

	bl->take_unsure = false;
	n = PQntuples(res);

	for (i = 0; i < n; i++) {
		if (PQgetisnull(res, i, 0)) {
			++bl->st.takeovers;
			tlog_warn(NULL, "billing: node %s is dead (lease "
				  "expired; last alive %s ms): taking over "
				  "its calls", PQgetvalue(res, i, 14),
				  PQgetvalue(res, i, 7));
			continue;
		}

		++calls;
		++bl->st.taken_over;
		recover_row(bl, pres, i);
	}

	if (calls)
		tlog_warn(NULL, "billing: settling %d calls of dead nodes",
			  calls);
}


static void takeover_start(struct billing *bl)
{
	const char *v[3];
	int err;

	/* the start-up recovery reads this node's own calls first: a call
	   moved here must not meet it */
	if (bl->takeq || !bl->rec_done)
		return;

	v[0] = bl->cfg->node_name;
	v[1] = bl->instance;
	v[2] = bl->take_unsure ? "true" : "false";

	err = db_exec(&bl->takeq, bl->db, STMT_TAKEOVER, 3, v,
		      bl->cfg->heartbeat * 1000, false, takeover_handler, bl);
	if (err)
		tlog_warn(NULL, "billing: takeover: %m", err);
}


/* --------------------------------------------------- lost and regained */

static void claim_handler(int err, const struct pg_result *pres, void *arg)
{
	const PGresult *res = (const PGresult *)pres;
	struct billing *bl = arg;
	uint64_t since;

	if (err || PQntuples(res) != 1 || PQnfields(res) != 6) {
		tlog_warn(NULL, "billing: cannot claim the lease of node %s "
			  "again: %m", bl->cfg->node_name, err ? err : EPROTO);
		return;
	}

	if (!strcmp(PQgetvalue(res, 0, 0), "t")) {
		bl->lease_lost = false;
		bl->lease_jif = tmr_jiffies();
		tlog_warn(NULL, "billing: node %s holds its lease again: "
			  "taking calls", bl->cfg->node_name);
		return;
	}

	since = strtoull(billing_col_str(res, 0, 4), NULL, 10);
	tlog_err(NULL, "billing: node %s is held by instance %s (sip %s, "
		 "api %s, since %llu ms)", bl->cfg->node_name,
		 billing_col_str(res, 0, 1), billing_col_str(res, 0, 2),
		 billing_col_str(res, 0, 3), (unsigned long long)since);

	if (bl->losth)
		bl->losth(billing_col_str(res, 0, 1),
			  billing_col_str(res, 0, 2), since, bl->lost_arg);
}


static void claim_start(struct billing *bl)
{
	char secs[16];
	const char *v[6];
	int err;

	(void)re_snprintf(secs, sizeof(secs), "%u",
			  billing_lease_seconds(bl->cfg));
	v[0] = bl->cfg->node_name;
	v[1] = bl->instance;
	v[2] = bl->sip_addr;
	v[3] = bl->api_addr;
	v[4] = bl->lock_key;
	v[5] = secs;

	err = db_exec(&bl->leaseq, bl->db, STMT_LEASE_CLAIM, 6, v,
		      bl->cfg->heartbeat * 1000, true, claim_handler, bl);
	if (err)
		tlog_warn(NULL, "billing: lease claim: %m", err);
}


static void lost_handler(int err, const struct pg_result *pres, void *arg)
{
	const PGresult *res = (const PGresult *)pres;
	struct billing *bl = arg;
	int i, n, ended = 0;

	if (err || PQnfields(res) != 1) {
		tlog_warn(NULL, "billing: cannot learn which calls other "
			  "nodes settled: %m", err ? err : EPROTO);
		return;
	}

	n = PQntuples(res);
	for (i = 0; i < n; i++) {
		struct b2bua_call *call;
		struct bcall *bc;

		call = b2bua_call_find(bl->b2bua, PQgetvalue(res, i, 0));
		bc = call ? b2bua_call_udata(call, bl->slot) : NULL;
		if (!bc)
			continue;

		bc->elsewhere = true;
		tmr_cancel(&bc->tmr_cut);
		tmr_cancel(&bc->tmr_refill);
		tmr_cancel(&bc->tmr_low);
		bc->q = mem_deref(bc->q);
		tlog_warn(bc->id, "billing: another node settled the call: "
			  "ending it");
		++ended;
		(void)b2bua_call_end(call, B2BUA_R_FAILED, LOST_REASON);
	}

	tlog_warn(NULL, "billing: node %s lost its lease: %d of its calls "
		  "were settled by another node and end now; claiming the "
		  "lease again", bl->cfg->node_name, ended);

	claim_start(bl);
}


static bool ids_append(struct le *le, void *arg)
{
	const struct bacct *a = le->data;
	struct mbuf *mb = arg;
	struct le *c;

	for (c = a->calls.head; c; c = c->next) {
		const struct bcall *bc = c->data;

		if (!bc->call || bc->elsewhere)
			continue;

		if (mbuf_printf(mb, "%s\"%s\"", mb->end > 1 ? "," : "",
				bc->id))
			return true;
	}

	return false;
}


static void lost_start(struct billing *bl)
{
	struct mbuf *ids = mbuf_alloc(256);
	const char *v[2];
	int err;

	if (!ids) {
		err = ENOMEM;
		goto out;
	}

	/* call ids are the B2BUA's own: letters and digits, no quotes */
	err = mbuf_write_u8(ids, '{');
	if (!err && hash_apply(bl->accts, ids_append, ids))
		err = ENOMEM;
	err |= mbuf_write_u8(ids, '}');
	err |= mbuf_write_u8(ids, 0);
	if (err)
		goto out;

	v[0] = bl->cfg->node_name;
	v[1] = (const char *)ids->buf;

	err = db_exec(&bl->leaseq, bl->db, STMT_LEASE_LOST, 2, v,
		      bl->cfg->heartbeat * 1000, true, lost_handler, bl);

 out:
	if (err)
		tlog_warn(NULL, "billing: lost lease: %m", err);
	mem_deref(ids);
}


/* --------------------------------------------------------------- renew */

struct renew {
	struct billing *bl;      /**< borrowed                        */
	uint64_t sent_jif;       /**< the lease holds from here       */
};


static void renew_handler(int err, const struct pg_result *pres, void *arg)
{
	const PGresult *res = (const PGresult *)pres;
	struct renew *rn = arg;
	struct billing *bl = rn->bl;

	if (err || PQntuples(res) != 1 || PQnfields(res) != 1) {
		tlog_warn(NULL, "billing: lease of node %s not renewed: %m",
			  bl->cfg->node_name, err ? err : EPROTO);
		return;
	}

	if (!strcmp(PQgetvalue(res, 0, 0), "t")) {
		bl->lease_jif = rn->sent_jif;
		takeover_start(bl);
		return;
	}

	bl->lease_lost = true;
	tlog_warn(NULL, "billing: node %s lost its lease (another node took "
		  "it over): new calls get 503", bl->cfg->node_name);
	lost_start(bl);
}


/**
 * With every heartbeat: renew the lease, or, once lost, find the calls
 * settled elsewhere and claim it again
 */
void lease_tick(struct billing *bl)
{
	char secs[16];
	const char *v[3];
	struct renew *rn;
	int err;

	if (!bl->instance || bl->leaseq || !db_is_up(bl->db))
		return;

	if (bl->lease_lost) {
		lost_start(bl);
		return;
	}

	rn = mem_zalloc(sizeof(*rn), NULL);
	if (!rn)
		return;

	rn->bl = bl;
	rn->sent_jif = tmr_jiffies();

	(void)re_snprintf(secs, sizeof(secs), "%u",
			  billing_lease_seconds(bl->cfg));
	v[0] = bl->cfg->node_name;
	v[1] = bl->instance;
	v[2] = secs;

	err = db_exec_owned(&bl->leaseq, bl->db, STMT_LEASE_RENEW, 3, v,
			    bl->cfg->heartbeat * 1000, true, renew_handler,
			    rn);
	if (err) {
		mem_deref(rn);
		tlog_warn(NULL, "billing: lease renewal: %m", err);
	}
}


/**
 * Hand the engine the lease this run claimed: it renews it with every
 * heartbeat, takes over dead nodes, and refuses new calls while it has
 * none.  Without it, the engine runs as a node of its own.
 *
 * @param bl     the engine
 * @param ls     the lease (copied)
 * @param losth  called once another live instance holds the name
 * @param arg    its argument
 *
 * @return 0 if success
 */
int billing_lease_start(struct billing *bl, const struct billing_lease *ls,
			billing_lease_lost_h *losth, void *arg)
{
	int err;

	if (!bl || !ls || !ls->instance || !ls->lock_key)
		return EINVAL;

	bl->instance = mem_deref(bl->instance);
	bl->sip_addr = mem_deref(bl->sip_addr);
	bl->api_addr = mem_deref(bl->api_addr);
	bl->lock_key = mem_deref(bl->lock_key);

	err  = str_dup(&bl->instance, ls->instance);
	err |= str_dup(&bl->lock_key, ls->lock_key);
	if (ls->sip_addr)
		err |= str_dup(&bl->sip_addr, ls->sip_addr);
	if (ls->api_addr)
		err |= str_dup(&bl->api_addr, ls->api_addr);
	if (err) {
		bl->instance = mem_deref(bl->instance);
		return ENOMEM;
	}

	bl->losth = losth;
	bl->lost_arg = arg;
	bl->lease_lost = false;
	bl->lease_jif = tmr_jiffies();

	tlog_info(NULL, "billing: node %s holds its lease (instance %s, %u s,"
		  " renewed every %u s)", bl->cfg->node_name, bl->instance,
		  billing_lease_seconds(bl->cfg), bl->cfg->heartbeat);

	return 0;
}
