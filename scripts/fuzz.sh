#!/usr/bin/env bash
# Runs every libFuzzer harness (fuzz/) for up to SECONDS each (default 600) or
# 10^6 executions, whichever comes first, AUTOMM_FUZZ_JOBS (default: the
# number of cores) at a time, and prints one line
# per harness: executions, coverage (edges), features, corpus size, result.
#
#   bash scripts/fuzz.sh [SECONDS] [HARNESS...]
#
# Builds build-sanitize (clang, AUTOMM_FUZZ=ON with AddressSanitizer and
# UndefinedBehaviorSanitizer) first. Each harness starts from fuzz/corpus/<name>
# (seeds, written by fuzz/make_corpus.py) and fuzz/regressions/<name> (inputs
# that once crashed); what it learns goes to build-sanitize/fuzz/work/<name>.
# A crash, leak, sanitizer report, timeout (10 s per input) or out-of-memory
# (2 GB) leaves its input in build-sanitize/fuzz/findings/ and fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
jobs=${AUTOMM_FUZZ_JOBS:-$(nproc)}
shift || true
bash scripts/configure_sanitize.sh
cmake --build build-sanitize -j"$(nproc)" --target automm_fuzzers
out=build-sanitize/fuzz
mkdir -p "$out/work" "$out/logs" "$out/findings"
if [ "$#" -gt 0 ]; then harnesses=("$@"); else
  harnesses=(delimited json_lines yaml_config safetensors torch_checkpoint tokenizer_json wordpiece_vocab
             bpe_vocab_merges sentencepiece_model image_jpeg image_png image_gif image_webp image_bmp
             base64_image predictor_folder)
fi
# LibTorch's own allocations at start-up are not the readers' leaks.
export LSAN_OPTIONS="suppressions=$PWD/fuzz/lsan.supp:print_suppressions=0"
export ASAN_OPTIONS="detect_leaks=1:alloc_dealloc_mismatch=0"
export AUTOMM_NUM_THREADS=1 OMP_NUM_THREADS=1

run_one() {
  local name=$1
  mkdir -p "$out/work/$name"
  local seeds=(fuzz/corpus/"$name")
  [ -d fuzz/regressions/"$name" ] && seeds+=(fuzz/regressions/"$name")
  "$out/$name" "$out/work/$name" "${seeds[@]}" -runs=1000000 -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 -artifact_prefix="$out/findings/$name-" \
    > "$out/logs/$name.log" 2>&1
}

pids=()
names=()
status=0
for name in "${harnesses[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do sleep 1; done
  run_one "$name" &
  pids+=($!)
  names+=("$name")
done
printf '%-22s %12s %8s %8s %8s  %s\n' harness executions edges features corpus result
for i in "${!pids[@]}"; do
  name=${names[$i]}
  result=ok
  wait "${pids[$i]}" || { result="FAILED (see $out/logs/$name.log)"; status=1; }
  log=$out/logs/$name.log
  execs=$(grep -oP 'stat::number_of_executed_units: \K[0-9]+' "$log" || echo '?')
  line=$(grep -E '^#[0-9]+' "$log" | tail -1)
  edges=$(grep -oP 'cov: \K[0-9]+' <<<"$line" || echo '?')
  features=$(grep -oP 'ft: \K[0-9]+' <<<"$line" || echo '?')
  corpus=$(grep -oP 'corp: \K[0-9]+' <<<"$line" || echo '?')
  printf '%-22s %12s %8s %8s %8s  %s\n' "$name" "$execs" "$edges" "$features" "$corpus" "$result"
done
exit "$status"
