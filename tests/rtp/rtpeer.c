/**
 * @file rtpeer.c  RTP endpoint for the relay tests: generator and sink
 *
 * Binds a socket, learns its destination (from -d or from a file SIPp
 * writes once it knows the SDP), sends G.711 packets every 20 ms (silence,
 * or a 400 Hz signal with -a; sequence numbers listed with -x are skipped,
 * i.e. "lost"), and receives on the same socket (symmetric RTP).  At the
 * end it prints what it saw as key=value lines:
 *
 *   sent recv srcs sdp_port_recv ssrc_changes seq_gaps ts_bad tone_ms
 *   tone_at_ms rtcp_recv
 *
 * tone_ms is the longest run of 20 ms packets in which the Goertzel power
 * at -F Hz holds most of the packet's energy.  Every run is bounded by -T.
 */

#define _GNU_SOURCE 1
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <re.h>
#include <rem.h>


enum { MAX_SRCS = 8, MAX_SKIP = 64, PTIME = 20, SAMPLES = 160,
       DEST_SETTLE_MS = 100 };

static struct {
	struct sockaddr_in local, dest;
	const char *destfile;
	int listen_port;
	int count;
	int skipv[MAX_SKIP];
	int skipc;
	int total_s;
	int delay_ms;
	int pt;
	unsigned freq;
	bool signal;
	bool rtcp;
} opt = {.count = 0, .total_s = 10, .pt = 0, .freq = 1000};

static struct {
	int sent, recv, sdp_recv, rtcp_recv;
	struct sockaddr_in srcv[MAX_SRCS];
	int srcc;
	uint32_t ssrc;
	int ssrc_changes;
	bool have_seq;
	uint16_t last_seq;
	uint32_t last_ts;
	int seq_gaps, ts_bad;
	int run, best_run;
	long tone_at_ms;
} st = {.tone_at_ms = -1};


static long now_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);

	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


static int parse_addr(const char *s, struct sockaddr_in *sin)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	size_t n;

	if (!colon || (n = (size_t)(colon - s)) >= sizeof(host))
		return EINVAL;

	memcpy(host, s, n);
	host[n] = '\0';
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_port = htons((uint16_t)atoi(colon + 1));

	return inet_pton(AF_INET, host, &sin->sin_addr) == 1 ? 0 : EINVAL;
}


/** "IP PORT" written by the SIP scenario once it saw the SDP */
static bool read_destfile(void)
{
	char ip[64];
	int port;
	FILE *f;
	bool ok;

	f = fopen(opt.destfile, "r");
	if (!f)
		return false;

	ok = fscanf(f, "%63s %d", ip, &port) == 2 && port > 0 &&
		port < 65536;
	(void)fclose(f);
	if (!ok)
		return false;

	memset(&opt.dest, 0, sizeof(opt.dest));
	opt.dest.sin_family = AF_INET;
	opt.dest.sin_port = htons((uint16_t)port);

	return inet_pton(AF_INET, ip, &opt.dest.sin_addr) == 1;
}


static int udp_sock(uint32_t addr, int port)
{
	struct sockaddr_in sin;
	int fd;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = addr;
	sin.sin_port = htons((uint16_t)port);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin))) {
		(void)close(fd);
		return -1;
	}

	return fd;
}


static bool skipped(int i)
{
	int k;

	for (k = 0; k < opt.skipc; k++) {
		if (opt.skipv[k] == i)
			return true;
	}

	return false;
}


static void send_one(int fd, int i, uint32_t ssrc)
{
	uint8_t pkt[12 + SAMPLES];
	uint16_t seq = (uint16_t)(1000 + i);
	uint32_t ts = 16000 + (uint32_t)i * SAMPLES;
	int k;

	pkt[0] = 0x80;
	pkt[1] = (uint8_t)opt.pt;
	pkt[2] = (uint8_t)(seq >> 8);
	pkt[3] = (uint8_t)seq;
	pkt[4] = (uint8_t)(ts >> 24);
	pkt[5] = (uint8_t)(ts >> 16);
	pkt[6] = (uint8_t)(ts >> 8);
	pkt[7] = (uint8_t)ts;
	pkt[8] = (uint8_t)(ssrc >> 24);
	pkt[9] = (uint8_t)(ssrc >> 16);
	pkt[10] = (uint8_t)(ssrc >> 8);
	pkt[11] = (uint8_t)ssrc;

	for (k = 0; k < SAMPLES; k++) {
		int16_t v = 0;

		if (opt.signal)
			v = (int16_t)(3000 * sin(2 * M_PI * 400 *
						 (i * SAMPLES + k) / 8000.0));
		pkt[12 + k] = opt.pt == 8 ? g711_pcm2alaw(v)
			: g711_pcm2ulaw(v);
	}

	if (skipped(i))
		return;

	if (sendto(fd, pkt, sizeof(pkt), 0, (struct sockaddr *)&opt.dest,
		   sizeof(opt.dest)) == (ssize_t)sizeof(pkt))
		++st.sent;
}


static void note_src(const struct sockaddr_in *src)
{
	int k;

	for (k = 0; k < st.srcc; k++) {
		if (st.srcv[k].sin_addr.s_addr == src->sin_addr.s_addr &&
		    st.srcv[k].sin_port == src->sin_port)
			return;
	}

	if (st.srcc < MAX_SRCS)
		st.srcv[st.srcc++] = *src;
}


static void analyse(const uint8_t *p, size_t len, long t_ms)
{
	struct goertzel g;
	uint16_t seq;
	uint32_t ts, ssrc;
	double energy = 0, power;
	size_t k, off = 12, n;

	if (len < 12 || (p[0] >> 6) != 2)
		return;

	seq = (uint16_t)((p[2] << 8) | p[3]);
	ts = ((uint32_t)p[4] << 24) | ((uint32_t)p[5] << 16) |
		((uint32_t)p[6] << 8) | p[7];
	ssrc = ((uint32_t)p[8] << 24) | ((uint32_t)p[9] << 16) |
		((uint32_t)p[10] << 8) | p[11];

	if (st.have_seq && ssrc != st.ssrc)
		++st.ssrc_changes;

	if (st.have_seq && ssrc == st.ssrc) {
		if (seq != (uint16_t)(st.last_seq + 1))
			++st.seq_gaps;
		else if (ts != st.last_ts + SAMPLES)
			++st.ts_bad;
	}

	st.have_seq = true;
	st.ssrc = ssrc;
	st.last_seq = seq;
	st.last_ts = ts;

	off += 4 * (p[0] & 0x0f);
	if (len <= off)
		return;

	n = len - off;
	goertzel_init(&g, opt.freq, 8000);
	for (k = 0; k < n; k++) {
		int16_t v = (p[1] & 0x7f) == 8 ? g711_alaw2pcm(p[off + k])
			: g711_ulaw2pcm(p[off + k]);

		goertzel_update(&g, v);
		energy += (double)v * v;
	}
	power = goertzel_result(&g);

	/* a pure tone of amplitude A: power ~ (A n / 2)^2, energy ~ A^2 n/2 */
	if (energy / n > 250000.0 && power > 0.6 * energy * n / 2) {
		if (!st.run && st.tone_at_ms < 0)
			st.tone_at_ms = t_ms;
		if (++st.run > st.best_run)
			st.best_run = st.run;
	}
	else {
		st.run = 0;
	}
}


static void drain(int fd, bool main_sock, long t_ms)
{
	uint8_t buf[2048];

	for (;;) {
		struct sockaddr_in src;
		socklen_t sl = sizeof(src);
		ssize_t n;

		n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&src,
			     &sl);
		if (n < 0)
			return;

		if (!main_sock) {
			++st.sdp_recv;
			continue;
		}

		if (n >= 2 && buf[1] >= 200 && buf[1] <= 204) {
			++st.rtcp_recv;
			continue;
		}

		++st.recv;
		note_src(&src);
		analyse(buf, (size_t)n, t_ms);
	}
}


static void usage(void)
{
	fprintf(stderr,
		"usage: rtpeer -l IP:PORT (-d IP:PORT | -D FILE) [-n COUNT]\n"
		"              [-x SEQ,SEQ..] [-L PORT] [-T SECONDS] "
		"[-s DELAY_MS]\n"
		"              [-P 0|8] [-F HZ] [-a] [-r]\n"
		"  -l  local address (send and receive)\n"
		"  -d  destination; -D: file with \"IP PORT\", polled; the first\n"
		"      packet leaves 100 ms after the file appears\n"
		"  -n  packets to send, 20 ms apart (default 0: sink only)\n"
		"  -x  packet indexes (0-based) not to send\n"
		"  -L  also count packets arriving at this port of -l's IP\n"
		"  -T  run time, seconds (default 10)\n"
		"  -s  wait before sending, ms\n"
		"  -P  payload type: 0 PCMU (default), 8 PCMA\n"
		"  -F  tone frequency to detect, Hz (default 1000)\n"
		"  -a  send a 400 Hz signal instead of silence\n"
		"  -r  send an RTCP receiver report every second\n");
}


static void send_rr(int fd, uint32_t ssrc)
{
	struct sockaddr_in d = opt.dest;
	uint8_t rr[32];

	memset(rr, 0, sizeof(rr));
	rr[0] = 0x81;
	rr[1] = 201;
	rr[3] = 7;
	rr[4] = (uint8_t)(ssrc >> 24);
	rr[7] = (uint8_t)ssrc;
	rr[8 + 4] = 12;          /* fraction lost: 12/256 */
	rr[8 + 7] = 3;           /* cumulative lost: 3 */
	rr[8 + 15] = 40;         /* jitter: 40 timestamp units */

	d.sin_port = htons((uint16_t)(ntohs(d.sin_port) + 1));
	(void)sendto(fd, rr, sizeof(rr), 0, (struct sockaddr *)&d,
		     sizeof(d));
}


int main(int argc, char *argv[])
{
	int fd, lfd = -1, rfd = -1, c, i = 0;
	long start, next, end, last_rr = 0;
	uint32_t ssrc;
	bool have_dest = false;
	char *tok, *save;

	while ((c = getopt(argc, argv, "l:d:D:n:x:L:T:s:P:F:arh")) != -1) {

		switch (c) {

		case 'l':
			if (parse_addr(optarg, &opt.local)) {
				fprintf(stderr, "rtpeer: bad -l %s\n", optarg);
				return 2;
			}
			break;

		case 'd':
			if (parse_addr(optarg, &opt.dest)) {
				fprintf(stderr, "rtpeer: bad -d %s\n", optarg);
				return 2;
			}
			have_dest = true;
			break;

		case 'D': opt.destfile = optarg; break;
		case 'n': opt.count = atoi(optarg); break;
		case 'L': opt.listen_port = atoi(optarg); break;
		case 'T': opt.total_s = atoi(optarg); break;
		case 's': opt.delay_ms = atoi(optarg); break;
		case 'P': opt.pt = atoi(optarg); break;
		case 'F': opt.freq = (unsigned)atoi(optarg); break;
		case 'a': opt.signal = true; break;
		case 'r': opt.rtcp = true; break;

		case 'x':
			for (tok = strtok_r(optarg, ",", &save); tok &&
			     opt.skipc < MAX_SKIP;
			     tok = strtok_r(NULL, ",", &save))
				opt.skipv[opt.skipc++] = atoi(tok);
			break;

		default:
			usage();
			return 2;
		}
	}

	if (!opt.local.sin_port || (!have_dest && !opt.destfile) ||
	    opt.total_s <= 0 || opt.total_s > 300 || opt.count < 0 ||
	    (opt.pt != 0 && opt.pt != 8)) {
		usage();
		return 2;
	}

	fd = udp_sock(opt.local.sin_addr.s_addr, ntohs(opt.local.sin_port));
	if (fd < 0) {
		fprintf(stderr, "rtpeer: bind %s:%u: %s\n",
			inet_ntoa(opt.local.sin_addr),
			ntohs(opt.local.sin_port), strerror(errno));
		return 1;
	}

	/* RTCP: the port above, for -r and for counting */
	rfd = udp_sock(opt.local.sin_addr.s_addr,
		       ntohs(opt.local.sin_port) + 1);

	if (opt.listen_port) {
		lfd = udp_sock(opt.local.sin_addr.s_addr, opt.listen_port);
		if (lfd < 0) {
			fprintf(stderr, "rtpeer: bind -L %d: %s\n",
				opt.listen_port, strerror(errno));
			return 1;
		}
	}

	ssrc = (uint32_t)getpid() * 2654435761u;
	start = now_ms();
	end = start + opt.total_s * 1000L;
	next = start + opt.delay_ms;

	while (now_ms() < end) {
		struct pollfd pfd[3];
		long t = now_ms(), wait;
		int n = 0;

		/* a destination read from a file was just written by a
		 * SIP peer whose SDP may still be on its way: the first
		 * packet leaves 100 ms later, and none are sent in a burst
		 * to make up for the time spent waiting */
		if (!have_dest && opt.destfile && read_destfile()) {
			have_dest = true;
			if (next < t + DEST_SETTLE_MS)
				next = t + DEST_SETTLE_MS;
		}

		while (have_dest && i < opt.count && t >= next) {
			send_one(fd, i++, ssrc);
			next += PTIME;
		}

		if (opt.rtcp && have_dest && rfd >= 0 &&
		    t - last_rr >= 1000) {
			send_rr(rfd, ssrc);
			last_rr = t;
		}

		pfd[n].fd = fd;
		pfd[n++].events = POLLIN;
		if (lfd >= 0) {
			pfd[n].fd = lfd;
			pfd[n++].events = POLLIN;
		}
		if (rfd >= 0) {
			pfd[n].fd = rfd;
			pfd[n++].events = POLLIN;
		}

		wait = have_dest && i < opt.count ? next - t : 50;
		if (wait < 0)
			wait = 0;
		if (wait > 50)
			wait = 50;

		(void)poll(pfd, (nfds_t)n, (int)wait);

		t = now_ms() - start;
		drain(fd, true, t);
		if (lfd >= 0)
			drain(lfd, false, t);
		if (rfd >= 0) {
			uint8_t buf[2048];

			while (recv(rfd, buf, sizeof(buf), 0) > 0)
				++st.rtcp_recv;
		}
	}

	printf("sent=%d\nrecv=%d\nsrcs=", st.sent, st.recv);
	for (c = 0; c < st.srcc; c++)
		printf("%s%s:%u", c ? "," : "",
		       inet_ntoa(st.srcv[c].sin_addr),
		       ntohs(st.srcv[c].sin_port));
	printf("\nsdp_port_recv=%d\nssrc_changes=%d\nseq_gaps=%d\n"
	       "ts_bad=%d\ntone_ms=%d\ntone_at_ms=%ld\nrtcp_recv=%d\n",
	       st.sdp_recv, st.ssrc_changes, st.seq_gaps, st.ts_bad,
	       st.best_run * PTIME, st.tone_at_ms, st.rtcp_recv);

	(void)close(fd);
	if (lfd >= 0)
		(void)close(lfd);
	if (rfd >= 0)
		(void)close(rfd);

	return 0;
}
