#!/usr/bin/env bash
# The Debian package: built from this tree (dpkg-buildpackage -b with
# DEB_BUILD_OPTIONS=nocheck, in a copy), its files where they belong, its
# systemd unit verified, lintian if installed; as root it is installed,
# its migrations applied by the installed daemon to a fresh database,
# then removed and purged, leaving the host as it was (a package that is
# already installed is not touched: the install part is skipped).
#
# Run by tools/quickstart.sh test after make check (dpkg -i is not for
# make check): tests/pkg/package.sh.  Prints "N passed, M failed".
set -u

here=$(cd "$(dirname "$0")" && pwd)
: "${top_srcdir:=$(cd "$here/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
export top_srcdir top_builddir

for t in dpkg-buildpackage dpkg-deb dh git; do
	command -v "$t" >/dev/null ||
		{ echo "package.sh: no $t (debhelper, dpkg-dev, git)" >&2; exit 77; }
done

TEST_KEEP=${PACKAGE_KEEP:-}
# shellcheck source=../lib/check.sh
. "$top_srcdir/tests/lib/check.sh"
test_init package || exit 99
DIR=$TEST_DIR
INSTALLED=

PGDIR=
pg_gone() {
	if [ -n "$PGDIR" ] && [ -d "$PGDIR" ]; then
		"$top_srcdir/tools/pg-cluster.sh" stop "$PGDIR" >/dev/null 2>&1
		rm -rf "$PGDIR"
	fi
	PGDIR=
}

# whatever happens, the database stops and a package this run installed
# goes again
test_cleanup_hook() {
	pg_gone
	if [ -n "$INSTALLED" ]; then
		dpkg -P tollgate >/dev/null 2>&1
	fi
}

echo "# build"
mkdir -p "$DIR/src"
if ! (cd "$top_srcdir" &&
      git ls-files -z --cached --others --exclude-standard |
      tar -c --null --ignore-failed-read -T - 2>/dev/null) |
	tar -x -C "$DIR/src"; then
	fail "the source tree copied (git ls-files)"
	summary
	exit
fi
start=$SECONDS
(cd "$DIR/src" &&
 DEB_BUILD_OPTIONS="nocheck parallel=2" dpkg-buildpackage -us -uc -b) \
	>"$DIR/build.log" 2>&1
rc=$?
version=$(sed -n '1s/^tollgate (\([^)]*\)).*/\1/p' "$DIR/src/debian/changelog")
DEB=$(ls "$DIR"/tollgate_"$version"_*.deb 2>/dev/null | head -n 1)
if [ $rc -ne 0 ] || [ -z "$DEB" ]; then
	fail "dpkg-buildpackage -b (nocheck): exit $rc"
	tail -n 30 "$DIR/build.log" >&2
	summary
	exit
fi
ok "dpkg-buildpackage -b (nocheck): ${DEB##*/} in $((SECONDS - start)) s"
check "nocheck honoured: no test ran" \
	sh -c "! grep -Eq '^(PASS|FAIL): ' '$DIR/build.log'"
equal "package version is configure.ac's" "$version" \
	"$(sed -n 's/^AC_INIT(\[tollgate\], \[\([^]]*\)\].*/\1/p' \
		"$top_srcdir/configure.ac")"

echo "# contents"
dpkg-deb --contents "$DEB" | awk '{ print $1, $2, $6 }' >"$DIR/contents"
# has MODE OWNER PATH: the package holds PATH with that mode and owner
has() {
	check "$3 ($1 $2)" grep -qxF -- "$1 $2 ./$3" "$DIR/contents"
}
has -rwxr-xr-x root/root usr/sbin/tollgate
has -rw-r--r-- root/root usr/share/man/man8/tollgate.8.gz
has -rw-r--r-- root/root usr/share/man/man5/tollgate.conf.5.gz
has -rw-r----- root/root etc/tollgate/tollgate.conf
has -rw-r--r-- root/root lib/systemd/system/tollgate.service
has -rw-r--r-- root/root usr/share/doc/tollgate/copyright
n=0
for f in "$top_srcdir"/sql/[0-9]*.sql; do
	grep -qxF -- "-rw-r--r-- root/root ./usr/share/tollgate/sql/${f##*/}" \
		"$DIR/contents" || fail "migration ${f##*/} in /usr/share/tollgate/sql"
	n=$((n + 1))
done
equal "every migration of sql/ packaged" \
	"$(grep -c '^-.* ./usr/share/tollgate/sql/[0-9].*\.sql$' "$DIR/contents")" "$n"
check "the configuration is a conffile" \
	sh -c "dpkg-deb -I '$DEB' conffiles | grep -qx /etc/tollgate/tollgate.conf"
mkdir -p "$DIR/x"
dpkg-deb -x "$DEB" "$DIR/x"
check "the configuration's state_dir is the unit's StateDirectory" \
	grep -qx 'state_dir /var/lib/tollgate' "$DIR/x/etc/tollgate/tollgate.conf"
check "the packaged daemon looks for migrations in /usr/share/tollgate/sql" \
	sh -c "'$DIR/x/usr/sbin/tollgate' --help |
		grep -q 'default /usr/share/tollgate/sql)'"

echo "# systemd unit"
UNIT=$DIR/x/lib/systemd/system/tollgate.service
for l in Type=notify User=tollgate StateDirectory=tollgate \
	 'ExecStart=/usr/sbin/tollgate -f /etc/tollgate/tollgate.conf' \
	 Restart=on-failure ProtectSystem=strict NoNewPrivileges=yes \
	 CapabilityBoundingSet=CAP_NET_BIND_SERVICE; do
	check "unit: $l" grep -qxF "$l" "$UNIT"
done
check "unit: ExecReload sends SIGHUP (a reload of the configuration)" \
	grep -qxF 'ExecReload=/bin/kill -HUP $MAINPID' "$UNIT"
if command -v systemd-analyze >/dev/null; then
	# the unit as packaged, its binary taken from the extracted package
	sed "s|/usr/sbin/tollgate|$DIR/x/usr/sbin/tollgate|" "$UNIT" \
		>"$DIR/tollgate.service"
	check "systemd-analyze verify (extracted)" \
		systemd-analyze verify --man=no "$DIR/tollgate.service"
else
	echo "# no systemd-analyze: unit not verified"
fi

if command -v lintian >/dev/null; then
	lintian "$DEB" >"$DIR/lintian.log" 2>&1
	check "lintian: no errors" sh -c "! grep -q '^E: ' '$DIR/lintian.log'"
	grep '^[EW]: ' "$DIR/lintian.log" | sed 's/^/# lintian: /'
fi

echo "# install, remove, purge"
if [ "$(id -u)" -ne 0 ]; then
	echo "# not root: not installed"
	summary
	exit
fi
if dpkg-query -W -f '${Status}' tollgate 2>/dev/null | grep -q installed; then
	echo "# a package tollgate is installed here: not touched"
	summary
	exit
fi
user_before=$(getent passwd tollgate)
group_before=$(getent group tollgate)
state_before=$([ -e /var/lib/tollgate ] && echo yes)

INSTALLED=yes
if dpkg -i "$DEB" >"$DIR/install.log" 2>&1; then
	ok "dpkg -i"
else
	fail "dpkg -i"
	cat "$DIR/install.log" >&2
fi
check "user tollgate" sh -c "getent passwd tollgate >/dev/null"
equal "configuration mode and owner" \
	"$(stat -c '%a %U %G' /etc/tollgate/tollgate.conf)" "640 root tollgate"
equal "state directory" "$(stat -c '%a %U' /var/lib/tollgate)" "750 tollgate"
check "installed daemon runs" sh -c "/usr/sbin/tollgate --version >/dev/null"
if command -v systemd-analyze >/dev/null; then
	check "systemd-analyze verify (installed)" \
		systemd-analyze verify /lib/systemd/system/tollgate.service
fi

# the installed daemon migrates an empty database from /usr/share/tollgate
# (a cluster of tools/pg-cluster.sh, stopped and removed at once)
PG=$top_srcdir/tools/pg-cluster.sh
PGDIR=
if [ -x "${PG_BINDIR:-/usr/lib/postgresql/15/bin}/initdb" ] &&
   PGDIR=$(mktemp -d /tmp/tollgate-pkgpg.XXXXXX) && chmod 0755 "$PGDIR" &&
   "$PG" init "$PGDIR" >"$DIR/pg.log" 2>&1 &&
   "$PG" start "$PGDIR" >>"$DIR/pg.log" 2>&1; then
	ci=$("$PG" conninfo "$PGDIR")
	/usr/sbin/tollgate --migrate -d "$ci" >"$DIR/migrate.log" 2>&1
	equal "--migrate of the installed daemon: exit status" "$?" 0
	equal "--migrate applied every migration" \
		"$("$PG" psql "$PGDIR" -X -At \
			-c 'SELECT count(*) FROM schema_version' 2>&1)" "$n"
else
	fail "a PostgreSQL cluster for --migrate (see $DIR/pg.log)"
fi
pg_gone

dpkg -r tollgate >"$DIR/remove.log" 2>&1
equal "dpkg -r" "$?" 0
check "removed: no daemon" test ! -e /usr/sbin/tollgate
check "removed: the configuration stays" test -e /etc/tollgate/tollgate.conf
dpkg -P tollgate >"$DIR/purge.log" 2>&1
equal "dpkg -P" "$?" 0
INSTALLED=
check "purged: no configuration" test ! -e /etc/tollgate
check "purged: no statoverride" \
	sh -c "! dpkg-statoverride --list /etc/tollgate/tollgate.conf"
check "purged: nothing of the package left in /lib/systemd" \
	test ! -e /lib/systemd/system/tollgate.service
equal "purged: the state directory as before" \
	"$([ -e /var/lib/tollgate ] && echo yes)" "$state_before"
equal "purged: user tollgate as before" "$(getent passwd tollgate)" \
	"$user_before"
equal "purged: group tollgate as before" "$(getent group tollgate)" \
	"$group_before"
check "purged: dpkg knows no tollgate" \
	sh -c "! dpkg-query -W -f '\${Status}' tollgate 2>/dev/null |
		grep -q installed"

# A host without a user tollgate (tools/pg-cluster.sh makes one where it
# runs as root, so the host of this test has one): in a mount namespace
# whose /etc, /usr and /var are overlays that go with it, without the
# user, the package makes the user and its purge removes it again.
echo "# install and purge where no user tollgate exists (overlays)"
fresh() {
	local o=$DIR/ov d
	for d in etc usr var; do
		mkdir -p "$o/$d.up" "$o/$d.work"
		mount -t overlay overlay -o "lowerdir=/$d,upperdir=$o/$d.up,workdir=$o/$d.work" "/$d" ||
			{ echo "fail overlay of /$d"; return; }
	done
	# renamed, not removed: its ids stay taken, as those of its processes
	# (userdel refuses a user id that processes run as)
	for f in passwd group shadow gshadow; do
		[ -f "/etc/$f" ] && sed -i 's/^tollgate:/tollgate-host:/' "/etc/$f"
	done
	getent passwd tollgate >/dev/null && { echo "fail no user tollgate to start with"; return; }
	if dpkg -i "$DEB" >"$DIR/fresh-install.log" 2>&1; then
		echo "ok fresh: dpkg -i"
	else
		echo "fail fresh: dpkg -i"
	fi
	getent passwd tollgate >/dev/null && echo "ok fresh: the package made user tollgate" ||
		echo "fail fresh: the package made user tollgate"
	[ "$(getent passwd tollgate | cut -d: -f6,7)" = /var/lib/tollgate:/usr/sbin/nologin ] &&
		echo "ok fresh: its home /var/lib/tollgate, no login shell" ||
		echo "fail fresh: its home and shell: $(getent passwd tollgate)"
	[ "$(stat -c '%a %U %G' /etc/tollgate/tollgate.conf)" = "640 root tollgate" ] &&
		echo "ok fresh: configuration 0640 root:tollgate" ||
		echo "fail fresh: configuration $(stat -c '%a %U %G' /etc/tollgate/tollgate.conf)"
	dpkg -P tollgate >"$DIR/fresh-purge.log" 2>&1 && echo "ok fresh: dpkg -P" ||
		echo "fail fresh: dpkg -P"
	getent passwd tollgate >/dev/null && echo "fail fresh: purge removed the user" ||
		echo "ok fresh: purge removed the user"
	getent group tollgate >/dev/null && echo "fail fresh: purge removed the group" ||
		echo "ok fresh: purge removed the group"
	[ ! -e /var/lib/tollgate ] && echo "ok fresh: purge removed /var/lib/tollgate" ||
		echo "fail fresh: purge removed /var/lib/tollgate"
}
if command -v unshare >/dev/null &&
   unshare -m true 2>/dev/null; then
	export DIR DEB
	export -f fresh
	unshare -m bash -c fresh >"$DIR/fresh.results" 2>"$DIR/fresh.err"
	while read -r word desc; do
		case $word in
		ok) ok "$desc" ;;
		fail) fail "$desc" ;;
		esac
	done <"$DIR/fresh.results"
	grep -q '^ok fresh: purge removed the user' "$DIR/fresh.results" ||
		cat "$DIR/fresh.err" >&2
else
	echo "# no mount namespace: the path of a fresh host not tried"
fi

summary
