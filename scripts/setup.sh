#!/usr/bin/env bash
# Installs automm.cpp's dependencies from Debian 12's packages, then builds it.
# Safe to run again: it installs only what is missing and rebuilds incrementally.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake ninja-build
  libtorch-dev          # LibTorch 1.13 (CPU)
  libopenblas0-openmp   # fast fp32 GEMM for LibTorch (reference BLAS is ~30x slower)
  libgloo-dev           # c10d Gloo headers, for data-parallel training
  libyaml-cpp-dev nlohmann-json3-dev libgtest-dev
  libcurl4-openssl-dev  # downloads Hugging Face checkpoints into the hub cache
  libcli11-dev          # the automm command's argument parsing
  libxxhash-dev         # the weights digest of a saved predictor (XXH3-64)
  libutf8proc-dev       # Unicode normalization forms and grapheme clusters (tokenizers)
  libcpp-httplib-dev    # automm serve's HTTP server
  libtinyxml2-dev       # Pascal VOC annotation files (object detection)
  libfreetype-dev fonts-dejavu-core  # class names drawn on detected boxes (FreeType, DejaVu Sans)
  libdnnl-dev           # oneDNN's headers: packed-weight matmuls for inference (LibTorch links oneDNN)
  python3               # examples/make_tabular_data.py
  python3-torch         # independent references in the tests (torch.nn, torch.save)
  wordnet-base          # WordNet 3.0 files for text augmentation's synonym replacement
  python3-unidecode     # reference for data.text.normalize_text's transliteration in the tests
  libjpeg-dev libpng-dev libwebp-dev libgif-dev  # image decoders (libjpeg-turbo, as PIL uses)
  pkg-config            # finds libwebp for CMake
  python3-pil           # reference pixels for the image decoding tests
  python3-torchvision   # reference for the image backbones and transforms in the tests
  python3-scipy         # reference for segmentation metrics and Hungarian matching in the tests
  librsvg2-bin          # rsvg-convert: the tests render learning_curve.svg
  pybind11-dev python3-dev  # the Python package (automm._automm)
  python3-numpy python3-pandas  # the Python package's data in and out
  python3-pytest        # the Python package's tests
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The tokenizer tests compare against Hugging Face's tokenizers (npm packages).
if ! command -v npm >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends nodejs npm
fi
bash tests/tokenizer_reference/setup.sh
# The export tests run exported ONNX files in ONNX Runtime (npm onnxruntime-node).
bash tests/onnx_reference/setup.sh

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release ${AUTOMM_CMAKE_ARGS:-}
cmake --build build -j"$(nproc)"
# The Python package into /usr/bin/python3's site folder: `import automm` works
# from anywhere (before this, PYTHONPATH=build/python does).
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo cmake --install build --component python
