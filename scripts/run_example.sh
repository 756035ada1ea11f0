#!/usr/bin/env bash
# The main job: fit a MultiModalPredictor on the shipped example table (a label
# that depends on categorical and numerical columns), predict and evaluate.
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
