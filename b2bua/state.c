/**
 * @file state.c  The call state x event table, the one writer of the state
 *
 * call_event() looks the next state up, refuses (logs and counts) an event
 * the table does not allow, and runs what entering the new state means:
 * the answer to a caller still waiting, CANCEL or BYE toward the legs, the
 * release of the call.  The subscribers' events come from the (old, new)
 * pair here and nowhere else, and the call's record is written here, once,
 * when its outcome is decided.
 */

#include <string.h>
#include "b2bua_int.h"


/*
 * Rows are states, columns events.  No event leads back to identify, so an
 * entry left out (0, B2BUA_ST_IDENTIFY) marks an event that must not happen
 * in that state.
 */
#define ILLEGAL B2BUA_ST_IDENTIFY

static const enum b2bua_state next_state[B2BUA_ST_COUNT][CEV_COUNT] = {
	[B2BUA_ST_IDENTIFY][CEV_IDENTIFIED]     = B2BUA_ST_AUTHORIZE,
	[B2BUA_ST_IDENTIFY][CEV_REJECT]         = B2BUA_ST_CLOSED,
	[B2BUA_ST_IDENTIFY][CEV_CANCEL]         = B2BUA_ST_CLOSED,
	[B2BUA_ST_IDENTIFY][CEV_END]            = B2BUA_ST_CLOSED,

	[B2BUA_ST_AUTHORIZE][CEV_AUTHORIZED]    = B2BUA_ST_CALLING,
	[B2BUA_ST_AUTHORIZE][CEV_REFUSED]       = B2BUA_ST_CLOSED,
	[B2BUA_ST_AUTHORIZE][CEV_REJECT]        = B2BUA_ST_CLOSED,
	[B2BUA_ST_AUTHORIZE][CEV_CANCEL]        = B2BUA_ST_CLOSED,
	[B2BUA_ST_AUTHORIZE][CEV_END]           = B2BUA_ST_CLOSED,

	[B2BUA_ST_CALLING][CEV_PROVISIONAL]     = B2BUA_ST_RINGING,
	[B2BUA_ST_CALLING][CEV_ANSWER]          = B2BUA_ST_ANSWERED,
	[B2BUA_ST_CALLING][CEV_ANSWER_LOST]     = B2BUA_ST_TERMINATING,
	[B2BUA_ST_CALLING][CEV_FAILOVER]        = B2BUA_ST_CALLING,
	[B2BUA_ST_CALLING][CEV_REJECT]          = B2BUA_ST_CLOSED,
	[B2BUA_ST_CALLING][CEV_CANCEL]          = B2BUA_ST_CANCELLING,
	[B2BUA_ST_CALLING][CEV_RING_TIMEOUT]    = B2BUA_ST_CANCELLING,
	[B2BUA_ST_CALLING][CEV_END]             = B2BUA_ST_CANCELLING,

	[B2BUA_ST_RINGING][CEV_PROVISIONAL]     = B2BUA_ST_RINGING,
	[B2BUA_ST_RINGING][CEV_ANSWER]          = B2BUA_ST_ANSWERED,
	[B2BUA_ST_RINGING][CEV_ANSWER_LOST]     = B2BUA_ST_TERMINATING,
	[B2BUA_ST_RINGING][CEV_FAILOVER]        = B2BUA_ST_CALLING,
	[B2BUA_ST_RINGING][CEV_REJECT]          = B2BUA_ST_CLOSED,
	[B2BUA_ST_RINGING][CEV_CANCEL]          = B2BUA_ST_CANCELLING,
	[B2BUA_ST_RINGING][CEV_RING_TIMEOUT]    = B2BUA_ST_CANCELLING,
	[B2BUA_ST_RINGING][CEV_END]             = B2BUA_ST_CANCELLING,

	[B2BUA_ST_ANSWERED][CEV_ACK]            = B2BUA_ST_CONFIRMED,
	[B2BUA_ST_ANSWERED][CEV_BYE_CALLER]     = B2BUA_ST_TERMINATING,
	[B2BUA_ST_ANSWERED][CEV_BYE_GATEWAY]    = B2BUA_ST_TERMINATING,
	[B2BUA_ST_ANSWERED][CEV_END]            = B2BUA_ST_TERMINATING,

	[B2BUA_ST_CONFIRMED][CEV_ACK]           = B2BUA_ST_CONFIRMED,
	[B2BUA_ST_CONFIRMED][CEV_BYE_CALLER]    = B2BUA_ST_TERMINATING,
	[B2BUA_ST_CONFIRMED][CEV_BYE_GATEWAY]   = B2BUA_ST_TERMINATING,
	[B2BUA_ST_CONFIRMED][CEV_END]           = B2BUA_ST_TERMINATING,

	[B2BUA_ST_CANCELLING][CEV_PROVISIONAL]  = B2BUA_ST_CANCELLING,
	[B2BUA_ST_CANCELLING][CEV_ANSWER]       = B2BUA_ST_TERMINATING,
	[B2BUA_ST_CANCELLING][CEV_CANCEL]       = B2BUA_ST_CANCELLING,
	[B2BUA_ST_CANCELLING][CEV_RING_TIMEOUT] = B2BUA_ST_CANCELLING,
	[B2BUA_ST_CANCELLING][CEV_END]          = B2BUA_ST_CANCELLING,
	[B2BUA_ST_CANCELLING][CEV_UAC_FINAL]    = B2BUA_ST_CLOSED,

	[B2BUA_ST_TERMINATING][CEV_ACK]         = B2BUA_ST_TERMINATING,
	[B2BUA_ST_TERMINATING][CEV_BYE_CALLER]  = B2BUA_ST_TERMINATING,
	[B2BUA_ST_TERMINATING][CEV_BYE_GATEWAY] = B2BUA_ST_TERMINATING,
	[B2BUA_ST_TERMINATING][CEV_END]         = B2BUA_ST_TERMINATING,
	[B2BUA_ST_TERMINATING][CEV_UAC_FINAL]   = B2BUA_ST_TERMINATING,
	[B2BUA_ST_TERMINATING][CEV_DONE]        = B2BUA_ST_CLOSED,

	[B2BUA_ST_CLOSED][CEV_DONE]             = B2BUA_ST_CLOSED,
};

static const char *cev_names[CEV_COUNT] = {
	[CEV_IDENTIFIED]   = "identified",
	[CEV_AUTHORIZED]   = "authorized",
	[CEV_REFUSED]      = "refused",
	[CEV_PROVISIONAL]  = "provisional",
	[CEV_ANSWER]       = "answer",
	[CEV_ANSWER_LOST]  = "answer-lost",
	[CEV_FAILOVER]     = "failover",
	[CEV_REJECT]       = "reject",
	[CEV_CANCEL]       = "cancel",
	[CEV_RING_TIMEOUT] = "ring-timeout",
	[CEV_ACK]          = "ack",
	[CEV_BYE_CALLER]   = "bye-caller",
	[CEV_BYE_GATEWAY]  = "bye-gateway",
	[CEV_END]          = "end",
	[CEV_UAC_FINAL]    = "uac-final",
	[CEV_DONE]         = "done",
};


/* the call's outcome is decided in these states */
static bool state_over(enum b2bua_state st)
{
	return st >= B2BUA_ST_CANCELLING;
}


static bool state_answered(enum b2bua_state st)
{
	return st == B2BUA_ST_ANSWERED || st == B2BUA_ST_CONFIRMED;
}


/** Is the call's outcome decided (cancelling, terminating or closed)? */
bool call_over(const struct b2bua_call *call)
{
	return state_over(call->state);
}


static enum b2bua_party hangup_party(enum b2bua_reason r, bool by_caller)
{
	switch (r) {

	case B2BUA_R_CALLER:
	case B2BUA_R_CANCELLED:
		return B2BUA_PARTY_CALLER;

	case B2BUA_R_CALLEE:
		return B2BUA_PARTY_CALLEE;

	case B2BUA_R_REJECTED:
		return by_caller ? B2BUA_PARTY_CALLER : B2BUA_PARTY_CALLEE;

	default:
		return by_caller ? B2BUA_PARTY_CALLER : B2BUA_PARTY_TOLLGATE;
	}
}


/* the outcome is decided: note it and write the call's record */
static void decide(struct b2bua_call *call, enum call_ev ev,
		   const struct call_evarg *arg)
{
	struct b2bua_call_record *rec = &call->rec;

	call->reason = arg->reason;
	call->by_caller = ev == CEV_BYE_CALLER;
	if (!call->scode)
		call->scode = arg->scode;
	if (!call->end_ms)
		call->end_ms = b2bua_wallclock_ms();
	if (arg->reason_hdr && pl_isset(arg->reason_hdr) && !call->reason_hdr)
		(void)pl_strdup(&call->reason_hdr, arg->reason_hdr);

	rec->id          = call->id;
	rec->sip_call_id = call_logid(call);
	rec->account     = call->account;
	rec->account_id  = call->account_id;
	rec->caller      = call->caller;
	rec->callee      = call->callee;
	rec->gateway     = b2bua_call_gateway(call);
	rec->setup_ms    = call->setup_ms;
	rec->answer_ms   = call->answer_ms;
	rec->end_ms      = call->end_ms;
	rec->reason      = call->reason;
	rec->scode       = call->scode;
	rec->hangup      = hangup_party(call->reason, call->by_caller);
	call_record_lcr(call, rec);
}


/* ENDED or FAILED, for calls the subscribers heard of */
static void emit_end(struct b2bua_call *call, enum b2bua_state old)
{
	if (old == B2BUA_ST_IDENTIFY)
		return;   /* never announced: identification failed */

	b2bua_emit(call, state_answered(old) ? B2BUA_EV_ENDED :
		   B2BUA_EV_FAILED, &call->rec);
}


/* Nothing of the call is left: it goes */
static void call_close(struct b2bua_call *call)
{
	struct b2bua *b = call->b;

	tlog_info(call_logid(call), "call %s closed: %s (%u)", call->id,
		  b2bua_reason_name(call->reason), call->scode);

	hash_unlink(&call->he);
	call_unindex(call);
	gw_release(call);
	if (b->ncalls)
		--b->ncalls;

	if (b->draining && !b->ncalls && b->shutdownh) {
		void (*h)(void *) = b->shutdownh;
		b->shutdownh = NULL;
		h(b->shutdown_arg);
	}

	mem_deref(call);
}


static bool leg_busy(const struct leg *leg)
{
	return leg && (leg->byereq || leg->bye_pending);
}


/** A terminating call whose transactions all finished is done */
void call_done_check(struct b2bua_call *call)
{
	if (call->state != B2BUA_ST_TERMINATING)
		return;

	if (call->req || call->relayl.head)
		return;

	if (leg_busy(call->a) || leg_busy(call->g))
		return;

	(void)call_event(call, CEV_DONE, NULL);
}


/* BYE on every leg that did not hang up itself */
static void terminate(struct b2bua_call *call, enum b2bua_state old,
		      enum call_ev ev)
{
	tmr_cancel(&call->tmr_dur);
	prack_stop(call);
	uac_ack_late(call, NULL);   /* the gateway's 2xx, before its BYE */
	timer_stop(call->a);
	timer_stop(call->g);
	relay_flush(call);

	if (!state_over(old)) {
		tlog_info(call_logid(call), "call %s ending: %s", call->id,
			  b2bua_reason_name(call->reason));
		emit_end(call, old);
	}

	if (ev != CEV_BYE_CALLER)
		(void)leg_bye(call->a, call->reason_hdr);
	if (ev != CEV_BYE_GATEWAY)
		(void)leg_bye(call->g, call->reason_hdr);

	call_done_check(call);
}


/* What entering a state means; the call may be gone afterwards */
static void enter(struct b2bua_call *call, enum b2bua_state old,
		  enum call_ev ev, const struct call_evarg *arg)
{
	const bool ends = !state_over(old) && state_over(call->state);

	if (ends)
		decide(call, ev, arg);

	switch (call->state) {

	case B2BUA_ST_AUTHORIZE:
		b2bua_emit(call, B2BUA_EV_CREATED, NULL);
		break;

	case B2BUA_ST_RINGING:
		b2bua_emit(call, B2BUA_EV_RINGING, NULL);
		break;

	case B2BUA_ST_ANSWERED:
		call->answer_ms = b2bua_wallclock_ms();
		call->scode = arg->scode;
		uac_answered(call);
		b2bua_emit(call, B2BUA_EV_ANSWERED, NULL);
		break;

	case B2BUA_ST_CONFIRMED:
		call->inv = mem_deref((void *)call->inv);
		break;

	case B2BUA_ST_CANCELLING:
		tlog_info(call_logid(call), "call %s abandoned: %u %s (%s)",
			  call->id, arg->scode, arg->phrase,
			  b2bua_reason_name(call->reason));
		call_reply(call, arg->scode, arg->phrase, arg->hdrs);
		emit_end(call, old);
		uac_cancel(call);
		break;

	case B2BUA_ST_TERMINATING:
		terminate(call, old, ev);
		break;

	case B2BUA_ST_CLOSED:
		if (ends) {
			tlog_info(call_logid(call), "call %s failed: %u %s "
				  "(%s)", call->id, arg->scode, arg->phrase,
				  b2bua_reason_name(call->reason));
			call_reply(call, arg->scode, arg->phrase, arg->hdrs);
			call->credq = mem_deref(call->credq);
			emit_end(call, old);
		}
		call_close(call);
		break;

	default:
		break;
	}
}


/**
 * Apply an event to the call: the only writer of call->state.  What the
 * new state means is done at once, so the call may be gone on return.
 *
 * @param call  The call
 * @param ev    The event
 * @param arg   What comes with it (NULL: nothing)
 *
 * @return 0, or EPROTO if the event is illegal in the call's state (it is
 *         logged, counted and ignored)
 */
int call_event(struct b2bua_call *call, enum call_ev ev,
	       const struct call_evarg *arg)
{
	static const struct call_evarg none;
	const enum b2bua_state old = call->state;
	const enum b2bua_state nst = next_state[old][ev];

	if (nst == ILLEGAL) {
		++call->b->st.illegal_events;
		tlog_warn(call_logid(call), "illegal event '%s' in state '%s'"
			  " ignored", cev_names[ev], b2bua_state_name(old));
		return EPROTO;
	}

	call->state = nst;
	if (nst == old)
		return 0;

	tlog_dbg(call_logid(call), "%s --%s--> %s", b2bua_state_name(old),
		 cev_names[ev], b2bua_state_name(nst));

	enter(call, old, ev, arg ? arg : &none);

	return 0;
}


/**
 * The call fails before it was answered: the caller gets this answer, the
 * subscribers hear of it, the call goes.
 *
 * @return 0, or EPROTO if the call cannot fail so any more
 */
int call_fail(struct b2bua_call *call, enum b2bua_reason reason,
	      uint16_t scode, const char *phrase, const char *hdrs)
{
	const struct call_evarg arg = {
		.reason = reason,
		.scode  = scode,
		.phrase = phrase,
		.hdrs   = hdrs,
	};

	return call_event(call, CEV_REJECT, &arg);
}


/**
 * End a call, whatever it is doing: a caller still waiting gets 487 (503
 * while shutting down), a gateway still ringing a CANCEL, an answered call
 * BYE on both legs.
 *
 * @return 0, EALREADY if the call is already ending, or an errno
 */
int b2bua_call_end(struct b2bua_call *call, enum b2bua_reason reason,
		   const char *reason_hdr)
{
	struct call_evarg arg = {
		.reason = reason,
		.scode  = 487,
		.phrase = "Request Terminated",
	};
	char hdr[256];

	if (!call)
		return EINVAL;

	if (reason_hdr) {
		call->reason_hdr = mem_deref(call->reason_hdr);
		if (str_dup(&call->reason_hdr, reason_hdr))
			return ENOMEM;

		(void)re_snprintf(hdr, sizeof(hdr), "Reason: %s\r\n",
				  reason_hdr);
		arg.hdrs = hdr;
	}

	if (reason == B2BUA_R_SHUTDOWN) {
		arg.scode  = 503;
		arg.phrase = "Service Unavailable";
		arg.hdrs   = "Retry-After: 30\r\n";
	}

	if (call_over(call))
		return EALREADY;

	return call_event(call, CEV_END, &arg);
}


const char *b2bua_state_name(enum b2bua_state st)
{
	static const char *names[B2BUA_ST_COUNT] = {
		"identify", "authorize", "calling", "ringing", "answered",
		"confirmed", "cancelling", "terminating", "closed"
	};

	return (unsigned)st < B2BUA_ST_COUNT ? names[st] : "?";
}


const char *b2bua_party_name(enum b2bua_party p)
{
	switch (p) {

	case B2BUA_PARTY_CALLER:   return "caller";
	case B2BUA_PARTY_CALLEE:   return "callee";
	case B2BUA_PARTY_TOLLGATE: return "tollgate";
	default:                   return "?";
	}
}


void b2bua_stats(const struct b2bua *b, struct b2bua_stats *st)
{
	if (!st)
		return;

	if (b) {
		*st = b->st;
		st->limit_sources = limiter_sources(b->lim);
	}
	else
		memset(st, 0, sizeof(*st));
}
