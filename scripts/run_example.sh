#!/usr/bin/env bash
# The main job: fit a MultiModalPredictor on the shipped example tables (a label
# that depends on categorical and numerical columns; reviews whose label depends
# on their text and price), predict and evaluate.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${AUTOMM_EXAMPLE_DIR:-runs/example}
mkdir -p "$out"
data=examples/data
[ -f "$data/train.csv" ] || python3 examples/make_tabular_data.py "$data"

./build/automm fit --train "$data/train.csv" --label label --path "$out/predictor" \
  --eval-metric accuracy --seed 0
./build/automm predict --path "$out/predictor" --data "$data/test.csv" --out "$out/predictions.csv"
echo "first predictions:"; head -n 4 "$out/predictions.csv"
echo "test-set scores:"
./build/automm evaluate --path "$out/predictor" --data "$data/test.csv" --metrics accuracy,roc_auc,f1,log_loss

# Text + tabular: reviews whose label depends on the review's words and the price.
# No pretrained checkpoint can be downloaded here, so the text encoder is a
# 2-layer BERT trained from scratch with a vocabulary learned from the reviews.
[ -f "$data/reviews_train.csv" ] || python3 examples/make_text_data.py "$data"
./build/automm fit --train "$data/reviews_train.csv" --label label --path "$out/text_predictor" \
  --eval-metric accuracy --seed 0 --hp model.hf_text.checkpoint_name=scratch:bert-tiny \
  --hp optim.lr=1e-3 --hp optim.max_epochs=20 --hp env.batch_size=32 --hp env.per_gpu_batch_size=32
echo "text model, test-set scores:"
./build/automm evaluate --path "$out/text_predictor" --data "$data/reviews_test.csv" --metrics accuracy,roc_auc

# The same tabular fit from Python (the package scripts/setup.sh installed).
echo "Python quick start:"
/usr/bin/python3 examples/python_quickstart.py "$data" "$out/python_predictor"
