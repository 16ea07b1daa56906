/**
 * @file stats.c  RTP reception statistics (RFC 3550 appendix A.1, A.8)
 *
 * Pure functions run by the relay's workers for every packet: extended
 * sequence numbers with the RFC's probation and wrap handling, packets
 * lost = expected - received, and the interarrival jitter estimator
 * J += (|D| - J) / 16 kept in timestamp units scaled by 16.  Also what
 * the relay reads of RTP headers and RTCP reports.
 */

#include <string.h>
#include "relay_int.h"


enum {
	RTP_SEQ_MOD     = 1 << 16,
	MAX_DROPOUT     = 3000,
	MAX_MISORDER    = 100,
	MIN_SEQUENTIAL  = 2,
};


static void rx_init_seq(struct media_rx *rx, uint16_t seq)
{
	rx->base_seq = seq;
	rx->max_seq = seq;
	rx->bad_seq = RTP_SEQ_MOD + 1;
	rx->cycles = 0;
	rx->received = 0;
}


/** Accept seq into the sequence state; false: do not count the packet */
static bool rx_update_seq(struct media_rx *rx, uint16_t seq)
{
	uint16_t udelta = (uint16_t)(seq - rx->max_seq);

	if (rx->probation) {
		if (seq == (uint16_t)(rx->max_seq + 1)) {
			--rx->probation;
			rx->max_seq = seq;
			if (!rx->probation) {
				rx_init_seq(rx, seq);
				++rx->received;
				return true;
			}
		}
		else {
			rx->probation = MIN_SEQUENTIAL - 1;
			rx->max_seq = seq;
		}
		return false;
	}

	if (udelta < MAX_DROPOUT) {
		if (seq < rx->max_seq)
			rx->cycles += RTP_SEQ_MOD;   /* wrapped */
		rx->max_seq = seq;
	}
	else if (udelta <= RTP_SEQ_MOD - MAX_MISORDER) {
		/* a very large jump: restart if the next one follows */
		if (seq == rx->bad_seq) {
			rx_init_seq(rx, seq);
		}
		else {
			rx->bad_seq = (seq + 1) & (RTP_SEQ_MOD - 1);
			return false;
		}
	}
	/* else duplicate or reordered: counted, max_seq kept */

	++rx->received;

	return true;
}


static int64_t rx_lost_current(const struct media_rx *rx)
{
	int64_t expected;

	if (!rx->init || rx->probation)
		return 0;

	expected = (int64_t)rx->cycles + rx->max_seq - rx->base_seq + 1;

	return expected - (int64_t)rx->received;
}


/**
 * Account one received RTP packet
 *
 * @param rx       Reception state
 * @param ssrc     Its SSRC (a new SSRC restarts the sequence state)
 * @param seq      Its sequence number
 * @param ts       Its RTP timestamp
 * @param arrival  Arrival time in the same clock's units
 */
void media_rx_update(struct media_rx *rx, uint32_t ssrc, uint16_t seq,
		     uint32_t ts, uint32_t arrival)
{
	uint32_t transit;
	int32_t d;

	if (!rx->init || ssrc != rx->ssrc) {
		if (rx->init)
			rx->lost_prev += rx_lost_current(rx);
		rx->init = true;
		rx->ssrc = ssrc;
		rx->have_transit = false;
		rx_init_seq(rx, seq);
		rx->max_seq = (uint16_t)(seq - 1);
		rx->probation = MIN_SEQUENTIAL;
	}

	if (!rx_update_seq(rx, seq))
		return;

	transit = arrival - ts;
	if (rx->have_transit) {
		d = (int32_t)(transit - rx->transit);
		if (d < 0)
			d = -d;
		rx->jitter += (uint32_t)d - ((rx->jitter + 8) >> 4);
	}
	rx->transit = transit;
	rx->have_transit = true;
}


/** Packets lost so far (negative when duplicates arrived) */
int64_t media_rx_lost(const struct media_rx *rx)
{
	return rx->lost_prev + rx_lost_current(rx);
}


/** The jitter estimate in microseconds for a clock of srate Hz */
uint32_t media_rx_jitter_us(const struct media_rx *rx, uint32_t srate)
{
	if (!srate)
		return 0;

	return (uint32_t)(((uint64_t)(rx->jitter >> 4) * 1000000) / srate);
}


/**
 * Where the payload of an RTP packet is (after CSRCs and the header
 * extension, before padding)
 *
 * @return 0, or EBADMSG if it is not RTP version 2 or truncated
 */
int media_rtp_payload(const uint8_t *p, size_t len, size_t *offp,
		      size_t *lenp)
{
	size_t off, pad = 0;

	if (len < 12 || (p[0] >> 6) != 2)
		return EBADMSG;

	off = 12 + 4 * (size_t)(p[0] & 0x0f);
	if (p[0] & 0x10) {
		if (len < off + 4)
			return EBADMSG;
		off += 4 + 4 * (size_t)((p[off + 2] << 8) | p[off + 3]);
	}

	if (p[0] & 0x20) {
		pad = p[len - 1];
		if (!pad)
			return EBADMSG;
	}

	if (len < off + pad)
		return EBADMSG;

	*offp = off;
	*lenp = len - off - pad;

	return 0;
}


/**
 * The first report block of the first SR or RR of an RTCP compound packet
 *
 * @return 0, ENOENT (no report block), EBADMSG (not RTCP)
 */
int media_rtcp_rr(struct media_rr *rr, const uint8_t *p, size_t len)
{
	while (len >= 8) {
		unsigned rc = p[0] & 0x1f, pt = p[1];
		size_t plen = 4 * ((size_t)((p[2] << 8) | p[3]) + 1);
		size_t boff;
		uint32_t cum;

		if ((p[0] >> 6) != 2 || plen > len)
			return EBADMSG;

		boff = pt == 200 ? 28 : pt == 201 ? 8 : 0;
		if (boff && rc && plen >= boff + 24) {
			const uint8_t *b = p + boff;

			rr->fraction = b[4];
			cum = ((uint32_t)b[5] << 16) | ((uint32_t)b[6] << 8) |
				b[7];
			if (cum & 0x800000)
				cum |= 0xff000000u;    /* signed 24 bits */
			rr->lost = (int32_t)cum;
			rr->jitter = ((uint32_t)b[12] << 24) |
				((uint32_t)b[13] << 16) |
				((uint32_t)b[14] << 8) | b[15];
			return 0;
		}

		p += plen;
		len -= plen;
	}

	return ENOENT;
}
