#!/usr/bin/env bash
# Control of a cluster over the REST API: two tollgate nodes on one
# PostgreSQL (tests/lib/pgtest.sh), SIPp callers straight to each node,
# one SIPp gateway for both.  Every request goes to node A; the calls it
# acts on run on node B (and on A).
#
#   list     GET /v1/calls on A lists B's call with its node; scope=local
#            does not; node= filters; bad limit, cursor, node, scope: 400
#            naming the field
#   forged   NOTIFY tollgate_control from psql with malformed payloads:
#            counted as bad on both nodes, the call goes on; well-formed
#            ones for another node or no call end nothing either
#   delete   DELETE /v1/calls/{id} to A of B's call: 202 naming node B,
#            BYE on both legs (reason admin), CDR admin written by B;
#            an unknown id: 404
#   paging   7 calls on A and B, pages of 2 over every node: each call
#            exactly once, next_cursor null at the end
#   block    PATCH status blocked on A: the 7 calls end on both nodes,
#            BYE both legs with Q.850 cause 21, CDR reason admin
#   credit   credit set to 0 on A: B's call ends (BYE both legs, cause
#            16 "credit set to zero"), CDR reason credit
#   health   /v1/health on A lists both nodes alive with their SIP and
#            API addresses and leases; /metrics carries tollgate_node_info
#   partial  the database stops: GET /v1/calls on A answers A's calls,
#            "partial": true
#
# Addresses (only 127.0.3.30-49): nodes A 127.0.3.31 and B 127.0.3.32
# (SIP 5060, API 8080), callers 127.0.3.40, the gateway 127.0.3.45:5080.
#
# make check runs it from the top build directory with top_srcdir,
# top_builddir and SIPP in the environment.  Prints "N passed, M failed".
# CT_KEEP=1 keeps the logs; CT_TG=CMD runs the nodes with CMD (given the
# daemon's arguments) instead of the built tollgate, e.g. under valgrind.
set -u

here=$(cd "$(dirname "$0")" && pwd)
: "${top_srcdir:=$(cd "$here/../.." && pwd)}"
: "${top_builddir:=$PWD}"
: "${SIPP:=$(command -v sipp || true)}"
export top_srcdir top_builddir

if [ ! -x "${CT_TG:-$top_builddir/tollgate}" ]; then
	echo "control.sh: $top_builddir/tollgate not built" >&2
	exit 99
fi
if [ -z "$SIPP" ]; then
	echo "control.sh: sipp not found" >&2
	exit 77
fi

TEST_KEEP=${CT_KEEP:-}
# shellcheck source=../lib/check.sh
. "$top_srcdir/tests/lib/check.sh"
# shellcheck source=../lib/pgtest.sh
. "$top_srcdir/tests/lib/pgtest.sh"
# shellcheck source=lib.sh
. "$here/lib.sh"
test_init control || exit 99
pgtest_start || exit 99

D=$TEST_DIR
# CT_TG: a command that runs the daemon instead (a valgrind wrapper)
TG=${CT_TG:-"$top_builddir/tollgate"}
CALLER_IP=127.0.3.40
GW_IP=127.0.3.45
ADMIN=control-admin-secret
RATE=1000                       # micro-units a second (rate of prefix 1)
FUNDS=$((3600 * RATE))          # an hour: no call ends by its money here
declare -A IP=([A]=127.0.3.31 [B]=127.0.3.32)
declare -A NODE_PID=()
SIPP_PORT=5061

sql "INSERT INTO rate_plans (name) VALUES ('control');
     INSERT INTO rates (rate_plan_id, prefix, connect_fee, price_per_minute,
			initial_increment, subsequent_increment)
     SELECT id, '1', 0, $((RATE * 60)), 1, 1 FROM rate_plans
      WHERE name = 'control'" >/dev/null || exit 99

# acct NAME: a funded account with digest credentials (password NAME-pw);
# prints its id
acct() {
	sql "INSERT INTO accounts (name, balance, max_calls, rate_plan_id,
			       sip_username, sip_ha1)
	     VALUES ('$1', $FUNDS, 20,
		     (SELECT id FROM rate_plans WHERE name = 'control'),
		     '$1', md5('$1:tollgate:$1-pw')) RETURNING id" | head -n 1
}

# node_start N: configure and start node N (A or B), wait until it
# listens for account changes and control messages
node_start() {
	local n=$1 ip=${IP[$1]} rc ports=31000-31999
	[ "$n" = B ] && ports=32000-32999
	mkdir -p "$D/state$n"
	cat >"$D/node$n.conf" <<CONF
sip_listen udp:$ip:5060
digest_auth yes
auth_fail_limit 0
gateway gw $GW_IP:5080
route default gw
ring_timeout 30
db_conninfo $PGTEST_CONNINFO application_name=node$n
node_name node$n
state_dir $D/state$n
rtp_addr $ip
rtp_ports $ports
media_timeout 0
reserve_interval 60
low_balance_warning 0
heartbeat 1
shutdown_grace 1
api_listen $ip:8080
api_token $ADMIN admin
log_level info
CONF
	node_launch "node$n" 30 "listening for control" "listening for account"
	rc=$?
	NODE_PID[$n]=$LAUNCHED_PID
	return $rc
}

# calls NAME NODE ACCOUNT COUNT: COUNT calls of ACCOUNT to NODE, in the
# background, each waiting for its BYE (60 s at most); sets SIPP_PID
calls() {
	local name=$1 ip=${IP[$2]}
	: >"$D/$name.log"
	"$SIPP" -nostdin -i "$CALLER_IP" -p "$SIPP_PORT" \
		-sf "$here/control-caller.xml" -trace_logs \
		-log_file "$D/$name.log" -trace_err -error_file "$D/$name.err" \
		-s 1100 -au "$3" -ap "$3-pw" -auth_uri "1100@$ip:5060" \
		-cid_str "$name-%u@control.test" -m "$4" -l "$4" -r 20 \
		-timeout 60 -timeout_error "$ip:5060" \
		>"$D/$name.out" 2>&1 </dev/null &
	SIPP_PID=$!
	pid_remember "$SIPP_PID"
	SIPP_PORT=$((SIPP_PORT + 1))
}

# api N: the node whose API req talks to
api() { API="http://${IP[$1]}:8080"; }

# wait_count SECONDS FILE REGEX WANT: until FILE has WANT matching lines
wait_count() {
	local i
	for ((i = 0; i < $1 * 10; i++)); do
		[ "$(grep -cE "$3" "$2" 2>/dev/null)" -ge "$4" ] && return 0
		sleep 0.1
	done
	return 1
}

# live ACCOUNT [NODE]: live calls of the account (on NODE)
live() {
	sql "SELECT count(*) FROM live_calls l JOIN accounts a
	      ON a.id = l.account_id WHERE a.name = '$1'
	       AND l.node LIKE '${2:-%}'"
}

# metric N NAME: a value of node N's /metrics ("" if absent)
metric() {
	curl -s -m 5 -H "Authorization: Bearer $ADMIN" \
		"http://${IP[$1]}:8080/metrics" |
		awk -v m="$2" '$1 == m { print $2 }'
}

# pyget EXPR: evaluate a Python expression on the JSON of BODY (as j)
pyget() {
	python3 -c 'import json,sys
j=json.loads(sys.argv[1])
print(eval(sys.argv[2]))' "$BODY" "$1" 2>/dev/null
}

node_start A || exit 99
node_start B || exit 99

: >"$D/gw.log"
"$SIPP" -nostdin -i "$GW_IP" -p 5080 \
	-sf "$here/control-gw.xml" -trace_logs \
	-log_file "$D/gw.log" -trace_err -error_file "$D/gw.err" \
	>"$D/gw.out" 2>&1 </dev/null &
GW_PID=$!
pid_remember "$GW_PID"
wait_bound udp "$GW_IP" 5080 10 "$GW_PID" || exit 99


# ---------------------------------------------------------------- list
echo "# one call on B, listed by A"
DEL_ID=$(acct del)
calls del B del 1
DEL_PID=$SIPP_PID
wait_count 10 "$D/del.log" '^ANSWER' 1 &&
	wait_sql 5 "SELECT count(*) FROM live_calls l JOIN accounts a
		    ON a.id = l.account_id WHERE a.name = 'del'" 1
equal "B's call is answered and in live_calls on nodeB" "$(live del nodeB)" 1
CID=$(sql "SELECT l.call_id FROM live_calls l JOIN accounts a
	    ON a.id = l.account_id WHERE a.name = 'del'")

api A
req GET "/v1/calls?account=del"
equal "A lists one call of the account" "$CODE $(jget count)" "200 1"
equal "it is B's call, with its node" \
	"$(jget calls.0.id) $(jget calls.0.node)" "$CID nodeB"
equal "its account and the node's lease" \
	"$(jget calls.0.account) $(jget calls.0.node_alive)" "del True"
equal "a complete answer" "$(jget partial) $(jget next_cursor)" \
	"False null"
req GET "/v1/calls?account=$DEL_ID&scope=local"
equal "scope=local on A: not there" "$CODE $(jget count)" "200 0"
req GET "/v1/calls?account=del&node=nodeA"
equal "node=nodeA: not there" "$CODE $(jget count)" "200 0"
req GET "/v1/calls?account=del&node=nodeB"
equal "node=nodeB: there" "$CODE $(jget count) $(jget calls.0.id)" \
	"200 1 $CID"
api B
req GET "/v1/calls?account=del"
equal "B shows its own call as it knows it (state, money)" \
	"$(jget calls.0.node) $(jget calls.0.state) $(jget calls.0.sip_call_id)" \
	"nodeB confirmed del-1@control.test"

api A
for bad in "limit=0" "limit=1001" "limit=x" "limit=" "cursor=zz" \
	   "cursor=6e6f6465.4" "cursor=6E6F.41" "cursor=." "cursor=6e6f6465" \
	   "cursor=6e00.41" "node=bad!node" \
	   "node=$(printf 'n%.0s' $(seq 1 64))" "scope=world"; do
	req GET "/v1/calls?$bad"
	equal "GET /v1/calls?$bad: 400 naming ${bad%%=*}" \
		"$CODE $(jget field)" "400 ${bad%%=*}"
done


# -------------------------------------------------------------- forged
echo "# forged control messages"
bad_a=$(metric A 'tollgate_control_messages_total{result="bad"}')
bad_b=$(metric B 'tollgate_control_messages_total{result="bad"}')
other_b=$(metric B 'tollgate_control_messages_total{result="other_node"}')
nocall_b=$(metric B 'tollgate_control_messages_total{result="no_call"}')
FORGED=0
for p in "" "end" "end nodeB" "end nodeB $CID extra" "END nodeB $CID" \
	 "end  nodeB $CID" "end nodeB $CID " "end * $CID" \
	 "end nodeB ../$CID" "end nodeB $CID;x" \
	 "end nodeB $(printf 'a%.0s' $(seq 1 64))" \
	 "end $(printf 'n%.0s' $(seq 1 64)) $CID" \
	 "cut * 0 block" "cut * 01x block" "cut * -$DEL_ID block" \
	 "cut * $DEL_ID unblock" "cut * $DEL_ID" "cut ** $DEL_ID block" \
	 "cut * 1234567890123456789 block" "kill nodeB $CID" \
	 "end nodeB é$CID"; do
	sql "SELECT pg_notify('tollgate_control', \$p\$$p\$p\$)" >/dev/null
	FORGED=$((FORGED + 1))
done
sql "SELECT pg_notify('tollgate_control', E'end nodeB $CID\\nx')" >/dev/null
FORGED=$((FORGED + 1))
# well formed, but for another node or for no call of B
sql "SELECT pg_notify('tollgate_control', 'end nodeZ $CID')" >/dev/null
sql "SELECT pg_notify('tollgate_control', 'end nodeB 0123456789abcdef')" \
	>/dev/null
sleep 1
equal "B counted every malformed message" \
	"$(metric B 'tollgate_control_messages_total{result="bad"}')" \
	"$((bad_b + FORGED))"
equal "A counted them too" \
	"$(metric A 'tollgate_control_messages_total{result="bad"}')" \
	"$((bad_a + FORGED))"
equal "B ignored the message for nodeZ" \
	"$(metric B 'tollgate_control_messages_total{result="other_node"}')" \
	"$((other_b + 1))"
equal "B found no call for the unknown id" \
	"$(metric B 'tollgate_control_messages_total{result="no_call"}')" \
	"$((nocall_b + 1))"
equal "the call goes on" "$(live del nodeB) $(grep -c '^BYE' "$D/del.log")" \
	"1 0"
check "the nodes log the malformed messages" \
	grep -q "malformed control message ignored" "$D/nodeB.log"
check "node B still answers" curl -sf -m 5 -o /dev/null \
	-H "Authorization: Bearer $ADMIN" "http://${IP[B]}:8080/v1/health"


# -------------------------------------------------------------- delete
echo "# DELETE of B's call sent to A"
sent_a=$(metric A tollgate_control_sent_total)
gw_admin=$(grep -c '^BYE .*cause=200;' "$D/gw.log")
api A
req DELETE "/v1/calls/$CID"
equal "202 naming the call and node B" \
	"$CODE $(jget call_id) $(jget node)" "202 $CID nodeB"
wait "$DEL_PID"; rc=$?
equal "the caller got its BYE and ended cleanly" "$rc" 0
check "the caller's BYE says ended by operator" \
	grep -q '^BYE del-1@control.test cause=200;text="ended by operator"' \
	"$D/del.log"
wait_count 5 "$D/gw.log" '^BYE .*cause=200;' $((gw_admin + 1))
equal "the gateway got its BYE" \
	"$(grep -c '^BYE .*cause=200;' "$D/gw.log")" $((gw_admin + 1))
wait_sql 10 "SELECT count(*) FROM cdrs WHERE call_id = '$CID'" 1
equal "CDR admin, settled by B" \
	"$(sql "SELECT reason, settled_by FROM cdrs WHERE call_id = '$CID'")" \
	"admin|nodeB"
equal "A counted one control message sent" \
	"$(metric A tollgate_control_sent_total)" $((sent_a + 1))
req DELETE "/v1/calls/$CID"
equal "DELETE again: 404" "$CODE $(jget field)" "404 id"
req DELETE /v1/calls/0123456789abcdef
equal "DELETE of an unknown id: 404" "$CODE $(jget field)" "404 id"
req DELETE "/v1/calls/bad%20id"
equal "DELETE of an id with other characters: 404" "$CODE" 404


# -------------------------------------------------------------- paging
echo "# 7 calls on A and B, pages of 2"
PAGE_ID=$(acct page)
calls pageA A page 4
PAGE_A=$SIPP_PID
calls pageB B page 3
PAGE_B=$SIPP_PID
wait_count 15 "$D/pageA.log" '^ANSWER' 4
wait_count 15 "$D/pageB.log" '^ANSWER' 3
wait_sql 5 "SELECT count(*) FROM live_calls WHERE account_id = $PAGE_ID" 7
equal "7 live calls, 4 on A, 3 on B" \
	"$(live page) $(live page nodeA) $(live page nodeB)" "7 4 3"
api A
: >"$D/pages"
cursor=
pages=0
while [ $pages -lt 10 ]; do
	req GET "/v1/calls?account=page&limit=2${cursor:+&cursor=$cursor}"
	[ "$CODE" = 200 ] || break
	pages=$((pages + 1))
	pyget '"\n".join(c["id"] + " " + c["node"] for c in j["calls"])' \
		>>"$D/pages"
	cursor=$(jget next_cursor)
	[ "$cursor" = null ] && break
	equal "page $pages holds 2 calls" "$(jget count)" 2
done
equal "4 pages, the last one ends the list" "$pages $cursor" "4 null"
equal "every call exactly once" \
	"$(cut -d' ' -f1 "$D/pages" | sort | uniq | wc -l) $(wc -l <"$D/pages")" \
	"7 7"
equal "the ids are those of live_calls" \
	"$(cut -d' ' -f1 "$D/pages" | sort | tr '\n' ' ')" \
	"$(sql "SELECT call_id FROM live_calls WHERE account_id = $PAGE_ID
		ORDER BY call_id" | sort | tr '\n' ' ')"
equal "each with its node" \
	"$(grep -c ' nodeA$' "$D/pages") $(grep -c ' nodeB$' "$D/pages")" "4 3"
req GET "/v1/calls?account=page&node=nodeB&limit=1000"
equal "node=nodeB: B's 3" "$CODE $(jget count) $(pyget \
	'sorted(set(c["node"] for c in j["calls"]))')" "200 3 ['nodeB']"
req GET "/v1/calls?account=page&scope=local"
equal "scope=local on A: A's 4, the old answer" \
	"$CODE $(jget count) $(pyget '"partial" in j')" "200 4 False"


# --------------------------------------------------------------- block
echo "# block the account on A: its calls end on both nodes"
gw_block=$(grep -c '^BYE .*cause=21;' "$D/gw.log")
req PATCH "/v1/accounts/$PAGE_ID" '{"status": "blocked"}'
equal "PATCH blocked on A: 200" "$CODE $(jget status)" "200 blocked"
wait "$PAGE_B"; rc=$?
equal "B's callers got their BYE" "$rc" 0
wait "$PAGE_A"; rc=$?
equal "A's callers got their BYE" "$rc" 0
equal "every caller's BYE: Q.850 cause 21 account blocked" \
	"$(cat "$D/pageA.log" "$D/pageB.log" |
	   grep -c '^BYE .*cause=21;text="account blocked"')" 7
wait_count 5 "$D/gw.log" '^BYE .*cause=21;' $((gw_block + 7))
equal "the gateway got 7 BYEs with cause 21" \
	"$(grep -c '^BYE .*cause=21;' "$D/gw.log")" $((gw_block + 7))
wait_sql 10 "SELECT count(*) FROM cdrs WHERE account_id = $PAGE_ID" 7
equal "7 CDRs admin: 4 settled by A, 3 by B" \
	"$(sql "SELECT reason, settled_by, count(*) FROM cdrs
		 WHERE account_id = $PAGE_ID GROUP BY 1, 2 ORDER BY 2")" \
	"admin|nodeA|4
admin|nodeB|3"
equal "no live call of the account" "$(live page)" 0


# -------------------------------------------------------------- credit
echo "# credit set to 0 on A: B's call ends"
CRED_ID=$(acct cred)
calls cred B cred 1
CRED_PID=$SIPP_PID
wait_count 10 "$D/cred.log" '^ANSWER' 1
wait_sql 5 "SELECT count(*) FROM live_calls WHERE account_id = $CRED_ID" 1
equal "the call runs on B" "$(live cred nodeB)" 1
gw_cred=$(grep -c '^BYE .*cause=16;text="credit set to zero"' "$D/gw.log")
api A
req POST "/v1/accounts/$CRED_ID/credit" '{"op": "set", "amount": "0"}'
equal "credit set 0 on A: 200, none of A's calls cut" \
	"$CODE $(jget calls_cut)" "200 0"
wait "$CRED_PID"; rc=$?
equal "the caller got its BYE" "$rc" 0
check "with Q.850 cause 16, credit set to zero" \
	grep -q '^BYE cred-1@control.test cause=16;text="credit set to zero"' \
	"$D/cred.log"
wait_count 5 "$D/gw.log" '^BYE .*cause=16;text="credit set to zero"' \
	$((gw_cred + 1))
equal "the gateway got its BYE too" \
	"$(grep -c '^BYE .*cause=16;text="credit set to zero"' "$D/gw.log")" \
	$((gw_cred + 1))
wait_sql 10 "SELECT count(*) FROM cdrs WHERE account_id = $CRED_ID" 1
equal "CDR credit, settled by B" \
	"$(sql "SELECT reason, settled_by FROM cdrs
		 WHERE account_id = $CRED_ID")" "credit|nodeB"


# -------------------------------------------------------------- health
echo "# health and metrics"
api A
req GET /v1/health
equal "health: 200, this node is nodeA" "$CODE $(jget node)" "200 nodeA"
equal "both nodes listed, alive, not draining" \
	"$(pyget '" ".join("%s:%s:%s:%s" % (n["name"], n["alive"],
		n["draining"], n["api_addr"]) for n in j["nodes"])')" \
	"nodeA:True:False:${IP[A]}:8080 nodeB:True:False:${IP[B]}:8080"
equal "each with its SIP address, when it started, its lease" \
	"$(pyget '" ".join("%s:%s:%s" % (n["sip_addr"], bool(n["started"]),
		bool(n["lease_until"])) for n in j["nodes"])')" \
	"udp:${IP[A]}:5060:True:True udp:${IP[B]}:5060:True:True"
equal "A's /metrics names node A" \
	"$(metric A 'tollgate_node_info{node="nodeA"}')" 1
equal "B's /metrics names node B" \
	"$(metric B 'tollgate_node_info{node="nodeB"}')" 1


# ------------------------------------------------------------- partial
echo "# the database stops: A answers its own calls, partial"
acct part >/dev/null
calls part A part 1
PART_PID=$SIPP_PID
wait_count 10 "$D/part.log" '^ANSWER' 1
"$PGTEST_CLUSTER" stop "$PGTEST_DIR" >>"$D/pgstop.log" 2>&1
sleep 2
req GET "/v1/calls?account=part"
equal "200, A's call, partial" \
	"$CODE $(jget count) $(jget partial) $(jget calls.0.node)" \
	"200 1 True nodeA"
req GET "/v1/calls?account=part&node=nodeB"
equal "node=nodeB: none, partial" \
	"$CODE $(jget count) $(jget partial)" "200 0 True"
req GET "/v1/calls?account=part&scope=local"
equal "scope=local: the old answer" "$CODE $(jget count)" "200 1"
pid_stop "$PART_PID" 2 >/dev/null

summary
