#!/usr/bin/env bash
# pjdfstest (the Rust port, crate `pjdfstest`) against a read-write hfcachefs mount over an
# empty plain store. Installs pjdfstest into /tmp/pjd-root if it is missing (separate
# CARGO_TARGET_DIR, the project build is not touched), mounts, runs the whole suite, unmounts
# (trap, by PID) and prints passed/failed/skipped counts. Failures listed in
# scripts/pjdfstest-expected.txt (by design) are reported separately; exit 1 if any other test
# fails.
#
#   scripts/pjdfstest.sh [EXTRA_MOUNT_OPTS] [-- TEST_PATTERNS...]
#
# Needs root (the suite switches users to test permissions): the mount uses allow_other
# (which implies default_permissions) so other users can reach it and the kernel checks modes.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
EXPECTED=$ROOT/scripts/pjdfstest-expected.txt
OPTS=${1:-}
[[ $# -gt 0 ]] && shift
[[ ${1:-} == -- ]] && shift

PJD=$(command -v pjdfstest || true)
[[ -z $PJD && -x /tmp/pjd-root/bin/pjdfstest ]] && PJD=/tmp/pjd-root/bin/pjdfstest
if [[ -z $PJD ]]; then
    echo "installing pjdfstest into /tmp/pjd-root ..." >&2
    CARGO_TARGET_DIR=/tmp/pjd-target cargo install --locked pjdfstest --root /tmp/pjd-root >&2
    PJD=/tmp/pjd-root/bin/pjdfstest
fi
cargo build --quiet
BIN=$ROOT/target/debug/hfcachefs

WORK=$(mktemp -d /tmp/hfcfs-pjd.XXXXXX)
STORE=$WORK/store MP=$WORK/mnt
mkdir -p "$STORE" "$MP"
chmod 0755 "$WORK" "$STORE" "$MP"
DPID=
cleanup() {
    if [[ -n $DPID ]]; then
        kill -TERM "$DPID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$DPID" 2>/dev/null || true
    fi
    grep -q " $MP fuse.hfcachefs " /proc/self/mountinfo && umount -l "$MP" || true
    rm -rf "$WORK"
}
trap cleanup EXIT

mount_opts=allow_other${OPTS:+,$OPTS}
RUST_LOG=warn HFCACHEFS_STATE_DIR=$WORK/state "$BIN" mount -f -o "$mount_opts" "$STORE" "$MP" \
    2>"$WORK/daemon.log" &
DPID=$!
for _ in $(seq 200); do
    grep -q " $MP fuse.hfcachefs " /proc/self/mountinfo && break
    kill -0 "$DPID" 2>/dev/null || { cat "$WORK/daemon.log" >&2; exit 2; }
    sleep 0.05
done
mkdir "$MP/t" && chmod 0777 "$MP/t"

# Users for the permission tests: two that exist on Debian without adding any.
cat >"$WORK/pjd.toml" <<EOF
[features]
posix_fallocate = {}
utime_now = {}
utimensat = {}

[settings]
naptime = 0.01
allow_remount = false

[dummy_auth]
entries = [["nobody", "nogroup"], ["daemon", "daemon"]]
EOF

echo "pjdfstest $("$PJD" --version | awk '{print $2}') on hfcachefs -o $mount_opts ($STORE -> $MP)"
start=$(date +%s)
set +e
(cd "$MP/t" && "$PJD" -c "$WORK/pjd.toml" -p "$MP/t" "$@") >"$WORK/out.txt" 2>&1
rc=$?
set -e
secs=$(($(date +%s) - start))
cp "$WORK/out.txt" /tmp/hfcfs-pjdfstest-last.txt

# Result lines look like "mod::test[::type]   ok|FAILED|skipped".
RES='^[a-z_0-9]+::[^ ]* +'
passed=$(grep -cE "${RES}ok\$" "$WORK/out.txt" || true)
failed=$(grep -cE "${RES}FAILED\$" "$WORK/out.txt" || true)
skipped=$(grep -cE "${RES}skipped\$" "$WORK/out.txt" || true)
echo "passed $passed, failed $failed, skipped $skipped in ${secs}s (pjdfstest exit $rc; full output: /tmp/hfcfs-pjdfstest-last.txt)"

unexpected=0
expected=0
while read -r name; do
    if grep -qxF "$name" <(grep -v '^#' "$EXPECTED" | awk '{print $1}'); then
        expected=$((expected + 1))
    else
        echo "  UNEXPECTED failure: $name"
        unexpected=$((unexpected + 1))
    fi
done < <(grep -E "${RES}FAILED\$" "$WORK/out.txt" | awk '{print $1}')
echo "$expected failures listed in scripts/pjdfstest-expected.txt"
if grep -q . "$WORK/daemon.log"; then
    echo "daemon warnings/errors (first 10):"
    head -10 "$WORK/daemon.log"
fi
[[ $unexpected -eq 0 ]] || { echo "$unexpected unexpected failure(s)"; exit 1; }
echo "no unexpected failures"
