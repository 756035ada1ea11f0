"""Reference values for tests/models/test_box_ops.cpp.

usage: /usr/bin/python3 box_ops_reference.py IN.safetensors OUT.safetensors

torchvision's own ops (Debian's torchvision): torchvision.ops.nms, batched_nms and
box_iou; aligned IoU is mmdet's bbox_overlaps(..., mode="iou", is_aligned=True,
eps=1e-6) transcribed in torch (mmdet is not in Debian).

IN, per case <c>:  <c>.boxes [N, 4] float32 or float64 (xyxy), <c>.scores [N],
                   <c>.labels [N] int64, <c>.thresholds [K] float64
OUT, per case:     <c>.nms.<k> / <c>.batched.<k> int64 kept indices for thresholds[k]
                   <c>.iou [N, N] and <c>.aligned [N - 1] (boxes[:-1] with boxes[1:]) float32
"""
import os
import sys

import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_io import read_safetensors, write_safetensors  # noqa: E402


def aligned_bbox_overlaps(bboxes1, bboxes2, eps=1e-6):
    """mmdet.structures.bbox.bbox_overlaps, mode 'iou', is_aligned=True."""
    area1 = (bboxes1[..., 2] - bboxes1[..., 0]) * (bboxes1[..., 3] - bboxes1[..., 1])
    area2 = (bboxes2[..., 2] - bboxes2[..., 0]) * (bboxes2[..., 3] - bboxes2[..., 1])
    lt = torch.max(bboxes1[..., :2], bboxes2[..., :2])
    rb = torch.min(bboxes1[..., 2:], bboxes2[..., 2:])
    wh = (rb - lt).clamp(min=0)
    overlap = wh[..., 0] * wh[..., 1]
    union = area1 + area2 - overlap
    union = torch.max(union, union.new_tensor([eps]))
    return overlap / union


def main():
    tensors = read_safetensors(sys.argv[1])
    cases = sorted({name.rsplit(".", 1)[0] for name in tensors})
    out = {}
    for c in cases:
        boxes, scores = tensors[c + ".boxes"], tensors[c + ".scores"]
        labels = tensors[c + ".labels"]
        for k, threshold in enumerate(tensors[c + ".thresholds"].tolist()):
            out[f"{c}.nms.{k}"] = torchvision.ops.nms(boxes, scores, threshold)
            out[f"{c}.batched.{k}"] = torchvision.ops.batched_nms(boxes, scores, labels, threshold)
        if boxes.dtype == torch.float32 and boxes.shape[0] > 1:
            out[c + ".iou"] = torchvision.ops.box_iou(boxes, boxes)
            out[c + ".aligned"] = aligned_bbox_overlaps(boxes[:-1], boxes[1:])
    write_safetensors(sys.argv[2], out)


if __name__ == "__main__":
    main()
