#!/usr/bin/env bash
# REST API benchmark (not part of make check): requests per second of
# GET /v1/calls with CALLS calls up and of POST /v1/accounts/{id}/credit,
# measured with wrk while SIPp keeps placing calls, and the number of
# failed SIP calls in the same run (must be 0).
#
#   tests/bench/api-bench.sh [CALLS [RATE [SECONDS]]]   (1000, 100, 10)
#
# Run from the top build directory (or set top_builddir).  Addresses:
# tollgate 127.0.0.78 (SIP 5060, API 8080), SIPp caller 127.0.0.79,
# gateway 127.0.0.76.  Every process is ended by its PID.
set -u

here=$(cd "$(dirname "$0")" && pwd)
: "${top_srcdir:=$(cd "$here/../.." && pwd)}"
: "${top_builddir:=$PWD}"
export top_srcdir top_builddir
CALLS=${1:-1000}
RATE=${2:-100}
SECS=${3:-10}
TG="$top_builddir/tollgate"
SIPP=${SIPP:-$(command -v sipp)}
for t in "$TG" "$SIPP" "$(command -v wrk)"; do
	[ -x "$t" ] || { echo "api-bench: missing $t" >&2; exit 77; }
done

. "$top_srcdir/tests/lib/pgtest.sh"
pgtest_start || exit 99
DIR=$(mktemp -d /tmp/tollgate-api-bench.XXXXXX)
PIDS=""
TOKEN=api-bench-admin-token-0123456789
API=http://127.0.0.78:8080

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
pgtest_psql -q -c "INSERT INTO rate_plans (name) VALUES ('bench');
	INSERT INTO rates (rate_plan_id, prefix, price_per_minute,
			   initial_increment, subsequent_increment)
	SELECT id, '', 600000, 1, 1 FROM rate_plans;
	INSERT INTO accounts (name, balance, max_calls, rate_plan_id)
	SELECT 'bench', 1000000000000000, 1000000, id FROM rate_plans;
	INSERT INTO accounts (name, balance) VALUES ('topup', 0)" || exit 99
TOPUP=$(pgtest_psql -At -c "SELECT id FROM accounts WHERE name = 'topup'")

cat >"$DIR/tg.conf" <<EOF
sip_listen udp:127.0.0.78:5060
trusted_peer 127.0.0.79 from
digest_auth no
gateway gw 127.0.0.76:5080
route default gw
db_conninfo $PGTEST_CONNINFO
rtp_relay no
media_timeout 0
state_dir $DIR
node_name api-bench
reserve_interval 60
api_listen 127.0.0.78:8080
api_token $TOKEN admin
log_level warning
EOF

"$TG" -f "$DIR/tg.conf" >"$DIR/tollgate.log" 2>&1 &
TG_PID=$!
PIDS="$PIDS $TG_PID"
for i in $(seq 1 100); do
	curl -sf -m 1 -H "Authorization: Bearer $TOKEN" "$API/v1/health" \
		>/dev/null && break
	sleep 0.1
done

# calls last long enough for CALLS to be up during both measurements
HOLD=$(( (CALLS / RATE + 2 * SECS + 10) * 1000 ))
TOTAL=$(( CALLS + RATE * (2 * SECS + 10) ))
"$SIPP" -bg -nostdin -i 127.0.0.76 -p 5080 -sf "$top_srcdir/tests/api/gw.xml" \
	-m "$TOTAL" >"$DIR/gw.out" 2>&1 </dev/null &
PIDS="$PIDS $!"
sleep 0.3
"$SIPP" -nostdin -i 127.0.0.79 -p 5061 -sf "$top_srcdir/tests/api/caller-hold.xml" \
	-key account bench -d "$HOLD" -s 1000 -r "$RATE" -l "$CALLS" \
	-m "$TOTAL" -timeout $(( HOLD / 1000 + CALLS / RATE + 60 )) \
	-trace_screen -screen_file "$DIR/caller.screen" \
	127.0.0.78:5060 >"$DIR/caller.out" 2>&1 </dev/null &
CALLER=$!
PIDS="$PIDS $CALLER"

n=0
for i in $(seq 1 $(( CALLS / RATE * 10 + 200 ))); do
	n=$(curl -s -m 5 -H "Authorization: Bearer $TOKEN" \
		"$API/metrics" | sed -n 's/^tollgate_calls_active //p')
	[ "${n:-0}" -ge "$CALLS" ] && break
	sleep 0.1
done
echo "calls up: $n"

cat >"$DIR/credit.lua" <<EOF
wrk.method = "POST"
wrk.body = '{"op":"add","amount":"0.01"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $TOKEN"
EOF

echo "== GET /v1/calls ($n calls up), ${SECS}s"
wrk -t2 -c16 -d"${SECS}s" -H "Authorization: Bearer $TOKEN" \
	"$API/v1/calls" | tee "$DIR/wrk-calls.txt"
echo "== POST /v1/accounts/$TOPUP/credit, ${SECS}s"
wrk -t2 -c16 -d"${SECS}s" -s "$DIR/credit.lua" \
	"$API/v1/accounts/$TOPUP/credit" | tee "$DIR/wrk-credit.txt"

adds=$(pgtest_psql -At -c "SELECT balance / 10000 FROM accounts WHERE id = $TOPUP")
echo "credit adds applied: $adds"

wait "$CALLER"
rc=$?
PIDS=${PIDS% $CALLER}
failed=$(grep -Eo 'Failed call +\| +[0-9]+ +\| +[0-9]+' "$DIR/caller.screen" |
	 awk '{print $NF}' | tail -n 1)
echo "SIPp caller exit status $rc, failed calls: ${failed:-?}"
echo "GET /v1/calls: $(awk '/Requests\/sec/ {print $2}' "$DIR/wrk-calls.txt") req/s;" \
     "POST credit: $(awk '/Requests\/sec/ {print $2}' "$DIR/wrk-credit.txt") req/s;" \
     "failed SIP calls: ${failed:-?}"
[ "$rc" = 0 ] && [ "${failed:-1}" = 0 ]
