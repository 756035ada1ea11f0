#!/usr/bin/env python3
"""Writes the text example tables: product reviews whose label depends on the words
of the review text and on the price (numerical) column.

Standard library only; the output is deterministic for a given seed.
usage: make_text_data.py OUT_DIR [--rows N] [--seed S]
"""
import argparse
import csv
import os
import random

POSITIVE = ["excellent", "wonderful", "great", "amazing", "superb", "delightful", "reliable", "sturdy"]
NEGATIVE = ["terrible", "awful", "horrible", "poor", "dreadful", "disappointing", "flimsy", "broken"]
FILLER = ("the a this that product item was is and it very quite really arrived box quality design "
          "colour size delivery price overall honestly we i they ordered again after week use").split()
CATEGORIES = ["kitchen", "garden", "toys", "office", "sports"]


def make_row(rng):
    good = rng.random() < 0.5
    words = [rng.choice(FILLER) for _ in range(rng.randint(6, 16))]
    for _ in range(rng.randint(1, 2)):
        words.insert(rng.randint(0, len(words)), rng.choice(POSITIVE if good else NEGATIVE))
    price = round(rng.uniform(5, 200), 2)
    # Expensive products need a clearly positive review to be recommended.
    recommended = good and (price < 150 or rng.random() < 0.3)
    return {"review": " ".join(words).capitalize() + ".", "price": "%.2f" % price,
            "category": rng.choice(CATEGORIES), "label": "yes" if recommended else "no"}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out_dir")
    parser.add_argument("--rows", type=int, default=800)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    os.makedirs(args.out_dir, exist_ok=True)
    for name, count in (("reviews_train.csv", args.rows), ("reviews_test.csv", args.rows // 4)):
        with open(os.path.join(args.out_dir, name), "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["review", "price", "category", "label"])
            writer.writeheader()
            for _ in range(count):
                writer.writerow(make_row(rng))


if __name__ == "__main__":
    main()
