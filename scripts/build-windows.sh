#!/usr/bin/env bash
# Builds the Windows release on this Linux machine: dist/hfcachefs-<version>-windows-x86_64.zip
# holding hfcachefs.exe (x86_64-pc-windows-gnu, release), a short Windows README, the
# platform/windows/ scripts and the license. WinFsp is not bundled: the exe imports WinFsp's
# DLL as a delay import (build.rs) and `mount` loads it from WinFsp's install directory, so the
# exe starts and the cache tools run on machines without WinFsp.
#
# Uses the shared Windows tool (see scripts/windows-check.sh; first run installs MinGW-w64 and
# Debian's rustc and builds std). Scratch: $WINCHECK_WORK (default /tmp/wincheck).
# Prints the zip's path on stdout.
#
# Usage: scripts/build-windows.sh
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tool=${WINDOWS_CHECK_TOOL:-$root/../shared/tools/windows-check.sh}
[[ -f $tool ]] || { echo "build-windows: the shared tool is missing: $tool" >&2; exit 2; }
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -1)
name=hfcachefs-$version-windows-x86_64

exe=$(WINCHECK_MODE=build WINCHECK_WINFSP_LINK=none bash "$tool" "$root" --release --bin hfcachefs |
  grep '/hfcachefs\.exe$' | tail -1)
[[ -f $exe ]] || { echo "build-windows: no hfcachefs.exe was built" >&2; exit 1; }

# The guarantee the zip rests on: WinFsp's DLL is not an ordinary import of the exe.
if x86_64-w64-mingw32-objdump -p "$exe" | grep -qi 'DLL Name: winfsp'; then
  echo "build-windows: $exe imports WinFsp's DLL at load time; it would not start without WinFsp" >&2
  exit 1
fi

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/$name/platform/windows"
cp "$exe" "$stage/$name/hfcachefs.exe"
x86_64-w64-mingw32-strip "$stage/$name/hfcachefs.exe"
cp "$root/platform/windows/README.txt" "$stage/$name/README.txt"
cp "$root/LICENSE" "$stage/$name/LICENSE"
cp "$root"/platform/windows/*.ps1 "$stage/$name/platform/windows/"
mkdir -p "$root/dist"
zip=$root/dist/$name.zip
rm -f "$zip"
# Python's zipfile: no zip package needed; Windows' Explorer and Expand-Archive read it.
/usr/bin/python3 - "$stage" "$name" "$zip" <<'PY'
import os, sys, zipfile
stage, name, out = sys.argv[1:]
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
    for dirpath, dirs, files in os.walk(os.path.join(stage, name)):
        dirs.sort()
        for f in sorted(files):
            full = os.path.join(dirpath, f)
            z.write(full, os.path.relpath(full, stage).replace(os.sep, "/"))
PY
echo "build-windows: $zip ($(du -h "$zip" | cut -f1))" >&2
echo "$zip"
