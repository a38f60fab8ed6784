#!/usr/bin/env bash
# The project's one test command: installs the test tools, builds every target of the
# workspace, then runs every test of every crate (unit, doc, and the end-to-end tests in
# tests/ against the real binary).
#
# The end-to-end tests are mostly wall-clock bound (real-time streams), so 4 run at once;
# each keeps its CPU low (stream copy, small clips).
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
# The test runner's summary is the last thing printed: nothing follows it.

bash scripts/install-test-deps.sh

cargo build --workspace --all-targets
echo "scripts/test.sh: dependencies and build took $(( $(date +%s) - started )) s"

target_dir=${CARGO_TARGET_DIR:-$PWD/target}
case "$target_dir" in /*) ;; *) target_dir="$PWD/$target_dir" ;; esac
export ESTUARY_BIN="$target_dir/debug/estuary"

# Doc tests first (nextest does not run them), so the test runner's summary is the last word.
cargo test --workspace --doc

if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast --test-threads 4
else
  cargo test --workspace --no-fail-fast -- --test-threads 4
fi
