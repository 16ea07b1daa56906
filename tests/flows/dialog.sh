#!/usr/bin/env bash
# In-dialog signalling end to end: session timers (RFC 4028) on both legs,
# UPDATE (RFC 3311) and PRACK (RFC 3262) relayed, late offer, with the
# real daemon, billing on a private PostgreSQL (tests/lib/pgtest.sh), the
# media relay, and SIPp as caller and gateway (scenarios in
# tests/flows/dialog/).
#
#   481       tollgate refreshes the gateway's leg (UPDATE, 4 s); the
#             second refresh gets 481: BYE on both legs (Reason with the
#             481), CDR reason session_timer, billed up to the first
#             refresh (2 s), not to the moment the 481 came (4 s)
#   expire    the caller is the refresher (3 s), refreshes once and then
#             no more: BYE on both legs 2 s after that refresh (3 s less
#             the RFC's margin), billed up to the refresh
#   refresh   the caller's refreshes (UPDATE, re-INVITE without SDP) are
#             answered by tollgate on the caller's leg, a re-INVITE with
#             SDP is relayed; the call lives past three intervals
#   ours      caller and gateway without session timers: tollgate is the
#             refresher of both legs and refreshes each with a re-INVITE
#             carrying the SDP it sent on that leg, 2 s after the answer
#   422       a caller's interval below min_se gets 422 with Min-SE; a
#             gateway's 422 is retried once, in the same dialog, with the
#             gateway's Min-SE
#   update    UPDATE with SDP relayed both ways in the confirmed dialog,
#             each body rewritten to the relay's addresses
#   early     the same in the early dialog of a 183 with a To tag
#   prack     a gateway's reliable 183 with SDP reaches a caller with
#             100rel reliably (tollgate's RSeq), the caller's PRACK goes
#             to the gateway with the gateway's RAck; early media counted
#             both ways (tests/rtp/rtpeer)
#   norel     the same 183 for a caller without 100rel: relayed as an
#             ordinary 183, tollgate PRACKs the gateway itself
#   late      an INVITE without SDP: the gateway's offer in its 200 and
#             the caller's answer in its ACK, both rewritten by the relay;
#             RTP counted both ways (tests/rtp/rtpeer)
#
# Addresses (only 127.0.5.70-99, so that no other suite collides):
#   127.0.5.70:5060  tollgate SIP       127.0.5.73  relay, caller side
#   127.0.5.71:5061  SIPp caller        127.0.5.74  relay, gateway side
#   127.0.5.72:5080  SIPp gateway       127.0.5.75:8080  REST API
#   127.0.5.76:6000  caller's RTP       127.0.5.77:7000  gateway's RTP
#
# make check runs it from the top build directory (top_srcdir,
# top_builddir, SIPP from the environment).  Prints one line per check and
# "N passed, M failed" last; exit status 1 if a check failed, 77 without
# SIPp, 99 if the set-up failed.  DIALOG_KEEP=1 keeps the work directory.
set -u

here=$(cd "$(dirname "$0")" && pwd)
: "${top_srcdir:=$(cd "$here/../.." && pwd)}"
: "${top_builddir:=$PWD}"
export top_srcdir top_builddir
: "${SIPP:=$(command -v sipp || true)}"

TG="$top_builddir/tollgate"
RTPEER="$top_builddir/tests/rtp/rtpeer"
XML="$top_srcdir/tests/flows/dialog"

if [ -z "$SIPP" ] || [ ! -x "$SIPP" ]; then
	echo "dialog: sipp not found: skipped"
	exit 77
fi
for b in "$TG" "$RTPEER"; do
	[ -x "$b" ] || { echo "dialog: $b not built" >&2; exit 99; }
done

TEST_KEEP=${DIALOG_KEEP:-}
# shellcheck source=../lib/check.sh
. "$top_srcdir/tests/lib/check.sh"
# shellcheck source=../lib/pgtest.sh
. "$top_srcdir/tests/lib/pgtest.sh"
test_init dialog || exit 99
W=$TEST_DIR
TG_PID=
TG_LOG=

pgtest_start || exit 99

# one second costs 1000 units, billed by the second
pgtest_psql <<'SQL' || exit 99
INSERT INTO rate_plans (name) VALUES ('dialog');
INSERT INTO rates (rate_plan_id, prefix, price_per_minute,
                   initial_increment, subsequent_increment)
  SELECT id, '', 60000, 1, 1 FROM rate_plans WHERE name = 'dialog';
INSERT INTO accounts (name, balance, max_calls, rate_plan_id)
  SELECT 'dlg', 1000000000, 10, id FROM rate_plans WHERE name = 'dialog';
SQL

# start_tg NAME [CONFIG LINES...]: a daemon with the base configuration
start_tg() {
	local name=$1
	shift
	{
		echo "sip_listen udp:127.0.5.70:5060"
		echo "trusted_peer 127.0.5.71 account=dlg"
		echo "gateway gw 127.0.5.72:5080"
		echo "route default gw"
		echo "db_conninfo $PGTEST_CONNINFO"
		echo "rtp_addr 127.0.5.73"
		echo "rtp_addr_gateway 127.0.5.74"
		echo "rtp_ports 43000-43099"
		echo "media_timeout 0"
		echo "api_listen 127.0.5.75:8080"
		echo "node_name dialog-test"
		echo "log_level debug"
		echo "state_dir $W/state"
		echo "min_se ${MIN_SE:-2}"
		printf '%s\n' "$@"
	} >"$W/$name.conf"
	mkdir -p "$W/state"
	TG_LOG="$W/$name.log"
	"$TG" -f "$W/$name.conf" >"$TG_LOG" 2>&1 &
	TG_PID=$!
	pid_remember "$TG_PID"
	wait_line "$TG_LOG" "running" 10 "$TG_PID" && return 0
	echo "dialog: tollgate did not start:" >&2
	cat "$TG_LOG" >&2
	return 1
}

stop_tg() {
	local rc
	[ -n "$TG_PID" ] || return 0
	pid_stop "$TG_PID" 15
	rc=$?
	TG_PID=
	return "$rc"
}

# sipp_bg NAME SCENARIO ARGS...: SIPp in the background (one call, 30 s
# at most), its PID in LAST_PID, its <log> lines in $W/NAME.log
sipp_bg() {
	local name=$1 sf=$2
	shift 2
	: >"$W/$name.log"
	"$SIPP" -sf "$XML/$sf" -nostdin -m 1 -timeout 30s -timeout_error \
		-recv_timeout 15000 \
		-trace_msg -message_file "$W/$name.msg" \
		-trace_err -error_file "$W/$name.err" \
		-trace_logs -log_file "$W/$name.log" \
		"$@" >"$W/$name.out" 2>&1 </dev/null &
	LAST_PID=$!
	pid_remember "$LAST_PID"
}

gw_sipp() {
	sipp_bg "$1" "$2" -i 127.0.5.72 -p 5080 -key dest_file "$W/$1.dest"
	wait_bound udp 127.0.5.72 5080 5 "$LAST_PID" || true
}

caller_sipp() {
	sipp_bg "$1" "$2" 127.0.5.70:5060 -i 127.0.5.71 -p 5061 -s 1000 \
		-key dest_file "$W/$1.dest"
}

# rtpeer_bg NAME ARGS...: an RTP peer, its report in $W/NAME.rtp
rtpeer_bg() {
	local name=$1
	shift
	"$RTPEER" "$@" >"$W/$name.rtp" 2>"$W/$name.rtperr" &
	LAST_PID=$!
	pid_remember "$LAST_PID"
}

# value of KEY in an rtpeer report
kv() { sed -n "s/^$2=//p" "$W/$1.rtp"; }

# run_call NAME [CALLER]: the scenarios caller-NAME.xml (or
# caller-CALLER.xml) and gw-NAME.xml, both must end well; MARK is the
# daemon log's length before the call
run_call() {
	local name=$1 gp cp grc crc
	MARK=$(wc -l <"$TG_LOG")
	gw_sipp "$name-gw" "gw-$name.xml"; gp=$LAST_PID
	caller_sipp "$name-caller" "caller-${2:-$name}.xml"; cp=$LAST_PID
	wait "$cp"; crc=$?
	wait "$gp"; grc=$?
	equal "$name: the caller's scenario ran through" "$crc" 0
	equal "$name: the gateway's scenario ran through" "$grc" 0
}

# logged PATTERN: how often the daemon logged it since MARK
logged() {
	local n
	n=$(tail -n "+$((MARK + 1))" "$TG_LOG" | grep -c "$1")
	echo "${n:-0}"
}

# ms NAME TAG: the time (ms since the epoch) of the log line "TAG s us"
ms() {
	awk -v t="$2" '$1 == t { printf "%.0f\n", $2 * 1000 + int($3 / 1000);
		exit }' "$W/$1.log"
}

# cdr FIELDS: of the last CDR
cdr() {
	sql "SELECT $1 FROM cdrs ORDER BY created_at DESC, id DESC LIMIT 1"
}

# wait until the call's CDR is written (10 s at most)
wait_cdrs() {
	local i
	for i in $(seq 1 100); do
		[ "$(sql "SELECT count(*) FROM cdrs")" = "$1" ] && return 0
		sleep 0.1
	done
	return 1
}

# talk time of the last CDR in ms
talk_ms() {
	cdr "(extract(epoch FROM end_at - answer_at) * 1000)::bigint"
}

ncdr=0

# ------------------------------------------------------------- the calls
start_tg st "session_expires 4" || exit 99

echo "# 481: tollgate's refresh of the gateway's leg refused"
run_call 481
ncdr=$((ncdr + 1))
check "481: the CDR is written" wait_cdrs $ncdr
equal "481: CDR reason session_timer, hung up by tollgate" \
	"$(cdr "reason || ' ' || hangup_by")" "session_timer tollgate"
a=$(ms 481-caller ANSWER); r=$(ms 481-gw REFRESH); b=$(ms 481-caller BYE)
within "481: first refresh 2 s after the answer (ms)" \
	$((r - a)) 1800 2500
within "481: BYE 4 s after the answer, after the 481 (ms)" \
	$((b - a)) 3800 4800
within "481: billed up to the first refresh, not the 481 (talk ms)" \
	"$(talk_ms)" 1800 2600
within "481: billed seconds: 2 or 3 (not 4)" "$(cdr billed_seconds)" 2 3
equal "481: cost is the billed seconds at 1000 a second" \
	"$(cdr "cost = billed_seconds * 1000")" t

echo "# expire: the caller stops refreshing"
run_call expire
ncdr=$((ncdr + 1))
check "expire: the CDR is written" wait_cdrs $ncdr
equal "expire: CDR reason session_timer" "$(cdr reason)" session_timer
r=$(ms expire-caller REFRESH); b=$(ms expire-caller BYE)
gb=$(ms expire-gw BYE)
within "expire: BYE 2 s after the last refresh (3 s less 1 s) (ms)" \
	$((b - r)) 1800 2600
within "expire: the gateway's BYE at the same moment (ms)" \
	$((gb - b + 1000)) 500 1500
within "expire: billed up to the refresh (talk ms)" "$(talk_ms)" 800 1400
equal "expire: tollgate answered the caller's refresh itself" \
	"$(logged "session refresh (UPDATE) from the caller answered")" 1
equal "expire: the caller's leg expired" \
	"$(logged "session timer of the caller leg expired")" 1

echo "# refresh: refreshes keep the call"
run_call refresh
ncdr=$((ncdr + 1))
check "refresh: the CDR is written" wait_cdrs $ncdr
equal "refresh: CDR reason caller" "$(cdr reason)" caller
a=$(ms refresh-caller ANSWER); h=$(ms refresh-caller HANGUP)
within "refresh: the call lasted past the 3 s session (ms)" \
	$((h - a)) 4000 8000
equal "refresh: no session timer expired" \
	"$(logged "session timer of the")" 0
equal "refresh: three UPDATEs and a re-INVITE answered by tollgate" \
	"$(logged "session refresh (UPDATE) from the caller answered")\
$(logged "session refresh (INVITE) from the caller answered")" "31"
equal "refresh: the re-INVITE with SDP relayed" \
	"$(logged "INVITE from the caller relayed")" 1

echo "# ours: tollgate refreshes callers and gateways without timers"
run_call ours
ncdr=$((ncdr + 1))
check "ours: the CDR is written" wait_cdrs $ncdr
equal "ours: CDR reason caller" "$(cdr reason)" caller
a=$(ms ours-caller ANSWER); rc=$(ms ours-caller REFRESH)
rg=$(ms ours-gw REFRESH)
within "ours: the caller refreshed 2 s after the answer (ms)" \
	$((rc - a)) 1800 2500
within "ours: the gateway refreshed 2 s after the answer (ms)" \
	$((rg - a)) 1800 2500

echo "# 422"
caller_sipp 422c-caller caller-422.xml; cp=$LAST_PID
wait "$cp"; rc=$?
equal "422: a caller's 1 s gets 422 with Min-SE 2" "$rc" 0
run_call 422 plain
equal "422: the gateway's 422 retried once" \
	"$(logged "wants a session timer of 6 s at least")" 1
ncdr=$((ncdr + 1))
check "422: the CDR of the retried call is written" wait_cdrs $ncdr
equal "422: the retried call was answered and hung up by the caller" \
	"$(cdr reason)" caller

stop_tg
equal "tollgate exits 0 on SIGTERM" "$?" 0

# without session timers: no refreshes in the way of the flows below
start_tg nost "session_expires 0" || exit 99

echo "# update: UPDATE with SDP relayed both ways"
run_call update
ncdr=$((ncdr + 1))
check "update: the CDR is written" wait_cdrs $ncdr
equal "update: CDR reason caller" "$(cdr reason)" caller
equal "update: relayed from the caller and from the gateway" \
	"$(logged "UPDATE from the caller relayed")$(logged "UPDATE from the gateway relayed")" 11

echo "# early: UPDATE with SDP both ways in the early dialog"
run_call early
ncdr=$((ncdr + 1))
check "early: the CDR is written" wait_cdrs $ncdr
equal "early: CDR reason caller" "$(cdr reason)" caller
equal "early: relayed from the caller and from the gateway" \
	"$(logged "UPDATE from the caller relayed")$(logged "UPDATE from the gateway relayed")" 11

echo "# prack: a reliable 183 with SDP relayed, the PRACK relayed, early media"
rtpeer_bg prack-crtp -l 127.0.5.76:6000 -D "$W/prack-caller.dest" -n 100 -T 8
crp=$LAST_PID
rtpeer_bg prack-grtp -l 127.0.5.77:7000 -D "$W/prack-gw.dest" -n 100 -T 8
grp=$LAST_PID
run_call prack
wait "$crp"; wait "$grp"
ncdr=$((ncdr + 1))
check "prack: the CDR is written" wait_cdrs $ncdr
equal "prack: CDR reason caller" "$(cdr reason)" caller
equal "prack: the caller's PRACK relayed" \
	"$(logged "PRACK from the caller relayed")" 1
equal "prack: early media, caller to gateway: 100 packets" \
	"$(kv prack-crtp sent) $(kv prack-grtp recv)" "100 100"
equal "prack: early media, gateway to caller: 100 packets" \
	"$(kv prack-grtp sent) $(kv prack-crtp recv)" "100 100"

echo "# norel: a caller without 100rel, tollgate PRACKs the gateway"
run_call norel
ncdr=$((ncdr + 1))
check "norel: the CDR is written" wait_cdrs $ncdr
equal "norel: CDR reason caller" "$(cdr reason)" caller
equal "norel: tollgate's own PRACK" "$(logged "PRACK 6001 to the gateway")" 1

echo "# late offer: INVITE without SDP, RTP both ways through the relay"
rtpeer_bg late-crtp -l 127.0.5.76:6000 -D "$W/late-caller.dest" -n 100 -T 8
crp=$LAST_PID
rtpeer_bg late-grtp -l 127.0.5.77:7000 -D "$W/late-gw.dest" -n 100 -T 8
grp=$LAST_PID
run_call late
wait "$crp"; wait "$grp"
ncdr=$((ncdr + 1))
check "late: the CDR is written" wait_cdrs $ncdr
equal "late: CDR reason caller" "$(cdr reason)" caller
equal "late: the caller's 100 packets reached the gateway" \
	"$(kv late-crtp sent) $(kv late-grtp recv)" "100 100"
equal "late: the gateway's 100 packets reached the caller" \
	"$(kv late-grtp sent) $(kv late-crtp recv)" "100 100"
check "late: the gateway heard RTP only from the relay: $(kv late-grtp srcs)" \
	eval '[[ "$(kv late-grtp srcs)" =~ ^127\.0\.5\.74:[0-9]+$ ]]'
check "late: the caller heard RTP only from the relay: $(kv late-crtp srcs)" \
	eval '[[ "$(kv late-crtp srcs)" =~ ^127\.0\.5\.73:[0-9]+$ ]]'

stop_tg
equal "tollgate exits 0 on SIGTERM" "$?" 0

# ------------------------------------------ start-up refuses bad values
echo "# configuration"
MIN_SE=120 start_tg badse "session_expires 60" >/dev/null 2>&1
wait "$TG_PID" 2>/dev/null; rc=$?
TG_PID=
check "session_expires below min_se: exit not 0" [ "$rc" != 0 ]
check "the error names file:line of session_expires" \
	grep -q "badse.conf:15: session_expires: 60 is below min_se 120" \
	"$W/badse.log"

summary
