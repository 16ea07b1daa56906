#!/usr/bin/env bash
# Reload without a restart: SIGHUP reads the configuration file again.
#
#   1. a call is up through gateway gwa; the file now routes to gwb and
#      names no gwa; SIGHUP: new calls go to gwb, the running call goes
#      on and ends with BYE on both legs and its CDR
#   2. a file with a bad line: the log names FILE:LINE, nothing changes
#   3. keys that cannot change (sip_listen, node_name) are named and keep
#      their value while the rest applies
#   4. an API token removed gets 401, a new one works
#   5. log_level debug takes effect
#
# A private PostgreSQL (tests/lib/pgtest.sh, billing on), SIPp as the
# caller (127.0.6.101) and as two gateways (gwa 127.0.6.102, gwb
# 127.0.6.103, port 5080), tollgate SIP and API on 127.0.6.100.  Every
# process started here is ended by its PID; every wait is bounded.
set -u

here=$(cd "$(dirname "$0")" && pwd)
: "${top_srcdir:=$(cd "$here/../.." && pwd)}"
: "${top_builddir:=$PWD}"
: "${SIPP:=$(command -v sipp || true)}"
export top_srcdir top_builddir

TG=${RELOAD_TG:-$top_builddir/tollgate}
[ -x "$TG" ] || { echo "reload.sh: $TG not built" >&2; exit 99; }
[ -n "$SIPP" ] || { echo "reload.sh: sipp not found" >&2; exit 77; }
command -v curl >/dev/null || { echo "reload.sh: no curl" >&2; exit 77; }

TEST_KEEP=${RELOAD_KEEP:-}
# shellcheck source=../lib/check.sh
. "$top_srcdir/tests/lib/check.sh"
# shellcheck source=../lib/pgtest.sh
. "$top_srcdir/tests/lib/pgtest.sh"
test_init reload || exit 99
pgtest_start || exit 99

DIR=$TEST_DIR
CONF="$DIR/tg.conf"
API=http://127.0.6.100:8080
ADMIN=reload-test-admin-token-0123456789
ADMIN2=reload-test-second-token-9876543210
SC="$top_srcdir/tests/routes"
TG_PID=
CALLS=0

gw_start() {
	"$SIPP" -nostdin -i "$2" -p 5080 -sf "$SC/gwh-gw.xml" -t u1 \
		-timeout 120 -trace_msg -message_file "$DIR/$1.msg" \
		>"$DIR/$1.out" 2>&1 </dev/null &
	pid_remember "$!"
	wait_bound udp "$2" 5080 5 "$!" || {
		echo "reload.sh: gateway $1 did not start" >&2
		exit 99
	}
}

# dial NUMBER HOLD_MS [PORT]: one call, answered, held, the caller's BYE
dial() {
	CALLS=$((CALLS + 1))
	"$SIPP" -nostdin -i 127.0.6.101 -p "${3:-5061}" -sf "$SC/gwh-caller.xml" \
		-s "$1" -m 1 -d "$2" -timeout 30 -timeout_error \
		127.0.6.100:5060 >"$DIR/call$CALLS.out" 2>&1 </dev/null
}

# gwf NAME FIELD: a field of GET /v1/gateways/NAME
gwf() {
	curl -s -m 10 -H "Authorization: Bearer ${TOKEN:-$ADMIN}" \
		"$API/v1/gateways/$1" |
		python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' \
		"$2" 2>/dev/null
}

invites() { grep -c "to gateway $1 (" "$TG_LOG"; }

metric() {
	curl -s -m 10 -H "Authorization: Bearer ${TOKEN:-$ADMIN}" "$API/metrics" |
		awk -v m="$1" '$1 == m { print $2; exit }'
}

status() {
	curl -s -m 10 -o /dev/null -w '%{http_code}' \
		-H "Authorization: Bearer $1" "$API$2"
}

# hup LINE SECONDS: SIGHUP, then wait for LINE in the log after it
hup() {
	local n
	n=$(wc -l <"$TG_LOG")
	kill -HUP "$TG_PID"
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		tail -n +"$((n + 1))" "$TG_LOG" | grep -qF "$1" && return 0
		sleep 0.1
	done
	return 1
}

since() { tail -n +"$((${1} + 1))" "$TG_LOG"; }

sql "INSERT INTO rate_plans (name) VALUES ('reload-test');
     INSERT INTO rates (rate_plan_id, prefix, connect_fee, price_per_minute,
			initial_increment, subsequent_increment)
     SELECT id, '', 0, 600000, 1, 1 FROM rate_plans;
     INSERT INTO accounts (name, balance, max_calls, rate_plan_id)
     SELECT 'alice', 100000000, 10, id FROM rate_plans" >/dev/null || exit 99
mkdir -p "$DIR/state"

base() {
	cat <<EOF2
sip_listen udp:127.0.6.100:5060
trusted_peer 127.0.6.101 from
digest_auth no
db_conninfo $PGTEST_CONNINFO
node_name reload-test
rtp_relay no
media_timeout 0
state_dir $DIR/state
shutdown_grace 2
heartbeat 1
api_listen 127.0.6.100:8080
EOF2
}

{ base
  echo "api_token $ADMIN admin"
  echo "log_level info"
  echo "gateway gwa 127.0.6.102:5080"
  echo "gateway gwb 127.0.6.103:5080 probe=1"
  echo "route 44 gwa"
} >"$CONF"

gw_start gwa 127.0.6.102
gw_start gwb 127.0.6.103

TG_LOG="$DIR/tollgate.log"
"$TG" -f "$CONF" >"$TG_LOG" 2>&1 &
TG_PID=$!
pid_remember "$TG_PID"
wait_line "$TG_LOG" "routing by the database" 10 "$TG_PID" || {
	echo "reload.sh: tollgate did not come up:" >&2
	tail -n 30 "$TG_LOG" >&2
	exit 99
}

echo "# 1. a running call keeps gateway gwa, new calls go to gwb"
dial 4410 9000 5061 &
LONG=$!
pid_remember "$LONG"
for ((i = 0; i < 50; i++)); do
	[ "$(curl -s -m 5 -H "Authorization: Bearer $ADMIN" \
		"$API/v1/calls?state=confirmed" |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])' \
		2>/dev/null)" = 1 ] && break
	sleep 0.1
done
equal "the long call went to gwa" "$(invites gwa)" 1
for ((i = 0; i < 50; i++)); do
	[ "$(gwf gwb state)" = up ] && break
	sleep 0.1
done
equal "gwb is up by its probes" "$(gwf gwb state)" up
SINCE=$(gwf gwb since)

{ base
  echo "api_token $ADMIN admin"
  echo "log_level info"
  echo "gateway gwb 127.0.6.103:5080 probe=1 max_calls=5"
  echo "route 44 gwb"
} >"$CONF"
check "SIGHUP: the new configuration is applied" \
	hup "reload: 1 gateways, 1 routes" 5
check "new calls are routed by the new table" \
	wait_line "$TG_LOG" "routed by the new configuration" 5 "$TG_PID"
check "a new call is answered" dial 4411 200 5062
equal "it went to gwb" "$(invites gwb)" 1
equal "gwa had no other call" "$(invites gwa)" 1
equal "gwa is gone from the API" "$(status "$ADMIN" /v1/gateways/gwa)" 404
equal "gwb's max_calls from the new line" "$(gwf gwb max_calls)" 5
equal "gwb kept its state (up since before the reload)" \
	"$(gwf gwb state) $(gwf gwb since)" "up $SINCE"
equal "one reload counted" \
	"$(metric 'tollgate_config_reloads_total{result="ok"}')" 1
ts=$(metric tollgate_config_last_reload_success_timestamp_seconds)
within "last good reload is now" "$(( $(date +%s) - ${ts:-0} ))" 0 10
check "the long call ends normally (caller's BYE answered)" wait "$LONG"
check "gwa got the BYE of the long call" grep -q "^BYE sip" "$DIR/gwa.msg"
CDR=$(sql "SELECT gateway, reason, billed_seconds >= 8, answer_at IS NOT NULL
	   FROM cdrs WHERE callee = '4410'")
for ((i = 0; i < 50; i++)); do
	[ -n "$CDR" ] && break
	sleep 0.1
	CDR=$(sql "SELECT gateway, reason, billed_seconds >= 8,
		   answer_at IS NOT NULL FROM cdrs WHERE callee = '4410'")
done
equal "the long call's CDR names gwa, the caller, its time" "$CDR" "gwa|caller|t|t"

echo "# 2. a bad file changes nothing"
cp "$CONF" "$DIR/good.conf"
{ cat "$DIR/good.conf"; echo "route 55 nosuch"; } >"$CONF"
badline=$(wc -l <"$CONF")
check "SIGHUP: the bad file is refused" hup "is not valid: nothing changed" 5
check "the log names FILE:LINE" \
	grep -qF "reload: $CONF:$badline:" "$TG_LOG"
equal "a failed reload counted" \
	"$(metric 'tollgate_config_reloads_total{result="failed"}')" 1
check "a call still goes" dial 4412 200 5063
equal "to gwb" "$(invites gwb)" 2
equal "the daemon is healthy" "$(status "$ADMIN" /v1/health)" 200

echo "# 3-5. fixed keys kept, tokens and log level changed"
{ base | sed -e 's/^sip_listen .*/sip_listen udp:127.0.6.100:5070/' \
	     -e 's/^node_name .*/node_name reload-other/'
  echo "api_token $ADMIN2 admin"
  echo "log_level debug"
  echo "gateway gwb 127.0.6.103:5080 probe=1"
  echo "route 44 gwb"
} >"$CONF"
n=$(wc -l <"$TG_LOG")
check "SIGHUP: the rest is applied" hup "reload: 1 gateways, 1 routes" 5
check "sip_listen is named and kept" grep -qF \
	"reload: sip_listen cannot change while running; keeping udp:127.0.6.100:5060" "$TG_LOG"
check "node_name is named and kept" grep -qF \
	"reload: node_name cannot change while running; keeping reload-test" "$TG_LOG"
equal "the removed token gets 401" "$(status "$ADMIN" /v1/health)" 401
equal "the new token works" "$(status "$ADMIN2" /v1/health)" 200
TOKEN=$ADMIN2
equal "the node keeps its name" "$(metric 'tollgate_node_info{node="reload-test"}')" 1
check "calls still come on the old address" dial 4413 200 5064
equal "to gwb" "$(invites gwb)" 3
check "debug lines are logged now" \
	sh -c "tail -n +$((n + 1)) '$TG_LOG' | grep -q -- '-->'"

pid_stop "$TG_PID" 30
equal "tollgate exits 0 on SIGTERM" "$?" 0
TG_PID=

summary
