#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# deb_package: `cpack -G DEB` builds research-coordinator_<version>_<arch>.deb whose control
# data (dpkg-deb --info) names Debian's runtime libraries as found by dpkg-shlibdeps, carries
# the maintainer scripts and marks the environment file as a conffile, whose files (dpkg-deb
# --contents) are where Debian wants them, and which lintian passes without errors (its
# warnings are printed).
# shellcheck source=tests/deploy/lib.sh
source "$(dirname "$0")/lib.sh"

need dpkg-deb dpkg
need dpkg-shlibdeps dpkg-dev
need lintian lintian
need readelf binutils

# The package, built in the temp dir (-B): nothing is written to the build tree but the
# generated units of this prefix.
if ! "$RC_CPACK" -G DEB --config "$RC_BUILD_DIR/CPackConfig.cmake" -B "$tmp/pkg" \
    >"$tmp/cpack.log" 2>&1; then
    cat "$tmp/cpack.log" >&2
    fail "cpack -G DEB failed"
fi
arch=$(dpkg --print-architecture)
deb=$tmp/pkg/research-coordinator_${RC_VERSION}_$arch.deb
[[ -f $deb ]] || fail "no $deb; cpack made: $(ls "$tmp/pkg")"

echo "---- dpkg-deb --info"
dpkg-deb --info "$deb" | tee "$tmp/info"
field() {
    dpkg-deb --field "$deb" "$1"
}
[[ $(field Package) == research-coordinator ]] || fail "Package: $(field Package)"
[[ $(field Version) == "$RC_VERSION" ]] || fail "Version: $(field Version), want $RC_VERSION"
[[ $(field Architecture) == "$arch" ]] || fail "Architecture: $(field Architecture)"
[[ -n $(field Maintainer) ]] || fail "no Maintainer"
[[ $(field Section) == net ]] || fail "Section: $(field Section)"
[[ $(field Priority) == optional ]] || fail "Priority: $(field Priority)"
[[ $(field Description) == "coordinator of multi-phase research jobs over Kafka and Redis"* ]] ||
    fail "Description: $(field Description | head -n 1)"
depends=$(field Depends)
# Debian's runtime packages of what the binaries link (not the -dev ones), and adduser for
# postinst.
for lib in libc6 librdkafka1 'libhiredis0\.14' libmsgpackc2 adduser; do
    grep -Eq "(^|, )$lib( |,|$)" <<<"$depends" || fail "Depends lacks $lib: $depends"
done
if grep -q -- '-dev' <<<"$depends"; then
    fail "Depends names a -dev package: $depends"
fi
for script in postinst prerm postrm conffiles md5sums; do
    grep -Eq "^ +[0-9]+ bytes, +[0-9]+ lines +\*? *$script( |$)" "$tmp/info" ||
        fail "no control file $script"
done
dpkg-deb --ctrl-tarfile "$deb" | tar -x -C "$tmp" ./conffiles ./postinst ./prerm ./postrm
has_line "$tmp/conffiles" /etc/research-coordinator/coordinator.env
for script in postinst prerm postrm; do
    [[ $(mode_of "$tmp/$script") == 755 ]] || fail "$script has mode $(mode_of "$tmp/$script")"
    sh -n "$tmp/$script" || fail "$script: sh syntax error"
done
grep -q 'adduser --system' "$tmp/postinst" || fail "postinst creates no system user"

echo "---- dpkg-deb --contents"
dpkg-deb --contents "$deb" | tee "$tmp/contents"
# entry PERMS PATH: the package has PATH (./-relative, as tar lists it) with PERMS, root-owned.
entry() {
    grep -Eq "^$1 root/root +[0-9]+ [0-9-]+ [0-9:]+ \./$2\$" "$tmp/contents" ||
        fail "no $1 root/root ./$2 in the package"
}
for t in coordinator devbroker rcw-exec researchctl stub-worker; do
    entry -rwxr-xr-x "usr/bin/$t"
    entry -rw-r--r-- "usr/share/man/man1/$t\\.1\\.gz"
done
entry -rw-r--r-- 'usr/lib/systemd/system/research-coordinator\.service'
entry -rw-r--r-- 'usr/lib/systemd/system/research-stub-worker@\.service'
entry -rw------- 'etc/research-coordinator/coordinator\.env'
for f in README.md README.deploy.md coordinator.env.example copyright changelog.gz \
    docs/protocol.md docs/operations.md docs/researchctl.md docs/benchmark.md docs/design.md \
    docs/testing.md docs/workers.md; do
    entry -rw-r--r-- "usr/share/doc/research-coordinator/${f//./\\.}"
done
for f in grafana-dashboard.json prometheus-rules.yml prometheus-rules.test.yml; do
    entry -rw-r--r-- "usr/share/research-coordinator/monitoring/${f//./\\.}"
done
entry -rw-r--r-- 'usr/share/lintian/overrides/research-coordinator'
entry -rw-r--r-- 'usr/lib/librcworker\.a'
entry -rw-r--r-- 'usr/lib/pkgconfig/rcworker\.pc'
for f in rcw.h common/rc_err.h proto/value.h; do
    entry -rw-r--r-- "usr/include/rcworker/${f//./\\.}"
done
n_files=$(grep -c '^-' "$tmp/contents")
[[ $n_files -eq 34 ]] || fail "$n_files files in the package, want 34"
if grep -E '\./usr/local|\./usr/etc|/test_|/it_|/fuzz_' "$tmp/contents"; then
    fail "unexpected paths (above)"
fi

# The packaged unit runs the packaged binary with the packaged environment file.
mkdir "$tmp/root"
dpkg-deb --extract "$deb" "$tmp/root"
unit=$tmp/root/usr/lib/systemd/system/research-coordinator.service
has_line "$unit" "ExecStart=/usr/bin/coordinator"
has_line "$unit" "EnvironmentFile=/etc/research-coordinator/coordinator.env"
for t in coordinator devbroker rcw-exec researchctl stub-worker; do
    if readelf -S "$tmp/root/usr/bin/$t" | grep -Eq '\.(symtab|debug_info|comment)\b'; then
        fail "usr/bin/$t is not stripped (symbols, debug info or .comment left)"
    fi
done

echo "---- lintian"
# Errors fail the check; warnings and the rest are printed. The package's own overrides
# (usr/share/lintian/overrides) say why each overridden tag is on purpose.
lintian_status=0
lintian --fail-on error --display-info --tag-display-limit 0 "$deb" >"$tmp/lintian" 2>&1 ||
    lintian_status=$?
grep -v 'running with root privileges is not recommended' "$tmp/lintian" || true
if [[ $lintian_status -ne 0 ]] || grep -q '^E: ' "$tmp/lintian"; then
    fail "lintian found errors (exit $lintian_status)"
fi
n_tags=$(grep -c '^[WIP]: ' "$tmp/lintian" || true)
echo "ok: $(basename "$deb"): no lintian error, $n_tags warnings and notes (above)"
