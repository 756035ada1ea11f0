#!/usr/bin/env bash
# Configures build-sanitize: clang with AddressSanitizer, UndefinedBehaviorSanitizer
# and libFuzzer's coverage instrumentation (AUTOMM_SANITIZE=ON, AUTOMM_FUZZ=ON),
# used by scripts/sanitize.sh (the test suite) and scripts/fuzz.sh (the harnesses).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f build-sanitize/CMakeCache.txt ]; then
  CXX=clang++ cmake -S . -B build-sanitize -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" \
    -DAUTOMM_SANITIZE=ON -DAUTOMM_FUZZ=ON -DAUTOMM_BUILD_PYTHON=OFF
fi
