#!/usr/bin/env bash
#
# pg-cluster.sh - a private PostgreSQL 15 cluster inside one directory
#
# Usage:
#   pg-cluster.sh init DIR            create DIR/pgdata, role and db "tollgate"
#   pg-cluster.sh standby DIR PRIMARY create DIR/pgdata, a streaming standby
#                                     of the running cluster in PRIMARY
#   pg-cluster.sh promote DIR         make the standby in DIR the primary
#   pg-cluster.sh start DIR           start the server (no-op if running)
#   pg-cluster.sh stop DIR [MODE]     stop it; MODE fast (default), smart or
#                                     immediate (no-op if not running)
#   pg-cluster.sh status DIR          exit 0 running, 3 stopped, 4 no cluster
#   pg-cluster.sh conninfo DIR        print the libpq connection string
#   pg-cluster.sh psql DIR [ARGS...]  psql connected as role tollgate
#
# Layout of DIR:
#   DIR/pgdata        the data directory (owned by the server user)
#   DIR/run           the unix socket directory (mode 0755)
#   DIR/postgres.log  the server log
#
# The server listens on no TCP address (listen_addresses = ''), only on a
# unix socket in DIR/run.  initdb refuses to run as root, so when this
# script runs as root it creates (once) the system user "tollgate" and runs
# initdb, pg_ctl and the server as that user; otherwise everything runs as
# the calling user.  The server user needs to traverse every directory down
# to DIR: when one does not allow it (a clone under /root is mode 0700) the
# script grants exactly that with "setfacl -m u:tollgate:x" on that one
# directory (package "acl"), or fails naming the directory.
#
# Authentication: "peer" on the local socket with a user map, nothing else.
# The socket directory has to be reachable both by root-run clients (the
# daemon started by hand or by tools/quickstart.sh, psql) and by the server
# user, so it is mode 0755 and the socket 0777; "trust" would then let any
# local user in.  Peer authentication with the map "tollgate" lets exactly
# root, the server user and the user who ran "init" connect, as role
# "tollgate" (the application's role, owner of database "tollgate") or as
# the superuser "postgres".  There are no host lines at all.  The same
# users may open a replication connection on the socket (as "postgres"),
# which is what "standby" uses.
#
# A standby: "standby DIR PRIMARY" copies the running cluster in PRIMARY
# with pg_basebackup over PRIMARY's socket (as the superuser, WAL streamed
# during the copy, -R: standby.signal and primary_conninfo written), gives
# it its own socket directory DIR/run, and leaves it stopped: "start DIR"
# starts it streaming, read-only (hot standby).  Replication is
# asynchronous and uses no slot: the primary keeps wal_keep_size (64MB) of
# WAL for a standby that falls behind.  A primary made by an older
# version of this script gets the replication line in its pg_hba.conf
# (and a reload) the first time.  "promote DIR" ends the recovery: the
# standby takes writes from then on.  "status" says which one is a
# standby.
#
# Environment: PG_BINDIR (default /usr/lib/postgresql/15/bin),
# PG_CLUSTER_USER (system user used when run as root, default tollgate).

set -euo pipefail

PG_BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
SRV_USER=${PG_CLUSTER_USER:-tollgate}
DB_NAME=tollgate
DB_ROLE=tollgate
PROG=${0##*/}

die() {
	echo "$PROG: $*" >&2
	exit 1
}

usage() {
	sed -n '5,15p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

is_root() {
	[ "$(id -u)" -eq 0 ]
}

# run a command as the server user
as_srv() {
	if is_root; then
		runuser -u "$SRV_USER" -- "$@"
	else
		"$@"
	fi
}

need_bin() {
	[ -x "$PG_BINDIR/$1" ] ||
		die "$PG_BINDIR/$1 not found (install postgresql-15 or set PG_BINDIR)"
}

# absolute path of DIR, which need not exist yet
abs_dir() {
	[ -n "$1" ] || die "DIR must not be empty"
	case $1 in
	/*) realpath -m -- "$1" ;;
	*)  realpath -m -- "$PWD/$1" ;;
	esac
}

# quote a value for a libpq connection string when it needs it
conn_quote() {
	case $1 in
	*[\ \'\\]*|'')
		local v=${1//\\/\\\\}
		v=${v//\'/\\\'}
		printf "'%s'" "$v"
		;;
	*)
		printf '%s' "$1"
		;;
	esac
}

conninfo_of() {
	printf 'host=%s dbname=%s user=%s\n' "$(conn_quote "$1/run")" \
		"$DB_NAME" "$DB_ROLE"
}

# As root, an existing cluster runs as the owner of its data directory
# (PG_CLUSTER_USER or a user who ran init without root).
adopt_owner() {
	local owner
	is_root || return 0
	[ -d "$1/pgdata" ] || return 0
	owner=$(stat -c %U -- "$1/pgdata")
	if [ "$owner" != root ] && [ "$owner" != UNKNOWN ]; then
		SRV_USER=$owner
	fi
}

ensure_srv_user() {
	is_root || return 0
	if ! id -u "$SRV_USER" >/dev/null 2>&1; then
		useradd --system --no-create-home --shell /usr/sbin/nologin \
			"$SRV_USER" ||
			die "cannot create system user $SRV_USER"
	fi
}

# Make sure the server user can traverse every directory from / to $1.
ensure_reach() {
	is_root || return 0
	local dir=$1 d path=""
	local IFS=/
	local parts
	read -r -a parts <<< "${dir#/}"
	unset IFS
	for d in "" "${parts[@]}"; do
		if [ -n "$d" ]; then
			path="${path%/}/$d"
		else
			path=/
		fi
		if runuser -u "$SRV_USER" -- test -x "$path"; then
			continue
		fi
		if command -v setfacl >/dev/null 2>&1; then
			setfacl -m "u:$SRV_USER:x" "$path" ||
				die "cannot grant $SRV_USER traverse on $path"
			runuser -u "$SRV_USER" -- test -x "$path" ||
				die "$SRV_USER still cannot traverse $path"
			echo "$PROG: granted $SRV_USER traverse (x) on $path" >&2
		else
			die "user $SRV_USER cannot traverse $path: install the" \
			    "package acl (then this script grants it with" \
			    "setfacl -m u:$SRV_USER:x $path), run" \
			    "chmod o+x $path, or put the cluster elsewhere" \
			    "(e.g. under /var/tmp)"
		fi
	done
}

# running? (pg_ctl status: 0 running, 3 not running, 4 no data directory)
srv_status() {
	local rc=0
	as_srv "$PG_BINDIR/pg_ctl" status -D "$1/pgdata" >/dev/null 2>&1 ||
		rc=$?
	return $rc
}

check_cluster() {
	[ -f "$1/pgdata/PG_VERSION" ] ||
		die "no cluster in $1 (run: $PROG init $1)"
}

srv_start() {
	local dir=$1 data=$2
	as_srv "$PG_BINDIR/pg_ctl" start -w -t 60 -D "$data" \
		-l "$dir/postgres.log" >/dev/null ||
		die "server did not start; see $dir/postgres.log:
$(tail -n 20 "$dir/postgres.log" 2>/dev/null)"
}

srv_stop() {
	as_srv "$PG_BINDIR/pg_ctl" stop -w -t 60 -D "$2" -m "$3" >/dev/null ||
		die "server in $1 did not stop"
}

cmd_init() {
	local dir
	dir=$(abs_dir "$1")
	need_bin initdb
	need_bin pg_ctl
	need_bin psql

	if [ -f "$dir/pgdata/PG_VERSION" ]; then
		local v
		v=$(cat "$dir/pgdata/PG_VERSION")
		[ "$v" = 15 ] ||
			die "$dir/pgdata holds a PostgreSQL $v cluster, not 15"
		echo "$PROG: cluster in $dir already initialised"
		return 0
	fi

	ensure_srv_user
	mkdir -p -- "$dir"
	ensure_reach "$dir"

	local me
	me=$(id -un)
	local sock="$dir/run/.s.PGSQL.5432"
	[ ${#sock} -le 107 ] ||
		die "path too long for a unix socket: $sock (${#sock} > 107" \
		    "bytes): choose a shorter DIR"

	# Left over by an interrupted init: stop its server, start afresh.
	local tmp="$dir/pgdata.new"
	if [ -f "$tmp/postmaster.pid" ]; then
		as_srv "$PG_BINDIR/pg_ctl" stop -w -t 60 -D "$tmp" \
			-m immediate >/dev/null 2>&1 || true
	fi
	rm -rf -- "$tmp"
	mkdir -m 0700 -- "$tmp"
	mkdir -p -- "$dir/run"
	chmod 0755 -- "$dir/run"
	touch -- "$dir/postgres.log"
	if is_root; then
		chown "$SRV_USER:" -- "$tmp" "$dir/run" "$dir/postgres.log"
	fi

	as_srv "$PG_BINDIR/initdb" -D "$tmp" -U postgres -E UTF8 \
		--locale=C.UTF-8 --auth-local=peer --auth-host=reject \
		>"$dir/initdb.log" 2>&1 ||
		die "initdb failed, see $dir/initdb.log:
$(tail -n 20 "$dir/initdb.log")"

	# Our settings win over initdb's: they come last.
	as_srv tee -a "$tmp/postgresql.conf" >/dev/null <<EOF

# --- tollgate private cluster (tools/pg-cluster.sh) ---
listen_addresses = ''
unix_socket_directories = '${dir//\'/\'\'}/run'
unix_socket_permissions = 0777
shared_buffers = 16MB
max_connections = 50
fsync = on
wal_keep_size = 64MB
log_line_prefix = '%m [%p] %q%u@%d '
EOF
	as_srv tee "$tmp/pg_hba.conf" >/dev/null <<EOF
# tollgate private cluster: unix socket only, peer authentication mapped
# by pg_ident.conf; no TCP at all (listen_addresses is empty).
# TYPE  DATABASE     USER  METHOD
local   all          all   peer map=tollgate
local   replication  all   peer map=tollgate
EOF
	{
		echo "# MAP       SYSTEM-USER  PG-USER"
		local u
		for u in $(printf '%s\n' root "$SRV_USER" "$me" | sort -u); do
			echo "tollgate    $u  $DB_ROLE"
			echo "tollgate    $u  postgres"
		done
	} | as_srv tee "$tmp/pg_ident.conf" >/dev/null

	# Create the role and the database with the server up on the final
	# socket directory, then move the data directory into place: a
	# half-made cluster is never mistaken for a finished one.
	srv_start "$dir" "$tmp"
	local rc=0
	"$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 \
		"host=$(conn_quote "$dir/run") dbname=postgres user=postgres" \
		<<EOF || rc=$?
CREATE ROLE $DB_ROLE LOGIN;
CREATE DATABASE $DB_NAME OWNER $DB_ROLE ENCODING 'UTF8';
\\connect $DB_NAME
ALTER SCHEMA public OWNER TO $DB_ROLE;
EOF
	srv_stop "$dir" "$tmp" fast
	[ "$rc" -eq 0 ] || die "cannot create role/database $DB_NAME"
	mv -- "$tmp" "$dir/pgdata"
	echo "$PROG: initialised cluster in $dir ($(conninfo_of "$dir"))"
}

# the primary lets its users replicate over the socket (pg_hba.conf of a
# cluster made before "standby" existed lacks the line)
allow_replication() {
	local pdir=$1 hba="$1/pgdata/pg_hba.conf"
	if as_srv grep -Eq '^[[:space:]]*local[[:space:]]+replication[[:space:]]' \
		"$hba"; then
		return 0
	fi
	echo "local   replication  all   peer map=tollgate" |
		as_srv tee -a "$hba" >/dev/null ||
		die "cannot add the replication line to $hba"
	as_srv "$PG_BINDIR/pg_ctl" reload -D "$pdir/pgdata" >/dev/null ||
		die "cannot reload the server in $pdir"
	# the reload is asynchronous: wait until the new line is in force
	local _
	for _ in $(seq 1 50); do
		if "$PG_BINDIR/psql" -X -At \
			"host=$(conn_quote "$pdir/run") dbname=postgres user=postgres" \
			-c "SELECT count(*) FROM pg_hba_file_rules
			    WHERE 'replication' = ANY(database)" 2>/dev/null |
			grep -qv '^0$'; then
			return 0
		fi
		sleep 0.1
	done
	die "the server in $pdir did not take the replication line"
}

cmd_standby() {
	local dir pdir
	dir=$(abs_dir "$1")
	pdir=$(abs_dir "$2")
	need_bin pg_basebackup
	need_bin pg_ctl
	check_cluster "$pdir"
	[ "$dir" != "$pdir" ] || die "a standby needs a directory of its own"
	if [ -f "$dir/pgdata/PG_VERSION" ]; then
		[ -f "$dir/pgdata/standby.signal" ] ||
			die "$dir/pgdata holds a cluster that is no standby"
		echo "$PROG: standby in $dir already made"
		return 0
	fi

	# the copy belongs to the user who runs the primary
	adopt_owner "$pdir"
	srv_status "$pdir" || die "the primary in $pdir is not running"
	ensure_srv_user
	mkdir -p -- "$dir"
	ensure_reach "$dir"
	local sock="$dir/run/.s.PGSQL.5432"
	[ ${#sock} -le 107 ] ||
		die "path too long for a unix socket: $sock (${#sock} > 107" \
		    "bytes): choose a shorter DIR"
	allow_replication "$pdir"

	local tmp="$dir/pgdata.new"
	rm -rf -- "$tmp"
	mkdir -m 0700 -- "$tmp"
	mkdir -p -- "$dir/run"
	chmod 0755 -- "$dir/run"
	touch -- "$dir/postgres.log"
	if is_root; then
		chown "$SRV_USER:" -- "$tmp" "$dir/run" "$dir/postgres.log"
	fi

	local src
	src="host=$(conn_quote "$pdir/run") user=postgres"
	src="$src application_name=$(conn_quote "${dir##*/}")"
	as_srv "$PG_BINDIR/pg_basebackup" -D "$tmp" -d "$src" \
		-X stream -R -c fast -w >"$dir/basebackup.log" 2>&1 ||
		die "pg_basebackup failed, see $dir/basebackup.log:
$(tail -n 20 "$dir/basebackup.log")"

	# its own socket; the copied settings name the primary's
	as_srv tee -a "$tmp/postgresql.conf" >/dev/null <<EOF

# --- standby of ${pdir//\'/\'\'} (tools/pg-cluster.sh standby) ---
unix_socket_directories = '${dir//\'/\'\'}/run'
hot_standby = on
EOF
	mv -- "$tmp" "$dir/pgdata"
	echo "$PROG: made a standby of $pdir in $dir ($(conninfo_of "$dir"))"
}

cmd_promote() {
	local dir
	dir=$(abs_dir "$1")
	need_bin pg_ctl
	check_cluster "$dir"
	adopt_owner "$dir"
	[ -f "$dir/pgdata/standby.signal" ] ||
		die "the cluster in $dir is no standby"
	srv_status "$dir" || die "the standby in $dir is not running"
	as_srv "$PG_BINDIR/pg_ctl" promote -w -t 60 -D "$dir/pgdata" \
		>/dev/null || die "the standby in $dir was not promoted"
	echo "$PROG: standby in $dir promoted"
}

cmd_start() {
	local dir
	dir=$(abs_dir "$1")
	need_bin pg_ctl
	check_cluster "$dir"
	adopt_owner "$dir"
	if srv_status "$dir"; then
		echo "$PROG: server in $dir already running"
		return 0
	fi
	ensure_reach "$dir"
	srv_start "$dir" "$dir/pgdata"
	echo "$PROG: server in $dir started"
}

cmd_stop() {
	local dir mode=${2:-fast}
	dir=$(abs_dir "$1")
	case $mode in
	fast|smart|immediate) ;;
	*) die "bad stop mode '$mode' (fast, smart or immediate)" ;;
	esac
	need_bin pg_ctl
	check_cluster "$dir"
	adopt_owner "$dir"
	if ! srv_status "$dir"; then
		echo "$PROG: server in $dir not running"
		return 0
	fi
	srv_stop "$dir" "$dir/pgdata" "$mode"
	echo "$PROG: server in $dir stopped ($mode)"
}

cmd_status() {
	local dir rc=0
	dir=$(abs_dir "$1")
	need_bin pg_ctl
	if [ ! -f "$dir/pgdata/PG_VERSION" ]; then
		echo "no cluster in $dir"
		return 4
	fi
	adopt_owner "$dir"
	local role=
	[ ! -f "$dir/pgdata/standby.signal" ] || role=" (standby)"
	srv_status "$dir" || rc=$?
	case $rc in
	0) echo "running${role}: $dir ($(conninfo_of "$dir"))" ;;
	3) echo "stopped${role}: $dir" ;;
	*) echo "unknown state of $dir (pg_ctl status exit $rc)" ;;
	esac
	return $rc
}

cmd_psql() {
	local dir
	dir=$(abs_dir "$1")
	shift
	need_bin psql
	check_cluster "$dir"
	exec "$PG_BINDIR/psql" "$(conninfo_of "$dir")" "$@"
}

[ $# -ge 1 ] || usage
cmd=$1
shift
case $cmd in
init|start|status|conninfo|promote)
	[ $# -eq 1 ] || usage
	;;
stop)
	[ $# -eq 1 ] || [ $# -eq 2 ] || usage
	;;
standby)
	[ $# -eq 2 ] || usage
	;;
psql)
	[ $# -ge 1 ] || usage
	;;
-h|--help|help)
	usage
	;;
*)
	echo "$PROG: unknown command '$cmd'" >&2
	usage
	;;
esac

case $cmd in
init)     cmd_init "$@" ;;
standby)  cmd_standby "$@" ;;
promote)  cmd_promote "$@" ;;
start)    cmd_start "$@" ;;
stop)     cmd_stop "$@" ;;
status)   cmd_status "$@" ;;
conninfo) conninfo_of "$(abs_dir "$1")" ;;
psql)     cmd_psql "$@" ;;
esac
