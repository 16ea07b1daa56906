/**
 * @file call.c  Call object, legs and the state x event table
 */

#include <string.h>
#include <time.h>
#include "b2bua_int.h"


#define X (-1)

/*
 * The whole life of a call.  Rows are states, columns events; X marks an
 * event that must not happen in that state: it is logged and ignored.
 */
static const int8_t next_state[B2BUA_ST_COUNT][CEV_COUNT] = {
/*                 IDENT AUTHZ PROV  ANSW  FOVER REJ   CANC  RTO   ACK   BYEC  BYEG  END   UACF  DONE */
/* IDENTIFY    */ {  1,   X,    X,    X,    X,    8,    8,    X,    X,    X,    X,    8,    X,    X },
/* AUTHORIZE   */ {  X,   2,    X,    X,    X,    8,    8,    X,    X,    X,    X,    8,    X,    X },
/* CALLING     */ {  X,   X,    3,    4,    2,    8,    6,    6,    X,    X,    X,    6,    X,    X },
/* RINGING     */ {  X,   X,    3,    4,    2,    8,    6,    6,    X,    X,    X,    6,    X,    X },
/* ANSWERED    */ {  X,   X,    X,    X,    X,    X,    X,    X,    5,    7,    7,    7,    X,    X },
/* CONFIRMED   */ {  X,   X,    X,    X,    X,    X,    X,    X,    5,    7,    7,    7,    X,    X },
/* CANCELLING  */ {  X,   X,    6,    7,    X,    X,    6,    6,    X,    X,    X,    6,    8,    X },
/* TERMINATING */ {  X,   X,    X,    X,    X,    X,    X,    X,    7,    7,    7,    7,    7,    8 },
/* CLOSED      */ {  X,   X,    X,    X,    X,    X,    X,    X,    X,    X,    X,    X,    X,    8 },
};

static const char *cev_names[CEV_COUNT] = {
	"identified", "authorized", "provisional", "answer", "failover",
	"reject", "cancel", "ring-timeout", "ack", "bye-caller",
	"bye-gateway", "end", "uac-final", "done"
};


const char *b2bua_state_name(enum b2bua_state st)
{
	static const char *names[B2BUA_ST_COUNT] = {
		"identify", "authorize", "calling", "ringing", "answered",
		"confirmed", "cancelling", "terminating", "closed"
	};

	return (unsigned)st < B2BUA_ST_COUNT ? names[st] : "?";
}


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
	default:                    return "?";
	}
}


uint64_t b2bua_wallclock_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_REALTIME, &ts);

	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}


/**
 * Apply an event to the call's state.
 *
 * @return true if the event is legal in the current state
 */
bool call_event(struct b2bua_call *call, enum call_ev ev)
{
	int8_t nst;

	nst = next_state[call->state][ev];
	if (nst == X) {
		tlog_warn(call_logid(call), "illegal event '%s' in state '%s'"
			  " ignored", cev_names[ev],
			  b2bua_state_name(call->state));
		return false;
	}

	if ((enum b2bua_state)nst != call->state)
		tlog_dbg(call_logid(call), "%s --%s--> %s",
			 b2bua_state_name(call->state), cev_names[ev],
			 b2bua_state_name((enum b2bua_state)nst));

	call->state = (enum b2bua_state)nst;

	return true;
}


static void leg_destructor(void *arg)
{
	struct leg *leg = arg;

	hash_unlink(&leg->he);
	tmr_cancel(&leg->tmr2xx);
	tmr_cancel(&leg->tmr2xx_to);
	tmr_cancel(&leg->tmrack);
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
	tmr_cancel(&call->tmr_ring);
	tmr_cancel(&call->tmr_dur);
	relay_destructor_all(call);
	mem_deref(call->credq);
	mem_deref(call->st);
	mem_deref(call->req);
	mem_deref((void *)call->inv);
	mem_deref(call->offer);
	mem_deref(call->ctype);
	mem_deref(call->hdrs);
	mem_deref(call->a);
	mem_deref(call->g);
	mem_deref(call->account);
	mem_deref(call->caller);
	mem_deref(call->from_name);
	mem_deref(call->callee);
	mem_deref(call->reason_hdr);
	mem_deref(call->media);
	mem_deref(call->routes);
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

	call->b = b;
	call->state = B2BUA_ST_IDENTIFY;
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

	hash_append(b->ht_calls, hash_joaat_str(call->id), &call->he, call);
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


static void emit_final(struct b2bua_call *call)
{
	if (call->ended_emitted)
		return;

	call->ended_emitted = true;
	if (!call->end_ms)
		call->end_ms = b2bua_wallclock_ms();

	if (!call->announced)
		return;   /* never announced: identification failed */

	b2bua_emit(call, call->answer_ms ? B2BUA_EV_ENDED :
		   B2BUA_EV_FAILED);
}


/** Is everything of the call finished?  Then it goes. */
void call_close_check(struct b2bua_call *call)
{
	if (call->state != B2BUA_ST_CLOSED)
		return;

	if (call->req || call->relayl.head)
		return;

	if (call->a && call->a->byereq)
		return;

	if (call->g && call->g->byereq)
		return;

	emit_final(call);

	tlog_info(call_logid(call), "call %s closed: %s (%u)", call->id,
		  b2bua_reason_name(call->reason), call->scode);

	hash_unlink(&call->he);
	if (call->b->ncalls)
		--call->b->ncalls;

	if (call->b->shutting_down && !call->b->ncalls &&
	    call->b->shutdownh) {
		void (*h)(void *) = call->b->shutdownh;
		call->b->shutdownh = NULL;
		h(call->b->shutdown_arg);
	}

	mem_deref(call);
}


/**
 * The call fails before it was answered: answer the caller, tell the
 * subscribers and go.
 */
void call_fail(struct b2bua_call *call, enum b2bua_reason reason,
	       uint16_t scode, const char *phrase, const char *hdrs)
{
	if (!call_event(call, CEV_REJECT))
		return;

	call->reason = reason;
	call->scode  = scode;
	tlog_info(call_logid(call), "call %s failed: %u %s (%s)", call->id,
		  scode, phrase, b2bua_reason_name(reason));

	call_reply(call, scode, phrase, hdrs);
	call->credq = mem_deref(call->credq);

	emit_final(call);
	call_close_check(call);
}


/**
 * Give up on an unanswered call whose INVITE is out at a gateway: the
 * caller gets its answer now, the gateway a CANCEL; the call stays until
 * the gateway's final answer.
 */
void call_cancel(struct b2bua_call *call, enum call_ev ev,
		 enum b2bua_reason reason, uint16_t scode, const char *phrase,
		 const char *hdrs)
{
	if (!call_event(call, ev))
		return;

	call->reason = reason;
	call->scode  = scode;
	tlog_info(call_logid(call), "call %s abandoned: %u %s (%s)", call->id,
		  scode, phrase, b2bua_reason_name(reason));

	call_reply(call, scode, phrase, hdrs);
	emit_final(call);
	uac_cancel(call);
}


/**
 * End an answered call: BYE on every leg that did not hang up itself.
 */
void call_terminate(struct b2bua_call *call, enum b2bua_reason reason,
		    bool by_caller)
{
	if (!call->reason)
		call->reason = reason;
	call->by_caller = by_caller;
	if (!call->end_ms)
		call->end_ms = b2bua_wallclock_ms();

	tmr_cancel(&call->tmr_dur);
	relay_flush(call);

	tlog_info(call_logid(call), "call %s ending: %s", call->id,
		  b2bua_reason_name(call->reason));

	emit_final(call);

	if (reason != B2BUA_R_CALLER)
		(void)leg_bye(call->a, call->reason_hdr);
	if (reason != B2BUA_R_CALLEE)
		(void)leg_bye(call->g, call->reason_hdr);

	if (!call->a->byereq && !(call->g && call->g->byereq) &&
	    !call->a->bye_pending)
		(void)call_event(call, CEV_DONE);

	call_close_check(call);
}


int b2bua_call_end(struct b2bua_call *call, enum b2bua_reason reason,
		   const char *reason_hdr)
{
	char hdr[256];

	if (!call)
		return EINVAL;

	if (reason_hdr) {
		call->reason_hdr = mem_deref(call->reason_hdr);
		if (str_dup(&call->reason_hdr, reason_hdr))
			return ENOMEM;
	}

	switch (call->state) {

	case B2BUA_ST_IDENTIFY:
	case B2BUA_ST_AUTHORIZE:
		hdr[0] = '\0';
		if (reason_hdr)
			(void)re_snprintf(hdr, sizeof(hdr), "Reason: %s\r\n",
					  reason_hdr);
		if (reason == B2BUA_R_SHUTDOWN)
			call_fail(call, reason, 503, "Service Unavailable",
				  "Retry-After: 30\r\n");
		else
			call_fail(call, reason, 487, "Request Terminated",
				  hdr);
		return 0;

	case B2BUA_ST_CALLING:
	case B2BUA_ST_RINGING:
		hdr[0] = '\0';
		if (reason_hdr)
			(void)re_snprintf(hdr, sizeof(hdr), "Reason: %s\r\n",
					  reason_hdr);
		if (reason == B2BUA_R_SHUTDOWN)
			call_cancel(call, CEV_END, reason, 503,
				    "Service Unavailable", "Retry-After: 30\r\n");
		else
			call_cancel(call, CEV_END, reason, 487,
				    "Request Terminated", hdr);
		return 0;

	case B2BUA_ST_ANSWERED:
	case B2BUA_ST_CONFIRMED:
		if (!call_event(call, CEV_END))
			return EPROTO;
		call_terminate(call, reason, false);
		return 0;

	default:
		return EALREADY;
	}
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


const char *b2bua_call_gateway(const struct b2bua_call *call)
{
	if (!call || !call->route || call->gwi >= call->route->gwc)
		return NULL;

	return call->route->gwv[call->gwi]->name;
}


enum b2bua_state b2bua_call_state(const struct b2bua_call *call)
{
	return call ? call->state : B2BUA_ST_CLOSED;
}


enum b2bua_reason b2bua_call_reason(const struct b2bua_call *call)
{
	return call ? call->reason : B2BUA_R_NONE;
}


uint16_t b2bua_call_scode(const struct b2bua_call *call)
{
	return call ? call->scode : 0;
}


bool b2bua_call_hangup_by_caller(const struct b2bua_call *call)
{
	return call ? call->by_caller : false;
}


uint64_t b2bua_call_setup_ms(const struct b2bua_call *call)
{
	return call ? call->setup_ms : 0;
}


uint64_t b2bua_call_answer_ms(const struct b2bua_call *call)
{
	return call ? call->answer_ms : 0;
}


uint64_t b2bua_call_end_ms(const struct b2bua_call *call)
{
	return call ? call->end_ms : 0;
}


/** Media statistics of the call as JSON (set by the media relay), or NULL */
const char *b2bua_call_media(const struct b2bua_call *call)
{
	return call ? call->media : NULL;
}


int b2bua_call_set_media(struct b2bua_call *call, const char *json)
{
	if (!call)
		return EINVAL;

	call->media = mem_deref(call->media);

	return json ? str_dup(&call->media, json) : 0;
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
		b2bua_emit(call, ev);
}
