# SPDX-License-Identifier: MIT
# lib.sh: what the deploy checks share. Sourced; expects RC_SOURCE_DIR, RC_BUILD_DIR,
# RC_BIN_DIR, RC_VERSION, RC_CMAKE and RC_CPACK from tests/deploy/CMakeLists.txt.
set -Eeuo pipefail
# A command that fails where nothing expected it says so, instead of a silent exit 1.
# shellcheck disable=SC2154 # status is set by the trap itself
trap 'status=$?; echo "FAIL: ${0##*/}: line $LINENO: \"$BASH_COMMAND\" exited $status" >&2' ERR

: "${RC_SOURCE_DIR:?}" "${RC_BUILD_DIR:?}" "${RC_BIN_DIR:?}" "${RC_VERSION:?}"
RC_CMAKE=${RC_CMAKE:-cmake}
RC_CPACK=${RC_CPACK:-cpack}
check_name=$(basename "$0" .sh)

# skip WHY: exit 77 (ctest: skipped), or fail where every test must run (CI).
skip() {
    if [[ ${IT_REQUIRE_ALL:-0} == 1 || ${CI:-} == true ]]; then
        echo "ERROR: would skip, but CI=true or IT_REQUIRE_ALL=1: $*" >&2
        exit 1
    fi
    echo "SKIP: $*"
    exit 77
}

fail() {
    echo "FAIL: $check_name: $*" >&2
    exit 1
}

# need TOOL PACKAGE: skip unless TOOL is on PATH.
need() {
    command -v "$1" >/dev/null 2>&1 || skip "$1 not found (Debian package $2)"
}

# The temp dir, removed on exit unless DEPLOY_KEEP=1.
tmp=$(mktemp -d "${TMPDIR:-/tmp}/rc-$check_name.XXXXXX")
cleanup() {
    if [[ ${DEPLOY_KEEP:-0} == 1 ]]; then
        echo "kept $tmp"
    else
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT

# install_to DESTDIR PREFIX: cmake --install the build tree; its output goes to DESTDIR.log.
install_to() {
    if ! DESTDIR=$1 "$RC_CMAKE" --install "$RC_BUILD_DIR" --prefix "$2" >"$1.log" 2>&1; then
        cat "$1.log" >&2
        fail "cmake --install --prefix $2 failed"
    fi
}

# has_line FILE LINE: FILE has LINE exactly.
has_line() {
    grep -qxF -- "$2" "$1" || fail "${1#"$tmp"/}: no line '$2'"
}

# mode_of FILE: its permission bits in octal.
mode_of() {
    stat -c %a "$1"
}
