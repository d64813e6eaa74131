#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test.sh: everything CI checks, in order, stopping at the first failure: dependencies, lint
# (cppcheck), the normal build and all its tests, the ASan+UBSan build and its tests, the
# libFuzzer build and its fuzz runs. Prints a summary with each stage's time. With CI=true a skipped test fails
# (IT_REQUIRE_ALL=1) and a ctest run that finds no test fails.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
jobs=${RC_JOBS:-2}
# Tests run wider than builds: integration tests mostly wait on the processes they start
# (about a third of a core each), so four at a time use two cores well.
test_jobs=${RC_TEST_JOBS:-4}

if [[ ${CI:-} == true ]]; then
    export IT_REQUIRE_ALL=1
fi
ctest_args=(--output-on-failure -j"$test_jobs")
if [[ ${IT_REQUIRE_ALL:-0} == 1 ]]; then
    ctest_args+=(--no-tests=error)
fi

names=()
results=()
times=()
start_all=$SECONDS

summary() {
    echo
    echo "==== summary ===="
    for i in "${!names[@]}"; do
        printf '  %-12s %-6s %4ds\n' "${names[$i]}" "${results[$i]}" "${times[$i]}"
    done
    printf '  %-12s %-6s %4ds\n' total "$1" $((SECONDS - start_all))
    echo "ctest: $n_passed passed, $n_failed failed"
}

# stage NAME COMMAND...: run one stage, record its time; on failure print the summary and exit
# with the stage's status.
stage() {
    local name=$1 t0=$SECONDS rc=0
    shift
    echo
    echo "==== $name ===="
    "$@" || rc=$?
    names+=("$name")
    times+=($((SECONDS - t0)))
    if [[ $rc -ne 0 ]]; then
        results+=(FAILED)
        summary FAILED
        exit "$rc"
    fi
    results+=(ok)
}

# build DIR CMAKE_ARGS...: configure and build one tree.
build() {
    local dir=$1
    shift
    cmake -S "$root" -B "$dir" "$@" || return
    cmake --build "$dir" -j"$jobs" || return
}

# run_ctest DIR ARGS...: ctest in DIR; adds its counts to the totals printed at the end.
run_ctest() {
    local dir=$1 out rc=0 line total failed
    shift
    out=$(mktemp)
    ctest --test-dir "$dir" "${ctest_args[@]}" "$@" 2>&1 | tee "$out" || rc=$?
    line=$(grep -E '[0-9]+ tests? failed out of [0-9]+' "$out" | tail -n 1 || true)
    rm -f "$out"
    if [[ $line =~ ([0-9]+)\ tests?\ failed\ out\ of\ ([0-9]+) ]]; then
        failed=${BASH_REMATCH[1]}
        total=${BASH_REMATCH[2]}
        n_failed=$((n_failed + failed))
        n_passed=$((n_passed + total - failed))
    fi
    return "$rc"
}

run_asan_tests() {
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        run_ctest build-asan
}

build_fuzz() {
    CC=clang build build-fuzz -DRC_FUZZ=ON -DRC_FUZZ_SECONDS="${RC_FUZZ_SECONDS:-15}"
}

# lint: cppcheck over every source; a finding fails the run (inline suppressions carry a
# reason next to them).
lint() {
    cppcheck --quiet --enable=warning,portability --std=c11 -I "$root" -D_POSIX_C_SOURCE=200809L \
        -D__GNUC__ -DRC_VERSION='"lint"' -DRC_BIN_DIR='"lint"' --inline-suppr \
        --suppress=missingIncludeSystem --error-exitcode=1 \
        --template='{file}:{line}: {severity}: {id}: {message}' \
        "$root/common" "$root/contract" "$root/proto" "$root/worker" "$root/coordinator" \
        "$root/tools" "$root/examples" "$root/tests"
}

n_passed=0
n_failed=0

stage deps bash scripts/deps.sh
stage lint lint
stage build build build -DCMAKE_BUILD_TYPE=RelWithDebInfo
stage test run_ctest build
stage build-asan build build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRC_SANITIZE=ON
stage test-asan run_asan_tests
stage build-fuzz build_fuzz
stage fuzz run_ctest build-fuzz -L fuzz
summary ok
