#!/usr/bin/env bash
# Installs ONNX Runtime's node package (the reference runtime for `automm export
# --format onnx` in the tests) into this folder. --ignore-scripts: its CPU
# binaries are bundled in the npm package; its install script would only fetch
# GPU libraries. Idempotent.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
ORT_VERSION=1.30.0
if node -e "if (require('./node_modules/onnxruntime-node/package.json').version !== '${ORT_VERSION}') process.exit(1);
            require('./node_modules/onnxruntime-node')" 2>/dev/null; then
  exit 0
fi
npm install --prefix . --ignore-scripts --no-package-lock --no-save --no-audit --no-fund "onnxruntime-node@${ORT_VERSION}"
node -e "require('./node_modules/onnxruntime-node')" >/dev/null
