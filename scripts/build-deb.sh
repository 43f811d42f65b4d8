#!/usr/bin/env bash
# Builds a Debian package of hfcachefs with dpkg-deb (no other packaging tool needed):
# /usr/bin/hfcachefs, /usr/sbin/mount.fuse.hfcachefs -> mount.fuse3, the systemd units
# (hfcachefs@.service and the dedupe and gc timers) in /usr/lib/systemd/system, man pages,
# bash/zsh/fish completions, the examples and docs in /usr/share/doc/hfcachefs.
#
#   scripts/build-deb.sh                        # cargo build --release, then package it
#   scripts/build-deb.sh --binary PATH          # package this binary instead
#   scripts/build-deb.sh --out DIR              # where the .deb goes (default: target/debian)
#
# Prints the path of the package on its last line. Install with `apt-get install ./FILE.deb`
# (or dpkg -i), remove with `apt-get remove hfcachefs`; /etc/hfcachefs/*.conf are never in
# the package, so they stay.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO="$(pwd)"
BINARY=""
OUT="$REPO/target/debian"
while (($#)); do
    case "$1" in
        --binary) BINARY="${2:?--binary needs a path}"; shift 2 ;;
        --out) OUT="${2:?--out needs a directory}"; shift 2 ;;
        -h | --help) awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"; exit 0 ;;
        *) echo "build-deb: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
command -v dpkg-deb >/dev/null 2>&1 || { echo "build-deb: dpkg-deb missing (apt-get install dpkg)" >&2; exit 1; }
if [ -z "$BINARY" ]; then
    cargo build --release --quiet --bin hfcachefs
    BINARY="$REPO/target/release/hfcachefs"
fi
[ -x "$BINARY" ] || { echo "build-deb: no binary at $BINARY" >&2; exit 1; }

version="$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -1)"
arch="$(dpkg --print-architecture)"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
pkg="$stage/hfcachefs"
units="$pkg/usr/lib/systemd/system"
doc="$pkg/usr/share/doc/hfcachefs"
mkdir -p "$pkg/DEBIAN" "$pkg/usr/bin" "$pkg/usr/sbin" "$units" "$doc/examples" \
    "$pkg/usr/share/man/man1" "$pkg/usr/share/bash-completion/completions" \
    "$pkg/usr/share/zsh/vendor-completions" "$pkg/usr/share/fish/vendor_completions.d"

# Stripped, as Debian packages are (the symbols are not needed to run it).
install -m 0755 -s "$BINARY" "$pkg/usr/bin/hfcachefs"
# mount -t fuse.hfcachefs: util-linux looks for mount.fuse.hfcachefs; fuse3's helper starts
# `hfcachefs` from the standard PATH, where /usr/bin is.
ln -s mount.fuse3 "$pkg/usr/sbin/mount.fuse.hfcachefs"
for u in hfcachefs@.service hfcachefs-dedupe@.service hfcachefs-dedupe@.timer \
    hfcachefs-gc@.service hfcachefs-gc@.timer; do
    sed 's#/usr/local/bin/hfcachefs#/usr/bin/hfcachefs#g' "platform/linux/$u" >"$units/$u"
    chmod 0644 "$units/$u"
done
gen="$stage/gen"
"$pkg/usr/bin/hfcachefs" generate "$gen"
for page in "$gen"/man1/*.1; do
    gzip -9n <"$page" >"$pkg/usr/share/man/man1/$(basename "$page").gz"
done
install -m 0644 "$gen/completions/hfcachefs.bash" "$pkg/usr/share/bash-completion/completions/hfcachefs"
install -m 0644 "$gen/completions/_hfcachefs" "$pkg/usr/share/zsh/vendor-completions/_hfcachefs"
install -m 0644 "$gen/completions/hfcachefs.fish" "$pkg/usr/share/fish/vendor_completions.d/hfcachefs.fish"
install -m 0644 platform/linux/hfcachefs-example.mount platform/linux/hub.conf.example \
    platform/samba/smb.conf.snippet "$doc/examples/"
install -m 0644 README.md docs/OPERATIONS.md docs/TOOLS.md docs/SEMANTICS.md "$doc/"
{
    echo "Upstream-Name: hfcachefs"
    echo
    echo "Files: *"
    echo "Copyright: the hfcachefs authors"
    echo "License: $(sed -n 's/^license *= *"\(.*\)"/\1/p' Cargo.toml | head -1)"
    if [ -f LICENSE ]; then sed 's/^$/./; s/^/ /' LICENSE; fi
} >"$doc/copyright"

size="$(du -sk "$pkg" | cut -f1)"
cat >"$pkg/DEBIAN/control" <<CONTROL
Package: hfcachefs
Version: $version
Architecture: $arch
Maintainer: hfcachefs authors <hfcachefs@localhost>
Installed-Size: $size
Depends: fuse3, libc6
Section: admin
Priority: optional
Description: Hugging Face hub cache as plain files and directories (FUSE)
 hfcachefs mounts a shared Hugging Face hub cache so that every client sees
 only regular files and directories, while the store keeps its symlinks and
 deduplication. Includes the cache tools (scan, verify, dedupe, gc), systemd
 units for mounts and dedupe/gc timers, man pages and shell completions.
CONTROL
# systemd learns about the units (and forgets them) without starting anything.
for script in postinst postrm; do
    cat >"$pkg/DEBIAN/$script" <<'SCRIPT'
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    systemctl daemon-reload || true
fi
SCRIPT
    chmod 0755 "$pkg/DEBIAN/$script"
done

mkdir -p "$OUT"
deb="$OUT/hfcachefs_${version}_${arch}.deb"
# gzip: quick to build and to unpack (a debug build for the tests is large).
dpkg-deb --root-owner-group -Zgzip --build "$pkg" "$deb" >/dev/null
echo "$deb"
