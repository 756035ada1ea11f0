"""Independent reference for the C++ YOLOv3-MobileNetV2 parity test (tests/models/test_yolov3.cpp).

Plain-torch transcription of mmdet 3.x as configs/yolo/yolov3_mobilenetv2_8xb24-320-300e_coco.py
builds it: backbones/mobilenet_v2.py (MobileNetV2, out_indices (2, 4, 6), LeakyReLU 0.1) with
layers/inverted_residual.py (expand_conv / depthwise_conv / linear_conv ConvModules),
necks/yolo_neck.py (YOLOV3Neck, DetectionBlock), dense_heads/yolo_head.py (YOLOV3Head:
forward, predict_by_feat, loss_by_feat, _get_targets_single, responsible_flags), the
YOLOAnchorGenerator (task_modules/prior_generators/anchor_generator.py), GridAssigner
(pos 0.5, neg 0.5, min_pos_iou 0, gt_max_assign_all), PseudoSampler, YOLOBBoxCoder,
CrossEntropyLoss(use_sigmoid, reduction 'sum') / MSELoss(reduction 'sum') with the config's
loss weights 1, 1, 2, 2, filter_scores_and_topk, BaseDenseHead._bbox_post_process and
mmcv's batched_nms (the coordinate trick, then nms; torchvision.ops.nms is mmcv's nms with
offset 0). mmcv ConvModule = conv (no bias) + bn (BatchNorm2d eps 1e-5, momentum 0.1) + act.

Usage: /usr/bin/python3 yolov3_reference.py DIR CASE [CASE ...]. Per CASE, DIR/CASE holds
config.json, weights.safetensors, inputs.safetensors; writes outputs.safetensors.
  kind "network": config num_classes; weights = the full state_dict (loaded strictly);
    inputs images [B, 3, H, W], gt_boxes_<i> [n, 4], gt_labels_<i> [n].
    outputs eval_<l> (eval-mode raw head outputs, l = 0, 1, 2 for strides 32, 16, 8),
    train_<l> (train-mode outputs), train_loss_<name> (loss_by_feat on the train-mode
    outputs, summed over levels) and after_<state name> for the BN buffers listed in
    config "buffers", read after that one train-mode forward.
  kind "head": config num_classes, option sets "options" (list of test_cfg dicts);
    inputs pred_<l> [B, 3 * (5 + C), H_l, W_l], gt_boxes_<i>, gt_labels_<i>.
    outputs loss_<name> (summed over levels), grad_<l> (gradient of loss_cls + 2 loss_conf +
    3 loss_xy + 4 loss_wh w.r.t. pred_<l>), target_<l> [B, n_l, 5 + C] and neg_<l> [B, n_l]
    (float), and for option set k and image i: det<k>_boxes_<i>, det<k>_scores_<i>,
    det<k>_labels_<i>.
"""
import json
import os
import sys

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from safetensors_io import read_safetensors, write_safetensors
from mmdet_boxes import bbox_overlaps

STRIDES = [32, 16, 8]
BASE_SIZES = [[(220, 125), (128, 222), (264, 266)],
              [(35, 87), (102, 96), (60, 170)],
              [(10, 15), (24, 36), (72, 42)]]
LOSS_NAMES = ["loss_cls", "loss_conf", "loss_xy", "loss_wh"]


# ---------------------------------------------------------------- network

class ConvModule(nn.Module):
    def __init__(self, cin, cout, k, stride=1, groups=1, act=True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1)
        self.act = act

    def forward(self, x):
        x = self.bn(self.conv(x))
        return F.leaky_relu(x, 0.1) if self.act else x


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, mid, stride, with_expand_conv):
        super().__init__()
        self.with_res_shortcut = stride == 1 and cin == cout
        self.with_expand_conv = with_expand_conv
        if with_expand_conv:
            self.expand_conv = ConvModule(cin, mid, 1)
        self.depthwise_conv = ConvModule(mid, mid, 3, stride, groups=mid)
        self.linear_conv = ConvModule(mid, cout, 1, act=False)

    def forward(self, x):
        out = self.expand_conv(x) if self.with_expand_conv else x
        out = self.linear_conv(self.depthwise_conv(out))
        return x + out if self.with_res_shortcut else out


class MobileNetV2(nn.Module):
    arch_settings = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1],
                     [6, 160, 3, 2], [6, 320, 1, 1]]

    def __init__(self, out_indices=(2, 4, 6)):
        super().__init__()
        self.out_indices = out_indices
        self.in_channels = 32  # make_divisible(32 * 1.0, 8)
        self.conv1 = ConvModule(3, 32, 3, stride=2)
        self.layers = []
        for i, (expand, channel, num_blocks, stride) in enumerate(self.arch_settings):
            blocks = []
            for j in range(num_blocks):
                blocks.append(InvertedResidual(self.in_channels, channel, int(round(self.in_channels * expand)),
                                               stride if j == 0 else 1, expand != 1))
                self.in_channels = channel
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
            self.layers.append(f"layer{i + 1}")
        self.add_module("conv2", ConvModule(self.in_channels, 1280, 1))
        self.layers.append("conv2")

    def forward(self, x):
        x = self.conv1(x)
        outs = []
        for i, name in enumerate(self.layers):
            x = getattr(self, name)(x)  # conv2 runs too; its output is unused
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)


class DetectionBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv1 = ConvModule(cin, cout, 1)
        self.conv2 = ConvModule(cout, 2 * cout, 3)
        self.conv3 = ConvModule(2 * cout, cout, 1)
        self.conv4 = ConvModule(cout, 2 * cout, 3)
        self.conv5 = ConvModule(2 * cout, cout, 1)

    def forward(self, x):
        return self.conv5(self.conv4(self.conv3(self.conv2(self.conv1(x)))))


class YOLOV3Neck(nn.Module):
    def __init__(self, in_channels=(320, 96, 32), out_channels=(96, 96, 96)):
        super().__init__()
        self.num_scales = len(in_channels)
        self.detect1 = DetectionBlock(in_channels[0], out_channels[0])
        for i in range(1, self.num_scales):
            self.add_module(f"conv{i}", ConvModule(out_channels[i - 1], out_channels[i], 1))
            self.add_module(f"detect{i + 1}", DetectionBlock(in_channels[i] + out_channels[i], out_channels[i]))

    def forward(self, feats):
        outs = []
        out = self.detect1(feats[-1])
        outs.append(out)
        for i, x in enumerate(reversed(feats[:-1])):
            tmp = getattr(self, f"conv{i + 1}")(out)
            tmp = F.interpolate(tmp, scale_factor=2)
            tmp = torch.cat((tmp, x), 1)
            out = getattr(self, f"detect{i + 2}")(tmp)
            outs.append(out)
        return tuple(outs)


class YOLOV3HeadNet(nn.Module):
    def __init__(self, num_classes, channels=(96, 96, 96)):
        super().__init__()
        self.convs_bridge = nn.ModuleList([ConvModule(c, c, 3) for c in channels])
        self.convs_pred = nn.ModuleList([nn.Conv2d(c, 3 * (5 + num_classes), 1) for c in channels])

    def forward(self, feats):
        return [pred(bridge(x)) for x, bridge, pred in zip(feats, self.convs_bridge, self.convs_pred)]


class YOLOV3(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.backbone = MobileNetV2()
        self.neck = YOLOV3Neck()
        self.bbox_head = YOLOV3HeadNet(num_classes)

    def forward(self, images):
        return self.bbox_head(self.neck(self.backbone(images)))


# ---------------------------------------------------------------- priors, coder

def grid_priors(featmap_sizes):
    """YOLOAnchorGenerator.grid_priors: per level [H * W * 3, 4], cell-major then anchor."""
    out = []
    for (h, w), stride, sizes in zip(featmap_sizes, STRIDES, BASE_SIZES):
        cx = cy = stride / 2.
        base = torch.stack([torch.Tensor([cx - 0.5 * bw, cy - 0.5 * bh, cx + 0.5 * bw, cy + 0.5 * bh])
                            for bw, bh in sizes])
        shift_x = torch.arange(0, w).to(torch.float32) * stride
        shift_y = torch.arange(0, h).to(torch.float32) * stride
        xx = shift_x.repeat(len(shift_y))
        yy = shift_y.view(-1, 1).repeat(1, len(shift_x)).view(-1)
        shifts = torch.stack([xx, yy, xx, yy], dim=-1)
        out.append((base[None, :, :] + shifts[:, None, :]).view(-1, 4))
    return out


def responsible_flags(featmap_sizes, gt_bboxes):
    flags = []
    for (feat_h, feat_w), stride in zip(featmap_sizes, STRIDES):
        gt_cx = (gt_bboxes[:, 0] + gt_bboxes[:, 2]) * 0.5
        gt_cy = (gt_bboxes[:, 1] + gt_bboxes[:, 3]) * 0.5
        gt_grid_x = torch.floor(gt_cx / stride).long()
        gt_grid_y = torch.floor(gt_cy / stride).long()
        idx = gt_grid_y * feat_w + gt_grid_x
        grid = torch.zeros(feat_h * feat_w, dtype=torch.uint8)
        grid[idx] = 1
        flags.append(grid[:, None].expand(grid.size(0), 3).contiguous().view(-1))
    return flags


def encode(bboxes, gt_bboxes, stride, eps=1e-6):
    x_center_gt = (gt_bboxes[..., 0] + gt_bboxes[..., 2]) * 0.5
    y_center_gt = (gt_bboxes[..., 1] + gt_bboxes[..., 3]) * 0.5
    w_gt = gt_bboxes[..., 2] - gt_bboxes[..., 0]
    h_gt = gt_bboxes[..., 3] - gt_bboxes[..., 1]
    x_center = (bboxes[..., 0] + bboxes[..., 2]) * 0.5
    y_center = (bboxes[..., 1] + bboxes[..., 3]) * 0.5
    w = bboxes[..., 2] - bboxes[..., 0]
    h = bboxes[..., 3] - bboxes[..., 1]
    w_target = torch.log((w_gt / w).clamp(min=eps))
    h_target = torch.log((h_gt / h).clamp(min=eps))
    x_center_target = ((x_center_gt - x_center) / stride + 0.5).clamp(eps, 1 - eps)
    y_center_target = ((y_center_gt - y_center) / stride + 0.5).clamp(eps, 1 - eps)
    return torch.stack([x_center_target, y_center_target, w_target, h_target], dim=-1)


def decode(bboxes, pred_bboxes, stride):
    xy_centers = (bboxes[..., :2] + bboxes[..., 2:]) * 0.5 + (pred_bboxes[..., :2] - 0.5) * stride
    whs = (bboxes[..., 2:] - bboxes[..., :2]) * 0.5 * pred_bboxes[..., 2:].exp()
    return torch.stack((xy_centers[..., 0] - whs[..., 0], xy_centers[..., 1] - whs[..., 1],
                        xy_centers[..., 0] + whs[..., 0], xy_centers[..., 1] + whs[..., 1]), dim=-1)


# ---------------------------------------------------------------- assignment, targets, losses

def grid_assign(priors, flags, gt_bboxes, pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0.):
    num_gts, num_priors = gt_bboxes.size(0), priors.size(0)
    overlaps = bbox_overlaps(gt_bboxes, priors)
    assigned = overlaps.new_full((num_priors,), -1, dtype=torch.long)
    if num_gts == 0:
        assigned[:] = 0
        return assigned
    max_overlaps, argmax_overlaps = overlaps.max(dim=0)
    assigned[(max_overlaps >= 0) & (max_overlaps <= neg_iou_thr)] = 0
    overlaps[:, ~flags.type(torch.bool)] = -1.
    max_overlaps, argmax_overlaps = overlaps.max(dim=0)
    gt_max_overlaps, gt_argmax_overlaps = overlaps.max(dim=1)
    pos_inds = (max_overlaps > pos_iou_thr) & flags.type(torch.bool)
    assigned[pos_inds] = argmax_overlaps[pos_inds] + 1
    for i in range(num_gts):  # gt_max_assign_all
        if gt_max_overlaps[i] > min_pos_iou:
            max_iou_inds = (overlaps[i, :] == gt_max_overlaps[i]) & flags.type(torch.bool)
            assigned[max_iou_inds] = i + 1
    return assigned


def get_targets_single(anchors, flags, gt_bboxes, gt_labels, num_classes):
    strides = torch.cat([torch.tensor(s).repeat(len(a)) for s, a in zip(STRIDES, anchors)])
    concat_anchors = torch.cat(anchors)
    concat_flags = torch.cat(flags)
    assigned = grid_assign(concat_anchors, concat_flags, gt_bboxes)
    # PseudoSampler
    pos_inds = torch.nonzero(assigned > 0, as_tuple=False).squeeze(-1).unique()
    neg_inds = torch.nonzero(assigned == 0, as_tuple=False).squeeze(-1).unique()
    pos_assigned_gt_inds = assigned[pos_inds] - 1
    target_map = concat_anchors.new_zeros(concat_anchors.size(0), 5 + num_classes)
    if len(pos_inds) > 0:
        target_map[pos_inds, :4] = encode(concat_anchors[pos_inds], gt_bboxes[pos_assigned_gt_inds],
                                          strides[pos_inds])
    target_map[pos_inds, 4] = 1
    one_hot = F.one_hot(gt_labels, num_classes=num_classes).float()
    target_map[pos_inds, 5:] = one_hot[pos_assigned_gt_inds]
    neg_map = concat_anchors.new_zeros(concat_anchors.size(0), dtype=torch.uint8)
    neg_map[neg_inds] = 1
    return target_map, neg_map


def get_targets(pred_maps, gts, num_classes):
    featmap_sizes = [p.shape[-2:] for p in pred_maps]
    anchors = grid_priors(featmap_sizes)
    targets, negs = [], []
    for boxes, labels in gts:
        t, n = get_targets_single(anchors, responsible_flags(featmap_sizes, boxes), boxes, labels, num_classes)
        targets.append(t)
        negs.append(n)
    targets, negs = torch.stack(targets), torch.stack(negs)  # images_to_levels
    out_t, out_n, start = [], [], 0
    for a in anchors:
        out_t.append(targets[:, start:start + len(a)])
        out_n.append(negs[:, start:start + len(a)])
        start += len(a)
    return out_t, out_n


def weighted_sum(loss, weight, loss_weight):
    """CrossEntropyLoss / MSELoss with reduction 'sum': loss * weight, summed, times loss_weight."""
    return loss_weight * (loss * weight).sum()


def loss_by_feat_single(pred_map, target_map, neg_map, num_classes):
    num_imgs = len(pred_map)
    pred_map = pred_map.permute(0, 2, 3, 1).reshape(num_imgs, -1, 5 + num_classes)
    neg_mask = neg_map.float()
    pos_mask = target_map[..., 4]
    pos_and_neg_mask = neg_mask + pos_mask
    pos_mask = pos_mask.unsqueeze(dim=-1)
    if torch.max(pos_and_neg_mask) > 1.:
        pos_and_neg_mask = pos_and_neg_mask.clamp(min=0., max=1.)
    bce = lambda p, t: F.binary_cross_entropy_with_logits(p, t, reduction="none")  # noqa: E731
    loss_cls = weighted_sum(bce(pred_map[..., 5:], target_map[..., 5:]), pos_mask, 1.0)
    loss_conf = weighted_sum(bce(pred_map[..., 4], target_map[..., 4]), pos_and_neg_mask, 1.0)
    loss_xy = weighted_sum(bce(pred_map[..., :2], target_map[..., :2]), pos_mask, 2.0)
    loss_wh = weighted_sum(F.mse_loss(pred_map[..., 2:4], target_map[..., 2:4], reduction="none"), pos_mask, 2.0)
    return loss_cls, loss_conf, loss_xy, loss_wh


def loss_by_feat(pred_maps, gts, num_classes):
    targets, negs = get_targets(pred_maps, gts, num_classes)
    per_level = [loss_by_feat_single(p, t, n, num_classes) for p, t, n in zip(pred_maps, targets, negs)]
    losses = {}
    for k, name in enumerate(LOSS_NAMES):
        total = per_level[0][k]
        for level in per_level[1:]:
            total = total + level[k]
        losses[name] = total
    return losses, targets, negs


# ---------------------------------------------------------------- post-processing

def filter_scores_and_topk(scores, score_thr, topk):
    valid_mask = scores > score_thr
    scores = scores[valid_mask]
    valid_idxs = torch.nonzero(valid_mask)
    num_topk = min(topk, valid_idxs.size(0))
    scores, idxs = scores.sort(descending=True)
    scores = scores[:num_topk]
    topk_idxs = valid_idxs[idxs[:num_topk]]
    keep_idxs, labels = topk_idxs.unbind(dim=1)
    return scores, labels, keep_idxs


def batched_nms(boxes, scores, idxs, iou_threshold):
    """mmcv.ops.batched_nms (class-aware, fewer than split_thr boxes): offsets by label * (max + 1)."""
    max_coordinate = boxes.max()
    offsets = idxs.to(boxes) * (max_coordinate + torch.tensor(1).to(boxes))
    keep = torchvision.ops.nms(boxes + offsets[:, None], scores, iou_threshold)
    return keep


def predict_by_feat(pred_maps, num_classes, cfg):
    num_imgs = pred_maps[0].size(0)
    featmap_sizes = [p.shape[-2:] for p in pred_maps]
    mlvl_anchors = grid_priors(featmap_sizes)
    flatten_preds, flatten_strides = [], []
    for pred, stride in zip(pred_maps, STRIDES):
        pred = pred.permute(0, 2, 3, 1).reshape(num_imgs, -1, 5 + num_classes)
        pred[..., :2].sigmoid_()
        flatten_preds.append(pred)
        flatten_strides.append(pred.new_tensor(stride).expand(pred.size(1)))
    flatten_preds = torch.cat(flatten_preds, dim=1)
    flatten_bbox_preds = flatten_preds[..., :4]
    flatten_objectness = flatten_preds[..., 4].sigmoid()
    flatten_cls_scores = flatten_preds[..., 5:].sigmoid()
    flatten_anchors = torch.cat(mlvl_anchors)
    flatten_strides = torch.cat(flatten_strides)
    flatten_bboxes = decode(flatten_anchors, flatten_bbox_preds, flatten_strides.unsqueeze(-1))
    results = []
    for bboxes, scores, objectness in zip(flatten_bboxes, flatten_cls_scores, flatten_objectness):
        conf_thr = cfg.get("conf_thr", -1)
        if conf_thr > 0:
            conf_inds = objectness >= conf_thr
            bboxes, scores, objectness = bboxes[conf_inds, :], scores[conf_inds, :], objectness[conf_inds]
        scores, labels, keep_idxs = filter_scores_and_topk(scores, cfg.get("score_thr", 0), cfg.get("nms_pre", -1))
        bboxes, score_factors = bboxes[keep_idxs], objectness[keep_idxs]
        # _bbox_post_process (rescale=False: boxes stay in input pixels)
        scores = scores * score_factors
        if cfg.get("min_bbox_size", -1) >= 0:
            w, h = bboxes[:, 2] - bboxes[:, 0], bboxes[:, 3] - bboxes[:, 1]
            valid = (w > cfg["min_bbox_size"]) & (h > cfg["min_bbox_size"])
            if not valid.all():
                bboxes, scores, labels = bboxes[valid], scores[valid], labels[valid]
        if bboxes.numel() > 0:
            keep = batched_nms(bboxes, scores, labels, cfg["nms_iou"])
            bboxes, scores, labels = bboxes[keep], scores[keep], labels[keep]
            m = cfg["max_per_img"]
            bboxes, scores, labels = bboxes[:m], scores[:m], labels[:m]
        results.append((bboxes, scores, labels))
    return results


# ---------------------------------------------------------------- cases

def ground_truths(inputs, num_imgs):
    return [(inputs[f"gt_boxes_{i}"].float().reshape(-1, 4), inputs[f"gt_labels_{i}"].long().reshape(-1))
            for i in range(num_imgs)]


def run_network(config, weights, inputs):
    model = YOLOV3(config["num_classes"])
    model.load_state_dict(weights, strict=True)
    images = inputs["images"]
    out = {}
    model.eval()
    with torch.no_grad():
        for l, o in enumerate(model(images)):
            out[f"eval_{l}"] = o
    model.train()
    train = model(images)
    for l, o in enumerate(train):
        out[f"train_{l}"] = o.detach()
    losses, _, _ = loss_by_feat(train, ground_truths(inputs, images.size(0)), config["num_classes"])
    for name, value in losses.items():
        out[f"train_{name}"] = value.detach().reshape(1)
    state = model.state_dict()
    for name in config["buffers"]:
        out[f"after_{name}"] = state[name].clone()
    out["num_parameters"] = torch.tensor([sum(p.numel() for p in YOLOV3(80).parameters())], dtype=torch.int64)
    return out


def run_head(config, inputs):
    num_classes = config["num_classes"]
    preds = [inputs[f"pred_{l}"].clone().requires_grad_(True) for l in range(3)]
    num_imgs = preds[0].size(0)
    losses, targets, negs = loss_by_feat(preds, ground_truths(inputs, num_imgs), num_classes)
    out = {}
    for name, value in losses.items():
        out[name] = value.detach().reshape(1)
    (losses["loss_cls"] + 2 * losses["loss_conf"] + 3 * losses["loss_xy"] + 4 * losses["loss_wh"]).backward()
    for l in range(3):
        out[f"grad_{l}"] = preds[l].grad
        out[f"target_{l}"] = targets[l]
        out[f"neg_{l}"] = negs[l].float()
    for k, cfg in enumerate(config["options"]):
        with torch.no_grad():
            dets = predict_by_feat([inputs[f"pred_{l}"].clone() for l in range(3)], num_classes, cfg)
        for i, (boxes, scores, labels) in enumerate(dets):
            out[f"det{k}_boxes_{i}"] = boxes.reshape(-1, 4)
            out[f"det{k}_scores_{i}"] = scores.reshape(-1)
            out[f"det{k}_labels_{i}"] = labels.reshape(-1).to(torch.int64)
    return out


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: %s DIR CASE [CASE ...]" % os.path.basename(sys.argv[0]))
    torch.set_num_threads(1)
    for case in sys.argv[2:]:
        folder = os.path.join(sys.argv[1], case)
        with open(os.path.join(folder, "config.json")) as f:
            config = json.load(f)
        inputs = read_safetensors(os.path.join(folder, "inputs.safetensors"))
        if config["kind"] == "network":
            out = run_network(config, read_safetensors(os.path.join(folder, "weights.safetensors")), inputs)
        elif config["kind"] == "head":
            out = run_head(config, inputs)
        else:
            sys.exit("unknown case kind " + config["kind"])
        write_safetensors(os.path.join(folder, "outputs.safetensors"), out)


if __name__ == "__main__":
    main()
