#!/usr/bin/env bash
# The OpenAPI document against a running daemon: a private PostgreSQL
# (tests/lib/pgtest.sh), tollgate, and tests/api/openapi-check.py, which
# reads the document tollgate serves (GET /v1/openapi.json) and calls
# every operation in it with real objects it creates (a live call through
# SIPp, a block made by a failed digest answer), checking statuses and
# bodies against the document, 401 without a token and 403 with the
# readonly token on admin operations.  The last operation drains the
# node, which then exits: the test checks it exits 0.
#
# Addresses: tollgate SIP and API 127.0.6.30 (5060, 8080), SIPp caller
# 127.0.6.31:5061, gateway 127.0.6.32:5080, the failed digest answer from
# 127.0.6.34.  Every process started here is ended by its PID.
set -u

here=$(cd "$(dirname "$0")" && pwd)
: "${top_srcdir:=$(cd "$here/../.." && pwd)}"
: "${top_builddir:=$PWD}"
: "${SIPP:=$(command -v sipp || true)}"
export top_srcdir top_builddir

TG="$top_builddir/tollgate"
[ -x "$TG" ] || { echo "openapi.sh: $TG not built" >&2; exit 99; }
[ -n "$SIPP" ] || { echo "openapi.sh: sipp not found" >&2; exit 77; }
command -v python3 >/dev/null || { echo "openapi.sh: no python3" >&2; exit 77; }

TEST_KEEP=${OPENAPI_KEEP:-}
# shellcheck source=../lib/check.sh
. "$top_srcdir/tests/lib/check.sh"
# shellcheck source=../lib/pgtest.sh
. "$top_srcdir/tests/lib/pgtest.sh"
test_init openapi || exit 99
pgtest_start || exit 99

DIR=$TEST_DIR
ADMIN=openapi-admin-token-0123456789abcdef
RO=openapi-readonly-token-fedcba9876543210

cat >"$DIR/tg.conf" <<CONF
sip_listen udp:127.0.6.30:5060
trusted_peer 127.0.6.31 from
digest_auth yes
sip_realm tollgate
auth_fail_limit 1
gateway gwcfg 127.0.6.32:5080
route default gwcfg
db_conninfo $PGTEST_CONNINFO
rtp_relay no
media_timeout 0
state_dir $DIR/state
node_name openapi-test
heartbeat 1
shutdown_grace 2
api_listen 127.0.6.30:8080
api_token $ADMIN admin
api_token $RO readonly
api_open_metrics yes
log_level info
CONF
mkdir -p "$DIR/state"

"$SIPP" -nostdin -i 127.0.6.32 -p 5080 -sf "$here/gw.xml" -m 1 \
	-timeout 30 -timeout_error -trace_logs -log_file "$DIR/gw.log" \
	>"$DIR/gw.out" 2>&1 </dev/null &
GW_PID=$!
pid_remember "$GW_PID"

"$TG" -f "$DIR/tg.conf" >"$DIR/tollgate.log" 2>&1 &
TG_PID=$!
pid_remember "$TG_PID"
if ! wait_line "$DIR/tollgate.log" "routing by the database" 10 "$TG_PID"
then
	echo "openapi.sh: tollgate did not come up:" >&2
	tail -n 30 "$DIR/tollgate.log" >&2
	exit 99
fi

python3 "$here/openapi-check.py" http://127.0.6.30:8080 "$ADMIN" "$RO" \
	127.0.6.30:5060 "$SIPP" "$here" "$DIR" | tee "$DIR/check.out"
rc=${PIPESTATUS[0]}
passed=$(sed -n 's/^\([0-9]*\) passed, [0-9]* failed$/\1/p' "$DIR/check.out")
failed=$(sed -n 's/^[0-9]* passed, \([0-9]*\) failed$/\1/p' "$DIR/check.out")
: "${passed:=0}" "${failed:=1}"
[ "$rc" = 0 ] || [ "$failed" != 0 ] || failed=1

# the drain was the last request: the node exits by itself
if pid_gone "$TG_PID" 10; then
	wait "$TG_PID"
	code=$?
	equal "tollgate exits 0 after the drain" "$code" 0
else
	fail "tollgate still runs 10 s after POST /v1/node/drain"
fi

summary
