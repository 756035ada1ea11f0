#!/usr/bin/env bash
# Builds the library, the CLI and the tests with AddressSanitizer and
# UndefinedBehaviorSanitizer (build-sanitize, clang) and runs the whole suite
# there. Any sanitizer report fails the test that triggered it. Not part of CI:
# the second full build and the instrumented suite take hours on 2 cores
# (docs/hardening.md).
#
#   bash scripts/sanitize.sh [CTEST ARGS...]     e.g. -R gtest (the GoogleTest shards only)
#   GTEST_FILTER='TableIo*' bash scripts/sanitize.sh -R gtest    (some tests only)
#
# Left out by default (AUTOMM_SANITIZE_EXCLUDE, GoogleTest filter patterns joined by
# ':'; empty runs all):
# the ImagePredictor fits, whose instrumented image pipeline makes one of them
# take 11 minutes instead of 30 s. The same code runs instrumented in the
# image harnesses of scripts/fuzz.sh and in the other image tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/configure_sanitize.sh
cmake --build build-sanitize -j"$(nproc)" --target automm_tests automm_cli
cd build-sanitize
export ASAN_OPTIONS="detect_leaks=1:alloc_dealloc_mismatch=0:abort_on_error=0"
export LSAN_OPTIONS="suppressions=$PWD/../fuzz/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export AUTOMM_NUM_THREADS=${AUTOMM_NUM_THREADS:-1}
exclude=${AUTOMM_SANITIZE_EXCLUDE-'ImagePredictor.*'}
# The test binary runs as GoogleTest shards (CMakeLists.txt), which read GTEST_FILTER.
if [ -n "$exclude" ]; then
  export GTEST_FILTER="${GTEST_FILTER:-*}-$exclude"
fi
ctest --output-on-failure -j"$(nproc)" --timeout 3600 "$@"
