#!/usr/bin/env bash
# Class-4 routing end to end: number translation in and out, carriers'
# cost decks, least-cost routing with failover, the margin guard, the
# CDR's class-4 fields, and the errors of the configuration and the API.
#
# A private PostgreSQL (tests/lib/pgtest.sh), the daemon with billing,
# SIPp as the caller and as four gateways, curl against the REST API.
#
#   1. translation: national numbers to E.164 before routing and rating,
#      each gateway gets its own format (Request-URI and To), the CDR
#      keeps both numbers
#   2. LCR: the cheapest carrier first, a carrier without a valid deck
#      for the number skipped, failover to the next on 503
#   3. margin guard: a call every carrier would carry at a loss gets 503
#      with its Reason, reaches no gateway, has one CDR, costs nothing
#   4. errors: a bad configuration line names FILE:LINE; bad deck CSV or
#      JSON and a bad number rule get 400 naming the line and field
#
# Addresses (127.0.5.10-39): tollgate SIP 127.0.5.10:5060 and API
# 127.0.5.10:8080, SIPp caller 127.0.5.11, gateways gwa 127.0.5.13
# (carrier alpha), gwb 127.0.5.14 (beta), gwc 127.0.5.15 (gamma), gwd
# 127.0.5.16 (no carrier), port 5080.  Every process started here is
# ended by its PID.
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
[ -x "$TG" ] || { echo "lcr.sh: $TG not built" >&2; exit 99; }
[ -n "$SIPP" ] || { echo "lcr.sh: sipp not found" >&2; exit 77; }
command -v curl >/dev/null || { echo "lcr.sh: no curl" >&2; exit 77; }

TEST_KEEP=${LCR_KEEP:-}
# shellcheck source=../lib/check.sh
. "$top_srcdir/tests/lib/check.sh"
# shellcheck source=../lib/pgtest.sh
. "$top_srcdir/tests/lib/pgtest.sh"
test_init lcr || exit 99
pgtest_start || exit 99

DIR=$TEST_DIR
CONF="$DIR/tg.conf"
TG_PID=
API=http://127.0.5.10:8080
ADMIN=lcr-test-admin-token-0123456789abcdef
UNIT=1000000

declare -A GW_IP=([gwa]=127.0.5.13 [gwb]=127.0.5.14 [gwc]=127.0.5.15
		  [gwd]=127.0.5.16)

# line PATTERN: the number of the configuration line matching PATTERN
line() { grep -n -- "$1" "$CONF" | head -n 1 | cut -d: -f1; }

# dial NUMBER [CALLER] [GW=503...]: call NUMBER from alice; prints the
# gateways called, in the order called, each with the Request-URI and
# To numbers it saw ("gwb:+4420...:+4420..."), "none" if none was,
# "no answer" if the caller's scenario failed.  Gateways named GW=503
# answer 503.  Sets nothing: run by "$(...)".
dial() {
	local n=$1 sc=${2:-$here/caller.xml} gw pids="" caller out="" f
	shift 2 2>/dev/null || shift $#
	DIALS=$(($(cat "$DIR/dials" 2>/dev/null || echo 0) + 1))
	echo "$DIALS" >"$DIR/dials"
	for gw in gwa gwb gwc gwd; do
		f=$here/lcr-gw.xml
		case " $* " in *" $gw=503 "*) f=$here/lcr-gw-503.xml ;; esac
		"$SIPP" -nostdin -i "${GW_IP[$gw]}" -p 5080 -sf "$f" \
			-m 1 -timeout 15 -timeout_error -trace_logs \
			-log_file "$DIR/$DIALS-$gw.log" \
			>"$DIR/$DIALS-$gw.out" 2>&1 </dev/null &
		pids="$pids $!"
	done
	sleep 0.2
	"$SIPP" -nostdin -i 127.0.5.11 -p 5061 -sf "$sc" \
		-s "$n" -m 1 -timeout 10 -timeout_error -trace_logs \
		-log_file "$DIR/$DIALS-caller.log" \
		127.0.5.10:5060 >"$DIR/$DIALS-caller.out" 2>&1 </dev/null
	caller=$?
	sleep 0.3
	for gw in $pids; do pid_stop "$gw"; done
	# the order the gateways were called in: tollgate's log
	for gw in $(grep -o "to gateway [a-z]* " "$TG_LOG" |
		    tail -n +"$(($(cat "$DIR/invites" 2>/dev/null || echo 0) + 1))" |
		    awk '{print $3}'); do
		f=$(sed -n 's/.*CALLED \([^ ]*\) TO \([^ ]*\).*/\1:\2/p' \
			"$DIR/$DIALS-$gw.log" 2>/dev/null | head -n 1)
		out="${out:+$out,}$gw:$f"
	done
	grep -c "to gateway [a-z]* " "$TG_LOG" >"$DIR/invites"
	if [ "$caller" != 0 ]; then
		echo "no answer"
	else
		echo "${out:-none}"
	fi
}

# last_cdr N FIELDS: once there are N CDRs (5 s at most), the newest
# one's fields
last_cdr() {
	local i
	for i in $(seq 1 50); do
		[ "$(sql "SELECT count(*) FROM cdrs")" -ge "$1" ] && break
		sleep 0.1
	done
	sql "SELECT $2 FROM cdrs ORDER BY id DESC LIMIT 1"
}

start() {
	TG_LOG="$DIR/tollgate.log"
	"$TG" -f "$CONF" >"$TG_LOG" 2>&1 &
	TG_PID=$!
	pid_remember "$TG_PID"
	wait_line "$TG_LOG" "routing by the database" 10 "$TG_PID" && return 0
	echo "lcr.sh: tollgate did not come up:" >&2
	tail -n 30 "$TG_LOG" >&2
	exit 99
}

stop() {
	local rc
	pid_stop "$TG_PID" 30
	rc=$?
	TG_PID=
	equal "tollgate exits 0 on SIGTERM" "$rc" 0
}

# the customer: 0.02 a minute by the minute to 44, 49 and 33
sql "INSERT INTO rate_plans (name) VALUES ('lcr-test');
     INSERT INTO rates (rate_plan_id, prefix, connect_fee, price_per_minute,
			initial_increment, subsequent_increment)
     SELECT id, p, 0, 20000, 60, 60 FROM rate_plans,
	    (VALUES ('44'), ('49'), ('33')) AS r(p) WHERE name = 'lcr-test';
     INSERT INTO accounts (name, balance, max_calls, rate_plan_id)
     SELECT 'alice', 100 * $UNIT, 10, id FROM rate_plans
      WHERE name = 'lcr-test'" >/dev/null || exit 99

mkdir -p "$DIR/state"
cat >"$CONF" <<EOF
sip_listen udp:127.0.5.10:5060
trusted_peer 127.0.5.11 from
digest_auth no
db_conninfo $PGTEST_CONNINFO
rtp_relay no
media_timeout 0
state_dir $DIR/state
node_name lcr-test
reserve_interval 2
heartbeat 1
shutdown_grace 2
log_level info
api_listen 127.0.5.10:8080
api_token $ADMIN admin
api_max_body 4194304
gateway gwa 127.0.5.13:5080 carrier=alpha
gateway gwb 127.0.5.14:5080 transport=udp carrier=beta
gateway gwc 127.0.5.15:5080 carrier=gamma
gateway gwd 127.0.5.16:5080
number_in account=alice match=8 len=4-4 strip=1 prefix=4470
number_in peer=127.0.5.12 match=7 prefix=4470
number_in match=0 national=44
number_out gateway=gwd match=44 strip=2 prefix=0
number_out gateway=gwb prefix=+
route 4470 gwd
route 44 lcr
route 49 lcr
EOF

echo "# 0. the configuration: tollgate -t, a bad line names FILE:LINE"
out=$("$TG" -t -f "$CONF" 2>&1)
equal "-t prints the number_in rule" \
	"$(echo "$out" | grep -c '^number_in match=0 national=44$')" 1
equal "-t prints a gateway's carrier" \
	"$(echo "$out" | grep -c '^gateway gwa 127.0.5.13:5080 transport=udp carrier=alpha$')" 1
equal "-t prints the lcr route" "$(echo "$out" | grep -c '^route 44 lcr$')" 1
cp "$CONF" "$DIR/bad.conf"
echo "number_in match=0 strip=x" >>"$DIR/bad.conf"
out=$("$TG" -t -f "$DIR/bad.conf" 2>&1)
check "a bad number_in line names its file and line" \
	grep -q "bad.conf:$(wc -l <"$DIR/bad.conf"): number_in: bad strip 'x'" \
	<<<"$out"
cp "$CONF" "$DIR/bad2.conf"
echo "gateway gwx 127.0.5.17:5080 carrier=a/b" >>"$DIR/bad2.conf"
out=$("$TG" -t -f "$DIR/bad2.conf" 2>&1)
check "a bad carrier= names its file and line" \
	grep -q "bad2.conf:$(wc -l <"$DIR/bad2.conf"): gateway: 'a/b' is not a valid carrier name" \
	<<<"$out"
cp "$CONF" "$DIR/bad3.conf"
echo "number_out gateway=nosuch prefix=00" >>"$DIR/bad3.conf"
out=$("$TG" -t -f "$DIR/bad3.conf" 2>&1)
check "number_out of an unknown gateway names its line" \
	grep -q "bad3.conf:$(wc -l <"$DIR/bad3.conf"): number_out: unknown gateway 'nosuch'" \
	<<<"$out"

start

echo "# decks: alpha by CSV, beta and gamma by JSON"
code=$(curl -s -m 20 -o "$DIR/body" -w '%{http_code}' -X POST \
	-H "Authorization: Bearer $ADMIN" -H "Content-Type: text/csv" \
	--data-binary $'prefix,price_per_minute,initial_increment,subsequent_increment\n44,0.0100,1,1\n49,0.0300,1,1\n' \
	"$API/v1/carriers/alpha/deck?preference=2")
equal "POST alpha's deck as CSV: 201" "$code" 201
equal "its preference" "$(sql "SELECT preference FROM carriers WHERE name = 'alpha'")" 2
BODY=$(cat "$DIR/body")
equal "the import counts its prices" "$(jget prices)" 2
req POST /v1/carriers/beta/deck '{"preference":1,"rates":[{"prefix":"44","price_per_minute":"0.0080","initial_increment":60,"subsequent_increment":60}]}'
equal "POST beta's deck as JSON: 201" "$CODE" 201
# gamma: 44 only in the past, 49 dearer than the customer pays
req POST /v1/carriers/gamma/deck '{"rates":[{"prefix":"44","price_per_minute":"0.0010","valid_from":"2020-01-01T00:00:00Z","valid_to":"2021-01-01T00:00:00Z"},{"prefix":"49","price_per_minute":"0.0500","initial_increment":1,"subsequent_increment":1}]}'
equal "POST gamma's deck: 201" "$CODE" 201
req GET /v1/carriers
equal "GET /v1/carriers: names, preferences, prices, gateways" \
	"$(python3 -c 'import json,sys
print(" ".join("%s/%s/%s/%s/%s" % (c["name"], c["preference"], c["prices"],
	c["prices_valid"], c["gateways"]) for c in json.loads(sys.argv[1])["carriers"]))' "$BODY")" \
	"alpha/2/2/2/gwa beta/1/1/1/gwb gamma/0/2/1/gwc"
check "the decks are in memory (gamma's lapsed price left out)" \
	grep -q 'routing by the database: .* 3 carriers (4 prices)' "$TG_LOG"

echo "# 1. translation in and out"
equal "0 7012345 is +44 7012345; gwd gets 07012345 in R-URI and To" \
	"$(dial 07012345)" "gwd:07012345:07012345"
equal "its CDR: dialled, normalised, callee" \
	"$(last_cdr 1 "dialled || '|' || normalised || '|' || callee || '|' || gateway || '|' || coalesce(carrier, '-')")" \
	"07012345|447012345|447012345|gwd|-"
equal "+44 7012345 as dialled is kept, normalised without '+'" \
	"$(dial +447012345)" "gwd:07012345:07012345"
equal "its CDR's numbers" "$(last_cdr 2 "dialled || '|' || normalised")" \
	"+447012345|447012345"

equal "alice's own rule: 8123 is 44 70 123" "$(dial 8123)" "gwd:070123:070123"
equal "its CDR" "$(last_cdr 3 "dialled || '|' || normalised")" "8123|4470123"
equal "its length bound: 81234 is no number of that rule (404)" \
	"$(dial 81234 "$here/caller-404.xml")" "none"
equal "a rule for another peer network does not apply (404)" \
	"$(dial 7123 "$here/caller-404.xml")" "none"

echo "# 2. least-cost routing"
equal "beta is cheapest for 44 (a minute costs 0.008), it gets +44..." \
	"$(dial 02012345678)" "gwb:+442012345678:+442012345678"
equal "its CDR: carrier beta, its cost and the margin (one minute)" \
	"$(last_cdr 4 "carrier || '|' || carrier_cost || '|' || margin || '|' || cost")" \
	"beta|8000|12000|20000"
equal "gamma's lapsed 44 price is not used; beta full: alpha next" \
	"$(dial 02012345678 "$here/caller.xml" gwb=503)" \
	"gwb:+442012345678:+442012345678,gwa:442012345678:442012345678"
equal "the CDR names the carrier that carried it" \
	"$(last_cdr 5 "gateway || '|' || carrier || '|' || carrier_cost || '|' || margin")" \
	"gwa|alpha|167|19833"

echo "# per-carrier series: the sums of their gateways'"
curl -s -m 10 -H "Authorization: Bearer $ADMIN" "$API/metrics" \
	>"$DIR/metrics" 2>/dev/null
cm() { grep -F "$1 " "$DIR/metrics" | head -n 1 | awk '{print $2}'; }
equal "beta: 2 INVITEs, 1 answered, ASR 0.5" \
	"$(cm 'tollgate_carrier_attempts_total{carrier="beta"}')/$(cm 'tollgate_carrier_answered_total{carrier="beta"}')/$(cm 'tollgate_carrier_asr{carrier="beta"}')" \
	"2/1/0.500"
equal "alpha: 1 INVITE, answered, ASR 1" \
	"$(cm 'tollgate_carrier_attempts_total{carrier="alpha"}')/$(cm 'tollgate_carrier_asr{carrier="alpha"}')" \
	"1/1.000"
equal "beta's attempts are its gateway's" \
	"$(cm 'tollgate_gateway_attempts_total{gateway="gwb"}')" 2
check "beta's ACD is that of its answered call" \
	[ "$(cm 'tollgate_carrier_acd_seconds{carrier="beta"}')" = \
	  "$(cm 'tollgate_gateway_acd_seconds{gateway="gwb"}')" ]
equal "gwd has no carrier: no carrier series names it" \
	"$(grep -c 'tollgate_carrier_.*gwd' "$DIR/metrics")" 0

echo "# 3. margin guard"
last_cdr 5 id >/dev/null
bal=$(sql "SELECT balance FROM accounts WHERE name = 'alice'")
ncdr=$(sql "SELECT count(*) FROM cdrs")
equal "49: alpha and gamma cost more than alice pays: nothing called" \
	"$(dial 004930123 "$here/lcr-caller-503.xml")" "none"
check "the caller got 503 with Q.850 cause 34" \
	grep -q 'FINAL 503 reason= *Q.850;cause=34;text="no carrier within the margin"' \
	"$DIR/$(cat "$DIR/dials")-caller.log"
equal "its reason, code and cost" \
	"$(last_cdr 6 "reason || '|' || sip_code || '|' || cost || '|' || normalised || '|' || coalesce(gateway, '-')")" \
	"no_margin|503|0|4930123|-"
sleep 0.5
equal "exactly one CDR more" "$(sql "SELECT count(*) FROM cdrs")" \
	$((ncdr + 1))
equal "no reservation is left" "$(sql "SELECT count(*) FROM live_calls")" 0
equal "the balance is unchanged" \
	"$(sql "SELECT balance FROM accounts WHERE name = 'alice'")" "$bal"

echo "# 4. the API: CDRs, number rules, bad bodies"
req GET "/v1/cdrs?limit=1"
equal "GET /v1/cdrs shows the class-4 fields" \
	"$(jget cdrs.0.dialled)/$(jget cdrs.0.normalised)/$(jget cdrs.0.reason)" \
	"004930123/4930123/no_margin"
code=$(curl -s -m 10 -o "$DIR/body" -w '%{http_code}' -X POST \
	-H "Authorization: Bearer $ADMIN" -H "Content-Type: text/csv" \
	--data-binary $'prefix,price_per_minute\n44,0.01\n45,abc\n' \
	"$API/v1/carriers/alpha/deck")
BODY=$(cat "$DIR/body")
equal "a bad CSV price: 400" "$code" 400
equal "it names the field" "$(jget field)" price_per_minute
check "it names the line" grep -q '"line 3: ' "$DIR/body"
req POST /v1/carriers/alpha/deck '{"rates":[{"prefix":"44","price_per_minute":"0.01"},{"prefix":"4x","price_per_minute":"0.01"}]}'
equal "a bad JSON prefix: 400" "$CODE" 400
equal "it names the field" "$(jget field)" prefix
check "it names the row" grep -q 'rates\[1\]: ' "$DIR/body"
equal "a refused import leaves the deck alone" \
	"$(sql "SELECT count(*) FROM carrier_rates r JOIN carriers c ON c.id = r.carrier_id WHERE c.name = 'alpha'")" 2
req POST /v1/number_rules '{"direction":"in","rule":"match=0 strip=zz"}'
equal "a bad number rule: 400" "$CODE" 400
equal "it names the field" "$(jget field)" rule
req POST /v1/number_rules '{"direction":"in","rule":"match=9 strip=1 prefix=44","position":1}'
equal "POST a number rule: 201" "$CODE" 201
NR=$(jget id)
req GET /v1/number_rules
check "the rules list the config's and the API's" \
	grep -q '"rule":"match=9 strip=1 prefix=44"' "$TEST_DIR/body"
equal "the config's rules are listed with their file and line" \
	"$(python3 -c 'import json,sys
print(",".join(r["config"] for r in json.loads(sys.argv[1])["number_rules"]
	if r["origin"] == "config" and r["direction"] == "in"))' "$BODY")" \
	"$(grep -n '^number_in' "$CONF" | cut -d: -f1 |
	   sed "s#^#$(readlink -f "$CONF"):#" | paste -sd,)"
equal "the API rule is used at once: 9 7012345 is 44 7012345" \
	"$(dial 97012345)" "gwd:07012345:07012345"
equal "its CDR" "$(last_cdr 7 "dialled || '|' || normalised")" \
	"97012345|447012345"
req DELETE "/v1/number_rules/$NR"
equal "DELETE the API rule" "$CODE" 200
req POST /v1/routes '{"prefix":"33","mode":"lcr","gateway":"gwa"}'
equal "an lcr route with a gateway: 400" "$CODE/$(jget field)" 400/gateway
req POST /v1/carriers/gamma/deck '{"rates":[{"prefix":"49","price_per_minute":"0.0500","initial_increment":1,"subsequent_increment":1},{"prefix":"33","price_per_minute":"0.0010"}]}'
equal "gamma's deck replaced: 201" "$CODE/$(jget prices)" 201/2
req POST /v1/routes '{"prefix":"33","mode":"lcr"}'
equal "POST an lcr route for 33: 201" "$CODE/$(jget mode)" 201/lcr
R33=$(jget id)
req GET /v1/routes
equal "GET /v1/routes lists the lcr routes" \
	"$(python3 -c 'import json,sys
print(" ".join(r["prefix"] + "/" + r["origin"] for r in json.loads(sys.argv[1])["routes"]
	if r["mode"] == "lcr"))' "$BODY")" "33/api 44/config 49/config"
equal "00 33 123 goes to gamma, the only carrier for 33" \
	"$(dial 0033123)" "gwc:33123:33123"
equal "its CDR" "$(last_cdr 8 "carrier || '|' || dialled || '|' || normalised")" \
	"gamma|0033123|33123"
req DELETE "/v1/routes/$R33"
equal "DELETE the lcr route" "$CODE" 200
stop

summary
