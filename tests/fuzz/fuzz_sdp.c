/**
 * @file fuzz_sdp.c  Fuzz target: the media relay's SDP parser and rewriter
 *
 * An SDP body as a caller or a gateway could send it is parsed, checked
 * for hold and rewritten to the relay's address (IPv4, or IPv6 when the
 * first byte is odd) and ports, as rtp/relay.c does.  What the rewrite
 * writes must parse again with as many m= lines, send every accepted
 * stream's RTP and RTCP to the relay, and rewriting it once more must
 * change nothing.
 */

#include <stdlib.h>
#include <string.h>
#include <re.h>
#include "relay_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint16_t portv[MEDIA_MAX_M] = {
		30000, 30002, 30004, 30006, 30008, 30010, 30012, 30014
	};
	const char *text = (const char *)data;
	struct mbuf *out = NULL, *again = NULL;
	struct media_sdp sdp, sdp2;
	struct sa addr;
	unsigned i;

	if (media_sdp_parse(&sdp, text, size))
		return 0;

	(void)media_sdp_hold(&sdp);

	if (size && (data[0] & 1))
		(void)sa_set_str(&addr, "2001:db8::61", 0);
	else
		(void)sa_set_str(&addr, "127.0.0.61", 0);

	out = mbuf_alloc(size + 256);
	again = mbuf_alloc(size + 256);
	if (!out || !again)
		goto out;

	if (media_sdp_rewrite(out, text, size, &addr, portv, sdp.mc))
		goto out;

	if (media_sdp_parse(&sdp2, (const char *)out->buf, out->end) ||
	    sdp2.mc != sdp.mc)
		abort();

	/* every accepted stream now goes to the relay, RTP and RTCP */
	for (i = 0; i < sdp2.mc; i++) {
		const struct media_sdp_m *m = &sdp2.m[i];

		if (!m->port)
			continue;

		if (m->port != portv[i] ||
		    !sa_cmp(&m->rtp, &addr, SA_ADDR) ||
		    sa_port(&m->rtp) != portv[i] ||
		    !sa_cmp(&m->rtcp, &addr, SA_ADDR) ||
		    sa_port(&m->rtcp) != portv[i] + 1)
			abort();
	}

	if (media_sdp_rewrite(again, (const char *)out->buf, out->end, &addr,
			      portv, sdp2.mc))
		abort();

	if (again->end != out->end || memcmp(again->buf, out->buf, out->end))
		abort();

 out:
	mem_deref(again);
	mem_deref(out);

	return 0;
}
