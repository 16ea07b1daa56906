/**
 * @file rescue.c  Stateless answers to requests libre cannot decode
 *
 * libre 1.1.0's sip_msg_decode() refuses some requests that are
 * well-formed (a Via without a branch as RFC 2543 wrote it, a To or From
 * whose URI is not a SIP URI without angle brackets, ...) and every
 * malformed one; its UDP transport then drops the datagram, and the
 * sender hears nothing.  The executable defines sip_msg_decode() and
 * udp_listen() itself and exports them, so libre's calls through its PLT
 * bind to them (as they do for tmr_* and re_fprintf):
 *
 *  - udp_listen() calls libre's and, while the B2BUA adds its UDP
 *    transports, puts a receive helper on the new socket that notes each
 *    datagram's source before libre decodes it;
 *  - sip_msg_decode() calls libre's; when it fails on the datagram just
 *    noted, the datagram is parsed here just enough to answer it (request
 *    line, Via, From, To, Call-ID, CSeq), and a response is sent at once,
 *    without a transaction: 505, 400, 405, 416 or 400 as RFC 3261 8.2
 *    orders its checks.  Responses, ACKs and anything these headers
 *    cannot be found in stay unanswered.  The answer is never larger than
 *    the datagram, nor sent twice, and the source pays a token of the
 *    limits at the door for it (over the limit: no answer).
 *
 * TCP and TLS are left as they are (libre closes the connection).
 */

#define _GNU_SOURCE 1
#include <dlfcn.h>
#include <string.h>
#include "b2bua_int.h"


typedef int (decode_f)(struct sip_msg **msgp, struct mbuf *mb);
typedef int (listen_f)(struct udp_sock **usp, const struct sa *local,
		       udp_recv_h *rh, void *arg);

/* prototypes of the libre functions defined here (re_sip.h has the
 * first; re_udp.h the second) */
int sip_msg_decode(struct sip_msg **msgp, struct mbuf *mb);
int udp_listen(struct udp_sock **usp, const struct sa *local,
	       udp_recv_h *rh, void *arg);


static struct {
	bool arm;                  /**< udp_listen() adds the helper       */
	unsigned users;            /**< B2BUAs that want the answers       */
	const struct mbuf *mb;     /**< the datagram noted (borrowed)      */
	size_t pos, end;           /**< its extent when noted              */
	struct sa src;             /**< its source                         */
	struct udp_sock *us;       /**< its socket (borrowed)              */
	uint64_t answered;         /**< answers sent                       */
	rescue_gate_h *gate;       /**< may src be answered (the limits)   */
	void *gate_arg;
} rs;


static bool recv_helper(struct sa *src, struct mbuf *mb, void *arg)
{
	struct udp_sock *us = arg;

	rs.mb = NULL;

	/* STUN starts with 0x00 or 0x01, SIP with a printable byte */
	if (!rs.users || mbuf_get_left(mb) <= 4 || mbuf_buf(mb)[0] < 0x20)
		return false;

	rs.mb = mb;
	rs.pos = mb->pos;
	rs.end = mb->end;
	rs.src = *src;
	rs.us = us;

	return false;
}


int udp_listen(struct udp_sock **usp, const struct sa *local,
	       udp_recv_h *rh, void *arg)
{
	static listen_f *real;
	int err;

	if (!real)
		real = (listen_f *)dlsym(RTLD_NEXT, "udp_listen");
	if (!real)
		return ENOSYS;

	err = real(usp, local, rh, arg);
	if (err || !rs.arm || !usp)
		return err;

	/* the socket owns its helpers */
	return udp_register_helper(NULL, *usp, 0, NULL, recv_helper, *usp);
}


static void answer(const struct mbuf *mb)
{
	struct mbuf *out;
	uint16_t scode = 0;
	int err;

	if (rs.gate && !rs.gate(&rs.src, rs.gate_arg))
		return;

	out = mbuf_alloc(512);
	if (!out)
		return;

	err = rescue_reply(out, mbuf_buf(mb), mbuf_get_left(mb), &scode);
	if (err || !scode)
		goto out;

	out->pos = 0;
	err = udp_send(rs.us, &rs.src, out);
	if (err)
		goto out;

	++rs.answered;
	tlog_dbg(NULL, "sip: %u to %J for a request that cannot be decoded",
		 scode, &rs.src);

 out:
	mem_deref(out);
}


int sip_msg_decode(struct sip_msg **msgp, struct mbuf *mb)
{
	static decode_f *real;
	bool noted;
	size_t pos;
	int err;

	if (!real)
		real = (decode_f *)dlsym(RTLD_NEXT, "sip_msg_decode");
	if (!real)
		return ENOSYS;

	noted = mb && mb == rs.mb && mb->pos == rs.pos && mb->end == rs.end;
	rs.mb = NULL;
	pos = mb ? mb->pos : 0;

	err = real(msgp, mb);
	if (!err || !noted || !rs.users)
		return err;

	mb->pos = pos;
	answer(mb);

	return err;
}


/** The B2BUA's UDP transports answer what libre cannot decode */
void rescue_arm(bool on)
{
	rs.arm = on;
}


void rescue_use(bool on, rescue_gate_h *gate, void *arg)
{
	if (on) {
		++rs.users;
		rs.gate = gate;
		rs.gate_arg = arg;
	}
	else if (rs.users) {
		--rs.users;
		if (rs.gate_arg == arg)
			rs.gate = NULL;
	}

	if (!rs.users)
		rs.mb = NULL;
}


uint64_t rescue_answered(void)
{
	return rs.answered;
}
