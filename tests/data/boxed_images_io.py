"""Reads what tests/data/boxed_images_io.h writes: the manifest's images, boxes and case
lines, and an image's RGB pixels."""
import os

import numpy as np


def read_manifest(out):
    """(sizes {name: (w, h)}, boxes {name: [[x1, y1, x2, y2, label], ...]}, case lines split)."""
    sizes, boxes, cases = {}, {}, []
    with open(os.path.join(out, "manifest.txt")) as f:
        for line in f:
            p = line.split()
            if not p:
                continue
            if p[0] == "image":
                sizes[p[1]] = (int(p[2]), int(p[3]))
                boxes[p[1]] = []
            elif p[0] == "box":
                boxes[p[1]].append([float(v) for v in p[2:6]] + [int(p[6])])
            else:
                cases.append(p)
    return sizes, boxes, cases


def read_rgb(out, name, sizes):
    w, h = sizes[name]
    return np.fromfile(os.path.join(out, name + ".rgb"), dtype=np.uint8).reshape(h, w, 3)
