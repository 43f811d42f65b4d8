#!/usr/bin/env bash
# Install the system packages hfcachefs needs to mount and to run its tests (idempotent).
# fuse3: fusermount3 (unprivileged mounts and unmounts) and mount.fuse3 (fstab, mount -t).
set -euo pipefail
need=()
command -v fusermount3 >/dev/null 2>&1 || need+=(fuse3)
command -v python3 >/dev/null 2>&1 || need+=(python3 python3-venv)
if ((${#need[@]})); then
    if [ "$(id -u)" -ne 0 ]; then
        echo "install-deps: need root to install: ${need[*]}" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if [ ! -e /dev/fuse ]; then
    modprobe fuse 2>/dev/null || true
fi
[ -e /dev/fuse ] || { echo "install-deps: /dev/fuse is missing (load the fuse module)" >&2; exit 1; }
