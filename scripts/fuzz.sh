#!/usr/bin/env bash
# Bounded stand-in for fuzzing (cargo fuzz needs nightly; this project builds on stable):
# runs the proptest properties of tests/parsers_prop.rs (link_target confinement and
# idempotence, XSym and reparse parsers on arbitrary bytes, mount option parsing) with many
# cases, then the differential mount test with more cases, each bounded by `timeout`.
#
#   scripts/fuzz.sh [CASES] [SECONDS]      defaults: 200000 cases, 600 s per suite
set -euo pipefail
cd "$(dirname "$0")/.."
CASES=${1:-200000}
SECS=${2:-600}
start=$(date +%s)
echo "parsers_prop: PROPTEST_CASES=$CASES, at most ${SECS}s"
PROPTEST_CASES=$CASES timeout "$SECS" cargo test --release --test parsers_prop -- --test-threads 2 2>&1 |
    grep -E '^test |test result|panicked|minimal failing' || true
rc=${PIPESTATUS[0]}
echo "parsers_prop: exit $rc after $(($(date +%s) - start)) s (124 = time limit reached)"
DCASES=$((CASES / 100))
[[ $DCASES -lt 200 ]] && DCASES=200
start2=$(date +%s)
echo "differential: PROPTEST_CASES=$DCASES, seed ${HFCFS_PROP_SEED:-default}, at most ${SECS}s"
PROPTEST_CASES=$DCASES timeout "$SECS" cargo test --test differential mount_behaves_like -- --nocapture 2>&1 |
    grep -E '^differential:|test result|panicked|step ' || true
rc2=${PIPESTATUS[0]}
echo "differential: exit $rc2 after $(($(date +%s) - start2)) s"
[[ $rc -eq 0 && $rc2 -eq 0 ]]
