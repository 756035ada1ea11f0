// YOLOX's head arithmetic (mmdet's YOLOXHead: priors, box decoding,
// post-processing, SimOTA assignment and losses) on the raw head outputs, apart
// from the network (yolox.h) so each is tested alone.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "models/detection/detector.h"

namespace automm::detection {

// The head's raw outputs, one entry per level (strides 8, 16, 32).
struct YoloxHeadOutputs {
  std::vector<torch::Tensor> cls;  // [B, C, H_l, W_l] class logits
  std::vector<torch::Tensor> reg;  // [B, 4, H_l, W_l] (dx, dy, log w, log h) in stride units
  std::vector<torch::Tensor> obj;  // [B, 1, H_l, W_l] objectness logits
  std::vector<int64_t> strides;    // {8, 16, 32}
};

// MlvlPointGenerator (offset 0, with_stride): [N, 4] rows (x * s, y * s, s, s),
// row-major per level, levels concatenated.
torch::Tensor yolox_priors(const YoloxHeadOutputs& outputs);
// Levels flattened and concatenated: cls [B, N, C], reg [B, N, 4], obj [B, N].
struct YoloxFlatOutputs {
  torch::Tensor cls, reg, obj;
};
YoloxFlatOutputs flatten_yolox_outputs(const YoloxHeadOutputs& outputs);
// Boxes [B, N, 4] xyxy: centre = reg_xy * s + prior_xy, wh = exp(reg_wh) * s.
torch::Tensor yolox_decode(const torch::Tensor& priors, const torch::Tensor& reg);

// mmdet's YOLOXHead.predict_by_feat + _bbox_post_process: per prior the best
// class, kept when class score * objectness >= score_threshold, class-aware NMS,
// at most max_per_image (0: all). Boxes in input pixels.
std::vector<Detections> yolox_post_process(const YoloxHeadOutputs& outputs, const PostProcessOptions& options);

// SimOTA (center_radius 2.5, candidate_topk 10, iou_weight 3, cls_weight 1) for
// one image. priors [N, 4] as yolox_priors gives them (shifted by half a stride
// inside, as _get_targets_single does), cls [N, C] and obj [N] logits, decoded
// boxes [N, 4], gt boxes [G, 4] and labels [G] in [0, C). The cost's BCE is
// float32, as mmdet's with autocast off.
struct SimOtaAssignment {
  torch::Tensor assigned_gt;  // [N] int64: the matched ground truth's index, -1 for negatives
  torch::Tensor max_iou;      // [N] IoU of each positive prior's box with its ground truth (0 elsewhere)
};
SimOtaAssignment simota_assign(const torch::Tensor& priors, const torch::Tensor& cls, const torch::Tensor& obj,
                               const torch::Tensor& decoded, const torch::Tensor& gt_boxes,
                               const torch::Tensor& gt_labels);

// YOLOXHead.loss_by_feat: loss_cls, loss_bbox, loss_obj (and loss_l1 when
// use_l1), each a scalar already weighted and divided by max(num_pos, 1).
std::map<std::string, torch::Tensor> yolox_losses(const YoloxHeadOutputs& outputs, const BoxTargets& targets,
                                                  bool use_l1);

}  // namespace automm::detection
