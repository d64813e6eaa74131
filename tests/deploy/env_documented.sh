#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# env_documented: deploy/coordinator.env.example (installed as coordinator.env) documents every
# variable that `coordinator --print-config` prints: a commented-out line VAR=<the default>,
# with a comment right above it. Every variable it shows is one the coordinator knows (or a
# KAFKA_PROP_* example).
# shellcheck source=tests/deploy/lib.sh
source "$(dirname "$0")/lib.sh"

example=$RC_SOURCE_DIR/deploy/coordinator.env.example
# The defaults: an environment with none of the coordinator's variables.
env -i PATH="$PATH" "$RC_BIN_DIR/coordinator" --print-config >"$tmp/defaults" ||
    fail "coordinator --print-config failed"
[[ -s $tmp/defaults ]] || fail "coordinator --print-config printed nothing"

n=0
while IFS= read -r line; do
    [[ $line =~ ^([A-Z][A-Z0-9_]*)=(.*)$ ]] || fail "unexpected --print-config line: $line"
    var=${BASH_REMATCH[1]}
    lineno=$(grep -nxF -- "#$line" "$example" | head -n 1 | cut -d: -f1 || true)
    if [[ -z $lineno ]]; then
        if grep -nE "^#?$var=" "$example" >&2; then
            fail "$var: the example shows another value (above) than the default '$line'"
        fi
        fail "$var is not in deploy/coordinator.env.example (want a line '#$line' under a comment)"
    fi
    above=$(sed -n "$((lineno - 1))p" "$example")
    [[ $above == "# "* ]] || fail "$var: no comment line right above '#$line'"
    n=$((n + 1))
done <"$tmp/defaults"
echo "ok: $n variables of --print-config documented with their defaults"

# The other way round: every VAR= the example shows is one the coordinator knows.
grep -oE '^#?[A-Z][A-Z0-9_]*=' "$example" | tr -d '#=' | sort -u >"$tmp/shown"
cut -d= -f1 "$tmp/defaults" | sort -u >"$tmp/known"
unknown=$(comm -23 "$tmp/shown" "$tmp/known" | grep -v '^KAFKA_PROP_' || true)
[[ -z $unknown ]] || fail "the example shows variables the coordinator does not know: $unknown"
grep -q 'KAFKA_PROP_<NAME>' "$example" || fail "the example does not explain KAFKA_PROP_<NAME>"
"$RC_BIN_DIR/coordinator" --help | grep -q 'KAFKA_PROP_<NAME>' ||
    fail "coordinator --help no longer lists KAFKA_PROP_<NAME>"
echo "ok: every variable the example shows is known"
