// YOLOv3's priors, box coder, post-processing, grid assignment and losses
// (yolov3_head_ops.h), in the order of mmdet 3.x's yolo_head.py.
#include "models/detection/yolov3_head_ops.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "models/detection/box_ops.h"

namespace automm::detection {
namespace {

using torch::indexing::Ellipsis;
using torch::indexing::Slice;

std::string shape_of(const torch::Tensor& t) {
  std::string text = "[";
  for (int64_t d = 0; d < t.dim(); ++d) text += (d > 0 ? ", " : "") + std::to_string(t.size(d));
  return text + "]";
}

// Checks the three levels and returns the class count C.
int64_t check_pred_maps(const std::vector<torch::Tensor>& pred_maps) {
  if (pred_maps.size() != kYolov3Strides.size())
    throw std::invalid_argument("YOLOv3 head: expected 3 output levels (strides 32, 16, 8), got " +
                                std::to_string(pred_maps.size()));
  const auto& first = pred_maps[0];
  if (first.dim() != 4 || first.size(1) % 3 != 0 || first.size(1) / 3 <= 5)
    throw std::invalid_argument("YOLOv3 head: outputs must be [B, 3 * (5 + C), H, W] with C >= 1, got " +
                                shape_of(first));
  for (size_t l = 0; l < pred_maps.size(); ++l) {
    const auto& p = pred_maps[l];
    if (p.dim() != 4 || p.size(0) != first.size(0) || p.size(1) != first.size(1))
      throw std::invalid_argument("YOLOv3 head: output level " + std::to_string(l) + " is " + shape_of(p) +
                                  ", level 0 is " + shape_of(first));
  }
  return first.size(1) / 3 - 5;
}

// [B, 3 * A, H, W] -> [B, H * W * 3, A] (prior = cell * 3 + anchor).
torch::Tensor flatten_level(const torch::Tensor& pred, int64_t attributes) {
  return pred.permute({0, 2, 3, 1}).reshape({pred.size(0), -1, attributes});
}

// The stride of every prior of `pred_maps`: [N] float.
torch::Tensor prior_strides(const std::vector<torch::Tensor>& pred_maps) {
  std::vector<torch::Tensor> parts;
  for (size_t l = 0; l < pred_maps.size(); ++l)
    parts.push_back(torch::full({pred_maps[l].size(2) * pred_maps[l].size(3) * 3},
                                static_cast<double>(kYolov3Strides[l]), torch::kFloat));
  return torch::cat(parts);
}

// mmdet's responsible_flags for one image: [N] bool, true for the 3 anchors of
// each cell that holds a ground-truth centre, at every level.
torch::Tensor responsible_flags(const std::vector<torch::Tensor>& pred_maps, const torch::Tensor& gt_boxes) {
  std::vector<torch::Tensor> flags;
  const auto cx = (gt_boxes.select(1, 0) + gt_boxes.select(1, 2)) * 0.5;
  const auto cy = (gt_boxes.select(1, 1) + gt_boxes.select(1, 3)) * 0.5;
  for (size_t l = 0; l < pred_maps.size(); ++l) {
    const int64_t height = pred_maps[l].size(2), width = pred_maps[l].size(3);
    const double stride = static_cast<double>(kYolov3Strides[l]);
    const auto grid_x = torch::floor(cx / stride).to(torch::kLong);
    const auto grid_y = torch::floor(cy / stride).to(torch::kLong);
    auto grid = torch::zeros({height * width}, torch::kBool);
    if (gt_boxes.size(0) > 0) grid.index_put_({grid_y * width + grid_x}, true);
    flags.push_back(grid.unsqueeze(1).expand({height * width, 3}).reshape({-1}));
  }
  return torch::cat(flags);
}

void check_targets(const std::vector<torch::Tensor>& pred_maps, const BoxTargets& targets,
                   int64_t num_classes) {
  const int64_t batch = pred_maps[0].size(0);
  if (static_cast<int64_t>(targets.boxes.size()) != batch ||
      static_cast<int64_t>(targets.labels.size()) != batch)
    throw std::invalid_argument("YOLOv3 losses: " + std::to_string(batch) + " images but " +
                                std::to_string(targets.boxes.size()) + " box sets and " +
                                std::to_string(targets.labels.size()) + " label sets");
  // The input the outputs come from (padded to a multiple of 32).
  const double input_w = static_cast<double>(pred_maps[0].size(3) * kYolov3Strides[0]);
  const double input_h = static_cast<double>(pred_maps[0].size(2) * kYolov3Strides[0]);
  for (int64_t i = 0; i < batch; ++i) {
    const auto& boxes = targets.boxes[i];
    const auto& labels = targets.labels[i];
    const std::string which = "YOLOv3 losses, image " + std::to_string(i) + ": ";
    if (boxes.dim() != 2 || boxes.size(1) != 4)
      throw std::invalid_argument(which + "boxes must be [n, 4], got " + shape_of(boxes));
    if (labels.dim() != 1 || labels.size(0) != boxes.size(0))
      throw std::invalid_argument(which + "labels must be [" + std::to_string(boxes.size(0)) + "], got " +
                                  shape_of(labels));
    if (boxes.size(0) == 0) continue;
    if (labels.min().item<int64_t>() < 0 || labels.max().item<int64_t>() >= num_classes)
      throw std::invalid_argument(which + "labels must lie in [0, " + std::to_string(num_classes) + ")");
    const auto b = boxes.to(torch::kFloat);
    const auto cx = (b.select(1, 0) + b.select(1, 2)) * 0.5, cy = (b.select(1, 1) + b.select(1, 3)) * 0.5;
    if (cx.min().item<double>() < 0 || cy.min().item<double>() < 0 || cx.max().item<double>() >= input_w ||
        cy.max().item<double>() >= input_h)
      throw std::invalid_argument(which + "a box centre lies outside the " +
                                  std::to_string(int64_t(input_w)) + " x " +
                                  std::to_string(int64_t(input_h)) + " input");
  }
}

}  // namespace

PostProcessOptions yolov3_test_options() {
  PostProcessOptions options;
  options.score_threshold = 0.05;
  options.nms_iou = 0.45;
  options.max_per_image = 100;
  options.conf_threshold = 0.005;
  options.nms_pre = 1000;
  return options;
}

torch::Tensor yolov3_grid_anchors(int64_t level, int64_t height, int64_t width) {
  if (level < 0 || level >= static_cast<int64_t>(kYolov3Strides.size()))
    throw std::out_of_range("yolov3_grid_anchors: level " + std::to_string(level) + " is not 0, 1 or 2");
  const int64_t stride = kYolov3Strides[level];
  const double centre = stride / 2.0;
  std::vector<float> base;
  for (const auto& size : kYolov3AnchorSizes[level]) {
    base.insert(base.end(),
                {static_cast<float>(centre - 0.5 * size[0]), static_cast<float>(centre - 0.5 * size[1]),
                 static_cast<float>(centre + 0.5 * size[0]), static_cast<float>(centre + 0.5 * size[1])});
  }
  const auto base_anchors = torch::tensor(base).view({3, 4});
  const auto shift_x = torch::arange(width, torch::kFloat) * static_cast<double>(stride);
  const auto shift_y = torch::arange(height, torch::kFloat) * static_cast<double>(stride);
  const auto xx = shift_x.repeat({height});  // row-major cells
  const auto yy = shift_y.view({-1, 1}).repeat({1, width}).view({-1});
  const auto shifts = torch::stack({xx, yy, xx, yy}, -1);  // [H * W, 4]
  return (base_anchors.unsqueeze(0) + shifts.unsqueeze(1)).view({-1, 4});
}

torch::Tensor yolov3_anchors(const std::vector<torch::Tensor>& pred_maps) {
  check_pred_maps(pred_maps);
  std::vector<torch::Tensor> levels;
  for (size_t l = 0; l < pred_maps.size(); ++l)
    levels.push_back(
        yolov3_grid_anchors(static_cast<int64_t>(l), pred_maps[l].size(2), pred_maps[l].size(3)));
  return torch::cat(levels);
}

torch::Tensor yolov3_decode(const torch::Tensor& anchors, const torch::Tensor& deltas,
                            const torch::Tensor& stride) {
  const auto lo = anchors.index({Ellipsis, Slice(0, 2)}), hi = anchors.index({Ellipsis, Slice(2, 4)});
  const auto centres = (lo + hi) * 0.5 + (deltas.index({Ellipsis, Slice(0, 2)}) - 0.5) * stride;
  const auto half_wh = (hi - lo) * 0.5 * deltas.index({Ellipsis, Slice(2, 4)}).exp();
  return torch::cat({centres - half_wh, centres + half_wh}, -1);
}

torch::Tensor yolov3_encode(const torch::Tensor& anchors, const torch::Tensor& boxes,
                            const torch::Tensor& stride) {
  constexpr double kEps = 1e-6;
  auto col = [](const torch::Tensor& t, int64_t i) { return t.select(-1, i); };
  const auto gt_cx = (col(boxes, 0) + col(boxes, 2)) * 0.5, gt_cy = (col(boxes, 1) + col(boxes, 3)) * 0.5;
  const auto gt_w = col(boxes, 2) - col(boxes, 0), gt_h = col(boxes, 3) - col(boxes, 1);
  const auto cx = (col(anchors, 0) + col(anchors, 2)) * 0.5, cy = (col(anchors, 1) + col(anchors, 3)) * 0.5;
  const auto w = col(anchors, 2) - col(anchors, 0), h = col(anchors, 3) - col(anchors, 1);
  return torch::stack({((gt_cx - cx) / stride + 0.5).clamp(kEps, 1 - kEps),
                       ((gt_cy - cy) / stride + 0.5).clamp(kEps, 1 - kEps), (gt_w / w).clamp_min(kEps).log(),
                       (gt_h / h).clamp_min(kEps).log()},
                      -1);
}

std::vector<Detections> yolov3_post_process(const std::vector<torch::Tensor>& pred_maps,
                                            const PostProcessOptions& options) {
  torch::NoGradGuard no_grad;
  const int64_t num_classes = check_pred_maps(pred_maps);
  std::vector<torch::Tensor> levels;
  for (const auto& p : pred_maps)
    levels.push_back(flatten_level(p.detach().to(torch::kFloat), 5 + num_classes));
  const auto flat = torch::cat(levels, 1);  // [B, N, 5 + C]
  const auto deltas =
      torch::cat({flat.index({Ellipsis, Slice(0, 2)}).sigmoid(), flat.index({Ellipsis, Slice(2, 4)})}, -1);
  const auto objectness = flat.select(2, 4).sigmoid();                                          // [B, N]
  const auto class_scores = flat.index({Ellipsis, Slice(5, torch::indexing::None)}).sigmoid();  // [B, N, C]
  const auto all_boxes = yolov3_decode(yolov3_anchors(pred_maps).to(flat.device()), deltas,
                                       prior_strides(pred_maps).to(flat.device()).unsqueeze(-1));
  std::vector<Detections> results;
  for (int64_t i = 0; i < flat.size(0); ++i) {
    auto boxes = all_boxes[i], scores = class_scores[i], obj = objectness[i];
    if (options.conf_threshold > 0) {
      const auto keep = obj >= options.conf_threshold;
      boxes = boxes.index({keep});
      scores = scores.index({keep});
      obj = obj.index({keep});
    }
    // filter_scores_and_topk: (prior, class) pairs above score_thr, best nms_pre first.
    const auto valid = scores > options.score_threshold;
    const auto pair_index = torch::nonzero(valid);  // [M, 2] (prior, class), row-major
    auto [sorted, order] = scores.index({valid}).sort(0, /*descending=*/true);
    int64_t count = sorted.size(0);
    if (options.nms_pre > 0) count = std::min(count, options.nms_pre);
    const auto top = pair_index.index_select(0, order.slice(0, 0, count));
    const auto prior = top.select(1, 0);
    auto labels = top.select(1, 1);
    boxes = boxes.index_select(0, prior);
    auto final_scores = sorted.slice(0, 0, count) * obj.index_select(0, prior);
    // min_bbox_size 0: keep boxes with positive width and height.
    const auto positive =
        (boxes.select(1, 2) - boxes.select(1, 0) > 0) & (boxes.select(1, 3) - boxes.select(1, 1) > 0);
    if (!positive.all().item<bool>()) {
      boxes = boxes.index({positive});
      final_scores = final_scores.index({positive});
      labels = labels.index({positive});
    }
    if (boxes.numel() > 0) {
      auto keep = batched_nms(boxes, final_scores, labels, options.nms_iou).to(boxes.device());
      if (options.max_per_image > 0 && keep.size(0) > options.max_per_image)
        keep = keep.slice(0, 0, options.max_per_image);
      boxes = boxes.index_select(0, keep);
      final_scores = final_scores.index_select(0, keep);
      labels = labels.index_select(0, keep);
    }
    results.push_back({boxes.contiguous(), final_scores.contiguous(), labels.contiguous()});
  }
  return results;
}

torch::Tensor yolov3_grid_assign(const torch::Tensor& anchors, const torch::Tensor& responsible,
                                 const torch::Tensor& gt_boxes) {
  constexpr double kPosIou = 0.5, kNegIou = 0.5, kMinPosIou = 0.0;
  const int64_t num_gts = gt_boxes.size(0), num_priors = anchors.size(0);
  auto assigned =
      torch::full({num_priors}, -1, torch::TensorOptions().dtype(torch::kLong).device(anchors.device()));
  if (num_gts == 0) return assigned.fill_(0);
  auto overlaps = box_iou(gt_boxes, anchors);  // [G, N]
  const auto best_any = std::get<0>(overlaps.max(0));
  assigned.masked_fill_((best_any >= 0) & (best_any <= kNegIou), 0);
  // From here on only the responsible anchors compete.
  overlaps.masked_fill_(responsible.logical_not().unsqueeze(0), -1.0);
  const auto [best, best_gt] = overlaps.max(0);
  const auto gt_best = std::get<0>(overlaps.max(1));
  const auto positive = (best > kPosIou) & responsible;
  assigned = torch::where(positive, best_gt + 1, assigned);
  for (int64_t g = 0; g < num_gts; ++g) {
    if (gt_best[g].item<float>() > kMinPosIou)  // every equally best responsible anchor goes to g
      assigned.masked_fill_((overlaps[g] == gt_best[g]) & responsible, g + 1);
  }
  return assigned;
}

Yolov3Targets yolov3_targets(const std::vector<torch::Tensor>& pred_maps, const BoxTargets& targets) {
  torch::NoGradGuard no_grad;
  const int64_t num_classes = check_pred_maps(pred_maps);
  check_targets(pred_maps, targets, num_classes);
  const auto device = pred_maps[0].device();
  const auto anchors = yolov3_anchors(pred_maps).to(device);
  const auto strides = prior_strides(pred_maps).to(device);
  const int64_t num_priors = anchors.size(0);
  std::vector<torch::Tensor> target_maps, negative_maps;
  for (size_t i = 0; i < targets.boxes.size(); ++i) {
    const auto gt_boxes = targets.boxes[i].to(device, torch::kFloat);
    const auto gt_labels = targets.labels[i].to(device, torch::kLong);
    const auto assigned =
        yolov3_grid_assign(anchors, responsible_flags(pred_maps, gt_boxes).to(device), gt_boxes);
    auto target = torch::zeros({num_priors, 5 + num_classes}, anchors.options());
    const auto pos = torch::nonzero(assigned > 0).squeeze(-1);
    if (pos.numel() > 0) {
      const auto gt_index = assigned.index_select(0, pos) - 1;
      target.index_put_({pos, Slice(0, 4)},
                        yolov3_encode(anchors.index_select(0, pos), gt_boxes.index_select(0, gt_index),
                                      strides.index_select(0, pos)));
      target.index_put_({pos, 4}, 1.0);
      const auto one_hot = torch::one_hot(gt_labels, num_classes).to(torch::kFloat);
      target.index_put_({pos, Slice(5, torch::indexing::None)}, one_hot.index_select(0, gt_index));
    }
    target_maps.push_back(target);
    negative_maps.push_back(assigned == 0);
  }
  const auto target = torch::stack(target_maps), negative = torch::stack(negative_maps);
  Yolov3Targets out;
  int64_t start = 0;
  for (const auto& p : pred_maps) {
    const int64_t count = p.size(2) * p.size(3) * 3;
    out.target.push_back(target.slice(1, start, start + count));
    out.negative.push_back(negative.slice(1, start, start + count));
    start += count;
  }
  return out;
}

std::map<std::string, torch::Tensor> yolov3_losses(const std::vector<torch::Tensor>& pred_maps,
                                                   const BoxTargets& targets) {
  const int64_t num_classes = check_pred_maps(pred_maps);
  const Yolov3Targets t = yolov3_targets(pred_maps, targets);
  const auto none = torch::Reduction::None;
  std::map<std::string, torch::Tensor> losses;
  for (size_t l = 0; l < pred_maps.size(); ++l) {
    const auto pred = flatten_level(pred_maps[l], 5 + num_classes);  // [B, n, 5 + C]
    const auto& target = t.target[l];
    auto pos_and_neg = t.negative[l].to(pred.scalar_type()) + target.select(2, 4);
    if (pos_and_neg.max().item<double>() > 1.0) pos_and_neg = pos_and_neg.clamp(0.0, 1.0);
    const auto pos = target.select(2, 4).unsqueeze(-1);  // [B, n, 1]
    const auto rest = Slice(5, torch::indexing::None);
    const std::map<std::string, torch::Tensor> level = {
        {"loss_cls", (torch::binary_cross_entropy_with_logits(pred.index({Ellipsis, rest}),
                                                              target.index({Ellipsis, rest}), {}, {}, none) *
                      pos)
                         .sum()},
        {"loss_conf",
         (torch::binary_cross_entropy_with_logits(pred.select(2, 4), target.select(2, 4), {}, {}, none) *
          pos_and_neg)
             .sum()},
        {"loss_xy",
         2.0 * (torch::binary_cross_entropy_with_logits(pred.index({Ellipsis, Slice(0, 2)}),
                                                        target.index({Ellipsis, Slice(0, 2)}), {}, {}, none) *
                pos)
                   .sum()},
        {"loss_wh", 2.0 * (torch::mse_loss(pred.index({Ellipsis, Slice(2, 4)}),
                                           target.index({Ellipsis, Slice(2, 4)}), none) *
                           pos)
                              .sum()},
    };
    for (const auto& [name, value] : level) losses[name] = losses.count(name) ? losses[name] + value : value;
  }
  return losses;
}

}  // namespace automm::detection
