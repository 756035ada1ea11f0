#!/usr/bin/env bash
# Runs the benchmarks. OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are unset for this
# command only (these machines set them for old OpenBLAS builds; tests keep them).
# The image benchmark runs bench/image_pipeline_peer.py with /usr/bin/python3
# (Debian's torchvision + PIL) on the same JPEG files and prints C++/Python ratios.
# The model benchmark runs bench/models_peer.py (eager PyTorch) and, for inference,
# bench/ort_peer.js (ONNX Runtime) on the same models, each configuration as a C++
# child then a PyTorch child, BENCH_MODEL_ROUNDS times (default 2, medians kept);
# BENCH_MODEL_ITERS / BENCH_MODEL_WARMUP set the median-of-N and warm-up calls
# inside each child (default 5 and 2).
# The tabular benchmark runs bench/tabular_peer.py: `automm fit` / `automm predict`
# end to end against the same network trained in eager PyTorch, and one-row predict.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --build build --target automm_cli automm_bench automm_bench_images automm_bench_models -j"$(nproc)"
bash bench/setup.sh  # onnxruntime-node into bench/ort/ for the ONNX Runtime peer
mkdir -p runs/bench
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE ./build/automm_bench runs/bench/engine.json
echo
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE ./build/automm_bench_images runs/bench/images.json \
  --peer bench/image_pipeline_peer.py --python /usr/bin/python3
echo
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE ./build/automm_bench_models runs/bench/models.json \
  --iters "${BENCH_MODEL_ITERS:-5}" --warmup "${BENCH_MODEL_WARMUP:-2}" --rounds "${BENCH_MODEL_ROUNDS:-2}" \
  --peer bench/models_peer.py --python /usr/bin/python3 --ort-js bench/ort_peer.js --node node
echo
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 bench/tabular_peer.py runs/bench/tabular.json \
  --automm ./build/automm --bench ./build/automm_bench
echo
# One-row predict of saved scratch BERT-base text predictors (fp32, bf16-mixed) against the bare C++ and PyTorch forwards.
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 bench/text_predict.py runs/bench/text_predict.json \
  --automm ./build/automm --bench ./build/automm_bench --bench-models ./build/automm_bench_models
echo
# Tokenization throughput per core against Hugging Face's tokenizers (node binding).
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE node bench/tokenize_peer.js runs/bench/tokenize.json --bench ./build/automm_bench
