#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# systemd_verify: the installed units pass `systemd-analyze verify` with nothing to say (no
# unknown directive, no bad value), keep the settings the deployment relies on, and rate as
# well hardened by `systemd-analyze security`. verify needs ExecStart's binary to exist: the
# installed units are checked with their paths pointed at the build tree and a temp
# environment file.
# shellcheck source=tests/deploy/lib.sh
source "$(dirname "$0")/lib.sh"

need systemd-analyze systemd

install_to "$tmp/root" /usr
units=$tmp/root/usr/lib/systemd/system
mkdir "$tmp/units"
touch "$tmp/c.env"
for unit in research-coordinator.service research-stub-worker@.service; do
    etc=/etc/research-coordinator
    sed -e "s|^ExecStart=/usr/bin/|ExecStart=$RC_BIN_DIR/|" \
        -e "s|^EnvironmentFile=$etc/coordinator.env\$|EnvironmentFile=$tmp/c.env|" \
        -e "s|^EnvironmentFile=-$etc/|EnvironmentFile=-$tmp/|" \
        "$units/$unit" >"$tmp/units/$unit"
done
cp "$tmp/units/research-stub-worker@.service" "$tmp/units/research-stub-worker@training.service"

# verify UNIT: no output at all (systemd-analyze verify exits 0 even on an unknown key).
verify() {
    local out status=0
    # --man=no: the pages are checked by install_tree and deb_package, and are not installed here.
    out=$(cd "$tmp/units" && systemd-analyze verify --man=no "$tmp/units/$1" 2>&1) || status=$?
    if [[ $status -ne 0 || -n $out ]]; then
        echo "$out" >&2
        fail "systemd-analyze verify $1: exit $status, output above"
    fi
    echo "ok: systemd-analyze verify $1"
}
verify research-coordinator.service
verify research-stub-worker@training.service

# What the deployment relies on (docs/operations.md, deploy/README.md): the user, the restart policy
# (no restart on 78, a bad configuration), the stop timeout, the hardening and the resource
# limits (no core dump: it would hold the environment's secrets).
unit=$units/research-coordinator.service
for line in Type=exec User=research-coordinator Group=research-coordinator \
    ExecStart=/usr/bin/coordinator \
    EnvironmentFile=/etc/research-coordinator/coordinator.env \
    Restart=on-failure RestartPreventExitStatus=78 KillSignal=SIGTERM TimeoutStopSec=15 \
    NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes PrivateDevices=yes \
    ProtectKernelTunables=yes ProtectKernelModules=yes ProtectKernelLogs=yes \
    ProtectControlGroups=yes ProtectClock=yes ProtectHostname=yes \
    "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX" RestrictNamespaces=yes \
    RestrictRealtime=yes RestrictSUIDSGID=yes LockPersonality=yes MemoryDenyWriteExecute=yes \
    SystemCallArchitectures=native SystemCallFilter=@system-service CapabilityBoundingSet= \
    UMask=0077 LimitNOFILE=65536 LimitCORE=0 MemoryMax=2G TasksMax=64 \
    WantedBy=multi-user.target; do
    has_line "$unit" "$line"
done
grep -qE '^RestartSec=[1-9]' "$unit" || fail "no RestartSec"

# systemd's own rating: 0 (locked down) to 10 (exposed); a regression above 2 fails.
exposure=$(systemd-analyze security --offline=yes --no-pager \
    "$tmp/units/research-coordinator.service" 2>&1 |
    sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p')
[[ -n $exposure ]] || fail "systemd-analyze security printed no exposure level"
echo "ok: systemd-analyze security: exposure $exposure"
awk -v e="$exposure" 'BEGIN { exit !(e <= 2.0) }' || fail "exposure $exposure > 2.0"
