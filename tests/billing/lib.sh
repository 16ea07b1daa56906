# tests/billing/lib.sh - the daemon and SIPp peers for the billing suites.
# Source it after tests/lib/check.sh (the checks, TEST_DIR, pid_*) and
# tests/lib/pgtest.sh, once test_init has run and pgtest_start has started
# a cluster.
#
# Addresses (only 127.0.0.51-59, so no other suite collides):
#   tollgate 127.0.0.51:5060, callers 127.0.0.52 (ports 5061-5069),
#   answering gateway 127.0.0.54:5080, ringing gateway 127.0.0.55:5080.
#
# Every process started here is remembered by PID (pid_remember) and
# ended by PID, at the latest by test_cleanup at exit.

: "${top_srcdir:?}" "${top_builddir:?}" "${PGTEST_CONNINFO:?}" "${TEST_DIR:?}"

BT_DIR=$TEST_DIR
BT_SRC="$top_srcdir/tests/billing"
BT_TG="$top_builddir/tollgate"
TG_PID=
TG_LOG=

db_is_down() { ! pgtest_psql -c 'SELECT 1' >/dev/null 2>&1; }

# tg_config NAME [EXTRA LINES]: write a configuration, print its path
tg_config() {
	local f="$BT_DIR/$1.conf"
	cat >"$f" <<EOF
sip_listen udp:127.0.0.51:5060
trusted_peer 127.0.0.52 from
digest_auth no
gateway gwa 127.0.0.54:5080
gateway gwr 127.0.0.55:5080
route 2 gwr
route default gwa
ring_timeout 30
db_conninfo $PGTEST_CONNINFO
rtp_relay no
media_timeout 0
state_dir $BT_DIR/state
node_name billing-test
reserve_interval ${BT_INTERVAL:-2}
low_balance_warning 1
heartbeat ${BT_HEARTBEAT:-1}
shutdown_grace 2
log_level info
${2:-}
EOF
	echo "$f"
}

# tg_start CONFIG: start the daemon, wait until it is connected
tg_start() {
	local from
	TG_LOG="$BT_DIR/tollgate.log"
	echo "=== start $(date +%T.%N)" >>"$TG_LOG"
	from=$(wc -l <"$TG_LOG")
	"$BT_TG" -f "$1" >>"$TG_LOG" 2>&1 &
	TG_PID=$!
	pid_remember "$TG_PID"
	if wait_line "$TG_LOG" "listening for account" 10 "$TG_PID" "$from"
	then
		sleep 0.2
		return 0
	fi
	if ! kill -0 "$TG_PID" 2>/dev/null; then
		echo "tollgate exited at start:" >&2
		tail -n 20 "$TG_LOG" >&2
		TG_PID=
		return 1
	fi
	echo "tollgate did not come up:" >&2
	tail -n 20 "$TG_LOG" >&2
	return 1
}

# tg_stop: SIGTERM, wait for the exit (15 s, then SIGKILL); returns the
# exit status
tg_stop() {
	local rc
	[ -n "$TG_PID" ] || return 0
	pid_stop "$TG_PID" 15
	rc=$?
	TG_PID=
	return "$rc"
}

# tg_kill9: crash it
tg_kill9() {
	[ -n "$TG_PID" ] || return 0
	kill -KILL "$TG_PID" 2>/dev/null
	wait "$TG_PID" 2>/dev/null
	TG_PID=
}

# sipp_bg NAME IP PORT SCENARIO [SIPP ARGS...]: start SIPp in the
# background; its <log> lines go to $BT_DIR/NAME.log; sets SIPP_PID
sipp_bg() {
	local name=$1 ip=$2 port=$3 sf=$4
	shift 4
	: >"$BT_DIR/$name.log"
	"$SIPP" -nostdin -i "$ip" -p "$port" -sf "$BT_SRC/$sf" \
		-trace_logs -log_file "$BT_DIR/$name.log" \
		-trace_err -error_file "$BT_DIR/$name.err" \
		"$@" >"$BT_DIR/$name.out" 2>&1 </dev/null &
	SIPP_PID=$!
	pid_remember "$SIPP_PID"
}

# gw_start NAME answer|ring CALLS TIMEOUT: a gateway; sets GW_PID
gw_start() {
	local ip sf
	case $2 in
	answer) ip=127.0.0.54; sf=gw-answer.xml ;;
	ring)   ip=127.0.0.55; sf=gw-ring.xml ;;
	esac
	sipp_bg "$1" "$ip" 5080 "$sf" -m "$3" -timeout "$4"
	GW_PID=$SIPP_PID
}

# caller_start NAME PORT SCENARIO ACCOUNT NUMBER CALLS TIMEOUT [ARGS...]
caller_start() {
	local name=$1 port=$2 sf=$3 acct=$4 num=$5 n=$6 to=$7
	shift 7
	sipp_bg "$name" 127.0.0.52 "$port" "$sf" -key account "$acct" \
		-s "$num" -m "$n" -l "$n" -r 100 -timeout "$to" \
		-timeout_error "$@" 127.0.0.51:5060
	CALLER_PID=$SIPP_PID
}

# bt_wait PID: wait for a SIPp we started; its exit status
bt_wait() {
	wait "$1" 2>/dev/null
}

# ms LOG EVENT CALL: the time (ms since the epoch) of "EVENT CALL s us"
ms() {
	awk -v ev="$2" -v n="$3" '$1 == ev && $2 == n {
		printf "%.0f\n", $3 * 1000 + int($4 / 1000); exit }' "$BT_DIR/$1.log"
}

# count LOG REGEX
count() {
	local n
	n=$(grep -cE "$2" "$BT_DIR/$1.log" 2>/dev/null)
	echo "${n:-0}"
}

# wait_for SECONDS SQL WANT: poll a query until it prints WANT
wait_for() {
	local i got
	for i in $(seq 1 $(($1 * 10))); do
		got=$(sql "$2" 2>/dev/null)
		[ "$got" = "$3" ] && return 0
		sleep 0.1
	done
	echo "# wait_for: expected '$3', last got '$got'" >&2
	return 1
}

# an account: acct_new NAME BALANCE [MAX_CALLS]; prints its id
acct_new() {
	sql "INSERT INTO accounts (name, balance, max_calls, rate_plan_id)
	     VALUES ('$1', $2, ${3:-10},
		     (SELECT id FROM rate_plans WHERE name = 'billing-test'))
	     RETURNING id"
}

balance() { sql "SELECT balance FROM accounts WHERE name = '$1'"; }

# spool_pending: settlements in the spool file without their done record
spool_pending() {
	awk -F'\t' '$1 == "S3" || $1 == "S2" || $1 == "S" { p[$2] = 1 }
		    $1 == "D2" || $1 == "D" { delete p[$2] }
		    END { n = 0; for (k in p) n++; print n }' \
		"$BT_DIR/state/billing.spool" 2>/dev/null || echo 0
}
