#!/usr/bin/env bash
# Load test of `automm serve` on loopback: 64 clients for 30 s (BENCH_SERVE_CLIENTS,
# BENCH_SERVE_SECONDS) of one-row /predict requests against the example tabular and
# text predictors, with dynamic batching (--max-batch 32 --max-delay-ms 5) and without
# (--max-batch 1: each request predicts alone on its HTTP thread). Every answer is
# checked against `automm predict` on the same rows. Prints one JSON line per run and
# the server's rows-per-forward histogram; stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --build build --target automm_cli automm_bench_serve -j"$(nproc)"
clients=${BENCH_SERVE_CLIENTS:-64}
seconds=${BENCH_SERVE_SECONDS:-30}
out=runs/bench/serve
mkdir -p "$out"
data=examples/data
[ -d runs/example/predictor ] && [ -d runs/example/text_predictor ] || bash scripts/run_example.sh > /dev/null
for name in predictor text_predictor; do
  test_csv=$data/test.csv
  [ "$name" = text_predictor ] && test_csv=$data/reviews_test.csv
  ./build/automm predict --path "runs/example/$name" --data "$test_csv" --out "$out/$name.expected.csv" 2> /dev/null
  for mode in "32 5" "1 0"; do
    set -- $mode
    log=$out/$name.$1.log
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE ./build/automm serve --path "runs/example/$name" --port 0 \
      --max-batch "$1" --max-delay-ms "$2" --threads "$clients" 2> "$log" &
    server=$!
    port=""
    for _ in $(seq 600); do
      port=$(grep -o 'on http://127.0.0.1:[0-9]*' "$log" | grep -o '[0-9]*$' || true)
      [ -n "$port" ] && break
      sleep 0.1
    done
    echo "== $name, max batch $1 rows, max delay $2 ms"
    ./build/automm_bench_serve "$port" "$clients" "$seconds" "$test_csv" "$out/$name.expected.csv" || true
    curl -s "http://127.0.0.1:$port/metrics" | grep -E '^automm_batch_rows_(bucket|count|sum)' | grep -v ' 0$' || true
    kill -TERM "$server"
    wait "$server" || true
  done
done
