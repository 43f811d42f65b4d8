#!/usr/bin/env bash
# Benchmark hfcachefs against direct access to the store and against peer FUSE file systems.
#
#   scripts/bench.sh            # full run: 2 GiB / 10,000 files / 512 MiB mmap / 100,000-entry store, 3 runs
#   scripts/bench.sh --quick    # small sizes, 1 run: checks the script end to end in about a minute
#
# Options:
#   --quick          small data set and one run per cell
#   --fresh          rebuild the data set even if the work dir already has it
#   --runs N         runs per cell (default 3; 1 with --quick)
#   --workdir DIR    where data, mountpoints, tools and results live (default /var/tmp/hfcachefs-bench)
#   --systems LIST   comma-separated subset of: direct,hfcachefs,hfcachefs-nopt,hfcachefs-noopen,hfcachefs-nodedupe,bindfs,rclone,passthrough_ll
#                    (hfcachefs-noopen: -o ro,noopen, zero-message opens; read rows only)
#   --writes-only    only the write rows (skips the reads and the many-link store)
#   --no-build       use the existing target/release binaries
#
# Needs root (mounts, /proc/sys/vm/drop_caches, apt-get for the peers). Every system reads the
# same files through the store's snapshot paths (the links); "direct" reads the store itself and
# lets the kernel follow the links. "Cold" = fresh mount of each FUSE system plus
# `sync; echo 3 > /proc/sys/vm/drop_caches` before the run; "warm" = the same run again right
# after, on the same mount. Ratio = time(direct) / time(system): higher is better, 1.00 = as
# fast as direct access. Each cell is the median of --runs runs.
#
# Peers: bindfs --resolve-symlinks, rclone mount --copy-links (both from apt), libfuse's
# passthrough_ll -o cache=always (built from Debian's fuse3 source package with libfuse3-dev;
# its column is skipped with a note when that cannot be done). Everything mounted is unmounted
# and every process started is stopped by its PID on exit, also on Ctrl-C.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HFC=$REPO/target/release/hfcachefs
BIO=$REPO/target/release/examples/bench_io

QUICK=0 FRESH=0 BUILD=1 RUNS="" WORK=/var/tmp/hfcachefs-bench
ALL_SYSTEMS=(direct hfcachefs hfcachefs-nopt hfcachefs-noopen hfcachefs-nodedupe bindfs rclone passthrough_ll)
WRITES_ONLY=0
SYSTEMS_ARG=""
while (($#)); do
    case $1 in
        --quick) QUICK=1 ;;
        --fresh) FRESH=1 ;;
        --no-build) BUILD=0 ;;
        --writes-only) WRITES_ONLY=1 ;;
        --runs) RUNS=$2; shift ;;
        --workdir) WORK=$2; shift ;;
        --systems) SYSTEMS_ARG=$2; shift ;;
        -h|--help) sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

if ((QUICK)); then
    BIG=$((64 << 20)) SMALL_N=500 SMALL_DIRS=10 MMAP=$((32 << 20)) MMAP_N=5000
    MANY_N=5000 MANY_DIRS=10 WRITE=$((64 << 20)) RUNS=${RUNS:-1} DATA_NAME=quick
else
    BIG=$((2 << 30)) SMALL_N=10000 SMALL_DIRS=100 MMAP=$((512 << 20)) MMAP_N=50000
    MANY_N=100000 MANY_DIRS=100 WRITE=$((2 << 30)) RUNS=${RUNS:-3} DATA_NAME=full
fi
((WRITES_ONLY)) && DATA_NAME=$DATA_NAME-writes
SMALL_SIZE=4096 MANY_SIZE=64
CMD_TIMEOUT=900 # seconds for one measured command

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (mounts, drop_caches, apt-get)"
[ -e /dev/fuse ] || modprobe fuse 2>/dev/null || true
[ -e /dev/fuse ] || die "/dev/fuse is missing"

WORK=$(mkdir -p "$WORK" && cd "$WORK" && pwd) || die "cannot create $WORK"
DATA=$WORK/$DATA_NAME
STORE=$DATA/store
STORE_MANY=$DATA/store-many
MNT=$WORK/mnt
TOOLS=$WORK/tools
RUN_ID=$(date +%Y%m%d-%H%M%S)
LOGS=$WORK/logs/$RUN_ID
RESULTS=$WORK/results-$RUN_ID.tsv
REPORT=$WORK/report-$RUN_ID.md
mkdir -p "$MNT" "$TOOLS" "$LOGS"
: >"$RESULTS"

NOTES=()
note() { NOTES+=("$*"); log "note: $*"; }

# ---------------------------------------------------------------------------------------------
# Mount bookkeeping and cleanup
# ---------------------------------------------------------------------------------------------
declare -A PID_OF=() # system -> daemon PID (started by this script)

is_mounted() { awk -v mp="$1" '$5 == mp { f = 1 } END { exit !f }' /proc/self/mountinfo; }

# True if PID is alive and still the process we started (its command line names the mountpoint).
pid_is_ours() {
    local pid=$1 mp=$2
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && tr '\0' '\n' 2>/dev/null <"/proc/$pid/cmdline" | grep -qxF -- "$mp"
}

# Waits up to $3 seconds for PID to exit.
wait_pid_gone() {
    local pid=$1 mp=$2 t=$3 i
    for ((i = 0; i < t * 20; i++)); do
        pid_is_ours "$pid" "$mp" || return 0
        sleep 0.05
    done
    return 1
}

unmount_mp() {
    local mp=$1 sys=$2 i
    for ((i = 0; i < 20; i++)); do
        is_mounted "$mp" || return 0
        if [[ $sys == hfcachefs* ]]; then
            "$HFC" unmount "$mp" >>"$LOGS/unmount.log" 2>&1 && continue
        else
            umount "$mp" >>"$LOGS/unmount.log" 2>&1 && continue
        fi
        sleep 0.5
    done
    if is_mounted "$mp"; then
        log "warning: $mp busy; lazy unmount"
        umount -l "$mp" >>"$LOGS/unmount.log" 2>&1 || true
    fi
}

stop_sys() {
    local sys=$1 mp=$MNT/$1 pid=${PID_OF[$1]:-}
    unmount_mp "$mp" "$sys"
    if [ -n "$pid" ]; then
        if ! wait_pid_gone "$pid" "$mp" 20; then
            log "warning: $sys daemon $pid still running after unmount; SIGTERM"
            kill -TERM "$pid" 2>/dev/null
            wait_pid_gone "$pid" "$mp" 5 || kill -KILL "$pid" 2>/dev/null
        fi
        wait "$pid" 2>/dev/null
        unset 'PID_OF[$sys]'
    fi
}

cleanup() {
    local sys mp
    trap - EXIT INT TERM
    for sys in "${!PID_OF[@]}"; do stop_sys "$sys"; done
    for mp in "$MNT"/*; do
        [ -d "$mp" ] || continue
        if is_mounted "$mp"; then unmount_mp "$mp" "$(basename "$mp")"; fi
    done
    rm -f "$STORE/$WRITE_REL" "$STORE/$WRITE_SNAP_REL" 2>/dev/null
}
WRITE_REL=models--bench--write/blobs/bench-write.incomplete
# A file written into a snapshot: with deduplication (the default) it becomes a blob and a link.
WRITE_SNAP_REL=models--bench--write/snapshots/0123456789abcdef0123456789abcdef01234567/bench-write.bin
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

# Leftovers from an earlier run of this script that was killed hard.
for mp in "$MNT"/*; do
    [ -d "$mp" ] && is_mounted "$mp" && { log "unmounting leftover $mp"; umount -l "$mp" || true; }
done

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# Daemons inherit the open-file limit; passthrough_ll keeps one descriptor per inode the kernel
# knows (every link and every blob read through it), so it needs a high one. Raise it as far as
# this machine allows.
ulimit -Hn 1048576 2>/dev/null
ulimit -Sn "$(ulimit -Hn)" 2>/dev/null
NOFILE=$(ulimit -Sn)

# ---------------------------------------------------------------------------------------------
# Tools: hfcachefs, the helper, the peers
# ---------------------------------------------------------------------------------------------
if ((BUILD)); then
    log "building hfcachefs and examples/bench_io (release)"
    (cd "$REPO" && cargo build --release --quiet --bin hfcachefs --example bench_io) ||
        die "cargo build failed"
fi
[ -x "$HFC" ] || die "$HFC missing (drop --no-build)"
[ -x "$BIO" ] || die "$BIO missing (drop --no-build)"

APT_UPDATED=0
apt_install() {
    ((APT_UPDATED)) || { apt-get update -qq >>"$LOGS/apt.log" 2>&1; APT_UPDATED=1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >>"$LOGS/apt.log" 2>&1
}

declare -A SKIP=()
command -v bindfs >/dev/null || apt_install bindfs || true
command -v bindfs >/dev/null || SKIP[bindfs]="apt-get install bindfs failed (see $LOGS/apt.log)"
command -v rclone >/dev/null || apt_install rclone || true
command -v rclone >/dev/null || SKIP[rclone]="apt-get install rclone failed (see $LOGS/apt.log)"

# libfuse's example passthrough_ll is not packaged by Debian: build it from the fuse3 source
# package (same version as the installed libfuse3-dev). apt-get source needs deb-src entries;
# if there are none, the Types of the existing Debian entries are extended with deb-src.
PTLL=$TOOLS/passthrough_ll
build_passthrough_ll() {
    local src=$TOOLS/fuse3-src f
    command -v gcc >/dev/null && command -v pkg-config >/dev/null && command -v dpkg-source >/dev/null &&
        pkg-config --exists fuse3 || apt_install libfuse3-dev pkg-config gcc dpkg-dev ||
        { echo "apt-get install libfuse3-dev pkg-config gcc dpkg-dev failed"; return 1; }
    rm -rf "$src" && mkdir -p "$src"
    if ! (cd "$src" && apt-get source -qq fuse3 >>"$LOGS/apt.log" 2>&1); then
        if ! grep -rqsE '^(deb-src |Types:.*deb-src)' /etc/apt/sources.list /etc/apt/sources.list.d/; then
            for f in /etc/apt/sources.list.d/*.sources; do
                [ -f "$f" ] && grep -q '^Types: deb$' "$f" || continue
                log "adding deb-src to the Types of $f (to get the fuse3 source package; original saved in $TOOLS)"
                cp -n "$f" "$TOOLS/$(basename "$f").orig"
                sed -i 's/^Types: deb$/Types: deb deb-src/' "$f"
            done
            if [ -f /etc/apt/sources.list ] && grep -q '^deb ' /etc/apt/sources.list; then
                log "adding deb-src lines for /etc/apt/sources.list in sources.list.d/hfcachefs-bench-src.list"
                sed -n 's/^deb /deb-src /p' /etc/apt/sources.list >/etc/apt/sources.list.d/hfcachefs-bench-src.list
            fi
            apt-get update -qq >>"$LOGS/apt.log" 2>&1
        fi
        (cd "$src" && apt-get source -qq fuse3 >>"$LOGS/apt.log" 2>&1) ||
            { echo "apt-get source fuse3 failed (no deb-src entries usable; see $LOGS/apt.log)"; return 1; }
    fi
    f=$(ls -d "$src"/fuse3-*/example/passthrough_ll.c 2>/dev/null | head -1)
    [ -n "$f" ] || { echo "fuse3 source has no example/passthrough_ll.c"; return 1; }
    # shellcheck disable=SC2046
    gcc -O2 -Wall "$f" $(pkg-config --cflags --libs fuse3) -o "$PTLL" >>"$LOGS/build-ptll.log" 2>&1 ||
        { echo "compiling passthrough_ll.c failed (see $LOGS/build-ptll.log)"; return 1; }
    echo "built from $(basename "$(dirname "$(dirname "$f")")") (Debian source package)" >"$PTLL.origin"
}
if [ ! -x "$PTLL" ]; then
    log "building libfuse's passthrough_ll from Debian's fuse3 source package"
    if ! why=$(build_passthrough_ll); then
        SKIP[passthrough_ll]="passthrough_ll could not be built: $why"
    fi
fi

# ---------------------------------------------------------------------------------------------
# Data set
# ---------------------------------------------------------------------------------------------
PARAMS="BIG=$BIG SMALL_N=$SMALL_N SMALL_DIRS=$SMALL_DIRS SMALL_SIZE=$SMALL_SIZE MMAP=$MMAP MANY_N=$MANY_N MANY_DIRS=$MANY_DIRS MANY_SIZE=$MANY_SIZE v1"
if ((WRITES_ONLY)); then
    # The write rows need no data set: just the write repo.
    mkdir -p "$STORE" "$STORE_MANY"
    BIG_REL="" MMAP_REL="" SMALL_DIR="" MANY_DIR=""
elif ((FRESH)) || [ ! -f "$DATA/manifest" ] || [ "$(sed -n 1p "$DATA/manifest")" != "# $PARAMS" ]; then
    need_kb=$(((BIG + MMAP + WRITE + SMALL_N * 4096 * 2 + MANY_N * 4096 * 2) / 1024 + 1048576))
    avail_kb=$(df -Pk "$WORK" | awk 'NR == 2 { print $4 }')
    ((avail_kb > need_kb)) || die "not enough space in $WORK: need ~$((need_kb >> 20)) GiB"
    log "creating the data set in $DATA"
    rm -rf "$DATA" && mkdir -p "$STORE" "$STORE_MANY" "$STORE/models--bench--write/blobs"
    big_rel=$("$BIO" mkrepo "$STORE" models--bench--large model.safetensors "$BIG" 1) || die "mkrepo failed"
    mmap_rel=$("$BIO" mkrepo "$STORE" models--bench--mmap model.bin "$MMAP" 2) || die "mkrepo failed"
    small_dir=$("$BIO" mksmall "$STORE" models--bench--small "$SMALL_N" "$SMALL_DIRS" "$SMALL_SIZE" 3 "$DATA/small.list") ||
        die "mksmall failed"
    many_dir=$("$BIO" mksmall "$STORE_MANY" models--bench--many "$MANY_N" "$MANY_DIRS" "$MANY_SIZE" 4 "$DATA/many.list") ||
        die "mksmall failed"
    sync
    {
        echo "# $PARAMS"
        echo "BIG_REL=$big_rel"
        echo "MMAP_REL=$mmap_rel"
        echo "SMALL_DIR=$small_dir"
        echo "MANY_DIR=$many_dir"
    } >"$DATA/manifest"
else
    log "reusing the data set in $DATA (--fresh rebuilds it)"
fi
# shellcheck disable=SC1091
((WRITES_ONLY)) || source <(grep -v '^#' "$DATA/manifest")
rm -f "$STORE/$WRITE_REL" "$STORE/$WRITE_SNAP_REL"
mkdir -p "$STORE/models--bench--write/blobs" "$(dirname "$STORE/$WRITE_SNAP_REL")"
((WRITES_ONLY)) || { [ -L "$STORE/$BIG_REL" ] && [ -L "$STORE/$MMAP_REL" ] && [ -d "$STORE/$SMALL_DIR" ]; } ||
    die "data set incomplete; use --fresh"

# ---------------------------------------------------------------------------------------------
# Systems
# ---------------------------------------------------------------------------------------------
# The daemon of a detached hfcachefs mount: the process whose argv has $HFC and the mountpoint.
find_detached_pid() {
    local p
    for p in /proc/[0-9]*; do
        [ "$(tr '\0' '\n' 2>/dev/null <"$p/cmdline" | head -1)" = "$HFC" ] || continue
        pid_is_ours "${p#/proc/}" "$1" && { echo "${p#/proc/}"; return 0; }
    done
    return 1
}

# Is -o nopassthrough accepted? Probe with a real detached mount.
probe_mp=$MNT/probe
mkdir -p "$probe_mp"
if probe_err=$("$HFC" mount -o nopassthrough "$STORE" "$probe_mp" 2>&1); then
    if is_mounted "$probe_mp"; then
        probe_pid=""
        probe_pid=$(find_detached_pid "$probe_mp")
        "$HFC" unmount "$probe_mp" >>"$LOGS/unmount.log" 2>&1 || umount -l "$probe_mp"
        [ -n "$probe_pid" ] && wait_pid_gone "$probe_pid" "$probe_mp" 10
    fi
else
    SKIP[hfcachefs-nopt]="hfcachefs does not accept -o nopassthrough yet: ${probe_err//$'\n'/ }"
fi

SYSTEMS=()
if [ -n "$SYSTEMS_ARG" ]; then IFS=, read -ra want <<<"$SYSTEMS_ARG"; else want=("${ALL_SYSTEMS[@]}"); fi
for s in "${want[@]}"; do
    [[ " ${ALL_SYSTEMS[*]} " == *" $s "* ]] || die "unknown system $s"
    if [ -n "${SKIP[$s]:-}" ]; then note "$s skipped: ${SKIP[$s]}"; else SYSTEMS+=("$s"); fi
done
[[ " ${SYSTEMS[*]} " == *" direct "* ]] || note "direct not measured: no ratios"
if [[ " ${SYSTEMS[*]} " == *" passthrough_ll "* && $NOFILE != unlimited ]] && ((NOFILE < 2 * SMALL_N + 1000 || NOFILE < 2 * MANY_N + 1000)); then
    note "the open-file limit is $NOFILE and cannot be raised here (ulimit -Hn); passthrough_ll needs one descriptor per inode it has looked up (every link and every blob: $((2 * SMALL_N)) for the small-file set, $((2 * MANY_N)) for the $MANY_N-link store), so its cells that touch that many files fail with EMFILE (\"Too many open files\")"
fi

label() {
    case $1 in
        direct) echo "direct (store)" ;;
        hfcachefs) echo "hfcachefs" ;;
        hfcachefs-nopt) echo "hfcachefs -o nopassthrough" ;;
        hfcachefs-noopen) echo "hfcachefs -o ro,noopen" ;;
        hfcachefs-nodedupe) echo "hfcachefs -o nodedupe" ;;
        bindfs) echo "bindfs --resolve-symlinks" ;;
        rclone) echo "rclone mount --copy-links" ;;
        passthrough_ll) echo "passthrough_ll cache=always" ;;
    esac
}

# The tree a system's clients see; reads use $ROOT/<snapshot path> on every system.
root_of() { if [ "$1" = direct ]; then echo "$STORE"; else echo "$MNT/$1"; fi; }
# Systems that show the links as links: find must follow them (-L) to see the files.
find_flag() { case $1 in direct|passthrough_ll) echo -L ;; *) echo -P ;; esac; }

export RCLONE_CONFIG=$WORK/rclone.conf
: >"$RCLONE_CONFIG"

# Starts the daemon of SYSTEM for STORE in the foreground (as our child; not in a subshell, so
# that PID_OF stays set); READY = seconds until the mount showed in /proc/self/mountinfo (polled).
READY=""
start_sys() {
    local sys=$1 store=$2 mp=$MNT/$1 pid t0 i
    READY=""
    mkdir -p "$mp"
    is_mounted "$mp" && stop_sys "$sys"
    t0=$EPOCHREALTIME
    case $sys in
        hfcachefs) "$HFC" mount -f "$store" "$mp" >>"$LOGS/$sys.log" 2>&1 & ;;
        hfcachefs-nopt) "$HFC" mount -f -o nopassthrough "$store" "$mp" >>"$LOGS/$sys.log" 2>&1 & ;;
        hfcachefs-nodedupe) "$HFC" mount -f -o nodedupe "$store" "$mp" >>"$LOGS/$sys.log" 2>&1 & ;;
        hfcachefs-noopen) "$HFC" mount -f -o ro,noopen "$store" "$mp" >>"$LOGS/$sys.log" 2>&1 & ;;
        bindfs) bindfs -f --resolve-symlinks "$store" "$mp" >>"$LOGS/$sys.log" 2>&1 & ;;
        rclone) rclone mount --copy-links "$store" "$mp" >>"$LOGS/$sys.log" 2>&1 & ;;
        passthrough_ll) "$PTLL" -f -o "source=$store,cache=always" "$mp" >>"$LOGS/$sys.log" 2>&1 & ;;
        *) return 1 ;;
    esac
    pid=$!
    PID_OF[$sys]=$pid
    for ((i = 0; i < 12000; i++)); do
        if is_mounted "$mp"; then
            READY=$(elapsed "$t0" "$EPOCHREALTIME")
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.005
    done
    log "error: $sys did not mount (see $LOGS/$sys.log)"
    stop_sys "$sys"
    return 1
}

# ---------------------------------------------------------------------------------------------
# Measurements: each echoes seconds (or fails with a message on stderr)
# ---------------------------------------------------------------------------------------------
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f\n", b - a }'; }
tm() { timeout -k 10 "$CMD_TIMEOUT" "$@"; }

m_seq() {
    local out bytes secs
    out=$(tm "$BIO" seqread "$1/$BIG_REL") || return 1
    read -r bytes secs <<<"$out"
    [ "$bytes" = "$BIG" ] || { echo "seqread: read $bytes bytes, expected $BIG" >&2; return 1; }
    echo "$secs"
}

m_find() {
    local t0 t1 out
    t0=$EPOCHREALTIME
    out=$(tm find "$2" "$1/$SMALL_DIR" -type f -printf '%s\n' | awk '{ n++; s += $1 } END { print n + 0, s + 0 }') || return 1
    t1=$EPOCHREALTIME
    [ "$out" = "$SMALL_N $((SMALL_N * SMALL_SIZE))" ] ||
        { echo "find: got 'files bytes' = '$out', expected '$SMALL_N $((SMALL_N * SMALL_SIZE))'" >&2; return 1; }
    elapsed "$t0" "$t1"
}

m_cat() {
    local t0 t1 out
    t0=$EPOCHREALTIME
    out=$(cd "$1" && tm xargs -0 cat <"$DATA/small.list" | wc -c) || return 1
    t1=$EPOCHREALTIME
    [ "$out" = "$((SMALL_N * SMALL_SIZE))" ] || { echo "cat: got $out bytes" >&2; return 1; }
    elapsed "$t0" "$t1"
}

# The first run's checksum is kept in a file (measurements run in subshells); all must match.
m_mmap() {
    local out secs sum
    out=$(tm "$BIO" mmaprand "$1/$MMAP_REL" "$MMAP_N" 7) || return 1
    read -r secs sum <<<"$out"
    [ -s "$LOGS/mmap.sum" ] || echo "$sum" >"$LOGS/mmap.sum"
    [ "$sum" = "$(cat "$LOGS/mmap.sum")" ] || { echo "mmap: checksum $sum differs from $(cat "$LOGS/mmap.sum")" >&2; return 1; }
    echo "$secs"
}

# Echoes "<write seconds> <fsync seconds>".
m_write() {
    local out
    out=$(tm "$BIO" write "$1/$WRITE_REL" "$WRITE") || { rm -f "$1/$WRITE_REL"; return 1; }
    rm -f "$1/$WRITE_REL"
    sync
    echo "$out"
}

# Writes into a snapshot; echoes "<write seconds> <write + fsync + close seconds> <seconds until
# the store entry is a link>" (the last equals the second where nothing converts the copy:
# direct, -o nodedupe). The blob a conversion made is removed from the store afterwards.
m_write_snap() {
    local out tw tf t0 t1 i linked
    t0=$EPOCHREALTIME
    out=$(tm "$BIO" write "$1/$WRITE_SNAP_REL" "$WRITE") || { rm -f "$1/$WRITE_SNAP_REL"; return 1; }
    read -r tw tf <<<"$out"
    if [[ $2 == hfcachefs || $2 == hfcachefs-nopt ]]; then
        # The copy becomes a link when its last close reaches the daemon (after close returned).
        for ((i = 0; i < 12000; i++)); do
            [ -L "$STORE/$WRITE_SNAP_REL" ] && break
            sleep 0.01
        done
        [ -L "$STORE/$WRITE_SNAP_REL" ] || { echo "write_snap: $WRITE_SNAP_REL did not become a link" >&2; return 1; }
    fi
    t1=$EPOCHREALTIME
    linked=$(elapsed "$t0" "$t1")
    rm -f "$1/$WRITE_SNAP_REL"
    find "$STORE/models--bench--write/blobs" -mindepth 1 -maxdepth 1 -type f ! -name '*.incomplete' -delete
    sync
    echo "$tw $(awk -v a="$tw" -v b="$tf" 'BEGIN { printf "%.6f", a + b }') $linked"
}

# try LABEL CMD...: echoes CMD's output, or "fail" (its first error line is logged, all of its
# errors go to errors.log: a failing peer can print one line per file).
try() {
    local label=$1 err=$LOGS/last.err out
    shift
    if out=$("$@" 2>"$err"); then
        echo "$out"
    else
        { echo "== $label"; head -c 4000 "$err"; } >>"$LOGS/errors.log"
        log "  $label failed: $(head -1 "$err" | cut -c1-200) ($(wc -l <"$err") error lines; see $LOGS/errors.log)"
        echo fail
    fi
}

record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$RESULTS"; } # metric system run value

# ---------------------------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------------------------
FUSE_SYSTEMS=()
for s in "${SYSTEMS[@]}"; do [ "$s" = direct ] || FUSE_SYSTEMS+=("$s"); done
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
T_START=$SECONDS
# Pressure stall totals (microseconds some task waited for CPU / IO), to show how busy the
# machine was with other work during the run.
psi_total() { awk '/^some/ { sub("total=", "", $5); print $5 }' "/proc/pressure/$1" 2>/dev/null || echo 0; }
PSI_CPU0=$(psi_total cpu) PSI_IO0=$(psi_total io) PSI_T0=$EPOCHREALTIME
log "systems: ${SYSTEMS[*]}; $RUNS run(s) per cell; results in $RESULTS"

# Runs METRIC (seq|find|cat|mmap) cold then warm on SYSTEM, run number RUN.
cold_warm() {
    local metric=$1 sys=$2 run=$3 root v c="" w=""
    root=$(root_of "$sys")
    if [ "$sys" != direct ]; then
        start_sys "$sys" "$STORE" || { record "${metric}_cold" "$sys" "$run" fail; record "${metric}_warm" "$sys" "$run" fail; return; }
    fi
    drop_caches
    c=$(try "$metric cold $sys" "m_$metric" "$root" "$(find_flag "$sys")")
    record "${metric}_cold" "$sys" "$run" "$c"
    w=$(try "$metric warm $sys" "m_$metric" "$root" "$(find_flag "$sys")")
    record "${metric}_warm" "$sys" "$run" "$w"
    [ "$sys" = direct ] || stop_sys "$sys"
    log "run $run/$RUNS $metric $sys: cold $c s, warm $w s"
}

for ((run = 1; run <= RUNS * !WRITES_ONLY; run++)); do
    # Rotate the order of the systems from run to run so drift does not favour one of them.
    n=${#SYSTEMS[@]}
    order=()
    for ((i = 0; i < n; i++)); do order+=("${SYSTEMS[$(((i + run - 1) % n))]}"); done
    for metric in seq find cat mmap; do
        for sys in "${order[@]}"; do cold_warm "$metric" "$sys" "$run"; done
    done
done

# Writes after all reads (a 2 GiB write slows the disk for a while after it), each followed by
# removal, sync and a pause.
WRITE_SYSTEMS=()
# (a noopen mount is read-only.)
for s in "${SYSTEMS[@]}"; do [[ $s == direct || ($s == hfcachefs* && $s != hfcachefs-noopen) ]] && WRITE_SYSTEMS+=("$s"); done
for ((run = 1; run <= RUNS; run++)); do
    n=${#WRITE_SYSTEMS[@]}
    for ((i = 0; i < n; i++)); do
        sys=${WRITE_SYSTEMS[$(((i + run - 1) % n))]}
        if [ "$sys" != direct ]; then
            start_sys "$sys" "$STORE" || { record write_buf "$sys" "$run" fail; record write_sync "$sys" "$run" fail; continue; }
        fi
        drop_caches
        out=$(try "write $sys" m_write "$(root_of "$sys")")
        if [ "$out" != fail ]; then
            read -r tw tf <<<"$out"
            record write_buf "$sys" "$run" "$tw"
            record write_sync "$sys" "$run" "$(awk -v a="$tw" -v b="$tf" 'BEGIN { printf "%.6f", a + b }')"
        else
            record write_buf "$sys" "$run" fail
            record write_sync "$sys" "$run" fail
        fi
        log "run $run/$RUNS write $sys: write, fsync seconds: $out"
        sleep $((QUICK ? 0 : 3))
        drop_caches
        out=$(try "write into a snapshot $sys" m_write_snap "$(root_of "$sys")" "$sys")
        if [ "$out" != fail ]; then
            read -r tw ts tl <<<"$out"
        else
            tw=fail ts=fail tl=fail
        fi
        record write_snap_buf "$sys" "$run" "$tw"
        record write_snap_sync "$sys" "$run" "$ts"
        record write_snap_linked "$sys" "$run" "$tl"
        [ "$sys" = direct ] || stop_sys "$sys"
        log "run $run/$RUNS write into a snapshot $sys: write, +fsync+close, until linked seconds: $out"
        sleep $((QUICK ? 0 : 3))
    done
done

# The store with MANY_N snapshot links: mount-ready time, ls -lR time, daemon peak RSS.
lsr() {
    local t0 t1 n
    t0=$EPOCHREALTIME
    n=$(tm ls -lR "$1" | wc -l) || return 1
    t1=$EPOCHREALTIME
    ((n >= MANY_N)) || { echo "ls -lR: only $n lines" >&2; return 1; }
    elapsed "$t0" "$t1"
}
for ((run = 1; run <= RUNS * !WRITES_ONLY; run++)); do
    for sys in "${SYSTEMS[@]}"; do
        mp=$MNT/$sys
        mkdir -p "$mp"
        drop_caches
        ready="" pid=""
        case $sys in
            direct)
                v=$(try "ls -lR direct" lsr "$STORE_MANY")
                record lsr_many direct "$run" "$v"
                log "run $run/$RUNS many direct: ls -lR $v s"
                continue ;;
            hfcachefs|hfcachefs-nopt|hfcachefs-noopen)
                # Detached mount: the command returns once the mount is live.
                opts=()
                [ "$sys" = hfcachefs-nopt ] && opts=(-o nopassthrough)
                [ "$sys" = hfcachefs-noopen ] && opts=(-o ro,noopen)
                t0=$EPOCHREALTIME
                if "$HFC" mount "${opts[@]}" --log-file "$LOGS/$sys-many.log" "$STORE_MANY" "$mp" 2>>"$LOGS/$sys-many.log"; then
                    t1=$EPOCHREALTIME
                    is_mounted "$mp" || log "warning: $sys mount returned before the mount was live"
                    ready=$(elapsed "$t0" "$t1")
                    pid=$(find_detached_pid "$mp") && PID_OF[$sys]=$pid
                fi ;;
            *)
                start_sys "$sys" "$STORE_MANY" && ready=$READY pid=${PID_OF[$sys]} ;;
        esac
        if [ -z "$ready" ]; then
            for m in ready_many lsr_many rss_many; do record "$m" "$sys" "$run" fail; done
            log "run $run/$RUNS many $sys: mount failed"
            continue
        fi
        record ready_many "$sys" "$run" "$ready"
        v=$(try "ls -lR $sys" lsr "$mp")
        record lsr_many "$sys" "$run" "$v"
        rss=fail
        # The peak RSS only counts after a complete listing.
        [ -n "$pid" ] && [ "$v" != fail ] && rss=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status" 2>/dev/null)
        record rss_many "$sys" "$run" "${rss:-fail}"
        if [[ $sys == hfcachefs* ]]; then
            unmount_mp "$mp" "$sys"
            [ -n "$pid" ] && { wait_pid_gone "$pid" "$mp" 20 || { kill -TERM "$pid"; wait_pid_gone "$pid" "$mp" 5; }; }
            unset 'PID_OF[$sys]'
        else
            stop_sys "$sys"
        fi
        log "run $run/$RUNS many $sys: ready $ready s, ls -lR $v s, VmHWM ${rss:-?} KiB"
    done
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
PSI=$(awk -v c0="$PSI_CPU0" -v c1="$(psi_total cpu)" -v i0="$PSI_IO0" -v i1="$(psi_total io)" -v t0="$PSI_T0" -v t1="$EPOCHREALTIME" \
    'BEGIN { t = (t1 - t0) * 1e6; if (t > 0 && c1 > 0) printf "some task waited for CPU %.0f%% and for IO %.0f%% of the time", 100 * (c1 - c0) / t, 100 * (i1 - i0) / t; else print "n/a" }')
T_TOTAL=$((SECONDS - T_START))

# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------
# median METRIC SYSTEM -> median of the successful runs, "+" appended if some runs failed, "fail" if all did.
median() {
    local bad
    bad=$(awk -F'\t' -v m="$1" -v s="$2" '$1 == m && $2 == s && $4 == "fail"' "$RESULTS" | wc -l)
    awk -F'\t' -v m="$1" -v s="$2" '$1 == m && $2 == s && $4 != "fail" { print $4 }' "$RESULTS" | sort -g |
        awk -v bad="$bad" '
            { v[++n] = $1 }
            END {
                if (n == 0) { print (bad > 0 ? "fail" : ""); exit }
                med = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
                printf "%.6f%s\n", med, (bad > 0 ? "+" : "")
            }'
}
num() { echo "${1%+}"; }
isnum() { [[ ${1%+} =~ ^[0-9.]+$ ]]; }
# fmt KIND VALUE: KIND mbps:BYTES, s, mib
fmt() {
    local kind=$1 v=$2 mark=""
    [[ $v == *+ ]] && mark="⁺"
    isnum "$v" || { echo "${v:-–}"; return; }
    case $kind in
        mbps:*) awk -v b="${kind#mbps:}" -v t="$(num "$v")" -v m="$mark" 'BEGIN { printf "%.0f MB/s%s\n", b / 1e6 / t, m }' ;;
        s) awk -v t="$(num "$v")" -v m="$mark" 'BEGIN { printf (t < 10 ? "%.3f s%s\n" : "%.1f s%s\n"), t, m }' ;;
        mib) awk -v k="$(num "$v")" -v m="$mark" 'BEGIN { printf "%.1f MiB%s\n", k / 1024, m }' ;;
    esac
}
ratio() {
    [ "${2:-}" = fail ] && { echo "fail"; return; }
    isnum "$1" && isnum "$2" || { echo "–"; return; }
    awk -v d="$(num "$1")" -v s="$(num "$2")" 'BEGIN { if (s > 0) printf "%.2f\n", d / s; else print "–" }'
}

hr() { awk -v b="$1" 'BEGIN { if (b >= 2^30) printf "%g GiB", b / 2^30; else printf "%g MiB", b / 2^20 }'; }
READ_METRICS=(
    "seq_cold|sequential read $(hr "$BIG"), cold|mbps:$BIG"
    "seq_warm|same file read again (warm)|mbps:$BIG"
    "find_cold|find -type f -printf %s, $SMALL_N entries, cold|s"
    "find_warm|same, warm|s"
    "cat_cold|cat of $SMALL_N $((SMALL_SIZE / 1024)) KiB files, cold|s"
    "cat_warm|same, warm|s"
    "mmap_cold|$MMAP_N random 4 KiB reads via mmap of $(hr "$MMAP"), cold|s"
    "mmap_warm|same, warm|s"
    "write_buf|write $(hr "$WRITE") (until the last write returns)|mbps:$WRITE"
    "write_sync|write $(hr "$WRITE") + fsync|mbps:$WRITE"
    "write_snap_buf|write $(hr "$WRITE") into snapshots/ (until the last write returns)|mbps:$WRITE"
    "write_snap_sync|same + fsync + close|mbps:$WRITE"
    "write_snap_linked|same, until the store entry is a link (conversion after close included)|mbps:$WRITE"
    "lsr_many|ls -lR of the $MANY_N-link store, cold|s"
)

{
    echo "# hfcachefs benchmark ($([ "$QUICK" = 1 ] && echo "quick" || echo "full"), $RUNS run(s) per cell, median)"
    echo
    echo "- machine: $(nproc) CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM, kernel $(uname -r)"
    echo "- work dir: $WORK on $(findmnt -n -o FSTYPE -T "$WORK") ($(findmnt -n -o SOURCE -T "$WORK"))"
    echo "- load average at start: $LOAD_START, at end: $LOAD_END; took $((T_TOTAL / 60)) min $((T_TOTAL % 60)) s"
    echo "- pressure during the run (/proc/pressure): $PSI"
    echo "- hfcachefs: $(cd "$REPO" && git describe --always --dirty 2>/dev/null || echo unknown); $(bindfs --version 2>/dev/null | head -1); $(rclone version 2>/dev/null | head -1); fuse3 $(dpkg-query -W -f='${Version}' fuse3 2>/dev/null)"
    [ -f "$PTLL.origin" ] && echo "- passthrough_ll: $(cat "$PTLL.origin")"
    echo "- data: $(hr "$BIG") blob, $SMALL_N x $SMALL_SIZE B blobs behind links in $SMALL_DIRS dirs, $(hr "$MMAP") mmap blob; second store with $MANY_N links; all read through snapshots/<commit>/ paths"
    echo "- cold = fresh mount + sync + drop_caches (3) before the run; warm = same run again on the same mount"
    echo "- open-file limit of the daemons: $NOFILE"
    echo
    echo "## Ratio to direct access (time direct / time system; higher is better, 1.00 = direct)"
    echo
    hdr="| metric |" sep="|---|"
    for s in "${SYSTEMS[@]}"; do [ "$s" = direct ] && continue; hdr+=" $(label "$s") |"; sep+="---:|"; done
    echo "$hdr"; echo "$sep"
    for row in "${READ_METRICS[@]}"; do
        IFS='|' read -r m title kind <<<"$row"
        line="| $title |"
        d=$(median "$m" direct)
        for s in "${SYSTEMS[@]}"; do
            [ "$s" = direct ] && continue
            if [[ $m == write_* && $s != hfcachefs* ]]; then line+=" n/a |"; continue; fi
            line+=" $(ratio "$d" "$(median "$m" "$s")") |"
        done
        echo "$line"
    done
    echo
    echo "## Raw medians"
    echo
    hdr="| metric |" sep="|---|"
    for s in "${SYSTEMS[@]}"; do hdr+=" $(label "$s") |"; sep+="---:|"; done
    echo "$hdr"; echo "$sep"
    for row in "${READ_METRICS[@]}"; do
        IFS='|' read -r m title kind <<<"$row"
        line="| $title |"
        for s in "${SYSTEMS[@]}"; do
            if [[ $m == write_* && $s != direct && $s != hfcachefs* ]]; then line+=" n/a |"; continue; fi
            line+=" $(fmt "$kind" "$(median "$m" "$s")") |"
        done
        echo "$line"
    done
    echo
    echo "## Store with $MANY_N snapshot links (FUSE daemons)"
    echo
    hdr="| metric |" sep="|---|"
    for s in "${FUSE_SYSTEMS[@]}"; do hdr+=" $(label "$s") |"; sep+="---:|"; done
    echo "$hdr"; echo "$sep"
    line="| daemon peak RSS (VmHWM) after ls -lR |"
    for s in "${FUSE_SYSTEMS[@]}"; do line+=" $(fmt mib "$(median rss_many "$s")") |"; done
    echo "$line"
    line="| mount-ready time |"
    for s in "${FUSE_SYSTEMS[@]}"; do line+=" $(fmt s "$(median ready_many "$s")") |"; done
    echo "$line"
    echo
    echo "Mount-ready: hfcachefs = duration of the detached \`hfcachefs mount\` command (returns once the"
    echo "mount is in /proc/self/mountinfo); peers = start of the foreground daemon until the mount"
    echo "shows in /proc/self/mountinfo (polled every 5 ms)."
    echo
    echo "Notes:"
    echo "- throughput cells are MB/s (10^6 bytes/s) computed from the median time; other cells are the median time."
    echo "- ⁺ = some runs of that cell failed; the median is over the others (see $RESULTS and $LOGS)."
    echo "- direct and passthrough_ll show the snapshot entries as links: find runs with -L there (follows them, stat of the blob); the others show regular files."
    echo "- the machine has few cores and may be shared with other work (builds): expect timing noise of several percent, more on sub-second cells."
    for s in hfcachefs hfcachefs-nopt hfcachefs-noopen; do
        [ -f "$LOGS/$s.log" ] || continue
        mode=$(grep -m1 -o ' at [^ ]* (.*)$' "$LOGS/$s.log" | sed 's/.*(\(.*\))$/\1/')
        [ -n "$mode" ] && echo "- $(label "$s") mounted as: $mode"
        grep -q "passthrough unavailable" "$LOGS/$s.log" &&
            echo "- $s: the daemon logged: $(grep -m1 -o 'passthrough unavailable.*' "$LOGS/$s.log")"
    done
    [ -f "$LOGS/passthrough_ll.log" ] && grep -q "Ignoring invalid max threads" "$LOGS/passthrough_ll.log" &&
        echo "- passthrough_ll prints \"Ignoring invalid max threads value 4294967295\" (libfuse 3.14 example quirk) and uses libfuse's default thread limit."
    for n in "${NOTES[@]}"; do echo "- $n"; done
    echo "- raw samples: $RESULTS; daemon logs: $LOGS"
} | tee "$REPORT"
log "report saved to $REPORT"
