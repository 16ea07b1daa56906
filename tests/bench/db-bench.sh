#!/usr/bin/env bash
# What one PostgreSQL gives a cluster of nodes, measured on this machine
# (docs/scaling.md quotes it).  Each mode starts a private cluster
# (tests/lib/pgtest.sh) and ends it.
#
#   tests/bench/db-bench.sh hot [SECONDS]     (default 10)
#       The money path of one call as tollgate runs it (tg_authorize,
#       one tg_reserve, tg_settle_media: three commits), by pgbench with
#       CLIENTS (8) connections: all calls on one account, then spread
#       over 64 accounts; then the same calls 16 at a time in the batch
#       form tollgate uses under load (one statement, one commit per 16).
#       Prints calls/s and the mean latency of a call.
#   tests/bench/db-bench.sh sync [SECONDS]    (default 10)
#       The runs of hot with a streaming standby of the cluster, first
#       asynchronous, then synchronous (synchronous_standby_names '*',
#       synchronous_commit on): what waiting for the standby costs.
#   tests/bench/db-bench.sh notify
#       NOTIFY fan-out (tests/bench/notify_lat.c): 200 notifications 20 ms
#       apart to 1, 20 and 200 listening connections; delivery latency
#       p50/p99/max and the sender's commit time.
#   tests/bench/db-bench.sh node [CALLS] [RATE]   (default 600 30)
#       One node (billing on, no media) on 127.0.3.95, SIPp callers
#       (127.0.3.96) and gateway (127.0.3.97): its sessions, then commits
#       and statements per second idle (20 s) and per call under RATE
#       calls/s of 1 s each, from pg_stat_database and the node's
#       /metrics (tollgate_db_latency_seconds_count, batches).
#
# Addresses only in 127.0.3.80-99 (those of tests/cluster/ha.sh: do not
# run both at once).  Every process started is ended by its PID.
set -u

here=$(cd "$(dirname "$0")" && pwd)
: "${top_srcdir:=$(cd "$here/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
: "${SIPP:=$(command -v sipp || true)}"
: "${CLIENTS:=8}"
export top_srcdir top_builddir

# shellcheck source=../lib/check.sh
. "$top_srcdir/tests/lib/check.sh"
# shellcheck source=../lib/pgtest.sh
. "$top_srcdir/tests/lib/pgtest.sh"
test_init db-bench || exit 1
pgtest_start || exit 1
D=$TEST_DIR
PGBENCH="$PGTEST_BINDIR/pgbench"
SU="host=$PGTEST_DIR/run dbname=tollgate user=postgres"

sql "INSERT INTO rate_plans (name) VALUES ('bench');
     INSERT INTO rates (rate_plan_id, prefix, connect_fee, price_per_minute,
			initial_increment, subsequent_increment)
     SELECT id, '', 0, 1200000, 1, 1 FROM rate_plans
      WHERE name = 'bench'" >/dev/null || exit 1

# accounts N: N funded accounts; prints the first and last id
accounts() {
	sql "INSERT INTO accounts (name, balance, max_calls, rate_plan_id)
	     SELECT 'b' || g || '-' || $RANDOM, 1000000000000000, 100000,
		    (SELECT id FROM rate_plans WHERE name = 'bench')
	       FROM generate_series(1, $1) g RETURNING id" |
		sed -n '1p;$p' | tr '\n' ' '
}

mode_hot() {
	local secs=${1:-10} ids lo hi out
	cat >"$D/call.sql" <<'SQL'
\set n random(1, 2000000000)
\set a random(:amin, :amax)
SELECT result FROM tg_authorize('h' || :client_id || '-' || :n, 'bench', :a, 'c', '100', 'gw', 1764750000000, 4);
SELECT granted FROM tg_reserve('h' || :client_id || '-' || :n, 1, 80000);
SELECT result FROM tg_settle_media('h' || :client_id || '-' || :n, :a, 'c', '100', 'gw', 1764750000000, 1764750001000, 1764750004000, 3, 60000, 200, 'caller', 'caller', NULL);
SQL
	# 16 calls in one statement each step, as billing's batch forms
	cat >"$D/batch.sql" <<'SQL'
\set n random(1, 2000000000)
\set a random(:amin, :amax)
SELECT count(*) FROM (SELECT * FROM generate_series(1, 16) g ORDER BY g) u CROSS JOIN LATERAL tg_authorize('b' || :client_id || '-' || :n || '-' || u.g, 'bench', :a, 'c', '100', 'gw', 1764750000000, 4) t;
SELECT count(*) FROM generate_series(1, 16) u(g) CROSS JOIN LATERAL tg_reserve('b' || :client_id || '-' || :n || '-' || u.g, 1, 80000) t;
SELECT count(*) FROM (SELECT * FROM generate_series(1, 16) g ORDER BY g) u CROSS JOIN LATERAL tg_settle_media('b' || :client_id || '-' || :n || '-' || u.g, :a, 'c', '100', 'gw', 1764750000000, 1764750001000, 1764750004000, 3, 60000, 200, 'caller', 'caller', NULL) t;
SQL
	hot_runs "${2:-hot}" "$secs"
}

# hot_runs LABEL SECONDS: the four runs of mode hot
hot_runs() {
	local label=$1 secs=$2 ids lo hi out run
	for run in "one 1 call" "spread 64 call" "one 1 batch" \
		   "spread 64 batch"; do
		set -- $run
		ids=$(accounts "$2")
		lo=${ids%% *}
		hi=$(echo "$ids" | awk '{print $NF}')
		out=$("$PGBENCH" -n -c "$CLIENTS" -j 2 -T "$secs" \
			-f "$D/$3.sql" -D amin="$lo" -D amax="$hi" \
			"$PGTEST_CONNINFO" 2>&1)
		local tps lat per=1
		[ "$3" = batch ] && per=16
		tps=$(echo "$out" | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
		lat=$(echo "$out" | sed -n 's/^latency average = \([0-9.]*\) ms/\1/p')
		printf '%s: %-6s account(s) %-3s %-5s %8.0f calls/s  %7.2f ms a %s\n' \
			"$label" "$1" "$2" "$3" "$(echo "$tps * $per" | bc -l)" "$lat" \
			"$([ "$per" = 1 ] && echo call || echo "batch of 16")"
	done
	echo "$label: CDRs written: $(sql "SELECT count(*) FROM cdrs"), refused: $(sql "SELECT count(*) FROM cdrs WHERE answer_at IS NULL")"
}

# the same with a streaming standby, asynchronous then synchronous
mode_sync() {
	local secs=${1:-10}
	pgtest_standby_start || return 1
	mode_hot "$secs" async
	"$PGTEST_BINDIR/psql" -X -q "$SU" \
		-c "ALTER SYSTEM SET synchronous_standby_names = '*'" \
		-c "SELECT pg_reload_conf()" >/dev/null || return 1
	sleep 1
	echo "sync: $(sql "SHOW synchronous_standby_names"), synchronous_commit $(sql "SHOW synchronous_commit")"
	hot_runs sync "$secs"
}

mode_notify() {
	local bin="$D/notify_lat" n
	cc -O2 -o "$bin" "$here/notify_lat.c" \
		$(pkg-config --cflags --libs libpq) || return 1
	"$PGTEST_BINDIR/psql" -X -q "$SU" \
		-c "ALTER SYSTEM SET max_connections = 260" || return 1
	{ "$PGTEST_CLUSTER" stop "$PGTEST_DIR" fast &&
	  "$PGTEST_CLUSTER" start "$PGTEST_DIR"; } >/dev/null || return 1
	for n in 1 20 200; do
		echo "notify: $("$bin" "$PGTEST_CONNINFO" "$n" 200 20)"
	done
}

mode_node() {
	local calls=${1:-600} rate=${2:-30} ip=127.0.3.95 m0 m1 c0 c1 q0 q1
	[ -n "$SIPP" ] || { echo "node: sipp not found" >&2; return 1; }
	A=$(sql "INSERT INTO accounts (name, balance, max_calls, rate_plan_id)
		 VALUES ('node', 1000000000000, 10000,
			 (SELECT id FROM rate_plans WHERE name = 'bench'))
		 RETURNING id")
	mkdir -p "$D/state"
	cat >"$D/node.conf" <<CONF
sip_listen udp:$ip:5060
trusted_peer 127.0.3.96 from
digest_auth no
gateway gw 127.0.3.97:5080
route default gw
db_conninfo $PGTEST_CONNINFO application_name=node
node_name node
state_dir $D/state
rtp_relay no
media_timeout 0
low_balance_warning 0
api_listen $ip:8080
api_token bench-token-0123456789 admin
log_level warning
CONF
	commits() {
		sql "SELECT xact_commit FROM pg_stat_database
		      WHERE datname = 'tollgate'"
	}
	# the server's own commits (autovacuum, statistics) without a node
	c0=$(commits) m0=$(date +%s%3N)
	sleep 10
	c1=$(commits) m1=$(date +%s%3N)
	echo "node: no node: $(echo "($c1 - $c0 - 1) * 1000 / ($m1 - $m0)" |
		bc -l | xargs printf '%.2f') commits/s"
	"$top_builddir/tollgate" -f "$D/node.conf" >"$D/node.log" 2>&1 &
	local tg=$!
	pid_remember "$tg"
	wait_bound udp "$ip" 5060 10 "$tg" || { cat "$D/node.log"; return 1; }
	"$SIPP" -nostdin -i 127.0.3.97 -p 5080 \
		-sf "$top_srcdir/tests/billing/gw-answer.xml" -m 100000 \
		-timeout 300 >"$D/gw.out" 2>&1 </dev/null &
	local gw=$!
	pid_remember "$gw"
	wait_bound udp 127.0.3.97 5080 10 "$gw" || return 1
	sleep 3
	echo "node: sessions: $(sql "SELECT count(*) FROM pg_stat_activity
				WHERE application_name = 'node'") ($(sql "SELECT count(*)
				FROM pg_stat_activity WHERE application_name = 'node'
				AND query LIKE 'LISTEN %'") LISTEN)"
	queries() {
		curl -s -m 5 -H "Authorization: Bearer bench-token-0123456789" \
			"http://$ip:8080/metrics" |
			awk '$1 == "tollgate_db_latency_seconds_count" { print $2 }'
	}
	# a session that goes idle reports its statistics to
	# pg_stat_database up to 10 s later (PostgreSQL 15): the start-up's
	# commits must be in before the idle window opens; the psql asking
	# commits too (one each)
	sleep 11
	c0=$(commits) q0=$(queries) m0=$(date +%s%3N)
	sleep 20
	c1=$(commits) q1=$(queries) m1=$(date +%s%3N)
	echo "node: idle: $(echo "($c1 - $c0 - 1) * 1000 / ($m1 - $m0)" | bc -l |
		xargs printf '%.2f') commits/s, $(echo "($q1 - $q0) * 1000 / ($m1 - $m0)" |
		bc -l | xargs printf '%.2f') statements/s"
	c0=$(commits) q0=$(queries)
	local b0 b1
	b0=$(curl -s -m 5 -H "Authorization: Bearer bench-token-0123456789" \
		"http://$ip:8080/metrics" |
		awk '$1 == "tollgate_db_batches_total" { print $2 }')
	"$SIPP" -nostdin -i 127.0.3.96 -p 5061 \
		-sf "$top_srcdir/tests/cluster/ha-caller.xml" -key account node \
		-s 100 -m "$calls" -l "$calls" -r "$rate" -d 1000 -timeout 120 \
		-timeout_error "$ip:5060" >"$D/caller.out" 2>&1 </dev/null
	echo "node: SIPp exit $? for $calls calls at $rate/s"
	sleep 11
	c1=$(commits) q1=$(queries)
	b1=$(curl -s -m 5 -H "Authorization: Bearer bench-token-0123456789" \
		"http://$ip:8080/metrics" |
		awk '$1 == "tollgate_db_batches_total" { print $2 }')
	local cdrs
	cdrs=$(sql "SELECT count(*) FROM cdrs WHERE account_id = $A")
	echo "node: $cdrs CDRs; per call: $(echo "($c1 - $c0 - 2) / $cdrs" | bc -l |
		xargs printf '%.2f') commits, $(echo "($q1 - $q0) / $cdrs" | bc -l |
		xargs printf '%.2f') statements, $((b1 - b0)) batches"
	pid_stop "$gw"
	pid_stop "$tg" 20
}

case ${1:-} in
hot)    mode_hot "${2:-}" ;;
sync)   mode_sync "${2:-}" ;;
notify) mode_notify ;;
node)   mode_node "${2:-}" "${3:-}" ;;
*)      sed -n '2,33p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
