#!/usr/bin/env bash
# Routing storage end to end: the configuration owns the gateways and
# routes it names, the database holds the table calls are routed by.
#
# A private PostgreSQL (tests/lib/pgtest.sh), the daemon started and
# restarted with edited configuration files, SIPp as the caller and as
# three gateways, curl against /v1/gateways and /v1/routes.
#
#   1. API off: the configuration's routes take effect, a number without
#      a route gets 404, a route added in SQL is used without a restart.
#   2. API on, edited configuration: the edited route line wins, the
#      route added in SQL is kept, entries of the configuration are
#      read-only through the API (409 naming the file and line).
#   3. Restart with lines removed and added: removed entries are gone,
#      routes created through the API survive, a route prefix the
#      configuration now names is the configuration's.
#
# Addresses: tollgate SIP 127.0.0.91:5060 and API 127.0.0.91:8080, SIPp
# caller 127.0.0.92, gateways gwa 127.0.0.93, gwb 127.0.0.94 and gwc
# 127.0.0.95 (port 5080).  Every process started here is ended by its PID.
#
# make check runs it from the top build directory with top_srcdir,
# top_builddir and SIPP in the environment.  Prints "N passed, M failed".
set -u

here=$(cd "$(dirname "$0")" && pwd)
: "${top_srcdir:=$(cd "$here/../.." && pwd)}"
: "${top_builddir:=$PWD}"
: "${SIPP:=$(command -v sipp || true)}"
export top_srcdir top_builddir

TG="$top_builddir/tollgate"
[ -x "$TG" ] || { echo "routes.sh: $TG not built" >&2; exit 99; }
[ -n "$SIPP" ] || { echo "routes.sh: sipp not found" >&2; exit 77; }
command -v curl >/dev/null || { echo "routes.sh: no curl" >&2; exit 77; }

TEST_KEEP=${ROUTES_KEEP:-}
# shellcheck source=../lib/check.sh
. "$top_srcdir/tests/lib/check.sh"
# shellcheck source=../lib/pgtest.sh
. "$top_srcdir/tests/lib/pgtest.sh"
test_init routes || exit 99
pgtest_start || exit 99

DIR=$TEST_DIR
CONF="$DIR/tg.conf"
TG_PID=
RUN=0
API=http://127.0.0.91:8080
ADMIN=routes-test-admin-token-0123456789

declare -A GW_IP=([gwa]=127.0.0.93 [gwb]=127.0.0.94 [gwc]=127.0.0.95)

# jfind LIST KEY VALUE FIELD: FIELD of the LIST element whose KEY is VALUE
jfind() {
	python3 -c 'import json,sys
d=json.loads(sys.argv[1])[sys.argv[2]]
r=[e[sys.argv[5]] for e in d if str(e[sys.argv[3]])==sys.argv[4]]
print(",".join("null" if v is None else str(v) for v in r))' \
		"$BODY" "$1" "$2" "$3" "$4" 2>/dev/null
}

# line PATTERN: the number of the configuration line matching PATTERN
line() { grep -n -- "$1" "$CONF" | head -n 1 | cut -d: -f1; }

# start [api]: tollgate with $CONF (plus the API lines), up and routing
start() {
	local log
	RUN=$((RUN + 1))
	log="$DIR/tollgate.$RUN.log"
	if [ "${1:-}" = api ]; then
		printf 'api_listen 127.0.0.91:8080\napi_token %s admin\n' \
			"$ADMIN" >>"$CONF"
	fi
	cp "$CONF" "$DIR/tg.$RUN.conf"
	"$TG" -f "$CONF" >"$log" 2>&1 &
	TG_PID=$!
	TG_LOG=$log
	pid_remember "$TG_PID"
	wait_line "$log" "routing by the database" 10 "$TG_PID" && return 0
	echo "routes.sh: tollgate did not come up:" >&2
	tail -n 30 "$log" >&2
	exit 99
}

# stop: SIGTERM, the daemon must exit 0 (SIGKILL after 30 s fails it)
stop() {
	local rc
	pid_stop "$TG_PID" 30
	rc=$?
	TG_PID=
	equal "tollgate run $RUN exits 0 on SIGTERM" "$rc" 0
}

# loads: how many tables this run has loaded so far
loads() { grep -c "routing by the database" "$TG_LOG"; }

# wait_loads N: until this run has loaded more than N tables (5 s)
wait_loads() {
	local i
	for i in $(seq 1 50); do
		[ "$(loads)" -gt "$1" ] && return 0
		sleep 0.1
	done
	return 1
}

# dial NUMBER: call NUMBER; prints the gateways that were called for it,
# "none" if none was, "no answer" if the caller's call failed.  Run by
# "$(...)": the gateways are children of that subshell, which ends them.
dial() {
	local n=$1 gw pids="" caller out=""
	DIALS=$(($(cat "$DIR/dials" 2>/dev/null || echo 0) + 1))
	echo "$DIALS" >"$DIR/dials"
	for gw in gwa gwb gwc; do
		"$SIPP" -nostdin -i "${GW_IP[$gw]}" -p 5080 -sf "$here/gw.xml" \
			-m 1 -timeout 15 -timeout_error -trace_logs \
			-log_file "$DIR/$DIALS-$gw.log" \
			>"$DIR/$DIALS-$gw.out" 2>&1 </dev/null &
		pids="$pids $!"
	done
	sleep 0.2
	"$SIPP" -nostdin -i 127.0.0.92 -p 5061 -sf "$here/${2:-caller.xml}" \
		-s "$n" -m 1 -timeout 10 -timeout_error \
		-trace_msg -message_file "$DIR/$DIALS-caller.msg" \
		127.0.0.91:5060 >"$DIR/$DIALS-caller.out" 2>&1 </dev/null
	caller=$?
	sleep 0.2
	for gw in $pids; do pid_stop "$gw"; done
	for gw in gwa gwb gwc; do
		if grep -q "CALLED $n" "$DIR/$DIALS-$gw.log" 2>/dev/null; then
			out="${out:+$out,}$gw"
		fi
	done
	if [ "$caller" != 0 ]; then
		echo "no answer"
	else
		echo "${out:-none}"
	fi
}

# dial_404 NUMBER: "404" if the caller got 404 and no gateway was called
dial_404() {
	local r
	r=$(dial "$1" caller-404.xml)
	[ "$r" = none ] && r=404
	echo "$r"
}

sql "INSERT INTO accounts (name, balance) VALUES ('alice', 100000000)" \
	>/dev/null || exit 99


echo "# 1. API off: routing by the configuration's lines"
cat >"$CONF" <<EOF
sip_listen udp:127.0.0.91:5060
trusted_peer 127.0.0.92 from
digest_auth no
db_conninfo $PGTEST_CONNINFO
billing no
rtp_relay no
media_timeout 0
state_dir $DIR/state
shutdown_grace 2
log_level info
gateway gwa 127.0.0.93:5080
gateway gwb 127.0.0.94:5080
gateway gwc 127.0.0.95:5080
route 4420 gwb
route 4430 gwa
EOF
mkdir -p "$DIR/state"
start
equal "config route 4420 reaches gwb" "$(dial 4420555)" gwb
equal "config route 4430 reaches gwa" "$(dial 4430555)" gwa
equal "a number without a route gets 404" "$(dial_404 9990)" 404
equal "route 4420 is in the database as the config's" \
	"$(sql "SELECT origin || ' ' || config_file || ':' || config_line
		FROM routes WHERE prefix = '4420'")" \
	"config $DIR/tg.conf:$(line '^route 4420')"
equal "the config's gateways are in the database" \
	"$(sql "SELECT string_agg(name || '=' || address, ' ' ORDER BY name)
		FROM gateways WHERE origin = 'config'")" \
	"gwa=127.0.0.93:5080 gwb=127.0.0.94:5080 gwc=127.0.0.95:5080"

n=$(loads)
sql "INSERT INTO routes (prefix, gateway_id) SELECT '4440', id
	FROM gateways WHERE name = 'gwc'" >/dev/null
check "a route added in SQL loads the table again" wait_loads "$n"
equal "the route added in SQL is used at once" "$(dial 4440555)" gwc
stop


echo "# 2. API on, route 4420 edited in the configuration"
sed -i 's/^route 4420 gwb$/route 4420 gwa,gwb/' "$CONF"
start api
equal "the edited line wins: 4420 now tries gwa first" "$(dial 4420555)" gwa
equal "the route added in SQL survives a restart" "$(dial 4440555)" gwc

req GET /v1/routes
equal "GET /v1/routes: 4420 positions" \
	"$(jfind routes prefix 4420 gateway)" "gwa,gwb"
equal "GET /v1/routes: 4420 is the config's" \
	"$(jfind routes prefix 4420 config)" \
	"$DIR/tg.conf:$(line '^route 4420'),$DIR/tg.conf:$(line '^route 4420')"
equal "GET /v1/routes: 4440 was made outside the config" \
	"$(jfind routes prefix 4440 origin)/$(jfind routes prefix 4440 config)" \
	"api/null"
R4420=$(jfind routes prefix 4420 id | cut -d, -f1)
R4440=$(jfind routes prefix 4440 id)

req DELETE "/v1/routes/$R4420"
equal "DELETE a config route: 409" "$CODE" 409
equal "the refusal names the file and line" "$(jget error)" \
	"route 4420 is set by $DIR/tg.conf:$(line '^route 4420'); change it there"
equal "the refusal's field" "$(jget field)" id

req POST /v1/routes '{"prefix":"4420","gateway":"gwc"}'
equal "POST a gateway to a config route's prefix: 409" "$CODE" 409
equal "that refusal names the file and line" "$(jget error)" \
	"route 4420 is set by $DIR/tg.conf:$(line '^route 4420'); change it there"

req GET /v1/gateways
GWA=$(jfind gateways name gwa id)
equal "GET /v1/gateways: gwa is the config's" \
	"$(jfind gateways name gwa origin)" config
req DELETE "/v1/gateways/$GWA"
equal "DELETE a config gateway: 409" "$CODE" 409
equal "the refusal names the gateway's line" "$(jget error)" \
	"gateway gwa is set by $DIR/tg.conf:$(line '^gateway gwa'); change it there"
equal "routing is unchanged after the refusals" "$(dial 4420555)" gwa

req POST /v1/routes '{"prefix":"4450","gateway":"gwc"}'
equal "POST an API route 4450" "$CODE" 201
equal "its origin" "$(jget origin)" api
R4450=$(jget id)
equal "the API route is used at once" "$(dial 4450555)" gwc
req POST /v1/routes '{"prefix":"4460","gateway":"gwc"}'
equal "POST an API route 4460" "$CODE" 201
req POST /v1/gateways '{"name":"gwd","address":"127.0.0.96:5080"}'
equal "POST an API gateway gwd" "$CODE" 201
stop


echo "# 3. restart: 4430 and gwb removed, 4460 named by the config"
sed -i -e '/^route 4430 /d' -e '/^api_/d' \
	-e 's/^route 4420 gwa,gwb$/route 4420 gwa/' -e '/^gateway gwb /d' \
	"$CONF"
echo "route 4460 gwa" >>"$CONF"
start api
equal "a route removed from the config is gone" "$(dial_404 4430555)" 404
equal "the API route survives a restart" "$(dial 4450555)" gwc
equal "a prefix the config now names is the config's" "$(dial 4460555)" gwa
equal "the API route added in SQL is still there" "$(dial 4440555)" gwc

req GET /v1/routes
equal "GET /v1/routes: no 4430 any more" "$(jfind routes prefix 4430 id)" ""
equal "GET /v1/routes: 4460 is the config's, to gwa only" \
	"$(jfind routes prefix 4460 gateway)/$(jfind routes prefix 4460 origin)" \
	"gwa/config"
equal "GET /v1/routes: 4420 moved with its line" \
	"$(jfind routes prefix 4420 config)" "$DIR/tg.conf:$(line '^route 4420')"
req GET /v1/gateways
equal "GET /v1/gateways: gwb removed with its line, gwd kept" \
	"$(python3 -c 'import json,sys
print(" ".join(g["name"] + "/" + g["origin"]
	for g in json.loads(sys.argv[1])["gateways"]))' "$BODY")" \
	"gwa/config gwc/config gwd/api"

req DELETE "/v1/routes/$R4450"
equal "DELETE an API route" "$CODE" 200
equal "without it the number gets 404" "$(dial_404 4450555)" 404
req DELETE "/v1/routes/$R4440"
equal "DELETE the route added in SQL" "$CODE" 200
stop


summary
