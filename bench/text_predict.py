r"""One-row `predict` of a saved BERT-base-shaped text predictor, end to end, at fp32
and bf16-mixed, each set against the bare forward of the same network shape
(batch 1, sequence 128) measured in the same run.

Why these baselines: a one-row text predict is the network's forward plus
tokenizing, batching and decoding the answer. The bare C++ forward
(`automm_bench_models --child bert_base infer1_*`) is the floor our predict
cannot beat, so predict / bare C++ forward is what the rest of predict costs;
the eager-PyTorch forward (`bench/models_peer.py --child ...`) is what a Python
user pays for the network alone, so PyTorch forward / our predict > 1 means our
whole predict beats PyTorch's forward by itself. Caveat: infer1_bf16 casts the
whole model and inputs to bf16, while a bf16-mixed predictor runs autocast with
the weights cast once, so the bf16 baselines are a somewhat different computation.

The predictors come from `automm fit` on 64 generated reviews (127-146 words, so
every text fills the 128 tokens) with model.hf_text.checkpoint_name=scratch:bert-base
(12 layers, hidden 768, random weights, WordPiece vocabulary learned from the
training text) and one optimizer step: the figures time predict, not the fit.
Every measurement is a fresh process with 2 intra-op threads; the rounds
interleave ours and the baselines so a load change hits both; medians are kept.

  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 bench/text_predict.py \
      runs/bench/text_predict.json --automm ./build/automm --bench ./build/automm_bench \
      --bench-models ./build/automm_bench_models [--rounds 2]
"""
import argparse, csv, json, os, random, shutil, statistics, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "examples"))
from make_text_data import FILLER, NEGATIVE, POSITIVE  # noqa: E402  (same vocabulary as the example data)

THREADS = 2
ENV = dict(os.environ, AUTOMM_NUM_THREADS=str(THREADS), OMP_NUM_THREADS=str(THREADS))
PRECISIONS = {"fp32": ("32", "infer1_fp32"), "bf16-mixed": ("bf16-mixed", "infer1_bf16")}
HP = ["model.names=[hf_text]", "model.hf_text.checkpoint_name=scratch:bert-base",
      "model.hf_text.max_text_len=128", "optim.max_steps=1", "optim.max_epochs=1",
      "env.per_gpu_batch_size=8", "env.batch_size=8", "env.num_workers=0", "env.num_workers_inference=0",
      "optim.skip_final_val=true"]


def review(rng, good):
    """127-146 words: at least 128 WordPiece tokens with [CLS], [SEP] and the full stop,
    even if every word is one token, so every text (the one row included) fills 128."""
    words = [rng.choice(FILLER) for _ in range(rng.randint(125, 140))]
    for _ in range(rng.randint(2, 6)):
        words.insert(rng.randint(0, len(words)), rng.choice(POSITIVE if good else NEGATIVE))
    return " ".join(words).capitalize() + "."


def make_tables(tmp, rows=64):
    rng = random.Random(0)
    paths = {"train": os.path.join(tmp, "train.csv"), "one_row": os.path.join(tmp, "one_row.csv")}
    with open(paths["train"], "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["review", "label"])
        for i in range(rows):
            good = i % 2 == 0
            w.writerow([review(rng, good), "yes" if good else "no"])
    with open(paths["one_row"], "w", newline="") as f:  # no label column: what a caller would pass
        csv.writer(f).writerows([["review"], [review(rng, True)]])
    return paths


def run(cmd, what):
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or proc.stdout.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"{what} failed ({proc.returncode}): {tail}")
    return proc.stdout, wall


def json_line(cmd, what):
    """The last JSON line a child prints (children may log before it)."""
    out, _ = run(cmd, what)
    for line in reversed(out.strip().splitlines()):
        if line.startswith("{"):
            result = json.loads(line)
            if "error" in result:
                raise RuntimeError(f"{what}: {result['error']}")
            return result
    raise RuntimeError(f"{what}: no JSON line in its output")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--automm", default="./build/automm")
    parser.add_argument("--bench", default="./build/automm_bench")
    parser.add_argument("--bench-models", default="./build/automm_bench_models")
    parser.add_argument("--peer", default=os.path.join(HERE, "models_peer.py"))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--iters", type=int, default=20, help="predict calls per in-process measurement")
    parser.add_argument("--cli-repeats", type=int, default=3)
    args = parser.parse_args()

    load = os.getloadavg()
    if load[0] > 0.5:  # the figures are 2-thread latencies; other work on the cores inflates them
        print(f"warning: 1-minute load average {load[0]:.2f} > 0.5; figures may be inflated", flush=True)
    report = {"threads": THREADS, "rounds": args.rounds, "loadavg_before": load, "hp": HP,
              "bf16_note": "baseline infer1_bf16 casts model and inputs to bf16; the bf16-mixed "
                           "predictor runs autocast with weights cast once", "precisions": {}}
    with tempfile.TemporaryDirectory(prefix="automm_text_predict_") as tmp:
        paths = make_tables(tmp)
        dirs = {}
        for name, (precision, _) in PRECISIONS.items():
            dirs[name] = os.path.join(tmp, "model_" + name)
            cmd = [args.automm, "fit", "--train", paths["train"], "--label", "label", "--path", dirs[name], "--quiet"]
            for hp in HP + [f"env.precision={precision}"]:
                cmd += ["--hp", hp]
            _, fit_s = run(cmd, f"fit {name}")
            report["precisions"][name] = {"fit_s": fit_s}
            # The same weights with env.compile.turn_on (TorchScript graphs, docs/deployment.md).
            dirs[name + "+compile"] = dirs[name] + "_compile"
            shutil.copytree(dirs[name], dirs[name + "+compile"])
            meta_path = os.path.join(dirs[name + "+compile"], "predictor.json")
            with open(meta_path) as f:
                meta = json.load(f)
            meta["config"]["env.compile.turn_on"] = True
            with open(meta_path, "w") as f:
                json.dump(meta, f)
            print(f"fitted {name} in {fit_s:.1f} s", flush=True)

        samples = {name: {"predict": [], "compiled": [], "load": [], "cli": [], "start": [], "cpp": [], "torch": []}
                   for name in PRECISIONS}
        common = ["--iters", "10", "--warmup", "3", "--threads", str(THREADS)]
        for r in range(args.rounds):
            for name, (_, config) in PRECISIONS.items():
                s = samples[name]
                line = json_line([args.bench, os.path.join(tmp, "bench.json"), "--predict-dir", dirs[name],
                                  "--predict-row", paths["one_row"], "--iters", str(args.iters)], f"automm_bench {name}")
                s["predict"].append(line["predict_ms"])
                s["load"].append(line["load_ms"])
                s["compiled"].append(json_line([args.bench, os.path.join(tmp, "bench.json"), "--predict-dir",
                                                dirs[name + "+compile"], "--predict-row", paths["one_row"],
                                                "--iters", str(args.iters)], f"automm_bench {name} compiled")["predict_ms"])
                # What any process linking LibTorch pays before it does anything.
                s["start"].append(statistics.median(
                    [run([args.automm, "hyperparameters"], "automm hyperparameters")[1] for _ in range(args.cli_repeats)]))
                # A process per call: start, load, read, predict, write, as a user of the CLI pays.
                walls = [run([args.automm, "predict", "--path", dirs[name], "--data", paths["one_row"],
                              "--out", os.path.join(tmp, "out.csv")], f"automm predict {name}")[1]
                         for _ in range(args.cli_repeats)]
                s["cli"].append(statistics.median(walls))
                s["cpp"].append(json_line([args.bench_models, "--child", "bert_base", config] + common,
                                          f"bare C++ {config}")["ms"])
                s["torch"].append(json_line([sys.executable, args.peer, "--child", "bert_base", config] + common,
                                            f"PyTorch {config}")["ms"])
            print(f"round {r + 1}/{args.rounds} done", flush=True)
        with open(os.path.join(tmp, "out.csv")) as f:
            report["cli_output_sample"] = f.read().strip()

    print(f"\nOne-row predict, BERT-base shape, sequence 128, {THREADS} threads, medians of {args.rounds} rounds")
    print(f"{'precision':<11} {'predict ms':>10} {'compiled':>9} {'load ms':>8} {'CLI e2e s':>10} {'start s':>8} "
          f"{'C++ fwd ms':>10} {'torch fwd ms':>12} {'pred/C++fwd':>11} {'torch/pred':>10} {'torch/comp':>10}")
    for name in PRECISIONS:
        s = samples[name]
        m = {k: statistics.median(v) for k, v in s.items()}
        entry = report["precisions"][name]
        entry.update({"predict_ms": m["predict"], "compiled_predict_ms": m["compiled"], "load_ms": m["load"],
                      "cli_e2e_s": m["cli"], "process_start_s": m["start"],
                      "torch_forward_over_compiled_predict": m["torch"] / m["compiled"],
                      "cli_over_in_process_predict": m["cli"] * 1e3 / m["predict"],
                      "bare_cpp_forward_ms": m["cpp"], "torch_forward_ms": m["torch"],
                      "predict_over_cpp_forward": m["predict"] / m["cpp"],
                      "torch_forward_over_predict": m["torch"] / m["predict"], "samples": s})
        print(f"{name:<11} {m['predict']:>10.1f} {m['compiled']:>9.1f} {m['load']:>8.0f} {m['cli']:>10.2f} "
              f"{m['start']:>8.2f} {m['cpp']:>10.1f} {m['torch']:>12.1f} {entry['predict_over_cpp_forward']:>11.2f} "
              f"{entry['torch_forward_over_predict']:>10.2f} {entry['torch_forward_over_compiled_predict']:>10.2f}")
    print("pred/C++fwd: what tokenizing, batching and decoding add to the bare forward; "
          "torch/pred > 1: our whole predict is faster than PyTorch's bare forward.")
    print("bf16 baselines cast the whole model to bf16; the bf16-mixed predictor uses autocast.")
    print("compiled: the same predictor with env.compile.turn_on; load ms: MultiModalPredictor::load in process; "
          "start s: `automm hyperparameters`, a process that only starts (LibTorch's own start-up).")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
