#!/usr/bin/env bash
# Media relay, end to end: the real daemon, a private PostgreSQL, SIPp as
# caller and gateway, and tests/rtp/rtpeer as the RTP endpoints.
#
# Addresses (only 127.0.0.61-69, so that no other suite collides):
#   127.0.0.61:5060  tollgate SIP          127.0.0.64  relay, caller side
#   127.0.0.62:5062  SIPp caller            127.0.0.65  relay, gateway side
#   127.0.0.63:5080  SIPp gateway           127.0.0.66  caller's RTP
#   127.0.0.68       REST API (unused)      127.0.0.67  gateway's RTP
#
# RTP_IO is the daemon's rtp_io, auto by default: io_uring when the build
# (tollgate --version) and the kernel have it, which the suite checks;
# tests/rtp/relay-test-epoll.sh runs the suite again with epoll.
#
# make check runs it from the top build directory (top_srcdir,
# top_builddir, SIPP from the environment).  Prints one line per check
# and "N passed, M failed" last; exit status 1 if a check failed, 77 if
# SIPp is missing, 99 if the set-up failed.
set -u

here=$(cd "$(dirname "$0")" && pwd)
: "${top_srcdir:=$(cd "$here/../.." && pwd)}"
: "${top_builddir:=$PWD}"
export top_srcdir top_builddir
: "${SIPP:=$(command -v sipp || true)}"

TG="$top_builddir/tollgate"
RTPEER="$top_builddir/tests/rtp/rtpeer"
XML="$top_srcdir/tests/rtp"

if [ -z "$SIPP" ] || [ ! -x "$SIPP" ]; then
	echo "relay-test: sipp not found: skipped"
	exit 77
fi
for b in "$TG" "$RTPEER"; do
	[ -x "$b" ] || { echo "relay-test: $b not built" >&2; exit 99; }
done

# the way the workers should wait: io_uring where the build has it,
# unless the kernel refuses it (rtp_io auto then logs why and uses epoll)
if [ -z "${RTP_IO:-}" ]; then
	RTP_IO=auto
	case $("$TG" --version) in
	*io_uring*) EXPECT_IO=io_uring ;;
	*) EXPECT_IO=epoll ;;
	esac
else
	EXPECT_IO=$RTP_IO
fi
echo "# rtp_io $RTP_IO: the relay should wait with $EXPECT_IO"

# the checks, the work directory (kept when a check failed) and every
# process started here, ended by its PID at exit: tests/lib/check.sh
TEST_KEEP=${RTPTEST_KEEP:-}
# shellcheck source=../lib/check.sh
. "$top_srcdir/tests/lib/check.sh"
# shellcheck source=../lib/pgtest.sh
. "$top_srcdir/tests/lib/pgtest.sh"
test_init relay-test rtptest || exit 99
W=$TEST_DIR
TG_PID=

# value of KEY in an rtpeer report
kv() { sed -n "s/^$2=//p" "$1"; }

pgtest_start || exit 99

pgtest_psql <<'SQL' || exit 99
INSERT INTO rate_plans (name) VALUES ('rtp');
INSERT INTO rates (rate_plan_id, prefix, price_per_minute,
                   initial_increment, subsequent_increment)
  SELECT id, '', 60000, 1, 1 FROM rate_plans WHERE name = 'rtp';
INSERT INTO accounts (name, balance, max_calls, rate_plan_id)
  SELECT 'rtptest', 1000000000, 10, id FROM rate_plans WHERE name = 'rtp';
INSERT INTO gateways (name, address) VALUES ('gw', '127.0.0.63:5080');
INSERT INTO routes (prefix, gateway_id) SELECT '', id FROM gateways;
SQL

# start_tg NAME [CONFIG LINES...]: a daemon with the base configuration
start_tg() {
	local name=$1
	shift
	{
		echo "sip_listen udp:127.0.0.61:5060"
		echo "trusted_peer 127.0.0.62 account=${TG_ACCOUNT:-rtptest}"
		echo "gateway gw 127.0.0.63:5080"
		echo "route default gw"
		echo "db_conninfo $PGTEST_CONNINFO"
		echo "rtp_addr 127.0.0.64"
		echo "rtp_addr_gateway 127.0.0.65"
		echo "api_listen 127.0.0.68:8080"
		echo "api_open_metrics yes"
		echo "log_level debug"
		echo "state_dir $W/state"
		echo "rtp_io $RTP_IO"
		printf '%s\n' "$@"
	} >"$W/$name.conf"
	mkdir -p "$W/state"
	TG_LOG="$W/$name.log"
	"$TG" -f "$W/$name.conf" >"$TG_LOG" 2>&1 &
	TG_PID=$!
	pid_remember "$TG_PID"
	wait_line "$TG_LOG" "running" 10 "$TG_PID" && return 0
	echo "relay-test: tollgate did not start:" >&2
	cat "$TG_LOG" >&2
	return 1
}

stop_tg() {
	[ -n "$TG_PID" ] || return 0
	pid_stop "$TG_PID" 10
	TG_PID=
}

# sipp_bg NAME SCENARIO ROLE-ARGS...: SIPp in the background, its PID in
# LAST_PID
sipp_bg() {
	local name=$1 sf=$2
	shift 2
	"$SIPP" -sf "$XML/$sf" -nostdin -m 1 -timeout 30s -timeout_error \
		-trace_msg -message_file "$W/$name.msg" \
		-trace_err -error_file "$W/$name.err" \
		"$@" >"$W/$name.out" 2>&1 &
	LAST_PID=$!
	pid_remember "$LAST_PID"
}

gw_sipp() {
	sipp_bg "$1" "$2" -i 127.0.0.63 -p 5080 \
		-key rtp_ip 127.0.0.67 -key rtp_port 7000 \
		-key dest_file "$W/$1.dest" "${@:3}"
}

caller_sipp() {
	sipp_bg "$1" "$2" 127.0.0.61:5060 -i 127.0.0.62 -p 5062 \
		-key rtp_ip 127.0.0.66 -key rtp_port "${RTP_PORT:-6000}" \
		-key dest_file "$W/$1.dest" "${@:3}"
}

# rtpeer_bg NAME ARGS...
rtpeer_bg() {
	local name=$1
	shift
	"$RTPEER" "$@" >"$W/$name.rtp" 2>"$W/$name.rtperr" &
	LAST_PID=$!
	pid_remember "$LAST_PID"
}

# wait_pid PID: its exit status
wait_pid() {
	wait "$1"
}

# metric NAME: its value in the daemon's /metrics
metric() {
	curl -s -m 2 http://127.0.0.68:8080/metrics 2>/dev/null |
		sed -n "s/^$1 //p"
}

# the media statistics the daemon logged for the last call
media_json() {
	grep -o 'media {.*}' "$TG_LOG" | tail -n 1 | sed 's/^media //'
}

# json_num JSON PATH (dir.key, e.g. to_gateway.packets)
json_num() {
	python3 -c 'import json,sys
d=json.loads(sys.argv[1])["streams"][0]
for k in sys.argv[2].split("."):
    d=d[k]
print(d)' "$1" "$2" 2>/dev/null
}

no_relay_sockets() {
	! ss -Huan 2>/dev/null | grep -Eq '127\.0\.0\.6[45]:41[0-9]{3} '
}

# ------------------------------------------------------------- the calls

start_tg relay "rtp_ports 41000-41199" "media_timeout 2" || exit 99
if grep -q "media relay: .* threads ($EXPECT_IO)" "$TG_LOG"; then
	ok "the relay's workers wait with $EXPECT_IO"
elif [ "$RTP_IO" = auto ] &&
     why=$(grep -m1 -o 'io_uring not available ([^)]*)' "$TG_LOG"); then
	ok "the relay's workers wait with epoll: $why on this kernel"
else
	fail "the relay's workers wait with $EXPECT_IO"
fi

# 1. a basic call with G.711 both ways, 3 packets dropped by the caller,
#    RTCP receiver reports from the gateway
echo "# basic call"
gw_sipp b-gw uas.xml;              gp=$LAST_PID
rtpeer_bg b-gwrtp -l 127.0.0.67:7000 -D "$W/b-gw.dest" -n 150 -T 7 -r
grp=$LAST_PID
rtpeer_bg b-crtp -l 127.0.0.66:6000 -D "$W/b-c.dest" -n 150 -x 10,20,30 -T 7
crp=$LAST_PID
caller_sipp b-c uac.xml -d 4500;   cp=$LAST_PID
# while the call runs /metrics counts its loss: the caller's 3 (3 s at
# most: the caller's stream lasts 3 s, the call 4.5 s)
lost_live=
for i in $(seq 1 30); do
	lost_live=$(metric tollgate_relay_packets_lost_live)
	[ "$lost_live" = 3 ] && break
	sleep 0.1
done
check "metrics: 3 packets lost by the call in progress: $lost_live" \
	[ "$lost_live" = 3 ]
wait_pid "$cp"; crc=$?
wait_pid "$gp"; grc=$?
wait_pid "$grp"; wait_pid "$crp"
check "caller: answer SDP names the relay, no ICE, no gateway address" \
	[ "$crc" = 0 ]
check "gateway: offer SDP names the relay, no ICE, no caller address" \
	[ "$grc" = 0 ]
c_sent=$(kv "$W/b-crtp.rtp" sent); g_recv=$(kv "$W/b-gwrtp.rtp" recv)
g_sent=$(kv "$W/b-gwrtp.rtp" sent); c_recv=$(kv "$W/b-crtp.rtp" recv)
g_srcs=$(kv "$W/b-gwrtp.rtp" srcs); c_srcs=$(kv "$W/b-crtp.rtp" srcs)
check "caller sent 147 of 150 packets (3 dropped on purpose): $c_sent" \
	[ "$c_sent" = 147 ]
check "gateway received all 147: $g_recv" [ "$g_recv" = 147 ]
check "gateway saw RTP only from the relay's gateway side: $g_srcs" \
	eval '[[ "$g_srcs" =~ ^127\.0\.0\.65:[0-9]+$ ]]'
check "caller received all 150 of the gateway's: $c_recv" \
	[ "$c_recv" = 150 -a "$g_sent" = 150 ]
check "caller saw RTP only from the relay's caller side: $c_srcs" \
	eval '[[ "$c_srcs" =~ ^127\.0\.0\.64:[0-9]+$ ]]'
check "caller's stream arrived in sequence, timestamps continuous" \
	[ "$c_recv" -gt 0 -a "$(kv "$W/b-crtp.rtp" seq_gaps)" = 0 -a \
	  "$(kv "$W/b-crtp.rtp" ts_bad)" = 0 ]
mj=$(media_json)
echo "# media: $mj"
check "counted caller->gateway packets = 147" \
	[ "$(json_num "$mj" to_gateway.packets)" = 147 ]
check "counted caller->gateway bytes = 147 * 172" \
	[ "$(json_num "$mj" to_gateway.bytes)" = $((147 * 172)) ]
check "counted caller->gateway loss = 3" \
	[ "$(json_num "$mj" to_gateway.lost)" = 3 ]
check "counted gateway->caller packets = 150, loss 0" \
	[ "$(json_num "$mj" to_caller.packets)" = 150 -a \
	  "$(json_num "$mj" to_caller.lost)" = 0 ]
check "gateway's RTCP report read (fraction 12/256, 3 lost)" \
	[ "$(json_num "$mj" to_gateway.rtcp_report.fraction_lost)" = 12 -a \
	  "$(json_num "$mj" to_gateway.rtcp_report.lost)" = 3 ]
check "gateway's RTCP relayed to the caller" \
	[ "$(kv "$W/b-crtp.rtp" rtcp_recv)" -gt 0 ]
sleep 0.5
check "relay ports closed after the call" no_relay_sockets
equal "metrics: no loss counted once no call runs" \
	"$(metric tollgate_relay_packets_lost_live)" 0

# 2. latching: the caller sends from port 6100 though its SDP says 6000,
#    and starts 1 s late; until then the gateway's RTP goes to 6000
echo "# latching"
gw_sipp l-gw uas.xml;              gp=$LAST_PID
rtpeer_bg l-gwrtp -l 127.0.0.67:7000 -D "$W/l-gw.dest" -n 150 -T 7
grp=$LAST_PID
rtpeer_bg l-crtp -l 127.0.0.66:6100 -L 6000 -D "$W/l-c.dest" -n 100 \
	-s 1000 -T 7
crp=$LAST_PID
caller_sipp l-c uac.xml -d 4500;   cp=$LAST_PID
wait_pid "$cp"; crc=$?
wait_pid "$gp"; grc=$?
wait_pid "$grp"; wait_pid "$crp"
check "latching call set up" [ "$crc" = 0 -a "$grc" = 0 ]
l_recv=$(kv "$W/l-crtp.rtp" recv); l_sdp=$(kv "$W/l-crtp.rtp" sdp_port_recv)
check "before the caller's first packet, RTP went to its SDP port: $l_sdp" \
	[ "${l_sdp:-0}" -gt 0 ]
check "after it, RTP followed the caller to its real port: $l_recv" \
	[ "${l_recv:-0}" -gt 0 ]
check "no packet lost on the way: $l_recv + $l_sdp = 150" \
	[ $((l_recv + l_sdp)) = 150 ]
check "gateway got the caller's 100 from the relay" \
	[ "$(kv "$W/l-gwrtp.rtp" recv)" = 100 ]

# 3. hold: the caller re-INVITEs with a=sendonly after 1.5 s; media keeps
#    flowing to the same ports both ways
echo "# hold"
gw_sipp h-gw uas.xml;              gp=$LAST_PID
rtpeer_bg h-gwrtp -l 127.0.0.67:7000 -D "$W/h-gw.dest" -n 200 -T 8
grp=$LAST_PID
rtpeer_bg h-crtp -l 127.0.0.66:6000 -D "$W/h-c.dest" -n 200 -T 8
crp=$LAST_PID
caller_sipp h-c uac-hold.xml -d 3500;  cp=$LAST_PID
wait_pid "$cp"; crc=$?
wait_pid "$gp"; grc=$?
wait_pid "$grp"; wait_pid "$crp"
check "hold re-INVITE relayed, SDP rewritten both ways" \
	[ "$crc" = 0 -a "$grc" = 0 ]
check "through the hold, gateway got all 200: $(kv "$W/h-gwrtp.rtp" recv)" \
	[ "$(kv "$W/h-gwrtp.rtp" recv)" = 200 ]
check "through the hold, caller got all 200: $(kv "$W/h-crtp.rtp" recv)" \
	[ "$(kv "$W/h-crtp.rtp" recv)" = 200 ]
check "caller got them in sequence" \
	[ "$(kv "$W/h-crtp.rtp" recv)" -gt 0 -a \
	  "$(kv "$W/h-crtp.rtp" seq_gaps)" = 0 ]

# 4. media timeout: an answered call without RTP ends after 2 s
echo "# media timeout"
gw_sipp t-gw uas-bye.xml;          gp=$LAST_PID
t0=$(date +%s%N)
caller_sipp t-c uac-bye.xml;       cp=$LAST_PID
wait_pid "$cp"; crc=$?
t1=$(date +%s%N)
wait_pid "$gp"; grc=$?
el=$(( (t1 - t0) / 1000000 ))
reason='Reason: SIP;cause=200;text="media timeout"'
check "caller got BYE with $reason" \
	eval '[ "$crc" = 0 ] && grep -qF "$reason" "$W/t-c.msg"'
check "gateway got BYE with $reason" \
	eval '[ "$grc" = 0 ] && grep -qF "$reason" "$W/t-gw.msg"'
check "after the configured 2 s, not before: ${el} ms" \
	[ "$el" -ge 2000 -a "$el" -lt 6000 ]
check "call closed with reason media_timeout" \
	grep -q "closed: media_timeout" "$TG_LOG"
# the settlement is written after both legs are closed: give it up to 5 s
for _ in $(seq 50); do
	[ "$(sql "SELECT count(*) FROM cdrs WHERE reason = 'media_timeout'" \
	     2>/dev/null)" = 1 ] && break
	sleep 0.1
done
ncdr=$(sql "SELECT count(*) FROM cdrs" 2>/dev/null)
if [ "${ncdr:-0}" -gt 0 ]; then
	check "CDR reason media_timeout" \
		[ "$(sql "SELECT count(*) FROM cdrs WHERE
		     reason = 'media_timeout'")" = 1 ]
	check "billing ended at the last packet (none: at the answer)" \
		[ "$(sql "SELECT count(*) FROM cdrs WHERE
		     reason = 'media_timeout' AND billed_seconds = 0
		     AND end_at - answer_at < interval '1 second'")" = 1 ]
	check "CDRs of calls with media carry its statistics" \
		[ "$(sql "SELECT count(*) FROM cdrs WHERE
		     reason <> 'media_timeout' AND answer_at IS NOT NULL
		     AND (media #>> '{streams,0,to_gateway,packets}')::bigint > 0
		     AND (media #>> '{streams,0,to_caller,packets}')::bigint > 0")" -ge 1 ]
else
	fail "no CDR written: CDR reason not checked"
fi

stop_tg

# 5. port exhaustion: one pair per side = one call; the second gets 503,
#    a third after the first ended gets ports again
echo "# port exhaustion"
start_tg ports "rtp_ports 41200-41203" || exit 99
gw_sipp p-gw uas.xml -m 2;         gp=$LAST_PID
caller_sipp p-c1 uac.xml -d 2500;  c1=$LAST_PID
sleep 1
RTP_PORT=6010 caller_sipp p-c2 uac-503.xml -p 5064; c2=$LAST_PID
wait_pid "$c2"; c2rc=$?
wait_pid "$c1"; c1rc=$?
check "second call refused with 503 while the ports are taken" \
	[ "$c2rc" = 0 ]
check "first call unharmed" [ "$c1rc" = 0 ]
caller_sipp p-c3 uac.xml -d 300;   c3=$LAST_PID
wait_pid "$c3"; c3rc=$?
wait_pid "$gp"; grc=$?
check "ports came back: a later call gets them" [ "$c3rc" = 0 -a "$grc" = 0 ]
check "daemon still running" kill -0 "$TG_PID"
stop_tg

# 6. low balance: 7 s of credit, warning 3 s before the cut-off; the
#    gateway sends silence, so what the caller hears is the tone alone
echo "# low-balance tone"
pgtest_psql -c "INSERT INTO accounts (name, balance, max_calls, rate_plan_id)
	SELECT 'rtplow', 7000, 10, id FROM rate_plans WHERE name = 'rtp'" ||
	exit 99
TG_ACCOUNT=rtplow start_tg tone "rtp_ports 41300-41399" \
	"low_balance_warning 3" || exit 99
gw_sipp w-gw uas-bye.xml;          gp=$LAST_PID
rtpeer_bg w-gwrtp -l 127.0.0.67:7000 -D "$W/w-gw.dest" -n 600 -T 12
grp=$LAST_PID
rtpeer_bg w-crtp -l 127.0.0.66:6000 -D "$W/w-c.dest" -n 600 -T 12
crp=$LAST_PID
caller_sipp w-c uac-bye.xml;       cp=$LAST_PID
wait_pid "$cp"; crc=$?
wait_pid "$gp"; grc=$?
wait_pid "$grp"; wait_pid "$crp"
tone_ms=$(kv "$W/w-crtp.rtp" tone_ms); tone_at=$(kv "$W/w-crtp.rtp" tone_at_ms)
w_recv=$(kv "$W/w-crtp.rtp" recv)
check "call cut off for credit with BYE on both legs" \
	eval '[ "$crc" = 0 -a "$grc" = 0 ] &&
	      grep -q "closed: credit" "$TG_LOG"'
check "low-balance event reached the relay" \
	grep -q "warning tone toward the caller" "$TG_LOG"
check "caller heard a 1 kHz tone for about 1 s: ${tone_ms} ms" \
	[ "${tone_ms:-0}" -ge 900 -a "${tone_ms:-0}" -le 1100 ]
media_ms=$((w_recv * 20))
check "the tone began before the cut-off: at ${tone_at} of ${media_ms} ms" \
	[ "${tone_at:--1}" -ge 0 -a $((tone_at + tone_ms)) -lt "$media_ms" ]
check "tone in the gateway's stream: one SSRC, no sequence or timestamp gap" \
	[ "$(kv "$W/w-crtp.rtp" ssrc_changes)" = 0 -a \
	  "$(kv "$W/w-crtp.rtp" seq_gaps)" = 0 -a \
	  "$(kv "$W/w-crtp.rtp" ts_bad)" = 0 ]
check "no tone toward the gateway" \
	[ "$(kv "$W/w-gwrtp.rtp" tone_ms)" = 0 ]
stop_tg

# 7. relaying off: SDP verbatim both ways, no relay socket
echo "# relaying off"
start_tg direct "rtp_relay no" || exit 99
gw_sipp d-gw uas-direct.xml;       gp=$LAST_PID
caller_sipp d-c uac-direct.xml -d 300; cp=$LAST_PID
wait_pid "$cp"; crc=$?
wait_pid "$gp"; grc=$?
check "relaying off: both SDP bodies verbatim" [ "$crc" = 0 -a "$grc" = 0 ]
check "relaying off: relay not started, no relay socket" \
	eval 'grep -q "media relay off" "$TG_LOG" && no_relay_sockets'
check "relaying off: no media line logged" \
	eval '! grep -q "media {" "$TG_LOG"'
stop_tg

summary
