#!/usr/bin/env bash
#
# cluster-bench.sh - calls/s with billing through Kamailio's dispatcher
# (contrib/kamailio) to one and to two tollgate nodes on one PostgreSQL,
# and the CPU each component spends per call (not part of "make check")
#
# Usage: tests/bench/cluster-bench.sh [1|2|anchor|all]
#        (default all: 1 node, 2 nodes, then the anchor, in one run)
#
# For each number of nodes, the shared harness's call rate search
# (../shared/bench/run-cps.sh: short calls, the highest rate with no
# failed call) runs against Kamailio, which hashes every call to a node;
# every node routes to the harness's gateway and bills each call (an
# account per caller, as billing-bench.sh's cps run).  Per step the
# report gives the CPU per call, in ms, of:
#   tollgate    the nodes (the harness's target, -p)
#   kamailio    Kamailio and its children (the harness's -x)
#   postgres    the postmaster and its backends (read from
#               /proc/<pid>/stat after every step, by the probe)
# PostgreSQL's figure is the difference between two probes, so it
# includes the harness's pause between the steps (an idle server: little).
#
# The nodes trust Kamailio as a peer (account = the From user): the
# harness's caller does not answer digest challenges.  Deployed, callers
# authenticate with digest through the proxy (contrib/kamailio/README),
# which costs one more INVITE and 407 per call and an account look-up.
#
# anchor: Kamailio + cnxcc (the harness's ../shared/bench/kamailio, cnxcc
# on, a credit per caller in redis) on the same machine in the same run,
# with its own CPU and redis's per call: the other engine that keeps
# prepaid credit in front of a gateway.
#
# Addresses: Kamailio 127.0.3.50:5060, nodes 127.0.3.51 and 127.0.3.52,
# the harness's caller and gateway on 127.0.0.77.  Every process is
# started here and stopped by its PID; each run is bounded in calls.
#
# Environment: CPS_CALLS (10000), HOLD_MS (1000), RATES ("100 200 300 400
# 500 600 800 1000"), KAM_RATES (the anchor's, default RATES), WARMUP
# (2000 calls before the steps, 0 for none), SIPP, KAMAILIO, BENCH_DIR
# (the harness, ../shared/bench).

set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=${top_srcdir:-$(cd "$here/../.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
export top_srcdir top_builddir
bench=${BENCH_DIR:-$top_srcdir/../shared/bench}
what=${1:-all}

CPS_CALLS=${CPS_CALLS:-10000}
HOLD_MS=${HOLD_MS:-1000}
RATES=${RATES:-"100 200 300 400 500 600 800 1000"}
WARMUP=${WARMUP:-2000}
SIPP=${SIPP:-$(command -v sipp)}
KAMAILIO=${KAMAILIO:-$(command -v kamailio || echo /usr/sbin/kamailio)}
export SIPP
# the number the harness dials: tollgate refuses a non-numeric one (484)
export SERVICE=${SERVICE:-100}
KAM_IP=127.0.3.50

[ -x "$top_builddir/tollgate" ] || { echo "build tollgate first" >&2; exit 2; }
[ -x "$KAMAILIO" ] || { echo "kamailio not found" >&2; exit 2; }
[ -x "$bench/run-cps.sh" ] || { echo "no harness at $bench" >&2; exit 2; }
case $what in 1 | 2 | anchor | all) ;;
*) echo "usage: $0 [1|2|anchor|all]" >&2; exit 2 ;; esac

out=$(mktemp -d /tmp/tollgate-cluster-bench.XXXXXX)
chmod 755 "$out"
node_pids=()
kam_pid=

stop_all() {
	local p
	for p in "${node_pids[@]}" $kam_pid; do
		kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	node_pids=()
	kam_pid=
	if [ -n "${anchor_started:-}" ]; then
		"$bench/kamailio/anchor.sh" stop >/dev/null 2>&1
		anchor_started=
	fi
}

cleanup() {
	stop_all
	type pgtest_stop >/dev/null 2>&1 && pgtest_stop
	true
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

. "$top_srcdir/tests/lib/pgtest.sh"
pgtest_start >/dev/null || exit 2

# one rate for every number (1/1, 20,000 micro-units a second) and an
# account per caller of the harness (From users callerNNNNN)
ncallers=$(( CPS_CALLS > 2000 ? CPS_CALLS : 2000 ))
ncallers=$(( ncallers > WARMUP ? ncallers : WARMUP ))
pgtest_psql -q -c "INSERT INTO rate_plans (name) VALUES ('bench');
	INSERT INTO rates (rate_plan_id, prefix, price_per_minute,
			   initial_increment, subsequent_increment)
	SELECT id, '', 1200000, 1, 1 FROM rate_plans WHERE name = 'bench';
	INSERT INTO accounts (name, balance, max_calls, rate_plan_id)
	SELECT 'caller' || lpad(g::text, 5, '0'), 1000000000000, 100, r.id
	  FROM rate_plans r, generate_series(1, $ncallers) g
	 WHERE r.name = 'bench'" || exit 2

pg_pid=$(head -n 1 "$PGTEST_DIR/pgdata/postmaster.pid")

# after every step: the postmaster's and its backends' CPU ticks so far
cat >"$out/probe.sh" <<PROBE
. "$bench/lib/common.sh"
echo "postgres_ticks=\$(cpu_ticks \$(pid_tree $pg_pid))"
PROBE

# node_start N: node N on 127.0.3.5N
node_start() {
	local n=$1 pid
	mkdir -p "$out/state$n"
	cat >"$out/node$n.conf" <<CONF
sip_listen udp:127.0.3.5$n:5060
trusted_peer $KAM_IP from
gateway gw 127.0.0.77:5080
route default gw
ring_timeout 60
max_call_duration 0
billing yes
rtp_relay no
db_conninfo $PGTEST_CONNINFO application_name=bench$n
state_dir $out/state$n
node_name bench$n
shutdown_grace 0
log_level warning
CONF
	"$top_builddir/tollgate" -f "$out/node$n.conf" \
		>>"$out/node$n.log" 2>&1 </dev/null &
	pid=$!
	node_pids+=("$pid")
	# it logs warnings only: up once its SIP port is bound, then a
	# second for its database connections
	for _ in $(seq 1 100); do
		if [ -n "$(ss -Hlnu "src 127.0.3.5$n:5060" 2>/dev/null)" ]; then
			sleep 1
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "node $n did not start:" >&2
	tail -n 20 "$out/node$n.log" >&2
	return 1
}

# kam_start N: Kamailio in front of nodes 1..N
kam_start() {
	local n=$1 i
	: >"$out/dispatcher.list"
	for i in $(seq 1 "$n"); do
		echo "1 sip:127.0.3.5$i:5060 0 0 duid=bench$i" \
			>>"$out/dispatcher.list"
	done
	mkdir -p "$out/kamailio"
	"$KAMAILIO" -f "$top_srcdir/contrib/kamailio/tollgate-dispatcher.cfg" \
		-DD -E -m 256 -M 16 -Y "$out/kamailio" -w "$out/kamailio" \
		-A "LISTEN=udp:$KAM_IP:5060" \
		-A "DS_LIST=\"$out/dispatcher.list\"" \
		-A DS_PING_INTERVAL=5 -A CHILDREN=4 \
		>"$out/kamailio-$n.log" 2>&1 </dev/null &
	kam_pid=$!
	for _ in $(seq 1 100); do
		[ -n "$(ss -Hlnu "src $KAM_IP:5060" 2>/dev/null)" ] && return 0
		kill -0 "$kam_pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "kamailio did not start:" >&2
	tail -n 20 "$out/kamailio-$n.log" >&2
	return 1
}

# per_call N SUMMARY: a line per step with the CPU ms per call of each
# component (the probe line after a step carries PostgreSQL's ticks)
per_call() {
	local hz
	hz=$(getconf CLK_TCK)
	awk -v calls="$CPS_CALLS" -v hz="$hz" -v base="$2" -v nodes="$1" '
		/^rate=/ {
			line = $0; rate = ""; tg = ""; kam = ""; ok = ""; v = ""
			for (i = 1; i <= NF; i++) {
				split($i, kv, "=")
				if (kv[1] == "rate") rate = kv[2]
				if (kv[1] == "ok") ok = kv[2]
				if (kv[1] == "target_cpu_s") tg = kv[2]
				if (kv[1] == "aux_cpu_s") kam = kv[2]
				if (kv[1] == "verdict") v = kv[2]
			}
			next
		}
		/probe: postgres_ticks=/ {
			sub(/.*postgres_ticks=/, ""); t = $1 + 0
			pg = (t - base) / hz; base = t
			if (rate == "") next
			printf "nodes=%d rate=%s ok=%s %s ms/call: tollgate %.3f" \
			       " kamailio %.3f postgres %.3f\n", nodes, rate, ok,
			       v, tg * 1000 / calls, kam * 1000 / calls,
			       pg * 1000 / calls
			rate = ""
		}' "$3"
}

summary=()
for n in 1 2; do
	[ "$what" = all ] || [ "$what" = "$n" ] || continue

	for i in $(seq 1 "$n"); do
		node_start "$i" || exit 1
	done
	kam_start "$n" || exit 1
	sleep 1
	# warm-up calls go before the baseline of PostgreSQL's ticks
	base=$(bash "$out/probe.sh" | sed 's/.*=//')
	pids=$(IFS=,; echo "${node_pids[*]}")
	line=$("$bench/run-cps.sh" "$KAM_IP:5060" -p "$pids" -x "$kam_pid" \
		-q "bash $out/probe.sh" -n "$CPS_CALLS" -d "$HOLD_MS" \
		-r "$RATES" -b 2 -W "$WARMUP" -o "$out/cps-$n" 2>&1 |
		tee "$out/cps-$n.txt" | tail -n 1)
	summary+=("$n node(s) behind kamailio: $line")
	while read -r l; do
		summary+=("  $l")
	done < <(per_call "$n" "$base" "$out/cps-$n/summary.txt")
	cdrs=$(pgtest_psql -At -c "SELECT string_agg(settled_by || '=' || n,
			' ' ORDER BY settled_by) FROM (SELECT settled_by,
			count(*) n FROM cdrs GROUP BY 1) s")
	summary+=("  CDRs so far by node: $cdrs")
	stop_all
	sleep 2
done

if [ "$what" = all ] || [ "$what" = anchor ]; then
	KAM_DEFS="" "$bench/kamailio/anchor.sh" start >/dev/null || exit 1
	anchor_started=1
	line=$("$bench/run-cps.sh" 127.0.0.1:5070 \
		-p /tmp/bench/kamailio/kamailio.main.pid \
		-x "$("$bench/kamailio/anchor.sh" redis-pid)" \
		-n "$CPS_CALLS" -d "$HOLD_MS" -r "${KAM_RATES:-$RATES}" -b 2 \
		-W "$WARMUP" -q "$bench/kamailio/anchor.sh probe" \
		-o "$out/cps-anchor" 2>&1 | tee "$out/cps-anchor.txt" | tail -n 1)
	summary+=("kamailio+cnxcc (anchor): $line")
	while read -r l; do
		summary+=("  $l")
	done < <(awk -v calls="$CPS_CALLS" '/^rate=/ {
			r = ""; k = ""; x = ""; ok = ""
			for (i = 1; i <= NF; i++) {
				split($i, kv, "=")
				if (kv[1] == "rate") r = kv[2]
				if (kv[1] == "ok") ok = kv[2]
				if (kv[1] == "target_cpu_s") k = kv[2]
				if (kv[1] == "aux_cpu_s") x = kv[2]
			}
			printf "anchor rate=%s ok=%s ms/call: kamailio %.3f" \
			       " redis %.3f\n", r, ok, k * 1000 / calls,
			       x * 1000 / calls
		}' "$out/cps-anchor/summary.txt")
	stop_all
fi

echo
echo "=== cluster bench ($(date -u +%FT%TZ), $(nproc) cores)"
printf '%s\n' "${summary[@]}"
echo "out=$out"
