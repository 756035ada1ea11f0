#!/usr/bin/env bash
# Installs the build into a temporary prefix, builds a separate project against
# it with find_package(automm), and runs it on a generated table.
set -euo pipefail
build_dir=$1
source_dir=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build_dir" --prefix "$work/prefix" > "$work/install.log"
test -f "$work/prefix/include/automm/predictor.h"
test ! -e "$work/prefix/include/automm/learner.h"  # internals stay out of the installed surface
cmake -S "$source_dir/tests/install/consumer" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$work/prefix" > "$work/configure.log" || { cat "$work/configure.log"; exit 1; }
cmake --build "$work/build" -j"$(nproc)" > "$work/build.log" || { cat "$work/build.log"; exit 1; }
head -n 201 "$source_dir/tests/fixtures/format_v1/tabular_train.csv" > "$work/table.csv"
"$work/build/consumer" "$work/table.csv" "$work/predictor"
