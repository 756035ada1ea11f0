"""Reference values for tests/models/test_yolox_head_ops.cpp.

usage: /usr/bin/python3 yolox_head_ops_reference.py IN.safetensors OUT.safetensors

A plain-torch transcription of mmdet 3.x's YOLOX head arithmetic, for Debian's
torch (mmdet and mmcv are not in Debian):
  MlvlPointGenerator(strides, offset=0).grid_priors(..., with_stride=True)
  YOLOXHead._bbox_decode, predict_by_feat and _bbox_post_process
    (mmcv.ops.batched_nms below its split_thr: labels offset by
    max coordinate + 1, then NMS; torchvision.ops.nms is the same algorithm
    as mmcv's nms_cpu: sort by score, suppress when IoU > threshold)
  YOLOXHead.loss_by_feat, _get_targets_single, _get_l1_target, with
    PseudoSampler, CrossEntropyLoss(use_sigmoid, sum), IoULoss(square,
    eps 1e-16, weight 5), L1Loss(sum), reduce_mean on one process (identity)
  SimOTAAssigner(center_radius 2.5, candidate_topk 10, iou_weight 3,
    cls_weight 1) with BboxOverlaps2D (bbox_overlaps, eps 1e-6); its BCE
    runs in float32 as mmdet's does with autocast off.

Inputs (names in IN), per CASE:
  CASE.num_images [1] int64, CASE.strides [L] int64
  CASE.cls.<l> [B, C, H, W], CASE.reg.<l> [B, 4, H, W], CASE.obj.<l> [B, 1, H, W]
  CASE.gt_boxes.<i> [G, 4], CASE.gt_labels.<i> [G] int64
Outputs (names in OUT), per CASE:
  CASE.priors [N, 4], CASE.decoded [B, N, 4]
  CASE.assign.<i>.gt [N] int64 (the ground truth's index, -1 for negatives), CASE.assign.<i>.iou [N] (0 off positives)
  CASE.l1_<on|off>.<loss> [1] and CASE.l1_<on|off>.<loss>.grad.<cls|reg|obj>.<l> (zeros where unused)
  CASE.det.<thr001|thr030>.<i>.{boxes, scores, labels}
"""
import os
import sys

import torch
import torch.nn.functional as F
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_io import read_safetensors, write_safetensors  # noqa: E402
from mmdet_boxes import bbox_overlaps  # noqa: E402

INF = 100000.0
EPS = 1.0e-7
THRESHOLDS = {"thr001": 0.01, "thr030": 0.3}
NMS_IOU = 0.65


# ---- mmdet.models.task_modules.prior_generators.MlvlPointGenerator (offset 0, with_stride)

def grid_priors(featmap_sizes, strides, dtype):
    priors = []
    for (feat_h, feat_w), stride in zip(featmap_sizes, strides):
        shift_x = ((torch.arange(0., feat_w) + 0) * stride).to(dtype)
        shift_y = ((torch.arange(0., feat_h) + 0) * stride).to(dtype)
        shift_xx = shift_x.repeat(len(shift_y))
        shift_yy = shift_y.view(-1, 1).repeat(1, len(shift_x)).view(-1)
        stride_w = shift_xx.new_full((shift_xx.shape[0],), stride).to(dtype)
        stride_h = shift_xx.new_full((shift_yy.shape[0],), stride).to(dtype)
        priors.append(torch.stack([shift_xx, shift_yy, stride_w, stride_h], dim=-1))
    return priors


# ---- mmdet.structures.bbox.bbox_overlaps (mode iou)

# ---- mmdet SimOTAAssigner

def in_gt_and_in_center_info(priors, gt_bboxes, center_radius=2.5):
    num_gt = gt_bboxes.size(0)
    repeated_x = priors[:, 0].unsqueeze(1).repeat(1, num_gt)
    repeated_y = priors[:, 1].unsqueeze(1).repeat(1, num_gt)
    repeated_stride_x = priors[:, 2].unsqueeze(1).repeat(1, num_gt)
    repeated_stride_y = priors[:, 3].unsqueeze(1).repeat(1, num_gt)
    l_ = repeated_x - gt_bboxes[:, 0]
    t_ = repeated_y - gt_bboxes[:, 1]
    r_ = gt_bboxes[:, 2] - repeated_x
    b_ = gt_bboxes[:, 3] - repeated_y
    is_in_gts = torch.stack([l_, t_, r_, b_], dim=1).min(dim=1).values > 0
    is_in_gts_all = is_in_gts.sum(dim=1) > 0
    gt_cxs = (gt_bboxes[:, 0] + gt_bboxes[:, 2]) / 2.0
    gt_cys = (gt_bboxes[:, 1] + gt_bboxes[:, 3]) / 2.0
    ct_box_l = gt_cxs - center_radius * repeated_stride_x
    ct_box_t = gt_cys - center_radius * repeated_stride_y
    ct_box_r = gt_cxs + center_radius * repeated_stride_x
    ct_box_b = gt_cys + center_radius * repeated_stride_y
    cl_ = repeated_x - ct_box_l
    ct_ = repeated_y - ct_box_t
    cr_ = ct_box_r - repeated_x
    cb_ = ct_box_b - repeated_y
    is_in_cts = torch.stack([cl_, ct_, cr_, cb_], dim=1).min(dim=1).values > 0
    is_in_cts_all = is_in_cts.sum(dim=1) > 0
    is_in_gts_or_centers = is_in_gts_all | is_in_cts_all
    is_in_boxes_and_centers = is_in_gts[is_in_gts_or_centers, :] & is_in_cts[is_in_gts_or_centers, :]
    return is_in_gts_or_centers, is_in_boxes_and_centers


def dynamic_k_matching(cost, pairwise_ious, num_gt, valid_mask, candidate_topk=10):
    matching_matrix = torch.zeros_like(cost, dtype=torch.uint8)
    candidate_topk = min(candidate_topk, pairwise_ious.size(0))
    topk_ious, _ = torch.topk(pairwise_ious, candidate_topk, dim=0)
    dynamic_ks = torch.clamp(topk_ious.sum(0).int(), min=1)
    for gt_idx in range(num_gt):
        _, pos_idx = torch.topk(cost[:, gt_idx], k=dynamic_ks[gt_idx], largest=False)
        matching_matrix[:, gt_idx][pos_idx] = 1
    prior_match_gt_mask = matching_matrix.sum(1) > 1
    if prior_match_gt_mask.sum() > 0:
        _, cost_argmin = torch.min(cost[prior_match_gt_mask, :], dim=1)
        matching_matrix[prior_match_gt_mask, :] *= 0
        matching_matrix[prior_match_gt_mask, cost_argmin] = 1
    fg_mask_inboxes = matching_matrix.sum(1) > 0
    valid_mask[valid_mask.clone()] = fg_mask_inboxes
    matched_gt_inds = matching_matrix[fg_mask_inboxes, :].argmax(1)
    matched_pred_ious = (matching_matrix * pairwise_ious).sum(1)[fg_mask_inboxes]
    return matched_pred_ious, matched_gt_inds


def simota_assign(decoded_bboxes, pred_scores, priors, gt_bboxes, gt_labels):
    """AssignResult as (gt_inds 1-based with 0 for negatives, max_overlaps, labels)."""
    num_gt = gt_bboxes.size(0)
    num_bboxes = decoded_bboxes.size(0)
    assigned_gt_inds = decoded_bboxes.new_full((num_bboxes,), 0, dtype=torch.long)
    if num_gt == 0 or num_bboxes == 0:
        return assigned_gt_inds, decoded_bboxes.new_zeros((num_bboxes,)), decoded_bboxes.new_full(
            (num_bboxes,), -1, dtype=torch.long)
    valid_mask, is_in_boxes_and_center = in_gt_and_in_center_info(priors, gt_bboxes)
    valid_decoded_bbox = decoded_bboxes[valid_mask]
    valid_pred_scores = pred_scores[valid_mask]
    num_valid = valid_decoded_bbox.size(0)
    if num_valid == 0:
        return assigned_gt_inds, decoded_bboxes.new_zeros((num_bboxes,)), decoded_bboxes.new_full(
            (num_bboxes,), -1, dtype=torch.long)
    pairwise_ious = bbox_overlaps(valid_decoded_bbox, gt_bboxes)
    iou_cost = -torch.log(pairwise_ious + EPS)
    gt_onehot_label = F.one_hot(gt_labels.to(torch.int64), pred_scores.shape[-1]).float().unsqueeze(0).repeat(
        num_valid, 1, 1)
    valid_pred_scores = valid_pred_scores.unsqueeze(1).repeat(1, num_gt, 1)
    cls_cost = F.binary_cross_entropy(valid_pred_scores.to(dtype=torch.float32), gt_onehot_label,
                                      reduction='none').sum(-1).to(dtype=valid_pred_scores.dtype)
    cost_matrix = cls_cost * 1.0 + iou_cost * 3.0 + (~is_in_boxes_and_center) * INF
    matched_pred_ious, matched_gt_inds = dynamic_k_matching(cost_matrix, pairwise_ious, num_gt, valid_mask)
    assigned_gt_inds[valid_mask] = matched_gt_inds + 1
    assigned_labels = assigned_gt_inds.new_full((num_bboxes,), -1)
    assigned_labels[valid_mask] = gt_labels[matched_gt_inds].long()
    max_overlaps = assigned_gt_inds.new_full((num_bboxes,), -INF, dtype=torch.float32)
    max_overlaps[valid_mask] = matched_pred_ious
    return assigned_gt_inds, max_overlaps, assigned_labels


# ---- mmdet YOLOXHead

def bbox_decode(priors, bbox_preds):
    xys = (bbox_preds[..., :2] * priors[:, 2:]) + priors[:, :2]
    whs = bbox_preds[..., 2:].exp() * priors[:, 2:]
    tl_x = (xys[..., 0] - whs[..., 0] / 2)
    tl_y = (xys[..., 1] - whs[..., 1] / 2)
    br_x = (xys[..., 0] + whs[..., 0] / 2)
    br_y = (xys[..., 1] + whs[..., 1] / 2)
    return torch.stack([tl_x, tl_y, br_x, br_y], -1)


def flatten(cls_scores, bbox_preds, objectnesses):
    num_imgs, num_classes = cls_scores[0].shape[:2]
    cls = torch.cat([c.permute(0, 2, 3, 1).reshape(num_imgs, -1, num_classes) for c in cls_scores], dim=1)
    reg = torch.cat([b.permute(0, 2, 3, 1).reshape(num_imgs, -1, 4) for b in bbox_preds], dim=1)
    obj = torch.cat([o.permute(0, 2, 3, 1).reshape(num_imgs, -1) for o in objectnesses], dim=1)
    return cls, reg, obj


def get_targets_single(priors, cls_preds, decoded_bboxes, objectness, gt_bboxes, gt_labels, num_classes, use_l1):
    num_priors = priors.size(0)
    if gt_bboxes.size(0) == 0:
        return (cls_preds.new_zeros(num_priors).bool(), cls_preds.new_zeros((0, num_classes)),
                cls_preds.new_zeros((num_priors, 1)), cls_preds.new_zeros((0, 4)), cls_preds.new_zeros((0, 4)), 0,
                torch.full((num_priors,), -1, dtype=torch.long), torch.zeros(num_priors))
    offset_priors = torch.cat([priors[:, :2] + priors[:, 2:] * 0.5, priors[:, 2:]], dim=-1)
    scores = cls_preds.sigmoid() * objectness.unsqueeze(1).sigmoid()
    gt_inds, max_overlaps, labels = simota_assign(decoded_bboxes, scores.sqrt_(), offset_priors, gt_bboxes,
                                                  gt_labels)
    # PseudoSampler
    pos_inds = torch.nonzero(gt_inds > 0, as_tuple=False).squeeze(-1).unique()
    pos_assigned_gt_inds = gt_inds[pos_inds] - 1
    pos_gt_labels = labels[pos_inds]
    num_pos_per_img = pos_inds.size(0)
    pos_ious = max_overlaps[pos_inds]
    cls_target = F.one_hot(pos_gt_labels, num_classes) * pos_ious.unsqueeze(-1)
    obj_target = torch.zeros_like(objectness).unsqueeze(-1)
    obj_target[pos_inds] = 1
    bbox_target = gt_bboxes[pos_assigned_gt_inds]
    l1_target = cls_preds.new_zeros((num_pos_per_img, 4))
    if use_l1:
        pos_priors = priors[pos_inds]
        x1, y1, x2, y2 = bbox_target.split((1, 1, 1, 1), dim=-1)
        gt_cxcywh = torch.cat([(x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1), (y2 - y1)], dim=-1)
        l1_target[:, :2] = (gt_cxcywh[:, :2] - pos_priors[:, :2]) / pos_priors[:, 2:]
        l1_target[:, 2:] = torch.log(gt_cxcywh[:, 2:] / pos_priors[:, 2:] + 1e-8)
    foreground_mask = torch.zeros_like(objectness).to(torch.bool)
    foreground_mask[pos_inds] = 1
    assigned = gt_inds - 1
    iou = torch.where(assigned >= 0, max_overlaps, torch.zeros_like(max_overlaps))
    return (foreground_mask, cls_target, obj_target, bbox_target, l1_target, num_pos_per_img, assigned, iou)


def bce_with_logits_sum(pred, label):
    """CrossEntropyLoss(use_sigmoid=True, reduction='sum', loss_weight=1.0)."""
    weight = ((label >= 0) & (label != -100)).float()
    loss = F.binary_cross_entropy_with_logits(pred, label.float(), reduction='none')
    return 1.0 * (loss * weight).sum()


def loss_by_feat(cls_scores, bbox_preds, objectnesses, strides, gt_boxes, gt_labels, use_l1):
    num_classes = cls_scores[0].shape[1]
    priors = torch.cat(grid_priors([c.shape[2:] for c in cls_scores], strides, cls_scores[0].dtype))
    cls, reg, obj = flatten(cls_scores, bbox_preds, objectnesses)
    bboxes = bbox_decode(priors, reg)
    per_image = [
        get_targets_single(priors, cls[i].detach(), bboxes[i].detach(), obj[i].detach(), gt_boxes[i], gt_labels[i],
                           num_classes, use_l1) for i in range(cls.shape[0])
    ]
    pos_masks, cls_targets, obj_targets, bbox_targets, l1_targets, num_fg, assigned, ious = map(list, zip(*per_image))
    num_pos = torch.tensor(sum(num_fg), dtype=torch.float)
    num_total_samples = max(num_pos, 1.0)
    pos_masks = torch.cat(pos_masks, 0)
    cls_targets = torch.cat(cls_targets, 0)
    obj_targets = torch.cat(obj_targets, 0)
    bbox_targets = torch.cat(bbox_targets, 0)
    losses = {"loss_obj": bce_with_logits_sum(obj.view(-1, 1), obj_targets) / num_total_samples}
    if num_pos > 0:
        losses["loss_cls"] = bce_with_logits_sum(cls.view(-1, num_classes)[pos_masks], cls_targets) / num_total_samples
        ious_pos = bbox_overlaps(bboxes.view(-1, 4)[pos_masks], bbox_targets, is_aligned=True).clamp(min=1e-16)
        losses["loss_bbox"] = 5.0 * (1 - ious_pos**2).sum() / num_total_samples
    else:
        losses["loss_cls"] = cls.sum() * 0
        losses["loss_bbox"] = bboxes.sum() * 0
    if use_l1:
        if num_pos > 0:
            l1_targets = torch.cat(l1_targets, 0)
            losses["loss_l1"] = 1.0 * torch.abs(reg.view(-1, 4)[pos_masks] - l1_targets).sum() / num_total_samples
        else:
            losses["loss_l1"] = reg.sum() * 0
    return losses, assigned, ious


def batched_nms(boxes, scores, idxs, iou_threshold):
    """mmcv.ops.batched_nms(class_agnostic False) below split_thr: the kept indices, by score."""
    max_coordinate = boxes.max()
    offsets = idxs.to(boxes) * (max_coordinate + torch.tensor(1).to(boxes))
    boxes_for_nms = boxes + offsets[:, None]
    return torchvision.ops.nms(boxes_for_nms, scores, iou_threshold)


def predict_by_feat(cls_scores, bbox_preds, objectnesses, strides, score_thr):
    priors = torch.cat(grid_priors([c.shape[2:] for c in cls_scores], strides, cls_scores[0].dtype))
    cls, reg, obj = flatten(cls_scores, bbox_preds, objectnesses)
    cls, obj = cls.sigmoid(), obj.sigmoid()
    bboxes = bbox_decode(priors, reg)
    results = []
    for img_id in range(cls.shape[0]):
        max_scores, labels = torch.max(cls[img_id], 1)
        valid_mask = obj[img_id] * max_scores >= score_thr
        b = bboxes[img_id][valid_mask]
        s = max_scores[valid_mask] * obj[img_id][valid_mask]
        lab = labels[valid_mask]
        if b.numel() > 0:
            keep = batched_nms(b, s, lab, NMS_IOU)
            b, s, lab = b[keep], s[keep], lab[keep]
        results.append((b, s, lab))
    return results


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: %s IN.safetensors OUT.safetensors" % os.path.basename(sys.argv[0]))
    inputs = read_safetensors(sys.argv[1])
    out = {}
    for case in sorted(k[:-len(".num_images")] for k in inputs if k.endswith(".num_images")):
        num_images = int(inputs[case + ".num_images"][0])
        strides = [int(s) for s in inputs[case + ".strides"]]
        levels = range(len(strides))
        gt_boxes = [inputs["%s.gt_boxes.%d" % (case, i)].float().reshape(-1, 4) for i in range(num_images)]
        gt_labels = [inputs["%s.gt_labels.%d" % (case, i)].long().reshape(-1) for i in range(num_images)]

        def head(requires_grad):
            return [[inputs["%s.%s.%d" % (case, part, l)].clone().requires_grad_(requires_grad) for l in levels]
                    for part in ("cls", "reg", "obj")]

        cls_scores, bbox_preds, objectnesses = head(False)
        priors = torch.cat(grid_priors([c.shape[2:] for c in cls_scores], strides, cls_scores[0].dtype))
        out[case + ".priors"] = priors
        out[case + ".decoded"] = bbox_decode(priors, flatten(cls_scores, bbox_preds, objectnesses)[1])

        for mode, use_l1 in (("l1_off", False), ("l1_on", True)):
            parts = head(True)
            losses, assigned, ious = loss_by_feat(*parts, strides, gt_boxes, gt_labels, use_l1)
            for name, loss in losses.items():
                key = "%s.%s.%s" % (case, mode, name)
                out[key] = loss.detach().reshape(1)
                flat_inputs = [t for part in parts for t in part]
                grads = torch.autograd.grad(loss, flat_inputs, retain_graph=True, allow_unused=True)
                for k, (part, l) in enumerate((p, l) for p in ("cls", "reg", "obj") for l in levels):
                    g = grads[k] if grads[k] is not None else torch.zeros_like(flat_inputs[k])
                    out["%s.grad.%s.%d" % (key, part, l)] = g
            if not use_l1:
                for i in range(num_images):
                    out["%s.assign.%d.gt" % (case, i)] = assigned[i]
                    out["%s.assign.%d.iou" % (case, i)] = ious[i]

        with torch.no_grad():
            for tag, thr in THRESHOLDS.items():
                for i, (b, s, lab) in enumerate(predict_by_feat(cls_scores, bbox_preds, objectnesses, strides, thr)):
                    prefix = "%s.det.%s.%d." % (case, tag, i)
                    out[prefix + "boxes"] = b.reshape(-1, 4)
                    out[prefix + "scores"] = s
                    out[prefix + "labels"] = lab
    write_safetensors(sys.argv[2], out)


if __name__ == "__main__":
    main()
