#!/usr/bin/env bash
# Runs the coverage-guided fuzz targets of fuzz/ (cargo-fuzz, libFuzzer), one at a time.
#
#   bash scripts/fuzz.sh <target[,target…]|all|list> [minutes per target, default 10; or seconds: 30s]
#
# Targets: rtmp_chunk, amf0_command, flv_tag, codec_config, ts_check, flv_request_head (each
# is one line around an entry point of `estuary_protocol::fuzzing`, `estuary_muxer::fuzzing`
# or `estuary::fuzzing`). Installs cargo-fuzz if it is missing. The machine's stable toolchain
# is told to accept cargo-fuzz's nightly flags with RUSTC_BOOTSTRAP=1. Built without a
# sanitizer (the crates forbid `unsafe`, so a panic is the bug to find) and with debug
# assertions, so integer overflow panics too.
#
# Each run starts from the committed seeds (fuzz/seeds/<target>/, read only) and the corpus it
# grew before (fuzz/corpus/<target>/, not committed); it prints libFuzzer's final stats and
# keeps the log in fuzz/logs/<target>.log. A crash or a hang (over 10 s on one input) stops
# that target and leaves the input in fuzz/artifacts/<target>/: reproduce it with
# `bash scripts/fuzz.sh repro <target> <file>`, fix the parser, add a unit test next to it, and
# copy the input to fuzz/regressions/<target>/ so the replay tests keep it (CI runs those,
# not the fuzzers). Runs under `nice -n 15`, one process.
set -euo pipefail
cd "$(dirname "$0")/.."

targets=(rtmp_chunk amf0_command flv_tag codec_config ts_check flv_request_head)
what=${1:-}
minutes=${2:-10}
case "$what" in
  list) printf '%s\n' "${targets[@]}"; exit 0 ;;
  all) run=("${targets[@]}") ;;
  repro) run=("$2") ;;
  '') echo "usage: bash scripts/fuzz.sh <target|all|list> [minutes]; bash scripts/fuzz.sh repro <target> <file>" >&2; exit 2 ;;
  *)
    IFS=, read -r -a run <<<"$what"
    for t in "${run[@]}"; do
      printf '%s\n' "${targets[@]}" | grep -qx "$t" || { echo "fuzz.sh: unknown target $t (try: list)" >&2; exit 2; }
    done
    ;;
esac

command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked

export RUSTC_BOOTSTRAP=1
target_dir=${FUZZ_TARGET_DIR:-${CARGO_TARGET_DIR:-$PWD/fuzz/target}/fuzz}
flags=(--fuzz-dir fuzz --sanitizer none --debug-assertions --target-dir "$target_dir")

nice -n 15 cargo fuzz build "${flags[@]}"
# Built once; the runs below use the binaries themselves, so editing the sources while they
# run changes nothing under them.
bin_dir="$target_dir/$(rustc -vV | sed -n 's/^host: //p')/release"

if [ "$what" = repro ]; then
  exec "$bin_dir/$2" "$3"
fi

case "$minutes" in
  *s) seconds=${minutes%s} ;;
  *) seconds=$((minutes * 60)) ;;
esac
# libFuzzer's -max_total_time=0 would mean "forever".
[ "$seconds" -gt 0 ] 2>/dev/null || { echo "fuzz.sh: run time must be at least 1 s" >&2; exit 2; }

mkdir -p fuzz/logs
failed=()
for t in "${run[@]}"; do
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  log="fuzz/logs/$t.log"
  echo "== $t: $seconds s (log: $log)"
  if nice -n 15 "$bin_dir/$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -artifact_prefix="fuzz/artifacts/$t/" \
    -max_total_time="$seconds" -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
    status=ok
  else
    status=FAILED
    failed+=("$t")
  fi
  # libFuzzer's last status line (#execs, cov, ft, corpus) and its final stats.
  grep -E '^#[0-9]+' "$log" | tail -n 1 || true
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log" || true
  echo "== $t: $status"
  if [ "$status" = FAILED ]; then
    grep -E 'panicked at|ERROR: libFuzzer|Test unit written|SUMMARY' "$log" | head -n 5 || true
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: ${failed[*]} found a crash or a hang; see fuzz/artifacts/" >&2
  exit 1
fi
