#!/usr/bin/env bash
# tests/bench/rtp-bench.sh - packets per second and CPU per packet of
# tollgate's media relay, next to rtpengine (userspace) and a bare
# recvmmsg/sendmmsg forwarder measured in the same run.  Not part of
# make check.
#
# usage: tests/bench/rtp-bench.sh [-n SESSIONS] [-r "PPS PPS ..."]
#                                 [-d SECONDS] [-t THREADS] [-A]
#   -n  calls set up through tollgate, each one relayed session with RTP
#       both ways [500]
#   -r  total packet rates to step through [20000 40000 60000 80000 100000]
#   -d  sending time per step, seconds [10]
#   -t  relay threads, for tollgate (rtp_threads) and the anchors [2]
#   -A  tollgate only, no anchors
#
# Run from the top build directory (or set top_builddir / top_srcdir).
# It starts a private PostgreSQL (tests/lib/pgtest.sh), tollgate on
# 127.0.0.61:5160 with the relay on 127.0.0.64 (callers) / 127.0.0.65
# (gateways), sets up the calls with SIPp (caller 127.0.0.62:5162, gateway
# 127.0.0.63:5180, RTP endpoints 127.0.0.66:10000+2i, 127.0.0.67:14000+2i),
# hands the resulting port map to ../shared/bench/run-rtp.sh map=FILE,
# then runs run-rtp.sh plain and rtpengine with the same sessions, rates
# and duration.  Everything it starts it stops by PID.  Last lines: the
# three "pps=" lines and the ratios of CPU per packet.
set -u

here=$(cd "$(dirname "$0")" && pwd)
: "${top_srcdir:=$(cd "$here/../.." && pwd)}"
: "${top_builddir:=$PWD}"
export top_srcdir top_builddir
BENCH=${BENCH:-$(cd "$top_srcdir/../shared/bench" 2>/dev/null && pwd)}
SIPP=${SIPP:-$(command -v sipp || true)}
TG="$top_builddir/tollgate"

SESSIONS=500
RATES="20000 40000 60000 80000 100000"
DUR=10
THREADS=2
ANCHORS=1

while getopts "n:r:d:t:Ah" o; do
	case $o in
	n) SESSIONS=$OPTARG ;;
	r) RATES=$OPTARG ;;
	d) DUR=$OPTARG ;;
	t) THREADS=$OPTARG ;;
	A) ANCHORS=0 ;;
	*) sed -n '2,28p' "$0"; exit 2 ;;
	esac
done

die() { echo "rtp-bench: $*" >&2; exit 1; }
[ -x "$TG" ] || die "$TG not built (run from the build directory)"
[ -x "$BENCH/run-rtp.sh" ] || die "no bench harness at $BENCH (set BENCH)"
[ -n "$SIPP" ] || die "sipp not found"
[ "$SESSIONS" -ge 1 ] && [ "$SESSIONS" -le 1900 ] ||
	die "-n must be 1..1900 (port ranges 10000+2i, 14000+2i)"

. "$top_srcdir/tests/lib/pgtest.sh"

W=$(mktemp -d /tmp/tollgate-rtpbench.XXXXXX) || exit 1
TG_PID= UAS_PID= UAC_PID=

cleanup() {
	local p
	for p in $UAC_PID $UAS_PID $TG_PID; do
		kill "$p" 2>/dev/null
		kill -CONT "$p" 2>/dev/null
	done
	for p in $UAC_PID $UAS_PID $TG_PID; do
		wait "$p" 2>/dev/null
	done
	pgtest_stop
	echo "rtp-bench: logs in $W" >&2
}
trap cleanup EXIT

pgtest_start || die "no database"
pgtest_psql <<SQL || die "seed failed"
INSERT INTO rate_plans (name) VALUES ('bench');
INSERT INTO rates (rate_plan_id, prefix, price_per_minute)
  SELECT id, '', 1 FROM rate_plans WHERE name = 'bench';
INSERT INTO accounts (name, balance, max_calls, rate_plan_id)
  SELECT 'bench', 1000000000000, $((SESSIONS + 10)), id
  FROM rate_plans WHERE name = 'bench';
SQL

cat >"$W/tollgate.conf" <<EOF
sip_listen udp:127.0.0.61:5160
trusted_peer 127.0.0.62 account=bench
gateway gw 127.0.0.63:5180
route default gw
copy_header X-Bench-B
db_conninfo $PGTEST_CONNINFO
max_call_duration 0
rtp_addr 127.0.0.64
rtp_addr_gateway 127.0.0.65
rtp_ports 30000-39999
rtp_threads $THREADS
media_timeout 0
media_timeout_hold 0
api_listen 127.0.0.68:8180
log_level info
state_dir $W/state
EOF
mkdir -p "$W/state"

"$TG" -f "$W/tollgate.conf" >"$W/tollgate.log" 2>&1 &
TG_PID=$!
for _ in $(seq 1 100); do
	grep -q running "$W/tollgate.log" && break
	sleep 0.1
done
grep -q running "$W/tollgate.log" ||
	{ cat "$W/tollgate.log"; die "tollgate did not start"; }

{
	echo SEQUENTIAL
	for i in $(seq 0 $((SESSIONS - 1))); do
		echo "$((10000 + 2 * i));$((14000 + 2 * i))"
	done
} >"$W/calls.csv"

"$SIPP" -sf "$top_srcdir/tests/rtp/bench-uas.xml" -nostdin \
	-i 127.0.0.63 -p 5180 \
	-m "$SESSIONS" -key rtp_ip 127.0.0.67 -trace_logs \
	-log_file "$W/uas.log" >"$W/uas.out" 2>&1 &
UAS_PID=$!
"$SIPP" -sf "$top_srcdir/tests/rtp/bench-uac.xml" 127.0.0.61:5160 -nostdin \
	-i 127.0.0.62 -p 5162 -inf "$W/calls.csv" -m "$SESSIONS" -r 100 \
	-l "$SESSIONS" -d 3600000 -key rtp_ip 127.0.0.66 -trace_logs \
	-log_file "$W/uac.log" >"$W/uac.out" 2>&1 &
UAC_PID=$!

for _ in $(seq 1 600); do
	a=$(grep -c '^A ' "$W/uac.log" 2>/dev/null)
	b=$(grep -c '^B ' "$W/uas.log" 2>/dev/null)
	[ "${a:-0}" -ge "$SESSIONS" ] && [ "${b:-0}" -ge "$SESSIONS" ] && break
	sleep 0.1
done
[ "${a:-0}" -ge "$SESSIONS" ] && [ "${b:-0}" -ge "$SESSIONS" ] ||
	die "only ${a:-0}/${b:-0} of $SESSIONS calls came up"

# A_PORT B_PORT RELAY_A  +  B_PORT RELAY_B  ->  the harness's map
awk 'NR == FNR { if ($1 == "B") rb[$2] = $3; next }
     $1 == "A" { print "127.0.0.66:" $2, "127.0.0.67:" $3,
                 "127.0.0.64:" $4, "127.0.0.65:" rb[$3] }' \
	"$W/uas.log" "$W/uac.log" >"$W/sessions.map"
[ "$(awk 'NF == 4 && $4 !~ /:$/' "$W/sessions.map" | wc -l)" = "$SESSIONS" ] ||
	die "incomplete port map $W/sessions.map"
echo "rtp-bench: $SESSIONS calls up through tollgate (pid $TG_PID)"

# The two SIPp only hold the calls from now on (no SIP message is due:
# media_timeout 0, no session timers), yet they take about 4 % of a core
# each doing so.  The anchors run without them, so they are stopped while
# the packets are measured and continued before they are ended.
kill -STOP "$UAC_PID" "$UAS_PID"

# run_rtp OUTFILE ARGS...: run-rtp.sh, waiting (at most 10 minutes) while
# another bench run holds the harness's lock
run_rtp() {
	local out=$1 try
	shift
	for try in $(seq 1 60); do
		"$BENCH/run-rtp.sh" "$@" 2>&1 | tee "$out"
		grep -q 'another bench run holds' "$out" || return 0
		echo "rtp-bench: harness busy, retrying in 10 s ($try/60)" >&2
		sleep 10
	done
}

run_rtp "$W/tollgate.bench" "map=$W/sessions.map" -p "$TG_PID" \
	-r "$RATES" -d "$DUR" -t "$THREADS"
tg_line=$(grep '^pps=' "$W/tollgate.bench" | tail -1)

kill -CONT "$UAC_PID" "$UAS_PID" 2>/dev/null
kill "$UAC_PID" "$UAS_PID" 2>/dev/null
wait "$UAC_PID" "$UAS_PID" 2>/dev/null
UAC_PID= UAS_PID=
kill -TERM "$TG_PID" 2>/dev/null
wait "$TG_PID" 2>/dev/null
TG_PID=

pl_line= re_line=
if [ "$ANCHORS" = 1 ]; then
	run_rtp "$W/plain.bench" plain -n "$SESSIONS" -r "$RATES" \
		-d "$DUR" -t "$THREADS"
	pl_line=$(grep '^pps=' "$W/plain.bench" | tail -1)
	run_rtp "$W/rtpengine.bench" rtpengine -n "$SESSIONS" -r "$RATES" \
		-d "$DUR" -t "$THREADS"
	re_line=$(grep '^pps=' "$W/rtpengine.bench" | tail -1)
fi

cpu() { grep -o 'cpu_us_per_pkt=[^ ]*' <<<"$1" | cut -d= -f2; }
echo
echo "tollgate:  $tg_line"
[ -n "$pl_line" ] && echo "plain:     $pl_line"
[ -n "$re_line" ] && echo "rtpengine: $re_line"
if [ -n "$pl_line" ] && [ -n "$re_line" ]; then
	# CPU per packet at the rates all three were measured at
	awk 'FNR == 1 { n++ }
	     /^total_pps=/ {
		r = c = v = ""
		for (i = 1; i <= NF; i++) {
			split($i, kv, "=")
			if (kv[1] == "total_pps") r = kv[2]
			if (kv[1] == "cpu_us_per_pkt") c = kv[2]
			if (kv[1] == "verdict") v = kv[2]
		}
		cpu[n, r] = c; ver[n, r] = v; rates[r] = 1
	     }
	     END {
		for (r in rates) {
			t = cpu[1, r]; p = cpu[2, r]; e = cpu[3, r]
			if (t == "" || p == "" || e == "" || !p || !e)
				continue
			printf "at %s pps: cpu/pkt tollgate %s (%s) plain %s (%s)" \
			       " rtpengine %s (%s): tollgate/rtpengine %.2f" \
			       " (<= 0.80), tollgate/plain %.2f (<= 1.10)\n",
			       r, t, ver[1, r], p, ver[2, r], e, ver[3, r],
			       t / e, t / p
		}
	     }' "$W/tollgate.bench" "$W/plain.bench" "$W/rtpengine.bench" |
		sort -t' ' -k2 -n
fi
