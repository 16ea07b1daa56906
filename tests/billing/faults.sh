#!/usr/bin/env bash
# Money under faults: the daemon, SIPp as callers and gateway, a private
# PostgreSQL, and faults at the worst moments.
#
#   kill      SIGKILL of tollgate at random moments under 30 calls/s,
#             three times, restarted each time
#   restart   PostgreSQL restarted (fast) twice under 30 calls/s: no call
#             fails at the caller
#   stall     the account's row locked from psql while its calls end,
#             SIGKILL of tollgate, the lock released, tollgate restarted:
#             every call keeps its real cost
#   v1 spool  a settlement line of the version-less format replayed
#   dead      a settlement PostgreSQL refuses goes to billing.dead, is
#             counted in /metrics and never blocks the spool
#   enospc    the spool's file system full (a small tmpfs in a mount
#             namespace of the daemon's own): new calls get 503, the
#             running one is billed, space back and calls pass again
#
# After each run: the ledger check (tollgate --ledger-check, its output
# shown with a '# ' prefix), one CDR for every call id tollgate logged an
# authorisation outcome for, no live_calls row after a clean stop, no
# call billed beyond its length, no call that was talking when tollgate
# died recovered as free.
#
# Addresses: tollgate 127.0.2.10 (SIP 5060, API 8080), callers 127.0.2.11,
# gateway 127.0.2.12:5080.  make check runs it from the top build
# directory with top_srcdir, top_builddir and SIPP in the environment.
set -u

here=$(cd "$(dirname "$0")" && pwd)
: "${top_srcdir:=$(cd "$here/../.." && pwd)}"
: "${top_builddir:=$PWD}"
: "${SIPP:=$(command -v sipp || true)}"
export top_srcdir top_builddir

if [ ! -x "$top_builddir/tollgate" ]; then
	echo "faults.sh: $top_builddir/tollgate not built" >&2
	exit 99
fi
if [ -z "$SIPP" ]; then
	echo "faults.sh: sipp not found" >&2
	exit 77
fi

# shellcheck source=../lib/check.sh
. "$top_srcdir/tests/lib/check.sh"
# shellcheck source=../lib/pgtest.sh
. "$top_srcdir/tests/lib/pgtest.sh"
test_init faults || exit 99
pgtest_start || exit 99

# its SIPp launcher (sipp_bg) and tg_kill9; its addresses stay unused
. "$here/lib.sh"
D=$TEST_DIR
: >"$D/tollgate.log"
TG="$top_builddir/tollgate"
TG_LOG="$D/tollgate.log"
PER_S=20000                     # micro-units a second (1/1 increments)
TOKEN=faults-admin-token-0123456789

sql "INSERT INTO rate_plans (name) VALUES ('faults');
     INSERT INTO rates (rate_plan_id, prefix, connect_fee, price_per_minute,
			initial_increment, subsequent_increment)
     SELECT id, '', 0, $((PER_S * 60)), 1, 1 FROM rate_plans
      WHERE name = 'faults'" >/dev/null || exit 99

# until SECONDS COMMAND...: poll COMMAND every 0.1 s, at most SECONDS
until_true() {
	local i n=$(($1 * 10))
	shift
	for ((i = 0; i < n; i++)); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}

# conf NAME [STATE_DIR]: a configuration, its path on stdout
conf() {
	cat >"$D/$1.conf" <<EOF
sip_listen udp:127.0.2.10:5060
trusted_peer 127.0.2.11 from
digest_auth no
gateway gw 127.0.2.12:5080
route default gw
ring_timeout 10
db_conninfo $PGTEST_CONNINFO
rtp_relay no
media_timeout 0
state_dir ${2:-$D/state}
node_name faults
heartbeat 5
shutdown_grace 5
api_listen 127.0.2.10:8080
api_token $TOKEN admin
api_open_metrics yes
log_level info
EOF
	echo "$D/$1.conf"
}
CONF=$(conf faults)

acct() {
	sql "INSERT INTO accounts (name, balance, max_calls, rate_plan_id)
	     VALUES ('$1', $2, 1000,
		     (SELECT id FROM rate_plans WHERE name = 'faults'))
	     RETURNING id"
}

# tg_up [WRAPPER...]: start the daemon (through WRAPPER if given), wait
# for it to listen for account changes
tg_up() {
	local from
	echo "=== start $(date +%T.%N)" >>"$TG_LOG"
	from=$(wc -l <"$TG_LOG")
	if [ $# -gt 0 ]; then
		"$@" >>"$TG_LOG" 2>&1 &
	else
		"$TG" -f "$CONF" >>"$TG_LOG" 2>&1 &
	fi
	TG_PID=$!
	pid_remember "$TG_PID"
	wait_line "$TG_LOG" "listening for account" 15 "$TG_PID" "$from"
}

tg_down() {
	[ -n "$TG_PID" ] || return 0
	pid_stop "$TG_PID" 20
	TG_PID=
}

# callers NAME ACCOUNT CALLS RATE HOLD_MS [PORT]: hanging-up callers
callers() {
	sipp_bg "$1" 127.0.2.11 "${6:-5061}" caller-hangup.xml -key account "$2" \
		-s 100 -m "$3" -l "$3" -r "$4" -d "$5" -timeout 90 \
		-timeout_error 127.0.2.10:5060
}

gw_up() {
	sipp_bg gw 127.0.2.12 5080 gw-answer.xml -m 100000 -timeout 300
	GW_PID=$SIPP_PID
}

# the daemon's log lines of a run, from line $1 on
log_since() { tail -n +"$1" "$TG_LOG"; }

# ------------------------------------------------------------ assertions

# ledger_ok LABEL: tollgate --ledger-check, output shown
ledger_ok() {
	local out rc
	out=$("$TG" --ledger-check -f "$CONF" 2>&1)
	rc=$?
	echo "$out" | sed 's/^/# /'
	echo "=== ledger check ($1): $out" >>"$TG_LOG"
	equal "$1: ledger check exits 0" "$rc" 0
}

# cdr_per_attempt LABEL FROM_LINE ACCOUNT_ID: every call id the daemon
# logged an authorisation outcome for has its CDR; the account has no CDR
# of a call the daemon never heard of
cdr_per_attempt() {
	local ids missing n
	ids=$(log_since "$2" | sed -n \
	  's/.*\[\([0-9a-f]\{16\}\)\] billing: \(authorised\|refused\|authorisation failed\|database out\|the spool cannot\).*/\1/p' |
	  sort -u)
	n=$(echo "$ids" | grep -c .)
	missing=0
	if [ "$n" -gt 0 ]; then
		missing=$(sql "SELECT count(*) FROM unnest(string_to_array('$(echo "$ids" | tr '\n' ',' | sed 's/,$//')', ','))
			  AS u(id) WHERE NOT EXISTS
			  (SELECT 1 FROM cdrs c WHERE c.call_id = u.id)")
	fi
	equal "$1: every one of $n authorisation outcomes has its CDR" \
		"$missing" 0
	check "$1: some calls were authorised" [ "$n" -gt 0 ]
}

# no_live LABEL: after a clean stop
no_live() {
	equal "$1: no live_calls left after a clean stop" \
		"$(sql "SELECT count(*) FROM live_calls")" 0
}

# billed_ok LABEL ACCOUNT_ID MAX_S: no call billed beyond its length
# rounded up (MAX_S: the callers' hold rounded up), none recovered free
billed_ok() {
	equal "$1: no call billed beyond its end - answer" \
		"$(sql "SELECT count(*) FROM cdrs WHERE account_id = $2
			AND answer_at IS NOT NULL AND billed_seconds >
			ceil(extract(epoch FROM end_at - answer_at) - 0.0005)")" 0
	equal "$1: no call billed beyond $3 s" \
		"$(sql "SELECT count(*) FROM cdrs WHERE account_id = $2
			AND billed_seconds > $3")" 0
	equal "$1: cost = billed seconds x rate" \
		"$(sql "SELECT count(*) FROM cdrs WHERE account_id = $2
			AND cost <> billed_seconds * $PER_S")" 0
	equal "$1: no talking call recovered as free" \
		"$(sql "SELECT count(*) FROM cdrs WHERE account_id = $2
			AND reason = 'recovered' AND answer_at IS NOT NULL
			AND cost = 0")" 0
}

# money_ok LABEL ACCOUNT_ID FUNDED: balance + CDR costs = funding
money_ok() {
	equal "$1: balance + CDR costs = funding" \
		"$(sql "SELECT a.balance + coalesce((SELECT sum(cost) FROM cdrs
			WHERE account_id = a.id), 0) FROM accounts a
			WHERE a.id = $2")" "$3"
}

gw_up

# ------------------------------------------------------------------ kill
echo "# SIGKILL of tollgate at random moments under 30 calls/s"
FUND=$((1000000 * PER_S))
K=$(acct kill $FUND)
from=$(wc -l <"$TG_LOG")
tg_up || exit 99
callers kill kill 600 30 2500
CALLER=$SIPP_PID
recovered=0
for i in 1 2 3; do
	sleep "$((2 + RANDOM % 5)).$((RANDOM % 10))"
	tg_kill9
	echo "# kill $i at $(date +%T.%N)"
	sleep 0.3
	tg_up || { fail "restart after kill $i"; break; }
done
wait "$CALLER" 2>/dev/null
sleep 3
tg_down
check "kill: the spool's recovery ran" \
	grep -q "left by the last run\|settling from the spool" "$TG_LOG"
recovered=$(sql "SELECT count(*) FROM cdrs WHERE account_id = $K
		 AND reason = 'recovered'")
echo "# kill: $(sql "SELECT count(*) FROM cdrs WHERE account_id = $K") CDRs, $recovered recovered"
ledger_ok kill
cdr_per_attempt kill "$from" "$K"
no_live kill
billed_ok kill "$K" 3
money_ok kill "$K" "$FUND"

# --------------------------------------------------------------- restart
echo "# PostgreSQL restarted (fast) twice under 30 calls/s"
R=$(acct restart $FUND)
from=$(wc -l <"$TG_LOG")
tg_up || exit 99
callers restart restart 300 30 2000 5062
CALLER=$SIPP_PID
for i in 1 2; do
	sleep 3
	echo "# restart $i at $(date +%T.%N)"
	{ "$PGTEST_CLUSTER" stop "$PGTEST_DIR" fast &&
	  "$PGTEST_CLUSTER" start "$PGTEST_DIR"; } >>"$D/pg-restart.log" 2>&1 ||
		fail "restart: pg restart $i"
done
wait "$CALLER"
rc=$?
equal "restart: the callers' SIPp exits 0 (no failed call)" "$rc" 0
equal "restart: every call hung up normally" \
	"$(grep -c '^HANGUP' "$D/restart.log")" 300
sleep 2
tg_down
ledger_ok restart
cdr_per_attempt restart "$from" "$R"
no_live restart
billed_ok restart "$R" 3
money_ok restart "$R" "$FUND"
equal "restart: 300 CDRs" \
	"$(sql "SELECT count(*) FROM cdrs WHERE account_id = $R")" 300

# ----------------------------------------------------------------- stall
echo "# the account row locked while its calls end, then SIGKILL"
S=$(acct stall $FUND)
from=$(wc -l <"$TG_LOG")
tg_up || exit 99
callers stall stall 5 10 2500 5063
CALLER=$SIPP_PID
answered() { [ "$(grep -c '^ANSWER' "$D/$1.log")" -ge "$2" ]; }
until_true 10 answered stall 5 || fail "stall: five calls answered"
pgtest_psql -c "BEGIN; SELECT 1 FROM accounts WHERE id = $S FOR UPDATE;
		SELECT pg_sleep(9); COMMIT;" >"$D/lock.out" 2>&1 &
LOCK=$!
pid_remember "$LOCK"
wait "$CALLER"
equal "stall: five calls hung up" "$(grep -c '^HANGUP' "$D/stall.log")" 5
sleep 1
equal "stall: no CDR while the row is locked" \
	"$(sql "SELECT count(*) FROM cdrs WHERE account_id = $S")" 0
tg_kill9
# a dead host's sessions end with it: without this, a settlement still
# waiting for the lock would commit once it is released and the spool
# would not be what is tested
sql "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
     WHERE datname = current_database() AND backend_type = 'client backend'
       AND application_name <> 'psql' AND pid <> pg_backend_pid()" \
	>/dev/null
wait "$LOCK"
tg_up || exit 99
sql_is() { [ "$(sql "$1" 2>/dev/null)" = "$2" ]; }
until_true 15 sql_is "SELECT count(*) FROM cdrs WHERE account_id = $S" 5
tg_down
equal "stall: five CDRs" \
	"$(sql "SELECT count(*) FROM cdrs WHERE account_id = $S")" 5
equal "stall: each from the spool, none recovered" \
	"$(sql "SELECT count(*) FROM cdrs WHERE account_id = $S
		AND reason <> 'recovered'")" 5
equal "stall: each billed its real 3 s" \
	"$(sql "SELECT count(*) FROM cdrs WHERE account_id = $S
		AND billed_seconds = 3 AND cost = 3 * $PER_S")" 5
ledger_ok stall
cdr_per_attempt stall "$from" "$S"
no_live stall
money_ok stall "$S" "$FUND"

# -------------------------------------------------------- v1 spool, dead
echo "# a version-less spool line replayed; a refused one to the dead letter"
V=$(acct oldspool $FUND)
now=$(($(date +%s) * 1000))
# the call's reservation, taken as tollgate takes it
equal "v1: authorised in psql" "$(sql "SELECT result FROM tg_authorize(
	'v1call', 'faults', $V, 'oldspool', '100', 'gw', $((now - 10000)), 60)")" ok
held=$(sql "SELECT reserved FROM live_calls WHERE call_id = 'v1call'")
{
	# previous format: S and the 13 fields of tg_settle (no media)
	printf 'S\t=v1call\t=%s\t=oldspool\t=100\t=gw\t=%s\t=%s\t=%s\t=7\t=%s\t=200\t=caller\t=caller\n' \
		"$V" $((now - 10000)) $((now - 9000)) $((now - 2500)) $((7 * PER_S))
	# refused by the database: a negative cost
	printf 'S2\t=deadcall\t=%s\t=x\t=100\t=gw\t=%s\t=%s\t=%s\t=1\t=-5\t=200\t=caller\t=caller\t-\n' \
		"$V" $((now - 5000)) $((now - 4000)) $((now - 3000))
	# and a good one behind it
	printf 'S2\t=v2call\t=%s\t=oldspool\t=100\t=gw\t=%s\t=%s\t=%s\t=2\t=%s\t=200\t=caller\t=caller\t-\n' \
		"$V" $((now - 5000)) $((now - 4000)) $((now - 2000)) $((2 * PER_S))
} >>"$D/state/billing.spool"
from=$(wc -l <"$TG_LOG")
tg_up || exit 99
until_true 10 sql_is "SELECT count(*) FROM cdrs
	WHERE call_id IN ('v1call', 'v2call')" 2
equal "v1: the old line's CDR as spooled" \
	"$(sql "SELECT billed_seconds, cost, reason FROM cdrs
		WHERE call_id = 'v1call'")" "7|$((7 * PER_S))|caller"
equal "v1: its reservation is gone" \
	"$(sql "SELECT count(*) FROM live_calls WHERE call_id = 'v1call'")" 0
equal "dead: the good line after the refused one is settled" \
	"$(sql "SELECT cost FROM cdrs WHERE call_id = 'v2call'")" $((2 * PER_S))
equal "dead: no CDR of the refused settlement" \
	"$(sql "SELECT count(*) FROM cdrs WHERE call_id = 'deadcall'")" 0
check "dead: it is in billing.dead" grep -q "deadcall" "$D/state/billing.dead"
check "dead: logged" sh -c "tail -n +$from '$TG_LOG' | grep -q 'deadcall.*dead\|dead.*deadcall'"
m=$(curl -s --max-time 5 http://127.0.2.10:8080/metrics |
    sed -n 's/^tollgate_billing_dead_letters_total //p')
equal "dead: /metrics counts it" "$m" 1
tg_down
from=$(wc -l <"$TG_LOG")
tg_up || exit 99
tg_down
check "dead: a further start does not try it again" \
	sh -c "! tail -n +$from '$TG_LOG' | grep -q deadcall"
equal "v1: balance = funding - both costs" \
	"$(sql "SELECT balance FROM accounts WHERE id = $V")" \
	$((FUND - 9 * PER_S))
ledger_ok spool
no_live spool

# ---------------------------------------------------------------- enospc
echo "# the spool's file system full"
if [ "$(id -u)" != 0 ]; then
	fail "enospc: needs root for a mount namespace (CI runs as root)"
else
	E=$(acct enospc $FUND)
	ST="$D/small"
	mkdir -p "$ST"
	ECONF=$(conf enospc "$ST")
	# the daemon in a mount namespace of its own, on a 256 KiB tmpfs; the
	# namespace's shell fills and empties it when told (files in $D)
	cat >"$D/ns.sh" <<EOF
mount -t tmpfs -o size=256k tmpfs '$ST' || exit 1
'$TG' -f '$ECONF' &
tg=\$!
echo \$tg >'$D/ns.pid'
for i in \$(seq 1 600); do [ -e '$D/fill' ] && break; sleep 0.1; done
dd if=/dev/zero of='$ST/filler' bs=4k 2>/dev/null
touch '$D/filled'
for i in \$(seq 1 600); do [ -e '$D/unfill' ] && break; sleep 0.1; done
rm -f '$ST/filler'
touch '$D/unfilled'
wait \$tg
EOF
	from=$(wc -l <"$TG_LOG")
	tg_up unshare -m sh "$D/ns.sh" || fail "enospc: start"
	NS=$TG_PID
	# the call that runs across the full disk: 6 s
	callers enospc-run enospc 1 1 6000 5064
	RUN=$SIPP_PID
	until_true 5 answered enospc-run 1
	touch "$D/fill"
	until_true 10 test -e "$D/filled"
	sleep 2.5
	# the spool's last page still has room: calls go on until their
	# records need a page the file system does not have, then the
	# spool fails and every new call is refused with 503
	callers enospc-new enospc 60 20 300 5065
	wait "$SIPP_PID"
	refused=$(log_since "$from" | grep -c "the spool cannot be written: call refused")
	e_ok=$(grep -c '^HANGUP' "$D/enospc-new.log")
	got503=$(grep -c "received 'SIP/2.0 503 " "$D/enospc-new.err")
	echo "# enospc: $e_ok of 60 calls passed before the spool failed, $refused refused"
	check "enospc: the spool failed and new calls were refused" \
		[ "$refused" -ge 10 ]
	equal "enospc: every refused call got 503" "$got503" "$refused"
	equal "enospc: every call passed or got 503" \
		$((e_ok + got503)) 60
	touch "$D/unfill"
	wait "$RUN"
	equal "enospc: the running call hung up" \
		"$(grep -c '^HANGUP' "$D/enospc-run.log")" 1
	until_true 10 test -e "$D/unfilled"
	sleep 2
	callers enospc-after enospc 3 10 500 5066
	wait "$SIPP_PID"
	equal "enospc: with space back calls pass" \
		"$(grep -c '^HANGUP' "$D/enospc-after.log")" 3
	# the daemon is a child of the namespace's shell, not ours
	kill -TERM "$(cat "$D/ns.pid")" 2>/dev/null
	pid_gone "$(cat "$D/ns.pid")" 20 || kill -KILL "$(cat "$D/ns.pid")"
	pid_stop "$NS" 10
	TG_PID=
	# its 6 s hold and the BYE: 6.0xx s, billed 7 s, or 6 s when its
	# record's end - answer (milliseconds) is 6.000 s; never less
	equal "enospc: the running call billed its whole length" \
		"$(sql "SELECT billed_seconds BETWEEN 6 AND 7
			AND billed_seconds >=
			    floor(extract(epoch FROM end_at - answer_at))
			AND cost = billed_seconds * $PER_S
			FROM cdrs WHERE account_id = $E
			AND answer_at IS NOT NULL ORDER BY setup_at LIMIT 1")" t
	ledger_ok enospc
	cdr_per_attempt enospc "$from" "$E"
	no_live enospc
	money_ok enospc "$E" "$FUND"
fi

pid_stop "$GW_PID" 5
summary
