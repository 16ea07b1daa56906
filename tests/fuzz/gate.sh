#!/bin/sh
# gate.sh - in a --enable-fuzzing build, run only the fuzz run of make check
#
# Makefile.am puts this in front of every test of such a build: the daemon
# and its suites are built with libFuzzer's coverage and sanitizers there
# and are checked by the ordinary build instead.
case $1 in
*/tests/fuzz/*|tests/fuzz/*)
	exec "$@"
	;;
esac
echo "${1##*/}: skipped in a fuzzing build"
exit 77
