#!/usr/bin/env bash
# Identity hygiene and fraud limits, tried from addresses tollgate does not
# trust: the dialled number is normalised before routing and rating, a
# trusted peer pinned to a port is trusted from that port only, a digest
# caller asserts no identity of its own choosing, bytes from the wire
# never forge a log line nor reach the database, and an account's daily
# spend cap and restricted destinations are enforced with their Reason.
#
# A private PostgreSQL (tests/lib/pgtest.sh), the daemon with billing and
# the API, a small Python SIP peer (sippeer.py) as callers and gateways.
#
# Addresses: tollgate SIP 127.0.1.40:5060 and API 127.0.1.40:8080, the
# trusted peer 127.0.1.41 (pinned to udp port 5071), the digest callers
# 127.0.1.42, gateways gw1 127.0.1.43:5080 (default route) and gw2
# 127.0.1.44:5080 (route 1900).  Every process started here is ended by
# its PID.  Prints "N passed, M failed".
set -u

here=$(cd "$(dirname "$0")" && pwd)
: "${top_srcdir:=$(cd "$here/../.." && pwd)}"
: "${top_builddir:=$PWD}"
export top_srcdir top_builddir

TG="$top_builddir/tollgate"
PEER="$here/sippeer.py"
[ -x "$TG" ] || { echo "identity.sh: $TG not built" >&2; exit 99; }
command -v python3 >/dev/null || { echo "identity.sh: no python3" >&2; exit 77; }
command -v curl >/dev/null || { echo "identity.sh: no curl" >&2; exit 77; }

TEST_KEEP=${IDENTITY_KEEP:-}
# shellcheck source=../lib/check.sh
. "$top_srcdir/tests/lib/check.sh"
# shellcheck source=../lib/pgtest.sh
. "$top_srcdir/tests/lib/pgtest.sh"
test_init identity || exit 99
pgtest_start || exit 99

DIR=$TEST_DIR
TGA=127.0.1.40:5060
API=http://127.0.1.40:8080
ADMIN=identity-test-admin-token-0123456789
REALM=identity.test
TRUSTED=127.0.1.41
DIGEST=127.0.1.42
GW1=127.0.1.43
GW2=127.0.1.44
CPORT=5100

ha1() { printf '%s' "$1:$REALM:$2" | md5sum | cut -d' ' -f1; }

sql "INSERT INTO rate_plans (name) VALUES ('p')" >/dev/null || exit 99
RATE_DEF=$(sql "INSERT INTO rates (rate_plan_id, prefix, price_per_minute,
	initial_increment, subsequent_increment) VALUES (1, '', 60000, 1, 1)
	RETURNING id")
RATE_1=$(sql "INSERT INTO rates (rate_plan_id, prefix, price_per_minute,
	initial_increment, subsequent_increment) VALUES (1, '1', 120000, 1, 1)
	RETURNING id")
RATE_1900=$(sql "INSERT INTO rates (rate_plan_id, prefix, price_per_minute,
	initial_increment, subsequent_increment) VALUES (1, '1900', 900000, 1,
	1) RETURNING id")
sql "INSERT INTO accounts (name, balance, rate_plan_id, sip_username,
	sip_ha1) VALUES
	('dig', 100000000, 1, 'diguser', '$(ha1 diguser secret)'),
	('capped', 100000000, 1, 'capuser', '$(ha1 capuser secret)'),
	('peer', 100000000, 1, NULL, NULL)" >/dev/null || exit 99
DIG_ID=$(sql "SELECT id FROM accounts WHERE name = 'dig'")
CAP_ID=$(sql "SELECT id FROM accounts WHERE name = 'capped'")

cat >"$DIR/tg.conf" <<EOF
sip_listen udp:$TGA
trusted_peer $TRUSTED transport=udp port=5071 account=peer
sip_realm $REALM
digest_auth yes
copy_header P-Preferred-Identity
gateway gw1 $GW1:5080
gateway gw2 $GW2:5080
route default gw1
route 1900 gw2
db_conninfo $PGTEST_CONNINFO
rtp_relay no
media_timeout 0
state_dir $DIR/state
node_name identity-test
shutdown_grace 2
api_listen 127.0.1.40:8080
api_token $ADMIN admin
log_level info
EOF
mkdir -p "$DIR/state"

LOG="$DIR/tollgate.log"
"$TG" -f "$DIR/tg.conf" >"$LOG" 2>&1 &
TG_PID=$!
pid_remember "$TG_PID"
if ! wait_line "$LOG" "routing by the database" 10 "$TG_PID"; then
	echo "identity.sh: tollgate did not come up:" >&2
	tail -n 30 "$LOG" >&2
	exit 99
fi

# gw_start: both gateways, logging the INVITEs they get to gw1.log/gw2.log
GW_PIDS=()
gw_start() {
	local code=${1:-486}
	rm -f "$DIR/gw1.log" "$DIR/gw2.log"
	: >"$DIR/gw1.log"
	: >"$DIR/gw2.log"
	python3 "$PEER" gw $GW1 5080 "$DIR/gw1.log" "$code" 60 &
	GW_PIDS=($!)
	pid_remember "$!"
	python3 "$PEER" gw $GW2 5080 "$DIR/gw2.log" "$code" 60 &
	GW_PIDS+=($!)
	pid_remember "$!"
	wait_bound udp $GW1 5080 5 && wait_bound udp $GW2 5080 5
}
gw_stop() {
	local p
	for p in "${GW_PIDS[@]}"; do pid_stop "$p" 2 >/dev/null; done
	GW_PIDS=()
}

# dig NUMBER [options]: a call from the digest caller; prints the answer
dig() {
	local n=$1
	shift
	CPORT=$((CPORT + 1))
	python3 "$PEER" call $DIGEST $CPORT $TGA "$n" --user diguser \
		--password secret "$@"
}

# invites GW: how many INVITEs the gateway got
invites() { wc -l <"$DIR/$1.log" | tr -d ' '; }

# hdr GW NAME: the values of a header of the last INVITE GW got
hdr() {
	tail -n 1 "$DIR/$1.log" | python3 -c 'import json,sys
d=json.loads(sys.stdin.read())
print("\n".join(v for n,v in d["headers"] if n.lower()==sys.argv[1].lower()))' "$2"
}
ruri() {
	tail -n 1 "$DIR/$1.log" | python3 -c 'import json,sys
print(json.loads(sys.stdin.read())["uri"])'
}

gw_start || exit 99


echo "# 1. restricted destinations and the dialled number"
r=$(dig +1-900-555-0100)
equal "+1-900-555-0100 without an allow: 403" "${r%% *}" 403
check "its Reason says the destination is not allowed" \
	grep -q 'cause=21;text="destination not allowed"' <<<"$r"
equal "no gateway was called for it" "$(invites gw1)/$(invites gw2)" 0/0

req PATCH "/v1/accounts/$DIG_ID/limits" '{"allowed_prefixes": ["1900"]}'
equal "PATCH limits: allow 1900" "$CODE/$(jget allowed_prefixes)" 200/1900
req PATCH "/v1/accounts/$DIG_ID/limits" '{"allowed_prefixes": ["19a"]}'
equal "PATCH limits: a prefix with a letter is 400" "$CODE" 400
req PATCH "/v1/accounts/$DIG_ID/limits" '{"allowed_prefixes": "1900"}'
equal "PATCH limits: not an array is 400" "$CODE" 400
req GET "/v1/accounts/$DIG_ID/limits"
equal "GET limits keeps the allow" "$(jget allowed_prefixes)" 1900
req GET /v1/restricted_prefixes
check "1900 and 00881 are restricted by default" \
	python3 -c 'import json,sys
p=[e["prefix"] for e in json.loads(sys.argv[1])["restricted_prefixes"]]
sys.exit(0 if "1900" in p and "00881" in p else 1)' "$BODY"

n=$(grep -c "billing: authorised, rate $RATE_1900," "$LOG")
r=$(dig +1-900-555-0100)
equal "+1-900-555-0100 allowed: reaches the 1900 gateway" \
	"${r%% *}/$(invites gw1)/$(invites gw2)" 486/0/1
equal "the gateway dials the normalised number" "$(ruri gw2)" \
	"sip:19005550100@$GW2:5080"
equal "it was rated at the 1900 rate" \
	"$(grep -c "billing: authorised, rate $RATE_1900," "$LOG")" $((n + 1))
r=$(dig '(1)900.555-0101')
equal "(1)900.555-0101 reaches the 1900 gateway as 19005550101" \
	"${r%% *}/$(ruri gw2)" "486/sip:19005550101@$GW2:5080"
r=$(dig 1-555-0100)
equal "1-555-0100 takes the default route at the 1 rate" \
	"${r%% *}/$(ruri gw1)/$(grep -c "billing: authorised, rate $RATE_1," "$LOG")" \
	"486/sip:15550100@$GW1:5080/1"
before="$(invites gw1)/$(invites gw2)"
for num in 1900abc '*123%23' 1900%2A 12-34x +-. 'a1900'; do
	r=$(dig "$num")
	equal "'$num' gets 484" "${r%% *}" 484
done
equal "no gateway was called for them" "$(invites gw1)/$(invites gw2)" \
	"$before"

req POST /v1/restricted_prefixes '{"prefix": "4420", "description": "test"}'
equal "POST a restricted prefix" "$CODE" 201
r=$(dig 44-20-7946-0000)
equal "a prefix restricted through the API: 403" "${r%% *}" 403
req DELETE /v1/restricted_prefixes/4420
equal "DELETE it" "$CODE" 200
r=$(dig 44-20-7946-0000)
equal "and the number is called again" "${r%% *}/$(ruri gw1)" \
	"486/sip:442079460000@$GW1:5080"


echo "# 2. a digest caller asserts only its own account"
r=$(dig 5551000 --header 'P-Asserted-Identity: <sip:+15550199@evil.example>' \
	--header 'Privacy: id' \
	--header 'Diversion: <sip:+15550123@evil.example>;reason=unconditional' \
	--header 'P-Preferred-Identity: <sip:boss@evil.example>')
equal "the call reaches gw1" "${r%% *}/$(ruri gw1)" "486/sip:5551000@$GW1:5080"
equal "its P-Asserted-Identity is the account's" "$(hdr gw1 P-Asserted-Identity)" \
	"<sip:dig@$REALM>"
equal "no Privacy reaches the gateway" "$(hdr gw1 Privacy)" ""
equal "no Diversion reaches the gateway" "$(hdr gw1 Diversion)" ""
equal "no copied P-Preferred-Identity from a digest caller" \
	"$(hdr gw1 P-Preferred-Identity)" ""
check "nothing of evil.example reaches the gateway" \
	bash -c "! tail -n 1 '$DIR/gw1.log' | grep -q evil.example"


echo "# 3. a trusted peer pinned to udp port 5071"
r=$(python3 "$PEER" call $TRUSTED 5071 $TGA 5551001 \
	--header 'P-Asserted-Identity: <sip:+15550142@peer.example>' \
	--header 'Privacy: id')
equal "from its port: trusted, no challenge" "${r%% *}" 486
equal "its P-Asserted-Identity is copied as sent" \
	"$(hdr gw1 P-Asserted-Identity)" "<sip:+15550142@peer.example>"
equal "its Privacy is copied" "$(hdr gw1 Privacy)" "id"
n=$(invites gw1)
r=$(python3 "$PEER" call $TRUSTED 5072 $TGA 5551001 \
	--header 'P-Asserted-Identity: <sip:+15550142@peer.example>')
equal "the same address from port 5072 is challenged (407)" "${r%% *}" 407
equal "and reaches no gateway" "$(invites gw1)" "$n"


echo "# 4. bytes from the wire: the log and the database"
cdrs0=$(sql "SELECT count(*) FROM cdrs")
live0=$(sql "SELECT count(*) FROM live_calls")
n=$(invites gw1)
r=$(dig 5551002 --from-user '\xff\xfe\x1b[31mred')
equal "a From user that is not UTF-8 gets 400" "${r%% *}" 400
r=$(dig 5551002 --from-user 'ok' --from-name 'J\xc3\x28\x01')
equal "a From display name that is not UTF-8 gets 400" "${r%% *}" 400
r=$(dig 5551002 --callid 'fz4309\x07bell@x')
equal "a Call-ID with a control byte gets 400" "${r%% *}" 400
CPORT=$((CPORT + 1))
r=$(python3 "$PEER" call $DIGEST $CPORT $TGA 5551002 \
	--user 'dig\xffuser' --password secret)
equal "a digest user name that is not UTF-8 gets 400" "${r%% *}" 400
CPORT=$((CPORT + 1))
timeout 10 python3 "$PEER" call $DIGEST $CPORT $TGA 5551002 \
	--callid 'fz4310\r\n  folded continuation] INVITE from 6.6.6.6 via udp' \
	>"$DIR/folded.out" 2>&1
r=$(dig 5551002 --header 'X-Note: \xc0\xff')
equal "binary bytes in another header do not stop a call" "${r%% *}" 486
sleep 0.5
equal "no CDR and no live call for the refused requests" \
	"$(sql "SELECT count(*) FROM cdrs")/$(sql "SELECT count(*) FROM live_calls")" \
	"$((cdrs0 + 1))/$live0"
equal "only the last call reached a gateway" "$(invites gw1)" "$((n + 1))"
check "every log line starts with a timestamp" \
	bash -c "! LC_ALL=C grep -avE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z ' '$LOG' | grep -q ."
check "no control byte but the newline in the log" \
	bash -c "! LC_ALL=C tr -d '\n' <'$LOG' | LC_ALL=C grep -qaP '[\x00-\x1f\x7f]'"
check "the log is well-formed UTF-8" python3 -c \
	'import sys; open(sys.argv[1], "rb").read().decode("utf-8")' "$LOG"
check "no forged line from the folded Call-ID" \
	bash -c "! grep -aq '^  folded continuation' '$LOG'"
equal "five refusals, one line each" "$(grep -ac 'refused: 400' "$LOG")" 5
check "the binary From user is logged escaped" \
	grep -aqF '<\xff\xfe\x1b[31mred>' "$LOG"
check "the display name is logged escaped" grep -aqF '"J\xc3(\x01"' "$LOG"
check "the folded Call-ID, if logged, is escaped" \
	bash -c "! grep -aq fz4310 '$LOG' || grep -aq 'fz4310\\\\r\\\\n' '$LOG'"


echo "# 5. the daily spend cap"
req PATCH "/v1/accounts/$CAP_ID/limits" '{"daily_spend_cap": "0.50"}'
equal "PATCH limits: a cap of 0.50" "$CODE/$(jget daily_spend_cap)" 200/0.50
req PATCH "/v1/accounts/$CAP_ID/limits" '{"daily_spend_cap": "-1"}'
equal "PATCH limits: a negative cap is 400" "$CODE" 400
req PATCH "/v1/accounts/$CAP_ID/limits" '{}'
equal "PATCH limits: nothing to change is 400" "$CODE" 400
sql "INSERT INTO cdrs (call_id, account_id, caller, callee, setup_at, end_at,
	cost, sip_code, hangup_by, reason) VALUES
	('old', $CAP_ID, 'x', '1', now() - interval '2 days',
	 now() - interval '2 days', 90000000, 200, 'caller', 'caller'),
	('today', $CAP_ID, 'x', '1', now(), now(), 500000, 200, 'caller',
	 'caller')" >/dev/null
req GET "/v1/accounts/$CAP_ID/limits"
equal "spent today counts today's calls only" "$(jget spent_today)" 0.50
n=$(invites gw1)
CPORT=$((CPORT + 1))
r=$(python3 "$PEER" call $DIGEST $CPORT $TGA 5551003 --user capuser \
	--password secret)
equal "the cap spent: 403" "${r%% *}" 403
check "its Reason says the daily spend cap is reached" \
	grep -q 'cause=21;text="daily spend cap reached"' <<<"$r"
equal "and no gateway was called" "$(invites gw1)" "$n"
equal "the refusal's CDR says rejected" \
	"$(sql "SELECT reason || ' ' || sip_code FROM cdrs WHERE account_id =
		$CAP_ID AND call_id NOT IN ('old', 'today')")" "rejected 403"
req PATCH "/v1/accounts/$CAP_ID/limits" '{"daily_spend_cap": "10.00"}'
CPORT=$((CPORT + 1))
r=$(python3 "$PEER" call $DIGEST $CPORT $TGA 5551003 --user capuser \
	--password secret)
equal "a higher cap lets the call through" "${r%% *}/$(invites gw1)" \
	"486/$((n + 1))"
req PATCH "/v1/accounts/$CAP_ID/limits" '{"daily_spend_cap": null}'
equal "PATCH limits: null removes the cap" "$CODE/$(jget daily_spend_cap)" \
	200/null

# ten authorisations at once against a cap worth two and a half of them
CONC_ID=$(sql "INSERT INTO accounts (name, balance, rate_plan_id,
	daily_spend_cap) VALUES ('conc', 100000000, 1, 25000) RETURNING id")
pids=()
for i in $(seq 1 10); do
	sql "SELECT result FROM tg_authorize('conc-$i', 'n', $CONC_ID, 'x',
		'5551000', 'gw1', 0, 10)" >"$DIR/conc-$i.out" &
	pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
equal "concurrent calls: three authorised, seven refused by the cap" \
	"$(cat "$DIR"/conc-*.out | sort | uniq -c | tr -s ' ' | xargs)" \
	"3 ok 7 spend_cap"
equal "together they hold exactly the cap" \
	"$(sql "SELECT sum(reserved) FROM live_calls WHERE account_id = $CONC_ID")" \
	25000
equal "a reservation of a running call stops at the cap" \
	"$(sql "SELECT sum(granted) FROM (SELECT (tg_reserve(call_id, 2,
		10000)).granted FROM live_calls WHERE account_id = $CONC_ID) g")" \
	0

gw_stop
pid_stop "$TG_PID" 30
equal "tollgate exits 0 on SIGTERM" "$?" 0

summary
