#!/usr/bin/env bash
# The whole test suite: lint, the Windows build and its unit tests under wine, unit tests,
# integration tests over real FUSE mounts, and real-client tests (huggingface_hub venvs and the
# hf-hub crate) against the fake Hub on 127.0.0.1. Needs root (mounts) and /dev/fuse.
# Installs what it needs first. HFCACHEFS_SKIP_WINDOWS=1 skips the (slow, first run ~2 GB)
# Windows check for quick local runs; CI always runs it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/install-deps.sh
scripts/setup-python.sh >/dev/null
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings
if [ "${HFCACHEFS_SKIP_WINDOWS:-0}" != 1 ]; then
    echo "== Windows build and unit tests (x86_64-pc-windows-gnu, wine)"
    scripts/windows-check.sh
    echo "== Windows release zip: built, and run under wine without WinFsp"
    scripts/windows-release-check.sh
fi
echo "== cargo test"
# Unit tests of the library and binary, then every integration test (examples are built by
# clippy above; their empty test harness would otherwise close the run). The last lines are
# cargo's own summaries; --no-fail-fast so one failing binary does not hide the others.
exec cargo test --no-fail-fast --lib --bins --tests
