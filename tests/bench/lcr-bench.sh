#!/usr/bin/env bash
#
# lcr-bench.sh - the call rate with least-cost routing (not in "make check")
#
# Usage: tests/bench/lcr-bench.sh
#
# Two tollgate runs in one go, the same but for the route, each through
# the shared harness ../shared/bench/run-cps.sh with billing on:
#   plain  route default gw  (one gateway)
#   lcr    route default lcr over 3 carriers, each with a 50,000-prefix
#          deck (the number's own prefix among them) and one gateway at
#          the harness's address, a number_in and a number_out rule,
#          margin guard on
# It prints both rates and the LCR's cost: 1 - lcr/plain (the target is
# at most 10 %), and the daemon's CPU per step from the harness.
#
# Addresses: tollgate TG_IP:5060 (127.0.5.30), the harness on BENCH_IP
# (127.0.5.31).  Bounded in calls (CPS_CALLS a step, 5000) and time;
# every process is started here and stopped by its PID.
#
# Environment: CPS_CALLS, HOLD_MS (1000), RATES ("200 300 400 500 600"), BISECT (2),
# DECK (prefixes a carrier, 50000), SIPP, BENCH_DIR.

set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=${top_srcdir:-$(cd "$here/../.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
export top_srcdir top_builddir
bench=${BENCH_DIR:-$top_srcdir/../shared/bench}

CPS_CALLS=${CPS_CALLS:-5000}
HOLD_MS=${HOLD_MS:-1000}
RATES=${RATES:-"200 300 400 500 600"}
DECK=${DECK:-50000}
TG_IP=${TG_IP:-127.0.5.30}
export BENCH_IP=${BENCH_IP:-127.0.5.31}
export SERVICE=${SERVICE:-4420100}

[ -x "$top_builddir/tollgate" ] || { echo "build tollgate first" >&2; exit 2; }
[ -x "$bench/run-cps.sh" ] || { echo "no harness at $bench" >&2; exit 2; }

out=$(mktemp -d /tmp/tollgate-lcr-bench.XXXXXX)
chmod 755 "$out"
tg_pid=

cleanup() {
	[ -n "$tg_pid" ] && kill "$tg_pid" 2>/dev/null && wait "$tg_pid" 2>/dev/null
	type pgtest_stop >/dev/null 2>&1 && pgtest_stop
	true
}
trap cleanup EXIT

mkdir -p /tmp/bench
if ! flock -n /tmp/bench/run.lock true; then
	echo "another bench run holds /tmp/bench/run.lock: try later" >&2
	exit 2
fi

. "$top_srcdir/tests/lib/pgtest.sh"
pgtest_start >/dev/null || exit 2
pg_pid=$(head -n 1 "$PGTEST_DIR/pgdata/postmaster.pid")

# the customer pays 1.2 a minute by the second; accounts per caller
pgtest_psql -q -c "INSERT INTO rate_plans (name) VALUES ('bench');
	INSERT INTO rates (rate_plan_id, prefix, price_per_minute,
			   initial_increment, subsequent_increment)
	SELECT id, '', 1200000, 1, 1 FROM rate_plans WHERE name = 'bench';
	INSERT INTO accounts (name, balance, max_calls, rate_plan_id)
	SELECT 'caller' || lpad(g::text, 5, '0'), 1000000000000, 100, r.id
	  FROM rate_plans r, generate_series(1, greatest($CPS_CALLS, 2000)) g
	 WHERE r.name = 'bench'" || exit 2

# three carriers, DECK prefixes each: random 3..9-digit prefixes and the
# number's 44201 and 4420; their prices differ so that the order matters
for c in 1 2 3; do
	pgtest_psql -q -c "INSERT INTO carriers (name, preference)
		VALUES ('car$c', $c);
	INSERT INTO carrier_rates (carrier_id, prefix, price_per_minute,
				   initial_increment, subsequent_increment)
	SELECT k.id, p, 100000 * $c + (h % 1000), 1, 1
	  FROM carriers k,
	       (SELECT DISTINCT ON (p) p, h FROM (
		   SELECT substr((abs(hashtext('$c' || g)) % 1000000000)::text,
				 1, 3 + g % 7) AS p, abs(hashtext('x' || g)) AS h
		     FROM generate_series(1, $DECK * 2) g) s
		 WHERE p NOT IN ('44201', '4420')
		 LIMIT $DECK - 2) d
	 WHERE k.name = 'car$c';
	INSERT INTO carrier_rates (carrier_id, prefix, price_per_minute,
				   initial_increment, subsequent_increment)
	SELECT id, v.p, 90000 * $c, 1, 1 FROM carriers,
	       (VALUES ('44201'), ('4420')) AS v(p)
	 WHERE name = 'car$c'" || exit 2
done
echo "decks: $(pgtest_psql -At -c "SELECT string_agg(c.name || '=' || n, ' ')
	FROM (SELECT carrier_id, count(*) n FROM carrier_rates
	      GROUP BY carrier_id) r JOIN carriers c ON c.id = r.carrier_id")"

conf() {
	cat <<CONF
sip_listen udp:$TG_IP:5060
trusted_peer $BENCH_IP from
gateway gw $BENCH_IP:5080
gateway gw1 $BENCH_IP:5080 carrier=car1
gateway gw2 $BENCH_IP:5080 carrier=car2
gateway gw3 $BENCH_IP:5080 carrier=car3
$1
number_in match=0 national=44
number_out gateway=gw1 match=44 strip=2 prefix=0
lcr_min_margin 10
ring_timeout 60
max_call_duration 0
billing yes
rtp_relay no
db_conninfo $PGTEST_CONNINFO
state_dir $out/state-$2
node_name bench-$2
log_level warning
CONF
}

run() {
	conf "$1" "$2" >"$out/$2.conf"
	"$top_builddir/tollgate" -f "$out/$2.conf" 2>>"$out/tollgate-$2.log" &
	tg_pid=$!
	for _ in $(seq 1 300); do
		ss -Hlnu "src $TG_IP:5060" 2>/dev/null | grep -q . && break
		kill -0 "$tg_pid" 2>/dev/null || return 1
		sleep 0.1
	done
	# 150,000 prices load after the listener is up: give them time
	sleep 10
	"$bench/run-cps.sh" "$TG_IP:5060" -p "$tg_pid" -x "$pg_pid" \
		-n "$CPS_CALLS" -d "$HOLD_MS" -r "$RATES" -b "${BISECT:-2}" -W 2000 \
		-o "$out/cps-$2" | tee "$out/cps-$2.txt" | tail -n 1
	kill "$tg_pid" 2>/dev/null
	wait "$tg_pid" 2>/dev/null
	tg_pid=
}

plain=$(run "route default gw" plain)
echo "plain: $plain"
lcr=$(run "route default lcr" lcr)
echo "lcr:   $lcr"

p=$(sed -n 's/^cps=\([0-9]*\).*/\1/p' <<<"$plain")
l=$(sed -n 's/^cps=\([0-9]*\).*/\1/p' <<<"$lcr")
echo "carriers used: $(pgtest_psql -At -c "SELECT string_agg(coalesce(carrier, '-') || '=' || n, ' ')
	FROM (SELECT carrier, count(*) n FROM cdrs GROUP BY carrier) c")"
if [ -n "$p" ] && [ -n "$l" ] && [ "$p" -gt 0 ]; then
	awk -v p="$p" -v l="$l" 'BEGIN {
		printf "plain %d calls/s, lcr %d calls/s: routing costs %.1f %% of the rate (target <= 10 %%)\n",
			p, l, 100 * (1 - l / p) }'
fi
echo "output in $out"
