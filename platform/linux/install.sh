#!/usr/bin/env bash
# Install (or remove) hfcachefs on a Linux machine: the binary, the mount helper link if the
# system needs one, the systemd template unit hfcachefs@.service, and the examples.
# Idempotent: running it again changes nothing that is already in place.
#
#   platform/linux/install.sh                  # build (if cargo is there) and install to /usr/local
#   platform/linux/install.sh --binary PATH    # install this binary instead of building
#   platform/linux/install.sh --uninstall      # stop and disable hfcachefs@ units, remove files
#   platform/linux/install.sh --root DIR       # stage into DIR (no systemctl, no fuse3 check)
#
# What goes where (PREFIX defaults to /usr/local):
#   PREFIX/bin/hfcachefs                      the binary (mount.fuse3 runs it by this name)
#   /sbin/mount.fuse.hfcachefs -> mount.fuse3 only where no /sbin/mount.fuse exists
#   /etc/systemd/system/hfcachefs@.service    one mount per /etc/hfcachefs/NAME.conf
#   /etc/hfcachefs/hub.conf.example           the configuration format
#   PREFIX/share/hfcachefs/                   mount unit template, Samba snippet, OPERATIONS.md
# Configurations (/etc/hfcachefs/*.conf) and /etc/fstab are never written or removed.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"

PREFIX=/usr/local
ROOT=""
BINARY=""
UNINSTALL=0

usage() {
    sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

while (($#)); do
    case "$1" in
        --prefix) PREFIX="${2:?--prefix needs a directory}"; shift 2 ;;
        --prefix=*) PREFIX="${1#*=}"; shift ;;
        --root) ROOT="${2:?--root needs a directory}"; shift 2 ;;
        --root=*) ROOT="${1#*=}"; shift ;;
        --binary) BINARY="${2:?--binary needs a path}"; shift 2 ;;
        --binary=*) BINARY="${1#*=}"; shift ;;
        --uninstall) UNINSTALL=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "install.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
case "$PREFIX" in /*) ;; *) echo "install.sh: --prefix must be absolute" >&2; exit 2 ;; esac
if [ -n "$ROOT" ]; then
    mkdir -p "$ROOT"
    ROOT="$(cd "$ROOT" && pwd)"
fi

BIN_DST="$ROOT$PREFIX/bin/hfcachefs"
UNIT_DST="$ROOT/etc/systemd/system/hfcachefs@.service"
CONF_DIR="$ROOT/etc/hfcachefs"
SHARE_DST="$ROOT$PREFIX/share/hfcachefs"
HELPER_LINK="$ROOT/sbin/mount.fuse.hfcachefs"

say() { echo "hfcachefs install: $*"; }
die() { echo "hfcachefs install: $*" >&2; exit 1; }

# systemctl only on the live system, and only where systemd runs.
systemd_live() { [ -z "$ROOT" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; }

# put_file SRC DST MODE: copies SRC to DST unless DST already has the same bytes.
put_file() {
    local src="$1" dst="$2" mode="$3"
    if [ -f "$dst" ] && cmp -s "$src" "$dst"; then
        say "unchanged  $dst"
        return 1
    fi
    mkdir -p "$(dirname "$dst")"
    # A temporary name and a rename: a running binary is replaced, not overwritten.
    install -m "$mode" "$src" "$dst.new.$$"
    mv -f "$dst.new.$$" "$dst"
    say "installed  $dst"
    return 0
}

remove() {
    local p="$1"
    if [ -e "$p" ] || [ -L "$p" ]; then
        rm -f "$p"
        say "removed    $p"
    fi
}

# The directory that holds a mount.fuse helper util-linux will find for fuse.* types, if any.
helper_dir_with() {
    local name="$1" d
    for d in /sbin /usr/sbin /sbin/fs.d /sbin/fs; do
        if [ -e "$ROOT$d/$name" ]; then
            echo "$d"
            return 0
        fi
    done
    return 1
}

live_mounts() {
    awk '$0 ~ / - fuse\.hfcachefs / { print $5 }' /proc/self/mountinfo 2>/dev/null || true
}

if ((UNINSTALL)); then
    changed=0
    if systemd_live; then
        mapfile -t units < <(systemctl list-units --all --plain --no-legend 'hfcachefs@*.service' 2>/dev/null | awk '{print $1}')
        for u in "${units[@]}"; do
            [ -n "$u" ] || continue
            say "stopping   $u"
            systemctl disable --now "$u" >/dev/null 2>&1 || systemctl stop "$u" || true
        done
    fi
    # Enabled instances: their WantedBy links.
    shopt -s nullglob
    for link in "$ROOT"/etc/systemd/system/*.wants/hfcachefs@*.service; do
        if systemd_live; then
            systemctl disable "$(basename "$link")" >/dev/null 2>&1 || true
        fi
        remove "$link"
    done
    shopt -u nullglob
    for p in "$UNIT_DST" "$BIN_DST" "$CONF_DIR/hub.conf.example" \
        "$SHARE_DST/hfcachefs-example.mount" "$SHARE_DST/smb.conf.snippet" \
        "$SHARE_DST/OPERATIONS.md"; do
        if [ -e "$p" ]; then
            remove "$p"
            changed=1
        fi
    done
    rmdir "$SHARE_DST" 2>/dev/null || true
    # Our helper link only: a symlink to fuse3's helper.
    if [ -L "$HELPER_LINK" ] && [ "$(basename "$(readlink "$HELPER_LINK")")" = mount.fuse3 ]; then
        remove "$HELPER_LINK"
        changed=1
    fi
    if [ -d "$CONF_DIR" ]; then
        if rmdir "$CONF_DIR" 2>/dev/null; then
            say "removed    $CONF_DIR"
        else
            say "kept       $CONF_DIR (your configurations)"
        fi
    fi
    if systemd_live; then
        systemctl daemon-reload
    fi
    if [ -z "$ROOT" ]; then
        mapfile -t mps < <(live_mounts)
        if ((${#mps[@]})); then
            say "still mounted (the daemons keep running until unmounted): ${mps[*]}"
            say "unmount them with: hfcachefs unmount MOUNTPOINT (or umount)"
        fi
        if grep -qsE '^[^#]*[[:space:]]fuse\.hfcachefs[[:space:]]' /etc/fstab; then
            say "warning: /etc/fstab still has fuse.hfcachefs lines; remove them"
        fi
    fi
    ((changed)) || say "nothing was installed"
    exit 0
fi

# --- install -----------------------------------------------------------------------------

if [ -z "$ROOT" ]; then
    [ "$(id -u)" -eq 0 ] || die "run as root (or stage with --root DIR)"
    if ! command -v fusermount3 >/dev/null 2>&1 || ! helper_dir_with mount.fuse3 >/dev/null; then
        if command -v apt-get >/dev/null 2>&1; then
            say "installing fuse3 (fusermount3, mount.fuse3)"
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends fuse3 >/dev/null
        else
            die "install your distribution's fuse3 package (fusermount3, mount.fuse3) first"
        fi
    fi
fi

if [ -z "$BINARY" ]; then
    if command -v cargo >/dev/null 2>&1 && [ -f "$REPO/Cargo.toml" ]; then
        say "building   (cargo build --release)"
        (cd "$REPO" && cargo build --release --quiet --bin hfcachefs)
    fi
    BINARY="$REPO/target/release/hfcachefs"
fi
[ -x "$BINARY" ] || die "no binary at $BINARY (build with: cargo build --release, or pass --binary PATH)"
"$BINARY" --version >/dev/null 2>&1 || die "$BINARY does not run"

put_file "$BINARY" "$BIN_DST" 0755 || true

# mount -t fuse.hfcachefs: util-linux runs /sbin/mount.fuse.hfcachefs, else /sbin/mount.fuse.
# fuse3 ships mount.fuse3 and, on most distributions, the mount.fuse link to it.
if helper_dir_with mount.fuse.hfcachefs >/dev/null; then
    say "unchanged  $(helper_dir_with mount.fuse.hfcachefs)/mount.fuse.hfcachefs"
elif helper_dir="$(helper_dir_with mount.fuse)"; then
    say "helper     $helper_dir/mount.fuse is there; no link needed"
elif helper_dir="$(helper_dir_with mount.fuse3)"; then
    mkdir -p "$(dirname "$HELPER_LINK")"
    ln -sfn "$helper_dir/mount.fuse3" "$HELPER_LINK"
    say "linked     $HELPER_LINK -> $helper_dir/mount.fuse3"
elif [ -n "$ROOT" ]; then
    say "helper     none in $ROOT (staging): the target system needs fuse3"
else
    die "mount.fuse3 not found: install fuse3"
fi
# mount(8) starts mount.fuse3 without the caller's PATH; mount.fuse3 starts hfcachefs by name
# through /bin/sh, so the binary must be in one of the shell's default PATH directories.
if [ -z "$ROOT" ]; then
    STD_PATH=":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:"
    case "$STD_PATH" in
        *":$PREFIX/bin:"*) ;;
        *) say "warning: $PREFIX/bin is not on the standard PATH; mount -t fuse.hfcachefs will not find hfcachefs" ;;
    esac
fi

unit_tmp="$(mktemp)"
trap 'rm -f "$unit_tmp"' EXIT
sed "s#/usr/local/bin/hfcachefs#$PREFIX/bin/hfcachefs#g" "$HERE/hfcachefs@.service" >"$unit_tmp"
unit_changed=0
put_file "$unit_tmp" "$UNIT_DST" 0644 && unit_changed=1

mkdir -p "$CONF_DIR"
put_file "$HERE/hub.conf.example" "$CONF_DIR/hub.conf.example" 0644 || true
put_file "$HERE/hfcachefs-example.mount" "$SHARE_DST/hfcachefs-example.mount" 0644 || true
put_file "$REPO/platform/samba/smb.conf.snippet" "$SHARE_DST/smb.conf.snippet" 0644 || true
put_file "$REPO/docs/OPERATIONS.md" "$SHARE_DST/OPERATIONS.md" 0644 || true

if ((unit_changed)) && systemd_live; then
    systemctl daemon-reload
    say "reloaded   systemd"
fi

if [ -z "$ROOT" ] && ! grep -qsE '^[[:space:]]*user_allow_other[[:space:]]*$' /etc/fuse.conf; then
    say "note: mounts by non-root users with allow_other need 'user_allow_other' in /etc/fuse.conf"
fi
say "done. Next: docs/OPERATIONS.md (fstab line, or /etc/hfcachefs/NAME.conf + systemctl enable --now hfcachefs@NAME)"
