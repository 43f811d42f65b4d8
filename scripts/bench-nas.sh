#!/usr/bin/env bash
# hfcachefs on a network store: the workloads users run, against the network mount itself
# and a generic peer, in one run; ratios to direct access (higher is better), medians.
#
#   scripts/bench-nas.sh [--runs R] [--delay-ms D] [--model-mib N] [--plot FILE] [--json FILE]
#                        [--systems direct,hfcachefs,hfcachefs-nopt,hfcachefs-noopen,bindfs]
#   scripts/bench-nas.sh --replot FILE.json [--plot FILE]   # the chart again from saved figures
#
# The store is served by sshd on 127.0.0.1 behind scripts/tcp-delay.py, which holds every byte
# D ms (default 0.3) in each direction: a LAN round trip (the measured one is printed). It is
# mounted with sshfs at its best settings for this data (auto_cache; its own cache kept 5 s so
# "expired" runs need not wait 20 s). Systems over that one network mount:
#   direct          the sshfs mount itself
#   hfcachefs       hfcachefs mounted over it (defaults; no passthrough on a FUSE store)
#   hfcachefs-nopt  the same with -o nopassthrough (the unprivileged mode)
#   hfcachefs-noopen  the same with -o noopen (zero-message opens)
#   bindfs          bindfs --resolve-symlinks over it
# Workloads (seconds; ratio = direct / system):
#   load-cold/warm     read config.json and tokenizer.json, mmap the N MiB safetensors file
#                      and touch every page (cold: all mounts fresh, server page cache dropped)
#   snapdl-warm        huggingface_hub snapshot_download(local_files_only=True) of a 300-file
#                      repo right after another
#   snapdl-expired     the same after the network mount's caches expired (6 s later)
#   scan-expired       scan_cache_dir() of 20 repos, likewise
#   cat300-cold/warm   cat of 300 small files
# Writes a table to stdout, the figures as JSON (--json, default docs/perf-nas.json) and a
# bar chart (--plot, default docs/perf-nas.png; scripts/bench-nas-plot.py with matplotlib in
# .venv/bench, made on first use). Needs root, sshd, sshfs, bindfs (installed if missing), the
# hub2 venv (scripts/setup-python.sh). Everything is unmounted and removed on exit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

RUNS=3
DELAY_MS=0.3
MODEL_MIB=1024
PLOT=docs/perf-nas.png
JSON=docs/perf-nas.json
REPLOT=""
SYSTEMS=direct,hfcachefs,hfcachefs-nopt,hfcachefs-noopen,bindfs
while (($#)); do
    case "$1" in
        --runs) RUNS="$2"; shift 2 ;;
        --delay-ms) DELAY_MS="$2"; shift 2 ;;
        --model-mib) MODEL_MIB="$2"; shift 2 ;;
        --plot) PLOT="$2"; shift 2 ;;
        --json) JSON="$2"; shift 2 ;;
        --replot) REPLOT="$2"; shift 2 ;;
        --systems) SYSTEMS="$2"; shift 2 ;;
        -h | --help) sed -n '2,31p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench-nas: unknown argument $1" >&2; exit 2 ;;
    esac
done
BENCHPY=.venv/bench/bin/python
plot() { # plot JSON PNG
    if [ ! -x "$BENCHPY" ]; then
        python3 -m venv .venv/bench && .venv/bench/bin/pip install -q matplotlib ||
            { echo "bench-nas: could not install matplotlib into .venv/bench; no plot" >&2; return 0; }
    fi
    "$BENCHPY" scripts/bench-nas-plot.py "$1" "$2"
}
if [ -n "$REPLOT" ]; then
    plot "$REPLOT" "$PLOT"
    exit 0
fi
[ "$(id -u)" -eq 0 ] || { echo "bench-nas: run as root (mounts, sshd)" >&2; exit 1; }
IFS=, read -r -a SYS <<<"$SYSTEMS"

need=()
command -v sshfs >/dev/null || need+=(sshfs)
command -v bindfs >/dev/null || need+=(bindfs)
[ -x "$(command -v sshd || echo /usr/sbin/sshd)" ] || need+=(openssh-server)
if ((${#need[@]})); then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
HUBPY=.venv/hub2/bin/python
[ -x "$HUBPY" ] || scripts/setup-python.sh >/dev/null
HUBPY="$(pwd)/$HUBPY"

cargo build --release --quiet --bin hfcachefs
BIN="$(pwd)/target/release/hfcachefs"

W="$(mktemp -d /tmp/hfcfs-nas.XXXXXX)"
PIDS=()
cleanup() {
    set +e
    umount_all
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    rm -rf "$W"
}
trap cleanup EXIT INT TERM

# --- the store: one model, one 300-file repo, 18 more small repos --------------------------
"$HUBPY" - "$W/store" "$MODEL_MIB" <<'EOF'
import hashlib, json, os, sys
root, mib = sys.argv[1], int(sys.argv[2])
def repo(name, files, commit="c0ffee" * 6 + "c0ff"):
    base = os.path.join(root, "models--bench--" + name)
    for d in ("blobs", "refs", "snapshots/" + commit):
        os.makedirs(os.path.join(base, d), exist_ok=True)
    with open(os.path.join(base, "refs/main"), "w") as f:
        f.write(commit)
    for rel, data in files:
        etag = hashlib.sha256(data).hexdigest() if len(data) > 10 << 20 else hashlib.sha1(data).hexdigest()
        blob = os.path.join(base, "blobs", etag)
        if not os.path.exists(blob):
            with open(blob, "wb") as f:
                f.write(data)
        link = os.path.join(base, "snapshots", commit, rel)
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(os.path.relpath(blob, os.path.dirname(link)), link)
block = os.urandom(1 << 20)
big = b"".join(block[i % 13:] + block[: i % 13] for i in range(mib))
repo("model", [("config.json", b'{"model_type": "bench"}\n'),
               ("tokenizer.json", os.urandom(2 << 20)),
               ("model.safetensors", big)])
del big
repo("many", [("data/f%03d.txt" % i, os.urandom(4096)) for i in range(300)])
for r in range(18):
    repo("small%02d" % r, [("f%d.json" % i, os.urandom(1024)) for i in range(5)])
EOF

# --- sshd behind the delaying relay --------------------------------------------------------
# shellcheck source=scripts/lib-sshd.sh
. scripts/lib-sshd.sh
start_loopback_sshd "$W"
PIDS+=("$SSHD_PID")
RELAY_PORT=$(free_port); ECHO_PORT=$(free_port); ECHO_RELAY=$(free_port)
python3 scripts/tcp-delay.py "$RELAY_PORT" "$SSHD_PORT" "$DELAY_MS" & PIDS+=($!)
python3 scripts/tcp-delay.py "$ECHO_RELAY" "$ECHO_PORT" "$DELAY_MS" --echo "$ECHO_PORT" & PIDS+=($!)
wait_for_port "$RELAY_PORT"
wait_for_port "$ECHO_RELAY"
RTT_MS=$(python3 - "$ECHO_RELAY" <<'EOF'
import socket, statistics, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
times = []
for _ in range(50):
    t = time.perf_counter(); s.sendall(b"x"); s.recv(1); times.append(time.perf_counter() - t)
print("%.2f" % (statistics.median(times) * 1000))
EOF
)

SSHFS_OPTS="IdentityFile=$W/client_key,StrictHostKeyChecking=no,UserKnownHostsFile=/dev/null,BatchMode=yes,LogLevel=ERROR,port=$RELAY_PORT,auto_cache,cache_timeout=5"
[[ "$(sshfs -h 2>&1 || true)" == *no_contain_symlinks* ]] && SSHFS_OPTS="$SSHFS_OPTS,no_contain_symlinks"
mkdir -p "$W/sshfs" "$W/top"

umount_all() {
    if findmnt -rn -M "$W/top" >/dev/null 2>&1; then
        umount "$W/top" 2>/dev/null || umount -l "$W/top"
    fi
    # A daemon over the sshfs mount holds descriptors on it until it has exited.
    for _ in $(seq 250); do
        findmnt -rn -M "$W/sshfs" >/dev/null 2>&1 || return 0
        umount "$W/sshfs" 2>/dev/null && return 0
        sleep 0.02
    done
    umount -l "$W/sshfs"
}

# mount_system SYS: fresh mounts; prints the root the workloads read.
mount_system() {
    umount_all
    sshfs -o "$SSHFS_OPTS" "root@127.0.0.1:$W/store" "$W/sshfs"
    case "$1" in
        direct) echo "$W/sshfs"; return ;;
        hfcachefs) "$BIN" mount -o ro "$W/sshfs" "$W/top" >&2 ;;
        hfcachefs-nopt) "$BIN" mount -o ro,nopassthrough "$W/sshfs" "$W/top" >&2 ;;
        hfcachefs-noopen) "$BIN" mount -o ro,noopen "$W/sshfs" "$W/top" >&2 ;;
        bindfs) bindfs --resolve-symlinks -o ro "$W/sshfs" "$W/top" >&2 ;;
        *) echo "bench-nas: unknown system $1" >&2; exit 2 ;;
    esac
    echo "$W/top"
}

cat >"$W/work.py" <<'EOF'
# work.py ROOT STORE WORKLOAD: prints the seconds the workload took.
import mmap, os, sys, time
root, store, work = sys.argv[1], sys.argv[2], sys.argv[3]
commit = "c0ffee" * 6 + "c0ff"
os.environ["HF_HUB_CACHE"] = root
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
if work.endswith("-cold"):
    for d, _, files in os.walk(store):
        for n in files:
            p = os.path.join(d, n)
            if not os.path.islink(p):
                fd = os.open(p, os.O_RDONLY)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                os.close(fd)
if work.startswith(("snapdl", "scan")):
    import huggingface_hub  # imported before the clock starts
snap = lambda repo: os.path.join(root, "models--bench--" + repo, "snapshots", commit)
t = time.perf_counter()
if work.startswith("load"):
    for n in ("config.json", "tokenizer.json"):
        with open(os.path.join(snap("model"), n), "rb") as f:
            f.read()
    with open(os.path.join(snap("model"), "model.safetensors"), "rb") as f:
        m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
        total = 0
        for off in range(0, len(m), 4096):
            total += m[off]
        m.close()
elif work.startswith("snapdl"):
    path = huggingface_hub.snapshot_download("bench/many", local_files_only=True)
    assert len([1 for _, _, fs in os.walk(path) for _ in fs]) == 300
elif work.startswith("scan"):
    info = huggingface_hub.scan_cache_dir()
    assert len(info.repos) == 20, len(info.repos)
elif work.startswith("cat300"):
    d = os.path.join(snap("many"), "data")
    for n in sorted(os.listdir(d)):
        with open(os.path.join(d, n), "rb") as f:
            f.read()
print("%.4f" % (time.perf_counter() - t))
EOF

run() { "$HUBPY" "$W/work.py" "$1" "$W/store" "$2"; }
declare -A T
for sys in "${SYS[@]}"; do
    for r in $(seq "$RUNS"); do
        root=$(mount_system "$sys")
        T[$sys,load-cold,$r]=$(run "$root" load-cold)
        T[$sys,load-warm,$r]=$(run "$root" load-warm)
        root=$(mount_system "$sys")
        T[$sys,cat300-cold,$r]=$(run "$root" cat300-cold)
        T[$sys,cat300-warm,$r]=$(run "$root" cat300-warm)
        run "$root" snapdl-warm >/dev/null # the first one fills the caches
        T[$sys,snapdl-warm,$r]=$(run "$root" snapdl-warm)
        sleep 6
        T[$sys,snapdl-expired,$r]=$(run "$root" snapdl-expired)
        sleep 6
        T[$sys,scan-expired,$r]=$(run "$root" scan-expired)
        echo "bench-nas: $sys run $r done" >&2
    done
done
umount_all

WORKS=(load-cold load-warm snapdl-warm snapdl-expired scan-expired cat300-cold cat300-warm)
{
    for sys in "${SYS[@]}"; do
        for w in "${WORKS[@]}"; do
            for r in $(seq "$RUNS"); do echo "$sys $w ${T[$sys,$w,$r]}"; done
        done
    done
} >"$W/raw.txt"

python3 - "$W/raw.txt" "$RTT_MS" "$DELAY_MS" "$MODEL_MIB" "$RUNS" "$JSON" "${SYS[@]}" <<'EOF'
import json, statistics, sys
raw, rtt, delay, mib, runs, out = sys.argv[1:7]
systems = sys.argv[7:]
works = ["load-cold", "load-warm", "snapdl-warm", "snapdl-expired", "scan-expired", "cat300-cold", "cat300-warm"]
t = {}
for line in open(raw):
    s, w, v = line.split()
    t.setdefault((s, w), []).append(float(v))
med = {k: statistics.median(v) for k, v in t.items()}
print(f"hfcachefs on a network store: sshfs over loopback sshd with {rtt} ms measured round trip "
      f"(relay {delay} ms each way); {mib} MiB model; median of {runs} runs; seconds, ratio = direct/system")
print("%-16s" % "workload" + "".join("%16s" % s for s in systems))
ratios = {}
for w in works:
    row = "%-16s" % w
    for s in systems:
        r = med[("direct", w)] / med[(s, w)] if "direct" in systems else float("nan")
        ratios[(s, w)] = r
        row += "%9.3fs %5.2f" % (med[(s, w)], r)
    print(row)
json.dump({"rtt_ms": float(rtt), "delay_ms": float(delay), "model_mib": int(mib), "runs": int(runs),
           "seconds": {f"{s}/{w}": med[(s, w)] for s in systems for w in works},
           "ratio": {f"{s}/{w}": ratios[(s, w)] for s in systems for w in works}}, open(out, "w"), indent=1)
EOF
plot "$JSON" "$PLOT"
