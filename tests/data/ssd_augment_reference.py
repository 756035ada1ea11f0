"""Reference outputs for tests/data/test_ssd_augment.cpp.

usage: /usr/bin/python3 ssd_augment_reference.py DIR

A transcription of mmdet 3.x's Expand, MinIoURandomCrop and
PhotoMetricDistortion (mmdet/datasets/transforms/transforms.py, mmdetection
commit 00e07a9c) with the parameters of yolov3_mobilenetv2_8xb24-320-300e_coco,
run on the BGR image mmdet would have loaded. numpy's global RNG is replaced by
Replay, which serves the uniform [0, 1) values the C++ draws consumed, one per
numpy call, through numpy's own formulas (uniform(low, high=1.0) keeps the
one-argument default). cv2 is not available: bgr2hsv / hsv2bgr transcribe
OpenCV's float32 RGB2HSV_f / HSV2RGB_f scalar loops (color_hsv.simd.hpp).
Boxes are torch float32 tensors through HorizontalBoxes' arithmetic and
bbox_overlaps.

DIR/manifest.txt, written by the test:
  image NAME W H              (NAME.rgb: row-major HWC uint8 RGB)
  box NAME x1 y1 x2 y2 LABEL
  case ID NAME N OPS          (ID.u: N float64 draws; OPS: expand,crop,photo in order)
Writes ID.txt ("W H USED", then "x1 y1 x2 y2 label" per box, floats as repr of
the float32 value) and ID.rgb (uint8 RGB) or, when photo ran, ID.f32 (float32
RGB).
"""
import os
import sys

import numpy as np
import torch

from boxed_images_io import read_manifest, read_rgb
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models"))
from mmdet_boxes import bbox_overlaps, clip_, translate_  # noqa: E402

FLT_EPSILON = np.float32(1.1920928955078125e-07)


class Replay:
    """The parts of numpy.random that the transforms call, fed recorded draws."""

    def __init__(self, values):
        self.values = values
        self.used = 0

    def _next(self):
        if self.used >= len(self.values):
            raise RuntimeError(f"the transforms want more than the {len(self.values)} recorded draws")
        v = float(self.values[self.used])
        self.used += 1
        return v

    def uniform(self, low=0.0, high=1.0):
        return low + (high - low) * self._next()

    def randint(self, n):
        return min(int(self._next() * n), n - 1)

    def choice(self, seq):
        return np.array(seq)[self.randint(len(seq))]

    def permutation(self, n):
        x = np.arange(n)
        for i in reversed(range(1, n)):
            j = self.randint(i + 1)
            x[i], x[j] = x[j], x[i]
        return x


# ---- box centres (the other box ops: tests/models/mmdet_boxes.py)
def centers(boxes):
    return (boxes[..., :2] + boxes[..., 2:]) / 2


# ---- OpenCV's float32 colour conversions (H in degrees)
def bgr2hsv(img):
    b, g, r = img[..., 0], img[..., 1], img[..., 2]
    v = np.maximum(np.maximum(r, g), b)
    vmin = np.minimum(np.minimum(r, g), b)
    diff = v - vmin
    s = diff / (np.abs(v) + FLT_EPSILON)
    diff = (60.0 / (diff + FLT_EPSILON).astype(np.float64)).astype(np.float32)
    h = np.where(v == r, (g - b) * diff, np.where(v == g, (b - r) * diff + np.float32(120), (r - g) * diff + np.float32(240)))
    h = np.where(h < 0, h + np.float32(360), h)
    return np.stack([h, s, v], -1).astype(np.float32)


def hsv2bgr(img):
    h, s, v = img[..., 0], img[..., 1], img[..., 2]
    h = h * (np.float32(6) / np.float32(360))
    h = np.fmod(h, np.float32(6))
    sector = np.floor(h).astype(np.int64)
    h = h - sector.astype(np.float32)
    bad = (sector < 0) | (sector >= 6)
    sector = np.where(bad, 0, sector)
    h = np.where(bad, np.float32(0), h)
    one = np.float32(1)
    tab = np.stack([v, v * (one - s), v * (one - s * h), v * (one - s * (one - h))], -1)
    sector_data = np.array([[1, 3, 0], [1, 0, 2], [3, 0, 1], [0, 2, 1], [0, 1, 3], [2, 1, 0]])
    idx = sector_data[sector]  # [..., 3]: which tab entry becomes b, g, r
    bgr = np.take_along_axis(tab, idx, -1)
    grey = (s == 0)[..., None]
    return np.where(grey, v[..., None], bgr).astype(np.float32)


# ---- The transforms (transform() bodies as upstream, random = Replay)
def expand(random, results, mean=(123.675, 116.28, 103.53), to_rgb=True, ratio_range=(1, 2), prob=0.5):
    mean = mean[::-1] if to_rgb else mean
    min_ratio, max_ratio = ratio_range
    if random.uniform(0, 1) > prob:
        return results
    img = results['img']
    h, w, c = img.shape
    ratio = random.uniform(min_ratio, max_ratio)
    if np.all(mean == mean[0]):
        expand_img = np.empty((int(h * ratio), int(w * ratio), c), img.dtype)
        expand_img.fill(mean[0])
    else:
        expand_img = np.full((int(h * ratio), int(w * ratio), c), mean, dtype=img.dtype)
    left = int(random.uniform(0, w * ratio - w))
    top = int(random.uniform(0, h * ratio - h))
    expand_img[top:top + h, left:left + w] = img
    results['img'] = expand_img
    results['gt_bboxes'] = translate_(results['gt_bboxes'], [left, top])
    return results


def min_iou_random_crop(random, results, min_ious=(0.4, 0.5, 0.6, 0.7, 0.8, 0.9), min_crop_size=0.3,
                        bbox_clip_border=True):
    sample_mode = (1, *min_ious, 0)
    img = results['img']
    boxes = results['gt_bboxes']
    h, w, c = img.shape
    while True:
        mode = random.choice(sample_mode)
        if mode == 1:
            return results
        min_iou = mode
        for i in range(50):
            new_w = random.uniform(min_crop_size * w, w)
            new_h = random.uniform(min_crop_size * h, h)
            if new_h / new_w < 0.5 or new_h / new_w > 2:
                continue
            left = random.uniform(w - new_w)
            top = random.uniform(h - new_h)
            patch = np.array((int(left), int(top), int(left + new_w), int(top + new_h)))
            if patch[2] == patch[0] or patch[3] == patch[1]:
                continue
            overlaps = bbox_overlaps(torch.tensor(patch.reshape(-1, 4).astype(np.float32)), boxes).numpy().reshape(-1)
            if len(overlaps) > 0 and overlaps.min() < min_iou:
                continue
            if len(overlaps) > 0:
                def is_center_of_bboxes_in_patch(boxes, patch):
                    c = centers(boxes).numpy()
                    return (c[:, 0] > patch[0]) * (c[:, 1] > patch[1]) * (c[:, 0] < patch[2]) * (c[:, 1] < patch[3])

                mask = is_center_of_bboxes_in_patch(boxes, patch)
                if not mask.any():
                    continue
                boxes = results['gt_bboxes']
                mask = is_center_of_bboxes_in_patch(boxes, patch)
                boxes = translate_(boxes[torch.from_numpy(mask)], [-patch[0], -patch[1]])
                if bbox_clip_border:
                    boxes = clip_(boxes, [patch[3] - patch[1], patch[2] - patch[0]])
                results['gt_bboxes'] = boxes
                results['gt_bboxes_labels'] = results['gt_bboxes_labels'][mask]
            results['img'] = img[patch[1]:patch[3], patch[0]:patch[2]]
            return results


def photo_metric_distortion(random, results, brightness_delta=32, contrast_range=(0.5, 1.5),
                            saturation_range=(0.5, 1.5), hue_delta=18):
    img = results['img'].astype(np.float32)
    mode = random.randint(2)
    brightness_flag = random.randint(2)
    contrast_flag = random.randint(2)
    saturation_flag = random.randint(2)
    hue_flag = random.randint(2)
    swap_flag = random.randint(2)
    delta_value = random.uniform(-brightness_delta, brightness_delta)
    alpha_value = random.uniform(*contrast_range)
    saturation_value = random.uniform(*saturation_range)
    hue_value = random.uniform(-hue_delta, hue_delta)
    swap_value = random.permutation(3)
    # numpy 1.x: a Python float meets a float32 array as a float32
    if brightness_flag:
        img += np.float32(delta_value)
    if mode == 1:
        if contrast_flag:
            img *= np.float32(alpha_value)
    img = bgr2hsv(img)
    if saturation_flag:
        img[..., 1] *= np.float32(saturation_value)
    if hue_flag:
        img[..., 0] += np.float32(hue_value)
        img[..., 0][img[..., 0] > 360] -= 360
        img[..., 0][img[..., 0] < 0] += 360
    img = hsv2bgr(img)
    if mode == 0:
        if contrast_flag:
            img *= np.float32(alpha_value)
    if swap_flag:
        img = img[..., swap_value]
    results['img'] = img
    return results


def main():
    out = sys.argv[1]
    sizes, boxes, cases = read_manifest(out)
    ops = {"expand": expand, "crop": min_iou_random_crop, "photo": photo_metric_distortion}
    for _, case_id, name, n, op_list in cases:
        rgb = read_rgb(out, name, sizes)
        b = boxes[name]
        results = {
            'img': np.ascontiguousarray(rgb[..., ::-1]),  # LoadImageFromFile: BGR
            'gt_bboxes': torch.tensor(np.array([r[:4] for r in b], dtype=np.float32).reshape(-1, 4)),
            'gt_bboxes_labels': np.array([r[4] for r in b], dtype=np.int64),
        }
        random = Replay(np.fromfile(os.path.join(out, case_id + ".u"), dtype=np.float64))
        assert len(random.values) == int(n)
        for op in op_list.split(","):
            results = ops[op](random, results)
        img = np.ascontiguousarray(results['img'][..., ::-1])
        suffix = ".f32" if img.dtype == np.float32 else ".rgb"
        img.tofile(os.path.join(out, case_id + suffix))
        with open(os.path.join(out, case_id + ".txt"), "w") as f:
            f.write(f"{img.shape[1]} {img.shape[0]} {random.used}\n")
            for row, label in zip(results['gt_bboxes'].tolist(), results['gt_bboxes_labels'].tolist()):
                f.write(" ".join(repr(float(v)) for v in row) + f" {label}\n")


if __name__ == "__main__":
    main()
