#!/usr/bin/env bash
# Windows check: type-checks every target of hfcachefs for x86_64-pc-windows-gnu, then builds
# and runs the library's and the binary's unit tests (and the integration test crates, which
# are Unix-only and empty there) under wine. WinFsp's driver itself cannot run here.
#
# Calls the shared tool ../shared/tools/windows-check.sh (relative to the repository root; in
# CI the shared directory lies beside the clone). First run: installs ~2 GB of Debian
# packages (rustc-web, MinGW-w64, wine64) and builds std for the target; takes minutes.
# Scratch: $WINCHECK_WORK (default /tmp/wincheck), not ./target.
#
# Usage: scripts/windows-check.sh [extra cargo args]
# Rule for contributors: an integration test or example that uses Unix APIs starts with
# `#![cfg(unix)]` (examples also `#![cfg_attr(not(unix), no_main)]`), or this check fails.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tool=${WINDOWS_CHECK_TOOL:-$root/../shared/tools/windows-check.sh}
if [[ ! -f $tool ]]; then
  echo "windows-check: the shared tool is missing: $tool" >&2
  echo "windows-check: it lives in the shared directory beside the repository (../shared/tools/)," >&2
  echo "windows-check: or point WINDOWS_CHECK_TOOL at a copy." >&2
  exit 2
fi
# Only the library, binary and test targets are built and run: examples are type-checked
# (cargo check --all-targets) but not linked for Windows.
# WinFsp's DLL is a delay import made by build.rs (the exe must start without WinFsp), so the
# shared tool must not add WinFsp's ordinary import library to the link.
export WINCHECK_WINFSP_LINK=${WINCHECK_WINFSP_LINK:-none}
exec bash "$tool" "$root" --lib --bins --tests "$@"
