#!/usr/bin/env bash
#
# sip-bench.sh - call rate and memory per held call, tollgate next to the
# Kamailio anchor, in the same run (not part of "make check").
#
# Usage: tests/bench/sip-bench.sh [cps|concurrent|all]   (default all)
#
# Needs ../shared/bench (the harness) beside the source tree and the
# packages it lists (sip-tester kamailio kamailio-extra-modules
# kamailio-cnxcc-modules redis-server), plus a built ./tollgate.
#
# tollgate runs with billing and the media relay off (the SIP core alone,
# as Kamailio tm+rr+dialog+topoh is the anchor), logging warnings only,
# on 127.0.0.88:5060, routing every INVITE to the harness's gateway
# 127.0.0.77:5080; calls from the harness (127.0.0.77) are billed to the
# account "bench" of a private PostgreSQL cluster this script starts.
#
# Environment: CALLS (10000), HOLD_MS (1000), RATES ("400 500 600 650 700
# 800 900 1000"), CONC (30000), CONC_RATE (200), PLATEAU (30),
# KAM_DEFS for the anchor (default "NO_CNXCC": tm+rr+dialog+topoh).
# Every run is bounded by the harness (call counts and timeouts).

set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=${top_srcdir:-$(cd "$here/../.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
export top_srcdir top_builddir
bench=${BENCH_DIR:-$top_srcdir/../shared/bench}
what=${1:-all}

CALLS=${CALLS:-10000}
HOLD_MS=${HOLD_MS:-1000}
RATES=${RATES:-"400 500 600 650 700 800 900 1000"}
CONC=${CONC:-30000}
CONC_RATE=${CONC_RATE:-200}
PLATEAU=${PLATEAU:-30}
export KAM_DEFS=${KAM_DEFS:-NO_CNXCC}

[ -x "$bench/run-cps.sh" ] || { echo "no harness at $bench" >&2; exit 2; }
[ -x "$top_builddir/tollgate" ] || { echo "build tollgate first" >&2; exit 2; }

out=$(mktemp -d /tmp/tollgate-bench.XXXXXX)
chmod 755 "$out"
tg_pid=
kam_started=

cleanup() {
	[ -n "$tg_pid" ] && kill "$tg_pid" 2>/dev/null && wait "$tg_pid" 2>/dev/null
	[ -n "$kam_started" ] && "$bench/kamailio/anchor.sh" stop >/dev/null 2>&1
	type pgtest_stop >/dev/null 2>&1 && pgtest_stop
	true
}
trap cleanup EXIT

. "$top_srcdir/tests/lib/pgtest.sh"
pgtest_start >/dev/null
pgtest_psql -c "INSERT INTO accounts (name) VALUES ('bench')"

cat > "$out/tollgate.conf" <<CONF
sip_listen udp:127.0.0.88:5060
trusted_peer 127.0.0.77 account=bench
gateway gw 127.0.0.77:5080
route default gw
ring_timeout 60
max_call_duration 0
billing no
rtp_relay no
db_conninfo $PGTEST_CONNINFO
state_dir $out/state
log_level warning
CONF

start_tollgate() {
	"$top_builddir/tollgate" -f "$out/tollgate.conf" 2>>"$out/tollgate.log" &
	tg_pid=$!
	sleep 1
	kill -0 "$tg_pid"
}

stop_tollgate() {
	kill "$tg_pid"; wait "$tg_pid" || true; tg_pid=
}

summary=()

if [ "$what" = cps ] || [ "$what" = all ]; then
	start_tollgate
	line=$("$bench/run-cps.sh" 127.0.0.88:5060 -p "$tg_pid" -n "$CALLS" \
		-d "$HOLD_MS" -r "$RATES" -b 2 -W 2000 | tee "$out/cps-tollgate.txt" | tail -n 1)
	summary+=("tollgate  $line")
	stop_tollgate

	"$bench/kamailio/anchor.sh" start >/dev/null; kam_started=1
	line=$("$bench/run-cps.sh" 127.0.0.1:5070 -p /tmp/bench/kamailio/kamailio.main.pid \
		-n "$CALLS" -d "$HOLD_MS" -r "$RATES" -b 2 -W 2000 \
		-q "$bench/kamailio/anchor.sh probe" | tee "$out/cps-kamailio.txt" | tail -n 1)
	summary+=("kamailio  $line")
	"$bench/kamailio/anchor.sh" stop >/dev/null; kam_started=
fi

if [ "$what" = concurrent ] || [ "$what" = all ]; then
	start_tollgate
	line=$("$bench/run-concurrent.sh" 127.0.0.88:5060 -p "$tg_pid" -n "$CONC" \
		-r "$CONC_RATE" -H "$PLATEAU" | tee "$out/conc-tollgate.txt" | tail -n 1)
	summary+=("tollgate  $line")
	stop_tollgate

	"$bench/kamailio/anchor.sh" start >/dev/null; kam_started=1
	line=$("$bench/run-concurrent.sh" 127.0.0.1:5070 -n "$CONC" -r "$CONC_RATE" \
		-H "$PLATEAU" -p /tmp/bench/kamailio/kamailio.main.pid \
		-q "$bench/kamailio/anchor.sh probe" | tee "$out/conc-kamailio.txt" | tail -n 1)
	summary+=("kamailio  $line")
	"$bench/kamailio/anchor.sh" stop >/dev/null; kam_started=
fi

echo "== side by side (anchor: Kamailio with KAM_DEFS='$KAM_DEFS'); details in $out"
printf '%s\n' "${summary[@]}"
