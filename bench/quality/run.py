#!/usr/bin/env python3
"""Quality benchmark: automm's default fit against scikit-learn on real tables.

Tables: the CSV data sets that Debian's python3-statsmodels ships (classification and
regression), one text + tabular table and one image table generated here. Each table is
split 70/30 with a fixed seed; beside automm's score, in the same run: scikit-learn's
logistic / ridge regression and HistGradientBoosting with default settings, on the same
split and the same one-hot / scaled features. scikit-learn's own bundled data sets are
kept out of this benchmark (they are for independent checks).

  /usr/bin/python3 bench/quality/run.py [--time-limit 120] [--tables spector,fair] [--out runs/bench/quality]

Needs python3-statsmodels, python3-sklearn and python3-pandas (apt-get install), and a
built automm (bash scripts/setup.sh). Prints a table and writes quality.json.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
import statsmodels.api as sm

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AUTOMM = os.environ.get("AUTOMM_BIN", os.path.join(ROOT, "build", "automm"))


def statsmodels_tables():
    """name -> (frame, label, kind); kind is 'classification' or 'regression'."""
    d = sm.datasets
    tables = {}
    spector = d.spector.load_pandas().data
    tables["spector"] = (spector.assign(GRADE=spector["GRADE"].astype(int).astype(str)), "GRADE", "classification")
    fair = d.fair.load_pandas().data
    fair = fair.assign(affair=np.where(fair["affairs"] > 0, "yes", "no")).drop(columns=["affairs"])
    tables["fair"] = (fair, "affair", "classification")
    anes = d.anes96.load_pandas().data
    tables["anes96"] = (anes.assign(vote=anes["vote"].astype(int).astype(str)), "vote", "classification")
    mode = d.modechoice.load_pandas().data
    chosen = mode[mode["choice"] == 1].drop(columns=["choice", "individual"])
    chosen = chosen.assign(mode=chosen["mode"].map({1: "air", 2: "train", 3: "bus", 4: "car"}))
    tables["modechoice"] = (chosen, "mode", "classification")
    ccard = d.ccard.load_pandas().data
    tables["ccard"] = (ccard.assign(OWNRENT=ccard["OWNRENT"].astype(int).astype(str)), "OWNRENT", "classification")
    heart = d.heart.load_pandas().data
    tables["heart"] = (heart.assign(censors=heart["censors"].astype(int).astype(str)), "censors", "classification")
    tables["engel"] = (d.engel.load_pandas().data, "foodexp", "regression")
    tables["longley"] = (d.longley.load_pandas().data, "TOTEMP", "regression")
    grunfeld = d.grunfeld.load_pandas().data
    tables["grunfeld"] = (grunfeld.assign(firm=grunfeld["firm"].astype(str)), "invest", "regression")
    tables["scotland"] = (d.scotland.load_pandas().data, "YES", "regression")
    star = d.star98.load_pandas().data
    star = star.assign(PCT_ABOVE=star["NABOVE"] / (star["NABOVE"] + star["NBELOW"])).drop(columns=["NABOVE", "NBELOW"])
    tables["star98"] = (star, "PCT_ABOVE", "regression")
    tables["randhie"] = (d.randhie.load_pandas().data, "mdvis", "regression")
    tables["statecrime"] = (d.statecrime.load_pandas().data.reset_index(drop=True), "violent", "regression")
    tables["stackloss"] = (d.stackloss.load_pandas().data, "STACKLOSS", "regression")
    return tables


def text_table(rng):
    """Reviews whose label depends on their words and on the price (generated here)."""
    good, bad = ["great", "love", "perfect", "excellent", "works"], ["broken", "poor", "refund", "awful", "late"]
    filler = ["the", "product", "it", "was", "and", "delivery", "quality", "after", "a", "week", "we", "they"]
    rows = []
    for _ in range(600):
        price = float(rng.uniform(5, 100))
        positive = rng.random() < 0.5
        words = list(rng.choice(filler, 8)) + list(rng.choice(good if positive else bad, 2))
        rng.shuffle(words)
        label = "yes" if (positive and price < 80) or (not positive and price < 15) else "no"
        rows.append({"review": " ".join(words).capitalize() + ".", "price": round(price, 2), "label": label})
    return pd.DataFrame(rows)


def image_table(rng, folder):
    """16x16 PNGs of a bright square in one of three corners; the label is the corner."""
    from PIL import Image
    os.makedirs(folder, exist_ok=True)
    rows = []
    for i in range(360):
        corner = ["top_left", "top_right", "bottom"][i % 3]
        pixels = rng.integers(0, 90, (16, 16, 3), dtype=np.uint8)
        y, x = {"top_left": (1, 1), "top_right": (1, 9), "bottom": (9, 5)}[corner]
        pixels[y:y + 6, x:x + 6] = rng.integers(180, 255, 3, dtype=np.uint8)
        path = os.path.join(folder, f"img{i}.png")
        Image.fromarray(pixels).save(path)
        rows.append({"image": path, "label": corner})
    return pd.DataFrame(rows)


def split(frame, label, kind, seed=0):
    stratify = frame[label] if kind == "classification" and frame[label].value_counts().min() >= 2 else None
    return train_test_split(frame, test_size=0.3, random_state=seed, stratify=stratify)


def sklearn_scores(train, test, label, kind, text_columns=(), image_column=None):
    x_train, x_test = train.drop(columns=[label]), test.drop(columns=[label])
    if image_column:
        from PIL import Image
        def pixels(frame):
            return np.stack([np.asarray(Image.open(p), dtype=np.float32).reshape(-1) / 255 for p in frame[image_column]])
        x_train, x_test = pixels(x_train), pixels(x_test)
        pre = StandardScaler()
    else:
        numeric = [c for c in x_train.columns if c not in text_columns and pd.api.types.is_numeric_dtype(x_train[c])]
        categorical = [c for c in x_train.columns if c not in text_columns and c not in numeric]
        parts = [("num", make_pipeline(SimpleImputer(), StandardScaler()), numeric)]
        if categorical:
            parts.append(("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False)
                          if "sparse_output" in OneHotEncoder().get_params() else
                          OneHotEncoder(handle_unknown="ignore", sparse=False), categorical))
        for column in text_columns:
            parts.append((column, TfidfVectorizer(), column))
        pre = ColumnTransformer(parts, sparse_threshold=0)
    scores = {}
    if kind == "classification":
        models = {"linear": LogisticRegression(), "hgb": HistGradientBoostingClassifier()}
        metric = accuracy_score
    else:
        models = {"linear": Ridge(), "hgb": HistGradientBoostingRegressor()}
        metric = r2_score
    for name, model in models.items():
        pipeline = make_pipeline(pre, model)
        pipeline.fit(x_train, train[label])
        scores[name] = float(metric(test[label], pipeline.predict(x_test)))
    return scores


def automm_score(train, test, label, kind, workdir, time_limit, extra=()):
    os.makedirs(workdir, exist_ok=True)
    train_path, test_path = os.path.join(workdir, "train.csv"), os.path.join(workdir, "test.csv")
    train.to_csv(train_path, index=False)
    test.to_csv(test_path, index=False)
    predictor = os.path.join(workdir, "predictor")
    problem = [] if kind == "classification" else ["--problem-type", "regression"]
    start = time.time()
    fit = subprocess.run([AUTOMM, "fit", "--train", train_path, "--label", label, "--path", predictor,
                          "--time-limit", str(time_limit), "--seed", "0", *problem, *extra],
                         capture_output=True, text=True)
    seconds = time.time() - start
    if fit.returncode != 0:
        raise RuntimeError(f"automm fit failed on {workdir}:\n{fit.stderr[-3000:]}")
    metric = "accuracy" if kind == "classification" else "r2"
    scores = subprocess.run([AUTOMM, "evaluate", "--path", predictor, "--data", test_path, "--metrics", metric,
                             "--json"], capture_output=True, text=True, check=True)
    summary = json.load(open(os.path.join(predictor, "predictor.json")))["fit_summary"]
    budget = [line.strip() for line in fit.stderr.splitlines() if "->" in line and ":" in line]
    return json.loads(scores.stdout)[metric], seconds, summary["optimizer_steps"], budget


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--time-limit", type=float, default=120)
    parser.add_argument("--tables", default="")
    parser.add_argument("--out", default=os.path.join(ROOT, "runs", "bench", "quality"))
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    tables = {name: (frame, label, kind, {}) for name, (frame, label, kind) in statsmodels_tables().items()}
    tables["reviews_text"] = (text_table(rng), "label", "classification",
                              {"text": ["review"], "extra": ["--hp", "model.hf_text.checkpoint_name=scratch:bert-tiny"]})
    tables["corners_image"] = (image_table(rng, os.path.abspath(os.path.join(args.out, "images"))), "label", "classification",
                               {"image": "image", "extra": ["--no-pretrained", "--hp",
                                                            "model.timm_image.checkpoint_name=resnet18",
                                                            "--hp", "model.timm_image.image_size=32"]})
    wanted = [t for t in args.tables.split(",") if t] or list(tables)
    results = []
    print(f"{'table':15} {'kind':14} {'rows':>6} {'metric':8} {'automm':>8} {'linear':>8} {'hgb':>8} "
          f"{'vs linear':>9} {'vs hgb':>8} {'fit s':>6} {'steps':>6}")
    for name in wanted:
        frame, label, kind, options = tables[name]
        frame = frame.dropna(subset=[label])
        train, test = split(frame, label, kind)
        baseline = sklearn_scores(train, test, label, kind, options.get("text", ()), options.get("image"))
        score, seconds, steps, budget = automm_score(train, test, label, kind, os.path.join(args.out, name),
                                                     args.time_limit, options.get("extra", []))
        metric = "accuracy" if kind == "classification" else "r2"
        row = {"table": name, "kind": kind, "rows": len(frame), "metric": metric, "automm": score,
               "linear": baseline["linear"], "hgb": baseline["hgb"], "fit_seconds": seconds, "steps": steps,
               "budget": budget}
        results.append(row)
        print(f"{name:15} {kind:14} {len(frame):6d} {metric:8} {score:8.3f} {baseline['linear']:8.3f} "
              f"{baseline['hgb']:8.3f} {score - baseline['linear']:+9.3f} {score - baseline['hgb']:+8.3f} "
              f"{seconds:6.1f} {steps:6d}", flush=True)
    gaps = [r["automm"] - r["hgb"] for r in results]
    below_linear = [r["table"] for r in results if r["automm"] < r["linear"]]
    print(f"median automm - hgb: {statistics.median(gaps):+.3f}; below the linear baseline: "
          f"{', '.join(below_linear) or 'none'}; slowest fit {max(r['fit_seconds'] for r in results):.1f} s "
          f"(time limit {args.time_limit:g} s)")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "quality.json"), "w") as f:
        json.dump({"time_limit": args.time_limit, "results": results}, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
