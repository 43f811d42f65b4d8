#!/usr/bin/env bash
# Build hfcachefs and mount a hub cache with it.
#   scripts/demo.sh                  # demo store in /tmp/hfcachefs-demo, mounted there
#   scripts/demo.sh STORE MOUNTPOINT # your cache (e.g. ~/.cache/huggingface/hub)
# Unmount with: target/release/hfcachefs unmount MOUNTPOINT
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/install-deps.sh
cargo build --release --quiet
store=${1:-/tmp/hfcachefs-demo/store}
mp=${2:-/tmp/hfcachefs-demo/mnt}
[ $# -ge 1 ] || scripts/make-demo-store.sh "$store"
mkdir -p "$mp"
if grep -q " $(realpath "$mp") .* - fuse.hfcachefs " /proc/self/mountinfo; then
    target/release/hfcachefs unmount "$mp"
fi
target/release/hfcachefs mount "$store" "$mp"
echo "mounted $store at $mp; every entry is a regular file or directory:"
find "$mp" -maxdepth 4 -printf '%y %10s %p\n' | head -30
echo "export HF_HUB_CACHE=$mp   # point clients here"
echo "unmount: target/release/hfcachefs unmount $mp"
