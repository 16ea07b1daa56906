#!/usr/bin/env bash
# Media source control, as an attacker tries it: the real daemon, a
# private PostgreSQL, SIPp as caller and gateway, tests/rtp/rtpeer as the
# RTP ends and tests/rtp/spray.py as a third party that sends one RTP
# packet to every even port of the relay's range, over and over, while the
# call rings (early media flows) and after the answer.
#
#   1. The sprayer gets nothing back and injects nothing: the gateway gets
#      exactly the caller's packets (one SSRC), the caller all of the
#      gateway's; the drops are counted per call (GET /v1/calls/{id}) and
#      in /metrics (tollgate_rtp_foreign_dropped_total).
#   2. A caller behind NAT: its SDP names a private address, its RTP comes
#      from another port of the IP its SIP comes from; the relay latches
#      onto it and media flows both ways.
#   3. The relay's ports of consecutive calls are not in sequence.
#
# Addresses (only 127.0.1.10-19, so that no other suite collides):
#   127.0.1.10:5060  tollgate SIP          127.0.1.14  relay, caller side
#   127.0.1.11:5062  SIPp caller            127.0.1.15  relay, gateway side
#   127.0.1.12:5080  SIPp gateway           127.0.1.16  caller's RTP
#   127.0.1.13       the third party        127.0.1.17  gateway's RTP
#   127.0.1.18:8080  REST API               127.0.1.19  caller behind NAT
#
# RTP_IO is the daemon's rtp_io (auto by default);
# tests/rtp/strict-test-epoll.sh runs the suite again with epoll.
#
# make check runs it from the top build directory (top_srcdir,
# top_builddir, SIPP from the environment).  Prints one line per check
# and "N passed, M failed" last; exit status 1 if a check failed, 77 if
# SIPp, curl or python3 is missing, 99 if the set-up failed.
set -u

here=$(cd "$(dirname "$0")" && pwd)
: "${top_srcdir:=$(cd "$here/../.." && pwd)}"
: "${top_builddir:=$PWD}"
export top_srcdir top_builddir
: "${SIPP:=$(command -v sipp || true)}"

TG="$top_builddir/tollgate"
RTPEER="$top_builddir/tests/rtp/rtpeer"
SPRAY="$top_srcdir/tests/rtp/spray.py"
XML="$top_srcdir/tests/rtp"
PORTS=42000-42199
API=http://127.0.1.18:8080
ADMIN=strict-test-admin-token-0123456789

if [ -z "$SIPP" ] || [ ! -x "$SIPP" ]; then
	echo "strict-test: sipp not found: skipped"
	exit 77
fi
for c in curl python3; do
	command -v "$c" >/dev/null ||
		{ echo "strict-test: no $c: skipped"; exit 77; }
done
for b in "$TG" "$RTPEER"; do
	[ -x "$b" ] || { echo "strict-test: $b not built" >&2; exit 99; }
done

TEST_KEEP=${STRICTTEST_KEEP:-}
# shellcheck source=../lib/check.sh
. "$top_srcdir/tests/lib/check.sh"
# shellcheck source=../lib/pgtest.sh
. "$top_srcdir/tests/lib/pgtest.sh"
test_init strict-test || exit 99
W=$TEST_DIR
TG_PID=

# value of KEY in an rtpeer or spray.py report
kv() { sed -n "s/^$2=//p" "$1"; }

pgtest_start || exit 99

pgtest_psql <<'SQL' || exit 99
INSERT INTO rate_plans (name) VALUES ('src');
INSERT INTO rates (rate_plan_id, prefix, price_per_minute,
                   initial_increment, subsequent_increment)
  SELECT id, '', 60000, 1, 1 FROM rate_plans WHERE name = 'src';
INSERT INTO accounts (name, balance, max_calls, rate_plan_id)
  SELECT 'srctest', 1000000000, 10, id FROM rate_plans WHERE name = 'src';
SQL

{
	echo "sip_listen udp:127.0.1.10:5060"
	echo "trusted_peer 127.0.1.11 account=srctest"
	echo "trusted_peer 127.0.1.19 account=srctest"
	echo "gateway gw 127.0.1.12:5080"
	echo "route default gw"
	echo "db_conninfo $PGTEST_CONNINFO"
	echo "rtp_addr 127.0.1.14"
	echo "rtp_addr_gateway 127.0.1.15"
	echo "rtp_ports $PORTS"
	echo "api_listen 127.0.1.18:8080"
	echo "api_token $ADMIN admin"
	echo "log_level debug"
	echo "state_dir $W/state"
	echo "rtp_io ${RTP_IO:-auto}"
} >"$W/tg.conf"
mkdir -p "$W/state"
TG_LOG="$W/tg.log"
"$TG" -f "$W/tg.conf" >"$TG_LOG" 2>&1 &
TG_PID=$!
pid_remember "$TG_PID"
if ! wait_line "$TG_LOG" "running" 10 "$TG_PID"; then
	echo "strict-test: tollgate did not start:" >&2
	cat "$TG_LOG" >&2
	exit 99
fi

# get PATH: sets CODE and BODY
get() {
	CODE=$(curl -s -m 10 -o "$W/body" -w '%{http_code}' \
		-H "Authorization: Bearer $ADMIN" "$API$1")
	BODY=$(cat "$W/body")
}

# sipp_bg NAME SCENARIO ARGS...: SIPp in the background, its PID in
# LAST_PID
sipp_bg() {
	local name=$1 sf=$2
	shift 2
	"$SIPP" -sf "$XML/$sf" -nostdin -timeout 30s -timeout_error \
		-trace_msg -message_file "$W/$name.msg" \
		-trace_err -error_file "$W/$name.err" \
		"$@" >"$W/$name.out" 2>&1 &
	LAST_PID=$!
	pid_remember "$LAST_PID"
}

# gw_sipp NAME [ARGS...]; caller_sipp NAME SIP-IP RTP-IP RTP-PORT [ARGS...]
gw_sipp() {
	sipp_bg "$1" strict-uas.xml -i 127.0.1.12 -p 5080 \
		-key rtp_ip 127.0.1.17 -key rtp_port 7000 \
		-key dest_file "$W/$1.dest" "${@:2}"
}

caller_sipp() {
	sipp_bg "$1" strict-uac.xml 127.0.1.10:5060 -i "$2" -p 5062 \
		-key rtp_ip "$3" -key rtp_port "$4" \
		-key dest_file "$W/$1.dest" "${@:5}"
}

# rtpeer_bg NAME ARGS...
rtpeer_bg() {
	local name=$1
	shift
	"$RTPEER" "$@" >"$W/$name.rtp" 2>"$W/$name.rtperr" &
	LAST_PID=$!
	pid_remember "$LAST_PID"
}

# the media statistics the daemon logged for the last call
media_json() {
	grep -o 'media {.*}' "$TG_LOG" | tail -n 1 | sed 's/^media //'
}

# jq_py JSON EXPR: a Python expression on the document d
jq_py() {
	python3 -c 'import json,sys
d=json.loads(sys.argv[1])
print(eval(sys.argv[2]))' "$1" "$2" 2>/dev/null
}

# the foreign packets dropped of the first stream of a call's JSON
call_foreign() {
	jq_py "$1" 'sum(m[k]["foreign_dropped"] for m in d["media"]
		for k in ("to_gateway", "to_caller"))'
}

# ------------------------------------------------------- 1. the sprayer

echo "# rtp_io ${RTP_IO:-auto}"
echo "# a third party sprays the relay's ports, ringing and answered"
gw_sipp s-gw -m 1;                                     gp=$LAST_PID
# the gateway's early media begins with the 183
rtpeer_bg s-gwrtp -l 127.0.1.17:7000 -D "$W/s-gw.dest" -n 250 -s 300 -T 10
grp=$LAST_PID
# the caller listens on its SDP address from the start, and sends once
# answered (after the 2 s of ringing)
rtpeer_bg s-crtp -l 127.0.1.16:6000 -D "$W/s-c.dest" -n 150 -s 2200 -T 10
crp=$LAST_PID
caller_sipp s-c 127.0.1.11 127.0.1.16 6000 -m 1 -d 4500; cp=$LAST_PID
sleep 0.3
"$SPRAY" --from 127.0.1.13 --to 127.0.1.14,127.0.1.15 --ports "$PORTS" \
	--rounds 25 --gap-ms 200 --linger 1 >"$W/spray.out" 2>&1 &
sp=$!
pid_remember "$sp"
sleep 3.5

# the call in progress, seen through the API
get /v1/calls
cid=$(jq_py "$BODY" 'd["calls"][0]["id"]')
get "/v1/calls/$cid"
call=$BODY
call_code=$CODE
echo "# call $cid: $call"
live_foreign=$(call_foreign "$call")

wait "$cp"; crc=$?
wait "$gp"; grc=$?
wait "$grp"; wait "$crp"; wait "$sp"
check "the call set up and ended normally" [ "$crc" = 0 -a "$grc" = 0 ]

s_sent=$(kv "$W/spray.out" sent); s_recv=$(kv "$W/spray.out" recv)
check "the third party sprayed the range: $s_sent packets" \
	[ "${s_sent:-0}" -ge 2000 ]
check "the third party received none of the call's packets: $s_recv" \
	[ "$s_recv" = 0 ]

c_sent=$(kv "$W/s-crtp.rtp" sent); g_recv=$(kv "$W/s-gwrtp.rtp" recv)
g_sent=$(kv "$W/s-gwrtp.rtp" sent); c_recv=$(kv "$W/s-crtp.rtp" recv)
check "the gateway got exactly the caller's $c_sent packets: $g_recv" \
	[ "${c_sent:-0}" = 150 -a "$g_recv" = "$c_sent" ]
check "nothing injected toward the gateway: one SSRC" \
	[ "$(kv "$W/s-gwrtp.rtp" ssrc_changes)" = 0 ]
check "the caller got all $g_sent of the gateway's packets: $c_recv" \
	[ "${g_sent:-0}" = 250 -a "$c_recv" = "$g_sent" ]
check "nothing injected toward the caller: one SSRC, in sequence" \
	[ "$(kv "$W/s-crtp.rtp" ssrc_changes)" = 0 -a \
	  "$(kv "$W/s-crtp.rtp" seq_gaps)" = 0 ]

check "GET /v1/calls/{id} of the call answered 200" [ "$call_code" = 200 ]
check "the call's JSON counts foreign packets dropped: $live_foreign" \
	[ "${live_foreign:-0}" -gt 0 ]
mj=$(media_json)
echo "# media: $mj"
m_foreign=$(jq_py "$mj" 'sum(d["streams"][0][k]["foreign_dropped"]
	for k in ("to_gateway", "to_caller"))')
check "the CDR's media statistics count them too: $m_foreign" \
	[ "${m_foreign:-0}" -gt 0 ]
get /metrics
metric=$(echo "$BODY" | sed -n 's/^tollgate_rtp_foreign_dropped_total //p')
check "tollgate_rtp_foreign_dropped_total in /metrics: $metric" \
	[ "${metric:-0}" -gt 0 ]
check "the caller latched onto its own address" \
	eval 'jq_py "$mj" "d[\"streams\"][0][\"caller\"]" |
	      grep -qx "127.0.1.16:6000"'

# --------------------------------------------------- 2. behind a NAT

echo "# a caller behind NAT: SDP names 10.9.9.9:6000, RTP from its SIP IP"
gw_sipp n-gw -m 1;                                     gp=$LAST_PID
rtpeer_bg n-gwrtp -l 127.0.1.17:7000 -D "$W/n-gw.dest" -n 200 -s 300 -T 9
grp=$LAST_PID
rtpeer_bg n-crtp -l 127.0.1.19:6300 -D "$W/n-c.dest" -n 100 -s 2200 -T 9
crp=$LAST_PID
caller_sipp n-c 127.0.1.19 10.9.9.9 6000 -m 1 -d 3500; cp=$LAST_PID
wait "$cp"; crc=$?
wait "$gp"; grc=$?
wait "$grp"; wait "$crp"
check "the NATed call set up and ended normally" [ "$crc" = 0 -a "$grc" = 0 ]
n_recv=$(kv "$W/n-gwrtp.rtp" recv)
check "the gateway got the NATed caller's 100 packets: $n_recv" \
	[ "$n_recv" = 100 ]
n_crecv=$(kv "$W/n-crtp.rtp" recv)
check "the NATed caller got the gateway's media once it sent: $n_crecv" \
	[ "${n_crecv:-0}" -ge 50 ]
mj=$(media_json)
echo "# media: $mj"
check "the relay latched onto 127.0.1.19:6300" \
	eval 'jq_py "$mj" "d[\"streams\"][0][\"caller\"]" |
	      grep -qx "127.0.1.19:6300"'

# ------------------------------------------------ 3. unguessable ports

echo "# the ports of consecutive calls"
gw_sipp q-gw -m 5;                                     gp=$LAST_PID
caller_sipp q-c 127.0.1.11 127.0.1.16 6000 -m 5 -l 1 -d 10; cp=$LAST_PID
wait "$cp"; crc=$?
wait "$gp"; grc=$?
check "five short calls" [ "$crc" = 0 -a "$grc" = 0 ]
# the relay's caller-side port of each call, from the 183 and 200 it got
mapfile -t qports < <(sed -n 's/^m=audio \([0-9]*\) .*/\1/p' "$W/q-c.msg" |
	grep -vx 6000 | uniq)
echo "# caller-side ports: ${qports[*]}"
steps=0
for ((i = 1; i < ${#qports[@]}; i++)); do
	[ $((qports[i] - qports[i - 1])) = 4 ] && steps=$((steps + 1))
done
check "five calls, five caller-side ports: ${#qports[@]}" \
	[ "${#qports[@]}" = 5 ]
check "not one after the other (+4 per call): $steps of 4 steps" \
	[ "$steps" -lt 4 ]

check "daemon still running" kill -0 "$TG_PID"
pid_stop "$TG_PID" 10
TG_PID=

summary
