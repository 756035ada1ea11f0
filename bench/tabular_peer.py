r"""Tabular fit end to end and one-row predict latency: automm.cpp against the
same network trained in eager PyTorch (Debian's torch 1.13), measured in one run.

Fit: `automm fit` (train.csv, tune.csv as the fixed validation set) + `automm
predict` on test.csv, against a child `--child fit` that does the same work
(read, preprocess, train, validate per epoch keeping the best weights, save a
resumable state per epoch, save, predict, write CSV) with a mirror of
src/data/processors.cpp and of the default tabular models (categorical_mlp,
numerical_mlp, fusion_mlp; same parameter names and construction order, so
torch.manual_seed gives the same initial weights), the same epoch shuffles,
AdamW (eps 1e-6, no decay on biases / norms), warmup + cosine per step and
gradient-norm clipping. Both: fp32, batch 128, 2 intra-op threads. Walls are
whole processes (start and imports included); peak RSS is each child's own.
One-row predict: (a) a process per call (load, read CSV, predict, write CSV),
median of --repeats; (b) in-process, model loaded and row read once (C++:
`automm_bench --predict-dir`). Ratios: Python / C++ (> 1: C++ faster); RSS C++ / Python.

  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 bench/tabular_peer.py \
      runs/bench/tabular.json --automm ./build/automm [--bench ./build/automm_bench]
  (--rows 3000 for a quick check; --epochs, --test-rows, --repeats, --keep)

Checked when written: C++ weights loaded into this mirror reproduce `automm predict
--proba` exactly, and with dropout 0 the two fits end 2 epochs within 4e-4.
"""
import argparse, csv, json, math, os, shutil, statistics, subprocess, sys, tempfile, time

SEED = 0
THREADS = 2
# The settings both sides run with, as automm --hp assignments.
HP = {"env.precision": "32", "env.per_gpu_batch_size": 128, "env.batch_size": 128,
      "env.inference_batch_size_ratio": 4, "env.num_workers": 0, "env.num_workers_inference": 0,
      "optim.lr": 1e-3, "optim.weight_decay": 1e-3, "optim.lr_schedule": "cosine_decay",
      "optim.warmup_steps": 0.1, "optim.val_check_interval": 1.0, "optim.patience": 1000,
      "optim.top_k": 1, "optim.top_k_average_method": "best", "optim.gradient_clip_val": 1.0,
      "optim.skip_final_val": "true", "data.categorical.minimum_cat_count": 100,
      "data.categorical.maximum_num_cat": 20}
NUM_COLS = [f"num_{i}" for i in range(8)]
CAT_COLS = {"cat_a": 4, "cat_b": 12, "cat_c": 40, "cat_d": 6}  # name: distinct values


# ---------------------------------------------------------------- data
def make_tables(dirname, rows, test_rows):
    """train / tune / test CSVs (tune = 10% of rows); numbers with missing cells,
    string categories with a long tail, a binary label depending on both."""
    import numpy as np
    rng = np.random.RandomState(SEED)
    n = rows + rows // 10 + test_rows
    cols = {}
    for i, name in enumerate(NUM_COLS):
        cols[name] = rng.normal(loc=i - 3, scale=1 + i, size=n)
    effect = 0.8 * cols["num_0"] - 0.3 * cols["num_3"] / 4 + 0.5 * np.tanh(cols["num_1"] * cols["num_2"] / 6)
    for name, k in CAT_COLS.items():
        weights = 1.0 / np.arange(1, k + 1) ** 1.2  # Zipf: rare values share the "other" index
        codes = rng.choice(k, size=n, p=weights / weights.sum())
        effect = effect + rng.normal(scale=0.9, size=k)[codes]
        cols[name] = np.array([f"{name[-1]}{c:02d}" for c in codes], dtype=object)
    label = (effect + rng.logistic(scale=0.3, size=n) > np.median(effect)).astype(int)
    for name in ("num_0", "num_5"):  # missing cells, imputed with the training mean
        cols[name] = np.where(rng.rand(n) < 0.03, np.nan, cols[name])
    cols["cat_b"] = np.where(rng.rand(n) < 0.03, None, cols["cat_b"])
    import pandas as pd
    frame = pd.DataFrame({**cols, "label": label})
    parts = {"train": frame[:rows], "tune": frame[rows:rows + rows // 10], "test": frame[rows + rows // 10:]}
    parts["one_row"] = parts["test"][:1].drop(columns="label")
    paths = {part: os.path.join(dirname, part + ".csv") for part in parts}
    for part, table in parts.items():
        table.to_csv(paths[part], index=False, float_format="%.6g")
    return paths


# ---------------------------------------------------------------- the mirror (child only)
def build_net(num_numerical, cardinalities):
    import torch
    from torch import nn
    F = nn.functional

    class Mlp(nn.Module):  # one unit of src/models/layers.cpp: [norm] -> linear -> leaky_relu -> dropout [-> out]
        def __init__(self, width, hidden, normalize_input=True, out_features=0):
            super().__init__()
            self.norms = nn.ModuleList([nn.LayerNorm(width) if normalize_input else nn.Identity()])
            self.linears = nn.ModuleList([nn.Linear(width, hidden)])
            self.dropout = nn.Dropout(0.1)
            self.out = nn.Linear(hidden, out_features) if out_features else None

        def forward(self, x):
            x = self.dropout(F.leaky_relu(self.linears[0](self.norms[0](x))))
            return self.out(x) if self.out is not None else x

    class CategoricalMlp(nn.Module):  # embedding + MLP per column, concat, aggregator
        def __init__(self, sizes, hidden=64):
            super().__init__()
            self.embeddings, self.column_mlps = nn.ModuleList(), nn.ModuleList()
            for n in sizes:  # interleaved as in C++, so the seeded init draws the same numbers
                dim = max(2, min(100, int(1.6 * n ** 0.56)))
                self.embeddings.append(nn.Embedding(n, dim))
                self.column_mlps.append(Mlp(dim, hidden))
            width = hidden * len(sizes)
            self.aggregator = Mlp(width, width, out_features=0 if width == hidden else hidden)
            self.head = nn.Linear(hidden, 2)  # unused by the fusion (no aux loss), as in C++

        def forward(self, codes):  # [batch, columns] -> [batch, 64]
            cols = [mlp(emb(codes[:, c])) for c, (emb, mlp) in enumerate(zip(self.embeddings, self.column_mlps))]
            return self.aggregator(torch.cat(cols, 1))

    class NumericalMlp(nn.Module):  # no input LayerNorm (see numerical_mlp.cpp)
        def __init__(self, width, hidden=128):
            super().__init__()
            self.mlp = Mlp(width, hidden, normalize_input=False)
            self.head = nn.Linear(hidden, 2)

        def forward(self, x):  # [batch, columns] -> [batch, 128]
            return self.mlp(x)

    class Net(nn.Module):  # backbones in model.names order, then fusion_mlp
        def __init__(self):
            super().__init__()
            self.categorical_mlp = CategoricalMlp(cardinalities)
            self.numerical_mlp = NumericalMlp(num_numerical)
            self.fusion_mlp = nn.Module()
            self.fusion_mlp.adapters = nn.Module()  # parameter names as the C++ model.pt
            self.fusion_mlp.adapters.linears = nn.ModuleList([nn.Linear(64, 128), nn.Linear(128, 128)])
            self.fusion_mlp.layers = nn.ModuleList([Mlp(256, 128)])
            self.fusion_mlp.head = nn.Linear(128, 2)

        def forward(self, numerical, categorical):  # -> logits [batch, 2]
            f = self.fusion_mlp
            adapt = f.adapters.linears  # each backbone's features to width 128, concatenated: [batch, 256]
            x = torch.cat([adapt[0](self.categorical_mlp(categorical)), adapt[1](self.numerical_mlp(numerical))], 1)
            return f.head(f.layers[0](x))

    torch.manual_seed(SEED)
    return Net()


def fit_processors(df):
    """Statistics as src/data/processors.cpp: fitted on the training rows only."""
    stats = {"num": {}, "cat": {}, "classes": sorted(df["label"].unique().tolist())}
    for name in NUM_COLS:
        values = df[name].dropna().astype("float64")
        mean, std = float(values.mean()), float(values.std(ddof=0))
        stats["num"][name] = [mean, std if std > 0 else 1.0]
    for name in CAT_COLS:
        counts = df[name].dropna().value_counts()
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        kept = [v for v, c in ranked if c >= HP["data.categorical.minimum_cat_count"]]
        stats["cat"][name] = {v: i for i, v in enumerate(kept[:HP["data.categorical.maximum_num_cat"]])}
    return stats


def encode(df, stats):
    """(numerical [rows, 8] float32, categorical [rows, 4] int64): missing numbers
    get the mean, unknown / rare / missing categories the last index."""
    import numpy as np, torch
    num = [((df[c].astype("float64").fillna(m) - m) / s).to_numpy("float32") for c, (m, s) in stats["num"].items()]
    cat = [df[c].map(v).fillna(len(v)).to_numpy("int64") for c, v in stats["cat"].items()]
    return torch.from_numpy(np.stack(num, 1)), torch.from_numpy(np.stack(cat, 1))


def read(path):  # pandas' default NA spellings are the ones automm's reader treats as missing
    import pandas as pd
    return pd.read_csv(path, dtype={c: str for c in CAT_COLS})


def load_peer(model_dir):
    import torch
    with open(os.path.join(model_dir, "stats.json")) as f:
        stats = json.load(f)
    net = build_net(len(stats["num"]), [len(v) + 1 for v in stats["cat"].values()])
    net.load_state_dict(torch.load(os.path.join(model_dir, "model.pt")))
    return net.eval(), stats


def predict_frame(net, stats, df, batch=512):
    import torch
    num, cat = encode(df, stats)
    with torch.no_grad():
        probs = [torch.softmax(net(num[i:i + batch], cat[i:i + batch]), 1) for i in range(0, len(df), batch)]
    return torch.cat(probs)


def roc_auc(scores, labels):
    import pandas as pd
    ranks = pd.Series(scores).rank().to_numpy()
    pos = labels == 1
    n_pos, n_neg = pos.sum(), (~pos).sum()
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def lr_at(step, total, warmup):
    """src/optim/lr_schedule.cpp: linear warmup from 0, then cosine decay to 0."""
    lr = HP["optim.lr"]
    if step < warmup:
        return lr * step / warmup
    return lr * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(total - warmup, 1))))


def make_optimizer(net):
    """AdamW as make_optimizer: eps 1e-6; biases and norm weights without decay."""
    import torch
    no_decay = lambda name: name.endswith("bias") or "norm" in name.lower()
    groups = [{"params": [p for n, p in net.named_parameters() if no_decay(n)], "weight_decay": 0.0},
              {"params": [p for n, p in net.named_parameters() if not no_decay(n)],
               "weight_decay": HP["optim.weight_decay"]}]
    return torch.optim.AdamW(groups, lr=HP["optim.lr"], eps=1e-6)


def child_fit(train_csv, tune_csv, test_csv, out_dir, epochs):
    """The eager-PyTorch fit: read, preprocess, train, validate, save, predict."""
    import torch
    start = time.perf_counter()
    train, tune = read(train_csv), read(tune_csv)
    stats = fit_processors(train)
    x_num, x_cat = encode(train, stats)
    y = torch.tensor(train["label"].map(stats["classes"].index).to_numpy("int64"))
    val_y = tune["label"].map(stats["classes"].index).to_numpy()
    net = build_net(x_num.shape[1], [len(v) + 1 for v in stats["cat"].values()]).train()
    opt = make_optimizer(net)
    batch = HP["env.per_gpu_batch_size"]
    steps_per_epoch = math.ceil(len(train) / batch)
    total = epochs * steps_per_epoch
    warmup = int(HP["optim.warmup_steps"] * total)
    torch.manual_seed(SEED)  # dropout draws, as train() reseeds
    step, best, best_state = 0, -math.inf, None
    for epoch in range(epochs):
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(SEED * 1000003 + epoch))
        for b in range(steps_per_epoch):
            for group in opt.param_groups:
                group["lr"] = lr_at(step, total, warmup)
            rows = order[b * batch:(b + 1) * batch]
            loss = torch.nn.functional.cross_entropy(net(x_num[rows], x_cat[rows]), y[rows])
            loss.backward()
            loss.item()  # the C++ loop reads the loss every batch for its progress line
            torch.nn.utils.clip_grad_norm_(net.parameters(), HP["optim.gradient_clip_val"])
            opt.step()
            opt.zero_grad(set_to_none=True)
            step += 1
        score = roc_auc(predict_frame(net.eval(), stats, tune)[:, -1].numpy(), val_y)
        net.train()
        if score > best:
            best, best_state = score, {k: v.clone() for k, v in net.state_dict().items()}
        torch.save({"model": net.state_dict(), "optimizer": opt.state_dict(), "step": step},
                   os.path.join(out_dir, "last.pt"))  # resumable state, as the C++ trainer writes
    net.load_state_dict(best_state)
    torch.save(net.state_dict(), os.path.join(out_dir, "model.pt"))
    with open(os.path.join(out_dir, "stats.json"), "w") as f:
        json.dump(stats, f)
    os.remove(os.path.join(out_dir, "last.pt"))
    probs = predict_frame(net.eval(), stats, read(test_csv))
    write_predictions(probs, stats, os.path.join(out_dir, "test_pred.csv"))
    print(json.dumps({"fit_predict_s": time.perf_counter() - start, "best_val_roc_auc": best, "steps": step}))


def write_predictions(probs, stats, path):
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["label"])
        out.writerows([[stats["classes"][i]] for i in probs.argmax(1).tolist()])


def child_predict(model_dir, data_csv, out_csv):
    net, stats = load_peer(model_dir)
    write_predictions(predict_frame(net, stats, read(data_csv)), stats, out_csv)


def child_latency(model_dir, data_csv, iters):
    """Median ms of one predict on an already-loaded model and an already-read row."""
    net, stats = load_peer(model_dir)
    df = read(data_csv)
    times = []
    for i in range(5 + iters):
        start = time.perf_counter()
        predict_frame(net, stats, df).argmax(1).tolist()
        times.append(time.perf_counter() - start)
    print(json.dumps({"predict_ms": statistics.median(times[5:]) * 1e3}))


# ---------------------------------------------------------------- the parent
def run(cmd):
    """(wall seconds, peak RSS MiB, stdout) of a child process. Output goes to
    files, not pipes, so that os.wait4 (not Popen.wait) reaps the child and
    hands back its own ru_maxrss."""
    env = dict(os.environ, AUTOMM_NUM_THREADS=str(THREADS), OMP_NUM_THREADS=str(THREADS))
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # Popen must not wait again
        out.seek(0), err.seek(0)
        if proc.returncode != 0:
            sys.exit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{err.read()[-3000:]}")
        return wall, usage.ru_maxrss / 1024, out.read()


def accuracy(pred_csv, test_csv):
    with open(pred_csv) as p, open(test_csv) as t:
        got = [r["label"] for r in csv.DictReader(p)]
        want = [r["label"] for r in csv.DictReader(t)]
    return sum(a == b for a, b in zip(got, want)) / len(want)


def median_wall(cmd, repeats):
    return statistics.median(run(cmd)[0] for _ in range(repeats))


def last_json(text):
    return json.loads(text.strip().splitlines()[-1])


def measure_fit(args, paths, cpp_dir, py_dir, me):
    """C++: `automm fit` then `automm predict` on the test table, two processes.
    Python: one child doing the same; walls include process start and imports."""
    hp = [a for k, v in {**HP, "optim.max_epochs": args.epochs}.items() for a in ("--hp", f"{k}={v}")]
    cpp_fit_s, cpp_rss, _ = run([args.automm, "fit", "--train", paths["train"], "--tuning", paths["tune"],
                                 "--label", "label", "--path", cpp_dir, "--seed", str(SEED), "--quiet"] + hp)
    cpp_pred = os.path.join(cpp_dir, "test_pred.csv")
    cpp_pred_s, cpp_pred_rss, _ = run([args.automm, "predict", "--path", cpp_dir, "--data", paths["test"],
                                       "--out", cpp_pred])
    py_s, py_rss, out = run(me + ["fit", paths["train"], paths["tune"], paths["test"], py_dir, str(args.epochs)])
    py = last_json(out)
    with open(os.path.join(cpp_dir, "predictor.json")) as f:
        summary = json.load(f)["fit_summary"]
    cpp_s, cpp_rss = cpp_fit_s + cpp_pred_s, max(cpp_rss, cpp_pred_rss)
    return {"cpp_s": cpp_s, "cpp_fit_s": cpp_fit_s, "cpp_predict_s": cpp_pred_s, "python_s": py_s,
            "python_in_process_s": py["fit_predict_s"], "ratio": py_s / cpp_s,
            "cpp_rss_mib": cpp_rss, "python_rss_mib": py_rss, "rss_ratio": cpp_rss / py_rss,
            "cpp_accuracy": accuracy(cpp_pred, paths["test"]),
            "python_accuracy": accuracy(os.path.join(py_dir, "test_pred.csv"), paths["test"]),
            "cpp_models": summary["models"], "cpp_steps": summary["optimizer_steps"], "python_steps": py["steps"],
            "cpp_best_val_roc_auc": summary["best_validation_score"], "python_best_val_roc_auc": py["best_val_roc_auc"]}


def measure_one_row(args, paths, cpp_dir, py_dir, me, iters=200):
    """Seconds per predict process (median of --repeats), and ms per in-process predict."""
    out = os.path.join(os.path.dirname(paths["one_row"]), "one_out.csv")
    cli = {"cpp_s": median_wall([args.automm, "predict", "--path", cpp_dir, "--data", paths["one_row"],
                                 "--out", out], args.repeats),
           "python_s": median_wall(me + ["predict", py_dir, paths["one_row"], out], args.repeats)}
    cli["ratio"] = cli["python_s"] / cli["cpp_s"]
    lat = {"python_ms": last_json(run(me + ["latency", py_dir, paths["one_row"], str(iters)])[2])["predict_ms"]}
    if args.bench:
        lat["cpp_ms"] = last_json(run([args.bench, os.devnull, "--predict-dir", cpp_dir, "--predict-row",
                                       paths["one_row"], "--iters", str(iters)])[2])["predict_ms"]
        lat["ratio"] = lat["python_ms"] / lat["cpp_ms"]
    return cli, lat


def print_table(r):
    fit, cli, lat, nan = r["fit"], r["one_row_cli"], r["one_row_in_process"], float("nan")
    print(f"Tabular fit end to end ({r['rows']} train rows, {r['rows'] // 10} validation, {r['test_rows']} test; "
          f"{r['epochs']} epochs; {THREADS} threads)")
    print(f"{'':34}{'C++':>10}{'Python':>10}{'Py/C++':>9}")
    print(f"{'fit + predict wall (s)':34}{fit['cpp_s']:10.2f}{fit['python_s']:10.2f}{fit['ratio']:8.2f}x")
    print(f"{'peak RSS (MiB); C++/Py':34}{fit['cpp_rss_mib']:10.0f}{fit['python_rss_mib']:10.0f}"
          f"{fit['rss_ratio']:8.2f}x")
    print(f"{'test accuracy':34}{fit['cpp_accuracy']:10.4f}{fit['python_accuracy']:10.4f}")
    print(f"{'best validation roc_auc':34}{fit['cpp_best_val_roc_auc']:10.4f}{fit['python_best_val_roc_auc']:10.4f}")
    print(f"{'one-row predict, process (s)':34}{cli['cpp_s']:10.3f}{cli['python_s']:10.3f}{cli['ratio']:8.2f}x")
    print(f"{'one-row predict, in-process (ms)':34}{lat.get('cpp_ms', nan):10.3f}{lat['python_ms']:10.3f}"
          f"{lat.get('ratio', nan):8.2f}x")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("json_out")
    ap.add_argument("--automm", default="./build/automm")
    ap.add_argument("--bench", help="automm_bench, for the in-process predict latency")
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--test-rows", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--keep", action="store_true", help="keep the tables and both models")
    args = ap.parse_args()
    load = os.getloadavg()[0]
    if load > 0.5:  # eager PyTorch's many small ops suffer far more than C++ from busy cores
        print(f"warning: 1-minute load average is {load:.1f}; the figures need an idle machine", file=sys.stderr)
    me = [sys.executable, os.path.abspath(__file__), "--child"]
    tmp = tempfile.mkdtemp(prefix="automm_tabular_")
    paths = make_tables(tmp, args.rows, args.test_rows)
    cpp_dir, py_dir = os.path.join(tmp, "cpp_model"), os.path.join(tmp, "py_model")
    os.makedirs(py_dir)
    report = {"rows": args.rows, "test_rows": args.test_rows, "epochs": args.epochs, "threads": THREADS,
              "load_average_before": load,
              "hyperparameters": HP, "fit": measure_fit(args, paths, cpp_dir, py_dir, me)}
    report["one_row_cli"], report["one_row_in_process"] = measure_one_row(args, paths, cpp_dir, py_dir, me)
    print_table(report)
    os.makedirs(os.path.dirname(os.path.abspath(args.json_out)), exist_ok=True)
    with open(args.json_out, "w") as f:
        json.dump(report, f, indent=2)
    if not args.keep:
        shutil.rmtree(tmp)
    print(f"wrote {args.json_out}" + (f" (work files in {tmp})" if args.keep else ""))


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        import torch
        torch.set_num_threads(THREADS)
        mode, rest = sys.argv[2], sys.argv[3:]
        if mode == "fit":
            child_fit(*rest[:4], int(rest[4]))
        elif mode == "predict":
            child_predict(*rest)
        else:
            child_latency(rest[0], rest[1], int(rest[2]))
    else:
        main()
