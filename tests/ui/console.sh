#!/usr/bin/env bash
# The live calls page in a real browser: a private PostgreSQL
# (tests/lib/pgtest.sh), tollgate with billing, SIPp as caller and
# gateway, Debian's chromium headless driven by puppeteer-core
# (tests/ui/console.js).  Also the event stream and the page's headers
# with curl.
#
# Addresses: tollgate SIP 127.0.6.10:5060 and API 127.0.6.10:8080, SIPp
# caller 127.0.6.11, gateway 127.0.6.12:5080.  Every process started here
# is ended by its PID.
#
# puppeteer-core is found in TOLLGATE_UI_NODE_PATH (tools/quickstart.sh
# installs it with npm ci into var/ui-node).  Without chromium or the
# module the suite is skipped (77) unless TOLLGATE_REQUIRE_BROWSER=1.
set -u

here=$(cd "$(dirname "$0")" && pwd)
: "${top_srcdir:=$(cd "$here/../.." && pwd)}"
: "${top_builddir:=$PWD}"
: "${SIPP:=$(command -v sipp || true)}"
: "${CHROMIUM:=/usr/bin/chromium}"
: "${TOLLGATE_UI_NODE_PATH:=$top_srcdir/var/ui-node/node_modules}"
export top_srcdir top_builddir

skip() {
	if [ "${TOLLGATE_REQUIRE_BROWSER:-}" = 1 ]; then
		echo "console.sh: $1 (TOLLGATE_REQUIRE_BROWSER=1)" >&2
		exit 99
	fi
	echo "console.sh: $1: skipped" >&2
	exit 77
}

TG="$top_builddir/tollgate"
[ -x "$TG" ] || { echo "console.sh: $TG not built" >&2; exit 99; }
[ -n "$SIPP" ] || skip "sipp not found"
command -v curl >/dev/null || skip "no curl"
[ -x "$CHROMIUM" ] || skip "no $CHROMIUM"
command -v node >/dev/null || skip "no node"
[ -d "$TOLLGATE_UI_NODE_PATH/puppeteer-core" ] ||
	skip "no puppeteer-core in $TOLLGATE_UI_NODE_PATH"

TEST_KEEP=${UI_KEEP:-}
# shellcheck source=../lib/check.sh
. "$top_srcdir/tests/lib/check.sh"
# shellcheck source=../lib/pgtest.sh
. "$top_srcdir/tests/lib/pgtest.sh"
test_init console || exit 99
pgtest_start || exit 99

DIR=$TEST_DIR
API=http://127.0.6.10:8080
ADMIN=ui-test-admin-token-0123456789ab
RO=ui-test-readonly-token-9876543210

sipp_bg() {
	local name=$1 ip=$2 port=$3 sf=$4
	shift 4
	"$SIPP" -nostdin -i "$ip" -p "$port" -sf "$here/$sf" \
		-trace_logs -log_file "$DIR/$name.log" "$@" \
		>"$DIR/$name.out" 2>&1 </dev/null &
	SIPP_PID=$!
	pid_remember "$SIPP_PID"
}

cat >"$DIR/tg.conf" <<EOF
sip_listen udp:127.0.6.10:5060
trusted_peer 127.0.6.11 from
digest_auth no
gateway gwa 127.0.6.12:5080
route default gwa
db_conninfo $PGTEST_CONNINFO
rtp_relay no
media_timeout 0
state_dir $DIR/state
node_name ui-test
reserve_first 60
reserve_interval 60
low_balance_warning 0
heartbeat 1
shutdown_grace 2
api_listen 127.0.6.10:8080
api_token $ADMIN admin
api_token $RO readonly
api_max_event_streams 3
log_level info
EOF
mkdir -p "$DIR/state"

"$TG" -f "$DIR/tg.conf" >"$DIR/tollgate.log" 2>&1 &
TG_PID=$!
pid_remember "$TG_PID"
if ! wait_line "$DIR/tollgate.log" "routing by the database" 10 "$TG_PID"
then
	echo "console.sh: tollgate did not come up:" >&2
	tail -n 30 "$DIR/tollgate.log" >&2
	exit 99
fi

echo "# static assets and the event stream (curl)"
hdr() { curl -s -m 5 -D - -o /dev/null "$@"; }
H=$(hdr "$API/ui/")
check "/ui/ without a token: 200" grep -q '^HTTP/1.1 200' <<<"$H"
check "/ui/: CSP without inline script" \
	grep -qi "^Content-Security-Policy: default-src 'self'; script-src 'self';" <<<"$H"
check "/ui/: nosniff" grep -qi '^X-Content-Type-Options: nosniff' <<<"$H"
ETAG=$(sed -n 's/^ETag: \(.*\)\r$/\1/Ip' <<<"$H")
H=$(hdr -H "If-None-Match: $ETAG" "$API/ui/")
check "/ui/ with its ETag: 304" grep -q '^HTTP/1.1 304' <<<"$H"
H=$(hdr "$API/ui/console.js")
check "console.js: text/javascript" \
	grep -qi '^Content-Type: text/javascript' <<<"$H"
H=$(hdr "$API/ui/nothing.js")
check "an unknown asset: 404" grep -q '^HTTP/1.1 404' <<<"$H"
H=$(hdr "$API/v1/events")
check "/v1/events without a token: 401" grep -q '^HTTP/1.1 401' <<<"$H"

# three streams are allowed (api_max_event_streams 3): the fourth gets 503
SP=()
for i in 1 2 3; do
	curl -s -N -m 4 -H "Authorization: Bearer $RO" "$API/v1/events" \
		>"$DIR/stream$i" 2>/dev/null &
	SP+=($!)
	pid_remember $!
done
wait_line "$DIR/stream3" '^event: hello' 3
CODE=$(curl -s -m 3 -o /dev/null -w '%{http_code}' \
	-H "Authorization: Bearer $RO" "$API/v1/events")
equal "a fourth stream: 503" "$CODE" 503
check "a stream starts with hello" grep -q '^event: hello' "$DIR/stream1"
check "hello names the role" grep -q '"role":"readonly"' "$DIR/stream1"
wait_line "$DIR/stream1" '^event: stats' 3
check "stats come once a second" grep -q '^event: stats' "$DIR/stream1"
for p in "${SP[@]}"; do pid_stop "$p" 1; done

echo "# a call, watched in the browser"
req POST /v1/rates '{"rate_plan":"std","prefix":"","price_per_minute":"0.60","initial_increment":1,"subsequent_increment":1}'
equal "rate created" "$CODE" 201
PLAN=$(jget rate_plan_id)
req POST /v1/accounts "{\"name\":\"alice\",\"rate_plan_id\":$PLAN}"
equal "account created" "$CODE" 201
ALICE=$(jget id)
# 25 s at 0.60/min: the first reservation (reserve_first 60) takes it
# all, so seconds_left is the balance's and only a top-up moves it up
req POST "/v1/accounts/$ALICE/credit" '{"op":"add","amount":"0.25"}'
equal "credit 0.25" "$CODE" 200

# a stream of our own to look at the events the page got (the three
# above are gone once a write to them fails: within a second)
for i in 1 2 3 4 5; do
	curl -s -N -m 45 -H "Authorization: Bearer $ADMIN" "$API/v1/events" \
		>"$DIR/stream-admin" 2>/dev/null &
	EV_PID=$!
	pid_remember "$EV_PID"
	wait_line "$DIR/stream-admin" '^event: hello' 1 && break
	pid_stop "$EV_PID" 1
done

sipp_bg gw 127.0.6.12 5080 gw.xml -m 1 -timeout 45 -timeout_error
GW_PID=$SIPP_PID
sipp_bg caller 127.0.6.11 5061 caller.xml -key account alice \
	-s 4420123 -m 1 -timeout 45 -timeout_error 127.0.6.10:5060
CALLER_PID=$SIPP_PID
wait_line "$DIR/stream-admin" '^event: call_new' 5 ||
	fail "call_new on the stream"

mkdir -p "$DIR/browser"
UI_URL=$API ADMIN=$ADMIN RO=$RO CALLER=alice CALLEE=4420123 \
	ACCOUNT_ID=$ALICE OUT="$DIR/browser" CHROMIUM=$CHROMIUM \
	NODE_PATH=$TOLLGATE_UI_NODE_PATH \
	timeout 50 node "$here/console.js" >"$DIR/browser.out" 2>&1
BROWSER_RC=$?
while read -r line; do
	case $line in
	"ok - "*) ok "browser: ${line#ok - }" ;;
	"FAIL - "*) fail "browser: ${line#FAIL - }" ;;
	*) echo "$line" ;;
	esac
done <"$DIR/browser.out"
equal "the browser script ended well" "$BROWSER_RC" 0
check "a screenshot was saved" test -s "$DIR/browser/console.png"

# both legs got tollgate's BYE with the operator's Reason
pid_gone "$CALLER_PID" 10
pid_gone "$GW_PID" 10
check "caller got BYE (ended by operator)" \
	grep -q 'BYE 1 .*ended by operator' "$DIR/caller.log"
check "gateway got BYE (ended by operator)" \
	grep -q 'BYE 1 .*ended by operator' "$DIR/gw.log"
check "a CDR with reason admin" test "$(sql "SELECT count(*) FROM cdrs \
	WHERE account_id = $ALICE AND reason = 'admin'")" = 1

pid_stop "$EV_PID" 1
for ev in call_new call_update call_end account stats; do
	check "the stream carried $ev" grep -q "^event: $ev\$" \
		"$DIR/stream-admin"
done
check "call_end says why" \
	grep -q '^data: {"id":"[^"]*","reason":"admin"' "$DIR/stream-admin"
check "the account event has the new balance" \
	grep -qE '^data: \{"id":'"$ALICE"',"balance":"[0-9.]+","op":"add"' \
	"$DIR/stream-admin"

req GET /metrics
check "metrics: event streams counted" \
	grep -qE '^tollgate_api_event_streams_total\{result="refused"\} [1-9]' \
	<<<"$BODY"

summary
