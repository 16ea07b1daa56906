# tests/lib/pgtest.sh - a private, migrated PostgreSQL cluster for a test
#
# Source it from a test script run by "make check" (which exports
# top_srcdir and top_builddir):
#
#   . "$top_srcdir/tests/lib/pgtest.sh"
#   trap pgtest_stop EXIT
#   pgtest_start || exit 99
#   pgtest_psql -c "INSERT INTO accounts (name) VALUES ('x')"
#
# pgtest_start  creates a cluster in a new directory under /tmp (reachable
#               by the server user "tollgate" when run as root), starts it
#               and applies the migrations: with
#               "$top_builddir/tollgate --migrate -d CONNINFO" when that
#               binary exists and has --migrate, else with psql (each
#               sql/NNN_*.sql in one transaction with its schema_version
#               row).  Exports PGTEST_DIR, PGTEST_CONNINFO and
#               PGTEST_CLUSTER (tools/pg-cluster.sh, e.g. for
#               "$PGTEST_CLUSTER stop "$PGTEST_DIR" immediate").
# pgtest_stop   stops the server by its PID and removes the directory
#               (PGTEST_KEEP=1 keeps the directory for a post-mortem).
#               pgtest_start sets "trap pgtest_stop EXIT" itself when the
#               script has no EXIT trap, and makes HUP, INT and TERM exit
#               (so that the EXIT trap runs) when they have no trap.
# pgtest_psql   psql -X -q -v ON_ERROR_STOP=1 on the test database.
# pgtest_standby_start
#               makes a streaming standby of the suite's cluster (after
#               pgtest_start) in a new directory under /tmp and starts it
#               (tools/pg-cluster.sh standby, start); waits until it
#               streams.  Exports PGTEST_STANDBY_DIR and
#               PGTEST_STANDBY_CONNINFO.  pgtest_stop stops and removes it
#               too.  "$PGTEST_CLUSTER promote "$PGTEST_STANDBY_DIR""
#               promotes it.
# pgtest_standby_psql  like pgtest_psql, on the standby.

: "${top_srcdir:?top_srcdir is not set (run the test with make check)}"
: "${top_builddir:=$top_srcdir}"

PGTEST_CLUSTER="$top_srcdir/tools/pg-cluster.sh"
PGTEST_BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
PGTEST_DIR=
PGTEST_CONNINFO=
PGTEST_STANDBY_DIR=
PGTEST_STANDBY_CONNINFO=

pgtest_psql() {
	"$PGTEST_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 "$PGTEST_CONNINFO" "$@"
}

# apply sql/NNN_name.sql with psql, the way db_migrate_sync() does
pgtest_migrate_psql() {
	local f base n
	pgtest_psql -c "CREATE TABLE IF NOT EXISTS schema_version (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL,
		applied_at TIMESTAMPTZ NOT NULL DEFAULT now())" || return 1
	for f in $(cd "$top_srcdir/sql" && printf '%s\n' [0-9]*_?*.sql |
		   sort -n); do
		base=${f%%_*}
		n=$((10#$base))
		if [ "$(pgtest_psql -At -c "SELECT count(*) FROM schema_version
			WHERE version = $n")" != 0 ]; then
			continue
		fi
		pgtest_psql -1 -f "$top_srcdir/sql/$f" \
			-c "INSERT INTO schema_version (version, name)
			    VALUES ($n, '$f')" || {
			echo "pgtest: migration $f failed" >&2
			return 1
		}
	done
}

pgtest_migrate() {
	local bin="$top_builddir/tollgate" help
	if [ -x "$bin" ]; then
		help=$("$bin" --help 2>&1 || true)
	else
		help=
	fi
	case $help in
	*--migrate*)
		set -- --migrate -d "$PGTEST_CONNINFO"
		case $help in
		*--sqldir*) set -- "$@" --sqldir "$top_srcdir/sql" ;;
		esac
		"$bin" "$@" >"$PGTEST_DIR/migrate.log" 2>&1 || {
			echo "pgtest: $bin $* failed:" >&2
			cat "$PGTEST_DIR/migrate.log" >&2
			return 1
		}
		;;
	*)
		pgtest_migrate_psql >"$PGTEST_DIR/migrate.log" 2>&1 || {
			cat "$PGTEST_DIR/migrate.log" >&2
			return 1
		}
		;;
	esac
}

pgtest_start() {
	[ -x "$PGTEST_BINDIR/initdb" ] || {
		echo "pgtest: $PGTEST_BINDIR/initdb not found (postgresql-15)" >&2
		return 1
	}
	# never leave a server behind: stop it on exit and on HUP, INT or
	# TERM, unless the caller set traps of its own (then it calls
	# pgtest_stop itself)
	if [ -z "$(trap -p EXIT)" ]; then
		trap pgtest_stop EXIT
	fi
	local sig
	for sig in HUP INT TERM; do
		if [ -z "$(trap -p "$sig")" ]; then
			# shellcheck disable=SC2064
			trap "exit 1" "$sig"
		fi
	done
	PGTEST_DIR=$(mktemp -d /tmp/tollgate-pgtest.XXXXXX) || return 1
	# the server runs as user tollgate when we are root: let it in
	chmod 0755 "$PGTEST_DIR" || return 1
	if ! "$PGTEST_CLUSTER" init "$PGTEST_DIR" >"$PGTEST_DIR/setup.log" 2>&1 ||
	   ! "$PGTEST_CLUSTER" start "$PGTEST_DIR" >>"$PGTEST_DIR/setup.log" 2>&1
	then
		echo "pgtest: cannot set up a cluster in $PGTEST_DIR:" >&2
		cat "$PGTEST_DIR/setup.log" >&2
		return 1
	fi
	PGTEST_CONNINFO=$("$PGTEST_CLUSTER" conninfo "$PGTEST_DIR") || return 1
	export PGTEST_DIR PGTEST_CONNINFO PGTEST_CLUSTER
	pgtest_migrate
}

pgtest_standby_psql() {
	"$PGTEST_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 \
		"$PGTEST_STANDBY_CONNINFO" "$@"
}

pgtest_standby_start() {
	[ -n "$PGTEST_DIR" ] || {
		echo "pgtest: pgtest_standby_start before pgtest_start" >&2
		return 1
	}
	PGTEST_STANDBY_DIR=$(mktemp -d /tmp/tollgate-pgstandby.XXXXXX) ||
		return 1
	chmod 0755 "$PGTEST_STANDBY_DIR" || return 1
	if ! "$PGTEST_CLUSTER" standby "$PGTEST_STANDBY_DIR" "$PGTEST_DIR" \
		>"$PGTEST_STANDBY_DIR/setup.log" 2>&1 ||
	   ! "$PGTEST_CLUSTER" start "$PGTEST_STANDBY_DIR" \
		>>"$PGTEST_STANDBY_DIR/setup.log" 2>&1
	then
		echo "pgtest: cannot set up a standby in" \
		     "$PGTEST_STANDBY_DIR:" >&2
		cat "$PGTEST_STANDBY_DIR/setup.log" >&2
		return 1
	fi
	PGTEST_STANDBY_CONNINFO=$("$PGTEST_CLUSTER" conninfo \
		"$PGTEST_STANDBY_DIR") || return 1
	export PGTEST_STANDBY_DIR PGTEST_STANDBY_CONNINFO
	# streaming: the primary sees its WAL sender (at most 10 s; only the
	# superuser sees the state)
	local _ su="host=$PGTEST_DIR/run dbname=postgres user=postgres"
	for _ in $(seq 1 100); do
		if [ "$("$PGTEST_BINDIR/psql" -X -At "$su" -c "SELECT count(*)
			FROM pg_stat_replication WHERE state = 'streaming'" \
			2>/dev/null)" -ge 1 ] 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	echo "pgtest: the standby in $PGTEST_STANDBY_DIR does not stream" >&2
	return 1
}

# true if PID is the postmaster of the cluster in DIR (not a recycled PID)
pgtest_is_postmaster() {
	[ -r "/proc/$1/cmdline" ] &&
		tr '\0' ' ' <"/proc/$1/cmdline" | grep -qF "$2/pgdata"
}

# true if PID is the postmaster of our cluster
pgtest_is_ours() {
	pgtest_is_postmaster "$1" "$PGTEST_DIR"
}

# stop the server of DIR by its PID and remove DIR (unless PGTEST_KEEP)
pgtest_stop_dir() {
	local dir=$1 pidfile pid sig
	[ -n "$dir" ] && [ -d "$dir" ] || return 0
	pidfile="$dir/pgdata/postmaster.pid"
	if [ -f "$pidfile" ]; then
		pid=$(head -n 1 "$pidfile")
		# INT = fast shutdown, QUIT = immediate, then KILL; 10 s each
		for sig in INT QUIT KILL; do
			pgtest_is_postmaster "$pid" "$dir" || break
			kill -s "$sig" "$pid" 2>/dev/null || break
			for _ in $(seq 1 100); do
				pgtest_is_postmaster "$pid" "$dir" || break
				sleep 0.1
			done
		done
	fi
	if [ -n "${PGTEST_KEEP:-}" ]; then
		echo "pgtest: kept $dir" >&2
	else
		rm -rf "$dir"
	fi
}

pgtest_stop() {
	pgtest_stop_dir "$PGTEST_STANDBY_DIR"
	PGTEST_STANDBY_DIR=
	pgtest_stop_dir "$PGTEST_DIR"
	PGTEST_DIR=
}
