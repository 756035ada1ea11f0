#!/usr/bin/env bash
# What the benchmarks need beyond the build and tests (CI does not run this):
# onnxruntime-node for bench/ort_peer.js, installed into bench/ort/ (ignored by
# git) with --ignore-scripts: its CPU binaries are bundled in the npm package.
set -euo pipefail
cd "$(dirname "$0")"
ORT_VERSION=${ORT_VERSION:-1.30.0}
if [ ! -f ort/node_modules/onnxruntime-node/package.json ]; then
  mkdir -p ort
  npm install --prefix ort --ignore-scripts --no-package-lock --no-save --no-audit --no-fund \
    "onnxruntime-node@${ORT_VERSION}"
fi
node -e "require('./ort/node_modules/onnxruntime-node')" >/dev/null
