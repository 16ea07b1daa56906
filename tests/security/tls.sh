#!/usr/bin/env bash
# SIP over TLS end to end: callers on a tls: listener, gateways with
# transport=tls, certificates the suite makes itself.
#
# A private PostgreSQL (tests/lib/pgtest.sh), a CA and certificates made
# with openssl in the work directory, tests/security/tls_peer.py as the
# TLS caller and the TLS gateway, SIPp as a UDP gateway.
#
#   1. A bad certificate or key path, or a key of another certificate,
#      stops the start naming FILE:LINE.
#   2. TLS caller -> UDP gateway: INVITE, 200, ACK, BYE from the caller;
#      a CDR is written.
#   3. TLS caller -> TLS gateway, BYE from the gateway: it reaches the
#      caller over TLS, though the caller's Contact names no transport.  Then the caller's BYE reaches the gateway over
#      TLS.
#   4. A TLS gateway whose certificate no CA of sip_tls_ca signed, or
#      whose certificate is for another address, is not called; the caller
#      gets a failure.
#   5. Plain text, random bytes and junk inside TLS on the TLS port from an
#      untrusted address during a call: the call goes on and ends well,
#      the next call works.
#
# Addresses: tollgate 127.0.1.50 (UDP 5060, TLS 5061), TLS caller
# 127.0.1.51 (trusted peer), SIPp UDP gateway 127.0.1.52:5080, TLS
# gateways 127.0.1.53:5061 (signed by the CA, its port left to the
# default of tls), 127.0.1.55:5061 (self-signed) and 127.0.1.56:5061
# (with the certificate of 127.0.1.53), the untrusted source of garbage
# 127.0.1.54.  Every process started here is ended by its PID.
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
PEER="$top_srcdir/tests/security/tls_peer.py"
[ -x "$TG" ] || { echo "tls.sh: $TG not built" >&2; exit 99; }
[ -n "$SIPP" ] || { echo "tls.sh: sipp not found" >&2; exit 77; }
command -v openssl >/dev/null || { echo "tls.sh: no openssl" >&2; exit 77; }
command -v python3 >/dev/null || { echo "tls.sh: no python3" >&2; exit 77; }

TEST_KEEP=${TLS_KEEP:-}
# shellcheck source=../lib/check.sh
. "$top_srcdir/tests/lib/check.sh"
# shellcheck source=../lib/pgtest.sh
. "$top_srcdir/tests/lib/pgtest.sh"
test_init tls || exit 99
pgtest_start || exit 99

DIR=$TEST_DIR
CONF="$DIR/tg.conf"
TG_PID=
RUN=0
N=0

# cert NAME IP [CA]: NAME.key and NAME.pem for IP, signed by CA (the
# test's own, "self" for a self-signed one)
cert() {
	local name=$1 ip=$2 ca=${3:-ca}
	printf 'subjectAltName=IP:%s\n' "$ip" >"$DIR/$name.ext"
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-subj "/CN=$ip" -keyout "$DIR/$name.key" -out "$DIR/$name.csr" \
		2>/dev/null || return 1
	if [ "$ca" = self ]; then
		openssl x509 -req -in "$DIR/$name.csr" -signkey "$DIR/$name.key" \
			-days 2 -extfile "$DIR/$name.ext" -out "$DIR/$name.pem" \
			2>/dev/null
	else
		openssl x509 -req -in "$DIR/$name.csr" -CA "$DIR/$ca.pem" \
			-CAkey "$DIR/$ca.key" -CAcreateserial -days 2 \
			-extfile "$DIR/$name.ext" -out "$DIR/$name.pem" 2>/dev/null
	fi
}

openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=tollgate test CA" \
	-keyout "$DIR/ca.key" -out "$DIR/ca.pem" 2>/dev/null || exit 99
cert tg 127.0.1.50 && cert gw 127.0.1.53 && cert rogue 127.0.1.55 self ||
	exit 99

sql "INSERT INTO rate_plans (name) VALUES ('std');
     INSERT INTO rates (rate_plan_id, prefix, price_per_minute,
			initial_increment, subsequent_increment)
	  SELECT id, '', 100000, 1, 1 FROM rate_plans;
     INSERT INTO accounts (name, balance, rate_plan_id)
	  SELECT 'caller', 100000000, id FROM rate_plans" >/dev/null || exit 99

write_conf() {
	cat >"$CONF" <<EOF
sip_listen udp:127.0.1.50:5060
sip_listen tls:127.0.1.50:5061
sip_tls_cert ${1:-$DIR/tg.pem}
sip_tls_key ${2:-$DIR/tg.key}
sip_tls_ca $DIR/ca.pem
trusted_peer 127.0.1.51 from
db_conninfo $PGTEST_CONNINFO
rtp_relay no
media_timeout 0
state_dir $DIR/state
shutdown_grace 2
log_level info
gateway udpgw 127.0.1.52:5080
gateway tlsgw 127.0.1.53 transport=tls
gateway rogue 127.0.1.55:5061 transport=tls
gateway misnamed 127.0.1.56:5061 transport=tls
route default udpgw
route 77 tlsgw
route 78 rogue
route 79 misnamed
EOF
}

start() {
	RUN=$((RUN + 1))
	TG_LOG="$DIR/tollgate.$RUN.log"
	"$TG" -f "$CONF" >"$TG_LOG" 2>&1 &
	TG_PID=$!
	pid_remember "$TG_PID"
	wait_line "$TG_LOG" "routing by the database" 10 "$TG_PID" &&
		wait_bound tcp 127.0.1.50 5061 5 "$TG_PID" && return 0
	echo "tls.sh: tollgate did not come up:" >&2
	tail -n 30 "$TG_LOG" >&2
	exit 99
}

# bad_start DESC WANT: tollgate must exit non-zero at once, with WANT
# (a FILE:LINE: message) in its output
bad_start() {
	local out="$DIR/bad.$N.log" rc
	N=$((N + 1))
	timeout 10 "$TG" -f "$CONF" >"$out" 2>&1 </dev/null
	rc=$?
	if [ "$rc" != 0 ] && [ "$rc" != 124 ] && grep -qF -- "$2" "$out"; then
		ok "$1"
	else
		fail "$1: exit $rc, want '$2' in: $(head -c 300 "$out")"
	fi
}

# peer NAME ARGS...: tls_peer.py in the background, output in NAME.out
peer() {
	local name=$1
	shift
	python3 -B "$PEER" "$@" >"$DIR/$name.out" 2>&1 </dev/null &
	PEER_PID=$!
	pid_remember "$PEER_PID"
}

# caller NAME NUMBER BYE [HOLD [ARGS...]]: a TLS call, in the foreground;
# its exit status
caller() {
	local name=$1 number=$2 bye=$3 hold=${4:-0.5}
	shift 4 2>/dev/null || shift $#
	python3 -B "$PEER" caller --server 127.0.1.50:5061 --bind 127.0.1.51 \
		--ca "$DIR/ca.pem" --number "$number" --bye "$bye" \
		--hold "$hold" "$@" >"$DIR/$name.out" 2>&1 </dev/null
}

has() { grep -q -- "$2" "$DIR/$1.out"; }

# cdr NUMBER: "reason hangup_by" of the CDR of the call to NUMBER once
# written (5 s)
cdr() {
	local i r
	for i in $(seq 1 50); do
		r=$(sql "SELECT reason || ' ' || hangup_by FROM cdrs
			WHERE callee = '$1'")
		[ -n "$r" ] && { echo "$r"; return 0; }
		sleep 0.1
	done
	echo none
}

mkdir -p "$DIR/state"

echo "# 1. bad certificate and key files stop the start"
write_conf "$DIR/missing.pem"
bad_start "a missing certificate names FILE:LINE" \
	"$CONF:3: cannot load certificate '$DIR/missing.pem'"
write_conf /dev/zero
bad_start "a device as the certificate is refused, not read for ever" \
	"$CONF:3: cannot load certificate '/dev/zero': not a regular file"
write_conf "$DIR/tg.pem" "$DIR/missing.key"
bad_start "a missing key names FILE:LINE" \
	"$CONF:4: cannot load private key '$DIR/missing.key'"
write_conf "$DIR/tg.pem" "$DIR/gw.key"
bad_start "a key of another certificate names FILE:LINE" \
	"$CONF:4: cannot load private key '$DIR/gw.key'"

write_conf
start

echo "# 2. TLS caller to a UDP gateway"
"$SIPP" -nostdin -i 127.0.1.52 -p 5080 -sf "$top_srcdir/tests/routes/gw.xml" \
	-m 1 -timeout 15 -timeout_error -trace_logs -log_file "$DIR/udpgw.log" \
	>"$DIR/udpgw.out" 2>&1 </dev/null &
GW=$!
pid_remember "$GW"
sleep 0.3
caller c1 4420555 caller
check "the TLS call is answered" has c1 ANSWERED
check "the caller's BYE is answered 200" has c1 ENDED
check "the UDP gateway was called" grep -q "CALLED 4420555" "$DIR/udpgw.log"
wait "$GW"
equal "the UDP gateway's scenario passed" "$?" 0
equal "a CDR is written" "$(cdr 4420555)" "caller caller"

echo "# 3. TLS caller to a TLS gateway"
peer gw1 gateway --listen 127.0.1.53:5061 --cert "$DIR/gw.pem" \
	--key "$DIR/gw.key" --bye callee --hold 0.5
GW=$PEER_PID
wait_line "$DIR/gw1.out" LISTENING 5 "$GW"
caller c2 7712345 callee 0.5 --plain-contact
check "the call over TLS on both legs is answered" has c2 ANSWERED
check "the TLS gateway was called" has gw1 "CALLED 7712345"
check "tollgate's Contact toward the caller says TLS" \
	has c2 "ANSWERED contact <sip:tollgate@127.0.1.50:5061;transport=tls>"
check "tollgate's Contact toward the gateway says TLS" \
	has gw1 "contact <sip:tollgate@127.0.1.50:[0-9]*;transport=tls>"
check "the gateway's BYE reaches the caller over TLS" \
	has c2 "BYE-RECEIVED via SIP/2.0/TLS"
check "the caller answered the BYE" has c2 ENDED
wait "$GW"
equal "the gateway's BYE is answered 200" "$?" 0
equal "the CDR says the callee hung up" "$(cdr 7712345)" \
	"callee callee"

peer gw2 gateway --listen 127.0.1.53:5061 --cert "$DIR/gw.pem" \
	--key "$DIR/gw.key" --bye caller
GW=$PEER_PID
wait_line "$DIR/gw2.out" LISTENING 5 "$GW"
caller c3 7712346 caller
check "the caller's BYE is answered 200" has c3 ENDED
check "the caller's BYE reaches the TLS gateway over TLS" \
	has gw2 "BYE-RECEIVED via SIP/2.0/TLS"
wait "$GW"
equal "the TLS gateway's side ended well" "$?" 0
equal "its CDR is written" "$(cdr 7712346)" "caller caller"

echo "# 4. a gateway with a certificate of no trusted CA"
peer gw3 gateway --listen 127.0.1.55:5061 --cert "$DIR/rogue.pem" \
	--key "$DIR/rogue.key" --timeout 5
GW=$PEER_PID
wait_line "$DIR/gw3.out" LISTENING 5 "$GW"
caller c4 7812345 caller
check "the caller's call fails" has c4 "^FINAL [3-6]"
check "the rogue gateway got no INVITE" bash -c "! grep -q CALLED '$DIR/gw3.out'"
check "tollgate says why" \
	grep -q "server certificate refused.*self-signed" "$TG_LOG"
wait "$GW"

peer gw3b gateway --listen 127.0.1.56:5061 --cert "$DIR/gw.pem" \
	--key "$DIR/gw.key" --timeout 5
GW=$PEER_PID
wait_line "$DIR/gw3b.out" LISTENING 5 "$GW"
caller c4b 7912345 caller
check "a certificate of the CA for another address: the call fails" \
	has c4b "^FINAL [3-6]"
check "the misnamed gateway got no INVITE" \
	bash -c "! grep -q CALLED '$DIR/gw3b.out'"
check "tollgate says why" \
	grep -q "server certificate refused.*IP address mismatch" "$TG_LOG"
wait "$GW"

echo "# 5. garbage on the TLS port does not disturb calls"
peer gw4 gateway --listen 127.0.1.53:5061 --cert "$DIR/gw.pem" \
	--key "$DIR/gw.key" --bye caller
GW=$PEER_PID
wait_line "$DIR/gw4.out" LISTENING 5 "$GW"
caller c5 7712347 caller 3 &
C5=$!
wait_line "$DIR/gw4.out" ANSWERED 5 "$GW"
python3 -B "$PEER" garbage --server 127.0.1.50:5061 --bind 127.0.1.54 \
	>"$DIR/garbage.out" 2>&1 </dev/null
check "the garbage was sent" has garbage "GARBAGE-SENT 4"
wait "$C5"
equal "the call during the garbage ends well" "$?" 0
check "its BYE reached the gateway" has gw4 "BYE-RECEIVED"
wait "$GW"
check "tollgate still runs" pid_ours "$TG_PID"

peer gw5 gateway --listen 127.0.1.53:5061 --cert "$DIR/gw.pem" \
	--key "$DIR/gw.key" --bye caller
GW=$PEER_PID
wait_line "$DIR/gw5.out" LISTENING 5 "$GW"
caller c6 7712348 caller
check "the next TLS call works" has c6 ENDED
wait "$GW"
equal "CDRs of every answered call" \
	"$(sql "SELECT count(*) FROM cdrs WHERE reason IN ('caller', 'callee')")" 5

pid_stop "$TG_PID" 30
equal "tollgate exits 0 on SIGTERM" "$?" 0
TG_PID=

summary
