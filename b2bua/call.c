/**
 * @file call.c  Call object, legs, accessors
 */

#include <string.h>
#include <time.h>
#include "b2bua_int.h"


const char *b2bua_event_name(enum b2bua_event ev)
{
	switch (ev) {

	case B2BUA_EV_CREATED:     return "created";
	case B2BUA_EV_RINGING:     return "ringing";
	case B2BUA_EV_ANSWERED:    return "answered";
	case B2BUA_EV_ENDED:       return "ended";
	case B2BUA_EV_FAILED:      return "failed";
	case B2BUA_EV_LOW_BALANCE: return "low-balance";
	default:                   return "?";
	}
}


const char *b2bua_reason_name(enum b2bua_reason r)
{
	switch (r) {

	case B2BUA_R_NONE:          return "normal";
	case B2BUA_R_CALLER:        return "caller";
	case B2BUA_R_CALLEE:        return "callee";
	case B2BUA_R_CREDIT:        return "credit";
	case B2BUA_R_MEDIA_TIMEOUT: return "media_timeout";
	case B2BUA_R_ADMIN:         return "admin";
	case B2BUA_R_SHUTDOWN:      return "shutdown";
	case B2BUA_R_NO_ANSWER:     return "no_answer";
	case B2BUA_R_CANCELLED:     return "cancelled";
	case B2BUA_R_MAX_DURATION:  return "max_duration";
	case B2BUA_R_REJECTED:      return "rejected";
	case B2BUA_R_FAILED:        return "failed";
	case B2BUA_R_NO_MARGIN:     return "no_margin";
	case B2BUA_R_SESSION_TIMER: return "session_timer";
	default:                    return "?";
	}
}


uint64_t b2bua_wallclock_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_REALTIME, &ts);

	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}


static void leg_destructor(void *arg)
{
	struct leg *leg = arg;

	hash_unlink(&leg->he);
	tmr_cancel(&leg->tmr2xx);
	tmr_cancel(&leg->tmr2xx_to);
	tmr_cancel(&leg->tmrack);
	tmr_cancel(&leg->tmr_refresh);
	tmr_cancel(&leg->tmr_expire);
	mem_deref(leg->sereq);
	mem_deref(leg->prackreq);
	mem_deref(leg->sdp_out);
	mem_deref(leg->early_tag);
	mem_deref(leg->byereq);
	mem_deref(leg->mb2xx);
	mem_deref(leg->mback);
	mem_deref(leg->dlg);
	mem_deref(leg->callid);
}


int leg_alloc(struct leg **legp, struct b2bua_call *call,
	      enum leg_side side, const char *callid, enum sip_transp tp)
{
	struct leg *leg;
	int err;

	leg = mem_zalloc(sizeof(*leg), leg_destructor);
	if (!leg)
		return ENOMEM;

	leg->call = call;
	leg->side = side;
	leg->tp   = tp;

	err = str_dup(&leg->callid, callid);
	if (err) {
		mem_deref(leg);
		return err;
	}

	hash_append(call->b->ht_legs, hash_joaat_str(callid), &leg->he, leg);

	*legp = leg;

	return 0;
}


struct leg *leg_peer(const struct leg *leg)
{
	if (!leg || !leg->call)
		return NULL;

	return leg->side == LEG_CALLER ? leg->call->g : leg->call->a;
}


static bool leg_cmp(struct le *le, void *arg)
{
	const struct leg *leg = le->data;
	const struct sip_msg *msg = arg;

	if (pl_strcmp(&msg->callid, leg->callid))
		return false;

	return leg->dlg && sip_dialog_cmp(leg->dlg, msg);
}


/** Find the leg an in-dialog message belongs to */
struct leg *leg_find(const struct b2bua *b, const struct sip_msg *msg)
{
	return list_ledata(hash_lookup(b->ht_legs,
				       hash_joaat_pl(&msg->callid),
				       leg_cmp, (void *)msg));
}


static void relay_destructor_all(struct b2bua_call *call)
{
	list_flush(&call->relayl);
}


static void call_destructor(void *arg)
{
	struct b2bua_call *call = arg;

	hash_unlink(&call->he);
	call_unindex(call);
	gw_release(call);
	tmr_cancel(&call->tmr_ring);
	tmr_cancel(&call->tmr_dur);
	tmr_cancel(&call->tmr_rel);
	mem_deref(call->rel1xx);
	relay_destructor_all(call);
	mem_deref(call->credq);
	mem_deref(call->st);
	mem_deref(call->req);
	mem_deref((void *)call->late2xx);
	mem_deref((void *)call->inv);
	mem_deref(call->offer);
	mem_deref(call->ctype);
	mem_deref(call->hdrs);
	mem_deref(call->a);
	mem_deref(call->g);
	mem_deref(call->account);
	mem_deref(call->caller);
	mem_deref(call->sipuser);
	mem_deref(call->from_name);
	mem_deref(call->callee);
	mem_deref(call->dialled);
	mem_deref(call->reason_hdr);
	mem_deref(call->candv);
	mem_deref(call->routes);
	mem_deref((void *)call->cfg);
}


const char *call_logid(const struct b2bua_call *call)
{
	return call && call->a ? call->a->callid : NULL;
}


int call_alloc(struct b2bua_call **callp, struct b2bua *b,
	       const struct sip_msg *msg)
{
	struct b2bua_call *call;
	char *callid = NULL;
	int err;

	call = mem_zalloc(sizeof(*call), call_destructor);
	if (!call)
		return ENOMEM;

	/* zeroed: the call starts in B2BUA_ST_IDENTIFY */
	call->b = b;
	call->cfg = mem_ref((void *)b->cfg);
	call->setup_ms = b2bua_wallclock_ms();
	(void)re_snprintf(call->id, sizeof(call->id), "%016llx",
			  (unsigned long long)rand_u64());

	err = pl_strdup(&callid, &msg->callid);
	if (err)
		goto out;

	err = leg_alloc(&call->a, call, LEG_CALLER, callid, msg->tp);
	if (err)
		goto out;

	call->inv = mem_ref((void *)msg);
	call->src = msg->src;

	hash_append(b->ht_calls, hash_joaat_str(call->id), &call->he, call);
	call->sorted.key = call_id_key(call->id);
	call->sorted.data = call;
	rbt_insert(&b->calls_sorted, &call->sorted);
	++b->ncalls;

 out:
	mem_deref(callid);
	if (err)
		mem_deref(call);
	else
		*callp = call;

	return err;
}


/** Send a final or provisional non-2xx reply to the caller's INVITE */
void call_reply(struct b2bua_call *call, uint16_t scode, const char *reason,
		const char *hdrs)
{
	int err;

	if (!call->st)
		return;

	if (scode >= 200)
		prack_stop(call);

	/* a caller not authenticated hears one final answer, without the
	 * transaction (never retransmitted) and no larger than its INVITE */
	if (!call->authed) {
		if (scode < 200)
			return;
		(void)guard_reply(call->b, call->inv, scode, reason, hdrs,
				  NULL);
		call->st = mem_deref(call->st);
		return;
	}

	if (scode < 200)
		err = sip_treplyf(&call->st, NULL, call->b->sip, call->inv,
				  false, scode, reason,
				  "%sContent-Length: 0\r\n\r\n",
				  hdrs ? hdrs : "");
	else
		err = sip_treplyf(&call->st, NULL, call->b->sip, call->inv,
				  false, scode, reason,
				  "%sContent-Length: 0\r\n\r\n",
				  hdrs ? hdrs : "");
	if (err)
		tlog_warn(call_logid(call), "reply %u failed: %m",
			  scode, err);

	if (scode >= 200)
		call->st = mem_deref(call->st);
}


/** Run the SDP hook over a body crossing tollgate */
int sdp_apply(struct b2bua_call *call, enum b2bua_dir dir,
	      const struct sip_msg *msg, struct mbuf **bodyp)
{
	struct mbuf *mb;
	int err;

	*bodyp = NULL;

	if (!mbuf_get_left(msg->mb))
		return 0;

	mb = mbuf_alloc(mbuf_get_left(msg->mb));
	if (!mb)
		return ENOMEM;

	err = mbuf_write_mem(mb, mbuf_buf(msg->mb), mbuf_get_left(msg->mb));
	if (err)
		goto out;
	mb->pos = 0;

	if (call->b->sdph && msg_ctype_cmp(&msg->ctyp, "application", "sdp"))
		err = call->b->sdph(call, dir, &mb, call->b->sdp_arg);

 out:
	if (err)
		mem_deref(mb);
	else
		*bodyp = mb;

	return err;
}


/* ---- accessors ---- */

const char *b2bua_call_id(const struct b2bua_call *call)
{
	return call ? call->id : NULL;
}


const char *b2bua_call_sipid(const struct b2bua_call *call)
{
	return call_logid(call);
}


const char *b2bua_call_account(const struct b2bua_call *call)
{
	return call ? call->account : NULL;
}


int64_t b2bua_call_account_id(const struct b2bua_call *call)
{
	return call ? call->account_id : 0;
}


const char *b2bua_call_caller(const struct b2bua_call *call)
{
	return call ? call->caller : NULL;
}


const char *b2bua_call_callee(const struct b2bua_call *call)
{
	return call ? call->callee : NULL;
}


/** The number as the caller dialled it (before number_in rules) */
const char *b2bua_call_dialled(const struct b2bua_call *call)
{
	return call ? call->dialled : NULL;
}


const char *b2bua_call_gateway(const struct b2bua_call *call)
{
	if (!call || call->gwi >= call->candc)
		return NULL;

	return call->candv[call->gwi].gw->name;
}


/** The carrier of the gateway tried now, NULL if none */
const char *b2bua_call_carrier(const struct b2bua_call *call)
{
	const struct call_cand *k;

	if (!call || call->gwi >= call->candc)
		return NULL;

	k = &call->candv[call->gwi];
	if (k->car)
		return k->car->name;

	return k->gw->car ? k->gw->car->name : NULL;
}


/* the price of the carrier of the gateway tried now, NULL if none */
static const struct b2bua_tariff *call_carrier_tariff(
	const struct b2bua_call *call)
{
	if (!call || call->gwi >= call->candc ||
	    !call->candv[call->gwi].priced)
		return NULL;

	return &call->candv[call->gwi].t;
}


/**
 * The customer's price of the call (its rate), before
 * b2bua_call_authorized(): the margin guard keeps the carriers of a
 * least-cost route that leave at least lcr_min_margin percent of it
 */
void b2bua_call_set_price(struct b2bua_call *call,
			  const struct b2bua_tariff *price)
{
	if (!call || b2bua_tariff_check(price))
		return;

	call->price = *price;
	call->priced = true;
}


/** Where the caller's initial INVITE came from (NULL: no call) */
const struct sa *b2bua_call_caller_src(const struct b2bua_call *call)
{
	return call ? &call->src : NULL;
}


/** Address of the gateway tried now, NULL if none */
const struct sa *b2bua_call_gateway_addr(const struct b2bua_call *call)
{
	if (!call || call->gwi >= call->candc)
		return NULL;

	return &call->candv[call->gwi].gw->addr;
}


void call_record_lcr(struct b2bua_call *call, struct b2bua_call_record *rec)
{
	rec->dialled = call->dialled ? call->dialled : call->callee;
	rec->carrier = b2bua_call_carrier(call);
	rec->carrier_tariff = call_carrier_tariff(call);
}


/**
 * Where the caller's media may come from: a trusted peer's rtp= mode,
 * CFG_RTP_STRICT for every other caller (digest)
 */
enum cfg_rtp_source b2bua_call_rtp_source(const struct b2bua_call *call)
{
	const struct cfg_peer *peer;

	if (!call)
		return CFG_RTP_STRICT;

	peer = cfg_peer_find(call->b->cfg, &call->src,
			     call->a ? call->a->tp : SIP_TRANSP_UDP);

	return peer ? peer->rtp : CFG_RTP_STRICT;
}


enum b2bua_state b2bua_call_state(const struct b2bua_call *call)
{
	return call ? call->state : B2BUA_ST_CLOSED;
}


uint64_t b2bua_call_setup_ms(const struct b2bua_call *call)
{
	return call ? call->setup_ms : 0;
}


uint64_t b2bua_call_answer_ms(const struct b2bua_call *call)
{
	return call ? call->answer_ms : 0;
}


/**
 * When the call really ended, if earlier than the moment it is ended
 * (e.g. the last media packet of a call ended for media timeout); call it
 * before b2bua_call_end().  It is the end time of the CDR and billing.
 */
void b2bua_call_set_end_ms(struct b2bua_call *call, uint64_t ms)
{
	if (!call || call->end_ms || !ms)
		return;

	if (call->answer_ms && ms < call->answer_ms)
		ms = call->answer_ms;

	call->end_ms = ms;
}


/**
 * Take a slot for per-call data of one subscriber
 *
 * @param b      The B2BUA
 * @param slotp  The slot, for b2bua_call_udata() and b2bua_call_set_udata()
 *
 * @return 0, or ENOSPC when every slot is taken
 */
int b2bua_udata_slot_alloc(struct b2bua *b, unsigned *slotp)
{
	if (!b || !slotp)
		return EINVAL;

	if (b->nslots >= B2BUA_UDATA_SLOTS)
		return ENOSPC;

	*slotp = b->nslots++;

	return 0;
}


void *b2bua_call_udata(const struct b2bua_call *call, unsigned slot)
{
	return call && slot < B2BUA_UDATA_SLOTS ? call->udata[slot] : NULL;
}


void b2bua_call_set_udata(struct b2bua_call *call, unsigned slot, void *data)
{
	if (call && slot < B2BUA_UDATA_SLOTS)
		call->udata[slot] = data;
}


void b2bua_call_emit(struct b2bua_call *call, enum b2bua_event ev)
{
	if (call)
		b2bua_emit(call, ev, NULL);
}
