#!/usr/bin/env bash
#
# limits-bench.sh - what the limits at the door cost (not part of "make
# check").
#
# Usage: tests/bench/limits-bench.sh [cps|flood|all]   (default all)
#
#   cps    calls/s with zero failures (../shared/bench/run-cps.sh) with the
#          default limits, then with every limit off, same build, same run.
#   flood  the CPU tollgate spends on 20,000 requests/s from one untrusted
#          source for FLOOD_S seconds (10): INVITEs refused with a stateless
#          503, INVITEs refused silently (limit_reply none), OPTIONS refused
#          with 503; then, for comparison, OFF_S seconds (1) of the same
#          INVITE flood with every limit off (each INVITE a transaction and
#          a 407, CPU counted until 5 s after).  The CPU is utime+stime of
#          /proc/PID/stat; replies are the datagrams tollgate sent back.
#
# Run it inside a network namespace of its own so that no address collides
# with anything else on the machine:
#
#   unshare -n sh -c 'ip link set lo up && tests/bench/limits-bench.sh'
#
# Needs ../shared/bench (the harness) for "cps", SIPp, python3 and a built
# ./tollgate.  Environment: CALLS (2000 per step), HOLD_MS (1000), RATES
# ("600 1000 1400 1800"), FLOOD_RATE (20000), FLOOD_S (10), OFF_S (1),
# BENCH_IP (127.0.1.37, the harness's caller and gateway).  Every run is
# bounded in count and time.

set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=${top_srcdir:-$(cd "$here/../.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
export top_srcdir top_builddir
bench=${BENCH_DIR:-$top_srcdir/../shared/bench}
what=${1:-all}

CALLS=${CALLS:-2000}
HOLD_MS=${HOLD_MS:-1000}
RATES=${RATES:-"600 1000 1400 1800"}
FLOOD_RATE=${FLOOD_RATE:-20000}
FLOOD_S=${FLOOD_S:-10}
OFF_S=${OFF_S:-1}
export BENCH_IP=${BENCH_IP:-127.0.1.37}
TG_IP=127.0.1.38
FLOOD_IP=127.0.1.39

[ -x "$top_builddir/tollgate" ] || { echo "build tollgate first" >&2; exit 2; }
[ "$FLOOD_S" -le 10 ] && [ "$OFF_S" -le 10 ] && [ "$FLOOD_RATE" -le 50000 ] ||
	{ echo "FLOOD_S and OFF_S at most 10, FLOOD_RATE at most 50000" >&2; exit 2; }

out=$(mktemp -d /tmp/tollgate-limits-bench.XXXXXX)
chmod 755 "$out"
tg_pid=

cleanup() {
	if [ -n "$tg_pid" ]; then
		kill "$tg_pid" 2>/dev/null && wait "$tg_pid" 2>/dev/null
	fi
	type pgtest_stop >/dev/null 2>&1 && pgtest_stop
	true
}
trap cleanup EXIT

. "$top_srcdir/tests/lib/pgtest.sh"
pgtest_start >/dev/null
pgtest_psql -c "INSERT INTO accounts (name) VALUES ('bench')" >/dev/null

# conf on|off
conf() {
	cat >"$out/tollgate.conf" <<CONF
sip_listen udp:$TG_IP:5060
gateway gw $BENCH_IP:5080
route default gw
ring_timeout 60
max_call_duration 0
billing no
rtp_relay no
db_conninfo $PGTEST_CONNINFO
state_dir $out/state
log_level warning
CONF
	if [ "$1" = on ]; then
		echo "trusted_peer $BENCH_IP account=bench" >>"$out/tollgate.conf"
		echo "limit_reply ${2:-503}" >>"$out/tollgate.conf"
	else
		cat >>"$out/tollgate.conf" <<CONF
trusted_peer $BENCH_IP account=bench limit=off
limit_invite_per_source off
limit_requests_per_source off
limit_invite_per_peer off
limit_requests_per_peer off
limit_invite_global off
CONF
	fi
}

start_tollgate() {
	"$top_builddir/tollgate" -f "$out/tollgate.conf" 2>>"$out/tollgate.log" &
	tg_pid=$!
	sleep 1
	kill -0 "$tg_pid"
}

stop_tollgate() {
	kill "$tg_pid"; wait "$tg_pid" || true; tg_pid=
}

# cpu_ticks PID: utime + stime in clock ticks
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# flood METHOD SECONDS: FLOOD_RATE requests a second from one source, no
# answer read; prints "sent=N seconds=S"
flood() {
	timeout $(($2 + 10)) python3 - "$FLOOD_IP" "$TG_IP" "$1" "$FLOOD_RATE" "$2" <<'PY'
import socket, sys, time
src, dst, method, rate, secs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.bind((src, 5099))
body = "v=0\r\no=- 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n" % (src, src) if method == "INVITE" else ""
msgs = []
for i in range(2000):
    h = ["%s sip:4420555@%s SIP/2.0" % (method, dst),
         "Via: SIP/2.0/UDP %s:5099;branch=z9hG4bKfl%d-%%d" % (src, i),
         "Max-Forwards: 70", "From: <sip:x@%s>;tag=f%d" % (src, i),
         "To: <sip:4420555@%s>" % dst, "Call-ID: fl%d-%%d@%s" % (i, src),
         "CSeq: 1 %s" % method, "Contact: <sip:x@%s:5099>" % src]
    if body:
        h.append("Content-Type: application/sdp")
    h.append("Content-Length: %d" % len(body))
    msgs.append("\r\n".join(h) + "\r\n\r\n" + body)
chunk = max(1, rate // 100)          # every 10 ms
start = time.monotonic()
sent = 0
n = 0
while True:
    now = time.monotonic()
    if now - start >= secs:
        break
    due = int((now - start) * rate)
    while sent < due:
        k = sent // 2000
        m = msgs[sent % 2000] % (k, k)
        try:
            s.sendto(m.encode(), (dst, 5060))
        except OSError:
            pass
        sent += 1
    time.sleep(0.002)
print("sent=%d seconds=%.2f" % (sent, time.monotonic() - start))
PY
}

# udp FIELD: a UDP counter of this network namespace (/proc/net/snmp)
udp() {
	awk -v f="$1" '$1 == "Udp:" { if (!n) { for (i = 2; i <= NF; i++)
		if ($i == f) c = i; n = 1 } else print $c }' /proc/net/snmp
}

# flood_cpu LABEL METHOD SECONDS [AFTER]: one flood; tollgate's CPU from
# its start to AFTER seconds (0.5) past its end, the datagrams sent back
# (every UDP datagram of the namespace but the flood's) and the datagrams
# receive buffers dropped (the flooder reads none of its answers: its own
# small buffer drops them)
flood_cpu() {
	local t0 t1 hz line ms o0 o1 d0 d1 sent
	hz=$(getconf CLK_TCK)
	sleep 1
	t0=$(cpu_ticks "$tg_pid")
	o0=$(udp OutDatagrams); d0=$(udp RcvbufErrors)
	line=$(flood "$2" "$3")
	sleep "${4:-0.5}"
	t1=$(cpu_ticks "$tg_pid")
	o1=$(udp OutDatagrams); d1=$(udp RcvbufErrors)
	ms=$(( (t1 - t0) * 1000 / hz ))
	sent=$(echo "$line" | sed 's/sent=\([0-9]*\).*/\1/')
	summary+=("$(printf '%-26s %s cpu_ms=%d cpu_pct_of_one_core=%s us_per_request=%s replies=%d rcvbuf_drops=%d' \
		"$1" "$line" "$ms" \
		"$(awk -v m="$ms" -v a="$3" -v b="${4:-0.5}" 'BEGIN { printf "%.0f", m / 10 / (a + b) }')" \
		"$(echo "$line $ms" | awk '{ split($1, a, "="); printf "%.2f", $3 * 1000 / a[2] }')" \
		$(( o1 - o0 - sent )) \
		$(( d1 - d0 )))")
}

summary=()
echo "# $(date -u +%FT%TZ) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"

if [ "$what" = cps ] || [ "$what" = all ]; then
	[ -x "$bench/run-cps.sh" ] || { echo "no harness at $bench" >&2; exit 2; }
	for mode in on off; do
		conf "$mode"
		start_tollgate
		line=$("$bench/run-cps.sh" "$TG_IP:5060" -p "$tg_pid" -n "$CALLS" \
			-d "$HOLD_MS" -r "$RATES" -b 1 -W 1000 -w 3 \
			-g "$BENCH_IP:5080" | tee "$out/cps-$mode.txt" | tail -n 1)
		summary+=("limits $mode:  $line")
		stop_tollgate
	done
fi

if [ "$what" = flood ] || [ "$what" = all ]; then
	conf on 503
	start_tollgate
	flood_cpu "INVITE flood, 503" INVITE "$FLOOD_S"
	flood_cpu "OPTIONS flood, 503" OPTIONS "$FLOOD_S"
	stop_tollgate
	conf on none
	start_tollgate
	flood_cpu "INVITE flood, silent" INVITE "$FLOOD_S"
	stop_tollgate
	conf off
	start_tollgate
	flood_cpu "INVITE flood, limits off" INVITE "$OFF_S" 5
	stop_tollgate
fi

echo "== limits at the door; details in $out"
printf '%s\n' "${summary[@]}"
