/**
 * @file test_rescue.c  Unit tests of the answer to requests libre's
 *                      decoder refuses (b2bua/rescue_parse.c)
 *
 * Which code each kind of request gets, that the answer copies Via,
 * From, To, Call-ID and CSeq (folded or compact) and adds a To tag, that
 * responses, ACKs and values with control bytes get nothing, and that an
 * answer is never larger than the request.
 */

#define _GNU_SOURCE 1
#include <string.h>
#include "b2bua_int.h"
#include "check.h"


static struct mbuf *out;


/* the code rescue_reply gives msg (0: no answer); the answer in out */
static uint16_t code_of(const char *msg)
{
	uint16_t scode = 99;
	int err;

	err = rescue_reply(out, (const uint8_t *)msg, strlen(msg), &scode);
	CHECK(err == 0);
	if (scode)
		CHECK(out->end <= strlen(msg));

	return scode;
}


static bool has(const char *s)
{
	return out->end && NULL != memmem(out->buf, out->end, s, strlen(s));
}


#define HDRS(via, from, to) \
	"Via: " via "\r\n" \
	"From: " from "\r\n" \
	"To: " to "\r\n" \
	"Call-ID: c1@example.com\r\n" \
	"CSeq: 7 INVITE\r\n" \
	"Max-Forwards: 70\r\n" \
	"Content-Length: 0\r\n\r\n"

#define GOOD_VIA "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKx1"


int main(void)
{
	out = mbuf_alloc(512);
	if (!out)
		return 1;

	/* RFC 2543: a Via without a branch */
	CHECK(code_of("INVITE sip:1@example.com SIP/2.0\r\n"
		      HDRS("SIP/2.0/UDP gw.example.com", "<sip:a@b>",
			   "sip:1@example.com;user=phone")) == 400);
	CHECK(has("v: SIP/2.0/UDP gw.example.com\r\n"));
	CHECK(has("t: sip:1@example.com;user=phone;tag="));
	CHECK(has("i: c1@example.com\r\n"));
	CHECK(has("CSeq: 7 INVITE\r\n"));
	CHECK(has("\r\nl: 0\r\n\r\n"));

	/* methods first (RFC 3261 8.2.1), then URI schemes (8.2.2) */
	CHECK(code_of("REGISTER sip:example.com SIP/2.0\r\n"
		      HDRS(GOOD_VIA, "<http://x>;tag=1", "isbn:1234")) == 405);
	CHECK(code_of("OPTIONS sip:example.com SIP/2.0\r\n"
		      HDRS(GOOD_VIA, "<sip:a@b>;tag=1", "isbn:1234")) == 416);
	CHECK(code_of("OPTIONS nobody:knows SIP/2.0\r\n"
		      HDRS(GOOD_VIA, "<sip:a@b>;tag=1", "<sip:c@d>")) == 416);

	/* the request line */
	CHECK(code_of("OPTIONS sip:a@b SIP/7.0\r\n"
		      HDRS(GOOD_VIA, "<sip:a@b>;tag=1", "<sip:c@d>")) == 505);
	CHECK(code_of("INVITE <sip:a@b> SIP/2.0\r\n"
		      HDRS(GOOD_VIA, "<sip:a@b>;tag=1", "<sip:c@d>")) == 400);
	CHECK(code_of("INVITE  sip:a@b SIP/2.0\r\n"
		      HDRS(GOOD_VIA, "<sip:a@b>;tag=1", "<sip:c@d>")) == 400);
	CHECK(code_of("OPTIONS sip:a@b SIP/2.0  \r\n"
		      HDRS(GOOD_VIA, "<sip:a@b>;tag=1", "<sip:c@d>")) == 400);

	/* a To tag is kept, not doubled */
	CHECK(code_of("BYE sip:a@b SIP/2.0\r\n"
		      HDRS("SIP/2.0/UDP h", "<sip:a@b>;tag=1",
			   "<sip:c@d> ; tag=99")) == 400);
	CHECK(!has(";tag=99;tag="));

	/* compact and folded headers */
	CHECK(code_of("INVITE sip:1@example.com SIP/2.0\r\n"
		      "v: SIP/2.0/UDP h1\r\n"
		      "V : SIP/2.0/UDP\r\n h2\r\n"
		      "f: <sip:a@b>\r\n ;tag=1\r\n"
		      "t: <sip:c@d>\r\n"
		      "i: folded\r\n"
		      "cseq: 1\r\n\tINVITE\r\n"
		      "l: 0\r\n\r\n") == 400);
	CHECK(has("v: SIP/2.0/UDP h1\r\nv: SIP/2.0/UDP h2\r\n"));
	CHECK(has("f: <sip:a@b> ;tag=1\r\n"));
	CHECK(has("CSeq: 1 INVITE\r\n"));

	/* never answered */
	CHECK(code_of("SIP/2.0 200 OK\r\n"
		      HDRS(GOOD_VIA, "<sip:a@b>;tag=1", "<sip:c@d>")) == 0);
	CHECK(code_of("ACK sip:a@b SIP/2.0\r\n"
		      HDRS("SIP/2.0/UDP h", "<sip:a@b>;tag=1",
			   "<sip:c@d>")) == 0);
	CHECK(code_of("INVITE sip:a@b SIP/2.0\r\n"
		      "Via: SIP/2.0/UDP h\r\nCSeq: 1 INVITE\r\n\r\n") == 0);
	CHECK(code_of("INVITE sip:a@b SIP/2.0\r\n"
		      "Via: SIP/2.0/UDP h\r\nFrom: <sip:a@b>\r\n"
		      "To: <sip:c@d>\r\nCall-ID: x\x07y\r\n"
		      "CSeq: 1 INVITE\r\n\r\n") == 0);
	CHECK(code_of("") == 0);
	CHECK(code_of("garbage") == 0);

	/* an answer larger than the request is not sent: a short request
	 * with a long To gets the tag and would grow */
	CHECK(code_of("X sip:a SIP/2.0\r\nv:SIP/2.0/UDP h\r\nf:<sip:a>\r\n"
		      "t:<sip:b>\r\ni:1\r\nCSeq:1 X\r\n\r\n") == 0);

	mem_deref(out);

	return check_report("test_rescue");
}
