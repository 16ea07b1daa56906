#!/usr/bin/env bash
#
# billing-bench.sh - prepaid billing under load (not part of "make check")
#
# Usage: tests/bench/billing-bench.sh [cutoff|cps|overload|profile|all]
#        (default all: cutoff, cps and overload)
#
# cutoff  N concurrent metered calls (CALLS, default 1000), each on an
#         account of its own funded for FUNDED_S seconds (default 20),
#         set up at RAMP calls/s (default 100).  Every call is cut by
#         tollgate.  Reports the cut-off lateness -- from the exact moment
#         the money ends to the BYE leaving -- as the daemon measures it
#         (timer due -> both BYEs sent) and as each leg sees it (BYE
#         received - answer - FUNDED_S), p50/p99/max, and the PostgreSQL
#         round trips per call the daemon counted.
# cps     the call rate with billing on (1 s calls; an account per caller
#         as the anchor keeps a credit per caller, or ONE_ACCOUNT=1 for
#         every call on one account), with the
#         shared harness ../shared/bench/run-cps.sh, then Kamailio + cnxcc
#         (the anchor, KAM_DEFS="" so cnxcc is on) in the same run.
# overload  the highest passing rate R (the cps search on tollgate, or
#         OVERLOAD_BASE=R to skip it), then CPS_CALLS calls offered at R,
#         1.25 R and 1.5 R: per step the calls that succeeded, the goodput
#         (succeeded calls a second, and as a share of R: the target is
#         at least 90 %), the 503s tollgate shed at once, INVITE->200 of
#         the calls that passed, the CDRs written against the attempts
#         that reached authorisation, and tollgate's and PostgreSQL's CPU
#         (the harness's -x with the postmaster).
# profile  PROFILE_CALLS calls (10000) at PROFILE_RATE calls/s (1500)
#         with pg_stat_statements loaded in the private cluster; per
#         call: statements and their time, commits, rows inserted /
#         updated (HOT) / deleted per table, index entries written, WAL
#         records and bytes, PostgreSQL's and tollgate's CPU.
#
# The tollgate runs of cps and overload account PostgreSQL's CPU apart
# (aux_cpu_s: the postmaster and its backends).
#
# Addresses: tollgate 127.0.0.51:5060 (cutoff) / TG_IP:5060 (cps,
# overload, profile; default 127.0.0.58), callers 127.0.0.52, gateway
# 127.0.0.54 (cutoff), the harness on BENCH_IP (its default 127.0.0.77).  Each run is bounded in calls and time; every process is
# started here and stopped by its PID.
#
# Environment: CALLS, FUNDED_S, RAMP, CPS_CALLS (10000), HOLD_MS (1000),
# RATES ("300 400 500 600 700 800 900"), KAM_RATES (the anchor's, default
# RATES), OVERLOAD_BASE, CONF_EXTRA (more configuration lines for the
# call rate runs, e.g. "overload_wait 0"), SIPP; NO_ANCHOR=1 skips the anchor
# (a look at tollgate alone, not a comparison).

set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=${top_srcdir:-$(cd "$here/../.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
export top_srcdir top_builddir
bench=${BENCH_DIR:-$top_srcdir/../shared/bench}
what=${1:-all}

CALLS=${CALLS:-1000}
FUNDED_S=${FUNDED_S:-20}
RAMP=${RAMP:-100}
CPS_CALLS=${CPS_CALLS:-10000}
HOLD_MS=${HOLD_MS:-1000}
RATES=${RATES:-"300 400 500 600 700 800 900"}
SIPP=${SIPP:-$(command -v sipp)}
TG_IP=${TG_IP:-127.0.0.58}
export BENCH_IP=${BENCH_IP:-127.0.0.77}
PROFILE_CALLS=${PROFILE_CALLS:-10000}
PROFILE_RATE=${PROFILE_RATE:-1500}
# the number the harness dials: tollgate refuses a non-numeric one (484)
export SERVICE=${SERVICE:-100}

[ -x "$top_builddir/tollgate" ] || { echo "build tollgate first" >&2; exit 2; }

out=$(mktemp -d /tmp/tollgate-billing-bench.XXXXXX)
chmod 755 "$out"
tg_pid=
pids=
kam_started=

cleanup() {
	local p
	for p in $pids $tg_pid; do
		kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	[ -n "$kam_started" ] && "$bench/kamailio/anchor.sh" stop >/dev/null 2>&1
	type pgtest_stop >/dev/null 2>&1 && pgtest_stop
	true
}
trap cleanup EXIT

. "$top_srcdir/tests/lib/pgtest.sh"
pgtest_start >/dev/null || exit 2

if [ "$what" = profile ]; then
	# pg_stat_statements is loaded at start: restart with it
	cat >>"$PGTEST_DIR/pgdata/postgresql.conf" <<PGCONF
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = all
pg_stat_statements.max = 1000
track_functions = all
PGCONF
	"$PGTEST_CLUSTER" stop "$PGTEST_DIR" >/dev/null &&
		"$PGTEST_CLUSTER" start "$PGTEST_DIR" >/dev/null || exit 2
	pgsu() {
		"$PGTEST_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 \
			"${PGTEST_CONNINFO% user=*} user=postgres" "$@"
	}
	pgsu -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" || exit 2
fi

# one rate for every number: 1/1, 20,000 micro-units a second
pgtest_psql -q -c "INSERT INTO rate_plans (name) VALUES ('bench');
	INSERT INTO rates (rate_plan_id, prefix, price_per_minute,
			   initial_increment, subsequent_increment)
	SELECT id, '', 1200000, 1, 1 FROM rate_plans WHERE name = 'bench'"

start_tollgate() {
	"$top_builddir/tollgate" -f "$1" 2>>"$out/tollgate.log" &
	tg_pid=$!
	for _ in $(seq 1 100); do
		grep -q "listening for account" "$out/tollgate.log" && break
		kill -0 "$tg_pid" 2>/dev/null || return 1
		sleep 0.1
	done
	sleep 0.5
}

stop_tollgate() {
	kill "$tg_pid" 2>/dev/null
	wait "$tg_pid" 2>/dev/null
	tg_pid=
}

# p50/p99/max of a column of integers
pct() {
	sort -n | awk '{ v[NR] = $1 } END {
		if (!NR) { print "n=0"; exit }
		i50 = int(NR * 0.50 + 0.5); if (i50 < 1) i50 = 1
		i99 = int(NR * 0.99 + 0.5); if (i99 < 1) i99 = 1
		printf "n=%d p50=%d p99=%d max=%d\n", NR, v[i50], v[i99], v[NR] }'
}

summary=()

if [ "$what" = cutoff ] || [ "$what" = all ]; then
	pgtest_psql -q -c "INSERT INTO accounts (name, balance, rate_plan_id)
		SELECT 'cut' || g, $FUNDED_S * 20000, p.id
		FROM generate_series(1, $CALLS) g, rate_plans p
		WHERE p.name = 'bench'"
	seq 1 "$CALLS" | awk 'BEGIN { print "SEQUENTIAL" } { print "cut" $1 }' \
		>"$out/accounts.csv"
	sed 's/\[account\]/[field0]/g' "$top_srcdir/tests/billing/caller.xml" \
		>"$out/caller.xml"

	cat >"$out/cutoff.conf" <<CONF
sip_listen udp:127.0.0.51:5060
trusted_peer 127.0.0.52 from
digest_auth no
gateway gwa 127.0.0.54:5080
route default gwa
db_conninfo $PGTEST_CONNINFO
rtp_relay no
media_timeout 0
max_call_duration 0
state_dir $out/state
node_name bench
log_level info
CONF
	start_tollgate "$out/cutoff.conf" || { echo "tollgate did not start" >&2; exit 1; }

	timeout=$((CALLS / RAMP + FUNDED_S + 60))
	"$SIPP" -nostdin -i 127.0.0.54 -p 5080 \
		-sf "$top_srcdir/tests/billing/gw-answer.xml" -m "$CALLS" \
		-trace_logs -log_file "$out/gw.log" -timeout "$timeout" \
		>"$out/gw.out" 2>&1 </dev/null &
	gw=$!; pids="$pids $gw"
	"$SIPP" -nostdin -i 127.0.0.52 -p 5061 -sf "$out/caller.xml" \
		-inf "$out/accounts.csv" -s 1000 -m "$CALLS" -l "$CALLS" \
		-r "$RAMP" -trace_logs -log_file "$out/caller.log" \
		-timeout "$timeout" -timeout_error \
		>"$out/caller.out" 2>&1 </dev/null 127.0.0.51:5060 &
	caller=$!; pids="$pids $caller"
	wait "$caller"; rc_caller=$?
	wait "$gw"
	stop_tollgate

	leg() {
		awk -v f="$FUNDED_S" '
			$1 == "ANSWER" { a[$2] = $3 * 1000 + $4 / 1000 }
			$1 == "BYE" && ($2 in a) {
				printf "%d\n", $3 * 1000 + $4 / 1000 - a[$2] - f * 1000 }' "$1"
	}
	caller_lat=$(leg "$out/caller.log" | pct)
	gw_lat=$(leg "$out/gw.log" | pct)
	daemon=$(grep "round trips:" "$out/tollgate.log" | tail -n 1 |
		 sed 's/.*billing: //')
	peak=$(grep -c '^BYE .*cause=16' "$out/caller.log")
	summary+=("cutoff: $CALLS calls funded ${FUNDED_S} s, ramp $RAMP/s, sipp exit $rc_caller, $peak cut with the credit Reason")
	summary+=("cutoff lateness, caller leg (ms, BYE received - money end): $caller_lat")
	summary+=("cutoff lateness, gateway leg (ms):                         $gw_lat")
	summary+=("daemon: $daemon")
fi

# the postmaster: its backends are its descendants
pg_pid=$(head -n 1 "$PGTEST_DIR/pgdata/postmaster.pid")

# cps_setup: the accounts and configuration of the call rate runs
cps_setup() {
	if [ "${ONE_ACCOUNT:-0}" = 1 ]; then
		# every call on one account: its row lock serialises them
		peer="trusted_peer $BENCH_IP account=bench"
		pgtest_psql -q -c "INSERT INTO accounts (name, balance,
				max_calls, rate_plan_id)
			SELECT 'bench', 9000000000000000, 1000000, id
			FROM rate_plans WHERE name = 'bench'
			ON CONFLICT (name) DO NOTHING"
	else
		# an account per caller (the harness's From users
		# callerNNNNN), as the anchor keeps a credit per caller
		peer="trusted_peer $BENCH_IP from"
		ncallers=$(( CPS_CALLS > 2000 ? CPS_CALLS : 2000 ))
		pgtest_psql -q -c "INSERT INTO accounts (name, balance,
				max_calls, rate_plan_id)
			SELECT 'caller' || lpad(g::text, 5, '0'),
			       1000000000000, 100, r.id
			FROM rate_plans r, generate_series(1, $ncallers) g
			WHERE r.name = 'bench'
			ON CONFLICT (name) DO NOTHING"
	fi
	cat >"$out/cps.conf" <<CONF
sip_listen udp:$TG_IP:5060
$peer
gateway gw $BENCH_IP:5080
route default gw
ring_timeout 60
max_call_duration 0
billing yes
rtp_relay no
db_conninfo $PGTEST_CONNINFO
state_dir $out/state-cps
node_name bench-cps
log_level warning
${CONF_EXTRA:-}
CONF
}

bench_lock_free() {
	mkdir -p /tmp/bench
	if ! flock -n /tmp/bench/run.lock true; then
		echo "another bench run holds /tmp/bench/run.lock: try later" >&2
		exit 2
	fi
}

if [ "$what" = cps ] || [ "$what" = all ]; then
	[ -x "$bench/run-cps.sh" ] || { echo "no harness at $bench" >&2; exit 2; }
	# the anchor's start/stop is not under the harness's lock: do not
	# touch it while another benchmark runs
	bench_lock_free
	cps_setup
	start_tollgate "$out/cps.conf" || { echo "tollgate did not start" >&2; exit 1; }
	line=$("$bench/run-cps.sh" $TG_IP:5060 -p "$tg_pid" -x "$pg_pid" \
		-n "$CPS_CALLS" -d "$HOLD_MS" -r "$RATES" -b 2 -W 2000 |
		tee "$out/cps-tollgate.txt" | tail -n 1)
	stop_tollgate
	summary+=("tollgate+billing  $line")
	summary+=("tollgate+billing daemon: $(grep "round trips:" "$out/tollgate.log" | tail -n 1 | sed 's/.*billing: //')")
	summary+=("tollgate+billing CDRs written: $(pgtest_psql -At -c "SELECT count(*) FROM cdrs")")

	if [ "${NO_ANCHOR:-0}" != 1 ]; then
		KAM_DEFS="" "$bench/kamailio/anchor.sh" start >/dev/null
		kam_started=1
		line=$("$bench/run-cps.sh" 127.0.0.1:5070 \
			-p /tmp/bench/kamailio/kamailio.main.pid \
			-x "$("$bench/kamailio/anchor.sh" redis-pid)" \
			-n "$CPS_CALLS" -d "$HOLD_MS" -r "${KAM_RATES:-$RATES}" -b 2 \
			-W 2000 -q "$bench/kamailio/anchor.sh probe" |
			tee "$out/cps-kamailio.txt" | tail -n 1)
		"$bench/kamailio/anchor.sh" stop >/dev/null; kam_started=
		summary+=("kamailio+cnxcc    $line")
	fi
fi

if [ "$what" = overload ] || [ "$what" = all ]; then
	[ -x "$bench/run-cps.sh" ] || { echo "no harness at $bench" >&2; exit 2; }
	bench_lock_free
	cps_setup
	start_tollgate "$out/cps.conf" || { echo "tollgate did not start" >&2; exit 1; }
	base=${OVERLOAD_BASE:-}
	if [ -z "$base" ]; then
		base=$("$bench/run-cps.sh" $TG_IP:5060 -p "$tg_pid" \
			-x "$pg_pid" -n "$CPS_CALLS" -d "$HOLD_MS" \
			-r "$RATES" -b 2 -W 2000 | tee "$out/overload-base.txt" |
			tail -n 1 | sed -n 's/^cps=\([0-9]*\).*/\1/p')
	fi
	if [ -z "$base" ] || [ "$base" = 0 ]; then
		summary+=("overload: no passing rate to start from")
	else
		r125=$((base * 125 / 100)) r150=$((base * 150 / 100))
		shed0=$(grep -c "overload" "$out/tollgate.log")
		cdr0=$(pgtest_psql -At -c "SELECT count(*) FROM cdrs")
		"$bench/run-cps.sh" $TG_IP:5060 -p "$tg_pid" -x "$pg_pid" \
			-n "$CPS_CALLS" -d "$HOLD_MS" -r "$base $r125 $r150" \
			-b 0 -k -o "$out/overload" >"$out/overload.txt"
		summary+=("overload: highest passing rate R=$base calls/s; steps R, 1.25 R, 1.5 R of $CPS_CALLS calls each")
		while read -r l; do
			case $l in rate=*) ;; *) continue ;; esac
			rate=$(sed -n 's/^rate=\([0-9]*\) .*/\1/p' <<<"$l")
			okc=$(sed -n 's/.* ok=\([0-9]*\) .*/\1/p' <<<"$l")
			rt=$(sed -n 's/.* rt_ms=\([^ ]*\) .*/\1/p' <<<"$l")
			cpu=$(sed -n 's/.* target_cpu_s=\([^ ]*\) .*/\1/p' <<<"$l")
			aux=$(sed -n 's/.* aux_cpu_s=\([^ ]*\) .*/\1/p' <<<"$l")
			oth=$(sed -n 's/.* other_cpu_s=\([^ ]*\) .*/\1/p' <<<"$l")
			good=$(awk -v o="$okc" -v n="$CPS_CALLS" -v r="$rate" -v b="$base" \
				'BEGIN { g = o / n * r; printf "%.0f calls/s = %.0f %% of R", g, 100 * g / b }')
			summary+=("overload offered $rate/s: ok $okc of $CPS_CALLS, goodput $good, INVITE->200 $rt ms, tollgate CPU $cpu s, PostgreSQL CPU $aux s, other $oth")
		done <"$out/overload.txt"
		stop_tollgate
		attempts=$(grep -c "billing: authorised\|billing: refused\|authorisation failed" "$out/tollgate.log")
		summary+=("overload: CDRs written $(( $(pgtest_psql -At -c "SELECT count(*) FROM cdrs") - cdr0 )); tollgate daemon: $(grep "round trips:" "$out/tollgate.log" | tail -n 1 | sed 's/.*billing: //')")
		summary+=("overload: $(( $(grep -c "overload" "$out/tollgate.log") - shed0 )) log lines about shedding; $attempts authorisation outcomes logged")
	fi
	[ -n "$tg_pid" ] && stop_tollgate
fi

# profile_snap FILE: the counters the profile subtracts, one "key value"
# a line
profile_snap() {
	pgsu -At -F ' ' >"$1" <<'SQL'
SELECT 'commits', xact_commit FROM pg_stat_database WHERE datname = current_database()
UNION ALL SELECT 'rollbacks', xact_rollback FROM pg_stat_database WHERE datname = current_database()
UNION ALL SELECT 'wal_records', wal_records FROM pg_stat_wal
UNION ALL SELECT 'wal_fpi', wal_fpi FROM pg_stat_wal
UNION ALL SELECT 'wal_bytes', wal_bytes FROM pg_stat_wal
UNION ALL SELECT 'wal_sync', wal_sync FROM pg_stat_wal
UNION ALL SELECT 'ins.' || relname, n_tup_ins FROM pg_stat_user_tables
UNION ALL SELECT 'upd.' || relname, n_tup_upd FROM pg_stat_user_tables
UNION ALL SELECT 'hot.' || relname, n_tup_hot_upd FROM pg_stat_user_tables
UNION ALL SELECT 'del.' || relname, n_tup_del FROM pg_stat_user_tables
UNION ALL SELECT 'nidx.' || c.relname, count(i.indexrelid)
	FROM pg_class c JOIN pg_index i ON i.indrelid = c.oid
	JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
	GROUP BY c.relname
SQL
	# the pg_stat counters of a backend reach the views when it is idle
}

if [ "$what" = profile ]; then
	[ -x "$bench/run-cps.sh" ] || { echo "no harness at $bench" >&2; exit 2; }
	bench_lock_free
	cps_setup
	start_tollgate "$out/cps.conf" || { echo "tollgate did not start" >&2; exit 1; }
	# warm: the statements prepared, the accounts' pages in the cache
	"$bench/run-cps.sh" "$TG_IP:5060" -n 2000 -d "$HOLD_MS" -r 500 -b 0 \
		-w 3 >"$out/profile-warm.txt" 2>&1
	sleep 1
	pgsu -q -c "SELECT pg_stat_statements_reset()" \
		-c "SELECT pg_stat_reset_shared('wal')" -c "SELECT pg_stat_reset()" >/dev/null
	sleep 1
	profile_snap "$out/profile-0.txt"
	"$bench/run-cps.sh" "$TG_IP:5060" -p "$tg_pid" -x "$pg_pid" \
		-n "$PROFILE_CALLS" -d "$HOLD_MS" -r "$PROFILE_RATE" -b 0 -w 3 \
		-o "$out/profile-run" >"$out/profile-run.txt" 2>&1
	sleep 2
	profile_snap "$out/profile-1.txt"
	stop_tollgate
	# what the harness counted: the calls that reached tollgate
	line=$(grep '^rate=' "$out/profile-run.txt" | tail -n 1)
	# the database's figures are per call that reached it (one CDR
	# each), tollgate's per call offered
	n=$(awk 'NR == FNR { b[$1] = $2; next }
		$1 == "ins.cdrs" { print $2 - b[$1] }' \
		"$out/profile-0.txt" "$out/profile-1.txt")
	[ "${n:-0}" -gt 0 ] || n=1
	summary+=("profile at $PROFILE_RATE calls/s, $PROFILE_CALLS calls offered, $n reached the database (CDRs) ($(uptime | sed 's/.*load/load/')): $line")
	cpu=$(sed -n 's/.* target_cpu_s=\([^ ]*\) .*/\1/p' <<<"$line")
	aux=$(sed -n 's/.* aux_cpu_s=\([^ ]*\) .*/\1/p' <<<"$line")
	summary+=("$(awk -v c="$cpu" -v a="$aux" -v n="$n" -v o="$PROFILE_CALLS" 'BEGIN {
		printf "profile CPU per call: tollgate %.3f ms (per call offered), PostgreSQL %.3f ms (per call billed)", c * 1000 / o, a * 1000 / n }')")
	summary+=("$(awk -v n="$n" '
		NR == FNR { b[$1] = $2; next }
		{ d[$1] = $2 - b[$1] }
		END {
			printf "profile per call: commits %.2f, WAL %.1f records %.0f bytes (%.2f full pages), WAL syncs %.3f\n",
				d["commits"] / n, d["wal_records"] / n, d["wal_bytes"] / n, d["wal_fpi"] / n, d["wal_sync"] / n
			ni = 0
			for (k in d) {
				split(k, p, ".")
				if (p[1] != "ins") continue
				t = p[2]
				if (!d["ins." t] && !d["upd." t] && !d["del." t]) continue
				printf "profile per call: %-14s ins %.2f upd %.2f (hot %.2f) del %.2f\n",
					t, d["ins." t] / n, d["upd." t] / n, d["hot." t] / n, d["del." t] / n
			}
		}' "$out/profile-0.txt" "$out/profile-1.txt")")
	# index entries: each insert and each non-HOT update writes one in
	# every index of its table
	summary+=("$(awk -v n="$n" '
		NR == FNR { b[$1] = $2; next }
		{ v[$1] = $2; d[$1] = $2 - b[$1] }
		END {
			s = 0
			for (k in v) {
				split(k, p, ".")
				if (p[1] != "nidx") continue
				t = p[2]
				e = (d["ins." t] + d["upd." t] - d["hot." t]) * v[k]
				s += e
				if (e) line = line sprintf(" %s %.2f (%d indexes)", t, e / n, v[k])
			}
			printf "profile per call: index entries %.2f:%s", s / n, line
		}' "$out/profile-0.txt" "$out/profile-1.txt")")
	pgsu -At -F ' | ' -c "SELECT to_char(calls::numeric / $n, 'FM990.000'),
			to_char(total_exec_time / $n, 'FM990.0000') || ' ms',
			to_char(rows::numeric / $n, 'FM990.00') || ' rows',
			to_char(wal_bytes::numeric / $n, 'FM99990') || ' B WAL',
			toplevel, left(regexp_replace(query, '\s+', ' ', 'g'), 90)
		FROM pg_stat_statements
		WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
		  AND calls::numeric / $n >= 0.01
		ORDER BY toplevel DESC, total_exec_time DESC LIMIT 40" \
		>"$out/profile-statements.txt"
	summary+=("profile statements per call (calls | exec time | rows | WAL | top level | statement), also in $out/profile-statements.txt:")
	while read -r l; do summary+=("  $l"); done <"$out/profile-statements.txt"
	pgsu -At -F ' | ' -c "SELECT to_char(calls::numeric / $n, 'FM990.000'),
			to_char(self_time / $n, 'FM990.0000') || ' ms self',
			funcname FROM pg_stat_user_functions
		WHERE calls::numeric / $n >= 0.01 ORDER BY self_time DESC" \
		>"$out/profile-functions.txt"
	summary+=("profile functions per call (calls | self time | function):")
	while read -r l; do summary+=("  $l"); done <"$out/profile-functions.txt"
fi

echo "== billing benchmark; details in $out"
printf '%s\n' "${summary[@]}"
