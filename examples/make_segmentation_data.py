"""Writes a generated semantic segmentation dataset: noisy, textured images of
varying sizes with bright discs (class 1) and, with --classes 3, dark squares
(class 2); masks are gray PNGs, 0 / 255 for binary data, class indices for
multi-class data. Writes OUT/train.csv and OUT/test.csv (columns image, mask,
paths relative to OUT).

Usage: /usr/bin/python3 examples/make_segmentation_data.py OUT [--train 240] [--test 60]
                                                          [--size 128] [--classes 1|3] [--seed 0]
                                                          [--disc-level 195]
(needs numpy and PIL: python3-numpy, python3-pil)
"""
import argparse
import csv
import os

import numpy as np
from PIL import Image


def make_one(rng, size, classes, disc_level):
    width = int(size * rng.uniform(0.8, 1.25))
    height = int(size * rng.uniform(0.8, 1.25))
    yy, xx = np.mgrid[0:height, 0:width]
    # Background: low-frequency stripes plus pixel noise, so brightness alone does not give the disc away.
    phase = rng.uniform(0, 2 * np.pi)
    background = 110 + 35 * np.sin(xx / rng.uniform(6, 14) + phase) * np.cos(yy / rng.uniform(6, 14))
    image = background[..., None] + rng.normal(0, 22, (height, width, 3))
    mask = np.zeros((height, width), np.uint8)
    for _ in range(rng.integers(1, 3)):  # one or two discs
        radius = rng.uniform(0.08, 0.2) * min(width, height)
        cx, cy = rng.uniform(radius, width - radius), rng.uniform(radius, height - radius)
        disc = (xx - cx) ** 2 + (yy - cy) ** 2 <= radius ** 2
        image[disc] = rng.normal(disc_level, 18, (disc.sum(), 3))
        mask[disc] = 1
    if classes == 3:
        side = int(rng.uniform(0.15, 0.3) * min(width, height))
        x0, y0 = rng.integers(0, width - side), rng.integers(0, height - side)
        square = np.zeros_like(mask, bool)
        square[y0:y0 + side, x0:x0 + side] = True
        image[square] = rng.normal(45, 15, (square.sum(), 3))
        mask[square] = 2
    image = np.clip(image, 0, 255).astype(np.uint8)
    return image, (mask * 255 if classes == 1 else mask).astype(np.uint8)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--train", type=int, default=240)
    parser.add_argument("--test", type=int, default=60)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--classes", type=int, default=1, choices=[1, 3])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--disc-level", type=float, default=195,
                        help="mean gray level of the discs (the background averages 110)")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    os.makedirs(os.path.join(args.out, "images"), exist_ok=True)
    for split, rows in (("train", args.train), ("test", args.test)):
        with open(os.path.join(args.out, split + ".csv"), "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["image", "mask"])
            for i in range(rows):
                image, mask = make_one(rng, args.size, args.classes, args.disc_level)
                stem = f"images/{split}_{i:04d}"
                Image.fromarray(image).save(os.path.join(args.out, stem + ".png"))
                Image.fromarray(mask, mode="L").save(os.path.join(args.out, stem + "_mask.png"))
                writer.writerow([stem + ".png", stem + "_mask.png"])
    print(f"wrote {args.train} training and {args.test} test images to {args.out}")


if __name__ == "__main__":
    main()
