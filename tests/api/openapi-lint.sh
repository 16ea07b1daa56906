#!/usr/bin/env bash
# Lints docs/openapi.yaml with @redocly/cli (the version pinned in
# tests/api/package.json and package-lock.json) by the rules of
# tests/api/redocly.yaml.
#
# TOLLGATE_REDOCLY names the redocly executable (tools/quickstart.sh
# installs it with npm ci in var/npm and passes it); without it, redocly
# on PATH.  Neither: skipped (77), unless TOLLGATE_REQUIRE_NPM=1 (CI),
# then an error (99).
set -u

here=$(cd "$(dirname "$0")" && pwd)
: "${top_srcdir:=$(cd "$here/../.." && pwd)}"

redocly=${TOLLGATE_REDOCLY:-$(command -v redocly || true)}
if [ -z "$redocly" ] || [ ! -x "$redocly" ]; then
	if [ "${TOLLGATE_REQUIRE_NPM:-0}" = 1 ]; then
		echo "openapi-lint.sh: no redocly (TOLLGATE_REDOCLY=" \
		     "${TOLLGATE_REDOCLY:-}) and TOLLGATE_REQUIRE_NPM=1:" \
		     "run tools/quickstart.sh, or npm ci in a copy of" \
		     "tests/api" >&2
		exit 99
	fi
	echo "openapi-lint.sh: no redocly: skipped (set TOLLGATE_REDOCLY)" >&2
	exit 77
fi

# no telemetry, no update check: tests run without a network
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true
export NO_UPDATE_NOTIFIER=1

cd "$top_srcdir/tests/api" || exit 99
out=$("$redocly" lint --config redocly.yaml ../../docs/openapi.yaml 2>&1)
rc=$?
printf '%s\n' "$out"
if [ $rc -ne 0 ]; then
	echo "openapi-lint.sh: docs/openapi.yaml does not pass the lint" >&2
	echo "0 passed, 1 failed"
	exit 1
fi
echo "1 passed, 0 failed"
