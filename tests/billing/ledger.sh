#!/usr/bin/env bash
# The money ledger (sql/011_ledger.sql) at the SQL level: a private
# PostgreSQL (tests/lib/pgtest.sh), psql calling the billing functions
# directly, tollgate --ledger-check, and the daemon for the REST API's
# credit_limit.
#
#   back-fill    migration 011 on a schema with accounts, a running and a
#                settled call: the ledger agrees with them from the start
#   rows         authorise, reserve, settle: reservation, refund and
#                call_cost rows; a duplicate settlement changes nothing
#   race         a reservation waiting for the account's lock while its
#                call is settled grants nothing
#   ended        an authorisation after the call's cleanup settlement is
#                'ended' (503) and holds nothing; a retry after a block
#                finds its own reservation
#   late row     a live row that appeared after the call's CDR is refunded
#                by the next settlement, nothing charged twice
#   credit set   set 0 with a running call: the balance stays exactly 0
#                when the call settles (forfeit row); set X: what is
#                reserved after the set comes back
#   postpaid     an account with a credit limit goes down to -limit, no
#                further
#   manual       an UPDATE from psql is a 'manual' row; ledger rows cannot
#                be changed or deleted
#   concurrent   20 psql sessions authorising, reserving, settling and
#                adding credit on one account: no violation, balance =
#                sum of the ledger
#   REST API     credit_limit shown, set at creation and by PATCH, bad
#                values refused naming the field (the daemon on
#                127.0.2.30, the only address this suite uses)
#   --ledger-check  exit 0 on a clean database, 1 with the violation
#                printed after a bogus row, 2 when it cannot connect
#
# make check runs it from the top build directory with top_srcdir and
# top_builddir in the environment.  Prints "N passed, M failed".
set -u

here=$(cd "$(dirname "$0")" && pwd)
: "${top_srcdir:=$(cd "$here/../.." && pwd)}"
: "${top_builddir:=$PWD}"
export top_srcdir top_builddir

TG="$top_builddir/tollgate"
[ -x "$TG" ] || { echo "ledger.sh: $TG not built" >&2; exit 99; }
command -v curl >/dev/null || { echo "ledger.sh: no curl" >&2; exit 77; }

TEST_KEEP=${LEDGER_KEEP:-}
# shellcheck source=../lib/check.sh
. "$top_srcdir/tests/lib/check.sh"
# shellcheck source=../lib/pgtest.sh
. "$top_srcdir/tests/lib/pgtest.sh"
test_init ledger || exit 99
pgtest_start || exit 99

DIR=$TEST_DIR
SETUP=1700000000000

# the violations tg_ledger_check() lists, one line each ("" if none)
violations() { sql "SELECT * FROM tg_ledger_check()"; }
bal() { sql "SELECT balance FROM accounts WHERE id = $1"; }
ledger_sum() { sql "SELECT coalesce(sum(delta), 0) FROM ledger
		    WHERE account_id = $1"; }
# the ledger rows of a call: "kind:delta" in order
call_rows() { sql "SELECT string_agg(kind || ':' || delta, ' ' ORDER BY id)
		   FROM ledger WHERE ref = '$1'"; }
clean() { equal "$1: tg_ledger_check() finds nothing" "$(violations)" ""; }

# authz CALL ACCOUNT [CALLEE]: tg_authorize, "result|sip_code|reserved|
# balance"
authz() {
	sql "SELECT result, sip_code, reserved, balance FROM tg_authorize('$1',
	     'ledger-test', $2, 'caller', '${3:-1000}', NULL, $SETUP, 10)"
}
# reserve CALL SEQ WANT: "granted|reserved|balance"
reserve() { sql "SELECT * FROM tg_reserve('$1', $2, $3)"; }
# settle CALL ACCOUNT COST: "result|refunded|balance"
settle() {
	sql "SELECT * FROM tg_settle_media('$1', $2, 'caller', '1000', NULL,
	     $SETUP, $((SETUP + 1000)), $((SETUP + 9000)), 8, $3, 200,
	     'caller', 'normal', NULL)"
}
# credit ACCOUNT OP AMOUNT [KEY]: "result|balance"
credit() {
	local key=NULL
	[ -n "${4:-}" ] && key="'$4'"
	sql "SELECT * FROM tg_credit($key, $1, '$2', $3, '$1:$2:$3')"
}

# 1 unit a minute, 1 s increments: 10 s cost 0.166667 (10 s interval)
sql "INSERT INTO rate_plans (name) VALUES ('ledger');
     INSERT INTO rates (rate_plan_id, prefix, connect_fee, price_per_minute,
			initial_increment, subsequent_increment)
     SELECT id, '1', 0, 1000000, 1, 1 FROM rate_plans" >/dev/null
PLAN=$(sql "SELECT id FROM rate_plans WHERE name = 'ledger'")
WANT=166667
# acct NAME BALANCE [CREDIT_LIMIT]: a new account, prints its id
acct() {
	sql "INSERT INTO accounts (name, balance, credit_limit, rate_plan_id,
				   max_calls)
	     VALUES ('$1', $2, ${3:-0}, $PLAN, 100) RETURNING id"
}


echo "# back-fill: migration 011 over existing money"
BF=(env PGOPTIONS="-c search_path=bf")
sql "CREATE SCHEMA bf" >/dev/null
bf_ok=true
for f in $(cd "$top_srcdir/sql" && printf '%s\n' [0-9]*_?*.sql | sort -n); do
	[ "$f" = 011_ledger.sql ] && break
	"${BF[@]}" "$PGTEST_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 \
		"$PGTEST_CONNINFO" -1 -f "$top_srcdir/sql/$f" \
		>>"$DIR/bf.log" 2>&1 || bf_ok=false
done
bf() { "${BF[@]}" "$PGTEST_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -At \
	"$PGTEST_CONNINFO" -c "$1" 2>>"$DIR/bf.log"; }
bf "INSERT INTO rate_plans (name) VALUES ('p');
    INSERT INTO rates (rate_plan_id, prefix, price_per_minute,
		       initial_increment, subsequent_increment)
    SELECT id, '1', 1000000, 1, 1 FROM rate_plans;
    INSERT INTO accounts (name, balance, rate_plan_id)
    SELECT n, 1000000, id FROM rate_plans, (VALUES ('x'), ('y'), ('z')) v(n);
    UPDATE accounts SET balance = 0 WHERE name = 'z'" >/dev/null ||
	bf_ok=false
bf "SELECT tg_authorize('bf-live', 'n', 1, 'c', '1000', NULL, $SETUP, 10);
    SELECT tg_authorize('bf-done', 'n', 2, 'c', '1000', NULL, $SETUP, 10);
    SELECT tg_settle_media('bf-done', 2, 'c', '1000', NULL, $SETUP,
	$((SETUP + 1000)), $((SETUP + 5000)), 4, 66667, 200, 'caller',
	'normal', NULL)" >/dev/null || bf_ok=false
"${BF[@]}" "$PGTEST_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 "$PGTEST_CONNINFO" \
	-1 -f "$top_srcdir/sql/011_ledger.sql" >>"$DIR/bf.log" 2>&1 ||
	bf_ok=false
check "migrations 001..011 applied to schema bf" $bf_ok
equal "back-fill: tg_ledger_check() finds nothing" \
	"$(bf "SELECT * FROM tg_ledger_check()")" ""
equal "back-fill: open rows (account z had nothing)" \
	"$(bf "SELECT string_agg(account_id || ':' || delta, ' '
	       ORDER BY account_id) FROM ledger WHERE kind = 'open'")" \
	"1:1000000 2:1000000"
equal "back-fill: the running call's reservation" \
	"$(bf "SELECT kind || ':' || delta FROM ledger WHERE ref = 'bf-live'")" \
	"reservation:-$WANT"
equal "back-fill: the settled call's cost" \
	"$(bf "SELECT kind || ':' || delta FROM ledger WHERE ref = 'bf-done'")" \
	"call_cost:-66667"
equal "back-fill: every balance is the sum of its rows" \
	"$(bf "SELECT count(*) FROM accounts a WHERE balance <> (SELECT
	       coalesce(sum(delta), 0) FROM ledger g
	       WHERE g.account_id = a.id)")" 0
sql "SET client_min_messages = warning; DROP SCHEMA bf CASCADE" >/dev/null


echo "# rows of a call: authorise, reserve, settle"
A=$(acct alice 1000000)
equal "an account opened with 1.00 has its open row" \
	"$(sql "SELECT kind || ':' || delta FROM ledger
		WHERE account_id = $A")" "open:1000000"
equal "authorise: first interval reserved" "$(authz a1 "$A")" \
	"ok|0|$WANT|$((1000000 - WANT))"
equal "reserve 0.05 more" "$(reserve a1 2 50000)" \
	"50000|$((WANT + 50000))|$((1000000 - WANT - 50000))"
equal "a repeated reservation grants nothing" "$(reserve a1 2 50000)" \
	"0|$((WANT + 50000))|$((1000000 - WANT - 50000))"
clean "running call"
equal "settle at 0.133333: the rest comes back" "$(settle a1 "$A" 133333)" \
	"settled|$((WANT + 50000 - 133333))|866667"
equal "the call's rows" "$(call_rows a1)" \
	"reservation:-$WANT reservation:-50000 refund:$((WANT + 50000)) call_cost:-133333"
N=$(sql "SELECT count(*) FROM ledger")
equal "a duplicate settlement changes nothing" "$(settle a1 "$A" 133333)" \
	"duplicate|0|866667"
equal "... and writes no row" "$(sql "SELECT count(*) FROM ledger")" "$N"
equal "a reservation after the settlement grants nothing" \
	"$(reserve a1 3 50000)" "0|0|0"
equal "balance 0.866667" "$(bal "$A")" 866667
clean "settled call"


echo "# race: a reservation waits for the lock while the call settles"
equal "authorise a2" "$(authz a2 "$A" | cut -d'|' -f1)" ok
B0=$(bal "$A")
mkfifo "$DIR/s1"
"$PGTEST_BINDIR/psql" -X -q -At -v ON_ERROR_STOP=1 "$PGTEST_CONNINFO" \
	<"$DIR/s1" >"$DIR/s1.out" 2>&1 &
S1=$!
pid_remember "$S1"
exec 3>"$DIR/s1"
echo "BEGIN; SELECT result FROM tg_settle('a2', $A, 'c', '1000', NULL,
	$SETUP, 0, $SETUP, 0, 0, 487, 'caller', 'cancelled');
	SELECT 'holding';" >&3
wait_line "$DIR/s1.out" '^holding$' 10 "$S1"
timeout 30 "$PGTEST_BINDIR/psql" -X -q -At "$PGTEST_CONNINFO" \
	-c "SELECT * FROM tg_reserve('a2', 2, 50000)" >"$DIR/s2.out" 2>&1 &
S2=$!
pid_remember "$S2"
waiting=0
for _ in $(seq 1 100); do
	waiting=$(sql "SELECT count(*) FROM pg_stat_activity
		       WHERE wait_event_type = 'Lock'
			 AND query LIKE '%tg_reserve(''a2''%'")
	[ "$waiting" = 1 ] && break
	sleep 0.1
done
equal "the reservation waits for the account's lock" "$waiting" 1
echo "COMMIT;" >&3
exec 3>&-
pid_gone "$S1" 10
pid_stop "$S1"
wait "$S2"
equal "it grants nothing: the call is settled" "$(cat "$DIR/s2.out")" \
	"0|0|$((B0 + WANT))"
equal "the balance got the whole reservation back" "$(bal "$A")" \
	$((B0 + WANT))
equal "no live row left" \
	"$(sql "SELECT count(*) FROM live_calls WHERE call_id = 'a2'")" 0
equal "a2: reservation and refund" "$(call_rows a2)" \
	"reservation:-$WANT refund:$WANT"
clean "race"


echo "# an authorisation after the cleanup settlement"
B0=$(bal "$A")
equal "cleanup settlement of a3 (never authorised here)" \
	"$(settle a3 "$A" 0)" "settled|0|$B0"
equal "authorise a3 afterwards: ended, 503, nothing held" \
	"$(authz a3 "$A")" "ended|503||$B0"
equal "no live row for a3" \
	"$(sql "SELECT count(*) FROM live_calls WHERE call_id = 'a3'")" 0
equal "one CDR for a3, the settlement's" \
	"$(sql "SELECT count(*) || ':' || min(reason) FROM cdrs
		WHERE call_id = 'a3'")" "1:normal"
equal "no ledger row for a3" "$(call_rows a3)" ""
equal "balance unchanged" "$(bal "$A")" "$B0"


echo "# a retried authorisation after a status change"
equal "authorise a4" "$(authz a4 "$A")" "ok|0|$WANT|$((B0 - WANT))"
sql "UPDATE accounts SET status = 'blocked' WHERE id = $A" >/dev/null
equal "the retry finds its reservation although the account is blocked" \
	"$(authz a4 "$A")" "ok|0|$WANT|$((B0 - WANT))"
equal "no 'rejected' CDR for a4" \
	"$(sql "SELECT count(*) FROM cdrs WHERE call_id = 'a4'")" 0
equal "a new call of the blocked account is refused" \
	"$(authz a5 "$A" | cut -d'|' -f1,2)" "blocked|403"
sql "UPDATE accounts SET status = 'active' WHERE id = $A" >/dev/null
equal "settle a4 at 0.1" "$(settle a4 "$A" 100000)" \
	"settled|$((WANT - 100000))|$((B0 - 100000))"
clean "retry"


echo "# a live row that appeared after the call's CDR"
B0=$(bal "$A")
equal "authorise a6" "$(authz a6 "$A" | cut -d'|' -f1)" ok
sql "INSERT INTO cdrs (call_id, account_id, caller, callee, setup_at,
		       end_at, sip_code, hangup_by, reason)
     VALUES ('a6', $A, 'c', '1000', now(), now(), 403, 'tollgate',
	     'rejected')" >/dev/null
equal "tg_ledger_check() names it" "$(violations)" \
	"live_call_settled|$A|a6|0|$WANT"
equal "the next settlement is a duplicate that refunds the row" \
	"$(settle a6 "$A" 50000)" "duplicate|$WANT|$B0"
equal "a6: reservation and refund, no cost" "$(call_rows a6)" \
	"reservation:-$WANT refund:$WANT"
clean "late row"


echo "# credit set 0 with a running call"
C=$(acct carol 1000000)
equal "authorise c1" "$(authz c1 "$C" | cut -d'|' -f1,3)" "ok|$WANT"
equal "reserve 0.05 more" "$(reserve c1 2 50000 | cut -d'|' -f1)" 50000
equal "set 0" "$(credit "$C" set 0 key-c0)" "ok|0"
equal "the call's reservation is non-refundable now" \
	"$(sql "SELECT forfeit FROM live_calls WHERE call_id = 'c1'")" \
	$((WANT + 50000))
equal "the credit_set row: 0 - 0.783333, by its key" \
	"$(sql "SELECT delta || ':' || ref FROM ledger
		WHERE account_id = $C AND kind = 'credit_set'")" \
	"-$((1000000 - WANT - 50000)):key-c0"
equal "nothing more can be reserved" "$(reserve c1 3 50000)" \
	"0|$((WANT + 50000))|0"
equal "settle at 0.04: nothing comes back" "$(settle c1 "$C" 40000)" \
	"settled|0|0"
equal "balance exactly 0" "$(bal "$C")" 0
equal "c1: refund, cost and forfeit" "$(call_rows c1)" \
	"reservation:-$WANT reservation:-50000 refund:$((WANT + 50000)) call_cost:-40000 forfeit:-$((WANT + 50000 - 40000))"
clean "set 0"

echo "# credit set 0.50: what is reserved after the set comes back"
equal "add 1.00" "$(credit "$C" add 1000000 key-c1)" "ok|1000000"
equal "the add row" "$(sql "SELECT kind || ':' || delta || ':' || ref
	FROM ledger WHERE account_id = $C ORDER BY id DESC LIMIT 1")" \
	"credit_add:1000000:key-c1"
equal "authorise c2" "$(authz c2 "$C" | cut -d'|' -f1)" ok
equal "set 0.50" "$(credit "$C" set 500000)" "ok|500000"
equal "reserve 0.1 more after the set" "$(reserve c2 2 100000)" \
	"100000|$((WANT + 100000))|400000"
# refund = reserved - GREATEST(cost, forfeit) = 0.266667 - 0.2
equal "settle at 0.2: 0.066667 comes back" "$(settle c2 "$C" 200000)" \
	"settled|66667|466667"
equal "no forfeit row: the cost used the forfeit" \
	"$(sql "SELECT count(*) FROM ledger WHERE ref = 'c2'
		AND kind = 'forfeit'")" 0
clean "set 0.50"


echo "# postpaid: down to -credit_limit, no further"
P=$(acct paula 0 400000)
equal "authorise p1 on credit" "$(authz p1 "$P")" "ok|0|$WANT|-$WANT"
equal "authorise p2 on credit" "$(authz p2 "$P")" \
	"ok|0|$WANT|-$((2 * WANT))"
equal "reserve for p1: only what the limit leaves" "$(reserve p1 2 $WANT)" \
	"$((400000 - 2 * WANT))|$((400000 - WANT))|-400000"
equal "authorise p3: no credit left" "$(authz p3 "$P" | cut -d'|' -f1,2,4)" \
	"no_credit|402|-400000"
equal "reserve for p2: nothing" "$(reserve p2 2 $WANT | cut -d'|' -f1)" 0
check "the balance cannot go below -credit_limit" \
	test -z "$(sql "UPDATE accounts SET balance = -400001
			WHERE id = $P" 2>/dev/null && echo updated)"
equal "settle p1 at its reservation" \
	"$(settle p1 "$P" $((400000 - WANT)))" "settled|0|-400000"
equal "settle p2 at 0.1" "$(settle p2 "$P" 100000)" \
	"settled|$((WANT - 100000))|-$((400000 - WANT + 100000))"
equal "balance = sum of the ledger" "$(bal "$P")" "$(ledger_sum "$P")"
clean "postpaid"


echo "# manual changes; the ledger is append-only"
equal "authorise a7" "$(authz a7 "$A" | cut -d'|' -f1)" ok
B0=$(bal "$A")
sql "UPDATE accounts SET balance = balance + 1234 WHERE id = $A" >/dev/null
equal "an UPDATE from psql is a 'manual' row" \
	"$(sql "SELECT kind || ':' || delta || ':' || coalesce(ref, '-')
		FROM ledger ORDER BY id DESC LIMIT 1")" "manual:1234:-"
equal "... in the same transaction as a reservation, too" \
	"$(sql "BEGIN; SELECT granted FROM tg_reserve('a7', 2, 1000);
		UPDATE accounts SET balance = balance - 34 WHERE id = $A;
		COMMIT; SELECT kind || ':' || delta FROM ledger
		ORDER BY id DESC LIMIT 1" | tail -n 1)" "manual:-34"
equal "balance" "$(bal "$A")" $((B0 + 1234 - 1000 - 34))
equal "a7's rows: its reservations only" "$(call_rows a7)" \
	"reservation:-$WANT reservation:-1000"
equal "settle a7" "$(settle a7 "$A" 0 | cut -d'|' -f1,2)" \
	"settled|$((WANT + 1000))"
check "UPDATE of a ledger row is refused" \
	test -z "$(sql "UPDATE ledger SET delta = 0 WHERE id = 1" \
		   2>"$DIR/upd.err" && echo updated)"
check "... with a reason" grep -q "cannot be changed or deleted" \
	"$DIR/upd.err"
check "DELETE of a ledger row is refused" \
	test -z "$(sql "DELETE FROM ledger WHERE id = 1" 2>/dev/null &&
		   echo deleted)"
equal "the row is still there" \
	"$(sql "SELECT count(*) FROM ledger WHERE id = 1")" 1
clean "manual"


echo "# 20 concurrent sessions on one account"
Z=$(acct zed 3000000)
SESSIONS=20
CALLS=10
pids=()
for s in $(seq 1 $SESSIONS); do
	f="$DIR/session-$s.sql"
	: >"$f"
	for i in $(seq 1 $CALLS); do
		id="z-$s-$i"
		cat >>"$f" <<EOF
SELECT result FROM tg_authorize('$id', 'ledger-test', $Z, 'c', '1000', NULL,
	$SETUP, 10);
SELECT granted FROM tg_reserve('$id', 2, $(( (s * i) % 7 * 10000 )));
SELECT result FROM tg_settle_media('$id', $Z, 'c', '1000', NULL, $SETUP,
	$((SETUP + 1000)), $((SETUP + 5000)), 4,
	coalesce((SELECT reserved / $(( i % 3 + 1 )) FROM live_calls
		  WHERE call_id = '$id'), 0),
	200, 'caller', 'normal', NULL);
SELECT granted FROM tg_reserve('$id', 3, 10000);
EOF
		if [ $((i % 4)) = 0 ]; then
			echo "SELECT result FROM tg_credit(NULL, $Z, 'add'," \
			     " $((s * 1000)), 'x');" >>"$f"
		fi
		if [ "$s" = 7 ] && [ "$i" = 5 ]; then
			echo "SELECT result FROM tg_credit(NULL, $Z, 'set'," \
			     " 2000000, 'y');" >>"$f"
		fi
	done
	timeout 120 "$PGTEST_BINDIR/psql" -X -q -At -v ON_ERROR_STOP=1 \
		"$PGTEST_CONNINFO" -f "$f" >"$DIR/session-$s.out" 2>&1 &
	pids+=($!)
	pid_remember "$!"
done
bad=0
for p in "${pids[@]}"; do
	wait "$p" || bad=$((bad + 1))
done
equal "every session ran to its end" "$bad" 0
equal "200 CDRs" "$(sql "SELECT count(*) FROM cdrs WHERE call_id LIKE 'z-%'")" \
	$((SESSIONS * CALLS))
equal "no live row left" \
	"$(sql "SELECT count(*) FROM live_calls WHERE account_id = $Z")" 0
within "calls that got money" \
	"$(sql "SELECT count(DISTINCT ref) FROM ledger WHERE account_id = $Z
		AND kind = 'reservation'")" 1 $((SESSIONS * CALLS))
equal "balance = sum of the ledger" "$(bal "$Z")" "$(ledger_sum "$Z")"
equal "tg_ledger_check() after the run" "$(violations)" ""
echo "# tg_ledger_check(): $(sql "SELECT count(*) FROM tg_ledger_check()") rows"


echo "# REST API: credit_limit (the daemon on 127.0.2.30)"
CONF="$DIR/tollgate.conf"
API=http://127.0.2.30:8080
ADMIN=ledger-test-admin-token-0123456789
mkdir -p "$DIR/state"
cat >"$CONF" <<EOF
sip_listen udp:127.0.2.30:5060
node_name ledger-test
state_dir $DIR/state
db_conninfo $PGTEST_CONNINFO
rtp_relay no
api_listen 127.0.2.30:8080
api_token $ADMIN admin
log_level info
EOF
"$TG" -f "$CONF" >"$DIR/tollgate.log" 2>&1 &
TG_PID=$!
pid_remember "$TG_PID"
if wait_bound tcp 127.0.2.30 8080 10 "$TG_PID"; then
	ok "the daemon is up"
else
	fail "the daemon is up"
	tail -n 20 "$DIR/tollgate.log"
fi
# expect DESC CODE [FIELD]: the status of the last req, and the field
# its error names
expect() {
	if [ "$CODE" != "$2" ]; then
		fail "$1: status $CODE, want $2 ($BODY)"
	elif [ $# -ge 3 ] && [ "$(jget field)" != "$3" ]; then
		fail "$1: field '$(jget field)', want '$3' ($BODY)"
	else
		ok "$1 ($CODE${3:+ $3})"
	fi
}
req POST /v1/accounts '{"name":"pat","credit_limit":"25.00"}'
expect "create a postpaid account" 201
PAT=$(jget id)
equal "its credit_limit" "$(jget credit_limit)" 25.00
equal "its balance" "$(jget balance)" 0.00
req POST /v1/accounts '{"name":"neg","credit_limit":"-1"}'
expect "a negative credit_limit" 400 credit_limit
req POST /v1/accounts '{"name":"num","credit_limit":5}'
expect "a credit_limit that is not a string" 400 credit_limit
req POST /v1/accounts '{"name":"dec","credit_limit":"1.0000001"}'
expect "a credit_limit with 7 decimals" 400 credit_limit
req POST /v1/accounts '{"name":"pre"}'
equal "a new account is prepaid" "$(jget credit_limit)" 0.00
sql "UPDATE accounts SET rate_plan_id = $PLAN WHERE id = $PAT" >/dev/null
equal "authorise pa1 on credit" "$(authz pa1 "$PAT" | cut -d'|' -f1)" ok
req GET "/v1/accounts/$PAT"
equal "GET shows the negative balance" "$(jget balance)" -0.166667
equal "GET shows the credit_limit" "$(jget credit_limit)" 25.00
req GET /v1/accounts
check "the list shows credit_limit" test "$(python3 -c 'import json,sys
print(all("credit_limit" in a for a in json.loads(sys.argv[1])["accounts"]))' \
	"$BODY")" = True
req PATCH "/v1/accounts/$PAT" '{"credit_limit":"0.1"}'
expect "a credit_limit below what the account owes" 400 credit_limit
req PATCH "/v1/accounts/$PAT" '{"credit_limit":"x"}'
expect "a credit_limit that is not money" 400 credit_limit
req PATCH "/v1/accounts/$PAT" '{"credit_limit":"1.00"}'
expect "lower the credit_limit to 1.00" 200
equal "... applied" "$(jget credit_limit)" 1.00
CODE=$(curl -s -m 10 -o "$DIR/body" -w '%{http_code}' -X POST \
	-H "Authorization: Bearer $ADMIN" -H "Idempotency-Key: key-pat" \
	-H "Content-Type: application/json" \
	--data-binary '{"op":"add","amount":"2.00"}' \
	"$API/v1/accounts/$PAT/credit")
BODY=$(cat "$DIR/body")
expect "add 2.00 with a key" 200
equal "the credit_add row names its key" \
	"$(sql "SELECT kind || ':' || delta || ':' || ref FROM ledger
		WHERE account_id = $PAT ORDER BY id DESC LIMIT 1")" \
	"credit_add:2000000:key-pat"
equal "settle pa1" "$(settle pa1 "$PAT" 16667 | cut -d'|' -f1,3)" \
	"settled|1983333"
pid_stop "$TG_PID" 15
equal "the daemon stopped" "$(kill -0 "$TG_PID" 2>/dev/null || echo gone)" \
	gone


echo "# tollgate --ledger-check"
"$TG" --ledger-check -f "$CONF" >"$DIR/check.out" 2>&1
equal "exit 0 on a clean database" "$?" 0
cat "$DIR/check.out"
equal "summary line" "$(cat "$DIR/check.out")" \
	"ledger: $(sql "SELECT count(*) FROM accounts") accounts, $(sql "SELECT count(*) FROM ledger") rows, 0 violations"
sql "INSERT INTO ledger (account_id, delta, kind, ref)
     VALUES ($A, -5, 'call_cost', 'bogus')" >/dev/null
"$TG" --ledger-check -d "$PGTEST_CONNINFO" >"$DIR/check.out" 2>&1
equal "exit 1 after a bogus row" "$?" 1
cat "$DIR/check.out"
check "the balance violation is printed" grep -qx \
	"ledger: violation balance: account $A, call -: expected $(bal "$A"), found $(($(bal "$A") - 5))" \
	"$DIR/check.out"
check "the unknown call is printed" grep -qx \
	"ledger: violation unknown_call: account -, call bogus: expected 0, found -5" \
	"$DIR/check.out"
check "summary: 2 violations" grep -q ", 2 violations$" "$DIR/check.out"
"$TG" --ledger-check -d "host=$DIR/nowhere dbname=tollgate" \
	>"$DIR/check.out" 2>&1
equal "exit 2 when the database is out of reach" "$?" 2

summary
