#!/bin/sh
# run-fuzz.sh - fuzz every target of a --enable-fuzzing build for a while
#
# make check runs it in a build configured with --enable-fuzzing (CC=clang).
# Each tests/fuzz/fuzz_NAME runs under libFuzzer for FUZZ_TIME seconds
# (default 30) on a scratch copy of its seed corpus tests/fuzz/corpus/NAME,
# with tests/fuzz/dict/NAME.dict if there is one.  Any crash, leak,
# sanitizer report, timeout or excess memory fails the run; the input that
# did it is kept in tests/fuzz/artifacts/ of the build directory.
#
# From the build directory (SRC is the source tree):
#   FUZZ_TIME=300 SRC/tests/fuzz/run-fuzz.sh      all targets, 5 min each
#   SRC/tests/fuzz/run-fuzz.sh sdp conf           only these
#
# Environment (make check sets the first two): top_srcdir, top_builddir,
# FUZZ_TIME, FUZZ_ARGS (more libFuzzer options).

set -u

src=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${top_builddir:-.}
time=${FUZZ_TIME:-30}
work=$build/tests/fuzz/work
arts=$build/tests/fuzz/artifacts

targets=${*:-sdp conf spool api auth hdrcopy}
mkdir -p "$work" "$arts" || exit 1

rc=0
for t in $targets; do
	prog=$build/tests/fuzz/fuzz_$t
	seeds=$src/tests/fuzz/corpus/$t
	dict=$src/tests/fuzz/dict/$t.dict
	log=$work/$t.log

	if [ ! -x "$prog" ]; then
		echo "run-fuzz: $prog is not built" >&2
		rc=1
		continue
	fi

	# new inputs go to the scratch directory, never to the source tree
	rm -rf "$work/$t"
	mkdir -p "$work/$t"

	set -- -max_total_time="$time" -rss_limit_mb=2048 -timeout=10 \
		-max_len=8192 -print_final_stats=1 \
		-artifact_prefix="$arts/$t-"
	[ -f "$dict" ] && set -- "$@" -dict="$dict"

	echo "run-fuzz: $t for ${time}s"
	# shellcheck disable=SC2086
	if ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0} \
	   UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
	   "$prog" "$@" ${FUZZ_ARGS:-} "$work/$t" "$seeds" >"$log" 2>&1; then
		grep -aE '^stat::number_of_executed_units|^#[0-9]+.*DONE' \
		     "$log" | tail -n 2 | sed "s/^/run-fuzz: $t: /"
	else
		echo "run-fuzz: $t FAILED (log $log):" >&2
		grep -av '^#[0-9]' "$log" | tail -n 60 >&2
		rc=1
	fi
done

exit $rc
