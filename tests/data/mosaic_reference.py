"""Reference outputs for tests/data/test_mosaic_mixup.cpp.

usage: /usr/bin/python3 mosaic_reference.py DIR

A transcription of Mosaic.transform (after its probability check),
Mosaic._mosaic_combine and MixUp.transform from AutoGluon's
multimodal/data/dataset_mmlab/multi_image_mix_dataset.py (mmdet 3.x's
transforms), with the random draws read from the manifest. Boxes are torch
float32 tensors and go through HorizontalBoxes' rescale_/translate_/clip_/
flip_/is_inside arithmetic. The one substitution: mmcv.imresize (cv2 bilinear)
is PIL's bilinear resize here, as automm resizes.

DIR/manifest.txt, written by the test:
  image NAME W H            (NAME.rgb: row-major HWC uint8)
  box NAME x1 y1 x2 y2 LABEL
  mosaic ID S CX CY A B C D
  mixup ID S JIT FLIP XOFF YOFF BASE OTHER
Writes ID.rgb and ID.txt ("W H", then "x1 y1 x2 y2 label" per box, floats as
Python's repr of the float32 value).
"""
import os
import sys

import numpy as np
import torch
from PIL import Image

from boxed_images_io import read_manifest, read_rgb
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models"))
from mmdet_boxes import clip_, rescale_, translate_  # noqa: E402


def imresize(img, size):
    """mmcv.imresize(img, (w, h)) with PIL's bilinear in place of cv2's."""
    w, h = size
    if (w, h) == (img.shape[1], img.shape[0]):
        return img.copy()
    return np.asarray(Image.fromarray(img.astype(np.uint8)).resize((w, h), Image.BILINEAR))


# ---- HorizontalBoxes ops on [n, 4] float32 tensors
def flip_h_(boxes, img_shape):
    flipped = boxes.clone()
    flipped[..., 0] = img_shape[1] - boxes[..., 2]
    flipped[..., 2] = img_shape[1] - boxes[..., 0]
    return flipped


def is_inside(boxes, img_shape):
    img_h, img_w = img_shape
    return (boxes[..., 0] < img_w) & (boxes[..., 1] < img_h) & (boxes[..., 2] > 0) & (boxes[..., 3] > 0)


def mosaic_combine(loc, center, wh, img_scale):
    cx, cy = center
    if loc == "top_left":
        x1, y1, x2, y2 = max(cx - wh[0], 0), max(cy - wh[1], 0), cx, cy
        crop = wh[0] - (x2 - x1), wh[1] - (y2 - y1), wh[0], wh[1]
    elif loc == "top_right":
        x1, y1, x2, y2 = cx, max(cy - wh[1], 0), min(cx + wh[0], img_scale[0] * 2), cy
        crop = 0, wh[1] - (y2 - y1), min(wh[0], x2 - x1), wh[1]
    elif loc == "bottom_left":
        x1, y1, x2, y2 = max(cx - wh[0], 0), cy, cx, min(img_scale[1] * 2, cy + wh[1])
        crop = wh[0] - (x2 - x1), 0, wh[0], min(y2 - y1, wh[1])
    else:
        x1, y1, x2, y2 = cx, cy, min(cx + wh[0], img_scale[0] * 2), min(img_scale[1] * 2, cy + wh[1])
        crop = 0, 0, min(wh[0], x2 - x1), min(y2 - y1, wh[1])
    return (x1, y1, x2, y2), crop


def mosaic(samples, s, center):
    img_scale = (s, s)
    mosaic_img = np.full((int(img_scale[1] * 2), int(img_scale[0] * 2), 3), 114.0, dtype=np.uint8)
    all_boxes, all_labels = [], []
    for loc, (img_i, boxes_i, labels_i) in zip(("top_left", "top_right", "bottom_left", "bottom_right"), samples):
        h_i, w_i = img_i.shape[:2]
        scale_ratio_i = min(img_scale[1] / h_i, img_scale[0] / w_i)
        img_i = imresize(img_i, (int(w_i * scale_ratio_i), int(h_i * scale_ratio_i)))
        (x1_p, y1_p, x2_p, y2_p), (x1_c, y1_c, x2_c, y2_c) = mosaic_combine(loc, center, img_i.shape[:2][::-1],
                                                                          img_scale)
        mosaic_img[y1_p:y2_p, x1_p:x2_p] = img_i[y1_c:y2_c, x1_c:x2_c]
        boxes_i = translate_(rescale_(boxes_i, scale_ratio_i), [x1_p - x1_c, y1_p - y1_c])
        all_boxes.append(boxes_i)
        all_labels.append(labels_i)
    boxes = clip_(torch.cat(all_boxes, 0), [2 * img_scale[1], 2 * img_scale[0]])
    labels = np.concatenate(all_labels, 0)
    inside = is_inside(boxes, [2 * img_scale[1], 2 * img_scale[0]]).numpy()
    return mosaic_img, boxes[inside], labels[inside]


def mixup(base, other, s, jit_factor, is_flip, x_offset, y_offset):
    dynamic_scale = (s, s)
    ori_img, ori_boxes, ori_labels = base
    retrieve_img, retrieve_boxes, retrieve_labels = other
    if retrieve_boxes.shape[0] == 0:
        return ori_img, ori_boxes, ori_labels
    out_img = np.ones((dynamic_scale[1], dynamic_scale[0], 3), dtype=retrieve_img.dtype) * 114.0  # float64
    scale_ratio = min(dynamic_scale[1] / retrieve_img.shape[0], dynamic_scale[0] / retrieve_img.shape[1])
    retrieve_img = imresize(retrieve_img,
                            (int(retrieve_img.shape[1] * scale_ratio), int(retrieve_img.shape[0] * scale_ratio)))
    out_img[:retrieve_img.shape[0], :retrieve_img.shape[1]] = retrieve_img
    scale_ratio *= jit_factor
    out_img = imresize(out_img, (int(out_img.shape[1] * jit_factor), int(out_img.shape[0] * jit_factor)))
    if is_flip:
        out_img = out_img[:, ::-1, :]
    origin_h, origin_w = out_img.shape[:2]
    target_h, target_w = ori_img.shape[:2]
    padded_img = (np.ones((max(origin_h, target_h), max(origin_w, target_w), 3)) * 114.0).astype(np.uint8)
    padded_img[:origin_h, :origin_w] = out_img
    padded_cropped_img = padded_img[y_offset:y_offset + target_h, x_offset:x_offset + target_w]
    assert padded_cropped_img.shape == ori_img.shape, "offsets out of range"
    boxes = clip_(rescale_(retrieve_boxes, scale_ratio), [origin_h, origin_w])
    if is_flip:
        boxes = flip_h_(boxes, [origin_h, origin_w])
    boxes = clip_(translate_(boxes, [-x_offset, -y_offset]), [target_h, target_w])
    mixup_img = 0.5 * ori_img.astype(np.float32) + 0.5 * padded_cropped_img.astype(np.float32)
    all_boxes = torch.cat((ori_boxes, boxes), 0)
    labels = np.concatenate((ori_labels, retrieve_labels), 0)
    inside = is_inside(all_boxes, [target_h, target_w]).numpy()
    return mixup_img.astype(np.uint8), all_boxes[inside], labels[inside]


def main():
    out = sys.argv[1]
    sizes, boxes, cases = read_manifest(out)

    def sample(name):
        img = read_rgb(out, name, sizes)
        b = boxes[name]
        # LoadAnnotations: float32 boxes, int64 labels
        t = torch.tensor(np.array([r[:4] for r in b], dtype=np.float32).reshape(-1, 4))
        return img, t, np.array([r[4] for r in b], dtype=np.int64)

    for p in cases:
        if p[0] == "mosaic":
            case_id, s, cx, cy = p[1], int(p[2]), int(p[3]), int(p[4])
            img, b, labels = mosaic([sample(n) for n in p[5:9]], s, (cx, cy))
        else:
            case_id, s, jit, flip, xo, yo = p[1], int(p[2]), float(p[3]), p[4] == "1", int(p[5]), int(p[6])
            img, b, labels = mixup(sample(p[7]), sample(p[8]), s, jit, flip, xo, yo)
        np.ascontiguousarray(img).tofile(os.path.join(out, case_id + ".rgb"))
        with open(os.path.join(out, case_id + ".txt"), "w") as f:
            f.write(f"{img.shape[1]} {img.shape[0]}\n")
            for row, label in zip(b.tolist(), labels.tolist()):
                f.write(" ".join(repr(float(v)) for v in row) + f" {label}\n")


if __name__ == "__main__":
    main()
