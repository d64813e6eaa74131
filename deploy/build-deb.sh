#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# build-deb.sh [BUILD_DIR]: the .deb to ship. Configures BUILD_DIR (default build-deb/) as a
# Release build with Debian's hardening flags (dpkg-buildflags: fortify, stack protector,
# relro and bindnow), builds the four tools and their manual pages, and runs cpack -G DEB
# there. Prints the package's path. Needs the build dependencies (scripts/deps.sh) and
# dpkg-dev.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build-deb}

export DEB_BUILD_MAINT_OPTIONS=hardening=+all
# CMake reads CFLAGS and LDFLAGS when it first configures a tree; it has no CPPFLAGS.
CFLAGS="$(dpkg-buildflags --get CFLAGS) $(dpkg-buildflags --get CPPFLAGS)" \
    LDFLAGS="$(dpkg-buildflags --get LDFLAGS)" \
    cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr \
    -DCMAKE_SKIP_INSTALL_ALL_DEPENDENCY=ON >/dev/null
# What the package holds; the tests are not built (SKIP_INSTALL_ALL_DEPENDENCY: cpack does
# not build everything first).
cmake --build "$dir" -j"$(nproc)" \
    --target coordinator researchctl stub-worker devbroker rc_manpages
(cd "$dir" && cpack -G DEB >/dev/null)
(cd "$dir" && ls "$PWD"/research-coordinator_*.deb)
