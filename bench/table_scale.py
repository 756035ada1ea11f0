r"""Big tables: reading, fitting up to the first optimizer step, and predicting, each
beside pandas' read_csv of the same file in the same run.

For each row count (default 1M and 10M) the benchmark writes a CSV of 16 numerical
columns (floats as Python's repr writes them), 4 categorical columns (5, 12, 30 and
100 categories) and a binary label that depends on both (about 330 bytes a row),
then measures, each in a fresh child process:
  pandas    `/usr/bin/python3 -c "pd.read_csv(F)"`: read_csv's own time, the process's
            wall and its peak RSS;
  fit       `automm fit --train F --label label --hp optim.max_steps=1`: the seconds from
            the process's start to the line naming the training / validation rows, which
            the learner prints once reading, type inference, the holdout split, the
            processors and building the network are done and the first step begins (a
            step takes milliseconds), and the peak RSS of the whole process (which also
            makes that step, validates and saves);
  predict   `automm predict --path M --data F --out P`: rows/s and peak RSS (for tables
            of at most --predict-max-rows rows, 1M by default).
Peak RSS is the child's ru_maxrss. Targets (issue 21): fit peak RSS <= 2x the file's
size, time to the first step <= 1.5x pandas' read_csv.

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
    """Wall seconds, peak RSS (MiB) and output lines, each with the seconds since the
    start at which it arrived, of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    lines = []
    for raw in proc.stdout:
        lines.append((time.perf_counter() - start, raw.decode(errors="replace").rstrip("\n")))
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n" + "\n".join(line for _, line in lines))
    return wall, usage.ru_maxrss / 1024.0, lines


def seconds_at(lines, text):
    """When the first line holding `text` arrived."""
    for at, line in lines:
        if text in line:
            return at
    sys.exit(f"no line holding {text!r} in:\n" + "\n".join(line for _, line in lines))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--automm", default="./build/automm")
    ap.add_argument("--rows", default="1000000,10000000")
    ap.add_argument("--keep", help="folder for the tables and models (kept)")
    ap.add_argument("--predict-max-rows", type=int, default=1_000_000)
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
        pandas_wall, pandas_rss, pandas_out = run_child(
            ["/usr/bin/python3", "-c", "import sys, time, pandas as pd; t = time.perf_counter(); "
             f"pd.read_csv({csv!r}); print('read_csv', time.perf_counter() - t)"], env)
        read_csv = float(pandas_out[-1][1].split()[1])
        model = os.path.join(work, f"model_{rows}")
        shutil.rmtree(model, ignore_errors=True)
        fit_wall, fit_rss, fit_log = run_child(
            [args.automm, "fit", "--train", csv, "--label", "label", "--path", model, "--hp", "optim.max_steps=1"],
            env)
        # The learner names the training / validation rows when the data is ready and
        # the network built; the first step follows (milliseconds: 16 passes of 8 rows).
        first_step = seconds_at(fit_log, " validation rows, models: ")
        out = os.path.join(work, f"predictions_{rows}.csv")
        run = {"rows": rows, "csv_mib": round(size_mib, 1),
               "pandas": {"read_csv_s": round(read_csv, 2), "process_wall_s": round(pandas_wall, 2),
                          "peak_rss_mib": round(pandas_rss, 1)},
               "fit": {"to_first_step_s": round(first_step, 2), "process_wall_s": round(fit_wall, 2),
                       "peak_rss_mib": round(fit_rss, 1)},
               "first_step_over_read_csv": round(first_step / read_csv, 2),
               "fit_rss_over_csv": round(fit_rss / size_mib, 2)}
        if rows <= args.predict_max_rows:
            predict_wall, predict_rss, _ = run_child(
                [args.automm, "predict", "--path", model, "--data", csv, "--out", out], env)
            run["predict"] = {"wall_s": round(predict_wall, 2), "rows_per_s": round(rows / predict_wall),
                              "peak_rss_mib": round(predict_rss, 1)}
            if not args.keep:
                os.remove(out)
        results["runs"].append(run)
        print(json.dumps(run), flush=True)
        if not args.keep:
            os.remove(csv)
            shutil.rmtree(model, ignore_errors=True)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=2)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
