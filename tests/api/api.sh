#!/usr/bin/env bash
# REST API end to end: a private PostgreSQL (tests/lib/pgtest.sh), the
# daemon, curl against every endpoint of docs/api.md, and SIPp as caller
# and gateways for the calls endpoints and live credit changes.
#
# Addresses: tollgate SIP 127.0.0.71:5060 and API 127.0.0.71:8080, SIPp
# caller 127.0.0.72, gateways 127.0.0.74 and 127.0.0.75 (port 5080).
# Every process started here is ended by its PID.
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
[ -x "$TG" ] || { echo "api.sh: $TG not built" >&2; exit 99; }
[ -n "$SIPP" ] || { echo "api.sh: sipp not found" >&2; exit 77; }
command -v curl >/dev/null || { echo "api.sh: no curl" >&2; exit 77; }

TEST_KEEP=${API_KEEP:-}
# shellcheck source=../lib/check.sh
. "$top_srcdir/tests/lib/check.sh"
# shellcheck source=../lib/pgtest.sh
. "$top_srcdir/tests/lib/pgtest.sh"
test_init api || exit 99
pgtest_start || exit 99

DIR=$TEST_DIR
TG_PID=
API=http://127.0.0.71:8080
ADMIN=api-test-admin-token-0123456789
RO=api-test-readonly-token-9876543

# req METHOD PATH [BODY] [CURL ARGS...]: sets CODE, BODY (admin token)
req() {
	local m=$1 p=$2 b=${3:-}
	shift 3 2>/dev/null || shift $#
	if [ -n "$b" ]; then
		set -- -H "Content-Type: ${CT:-application/json}" \
			--data-binary "$b" "$@"
	fi
	CODE=$(curl -s -m 10 -o "$DIR/body" -D "$DIR/hdrs" -w '%{http_code}' \
		-X "$m" -H "Authorization: Bearer ${TOKEN:-$ADMIN}" "$@" \
		"$API$p")
	BODY=$(cat "$DIR/body")
}

# jget KEY: a top-level scalar of BODY (strings without quotes)
jget() {
	python3 -c 'import json,sys
d=json.loads(sys.argv[1])
for k in sys.argv[2].split("."):
    d=d[int(k)] if isinstance(d,list) else d[k]
print("null" if d is None else (str(d).lower() if isinstance(d,bool) else d))' \
		"$BODY" "$1" 2>/dev/null
}

# expect DESCRIPTION STATUS [FIELD]: CODE and the error's field
expect() {
	local f
	if [ "$CODE" != "$2" ]; then
		fail "$1: status $CODE, want $2 ($BODY)"
		return
	fi
	if [ $# -ge 3 ]; then
		f=$(jget field)
		if [ "$f" != "$3" ]; then
			fail "$1: field '$f', want '$3' ($BODY)"
			return
		fi
		if [ -z "$(jget error)" ]; then
			fail "$1: no error message ($BODY)"
			return
		fi
	fi
	ok "$1 ($CODE${3:+ $3})"
}

sipp_bg() {
	local name=$1 ip=$2 port=$3 sf=$4
	shift 4
	"$SIPP" -bg -nostdin -i "$ip" -p "$port" -sf "$here/$sf" \
		-trace_logs -log_file "$DIR/$name.log" "$@" \
		>"$DIR/$name.out" 2>&1 </dev/null &
	SIPP_PID=$!
	pid_remember "$SIPP_PID"
}
sipp_fg() {
	local name=$1 ip=$2 port=$3 sf=$4
	shift 4
	"$SIPP" -nostdin -i "$ip" -p "$port" -sf "$here/$sf" \
		-trace_logs -log_file "$DIR/$name.log" "$@" \
		>"$DIR/$name.out" 2>&1 </dev/null &
	SIPP_PID=$!
	pid_remember "$SIPP_PID"
}

# call NAME ACCOUNT NUMBER TIMEOUT: one call from the caller, in the
# background; its PID in CALLER_PID
call() {
	sipp_fg "$1" 127.0.0.72 "${PORT:-5061}" caller.xml -key account "$2" \
		-s "$3" -m 1 -timeout "$4" -timeout_error 127.0.0.71:5060
	CALLER_PID=$SIPP_PID
}
gateway() {
	sipp_fg "$1" "$2" 5080 gw.xml -m "$3" -timeout "$4" -timeout_error
	GW_PID=$SIPP_PID
}

# wait_call ACCOUNT: the id of the account's confirmed call (10 s)
wait_call() {
	local i
	for i in $(seq 1 100); do
		req GET "/v1/calls?account=$1&state=confirmed"
		if [ "$(jget count)" = 1 ]; then
			jget calls.0.id
			return 0
		fi
		sleep 0.1
	done
	return 1
}

cat >"$DIR/tg.conf" <<EOF
sip_listen udp:127.0.0.71:5060
trusted_peer 127.0.0.72 from
digest_auth no
gateway gwa 127.0.0.74:5080
route default gwa
db_conninfo $PGTEST_CONNINFO
rtp_relay no
media_timeout 0
state_dir $DIR/state
node_name api-test
reserve_interval 2
low_balance_warning 0
heartbeat 1
shutdown_grace 2
api_listen 127.0.0.71:8080
api_token $ADMIN admin
api_token $RO readonly
api_open_metrics yes
api_max_body 1024
log_level info
EOF
mkdir -p "$DIR/state"

"$TG" -f "$DIR/tg.conf" >"$DIR/tollgate.log" 2>&1 &
TG_PID=$!
pid_remember "$TG_PID"
if ! wait_line "$DIR/tollgate.log" "routing by the database" 10 "$TG_PID"
then
	echo "api.sh: tollgate did not come up:" >&2
	tail -n 30 "$DIR/tollgate.log" >&2
	exit 99
fi


echo "# health, metrics, auth"
req GET /v1/health
expect "health with a token" 200
equal "health: database reachable" "$(jget database.reachable)" true
equal "health: sip up" "$(jget sip.up)" true
equal "health: status ok" "$(jget status)" ok
TOKEN=nope req GET /v1/health
expect "health is not open by this config" 401 Authorization
check "401 carries WWW-Authenticate" grep -qi '^WWW-Authenticate: Bearer' \
	"$DIR/hdrs"
CODE=$(curl -s -o "$DIR/body" -w '%{http_code}' "$API/metrics")
BODY=$(cat "$DIR/body")
equal "metrics open without a token" "$CODE" 200
check "metrics: calls active" grep -q '^tollgate_calls_active 0$' "$DIR/body"
check "metrics: calls total by outcome" \
	grep -q '^tollgate_calls_total{outcome="admin"} 0$' "$DIR/body"
check "metrics: database latency" \
	grep -q '^tollgate_db_latency_seconds_count [0-9]' "$DIR/body"
check "metrics: database batches" \
	grep -q '^tollgate_db_batched_queries_total [0-9]' "$DIR/body"
check "metrics: HELP and TYPE lines" \
	grep -q '^# TYPE tollgate_cutoffs_total counter' "$DIR/body"
check "metrics: the spool can be written" \
	grep -q '^tollgate_billing_spool_ok 1$' "$DIR/body"
check "metrics: no dead letters" \
	grep -q '^tollgate_billing_dead_letters_total 0$' "$DIR/body"
check "metrics: the spool's syncs" \
	grep -q '^tollgate_billing_spool_sync_seconds_count [1-9]' "$DIR/body"
CODE=$(curl -s -o "$DIR/body" -w '%{http_code}' "$API/v1/calls")
BODY=$(cat "$DIR/body")
expect "no token" 401 Authorization
TOKEN=wrong-token-wrong-token req GET /v1/calls
expect "wrong token" 401 Authorization
TOKEN=$RO req GET /v1/calls
expect "readonly token reads" 200
TOKEN=$RO req POST /v1/accounts '{"name":"ro"}'
expect "readonly token cannot write" 403 Authorization
req GET /v1/nothing
expect "unknown path" 404 null
req PUT /v1/calls
expect "wrong method" 405 null
check "405 carries Allow" grep -qi '^Allow: GET, HEAD' "$DIR/hdrs"
req DELETE /v1/accounts
expect "DELETE on the account list" 405 null
CT=text/plain req POST /v1/accounts 'name=x'
expect "text/plain body" 415 Content-Type
req POST /v1/accounts "{\"name\":\"$(head -c 2000 /dev/zero | tr '\0' a)\"}"
expect "body over api_max_body" 413 null
equal "nothing created by refused requests" \
	"$(sql "SELECT count(*) FROM accounts")" 0


echo "# rates"
req POST /v1/rates '{"rate_plan":"std","prefix":"","price_per_minute":"1.20","initial_increment":1,"subsequent_increment":1}'
expect "create a rate" 201
PLAN=$(jget rate_plan_id)
equal "rate: price as given" "$(jget price_per_minute)" 1.20
equal "rate: connect fee defaults to 0" "$(jget connect_fee)" 0.00
req POST /v1/rates '{"rate_plan":"std","prefix":"","price_per_minute":"1.20"}'
expect "the same rate twice" 409 prefix
req POST /v1/rates '{"rate_plan":"std","prefix":"44","price_per_minute":"1.2345678"}'
expect "price with 7 decimals" 400 price_per_minute
req POST /v1/rates '{"rate_plan":"std","prefix":"44","price_per_minute":"-1"}'
expect "negative price" 400 price_per_minute
req POST /v1/rates '{"rate_plan":"std","prefix":"44","price_per_minute":1.5}'
expect "price as a JSON number" 400 price_per_minute
req POST /v1/rates '{"rate_plan":"std","prefix":"4x","price_per_minute":"1"}'
expect "prefix with a letter" 400 prefix
req POST /v1/rates '{"rate_plan":"std","prefix":"44","price_per_minute":"1","colour":"red"}'
expect "unknown field" 400 colour
req POST /v1/rates '{"rate_plan":"std","prefix":"44","price_per_minute":"1","initial_increment":"60"}'
expect "increment as a string" 400 initial_increment
req POST /v1/rates '{"rate_plan":"std","prefix":"44","price_per_minute":"0.5","valid_from":"2020-01-01T00:00:00Z"}'
expect "rate with valid_from" 201
RATE44=$(jget id)
req GET "/v1/rates?rate_plan_id=$PLAN"
expect "list rates" 200
equal "two rates in the plan" "$(jget rates.1.prefix)" 44
req GET "/v1/rates?rate_plan_id=x"
expect "rate_plan_id not a number" 400 rate_plan_id
req DELETE "/v1/rates/$RATE44"
expect "delete a rate" 200
req DELETE "/v1/rates/$RATE44"
expect "delete it again" 404 id
equal "rate gone" "$(sql "SELECT count(*) FROM rates WHERE id = $RATE44")" 0


echo "# accounts"
req POST /v1/accounts "{\"name\":\"alice\",\"rate_plan_id\":$PLAN,\"max_calls\":5}"
expect "create an account" 201
ALICE=$(jget id)
equal "new account: balance 0.00" "$(jget balance)" 0.00
equal "new account: max_calls" "$(jget max_calls)" 5
req POST /v1/accounts '{"name":"alice"}'
expect "duplicate name" 409 name
req POST /v1/accounts '{"name":"bad name"}'
expect "name with a blank" 400 name
req POST /v1/accounts '{"name":"x","status":"sleeping"}'
expect "unknown status" 400 status
req POST /v1/accounts '{"name":"x","rate_plan_id":424242}'
expect "unknown rate plan" 400 rate_plan_id
req POST /v1/accounts '{"name":'
expect "malformed JSON" 400 null
req POST /v1/accounts '[1,2]'
expect "JSON array" 400 null
req POST /v1/accounts '{"name":"x","name":"y"}'
expect "field given twice" 400 name
req GET "/v1/accounts/$ALICE"
expect "get an account" 200
equal "account: reserved 0.00" "$(jget reserved)" 0.00
equal "account: no live calls" "$(jget live_calls)" 0
req GET /v1/accounts/424242
expect "unknown account" 404 id
req GET /v1/accounts/abc
expect "account id not a number" 404 id
req GET /v1/accounts
expect "list accounts" 200
equal "list: alice" "$(jget accounts.0.name)" alice
req GET "/v1/accounts?limit=0"
expect "limit 0" 400 limit
req PATCH "/v1/accounts/$ALICE" '{"max_calls":7}'
expect "patch max_calls" 200
equal "max_calls now 7" "$(jget max_calls)" 7
req PATCH "/v1/accounts/$ALICE" '{}'
expect "empty patch" 400 null
req PATCH "/v1/accounts/$ALICE" '{"max_calls":-1}'
expect "negative max_calls" 400 max_calls
req PATCH "/v1/accounts/$ALICE" '{"sip_password":"pw"}'
expect "password without user name" 400 sip_password
req PATCH "/v1/accounts/$ALICE" '{"sip_username":"alice1","sip_password":"s3cret"}'
expect "set SIP credentials" 200
equal "HA1 stored, not the password" \
	"$(sql "SELECT sip_ha1 = md5('alice1:tollgate:s3cret') FROM accounts WHERE id = $ALICE")" t
equal "password flagged as set" "$(jget sip_password_set)" true
req PATCH /v1/accounts/424242 '{"max_calls":1}'
expect "patch unknown account" 404 id
req PATCH "/v1/accounts/$ALICE" '{"name":"bob"}'
expect "patch the name (not allowed)" 400 name


echo "# credit"
bal() { sql "SELECT balance FROM accounts WHERE id = $1"; }
req POST "/v1/accounts/$ALICE/credit" '{"op":"add","amount":"10.00"}'
expect "add 10.00" 200
equal "new balance in the reply" "$(jget balance)" 10.00
equal "balance in micro-units" "$(bal "$ALICE")" 10000000
for bad in '{"op":"add","amount":"1.0000001"}:amount' \
	   '{"op":"add","amount":"-5"}:amount' \
	   '{"op":"add","amount":"abc"}:amount' \
	   '{"op":"add","amount":"1e3"}:amount' \
	   '{"op":"add","amount":5}:amount' \
	   '{"op":"add","amount":"0"}:amount' \
	   '{"op":"add","amount":"99999999999999999999"}:amount' \
	   '{"op":"mul","amount":"1"}:op' \
	   '{"op":"add"}:amount' \
	   '{"op":"add","amount":"1","why":"x"}:why'; do
	req POST "/v1/accounts/$ALICE/credit" "${bad%:*}"
	expect "credit ${bad%:*}" 400 "${bad##*:}"
done
req POST "/v1/accounts/$ALICE/credit" '{"op":"add","amount":"1.0"'
expect "credit with malformed JSON" 400 null
equal "no bad request changed the balance" "$(bal "$ALICE")" 10000000
req POST "/v1/accounts/$ALICE/credit" '{"op":"add","amount":"0.000001"}' \
	-H 'Idempotency-Key: k-1'
expect "add with a key" 200
equal "applied" "$(jget replayed)" false
req POST "/v1/accounts/$ALICE/credit" '{"op":"add","amount":"0.000001"}' \
	-H 'Idempotency-Key: k-1'
expect "the same request again" 200
equal "answered as a replay" "$(jget replayed)" true
equal "the replay says the first balance" "$(jget balance)" 10.000001
equal "applied once" "$(bal "$ALICE")" 10000001
req POST "/v1/accounts/$ALICE/credit" '{"op":"add","amount":"5"}' \
	-H 'Idempotency-Key: k-1'
expect "the key with another amount" 409 Idempotency-Key
equal "nothing changed" "$(bal "$ALICE")" 10000001
req POST /v1/accounts/424242/credit '{"op":"add","amount":"1"}' \
	-H 'Idempotency-Key: k-2'
expect "credit of an unknown account" 404 id
req POST "/v1/accounts/$ALICE/credit" '{"op":"set","amount":"3.50"}'
expect "set 3.50" 200
equal "balance 3.50" "$(jget balance)" 3.50
equal "set in the database" "$(bal "$ALICE")" 3500000


echo "# gateways and routes, reloaded while running"
req GET /v1/gateways
expect "list gateways" 200
equal "gwa seeded from the configuration" "$(jget gateways.0.name)" gwa
equal "its address" "$(jget gateways.0.address)" 127.0.0.74:5080
req GET /v1/routes
equal "default route seeded" \
	"$(jget routes.0.gateway)/$(jget routes.0.prefix)" gwa/
req POST /v1/gateways '{"name":"gwb","address":"127.0.0.75:5080"}'
expect "add gateway gwb" 201
GWB=$(jget id)
req POST /v1/gateways '{"name":"gwb","address":"127.0.0.75:5080"}'
expect "gateway name taken" 409 name
req POST /v1/gateways '{"name":"gwc","address":"nowhere"}'
expect "gateway address not an address" 400 address
req POST /v1/gateways '{"name":"gwc","address":"127.0.0.75:5080","transport":"sctp"}'
expect "unknown transport" 400 transport
req POST /v1/routes '{"prefix":"99","gateway":"gwb"}'
expect "route 99 to gwb" 201
R99=$(jget id)
req POST /v1/routes '{"prefix":"99","gateway":"gwb"}'
expect "the same route again" 409 prefix
req POST /v1/routes '{"prefix":"98","gateway":"nope"}'
expect "route to an unknown gateway" 400 gateway
gateway gwb 127.0.0.75 1 15
sleep 0.3
PORT=5062 call route99 alice 9912 15
CID=$(wait_call alice)
check "a call to 99.. is up" test -n "$CID"
req GET "/v1/calls/$CID"
equal "it went to gwb" "$(jget gateway)" gwb
req DELETE "/v1/routes/$R99"
expect "delete route 99 mid-call" 200
req GET "/v1/calls/$CID"
equal "the call in progress keeps gwb" \
	"$(jget gateway)/$(jget state)" gwb/confirmed
req DELETE "/v1/calls/$CID"
expect "end it" 200
wait "$CALLER_PID"; wait "$GW_PID"
gateway gwa2 127.0.0.74 1 15
sleep 0.3
PORT=5063 call route99b alice 9913 15
CID=$(wait_call alice)
req GET "/v1/calls/$CID"
equal "without route 99 a new call takes the default" "$(jget gateway)" gwa
req DELETE "/v1/calls/$CID"
wait "$CALLER_PID"; wait "$GW_PID"
req DELETE "/v1/gateways/$GWB"
expect "delete gateway gwb" 200
req DELETE /v1/gateways/424242
expect "delete an unknown gateway" 404 id


echo "# calls"
req GET /v1/calls/nosuchcall
expect "unknown call" 404 id
req DELETE /v1/calls/nosuchcall
expect "end an unknown call" 404 id
req GET "/v1/calls?state=dancing"
expect "unknown state filter" 400 state
req POST "/v1/accounts/$ALICE/credit" '{"op":"set","amount":"100"}'
gateway gw-live 127.0.0.74 1 20
sleep 0.3
PORT=5064 call live alice 1000 20
CID=$(wait_call alice)
check "the call is listed" test -n "$CID"
sleep 2.2
req GET "/v1/calls?account=alice"
expect "list calls" 200
equal "one call of alice" "$(jget count)" 1
equal "account" "$(jget calls.0.account)" alice
equal "callee" "$(jget calls.0.callee)" 1000
equal "gateway" "$(jget calls.0.gateway)" gwa
check "live seconds (>= 2): $(jget calls.0.seconds)" \
	test "$(jget calls.0.seconds)" -ge 2
check "money spent so far (0.02 a second): $(jget calls.0.spent)" \
	python3 -c "import sys; s=float(sys.argv[1]); sys.exit(not 0.04 <= s <= 0.08)" "$(jget calls.0.spent)"
check "money reserved: $(jget calls.0.reserved)" \
	python3 -c "import sys; sys.exit(not float(sys.argv[1]) > 0)" "$(jget calls.0.reserved)"
check "seconds before the cut-off: $(jget calls.0.seconds_left)" \
	test "$(jget calls.0.seconds_left)" -ge 0
check "answer time" test "$(jget calls.0.answer_at)" != null
req GET "/v1/accounts/$ALICE"
equal "account: one live call" "$(jget live_calls)" 1
check "account: money reserved by the call" test "$(jget reserved)" != 0.00
TOKEN=$RO req DELETE "/v1/calls/$CID"
expect "readonly token cannot end a call" 403 Authorization
req DELETE "/v1/calls/$CID"
expect "end the call" 200
wait "$CALLER_PID"; wait "$GW_PID"
check "caller got BYE: ended by operator" \
	grep -q 'BYE 1 .*cause=200;text="ended by operator"' "$DIR/live.log"
check "gateway got BYE: ended by operator" \
	grep -q 'BYE 1 .*cause=200;text="ended by operator"' "$DIR/gw-live.log"
for i in $(seq 1 50); do
	[ "$(sql "SELECT count(*) FROM cdrs WHERE call_id = '$CID'")" = 1 ] &&
		break
	sleep 0.1
done
equal "CDR says admin" \
	"$(sql "SELECT reason FROM cdrs WHERE call_id = '$CID'")" admin


echo "# credit mid-call: the cut-off moves"
req POST /v1/accounts "{\"name\":\"carol\",\"rate_plan_id\":$PLAN}"
CAROL=$(jget id)
req POST "/v1/accounts/$CAROL/credit" '{"op":"set","amount":"0.10"}'
gateway gw-carol 127.0.0.74 1 30
sleep 0.3
PORT=5065 call carol carol 1000 30
CID=$(wait_call carol)
req GET "/v1/calls/$CID"
L1=$(jget seconds_left)
check "funded for 5 s at most: $L1 s left" test "${L1:-99}" -le 5
req POST "/v1/accounts/$CAROL/credit" '{"op":"add","amount":"1.00"}'
expect "add 1.00 mid-call" 200
# reservations go by reserve_interval (2 s): the call asks for more
# before each cut-off and now gets it
sleep 6.5
req GET "/v1/calls/$CID"
L2=$(jget seconds)
check "the cut-off moved later: up after $L2 s (was funded for 5 s)" \
	test "${L2:-0}" -ge 6
equal "the call is still up" "$(jget state)" confirmed
req POST "/v1/accounts/$CAROL/credit" '{"op":"set","amount":"0"}'
expect "set 0 mid-call" 200
equal "one call cut" "$(jget calls_cut)" 1
wait "$CALLER_PID"; wait "$GW_PID"
check "caller got BYE: credit" grep -q 'BYE 1 .*cause=16' "$DIR/carol.log"
check "gateway got BYE: credit" grep -q 'BYE 1 .*cause=16' "$DIR/gw-carol.log"
req GET "/v1/calls?account=carol"
equal "no call of carol left" "$(jget count)" 0


echo "# blocking an account cuts its calls"
req POST "/v1/accounts/$CAROL/credit" '{"op":"set","amount":"10"}'
gateway gw-block 127.0.0.74 1 30
sleep 0.3
PORT=5066 call block carol 1000 30
CID=$(wait_call carol)
req PATCH "/v1/accounts/$CAROL" '{"status":"blocked"}'
expect "block carol mid-call" 200
wait "$CALLER_PID"; wait "$GW_PID"
check "caller got BYE: account blocked" grep -q 'BYE 1 .*account blocked' \
	"$DIR/block.log"


echo "# CDRs"
for i in $(seq 1 50); do
	[ "$(sql "SELECT count(*) FROM live_calls")" = 0 ] && break
	sleep 0.1
done
req GET "/v1/cdrs?account=$ALICE"
expect "CDRs of alice" 200
equal "alice has 3 CDRs" "$(python3 -c 'import json,sys; print(len(json.loads(sys.argv[1])["cdrs"]))' "$BODY")" 3
req GET "/v1/cdrs?limit=2"
expect "first page of 2" 200
C1=$(jget cdrs.0.id); C2=$(jget cdrs.1.id); CUR=$(jget next_cursor)
check "newest first" test "$C1" -gt "$C2"
req GET "/v1/cdrs?limit=2&cursor=$CUR"
expect "second page" 200
C3=$(jget cdrs.0.id)
check "the second page starts after the first ($C2 > $C3)" test "$C2" -gt "$C3"
req GET "/v1/cdrs?from=2000-01-01&to=2000-01-02"
equal "nothing in 2000" "$(jget cdrs)" "[]"
req GET "/v1/cdrs?cursor=garbage"
expect "bad cursor" 400 cursor
req GET "/v1/cdrs?from=yesterday"
expect "bad from" 400 from
req GET "/v1/cdrs?limit=1001"
expect "limit over 1000" 400 limit
req GET "/v1/cdrs?account=x"
expect "account not a number" 400 account

req GET /v1/health
equal "health: no calls left" "$(jget sip.calls)" 0
CODE=$(curl -s -o "$DIR/body" -w '%{http_code}' "$API/metrics")
check "metrics count the admin end" \
	grep -q '^tollgate_calls_total{outcome="admin"} [1-9]' "$DIR/body"

pid_stop "$TG_PID" 30
rc=$?
TG_PID=
equal "tollgate exits cleanly" "$rc" 0

summary
