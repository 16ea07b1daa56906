#!/usr/bin/env bash
# PostgreSQL client tests: a private cluster (tests/lib/pgtest.sh), then
# tests/unit/test_db, under valgrind when it is installed.
#
# make check runs it from the top build directory; top_srcdir, top_builddir
# and VALGRIND come from the environment when set, else from where this
# script lies and from PATH.
set -u

here=$(cd "$(dirname "$0")" && pwd)
: "${top_srcdir:=$(cd "$here/../.." && pwd)}"
: "${top_builddir:=$PWD}"
if [ -z "${VALGRIND+set}" ]; then
	VALGRIND=$(command -v valgrind || true)
fi
export top_srcdir top_builddir

if [ ! -x "$top_builddir/tests/unit/test_db" ]; then
	echo "test_db.sh: $top_builddir/tests/unit/test_db not built" >&2
	exit 99
fi

. "$top_srcdir/tests/lib/pgtest.sh"
trap pgtest_stop EXIT

pgtest_start || exit 99

run=()
if [ -n "$VALGRIND" ]; then
	run=("$VALGRIND" --quiet --leak-check=full --error-exitcode=42)
fi

"${run[@]}" "$top_builddir/tests/unit/test_db"
