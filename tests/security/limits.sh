#!/usr/bin/env bash
# Limits at the door, tried as an attacker would: bursts of requests from
# loopback addresses the daemon does not trust, and from trusted peers.
#
# A private PostgreSQL (tests/lib/pgtest.sh), the daemon, a small UDP
# client (sipflood.py) and curl against /v1/accounts and /metrics.  No
# gateway is needed: a call that gets past the limits finds no route (404),
# one refused at the door gets 503.
#
#   1. The node's INVITE limit: a burst from a trusted peer beyond it gets
#      503 for the excess; a trusted peer with limit=off is unaffected.
#   2. Per-source INVITEs: a burst from an untrusted address beyond its
#      bucket gets one stateless 503 per excess INVITE, never retransmitted.
#   3. Per-source other requests: an OPTIONS flood is limited by its own
#      bucket, and the same address's INVITE still passes.
#   4. Per account: an account's calls beyond its max_cps (set through the
#      API) get 503 while another account's calls pass.
#   5. /metrics counts each refusal under its limit.
#   6. limit_reply none: the excess gets no answer at all.
#
# Addresses: tollgate SIP 127.0.1.30:5060 and API 127.0.1.30:8080; trusted
# peer with limit=off 127.0.1.32, trusted peer with the node's defaults
# 127.0.1.33, untrusted sources 127.0.1.34, 127.0.1.35 and 127.0.1.36.
#
# make check runs it from the top build directory with top_srcdir and
# top_builddir in the environment.  Prints "N passed, M failed".
set -u

here=$(cd "$(dirname "$0")" && pwd)
: "${top_srcdir:=$(cd "$here/../.." && pwd)}"
: "${top_builddir:=$PWD}"
export top_srcdir top_builddir

TG="$top_builddir/tollgate"
[ -x "$TG" ] || { echo "limits.sh: $TG not built" >&2; exit 99; }
command -v curl >/dev/null || { echo "limits.sh: no curl" >&2; exit 77; }
command -v python3 >/dev/null || { echo "limits.sh: no python3" >&2; exit 77; }

TEST_KEEP=${LIMITS_KEEP:-}
# shellcheck source=../lib/check.sh
. "$top_srcdir/tests/lib/check.sh"
# shellcheck source=../lib/pgtest.sh
. "$top_srcdir/tests/lib/pgtest.sh"
test_init limits || exit 99
pgtest_start || exit 99

DIR=$TEST_DIR
CONF="$DIR/tg.conf"
TG_PID=
RUN=0
TG_IP=127.0.1.30
API=http://$TG_IP:8080
ADMIN=limits-test-admin-token-0123456789
FLOOD="$here/sipflood.py"

# metric LIMIT: tollgate_limit_rejected_total{limit="LIMIT"}
metric() {
	curl -s -m 10 -H "Authorization: Bearer $ADMIN" "$API/metrics" |
		sed -n "s/^tollgate_limit_rejected_total{limit=\"$1\"} //p"
}

# flood ARGS...: run sipflood.py against tollgate; sets R (its line)
flood() {
	R=$(timeout 60 python3 "$FLOOD" --dst "$TG_IP:5060" "$@")
	echo "#   $R"
}

# val NAME: a count of the last flood
val() { echo "$R" | tr ' ' '\n' | sed -n "s/^$1=//p"; }

# start: tollgate with $CONF, up with its API
start() {
	local log
	RUN=$((RUN + 1))
	log="$DIR/tollgate.$RUN.log"
	cp "$CONF" "$DIR/tg.$RUN.conf"
	"$TG" -f "$CONF" >"$log" 2>&1 &
	TG_PID=$!
	pid_remember "$TG_PID"
	if wait_line "$log" "routing by the database" 10 "$TG_PID" &&
	   wait_bound tcp "$TG_IP" 8080 10 "$TG_PID"; then
		return 0
	fi
	echo "limits.sh: tollgate did not come up:" >&2
	tail -n 30 "$log" >&2
	exit 99
}

stop() {
	local rc
	pid_stop "$TG_PID" 30
	rc=$?
	TG_PID=
	equal "tollgate run $RUN exits 0 on SIGTERM" "$rc" 0
}

# conf [EXTRA...]: the configuration, with EXTRA lines
conf() {
	cat >"$CONF" <<EOF
sip_listen udp:$TG_IP:5060
trusted_peer 127.0.1.32 from limit=off
trusted_peer 127.0.1.33 from
db_conninfo $PGTEST_CONNINFO
billing no
rtp_relay no
media_timeout 0
state_dir $DIR/state
shutdown_grace 2
log_level info
api_listen $TG_IP:8080
api_token $ADMIN admin
limit_invite_per_source 1 5
limit_requests_per_source 1 10
limit_invite_global 1 8
EOF
	printf '%s\n' "$@" >>"$CONF"
}

mkdir -p "$DIR/state"
conf
start

echo "# accounts and their calls per second through the API"
req POST /v1/accounts '{"name":"alice","max_cps":3}'
equal "POST an account with max_cps" "$CODE/$(jget max_cps)" 201/3
req POST /v1/accounts '{"name":"bob"}'
equal "max_cps defaults to 0 (no limit)" "$CODE/$(jget max_cps)" 201/0
BOB=$(jget id)
req PATCH "/v1/accounts/$BOB" '{"max_cps":-1}'
equal "a negative max_cps is refused" "$CODE/$(jget field)" 400/max_cps
req PATCH "/v1/accounts/$BOB" '{"max_cps":500}'
equal "PATCH max_cps" "$CODE/$(jget max_cps)" 200/500
req POST /v1/accounts '{"name":"carol"}'
equal "account carol" "$CODE" 201


echo "# 1. the node's INVITE limit (1/s, 8 at once)"
flood --src 127.0.1.33 --user carol --count 30 --wait 2
within "trusted peer with default limits: INVITEs past the node's limit" \
	"$(val c404)" 8 10
equal "the rest get 503" "$(( $(val c503) + $(val c404) ))" 30
GLOBAL=$(val c503)
equal "/metrics: global_invite" "$(metric global_invite)" "$GLOBAL"

flood --src 127.0.1.32 --user bob --count 30 --wait 2
equal "trusted peer with limit=off: every INVITE passes" "$(val c404)" 30
equal "  and none gets 503" "$(val c503)" 0

# the node's bucket fills again (8 tokens at 1/s)
sleep 8


echo "# 2. INVITEs of one untrusted source (1/s, 5 at once)"
flood --src 127.0.1.34 --count 30 --wait 4
SRC503=$(val c503)
within "untrusted burst: 503 for the excess" "$SRC503" 24 25
equal "every INVITE got an answer" "$(val answered)" 30
equal "no 503 is sent twice (stateless, never retransmitted)" \
	"$(val dup503)" 0
equal "every 503 has a Retry-After" "$(val ra503)" "$SRC503"
within "the INVITEs within the bucket are handled (challenged)" \
	"$(val other)" 5 6
equal "an untrusted source hears no 100 Trying" "$(val c100)" 0
check "no transaction was made for the refused ones" \
	test "$(grep -c 'challenging 127.0.1.34' "$DIR/tollgate.$RUN.log")" \
	-le 6
equal "/metrics: source_invite" "$(metric source_invite)" "$SRC503"


echo "# 3. OPTIONS of one untrusted source (1/s, 10 at once)"
flood --src 127.0.1.35 --method OPTIONS --count 40 --wait 2
within "OPTIONS within the bucket get 200" "$(val c200)" 10 11
equal "the excess gets 503" "$(( $(val c200) + $(val c503) ))" 40
REQ503=$(val c503)
equal "no 503 sent twice" "$(val dup503)" 0
flood --src 127.0.1.35 --count 1 --wait 1
equal "an INVITE of that source still passes (its own bucket)" \
	"$(val c503)/$(val other)" 0/1
equal "/metrics: source_request" "$(metric source_request)" "$REQ503"


echo "# 4. calls per second of an account (alice 3/s, bob 500/s)"
flood --src 127.0.1.32 --user alice --count 12 --wait 2 --ack-503
within "alice: calls within max_cps pass" "$(val c404)" 3 4
equal "alice: the rest get 503" "$(( $(val c404) + $(val c503) ))" 12
check "the refusal is logged with its account" grep -q "account alice over 3 calls a second" \
	"$DIR/tollgate.$RUN.log"
ACCT503=$(val c503)
flood --src 127.0.1.32 --user bob --count 12 --wait 2
equal "bob's calls pass meanwhile" "$(val c404)" 12
equal "/metrics: account_cps" "$(metric account_cps)" "$ACCT503"
check "/metrics: the sources are tracked" \
	test "$(curl -s -m 10 -H "Authorization: Bearer $ADMIN" "$API/metrics" |
		sed -n 's/^tollgate_limit_sources //p')" -ge 4
stop


echo "# 5. limit_reply none: the excess gets nothing"
conf "limit_reply none"
start
flood --src 127.0.1.36 --count 20 --wait 3
within "only the INVITEs within the bucket are answered" \
	"$(val answered)" 5 6
equal "no 503 at all" "$(val c503)" 0
equal "/metrics counts the silent refusals" "$(metric source_invite)" \
	"$(( 20 - $(val answered) ))"
check "fewer bytes back than sent" \
	test "$(val bytes_in)" -lt "$(val bytes_out)"
stop

echo "# 6. configuration"
conf "trusted_peer 127.0.1.37 from limit=off request_limit=5/5"
check "limit=off with another limit is refused" \
	sh -c '! "$0" -t -f "$1" >/dev/null 2>&1' "$TG" "$CONF"
conf "trusted_peer 127.0.1.37 from limit=7/9 request_limit=off"
check "per-peer limits are printed back" \
	sh -c '"$0" -t -f "$1" | grep -q "^trusted_peer 127.0.1.37/32 from limit=7/9 request_limit=off$"' "$TG" "$CONF"
conf "limit_invite_per_source 0 5"
check "a rate of 0 is refused (off is written off)" \
	sh -c '! "$0" -t -f "$1" >/dev/null 2>&1' "$TG" "$CONF"

summary
