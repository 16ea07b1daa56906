# tests/cluster/lib.sh - what the cluster suites share (sourced after
# tests/lib/check.sh; each suite defines sql and D)

# wait_sql SECONDS SQL WANT: poll a query until it prints WANT
wait_sql() {
	local i
	for ((i = 0; i < $1 * 10; i++)); do
		[ "$(sql "$2" 2>/dev/null)" = "$3" ] && return 0
		sleep 0.1
	done
	return 1
}

# node_launch NAME SECONDS LINE...: start "$TG" -f $D/NAME.conf, its log
# appended to $D/NAME.log; LAUNCHED_PID is its PID; wait up to SECONDS
# for each LINE in turn (logged since this start)
node_launch() {
	local name=$1 secs=$2 from line
	shift 2
	echo "=== start $(date +%T.%N)" >>"$D/$name.log"
	from=$(wc -l <"$D/$name.log")
	"$TG" -f "$D/$name.conf" >>"$D/$name.log" 2>&1 &
	LAUNCHED_PID=$!
	pid_remember "$LAUNCHED_PID"
	for line in "$@"; do
		wait_line "$D/$name.log" "$line" "$secs" "$LAUNCHED_PID" \
			"$from" || {
			echo "node $name did not come up:" >&2
			tail -n 20 "$D/$name.log" >&2
			return 1
		}
	done
}
