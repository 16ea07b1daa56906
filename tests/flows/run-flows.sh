#!/bin/bash
# tests/flows/run-flows.sh - SIPp call flows against the real daemon
#
# Usage: run-flows.sh [FLOW...]
#
# Starts a private PostgreSQL (tests/lib/pgtest.sh), seeds two accounts,
# starts two tollgate daemons (127.0.0.31:5060 udp+tcp with digest_auth yes,
# 127.0.0.31:5070 udp with digest_auth no) and runs every call flow with SIPp
# as the caller and as one or two gateways.  With FLOW arguments (e.g.
# "01-basic 18-tcp") only those run.  "run-flows.sh --list" lists the flows.
#
# Prints "PASS name" or "FAIL name (why, logs)" per flow and "N passed, M
# failed" at the end; exits 1 when a flow failed or a daemon did not exit 0
# on SIGTERM.  Logs are kept under a temporary directory when anything
# failed (TG_KEEP=1 keeps them always).
#
# Environment (set by make check): top_srcdir, top_builddir, SIPP, VALGRIND.
# TG_VALGRIND=1 runs the daemons under valgrind (memcheck, definite leaks are
# errors) with longer SIPp timeouts.
#
# Addresses (loopback only): tollgate 127.0.0.31:5060 (udp, tcp) and
# 127.0.0.31:5070 (udp); trusted caller 127.0.0.32; untrusted caller
# 127.0.0.33; gw1 127.0.0.34:5080 (udp) and 127.0.0.34:5082 (tcp); gw2
# 127.0.0.35:5080; trusted by P-Asserted-Identity 127.0.0.36.

set -u

here=$(cd "$(dirname "$0")" && pwd)
: "${top_srcdir:=$(cd "$here/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
: "${SIPP:=$(command -v sipp || true)}"
: "${VALGRIND:=$(command -v valgrind || true)}"
: "${TG_VALGRIND:=0}"

flowdir=$top_srcdir/tests/flows
TG=$top_builddir/tollgate

ALL_FLOWS="01-basic 02-callee-bye 03-busy 04-notfound 05-noanswer 06-cancel
07-early-media 08-failover 09-hold-caller 10-hold-gw 11-info 12-glare
13-untrusted 13b-no-digest 14-digest-ok 15-digest-bad 16-max-forwards
17-options 18-tcp 19-pai-peer 19b-pai-unknown"

if [ "${1:-}" = "--list" ]; then
	echo $ALL_FLOWS | tr ' ' '\n'
	exit 0
fi

# -------------------------------------------------------------- addresses
TG_IP=127.0.0.31
TG_PORT=5060
TG2_PORT=5070
CALLER_IP=127.0.0.32
UNTRUSTED_IP=127.0.0.33
GW1_IP=127.0.0.34
GW2_IP=127.0.0.35
PAI_IP=127.0.0.36
GW_PORT=5080
GWT_PORT=5082

# ------------------------------------------------------------- timeouts
# Every SIPp ends by itself: -recv_timeout bounds each wait for a message,
# -timeout the whole run, and "timeout" kills it if both fail.
if [ "$TG_VALGRIND" = 1 ]; then
	T_RECV=30000            # ms
	T_GLOBAL=90             # s
	T_DAEMON_UP=60          # s
	T_DAEMON_DOWN=60        # s
	T_GW_END=40             # s
else
	T_RECV=10000
	T_GLOBAL=30
	T_DAEMON_UP=15
	T_DAEMON_DOWN=20
	T_GW_END=10
fi
T_KILL=$((T_GLOBAL + 10))

# ---------------------------------------------------------------- checks
die() {
	echo "run-flows: $*" >&2
	exit 1
}

if [ -z "$SIPP" ] || [ ! -x "$SIPP" ]; then
	echo "run-flows: sipp not found; skipping"
	exit 77
fi
[ -x "$TG" ] || die "$TG not built"
if [ "$TG_VALGRIND" = 1 ]; then
	if [ -z "$VALGRIND" ] || [ ! -x "$VALGRIND" ]; then
		echo "run-flows: valgrind not found; skipping"
		exit 77
	fi
fi
command -v ss >/dev/null 2>&1 || die "ss (iproute2) is needed"
command -v timeout >/dev/null 2>&1 || die "timeout (coreutils) is needed"

selected=
if [ $# -gt 0 ]; then
	for f in "$@"; do
		case " $(echo $ALL_FLOWS) " in
		*" $f "*) selected="$selected $f" ;;
		*) die "unknown flow '$f' (run-flows.sh --list)" ;;
		esac
	done
else
	selected=$ALL_FLOWS
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/tollgate-flows.XXXXXX") ||
	die "cannot create a temporary directory"

# ------------------------------------------------------ cleanup on exit
declare -A DPID=()      # daemon tag -> pid
declare -A SPID=()      # sipp tag of the current flow -> pid
declare -A SRC=()       # sipp tag of the current flow -> exit code
keep=${TG_KEEP:-}

cleanup() {
	local t
	for t in "${!SPID[@]}"; do
		kill -TERM "${SPID[$t]}" 2>/dev/null
	done
	for t in "${!DPID[@]}"; do
		kill -TERM "${DPID[$t]}" 2>/dev/null
	done
	for t in "${!DPID[@]}"; do
		wait_gone "${DPID[$t]}" 10 || kill -KILL "${DPID[$t]}" 2>/dev/null
	done
	if type pgtest_stop >/dev/null 2>&1; then
		pgtest_stop
	fi
	if [ -n "$keep" ]; then
		echo "run-flows: logs kept in $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

# wait_gone PID SECONDS: true once PID (our child) has ended
wait_gone() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}

# wait_bound udp|tcp IP PORT SECONDS [PID]: until something listens there
wait_bound() {
	local opt i
	case $1 in
	udp) opt=-Hlnu ;;
	tcp) opt=-Hlnt ;;
	esac
	for ((i = 0; i < $4 * 10; i++)); do
		if [ -n "$(ss $opt "src $2:$3" 2>/dev/null)" ]; then
			return 0
		fi
		if [ -n "${5:-}" ] && ! kill -0 "$5" 2>/dev/null; then
			return 1
		fi
		sleep 0.1
	done
	return 1
}

# ---------------------------------------------------------- database
# shellcheck source=../lib/pgtest.sh
. "$top_srcdir/tests/lib/pgtest.sh"
pgtest_start >"$work/pgtest.log" 2>&1 || {
	cat "$work/pgtest.log" >&2
	keep=1
	die "cannot start the PostgreSQL fixture (log: $work/pgtest.log)"
}

pgtest_psql >>"$work/pgtest.log" 2>&1 <<'SQL' || {
INSERT INTO accounts (name, status)
	VALUES ('flowtest', 'active');
INSERT INTO accounts (name, status, sip_username, sip_ha1)
	VALUES ('flowuser', 'active', 'flowuser',
		md5('flowuser:tollgate:flowpass'));
SQL
	cat "$work/pgtest.log" >&2
	keep=1
	die "cannot seed the accounts (log: $work/pgtest.log)"
}

# ----------------------------------------------------------- daemons
# write_conf FILE LISTEN... : the configuration both daemons share, with
# their own listeners, digest mode, API address and state directory
write_conf() {
	local file=$1 digest=$2 api=$3 state=$4
	shift 4
	mkdir -p "$state"
	{
		echo "# generated by tests/flows/run-flows.sh"
		for l in "$@"; do
			echo "sip_listen $l"
		done
		cat <<EOF
trusted_peer $CALLER_IP account=flowtest
trusted_peer $PAI_IP header=P-Asserted-Identity
gateway gw1 $GW1_IP:$GW_PORT
gateway gw2 $GW2_IP:$GW_PORT
gateway gwt $GW1_IP:$GWT_PORT transport=tcp
route 1 gw1
route 2 gw1,gw2
route 3 gwt
route default gw1
copy_header X-Account-Code
sip_realm tollgate
digest_auth $digest
ring_timeout 3
max_call_duration 0
db_conninfo $PGTEST_CONNINFO
state_dir $state
log_level debug
billing no
rtp_relay no
media_timeout 0
api_listen $api
EOF
	} >"$file"
}

# daemon_start TAG CONF UDPPORT: start tollgate, wait until it listens
daemon_start() {
	local tag=$1 conf=$2 port=$3
	local -a cmd=("$TG" -f "$conf" -d "$PGTEST_CONNINFO")

	if [ "$TG_VALGRIND" = 1 ]; then
		cmd=("$VALGRIND" --leak-check=full --error-exitcode=42
		     --errors-for-leak-kinds=definite --track-fds=no
		     --log-file="$work/$tag.valgrind" "${cmd[@]}")
	fi
	"${cmd[@]}" >"$work/$tag.log" 2>&1 &
	DPID[$tag]=$!
	if ! wait_bound udp "$TG_IP" "$port" "$T_DAEMON_UP" "${DPID[$tag]}"; then
		keep=1
		echo "run-flows: daemon $tag did not come up; log:" >&2
		tail -n 30 "$work/$tag.log" >&2
		die "daemon $tag failed to start (log: $work/$tag.log)"
	fi
}

# daemon_stop TAG: SIGTERM, require exit 0 in time
daemon_stop() {
	local tag=$1 pid=${DPID[$1]} rc
	kill -TERM "$pid" 2>/dev/null
	if ! wait_gone "$pid" "$T_DAEMON_DOWN"; then
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		unset "DPID[$tag]"
		echo "FAIL daemon-$tag (no exit within ${T_DAEMON_DOWN} s of SIGTERM, log: $work/$tag.log)"
		return 1
	fi
	wait "$pid"
	rc=$?
	unset "DPID[$tag]"
	if [ "$rc" != 0 ]; then
		if [ "$rc" = 42 ]; then
			echo "FAIL daemon-$tag (valgrind errors, log: $work/$tag.valgrind)"
		else
			echo "FAIL daemon-$tag (exit $rc after SIGTERM, log: $work/$tag.log)"
		fi
		return 1
	fi
	echo "PASS daemon-$tag (exit 0 after SIGTERM)"
	return 0
}

write_conf "$work/main.conf" yes "$TG_IP:8080" "$work/state-main" \
	"udp:$TG_IP:$TG_PORT" "tcp:$TG_IP:$TG_PORT"
write_conf "$work/nodigest.conf" no "$TG_IP:8081" "$work/state-nodigest" \
	"udp:$TG_IP:$TG2_PORT"

daemon_start main "$work/main.conf" "$TG_PORT"
wait_bound tcp "$TG_IP" "$TG_PORT" "$T_DAEMON_UP" "${DPID[main]}" ||
	die "daemon main does not listen on tcp:$TG_IP:$TG_PORT"
daemon_start nodigest "$work/nodigest.conf" "$TG2_PORT"

# ------------------------------------------------------- SIPp helpers
# The current flow's directory and the daemon log offsets at its start.
fdir=
declare -A DOFF=()

# gw_start TAG SCENARIO IP PORT [u1|t1]: a gateway SIPp in the background
gw_start() {
	local tag=$1 sf=$2 ip=$3 port=$4 tp=${5:-u1} proto=udp
	[ "$tp" = t1 ] && proto=tcp
	timeout -k 5 "$T_KILL" "$SIPP" -sf "$flowdir/$sf" -t "$tp" \
		-i "$ip" -p "$port" -bind_local -m 1 \
		-timeout "${T_GLOBAL}s" -recv_timeout "$T_RECV" -nostdin \
		-trace_msg -message_file "$fdir/$tag.msg" \
		-trace_err -error_file "$fdir/$tag.err" \
		>"$fdir/$tag.out" 2>&1 &
	SPID[$tag]=$!
	if ! wait_bound "$proto" "$ip" "$port" 5 "${SPID[$tag]}"; then
		echo "$tag: SIPp did not bind $proto:$ip:$port" >>"$fdir/why"
		return 1
	fi
	return 0
}

# caller_run TAG SCENARIO IP PORT DEST [u1|t1] [SIPP ARGS...]: the caller
# SIPp in the foreground; its exit code goes to SRC[TAG]
caller_run() {
	local tag=$1 sf=$2 ip=$3 port=$4 dest=$5 tp=${6:-u1}
	shift 6 2>/dev/null || shift $#
	timeout -k 5 "$T_KILL" "$SIPP" "$dest" -sf "$flowdir/$sf" -t "$tp" \
		-i "$ip" -p "$port" -bind_local -m 1 \
		-timeout "${T_GLOBAL}s" -timeout_error -recv_timeout "$T_RECV" \
		-cid_str 'flowcaller-%u-%p@flow.invalid' -nostdin \
		-trace_msg -message_file "$fdir/$tag.msg" \
		-trace_err -error_file "$fdir/$tag.err" \
		"$@" >"$fdir/$tag.out" 2>&1
	SRC[$tag]=$?
}

# gw_wait: wait for every gateway SIPp of the flow to end by itself, which
# it does right after the caller when the flow went well
gw_wait() {
	local t
	for t in "${!SPID[@]}"; do
		if ! wait_gone "${SPID[$t]}" "$T_GW_END"; then
			echo "$t still running ${T_GW_END} s after the caller" \
				>>"$fdir/why"
			kill -TERM "${SPID[$t]}" 2>/dev/null
		fi
		wait "${SPID[$t]}"
		SRC[$t]=$?
		unset "SPID[$t]"
	done
}

# gw_stop TAG: end a gateway that is expected to get nothing
gw_stop() {
	local tag=$1
	sleep 0.5
	kill -TERM "${SPID[$tag]}" 2>/dev/null
	wait "${SPID[$tag]}"
	SRC[$tag]=$?
	unset "SPID[$tag]"
}

# expect_rc TAG... : every named SIPp exited 0
expect_rc() {
	local t ok=0
	for t in "$@"; do
		if [ "${SRC[$t]:-none}" != 0 ]; then
			echo "$t exit ${SRC[$t]:-none}" >>"$fdir/why"
			ok=1
		fi
	done
	return $ok
}

# count_requests TAG METHOD: requests of METHOD the SIPp TAG received
count_requests() {
	local f=$fdir/$1.msg
	[ -f "$f" ] || { echo 0; return; }
	awk -v m="$2" '
		/message received/ { rx = 1; next }
		/message sent/ { rx = 0; next }
		rx && $1 == m && $3 ~ /^SIP\/2\.0/ { n++ }
		END { print n + 0 }' "$f"
}

# expect_none TAG METHOD: the SIPp TAG received no METHOD request
expect_none() {
	local n
	n=$(count_requests "$1" "$2")
	if [ "$n" != 0 ]; then
		echo "$1 received $n $2 request(s), expected none" >>"$fdir/why"
		return 1
	fi
	return 0
}

# expect_some TAG METHOD: the SIPp TAG received at least one METHOD
expect_some() {
	local n
	n=$(count_requests "$1" "$2")
	if [ "$n" = 0 ]; then
		echo "$1 received no $2 request" >>"$fdir/why"
		return 1
	fi
	return 0
}

TG_UDP=$TG_IP:$TG_PORT

# --------------------------------------------------------------- flows
# Each flow returns 0 when it passed; on failure it has written why.

flow_01_basic() {
	gw_start gw 01-basic-gw.xml $GW1_IP $GW_PORT || return 1
	caller_run caller 01-basic-caller.xml $CALLER_IP 5101 $TG_UDP
	gw_wait
	expect_rc caller gw
}

flow_02_callee_bye() {
	gw_start gw 02-callee-bye-gw.xml $GW1_IP $GW_PORT || return 1
	caller_run caller 02-callee-bye-caller.xml $CALLER_IP 5102 $TG_UDP
	gw_wait
	expect_rc caller gw
}

flow_03_busy() {
	gw_start gw 03-busy-gw.xml $GW1_IP $GW_PORT || return 1
	caller_run caller 03-busy-caller.xml $CALLER_IP 5103 $TG_UDP
	gw_wait
	expect_rc caller gw
}

flow_04_notfound() {
	gw_start gw 04-notfound-gw.xml $GW1_IP $GW_PORT || return 1
	caller_run caller 04-notfound-caller.xml $CALLER_IP 5104 $TG_UDP
	gw_wait
	expect_rc caller gw
}

flow_05_noanswer() {
	gw_start gw 05-noanswer-gw.xml $GW1_IP $GW_PORT || return 1
	caller_run caller 05-noanswer-caller.xml $CALLER_IP 5105 $TG_UDP
	gw_wait
	expect_rc caller gw
}

flow_06_cancel() {
	gw_start gw 06-cancel-gw.xml $GW1_IP $GW_PORT || return 1
	caller_run caller 06-cancel-caller.xml $CALLER_IP 5106 $TG_UDP
	gw_wait
	expect_rc caller gw
}

flow_07_early_media() {
	gw_start gw 07-early-media-gw.xml $GW1_IP $GW_PORT || return 1
	caller_run caller 07-early-media-caller.xml $CALLER_IP 5107 $TG_UDP
	gw_wait
	expect_rc caller gw
}

flow_08_failover() {
	gw_start gw1 08-failover-gw1.xml $GW1_IP $GW_PORT || return 1
	gw_start gw2 08-failover-gw2.xml $GW2_IP $GW_PORT || return 1
	caller_run caller 08-failover-caller.xml $CALLER_IP 5108 $TG_UDP
	gw_wait
	expect_rc caller gw1 gw2
}

flow_09_hold_caller() {
	gw_start gw 09-hold-caller-gw.xml $GW1_IP $GW_PORT || return 1
	caller_run caller 09-hold-caller-caller.xml $CALLER_IP 5109 $TG_UDP
	gw_wait
	expect_rc caller gw
}

flow_10_hold_gw() {
	gw_start gw 10-hold-gw-gw.xml $GW1_IP $GW_PORT || return 1
	caller_run caller 10-hold-gw-caller.xml $CALLER_IP 5110 $TG_UDP
	gw_wait
	expect_rc caller gw
}

flow_11_info() {
	gw_start gw 11-info-gw.xml $GW1_IP $GW_PORT || return 1
	caller_run caller 11-info-caller.xml $CALLER_IP 5111 $TG_UDP
	gw_wait
	expect_rc caller gw
}

flow_12_glare() {
	gw_start gw 12-glare-gw.xml $GW1_IP $GW_PORT || return 1
	caller_run caller 12-glare-caller.xml $CALLER_IP 5112 $TG_UDP
	gw_wait
	expect_rc caller gw
}

flow_13_untrusted() {
	gw_start gw 00-unreached-gw.xml $GW1_IP $GW_PORT || return 1
	caller_run caller 13-untrusted-caller.xml $UNTRUSTED_IP 5113 $TG_UDP
	gw_stop gw
	expect_rc caller && expect_none gw INVITE
}

flow_13b_no_digest() {
	gw_start gw 00-unreached-gw.xml $GW1_IP $GW_PORT || return 1
	caller_run caller 13b-no-digest-caller.xml $UNTRUSTED_IP 5213 \
		$TG_IP:$TG2_PORT
	gw_stop gw
	expect_rc caller && expect_none gw INVITE
}

flow_14_digest_ok() {
	gw_start gw 14-digest-ok-gw.xml $GW1_IP $GW_PORT || return 1
	caller_run caller 14-digest-ok-caller.xml $UNTRUSTED_IP 5114 $TG_UDP
	gw_wait
	expect_rc caller gw && expect_some gw INVITE
}

flow_15_digest_bad() {
	gw_start gw 00-unreached-gw.xml $GW1_IP $GW_PORT || return 1
	caller_run caller 15-digest-bad-caller.xml $UNTRUSTED_IP 5115 $TG_UDP
	gw_stop gw
	expect_rc caller && expect_none gw INVITE
}

flow_16_max_forwards() {
	gw_start gw 00-unreached-gw.xml $GW1_IP $GW_PORT || return 1
	caller_run caller 16-max-forwards-caller.xml $CALLER_IP 5116 $TG_UDP
	gw_stop gw
	expect_rc caller && expect_none gw INVITE
}

flow_17_options() {
	gw_start gw 00-unreached-gw.xml $GW1_IP $GW_PORT || return 1
	caller_run caller 17-options-caller.xml $UNTRUSTED_IP 5117 $TG_UDP
	gw_stop gw
	expect_rc caller && expect_none gw OPTIONS
}

flow_18_tcp() {
	gw_start gw 18-tcp-gw.xml $GW1_IP $GWT_PORT t1 || return 1
	caller_run caller 18-tcp-caller.xml $CALLER_IP 5118 $TG_UDP t1
	gw_wait
	expect_rc caller gw
}

flow_19_pai_peer() {
	gw_start gw 19-pai-peer-gw.xml $GW1_IP $GW_PORT || return 1
	caller_run caller 19-pai-peer-caller.xml $PAI_IP 5119 $TG_UDP
	gw_wait
	expect_rc caller gw
}

flow_19b_pai_unknown() {
	gw_start gw 00-unreached-gw.xml $GW1_IP $GW_PORT || return 1
	caller_run caller 19b-pai-unknown-caller.xml $PAI_IP 5219 $TG_UDP
	gw_stop gw
	expect_rc caller && expect_none gw INVITE
}

# ------------------------------------------------------------ the run
passed=0
failed=0
FAILURES=()

# first line of a SIPp error log that says what went wrong
sipp_why() {
	local f=$fdir/$1.err
	[ -s "$f" ] || return 0
	grep -v '^The following events occurred:' "$f" | grep -v '^$' |
		head -n 1 | sed -E 's/^[0-9-]+\t[0-9:.]+\t[0-9.]+: //' |
		cut -c 1-200
}

for name in $selected; do
	fn=flow_$(echo "$name" | tr '-' '_')
	fdir=$work/$name
	mkdir -p "$fdir"
	SRC=()
	for t in "${!DPID[@]}"; do
		DOFF[$t]=$(stat -c %s "$work/$t.log" 2>/dev/null || echo 0)
	done

	dead=
	for t in "${!DPID[@]}"; do
		kill -0 "${DPID[$t]}" 2>/dev/null || dead="$dead $t"
	done
	if [ -n "$dead" ]; then
		echo "FAIL $name (daemon died:$dead, log: $work)"
		FAILURES+=("$name (daemon died:$dead)")
		failed=$((failed + 1))
		keep=1
		continue
	fi

	if $fn; then
		echo "PASS $name"
		passed=$((passed + 1))
	else
		# anything still running of this flow ends now
		for t in "${!SPID[@]}"; do
			kill -TERM "${SPID[$t]}" 2>/dev/null
			wait "${SPID[$t]}" 2>/dev/null
			unset "SPID[$t]"
		done
		# the daemons' log lines of this flow, next to the SIPp logs
		for t in "${!DPID[@]}"; do
			tail -c +"$((DOFF[$t] + 1))" "$work/$t.log" \
				>"$fdir/tollgate-$t.log" 2>/dev/null
		done
		why=$(tr '\n' ';' <"$fdir/why" 2>/dev/null | sed 's/;$//')
		# what the first SIPp that failed says, the caller's first
		detail=
		for t in caller gw gw1 gw2; do
			[ "${SRC[$t]:-0}" = 0 ] && continue
			d=$(sipp_why "$t")
			[ -n "$d" ] && { detail="$t: $d"; break; }
		done
		echo "FAIL $name (${why:-failed}${detail:+; $detail}, logs: $fdir)"
		FAILURES+=("$name (${why:-failed}${detail:+; $detail})")
		failed=$((failed + 1))
		keep=1
	fi
done

for t in main nodigest; do
	if [ -n "${DPID[$t]:-}" ]; then
		if daemon_stop "$t"; then
			passed=$((passed + 1))
		else
			failed=$((failed + 1))
			FAILURES+=("daemon-$t did not exit 0")
			keep=1
		fi
	fi
done

for f in "${FAILURES[@]}"; do echo "# failed: $f"; done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
