/**
 * @file control.c  REST API: the cluster's control channel
 *
 * Several nodes share one database.  A request that concerns a call or
 * an account held by another node reaches that node through NOTIFY on
 * the channel tollgate_control (sent with pg_notify() through the
 * asynchronous client's queue); every node LISTENs on it (db_listen) and
 * acts only on what is addressed to its own name, or to "*".
 *
 * Payloads, one line of words separated by one space:
 *
 *   end NODE CALL_ID                end the call (BYE both legs, reason
 *                                   admin), as DELETE /v1/calls/{id}
 *   cut NODE|* ACCOUNT_ID block     end the account's calls: blocked
 *                                   (reason admin, Q.850 cause 21)
 *   cut NODE|* ACCOUNT_ID credit    ... its credit was set to zero
 *                                   (reason credit, Q.850 cause 16)
 *
 * NODE is 1..63 of [A-Za-z0-9._-], CALL_ID 1..63 of the same, ACCOUNT_ID
 * 1..18 digits without a leading zero.  Anyone who may NOTIFY in the database can
 * write on the channel: a payload that is not exactly one of the above is
 * ignored and counted (tollgate_control_messages_total{result="bad"}).
 * What a node acts on, it could have been asked by its own API; nothing
 * here creates, pays or refunds anything.  Messages sent while a node's
 * LISTEN connection was down are lost (a call it should have ended goes
 * on until it is asked again or its money ends).
 */

#include <string.h>
#include <libpq-fe.h>
#include "api_int.h"


#define CONTROL_CHANNEL "tollgate_control"

enum { PAYLOAD_MAX = 200, ACCOUNT_DIGITS_MAX = 18,
       CONTROL_TIMEOUT_MS = 5000 };

static const char stmt_notify[] = "api_ctl_notify";
static const char stmt_where[]  = "api_ctl_where";


int api_control_register(struct db *db)
{
	int err = 0;

	err |= db_prepare(db, stmt_notify,
			  "SELECT pg_notify('" CONTROL_CHANNEL "', $1)", 1);
	err |= db_prepare(db, stmt_where,
			  "SELECT l.node, " API_NODE_ALIVE
			  " FROM live_calls l"
			  " LEFT JOIN nodes n ON n.name = l.node"
			  " WHERE l.call_id = $1", 1);

	return err;
}


const char *api_ctl_result_name(enum api_ctl_result r)
{
	switch (r) {

	case API_CTL_DONE:       return "done";
	case API_CTL_NO_CALL:    return "no_call";
	case API_CTL_OTHER_NODE: return "other_node";
	case API_CTL_BAD:        return "bad";
	default:                 return "?";
	}
}


static bool word_valid(const char *s, size_t len, size_t max)
{
	size_t i;

	if (!s || !len || len > max)
		return false;

	for (i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			return false;
	}

	return true;
}


/** A node name: 1..63 of [A-Za-z0-9._-] */
bool api_node_valid(const char *s, size_t len)
{
	return word_valid(s, len, API_NODE_MAX);
}


/** A call id as the API takes it: 1..63 of [A-Za-z0-9._-] */
bool api_call_id_valid(const char *s, size_t len)
{
	return word_valid(s, len, API_CALL_ID_MAX);
}


/* ---------------------------------------------------------- sending */

/* the result of a control message nobody waits for; no argument, so that
 * it may outlive the API */
static void sent(int err, const struct pg_result *res, void *arg)
{
	(void)res;
	(void)arg;

	if (err)
		tlog_warn(NULL, "api: control message not sent: %m", err);
}


/* queue one control message.  With a handler it is an ordinary query: a
 * query without one would hold back every query queued after it until it
 * ended (db.h, Order) */
static int control_send(struct api *api, const char *payload)
{
	const char *v[1];
	int err;

	v[0] = payload;
	err = db_exec(NULL, api->db, stmt_notify, 1, v, CONTROL_TIMEOUT_MS,
		      false, sent, NULL);
	if (err)
		return err;

	++api->ctl_sent;

	return 0;
}


/**
 * End every call of an account on this node at once, and ask every other
 * node to do the same (blocked; credit set to zero).
 *
 * @return the number of calls ended on this node
 */
uint32_t api_cut_cluster(struct api *api, int64_t account_id,
			 enum api_cut why)
{
	char payload[PAYLOAD_MAX];
	uint32_t n;
	bool block = why == API_CUT_BLOCK;

	n = api_cut_account(api, account_id,
			    block ? B2BUA_R_ADMIN : B2BUA_R_CREDIT,
			    block ? API_REASON_BLOCK : API_REASON_CREDIT);

	if (!api->node)
		return n;

	(void)re_snprintf(payload, sizeof(payload), "cut * %lld %s",
			  (long long)account_id, block ? "block" : "credit");
	if (control_send(api, payload))
		tlog_warn(NULL, "api: account %lld: other nodes not told",
			  (long long)account_id);

	return n;
}


/* ---------------------------------------------- DELETE of a remote call */

struct remote {
	char id[API_CALL_ID_MAX + 1];
	char node[API_NODE_MAX + 1];
};


static void remote_sent(int err, const struct pg_result *res, void *arg)
{
	struct api_req *req = arg;
	const struct remote *rc = req->ctx;
	struct odict *od = NULL;

	if (err) {
		api_db_error(req, err, res, NULL, "control message");
		return;
	}

	++req->api->ctl_sent;
	tlog_info(rc->id, "api: node %s asked to end the call", rc->node);

	err  = odict_alloc(&od, 4);
	if (!err) {
		err  = odict_entry_add(od, "call_id", ODICT_STRING, rc->id);
		err |= odict_entry_add(od, "node", ODICT_STRING, rc->node);
	}

	if (err)
		api_error(req, 500, NULL, "out of memory");
	else
		api_reply(req, 202, od);

	mem_deref(od);
}


static void where_done(int err, const struct pg_result *res, void *arg)
{
	struct api_req *req = arg;
	struct remote *rc = req->ctx;
	const PGresult *r = (const PGresult *)res;
	char payload[PAYLOAD_MAX];
	const char *node, *v[1];

	if (err) {
		api_db_error(req, err, res, NULL, "call");
		return;
	}

	if (PQntuples(r) != 1) {
		api_error(req, 404, "id", "no call %s", rc->id);
		return;
	}

	node = PQgetvalue(r, 0, 0);

	/* ours but no longer in memory: it ended and waits for its
	 * settlement */
	if (!strcmp(node, req->api->node)) {
		api_error(req, 404, "id", "no call %s", rc->id);
		return;
	}

	if (!api_node_valid(node, strlen(node))) {
		api_error(req, 409, "id", "call %s is held by a node whose "
			  "name cannot be addressed", rc->id);
		return;
	}

	if (strcmp(PQgetvalue(r, 0, 1), "t")) {
		api_error(req, 409, "id", "call %s is held by node %s, whose "
			  "lease has expired", rc->id, node);
		return;
	}

	str_ncpy(rc->node, node, sizeof(rc->node));
	(void)re_snprintf(payload, sizeof(payload), "end %s %s", rc->node,
			  rc->id);
	v[0] = payload;
	(void)api_exec(req, stmt_notify, 1, v, remote_sent);
}


/**
 * DELETE /v1/calls/{id} of a call this node does not hold: look up which
 * node holds it (live_calls); if that node is alive, tell it to end the
 * call and answer 202 {"call_id", "node"}.
 */
void api_call_remote(struct api_req *req, const char *id)
{
	struct remote *rc;
	const char *v[1];

	if (!req->api->node || !api_call_id_valid(id, strlen(id))) {
		api_error(req, 404, "id", "no call %s", id);
		return;
	}

	rc = mem_zalloc(sizeof(*rc), NULL);
	if (!rc) {
		api_error(req, 500, NULL, "out of memory");
		return;
	}

	str_ncpy(rc->id, id, sizeof(rc->id));
	req->ctx = rc;

	v[0] = rc->id;
	(void)api_exec(req, stmt_where, 1, v, where_done);
}


/* ---------------------------------------------------------- receiving */

/* split payload into exactly n words separated by one space each */
static bool split(const char *p, struct pl *w, unsigned n)
{
	unsigned i = 0;

	while (i < n) {
		const char *sp = strchr(p, ' ');
		size_t l = sp ? (size_t)(sp - p) : strlen(p);

		if (!l)
			return false;

		w[i].p = p;
		w[i].l = l;
		++i;

		if (!sp)
			break;
		p = sp + 1;
		if (i == n)
			return false;       /* a word too many */
	}

	return i == n;
}


static bool node_word_valid(const struct pl *w, bool any)
{
	if (any && w->l == 1 && w->p[0] == '*')
		return true;

	return api_node_valid(w->p, w->l);
}


static bool digits(const struct pl *w, size_t max)
{
	size_t i;

	/* the form the sender writes: no leading zero */
	if (!w->l || w->l > max || w->p[0] == '0')
		return false;

	for (i = 0; i < w->l; i++) {
		if (w->p[i] < '0' || w->p[i] > '9')
			return false;
	}

	return true;
}


static int parse_end(struct api_ctl_msg *m, const struct pl *w)
{
	if (!node_word_valid(&w[1], false) ||
	    !api_call_id_valid(w[2].p, w[2].l))
		return EBADMSG;

	m->verb = API_CTL_END;
	(void)pl_strcpy(&w[1], m->node, sizeof(m->node));
	(void)pl_strcpy(&w[2], m->call_id, sizeof(m->call_id));

	return 0;
}


static int parse_cut(struct api_ctl_msg *m, const struct pl *w)
{
	int64_t id;

	if (!node_word_valid(&w[1], true) ||
	    !digits(&w[2], ACCOUNT_DIGITS_MAX))
		return EBADMSG;

	id = (int64_t)pl_u64(&w[2]);
	if (id <= 0)
		return EBADMSG;

	if (!pl_strcmp(&w[3], "block"))
		m->why = API_CUT_BLOCK;
	else if (!pl_strcmp(&w[3], "credit"))
		m->why = API_CUT_CREDIT;
	else
		return EBADMSG;

	m->verb = API_CTL_CUT;
	m->account_id = id;
	(void)pl_strcpy(&w[1], m->node, sizeof(m->node));

	return 0;
}


/**
 * Parse a control message (the payload of NOTIFY tollgate_control)
 *
 * @param m        filled in if success
 * @param payload  the payload
 *
 * @return 0, or EBADMSG: not exactly one of the messages above
 */
int api_ctl_parse(struct api_ctl_msg *m, const char *payload)
{
	struct pl w[4];
	size_t len;

	if (!m || !payload)
		return EINVAL;

	memset(m, 0, sizeof(*m));
	len = strlen(payload);
	if (!len || len >= PAYLOAD_MAX)
		return EBADMSG;

	if (!strncmp(payload, "end ", 4) && split(payload, w, 3))
		return parse_end(m, w);

	if (!strncmp(payload, "cut ", 4) && split(payload, w, 4))
		return parse_cut(m, w);

	return EBADMSG;
}


static enum api_ctl_result act_end(struct api *api,
				   const struct api_ctl_msg *m)
{
	struct b2bua_call *call;
	enum b2bua_state s;

	call = b2bua_call_find(api->b2bua, m->call_id);
	if (!call)
		return API_CTL_NO_CALL;

	s = b2bua_call_state(call);
	if (s == B2BUA_ST_TERMINATING || s == B2BUA_ST_CANCELLING ||
	    s == B2BUA_ST_CLOSED)
		return API_CTL_NO_CALL;

	tlog_info(m->call_id, "api: call ended on request of another node");

	return api_call_end_local(api, call) ? API_CTL_NO_CALL :
		API_CTL_DONE;
}


static enum api_ctl_result act_cut(struct api *api,
				   const struct api_ctl_msg *m)
{
	bool block = m->why == API_CUT_BLOCK;
	uint32_t n;

	n = api_cut_account(api, m->account_id,
			    block ? B2BUA_R_ADMIN : B2BUA_R_CREDIT,
			    block ? API_REASON_BLOCK : API_REASON_CREDIT);
	if (n)
		tlog_info(NULL, "api: account %lld %s on another node: %u "
			  "calls ended", (long long)m->account_id,
			  block ? "blocked" : "out of credit", n);

	return n ? API_CTL_DONE : API_CTL_NO_CALL;
}


static enum api_ctl_result heard(struct api *api, const char *payload)
{
	struct api_ctl_msg m;

	if (api_ctl_parse(&m, payload))
		return API_CTL_BAD;

	/* "*" is for every node, and only in a cut */
	if (strcmp(m.node, api->node) &&
	    !(m.verb == API_CTL_CUT && !strcmp(m.node, "*")))
		return API_CTL_OTHER_NODE;

	return m.verb == API_CTL_END ? act_end(api, &m) : act_cut(api, &m);
}


static void listen_h(const char *payload, void *arg)
{
	struct api *api = arg;
	enum api_ctl_result r;

	if (!payload) {
		tlog_info(NULL, "api: node %s listening for control "
			  "messages", api->node);
		return;
	}

	r = heard(api, payload);
	++api->ctl_heard[r];

	if (r == API_CTL_BAD)
		tlog_warn(NULL, "api: malformed control message ignored "
			  "(%zu bytes)", strlen(payload));
}


/**
 * Take part in a cluster: this node is named node in live_calls and
 * nodes; it LISTENs for control messages, and requests about calls and
 * accounts held by other nodes reach them.
 *
 * @param api       the API
 * @param node      this node's name (copied; 1..63 of [A-Za-z0-9._-])
 * @param conninfo  libpq connection string of the LISTEN connection
 *
 * @return 0 if success, EINVAL (the name cannot be addressed)
 */
int api_cluster_start(struct api *api, const char *node,
		      const char *conninfo)
{
	int err;

	if (!api || !node || !conninfo)
		return EINVAL;

	if (!api_node_valid(node, strlen(node))) {
		tlog_warn(NULL, "api: node_name '%s' is not 1..63 of "
			  "[A-Za-z0-9._-]: no cluster control", node);
		return EINVAL;
	}

	err = str_dup(&api->node, node);
	if (err)
		return err;

	err = db_listen_alloc(&api->ctl, conninfo, CONTROL_CHANNEL,
			      listen_h, api);
	if (err)
		api->node = mem_deref(api->node);

	return err;
}
