/**
 * @file auth.c  Who is calling: trusted peers and SIP digest (RFC 3261 22,
 *               RFC 7616, RFC 8760)
 *
 * A source address listed as a trusted peer maps to an account (fixed, or
 * named by a header).  Anything else is challenged with 407, MD5 and
 * SHA-256 side by side (MD5 first: many clients take the first challenge
 * and know no other), and the answer is checked against the account's HA1.
 *
 * A digest answer is taken once: its nonce must be ours, bound to the
 * source address and not older than nonce_ttl; its uri must be the
 * Request-URI; qop=auth with a nonce count that grows for every use of the
 * nonce.  A replayed Proxy-Authorization (same nonce and count, another
 * Call-ID or number) is refused.
 *
 * Every failure hears the same answer, whatever its cause (unknown user,
 * wrong password, replay, blocked or inactive account), sent without a
 * transaction; failures count toward the blocks of b2bua/guard.c.
 */

#include <string.h>
#include <openssl/evp.h>
#include "b2bua_int.h"


enum digest_alg { ALG_MD5 = 0, ALG_SHA256 };


/* hex digest of data: MD5 (32 chars) or SHA-256 (64 chars) */
static int hash_hex(char *hex, size_t sz, enum digest_alg alg,
		    const char *data, size_t len)
{
	uint8_t md[32];
	unsigned mdlen = 16;

	if (alg == ALG_SHA256) {
		if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL))
			return EPROTO;
	}
	else {
		md5((const uint8_t *)data, len, md);
	}

	return re_snprintf(hex, sz, "%w", md, (size_t)mdlen) > 0 ? 0 : EINVAL;
}


/* the request digest of RFC 7616 3.4.1 with qop=auth */
static bool digest_valid(const struct httpauth_digest_resp *resp,
			 const struct pl *met, enum digest_alg alg,
			 const char *ha1)
{
	char ha2[65], expect[65], buf[512];
	size_t hlen = alg == ALG_SHA256 ? 64 : 32;
	int n;

	if (str_len(ha1) != hlen || resp->response.l != hlen)
		return false;

	n = re_snprintf(buf, sizeof(buf), "%r:%r", met, &resp->uri);
	if (n <= 0 || hash_hex(ha2, sizeof(ha2), alg, buf, (size_t)n))
		return false;

	n = re_snprintf(buf, sizeof(buf), "%s:%r:%r:%r:%r:%s", ha1,
			&resp->nonce, &resp->nc, &resp->cnonce, &resp->qop,
			ha2);
	if (n <= 0 || hash_hex(expect, sizeof(expect), alg, buf, (size_t)n))
		return false;

	return 0 == pl_strcasecmp(&resp->response, expect);
}


/** The request digest of an answer, MD5 or SHA-256 (also for fuzzing) */
bool auth_digest_valid(const struct httpauth_digest_resp *resp,
		       const struct pl *met, bool sha256, const char *ha1)
{
	return digest_valid(resp, met, sha256 ? ALG_SHA256 : ALG_MD5, ha1);
}


static int alg_get(enum digest_alg *algp, const struct pl *hval)
{
	struct pl alg;

	if (re_regex(hval->p, hval->l, "algorithm=[\"]*[^,\" \t\r\n]+",
		     NULL, &alg)) {
		*algp = ALG_MD5;
		return 0;
	}

	if (!pl_strcasecmp(&alg, "MD5"))
		*algp = ALG_MD5;
	else if (!pl_strcasecmp(&alg, "SHA-256"))
		*algp = ALG_SHA256;
	else
		return ENOTSUP;

	return 0;
}


/*
 * The digest uri must be the Request-URI.  With digest_uri host, a uri
 * without user part naming the Request-URI's host and port is taken too
 * (some clients send that); the answer is then not bound to the number.
 */
static bool uri_ok(const struct b2bua_conf *cfg, const struct pl *uri,
		   const struct sip_msg *msg)
{
	const char *at;
	struct pl hp, uhp;

	if (!pl_cmp(uri, &msg->ruri))
		return true;

	if (cfg->digest_uri != B2BUA_DURI_HOST)
		return false;

	at = pl_strchr(&msg->ruri, '@');
	if (!at || uri->l < 4 || memcmp(uri->p, "sip:", 4) ||
	    pl_isset(&msg->uri.params) || pl_isset(&msg->uri.headers))
		return false;

	hp.p = at + 1;
	hp.l = msg->ruri.l - (size_t)(hp.p - msg->ruri.p);
	uhp.p = uri->p + 4;
	uhp.l = uri->l - 4;

	return 0 == pl_casecmp(&hp, &uhp);
}


static bool unauth(const struct b2bua_call *call)
{
	return !call->authed;
}


/**
 * End a call of a caller not authenticated: the answer goes without the
 * server transaction (once, never retransmitted, no larger than the
 * request over UDP; hdrs_small if hdrs does not fit)
 */
static void unauth_end(struct b2bua_call *call, uint16_t scode,
		       const char *phrase, const char *hdrs,
		       const char *hdrs_small, bool silent)
{
	if (!silent)
		(void)guard_reply(call->b, call->inv, scode, phrase, hdrs,
				  hdrs_small);

	call->st = mem_deref(call->st);

	/* a refusal at the door is not a failed call: nothing announced */
	call_fail(call, B2BUA_R_REJECTED, scode, phrase, hdrs);
}


void auth_unauth_fail(struct b2bua_call *call, uint16_t scode,
		      const char *phrase, const char *hdrs)
{
	if (unauth(call))
		unauth_end(call, scode, phrase, hdrs, NULL, false);
	else
		call_fail(call, B2BUA_R_FAILED, scode, phrase, hdrs);
}


static void challenge(struct b2bua_call *call, bool stale)
{
	const char *realm = call->b->cfg->realm;
	const char *st = stale ? ", stale=true" : "";
	char nonce[64], hdr[400], small[200];

	if (nonce_make(nonce, sizeof(nonce), call->b, &call->inv->src,
		       tmr_jiffies() / 1000, rand_u64())) {
		auth_unauth_fail(call, 500, "Server Internal Error", NULL);
		return;
	}

	(void)re_snprintf(small, sizeof(small),
			  "Proxy-Authenticate: Digest realm=\"%s\", "
			  "nonce=\"%s\", algorithm=MD5, qop=\"auth\"%s\r\n",
			  realm, nonce, st);
	(void)re_snprintf(hdr, sizeof(hdr),
			  "%s"
			  "Proxy-Authenticate: Digest realm=\"%s\", "
			  "nonce=\"%s\", algorithm=SHA-256, qop=\"auth\"%s\r\n",
			  small, realm, nonce, st);

	tlog_info(call_logid(call), "challenging %J", &call->inv->src);

	unauth_end(call, 407, "Proxy Authentication Required", hdr, small,
		   false);
}


/**
 * Refuse a caller.  Every cause gets the same answer (or none): the
 * reason is only logged.
 */
static void refuse(struct b2bua_call *call, const char *why, bool count)
{
	struct b2bua *b = call->b;

	tlog_warn(call_logid(call), "caller %J refused: %s", &call->inv->src,
		  why);

	if (count)
		guard_fail(b->guard, &call->inv->src, call->sipuser);

	unauth_end(call, 403, "Forbidden", NULL, NULL,
		   b->cfg->auth_fail_answer == B2BUA_FAIL_SILENCE);
}


static void peer_refuse(struct b2bua_call *call, const char *why)
{
	char hdr[160];

	tlog_warn(call_logid(call), "caller %s@%J refused: %s", call->caller,
		  &call->inv->src, why);

	(void)re_snprintf(hdr, sizeof(hdr),
			  "Reason: SIP;cause=403;text=\"%s\"\r\n", why);
	call_fail(call, B2BUA_R_REJECTED, 403, "Forbidden", hdr);
}


static void identified(struct b2bua_call *call, const struct b2bua_cred *c,
		       const char *name)
{
	if (str_dup(&call->account, c ? c->account : name)) {
		auth_unauth_fail(call, 500, "Server Internal Error", NULL);
		return;
	}
	if (c) {
		call->account_id = c->account_id;
		call->max_cps = c->max_cps;
	}
	call_index_account(call);

	if (!call->authed) {
		/* an authenticated caller is answered as a peer is */
		call->authed = true;
		(void)sip_treply(&call->st, call->b->sip, call->inv, 100,
				 "Trying");
	}

	tlog_info(call_logid(call), "caller identified as account %s",
		  call->account);

	uas_proceed(call);
}


static void digest_done(struct b2bua_call *call, const struct b2bua_cred *c)
{
	const struct sip_hdr *hdr;
	struct httpauth_digest_resp resp;
	enum digest_alg alg;
	const char *ha1;

	hdr = sip_msg_hdr(call->inv, SIP_HDR_PROXY_AUTHORIZATION);
	if (!hdr || httpauth_digest_response_decode(&resp, &hdr->val) ||
	    alg_get(&alg, &hdr->val)) {
		refuse(call, "bad credentials", true);
		return;
	}

	ha1 = alg == ALG_SHA256 ? c->ha1_sha256 : c->ha1;
	if (!ha1 || !*ha1 || !digest_valid(&resp, &call->inv->met, alg,
					   ha1)) {
		refuse(call, "wrong credentials", true);
		return;
	}

	if (!c->active) {
		refuse(call, "account blocked", true);
		return;
	}

	/* taken now: another answer with this count waiting for the
	 * database at the same time is a replay */
	if (nonce_take(call->b, &resp.nonce, pl_x32(&resp.nc))) {
		++call->b->st.auth_replays;
		refuse(call, "digest answer seen before", true);
		return;
	}

	identified(call, c, NULL);
}


static void cred_done(int err, const struct b2bua_cred *cred, void *arg)
{
	struct b2bua_call *call = arg;

	call->credq = mem_deref(call->credq);

	if (call->state != B2BUA_ST_IDENTIFY)
		return;

	if (err == ENOENT) {
		if (call->sipuser)
			refuse(call, "unknown account", true);
		else
			peer_refuse(call, "unknown account");
		return;
	}
	if (err) {
		tlog_warn(call_logid(call), "account lookup failed: %m", err);
		auth_unauth_fail(call, 503, "Service Unavailable",
				 "Retry-After: 10\r\n");
		return;
	}

	if (call->sipuser) {
		digest_done(call, cred);
		return;
	}

	if (!cred->active) {
		peer_refuse(call, "account blocked");
		return;
	}

	identified(call, cred, NULL);
}


static void lookup(struct b2bua_call *call, bool by_sipuser,
		   const char *name)
{
	struct b2bua *b = call->b;
	int err;

	if (!b->credh) {
		if (by_sipuser) {
			refuse(call, "no credential store", false);
			return;
		}
		/* no account store: the peer's account is taken as is */
		identified(call, NULL, name);
		return;
	}

	err = b->credh(&call->credq, by_sipuser, name, cred_done, call,
		       b->cred_arg);
	if (err) {
		tlog_warn(call_logid(call), "account lookup: %m", err);
		auth_unauth_fail(call, 503, "Service Unavailable",
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


static void peer_identify(struct b2bua_call *call, const struct sip_msg *msg,
			  const struct cfg_peer *peer)
{
	char name[64];
	int err;

	switch (peer->mode) {

	case CFG_ID_FIXED:
		lookup(call, false, peer->account);
		return;

	case CFG_ID_HEADER:
		err = auth_header_user(name, sizeof(name), msg, peer->hdr);
		break;

	case CFG_ID_FROM:
	default:
		err = str_len(call->caller) < sizeof(name)
			? (str_ncpy(name, call->caller, sizeof(name)), 0)
			: EOVERFLOW;
		break;
	}

	if (err) {
		peer_refuse(call, "no account in identity header");
		return;
	}

	lookup(call, false, name);
}


void auth_identify(struct b2bua_call *call, const struct sip_msg *msg)
{
	const struct b2bua_conf *cfg = call->b->cfg;
	const struct cfg_peer *peer;
	const struct sip_hdr *hdr;
	struct httpauth_digest_resp resp;
	enum digest_alg alg;
	int err;

	peer = cfg_peer_find(cfg, &msg->src, msg->tp);
	if (peer) {
		peer_identify(call, msg, peer);
		return;
	}

	if (!cfg->digest_auth) {
		refuse(call, "untrusted source", false);
		return;
	}

	hdr = sip_msg_hdr(msg, SIP_HDR_PROXY_AUTHORIZATION);
	if (!hdr) {
		challenge(call, false);
		return;
	}

	if (httpauth_digest_response_decode(&resp, &hdr->val) ||
	    pl_strcmp(&resp.realm, cfg->realm) ||
	    resp.username.l >= 64 || !resp.username.l) {
		refuse(call, "bad credentials", true);
		return;
	}

	if (pl_strdup(&call->sipuser, &resp.username)) {
		auth_unauth_fail(call, 500, "Server Internal Error", NULL);
		return;
	}

	if (guard_user_blocked(call->b->guard, call->sipuser)) {
		/* the source keeps guessing: that counts against it */
		guard_fail(call->b->guard, &msg->src, NULL);
		refuse(call, "user name blocked", false);
		return;
	}

	err = nonce_check(call->b, &resp.nonce, &msg->src);
	if (err == ETIMEDOUT) {
		challenge(call, true);
		return;
	}
	if (err) {
		refuse(call, "bad nonce", true);
		return;
	}

	if (!uri_ok(cfg, &resp.uri, msg)) {
		refuse(call, "digest uri is not the Request-URI", true);
		return;
	}

	if (pl_strcasecmp(&resp.qop, "auth") || resp.nc.l != 8 ||
	    !pl_isset(&resp.cnonce) || !pl_x32(&resp.nc) ||
	    alg_get(&alg, &hdr->val)) {
		refuse(call, "digest without qop=auth", true);
		return;
	}

	/* a count already used is refused before the database */
	if (nonce_seen(call->b, &resp.nonce, pl_x32(&resp.nc))) {
		++call->b->st.auth_replays;
		refuse(call, "digest answer seen before", true);
		return;
	}

	lookup(call, true, call->sipuser);
}
