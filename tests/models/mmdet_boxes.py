"""mmdet's box arithmetic as the detection references transcribe it: HorizontalBoxes'
rescale_ / translate_ / clip_ and bbox_overlaps (mmdet/structures/bbox), on [n, 4] xyxy
float32 tensors."""
import torch


def rescale_(boxes, s):
    return boxes * boxes.new_tensor([s, s]).repeat(2)


def translate_(boxes, d):
    return boxes + boxes.new_tensor(d).repeat(2)


def clip_(boxes, img_shape):
    boxes = boxes.clone()
    boxes[..., 0::2] = boxes[..., 0::2].clamp(0, img_shape[1])
    boxes[..., 1::2] = boxes[..., 1::2].clamp(0, img_shape[0])
    return boxes


def bbox_overlaps(bboxes1, bboxes2, is_aligned=False, eps=1e-6):
    """IoU of every pair ([n, m]), or of aligned pairs ([n]) when is_aligned."""
    rows, cols = bboxes1.size(-2), bboxes2.size(-2)
    if not is_aligned and rows * cols == 0:
        return bboxes1.new(rows, cols)
    area1 = (bboxes1[..., 2] - bboxes1[..., 0]) * (bboxes1[..., 3] - bboxes1[..., 1])
    area2 = (bboxes2[..., 2] - bboxes2[..., 0]) * (bboxes2[..., 3] - bboxes2[..., 1])
    if is_aligned:
        lt = torch.max(bboxes1[..., :2], bboxes2[..., :2])
        rb = torch.min(bboxes1[..., 2:], bboxes2[..., 2:])
        wh = (rb - lt).clamp(min=0)
        overlap = wh[..., 0] * wh[..., 1]
        union = area1 + area2 - overlap
    else:
        lt = torch.max(bboxes1[..., :, None, :2], bboxes2[..., None, :, :2])
        rb = torch.min(bboxes1[..., :, None, 2:], bboxes2[..., None, :, 2:])
        wh = (rb - lt).clamp(min=0)
        overlap = wh[..., 0] * wh[..., 1]
        union = area1[..., None] + area2[..., None, :] - overlap
    union = torch.max(union, union.new_tensor([eps]))
    return overlap / union
