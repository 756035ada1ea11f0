#!/usr/bin/env bash
# Runs the benchmarks. OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are unset for this
# command only (these machines set them for old OpenBLAS builds; tests keep them).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --build build --target automm_bench -j"$(nproc)"
mkdir -p runs/bench
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE ./build/automm_bench runs/bench/engine.json
