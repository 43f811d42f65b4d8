#!/usr/bin/env bash
# fsx (crate `fsx`, the Rust File System eXerciser) on a file in a read-write hfcachefs mount
# over an empty plain store: pread/pwrite, mmap reads and writes, truncate, posix_fallocate,
# hole punching, fsync/fdatasync, close/reopen, sendfile, fadvise, copy_file_range; every
# read is compared with fsx's model of the file. Runs twice: default mount (kernel
# passthrough active where the kernel allows it) and `-o nopassthrough`. Installs fsx into
# /tmp/pjd-root if missing (separate CARGO_TARGET_DIR); every mount is unmounted by a trap
# and its daemon ended by PID.
#
#   scripts/fsx.sh [NUMOPS] [SEED]        defaults: 100000 ops, seed 42
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
NUMOPS=${1:-100000}
SEED=${2:-42}

FSX=$(command -v fsx || true)
[[ -z $FSX && -x /tmp/pjd-root/bin/fsx ]] && FSX=/tmp/pjd-root/bin/fsx
if [[ -z $FSX ]]; then
    echo "installing fsx into /tmp/pjd-root ..." >&2
    CARGO_TARGET_DIR=/tmp/pjd-target cargo install --locked fsx --root /tmp/pjd-root >&2
    FSX=/tmp/pjd-root/bin/fsx
fi
cargo build --quiet
BIN=$ROOT/target/debug/hfcachefs

WORK=$(mktemp -d /tmp/hfcfs-fsx.XXXXXX)
DPID=
MP=
unmount() {
    if [[ -n $DPID ]]; then
        kill -TERM "$DPID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$DPID" 2>/dev/null || true
        wait "$DPID" 2>/dev/null || true
        DPID=
    fi
    if [[ -n $MP ]] && grep -q " $MP fuse.hfcachefs " /proc/self/mountinfo; then
        umount -l "$MP" || true
    fi
}
trap 'unmount; rm -rf "$WORK"' EXIT

cat >"$WORK/fsx.toml" <<'EOF2'
flen = 1048576
[opsize]
max = 131072
[weights]
close_open = 2
read = 10
write = 10
mapread = 10
mapwrite = 10
invalidate = 1
truncate = 3
fsync = 1
fdatasync = 1
posix_fallocate = 2
punch_hole = 2
sendfile = 2
posix_fadvise = 1
copy_file_range = 2
EOF2

fail=0
for mode in default nopassthrough; do
    name=$mode
    STORE=$WORK/$name/store MP=$WORK/$name/mnt
    mkdir -p "$STORE" "$MP"
    opts=()
    [[ $mode == nopassthrough ]] && opts=(-o nopassthrough)
    RUST_LOG=info HFCACHEFS_STATE_DIR=$WORK/$name/state "$BIN" mount -f "${opts[@]}" "$STORE" "$MP" \
        2>"$WORK/$name/daemon.log" &
    DPID=$!
    for _ in $(seq 200); do
        grep -q " $MP fuse.hfcachefs " /proc/self/mountinfo && break
        kill -0 "$DPID" 2>/dev/null || { cat "$WORK/$name/daemon.log" >&2; exit 2; }
        sleep 0.05
    done
    pt=$(grep -o 'passthrough: .*' "$WORK/$name/daemon.log" | head -1 || true)
    start=$(date +%s.%N)
    set +e
    "$FSX" -f "$WORK/fsx.toml" -N "$NUMOPS" -S "$SEED" -P "$WORK/$name" "$MP/fsx.data" \
        >"$WORK/$name/fsx.out" 2>&1
    rc=$?
    set -e
    secs=$(echo "$(date +%s.%N) - $start" | bc)
    cp "$WORK/$name/fsx.out" "/tmp/hfcfs-fsx-$name.txt"
    echo "fsx $mode: $NUMOPS ops, seed $SEED, exit $rc, $(printf %.1f "$secs") s; daemon: ${pt:-no passthrough line}"
    tail -3 "$WORK/$name/fsx.out" | sed 's/^/    /'
    [[ $rc -eq 0 ]] || { fail=1; cp "$WORK/$name/daemon.log" "/tmp/hfcfs-fsx-$name.daemon.log"; }
    # The store file must hold what the mount showed: fsx's last good copy is fsx.data.fsxgood.
    unmount
done
exit $fail
