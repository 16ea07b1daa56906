#!/usr/bin/env bash
# Two tollgate nodes on a PostgreSQL primary with a streaming standby
# (tools/pg-cluster.sh standby, tests/lib/pgtest.sh), the primary lost
# under load and the standby promoted.
#
# Each node's db_conninfo names both servers with
# target_session_attrs=read-write: node 1 lists the standby first (every
# connection passes over it to reach the primary), node 2 the primary
# first.  Callers dial each node directly (trusted peer), every call goes
# to one SIPp gateway.
#
#   before    both nodes up, every session of theirs on the primary and
#             none on the standby
#   failover  under 2 x 20 calls/s the primary stops (-m fast); for 2.5 s
#             no primary is reachable: health says so, calls get 503,
#             settlements wait in the spools; then the standby is
#             promoted and both nodes are back on it within 5 s (health,
#             tollgate_db_up, heartbeats and LISTEN sessions on the new
#             primary)
#   money     every call ended at the caller (answered and hung up, or
#             503); one CDR for each, on the new primary, written by the
#             node that carried it; no call billed twice, none lost
#             (spools drained, no dead letter, no live call left), the
#             balance and the CDRs add up, tollgate --ledger-check exits
#             0 against the new primary
#   after     new calls on both nodes all succeed; clean stops
#
# Addresses (only 127.0.3.80-99): nodes 127.0.3.81-82 (SIP 5060, API
# 8080), callers 127.0.3.85, the gateway 127.0.3.90:5080.
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
	echo "ha.sh: $top_builddir/tollgate not built" >&2
	exit 99
fi
if [ -z "$SIPP" ]; then
	echo "ha.sh: sipp not found" >&2
	exit 77
fi

TEST_KEEP=${CT_KEEP:-}
# shellcheck source=../lib/check.sh
. "$top_srcdir/tests/lib/check.sh"
# shellcheck source=../lib/pgtest.sh
. "$top_srcdir/tests/lib/pgtest.sh"
# shellcheck source=lib.sh
. "$here/lib.sh"
test_init ha || exit 99
pgtest_start || exit 99
pgtest_standby_start || exit 99

D=$TEST_DIR
TG="$top_builddir/tollgate"
P=$PGTEST_DIR
S=$PGTEST_STANDBY_DIR
CALLER_IP=127.0.3.85
GW_IP=127.0.3.90
ADMIN=ha-admin-secret-0123456789
PER_S=20000                     # micro-units a second (1/1 increments)
N=200                           # calls per node under the failover
NODE_PID=()

# the primary of the moment: the suite's cluster, after the failover the
# promoted standby
PG_NOW=$PGTEST_CONNINFO
sql() {
	"$PGTEST_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -At "$PG_NOW" -c "$1"
}
sql_standby() { pgtest_standby_psql -At -c "$1"; }

sql "INSERT INTO rate_plans (name) VALUES ('ha');
     INSERT INTO rates (rate_plan_id, prefix, connect_fee, price_per_minute,
			initial_increment, subsequent_increment)
     SELECT id, '', 0, $((PER_S * 60)), 1, 1 FROM rate_plans
      WHERE name = 'ha'" >/dev/null || exit 99

# acct NAME BALANCE: prints its id
acct() {
	sql "INSERT INTO accounts (name, balance, max_calls, rate_plan_id)
	     VALUES ('$1', $2, 1000,
		     (SELECT id FROM rate_plans WHERE name = 'ha'))
	     RETURNING id"
}

# node_conf N HOSTS: node N's configuration, its servers in that order
node_conf() {
	local n=$1 ip=127.0.3.8$1
	mkdir -p "$D/state$n"
	cat >"$D/node$n.conf" <<CONF
sip_listen udp:$ip:5060
trusted_peer $CALLER_IP from
digest_auth no
gateway gw $GW_IP:5080
route default gw
ring_timeout 10
db_conninfo host=$2 dbname=tollgate user=tollgate target_session_attrs=read-write application_name=node$n
node_name node$n
state_dir $D/state$n
rtp_relay no
media_timeout 0
overload_wait 0
low_balance_warning 0
heartbeat 1
shutdown_grace 10
api_listen $ip:8080
api_token $ADMIN admin
log_level info
CONF
}

# node_start N: start node N, wait until it listens for account changes
node_start() {
	local n=$1 rc
	node_launch "node$n" 15 "listening for account"
	rc=$?
	NODE_PID[$n]=$LAUNCHED_PID
	return $rc
}

# sipp_bg NAME IP PORT SCENARIO [ARGS...]: SIPp in the background, its
# <log> lines in $D/NAME.log; sets SIPP_PID
sipp_bg() {
	local name=$1 ip=$2 port=$3 sf=$4
	shift 4
	: >"$D/$name.log"
	"$SIPP" -nostdin -i "$ip" -p "$port" -sf "$sf" \
		-trace_logs -log_file "$D/$name.log" \
		-trace_err -error_file "$D/$name.err" \
		"$@" >"$D/$name.out" 2>&1 </dev/null &
	SIPP_PID=$!
	pid_remember "$SIPP_PID"
}

# callers NAME NODE ACCOUNT CALLS RATE HOLD_MS: hanging-up callers to a
# node, each call answered or refused with 503; sets CALLER_PID
callers() {
	sipp_bg "$1" "$CALLER_IP" "$((5060 + $2))" "$here/ha-caller.xml" \
		-key account "$3" -s 100 -m "$4" -l "$4" -r "$5" -d "$6" \
		-timeout 90 -timeout_error "127.0.3.8$2:5060"
	CALLER_PID=$SIPP_PID
}

# health N: the HTTP status of node N's GET /v1/health (200: the database
# answered a query)
health() {
	curl -s -m 5 -o /dev/null -w '%{http_code}' \
		-H "Authorization: Bearer $ADMIN" \
		"http://127.0.3.8$1:8080/v1/health"
}

# metric N NAME: a value of node N's /metrics
metric() {
	curl -s -m 2 -H "Authorization: Bearer $ADMIN" \
		"http://127.0.3.8$1:8080/metrics" |
		awk -v m="$2" '$1 == m { print $2; exit }'
}

# spool_pending N: settlements in node N's spool without their done record
spool_pending() {
	awk -F'\t' '$1 == "S3" || $1 == "S2" || $1 == "S" { p[$2] = 1 }
		    $1 == "D2" || $1 == "D" { delete p[$2] }
		    END { n = 0; for (k in p) n++; print n }' \
		"$D/state$1/billing.spool" 2>/dev/null || echo 0
}

# sessions N: node N's sessions on the primary of the moment
sessions() {
	sql "SELECT count(*) FROM pg_stat_activity
	      WHERE application_name = 'node$1'"
}

# listens N: node N's LISTEN sessions on the primary of the moment
listens() {
	sql "SELECT count(*) FROM pg_stat_activity
	      WHERE application_name = 'node$1' AND query LIKE 'LISTEN %'"
}

# wait_listens SECONDS: until both nodes listen on all three channels
wait_listens() {
	local i
	for ((i = 0; i < $1 * 10; i++)); do
		[ "$(listens 1 2>/dev/null)" = 3 ] &&
			[ "$(listens 2 2>/dev/null)" = 3 ] && return 0
		sleep 0.1
	done
	return 1
}

# now_ms: wall clock in ms
now_ms() { date +%s%3N; }

count() { grep -c "^$2 " "$D/$1.log" 2>/dev/null; }

sipp_bg gw "$GW_IP" 5080 "$top_srcdir/tests/billing/gw-answer.xml" \
	-m 100000 -timeout 300
GW_PID=$SIPP_PID
wait_bound udp "$GW_IP" 5080 10 "$GW_PID" || exit 99

node_conf 1 "$S/run,$P/run"
node_conf 2 "$P/run,$S/run"
for n in 1 2; do
	node_start $n || exit 99
done


# --------------------------------------------------------------- before
echo "# two nodes on the primary, the standby streaming"
for n in 1 2; do
	equal "node $n: health 200" "$(health $n)" 200
	within "node $n: its sessions are on the primary" "$(sessions $n)" 3 40
	equal "node $n: none on the standby" \
		"$(sql_standby "SELECT count(*) FROM pg_stat_activity
				WHERE application_name = 'node$n'")" 0
done
check "both nodes listen on their three channels on the primary" wait_listens 5
equal "the standby is in recovery" \
	"$(sql_standby "SELECT pg_is_in_recovery()")" t
FUND=$((1000000 * PER_S))
A=$(acct ha "$FUND")
for ((i = 0; i < 50; i++)); do
	[ "$(sql_standby "SELECT count(*) FROM accounts WHERE id = $A")" = 1 ] &&
		break
	sleep 0.1
done
equal "the account is on the standby" \
	"$(sql_standby "SELECT count(*) FROM accounts WHERE id = $A")" 1


# ------------------------------------------------------------- failover
echo "# the primary stops under 2 x 20 calls/s, the standby is promoted"
callers load1 1 ha "$N" 20 2500
C1=$CALLER_PID
callers load2 2 ha "$N" 20 2500
C2=$CALLER_PID
sleep 4
answered_before=$(($(count load1 ANSWER) + $(count load2 ANSWER)))
t_stop=$(now_ms)
"$PGTEST_CLUSTER" stop "$P" fast >>"$D/pg.log" 2>&1 ||
	fail "the primary stops"
echo "# primary stopped at $(date +%T.%N) ($answered_before calls answered)"
# health asks the database and waits for its answer: both at once
sleep 1
health 1 >"$D/health1" & H1=$!
health 2 >"$D/health2" & H2=$!
sleep 1.5
for n in 1 2; do
	equal "node $n: tollgate_db_up 0" "$(metric $n tollgate_db_up)" 0
done
pending=$(($(spool_pending 1) + $(spool_pending 2)))
within "settlements wait in the spools meanwhile" "$pending" 1 $((2 * N))
wait "$H1" "$H2"
for n in 1 2; do
	equal "node $n: health 503 while no primary is reachable" \
		"$(cat "$D/health$n")" 503
done
t_prom=$(now_ms)
"$PGTEST_CLUSTER" promote "$S" >>"$D/pg.log" 2>&1 ||
	fail "the standby is promoted"
PG_NOW=$PGTEST_STANDBY_CONNINFO
echo "# standby promoted at $(date +%T.%N), $((t_prom - t_stop)) ms after the stop"
equal "the promoted standby takes writes" \
	"$(sql "SELECT pg_is_in_recovery()")" f
declare -A back
for ((i = 0; i < 100; i++)); do
	for n in 1 2; do
		if [ -z "${back[$n]:-}" ] && [ "$(health $n)" = 200 ]; then
			back[$n]=$(($(now_ms) - t_prom))
		fi
	done
	[ -n "${back[1]:-}" ] && [ -n "${back[2]:-}" ] && break
	sleep 0.1
done
for n in 1 2; do
	echo "# node $n: health 200 again ${back[$n]:-never} ms after the promotion"
	within "node $n: on the new primary within 5 s of the promotion" \
		"${back[$n]:-99999}" 0 5000
	equal "node $n: tollgate_db_up 1" "$(metric $n tollgate_db_up)" 1
done
check "both nodes listen again, on the new primary" wait_listens 5
# the outage outlasts a lease (heartbeat 1, so 3 s): both leases ran out,
# and neither node may take the other over for it
for n in 1 2; do
	equal "node $n: took no node over after the outage" \
		"$(metric $n tollgate_node_takeovers_total)" 0
	check "node $n: holds its lease again" wait_sql 5 \
		"SELECT lease_until > now() FROM nodes WHERE name = 'node$n'" t
done
for n in 1 2; do
	within "node $n: its sessions are on the new primary" \
		"$(sessions $n)" 3 40
	check "node $n: its heartbeat is written on the new primary" \
		wait_sql 5 "SELECT seen_at > now() - interval '2 s'
			    FROM nodes WHERE name = 'node$n'" t
	within "node $n: LISTEN made again on every channel" \
		"$(grep -c 'db: listening on' "$D/node$n.log")" 4 20
	equal "node $n: no settlement refused by the database" \
		"$(grep -c 'refused by the database' "$D/node$n.log")" 0
done

wait "$C1"; rc1=$?
wait "$C2"; rc2=$?
equal "node 1's callers: every call answered and hung up, or 503" "$rc1" 0
equal "node 2's callers: every call answered and hung up, or 503" "$rc2" 0
ans=0 ref=0
for c in load1 load2; do
	a=$(count $c ANSWER) h=$(count $c HANGUP) r=$(count $c REFUSED)
	echo "# $c: $a answered, $r refused (503)"
	equal "$c: every answered call hung up" "$h" "$a"
	equal "$c: $N calls, each answered or refused" "$((a + r))" "$N"
	ans=$((ans + a)) ref=$((ref + r))
done
within "calls were refused while no primary was reachable" "$ref" 1 \
	$((2 * N))
within "calls were answered across the failover" "$ans" \
	$((answered_before + 1)) $((2 * N))


# ---------------------------------------------------------------- money
echo "# every authorised call billed once, on the new primary"
# outcomes N: the call ids node N logged an authorisation outcome for
outcomes() {
	sed -n 's/.*\[\([0-9a-f]\{16\}\)\] billing: \(authorised\|refused\|authorisation failed\|database out\|the spool cannot\).*/\1/p' \
		"$D/node$1.log" | sort -u
}
outcomes 1 >"$D/ids1"
outcomes 2 >"$D/ids2"
n1=$(grep -c . "$D/ids1") n2=$(grep -c . "$D/ids2")
echo "# authorisation outcomes: node 1 $n1, node 2 $n2"
check "$((n1 + n2)) CDRs on the new primary" wait_sql 30 \
	"SELECT count(*) FROM cdrs WHERE account_id = $A" $((n1 + n2))
for n in 1 2; do
	ids=$(tr '\n' ',' <"$D/ids$n" | sed 's/,$//')
	equal "node $n: one CDR, its own, for each call it authorised" \
		"$(sql "SELECT count(*) FROM unnest(string_to_array('$ids', ','))
			  AS u(id) JOIN cdrs c ON c.call_id = u.id
			 WHERE c.settled_by = 'node$n'")" "$(grep -c . "$D/ids$n")"
	equal "node $n: every 503 is a call it could not look up, authorise or take without its lease" \
		"$(count load$n REFUSED)" \
		"$(grep -cE 'account lookup failed|billing: (refused|authorisation failed|database out|the spool cannot|node node[12] holds no lease)' \
		   "$D/node$n.log")"
done
equal "one CDR for each answered call" \
	"$(sql "SELECT count(*) FROM cdrs WHERE account_id = $A
		AND answer_at IS NOT NULL")" "$ans"
equal "no call id twice" \
	"$(sql "SELECT count(*) - count(DISTINCT call_id) FROM cdrs")" 0
equal "no call billed beyond its length" \
	"$(sql "SELECT count(*) FROM cdrs WHERE account_id = $A
		AND answer_at IS NOT NULL AND billed_seconds >
		ceil(extract(epoch FROM end_at - answer_at) - 0.0005)")" 0
equal "cost = billed seconds x rate" \
	"$(sql "SELECT count(*) FROM cdrs WHERE account_id = $A
		AND cost <> billed_seconds * $PER_S")" 0
equal "balance + CDR costs = funding" \
	"$(sql "SELECT a.balance + coalesce((SELECT sum(cost) FROM cdrs
		WHERE account_id = a.id), 0) FROM accounts a
		WHERE a.id = $A")" "$FUND"
equal "no live call left, nothing reserved" \
	"$(sql "SELECT count(*) FROM live_calls")" 0
for n in 1 2; do
	equal "node $n: its spool is empty" "$(spool_pending $n)" 0
	check "node $n: no dead letter" \
		test ! -s "$D/state$n/billing.dead"
	equal "node $n: tollgate_billing_dead_letters_total 0" \
		"$(metric $n tollgate_billing_dead_letters_total)" 0
done
"$TG" --ledger-check -f "$D/node1.conf" >"$D/ledger.out" 2>&1
equal "tollgate --ledger-check exits 0 against the new primary" "$?" 0
sed 's/^/# /' "$D/ledger.out"


# ---------------------------------------------------------------- after
echo "# new calls after the failover"
callers after1 1 ha 40 20 500
C1=$CALLER_PID
callers after2 2 ha 40 20 500
C2=$CALLER_PID
wait "$C1"; rc1=$?
wait "$C2"; rc2=$?
equal "node 1: 40 new calls, none failed" "$rc1" 0
equal "node 2: 40 new calls, none failed" "$rc2" 0
for c in after1 after2; do
	equal "$c: all 40 answered and hung up, none refused" \
		"$(count $c HANGUP),$(count $c REFUSED)" "40,0"
done
check "80 more CDRs" wait_sql 10 \
	"SELECT count(*) FROM cdrs WHERE account_id = $A" $((n1 + n2 + 80))

for n in 1 2; do
	pid_stop "${NODE_PID[$n]}" 20
	equal "node $n exits 0 on SIGTERM" "$?" 0
	equal "node $n: its spool is empty after the stop" \
		"$(spool_pending $n)" 0
done
equal "no live call left after the stops" \
	"$(sql "SELECT count(*) FROM live_calls")" 0
equal "balance + CDR costs = funding at the end" \
	"$(sql "SELECT a.balance + coalesce((SELECT sum(cost) FROM cdrs
		WHERE account_id = a.id), 0) FROM accounts a
		WHERE a.id = $A")" "$FUND"
"$TG" --ledger-check -f "$D/node2.conf" >>"$D/ledger.out" 2>&1
equal "tollgate --ledger-check exits 0 at the end" "$?" 0

pid_stop "$GW_PID"

summary
