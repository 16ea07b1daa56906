#!/bin/sh
# tests/flows/run-flows-valgrind.sh - the call flows with both daemons under
# valgrind: any memcheck error or definite leak makes a daemon exit 42 on
# SIGTERM, which fails the run.  Arguments are passed on (flow names).
TG_VALGRIND=1
export TG_VALGRIND
exec "$(dirname "$0")/run-flows.sh" "$@"
