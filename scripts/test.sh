#!/usr/bin/env bash
# Runs the whole test suite (builds first when needed).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --build build -j"$(nproc)"
cd build
# Tests run in parallel, one per core: each uses one intra-op thread, since
# OpenMP teams that outnumber the cores spin against each other (a fit that
# takes 10 s alone took 5 minutes beside another 2-thread fit on 2 cores).
export AUTOMM_NUM_THREADS=${AUTOMM_NUM_THREADS:-1}
ctest --output-on-failure -j"$(nproc)" --timeout 900
