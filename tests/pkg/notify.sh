#!/usr/bin/env bash
# The service manager's readiness protocol (sd_notify(3)) end to end: the
# daemon under NOTIFY_SOCKET, a Python listener on that datagram socket.
# READY=1 comes once SIP and the API listen and the database answered,
# STOPPING=1 when the node starts draining: by SIGTERM (an abstract socket
# name) and by POST /v1/node/drain (a socket path); RELOADING=1, then
# READY=1 again, around a reload on SIGHUP.
#
# Addresses: tollgate SIP 127.0.6.10:5060 and API 127.0.6.10:8080.  Every
# process started here is ended by its PID.
#
# make check runs it from the top build directory with top_srcdir and
# top_builddir in the environment.  Prints "N passed, M failed".
set -u

here=$(cd "$(dirname "$0")" && pwd)
: "${top_srcdir:=$(cd "$here/../.." && pwd)}"
: "${top_builddir:=$PWD}"
export top_srcdir top_builddir

TG="$top_builddir/tollgate"
[ -x "$TG" ] || { echo "notify.sh: $TG not built" >&2; exit 99; }
command -v python3 >/dev/null || { echo "notify.sh: no python3" >&2; exit 77; }
command -v curl >/dev/null || { echo "notify.sh: no curl" >&2; exit 77; }

# shellcheck source=../lib/check.sh
. "$top_srcdir/tests/lib/check.sh"
# shellcheck source=../lib/pgtest.sh
. "$top_srcdir/tests/lib/pgtest.sh"
test_init notify || exit 99
pgtest_start || exit 99

DIR=$TEST_DIR
TOKEN=notify-test-admin-token-01234567
mkdir -p "$DIR/state"
cat >"$DIR/tg.conf" <<CONF
sip_listen udp:127.0.6.10:5060
digest_auth no
gateway gwa 127.0.6.11:5080
route default gwa
db_conninfo $PGTEST_CONNINFO
rtp_relay no
state_dir $DIR/state
node_name notify-test
shutdown_grace 2
api_listen 127.0.6.10:8080
api_token $TOKEN admin
log_level info
CONF

# run NAME ADDRESS: the listener on ADDRESS, then the daemon notifying it;
# sets TG_PID, LOG (the daemon's) and OUT (the datagrams)
run() {
	LOG=$DIR/$1.log
	OUT=$DIR/$1.notify
	python3 "$here/notify-listen.py" "$2" "$OUT" 30 &
	pid_remember $!
	wait_line "$OUT" '^listening$' 5 || { fail "$1: listener up"; return 1; }
	NOTIFY_SOCKET=$2 "$TG" -f "$DIR/tg.conf" >"$LOG" 2>&1 &
	TG_PID=$!
	pid_remember "$TG_PID"
	return 0
}

# ready NAME: READY=1 came, after SIP and the API said they listen
ready() {
	if ! wait_line "$OUT" '^READY=1' 15 "$TG_PID"; then
		fail "$1: READY=1 sent"
		tail -n 20 "$LOG" >&2
		return 1
	fi
	ok "$1: READY=1 sent"
	check "$1: READY=1 after SIP listens" grep -q 'SIP listening on' "$LOG"
	check "$1: READY=1 after the API listens" \
		grep -q 'api: listening on http://127.0.6.10:8080' "$LOG"
	check "$1: READY=1 after the database answered" \
		grep -q 'running (config' "$LOG"
	check "$1: a STATUS= line with READY=1" \
		grep -q '^READY=1|STATUS=running, node notify-test' "$OUT"
	equal "$1: nothing but READY=1 before the drain" \
		"$(grep -vc '^listening$' "$OUT")" 1
}

# stopped NAME: STOPPING=1 came after READY=1 and the daemon exited 0
stopped() {
	check "$1: STOPPING=1 sent" wait_line "$OUT" '^STOPPING=1' 10
	equal "$1: READY=1 then STOPPING=1" \
		"$(grep -Eo '^(READY|STOPPING)=1' "$OUT" | tr '\n' ' ')" \
		"READY=1 STOPPING=1 "
	check "$1: STOPPING=1 carries the drain's STATUS=" \
		grep -q "^STOPPING=1|STATUS=draining ($2)" "$OUT"
	if pid_gone "$TG_PID" 15; then
		wait "$TG_PID"
		equal "$1: exit status after the drain" "$?" 0
	else
		fail "$1: tollgate exits after the drain"
	fi
}

echo "# an abstract socket name, SIGTERM"
if run term "@tollgate-notify-test-$$"; then
	if ready term; then
		kill -TERM "$TG_PID"
		stopped term SIGTERM
	fi
fi

echo "# a socket path, POST /v1/node/drain"
if run drain "$DIR/notify.sock"; then
	if ready drain; then
		code=$(curl -s -m 5 -o "$DIR/drain.body" -w '%{http_code}' \
			-X POST -H "Authorization: Bearer $TOKEN" \
			http://127.0.6.10:8080/v1/node/drain)
		equal "drain: POST /v1/node/drain accepted" "$code" 202
		stopped drain "POST /v1/node/drain"
	fi
fi

echo "# SIGHUP: RELOADING=1, then READY=1 again"
if run hup "@tollgate-notify-hup-$$"; then
	if ready hup; then
		kill -HUP "$TG_PID"
		check "hup: RELOADING=1 sent" wait_line "$OUT" '^RELOADING=1' 10
		check "hup: READY=1 after the reload" \
			wait_line "$OUT" 'configuration reloaded' 10
		equal "hup: READY=1, RELOADING=1, READY=1" \
			"$(grep -Eo '^(READY|RELOADING|STOPPING)=1' "$OUT" |
			   tr '\n' ' ')" "READY=1 RELOADING=1 READY=1 "
		pid_stop "$TG_PID" 15
		equal "hup: exit status after SIGTERM" "$?" 0
	fi
fi

echo "# NOTIFY_SOCKET not a socket's name"
NOTIFY_SOCKET=relative/name "$TG" -f "$DIR/tg.conf" >"$DIR/bad.log" 2>&1 &
TG_PID=$!
pid_remember "$TG_PID"
check "a bad NOTIFY_SOCKET: the daemon runs" \
	wait_line "$DIR/bad.log" 'running \(config' 15 "$TG_PID"
pid_stop "$TG_PID" 10
equal "a bad NOTIFY_SOCKET: exit status after SIGTERM" "$?" 0

summary
