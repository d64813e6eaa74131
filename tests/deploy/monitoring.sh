#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# monitoring: deploy/monitoring holds a Prometheus rules file that `promtool check rules`
# accepts and whose `promtool test rules` cases (each alert firing and not firing) pass; a
# Grafana dashboard that is JSON, whose every query Prometheus parses (checked as recording
# rules, Grafana's $__ variables replaced by durations); and docs/operations.md lists exactly
# the alerts the rules file defines. That every name they use is a real metric is checked
# against a real scrape by it_metrics (tests/deploy/metric_names.py).
# shellcheck source=tests/deploy/lib.sh
source "$(dirname "$0")/lib.sh"
need promtool prometheus

dir=$RC_SOURCE_DIR/deploy/monitoring
promtool check rules "$dir/prometheus-rules.yml" >"$tmp/check.log" 2>&1 ||
    { cat "$tmp/check.log" >&2; fail "promtool check rules failed"; }
(cd "$dir" && promtool test rules prometheus-rules.test.yml) >"$tmp/test.log" 2>&1 ||
    { cat "$tmp/test.log" >&2; fail "promtool test rules failed"; }
echo "ok: rules checked and tested"

# Every alert has a test that makes it fire (a non-empty exp_alerts under its name).
sed -nE 's/^ *- alert: *([A-Za-z0-9]+) *$/\1/p' "$dir/prometheus-rules.yml" >"$tmp/rules"
while read -r alert; do
    grep -A2 -E "alertname: $alert\$" "$dir/prometheus-rules.test.yml" | grep -q 'exp_labels' ||
        fail "alert $alert has no test case that fires it"
done <"$tmp/rules"

# The dashboard's queries, as recording rules for promtool to parse.
/usr/bin/python3 - "$dir/grafana-dashboard.json" >"$tmp/dashboard-rules.yml" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
assert doc.get("uid") and doc.get("title"), "dashboard without uid or title"
print("groups:\n  - name: dashboard\n    rules:")
def walk(panels):
    for p in panels:
        for t in p.get("targets", []):
            yield p["title"], t["expr"]
        yield from walk(p.get("panels", []))
n = 0
for title, expr in walk(doc["panels"]):
    expr = expr.replace("$__rate_interval", "5m").replace("$__range", "1h")
    assert "$" not in expr, f"{title}: unknown variable in {expr}"
    n += 1
    print(f"      - record: dashboard:q{n}\n        expr: {json.dumps(expr)}")
assert n > 0, "dashboard without queries"
PY
promtool check rules "$tmp/dashboard-rules.yml" >"$tmp/dash.log" 2>&1 ||
    { cat "$tmp/dash.log" >&2; fail "a dashboard query does not parse"; }
echo "ok: $(grep -c 'record:' "$tmp/dashboard-rules.yml") dashboard queries parse"

# The alerts docs/operations.md lists are the ones the rules file defines.
sort -o "$tmp/rules" "$tmp/rules"
grep -oE '^\| `Research[A-Za-z0-9]+`' "$RC_SOURCE_DIR/docs/operations.md" | tr -d '|` ' | sort >"$tmp/doc"
diff -u "$tmp/rules" "$tmp/doc" >&2 ||
    fail "the alerts in docs/operations.md and deploy/monitoring/prometheus-rules.yml differ (above)"
echo "ok: $(wc -l <"$tmp/rules") alerts documented"
