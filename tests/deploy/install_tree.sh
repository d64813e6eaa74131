#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# install_tree: `cmake --install` puts the binaries, manual pages, docs, systemd units and the
# environment file where they belong for the prefixes /usr (/etc, as the .deb), /usr/local
# and /opt/...; the units name the installed paths; tests are not installed; an operator's
# environment file is never overwritten.
# shellcheck source=tests/deploy/lib.sh
source "$(dirname "$0")/lib.sh"

tools=(coordinator devbroker rcw-exec researchctl stub-worker)

# check_tree ROOT PREFIX ETC: the tree under ROOT installed with PREFIX, config in ETC.
check_tree() {
    local root=$1 prefix=$2 etc=$3 t f unit
    local p=$root$prefix
    # Exactly the five tools in bin: no test, fuzzer or helper.
    [[ $(ls "$p/bin" | tr "\n" " ") == "${tools[*]} " ]] ||
        fail "$prefix/bin holds $(ls "$p/bin" | tr '\n' ' '), want ${tools[*]}"
    for t in "${tools[@]}"; do
        [[ -x $p/bin/$t ]] || fail "$prefix/bin/$t is not executable"
        [[ -s $p/share/man/man1/$t.1.gz ]] || fail "no manual page $prefix/share/man/man1/$t.1.gz"
        gzip -t "$p/share/man/man1/$t.1.gz" || fail "$t.1.gz is not gzip"
    done
    "$p/bin/coordinator" --version >/dev/null || fail "installed coordinator does not run"
    for f in README.md README.deploy.md coordinator.env.example copyright changelog.gz \
        docs/protocol.md docs/operations.md docs/researchctl.md docs/benchmark.md docs/design.md \
        docs/testing.md docs/workers.md; do
        [[ -s $p/share/doc/research-coordinator/$f ]] ||
            fail "no $prefix/share/doc/research-coordinator/$f"
    done
    for f in grafana-dashboard.json prometheus-rules.yml prometheus-rules.test.yml; do
        [[ -s $p/share/research-coordinator/monitoring/$f ]] ||
            fail "no $prefix/share/research-coordinator/monitoring/$f"
    done
    unit=$p/lib/systemd/system/research-coordinator.service
    [[ -f $unit ]] || fail "no unit $prefix/lib/systemd/system/research-coordinator.service"
    [[ -f $p/lib/systemd/system/research-stub-worker@.service ]] ||
        fail "no unit research-stub-worker@.service"
    has_line "$unit" "ExecStart=$prefix/bin/coordinator"
    has_line "$unit" "EnvironmentFile=$etc/research-coordinator/coordinator.env"
    has_line "$p/lib/systemd/system/research-stub-worker@.service" \
        "EnvironmentFile=$etc/research-coordinator/coordinator.env"
    if grep -n '@[A-Z_]*@' "$p"/lib/systemd/system/*.service; then
        fail "a unit has a placeholder left"
    fi
    f=$root$etc/research-coordinator/coordinator.env
    [[ -f $f ]] || fail "no $etc/research-coordinator/coordinator.env"
    [[ $(mode_of "$f") == 600 ]] || fail "coordinator.env has mode $(mode_of "$f"), want 600"
    cmp -s "$f" "$RC_SOURCE_DIR/deploy/coordinator.env.example" ||
        fail "coordinator.env differs from deploy/coordinator.env.example"
    # librcworker: the archive, its pkg-config file and headers; a worker builds against them.
    check_rcworker "$p"
    # Nothing else: no other include, lib, test or CMake file anywhere.
    local expected="$prefix/(bin|share/(man|doc|lintian|research-coordinator/monitoring))/"
    expected+="|$prefix/lib/systemd/system/"
    expected+="|$prefix/include/rcworker/(rcw|common/rc_err|proto/value)\.h$"
    expected+="|$prefix/lib(/[^/]+)?/(librcworker\.a|pkgconfig/rcworker\.pc)$"
    expected+="|$etc/research-coordinator/"
    if find "$root" -type f | grep -Ev "^$root($expected)"; then
        fail "files installed outside the expected folders (above)"
    fi
    echo "ok: prefix $prefix, config in $etc"
}

# check_rcworker P: the example C worker compiles and links against the tree under P, with the
# flags of its rcworker.pc alone (the pc file finds its prefix from where it lies).
check_rcworker() {
    local p=$1 pc
    pc=$(find "$p" -name rcworker.pc)
    [[ -n $pc ]] || fail "no rcworker.pc under $p"
    [[ -s $(dirname "$(dirname "$pc")")/librcworker.a ]] || fail "no librcworker.a beside $pc"
    for f in rcw.h common/rc_err.h proto/value.h; do
        [[ -s $p/include/rcworker/$f ]] || fail "no include/rcworker/$f"
    done
    command -v pkg-config >/dev/null && command -v cc >/dev/null || return 0
    local flags
    flags=$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --cflags --libs rcworker) ||
        fail "pkg-config rcworker failed"
    # shellcheck disable=SC2086 # $flags is words
    cc -std=c11 -Wall -Werror -o "$tmp/example" "$RC_SOURCE_DIR/examples/c/training_worker.c" \
        $flags || fail "examples/c/training_worker.c does not build against $p"
    rm -f "$tmp/example"
}

install_to "$tmp/usr" /usr
check_tree "$tmp/usr" /usr /etc
has_line "$tmp/usr/usr/share/lintian/overrides/research-coordinator" \
    "# Tags of lintian on the research-coordinator .deb that are on purpose."

install_to "$tmp/local" /usr/local
check_tree "$tmp/local" /usr/local /usr/local/etc

install_to "$tmp/opt" /opt/research-coordinator
check_tree "$tmp/opt" /opt/research-coordinator /etc/opt/research-coordinator

# A second install keeps the operator's environment file and says so.
env_file=$tmp/usr/etc/research-coordinator/coordinator.env
echo "KAFKA_BROKERS=kafka-1:9092" >>"$env_file"
install_to "$tmp/usr" /usr
tail -n 1 "$env_file" | grep -qxF "KAFKA_BROKERS=kafka-1:9092" ||
    fail "a second cmake --install overwrote the environment file"
grep -q "Keeping: .*coordinator.env" "$tmp/usr.log" ||
    fail "the second install did not say it kept the environment file"
echo "ok: an existing environment file is kept"
