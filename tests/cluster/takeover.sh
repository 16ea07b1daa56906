#!/usr/bin/env bash
# Node leases and takeover: two tollgate nodes, A and B, on one PostgreSQL
# (tests/lib/pgtest.sh), heartbeat 1 s, node_lease 3 s.
#
#   twice    a second process with node A's name refuses to start (exit
#            3), naming the holder: from another state_dir by the lease
#            (instance, sip address, since), from A's own state_dir by its
#            flock (A's PID)
#   kill     SIGKILL of A with answered calls: B settles them within
#            lease + heartbeat, reason 'recovered', settled_by nodeB,
#            charged from their answer up to A's last moment alive (whole
#            seconds), never beyond their reservation; one CDR per call,
#            no live call left, the ledger agrees, B's /metrics count the
#            takeover
#   restart  SIGKILL of A, then A again on the same state_dir at once: it
#            takes its own name without waiting for the lease and settles
#            its calls itself ('recovered', settled_by nodeA)
#   stop     SIGSTOP of A past its lease: B takes its calls over; SIGCONT:
#            A sends BYE on both legs of those calls (the caller and the
#            gateway see them), writes no second CDR, claims its lease
#            again and takes new calls
#   lost     SIGSTOP of A past its lease, another process claims the free
#            name; SIGCONT: A exits 1, naming that instance
#   stall    A alone, its renewals held up by a lock on its row: past its
#            lease it answers new INVITEs 503 with Retry-After and takes
#            no dead node over; once renewed it takes calls again, and
#            the dead node
#
# Addresses (only 127.0.3.10-29): node A 127.0.3.11 (SIP 5060, API 8080),
# node B 127.0.3.12, the intruders 127.0.3.13 and 127.0.3.14, callers
# 127.0.3.20 (ports 5061-5069), the gateway 127.0.3.21:5080.
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
	echo "takeover.sh: $top_builddir/tollgate not built" >&2
	exit 99
fi
if [ -z "$SIPP" ]; then
	echo "takeover.sh: sipp not found" >&2
	exit 77
fi

# shellcheck source=../lib/check.sh
. "$top_srcdir/tests/lib/check.sh"
# shellcheck source=../lib/pgtest.sh
. "$top_srcdir/tests/lib/pgtest.sh"
# shellcheck source=lib.sh
. "$here/lib.sh"
test_init takeover || exit 99
pgtest_start || exit 99

D=$TEST_DIR
TG="$top_builddir/tollgate"
CALLER_IP=127.0.3.20
GW_IP=127.0.3.21
ADMIN=takeover-admin-secret
RATE=20000                      # micro-units a second (prefix 1)
HEARTBEAT=1
LEASE=3
declare -A PID IP
IP[A]=127.0.3.11
IP[B]=127.0.3.12
IP[X]=127.0.3.13
IP[Y]=127.0.3.14
STOPPED=

# a stopped node would not see the SIGTERM of the cleanup
test_cleanup_hook() { :; }
trap '[ -n "$STOPPED" ] && kill -CONT "$STOPPED" 2>/dev/null; test_cleanup' EXIT

sql "INSERT INTO rate_plans (name) VALUES ('takeover');
     INSERT INTO rates (rate_plan_id, prefix, connect_fee, price_per_minute,
			initial_increment, subsequent_increment)
     SELECT id, '1', 0, $((RATE * 60)), 1, 1 FROM rate_plans
      WHERE name = 'takeover'" >/dev/null || exit 99

# acct NAME: an account with money for hours of calls
acct() {
	sql "INSERT INTO accounts (name, balance, max_calls, rate_plan_id)
	     VALUES ('$1', $((100000 * RATE)), 50,
		     (SELECT id FROM rate_plans WHERE name = 'takeover'))" \
		>/dev/null
}

# node_conf TAG NAME STATE: configuration of a process on IP[TAG]
node_conf() {
	local tag=$1 ip=${IP[$1]}
	mkdir -p "$D/$3"
	cat >"$D/$tag.conf" <<CONF
sip_listen udp:$ip:5060
trusted_peer $CALLER_IP from
digest_auth no
gateway gw $GW_IP:5080
route default gw
ring_timeout 30
db_conninfo $PGTEST_CONNINFO
node_name $2
state_dir $D/$3
rtp_relay no
media_timeout 0
reserve_interval 60
low_balance_warning 0
heartbeat $HEARTBEAT
node_lease $LEASE
shutdown_grace 5
api_listen $ip:8080
api_token $ADMIN admin
log_level info
CONF
}

# node_start TAG: start it, wait until it takes calls
node_start() {
	local tag=$1 rc
	node_launch "$tag" 10 "listening for account"
	rc=$?
	PID[$tag]=$LAUNCHED_PID
	return $rc
}

# node_kill TAG: SIGKILL, reaped
node_kill() {
	kill -KILL "${PID[$1]}" 2>/dev/null
	wait "${PID[$1]}" 2>/dev/null
}

# caller NAME TAG ACCOUNT CALLS PORT: held calls toward node TAG; sets
# SIPP_PID
caller() {
	: >"$D/$1.log"
	"$SIPP" -nostdin -i "$CALLER_IP" -p "$5" -sf "$here/caller-held.xml" \
		-trace_logs -log_file "$D/$1.log" \
		-trace_err -error_file "$D/$1.err" \
		-key account "$3" -s 1100 -m "$4" -l "$4" -r 20 \
		-timeout 120 -timeout_error "${IP[$2]}:5060" \
		>"$D/$1.out" 2>&1 </dev/null &
	SIPP_PID=$!
	pid_remember "$SIPP_PID"
}

# short NAME TAG ACCOUNT PORT: one call the caller hangs up after 1 s;
# its exit status
short() {
	"$SIPP" -nostdin -i "$CALLER_IP" -p "$4" \
		-sf "$top_srcdir/tests/billing/caller-hangup.xml" \
		-trace_logs -log_file "$D/$1.log" \
		-key account "$3" -s 1100 -m 1 -l 1 -d 1000 \
		-timeout 20 -timeout_error "${IP[$2]}:5060" \
		>"$D/$1.out" 2>&1 </dev/null &
	local p=$!
	pid_remember "$p"
	wait "$p"
}

# count FILE REGEX
count() {
	local n
	n=$(grep -cE "$2" "$D/$1" 2>/dev/null)
	echo "${n:-0}"
}

# wait_count SECONDS WANT FILE REGEX: until FILE has WANT matching lines
wait_count() {
	local i
	for ((i = 0; i < $1 * 10; i++)); do
		[ "$(count "$3" "$4")" -ge "$2" ] && return 0
		sleep 0.1
	done
	return 1
}


now_ms() { date +%s%3N; }

# invite ACCOUNT: one INVITE of ACCOUNT to node A; prints the final status
# ("503 Retry-After: N" with its Retry-After), a 200 is ACKed and ended
invite() {
	python3 - "$1" "$CALLER_IP" "${IP[A]}" <<'PY'
import re, socket, sys, time
acct, me, node = sys.argv[1:4]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((me, 0))
s.settimeout(1)
port = s.getsockname()[1]
cid = "stall-%d-%d@%s" % (port, int(time.time() * 1000), me)
def req(meth, cseq, totag, branch):
    return ("%s sip:1100@%s:5060 SIP/2.0\r\n"
            "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK-%s\r\n"
            "From: <sip:%s@%s:%d>;tag=st\r\n"
            "To: <sip:1100@%s:5060>%s\r\n"
            "Call-ID: %s\r\nCSeq: %d %s\r\n"
            "Contact: <sip:%s@%s:%d>\r\nMax-Forwards: 70\r\n"
            "Content-Length: 0\r\n\r\n") % (
            meth, node, me, port, branch, acct, me, port, node, totag,
            cid, cseq, meth, acct, me, port)
s.sendto(req("INVITE", 1, "", "inv").encode(), (node, 5060))
end = time.time() + 10
while time.time() < end:
    try:
        d = s.recv(65535).decode(errors="replace")
    except socket.timeout:
        continue
    code = int(d.split(" ")[1])
    if code < 200:
        continue
    to = re.search(r"^To:.*?(;tag=[^;\r\n]+)", d, re.M | re.I)
    totag = to.group(1) if to else ""
    if code == 200:
        s.sendto(req("ACK", 1, totag, "ack").encode(), (node, 5060))
        s.sendto(req("BYE", 2, totag, "bye").encode(), (node, 5060))
        print(200)
    else:
        s.sendto(req("ACK", 1, totag, "inv").encode(), (node, 5060))
        ra = re.search(r"^Retry-After:\s*(\d+)", d, re.M | re.I)
        print("%d%s" % (code, " Retry-After: " + ra.group(1) if ra else ""))
    sys.exit(0)
print("none")
PY
}

# cdrs ACCOUNT [WHERE]: CDRs of an account's calls
cdrs() {
	sql "SELECT count(*) FROM cdrs c JOIN accounts a ON a.id = c.account_id
	      WHERE a.name = '$1' ${2:+AND $2}"
}

# live ACCOUNT: its live calls
live() {
	sql "SELECT count(*) FROM live_calls l
	       JOIN accounts a ON a.id = l.account_id WHERE a.name = '$1'"
}

# metric TAG NAME: a value of node TAG's /metrics
metric() {
	curl -s -m 5 -H "Authorization: Bearer $ADMIN" \
		"http://${IP[$1]}:8080/metrics" |
		awk -v m="$2" '$1 == m { print $2 }'
}

ledger() {
	"$TG" --ledger-check -d "$PGTEST_CONNINFO" >>"$D/ledger.out" 2>&1
}

for t in A B; do node_conf "$t" "node$t" "state$t"; done
node_start A || exit 99
node_start B || exit 99

: >"$D/gw.log"
"$SIPP" -nostdin -i "$GW_IP" -p 5080 -sf "$here/gw.xml" -trace_logs \
	-log_file "$D/gw.log" -trace_err -error_file "$D/gw.err" \
	>"$D/gw.out" 2>&1 </dev/null &
GW_PID=$!
pid_remember "$GW_PID"
wait_bound udp "$GW_IP" 5080 10 "$GW_PID" || exit 99

equal "both nodes hold a lease" \
	"$(sql "SELECT count(*) FROM nodes WHERE instance IS NOT NULL
		  AND lease_until > now() AND name IN ('nodeA', 'nodeB')")" 2
equal "the sessions name their node (application_name)" \
	"$(sql "SELECT count(DISTINCT application_name) FROM pg_stat_activity
		 WHERE application_name IN ('nodeA', 'nodeB')")" 2


# ---------------------------------------------------------------- twice
echo "# the same node name twice"
INST_A=$(sql "SELECT instance FROM nodes WHERE name = 'nodeA'")
node_conf X nodeA stateX
"$TG" -f "$D/X.conf" >"$D/X.log" 2>&1 &
xp=$!
pid_remember "$xp"
check "a second nodeA elsewhere exits soon" pid_gone "$xp" 10
wait "$xp"; rc=$?
equal "and exits 3" "$rc" 3
check "its log names the holder: instance, sip address, since" \
	grep -qE "node nodeA is held by instance $INST_A \(sip udp:${IP[A]}:5060, api ${IP[A]}:8080\) since [0-9-]+T[0-9:]+Z" \
	"$D/X.log"
check "it listened nowhere" bash -c "! grep -q 'listening' '$D/X.log'"
node_conf Y nodeA stateA
"$TG" -f "$D/Y.conf" >"$D/Y.log" 2>&1 &
yp=$!
pid_remember "$yp"
check "a second nodeA on A's state_dir exits soon" pid_gone "$yp" 10
wait "$yp"; rc=$?
equal "and exits 3" "$rc" 3
check "its log names the process holding node.lock" \
	grep -q "node.lock is held by process ${PID[A]}" "$D/Y.log"
equal "node A still holds its lease, unchanged" \
	"$(sql "SELECT instance FROM nodes WHERE name = 'nodeA'
		  AND lease_until > now()")" "$INST_A"


# ----------------------------------------------------------------- kill
echo "# SIGKILL of node A with 4 answered calls"
acct killed
caller killed A killed 4 5061
KILLED_PID=$SIPP_PID
wait_count 10 4 killed.log '^ANSWER' || fail "the 4 calls were answered"
# the heartbeat carries their answer times
check "node A's heartbeat recorded the 4 answers" wait_sql 5 \
	"SELECT count(*) FROM live_calls WHERE node = 'nodeA'
	    AND answer_at IS NOT NULL" 4
sleep 1.2
sql "SELECT call_id, reserved FROM live_calls WHERE node = 'nodeA'" \
	>"$D/killed.reserved"
t_kill=$(now_ms)
node_kill A
if wait_sql $((LEASE + HEARTBEAT + 2)) \
	"SELECT count(*) FROM cdrs c JOIN accounts a ON a.id = c.account_id
	  WHERE a.name = 'killed'" 4; then
	t_done=$(now_ms)
	within "node B settled them within lease + heartbeat (ms)" \
		$((t_done - t_kill)) 0 $(((LEASE + HEARTBEAT) * 1000 + 500))
else
	fail "node B settled the killed node's 4 calls"
fi
equal "4 CDRs: recovered, settled by node B" \
	"$(cdrs killed "c.reason = 'recovered' AND c.settled_by = 'nodeB'")" 4
equal "each charged from its answer up to A's last moment alive" \
	"$(cdrs killed "c.answer_at IS NOT NULL AND c.billed_seconds >= 1
		AND c.end_at = c.answer_at + c.billed_seconds * interval '1 s'
		AND (extract(epoch FROM c.end_at) * 1000)::bigint
		    BETWEEN $t_kill - $(((HEARTBEAT + 1) * 1000))
			AND $t_kill + 1000")" 4
equal "cost = billed seconds at the rate" \
	"$(cdrs killed "c.cost = c.billed_seconds * $RATE")" 4
over=0
while IFS='|' read -r id rsv; do
	[ -n "$id" ] || continue
	c=$(sql "SELECT cost FROM cdrs WHERE call_id = '$id'")
	[ -n "$c" ] && [ "$c" -le "$rsv" ] || over=$((over + 1))
done <"$D/killed.reserved"
equal "no call charged beyond its reservation" "$over" 0
equal "exactly one CDR per call, no live call left" \
	"$(sql "SELECT count(DISTINCT call_id) FROM cdrs c
		  JOIN accounts a ON a.id = c.account_id
		 WHERE a.name = 'killed'"),$(live killed)" "4,0"
equal "node A's lease is free, node_takeovers names B" \
	"$(sql "SELECT coalesce(instance, 'free') FROM nodes
		 WHERE name = 'nodeA'"),$(sql "SELECT count(*) FROM node_takeovers
		 WHERE node = 'nodeA' AND survivor = 'nodeB'")" "free,4"
ledger
equal "tollgate --ledger-check agrees" "$?" 0
equal "B's /metrics: one takeover, 4 calls" \
	"$(metric B tollgate_node_takeovers_total),$(metric B tollgate_calls_taken_over_total)" \
	"1,4"
check "B logged the takeover" grep -q "node nodeA is dead" "$D/B.log"
pid_stop "$KILLED_PID" 2


# -------------------------------------------------------------- restart
echo "# SIGKILL of node A, restarted at once on the same state_dir"
node_start A || exit 99
acct restart
caller restart A restart 2 5062
RESTART_PID=$SIPP_PID
wait_count 10 2 restart.log '^ANSWER' || fail "the 2 calls were answered"
check "node A's heartbeat recorded the 2 answers" wait_sql 5 \
	"SELECT count(*) FROM live_calls WHERE node = 'nodeA'
	    AND answer_at IS NOT NULL" 2
old=$(sql "SELECT instance FROM nodes WHERE name = 'nodeA'")
node_kill A
t_kill=$(now_ms)
node_start A || exit 99
t_up=$(now_ms)
within "node A came back before its old lease ran out (ms)" \
	$((t_up - t_kill)) 0 $((LEASE * 1000 - 200))
check "it took its name from the dead run at once" \
	grep -q "node nodeA: lease claimed" "$D/A.log"
new=$(sql "SELECT instance FROM nodes WHERE name = 'nodeA'")
check "a new instance holds the lease" test -n "$new" -a "$new" != "$old"
check "A settled its last run's 2 calls itself" wait_sql 5 \
	"SELECT count(*) FROM cdrs c JOIN accounts a ON a.id = c.account_id
	  WHERE a.name = 'restart' AND c.reason = 'recovered'
	    AND c.settled_by = 'nodeA'" 2
equal "B took nothing over" \
	"$(metric B tollgate_node_takeovers_total),$(live restart)" "1,0"
ledger
equal "the ledger agrees" "$?" 0
pid_stop "$RESTART_PID" 2


# ----------------------------------------------------------------- stop
echo "# SIGSTOP of node A past its lease, then SIGCONT"
acct stopped
byes_gw=$(count gw.log '^BYE')
caller stopped A stopped 3 5063
STOPPED_PID=$SIPP_PID
wait_count 10 3 stopped.log '^ANSWER' || fail "the 3 calls were answered"
check "node A's heartbeat recorded the 3 answers" wait_sql 5 \
	"SELECT count(*) FROM live_calls WHERE node = 'nodeA'
	    AND answer_at IS NOT NULL" 3
sleep 1.2
kill -STOP "${PID[A]}"
STOPPED=${PID[A]}
t_stop=$(now_ms)
check "B took over the stopped node's 3 calls" wait_sql \
	$((LEASE + HEARTBEAT + 2)) \
	"SELECT count(*) FROM cdrs c JOIN accounts a ON a.id = c.account_id
	  WHERE a.name = 'stopped' AND c.reason = 'recovered'
	    AND c.settled_by = 'nodeB'" 3
equal "B's /metrics: two takeovers, 7 calls" \
	"$(metric B tollgate_node_takeovers_total),$(metric B tollgate_calls_taken_over_total)" \
	"2,7"
sleep 0.5
kill -CONT "${PID[A]}"
STOPPED=
from=$(wc -l <"$D/A.log")
check "the caller gets BYE for the 3 calls" \
	wait_count 10 3 stopped.log '^BYE'
check "so does the gateway" wait_count 10 $((byes_gw + 3)) gw.log '^BYE'
check "the caller's BYEs say why (cause 41)" \
	test "$(count stopped.log '^BYE .*cause=41')" = 3
check "A claims its lease again" wait_line "$D/A.log" \
	"holds its lease again" 10 "${PID[A]}" "$from"
check "A logged that another node settled them" \
	grep -q "3 of its calls were settled by another node" "$D/A.log"
sleep 1
equal "still one CDR each, all B's" \
	"$(cdrs stopped),$(cdrs stopped "c.settled_by = 'nodeB'")" "3,3"
equal "no live call left" "$(live stopped)" 0
ledger
equal "the ledger agrees" "$?" 0
wait "$STOPPED_PID"; rc=$?
equal "the 3 held calls ended well for the caller" "$rc" 0
equal "A holds its lease (its instance, valid)" \
	"$(sql "SELECT count(*) FROM nodes WHERE name = 'nodeA'
		  AND instance = '$(sql "SELECT instance FROM nodes
					  WHERE name = 'nodeA'")'
		  AND lease_until > now()")" 1
acct again
short again A again 5064; rc=$?
equal "A takes a new call" "$rc" 0
check "and settles it itself" wait_sql 5 \
	"SELECT count(*) FROM cdrs c JOIN accounts a ON a.id = c.account_id
	  WHERE a.name = 'again' AND c.settled_by = 'nodeA'
	    AND c.reason = 'caller'" 1


# ----------------------------------------------------------------- lost
echo "# SIGSTOP of node A; another process claims the name; SIGCONT"
kill -STOP "${PID[A]}"
STOPPED=${PID[A]}
check "B takes the stopped node over" wait_sql $((LEASE + HEARTBEAT + 2)) \
	"SELECT coalesce(instance, 'free') FROM nodes WHERE name = 'nodeA'" \
	free
node_conf X nodeA stateX
node_start X || fail "another nodeA starts on the free name"
INST_X=$(sql "SELECT instance FROM nodes WHERE name = 'nodeA'")
kill -CONT "${PID[A]}"
STOPPED=
check "the old A exits" pid_gone "${PID[A]}" 10
wait "${PID[A]}"; rc=$?
equal "with status 1" "$rc" 1
check "naming the new holder" \
	grep -q "held by instance $INST_X (sip udp:${IP[X]}:5060)" "$D/A.log"
equal "the new holder keeps the name" \
	"$(sql "SELECT instance FROM nodes WHERE name = 'nodeA'
		  AND lease_until > now()")" "$INST_X"

pid_stop "${PID[X]}" 10
equal "the new nodeA exits 0 on SIGTERM" "$?" 0
equal "and frees its name at a clean exit" \
	"$(sql "SELECT coalesce(instance, 'free') FROM nodes
		 WHERE name = 'nodeA'")" free
pid_stop "${PID[B]}" 10
equal "B exits 0 on SIGTERM" "$?" 0


# ---------------------------------------------------------------- stall
echo "# node A's renewals stall: no new calls until it holds its lease"
node_start A || exit 99
acct stall
equal "A takes a call" "$(invite stall)" 200
# a transaction holds A's row: its renewals wait (and time out)
sql "SELECT 1 FROM nodes WHERE name = 'nodeA' FOR UPDATE;
     SELECT pg_sleep($((LEASE + 3)))" >/dev/null 2>&1 &
LOCK_PID=$!
pid_remember "$LOCK_PID"
# a dead node appears while A's renewals fail
sleep $((HEARTBEAT + 1))
sql "INSERT INTO nodes (name, instance, lease_until)
     VALUES ('ghost', 'gone', now() - interval '1 s')" >/dev/null
sleep $((LEASE - HEARTBEAT))
equal "past its lease unrenewed, A answers a new INVITE 503" \
	"$(invite stall)" "503 Retry-After: 5"
check "and logs why" grep -q "node nodeA holds no lease: call refused" \
	"$D/A.log"
equal "and takes no dead node over" \
	"$(sql "SELECT instance FROM nodes WHERE name = 'ghost'"),$(metric A tollgate_node_takeovers_total)" \
	"gone,0"
wait "$LOCK_PID"
sleep $((HEARTBEAT + 1))
equal "renewed again, A takes calls" "$(invite stall)" 200
# its own lease ran out: the others may have been cut off as long, so it
# takes nobody over before it has held its lease for one lease again
equal "but takes no node over at once" \
	"$(sql "SELECT instance FROM nodes WHERE name = 'ghost'"),$(metric A tollgate_node_takeovers_total)" \
	"gone,0"
check "and takes the dead node over one lease later" \
	wait_sql $((LEASE + HEARTBEAT + 2)) \
	"SELECT coalesce(instance, 'free') FROM nodes WHERE name = 'ghost'" free
equal "once" "$(metric A tollgate_node_takeovers_total)" 1
pid_stop "${PID[A]}" 10
equal "A exits 0 on SIGTERM" "$?" 0
ledger
equal "tollgate --ledger-check agrees at the end" "$?" 0
pid_stop "$GW_PID"

summary
