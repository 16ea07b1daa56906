#!/usr/bin/env bash
# Three tollgate nodes behind Kamailio's dispatcher
# (contrib/kamailio/tollgate-dispatcher.cfg), on one PostgreSQL
# (tests/lib/pgtest.sh).  Callers reach the nodes only through Kamailio
# and authenticate with digest end to end (the nodes challenge, Kamailio
# relays the 407); every node sends its calls to one SIPp gateway.
#
#   spread   one account funded for exactly 60 s, 12 concurrent calls
#            spread over the three nodes by the hash of their Call-ID:
#            every node carries at least one, the costs add up to the
#            funding, the balance ends at exactly 0, no call talks longer
#            than it paid for, every node cuts on time, the ledger agrees
#   drain    POST /v1/node/drain to node 1 while it carries calls: 202
#            with their number, nodes.draining, /v1/health and /metrics
#            say so, its OPTIONS answer is 503, Kamailio's probe takes it
#            out and new calls all land on nodes 2 and 3 (none fails),
#            its running calls go on to their end, then it exits 0
#   restart  node 1 comes back: nodes.draining is false again and the
#            probe brings it back into the set
#   kill     SIGKILL of node 2 while it carries answered calls (made to
#            it directly): within lease + heartbeat one surviving node
#            settles them (reason recovered, settled_by node 1 or 3,
#            charged up to node 2's last moment alive); new calls go to
#            nodes 1 and 3, none
#            fails (those that reach node 2 before the probe notices time
#            out and the failure route sends them to the next node)
#   sigterm  SIGTERM drains node 3 (OPTIONS 503, its calls run to their
#            end, then it exits 0); a second SIGTERM to node 1 ends its
#            calls at once (BYE, reason shutdown) and it exits 0
#
# Addresses (only 127.0.3.50-79): Kamailio 127.0.3.50:5060, nodes
# 127.0.3.51-53 (SIP 5060, API 8080), callers 127.0.3.60, the gateway
# 127.0.3.70:5080, OPTIONS probes of the test from 127.0.3.61.
#
# make check runs it from the top build directory with top_srcdir,
# top_builddir and SIPP in the environment.  Prints "N passed, M failed".
set -u

here=$(cd "$(dirname "$0")" && pwd)
: "${top_srcdir:=$(cd "$here/../.." && pwd)}"
: "${top_builddir:=$PWD}"
: "${SIPP:=$(command -v sipp || true)}"
: "${KAMAILIO:=$(command -v kamailio || echo /usr/sbin/kamailio)}"
export top_srcdir top_builddir

if [ ! -x "$top_builddir/tollgate" ]; then
	echo "dispatcher.sh: $top_builddir/tollgate not built" >&2
	exit 99
fi
if [ -z "$SIPP" ] || [ ! -x "$KAMAILIO" ]; then
	echo "dispatcher.sh: sipp or kamailio not found" >&2
	exit 77
fi

TEST_KEEP=${CT_KEEP:-}
# shellcheck source=../lib/check.sh
. "$top_srcdir/tests/lib/check.sh"
# shellcheck source=../lib/pgtest.sh
. "$top_srcdir/tests/lib/pgtest.sh"
# shellcheck source=lib.sh
. "$here/lib.sh"
test_init cluster || exit 99
pgtest_start || exit 99

D=$TEST_DIR
TG="$top_builddir/tollgate"
KAM_IP=127.0.3.50
CALLER_IP=127.0.3.60
GW_IP=127.0.3.70
ADMIN=cluster-admin-secret
RATE=20000                      # micro-units a second (rate of prefix 1)
NODE_PID=()
KAM_PID=

sql "INSERT INTO rate_plans (name) VALUES ('cluster');
     INSERT INTO rates (rate_plan_id, prefix, connect_fee, price_per_minute,
			initial_increment, subsequent_increment)
     SELECT id, '1', 0, $((RATE * 60)), 1, 1 FROM rate_plans
      WHERE name = 'cluster'" >/dev/null || exit 99

# acct NAME BALANCE MAX_CALLS: an account with digest credentials
# (password NAME-pw)
acct() {
	sql "INSERT INTO accounts (name, balance, max_calls, rate_plan_id,
			       sip_username, sip_ha1)
	     VALUES ('$1', $2, $3,
		     (SELECT id FROM rate_plans WHERE name = 'cluster'),
		     '$1', md5('$1:tollgate:$1-pw'))" >/dev/null
}

# node_conf N: the configuration of node N
node_conf() {
	local n=$1 ip=127.0.3.5$1
	mkdir -p "$D/state$n"
	cat >"$D/node$n.conf" <<CONF
sip_listen udp:$ip:5060
digest_auth yes
# every caller comes from Kamailio's address: its limits are the proxy's,
# and a failed digest blocks the user name, not the proxy
limit_invite_per_source 1000 2000
limit_requests_per_source 2000 4000
auth_fail_limit 0
gateway gw $GW_IP:5080
route default gw
ring_timeout 30
db_conninfo $PGTEST_CONNINFO application_name=node$n
node_name node$n
state_dir $D/state$n
rtp_addr $ip
rtp_ports ${n}0000-${n}0999
media_timeout 0
reserve_interval 60
low_balance_warning 0
heartbeat 1
shutdown_grace 60
api_listen $ip:8080
api_token $ADMIN admin
log_level info
CONF
}

# node_start N: start node N, wait until it takes calls
node_start() {
	local n=$1 rc
	node_launch "node$n" 10 "listening for account"
	rc=$?
	NODE_PID[$n]=$LAUNCHED_PID
	return $rc
}

# sipp_run NAME SCENARIO [ARGS...]: a caller toward Kamailio, in the
# background; sets SIPP_PID
sipp_run() {
	local name=$1 sf=$2
	shift 2
	: >"$D/$name.log"
	"$SIPP" -nostdin -i "$CALLER_IP" -sf "$here/$sf" -trace_logs \
		-log_file "$D/$name.log" -trace_err -error_file "$D/$name.err" \
		-s 1100 -auth_uri "1100@$KAM_IP:5060" \
		-cid_str "$name-%u@cluster.test" -timeout_error "$@" \
		"$KAM_IP:5060" \
		>"$D/$name.out" 2>&1 </dev/null &
	SIPP_PID=$!
	pid_remember "$SIPP_PID"
}

# options IP: the status code of an OPTIONS outside a dialog to IP:5060
# stray_bye: the status code of a BYE with a To tag, routed through
# Kamailio toward an address that is no node
options() { sip_status OPTIONS "$1" "sip:$1:5060" ""; }
stray_bye() {
	sip_status BYE "$KAM_IP" "sip:victim@127.0.3.79:5060" \
		"Route: <sip:$KAM_IP:5060;lr>\r\n"
}

# sip_status METHOD IP R-URI EXTRA: send one request, print the code
sip_status() {
	python3 - "$@" <<'PY'
import socket, sys
meth, ip, ruri, extra = sys.argv[1:5]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.3.61", 0))
s.settimeout(2)
port = s.getsockname()[1]
totag = ";tag=stray" if meth != "OPTIONS" else ""
msg = ("%s %s SIP/2.0\r\n"
       "Via: SIP/2.0/UDP 127.0.3.61:%d;branch=z9hG4bK-probe%d\r\n"
       "%s"
       "From: <sip:probe@127.0.3.61>;tag=probe\r\n"
       "To: <%s>%s\r\n"
       "Call-ID: probe-%d@127.0.3.61\r\n"
       "CSeq: 1 %s\r\n"
       "Max-Forwards: 70\r\n"
       "Content-Length: 0\r\n\r\n") % (meth, ruri, port, port,
                                        extra.replace("\\r\\n", "\r\n"),
                                        ruri, totag, port, meth)
s.sendto(msg.encode(), (ip, 5060))
try:
    d = s.recv(4096).decode(errors="replace")
    print(d.split(" ")[1])
except socket.timeout:
    print("none")
PY
}

# node_cdrs N [RUN]: CDRs node N wrote (of account RUN's calls)
node_cdrs() {
	sql "SELECT count(*) FROM cdrs c JOIN accounts a ON a.id = c.account_id
	      WHERE c.settled_by = 'node$1' AND a.name LIKE '${2:-%}'"
}

# wait_count SECONDS FILE REGEX WANT: until FILE has WANT matching lines
wait_count() {
	local i
	for ((i = 0; i < $1 * 10; i++)); do
		[ "$(grep -cE "$3" "$4" 2>/dev/null)" -ge "$2" ] 2>/dev/null &&
			return 0
		sleep 0.1
	done
	return 1
}


for n in 1 2 3; do
	node_conf $n
	node_start $n || exit 99
done

cat >"$D/dispatcher.list" <<EOF2
1 sip:127.0.3.51:5060 0 0 duid=node1
1 sip:127.0.3.52:5060 0 0 duid=node2
1 sip:127.0.3.53:5060 0 0 duid=node3
EOF2

# Kamailio in the foreground (-DD), logging to stderr, run-time files in
# the test's directory; a probe a second, one failure takes a node out,
# one success brings it back, a node silent for 1 s is given up
mkdir -p "$D/kamailio"
"$KAMAILIO" -f "$top_srcdir/contrib/kamailio/tollgate-dispatcher.cfg" \
	-DD -E -m 64 -M 8 -Y "$D/kamailio" -w "$D/kamailio" \
	-A "LISTEN=udp:$KAM_IP:5060" -A "DS_LIST=\"$D/dispatcher.list\"" \
	-A DS_PING_INTERVAL=1 -A DS_PROBING_THRESHOLD=1 \
	-A DS_INACTIVE_THRESHOLD=1 -A FR_TIMER=1000 -A CHILDREN=2 \
	>"$D/kamailio.log" 2>&1 </dev/null &
KAM_PID=$!
pid_remember "$KAM_PID"
if ! wait_bound udp "$KAM_IP" 5060 10 "$KAM_PID"; then
	echo "kamailio did not come up:" >&2
	tail -n 20 "$D/kamailio.log" >&2
	exit 99
fi
sleep 1.5

: >"$D/gw.log"
"$SIPP" -nostdin -i "$GW_IP" -p 5080 \
	-sf "$here/gw.xml" -trace_logs \
	-log_file "$D/gw.log" -trace_err -error_file "$D/gw.err" \
	>"$D/gw.out" 2>&1 </dev/null &
GW_PID=$!
pid_remember "$GW_PID"
wait_bound udp "$GW_IP" 5080 10 "$GW_PID" || exit 99
equal "Kamailio relays no in-dialog request between strangers" \
	"$(stray_bye)" 403


# --------------------------------------------------------------- spread
echo "# 12 calls of one account funded for 60 s, over three nodes"
FUND=$((60 * RATE))
acct fund "$FUND" 12
sipp_run spread caller.xml -p 5061 -au fund -ap fund-pw \
	-m 12 -l 12 -r 20 -timeout 60
wait "$SIPP_PID"; rc=$?
equal "all 12 calls went through the dispatcher (none failed)" "$rc" 0
equal "12 calls answered" "$(grep -c '^ANSWER' "$D/spread.log")" 12
equal "12 BYEs with the credit Reason" \
	"$(grep -c '^BYE .*cause=16' "$D/spread.log")" 12
wait_sql 10 "SELECT count(*) FROM cdrs c JOIN accounts a
	     ON a.id = c.account_id WHERE a.name = 'fund'" 12
equal "12 CDRs, all credit, costs add up to the funding" \
	"$(sql "SELECT count(*), min(reason), max(reason), sum(cost)
		FROM cdrs c JOIN accounts a ON a.id = c.account_id
	       WHERE a.name = 'fund'")" "12|credit|credit|$FUND"
equal "balance exactly 0" \
	"$(sql "SELECT balance FROM accounts WHERE name = 'fund'")" 0
for n in 1 2 3; do
	within "node $n carried calls of the account" \
		"$(node_cdrs $n fund)" 1 10
done
equal "every CDR costs its billed seconds" \
	"$(sql "SELECT count(*) FROM cdrs c JOIN accounts a
		ON a.id = c.account_id WHERE a.name = 'fund'
		 AND c.cost <> c.billed_seconds * $RATE")" 0
# the node's own clock: the call ended within 300 ms of the paid time
for n in 1 2 3; do
	equal "node $n cut every call on time" \
		"$(sql "SELECT count(*) FROM cdrs c JOIN accounts a
			ON a.id = c.account_id WHERE a.name = 'fund'
			 AND c.settled_by = 'node$n'
			 AND c.end_at - c.answer_at >
			     c.billed_seconds * interval '1 s'
			     + interval '300 ms'")" 0
done
# the caller's clock: no call talked longer than the longest one paid
maxpaid=$(sql "SELECT max(billed_seconds) * 1000 + 400 FROM cdrs c
	       JOIN accounts a ON a.id = c.account_id WHERE a.name = 'fund'")
over=$(awk -v max="$maxpaid" '
	$1 == "ANSWER" { a[$2] = $3 * 1000 + $4 / 1000 }
	$1 == "BYE" && ($2 in a) && $3 * 1000 + $4 / 1000 - a[$2] > max { n++ }
	END { print n + 0 }' "$D/spread.log")
equal "no call talked past what it paid, seen by the caller" "$over" 0
"$TG" --ledger-check -d "$PGTEST_CONNINFO" >"$D/ledger.out" 2>&1
equal "tollgate --ledger-check agrees" "$?" 0


# ---------------------------------------------------------------- drain
echo "# node 1 drains while it carries calls"
for a in hold after killed; do acct $a $((100000 * RATE)) 100; done
sipp_run hold caller-hangup.xml -p 5062 -au hold -ap hold-pw \
	-m 6 -l 6 -r 10 -d 12000 -timeout 60
HOLD_PID=$SIPP_PID
wait_count 10 6 '^ANSWER' "$D/hold.log" ||
	fail "the 6 held calls were answered"
held=$(sql "SELECT count(*) FROM live_calls WHERE node = 'node1'")
within "node 1 carries held calls" "$held" 1 6

API1=http://127.0.3.51:8080
CODE=$(curl -s -m 5 -o "$D/drain.json" -w '%{http_code}' -X POST \
	-H "Authorization: Bearer $ADMIN" -H "Content-Type: application/json" \
	--data-binary '{"now": true}' "$API1/v1/node/drain")
BODY=$(cat "$D/drain.json")
equal "a drain request with a field is refused (400, naming it)" \
	"$CODE,$(jget field)" "400,now"
BODY=$(curl -s -m 5 -H "Authorization: Bearer $ADMIN" "$API1/v1/health")
equal "and the node does not drain" "$(jget draining)" False
CODE=$(curl -s -m 5 -o "$D/drain.json" -w '%{http_code}' -X POST \
	-H "Authorization: Bearer $ADMIN" "$API1/v1/node/drain")
BODY=$(cat "$D/drain.json")
equal "POST /v1/node/drain answers 202" "$CODE" 202
equal "the answer counts the calls still running" \
	"$(jget draining),$(jget calls)" "True,$held"
check "nodes.draining is set for node 1" wait_sql 5 \
	"SELECT draining FROM nodes WHERE name = 'node1'" t
equal "the other nodes are not draining" \
	"$(sql "SELECT count(*) FROM nodes WHERE draining")" 1
BODY=$(curl -s -m 5 -H "Authorization: Bearer $ADMIN" "$API1/v1/health")
equal "GET /v1/health shows draining" "$(jget draining)" True
check "/metrics: tollgate_draining 1" grep -qx "tollgate_draining 1" \
	<(curl -s -m 5 -H "Authorization: Bearer $ADMIN" "$API1/metrics")
equal "node 1 answers OPTIONS with 503" "$(options 127.0.3.51)" 503
equal "node 2 answers OPTIONS with 200" "$(options 127.0.3.52)" 200
equal "a second drain request changes nothing" \
	"$(curl -s -m 5 -o /dev/null -w '%{http_code}' -X POST \
	   -H "Authorization: Bearer $ADMIN" "$API1/v1/node/drain")" 202
# the probe (1 s) takes node 1 out of the set
sleep 2.5
refused=$(grep -c 'INVITE from .* refused: 503' "$D/node1.log")
sipp_run after caller-hangup.xml -p 5063 -au after \
	-ap after-pw -m 12 -l 12 -r 10 -d 500 -timeout 40
wait "$SIPP_PID"; rc=$?
equal "12 new calls while node 1 drains, none failed" "$rc" 0
equal "12 of them answered" "$(grep -c '^ANSWER' "$D/after.log")" 12
equal "Kamailio sent node 1 no new INVITE after the probe" \
	"$(grep -c 'INVITE from .* refused: 503' "$D/node1.log")" "$refused"
wait_sql 10 "SELECT count(*) FROM cdrs c JOIN accounts a
	     ON a.id = c.account_id WHERE a.name = 'after'" 12
equal "the 12 new calls all landed on nodes 2 and 3" \
	"$(node_cdrs 2 after),$(node_cdrs 3 after)" \
	"$(node_cdrs 2 after),$((12 - $(node_cdrs 2 after)))"
equal "node 1 wrote no CDR yet (its calls still run)" \
	"$(node_cdrs 1 hold)" 0
check "node 1 still runs" kill -0 "${NODE_PID[1]}"
wait "$HOLD_PID"; rc=$?
equal "the held calls ran to their end (the callers hung up)" "$rc" 0
check "node 1 exits once its last call has ended" \
	pid_gone "${NODE_PID[1]}" 10
wait "${NODE_PID[1]}"; rc=$?
equal "node 1 exits 0" "$rc" 0
check "node 1 logged the drain's end" grep -q "all calls ended" \
	"$D/node1.log"
# it settled before it exited
equal "node 1 settled its held calls, ended by the callers" \
	"$(sql "SELECT count(*), min(reason), max(reason),
		       min(billed_seconds) >= 12 FROM cdrs c
		  JOIN accounts a ON a.id = c.account_id
		 WHERE c.settled_by = 'node1' AND a.name = 'hold'")" \
	"$held|caller|caller|t"


# -------------------------------------------------------------- restart
echo "# node 1 comes back"
node_start 1 || exit 99
check "nodes.draining is false again" wait_sql 5 \
	"SELECT draining FROM nodes WHERE name = 'node1'" f
equal "node 1 answers OPTIONS with 200" "$(options 127.0.3.51)" 200
sleep 2.5


# ----------------------------------------------------------------- kill
echo "# node 2 is killed with answered calls; new calls go to nodes 1 and 3"
acct heldkill $((100000 * RATE)) 100
# straight to node 2 (it challenges them itself), held until the test
# ends them
: >"$D/heldkill.log"
"$SIPP" -nostdin -i "$CALLER_IP" -p 5066 -sf "$here/caller-hangup.xml" \
	-trace_logs -log_file "$D/heldkill.log" -trace_err \
	-error_file "$D/heldkill.err" -s 1100 -au heldkill -ap heldkill-pw \
	-auth_uri "1100@127.0.3.52:5060" -cid_str "heldkill-%u@cluster.test" \
	-m 4 -l 4 -r 20 -d 30000 -timeout 40 127.0.3.52:5060 \
	>"$D/heldkill.out" 2>&1 </dev/null &
HELDKILL_PID=$!
pid_remember "$HELDKILL_PID"
wait_count 10 4 '^ANSWER' "$D/heldkill.log" ||
	fail "the 4 held calls on node 2 were answered"
# the heartbeat (1 s) carries their answer times
check "node 2 recorded the 4 answers" wait_sql 5 \
	"SELECT count(*) FROM live_calls l JOIN accounts a
	     ON a.id = l.account_id
	  WHERE a.name = 'heldkill' AND l.node = 'node2'
	    AND l.answer_at IS NOT NULL" 4
sleep 1.2
sql "SELECT call_id FROM live_calls l JOIN accounts a ON a.id = l.account_id
      WHERE a.name = 'heldkill' AND l.node = 'node2'" >"$D/node2.calls"
on2=$(grep -c . "$D/node2.calls")
equal "node 2 carries them" "$on2" 4
ids=$(sed "s/.*/'&'/" "$D/node2.calls" | paste -sd, -)
t_kill=$(date +%s%3N)
kill -KILL "${NODE_PID[2]}"
wait "${NODE_PID[2]}" 2>/dev/null
sipp_run killed caller-hangup.xml -p 5064 -au killed \
	-ap killed-pw -m 12 -l 12 -r 10 -d 500 -timeout 40
wait "$SIPP_PID"; rc=$?
equal "12 calls after the kill, none failed" "$rc" 0
equal "12 of them answered" "$(grep -c '^ANSWER' "$D/killed.log")" 12
wait_sql 10 "SELECT count(*) FROM cdrs c JOIN accounts a
	     ON a.id = c.account_id WHERE a.name = 'killed'" 12
equal "the 12 calls all landed on nodes 1 and 3" \
	"$(node_cdrs 1 killed),$(node_cdrs 2 killed)" \
	"$((12 - $(node_cdrs 3 killed))),0"
# the first calls come before a probe can notice (its own timeout is
# FR_TIMER): those hashed to node 2 went there, timed out, and went on
within "calls that timed out on node 2 and failed over" \
	"$(grep -c 'node sip:127.0.3.52:5060 answered 408' "$D/kamailio.log")" \
	1 12


# node 2's calls: one survivor settled them within lease + heartbeat of
# the kill (the CDRs' commit times)
LEASE_MS=3000                   # node_lease 0: three heartbeats of 1 s
check "a survivor settled node 2's calls" wait_sql 8 \
	"SELECT count(*) FROM cdrs WHERE call_id IN ($ids)" "$on2"
within "within lease + heartbeat of the kill (ms)" \
	"$(sql "SELECT (extract(epoch FROM max(created_at)) * 1000)::bigint
		       - $t_kill FROM cdrs WHERE call_id IN ($ids)")" \
	0 $((LEASE_MS + 1000 + 500))
equal "recovered, settled by node 1 or node 3, one survivor" \
	"$(sql "SELECT count(*), count(DISTINCT settled_by) FROM cdrs
		 WHERE call_id IN ($ids) AND reason = 'recovered'
		   AND settled_by IN ('node1', 'node3')")" "$on2|1"
equal "charged from their answer up to node 2's last moment alive" \
	"$(sql "SELECT count(*) FROM cdrs WHERE call_id IN ($ids)
		   AND billed_seconds >= 1 AND cost = billed_seconds * $RATE
		   AND (extract(epoch FROM end_at) * 1000)::bigint
		       BETWEEN $t_kill - 2000 AND $t_kill + 1000")" "$on2"
equal "node 2 left no live call" \
	"$(sql "SELECT count(*) FROM live_calls WHERE node = 'node2'")" 0
pid_stop "$HELDKILL_PID" 2
"$TG" --ledger-check -d "$PGTEST_CONNINFO" >>"$D/ledger.out" 2>&1
equal "the ledger agrees after the takeover" "$?" 0

# -------------------------------------------------------------- sigterm
echo "# SIGTERM drains node 3; a second SIGTERM ends node 1's calls at once"
acct term $((100000 * RATE)) 100
sipp_run sigterm caller-hangup.xml -p 5065 -au term -ap term-pw \
	-m 8 -l 8 -r 10 -d 5000 -timeout 30
TERM_PID=$SIPP_PID
wait_count 10 8 '^ANSWER' "$D/sigterm.log" ||
	fail "the 8 calls were answered"
on1=$(sql "SELECT count(*) FROM live_calls WHERE node = 'node1'")
on3=$(sql "SELECT count(*) FROM live_calls WHERE node = 'node3'")
within "node 1 carries calls" "$on1" 1 7
within "node 3 carries calls" "$on3" 1 7
kill -TERM "${NODE_PID[3]}" "${NODE_PID[1]}"
sleep 0.5
equal "node 3 answers OPTIONS with 503 after SIGTERM" \
	"$(options 127.0.3.53)" 503
kill -TERM "${NODE_PID[1]}"
check "node 1 exits soon after its second SIGTERM" \
	pid_gone "${NODE_PID[1]}" 8
wait "${NODE_PID[1]}"; rc=$?
equal "node 1 exits 0" "$rc" 0
check "node 3 still runs: its calls go on" kill -0 "${NODE_PID[3]}"
wait "$TERM_PID"
check "node 3 exits once its calls have ended" pid_gone "${NODE_PID[3]}" 10
wait "${NODE_PID[3]}"; rc=$?
equal "node 3 exits 0" "$rc" 0
equal "node 1's calls were ended by the node (shutdown)" \
	"$(sql "SELECT count(*), min(reason), max(reason) FROM cdrs c
		  JOIN accounts a ON a.id = c.account_id
		 WHERE c.settled_by = 'node1' AND a.name = 'term'")" \
	"$on1|shutdown|shutdown"
equal "node 3's calls ran to their end (the callers hung up)" \
	"$(sql "SELECT count(*), min(reason), max(reason),
		       min(billed_seconds) >= 5 FROM cdrs c
		  JOIN accounts a ON a.id = c.account_id
		 WHERE c.settled_by = 'node3' AND a.name = 'term'")" \
	"$on3|caller|caller|t"
equal "no live calls left" "$(sql "SELECT count(*) FROM live_calls
				   WHERE node <> 'node2'")" 0

echo "# a node without calls drains at once"
node_start 3 || exit 99
CODE=$(curl -s -m 5 -o "$D/drain3.json" -w '%{http_code}' -X POST \
	-H "Authorization: Bearer $ADMIN" -H "Content-Type: application/json" \
	--data-binary '{}' http://127.0.3.53:8080/v1/node/drain)
BODY=$(cat "$D/drain3.json")
equal "POST /v1/node/drain {} answers 202, no calls" \
	"$CODE,$(jget calls)" "202,0"
check "node 3 exits at once" pid_gone "${NODE_PID[3]}" 5
wait "${NODE_PID[3]}"; rc=$?
equal "node 3 exits 0" "$rc" 0

"$TG" --ledger-check -d "$PGTEST_CONNINFO" >>"$D/ledger.out" 2>&1
equal "tollgate --ledger-check agrees at the end" "$?" 0

pid_stop "$KAM_PID" 10
equal "kamailio exits on SIGTERM" "$?" 0
pid_stop "$GW_PID"

summary
