/**
 * @file auth.c  Who is calling: trusted peers and SIP digest (RFC 3261 22)
 *
 * A source address listed as a trusted peer maps to an account (fixed, or
 * named by a header).  Anything else is challenged with 407 and checked
 * against the account's HA1.  Whatever fails gets 403 and never reaches a
 * gateway.
 */

#include <string.h>
#include "b2bua_int.h"


enum { NONCE_HASH_LEN = 16 };


static int nonce_make(char *buf, size_t sz, const struct b2bua *b,
		      const struct sa *src, uint64_t now_s)
{
	uint8_t md[20];   /* SHA-1 */
	char data[96];
	int n;

	n = re_snprintf(data, sizeof(data), "%llx:%j", now_s, src);
	if (n <= 0)
		return EINVAL;

	hmac_sha1(b->nonce_key, sizeof(b->nonce_key), (uint8_t *)data,
		  (size_t)n, md, sizeof(md));

	return re_snprintf(buf, sz, "%llx%w", now_s, md,
			   (size_t)NONCE_HASH_LEN) > 0 ? 0 : EINVAL;
}


/** 0 if valid, ETIMEDOUT if expired (stale), EAUTH if forged */
int auth_nonce_check(const struct b2bua *b, const struct pl *nonce,
		     const struct sa *src)
{
	char expect[64];
	struct pl ts;
	uint64_t t, now = tmr_jiffies() / 1000;

	if (nonce->l <= NONCE_HASH_LEN * 2 || nonce->l > 48)
		return EAUTH;

	ts.p = nonce->p;
	ts.l = nonce->l - NONCE_HASH_LEN * 2;
	t = pl_x64(&ts);

	if (nonce_make(expect, sizeof(expect), b, src, t))
		return EAUTH;

	if (pl_strcmp(nonce, expect))
		return EAUTH;

	if (t > now || now - t > b->cfg->nonce_ttl)
		return ETIMEDOUT;

	return 0;
}


static void challenge(struct b2bua_call *call, bool stale)
{
	char nonce[64], hdr[256];

	if (nonce_make(nonce, sizeof(nonce), call->b, &call->inv->src,
		       tmr_jiffies() / 1000)) {
		call_fail(call, B2BUA_R_FAILED, 500, "Server Internal Error",
			  NULL);
		return;
	}

	(void)re_snprintf(hdr, sizeof(hdr),
			  "Proxy-Authenticate: Digest realm=\"%s\", "
			  "nonce=\"%s\", algorithm=MD5, qop=\"auth\"%s\r\n",
			  call->b->cfg->realm, nonce,
			  stale ? ", stale=true" : "");

	tlog_info(call_logid(call), "challenging %J", &call->inv->src);

	/* a challenge is not a failed call: nothing was announced */
	call_fail(call, B2BUA_R_REJECTED, 407,
		  "Proxy Authentication Required", hdr);
}


static void forbid(struct b2bua_call *call, const char *why)
{
	char hdr[160];

	tlog_warn(call_logid(call), "caller %s@%J refused: %s", call->caller,
		  &call->inv->src, why);

	(void)re_snprintf(hdr, sizeof(hdr),
			  "Reason: SIP;cause=403;text=\"%s\"\r\n", why);
	call_fail(call, B2BUA_R_REJECTED, 403, "Forbidden", hdr);
}


bool auth_digest_valid(const struct b2bua_call *call, const char *ha1hex)
{
	const struct sip_hdr *hdr;
	struct httpauth_digest_resp resp;
	uint8_t ha1[16];

	hdr = sip_msg_hdr(call->inv, SIP_HDR_PROXY_AUTHORIZATION);
	if (!hdr || httpauth_digest_response_decode(&resp, &hdr->val))
		return false;

	/* str_hex checks the length only: the column's CHECK constraint
	 * (sql/001_init.sql) admits nothing but 32 hex digits */
	if (str_hex(ha1, sizeof(ha1), ha1hex))
		return false;

	return 0 == httpauth_digest_response_auth(&resp, &call->inv->met,
						  ha1);
}


static void cred_done(int err, const struct b2bua_cred *cred, void *arg)
{
	struct b2bua_call *call = arg;
	bool digest = sip_msg_hdr(call->inv, SIP_HDR_PROXY_AUTHORIZATION) &&
		!cfg_peer_find(call->b->cfg, &call->inv->src,
			       call->inv->tp);

	call->credq = mem_deref(call->credq);

	if (call->state != B2BUA_ST_IDENTIFY)
		return;

	if (err == ENOENT) {
		forbid(call, "unknown account");
		return;
	}
	if (err) {
		tlog_warn(call_logid(call), "account lookup failed: %m", err);
		call_fail(call, B2BUA_R_FAILED, 503, "Service Unavailable",
			  "Retry-After: 10\r\n");
		return;
	}

	if (digest && (!cred->ha1 || !cred->ha1[0] ||
		       !auth_digest_valid(call, cred->ha1))) {
		forbid(call, "wrong credentials");
		return;
	}

	if (!cred->active) {
		forbid(call, "account blocked");
		return;
	}

	if (str_dup(&call->account, cred->account)) {
		call_fail(call, B2BUA_R_FAILED, 500, "Server Internal Error",
			  NULL);
		return;
	}
	call->account_id = cred->account_id;
	call->max_cps = cred->max_cps;

	tlog_info(call_logid(call), "caller identified as account %s",
		  call->account);

	uas_proceed(call);
}


static void lookup(struct b2bua_call *call, bool by_sipuser,
		   const char *name)
{
	struct b2bua *b = call->b;
	int err;

	if (!b->credh) {
		if (by_sipuser) {
			forbid(call, "no credential store");
			return;
		}
		/* no account store: the peer's account is taken as is */
		if (str_dup(&call->account, name)) {
			call_fail(call, B2BUA_R_FAILED, 500,
				  "Server Internal Error", NULL);
			return;
		}
		uas_proceed(call);
		return;
	}

	err = b->credh(&call->credq, by_sipuser, name, cred_done, call,
		       b->cred_arg);
	if (err) {
		tlog_warn(call_logid(call), "account lookup: %m", err);
		call_fail(call, B2BUA_R_FAILED, 503, "Service Unavailable",
			  "Retry-After: 10\r\n");
	}
}


int auth_header_user(char *buf, size_t sz, const struct sip_msg *msg,
		     const char *name)
{
	const struct sip_hdr *hdr;
	struct sip_addr addr;

	hdr = sip_msg_xhdr(msg, name);
	if (!hdr)
		return ENOENT;

	if (sip_addr_decode(&addr, &hdr->val) || !pl_isset(&addr.uri.user))
		return EBADMSG;

	if (addr.uri.user.l >= sz)
		return EOVERFLOW;

	return pl_strcpy(&addr.uri.user, buf, sz);
}


void auth_identify(struct b2bua_call *call, const struct sip_msg *msg)
{
	const struct b2bua_conf *cfg = call->b->cfg;
	const struct cfg_peer *peer;
	const struct sip_hdr *hdr;
	struct httpauth_digest_resp resp;
	char name[64];
	int err;

	peer = cfg_peer_find(cfg, &msg->src, msg->tp);
	if (peer) {
		switch (peer->mode) {

		case CFG_ID_FIXED:
			lookup(call, false, peer->account);
			return;

		case CFG_ID_HEADER:
			err = auth_header_user(name, sizeof(name), msg,
					       peer->hdr);
			break;

		case CFG_ID_FROM:
		default:
			err = str_len(call->caller) < sizeof(name)
				? (str_ncpy(name, call->caller, sizeof(name)),
				   0) : EOVERFLOW;
			break;
		}

		if (err) {
			forbid(call, "no account in identity header");
			return;
		}

		lookup(call, false, name);
		return;
	}

	if (!cfg->digest_auth) {
		forbid(call, "untrusted source");
		return;
	}

	hdr = sip_msg_hdr(msg, SIP_HDR_PROXY_AUTHORIZATION);
	if (!hdr) {
		challenge(call, false);
		return;
	}

	if (httpauth_digest_response_decode(&resp, &hdr->val) ||
	    pl_strcmp(&resp.realm, cfg->realm) ||
	    resp.username.l >= sizeof(name) || !resp.username.l) {
		forbid(call, "bad credentials");
		return;
	}

	err = auth_nonce_check(call->b, &resp.nonce, &msg->src);
	if (err == ETIMEDOUT) {
		challenge(call, true);
		return;
	}
	if (err) {
		forbid(call, "bad nonce");
		return;
	}

	(void)pl_strcpy(&resp.username, name, sizeof(name));
	lookup(call, true, name);
}
