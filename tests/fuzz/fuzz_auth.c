/**
 * @file fuzz_auth.c  Fuzz target: who is calling (b2bua/auth.c)
 *
 * The input is a SIP request as a caller sends it.  After libre's
 * sip_msg_decode() it goes through the checks auth_identify() makes: the
 * user of an identity header (P-Asserted-Identity, as a trusted peer
 * configured with header= is read), the Proxy-Authorization digest with
 * its realm and nonce, and the digest response against an account's HA1.
 */

#include <stdlib.h>
#include <string.h>
#include "b2bua_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct cfg *conf;
static const struct b2bua_conf *cfg;


static void init(void)
{
	static const char text[] =
		"sip_listen udp:127.0.0.1:5060\n"
		"sip_realm tollgate\n"
		"digest_auth yes\n";

	tlog_set_level(-1);

	static const struct cfg_module *const modv[] = {
		&b2bua_conf_module
	};

	if (cfg_parse(&conf, "fuzz.conf", text, sizeof(text) - 1, modv,
		      ARRAY_SIZE(modv), NULL))
		abort();

	cfg = cfg_get(conf, &b2bua_conf_module);
}


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* HA1 of demo:tollgate:demo */
	static const char ha1[] = "3910944fdd0d1bb8b54105e6f579c253";
	/* a 64-digit HA1 for the SHA-256 check */
	static const char ha1_sha256[] =
		"5b1f0d3a1b0e8f8c2a6d1e0c7a9b3f4e5d6c7b8a9f0e1d2c3b4a5968778695a4";
	const struct sip_hdr *hdr;
	struct httpauth_digest_resp resp;
	struct b2bua_call call;
	struct sip_msg *msg = NULL;
	struct b2bua b;
	struct mbuf *mb;
	char name[64];

	if (!cfg)
		init();

	mb = mbuf_alloc(size + 1);
	if (!mb)
		return 0;
	(void)mbuf_write_mem(mb, data, size);
	mb->pos = 0;

	if (sip_msg_decode(&msg, mb))
		goto out;

	(void)sa_set_str(&msg->src, "192.0.2.7", 5060);

	memset(&b, 0, sizeof(b));
	memset(&call, 0, sizeof(call));
	b.cfg = cfg;
	memset(b.nonce_key, 0x5a, sizeof(b.nonce_key));
	call.b = &b;
	call.inv = msg;

	if (!auth_header_user(name, sizeof(name), msg, "P-Asserted-Identity")
	    && strlen(name) >= sizeof(name))
		abort();

	hdr = sip_msg_hdr(msg, SIP_HDR_PROXY_AUTHORIZATION);
	if (!hdr || httpauth_digest_response_decode(&resp, &hdr->val))
		goto out;

	if (pl_strcmp(&resp.realm, cfg->realm))
		goto out;

	(void)nonce_check(&b, &resp.nonce, &msg->src);
	(void)auth_digest_valid(&resp, &msg->met, false, ha1);
	(void)auth_digest_valid(&resp, &msg->met, true, ha1_sha256);

 out:
	mem_deref(msg);
	mem_deref(mb);

	return 0;
}
