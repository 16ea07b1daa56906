#!/usr/bin/env bash
# Authentication at the door, tried as an attacker would from loopback
# addresses tollgate does not trust.
#
# A private PostgreSQL (tests/lib/pgtest.sh), the daemon with its default
# limits, SIPp as the gateway (built-in uas) and as a trusted peer
# (built-in uac), a small SIP client of our own (sipc.py) as callers and
# attackers, SIPVicious (svwar, svcrack) when it is installed.
#
#   1. digest end to end: MD5 and SHA-256, both offered in one 407, which
#      comes alone (no 100 Trying toward an unauthenticated source)
#   2. a replayed Proxy-Authorization (new Call-ID) is refused to the same
#      number, to another number and from another address
#   3. unknown user and wrong password answers are byte-identical apart
#      from tags, branch and Call-ID
#   4. ten wrong passwords block the source and the user name: the right
#      password is refused until both blocks are lifted through
#      DELETE /v1/blocks/{id}, then it works; /metrics counts them
#   5. a flood of unauthenticated INVITEs gets back at most its own bytes,
#      one answer per request and no retransmission, while the trusted
#      peer's calls all succeed
#   6. svwar finds no extension, svcrack no password (the real one is in
#      its list: the source is blocked before it gets there)
#
# Addresses: tollgate SIP 127.0.1.20:5060 and API 127.0.1.20:8080,
# trusted peer 127.0.1.21, gateway 127.0.1.22:5080, flood 127.0.1.23,
# SIPVicious 127.0.1.24, digest callers 127.0.1.25, replay from elsewhere
# 127.0.1.26, guessing 127.0.1.27, enumeration 127.0.1.28.  Every process
# started here is ended by its PID.
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
[ -x "$TG" ] || { echo "auth.sh: $TG not built" >&2; exit 99; }
[ -n "$SIPP" ] || { echo "auth.sh: sipp not found" >&2; exit 77; }
command -v curl >/dev/null || { echo "auth.sh: no curl" >&2; exit 77; }
command -v python3 >/dev/null || { echo "auth.sh: no python3" >&2; exit 77; }

TEST_KEEP=${AUTH_KEEP:-}
# shellcheck source=../lib/check.sh
. "$top_srcdir/tests/lib/check.sh"
# shellcheck source=../lib/pgtest.sh
. "$top_srcdir/tests/lib/pgtest.sh"
test_init auth || exit 99
pgtest_start || exit 99

DIR=$TEST_DIR
TG_IP=127.0.1.20
TG_SIP=$TG_IP:5060
API=http://$TG_IP:8080
ADMIN=auth-test-admin-token-0123456789
PEER_IP=127.0.1.21
GW_IP=127.0.1.22
FLOOD_IP=127.0.1.23
SV_IP=127.0.1.24
CALLER_IP=127.0.1.25
OTHER_IP=127.0.1.26
GUESS_IP=127.0.1.27
ENUM_IP=127.0.1.28
SIPC="python3 $here/sipc.py"

# block_ids KIND KEY: ids of the blocks of KEY in BODY (GET /v1/blocks)
block_ids() {
	python3 -c 'import json,sys
d=json.loads(sys.argv[1])["blocks"]
print(",".join(str(e["id"]) for e in d
               if e["kind"]==sys.argv[2] and e["key"]==sys.argv[3]))' \
		"$BODY" "$1" "$2" 2>/dev/null
}

# metric NAME: its value in /metrics
metric() {
	curl -s -m 10 -H "Authorization: Bearer $ADMIN" "$API/metrics" |
		awk -v n="$1" '$1 == n { print $2 }'
}

# field KEY OUTPUT: the value of KEY=... in a line of sipc.py
field() {
	echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"
}

cat >"$DIR/tg.conf" <<EOF
sip_listen udp:$TG_SIP
trusted_peer $PEER_IP account=peer
gateway gw $GW_IP:5080
route default gw
sip_realm tollgate
digest_auth yes
db_conninfo $PGTEST_CONNINFO
billing no
rtp_relay no
media_timeout 0
state_dir $DIR/state
shutdown_grace 2
log_level info
api_listen $TG_IP:8080
api_token $ADMIN admin
EOF
mkdir -p "$DIR/state"

"$TG" -f "$DIR/tg.conf" >"$DIR/tollgate.log" 2>&1 &
TG_PID=$!
pid_remember "$TG_PID"
if ! wait_bound udp "$TG_IP" 5060 15 "$TG_PID" ||
   ! wait_bound tcp "$TG_IP" 8080 15 "$TG_PID"; then
	echo "auth.sh: tollgate did not come up:" >&2
	tail -n 30 "$DIR/tollgate.log" >&2
	exit 99
fi

# the gateway answers every call (180, 200, waits for BYE)
"$SIPP" -nostdin -i "$GW_IP" -p 5080 -sn uas -m 200 -timeout 120 \
	>"$DIR/gw.out" 2>&1 </dev/null &
GW_PID=$!
pid_remember "$GW_PID"
wait_bound udp "$GW_IP" 5080 10 || { echo "auth.sh: no gateway" >&2; exit 99; }

req POST /v1/accounts '{"name":"peer"}'
equal "the trusted peer's account is created" "$CODE" 201
req POST /v1/accounts \
	'{"name":"alice","sip_username":"alice","sip_password":"alice-pw-1"}'
equal "a digest account is created through the API" "$CODE" 201
req POST /v1/accounts \
	'{"name":"bob","sip_username":"bob","sip_password":"Bob-Secret-7"}'
equal "a second digest account is created" "$CODE" 201
equal "the API stores both HA1s (MD5 and SHA-256)" \
	"$(sql "SELECT length(sip_ha1) || ' ' || length(sip_ha1_sha256)
		FROM accounts WHERE name = 'alice'")" "32 64"
equal "the SHA-256 HA1 is sha256(user:realm:password)" \
	"$(sql "SELECT sip_ha1_sha256 = encode(sha256('alice:tollgate:alice-pw-1'),
		'hex') FROM accounts WHERE name = 'alice'")" t


echo "# 1. digest end to end"
out=$($SIPC call --src $CALLER_IP --dst $TG_SIP --user alice \
	--password alice-pw-1 --num 1001 --alg MD5 \
	--show-challenge "$DIR/407" --save-auth "$DIR/auth-1001")
equal "MD5: 407 first, then the call is answered" \
	"$(field first "$out") $(field final "$out")" "407 200"
equal "no 100 Trying before the 407" "$(field trying "$out")" 0
check "the 407 offers SHA-256" grep -q 'algorithm=SHA-256' "$DIR/407"
check "the 407 offers MD5" grep -q 'algorithm=MD5' "$DIR/407"
within "the 407 is no larger than the INVITE" "$(wc -c <"$DIR/407")" 1 700
out=$($SIPC call --src $CALLER_IP --dst $TG_SIP --user alice \
	--password alice-pw-1 --num 1002 --alg SHA-256)
equal "SHA-256 (RFC 8760): the call is answered" "$(field final "$out")" 200


echo "# 2. a replayed Proxy-Authorization"
equal "replayed to the same number: refused" \
	"$($SIPC replay --src $CALLER_IP --dst $TG_SIP --user alice \
		--num 1001 --auth-file "$DIR/auth-1001")" 403
equal "replayed to another number: refused" \
	"$($SIPC replay --src $CALLER_IP --dst $TG_SIP --user alice \
		--num 1900555 --auth-file "$DIR/auth-1001")" 403
equal "replayed from another address: refused" \
	"$($SIPC replay --src $OTHER_IP --dst $TG_SIP --user alice \
		--num 1001 --auth-file "$DIR/auth-1001")" 403
within "no replay was taken: two calls identified, no more" \
	"$(grep -c 'caller identified as account alice' "$DIR/tollgate.log")" 2 2


echo "# 3. unknown user and wrong password answer alike"
a=$($SIPC answer --src $ENUM_IP --dst $TG_SIP --user nosuchuser \
	--password guess-1 --num 1001 --out "$DIR/ans-unknown")
b=$($SIPC answer --src $ENUM_IP --dst $TG_SIP --user bob \
	--password guess-1 --num 1001 --out "$DIR/ans-wrong")
equal "both refused with 403" "$a $b" "403 403"
check "the two answers are byte-identical apart from tags" \
	cmp -s "$DIR/ans-unknown" "$DIR/ans-wrong"
check "no Reason text tells them apart" \
	bash -c "! grep -qi 'unknown account\|wrong credentials' '$DIR/ans-wrong'"


echo "# 4. guessing is blocked"
# (the user name's block comes first: bob failed once in 3.)
codes=
for i in $(seq 1 10); do
	out=$($SIPC call --src $GUESS_IP --dst $TG_SIP --user bob \
		--password "wrong-$i" --num 1001)
	codes="$codes$(field final "$out") "
done
equal "ten wrong passwords: ten 403" "$codes" \
	"403 403 403 403 403 403 403 403 403 403 "
q0=$(metric tollgate_db_latency_seconds_count)
out=$($SIPC call --src $GUESS_IP --dst $TG_SIP --user bob \
	--password Bob-Secret-7 --num 1001)
equal "then the blocked source hears 403 at once, even the right password" \
	"$(field first "$out")" 403
out=$($SIPC call --src $CALLER_IP --dst $TG_SIP --user bob \
	--password Bob-Secret-7 --num 1001)
equal "the blocked user name is refused from another source" \
	"$(field final "$out")" 403
equal "a blocked request costs no database query" \
	"$(metric tollgate_db_latency_seconds_count)" "$q0"
req GET /v1/blocks
equal "GET /v1/blocks answers 200" "$CODE" 200
src_id=$(block_ids source $GUESS_IP)
user_id=$(block_ids user bob)
check "the source is listed as blocked" test -n "$src_id"
check "the user name is listed as blocked" test -n "$user_id"
within "/metrics counts two blocks" "$(metric tollgate_auth_blocks_active)" 2 2
within "/metrics counts the failures" \
	"$(metric tollgate_auth_failures_total)" 10 1000
within "/metrics counts the refused requests" \
	"$(metric tollgate_auth_blocked_requests_total)" 2 1000
CODE=$(curl -s -m 10 -o /dev/null -w '%{http_code}' -X DELETE \
	"$API/v1/blocks/$src_id")
equal "DELETE without the admin token is refused" "$CODE" 401
req DELETE "/v1/blocks/$src_id"
equal "DELETE /v1/blocks/{source} lifts it" "$CODE" 200
out=$($SIPC call --src $GUESS_IP --dst $TG_SIP --user bob \
	--password Bob-Secret-7 --num 1001)
equal "the user name is still blocked" "$(field final "$out")" 403
req DELETE "/v1/blocks/$user_id"
equal "DELETE /v1/blocks/{user} lifts it" "$CODE" 200
req DELETE "/v1/blocks/$user_id"
equal "a block lifted twice: 404" "$CODE" 404
out=$($SIPC call --src $GUESS_IP --dst $TG_SIP --user bob \
	--password Bob-Secret-7 --num 1001)
equal "after both are lifted the right password works" \
	"$(field first "$out") $(field final "$out")" "407 200"


echo "# 5. a flood of unauthenticated INVITEs"
"$SIPP" -nostdin -i $PEER_IP -p 5061 -sn uac -s 1000 -m 20 -r 5 -l 10 \
	-d 500 -timeout 60 -timeout_error $TG_SIP \
	>"$DIR/peer.out" 2>&1 </dev/null &
PEER_PID=$!
pid_remember "$PEER_PID"
out=$($SIPC flood --src $FLOOD_IP --dst $TG_SIP --count 2000 --small 200 \
	--seconds 4 --quiet 5)
echo "# flood: $out"
sent=$(field sent "$out")
rcvd=$(field received "$out")
check "the flood got back no more bytes than it sent ($rcvd <= $sent)" \
	test "$rcvd" -le "$sent"
within "at most one answer per request" "$(field responses "$out")" 1 2000
within "most requests were answered (the bound drops only large answers)" \
	"$(field responses "$out")" 1500 2000
equal "no answer was repeated (no retransmission within 5 s)" \
	"$(field repeats "$out")" 0
equal "no 100 Trying toward the flooding source" "$(field trying "$out")" 0
pid_gone "$PEER_PID" 60
pid_stop "$PEER_PID" 1
rc=$?
equal "the trusted peer's 20 calls during the flood all succeeded" "$rc" 0
grep -E "Successful call|Failed call" "$DIR/peer.out" | tail -n 2 | sed 's/^/# /'


echo "# 6. SIPVicious"
if command -v svwar >/dev/null && command -v svcrack >/dev/null; then
	# the tools' own interpreter (they are installed for it)
	SV_PY=$(head -n 1 "$(command -v svcrack)" | sed 's/^#! *//')
	seq 1000 1020 >"$DIR/exts"
	for m in REGISTER INVITE; do
		timeout 60 $SV_PY "$here/sv.py" $SV_IP "$(command -v svwar)" -m $m \
			-x $SV_IP -P 5070 -d "$DIR/exts" --maximumtime 5 \
			-p 5060 $TG_IP \
			>"$DIR/svwar-$m.out" 2>&1 </dev/null
		check "svwar ($m) ran to its end" \
			grep -q "found nothing\|Extension" "$DIR/svwar-$m.out"
		check "svwar ($m) finds no extension" \
			bash -c "! grep -Eq '^\| *10[0-9]{2} ' '$DIR/svwar-$m.out'"
	done
	{ for i in $(seq 1 30); do echo "guess$i"; done
	  echo Bob-Secret-7; } >"$DIR/words"
	# svcrack's INVITE (about 340 bytes, no body) is smaller than any
	# challenge, so tollgate does not answer it at all (the amplification
	# bound) and svcrack gives up at once; a longer Request-URI makes its
	# requests the size of a phone's, so that its guesses reach the
	# failure blocks
	pad=$(printf 'p%.0s' $(seq 1 120))
	# (once blocked it hears 403 to every request and keeps sending:
	# bounded to 20 s)
	timeout 20 $SV_PY "$here/sv.py" $SV_IP "$(command -v svcrack)" \
		-m INVITE -x $SV_IP -P 5070 -u bob \
		--requesturi "sip:1000@$TG_IP;x=$pad" -d "$DIR/words" \
		--maximumtime 5 -p 5060 $TG_IP \
		>"$DIR/svcrack.out" 2>&1 </dev/null
	check "svcrack finds no password" \
		bash -c "! grep -qi 'Bob-Secret-7\|password for' '$DIR/svcrack.out'"
	req GET /v1/blocks
	check "svcrack's source is blocked" test -n "$(block_ids source $SV_IP)"
	within "svcrack's guesses were refused (each one a 403)" \
		"$(grep -c "$SV_IP.* refused:" "$DIR/tollgate.log")" 10 40
else
	echo "# SIPVicious not installed: skipped (apt-get install sipvicious)"
fi

pid_stop "$TG_PID" 30
equal "tollgate exits 0 on SIGTERM" "$?" 0
pid_stop "$GW_PID" 2 >/dev/null

summary
