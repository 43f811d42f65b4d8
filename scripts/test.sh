#!/usr/bin/env bash
# The whole test suite: lint, unit tests, integration tests over real FUSE mounts, and
# real-client tests with the pinned huggingface_hub venvs against the fake Hub on 127.0.0.1.
# Needs root (mounts) and /dev/fuse. Installs what it needs first.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/install-deps.sh
scripts/setup-python.sh >/dev/null
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings
echo "== cargo test"
# --all-targets: unit tests of the library and binary, then every integration test.
exec cargo test --all-targets
