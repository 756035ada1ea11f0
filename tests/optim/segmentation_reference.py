"""Reference values for tests/optim/test_segmentation.cpp.

usage: /usr/bin/python3 segmentation_reference.py IN.safetensors OUT.safetensors

A transcription of AutoMM's semantic segmentation metrics
(optim/metrics/semantic_seg_metrics.py: the torchmetrics wrappers Binary_IoU,
Balanced_Error_Rate, Multiclass_IoU and the numpy SOD metrics behind SM, EM, FM
and MAE), of its StructureLoss, of its multi-class semantic inference, and of
Hugging Face's Mask2FormerLoss with its Hungarian matcher, run with Debian's
torch, numpy and scipy (scipy.optimize.linear_sum_assignment,
scipy.ndimage.distance_transform_edt and convolve are the real ones).

torchmetrics is not in Debian: Binary_IoU and Balanced_Error_Rate are written
out from torchmetrics 1.x (binary JaccardIndex at threshold 0.5 with 0 for an
empty union; multiclass Accuracy, 2 classes, macro, samplewise, classes with
tp + fp + fn == 0 left out of the mean). Every metric runs in float64 here
(AutoMM runs them on float32 tensors).

Inputs (names in IN):
  binary.prob, binary.gt              [N, H, W] float64
  multiclass.scores                   [N, K, H, W] float32, multiclass.target [N, H, W] int64
  structure.logits, structure.gt      [N, 1, H, W] float32
  m2f.<case>.masks / .classes         [N, T, H, W] / [N, T, K + 1] float32
  m2f.<case>.mask_labels.<i>          [G_i, H, W] float32, .class_labels.<i> [G_i] int64
  m2f.<case>.options                  [num_points, oversample_ratio, importance_sample_ratio] float64
  m2f.<case>.points.matcher / .oversampled / .random   the random points, or
  m2f.<case>.seed                     [1] int64: draw them with torch.manual_seed(seed) as HF does
  lsa.<name>                          [R, C] float64 cost matrices
Outputs (float64 values travel as their int64 bit patterns, "<name>.f64"):
  binary.<metric>.f64                 [N + 1]: each image alone, then the batch
  multiclass.iou.f64                  [1]
  structure.loss, structure.grad      float32
  m2f.<case>.{loss, cross_entropy, mask, dice, grad_masks, grad_classes, semantic}
  lsa.<name>.rows / .cols int64, lsa.<name>.cost.f64 [1]
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import convolve
from scipy.ndimage import distance_transform_edt as bwdist
from scipy.optimize import linear_sum_assignment

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models"))
from safetensors_io import read_safetensors, write_safetensors  # noqa: E402

EPS = np.spacing(1)


def f64(values):
    """float64 values as an int64 tensor of their bit patterns (write_safetensors keeps int64 exact)."""
    array = np.ascontiguousarray(np.asarray(values, dtype=np.float64).reshape(-1))
    return torch.from_numpy(array.view(np.int64))


# ---- AutoMM's SOD metrics (semantic_seg_metrics.py), per image.

def prepare_data(pred, gt):
    gt = gt > 128
    pred = pred / 255
    if pred.max() != pred.min():
        pred = (pred - pred.min()) / (pred.max() - pred.min())
    return pred, gt


def s_measure(pred, gt, alpha=0.5):
    def s_object(p, g):
        x = np.mean(p[g == 1])
        sigma_x = np.std(p[g == 1], ddof=1)
        return 2 * x / (np.power(x, 2) + 1 + sigma_x + EPS)

    def ssim(p, g):
        h, w = p.shape
        n = h * w
        x, y = np.mean(p), np.mean(g)
        sigma_x = np.sum((p - x) ** 2) / (n - 1)
        sigma_y = np.sum((g - y) ** 2) / (n - 1)
        sigma_xy = np.sum((p - x) * (g - y)) / (n - 1)
        a = 4 * x * y * sigma_xy
        b = (x ** 2 + y ** 2) * (sigma_x + sigma_y)
        if a != 0:
            return a / (b + EPS)
        if a == 0 and b == 0:
            return 1
        return 0

    def region(p, g):
        h, w = g.shape
        if np.count_nonzero(g) == 0:
            x, y = np.round(w / 2), np.round(h / 2)
        else:
            y, x = np.argwhere(g).mean(axis=0).round()
        x, y = int(x) + 1, int(y) + 1
        area = h * w
        w1 = x * y / area
        w2 = y * (w - x) / area
        w3 = (h - y) * x / area
        w4 = 1 - w1 - w2 - w3
        return (w1 * ssim(p[0:y, 0:x], g[0:y, 0:x]) + w2 * ssim(p[0:y, x:w], g[0:y, x:w]) +
                w3 * ssim(p[y:h, 0:x], g[y:h, 0:x]) + w4 * ssim(p[y:h, x:w], g[y:h, x:w]))

    pred, gt = prepare_data(pred, gt)
    y = np.mean(gt)
    if y == 0:
        return 1 - np.mean(pred)
    if y == 1:
        return np.mean(pred)
    u = np.mean(gt)
    obj = u * s_object(pred * gt, gt) + (1 - u) * s_object((1 - pred) * (1 - gt), 1 - gt)
    sm = alpha * obj + (1 - alpha) * region(pred, gt)
    return max(0, sm)


def e_measure_curve(pred, gt):
    pred, gt = prepare_data(pred, gt)
    gt_fg_numel = np.count_nonzero(gt)
    gt_size = gt.shape[0] * gt.shape[1]
    pred = (pred * 255).astype(np.uint8)
    bins = np.linspace(0, 256, 257)
    fg_fg_hist, _ = np.histogram(pred[gt], bins=bins)
    fg_bg_hist, _ = np.histogram(pred[~gt], bins=bins)
    fg_fg = np.cumsum(np.flip(fg_fg_hist), axis=0)
    fg_bg = np.cumsum(np.flip(fg_bg_hist), axis=0)
    pred_fg = fg_fg + fg_bg
    pred_bg = gt_size - pred_fg
    if gt_fg_numel == 0:
        enhanced = pred_bg
    elif gt_fg_numel == gt_size:
        enhanced = pred_fg
    else:
        bg_fg = gt_fg_numel - fg_fg
        bg_bg = pred_bg - bg_fg
        parts = [fg_fg, fg_bg, bg_fg, bg_bg]
        mean_pred = pred_fg / gt_size
        mean_gt = gt_fg_numel / gt_size
        combinations = [(1 - mean_pred, 1 - mean_gt), (1 - mean_pred, 0 - mean_gt),
                        (0 - mean_pred, 1 - mean_gt), (0 - mean_pred, 0 - mean_gt)]
        results = np.empty(shape=(4, 256), dtype=np.float64)
        for i, (part, (a, b)) in enumerate(zip(parts, combinations)):
            align = 2 * (a * b) / (a ** 2 + b ** 2 + EPS)
            results[i] = (align + 1) ** 2 / 4 * part
        enhanced = results.sum(axis=0)
    return enhanced / (gt_size - 1 + EPS)


def gauss_7x7(sigma=5):
    m = n = 3.0
    y, x = np.ogrid[-m:m + 1, -n:n + 1]
    h = np.exp(-(x * x + y * y) / (2 * sigma * sigma))
    h[h < np.finfo(h.dtype).eps * h.max()] = 0
    if h.sum() != 0:
        h /= h.sum()
    return h


def weighted_f_measure(pred, gt, beta=0.3):
    pred, gt = prepare_data(pred, gt)
    if np.all(~gt):
        return 0
    dst, idxt = bwdist(gt == 0, return_indices=True)
    e = np.abs(pred - gt)
    et = np.copy(e)
    et[gt == 0] = et[idxt[0][gt == 0], idxt[1][gt == 0]]
    ea = convolve(et, weights=gauss_7x7(), mode="constant", cval=0)
    min_e_ea = np.where(gt & (ea < e), ea, e)
    b = np.where(gt == 0, 2 - np.exp(np.log(0.5) / 5 * dst), np.ones_like(gt))
    ew = min_e_ea * b
    tpw = np.sum(gt) - np.sum(ew[gt == 1])
    fpw = np.sum(ew[gt == 0])
    r = 1 - np.mean(ew[gt == 1])
    p = tpw / (tpw + fpw + EPS)
    return (1 + beta) * r * p / (r + beta * p + EPS)


def mae(pred, gt):
    pred, gt = prepare_data(pred, gt)
    return np.mean(np.abs(pred - gt))


def sod_metric(name, prob, gt):
    """AutoMM's SM / EM / FM / MAE wrappers: labels and logits times 255, per image, averaged."""
    values = []
    for i in range(prob.shape[0]):
        true, pred = gt[i].numpy() * 255, prob[i].numpy() * 255
        if name == "sm":
            values.append(s_measure(pred, true))
        elif name == "em":
            values.append(e_measure_curve(pred, true))
        elif name == "fm":
            values.append(weighted_f_measure(pred, true))
        else:
            values.append(mae(pred, true))
    if name == "em":
        return np.mean(np.array(values, dtype=np.float64), axis=0).mean()
    return np.mean(np.array(values, dtype=np.float64))


# ---- The torchmetrics wrappers, written out in float64.

def binary_iou(prob, gt):
    values = []
    for p, g in zip(prob, gt):
        p, g = p > 0.5, g > 0.5
        tp = (p & g).sum().item()
        union = tp + (p & ~g).sum().item() + (~p & g).sum().item()
        values.append(tp / union if union else 0.0)
    return np.mean(np.array(values, dtype=np.float64))


def balanced_error_rate(prob, gt):
    labels = (gt * 255) > 125
    logits = (prob * 255) > 125
    values = []
    for p, g in zip(logits, labels):
        scores, weights = [], []
        for c in (True, False):
            tp = ((p == c) & (g == c)).sum().item()
            fn = ((p != c) & (g == c)).sum().item()
            fp = ((p == c) & (g != c)).sum().item()
            scores.append(tp / (tp + fn) if tp + fn else 0.0)
            weights.append(0.0 if tp + fp + fn == 0 else 1.0)
        accuracy = sum(w * s for w, s in zip(weights, scores)) / sum(weights)
        values.append(1 - accuracy)
    return np.mean(np.array(values, dtype=np.float64))


def multiclass_iou(scores, target, num_classes):
    """Multiclass_IoU_Pred, updated one image at a time as AutoMM's evaluate does (float64 counts)."""
    total_inter = torch.zeros(num_classes, dtype=torch.float64)
    total_union = torch.zeros(num_classes, dtype=torch.float64)
    for output, labels in zip(scores, target):
        output, labels = output.unsqueeze(0), labels.unsqueeze(0)
        predict = torch.argmax(output, 1) + 1
        labels = labels.double() + 1
        predict = predict.double() * (labels > 0).double()
        intersection = predict * (predict == labels).double()
        area_inter = torch.histc(intersection, bins=num_classes, min=1, max=num_classes)
        area_pred = torch.histc(predict, bins=num_classes, min=1, max=num_classes)
        area_lab = torch.histc(labels, bins=num_classes, min=1, max=num_classes)
        total_inter += area_inter
        total_union += area_pred + area_lab - area_inter
    return (1.0 * total_inter / (2.220446049250313e-16 + total_union)).mean().item()


# ---- AutoMM's StructureLoss.

def structure_loss(logits, target):
    weit = 1 + 5 * torch.abs(F.avg_pool2d(target, kernel_size=31, stride=1, padding=15) - target)
    wbce = F.binary_cross_entropy_with_logits(logits, target, reduce="none")
    wbce = (weit * wbce).sum(dim=(2, 3)) / weit.sum(dim=(2, 3))
    prob = torch.sigmoid(logits)
    inter = ((prob * target) * weit).sum(dim=(2, 3))
    union = ((prob + target) * weit).sum(dim=(2, 3))
    wiou = 1 - (inter + 1) / (union - inter + 1)
    return (wbce + wiou).mean()


# ---- Hugging Face's Mask2FormerLoss (modeling_mask2former.py) as AutoMM builds it.

def sample_point(features, coords):
    return F.grid_sample(features, 2.0 * coords.unsqueeze(2) - 1.0, align_corners=False).squeeze(3)


def pair_wise_sigmoid_ce(inputs, labels):
    hw = inputs.shape[1]
    pos = F.binary_cross_entropy_with_logits(inputs, torch.ones_like(inputs), reduction="none")
    neg = F.binary_cross_entropy_with_logits(inputs, torch.zeros_like(inputs), reduction="none")
    return torch.matmul(pos / hw, labels.T) + torch.matmul(neg / hw, (1 - labels).T)


def pair_wise_dice(inputs, labels):
    inputs = inputs.sigmoid().flatten(1)
    numerator = 2 * torch.matmul(inputs, labels.T)
    denominator = inputs.sum(-1)[:, None] + labels.sum(-1)[None, :]
    return 1 - (numerator + 1) / (denominator + 1)


class Points:
    """HF's torch.rand calls, answered from IN's points or from torch's generator."""

    def __init__(self, given=None):
        self.queue = list(given) if given is not None else None

    def rand(self, *shape):
        if self.queue is None:
            return torch.rand(*shape)
        points = self.queue.pop(0)
        assert list(points.shape) == list(shape), (points.shape, shape)
        return points


def mask2former_loss(masks, classes, mask_labels, class_labels, points, num_points=12544, oversample_ratio=3.0,
                     importance_sample_ratio=0.75, cost_class=1.0, cost_mask=5.0, cost_dice=5.0, eos_coef=0.1):
    """Mask2FormerLoss(Mask2FormerConfig(num_labels=K), weight_dict).forward: its dict of unweighted losses."""
    num_labels = classes.shape[-1] - 1
    # Mask2FormerHungarianMatcher.forward
    indices = []
    with torch.no_grad():
        for i in range(masks.shape[0]):
            pred_probs = classes[i].softmax(-1)
            pred_mask = masks[i]
            cost_c = -pred_probs[:, class_labels[i]]
            target_mask = mask_labels[i].to(pred_mask)[:, None]
            pred_mask = pred_mask[:, None]
            coords = points.rand(1, num_points, 2)
            target_mask = sample_point(target_mask, coords.repeat(target_mask.shape[0], 1, 1)).squeeze(1)
            pred_mask = sample_point(pred_mask, coords.repeat(pred_mask.shape[0], 1, 1)).squeeze(1)
            cost = (cost_mask * pair_wise_sigmoid_ce(pred_mask, target_mask) + cost_class * cost_c +
                    cost_dice * pair_wise_dice(pred_mask, target_mask))
            cost = torch.minimum(cost, torch.tensor(1e10))
            cost = torch.maximum(cost, torch.tensor(-1e10))
            cost = torch.nan_to_num(cost, 0)
            indices.append(linear_sum_assignment(cost.cpu()))
    indices = [(torch.as_tensor(i, dtype=torch.int64), torch.as_tensor(j, dtype=torch.int64)) for i, j in indices]
    num_masks = torch.clamp(torch.as_tensor(sum(len(c) for c in class_labels), dtype=torch.float), min=1)
    src_idx = (torch.cat([torch.full_like(s, i) for i, (s, _) in enumerate(indices)]),
               torch.cat([s for s, _ in indices]))
    tgt_idx = (torch.cat([torch.full_like(t, i) for i, (_, t) in enumerate(indices)]),
               torch.cat([t for _, t in indices]))
    # loss_masks
    pred_masks = masks[src_idx][:, None]
    max_g = max(m.shape[0] for m in mask_labels)
    padded = torch.zeros((len(mask_labels), max_g) + tuple(masks.shape[2:]), dtype=masks.dtype)
    for m, p in zip(mask_labels, padded):
        p[:m.shape[0]].copy_(m)
    target_masks = padded[tgt_idx][:, None]
    with torch.no_grad():
        num_boxes = pred_masks.shape[0]
        sampled = int(num_points * oversample_ratio)
        coords = points.rand(num_boxes, sampled, 2)
        uncertainty = -(torch.abs(sample_point(pred_masks, coords)))
        num_uncertain = int(importance_sample_ratio * num_points)
        num_random = num_points - num_uncertain
        idx = torch.topk(uncertainty[:, 0, :], k=num_uncertain, dim=1)[1]
        idx += sampled * torch.arange(num_boxes, dtype=torch.long)[:, None]
        coords = coords.view(-1, 2)[idx.view(-1), :].view(num_boxes, num_uncertain, 2)
        if num_random > 0:
            coords = torch.cat([coords, points.rand(num_boxes, num_random, 2)], dim=1)
        point_labels = sample_point(target_masks, coords).squeeze(1)
    point_logits = sample_point(pred_masks, coords).squeeze(1)
    point_ce = F.binary_cross_entropy_with_logits(point_logits, point_labels, reduction="none")
    loss_mask = point_ce.mean(1).sum() / num_masks
    probs = point_logits.sigmoid().flatten(1)
    numerator = 2 * (probs * point_labels).sum(-1)
    denominator = probs.sum(-1) + point_labels.sum(-1)
    loss_dice = (1 - (numerator + 1) / (denominator + 1)).sum() / num_masks
    # loss_labels
    empty_weight = torch.ones(num_labels + 1)
    empty_weight[-1] = eos_coef
    target_classes = torch.full(classes.shape[:2], fill_value=num_labels, dtype=torch.int64)
    target_classes[src_idx] = torch.cat([c[j] for c, (_, j) in zip(class_labels, indices)])
    loss_ce = torch.nn.CrossEntropyLoss(weight=empty_weight)(classes.transpose(1, 2), target_classes)
    return {"loss_mask": loss_mask, "loss_dice": loss_dice, "loss_cross_entropy": loss_ce}


def semantic_inference(masks, classes):
    """apply_multi_class_semantic_seg_postprocess, image by image."""
    out = []
    for mask_cls, mask_pred in zip(classes, masks):
        mask_cls = F.softmax(mask_cls, dim=-1)[..., :-1]
        out.append(torch.einsum("qc,qhw->chw", mask_cls, mask_pred.sigmoid()))
    return torch.stack(out, dim=0)


def run_mask2former(case, inputs, out):
    prefix = f"m2f.{case}."
    masks = inputs[prefix + "masks"].clone().requires_grad_(True)
    classes = inputs[prefix + "classes"].clone().requires_grad_(True)
    n = masks.shape[0]
    mask_labels = [inputs[f"{prefix}mask_labels.{i}"] for i in range(n)]
    class_labels = [inputs[f"{prefix}class_labels.{i}"] for i in range(n)]
    num_points, oversample_ratio, importance_sample_ratio = inputs[prefix + "options"].tolist()
    if prefix + "seed" in inputs:
        torch.manual_seed(int(inputs[prefix + "seed"][0]))
        points = Points()
    else:
        matcher = inputs[prefix + "points.matcher"]
        points = Points([matcher[i:i + 1] for i in range(n)] +
                        [inputs[prefix + "points.oversampled"], inputs[prefix + "points.random"]])
    losses = mask2former_loss(masks, classes, mask_labels, class_labels, points, int(num_points), oversample_ratio,
                              importance_sample_ratio)
    # AutoMM's _compute_loss: the dict's values summed as they are.
    loss = 0
    for v in losses.values():
        loss += v
    loss.backward()
    out[prefix + "loss"] = loss.detach()
    out[prefix + "cross_entropy"] = losses["loss_cross_entropy"].detach()
    out[prefix + "mask"] = losses["loss_mask"].detach()
    out[prefix + "dice"] = losses["loss_dice"].detach()
    out[prefix + "grad_masks"] = masks.grad
    out[prefix + "grad_classes"] = classes.grad
    out[prefix + "semantic"] = semantic_inference(masks.detach(), classes.detach())


def main():
    inputs = read_safetensors(sys.argv[1])
    out = {}

    prob, gt = inputs["binary.prob"], inputs["binary.gt"]
    binary = {"iou": binary_iou, "ber": balanced_error_rate}
    for name in ("iou", "ber", "sm", "em", "fm", "mae"):
        fn = binary.get(name, lambda p, g, name=name: sod_metric(name, p, g))
        values = [fn(prob[i:i + 1], gt[i:i + 1]) for i in range(prob.shape[0])] + [fn(prob, gt)]
        out[f"binary.{name}.f64"] = f64(values)

    scores, target = inputs["multiclass.scores"], inputs["multiclass.target"]
    out["multiclass.iou.f64"] = f64([multiclass_iou(scores, target, scores.shape[1])])

    logits = inputs["structure.logits"].clone().requires_grad_(True)
    loss = structure_loss(logits, inputs["structure.gt"])
    loss.backward()
    out["structure.loss"] = loss.detach()
    out["structure.grad"] = logits.grad

    for case in sorted({k.split(".")[1] for k in inputs if k.startswith("m2f.")}):
        run_mask2former(case, inputs, out)

    for name in sorted(k for k in inputs if k.startswith("lsa.")):
        cost = inputs[name].numpy()
        rows, cols = linear_sum_assignment(cost)
        out[name + ".rows"] = torch.from_numpy(rows.astype(np.int64))
        out[name + ".cols"] = torch.from_numpy(cols.astype(np.int64))
        out[name + ".cost.f64"] = f64([cost[rows, cols].sum()])

    write_safetensors(sys.argv[2], out)


if __name__ == "__main__":
    main()
