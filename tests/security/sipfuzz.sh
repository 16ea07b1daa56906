#!/usr/bin/env bash
# A seeded mutation fuzz of SIP against the daemon built with
# AddressSanitizer (tests/security/tollgate-asan, a check program).
#
# tests/security/sipfuzz.py sends mutated INVITEs with SDP, digest
# answers, in-dialog requests, huge, duplicated and folded headers,
# control bytes and invalid UTF-8 in Call-ID, From and To, for a bounded
# time and count, from an untrusted source and from a trusted peer.  Then:
# the daemon still runs and answers OPTIONS, its log holds no
# AddressSanitizer report, and every line of the log is one of tollgate's
# own (it starts with the log's timestamp and holds no raw control byte):
# bytes from the wire never forge a line.  At the end SIGTERM must stop it
# with exit 0 (LeakSanitizer reports leaks then).
#
# SIPFUZZ_SEED (default 4475), SIPFUZZ_SECONDS (60) and SIPFUZZ_COUNT
# (30000) choose the run; the same seed sends the same datagrams.
#
# A private PostgreSQL (tests/lib/pgtest.sh); Python 3 as the fuzzer.
# Addresses: tollgate 127.0.1.60:5060, trusted peer 127.0.1.62, untrusted
# source 127.0.1.63, a gateway that is never answered at 127.0.1.61:5080.
# Every process started here is ended by its PID.
set -u

here=$(cd "$(dirname "$0")" && pwd)
: "${top_srcdir:=$(cd "$here/../.." && pwd)}"
: "${top_builddir:=$PWD}"
export top_srcdir top_builddir

TG=${SIPFUZZ_TG:-$top_builddir/tests/security/tollgate-asan}
if [ ! -x "$TG" ]; then
	echo "sipfuzz.sh: $TG not built (make tests/security/tollgate-asan);" \
		"skipped" >&2
	exit 77
fi
command -v python3 >/dev/null || { echo "sipfuzz.sh: no python3" >&2; exit 77; }

SEED=${SIPFUZZ_SEED:-4475}
SECONDS_MAX=${SIPFUZZ_SECONDS:-60}
COUNT=${SIPFUZZ_COUNT:-30000}

TEST_KEEP=${SIPFUZZ_KEEP:-}
# shellcheck source=../lib/check.sh
. "$top_srcdir/tests/lib/check.sh"
# shellcheck source=../lib/pgtest.sh
. "$top_srcdir/tests/lib/pgtest.sh"
test_init sipfuzz || exit 99
pgtest_start || exit 99

DIR=$TEST_DIR
SUT=127.0.1.60:5060
LOG=$DIR/tollgate.log

sql "INSERT INTO accounts (name, balance) VALUES ('fuzz', 100000000)" \
	>/dev/null || exit 99

mkdir -p "$DIR/state"
cat >"$DIR/tg.conf" <<EOF2
sip_listen udp:$SUT
trusted_peer 127.0.1.62 account=fuzz
gateway gwa 127.0.1.61:5080
route 1 gwa
route 2 gwa
sip_realm tollgate
digest_auth yes
db_conninfo $PGTEST_CONNINFO
billing no
rtp_relay no
media_timeout 0
ring_timeout 2
state_dir $DIR/state
shutdown_grace 2
log_level debug
EOF2

export ASAN_OPTIONS=abort_on_error=0:detect_leaks=1:log_path=$DIR/asan
"$TG" -f "$DIR/tg.conf" >"$LOG" 2>&1 &
TG_PID=$!
pid_remember "$TG_PID"
if ! wait_bound udp 127.0.1.60 5060 20 "$TG_PID"; then
	echo "sipfuzz.sh: tollgate did not come up:" >&2
	tail -n 30 "$LOG" >&2
	exit 99
fi

echo "# seed $SEED: at most $COUNT datagrams in ${SECONDS_MAX}s"
timeout $((SECONDS_MAX + 30)) python3 "$here/sipfuzz.py" "$SEED" \
	"$SECONDS_MAX" "$COUNT" "$SUT" 127.0.1.63 127.0.1.62 >"$DIR/fuzz.out"
check "the fuzzer ran to its end ($(cat "$DIR/fuzz.out"))" \
	grep -q '^sent [0-9]' "$DIR/fuzz.out"

printf 'OPTIONS sip:ping@127.0.1.60 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.1.63;branch=z9hG4bKfzping\r\nFrom: <sip:ping@127.0.1.63>;tag=p1\r\nTo: <sip:ping@127.0.1.60>\r\nCall-ID: ping.sipfuzz\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n' >"$DIR/ping.sip"
sleep 1
check "tollgate is still running" kill -0 "$TG_PID"
equal "tollgate still answers OPTIONS" "$(python3 "$here/sipsend.py" \
	127.0.1.63 "$SUT" 5 "$DIR/ping.sip" | awk '{ print $2 }')" 200

pid_stop "$TG_PID" 60
equal "tollgate exits 0 on SIGTERM" "$?" 0

asan=$(cat "$DIR"/asan.* 2>/dev/null; grep -a 'Sanitizer' "$LOG")
equal "no AddressSanitizer report" "$(printf '%s' "$asan" | grep -ac 'ERROR: \(Address\|Leak\)Sanitizer')" 0
[ -n "$asan" ] && printf '%s\n' "$asan" | head -n 40 >&2

bad=$(LC_ALL=C grep -avcE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z [a-z]+ ' "$LOG")
equal "every log line starts with the log's timestamp" "$bad" 0
[ "$bad" != 0 ] && LC_ALL=C grep -anvE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z [a-z]+ ' "$LOG" | head -n 10 | cat -v >&2
equal "the log holds no raw control byte" \
	"$(LC_ALL=C tr -d '\n' <"$LOG" | LC_ALL=C tr -cd '\000-\037\177' | wc -c)" 0
echo "# $(wc -l <"$LOG") log lines"

summary
