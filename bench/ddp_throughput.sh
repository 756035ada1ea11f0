#!/bin/bash
# Training throughput of one process against two data-parallel processes
# (env.strategy = ddp on loopback) for a BERT-small-shaped text model
# (scratch:bert-small: 4 layers x 512) on a generated review table, the same
# effective batch (32) in both: one process of 16 rows x 2 accumulation
# steps, two ranks of 16 rows each. Throughput = training rows x epochs /
# training_seconds (fit_summary). The machine's cores are shared by the ranks.
#
#   bash bench/ddp_throughput.sh [ROWS] [EPOCHS]
set -euo pipefail
cd "$(dirname "$0")/.."
cli=build/automm
rows=${1:-1200}
epochs=${2:-1}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
/usr/bin/python3 - "$work/train.csv" "$rows" <<'PY'
import csv, random, sys
random.seed(0)
good = ["great", "love", "excellent", "fine", "happy", "superb"]
bad = ["awful", "hate", "broken", "poor", "sad", "terrible"]
filler = [f"w{i}" for i in range(300)]
with open(sys.argv[1], "w", newline="") as f:
    out = csv.writer(f)
    out.writerow(["review", "label"])
    for _ in range(int(sys.argv[2])):
        label = random.random() < 0.5
        words = random.choices(filler, k=22) + random.choices(good if label else bad, k=2)
        random.shuffle(words)
        out.writerow([" ".join(words), "pos" if label else "neg"])
PY
common=(--train "$work/train.csv" --label label --quiet --seed 0
        --hp model.names=[hf_text] --hp model.hf_text.checkpoint_name=scratch:bert-small
        --hp optim.max_epochs="$epochs" --hp optim.patience=1000 --hp optim.val_check_interval=1.0
        --hp env.precision=bf16-mixed --hp env.per_gpu_batch_size=16 --hp env.batch_size=32)
throughput() {
  "$cli" info --json --path "$1" | /usr/bin/python3 -c '
import json, sys
s, epochs = json.load(sys.stdin), int(sys.argv[1])
rate = s["num_train_rows"] * epochs / s["training_seconds"]
print("%.1f rows/s (%.1f s, %d optimizer steps)" % (rate, s["training_seconds"], s["optimizer_steps"]))' "$epochs"
}
"$cli" fit "${common[@]}" --path "$work/one" > /dev/null
echo "1 process : $(throughput "$work/one")"
port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
for r in 0 1; do
  RANK=$r WORLD_SIZE=2 LOCAL_RANK=$r LOCAL_WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
    "$cli" fit "${common[@]}" --path "$work/two" --hp env.strategy=ddp > /dev/null &
done
wait
echo "2 ranks   : $(throughput "$work/two")"
