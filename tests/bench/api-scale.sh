#!/usr/bin/env bash
# REST API at scale (not part of make check): with LEVELS calls held up
# (default "1000 30000", billing on, no media relay), requests per second
# of GET /v1/calls?limit=100 walking the cursors (the cluster listing
# from PostgreSQL and scope=local from memory) and of GET /metrics, each
# with tollgate's and PostgreSQL's CPU and tollgate's CPU per request;
# and, with and without GET /v1/calls hammering the API, the INVITE->200
# time of new calls and the cut-off lateness of calls whose money runs out
# (an account each, funded for FUNDED_S seconds: BYE received - answer -
# FUNDED_S), p50/p99/max.
#
#   tests/bench/api-scale.sh        (LEVELS, RATE=300 ramp calls/s,
#                                    SECS=10 per wrk run, PROBES=40 cut calls
#                                    at PROBE_RATE=5/s, FUNDED_S=3, TG=binary)
#
# Run from the top build directory.  Addresses: tollgate 127.0.6.60 (SIP
# 5060, API 8080), held calls' caller 127.0.6.61, gateway 127.0.6.62,
# cut calls' caller 127.0.6.63.  Every process is ended by its PID; every
# wait is bounded.
set -u

here=$(cd "$(dirname "$0")" && pwd)
: "${top_srcdir:=$(cd "$here/../.." && pwd)}"
: "${top_builddir:=$PWD}"
export top_srcdir top_builddir
LEVELS=${LEVELS:-"1000 30000"}
RATE=${RATE:-300}
SECS=${SECS:-10}
PROBES=${PROBES:-40}
PROBE_RATE=${PROBE_RATE:-5}
FUNDED_S=${FUNDED_S:-3}
TG=${TG:-$top_builddir/tollgate}
SIPP=${SIPP:-$(command -v sipp)}
for t in "$TG" "$SIPP" "$(command -v wrk)"; do
	[ -x "$t" ] || { echo "api-scale: missing $t" >&2; exit 77; }
done

. "$top_srcdir/tests/lib/pgtest.sh"
pgtest_start >/dev/null || exit 99
DIR=$(mktemp -d /tmp/tollgate-api-scale.XXXXXX)
chmod 755 "$DIR"
PIDS=""
TOKEN=api-scale-admin-token-0123456789
API=http://127.0.6.60:8080
MAXC=0
for l in $LEVELS; do [ "$l" -gt "$MAXC" ] && MAXC=$l; done

stop_pid() {
	local i
	kill -0 "$1" 2>/dev/null || return 0
	kill -TERM "$1" 2>/dev/null
	for i in $(seq 1 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}
cleanup() {
	local p
	for p in $PIDS; do stop_pid "$p"; done
	[ -n "${BENCH_KEEP:-}" ] || rm -rf "$DIR"
	pgtest_stop
}
trap cleanup EXIT

ulimit -n 65536 2>/dev/null
NPROBE=$(( PROBES * 2 * $(echo $LEVELS | wc -w) ))
pgtest_psql -q -c "INSERT INTO rate_plans (name) VALUES ('bench');
	INSERT INTO rates (rate_plan_id, prefix, price_per_minute,
			   initial_increment, subsequent_increment)
	SELECT id, '', 1200000, 1, 1 FROM rate_plans;
	INSERT INTO accounts (name, balance, max_calls, rate_plan_id)
	SELECT 'bench', 1000000000000000, 1000000, id FROM rate_plans;
	INSERT INTO accounts (name, balance, rate_plan_id)
	SELECT 'cut' || g, $FUNDED_S * 20000, p.id
	FROM generate_series(1, $NPROBE) g, rate_plans p" || exit 99

cat >"$DIR/tg.conf" <<CONF
sip_listen udp:127.0.6.60:5060
trusted_peer 127.0.6.61 from
trusted_peer 127.0.6.63 from
digest_auth no
gateway gw 127.0.6.62:5080
route default gw
db_conninfo $PGTEST_CONNINFO
rtp_relay no
media_timeout 0
max_call_duration 0
state_dir $DIR
node_name api-scale
reserve_interval 60
api_listen 127.0.6.60:8080
api_token $TOKEN admin
log_level warning
CONF

"$TG" -f "$DIR/tg.conf" >"$DIR/tollgate.log" 2>&1 &
TG_PID=$!
PIDS="$PIDS $TG_PID"
for i in $(seq 1 100); do
	curl -sf -m 1 -H "Authorization: Bearer $TOKEN" "$API/v1/health" \
		>/dev/null && break
	sleep 0.1
done
PG_PM=$(head -n 1 "$PGTEST_DIR/pgdata/postmaster.pid" 2>/dev/null)

# CPU seconds (user + system, in ticks) of a process, of the postmaster
# and its children
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
pg_ticks() {
	local t=0 p
	for p in $PG_PM $(ps -o pid= --ppid "$PG_PM" 2>/dev/null); do
		t=$(( t + $(ticks "$p") ))
	done
	echo "$t"
}
HZ=$(getconf CLK_TCK)
active() {
	curl -s -m 5 -H "Authorization: Bearer $TOKEN" "$API/metrics" |
		sed -n 's/^tollgate_calls_active //p'
}

# the gateway answers every call; the held calls' caller hangs up after
# the hold, long enough for every level's measurements
HOLD=$(( (MAXC / RATE + 200 * $(echo $LEVELS | wc -w) + 60) * 1000 ))
"$SIPP" -nostdin -i 127.0.6.62 -p 5080 -sf "$top_srcdir/tests/api/gw.xml" \
	-m $(( MAXC * 2 + NPROBE )) -timeout $(( HOLD / 1000 + 120 )) \
	>"$DIR/gw.out" 2>&1 </dev/null &
PIDS="$PIDS $!"
sleep 0.3

# cut calls: the billing suite's caller, its account from a file, and
# the wall clock of the INVITE logged too
awk '/<send retrans="500">/ && !done {
	print "  <nop><action><gettimeofday assign_to=\"s0,us0\"/>"
	print "    <log message=\"INVITE [call_number] [$s0] [$us0]\"/></action></nop>"
	done = 1 }
{ gsub(/\[account\]/, "[field0]"); print }' \
	"$top_srcdir/tests/billing/caller.xml" >"$DIR/cut-caller.xml"

# p50/p99/max of a column of integers
pct() {
	sort -n | awk '{ v[NR] = $1 } END {
		if (!NR) { print "n=0"; exit }
		i50 = int(NR * 0.50 + 0.5); if (i50 < 1) i50 = 1
		i99 = int(NR * 0.99 + 0.5); if (i99 < 1) i99 = 1
		printf "n=%d p50=%d p99=%d max=%d\n", NR, v[i50], v[i99], v[NR] }'
}

PROBE_N=0
# probe NAME: PROBES cut calls; INVITE->200 and lateness (ms)
probe() {
	local log="$DIR/probe-$1"
	# accounts of their own: a used one has no money left
	seq $(( PROBE_N + 1 )) $(( PROBE_N + PROBES )) |
		awk 'BEGIN { print "SEQUENTIAL" } { print "cut" $1 }' >"$log.csv"
	PROBE_N=$(( PROBE_N + PROBES ))
	"$SIPP" -nostdin -i 127.0.6.63 -p 5063 -sf "$DIR/cut-caller.xml" \
		-inf "$log.csv" \
		-s 100 -m "$PROBES" -r "$PROBE_RATE" \
		-trace_logs -log_file "$log.log" \
		-timeout $(( PROBES / PROBE_RATE + FUNDED_S + 60 )) -timeout_error \
		127.0.6.60:5060 >"$log.out" 2>&1 </dev/null &
	PROBE_PID=$!
	PIDS="$PIDS $PROBE_PID"
}
probe_wait() {
	local log="$DIR/probe-$1"
	wait "$PROBE_PID"
	echo "$1: sipp exit $?"
	awk '$1 == "INVITE" { i[$2] = $3 * 1000 + $4 / 1000 }
	     $1 == "ANSWER" && ($2 in i) { printf "%d\n", $3 * 1000 + $4 / 1000 - i[$2] }' \
		"$log.log" | pct | sed "s/^/$1: INVITE->200 ms /"
	awk -v f="$FUNDED_S" '$1 == "ANSWER" { a[$2] = $3 * 1000 + $4 / 1000 }
	     $1 == "BYE" && ($2 in a) { printf "%d\n", $3 * 1000 + $4 / 1000 - a[$2] - f * 1000 }' \
		"$log.log" | pct | sed "s/^/$1: cut-off lateness ms /"
}

# wrk following next_cursor: each connection walks the list and starts
# again at its end
cat >"$DIR/walk.lua" <<'LUA'
local cursor = nil
local base = os.getenv("WALK_PATH")
request = function()
	local p = base
	if cursor then p = p .. "&cursor=" .. cursor end
	return wrk.format("GET", p)
end
response = function(status, headers, body)
	local c = body:match('"next_cursor":"([^"]+)"')
	cursor = c
end
LUA

# wrk_run NAME PATH [LUA]: requests/s, tollgate CPU and per request,
# PostgreSQL CPU
wrk_run() {
	local t0 p0 t1 p1 rps reqs
	t0=$(ticks "$TG_PID"); p0=$(pg_ticks)
	if [ -n "${3:-}" ]; then
		WALK_PATH=$2 wrk -t2 -c16 -d"${SECS}s" -s "$3" \
			-H "Authorization: Bearer $TOKEN" "$API" >"$DIR/wrk-$1.txt" 2>&1
	else
		wrk -t2 -c16 -d"${SECS}s" -H "Authorization: Bearer $TOKEN" \
			"$API$2" >"$DIR/wrk-$1.txt" 2>&1
	fi
	t1=$(ticks "$TG_PID"); p1=$(pg_ticks)
	rps=$(awk '/Requests\/sec/ { print $2 }' "$DIR/wrk-$1.txt")
	reqs=$(awk '/requests in/ { print $1 }' "$DIR/wrk-$1.txt")
	awk -v n="$1" -v r="$rps" -v q="$reqs" -v t=$(( t1 - t0 )) \
	    -v p=$(( p1 - p0 )) -v hz="$HZ" -v s="$SECS" \
	    -v e="$(grep -c 'Non-2xx' "$DIR/wrk-$1.txt")" 'BEGIN {
		printf "%s: %s req/s (%s requests, non-2xx lines %d); tollgate CPU %.0f %% of a core, %.0f us/request; PostgreSQL CPU %.0f %%\n",
			n, r, q, e, 100 * t / hz / s, q ? 1e6 * t / hz / q : 0, 100 * p / hz / s }'
}

START=0
for L in $LEVELS; do
	add=$(( L - START ))
	echo "== $L calls: $add more at $RATE/s; load $(cut -d' ' -f1-3 /proc/loadavg)"
	"$SIPP" -nostdin -i 127.0.6.61 -p $(( 5100 + START % 97 )) \
		-sf "$top_srcdir/tests/api/caller-hold.xml" \
		-key account bench -d "$HOLD" -s 1000 -r "$RATE" -l "$add" -m $(( add * 2 )) \
		-timeout $(( HOLD / 1000 + 120 )) \
		127.0.6.60:5060 >"$DIR/hold-$L.out" 2>&1 </dev/null &
	PIDS="$PIDS $!"
	n=0
	for i in $(seq 1 $(( add / RATE * 20 + 300 ))); do
		n=$(active)
		[ "${n:-0}" -ge "$L" ] && break
		sleep 0.1
	done
	echo "calls up: $n"
	sleep 2
	i0=$(ticks "$TG_PID"); sleep 5; i1=$(ticks "$TG_PID")
	echo "idle: tollgate CPU $(( 100 * (i1 - i0) / HZ / 5 )) % of a core holding $n calls"

	# a call in a page is the call as GET /v1/calls/{id} shows it
	curl -s -m 5 -H "Authorization: Bearer $TOKEN" \
		"$API/v1/calls?scope=local&limit=1" >"$DIR/page1.json"
	id=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["calls"][0]["id"])' \
		<"$DIR/page1.json" 2>/dev/null)
	curl -s -m 5 -H "Authorization: Bearer $TOKEN" "$API/v1/calls/$id" \
		>"$DIR/one.json"
	python3 - "$DIR/page1.json" "$DIR/one.json" <<'PY'
import json, sys
a = json.load(open(sys.argv[1]))["calls"][0]
b = json.load(open(sys.argv[2]))
for k in ("seconds", "spent", "reserved", "seconds_left"):
    a.pop(k, None); b.pop(k, None)
print("json of a page's call and of GET /v1/calls/{id}:",
      "same" if a == b and list(a) == list(b) else "DIFFERENT %r %r" % (a, b))
PY
	probe "$L-quiet"; probe_wait "$L-quiet"
	probe "$L-api"
	wrk_run "$L-calls-cluster" "/v1/calls?limit=100" "$DIR/walk.lua"
	probe_wait "$L-api"
	wrk_run "$L-calls-local" "/v1/calls?scope=local&limit=100" "$DIR/walk.lua"
	wrk_run "$L-metrics" "/metrics"
	START=$L
done
echo "load $(cut -d' ' -f1-3 /proc/loadavg); out $DIR"
