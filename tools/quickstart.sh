#!/usr/bin/env bash
#
# quickstart.sh - build tollgate and run it on a private database
#
# Usage (from anywhere inside the source tree, on Debian 12):
#   tools/quickstart.sh run    set up, then run the daemon in the foreground
#   tools/quickstart.sh test   set up, then make check, make distcheck,
#                              a fuzzing build's make check and the Debian
#                              package's test (exit status of those; var/pg
#                              is stopped)
#
# Set-up, every step idempotent:
#   1. as root: apt-get install of the packages that are missing
#      (not root: fails naming them if any is missing)
#   2. autoreconf -fi, ./configure --enable-werror --with-liburing, make -j2
#      (in the tree)
#   3. a private PostgreSQL 15 cluster in ./var/pg (tools/pg-cluster.sh),
#      started; it listens only on the socket ./var/pg/run
#   4. ./tollgate --migrate, then tools/seed-demo.sql (rate plan "demo",
#      account "demo" with 10.000000 credit and SIP user demo/demo, gateway
#      gw1 = 127.0.0.1:5080)
#   5. ./var/tollgate.conf unless it exists: SIP on udp and tcp
#      127.0.0.1:5060, calls from 127.0.0.1 billed to "demo", everything
#      routed to 127.0.0.1:5080, REST API on 127.0.0.1:8080
#
# "test" also installs, with npm ci, the tools of make check pinned in
# the tree, under ./var: the OpenAPI linter (@redocly/cli of
# tests/api/package-lock.json, in var/npm, passed as TOLLGATE_REDOCLY)
# and puppeteer-core for the browser test (tests/ui/package-lock.json, in
# var/ui-node, passed as TOLLGATE_UI_NODE_PATH); it sets
# TOLLGATE_REQUIRE_NPM=1 and TOLLGATE_REQUIRE_BROWSER=1, so neither test
# can skip.
#
# The fuzzing build of "test" configures the tarball that make distcheck
# left with CC=clang --enable-fuzzing in var/fuzz/build (a separate VPATH
# build: the tree's own build stays as it is) and runs its make check,
# which fuzzes each tests/fuzz target for FUZZ_TIME seconds (default 30).
#
# The package test (tests/pkg/package.sh) builds the .deb once with
# DEB_BUILD_OPTIONS=nocheck in a copy of the tree, checks its contents and
# unit, and as root installs, removes and purges it.
#
# Stop the database afterwards with: tools/pg-cluster.sh stop var/pg

set -euo pipefail

PROG=${0##*/}
PACKAGES=(build-essential autoconf automake libtool pkg-config
	  libre-dev librem-dev libpq-dev libmicrohttpd-dev liburing-dev libssl-dev postgresql-15
	  sip-tester valgrind curl acl clang libclang-rt-14-dev sipvicious
	  python3 python3-yaml openssl debhelper systemd chromium nodejs)

die() {
	echo "$PROG: $*" >&2
	exit 1
}

step() {
	echo "==> $*"
}

usage() {
	sed -n '5,10p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

install_packages() {
	local p missing=()
	for p in "${PACKAGES[@]}"; do
		if ! dpkg-query -W -f '${Status}\n' "$p" 2>/dev/null |
		     grep -q '^install ok installed$'; then
			missing+=("$p")
		fi
	done
	if [ ${#missing[@]} -eq 0 ]; then
		return 0
	fi
	if [ "$(id -u)" -ne 0 ]; then
		die "missing packages: ${missing[*]} (run this as root, or" \
		    "apt-get install them)"
	fi
	step "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update
	apt-get install -y --no-install-recommends "${missing[@]}"
}

build() {
	step "building"
	autoreconf -fi
	./configure --enable-werror --with-liburing
	make -j2
}

# npm for the test tools below: Debian's, unless the nodejs installed
# (of another origin) brings its own
need_npm() {
	command -v npm >/dev/null && return 0
	[ "$(id -u)" -eq 0 ] || die "no npm (apt-get install npm)"
	DEBIAN_FRONTEND=noninteractive apt-get install -y \
		--no-install-recommends npm
}

# puppeteer-core for the browser test (tests/ui/console.sh), pinned by
# tests/ui/package-lock.json, in var/ui-node (the source tree stays as it
# is; make distcheck's copy is read-only); it downloads no browser
ui_node() {
	step "puppeteer-core in var/ui-node"
	need_npm
	mkdir -p var/ui-node
	cp tests/ui/package.json tests/ui/package-lock.json var/ui-node/
	(cd var/ui-node && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit \
		--no-fund --ignore-scripts) ||
		die "npm ci of tests/ui/package.json failed"
}

database() {
	step "database in var/pg"
	tools/pg-cluster.sh init var/pg
	tools/pg-cluster.sh start var/pg
}

# the OpenAPI linter (tests/api/openapi-lint.sh) in var/npm, as pinned
npm_tools() {
	local dir=var/npm
	REDOCLY=$PWD/$dir/node_modules/.bin/redocly
	if [ -x "$REDOCLY" ] &&
	   cmp -s tests/api/package-lock.json "$dir/package-lock.json"; then
		step "keeping $dir (tests/api/package-lock.json unchanged)"
		return 0
	fi
	step "npm ci in $dir (tests/api/package.json)"
	need_npm
	rm -rf "$dir" && mkdir -p "$dir" &&
		cp tests/api/package.json tests/api/package-lock.json "$dir/" &&
		(cd "$dir" && npm ci --no-audit --no-fund) ||
		die "npm ci of tests/api/package.json failed"
	[ -x "$REDOCLY" ] || die "no $REDOCLY after npm ci"
}

write_config() {
	local conf=var/tollgate.conf token
	mkdir -p var/state
	if [ -e "$conf" ]; then
		step "keeping $conf"
		return 0
	fi
	step "writing $conf"
	token=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
	cat >"$conf.new" <<EOF
# tollgate demo node written by tools/quickstart.sh (edit freely: it is
# not overwritten).  Reference: tollgate.conf.example, tollgate.conf(5).

# SIP on loopback; calls from 127.0.0.1 are billed to account "demo",
# others must authenticate with digest (user demo, password demo).
sip_listen udp:127.0.0.1:5060
sip_listen tcp:127.0.0.1:5060
trusted_peer 127.0.0.1 account=demo
sip_realm tollgate
digest_auth yes

# every number goes to the gateway on 127.0.0.1:5080
gateway gw1 127.0.0.1:5080
route default gw1

# the private cluster of tools/pg-cluster.sh in var/pg
db_conninfo $(tools/pg-cluster.sh conninfo var/pg)

rtp_addr 127.0.0.1

# REST API, e.g.:
#   curl -H "Authorization: Bearer $token" http://127.0.0.1:8080/...
api_listen 127.0.0.1:8080
api_token $token admin

log_target stderr
log_level info
state_dir $PWD/var/state
EOF
	mv "$conf.new" "$conf"
	chmod 0600 "$conf"
}

# make check of a --enable-fuzzing build of the distributed sources
fuzz_check() {
	local version tarball dir=var/fuzz

	version=$(sed -n 's/^PACKAGE_VERSION = //p' Makefile)
	tarball=tollgate-$version.tar.gz
	[ -f "$tarball" ] || die "no $tarball (make distcheck makes it)"

	step "fuzzing build in $dir/build (clang, --enable-fuzzing)"
	rm -rf "$dir" && mkdir -p "$dir/build" &&
		tar -xzf "$tarball" -C "$dir" || return 1
	(cd "$dir/build" &&
	 "../tollgate-$version/configure" --enable-werror --with-liburing \
		--enable-fuzzing CC=clang >configure.log &&
	 make -j2 >make.log &&
	 make check FUZZ_TIME="${FUZZ_TIME:-30}")
}

migrate_and_seed() {
	local args=(--migrate -f var/tollgate.conf)
	if ./tollgate --help 2>&1 | grep -q -- --sqldir; then
		args+=(--sqldir "$PWD/sql")
	fi
	step "migrating"
	./tollgate "${args[@]}"
	step "demo data"
	tools/pg-cluster.sh psql var/pg -X -q -v ON_ERROR_STOP=1 \
		-f tools/seed-demo.sql
	step "checking var/tollgate.conf"
	./tollgate -t -f var/tollgate.conf >/dev/null
}

setup() {
	install_packages
	build
	database
	write_config
	migrate_and_seed
}

[ $# -eq 1 ] || usage

cd "$(dirname "$0")/.."
if [ ! -f configure.ac ] || [ ! -f tools/pg-cluster.sh ]; then
	die "cannot find the source tree (expected next to tools/)"
fi

case $1 in
run)
	setup
	step "running ./tollgate -f var/tollgate.conf (Ctrl-C stops it)"
	exec ./tollgate -f var/tollgate.conf
	;;
test)
	setup
	npm_tools
	ui_node
	# the browser test may not skip in CI
	TOLLGATE_REQUIRE_BROWSER=1
	TOLLGATE_UI_NODE_PATH=$PWD/var/ui-node/node_modules
	export TOLLGATE_REQUIRE_BROWSER TOLLGATE_UI_NODE_PATH
	rc=0
	log=var/make-check.log
	step "make check"
	TOLLGATE_REDOCLY=$REDOCLY TOLLGATE_REQUIRE_NPM=1 make check 2>&1 |
		tee "$log" || rc=$?
	if [ $rc -eq 0 ]; then
		step "make distcheck"
		TOLLGATE_REDOCLY=$REDOCLY TOLLGATE_REQUIRE_NPM=1 \
			make distcheck DISTCHECK_CONFIGURE_FLAGS=--enable-werror ||
			rc=$?
	fi
	rm -f var/fuzz-check.log
	if [ $rc -eq 0 ]; then
		fuzz_check 2>&1 | tee var/fuzz-check.log || rc=$?
	fi
	rm -f var/package-check.log
	if [ $rc -eq 0 ]; then
		step "Debian package (tests/pkg/package.sh)"
		# 77: skipped (a tool it needs is missing), not a failure
		tests/pkg/package.sh 2>&1 | tee var/package-check.log ||
			{ r=$?; [ $r -eq 77 ] || rc=$r; }
	fi
	# the tests ran on clusters of their own: leave no server behind
	tools/pg-cluster.sh stop var/pg || true
	# one closing line for the whole suite (make check's test scripts)
	echo "tests: $(grep -c '^PASS: ' "$log") passed," \
	     "$(grep -c '^FAIL: ' "$log") failed"
	if [ -f var/fuzz-check.log ]; then
		echo "fuzz: $(grep -c '^PASS: ' var/fuzz-check.log) passed," \
		     "$(grep -c '^FAIL: ' var/fuzz-check.log) failed"
	fi
	if [ -f var/package-check.log ]; then
		echo "package: $(tail -n 1 var/package-check.log)"
	fi
	exit $rc
	;;
*)
	usage
	;;
esac
