/**
 * @file status.c  REST API: GET /v1/health and GET /metrics
 *
 * Health answers 200 when SIP runs and the database answers a query,
 * else 503, with the details and the nodes of the cluster (nodes).  Metrics are Prometheus text (format
 * 0.0.4): call counters from the B2BUA's events, billing's and the
 * database client's statistics, the relay's ports and packets.
 */

#include <string.h>
#include <libpq-fe.h>
#include "api_int.h"


enum { HEALTH_DB_TIMEOUT_MS = 2000 };

static const char stmt_ping[] = "api_ping";


int api_status_register(struct db *db)
{
	/* the ping reads the nodes of the cluster */
	return db_prepare(db, stmt_ping,
			  "SELECT n.name, n.sip_addr, n.api_addr,"
			  " to_char(n.started_at AT TIME ZONE 'UTC',"
			  " 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') AS started,"
			  " to_char(n.lease_until AT TIME ZONE 'UTC',"
			  " 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
			  " AS lease_until,"
			  " " API_NODE_ALIVE
			  " AS alive, n.draining"
			  " FROM nodes n ORDER BY n.name LIMIT 1000", 0);
}


/* call rate: calls created per second, over the last API_RATE_WINDOW s */
static void rate_tick(struct api *api)
{
	uint64_t sec = tmr_jiffies() / 1000;

	if (sec == api->rate_sec)
		return;

	if (sec - api->rate_sec >= API_RATE_WINDOW) {
		memset(api->rate_slot, 0, sizeof(api->rate_slot));
	}
	else {
		uint64_t s;

		for (s = api->rate_sec + 1; s <= sec; s++)
			api->rate_slot[s % API_RATE_WINDOW] = 0;
	}

	api->rate_sec = sec;
}


void api_status_event(struct b2bua_call *call, enum b2bua_event ev,
		      const struct b2bua_call_record *rec, void *arg)
{
	struct api *api = arg;
	unsigned r;
	(void)call;

	switch (ev) {

	case B2BUA_EV_CREATED:
		++api->created;
		rate_tick(api);
		++api->rate_slot[api->rate_sec % API_RATE_WINDOW];
		break;

	case B2BUA_EV_ANSWERED:
		++api->answered;
		break;

	case B2BUA_EV_ENDED:
	case B2BUA_EV_FAILED:
		r = (unsigned)rec->reason;
		if (r < API_OUTCOMES)
			++api->outcome[r];
		break;

	default:
		break;
	}
}


/* -------------------------------------------------------------- health */

struct health {
	uint64_t t0;
};


static void ping_done(int err, const struct pg_result *res, void *arg)
{
	struct api_req *req = arg;
	struct api *api = req->api;
	const struct health *h = req->ctx;
	struct odict *od = NULL, *sip = NULL, *db = NULL;
	uint64_t ms = tmr_jiffies() - h->t0;
	bool db_ok = !err;

	err  = odict_alloc(&od, 8);
	err |= odict_alloc(&sip, 4);
	err |= odict_alloc(&db, 4);
	if (err)
		goto out;

	err  = odict_entry_add(sip, "up", ODICT_BOOL, true);
	err |= odict_entry_add(sip, "calls", ODICT_INT,
			       (int64_t)b2bua_call_count(api->b2bua));
	err |= odict_entry_add(db, "reachable", ODICT_BOOL, db_ok);
	err |= odict_entry_add(db, "latency_ms", ODICT_INT, (int64_t)ms);
	err |= odict_entry_add(od, "status", ODICT_STRING,
			       db_ok ? "ok" : "degraded");
	err |= odict_entry_add(od, "version", ODICT_STRING,
			       TOLLGATE_VERSION);
	err |= odict_entry_add(od, "uptime_s", ODICT_INT,
			       (int64_t)((tmr_jiffies() - api->start_jif) /
					 1000));
	err |= odict_entry_add(od, "billing", ODICT_BOOL,
			       api->billing);
	err |= odict_entry_add(od, "draining", ODICT_BOOL,
			       b2bua_draining(api->b2bua));
	err |= odict_entry_add(od, "sip", ODICT_OBJECT, sip);
	err |= odict_entry_add(od, "database", ODICT_OBJECT, db);
	err |= api->node ?
		odict_entry_add(od, "node", ODICT_STRING, api->node) :
		odict_entry_add(od, "node", ODICT_NULL);
	err |= db_ok ? api_rows(od, "nodes", res, "sssssbb") :
		odict_entry_add(od, "nodes", ODICT_NULL);

 out:
	if (err)
		api_error(req, 500, NULL, "out of memory");
	else
		api_reply(req, db_ok ? 200 : 503, od);

	mem_deref(db);
	mem_deref(sip);
	mem_deref(od);
}


/** GET /v1/health */
void api_health_h(struct api_req *req)
{
	struct health *h = mem_zalloc(sizeof(*h), NULL);
	int err;

	if (!h) {
		api_error(req, 500, NULL, "out of memory");
		return;
	}

	h->t0 = tmr_jiffies();
	req->ctx = h;

	req->q = mem_deref(req->q);
	err = db_exec(&req->q, req->api->db, stmt_ping, 0, NULL,
		      HEALTH_DB_TIMEOUT_MS, false, ping_done, req);
	if (err)
		ping_done(err, NULL, req);
}


/* ------------------------------------------------------------- metrics */

struct pkt_ctx {
	const struct media_relay *relay;
	uint64_t packets;
	uint64_t bytes;
	uint64_t lost;
};


static bool pkt_apply(struct b2bua_call *call, void *arg)
{
	struct relay_stream_stats v[RELAY_MAX_STREAMS];
	struct pkt_ctx *ctx = arg;
	unsigned n = RELAY_MAX_STREAMS, i;

	if (relay_call_stats(ctx->relay, call, v, &n))
		return false;

	for (i = 0; i < n; i++) {
		ctx->packets += v[i].to_gateway.packets +
			v[i].to_caller.packets;
		ctx->bytes += v[i].to_gateway.bytes + v[i].to_caller.bytes;
		/* duplicates make a direction's count negative: none lost */
		if (v[i].to_gateway.lost > 0)
			ctx->lost += (uint64_t)v[i].to_gateway.lost;
		if (v[i].to_caller.lost > 0)
			ctx->lost += (uint64_t)v[i].to_caller.lost;
	}

	return false;
}


static int metric(struct mbuf *mb, const char *name, const char *type,
		  const char *help)
{
	return mbuf_printf(mb, "# HELP %s %s\n# TYPE %s %s\n", name, help,
			   name, type);
}


enum metric_id {
	M_CALLS_ACTIVE,
	M_CALLS_CREATED_TOTAL,
	M_CALLS_ANSWERED_TOTAL,
	M_CALL_ILLEGAL_EVENTS_TOTAL,
	M_AUTH_FAILURES_TOTAL,
	M_AUTH_BLOCKS_TOTAL,
	M_AUTH_BLOCKS_ACTIVE,
	M_AUTH_BLOCKED_REQUESTS_TOTAL,
	M_AUTH_REPLAYS_TOTAL,
	M_UNAUTH_ANSWERS_DROPPED_TOTAL,
	M_LIMIT_SOURCES,
	M_CUTOFFS_TOTAL,
	M_SETTLEMENTS_PENDING,
	M_BILLING_DEAD_LETTERS_TOTAL,
	M_BILLING_SPOOL_OK,
	M_BILLING_SPOOL_BYTES,
	M_BILLING_SHED_TOTAL,
	M_NODE_TAKEOVERS_TOTAL,
	M_CALLS_TAKEN_OVER_TOTAL,
	M_DB_UP,
	M_DB_ERRORS_TOTAL,
	M_DB_RECONNECTS_TOTAL,
	M_DB_BATCHES_TOTAL,
	M_DB_BATCHED_QUERIES_TOTAL,
	M_DB_QUEUED,
	M_DB_QUEUE_WAIT,
	M_RELAY_PACKETS_LIVE,
	M_RELAY_PACKETS_LOST_LIVE,
	M_RELAY_BYTES_LIVE,
	M_RELAY_PORTS_FREE,
	M_RELAY_PORTS,
	M_RELAY_MEDIA_TIMEOUTS_TOTAL,
	M_RTP_FOREIGN_DROPPED_TOTAL,
	M_API_REQUESTS_TOTAL,
	M_UPTIME_SECONDS,
	M_DRAINING,
	M_CONTROL_SENT_TOTAL,
	M_COUNT
};

/** The metrics with one value and no labels, written after the others */
static const struct {
	const char *name;
	const char *type;
	const char *help;
} mdefv[M_COUNT] = {
	[M_CALLS_ACTIVE] = { "tollgate_calls_active", "gauge",
		"Calls in progress" },
	[M_CALLS_CREATED_TOTAL] = { "tollgate_calls_created_total", "counter",
		"Calls accepted for routing" },
	[M_CALLS_ANSWERED_TOTAL] = { "tollgate_calls_answered_total", "counter",
		"Calls answered by a gateway" },
	[M_CALL_ILLEGAL_EVENTS_TOTAL] = { "tollgate_call_illegal_events_total", "counter",
		"Call events the state table refused" },
	[M_AUTH_FAILURES_TOTAL] = { "tollgate_auth_failures_total", "counter",
		"Failed digest authentications" },
	[M_AUTH_BLOCKS_TOTAL] = { "tollgate_auth_blocks_total", "counter",
		"Sources and user names blocked after failures" },
	[M_AUTH_BLOCKS_ACTIVE] = { "tollgate_auth_blocks_active", "gauge",
		"Sources and user names blocked now" },
	[M_AUTH_BLOCKED_REQUESTS_TOTAL] = { "tollgate_auth_blocked_requests_total", "counter",
		"Requests refused by a block" },
	[M_AUTH_REPLAYS_TOTAL] = { "tollgate_auth_replays_total", "counter",
		"Digest answers refused as seen before" },
	[M_UNAUTH_ANSWERS_DROPPED_TOTAL] = { "tollgate_unauth_answers_dropped_total", "counter",
		"Answers to unauthenticated sources not sent: larger than the request" },
	[M_LIMIT_SOURCES] = { "tollgate_limit_sources", "gauge",
		"Source addresses whose limits are tracked" },
	[M_CUTOFFS_TOTAL] = { "tollgate_cutoffs_total", "counter",
		"Calls cut because their money ended" },
	[M_SETTLEMENTS_PENDING] = { "tollgate_settlements_pending", "gauge",
		"Settlements not yet confirmed" },
	[M_BILLING_DEAD_LETTERS_TOTAL] = { "tollgate_billing_dead_letters_total", "counter",
		"Settlements the database refused, kept in billing.dead" },
	[M_BILLING_SPOOL_OK] = { "tollgate_billing_spool_ok", "gauge",
		"The settlement spool can be written (0: new calls are refused)" },
	[M_BILLING_SPOOL_BYTES] = { "tollgate_billing_spool_bytes", "gauge",
		"Length of the settlement spool file" },
	[M_BILLING_SHED_TOTAL] = { "tollgate_billing_shed_total", "counter",
		"Calls refused at once (503): the database is overloaded" },
	[M_NODE_TAKEOVERS_TOTAL] = { "tollgate_node_takeovers_total", "counter",
		"Dead nodes (lease expired) this node took over" },
	[M_CALLS_TAKEN_OVER_TOTAL] = { "tollgate_calls_taken_over_total", "counter",
		"Live calls of dead nodes this node settled (reason recovered)" },
	[M_DB_UP] = { "tollgate_db_up", "gauge",
		"Database connection up" },
	[M_DB_ERRORS_TOTAL] = { "tollgate_db_errors_total", "counter",
		"Database queries that failed" },
	[M_DB_RECONNECTS_TOTAL] = { "tollgate_db_reconnects_total", "counter",
		"Database connections made again" },
	[M_DB_BATCHES_TOTAL] = { "tollgate_db_batches_total", "counter",
		"Database round trips that carried several queries" },
	[M_DB_BATCHED_QUERIES_TOTAL] = { "tollgate_db_batched_queries_total", "counter",
		"Database queries that went in a batch" },
	[M_DB_QUEUED] = { "tollgate_db_queued", "gauge",
		"Database queries queued or in flight" },
	[M_DB_QUEUE_WAIT] = { "tollgate_db_queue_wait_milliseconds", "gauge",
		"Expected wait of a database query for a connection" },
	[M_RELAY_PACKETS_LIVE] = { "tollgate_relay_packets_live", "gauge",
		"RTP packets relayed so far by the calls in progress" },
	[M_RELAY_PACKETS_LOST_LIVE] = { "tollgate_relay_packets_lost_live", "gauge",
		"RTP packets lost so far (sequence numbers) toward the relay by the calls in progress" },
	[M_RELAY_BYTES_LIVE] = { "tollgate_relay_bytes_live", "gauge",
		"RTP bytes relayed so far by the calls in progress" },
	[M_RELAY_PORTS_FREE] = { "tollgate_relay_ports_free", "gauge",
		"RTP/RTCP port pairs free" },
	[M_RELAY_PORTS] = { "tollgate_relay_ports", "gauge",
		"RTP/RTCP port pairs in the pool" },
	[M_RELAY_MEDIA_TIMEOUTS_TOTAL] = { "tollgate_relay_media_timeouts_total", "counter",
		"Calls ended for lack of RTP" },
	[M_RTP_FOREIGN_DROPPED_TOTAL] = { "tollgate_rtp_foreign_dropped_total", "counter",
		"RTP and RTCP packets dropped: from a source the side may not send from" },
	[M_API_REQUESTS_TOTAL] = { "tollgate_api_requests_total", "counter",
		"REST API requests" },
	[M_UPTIME_SECONDS] = { "tollgate_uptime_seconds", "gauge",
		"Seconds since the API started" },
	[M_DRAINING] = { "tollgate_draining", "gauge",
		"The node drains: no new calls, exits when the running ones have ended" },
	[M_CONTROL_SENT_TOTAL] = { "tollgate_control_sent_total", "counter",
		"Control messages this node sent to others (end a call, an account's calls)" },
};


/** Values of the metrics of mdefv; only those set are written */
struct mvals {
	uint64_t v[M_COUNT];
	bool set[M_COUNT];
};


static void mv_set(struct mvals *mv, enum metric_id id, uint64_t v)
{
	mv->v[id] = v;
	mv->set[id] = true;
}


static int metric_vals(struct mbuf *mb, const struct mvals *mv)
{
	unsigned i;
	int err = 0;

	for (i = 0; i < M_COUNT; i++) {
		if (!mv->set[i])
			continue;

		err |= metric(mb, mdefv[i].name, mdefv[i].type,
			      mdefv[i].help);
		err |= mbuf_printf(mb, "%s %llu\n", mdefv[i].name,
				   (unsigned long long)mv->v[i]);
	}

	return err;
}


/** GET /metrics */
void api_metrics_h(struct api_req *req)
{
	struct api *api = req->api;
	struct api_billing_metrics bs;
	struct b2bua_stats bst;
	struct db_stats ds;
	struct pkt_ctx pk;
	struct mvals mv;
	struct mbuf *mb;
	uint64_t rate = 0, ended = 0;
	unsigned i;
	int err = 0;

	mb = mbuf_alloc(4096);
	if (!mb) {
		api_error(req, 500, NULL, "out of memory");
		return;
	}

	memset(&mv, 0, sizeof(mv));
	rate_tick(api);
	for (i = 0; i < API_RATE_WINDOW; i++)
		rate += api->rate_slot[i];

	mv_set(&mv, M_CALLS_ACTIVE, b2bua_call_count(api->b2bua));
	mv_set(&mv, M_CALLS_CREATED_TOTAL, api->created);
	mv_set(&mv, M_CALLS_ANSWERED_TOTAL, api->answered);

	err |= metric(mb, "tollgate_calls_total", "counter",
		      "Calls over, by outcome (the CDR reason)");
	for (i = 1; i < API_OUTCOMES; i++) {
		ended += api->outcome[i];
		err |= mbuf_printf(mb, "tollgate_calls_total{outcome=\"%s\"}"
				   " %llu\n", b2bua_reason_name(i),
				   (unsigned long long)api->outcome[i]);
	}

	b2bua_stats(api->b2bua, &bst);
	mv_set(&mv, M_CALL_ILLEGAL_EVENTS_TOTAL, bst.illegal_events);
	mv_set(&mv, M_AUTH_FAILURES_TOTAL, bst.auth_failures);
	mv_set(&mv, M_AUTH_BLOCKS_TOTAL, bst.auth_blocks);
	mv_set(&mv, M_AUTH_BLOCKS_ACTIVE, bst.blocks_active);
	mv_set(&mv, M_AUTH_BLOCKED_REQUESTS_TOTAL, bst.auth_blocked);
	mv_set(&mv, M_AUTH_REPLAYS_TOTAL, bst.auth_replays);
	mv_set(&mv, M_UNAUTH_ANSWERS_DROPPED_TOTAL, bst.unauth_dropped);

	err |= metric(mb, "tollgate_limit_rejected_total", "counter",
		      "Requests refused at the door by a limit");
	for (i = 0; i < B2BUA_LIMIT_COUNT; i++) {
		err |= mbuf_printf(mb, "tollgate_limit_rejected_total"
				   "{limit=\"%s\"} %llu\n",
				   b2bua_limit_name((enum b2bua_limit)i),
				   (unsigned long long)bst.limit_rejected[i]);
	}
	mv_set(&mv, M_LIMIT_SOURCES, bst.limit_sources);

	err |= metric(mb, "tollgate_call_rate", "gauge",
		      "Calls created per second over the last 10 s");
	err |= mbuf_printf(mb, "tollgate_call_rate %llu.%llu\n",
			   (unsigned long long)(rate / API_RATE_WINDOW),
			   (unsigned long long)(rate % API_RATE_WINDOW));

	if (api->hooks.billing_metrics) {
		memset(&bs, 0, sizeof(bs));
		api->hooks.billing_metrics(&bs, api->hooks.arg);

		mv_set(&mv, M_CUTOFFS_TOTAL, bs.cutoffs);
		err |= metric(mb, "tollgate_authorizations_total", "counter",
			      "Authorisations by result");
		err |= mbuf_printf(mb, "tollgate_authorizations_total"
				   "{result=\"granted\"} %llu\n"
				   "tollgate_authorizations_total"
				   "{result=\"refused\"} %llu\n",
				   (unsigned long long)bs.authorized,
				   (unsigned long long)bs.refused);
		mv_set(&mv, M_SETTLEMENTS_PENDING, bs.pending);
		mv_set(&mv, M_BILLING_DEAD_LETTERS_TOTAL, bs.dead_letters);
		mv_set(&mv, M_BILLING_SPOOL_OK, bs.spool_ok ? 1 : 0);
		mv_set(&mv, M_BILLING_SPOOL_BYTES, bs.spool_bytes);
		err |= metric(mb, "tollgate_billing_spool_sync_seconds",
			      "summary", "fdatasyncs of the spool's writer "
			      "(group commits, dead letters, compactions)");
		err |= mbuf_printf(mb, "tollgate_billing_spool_sync_seconds_sum"
				   " %llu.%06llu\n"
				   "tollgate_billing_spool_sync_seconds_count"
				   " %llu\n",
				   (unsigned long long)
				   (bs.spool_sync_us_sum / 1000000),
				   (unsigned long long)
				   (bs.spool_sync_us_sum % 1000000),
				   (unsigned long long)bs.spool_syncs);
		err |= metric(mb, "tollgate_billing_spool_sync_max_seconds",
			      "gauge", "Slowest fdatasync of the spool");
		err |= mbuf_printf(mb, "tollgate_billing_spool_sync_max_seconds"
				   " %llu.%06llu\n",
				   (unsigned long long)
				   (bs.spool_sync_us_max / 1000000),
				   (unsigned long long)
				   (bs.spool_sync_us_max % 1000000));
		mv_set(&mv, M_BILLING_SHED_TOTAL, bs.shed);
		mv_set(&mv, M_NODE_TAKEOVERS_TOTAL, bs.takeovers);
		mv_set(&mv, M_CALLS_TAKEN_OVER_TOTAL, bs.taken_over);
	}

	db_stats(api->db, &ds);
	mv_set(&mv, M_DB_UP, db_is_up(api->db) ? 1 : 0);
	err |= metric(mb, "tollgate_db_latency_seconds", "summary",
		      "Database queries, queued to result");
	err |= mbuf_printf(mb, "tollgate_db_latency_seconds_sum %llu.%06llu\n"
			   "tollgate_db_latency_seconds_count %llu\n",
			   (unsigned long long)(ds.lat_us_sum / 1000000),
			   (unsigned long long)(ds.lat_us_sum % 1000000),
			   (unsigned long long)ds.queries);
	err |= metric(mb, "tollgate_db_latency_max_seconds", "gauge",
		      "Slowest database query, queued to result");
	err |= mbuf_printf(mb, "tollgate_db_latency_max_seconds"
			   " %llu.%06llu\n",
			   (unsigned long long)(ds.lat_us_max / 1000000),
			   (unsigned long long)(ds.lat_us_max % 1000000));
	mv_set(&mv, M_DB_ERRORS_TOTAL, ds.errors);
	mv_set(&mv, M_DB_RECONNECTS_TOTAL, ds.reconnects);
	mv_set(&mv, M_DB_BATCHES_TOTAL, ds.batches);
	mv_set(&mv, M_DB_BATCHED_QUERIES_TOTAL, ds.batched);
	mv_set(&mv, M_DB_QUEUED, ds.queued);
	mv_set(&mv, M_DB_QUEUE_WAIT, ds.wait_ms);

	memset(&pk, 0, sizeof(pk));
	pk.relay = api->relay;
	/* without the relay no call has media: no need to visit them */
	if (api->relay)
		(void)b2bua_call_apply(api->b2bua, pkt_apply, &pk);
	mv_set(&mv, M_RELAY_PACKETS_LIVE, pk.packets);
	mv_set(&mv, M_RELAY_PACKETS_LOST_LIVE, pk.lost);
	mv_set(&mv, M_RELAY_BYTES_LIVE, pk.bytes);

	if (api->relay) {
		struct relay_info ri;

		relay_info(api->relay, &ri);
		mv_set(&mv, M_RELAY_PORTS_FREE, ri.ports_free);
		mv_set(&mv, M_RELAY_PORTS, ri.ports);
		mv_set(&mv, M_RELAY_MEDIA_TIMEOUTS_TOTAL, ri.media_timeouts);
		mv_set(&mv, M_RTP_FOREIGN_DROPPED_TOTAL, ri.foreign_dropped);
	}

	mv_set(&mv, M_API_REQUESTS_TOTAL, api->requests);
	err |= metric(mb, "tollgate_api_responses_total", "counter",
		      "REST API responses by status class");
	for (i = 2; i < 6; i++)
		err |= mbuf_printf(mb, "tollgate_api_responses_total"
				   "{class=\"%uxx\"} %llu\n", i,
				   (unsigned long long)api->responses[i]);

	if (api->node) {
		err |= metric(mb, "tollgate_node_info", "gauge",
			      "The node this process is, by name");
		err |= mbuf_printf(mb, "tollgate_node_info{node=\"%s\"} 1\n",
				   api->node);
		err |= metric(mb, "tollgate_control_messages_total",
			      "counter", "Control messages heard on "
			      "tollgate_control, by what became of them");
		for (i = 0; i < API_CTL_COUNT; i++)
			err |= mbuf_printf(mb, "tollgate_control_messages_total"
					   "{result=\"%s\"} %llu\n",
					   api_ctl_result_name(i),
					   (unsigned long long)
					   api->ctl_heard[i]);
		mv_set(&mv, M_CONTROL_SENT_TOTAL, api->ctl_sent);
	}

	err |= api_gw_metrics(mb, api->b2bua);
	err |= api_events_metrics(mb, api);

	err |= metric(mb, "tollgate_config_reloads_total", "counter",
		      "Reloads of the configuration file (SIGHUP), by result");
	err |= mbuf_printf(mb, "tollgate_config_reloads_total{result=\"ok\"}"
			   " %llu\ntollgate_config_reloads_total"
			   "{result=\"failed\"} %llu\n",
			   (unsigned long long)api->reloads[0],
			   (unsigned long long)api->reloads[1]);
	err |= metric(mb, "tollgate_config_last_reload_success_timestamp"
		      "_seconds", "gauge", "When the configuration was last "
		      "loaded with success (start-up or reload), Unix time");
	err |= mbuf_printf(mb, "tollgate_config_last_reload_success_timestamp"
			   "_seconds %llu\n",
			   (unsigned long long)(api->reload_ok_ms / 1000));

	mv_set(&mv, M_UPTIME_SECONDS, (tmr_jiffies() - api->start_jif) / 1000);
	mv_set(&mv, M_DRAINING, b2bua_draining(api->b2bua) ? 1 : 0);

	err |= metric_vals(mb, &mv);

	if (err)
		api_error(req, 500, NULL, "out of memory");
	else
		api_reply_text(req, 200, "text/plain; version=0.0.4",
			       (const char *)mb->buf, mb->end);

	(void)ended;
	mem_deref(mb);
}
