#!/usr/bin/env bash
# Checks the systemd units (the mount service, the example mount unit, the dedupe and gc
# timers and their services) with `systemd-analyze verify` (package: systemd), also on a machine
# where systemd is not PID 1 (containers, CI). Any warning counts as a failure.
#
# What it checks: the unit files parse, every key is known and its value valid (Type=, Restart=,
# Kill*, time spans, [Install]), the template instantiates (hfcachefs@hub.service), the mount
# unit's name matches its Where=, dependencies (network-online.target, remote-fs.target,
# multi-user.target) exist, and every Exec*= program exists and is executable (the
# hfcachefs binary must be installed at /usr/local/bin, or pass --binary PATH to check a unit
# rewritten for that path).
# What it cannot check: anything at run time (EnvironmentFile= contents, ${VAR} substitution,
# the shell snippets, conditions, ordering at boot). The shell snippets are exercised by hand
# as described in docs/OPERATIONS.md.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BINARY=/usr/local/bin/hfcachefs
if [ "${1:-}" = "--binary" ]; then
    BINARY="$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"
fi
command -v systemd-analyze >/dev/null 2>&1 || {
    echo "verify-units: systemd-analyze missing (apt-get install systemd)" >&2
    exit 1
}
[ -x "$BINARY" ] || {
    echo "verify-units: $BINARY missing: run platform/linux/install.sh first, or pass --binary PATH" >&2
    exit 1
}
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
for u in hfcachefs@.service hfcachefs-dedupe@.service hfcachefs-gc@.service; do
    sed "s#/usr/local/bin/hfcachefs#$BINARY#g" "$HERE/$u" >"$dir/$u"
done
cp "$HERE/hfcachefs-dedupe@.timer" "$HERE/hfcachefs-gc@.timer" "$dir/"
mount_unit="$(systemd-escape -p --suffix=mount /srv/hf-hub)"
cp "$HERE/hfcachefs-example.mount" "$dir/$mount_unit"
status=0
for unit in hfcachefs@hub.service "$mount_unit" hfcachefs-dedupe@hub.timer \
    hfcachefs-dedupe@hub.service hfcachefs-gc@hub.timer hfcachefs-gc@hub.service; do
    # SYSTEMD_UNIT_PATH with a trailing ':' puts our directory before the system's unit paths.
    out="$(cd "$dir" && SYSTEMD_UNIT_PATH="$dir:" systemd-analyze verify --man=no "$unit" 2>&1)" || status=1
    if [ -n "$out" ]; then
        printf '%s\n' "$out" >&2
        status=1
        echo "verify-units: FAIL $unit" >&2
    else
        echo "verify-units: ok   $unit"
    fi
done
exit "$status"
