r"""Big tables: reading, fitting up to the first optimizer step, and predicting, each
beside pandas' read_csv of the same file in the same run.

For each row count (default 1M and 10M) the benchmark writes a CSV of 16 numerical
columns (floats as Python's repr writes them), 4 categorical columns (5, 12, 30 and
100 categories) and a binary label that depends on both (about 330 bytes a row),
then measures, each in a fresh child process:
  pandas    `/usr/bin/python3 -c "pd.read_csv(F)"`: wall time and peak RSS (the
            interpreter and pandas' import included, as a user's script has them);
  fit       `automm fit --train F --label label --hp optim.max_steps=1`: reading, type
            inference, the holdout split, the processors, building the model and one
            optimizer step (then one validation pass and the save, which this wall also
            holds: an upper bound of "up to the first step");
  predict   `automm predict --path M --data F --out P`: rows/s and peak RSS.
Peak RSS is the child's ru_maxrss. Targets (issue 21): fit peak RSS <= 2x the file's
size, fit wall <= 1.5x pandas' wall.

  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 bench/table_scale.py \
      runs/bench/table_scale.json --automm ./build/automm [--rows 1000000,10000000] [--keep DIR]
"""
import argparse, json, os, resource, shutil, subprocess, sys, tempfile, time

import numpy as np


def write_table(path, rows, seed=0):
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=16)
    cards = (5, 12, 30, 100)
    with open(path, "w") as f:
        f.write(",".join([f"num{i}" for i in range(16)] + [f"cat{i}" for i in range(4)] + ["label"]) + "\n")
        chunk = 200_000
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            x = rng.normal(size=(n, 16))
            cats = [rng.integers(0, k, size=n) for k in cards]
            logit = x @ weights * 0.5 + (cats[0] == 1) * 1.0 - (cats[1] % 3 == 0) * 0.8
            y = (logit + rng.logistic(size=n) > 0).astype(int)
            lines = []
            for r in range(n):
                lines.append(",".join([repr(float(v)) for v in x[r]] + [f"c{cats[j][r]}" for j in range(4)] +
                                      [str(y[r])]))
            f.write("\n".join(lines) + "\n")


def run_child(cmd, env=None):
    """Wall seconds and peak RSS (MiB) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    output = proc.stdout.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{output}")
    return wall, usage.ru_maxrss / 1024.0, output


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--automm", default="./build/automm")
    ap.add_argument("--rows", default="1000000,10000000")
    ap.add_argument("--keep", help="folder for the tables and models (kept)")
    args = ap.parse_args()
    work = args.keep or tempfile.mkdtemp(prefix="table_scale_")
    os.makedirs(work, exist_ok=True)
    env = dict(os.environ)
    results = {"threads": os.cpu_count(), "runs": []}
    for rows in [int(r) for r in args.rows.split(",")]:
        csv = os.path.join(work, f"table_{rows}.csv")
        if not os.path.exists(csv):
            write_table(csv, rows)
        size_mib = os.path.getsize(csv) / 2**20
        pandas_wall, pandas_rss, _ = run_child(
            ["/usr/bin/python3", "-c", f"import pandas as pd; pd.read_csv({csv!r})"], env)
        model = os.path.join(work, f"model_{rows}")
        shutil.rmtree(model, ignore_errors=True)
        fit_wall, fit_rss, fit_log = run_child(
            [args.automm, "fit", "--train", csv, "--label", "label", "--path", model, "--hp", "optim.max_steps=1"],
            env)
        out = os.path.join(work, f"predictions_{rows}.csv")
        predict_wall, predict_rss, _ = run_child(
            [args.automm, "predict", "--path", model, "--data", csv, "--out", out], env)
        run = {"rows": rows, "csv_mib": round(size_mib, 1),
               "pandas_read_csv": {"wall_s": round(pandas_wall, 2), "peak_rss_mib": round(pandas_rss, 1)},
               "fit_to_first_step": {"wall_s": round(fit_wall, 2), "peak_rss_mib": round(fit_rss, 1)},
               "predict": {"wall_s": round(predict_wall, 2), "rows_per_s": round(rows / predict_wall),
                           "peak_rss_mib": round(predict_rss, 1)},
               "fit_wall_over_pandas": round(fit_wall / pandas_wall, 2),
               "fit_rss_over_csv": round(fit_rss / size_mib, 2)}
        results["runs"].append(run)
        print(json.dumps(run), flush=True)
        if not args.keep:
            os.remove(csv)
            shutil.rmtree(model, ignore_errors=True)
            os.remove(out)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=2)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
