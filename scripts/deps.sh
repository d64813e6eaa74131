#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# deps.sh: install what building and testing need on Debian (bookworm) when it is missing.
# Idempotent and quiet when everything is there; runs apt-get (through sudo when not root)
# only for missing packages.
set -euo pipefail

packages=(build-essential cmake pkg-config clang cppcheck librdkafka-dev libhiredis-dev
          libmsgpack-dev libmicrohttpd-dev libcmocka-dev redis-server redis-sentinel git jq prometheus
          lintian docker-compose systemd dpkg-dev binutils python3-celery python3-redis
          python3-confluent-kafka python3-msgpack python3-pytest python3-venv python3-pip)

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

missing=()
for p in "${packages[@]}"; do
    installed "$p" || missing+=("$p")
done
# clang's runtime (libFuzzer, sanitizers): either name will do when present.
clang_rt_missing=1
if installed libclang-rt-dev || installed libclang-rt-14-dev; then
    clang_rt_missing=0
fi

if [[ ${#missing[@]} -eq 0 && $clang_rt_missing -eq 0 ]]; then
    exit 0
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then
    if ! command -v sudo >/dev/null 2>&1; then
        echo "deps.sh: missing ${missing[*]} and not root (no sudo): install them" >&2
        exit 1
    fi
    sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
if [[ $clang_rt_missing -eq 1 ]]; then
    # The unversioned name follows the default clang; older releases only have the versioned.
    if apt-cache show libclang-rt-dev >/dev/null 2>&1; then
        missing+=(libclang-rt-dev)
    else
        missing+=(libclang-rt-14-dev)
    fi
fi
echo "deps.sh: installing ${missing[*]}" >&2
"${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
echo "deps.sh: done" >&2
