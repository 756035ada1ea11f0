"""Writes a generated object detection dataset in COCO's layout: noisy, striped
images of varying sizes with several coloured shapes each (category "disc",
"square" and "triangle"), their boxes in OUT/annotations/train.json and
OUT/annotations/test.json (COCO detection files: images, annotations with bbox
[x, y, w, h] and area, categories), the images in OUT/images/. file_name
entries are relative to OUT (AutoMM's root: the json's folder's parent).

Usage: /usr/bin/python3 examples/make_detection_data.py OUT [--train 200] [--test 50]
                                                        [--size 128] [--seed 0]
(needs numpy and PIL: python3-numpy, python3-pil)
"""
import argparse
import json
import os

import numpy as np
from PIL import Image

CATEGORIES = [(1, "disc"), (2, "square"), (3, "triangle")]
COLOURS = {1: (220, 60, 50), 2: (40, 170, 60), 3: (50, 80, 220)}


def make_one(rng, size):
    width = int(size * rng.uniform(0.8, 1.25))
    height = int(size * rng.uniform(0.8, 1.25))
    yy, xx = np.mgrid[0:height, 0:width]
    phase = rng.uniform(0, 2 * np.pi)
    background = 120 + 30 * np.sin(xx / rng.uniform(5, 12) + phase) * np.cos(yy / rng.uniform(5, 12))
    image = background[..., None] + rng.normal(0, 15, (height, width, 3))
    boxes = []
    occupied = np.zeros((height, width), bool)
    for _ in range(rng.integers(1, 5)):  # one to four shapes
        category = int(rng.integers(1, 4))
        side = rng.uniform(0.12, 0.35) * min(width, height)
        x0, y0 = rng.uniform(0, width - side), rng.uniform(0, height - side)
        if category == 1:
            r = side / 2
            shape = (xx + 0.5 - (x0 + r)) ** 2 + (yy + 0.5 - (y0 + r)) ** 2 <= r * r
        elif category == 2:
            shape = (xx + 0.5 >= x0) & (xx + 0.5 <= x0 + side) & (yy + 0.5 >= y0) & (yy + 0.5 <= y0 + side)
        else:  # apex at the top centre
            t = (yy + 0.5 - y0) / side
            shape = (t >= 0) & (t <= 1) & (np.abs(xx + 0.5 - (x0 + side / 2)) <= t * side / 2)
        if not shape.any() or (shape & occupied).sum() > 0.2 * shape.sum():
            continue
        occupied |= shape
        image[shape] = np.array(COLOURS[category]) + rng.normal(0, 12, (shape.sum(), 3))
        ys, xs = np.nonzero(shape)
        x1, y1, x2, y2 = float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)
        boxes.append((category, [x1, y1, x2 - x1, y2 - y1], float(shape.sum())))
    return np.clip(image, 0, 255).astype(np.uint8), boxes


def write_split(out, name, count, rng, size, first_id):
    images, annotations = [], []
    for i in range(count):
        pixels, boxes = make_one(rng, size)
        file_name = f"images/{name}_{i:04d}.jpg"
        Image.fromarray(pixels).save(os.path.join(out, file_name), quality=95)
        image_id = first_id + i
        images.append({"id": image_id, "file_name": file_name, "width": pixels.shape[1], "height": pixels.shape[0]})
        for category, bbox, area in boxes:
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": category,
                                "bbox": bbox, "area": area, "iscrowd": 0})
    document = {"info": {"description": "automm.cpp generated shapes"}, "images": images,
                "annotations": annotations, "categories": [{"id": i, "name": n} for i, n in CATEGORIES]}
    with open(os.path.join(out, "annotations", f"{name}.json"), "w") as f:
        json.dump(document, f)
    return len(annotations)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--train", type=int, default=200)
    parser.add_argument("--test", type=int, default=50)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    os.makedirs(os.path.join(args.out, "images"), exist_ok=True)
    os.makedirs(os.path.join(args.out, "annotations"), exist_ok=True)
    n_train = write_split(args.out, "train", args.train, rng, args.size, 1)
    n_test = write_split(args.out, "test", args.test, rng, args.size, 100000)
    print(f"wrote {args.train} training images ({n_train} boxes) and {args.test} test images ({n_test} boxes) "
          f"to {args.out}")


if __name__ == "__main__":
    main()
