/**
 * @file relay.c  The media relay on the main thread: calls, SDP, timeouts
 *
 * For every call the relay keeps a struct media_call in the call's media
 * slot.  Each SDP body crossing tollgate gets port pairs of the relay for
 * its m= lines (one pair toward the caller, one toward the gateway, taken
 * from the port pool and bound here) and is rewritten to name them; the
 * address the body names is handed to the session's worker as the
 * destination toward that side until the first packet from there is seen.
 *
 * When the call ends its sessions go back to their workers to be closed;
 * the ports return to the pool once a worker says the sockets are closed.
 * The final statistics go to the relay's own subscribers (billing puts
 * them in the CDR) and stay readable until the call object goes.
 */

#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include "core.h"
#include "b2bua.h"
#include "relay.h"
#include "relay_int.h"
#include <rem.h>


enum {
	MAX_WORKERS  = 16,
	BIND_TRIES   = 16,
	SOCK_BUF     = 262144,
	TONE_HZ      = 1000,
	TONE_LEVEL   = 8000,     /**< peak of the tone, of 32767          */
	GONE_POLL_MS = 500,
};

struct media_relay {
	const struct relay_conf *cfg;  /**< borrowed                      */
	struct b2bua *b;              /**< borrowed                       */
	struct media_pool *pool;      /**< owned                          */
	unsigned slot;                /**< our per-call data in the B2BUA */
	struct list subl;             /**< struct media_sub, owned        */
	struct mqueue *mq;            /**< owned                          */
	struct media_worker *workerv[MAX_WORKERS]; /**< owned             */
	unsigned workerc, next;
	unsigned workerc_uring;      /**< workers waiting with io_uring */
	struct list sessl;            /**< struct media_sess, owned       */
	struct list calll;            /**< struct media_call, owned       */
	struct mbuf *tone;            /**< owned: 1 s of 16-bit PCM       */
	struct sa addr[2];            /**< toward the caller / gateway    */
	uint64_t n_calls, n_nospace, n_timeouts, n_tones;
	uint64_t n_foreign;           /**< of the sessions closed         */
};

struct media_call {
	struct le le;                 /**< media_relay.calll              */
	struct media_relay *mr;       /**< borrowed                       */
	struct b2bua_call *call;      /**< borrowed                       */
	char id[24];
	struct media_sess *sessv[MEDIA_MAX_M]; /**< borrowed (mr->sessl)  */
	struct media_sdp sdp[2];      /**< last body of caller / gateway  */
	bool have[2];
	struct tmr tmr;               /**< media timeout; then gone-poll  */
	uint64_t answer_mono;
	bool answered;
	bool ended;

	/* frozen at the end of the call */
	struct relay_stream_stats finalv[RELAY_MAX_STREAMS];
	unsigned finalc;
	uint64_t last_media_ms;
};


/** A subscriber to the media of calls that ended */
struct media_sub {
	struct le le;                 /**< media_relay.subl               */
	relay_media_h *h;
	void *arg;
};


/* ---------------------------------------------------------- sessions */

static void sess_destructor(void *arg)
{
	struct media_sess *s = arg;
	unsigned i, k;

	list_unlink(&s->le);

	for (i = 0; i < 2; i++) {
		for (k = 0; k < 2; k++) {
			if (s->side[i].fd[k] >= 0)
				(void)close(s->side[i].fd[k]);
		}
	}
}


static int udp_bind(int *fdp, const struct sa *laddr, uint16_t port)
{
	struct sa sa = *laddr;
	int fd, buf = SOCK_BUF, err;

	fd = socket(sa_af(&sa), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0)
		return errno;

	sa_set_port(&sa, port);
	if (bind(fd, &sa.u.sa, sa.len)) {
		err = errno;
		(void)close(fd);
		return err;
	}

	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	*fdp = fd;

	return 0;
}


/** Bind an RTP/RTCP pair of the pool on laddr */
static int side_open(struct media_relay *mr, struct media_side *sd,
		     const struct sa *laddr)
{
	unsigned tries;
	int err = ENOSPC;

	for (tries = 0; tries < BIND_TRIES; tries++) {
		uint16_t port;

		err = media_pool_get(mr->pool, &port);
		if (err)
			return err;

		err = udp_bind(&sd->fd[0], laddr, port);
		if (!err) {
			err = udp_bind(&sd->fd[1], laddr, port + 1);
			if (err) {
				(void)close(sd->fd[0]);
				sd->fd[0] = -1;
			}
		}

		if (!err) {
			sd->port = port;
			sd->laddr = *laddr;
			sa_set_port(&sd->laddr, port);
			return 0;
		}

		/* taken by someone else: to the back of the ring */
		(void)media_pool_put(mr->pool, port);
		if (err != EADDRINUSE)
			return err;
		err = ENOSPC;
	}

	return err;
}


static int sess_new(struct media_sess **sp, struct media_relay *mr,
		    const char *type)
{
	struct media_sess *s;
	struct media_cmd *cmd;
	unsigned i;
	int err;

	s = mem_zalloc(sizeof(*s), sess_destructor);
	if (!s)
		return ENOMEM;

	for (i = 0; i < 2; i++) {
		s->side[i].fd[0] = -1;
		s->side[i].fd[1] = -1;
	}
	for (i = 0; i < 4; i++) {
		s->sock[i].s = s;
		s->sock[i].side = (uint8_t)(i / 2);
		s->sock[i].rtcp = (uint8_t)(i % 2);
	}
	str_ncpy(s->type, type, sizeof(s->type));

	err = side_open(mr, &s->side[MEDIA_CALLER], &mr->addr[MEDIA_CALLER]);
	if (err)
		goto out;

	err = side_open(mr, &s->side[MEDIA_GATEWAY],
			&mr->addr[MEDIA_GATEWAY]);
	if (err) {
		(void)close(s->side[MEDIA_CALLER].fd[0]);
		(void)close(s->side[MEDIA_CALLER].fd[1]);
		s->side[MEDIA_CALLER].fd[0] = -1;
		s->side[MEDIA_CALLER].fd[1] = -1;
		(void)media_pool_put(mr->pool, s->side[MEDIA_CALLER].port);
		goto out;
	}

	cmd = mem_zalloc(sizeof(*cmd), NULL);
	if (!cmd) {
		err = ENOMEM;
		for (i = 0; i < 2; i++)
			(void)media_pool_put(mr->pool, s->side[i].port);
		goto out;
	}

	s->w = mr->workerv[mr->next++ % mr->workerc];
	list_append(&mr->sessl, &s->le, s);
	cmd->type = MEDIA_CMD_ADD;
	cmd->s = s;
	(void)media_worker_send(s->w, cmd);

 out:
	if (err)
		mem_deref(s);
	else
		*sp = s;

	return err;
}


/**
 * The address a side's body names becomes the destination toward it;
 * its media is taken from there, or from the IP its SIP comes from
 */
static void sess_dest(struct media_sess *s, unsigned side,
		      const struct media_sdp_m *m,
		      const struct media_call *mc)
{
	static const uint8_t srcv[] = {
		[CFG_RTP_STRICT] = MEDIA_SRC_STRICT,
		[CFG_RTP_LATCH]  = MEDIA_SRC_LATCH,
		[CFG_RTP_ANY]    = MEDIA_SRC_ANY,
	};
	struct media_cmd *cmd = mem_zalloc(sizeof(*cmd), NULL);
	const struct sa *sip;

	if (!cmd)
		return;

	cmd->type = MEDIA_CMD_DEST;
	cmd->s = s;
	cmd->side = side;
	cmd->srate = m->srate;
	cmd->relearn_ms = mc->mr->cfg->rtp_relearn_after * 1000;

	/* c=0.0.0.0 (old-style hold): nowhere to send until it changes */
	if (!sa_is_any(&m->rtp)) {
		cmd->rtp = m->rtp;
		cmd->rtcp = m->rtcp;
	}

	/* callers as their trusted peer says (digest: strict) */
	if (side == MEDIA_CALLER) {
		sip = b2bua_call_caller_src(mc->call);
		cmd->src = srcv[b2bua_call_rtp_source(mc->call) %
				ARRAY_SIZE(srcv)];
	}
	else {
		sip = b2bua_call_gateway_addr(mc->call);
		cmd->src = MEDIA_SRC_STRICT;
	}
	if (sip)
		cmd->sip = *sip;

	(void)media_worker_send(s->w, cmd);
}


/** Send a session back to its worker to be closed */
static void sess_release(struct media_sess *s)
{
	struct media_cmd *cmd = mem_zalloc(sizeof(*cmd), NULL);

	if (!cmd)
		return;   /* stays until the relay goes */

	cmd->type = MEDIA_CMD_DEL;
	cmd->s = s;
	(void)media_worker_send(s->w, cmd);
}


/** A worker closed a session's sockets: ports back to the pool */
static void mqueue_handler(int id, void *data, void *arg)
{
	struct media_relay *mr = arg;
	struct media_sess *s = data;
	unsigned i;

	if (id != MEDIA_MQ_FREED)
		return;

	for (i = 0; i < 2; i++) {
		if (s->side[i].port)
			(void)media_pool_put(mr->pool, s->side[i].port);
		mr->n_foreign += s->side[i].pub.foreign;
	}

	mem_deref(s);
}


/* -------------------------------------------------------- statistics */

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

static void dir_stats(struct relay_dir_stats *d, struct media_side *from,
		      struct media_side *to)
{
	memset(d, 0, sizeof(*d));

	d->packets      = LOAD(from->pub.packets);
	d->bytes        = LOAD(from->pub.bytes);
	d->lost         = LOAD(from->pub.lost);
	d->jitter_us    = LOAD(from->pub.jitter_us);
	d->rtcp_packets = LOAD(from->pub.rtcp_packets);
	d->dropped      = LOAD(from->pub.dropped);
	d->foreign      = LOAD(from->pub.foreign);

	/* the receiver of this direction reports on it */
	d->rr_valid     = LOAD(to->pub.rr_valid) != 0;
	d->rr_fraction  = (uint8_t)LOAD(to->pub.rr_fraction);
	d->rr_lost      = LOAD(to->pub.rr_lost);
	d->rr_jitter_us = LOAD(to->pub.rr_jitter_us);
}


static void sess_stats(struct relay_stream_stats *st, struct media_sess *s)
{
	struct media_side *a = &s->side[MEDIA_CALLER];
	struct media_side *g = &s->side[MEDIA_GATEWAY];

	memset(st, 0, sizeof(*st));
	str_ncpy(st->media, s->type, sizeof(st->media));
	st->caller = a->pub.dst;
	st->gateway = g->pub.dst;
	st->caller_latched = LOAD(a->pub.latched) != 0;
	st->gateway_latched = LOAD(g->pub.latched) != 0;
	dir_stats(&st->to_gateway, a, g);
	dir_stats(&st->to_caller, g, a);
}


static unsigned call_stats(const struct media_call *mc,
			   struct relay_stream_stats *v, unsigned max)
{
	unsigned i, n = 0;

	if (mc->ended) {
		for (i = 0; i < mc->finalc && n < max; i++)
			v[n++] = mc->finalv[i];
		return n;
	}

	for (i = 0; i < MEDIA_MAX_M && n < max; i++) {
		if (mc->sessv[i])
			sess_stats(&v[n++], mc->sessv[i]);
	}

	return n;
}


/** Monotonic ms of the last RTP packet of the call, either direction */
static uint64_t call_last_rx(const struct media_call *mc)
{
	uint64_t last = mc->answer_mono;
	unsigned i, k;

	for (i = 0; i < MEDIA_MAX_M; i++) {
		struct media_sess *s = mc->sessv[i];

		if (!s)
			continue;

		for (k = 0; k < 2; k++) {
			uint64_t t = LOAD(s->side[k].pub.last_ms);

			if (t > last)
				last = t;
		}
	}

	return last;
}


/**
 * Statistics of a call's streams (live, or frozen once it ended)
 *
 * @param mr    The relay
 * @param call  The call
 * @param v     Room for the streams
 * @param n     In: entries in v; out: streams written
 *
 * @return 0, EINVAL, ENOENT (the call has no relayed media)
 */
int relay_call_stats(const struct media_relay *mr,
		     const struct b2bua_call *call,
		     struct relay_stream_stats *v, unsigned *n)
{
	const struct media_call *mc;

	if (!mr || !call || !v || !n)
		return EINVAL;

	mc = b2bua_call_udata(call, mr->slot);
	if (!mc) {
		*n = 0;
		return ENOENT;
	}

	*n = call_stats(mc, v, *n);

	return 0;
}


/**
 * Wall-clock ms of the last RTP packet relayed for the call (either
 * direction), or of its answer if none came; 0 if not answered
 */
static uint64_t call_last_media_ms(const struct media_call *mc)
{
	const struct b2bua_call *call = mc->call;
	uint64_t now;

	if (mc->ended)
		return mc->last_media_ms;

	if (!mc->answered)
		return 0;

	/* no packet since the answer: the media ended when it began */
	if (call_last_rx(mc) <= mc->answer_mono)
		return b2bua_call_answer_ms(call);

	now = media_mono_ms();

	return b2bua_wallclock_ms() - (now - call_last_rx(mc));
}


/* ------------------------------------------------------------- calls */

static void mcall_destructor(void *arg)
{
	struct media_call *mc = arg;
	unsigned i;

	tmr_cancel(&mc->tmr);
	list_unlink(&mc->le);

	/* the relay is going: sessions are freed with it */
	for (i = 0; i < MEDIA_MAX_M; i++)
		mc->sessv[i] = NULL;
}


static struct media_call *mcall_get(struct media_relay *mr,
				    struct b2bua_call *call)
{
	struct media_call *mc = b2bua_call_udata(call, mr->slot);

	if (mc)
		return mc;

	mc = mem_zalloc(sizeof(*mc), mcall_destructor);
	if (!mc)
		return NULL;

	mc->mr = mr;
	mc->call = call;
	str_ncpy(mc->id, b2bua_call_id(call), sizeof(mc->id));
	list_append(&mr->calll, &mc->le, mc);
	b2bua_call_set_udata(call, mr->slot, mc);
	++mr->n_calls;

	return mc;
}


/**
 * The SDP hook.  The body describes the side it comes from: its address
 * becomes the destination toward that side, and the receiver gets the
 * relay's ports of its own side.
 */
static int sdp_handler(struct b2bua_call *call, enum b2bua_dir dir,
		       struct mbuf **sdpp, void *arg)
{
	struct media_relay *mr = arg;
	const unsigned from = dir == B2BUA_DIR_TO_GATEWAY ? MEDIA_CALLER
		: MEDIA_GATEWAY;
	const unsigned to = !from;
	uint16_t portv[MEDIA_MAX_M];
	struct media_call *mc;
	struct media_sdp sdp;
	struct mbuf *mb = *sdpp, *out;
	unsigned i;
	int err;

	mc = mcall_get(mr, call);
	if (!mc)
		return ENOMEM;

	if (mc->ended)
		return EINVAL;

	err = media_sdp_parse(&sdp, (const char *)mbuf_buf(mb),
			      mbuf_get_left(mb));
	if (err) {
		tlog_warn(b2bua_call_sipid(call), "SDP from the %s refused:"
			  " %m", from == MEDIA_CALLER ? "caller" : "gateway",
			  err);
		return err == E2BIG ? err : EBADMSG;
	}

	for (i = 0; i < sdp.mc; i++) {
		const struct media_sdp_m *m = &sdp.m[i];

		portv[i] = 0;
		if (!m->port)
			continue;

		if (!mc->sessv[i]) {
			err = sess_new(&mc->sessv[i], mr, m->type);
			if (err == ENOSPC) {
				++mr->n_nospace;
				tlog_warn(b2bua_call_sipid(call), "no free "
					  "RTP port pair in %u-%u",
					  mr->cfg->rtp_port_min,
					  mr->cfg->rtp_port_max);
			}
			if (err)
				return err;
		}

		sess_dest(mc->sessv[i], from, m, mc);
		portv[i] = mc->sessv[i]->side[to].port;
	}

	out = mbuf_alloc(mbuf_get_left(mb) + 128);
	if (!out)
		return ENOMEM;

	err = media_sdp_rewrite(out, (const char *)mbuf_buf(mb),
				mbuf_get_left(mb), &mr->addr[to], portv,
				sdp.mc);
	if (err) {
		mem_deref(out);
		return err;
	}

	out->pos = 0;
	mem_deref(mb);
	*sdpp = out;

	mc->sdp[from] = sdp;
	mc->have[from] = true;

	return 0;
}


static bool call_on_hold(const struct media_call *mc)
{
	return (mc->have[0] && media_sdp_hold(&mc->sdp[0])) ||
		(mc->have[1] && media_sdp_hold(&mc->sdp[1]));
}


static void timeout_handler(void *arg)
{
	struct media_call *mc = arg;
	const struct relay_conf *cfg = mc->mr->cfg;
	uint32_t limit = call_on_hold(mc) ? cfg->media_timeout_hold
		: cfg->media_timeout;
	uint64_t now = media_mono_ms(), last = call_last_rx(mc);
	uint64_t left;

	if (!limit) {
		/* off in this state; the state may change */
		tmr_start(&mc->tmr, 1000, timeout_handler, mc);
		return;
	}

	if (now - last < (uint64_t)limit * 1000) {
		left = (uint64_t)limit * 1000 - (now - last);
		tmr_start(&mc->tmr, left < 100 ? 100 : left, timeout_handler,
			  mc);
		return;
	}

	++mc->mr->n_timeouts;
	tlog_info(b2bua_call_sipid(mc->call), "no RTP for %u s%s: ending "
		  "call %s", limit, call_on_hold(mc) ? " (on hold)" : "",
		  mc->id);

	/* the call (and its billing) ended with its last packet */
	b2bua_call_set_end_ms(mc->call, call_last_media_ms(mc));

	(void)b2bua_call_end(mc->call, B2BUA_R_MEDIA_TIMEOUT,
			    "SIP;cause=200;text=\"media timeout\"");
}


/** After the end: keep the statistics until the call object goes */
static void gone_poll(void *arg)
{
	struct media_call *mc = arg;

	if (b2bua_call_find(mc->mr->b, mc->id) == mc->call) {
		tmr_start(&mc->tmr, GONE_POLL_MS, gone_poll, mc);
		return;
	}

	mem_deref(mc);
}


/* the call's media ended: tell our subscribers (billing: the CDR) */
static void media_report(struct media_call *mc)
{
	struct relay_media m;
	char *json = NULL;
	struct le *le;
	int err;

	err = media_report_json(&json, mc->finalv, mc->finalc);
	if (err)
		tlog_warn(b2bua_call_sipid(mc->call), "media statistics: %m",
			  err);

	tlog_info(b2bua_call_sipid(mc->call), "media %s", json ? json : "");

	m.call_id = mc->id;
	m.streamv = mc->finalv;
	m.streamc = mc->finalc;
	m.last_media_ms = mc->last_media_ms;
	m.json = json;

	le = mc->mr->subl.head;
	while (le) {
		struct media_sub *sub = le->data;

		le = le->next;
		sub->h(mc->call, &m, sub->arg);
	}

	mem_deref(json);
}


static void call_finish(struct media_call *mc)
{
	unsigned i;

	if (mc->ended)
		return;

	mc->last_media_ms = call_last_media_ms(mc);
	mc->finalc = call_stats(mc, mc->finalv, RELAY_MAX_STREAMS);
	mc->ended = true;

	if (mc->finalc)
		media_report(mc);

	for (i = 0; i < MEDIA_MAX_M; i++) {
		if (mc->sessv[i])
			sess_release(mc->sessv[i]);
		mc->sessv[i] = NULL;
	}

	tmr_start(&mc->tmr, 0, gone_poll, mc);
}


static void tone_start(struct media_relay *mr, struct media_call *mc)
{
	unsigned i, n = 0;

	for (i = 0; i < MEDIA_MAX_M; i++) {
		struct media_sess *s = mc->sessv[i];
		const struct media_sdp_m *g = &mc->sdp[MEDIA_GATEWAY].m[i];
		const struct media_sdp_m *a = &mc->sdp[MEDIA_CALLER].m[i];
		struct media_cmd *cmd;
		int pcmu = -1, pcma = -1;

		if (!s || strcmp(s->type, "audio"))
			continue;

		if (mc->have[MEDIA_GATEWAY] && i < mc->sdp[1].mc) {
			pcmu = g->pt_pcmu;
			pcma = g->pt_pcma;
		}
		if (pcmu < 0 && pcma < 0 && mc->have[MEDIA_CALLER] &&
		    i < mc->sdp[0].mc) {
			pcmu = a->pt_pcmu;
			pcma = a->pt_pcma;
		}

		if (pcmu < 0 && pcma < 0) {
			tlog_warn(b2bua_call_sipid(mc->call), "low balance: "
				  "no warning tone, stream %u is not G.711",
				  i);
			continue;
		}

		cmd = mem_zalloc(sizeof(*cmd), NULL);
		if (!cmd)
			return;

		cmd->type = MEDIA_CMD_TONE;
		cmd->s = s;
		cmd->tone = (const int16_t *)(void *)mr->tone->buf;
		cmd->tone_n = mr->tone->end / sizeof(int16_t);
		cmd->pcmu = pcmu;
		cmd->pcma = pcma;
		(void)media_worker_send(s->w, cmd);
		++n;
	}

	if (n) {
		++mr->n_tones;
		tlog_info(b2bua_call_sipid(mc->call), "low balance: warning "
			  "tone toward the caller");
	}
}


static void event_handler(struct b2bua_call *call, enum b2bua_event ev,
			  const struct b2bua_call_record *rec, void *arg)
{
	struct media_relay *mr = arg;
	struct media_call *mc = b2bua_call_udata(call, mr->slot);
	(void)rec;

	if (!mc || mc->ended)
		return;

	switch (ev) {

	case B2BUA_EV_ANSWERED:
		mc->answered = true;
		mc->answer_mono = media_mono_ms();
		tmr_start(&mc->tmr, 1000, timeout_handler, mc);
		break;

	case B2BUA_EV_LOW_BALANCE:
		tone_start(mr, mc);
		break;

	case B2BUA_EV_ENDED:
	case B2BUA_EV_FAILED:
		call_finish(mc);
		break;

	default:
		break;
	}
}


/* ------------------------------------------------------------ relay */

static void relay_destructor(void *arg)
{
	struct media_relay *mr = arg;
	unsigned i;

	/* workers first: after the joins nobody else touches a session */
	for (i = 0; i < mr->workerc; i++)
		mr->workerv[i] = mem_deref(mr->workerv[i]);

	list_flush(&mr->calll);
	list_flush(&mr->sessl);
	list_flush(&mr->subl);
	mem_deref(mr->mq);
	mem_deref(mr->pool);
	mem_deref(mr->tone);
}


/**
 * Start the media relay and hook it into the B2BUA
 *
 * With rtp_relay off nothing is hooked in and SDP passes verbatim.  Free
 * it after the B2BUA: calls ending at the B2BUA's exit still reach it.
 *
 * @param mrp  The new relay
 * @param cfg  Configuration (borrowed, must outlive the relay)
 * @param b    The B2BUA (borrowed)
 *
 * @return 0 or an errno
 */
int relay_alloc(struct media_relay **mrp, const struct relay_conf *cfg,
		struct b2bua *b)
{
	struct media_relay *mr;
	unsigned i;
	int err, why;

	if (!mrp || !cfg || !b)
		return EINVAL;

	mr = mem_zalloc(sizeof(*mr), relay_destructor);
	if (!mr)
		return ENOMEM;

	mr->cfg = cfg;
	mr->b = b;

	err = b2bua_udata_slot_alloc(b, &mr->slot);
	if (err) {
		mem_deref(mr);
		return err;
	}

	if (!cfg->rtp_relay) {
		tlog_info(NULL, "media relay off: SDP passes verbatim");
		*mrp = mr;
		return 0;
	}

	mr->addr[MEDIA_CALLER] = cfg->rtp_addr;
	mr->addr[MEDIA_GATEWAY] = sa_isset(&cfg->rtp_addr_gw, SA_ADDR) ?
		cfg->rtp_addr_gw : cfg->rtp_addr;

	err = media_pool_alloc(&mr->pool, cfg->rtp_port_min,
			       cfg->rtp_port_max);
	if (err)
		goto out;

	/* a port of the next call is not the one after the last call's */
	media_pool_set_random(mr->pool, true);

	mr->tone = mbuf_alloc(16000);
	if (!mr->tone) {
		err = ENOMEM;
		goto out;
	}

	err = autone_sine(mr->tone, 8000, TONE_HZ, TONE_LEVEL, 0, 0);
	if (err)
		goto out;

	err = mqueue_alloc(&mr->mq, mqueue_handler, mr);
	if (err)
		goto out;

	mr->workerc = cfg->rtp_threads ? cfg->rtp_threads : 1;
	if (mr->workerc > MAX_WORKERS)
		mr->workerc = MAX_WORKERS;

	for (i = 0; i < mr->workerc; i++) {
		static const enum media_io iov[] = {
			[CFG_RTP_IO_AUTO]  = MEDIA_IO_AUTO,
			[CFG_RTP_IO_URING] = MEDIA_IO_URING,
			[CFG_RTP_IO_EPOLL] = MEDIA_IO_EPOLL,
		};

		err = media_worker_alloc(&mr->workerv[i], mr->mq, i,
					 iov[cfg->rtp_io]);
		if (err) {
			tlog_err(NULL, "media relay: worker %u: %s%m", i,
				 cfg->rtp_io == CFG_RTP_IO_URING ?
				 "rtp_io io_uring: " : "", err);
			goto out;
		}
		if (media_worker_uring(mr->workerv[i], &why))
			++mr->workerc_uring;
		else if (why)
			tlog_warn(NULL, "media relay: worker %u: io_uring not "
				  "available (%m): waiting with epoll", i, why);
	}

	err = b2bua_subscribe(b, event_handler, mr);
	if (err)
		goto out;

	b2bua_set_sdp(b, sdp_handler, mr);

	tlog_info(NULL, "media relay: %j (caller side), %j (gateway side), "
		  "ports %u-%u, %u threads (%s)", &mr->addr[0], &mr->addr[1],
		  cfg->rtp_port_min, cfg->rtp_port_max, mr->workerc,
		  mr->workerc_uring == mr->workerc ? "io_uring" :
		  mr->workerc_uring ? "io_uring and epoll" : "epoll");

 out:
	if (err) {
		/* the destructor stops the workers that started */
		mem_deref(mr);
	}
	else {
		*mrp = mr;
	}

	return err;
}


/**
 * Hear of the media of every call that ends (with relayed media)
 *
 * @param mr   The relay
 * @param h    Handler
 * @param arg  Its argument
 *
 * @return 0 or an errno
 */
int relay_media_subscribe(struct media_relay *mr, relay_media_h *h,
			  void *arg)
{
	struct media_sub *sub;

	if (!mr || !h)
		return EINVAL;

	sub = mem_zalloc(sizeof(*sub), NULL);
	if (!sub)
		return ENOMEM;

	sub->h = h;
	sub->arg = arg;
	list_append(&mr->subl, &sub->le, sub);

	return 0;
}


/** The ways this build can wait for packets (rtp_io), for --version */
const char *relay_io_modes(void)
{
#ifdef HAVE_LIBURING
	return "io_uring, epoll";
#else
	return "epoll";
#endif
}


/** Counters and sizes of the relay (all zero for NULL) */
void relay_info(const struct media_relay *mr, struct relay_info *info)
{
	struct le *le;

	if (!info)
		return;

	memset(info, 0, sizeof(*info));
	if (!mr)
		return;

	info->enabled        = mr->cfg->rtp_relay;
	info->threads        = mr->workerc;
	info->ports          = media_pool_size(mr->pool);
	info->ports_free     = media_pool_free(mr->pool);
	info->calls          = mr->n_calls;
	info->calls_now      = list_count(&mr->calll);
	info->sessions       = list_count(&mr->sessl);
	info->refused_ports  = mr->n_nospace;
	info->media_timeouts = mr->n_timeouts;
	info->tones          = mr->n_tones;
	info->foreign_dropped = mr->n_foreign;

	LIST_FOREACH(&mr->sessl, le) {
		const struct media_sess *s = le->data;

		info->foreign_dropped += LOAD(s->side[0].pub.foreign) +
			LOAD(s->side[1].pub.foreign);
	}
}


int relay_debug(struct re_printf *pf, const struct media_relay *mr)
{
	if (!mr)
		return 0;

	return re_hprintf(pf, "media relay: %s, %u threads, %u of %u port "
			  "pairs free, %u calls, %u sessions; %llu calls, "
			  "%llu refused for ports, %llu media timeouts, "
			  "%llu tones\n",
			  mr->cfg->rtp_relay ? "on" : "off", mr->workerc,
			  media_pool_free(mr->pool), media_pool_size(mr->pool),
			  list_count(&mr->calll), list_count(&mr->sessl),
			  (unsigned long long)mr->n_calls,
			  (unsigned long long)mr->n_nospace,
			  (unsigned long long)mr->n_timeouts,
			  (unsigned long long)mr->n_tones);
}

