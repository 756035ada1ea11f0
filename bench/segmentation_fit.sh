#!/usr/bin/env bash
# Semantic segmentation fits on generated data (examples/make_segmentation_data.py), at 128 pixels:
#  1. scratch:sam-tiny from random weights on 240 images: time and test iou;
#  2. that model written as a Hugging Face SamModel folder (bench/sam_to_hf.py), then
#     fine-tuned on a second generated set (80 images, another seed, dark discs instead of
#     bright ones, so the pretrained model has something to learn) twice: with AutoMM's
#     preset LoRA (r 3 on the vision qkv, mask decoder trained) and in full (optim.peft=null);
#     time, trainable parameters and test iou of each; and, for scale, the same 80 images from
#     random weights.
# Usage: bash bench/segmentation_fit.sh [WORK_DIR]   (after scripts/setup.sh; prints a summary,
#        writes WORK_DIR/summary.json)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-runs/segmentation_fit}
automm=./build/automm
python=/usr/bin/python3
mkdir -p "$work"
$python examples/make_segmentation_data.py "$work/a" --train 240 --test 60 --size 128 --seed 0 >/dev/null
$python examples/make_segmentation_data.py "$work/b" --train 80 --test 60 --size 128 --seed 1 --disc-level 40 >/dev/null

common=(--problem-type semantic_segmentation --label mask --hp model.sam.image_size=128
        --hp env.per_gpu_batch_size=4 --hp env.batch_size=4 --hp env.inference_batch_size_ratio=4)
fit() {  # NAME TRAIN_CSV ARGS...: fits, evaluates on the set's test.csv, prints a JSON line
  local name=$1 train=$2
  shift 2
  rm -rf "$work/$name"
  local start end
  start=$(date +%s.%N)
  $automm fit --train "$train" --path "$work/$name" "${common[@]}" "$@" >"$work/$name.log" 2>&1
  end=$(date +%s.%N)
  local scores
  scores=$($automm evaluate --path "$work/$name" --data "$(dirname "$train")/test.csv" --metrics iou,ber,sm --json)
  $python - "$name" "$start" "$end" "$scores" "$work/$name/predictor.json" <<'EOF'
import json, sys
name, start, end, scores, meta = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), json.loads(sys.argv[4]), sys.argv[5]
summary = json.load(open(meta))["fit_summary"]
print(json.dumps({"fit": name, "seconds": round(end - start, 1), "epochs": summary["epochs"],
                  "steps": summary["optimizer_steps"], **{k: round(v, 4) for k, v in scores.items()}}))
EOF
}

{
  fit scratch "$work/a/train.csv" --hp model.sam.checkpoint_name=scratch:sam-tiny --hp optim.peft=null \
      --hp optim.lr=2e-3 --hp optim.max_epochs=30
  $python bench/sam_to_hf.py "$work/scratch" "$work/sam-small-hf" >/dev/null
  echo "{\"pretrained model on the second set, before fine-tuning\": $($automm evaluate --path "$work/scratch" \
      --data "$work/b/test.csv" --metrics iou,ber,sm --json)}"
  # LoRA trains 160K of 745K parameters: it takes a 5x higher learning rate, as LoRA usually does.
  fit lora "$work/b/train.csv" --hp model.sam.checkpoint_name="$work/sam-small-hf" --hp optim.lr=1e-2 \
      --hp optim.max_epochs=30
  fit full "$work/b/train.csv" --hp model.sam.checkpoint_name="$work/sam-small-hf" --hp optim.peft=null \
      --hp optim.lr=2e-3 --hp optim.max_epochs=30
  fit full_from_scratch "$work/b/train.csv" --hp model.sam.checkpoint_name=scratch:sam-tiny \
      --hp optim.peft=null --hp optim.lr=2e-3 --hp optim.max_epochs=30
} | tee "$work/summary.jsonl"
grep -h "parameters train" "$work"/{scratch,lora,full,full_from_scratch}.log || true
