#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Every metric a dashboard or a rules file names must be one the coordinator exports.

    metric_names.py SCRAPE FILE...

SCRAPE is a /metrics body saved from a real run; each FILE is a Grafana dashboard (JSON:
every target's `expr`) or a Prometheus rules file (YAML: every `expr`). A name counts as
exported when the scrape declares it (`# TYPE`), or when it is a histogram's `_bucket`,
`_sum` or `_count` series. Exit 0 when all are; else 1, naming each missing one and where it
was found. Expressions are read as text, so a name is anything that looks like `rc_...`.
"""
import json
import re
import sys

NAME = re.compile(r"\brc_[a-z0-9_]+\b")


def exported(scrape_text):
    names = set()
    for line in scrape_text.splitlines():
        m = re.match(r"# TYPE (\S+) (\S+)", line)
        if not m:
            continue
        names.add(m.group(1))
        if m.group(2) == "histogram":
            names.update(m.group(1) + s for s in ("_bucket", "_sum", "_count"))
    return names


def dashboard_exprs(doc):
    def walk(panels):
        for p in panels:
            for t in p.get("targets", []):
                if "expr" in t:
                    yield p.get("title", "?"), t["expr"]
            yield from walk(p.get("panels", []))
    yield from walk(doc.get("panels", []))


def rules_exprs(text):
    # The rules file is plain YAML whose `expr:` values fit on one line (kept so on purpose,
    # to read it without a YAML library).
    for line in text.splitlines():
        m = re.match(r"\s*(?:-\s*)?(alert|record):\s*(\S+)", line)
        if m:
            where = m.group(2)
        m = re.match(r"\s*expr:\s*(.+)$", line)
        if m:
            yield where, m.group(1)


def main(argv):
    if len(argv) < 3:
        print(__doc__.strip(), file=sys.stderr)
        return 64
    with open(argv[1]) as f:
        have = exported(f.read())
    if not have:
        print(f"{argv[1]}: no `# TYPE` line: not a scrape", file=sys.stderr)
        return 1
    missing, seen = [], 0
    for path in argv[2:]:
        with open(path) as f:
            text = f.read()
        exprs = dashboard_exprs(json.loads(text)) if path.endswith(".json") else rules_exprs(text)
        for where, expr in exprs:
            for name in NAME.findall(expr):
                seen += 1
                if name not in have:
                    missing.append(f"{path}: {where}: {name}")
    for m in missing:
        print(f"not in the scrape: {m}", file=sys.stderr)
    if seen == 0:
        print("no metric names found in the files", file=sys.stderr)
        return 1
    print(f"{seen} metric references, {len(missing)} missing")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
