#!/usr/bin/env bash
# Gateway health and limits end to end: OPTIONS probes take a gateway out
# of routing and put it back, channel and call-rate limits move calls to
# the next gateway, a burst of 503s takes a gateway out, a route with no
# usable gateway gets 503 with Reason Q.850 cause 34; /v1/gateways and
# /metrics count all of it; a bad gateway option stops the start.
#
# A private PostgreSQL (tests/lib/pgtest.sh; billing off), SIPp as the
# caller and as six gateways (each answers OPTIONS; gw5 answers every
# INVITE 503; gw6 is probed over TCP), curl against the API.
#
#   route 100 gw1,gw2   gw1 probed every second (fail=2 recover=2)
#   route 200 gw3,gw2   gw3 max_calls=1
#   route 300 gw4,gw2   gw4 cps=2
#   route 500 gw5,gw2   gw5 probed every 5 s, burst=3, answers 503
#   route 400 gw1       gw1 alone: nothing usable once it is down
#
# Addresses: tollgate SIP 127.0.5.40:5060 (udp, tcp) and API
# 127.0.5.40:8080, SIPp caller 127.0.5.41, gateways gw1..gw6
# 127.0.5.42..47 (port 5080), 127.0.5.49 only in refused lines.  Every
# process started here is ended by its PID; every wait is bounded.
#
# make check runs it from the top build directory with top_srcdir,
# top_builddir and SIPP in the environment.  Prints "N passed, M failed".
set -u

here=$(cd "$(dirname "$0")" && pwd)
: "${top_srcdir:=$(cd "$here/../.." && pwd)}"
: "${top_builddir:=$PWD}"
: "${SIPP:=$(command -v sipp || true)}"
export top_srcdir top_builddir

TG="$top_builddir/tollgate"
[ -x "$TG" ] || { echo "gwhealth.sh: $TG not built" >&2; exit 99; }
[ -n "$SIPP" ] || { echo "gwhealth.sh: sipp not found" >&2; exit 77; }
command -v curl >/dev/null || { echo "gwhealth.sh: no curl" >&2; exit 77; }

TEST_KEEP=${GWHEALTH_KEEP:-}
# shellcheck source=../lib/check.sh
. "$top_srcdir/tests/lib/check.sh"
# shellcheck source=../lib/pgtest.sh
. "$top_srcdir/tests/lib/pgtest.sh"
test_init gwhealth || exit 99
pgtest_start || exit 99

DIR=$TEST_DIR
CONF="$DIR/tg.conf"
API=http://127.0.5.40:8080
ADMIN=gwhealth-test-admin-token-0123456789
TG_PID=
CALLS=0

declare -A GW_IP=([gw1]=127.0.5.42 [gw2]=127.0.5.43 [gw3]=127.0.5.44
		  [gw4]=127.0.5.45 [gw5]=127.0.5.46 [gw6]=127.0.5.47)
declare -A GW_PID=()

# gw_start NAME [SCENARIO [u1|t1]]: a gateway SIPp on NAME's address
# (gwh-gw.xml, over UDP)
gw_start() {
	local n=$1 sc=${2:-gwh-gw.xml}
	local tp=${3:-u1} proto=udp
	[ "$tp" = t1 ] && proto=tcp
	"$SIPP" -nostdin -i "${GW_IP[$n]}" -p 5080 -sf "$here/$sc" -t "$tp" \
		-timeout 300 >"$DIR/$n.$RANDOM.out" 2>&1 </dev/null &
	GW_PID[$n]=$!
	pid_remember "${GW_PID[$n]}"
	wait_bound "$proto" "${GW_IP[$n]}" 5080 5 "${GW_PID[$n]}" || {
		echo "gwhealth.sh: gateway $n did not start" >&2
		exit 99
	}
}

gw_kill() {
	pid_stop "${GW_PID[$1]}" 5
	GW_PID[$1]=
}

# dial NUMBER [COUNT [RATE [HOLD_MS [SCENARIO]]]]: COUNT calls (1) at
# RATE a second (10), each held HOLD_MS (200); true if all went as the
# scenario wants.  From port $PORT (5061), for a caller in the background.
dial() {
	CALLS=$((CALLS + 1))
	"$SIPP" -nostdin -i 127.0.5.41 -p "${PORT:-5061}" \
		-sf "$here/${5:-gwh-caller.xml}" \
		-s "$1" -m "${2:-1}" -r "${3:-10}" -d "${4:-200}" \
		-timeout 30 -timeout_error -trace_msg \
		-message_file "$DIR/call$CALLS${PORT:-}.msg" \
		127.0.5.40:5060 >"$DIR/call$CALLS${PORT:-}.out" 2>&1 </dev/null
}

# gw NAME FIELD: FIELD of GET /v1/gateways/NAME ("a.b" for nested ones)
gw() {
	req GET "/v1/gateways/$1"
	jget "$2"
}

# wait_state NAME STATE SECONDS: until the gateway is in STATE
wait_state() {
	local i
	for ((i = 0; i < $3 * 10; i++)); do
		[ "$(gw "$1" state)" = "$2" ] && return 0
		sleep 0.1
	done
	return 1
}

# wait_field NAME FIELD VALUE SECONDS
wait_field() {
	local i
	for ((i = 0; i < $4 * 10; i++)); do
		[ "$(gw "$1" "$2")" = "$3" ] && return 0
		sleep 0.1
	done
	return 1
}

# invites NAME: INVITEs the log shows sent to gateway NAME
invites() { grep -c "to gateway $1 (" "$TG_LOG"; }

# metric SERIES: its value in /metrics, e.g. 'tollgate_gateway_up{gateway="gw1"}'
metric() {
	curl -s -m 10 -H "Authorization: Bearer $ADMIN" "$API/metrics" |
		grep -F "$1 " | head -n 1 | awk '{print $2}'
}

sql "INSERT INTO accounts (name, balance) VALUES ('alice', 100000000)" \
	>/dev/null || exit 99
mkdir -p "$DIR/state"

cat >"$CONF" <<EOF2
sip_listen udp:127.0.5.40:5060
sip_listen tcp:127.0.5.40:5060
trusted_peer 127.0.5.41 from
digest_auth no
db_conninfo $PGTEST_CONNINFO
billing no
rtp_relay no
media_timeout 0
state_dir $DIR/state
shutdown_grace 2
log_level info
api_listen 127.0.5.40:8080
api_token $ADMIN admin
gateway_probe_timeout 400
gateway gw1 127.0.5.42:5080 probe=1 fail=2 recover=2
gateway gw2 127.0.5.43:5080 probe=1 fail=2 recover=2
gateway gw3 127.0.5.44:5080 max_calls=1
gateway gw4 127.0.5.45:5080 cps=2
gateway gw5 127.0.5.46:5080 probe=5 probe_timeout=1000 recover=2 burst=3
gateway gw6 127.0.5.47:5080 transport=tcp probe=1
route 100 gw1,gw2
route 200 gw3,gw2
route 300 gw4,gw2
route 400 gw1
route 500 gw5,gw2
EOF2

echo "# 0. a bad gateway option stops the start, naming file and line"
bad() {
	local f="$DIR/bad.conf"
	{ grep -v '^gateway\|^route' "$CONF"; echo "$1"; } >"$f"
	"$TG" -t -f "$f" >"$DIR/bad.out" 2>&1
	echo "$?:$(grep -c "^$f:$(wc -l <"$f"): gateway: $2" "$DIR/bad.out")"
}
equal "probe=abc is refused at its line" \
	"$(bad 'gateway gwx 127.0.5.49:5080 probe=abc' "probe 'abc' is not a decimal number")" 1:1
equal "an unknown option is refused at its line" \
	"$(bad 'gateway gwx 127.0.5.49:5080 flavour=mild' "unknown option 'flavour=mild'")" 1:1
equal "max_calls given twice is refused" \
	"$(bad 'gateway gwx 127.0.5.49:5080 max_calls=1 max_calls=2' "max_calls given twice")" 1:1
equal "fail=0 is out of range" \
	"$(bad 'gateway gwx 127.0.5.49:5080 probe=1 fail=0' "fail 0 out of range 1..100")" 1:1
f="$DIR/bad.conf"
{ grep -v '^gateway\|^route' "$CONF"
  echo "gateway gwx 127.0.5.49:5080 probe=1 probe_timeout=1500"; } >"$f"
"$TG" -t -f "$f" >"$DIR/bad.out" 2>&1
equal "a probe_timeout over the interval is refused at its line" \
	"$?:$(grep -c "^$f:$(wc -l <"$f"): gateway gwx: probe_timeout 1500 ms is longer" "$DIR/bad.out")" 1:1
"$TG" -t -f "$CONF" >"$DIR/t.out" 2>&1
equal "the suite's configuration is valid" "$?" 0
check "-t prints the effective options" \
	grep -q "^gateway gw5 127.0.5.46:5080 transport=udp probe=5 probe_timeout=1000 fail=3 recover=2 burst=3$" "$DIR/t.out"

for n in gw1 gw2 gw3 gw4; do gw_start "$n"; done
gw_start gw5 gwh-gw503.xml
gw_start gw6 gwh-gw.xml t1

TG_LOG="$DIR/tollgate.log"
"$TG" -f "$CONF" >"$TG_LOG" 2>&1 &
TG_PID=$!
pid_remember "$TG_PID"
wait_line "$TG_LOG" "routing by the database" 10 "$TG_PID" || {
	echo "gwhealth.sh: tollgate did not come up:" >&2
	tail -n 30 "$TG_LOG" >&2
	exit 99
}

echo "# 1. probes: every probed gateway answers"
check "gw1 answered a probe" wait_field gw1 probe.last.result ok 5
equal "gw1 is up" "$(gw gw1 state)" up
equal "its last probe got 200" "$(gw gw1 probe.last.code)" 200
equal "its probe settings" \
	"$(gw gw1 probe.interval_s)/$(gw gw1 probe.timeout_ms)/$(gw gw1 probe.fail)/$(gw gw1 probe.recover)" \
	"1/400/2/2"
check "gw6 answered a probe over TCP" wait_field gw6 probe.last.result ok 5
equal "gw6 is up" "$(gw gw6 state)/$(gw gw6 transport)" up/tcp
equal "gw3 is not probed" "$(gw gw3 state)/$(gw gw3 probe)" unprobed/null
equal "gw3's channel limit" "$(gw gw3 max_calls)/$(gw gw3 cps)" 1/null
req GET /v1/gateways/nosuch
equal "an unknown gateway: 404" "$CODE" 404
req GET /v1/gateways
equal "the list carries the state of each" \
	"$(python3 -c 'import json,sys
print(" ".join(g["name"] + "=" + g["state"]
	for g in json.loads(sys.argv[1])["gateways"]))' "$BODY")" \
	"gw1=up gw2=up gw3=unprobed gw4=unprobed gw5=up gw6=up"

check "two calls to route 100" dial 100555 2
equal "both went to gw1" "$(invites gw1)/$(invites gw2)" 2/0
equal "gw1 counts 2 attempts, 2 answered, ASR 1" \
	"$(gw gw1 attempts)/$(gw gw1 answered)/$(gw gw1 asr)" 2/2/1.0

echo "# 2. gw1 stops answering probes: out of routing"
gw_kill gw1
check "gw1 goes down" wait_state gw1 down 6
check "the change is logged with its reason" \
	grep -qE "gateway gw1 \(127.0.5.42:5080\) down: 2 probes in a row failed" "$TG_LOG"
equal "its last probe failed without an answer" \
	"$(gw gw1 probe.last.result)/$(gw gw1 probe.last.code)" failed/null
check "three calls to route 100, none failed" dial 100555 3
equal "all three went to gw2 at once" "$(invites gw1)/$(invites gw2)" 2/3
equal "gw1: 3 calls passed it over, attempts unchanged" \
	"$(gw gw1 skipped.down)/$(gw gw1 attempts)" 3/2
equal "gw1 went down once" "$(gw gw1 went_down)" 1

echo "# 3. gw1 answers again: back in routing"
gw_start gw1
check "gw1 comes up" wait_state gw1 up 8
check "that change is logged" \
	grep -qE "gateway gw1 \(127.0.5.42:5080\) up: 2 probes in a row answered" "$TG_LOG"
check "a call to route 100" dial 100555
equal "it went to gw1" "$(invites gw1)/$(invites gw2)" 3/3
equal "gw1 went up once" "$(gw gw1 went_up)" 1

echo "# 4. gw3's channel limit: a held call, the next one to gw2"
PORT=5062 dial 200555 1 10 4000 &
HELD=$!
check "the held call takes gw3's channel" wait_field gw3 calls 1 5
check "a call while it is held" dial 200555
equal "it went to gw2" "$(invites gw3)/$(invites gw2)" 1/4
equal "gw3: passed over once for max_calls" "$(gw gw3 skipped.max_calls)" 1
wait "$HELD"
equal "the held call ended well" "$?" 0
equal "its channel is free" "$(gw gw3 calls)" 0
check "a call after it" dial 200555
equal "it went to gw3 again" "$(invites gw3)/$(invites gw2)" 2/4
equal "gw3: 2 attempts, 2 answered" \
	"$(gw gw3 attempts)/$(gw gw3 answered)" 2/2
acd=$(gw gw3 acd_s)
check "gw3's ACD is the mean of 4 s and 0.2 s ($acd)" \
	python3 -c "import sys; sys.exit(not 1.9 <= $acd <= 2.6)"

echo "# 5. gw4's cps=2: four calls in 0.4 s, two go on to gw2"
check "four calls to route 300" dial 300555 4 10
equal "two went to gw4, two to gw2" "$(invites gw4)/$(invites gw2)" 2/6
equal "gw4: passed over twice for cps" "$(gw gw4 skipped.cps)" 2

echo "# 6. gw5 answers three INVITEs 503: out until probes bring it back"
check "three calls to route 500, each taken by gw2" dial 500555 3 2
equal "each tried gw5 first" "$(invites gw5)/$(invites gw2)" 3/9
equal "gw5 is down" "$(gw gw5 state)" down
equal "its reason" "$(gw gw5 state_reason)" \
	"3 INVITEs in a row failed with 503, 408 or no answer (last: 503)"
equal "gw5: 3 attempts, 3 5xx failures, ASR 0" \
	"$(gw gw5 attempts)/$(gw gw5 failures.5xx)/$(gw gw5 asr)" 3/3/0.0
check "a fourth call" dial 500555
equal "it skipped gw5" "$(invites gw5)/$(invites gw2)" 3/10
check "gw5's probes bring it back" wait_state gw5 up 15

echo "# 7. no usable gateway: 503 with Reason Q.850 cause 34"
gw_kill gw1
check "gw1 goes down again" wait_state gw1 down 6
check "a call to route 400 gets 503 with cause 34" \
	dial 400555 1 10 200 gwh-caller503.xml
check "the 503 carries the Reason text" \
	grep -q 'Reason: Q.850;cause=34;text="no circuit/channel available"' \
		"$DIR/call$CALLS.msg"
check "the call is logged as failed, no gateway tried" \
	grep -q "no usable gateway among the call's 1" "$TG_LOG"
equal "gw1 was not tried" "$(invites gw1)" 3

echo "# 8. /metrics"
equal "gw1 up 0, gw2 up 1" \
	"$(metric 'tollgate_gateway_up{gateway="gw1"}')/$(metric 'tollgate_gateway_up{gateway="gw2"}')" 0/1
equal "gw2: 10 attempts, 10 answered" \
	"$(metric 'tollgate_gateway_attempts_total{gateway="gw2"}')/$(metric 'tollgate_gateway_answered_total{gateway="gw2"}')" 10/10
equal "gw5: 3 5xx failures" \
	"$(metric 'tollgate_gateway_failures_total{gateway="gw5",class="5xx"}')" 3
equal "gw5's ASR, gw2's ASR" \
	"$(metric 'tollgate_gateway_asr{gateway="gw5"}')/$(metric 'tollgate_gateway_asr{gateway="gw2"}')" 0.000/1.000
equal "calls on gw3 now" "$(metric 'tollgate_gateway_calls{gateway="gw3"}')" 0
equal "gw1 went down twice, up once" \
	"$(metric 'tollgate_gateway_state_changes_total{gateway="gw1",to="down"}')/$(metric 'tollgate_gateway_state_changes_total{gateway="gw1",to="up"}')" 2/1
equal "skips of gw4 for cps" \
	"$(metric 'tollgate_gateway_skipped_total{gateway="gw4",why="cps"}')" 2
ok_probes=$(metric 'tollgate_gateway_probes_total{gateway="gw2",result="ok"}')
within "gw2's probes answered" "${ok_probes:-0}" 5 200
equal "gw2's probes failed" \
	"$(metric 'tollgate_gateway_probes_total{gateway="gw2",result="failed"}')" 0
acd=$(metric 'tollgate_gateway_acd_seconds{gateway="gw3"}')
check "gw3's ACD in /metrics ($acd)" \
	python3 -c "import sys; sys.exit(not 1.9 <= float('$acd') <= 2.6)"
equal "one call over as rejected" \
	"$(metric 'tollgate_calls_total{outcome="rejected"}')" 1

pid_stop "$TG_PID" 30
equal "tollgate exits 0 on SIGTERM" "$?" 0
TG_PID=

summary
