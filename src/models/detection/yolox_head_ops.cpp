// YOLOX's head arithmetic (yolox_head_ops.h), as mmdet 3.x computes it:
// MlvlPointGenerator(offset 0).grid_priors(with_stride), YOLOXHead._bbox_decode,
// predict_by_feat + _bbox_post_process, SimOTAAssigner and loss_by_feat with
// _get_targets_single. The operations (and their order) follow mmdet's so that
// the cost matrix, and so torch.topk's choice among equal costs, come out the
// same bits; tests/models/yolox_head_ops_reference.py is the Python transcription
// they are checked against.
#include "models/detection/yolox_head_ops.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <tuple>

#include "models/detection/box_ops.h"

namespace automm::detection {
namespace {

// SimOTAAssigner's defaults, which YOLOX's train_cfg keeps.
constexpr double kCenterRadius = 2.5;
constexpr int64_t kCandidateTopk = 10;
constexpr double kIouWeight = 3.0;
constexpr double kClsWeight = 1.0;
constexpr double kOutsideCost = 100000.0;  // INF: priors not both in the box and in its centre region
constexpr double kIouCostEps = 1e-7;
constexpr double kOverlapEps = 1e-6;  // bbox_overlaps' floor on the union
// YOLOXHead's losses: IoULoss(mode square, eps 1e-16, loss_weight 5), the others weight 1.
constexpr double kIouLossEps = 1e-16;
constexpr double kBboxLossWeight = 5.0;
constexpr double kL1TargetEps = 1e-8;

std::string shape_of(const torch::Tensor& t) {
  std::string s = "[";
  for (int64_t d = 0; d < t.dim(); ++d) s += (d ? ", " : "") + std::to_string(t.size(d));
  return s + "]";
}

// Throws unless the levels agree: cls [B, C, H, W], reg [B, 4, H, W], obj [B, 1, H, W].
void check_outputs(const YoloxHeadOutputs& outputs, const char* what) {
  const size_t levels = outputs.cls.size();
  if (levels == 0 || outputs.reg.size() != levels || outputs.obj.size() != levels ||
      outputs.strides.size() != levels)
    throw std::invalid_argument(
        std::string(what) + ": cls, reg, obj and strides need one entry per level, got " +
        std::to_string(outputs.cls.size()) + ", " + std::to_string(outputs.reg.size()) + ", " +
        std::to_string(outputs.obj.size()) + ", " + std::to_string(outputs.strides.size()));
  const auto& first = outputs.cls[0];
  if (first.dim() != 4)
    throw std::invalid_argument(std::string(what) + ": cls must be [B, C, H, W], got " + shape_of(first));
  const int64_t batch = first.size(0), classes = first.size(1);
  for (size_t l = 0; l < levels; ++l) {
    const auto& cls = outputs.cls[l];
    const auto& reg = outputs.reg[l];
    const auto& obj = outputs.obj[l];
    const std::string level = std::string(what) + ": level " + std::to_string(l) + ": ";
    if (cls.dim() != 4 || cls.size(0) != batch || cls.size(1) != classes)
      throw std::invalid_argument(level + "cls must be [" + std::to_string(batch) + ", " +
                                  std::to_string(classes) + ", H, W], got " + shape_of(cls));
    const std::vector<int64_t> grid = {cls.size(2), cls.size(3)};
    if (reg.dim() != 4 || reg.size(0) != batch || reg.size(1) != 4 || reg.size(2) != grid[0] ||
        reg.size(3) != grid[1])
      throw std::invalid_argument(level + "reg must be [B, 4, H, W] like cls " + shape_of(cls) + ", got " +
                                  shape_of(reg));
    if (obj.dim() != 4 || obj.size(0) != batch || obj.size(1) != 1 || obj.size(2) != grid[0] ||
        obj.size(3) != grid[1])
      throw std::invalid_argument(level + "obj must be [B, 1, H, W] like cls " + shape_of(cls) + ", got " +
                                  shape_of(obj));
    if (outputs.strides[l] <= 0)
      throw std::invalid_argument(level + "stride must be positive, got " +
                                  std::to_string(outputs.strides[l]));
  }
}

// bbox_overlaps(a, b) (mode iou, not aligned, eps 1e-6): [n, m]. Every pair is
// laid out and measured by aligned_box_iou, which does the same arithmetic.
torch::Tensor pairwise_overlaps(const torch::Tensor& a, const torch::Tensor& b) {
  const int64_t n = a.size(0), m = b.size(0);
  const auto pairs_a = a.unsqueeze(1).expand({n, m, 4}).reshape({n * m, 4});
  const auto pairs_b = b.unsqueeze(0).expand({n, m, 4}).reshape({n * m, 4});
  return aligned_box_iou(pairs_a, pairs_b, kOverlapEps).view({n, m});
}

// One image's training targets (YOLOXHead._get_targets_single), P positives.
struct ImageTargets {
  torch::Tensor positive;  // [N] bool
  torch::Tensor cls;       // [P, C]: one-hot label * IoU of the prediction with its ground truth
  torch::Tensor obj;       // [N, 1]: 1 on positives
  torch::Tensor bbox;      // [P, 4]: the assigned ground-truth boxes
  torch::Tensor l1;        // [P, 4]: (gt centre - prior) / stride, log(gt wh / stride + 1e-8)
  int64_t num_positive = 0;
};

ImageTargets image_targets(const torch::Tensor& priors, const torch::Tensor& cls,
                           const torch::Tensor& decoded, const torch::Tensor& obj,
                           const torch::Tensor& gt_boxes, const torch::Tensor& gt_labels, bool use_l1) {
  const int64_t n = priors.size(0), classes = cls.size(1);
  ImageTargets t;
  if (gt_boxes.size(0) == 0) {
    t.positive = torch::zeros({n}, torch::kBool);
    t.cls = torch::zeros({0, classes}, cls.options());
    t.obj = torch::zeros({n, 1}, cls.options());
    t.bbox = torch::zeros({0, 4}, cls.options());
    t.l1 = torch::zeros({0, 4}, cls.options());
    return t;
  }
  const auto assignment = simota_assign(priors, cls, obj, decoded, gt_boxes, gt_labels);
  const auto positive_index =
      (assignment.assigned_gt >= 0).nonzero().squeeze(1);  // ascending, as PseudoSampler
  const auto assigned = assignment.assigned_gt.index_select(0, positive_index);
  t.num_positive = positive_index.size(0);
  const auto ious = assignment.max_iou.index_select(0, positive_index);
  t.cls = torch::one_hot(gt_labels.index_select(0, assigned), classes) * ious.unsqueeze(-1);
  t.obj = torch::zeros({n, 1}, cls.options());
  t.obj.index_fill_(0, positive_index, 1);
  t.bbox = gt_boxes.index_select(0, assigned);
  t.l1 = torch::zeros({t.num_positive, 4}, cls.options());
  if (use_l1) {  // _get_l1_target, with the priors before the half-stride shift
    const auto p = priors.index_select(0, positive_index);
    const auto x1 = t.bbox.select(1, 0), y1 = t.bbox.select(1, 1), x2 = t.bbox.select(1, 2),
               y2 = t.bbox.select(1, 3);
    const auto centre = torch::stack({(x1 + x2) / 2, (y1 + y2) / 2}, 1);
    const auto size = torch::stack({x2 - x1, y2 - y1}, 1);
    t.l1.narrow(1, 0, 2).copy_((centre - p.narrow(1, 0, 2)) / p.narrow(1, 2, 2));
    t.l1.narrow(1, 2, 2).copy_(torch::log(size / p.narrow(1, 2, 2) + kL1TargetEps));
  }
  t.positive = torch::zeros({n}, torch::kBool);
  t.positive.index_fill_(0, positive_index, true);
  return t;
}

}  // namespace

torch::Tensor yolox_priors(const YoloxHeadOutputs& outputs) {
  check_outputs(outputs, "yolox_priors");
  const auto options = torch::TensorOptions().dtype(outputs.cls[0].dtype()).device(outputs.cls[0].device());
  std::vector<torch::Tensor> levels;
  for (size_t l = 0; l < outputs.cls.size(); ++l) {
    const int64_t h = outputs.cls[l].size(2), w = outputs.cls[l].size(3);
    const double stride = static_cast<double>(outputs.strides[l]);
    const auto shift_x = torch::arange(w, options) * stride;
    const auto shift_y = torch::arange(h, options) * stride;
    const auto xx = shift_x.repeat({h});  // x fastest: row-major cells
    const auto yy = shift_y.view({-1, 1}).repeat({1, w}).view({-1});
    const auto strides = torch::full({h * w}, stride, options);
    levels.push_back(torch::stack({xx, yy, strides, strides}, -1));
  }
  return torch::cat(levels);
}

YoloxFlatOutputs flatten_yolox_outputs(const YoloxHeadOutputs& outputs) {
  check_outputs(outputs, "flatten_yolox_outputs");
  const int64_t batch = outputs.cls[0].size(0), classes = outputs.cls[0].size(1);
  std::vector<torch::Tensor> cls, reg, obj;
  for (size_t l = 0; l < outputs.cls.size(); ++l) {
    cls.push_back(outputs.cls[l].permute({0, 2, 3, 1}).reshape({batch, -1, classes}));
    reg.push_back(outputs.reg[l].permute({0, 2, 3, 1}).reshape({batch, -1, 4}));
    obj.push_back(outputs.obj[l].permute({0, 2, 3, 1}).reshape({batch, -1}));
  }
  return {torch::cat(cls, 1), torch::cat(reg, 1), torch::cat(obj, 1)};
}

torch::Tensor yolox_decode(const torch::Tensor& priors, const torch::Tensor& reg) {
  if (priors.dim() != 2 || priors.size(1) != 4 || reg.dim() < 2 || reg.size(-1) != 4 ||
      reg.size(-2) != priors.size(0))
    throw std::invalid_argument("yolox_decode: priors must be [N, 4] and reg [..., N, 4], got " +
                                shape_of(priors) + " and " + shape_of(reg));
  const auto stride = priors.narrow(1, 2, 2);
  const auto xy = reg.narrow(-1, 0, 2) * stride + priors.narrow(1, 0, 2);
  const auto wh = reg.narrow(-1, 2, 2).exp() * stride;
  const auto x = xy.select(-1, 0), y = xy.select(-1, 1), w = wh.select(-1, 0), h = wh.select(-1, 1);
  return torch::stack({x - w / 2, y - h / 2, x + w / 2, y + h / 2}, -1);
}

std::vector<Detections> yolox_post_process(const YoloxHeadOutputs& outputs,
                                           const PostProcessOptions& options) {
  torch::NoGradGuard no_grad;
  const auto priors = yolox_priors(outputs);
  const auto flat = flatten_yolox_outputs(outputs);
  const auto scores = flat.cls.sigmoid();
  const auto objectness = flat.obj.sigmoid();
  const auto boxes = yolox_decode(priors, flat.reg);
  std::vector<Detections> result;
  for (int64_t i = 0; i < scores.size(0); ++i) {
    const auto [max_scores, labels] = scores[i].max(1);
    const auto keep_mask = objectness[i] * max_scores >= options.score_threshold;
    Detections d;
    d.boxes = boxes[i].index({keep_mask});
    d.scores = max_scores.index({keep_mask}) * objectness[i].index({keep_mask});
    d.labels = labels.index({keep_mask});
    if (d.boxes.size(0) > 0) {
      // mmcv's batched_nms splits by class only above 10000 boxes, more than
      // YOLOX's priors at 640 (8400); below it, it is this offset trick.
      const auto keep = batched_nms(d.boxes, d.scores, d.labels, options.nms_iou);
      d.boxes = d.boxes.index_select(0, keep);
      d.scores = d.scores.index_select(0, keep);
      d.labels = d.labels.index_select(0, keep);
    }
    if (options.max_per_image > 0 && d.boxes.size(0) > options.max_per_image) {
      d.boxes = d.boxes.narrow(0, 0, options.max_per_image);
      d.scores = d.scores.narrow(0, 0, options.max_per_image);
      d.labels = d.labels.narrow(0, 0, options.max_per_image);
    }
    result.push_back(std::move(d));
  }
  return result;
}

SimOtaAssignment simota_assign(const torch::Tensor& priors, const torch::Tensor& cls,
                               const torch::Tensor& obj, const torch::Tensor& decoded,
                               const torch::Tensor& gt_boxes, const torch::Tensor& gt_labels) {
  torch::NoGradGuard no_grad;
  const int64_t n = priors.size(0);
  if (priors.dim() != 2 || priors.size(1) != 4 || cls.dim() != 2 || cls.size(0) != n || obj.dim() != 1 ||
      obj.size(0) != n || decoded.dim() != 2 || decoded.size(0) != n || decoded.size(1) != 4)
    throw std::invalid_argument(
        "simota_assign: expected priors [N, 4], cls [N, C], obj [N], decoded [N, 4]; got " +
        shape_of(priors) + ", " + shape_of(cls) + ", " + shape_of(obj) + ", " + shape_of(decoded));
  if (gt_boxes.dim() != 2 || gt_boxes.size(1) != 4 || gt_labels.dim() != 1 ||
      gt_labels.size(0) != gt_boxes.size(0))
    throw std::invalid_argument("simota_assign: expected gt boxes [G, 4] and labels [G]; got " +
                                shape_of(gt_boxes) + " and " + shape_of(gt_labels));
  const int64_t num_gt = gt_boxes.size(0), classes = cls.size(1);
  if (num_gt > 0 && (gt_labels.min().item<int64_t>() < 0 || gt_labels.max().item<int64_t>() >= classes))
    throw std::invalid_argument("simota_assign: ground-truth labels must lie in [0, " +
                                std::to_string(classes) + "), got " +
                                std::to_string(gt_labels.min().item<int64_t>()) + " to " +
                                std::to_string(gt_labels.max().item<int64_t>()));
  SimOtaAssignment result{torch::full({n}, -1, torch::kLong), torch::zeros({n}, decoded.options())};
  if (num_gt == 0 || n == 0) return result;

  // The assigner sees the cell centres (priors shifted by half a stride) and
  // sqrt(sigmoid(cls) * sigmoid(obj)).
  const auto stride = priors.narrow(1, 2, 2);
  const auto centres = priors.narrow(1, 0, 2) + stride * 0.5;
  const auto scores = (cls.sigmoid() * obj.unsqueeze(1).sigmoid()).sqrt();
  const auto x = centres.select(1, 0).unsqueeze(1), y = centres.select(1, 1).unsqueeze(1);  // [N, 1]
  const auto stride_x = stride.select(1, 0).unsqueeze(1), stride_y = stride.select(1, 1).unsqueeze(1);
  const auto gt_x1 = gt_boxes.select(1, 0), gt_y1 = gt_boxes.select(1, 1);  // [G]
  const auto gt_x2 = gt_boxes.select(1, 2), gt_y2 = gt_boxes.select(1, 3);
  // [N, G]: the centre strictly inside the box / inside gt centre +- 2.5 strides.
  const auto in_box = (x - gt_x1 > 0) & (y - gt_y1 > 0) & (gt_x2 - x > 0) & (gt_y2 - y > 0);
  const auto gt_cx = (gt_x1 + gt_x2) / 2.0, gt_cy = (gt_y1 + gt_y2) / 2.0;
  const auto in_centre =
      (x - (gt_cx - kCenterRadius * stride_x) > 0) & (y - (gt_cy - kCenterRadius * stride_y) > 0) &
      ((gt_cx + kCenterRadius * stride_x) - x > 0) & ((gt_cy + kCenterRadius * stride_y) - y > 0);
  const auto valid = in_box.any(1) | in_centre.any(1);  // [N] candidates
  const auto valid_index = valid.nonzero().squeeze(1);
  const int64_t num_valid = valid_index.size(0);
  if (num_valid == 0) return result;
  const auto in_box_and_centre = (in_box & in_centre).index_select(0, valid_index);  // [V, G]

  const auto ious = pairwise_overlaps(decoded.index_select(0, valid_index), gt_boxes);  // [V, G]
  const auto iou_cost = -torch::log(ious + kIouCostEps);
  // BCE in float32 (mmdet turns autocast off for it), summed over classes.
  const auto one_hot = torch::one_hot(gt_labels, classes).to(torch::kFloat);  // [G, C]
  const auto valid_scores = scores.index_select(0, valid_index).to(torch::kFloat);
  const auto cls_cost =
      torch::binary_cross_entropy(valid_scores.unsqueeze(1).expand({num_valid, num_gt, classes}),
                                  one_hot.unsqueeze(0).expand({num_valid, num_gt, classes}), {},
                                  at::Reduction::None)
          .sum(-1)
          .to(scores.scalar_type());
  const auto cost = cls_cost * kClsWeight + iou_cost * kIouWeight + (~in_box_and_centre) * kOutsideCost;

  // Dynamic k: each gt takes its int(sum of top-10 IoUs) (at least 1) cheapest candidates.
  auto matching = torch::zeros({num_valid, num_gt}, torch::kByte);
  const auto top_ious = std::get<0>(ious.topk(std::min(kCandidateTopk, num_valid), 0));
  const auto dynamic_ks = top_ious.sum(0).to(torch::kInt).clamp_min(1);
  for (int64_t g = 0; g < num_gt; ++g) {
    const auto chosen =
        std::get<1>(cost.select(1, g).topk(dynamic_ks[g].item<int64_t>(), 0, /*largest=*/false));
    matching.select(1, g).index_fill_(0, chosen, 1);
  }
  // A candidate taken by several gts keeps the cheapest.
  const auto shared = matching.sum(1) > 1;
  if (shared.any().item<bool>()) {
    const auto shared_index = shared.nonzero().squeeze(1);
    const auto cheapest = std::get<1>(cost.index_select(0, shared_index).min(1));
    matching.index_fill_(0, shared_index, 0);
    matching.index_put_({shared_index, cheapest}, 1);
  }
  const auto foreground = (matching.sum(1) > 0).nonzero().squeeze(1);  // into the candidates
  const auto matched_gt = matching.index_select(0, foreground).argmax(1);
  const auto matched_iou = (matching * ious).sum(1).index_select(0, foreground);
  const auto prior_index = valid_index.index_select(0, foreground);
  result.assigned_gt.index_put_({prior_index}, matched_gt);
  result.max_iou.index_put_({prior_index}, matched_iou.to(result.max_iou.scalar_type()));
  return result;
}

std::map<std::string, torch::Tensor> yolox_losses(const YoloxHeadOutputs& outputs, const BoxTargets& targets,
                                                  bool use_l1) {
  const auto priors = yolox_priors(outputs);
  const auto flat = flatten_yolox_outputs(outputs);
  const int64_t batch = flat.cls.size(0), classes = flat.cls.size(2);
  if (static_cast<int64_t>(targets.boxes.size()) != batch ||
      static_cast<int64_t>(targets.labels.size()) != batch)
    throw std::invalid_argument("yolox_losses: the head has outputs for " + std::to_string(batch) +
                                " image(s) but the targets hold " + std::to_string(targets.boxes.size()) +
                                " box and " + std::to_string(targets.labels.size()) + " label tensor(s)");
  const auto boxes = yolox_decode(priors, flat.reg);  // [B, N, 4]

  std::vector<torch::Tensor> positive, cls_targets, obj_targets, bbox_targets, l1_targets;
  int64_t num_positive = 0;
  {
    torch::NoGradGuard no_grad;
    for (int64_t i = 0; i < batch; ++i) {
      const auto gt_boxes = targets.boxes[i].to(flat.cls.options()).reshape({-1, 4});
      const auto gt_labels = targets.labels[i].to(torch::kLong).reshape({-1});
      auto t = image_targets(priors, flat.cls[i].detach(), boxes[i].detach(), flat.obj[i].detach(), gt_boxes,
                             gt_labels, use_l1);
      positive.push_back(t.positive);
      cls_targets.push_back(t.cls);
      obj_targets.push_back(t.obj);
      bbox_targets.push_back(t.bbox);
      l1_targets.push_back(t.l1);
      num_positive += t.num_positive;
    }
  }
  // num_total_samples = max(reduce_mean(num_pos), 1): one process, no mean.
  const double num_total = std::max(static_cast<double>(num_positive), 1.0);
  const auto positive_mask = torch::cat(positive);

  std::map<std::string, torch::Tensor> losses;
  losses["loss_obj"] = torch::binary_cross_entropy_with_logits(
                           flat.obj.reshape({-1, 1}), torch::cat(obj_targets), {}, {}, at::Reduction::None)
                           .sum() /
                       num_total;
  if (num_positive > 0) {
    losses["loss_cls"] =
        torch::binary_cross_entropy_with_logits(flat.cls.reshape({-1, classes}).index({positive_mask}),
                                                torch::cat(cls_targets), {}, {}, at::Reduction::None)
            .sum() /
        num_total;
    const auto ious =
        aligned_box_iou(boxes.reshape({-1, 4}).index({positive_mask}), torch::cat(bbox_targets), kOverlapEps)
            .clamp_min(kIouLossEps);
    losses["loss_bbox"] = (1 - ious.pow(2)).sum() * kBboxLossWeight / num_total;
  } else {
    // mmdet keeps the branches in the graph with zero losses (its issue 7298).
    losses["loss_cls"] = flat.cls.sum() * 0;
    losses["loss_bbox"] = boxes.sum() * 0;
  }
  if (use_l1) {
    losses["loss_l1"] =
        num_positive > 0
            ? (flat.reg.reshape({-1, 4}).index({positive_mask}) - torch::cat(l1_targets)).abs().sum() /
                  num_total
            : flat.reg.sum() * 0;
  }
  return losses;
}

}  // namespace automm::detection
