#!/usr/bin/env bash
# Prepaid billing end to end: a private PostgreSQL (tests/lib/pgtest.sh),
# the daemon, SIPp as caller and as gateways (see lib.sh for addresses).
#
#   refusals   402 (first increment not covered), 404 (no rate), 486
#              (account's call limit), 403 (blocked): no INVITE reaches
#              the gateway, each attempt has its 'rejected' CDR
#   cut-off    an account funded for N s: BYE with the credit Reason on
#              both legs at N s +- 100 ms of answer, CDR cost = rated cost
#   hang-up    a call ended by the caller costs its rated cost, the rest of
#              the reservation comes back
#   fair       12 concurrent calls of an account funded for 60 s, with
#              reserve_interval 60: all answered (reservations grow from
#              reserve_first), balance exactly 0, costs = the funding
#   shared     10 concurrent calls of one account all cut when the shared
#              balance ends; balance exactly 0, costs add up
#   top-up     money added in the database mid-call moves the cut-off
#   ringing    a call still ringing when its account's money ends is
#              CANCELled (487 with the credit Reason to the caller)
#   db down    PostgreSQL stopped mid-call: the call is still cut on time,
#              a new call gets 503 + Retry-After, and the CDR is written
#              once the database is back
#   spool      every settlement is in state_dir/billing.spool before it
#              is sent; one spooled while the database is down survives
#              kill -9 and is written at the next start
#   restart    a call placed while PostgreSQL restarts waits for it and
#              is answered; a running call keeps talking
#   crash      kill -9 with 20 live calls: the next start settles each with
#              one 'recovered' CDR and the balance adds up; a further
#              start changes nothing
#   fresh      kill -9 before any heartbeat carried the calls' answers:
#              the spool's answer and tick records still charge them
#
# make check runs it from the top build directory with top_srcdir,
# top_builddir and SIPP in the environment.  Prints "N passed, M failed".
set -u

here=$(cd "$(dirname "$0")" && pwd)
: "${top_srcdir:=$(cd "$here/../.." && pwd)}"
: "${top_builddir:=$PWD}"
: "${SIPP:=$(command -v sipp || true)}"
export top_srcdir top_builddir

if [ ! -x "$top_builddir/tollgate" ]; then
	echo "billing.sh: $top_builddir/tollgate not built" >&2
	exit 99
fi
if [ -z "$SIPP" ]; then
	echo "billing.sh: sipp not found" >&2
	exit 77
fi

TEST_KEEP=${BT_KEEP:-}
# shellcheck source=../lib/check.sh
. "$top_srcdir/tests/lib/check.sh"
# shellcheck source=../lib/pgtest.sh
. "$top_srcdir/tests/lib/pgtest.sh"
test_init billing || exit 99
pgtest_start || exit 99
. "$here/lib.sh"

UNIT=1000000

sql "INSERT INTO rate_plans (name) VALUES ('billing-test');
     INSERT INTO rates (rate_plan_id, prefix, connect_fee, price_per_minute,
			initial_increment, subsequent_increment)
     SELECT id, p, cf, ppm, i, s FROM rate_plans,
	    (VALUES ('1', 50000, 1200000, 2, 2),
		    ('11', 0, 1200000, 1, 1),
		    ('2', 0, 1200000, 1, 1)) AS r(p, cf, ppm, i, s)
      WHERE name = 'billing-test'" >/dev/null || exit 99

CONF=$(tg_config main)
tg_start "$CONF" || exit 99


# ------------------------------------------------------------- refusals
echo "# refusals before any gateway sees the call"
acct_new poor 89999 >/dev/null          # first increment costs 90000
acct_new rich $((100 * UNIT)) >/dev/null
acct_new nolines $((100 * UNIT)) 0 >/dev/null
acct_new blocked $((100 * UNIT)) >/dev/null
sql "UPDATE accounts SET status = 'blocked' WHERE name = 'blocked'" >/dev/null

gw_start gw-refuse answer 1 30
port=5061
for c in "poor 1000 402 cause=31" "rich 9000 404 cause=1" \
	 "nolines 1000 486 cause=17"; do
	set -- $c
	caller_start "refused-$1" $port caller-refused.xml "$1" "$2" 1 10
	bt_wait "$CALLER_PID"
	check "$1 calling $2 gets $3" grep -q "FINAL $3 " \
		"$BT_DIR/refused-$1.log"
	check "$1: the $3 carries a Reason ($4)" grep -q "$4" \
		"$BT_DIR/refused-$1.log"
	equal "$1: one CDR, rejected, $3, cost 0" "$(sql "SELECT count(*),
		min(reason), min(sip_code), sum(cost) FROM cdrs c JOIN accounts a
		ON a.id = c.account_id WHERE a.name = '$1'")" "1|rejected|$3|0"
	port=$((port + 1))
done
# a blocked account is refused when the caller is identified
caller_start refused-blocked $port caller-refused.xml blocked 1000 1 10
bt_wait "$CALLER_PID"
check "blocked calling 1000 gets 403" grep -q "FINAL 403 .*blocked" \
	"$BT_DIR/refused-blocked.log"
sleep 0.3
pid_stop "$GW_PID"
equal "no INVITE reached the gateway" "$(count gw-refuse '^INVITE')" 0
equal "refusals took no money" "$(balance poor)" 89999
equal "no live calls left" "$(sql "SELECT count(*) FROM live_calls")" 0


# -------------------------------------------------------------- cut-off
echo "# an account funded for 4 s is cut at 4 s"
# rate 1: connect fee 50000, 20000 a second, 2/2 increments
acct_new cut $((50000 + 4 * 20000)) >/dev/null
gw_start gw-cut answer 1 20
caller_start cut 5061 caller.xml cut 1000 1 20
bt_wait "$CALLER_PID"; rc=$?
equal "the caller's scenario ran through" "$rc" 0
bt_wait "$GW_PID"
a=$(ms cut ANSWER 1); b=$(ms cut BYE 1)
within "caller leg: BYE 4000 ms after answer" "$((b - a))" 3900 4100
a=$(ms gw-cut ANSWER 1); b=$(ms gw-cut BYE 1)
within "gateway leg: BYE 4000 ms after answer" "$((b - a))" 3900 4100
check "caller's BYE says credit exhausted" grep -q "^BYE 1 .*cause=16" \
	"$BT_DIR/cut.log"
check "gateway's BYE says credit exhausted" grep -q "^BYE 1 .*cause=16" \
	"$BT_DIR/gw-cut.log"
wait_for 5 "SELECT count(*) FROM cdrs c JOIN accounts a ON a.id = c.account_id
	    WHERE a.name = 'cut'" 1
equal "CDR: credit, 4 s billed, cost = 50000 + 4 x 20000" \
	"$(sql "SELECT reason, billed_seconds, cost, sip_code FROM cdrs c
		JOIN accounts a ON a.id = c.account_id WHERE a.name = 'cut'")" \
	"credit|4|130000|200"
equal "balance exactly 0" "$(balance cut)" 0
id=$(sql "SELECT call_id FROM cdrs c JOIN accounts a ON a.id = c.account_id
	  WHERE a.name = 'cut'")
log_ms() {
	date -d "$(grep -F "[$id] billing: $1" "$TG_LOG" | head -n 1 |
		   cut -d' ' -f1)" +%s%3N 2>/dev/null
}
low=$(log_ms "low balance"); end=$(log_ms "money ends")
within "low-balance event 1 s (low_balance_warning) before the cut-off" \
	"$(( ${end:-0} - ${low:-0} ))" 900 1100


# -------------------------------------------------------------- hang-up
echo "# a call the caller ends costs its rated cost"
acct_new normal $UNIT >/dev/null
gw_start gw-hangup answer 1 20
caller_start hangup 5061 caller-hangup.xml normal 1000 1 20 -d 2500
bt_wait "$CALLER_PID"; rc=$?
equal "the caller's scenario ran through" "$rc" 0
bt_wait "$GW_PID"
wait_for 5 "SELECT count(*) FROM cdrs c JOIN accounts a ON a.id = c.account_id
	    WHERE a.name = 'normal'" 1
# 2.5 s and a little: 3 started seconds, 4 billed (2/2)
equal "CDR: caller, 4 s billed, cost 130000" \
	"$(sql "SELECT reason, hangup_by, billed_seconds, cost FROM cdrs c
		JOIN accounts a ON a.id = c.account_id
		WHERE a.name = 'normal'")" "caller|caller|4|130000"
equal "the rest of the reservation came back" "$(balance normal)" \
	$((UNIT - 130000))
equal "its live call is gone" "$(sql "SELECT count(*) FROM live_calls")" 0


# ---------------------------------------------------------- round trips
echo "# calls shorter than one reservation interval: 2 round trips each"
tg_stop
tg_start "$(BT_INTERVAL=60 tg_config interval60)" ||
	fail "start with reserve_interval 60"
acct_new short $((100 * UNIT)) >/dev/null
gw_start gw-short answer 5 20
caller_start short 5061 caller-hangup.xml short 1000 5 20 -d 500
bt_wait "$CALLER_PID"; rc=$?
equal "5 short calls ran through" "$rc" 0
bt_wait "$GW_PID"
tg_stop
stats=$(grep "round trips:" "$TG_LOG" | tail -n 1)
echo "# $stats"
equal "5 settled, 5 authorise + 0 reserve + 5 settle = 2.00 per call" \
	"$(echo "$stats" | sed -E 's/.*billing: ([0-9]+) calls settled.*: ([0-9]+) authorise, ([0-9]+) reserve, ([0-9]+) settle \(([0-9.]+) per call\).*/\1 \2 \3 \4 \5/')" \
	"5 5 0 5 2.00"
tg_start "$CONF" || exit 99


# ----------------------------------------------------------------- fair
echo "# 12 concurrent calls share 60 s with reserve_interval 60"
tg_stop
tg_start "$(BT_INTERVAL=60 tg_config fair)" ||
	fail "start with reserve_interval 60"
# rate 11: 20000 a second, 1/1; first steps of 4 s, then 8, 16, ...
acct_new fair $((60 * 20000)) 12 >/dev/null
gw_start gw-fair answer 12 40
caller_start fair 5061 caller.xml fair 1100 12 40
bt_wait "$CALLER_PID"; rc=$?
equal "all 12 calls ran through (none refused)" "$rc" 0
bt_wait "$GW_PID"
equal "12 calls answered" "$(count fair '^ANSWER')" 12
equal "12 BYEs with the credit Reason" "$(count fair '^BYE .*cause=16')" 12
wait_for 5 "SELECT count(*) FROM cdrs c JOIN accounts a ON a.id = c.account_id
	    WHERE a.name = 'fair'" 12
equal "12 CDRs, all credit, costs add up to the funding" \
	"$(sql "SELECT count(*), min(reason), max(reason), sum(cost),
		min(sip_code) FROM cdrs c JOIN accounts a
		ON a.id = c.account_id WHERE a.name = 'fair'")" \
	"12|credit|credit|$((60 * 20000))|200"
equal "balance exactly 0" "$(balance fair)" 0
equal "no live calls left" "$(sql "SELECT count(*) FROM live_calls")" 0
tg_stop
tg_start "$CONF" || exit 99


# --------------------------------------------------------------- shared
echo "# 10 concurrent calls share one balance of 40 s"
# rate 11: 20000 a second, 1/1
acct_new shared $((40 * 20000)) 10 >/dev/null
gw_start gw-shared answer 10 30
caller_start shared 5061 caller.xml shared 1100 10 30
bt_wait "$CALLER_PID"; rc=$?
equal "all 10 calls ran through" "$rc" 0
bt_wait "$GW_PID"
equal "10 BYEs with the credit Reason to the caller" \
	"$(count shared '^BYE .*cause=16')" 10
equal "10 BYEs with the credit Reason to the gateway" \
	"$(count gw-shared '^BYE .*cause=16')" 10
wait_for 5 "SELECT count(*) FROM cdrs c JOIN accounts a ON a.id = c.account_id
	    WHERE a.name = 'shared'" 10
equal "10 CDRs, all credit, costs add up to the balance" \
	"$(sql "SELECT count(*), min(reason), max(reason), sum(cost),
		sum(billed_seconds) * 20000 FROM cdrs c JOIN accounts a
		ON a.id = c.account_id WHERE a.name = 'shared'")" \
	"10|credit|credit|800000|800000"
equal "shared balance exactly 0" "$(balance shared)" 0
# each call was cut when its own money ended: BYE - answer = billed s
got=$(for n in $(seq 1 10); do
	a=$(ms shared ANSWER "$n"); b=$(ms shared BYE "$n")
	echo $(( (b - a + 500) / 1000 ))
      done | sort -n | tr '\n' ' ')
want=$(sql "SELECT billed_seconds FROM cdrs c JOIN accounts a
	    ON a.id = c.account_id WHERE a.name = 'shared'
	    ORDER BY billed_seconds" | tr '\n' ' ')
equal "each call talked exactly what it paid for" "$got" "$want"


# --------------------------------------------------------------- top-up
echo "# a top-up mid-call moves the cut-off from 3 s to 6 s"
acct_new topup $((3 * 20000)) >/dev/null
gw_start gw-topup answer 1 20
caller_start topup 5061 caller.xml topup 1100 1 20
sleep 1.2
sql "UPDATE accounts SET balance = balance + $((3 * 20000))
     WHERE name = 'topup'" >/dev/null
bt_wait "$CALLER_PID"
bt_wait "$GW_PID"
a=$(ms topup ANSWER 1); b=$(ms topup BYE 1)
within "BYE 6000 ms after answer" "$((b - a))" 5900 6100
wait_for 5 "SELECT count(*) FROM cdrs c JOIN accounts a ON a.id = c.account_id
	    WHERE a.name = 'topup'" 1
equal "CDR: credit, 6 s, 120000" "$(sql "SELECT reason, billed_seconds, cost
	FROM cdrs c JOIN accounts a ON a.id = c.account_id
	WHERE a.name = 'topup'")" "credit|6|120000"
equal "balance exactly 0" "$(balance topup)" 0


# -------------------------------------------------------------- ringing
echo "# a ringing call is CANCELled when its account's money ends"
# B rings first and holds 2 s; A gets the last 1 s, is answered, cut at
# 1 s, and the account has nothing left: B is cancelled
acct_new ring $((3 * 20000)) >/dev/null
gw_start gw-ring ring 1 20
gw_start gw-ringa answer 1 20
gwa_pid=$GW_PID
caller_start ring-b 5062 caller-487.xml ring 2000 1 20
ring_b=$CALLER_PID
sleep 0.5
caller_start ring-a 5061 caller.xml ring 1100 1 20
bt_wait "$CALLER_PID"
bt_wait "$ring_b"; rc=$?
equal "the ringing caller's scenario ran through (487)" "$rc" 0
bt_wait "$gwa_pid"
sleep 0.3
check "the ringing gateway got a CANCEL" grep -q "^CANCEL 1 " \
	"$BT_DIR/gw-ring.log"
check "the caller's 487 says credit exhausted" grep -q "^FINAL 487 .*cause=16" \
	"$BT_DIR/ring-b.log"
a=$(ms ring-a ANSWER 1); b=$(ms ring-a BYE 1)
within "answered call cut at 1000 ms" "$((b - a))" 900 1100
c=$(awk '$1 == "FINAL" { printf "%.0f\n", $3 * 1000 + int($4 / 1000) }' \
	"$BT_DIR/ring-b.log")
within "ringing call ended with the cut-off (ms after)" "$((c - b))" -100 100
wait_for 5 "SELECT count(*) FROM cdrs c JOIN accounts a ON a.id = c.account_id
	    WHERE a.name = 'ring'" 2
equal "CDRs: answered 1 s 20000; ringing 487 cost 0, both credit" \
	"$(sql "SELECT string_agg(reason || ':' || sip_code || ':' || cost, ' '
		ORDER BY sip_code) FROM cdrs c JOIN accounts a
		ON a.id = c.account_id WHERE a.name = 'ring'")" \
	"credit:200:20000 credit:487:0"
equal "the ringing call's reservation came back" "$(balance ring)" 40000
pid_stop "$GW_PID"


# -------------------------------------------------------------- db down
echo "# PostgreSQL stopped mid-call"
acct_new dbdown $((3 * 20000)) >/dev/null
gw_start gw-dbdown answer 2 30
caller_start dbdown 5061 caller.xml dbdown 1100 1 20
sleep 1.6                    # after the second reservation (at 1 s)
"$PGTEST_CLUSTER" stop "$PGTEST_DIR" immediate >/dev/null 2>&1
check "database stopped" db_is_down
bt_wait "$CALLER_PID"
a=$(ms dbdown ANSWER 1); b=$(ms dbdown BYE 1)
within "still cut at 3000 ms" "$((b - a))" 2900 3100
check "BYE says credit exhausted" grep -q "^BYE 1 .*cause=16" \
	"$BT_DIR/dbdown.log"
equal "the settlement waits in the spool" "$(spool_pending)" 1
caller_start dbdown-new 5062 caller-refused.xml dbdown 1100 1 10
bt_wait "$CALLER_PID"
check "a new call gets 503 while the database is down" \
	grep -q "^FINAL 503 " "$BT_DIR/dbdown-new.log"
check "the 503 has Retry-After" grep -qE "retry= *[0-9]" \
	"$BT_DIR/dbdown-new.log"
sleep 1
"$PGTEST_CLUSTER" start "$PGTEST_DIR" >/dev/null 2>&1 ||
	fail "cannot start the database again"
check "the CDR appears once the database is back" wait_for 20 \
	"SELECT reason || ':' || billed_seconds || ':' || cost FROM cdrs c
	 JOIN accounts a ON a.id = c.account_id WHERE a.name = 'dbdown'
	 AND c.sip_code = 200" "credit:3:60000"
equal "balance exactly 0" "$(balance dbdown)" 0
pid_stop "$GW_PID"
equal "the gateway saw only the first call" "$(count gw-dbdown '^INVITE')" 1
sleep 0.5
equal "nothing pending in the spool again" "$(spool_pending)" 0


# -------------------------------------------------------------- restart
echo "# PostgreSQL restarts: a new call waits for it, a running one goes on"
acct_new restart $((100 * 20000)) >/dev/null
acct_new restart2 $((4 * 20000)) >/dev/null
gw_start gw-restart answer 2 30
caller_start restart-run 5062 caller.xml restart2 1100 1 20
caller_run=$CALLER_PID
# after the second reservation (at 1 s), which holds all 4 s: a reservation
# asked for while the database is out of reach is not granted, and the call
# would end with what it holds
sleep 1.6
"$PGTEST_CLUSTER" stop "$PGTEST_DIR" fast >/dev/null 2>&1
caller_start restart 5061 caller-hangup.xml restart 1100 1 20 -d 1000
"$PGTEST_CLUSTER" start "$PGTEST_DIR" >/dev/null 2>&1 ||
	fail "cannot start the database again"
bt_wait "$CALLER_PID"; rc=$?
equal "the call placed during the restart was answered" "$rc" 0
bt_wait "$caller_run"
check "the running call is cut when its money ends" wait_for 10 \
	"SELECT reason || ':' || billed_seconds FROM cdrs c
	 JOIN accounts a ON a.id = c.account_id WHERE a.name = 'restart2'" \
	"credit:4"
check "the new call has its CDR" wait_for 10 \
	"SELECT reason || ':' || sip_code FROM cdrs c JOIN accounts a
	 ON a.id = c.account_id WHERE a.name = 'restart'" "caller:200"
bt_wait "$GW_PID"
equal "no live calls left" "$(sql "SELECT count(*) FROM live_calls")" 0


# ---------------------------------------------------------------- spool
echo "# a settlement spooled while the database is down survives kill -9"
acct_new spool $((2 * 20000)) >/dev/null
gw_start gw-spool answer 1 20
caller_start spool 5061 caller.xml spool 1100 1 20
sleep 0.5
"$PGTEST_CLUSTER" stop "$PGTEST_DIR" immediate >/dev/null 2>&1
bt_wait "$CALLER_PID"
a=$(ms spool ANSWER 1); b=$(ms spool BYE 1)
within "cut at 2000 ms with the database down" "$((b - a))" 1900 2100
sleep 0.3
equal "the settlement is in the spool" "$(spool_pending)" 1
tg_kill9
pid_stop "$GW_PID"
"$PGTEST_CLUSTER" start "$PGTEST_DIR" >/dev/null 2>&1 ||
	fail "cannot start the database again"
tg_start "$CONF" || fail "restart after kill -9 with a spool"
check "the spooled CDR is written at start (credit, not recovered)" \
	wait_for 10 "SELECT string_agg(reason || ':' || cost, ' ') FROM cdrs c
	JOIN accounts a ON a.id = c.account_id WHERE a.name = 'spool'" \
	"credit:40000"
equal "balance exactly 0" "$(balance spool)" 0
sleep 0.5
equal "nothing pending in the spool again" "$(spool_pending)" 0


# ---------------------------------------------------------------- crash
echo "# kill -9 with 20 live calls"
acct_new crash $((10000 * 20000)) 30 >/dev/null
before=$(balance crash)
gw_start gw-crash answer 20 60
caller_start crash 5061 caller.xml crash 1100 20 60
for i in $(seq 1 50); do
	[ "$(count crash '^ANSWER')" -ge 20 ] && break
	sleep 0.1
done
equal "20 calls answered" "$(count crash '^ANSWER')" 20
sleep 2.5                    # two heartbeats record the answers
equal "20 live calls in the database" \
	"$(sql "SELECT count(*) FROM live_calls WHERE answer_at IS NOT NULL")" 20
tg_kill9
pid_stop "$CALLER_PID"
pid_stop "$GW_PID"
tg_start "$CONF" || fail "restart after kill -9"
check "20 recovered CDRs" wait_for 10 \
	"SELECT count(*) FROM cdrs c JOIN accounts a ON a.id = c.account_id
	 WHERE a.name = 'crash' AND reason = 'recovered'" 20
equal "one CDR per call" "$(sql "SELECT count(DISTINCT call_id) FROM cdrs c
	JOIN accounts a ON a.id = c.account_id WHERE a.name = 'crash'")" 20
equal "no live call left" "$(sql "SELECT count(*) FROM live_calls")" 0
spent=$(sql "SELECT sum(cost) FROM cdrs c JOIN accounts a
	     ON a.id = c.account_id WHERE a.name = 'crash'")
after=$(balance crash)
equal "balance + costs = balance before, to the micro-unit" \
	"$((after + spent))" "$before"
within "each call charged 1..6 s up to the node's last sign of life" \
	"$(sql "SELECT min(billed_seconds) * 10 + max(billed_seconds) FROM cdrs c
		JOIN accounts a ON a.id = c.account_id WHERE a.name = 'crash'")" \
	11 66
tg_stop
tg_start "$CONF" || fail "second restart"
sleep 1
equal "a second start settles nothing again" "$(sql "SELECT count(*)
	FROM cdrs c JOIN accounts a ON a.id = c.account_id
	WHERE a.name = 'crash'")|$(balance crash)" "20|$after"


# ---------------------------------------------------------------- fresh
echo "# kill -9 with 5 calls answered since the last heartbeat"
# heartbeat 30: the beat at start is the only one; the calls' answers
# reach the database with none, only the spool has them
tg_stop
tg_start "$(BT_INTERVAL=60 BT_HEARTBEAT=30 tg_config heartbeat30)" ||
	fail "start with heartbeat 30"
acct_new fresh $((1000 * 20000)) 10 >/dev/null
before=$(balance fresh)
gw_start gw-fresh answer 5 60
caller_start fresh 5061 caller.xml fresh 1100 5 60
for i in $(seq 1 50); do
	[ "$(count fresh '^ANSWER')" -ge 5 ] && break
	sleep 0.1
done
equal "5 calls answered" "$(count fresh '^ANSWER')" 5
sleep 1.5                    # a tick or two after the answers
equal "the database has none of their answer times" \
	"$(sql "SELECT count(*) FROM live_calls l JOIN accounts a
		ON a.id = l.account_id WHERE a.name = 'fresh'
		AND l.answer_at IS NULL")" 5
tg_kill9
pid_stop "$CALLER_PID"
pid_stop "$GW_PID"
tg_start "$CONF" || fail "restart after kill -9"
check "5 recovered CDRs" wait_for 10 \
	"SELECT count(*) FROM cdrs c JOIN accounts a ON a.id = c.account_id
	 WHERE a.name = 'fresh' AND reason = 'recovered'" 5
equal "all 5 recovered as answered and charged, none free" \
	"$(sql "SELECT count(*) FILTER (WHERE sip_code = 200 AND cost > 0
		AND answer_at IS NOT NULL) FROM cdrs c JOIN accounts a
		ON a.id = c.account_id WHERE a.name = 'fresh'")" 5
within "each charged 1..4 s: from its answer to the last tick" \
	"$(sql "SELECT min(billed_seconds) * 10 + max(billed_seconds) FROM cdrs c
		JOIN accounts a ON a.id = c.account_id WHERE a.name = 'fresh'")" \
	11 44
spent=$(sql "SELECT sum(cost) FROM cdrs c JOIN accounts a
	     ON a.id = c.account_id WHERE a.name = 'fresh'")
equal "balance + costs = balance before, to the micro-unit" \
	"$(( $(balance fresh) + spent ))" "$before"
equal "no live call left" "$(sql "SELECT count(*) FROM live_calls")" 0


# ------------------------------------------------------------ overload
echo "# the database queue waits beyond overload_wait: new INVITEs shed at the door"
tg_stop
# heartbeat 3: the lease (9 s) outlives the stall, whose queue holds the
# renewals back too
CONF=$(BT_HEARTBEAT=3 tg_config overload "overload_wait 300
db_connections 2")
tg_start "$CONF" || fail "start with overload_wait 300"
acct_new stall $((100 * UNIT)) >/dev/null
acct_new door $((100 * UNIT)) >/dev/null
# a transaction holds the account row: two authorisations wait on it with
# both connections, and the look-ups of the calls after them queue
sql "BEGIN; SELECT 1 FROM accounts WHERE name = 'stall' FOR UPDATE;
     SELECT pg_sleep(2.5); COMMIT" >/dev/null 2>&1 &
LOCK_PID=$!
pid_remember "$LOCK_PID"
sleep 0.3
caller_start stall 5061 caller-refused.xml stall 1000 6 20
STALL_PID=$CALLER_PID
sleep 1                      # the queue's head is older than 300 ms now
gw_start gw-door answer 10 20
caller_start door 5062 caller-door.xml door 1000 10 20
bt_wait "$CALLER_PID"
pid_stop "$GW_PID"
bt_wait "$STALL_PID"
wait "$LOCK_PID" 2>/dev/null
shed=$(count door 'FINAL 503 reason= ?Q.850;cause=42;')
within "door calls shed while the queue waits" "$shed" 1 10
check "a shed INVITE gets a Retry-After" \
	grep -qE 'FINAL 503 reason= ?Q.850;cause=42;.*retry= ?[1-9]' \
	"$BT_DIR/door.log"
equal "every other door call was taken" "$(count door '^FINAL 200')" \
	$((10 - shed))
check "the shedding is logged" grep -q "billing: overload: database queue" \
	"$TG_LOG"
sleep 3                      # settlements of the stalled calls are written
equal "a shed call never reached authorisation: one CDR per taken call" \
	"$(sql "SELECT count(*) FROM cdrs c JOIN accounts a
		ON a.id = c.account_id WHERE a.name = 'door'")" $((10 - shed))
equal "the refused calls of the stalled account took no money" \
	"$(balance stall)" $((100 * UNIT))
gw_start gw-after answer 1 20
caller_start after 5063 caller-hangup.xml door 1000 1 20 -d 500
bt_wait "$CALLER_PID"
equal "once the queue is short, a call goes through" "$?" 0
bt_wait "$GW_PID"
check "no live call left" wait_for 5 "SELECT count(*) FROM live_calls" 0


# ------------------------------------------------------------- the end
tg_stop; rc=$?
equal "tollgate exits cleanly on SIGTERM" "$rc" 0
check "round trips and lateness logged at exit" \
	grep -q "round trips:.*per call" "$TG_LOG"
grep "round trips:" "$TG_LOG" | tail -n 1 | sed 's/^/# /'

summary
