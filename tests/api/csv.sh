#!/usr/bin/env bash
# Bulk data in CSV end to end: a private PostgreSQL (tests/lib/pgtest.sh)
# and the daemon; rate decks imported over the API and by
# tollgate --import-rates, the rates' export round-trip, 100,000 CDRs
# streamed as CSV in bounded memory and a client that leaves mid-stream.
#
# Addresses: tollgate SIP 127.0.6.40:5060, API 127.0.6.40:8080.  Every
# process started here is ended by its PID.  Prints "N passed, M failed".
set -u

here=$(cd "$(dirname "$0")" && pwd)
: "${top_srcdir:=$(cd "$here/../.." && pwd)}"
: "${top_builddir:=$PWD}"
export top_srcdir top_builddir

TG="$top_builddir/tollgate"
[ -x "$TG" ] || { echo "csv.sh: $TG not built" >&2; exit 99; }
command -v curl >/dev/null || { echo "csv.sh: no curl" >&2; exit 77; }

# shellcheck source=../lib/check.sh
. "$top_srcdir/tests/lib/check.sh"
# shellcheck source=../lib/pgtest.sh
. "$top_srcdir/tests/lib/pgtest.sh"
test_init csv || exit 99
pgtest_start || exit 99

DIR=$TEST_DIR
API=http://127.0.6.40:8080
ADMIN=csv-test-admin-token-0123456789
MAX_IMPORT=6000000

# post_csv PATH FILE: POST a CSV file; sets CODE and BODY
post_csv() {
	CODE=$(curl -s -m 30 -o "$DIR/body" -w '%{http_code}' -X POST \
		-H "Authorization: Bearer $ADMIN" \
		-H "Content-Type: text/csv" --data-binary "@$2" "$API$1")
	BODY=$(cat "$DIR/body")
}
# get_csv PATH FILE: GET into a file; sets CODE
get_csv() {
	CODE=$(curl -s -m 60 -o "$2" -w '%{http_code}' \
		-H "Authorization: Bearer $ADMIN" "$API$1")
}
rates_sum() {
	sql "SELECT count(*) || ':' || coalesce(md5(string_agg(p.name || '/' ||
	     r.prefix || '/' || r.connect_fee || '/' || r.price_per_minute ||
	     '/' || r.initial_increment || '/' || r.subsequent_increment ||
	     '/' || r.valid_from, ',' ORDER BY r.id)), '')
	     FROM rates r JOIN rate_plans p ON p.id = r.rate_plan_id"
}
# rated PLAN NUMBER: the price a call would get now (tg_authorize's pick)
rated() {
	sql "SELECT r.price_per_minute FROM rates r JOIN rate_plans p
	     ON p.id = r.rate_plan_id WHERE p.name = '$1'
	     AND r.valid_from <= now()
	     AND left('$2', length(r.prefix)) = r.prefix
	     ORDER BY length(r.prefix) DESC, r.valid_from DESC LIMIT 1"
}
vm() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$TG_PID/status"; }

cat >"$DIR/tg.conf" <<EOF
sip_listen udp:127.0.6.40:5060
trusted_peer 127.0.6.41 from
digest_auth no
gateway gwa 127.0.6.42:5080
route default gwa
db_conninfo $PGTEST_CONNINFO
rtp_relay no
media_timeout 0
state_dir $DIR/state
node_name csv-test
api_listen 127.0.6.40:8080
api_token $ADMIN admin
api_max_body 1024
api_max_import $MAX_IMPORT
db_statement_timeout 20000
log_level info
EOF
mkdir -p "$DIR/state"

"$TG" -f "$DIR/tg.conf" >"$DIR/tollgate.log" 2>&1 &
TG_PID=$!
pid_remember "$TG_PID"
if ! wait_line "$DIR/tollgate.log" "routing by the database" 10 "$TG_PID"
then
	echo "csv.sh: tollgate did not come up:" >&2
	tail -n 30 "$DIR/tollgate.log" >&2
	exit 99
fi

echo "# a good deck"
printf '%s\r\n' "rate_plan,prefix,price_per_minute,connect_fee,initial_increment,subsequent_increment,valid_from" \
	"retail,44,0.0200,0,60,60," \
	"retail,4420,0.0150,0.01,30,6," \
	"\"retail\" , 1 , 0.0100 ,,1,1, " >"$DIR/good.csv"
post_csv /v1/rates/import "$DIR/good.csv"
equal "good deck: 200" "$CODE" 200
equal "good deck: 3 rates inserted" "$(jget inserted)" 3
equal "good deck: mode merge" "$(jget mode)" merge
equal "good deck: the rates are there" "$(sql "SELECT count(*) FROM rates")" 3
equal "good deck: 4420 priced exactly" \
	"$(sql "SELECT connect_fee || ' ' || price_per_minute || ' ' ||
	       initial_increment || ' ' || subsequent_increment FROM rates
	       WHERE prefix = '4420'")" "10000 15000 30 6"
equal "good deck: a call to 442071 is rated by 4420" \
	"$(rated retail 442071)" 15000
post_csv /v1/rates/import "$DIR/good.csv"
equal "the same deck again: 3 updated, none inserted" \
	"$(jget updated)/$(jget inserted)" 3/0

echo "# a bad deck: every bad line named, nothing changed"
before=$(rates_sum)
printf '%s\n' "rate_plan,prefix,price_per_minute,valid_from" \
	"retail,33,0.01," \
	"retail,3x3,0.01," \
	"retail,34,-1," \
	"bad plan!,35,0.01," \
	"retail,36,0.01,2027-13-01" \
	"retail,37,0.01,\"2027-01-01" >"$DIR/bad.csv"
post_csv /v1/rates/import "$DIR/bad.csv"
equal "bad deck: 400" "$CODE" 400
equal "bad deck: 5 errors counted" "$(jget error_count)" 5
equal "bad deck: line 3 prefix" "$(jget errors.0.line) $(jget errors.0.field)" "3 prefix"
equal "bad deck: line 4 price_per_minute" \
	"$(jget errors.1.line) $(jget errors.1.field)" "4 price_per_minute"
equal "bad deck: line 5 rate_plan" "$(jget errors.2.line) $(jget errors.2.field)" "5 rate_plan"
equal "bad deck: line 6 valid_from" "$(jget errors.3.line) $(jget errors.3.field)" "6 valid_from"
equal "bad deck: line 7 an open quote" "$(jget errors.4.line)" 7
check "bad deck: the message says nothing changed" \
	grep -q "nothing was changed" "$DIR/body"
equal "bad deck: rates unchanged" "$(rates_sum)" "$before"

printf '%s\n' "rate_plan,prefix,price_per_minute,bogus" "a,1,1,1" >"$DIR/hdr.csv"
post_csv /v1/rates/import "$DIR/hdr.csv"
equal "unknown column: 400" "$CODE" 400
check "unknown column: named" grep -q "unknown column 'bogus'" "$DIR/body"

echo "# duplicates"
printf '%s\n' "rate_plan,prefix,price_per_minute,valid_from" \
	"retail,49,0.01,2027-01-01" \
	"retail,48,0.01," \
	"retail,49,0.02,2027-01-01T00:00:00Z" >"$DIR/dup.csv"
post_csv /v1/rates/import "$DIR/dup.csv"
equal "duplicate: 400" "$CODE" 400
equal "duplicate: line 4, prefix" "$(jget errors.0.line) $(jget errors.0.field)" "4 prefix"
check "duplicate: names the first line" grep -q "duplicate of line 2" "$DIR/body"
equal "duplicate: rates unchanged" "$(rates_sum)" "$before"

echo "# a future valid_from leaves today's price in force"
printf '%s\n' "rate_plan,prefix,price_per_minute,valid_from" \
	"retail,44,0.0900,2099-01-01" >"$DIR/future.csv"
post_csv /v1/rates/import "$DIR/future.csv"
equal "future: 200, one inserted" "$CODE $(jget inserted)" "200 1"
equal "future: 44 still rated at today's price" "$(rated retail 4412)" 20000
equal "future: both rows of 44 kept" \
	"$(sql "SELECT count(*) FROM rates WHERE prefix = '44'")" 2

echo "# too large, wrong type"
head -c $((MAX_IMPORT + 100)) /dev/zero | tr '\0' 'x' >"$DIR/big.bin"
post_csv /v1/rates/import "$DIR/big.bin"
equal "too large a deck: 413" "$CODE" 413
CODE=$(curl -s -o /dev/null -w '%{http_code}' -X POST \
	-H "Authorization: Bearer $ADMIN" -H "Content-Type: application/json" \
	--data-binary '{}' "$API/v1/rates/import")
equal "a JSON body: 415" "$CODE" 415

echo "# export round-trip"
sql "INSERT INTO rate_plans (name) VALUES ('wholesale');
     INSERT INTO rates (rate_plan_id, prefix, connect_fee, price_per_minute,
       initial_increment, subsequent_increment, valid_from)
     SELECT id, '', 123456, 7, 1, 1, '2026-06-01 12:34:56.789012+02'
     FROM rate_plans WHERE name = 'wholesale'" >/dev/null
get_csv "/v1/rates?format=csv" "$DIR/export1.csv"
equal "export: 200" "$CODE" 200
equal "export: header" "$(head -n 1 "$DIR/export1.csv" | tr -d '\r')" \
	"rate_plan,prefix,connect_fee,price_per_minute,initial_increment,subsequent_increment,valid_from"
check "export: exact money and microseconds" grep -q \
	'^wholesale,,0.123456,0.000007,1,1,2026-06-01T10:34:56.789012Z' "$DIR/export1.csv"
before=$(rates_sum)
post_csv /v1/rates/import "$DIR/export1.csv"
equal "round-trip: import of the export updates every rate" \
	"$CODE $(jget inserted) $(jget updated)" \
	"200 0 $(($(wc -l <"$DIR/export1.csv") - 1))"
equal "round-trip: the rates are unchanged" "$(rates_sum)" "$before"
CODE=$(curl -s -o "$DIR/export2.csv" -w '%{http_code}' \
	-H "Authorization: Bearer $ADMIN" -H "Accept: text/csv" "$API/v1/rates")
check "round-trip: Accept: text/csv exports the same bytes" \
	cmp -s "$DIR/export1.csv" "$DIR/export2.csv"

echo "# mode=replace"
printf '%s\n' "rate_plan,prefix,price_per_minute" "retail,44,0.03" >"$DIR/repl.csv"
post_csv "/v1/rates/import?mode=replace" "$DIR/repl.csv"
equal "replace: 200, 3 deleted" "$CODE $(jget deleted)" "200 3"
equal "replace: retail holds the deck only" "$(sql "SELECT count(*) FROM rates r
	JOIN rate_plans p ON p.id = r.rate_plan_id WHERE p.name = 'retail'")" 1
equal "replace: other plans untouched" "$(sql "SELECT count(*) FROM rates r
	JOIN rate_plans p ON p.id = r.rate_plan_id WHERE p.name = 'wholesale'")" 1

echo "# tollgate --import-rates"
printf '%s\n' "rate_plan,prefix,price_per_minute" "cli,1,0.01" "cli,2,0.02" >"$DIR/cli.csv"
"$TG" -f "$DIR/tg.conf" --import-rates "$DIR/cli.csv" >"$DIR/cli.out" 2>"$DIR/cli.err"
equal "--import-rates good: exit 0" "$?" 0
check "--import-rates good: summary" grep -q "2 rates (merge): 2 inserted" "$DIR/cli.out"
before=$(rates_sum)
"$TG" -f "$DIR/tg.conf" --import-rates "$DIR/bad.csv" >"$DIR/cli.out" 2>"$DIR/cli.err"
equal "--import-rates bad: exit 1" "$?" 1
check "--import-rates bad: FILE:LINE: field" grep -q "bad.csv:3: prefix: " "$DIR/cli.err"
check "--import-rates bad: line 6 valid_from" grep -q "bad.csv:6: valid_from: " "$DIR/cli.err"
check "--import-rates bad: nothing changed said" grep -q "5 lines not valid; nothing was changed" "$DIR/cli.err"
"$TG" -d "$PGTEST_CONNINFO" --import-rates "$DIR/dup.csv" >"$DIR/cli.out" 2>"$DIR/cli.err"
equal "--import-rates duplicate: exit 1" "$?" 1
check "--import-rates duplicate: line 4" grep -q "dup.csv:4: prefix: duplicate of line 2" "$DIR/cli.err"
"$TG" -d "$PGTEST_CONNINFO" --import-rates "$DIR/nonexistent.csv" 2>"$DIR/cli.err"
equal "--import-rates missing file: exit 1" "$?" 1
equal "--import-rates errors: rates unchanged" "$(rates_sum)" "$before"

echo "# 100,000 CDRs as CSV in bounded memory"
sql "INSERT INTO cdrs (call_id, caller, callee, gateway, setup_at, answer_at,
       end_at, billed_seconds, cost, sip_code, hangup_by, reason)
     SELECT 'c-' || g, CASE g WHEN 7 THEN '=HYPERLINK(\"x\")'
       WHEN 8 THEN 'a,b \"q\"' WHEN 9 THEN e'two\nlines' ELSE 'alice' END,
       '4420' || g, 'gwa', timestamptz '2026-01-01' + g * interval '1 s',
       timestamptz '2026-01-01' + g * interval '1 s',
       timestamptz '2026-01-01' + (g + 60) * interval '1 s',
       60, g * 1000 + 1, 200, 'caller', 'normal'
     FROM generate_series(1, 100000) g;
     UPDATE cdrs SET carrier = '-carrier', carrier_cost = 1500000,
       margin = -1490000 WHERE call_id = 'c-10'" >/dev/null
rss0=$(vm VmRSS)
get_csv "/v1/cdrs?format=csv" "$DIR/cdrs.csv"
hwm1=$(vm VmHWM)
equal "cdrs: 200" "$CODE" 200
equal "cdrs: 100,000 rows and a header" \
	"$(python3 -c 'import csv,sys; print(sum(1 for _ in csv.reader(open(sys.argv[1], newline=""))))' "$DIR/cdrs.csv")" 100001
check "cdrs: newest first, cost exact" grep -q \
	'^[0-9]*,c-100000,,alice,4420100000,gwa,2026-01-02T03:46:40.000Z,2026-01-02T03:46:40.000Z,2026-01-02T03:47:40.000Z,60,100.000001,200,caller,normal,' \
	"$DIR/cdrs.csv"
check "cdrs: a formula is guarded" grep -q "^[0-9]*,c-7,,\"'=HYPERLINK(\"\"x\"\")\",44207," "$DIR/cdrs.csv"
check "cdrs: carrier guarded, carrier_cost and a negative margin exact" \
	grep -q "^[0-9]*,c-10,.*,'-carrier,1.50,-1.49.\$" "$DIR/cdrs.csv"
check "cdrs: commas and quotes quoted" grep -q '^[0-9]*,c-8,,"a,b ""q""",44208,' "$DIR/cdrs.csv"
equal "cdrs: a newline kept inside quotes" \
	"$(python3 -c 'import csv,sys
for r in csv.reader(open(sys.argv[1], newline="")):
    if r[1] == "c-9": print(repr(r[3]))' "$DIR/cdrs.csv")" "'two\\nlines'"
size=$(stat -c %s "$DIR/cdrs.csv")
echo "# cdrs: ${size} bytes; VmRSS before ${rss0} kB, VmHWM after ${hwm1} kB"
within "cdrs: the daemon's peak grew less than 8 MB for a ${size}-byte export" \
	$((hwm1 - rss0)) 0 8192
get_csv "/v1/cdrs?format=csv&from=2026-01-01T00:01:00Z&to=2026-01-01T00:02:00Z" "$DIR/cdrs2.csv"
equal "cdrs: the filters apply (60 rows)" "$(($(wc -l <"$DIR/cdrs2.csv") - 1))" 60

echo "# a client that leaves mid-stream"
conns0=$(sql "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'csv-test'")
curl -s -m 20 --limit-rate 200k -H "Authorization: Bearer $ADMIN" \
	"$API/v1/cdrs?format=csv" 2>/dev/null | head -c 300000 >/dev/null
sleep 1
CODE=$(curl -s -m 5 -o "$DIR/body" -w '%{http_code}' \
	-H "Authorization: Bearer $ADMIN" "$API/v1/health")
equal "after a client left: the next request works" "$CODE" 200
check "after a client left: the daemon runs" kill -0 "$TG_PID"
equal "after a client left: no query left running" \
	"$(sql "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'csv-test' AND state <> 'idle'")" 0
equal "after a client left: the pool's connections are the same" \
	"$(sql "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'csv-test'")" "$conns0"
get_csv "/v1/cdrs?format=csv&account=1" "$DIR/cdrs3.csv"
equal "after a client left: another export works" "$CODE $(wc -l <"$DIR/cdrs3.csv")" "200 1"

echo "# a 100,000-line deck: the event loop is held in short slices"
awk 'BEGIN { print "rate_plan,prefix,price_per_minute,connect_fee,valid_from";
	for (i = 0; i < 100000; i++)
		printf "big,%d,0.%04d,0.01,2026-01-01T00:00:00Z\n", 100000 + i, i % 10000 }' \
	>"$DIR/big.csv"
t0=$(date +%s%N)
post_csv /v1/rates/import "$DIR/big.csv"
t1=$(date +%s%N)
equal "big deck: 100,000 inserted" "$CODE $(jget inserted)" "200 100000"
line=$(grep "rate deck of 100000 rates" "$DIR/tollgate.log" | tail -n 1)
echo "# big deck: $(( (t1 - t0) / 1000000 )) ms in all; ${line#*api: }"
slice=$(echo "$line" | sed -n 's/.*longest slice \([0-9]*\) us.*/\1/p')
within "big deck: no slice held the loop 20 ms" "${slice:-999999}" 0 20000

pid_stop "$TG_PID"
summary
