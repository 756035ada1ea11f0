#!/usr/bin/env bash
# Object detection fits on generated COCO data (examples/make_detection_data.py: coloured
# discs, squares and triangles on striped, noisy backgrounds, 1-4 per image, images
# 102-160 pixels a side), at 128 pixels:
#  1. yolox_nano from random weights: time, epochs, COCO mAP on the test file;
#  2. that predictor's weights written as an mmdet checkpoint (model.pth with mmdet's
#     names, through Debian's torch), then fine-tuned from it on a second, smaller set (60
#     images, another seed): the pretrained path, the checkpoint loaded by name; and, for
#     scale, the same second set from random weights.
# Usage: bash bench/detection_fit.sh [WORK_DIR] [EPOCHS]  (after scripts/setup.sh; prints one JSON
#        line per fit, writes WORK_DIR/summary.jsonl)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-runs/detection_fit}
epochs=${2:-40}
automm=./build/automm
python=/usr/bin/python3
mkdir -p "$work"
$python examples/make_detection_data.py "$work/a" --train 200 --test 50 --size 128 --seed 0 >/dev/null
$python examples/make_detection_data.py "$work/b" --train 60 --test 50 --size 128 --seed 1 >/dev/null

common=(--problem-type object_detection --hp model.mmdet_image.image_size=128 --hp optim.lr=2e-3
        --hp optim.lr_schedule=cosine_decay --hp optim.gradient_clip_val=10 --hp env.per_gpu_batch_size=8
        --hp env.batch_size=8 --hp env.inference_batch_size_ratio=4)
fit() {  # NAME DATASET ARGS...: fits on DATASET/annotations/train.json, evaluates on its test.json
  local name=$1 data=$2
  shift 2
  rm -rf "$work/$name"
  local start end
  start=$(date +%s.%N)
  $automm fit --train "$data/annotations/train.json" --path "$work/$name" "${common[@]}" "$@" >"$work/$name.log" 2>&1
  end=$(date +%s.%N)
  local scores
  scores=$($automm evaluate --path "$work/$name" --data "$data/annotations/test.json" --metrics map,map_50,map_75,mar_100 --json)
  $python - "$name" "$start" "$end" "$scores" "$work/$name/predictor.json" <<'PY'
import json, sys
name, start, end, scores, meta = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), json.loads(sys.argv[4]), sys.argv[5]
summary = json.load(open(meta))["fit_summary"]
print(json.dumps({"fit": name, "seconds": round(end - start, 1), "epochs": summary["epochs"],
                  "steps": summary["optimizer_steps"], **{k: round(v, 4) for k, v in scores.items()}}))
PY
}

{
  fit scratch "$work/a" --no-pretrained --hp model.mmdet_image.checkpoint_name=yolox_nano --hp optim.max_epochs="$epochs"
  # The fitted weights as an mmdet checkpoint: {"state_dict": ..., "meta": {"CLASSES": ...}}.
  mkdir -p "$work/mmdet_nano"
  $python - "$work/scratch/model.safetensors" "$work/mmdet_nano/model.pth" <<'PY'
import sys, torch
sys.path.insert(0, "tests/models")
from safetensors_io import read_safetensors
weights = read_safetensors(sys.argv[1])
torch.save({"state_dict": weights, "meta": {"CLASSES": ("disc", "square", "triangle")}}, sys.argv[2])
PY
  fit pretrained "$work/b" --hp model.mmdet_image.checkpoint_name="$work/mmdet_nano" --hp optim.max_epochs=$((epochs / 2))
  fit random "$work/b" --no-pretrained --hp model.mmdet_image.checkpoint_name=yolox_nano --hp optim.max_epochs=$((epochs / 2))
} | tee "$work/summary.jsonl"
