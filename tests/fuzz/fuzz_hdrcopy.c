/**
 * @file fuzz_hdrcopy.c  Fuzz target: headers copied toward the gateway
 *
 * The input is a caller's INVITE.  After libre's sip_msg_decode() the
 * B2BUA builds the headers its INVITE to the gateway carries
 * (P-Asserted-Identity, Privacy, Diversion and the configured
 * copy_header ones).  They must be clean lines (CR LF, no other control
 * characters), and a request made with them must decode again with no
 * header but its own and the copied kinds: nothing a caller sends may
 * break the gateway's request or smuggle in a header.  Inputs of odd
 * length come from a trusted peer, the others from a digest caller,
 * whose identity headers must never reach the gateway: its only
 * P-Asserted-Identity is the account's.
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
		"trusted_peer 127.0.0.1 transport=udp port=5060 from\n"
		"copy_header X-Account-Code\n"
		"copy_header P-Charging-Vector\n"
		"copy_header P-Preferred-Identity\n";

	tlog_set_level(-1);

	static const struct cfg_module *const modv[] = {
		&b2bua_conf_module
	};

	if (cfg_parse(&conf, "fuzz.conf", text, sizeof(text) - 1, modv,
		      ARRAY_SIZE(modv), NULL))
		abort();

	cfg = cfg_get(conf, &b2bua_conf_module);
}


/* the copied headers of one request, NULL if it does not decode */
static struct mbuf *copy(const uint8_t *data, size_t size, bool trusted)
{
	struct b2bua_call call;
	struct sip_msg *msg = NULL;
	struct mbuf *mb, *hdrs = NULL;
	struct b2bua b;

	mb = mbuf_alloc(size + 1);
	if (!mb)
		return NULL;
	(void)mbuf_write_mem(mb, data, size);
	mb->pos = 0;

	if (sip_msg_decode(&msg, mb) || !msg->req)
		goto out;

	memset(&b, 0, sizeof(b));
	memset(&call, 0, sizeof(call));
	b.cfg = cfg;
	call.b = &b;
	call.inv = msg;
	call.account = (char *)"fuzz@acct";
	(void)sa_set_str(&msg->src, trusted ? "127.0.0.1" : "192.0.2.66",
			 5060);
	msg->tp = SIP_TRANSP_UDP;

	if (!uas_copy_headers(&call))
		hdrs = call.hdrs;

 out:
	mem_deref(msg);
	mem_deref(mb);

	return hdrs;
}


/*
 * Only whole header lines: CR LF ends a line (or folds it when a blank
 * follows) and no other control character than HTAB appears.  A peer
 * that ends lines at a lone CR or LF must not find a header of its own.
 */
static bool lines_clean(const struct mbuf *mb)
{
	size_t i;

	for (i = 0; i < mb->end; i++) {
		uint8_t c = mb->buf[i];

		if (c == '\r') {
			if (i + 1 >= mb->end || mb->buf[i + 1] != '\n')
				return false;
			++i;
			continue;
		}

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return false;
	}

	return true;
}


/* a header the gateway's request may hold: its own, once, or a copied one */
static bool allowed(const struct sip_hdr *hdr, unsigned *ownv)
{
	static const char *const own[] = {
		"Via", "From", "To", "Call-ID", "CSeq", "Content-Length"
	};
	static const char *const copied[] = {
		"P-Asserted-Identity", "Privacy", "Diversion"
	};
	struct le *le;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(own); i++) {
		if (!pl_strcasecmp(&hdr->name, own[i]))
			return ++ownv[i] == 1;
	}

	for (i = 0; i < ARRAY_SIZE(copied); i++) {
		if (!pl_strcasecmp(&hdr->name, copied[i]))
			return true;
	}

	for (le = cfg->copyl.head; le; le = le->next) {
		const struct cfg_hdr *ch = le->data;

		if (!pl_strcasecmp(&hdr->name, ch->name))
			return true;
	}

	return false;
}


/* a digest caller's request: no identity header but the account's */
static bool own_identity(const struct sip_hdr *hdr)
{
	if (!pl_strcasecmp(&hdr->name, "P-Asserted-Identity"))
		return !pl_strcmp(&hdr->val, "<sip:fuzz%40acct@tollgate>");

	return pl_strcasecmp(&hdr->name, "Privacy") &&
		pl_strcasecmp(&hdr->name, "Diversion") &&
		pl_strcasecmp(&hdr->name, "P-Preferred-Identity");
}


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mbuf *hdrs, *req = NULL;
	struct sip_msg *msg = NULL;
	unsigned ownv[6] = { 0 };
	struct le *le;
	bool trusted;

	if (!cfg)
		init();

	trusted = size & 1;
	hdrs = copy(data, size, trusted);
	if (!hdrs)
		return 0;

	if (!lines_clean(hdrs))
		abort();

	/* the request toward the gateway, reduced to what is copied */
	req = mbuf_alloc(256 + hdrs->end);
	if (!req)
		goto out;
	(void)mbuf_printf(req, "INVITE sip:4420@192.0.2.1 SIP/2.0\r\n"
			  "Via: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK1\r\n"
			  "From: <sip:a@192.0.2.9>;tag=1\r\n"
			  "To: <sip:4420@192.0.2.1>\r\n"
			  "Call-ID: fuzz\r\nCSeq: 1 INVITE\r\n"
			  "%b"
			  "Content-Length: 0\r\n\r\n",
			  hdrs->buf, hdrs->end);
	req->pos = 0;

	if (sip_msg_decode(&msg, req))
		abort();

	for (le = msg->hdrl.head; le; le = le->next) {
		if (!allowed(le->data, ownv))
			abort();
		if (!trusted && !own_identity(le->data))
			abort();
	}

 out:
	mem_deref(msg);
	mem_deref(req);
	mem_deref(hdrs);

	return 0;
}
