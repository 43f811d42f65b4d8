#!/usr/bin/env bash
# Install the system packages hfcachefs needs to mount and to run its tests (idempotent).
# fuse3: fusermount3 (unprivileged mounts and unmounts) and mount.fuse3 (fstab, mount -t).
# samba, smbclient: the Samba gateway test (tests/samba_gateway.rs).
# openssh-server, openssh-client, sshfs: the network store test (tests/sshfs_store.rs).
# systemd (systemd-analyze), util-linux (mount -T, unshare), binutils (strip, for
# scripts/build-deb.sh; dpkg-deb comes with dpkg): tests/platform_linux.rs.
# passwd (useradd, userdel), util-linux (runuser), the system's python3 at /usr/bin (other
# users cannot run a toolchain under /root): the multi-user tests (tests/security.rs).
set -euo pipefail
need=()
# has CMD: CMD is on PATH or in an sbin directory (daemons live there).
has() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }
has fusermount3 || need+=(fuse3)
has mount.fuse3 || need+=(fuse3)
has python3 || need+=(python3 python3-venv)
has smbd || need+=(samba)
has smbclient || need+=(smbclient)
has sshd || need+=(openssh-server)
has ssh-keygen || need+=(openssh-client)
has sshfs || need+=(sshfs)
has systemd-analyze || need+=(systemd)
has unshare || need+=(util-linux)
has strip || need+=(binutils)
has useradd || need+=(passwd)
has runuser || need+=(util-linux)
[ -x /usr/bin/python3 ] || need+=(python3)
if ((${#need[@]})); then
    if [ "$(id -u)" -ne 0 ]; then
        echo "install-deps: need root to install: ${need[*]}" >&2
        exit 1
    fi
    # Unique names, in order (fuse3 may be listed twice).
    mapfile -t need < <(printf '%s\n' "${need[@]}" | awk '!seen[$0]++')
    # The tests run their own smbd and sshd on 127.0.0.1; keep the packages' system services
    # (smbd, nmbd, ssh) from being started on all interfaces by this install.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 0755 /usr/sbin/policy-rc.d
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if [ ! -e /dev/fuse ]; then
    modprobe fuse 2>/dev/null || true
fi
[ -e /dev/fuse ] || { echo "install-deps: /dev/fuse is missing (load the fuse module)" >&2; exit 1; }
