#!/usr/bin/env bash
# contrib/grafana/tollgate.json: valid JSON, the data source a template
# variable every query uses, and every metric it queries one the daemon
# exports (api/*.c); the per-gateway ASR and ACD series are checked once
# the source exports them.  Prints "N passed, M failed".
set -u

here=$(cd "$(dirname "$0")" && pwd)
: "${top_srcdir:=$(cd "$here/../.." && pwd)}"
command -v python3 >/dev/null || { echo "grafana.sh: no python3" >&2; exit 77; }

# shellcheck source=../lib/check.sh
. "$top_srcdir/tests/lib/check.sh"
test_init grafana || exit 99
DIR=$TEST_DIR

DASH=$top_srcdir/contrib/grafana/tollgate.json
check "valid JSON" python3 -m json.tool "$DASH" /dev/null

python3 - "$DASH" >"$DIR/report" 2>&1 <<'PY'
import json, re, sys
d = json.load(open(sys.argv[1]))
vars = {v["name"]: v for v in d["templating"]["list"]}
ds = vars.get("datasource", {})
print("datasource-var", ds.get("type") == "datasource" and ds.get("query") == "prometheus")
bad = []
exprs = []
def walk(panels):
    for p in panels:
        walk(p.get("panels", []))
        if p["type"] == "row":
            continue
        if p.get("datasource", {}).get("uid") != "${datasource}":
            bad.append(p["title"])
        for t in p.get("targets", []):
            if t.get("datasource", {}).get("uid") != "${datasource}":
                bad.append(p["title"])
            exprs.append(t["expr"])
walk(d["panels"])
print("panels-on-var", not bad, ",".join(bad))
print("targets", len(exprs))
for m in sorted({m for e in exprs for m in re.findall(r"tollgate_[a-z0-9_]+", e)}):
    print("metric", m)
PY
DIR=$TEST_DIR
equal "the data source is a template variable" \
	"$(sed -n 's/^datasource-var //p' "$DIR/report")" True
equal "every panel and query uses it" \
	"$(sed -n 's/^panels-on-var //p' "$DIR/report")" "True "
within "queries" "$(sed -n 's/^targets //p' "$DIR/report")" 20 200

# a name in the source as the daemon writes it: "NAME", "NAME{..." or
# "NAME VALUE", not a longer name it begins
exported() {
	grep -rqE "\"$1([\" {]|\$)" "$top_srcdir"/api/ "$top_srcdir"/b2bua/
}
for m in $(sed -n 's/^metric //p' "$DIR/report"); do
	case $m in
	tollgate_gateway_asr|tollgate_gateway_acd_seconds)
		exported "$m" ||
			{ echo "# $m: not exported by this source yet"; continue; } ;;
	esac
	check "exported: $m" exported "$m"
done

summary
