#!/usr/bin/env bash
# Runs the whole test suite (builds first when needed).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --build build -j"$(nproc)"
cd build
ctest --output-on-failure -j"$(nproc)" --timeout 900
