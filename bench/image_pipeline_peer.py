"""The Python side of bench/bench_images.cpp: torchvision 0.14 + PIL on the same files.

usage: /usr/bin/python3 image_pipeline_peer.py write DIR [--images N]
       /usr/bin/python3 image_pipeline_peer.py measure DIR [--json OUT] [--repeats R] [--batch-size B]

`write` saves N photo-like 640x480 JPEGs (PIL, quality 90) as DIR/img_NNNN.jpg;
the C++ benchmark reads the same files. `measure` times, best of R passes over
all files, each through a torch DataLoader with batches of B, images per second
of wall-clock time and per CPU-second (this process and its workers: a figure
that holds up when other work shares the cores):

  decode      Image.open(f).convert("RGB"), as AutoMM reads an image
  train       decode + Resize(224, BICUBIC) + CenterCrop(224) + AutoMM's
              TrivialAugment(IMAGE, 30) + ToTensor + Normalize(imagenet)
              (AutoMM's default model.timm_image.train_transforms)

each with num_workers=0 (one process, one torch thread) and num_workers=2.
"""
import argparse
import glob
import json
import os
import random
import resource
import sys
import time

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms
from torchvision.transforms import InterpolationMode

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data"))
import transform_reference  # noqa: E402  (AutoMM's TrivialAugment, shared with the tests)

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def photo(w, h, seed):
    """Smooth colour gradients, edges and sensor-like noise (as tests/data/transform_reference.py)."""
    rng = np.random.default_rng(seed)
    fx, fy, fr = rng.uniform(2.0, 5.0), rng.uniform(1.2, 3.0), rng.uniform(6.0, 14.0)
    cx, cy, cell = rng.uniform(0, w), rng.uniform(0, h), int(rng.integers(9, 24))
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    r = 0.5 + 0.5 * np.sin(x / (w / fx) + y / (h / fy))
    g = (x / (w - 1)) * 0.7 + 0.3 * (((x // cell) + (y // (cell - 4))) % 2)
    b = 0.5 + 0.5 * np.cos(np.hypot(x - cx, y - cy) / fr)
    img = np.stack([r, g, b], -1) * 235 + 10 + rng.normal(0, 6, (h, w, 3)).astype(np.float32)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def write(folder, count):
    os.makedirs(folder, exist_ok=True)
    for i in range(count):
        Image.fromarray(photo(640, 480, i), "RGB").save(os.path.join(folder, f"img_{i:04d}.jpg"), quality=90)


class TrivialAugment:
    """AutoMM's data/trivial_augmenter.py TrivialAugment(IMAGE, 30) for images, as written in
    tests/data/transform_reference.py (what the C++ trivial_augment reproduces)."""

    def __call__(self, img):
        return transform_reference.trivial_augment(img)


TRAIN = transforms.Compose([
    transforms.Resize(224, InterpolationMode.BICUBIC),
    transforms.CenterCrop(224),
    TrivialAugment(),
    transforms.ToTensor(),
    transforms.Normalize(*IMAGENET),
])


class Files(Dataset):
    def __init__(self, paths, train):
        self.paths, self.train = paths, train

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        img = Image.open(self.paths[i]).convert("RGB")
        return TRAIN(img) if self.train else img.size[0]


def cpu_seconds():
    """User + system time of this process and of its exited, waited-for children (DataLoader workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def images_per_s(paths, train, workers, batch_size, repeats):
    """Best of `repeats` passes: images per wall-clock second, images per CPU-second, and the
    cores the fastest pass used (CPU-seconds / wall seconds)."""
    loader = DataLoader(Files(paths, train), batch_size=batch_size, shuffle=False, num_workers=workers)
    best = {"images_per_s": 0.0, "images_per_cpu_s": 0.0, "cores": 0.0}
    for _ in range(repeats):
        start, cpu_start, n = time.perf_counter(), cpu_seconds(), 0
        it = iter(loader)  # a fresh iterator per pass: worker start-up is counted, as per epoch in training
        for batch in it:
            n += len(batch)
        del it  # exhausted: its workers have been joined, so RUSAGE_CHILDREN holds their time
        wall, cpu = time.perf_counter() - start, cpu_seconds() - cpu_start
        if n / wall > best["images_per_s"]:
            best["images_per_s"], best["cores"] = n / wall, cpu / wall
        best["images_per_cpu_s"] = max(best["images_per_cpu_s"], n / cpu)
    return best


def measure(folder, json_path, repeats, batch_size):
    torch.set_num_threads(1)
    random.seed(0)
    torch.manual_seed(0)
    paths = sorted(glob.glob(os.path.join(folder, "*.jpg")))
    if not paths:
        raise SystemExit(f"no .jpg files in {folder}")
    for p in paths[:8]:  # warm-up
        Image.open(p).convert("RGB")
    report = {"images": len(paths), "batch_size": batch_size, "repeats": repeats,
              "torch": torch.__version__, "pillow": Image.__version__}
    for name, train in [("decode", False), ("train", True)]:
        report[name] = {}
        for workers in (0, 2):
            report[name][str(workers)] = images_per_s(paths, train, workers, batch_size, repeats)
            r = report[name][str(workers)]
            print(f"  python {name:6s} num_workers={workers}: {r['images_per_s']:8.1f} images/s"
                  f" {r['images_per_cpu_s']:8.1f} images/CPU-s {r['cores']:5.2f} cores", flush=True)
    if json_path:
        with open(json_path, "w") as f:
            json.dump(report, f, indent=2)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["write", "measure"])
    parser.add_argument("folder")
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--json")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    if args.command == "write":
        write(args.folder, args.images)
    else:
        measure(args.folder, args.json, args.repeats, args.batch_size)


if __name__ == "__main__":
    main()
