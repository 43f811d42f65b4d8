#!/usr/bin/env bash
# Read speed of hfcachefs over an sshfs store, against reading the sshfs store directly.
#
#   scripts/bench-sshfs.sh [--big-mib N] [--small N] [--small-kib K] [--runs R] [-o VIEW_OPTS]
#                          [--sshfs-o SSHFS_OPTS]
#
# Starts sshd on 127.0.0.1 (own config and keys in a temporary directory), mounts a generated
# hub store with sshfs, mounts hfcachefs over the sshfs mount, and reads through both:
#   - one large blob (default 256 MiB) sequentially, through its snapshot name;
#   - many small files (default 1000 x 16 KiB), each opened, read whole and closed.
# "cold": both FUSE mounts freshly mounted (their page caches empty) and the store files
# dropped from the server's page cache (posix_fadvise DONTNEED on those files only);
# "warm": the same read again right after. Each figure is the best of --runs (default 3).
# Prints MiB/s (files/s for small files) and the ratio view/direct (1.00 = as fast).
# -o adds hfcachefs mount options (always ro), e.g. -o nopassthrough; --sshfs-o adds sshfs
# options for both sides, e.g. --sshfs-o auto_cache.
# Needs root, sshd (openssh-server), sshfs, python3. Everything is cleaned up on exit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BIG_MIB=256
SMALL_N=1000
SMALL_KIB=16
RUNS=3
VIEW_OPTS=ro
SSHFS_EXTRA=""
while (($#)); do
    case "$1" in
        --big-mib) BIG_MIB="$2"; shift 2 ;;
        --small) SMALL_N="$2"; shift 2 ;;
        --small-kib) SMALL_KIB="$2"; shift 2 ;;
        --runs) RUNS="$2"; shift 2 ;;
        -o) VIEW_OPTS="ro,$2"; shift 2 ;;
        --sshfs-o) SSHFS_EXTRA=",$2"; shift 2 ;;
        -h | --help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench-sshfs: unknown argument $1" >&2; exit 2 ;;
    esac
done

for t in sshfs ssh-keygen python3 fusermount3; do
    command -v "$t" >/dev/null 2>&1 || { echo "bench-sshfs: $t missing (scripts/install-deps.sh)" >&2; exit 1; }
done
SSHD="$(command -v sshd || echo /usr/sbin/sshd)"
[ -x "$SSHD" ] || { echo "bench-sshfs: sshd missing (apt-get install openssh-server)" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "bench-sshfs: run as root (mounts, sshd)" >&2; exit 1; }

BIN="${HFCACHEFS_BIN:-target/release/hfcachefs}"
if [ ! -x "$BIN" ]; then
    cargo build --release --quiet --bin hfcachefs
fi
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"

W="$(mktemp -d /tmp/hfcfs-sshfs-bench.XXXXXX)"
SSHD_PID=""
cleanup() {
    set +e
    for mp in "$W/view" "$W/sshfs"; do
        if findmnt -rn -M "$mp" >/dev/null 2>&1; then
            fusermount3 -u "$mp" 2>/dev/null || umount -l "$mp"
        fi
    done
    if [ -n "$SSHD_PID" ]; then
        kill "$SSHD_PID" 2>/dev/null
        wait "$SSHD_PID" 2>/dev/null
    fi
    rm -rf "$W"
}
trap cleanup EXIT INT TERM

# --- the store ----------------------------------------------------------------------------
REPO="$W/store/models--bench--model"
SNAP="$REPO/snapshots/0123456789abcdef0123456789abcdef01234567"
mkdir -p "$REPO/blobs" "$SNAP/small" "$REPO/refs"
echo -n 0123456789abcdef0123456789abcdef01234567 >"$REPO/refs/main"
python3 - "$REPO" "$SNAP" "$BIG_MIB" "$SMALL_N" "$SMALL_KIB" <<'EOF'
import hashlib, os, sys
repo, snap, big_mib, n, kib = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
big = "%064x" % 0xB16
with open(os.path.join(repo, "blobs", big), "wb") as f:
    block = os.urandom(1 << 20)
    for i in range(big_mib):
        f.write(block[i % 7:] + block[: i % 7])
os.symlink("../../blobs/" + big, os.path.join(snap, "model.safetensors"))
for i in range(n):
    data = os.urandom(kib * 1024)
    etag = hashlib.sha1(data).hexdigest()
    with open(os.path.join(repo, "blobs", etag), "wb") as f:
        f.write(data)
    os.symlink("../../../blobs/" + etag, os.path.join(snap, "small", "f%05d.bin" % i))
EOF

# --- sshd and the mounts ------------------------------------------------------------------
mkdir -p "$W/view" "$W/sshfs"
# shellcheck source=scripts/lib-sshd.sh
. scripts/lib-sshd.sh
start_loopback_sshd "$W"
PORT=$SSHD_PORT

SSHFS_OPTS="IdentityFile=$W/client_key,StrictHostKeyChecking=no,UserKnownHostsFile=/dev/null,BatchMode=yes,LogLevel=ERROR,port=$PORT"
# Debian's sshfs refuses links with '..' unless told otherwise (hub links all have it).
SSHFS_HELP="$(sshfs -h 2>&1 || true)"
if [[ "$SSHFS_HELP" == *no_contain_symlinks* ]]; then
    SSHFS_OPTS="$SSHFS_OPTS,no_contain_symlinks"
fi
SSHFS_OPTS="$SSHFS_OPTS$SSHFS_EXTRA"

mount_sshfs() { sshfs -o "$SSHFS_OPTS" "root@127.0.0.1:$W/store" "$W/sshfs"; }
mount_view() { "$BIN" mount -o "$VIEW_OPTS" "$W/sshfs" "$W/view"; }
umount_all() {
    if findmnt -rn -M "$W/view" >/dev/null 2>&1; then
        local pid
        pid="$("$BIN" status --json "$W/view" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["pid"])')"
        "$BIN" unmount "$W/view"
        # The daemon holds descriptors on the sshfs mount until it has exited.
        while kill -0 "$pid" 2>/dev/null; do sleep 0.01; done
    fi
    if findmnt -rn -M "$W/sshfs" >/dev/null 2>&1; then
        fusermount3 -u "$W/sshfs"
    fi
}

# python3 bench.py MODE ROOT STORE: prints one number (MiB/s or files/s).
cat >"$W/bench.py" <<'EOF'
import os, sys, time
mode, root, store, snaprel = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
def drop_server_cache():
    for d, _, files in os.walk(store):
        for n in files:
            p = os.path.join(d, n)
            if os.path.islink(p):
                continue
            fd = os.open(p, os.O_RDONLY)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            os.close(fd)
if mode.endswith("-cold"):
    drop_server_cache()
snap = os.path.join(root, snaprel)
buf = bytearray(1 << 20)
if mode.startswith("big"):
    t = time.perf_counter()
    n = 0
    with open(os.path.join(snap, "model.safetensors"), "rb", buffering=0) as f:
        while True:
            k = f.readinto(buf)
            if not k:
                break
            n += k
    dt = time.perf_counter() - t
    print("%.1f" % (n / dt / (1 << 20)))
else:
    d = os.path.join(snap, "small")
    names = sorted(os.listdir(d))
    t = time.perf_counter()
    for name in names:
        with open(os.path.join(d, name), "rb", buffering=0) as f:
            while f.readinto(buf):
                pass
    dt = time.perf_counter() - t
    print("%.0f" % (len(names) / dt))
EOF
SNAPREL="${SNAP#"$W/store/"}"

best() { sort -g | tail -1; }
measure() { # measure KIND(big|small) WHERE(direct|view) -> "cold warm"
    local kind="$1" where="$2" cold=() warm=() root
    for _ in $(seq "$RUNS"); do
        umount_all
        mount_sshfs
        root="$W/sshfs"
        if [ "$where" = view ]; then
            mount_view
            root="$W/view"
        fi
        cold+=("$(python3 "$W/bench.py" "$kind-cold" "$root" "$W/store" "$SNAPREL")")
        warm+=("$(python3 "$W/bench.py" "$kind-warm" "$root" "$W/store" "$SNAPREL")")
    done
    echo "$(printf '%s\n' "${cold[@]}" | best) $(printf '%s\n' "${warm[@]}" | best)"
}

mount_sshfs
mount_view
MODE="$("$BIN" status --json "$W/view" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["mode"])' 2>/dev/null || echo "?")"

read -r big_dc big_dw < <(measure big direct)
read -r big_vc big_vw < <(measure big view)
read -r sm_dc sm_dw < <(measure small direct)
read -r sm_vc sm_vw < <(measure small view)
umount_all

ratio() { python3 -c "print('%.2f' % ($1 / $2))"; }
echo "hfcachefs over sshfs vs the sshfs store directly (loopback sshd; sshfs -o ...${SSHFS_EXTRA}; hfcachefs -o $VIEW_OPTS: $MODE reads)"
printf '%-34s %12s %12s %8s\n' "" "direct" "hfcachefs" "ratio"
printf '%-34s %12s %12s %8s\n' "${BIG_MIB} MiB sequential, cold (MiB/s)" "$big_dc" "$big_vc" "$(ratio "$big_vc" "$big_dc")"
printf '%-34s %12s %12s %8s\n' "${BIG_MIB} MiB sequential, warm (MiB/s)" "$big_dw" "$big_vw" "$(ratio "$big_vw" "$big_dw")"
printf '%-34s %12s %12s %8s\n' "${SMALL_N} x ${SMALL_KIB} KiB files, cold (files/s)" "$sm_dc" "$sm_vc" "$(ratio "$sm_vc" "$sm_dc")"
printf '%-34s %12s %12s %8s\n' "${SMALL_N} x ${SMALL_KIB} KiB files, warm (files/s)" "$sm_dw" "$sm_vw" "$(ratio "$sm_vw" "$sm_dw")"
