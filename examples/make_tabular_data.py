#!/usr/bin/env python3
"""Writes the example tables: a label that depends on categorical and numerical columns.

Standard library only; the output is deterministic for a given seed.
usage: make_tabular_data.py OUT_DIR [--rows N] [--seed S] [--task binary|multiclass|regression]
"""
import argparse
import csv
import math
import os
import random

COLORS = {"red": 1.6, "green": 0.0, "blue": -1.6, "yellow": 0.6}
SIZES = {"S": -1.0, "M": 0.0, "L": 1.0}
CITIES = ["Oslo", "Lima", "Pune", "Kyiv", "Doha", "Rome", "Nice", "Bonn"]


def make_row(rng, task):
    color = rng.choice(list(COLORS))
    size = rng.choice(list(SIZES))
    x1 = rng.gauss(0, 1)
    x2 = rng.gauss(0, 1)
    noise = rng.gauss(0, 1)
    score = 1.2 * x1 - 0.9 * x2 + COLORS[color] + SIZES[size]
    if task == "binary":
        label = "yes" if score > 0 else "no"
    elif task == "multiclass":
        label = "low" if score < -1 else ("mid" if score < 1 else "high")
    else:
        label = "%.6f" % (3.0 * score + 0.5 * math.sin(3 * x1))
    row = {"color": color, "size": size, "x1": "%.5f" % x1, "x2": "%.5f" % x2,
           "noise": "%.5f" % noise, "city": rng.choice(CITIES), "label": label}
    # A few missing values, as real tables have.
    for column in ("color", "x2", "city"):
        if rng.random() < 0.02:
            row[column] = ""
    return row


def write(path, rows):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out_dir")
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--test-rows", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--task", default="binary", choices=["binary", "multiclass", "regression"])
    args = parser.parse_args()
    rng = random.Random(args.seed)
    os.makedirs(args.out_dir, exist_ok=True)
    write(os.path.join(args.out_dir, "train.csv"), [make_row(rng, args.task) for _ in range(args.rows)])
    write(os.path.join(args.out_dir, "test.csv"), [make_row(rng, args.task) for _ in range(args.test_rows)])


if __name__ == "__main__":
    main()
