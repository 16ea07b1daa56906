#!/usr/bin/env bash
# The torture messages of RFC 4475 section 3 against the real daemon.
#
# Each message of tests/security/rfc4475/ (one file a message, bytes as
# the RFC gives them) goes in one UDP datagram, from an untrusted source
# and from a trusted peer, and must get the class of answer the table
# tests/security/rfc4475/expected names: a well-formed request a
# response, a malformed one a 4xx or silence and never a 2xx, a response
# nothing at all.  The requests libre's decoder refuses are answered by
# tollgate itself (b2bua/rescue.c).  At the end the daemon still answers
# OPTIONS, no call was created, and its log holds no raw control byte.
#
# A private PostgreSQL (tests/lib/pgtest.sh); Python 3 as the sender.
# Addresses: tollgate 127.0.1.60:5060, trusted peer 127.0.1.62, untrusted
# source 127.0.1.63; a gateway that is never reached at 127.0.1.61:5080.
# Every process started here is ended by its PID.
set -u

here=$(cd "$(dirname "$0")" && pwd)
: "${top_srcdir:=$(cd "$here/../.." && pwd)}"
: "${top_builddir:=$PWD}"
export top_srcdir top_builddir

TG="$top_builddir/tollgate"
[ -x "$TG" ] || { echo "rfc4475.sh: $TG not built" >&2; exit 99; }
command -v python3 >/dev/null || { echo "rfc4475.sh: no python3" >&2; exit 77; }

TEST_KEEP=${RFC4475_KEEP:-}
# shellcheck source=../lib/check.sh
. "$top_srcdir/tests/lib/check.sh"
# shellcheck source=../lib/pgtest.sh
. "$top_srcdir/tests/lib/pgtest.sh"
test_init rfc4475 || exit 99
pgtest_start || exit 99

DIR=$TEST_DIR
MSGS=$here/rfc4475
SEND="python3 $here/sipsend.py"
SUT=127.0.1.60:5060

sql "INSERT INTO accounts (name, balance) VALUES ('torture', 100000000)" \
	>/dev/null || exit 99

mkdir -p "$DIR/state"
cat >"$DIR/tg.conf" <<EOF2
sip_listen udp:$SUT
trusted_peer 127.0.1.62 account=torture
gateway gwa 127.0.1.61:5080
route 9 gwa
sip_realm tollgate
digest_auth yes
db_conninfo $PGTEST_CONNINFO
billing no
rtp_relay no
media_timeout 0
state_dir $DIR/state
shutdown_grace 2
log_level debug
EOF2

# start TAG: a fresh daemon (the RFC's messages share branch values, and a
# request that matches a transaction of the last source's is that
# transaction's retransmission)
start() {
	"$TG" -f "$DIR/tg.conf" >"$DIR/tollgate.$1.log" 2>&1 &
	TG_PID=$!
	TG_LOG=$DIR/tollgate.$1.log
	pid_remember "$TG_PID"
	wait_bound udp 127.0.1.60 5060 10 "$TG_PID" && return 0
	echo "rfc4475.sh: tollgate did not come up:" >&2
	tail -n 30 "$TG_LOG" >&2
	exit 99
}

# ping: the final answer to an OPTIONS from the untrusted source
ping() {
	printf 'OPTIONS sip:ping@127.0.1.60 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.1.63;branch=z9hG4bKping%s\r\nFrom: <sip:ping@127.0.1.63>;tag=p1\r\nTo: <sip:ping@127.0.1.60>\r\nCall-ID: ping.%s\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n' "$1" "$1" >"$DIR/ping.sip"
	$SEND 127.0.1.63 "$SUT" 3 "$DIR/ping.sip" | awk '{ print $2 }'
}

# matches CODE EXPECTED: true if the answer CODE is of the class EXPECTED
matches() {
	local code=$1 want alt
	IFS='|' read -r -a want <<<"$2"
	for alt in "${want[@]}"; do
		case $alt in
		silence) [ "$code" = silence ] && return 0 ;;
		final) [ "$code" != silence ] && [ "$code" != garbage ] && return 0 ;;
		non2xx) [ "$code" != silence ] && [ "$code" != garbage ] &&
			[ "$code" -ge 300 ] && return 0 ;;
		[1-6]xx) [ "$code" != silence ] && [ "$code" != garbage ] &&
			[ "${code:0:1}" = "${alt:0:1}" ] && return 0 ;;
		*) [ "$code" = "$alt" ] && return 0 ;;
		esac
	done
	return 1
}

files=()
while read -r name _ _; do
	case $name in ''|'#'*) continue ;; esac
	files+=("$MSGS/$name.sip")
done <"$MSGS/expected"
equal "the table names every message of RFC 4475 section 3" \
	"${#files[@]}" 49

for src in 127.0.1.63 127.0.1.62; do
	case $src in 127.0.1.63) who=untrusted ;; *) who=trusted ;; esac
	echo "# from the $who source $src"
	start "$who"
	timeout 300 $SEND "$src" "$SUT" 1.5 "${files[@]}" >"$DIR/$who.out"
	while read -r name section want; do
		case $name in ''|'#'*) continue ;; esac
		got=$(awk -v n="$name" '$1 == n { print $2 }' "$DIR/$who.out")
		if matches "${got:-none}" "$want"; then
			ok "$who: $name ($section) gets ${got} ($want)"
		else
			fail "$who: $name ($section) gets ${got:-nothing}, want $want"
		fi
	done <"$MSGS/expected"

	equal "$who: tollgate still answers OPTIONS" "$(ping "$who")" 200
	equal "$who: no call was created (none behind dblreq's REGISTER)" \
		"$(grep -c 'INVITE joe from' "$TG_LOG")" 0
	equal "$who: the log holds no raw control byte" \
		"$(LC_ALL=C tr -d '\n' <"$TG_LOG" | LC_ALL=C tr -cd '\000-\037\177' | wc -c)" 0
	pid_stop "$TG_PID" 30
	equal "$who: tollgate exits 0 on SIGTERM" "$?" 0
done

summary
