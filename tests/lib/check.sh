# tests/lib/check.sh - checks, a work directory and process handling for
# the shell suites
#
# Source it from a bash suite run by "make check":
#
#   . "$top_srcdir/tests/lib/check.sh"
#   . "$top_srcdir/tests/lib/pgtest.sh"      # when the suite needs it
#   test_init billing || exit 99             # TEST_DIR, the EXIT trap
#   pgtest_start || exit 99
#   check "the 402 carries a Reason" grep -q cause=31 "$TEST_DIR/x.log"
#   equal "balance exactly 0" "$(sql "SELECT balance FROM accounts")" 0
#   summary                                  # last: the exit status
#
# Checks.  Each prints one line and counts in $passed or $failed:
#   ok DESC                 a passed check: "ok - DESC"
#   fail DESC [RECORD]      a failed check: "FAIL - DESC"; RECORD (DESC by
#                           default) is what summary repeats
#   check DESC CMD...       ok if CMD succeeds, else fail
#   equal DESC GOT WANT     ok if the strings are equal, else fail with both
#   within DESC N LOW HIGH  ok if the integer N is in LOW..HIGH
#   summary                 "# failed: RECORD" per failure, then "N passed,
#                           M failed"; true when nothing failed
# TEST_OK and TEST_FAIL are the words in front of DESC ("ok -", "FAIL -").
#
# The run:
#   test_init NAME [DIR]    makes TEST_DIR ($TMPDIR or /tmp, then
#                           tollgate-DIR.XXXXXX, DIR defaulting to NAME),
#                           sets the EXIT trap (test_cleanup) and makes HUP,
#                           INT and TERM exit, so that the trap runs; NAME
#                           starts the suite's messages
#   test_cleanup            ends every remembered process (pid_stop), runs
#                           the suite's test_cleanup_hook if it has one,
#                           stops the PostgreSQL of tests/lib/pgtest.sh if
#                           it was started, and removes TEST_DIR unless a
#                           check failed or TEST_KEEP is set
#   sql QUERY               one query on the pgtest database, unaligned
#                           (pgtest_psql -At -c QUERY)
#
# Processes, always by the PID this shell got from "&", never by name:
#   pid_remember PID        end PID at exit
#   pid_ours PID            true while PID runs as a child of this shell
#                           (or of the subshell calling it)
#   pid_gone PID SECONDS    true once PID has ended, false after SECONDS
#   pid_stop PID [SECONDS]  SIGTERM, SIGKILL after SECONDS (5); reaps it and
#                           returns its exit status (137 when killed)
#   wait_bound udp|tcp IP PORT SECONDS [PID]
#                           true once something listens on IP:PORT; false
#                           after SECONDS or when PID has ended
#   wait_line FILE REGEX SECONDS [PID [FROM]]
#                           true once a line of FILE (from line FROM on)
#                           matches the extended REGEX; false after SECONDS
#                           or when PID has ended

passed=0
failed=0
FAILURES=()
TEST_OK=${TEST_OK:-"ok -"}
TEST_FAIL=${TEST_FAIL:-"FAIL -"}
TEST_NAME=${TEST_NAME:-test}
TEST_DIR=
TEST_KEEP=${TEST_KEEP:-}
TEST_PIDS=()

ok() {
	passed=$((passed + 1))
	echo "$TEST_OK $1"
}

fail() {
	failed=$((failed + 1))
	echo "$TEST_FAIL $1"
	FAILURES+=("${2:-$1}")
}

check() {
	local what=$1
	shift
	if "$@"; then ok "$what"; else fail "$what"; fi
}

equal() {
	if [ "$2" = "$3" ]; then
		ok "$1"
	else
		fail "$1: got '$2', want '$3'"
	fi
}

within() {
	if [ -n "$2" ] && [ "$2" -ge "$3" ] 2>/dev/null &&
	   [ "$2" -le "$4" ]; then
		ok "$1 ($2)"
	else
		fail "$1: got '$2', want $3..$4"
	fi
}

# the failures again, then the count, so that the tail of a long run says
# what went wrong
summary() {
	local f
	for f in "${FAILURES[@]}"; do echo "# failed: $f"; done
	echo "$passed passed, $failed failed"
	[ "$failed" = 0 ]
}

sql() { pgtest_psql -At -c "$1"; }

# req METHOD PATH [JSON]: one REST API request to $API$PATH with the admin
# token $ADMIN; sets CODE (the HTTP status) and BODY
req() {
	local m=$1 p=$2 b=${3:-}
	set --
	[ -n "$b" ] && set -- -H "Content-Type: application/json" \
		--data-binary "$b"
	CODE=$(curl -s -m 10 -o "$TEST_DIR/body" -w '%{http_code}' -X "$m" \
		-H "Authorization: Bearer $ADMIN" "$@" "$API$p")
	BODY=$(cat "$TEST_DIR/body")
}

# jget KEY: a value of BODY by its path ("a.0.b"); "null" for null, a
# list of scalars joined by commas
jget() {
	python3 -c 'import json,sys
d=json.loads(sys.argv[1])
for k in sys.argv[2].split("."):
    d=d[int(k)] if isinstance(d,list) else d[k]
print("null" if d is None else (",".join(d) if isinstance(d,list) else d))' \
		"$BODY" "$1" 2>/dev/null
}

test_init() {
	TEST_NAME=$1
	TEST_DIR=$(mktemp -d "${TMPDIR:-/tmp}/tollgate-${2:-$1}.XXXXXX") || {
		echo "$1: cannot create a temporary directory" >&2
		return 1
	}
	trap test_cleanup EXIT
	trap 'exit 1' HUP INT TERM
}

test_cleanup() {
	local pid
	for pid in "${TEST_PIDS[@]}"; do
		pid_ours "$pid" && kill -TERM "$pid" 2>/dev/null
	done
	for pid in "${TEST_PIDS[@]}"; do
		pid_stop "$pid" 10
	done
	TEST_PIDS=()
	if declare -F test_cleanup_hook >/dev/null; then
		test_cleanup_hook
	fi
	if declare -F pgtest_stop >/dev/null; then
		pgtest_stop
	fi
	[ -n "$TEST_DIR" ] && [ -d "$TEST_DIR" ] || return 0
	if [ -n "$TEST_KEEP" ] || [ "$failed" != 0 ]; then
		echo "$TEST_NAME: logs kept in $TEST_DIR" >&2
	else
		rm -rf "$TEST_DIR"
	fi
}

pid_remember() { TEST_PIDS+=("$1"); }

# a PID that ended may be handed to another process: signal only a live
# child of this shell or of the subshell asking (a helper run by "$(...)")
pid_ours() {
	[ -n "$1" ] && [ -r "/proc/$1/status" ] &&
		grep -qE "^PPid:[[:space:]]*($$|$BASHPID)\$" "/proc/$1/status" \
			2>/dev/null
}

pid_gone() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}

pid_stop() {
	local pid=$1
	[ -n "$pid" ] || return 0
	if pid_ours "$pid"; then
		kill -TERM "$pid" 2>/dev/null
		pid_gone "$pid" "${2:-5}" || kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null
}

wait_bound() {
	local opt i
	case $1 in
	udp) opt=-Hlnu ;;
	tcp) opt=-Hlnt ;;
	*) return 1 ;;
	esac
	for ((i = 0; i < $4 * 10; i++)); do
		if [ -n "$(ss $opt "src $2:$3" 2>/dev/null)" ]; then
			return 0
		fi
		if [ -n "${5:-}" ] && ! kill -0 "$5" 2>/dev/null; then
			return 1
		fi
		sleep 0.1
	done
	return 1
}

wait_line() {
	local i
	for ((i = 0; i < $3 * 10; i++)); do
		if tail -n "+${5:-1}" "$1" 2>/dev/null | grep -qE "$2"; then
			return 0
		fi
		if [ -n "${4:-}" ] && ! kill -0 "$4" 2>/dev/null; then
			return 1
		fi
		sleep 0.1
	done
	return 1
}
