// YOLOv3's head arithmetic (mmdet's YOLOV3Head with the YOLOAnchorGenerator,
// YOLOBBoxCoder, GridAssigner and PseudoSampler) on the raw head outputs, apart
// from the network (yolov3.h) so each is tested alone.
//
// Raw outputs ("pred maps"): one per level, strides 32, 16, 8 in that order,
// [B, 3 * (5 + C), H_l, W_l]; channel a * (5 + C) + k is attribute k of anchor a:
// tx, ty, tw, th, objectness, then C class logits. Flattened, prior index =
// (y * W_l + x) * 3 + a, levels concatenated in stride order 32, 16, 8.
#pragma once

#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "models/detection/detector.h"

namespace automm::detection {

constexpr std::array<int64_t, 3> kYolov3Strides = {32, 16, 8};
// The anchors (w, h) in input pixels of yolov3_mobilenetv2_8xb24-320-300e_coco,
// per level (strides 32, 16, 8); they do not scale with the input size.
constexpr std::array<std::array<std::array<double, 2>, 3>, 3> kYolov3AnchorSizes = {{
    {{{220, 125}, {128, 222}, {264, 266}}},
    {{{35, 87}, {102, 96}, {60, 170}}},
    {{{10, 15}, {24, 36}, {72, 42}}},
}};

// The config's test_cfg: nms_pre 1000, score_thr 0.05, conf_thr 0.005, NMS IoU
// 0.45, max_per_img 100 (min_bbox_size 0 is built in).
PostProcessOptions yolov3_test_options();

// Grid anchors of one level: [height * width * 3, 4] xyxy, the base anchor
// centred at (stride / 2, stride / 2) shifted by (x * stride, y * stride).
torch::Tensor yolov3_grid_anchors(int64_t level, int64_t height, int64_t width);
// All levels of `pred_maps`, concatenated: [N, 4].
torch::Tensor yolov3_anchors(const std::vector<torch::Tensor>& pred_maps);

// YOLOBBoxCoder.decode: anchors [.., 4], deltas [.., 4] with tx, ty already
// sigmoid-ed, stride broadcastable to [.., 1]. Returns xyxy [.., 4].
torch::Tensor yolov3_decode(const torch::Tensor& anchors, const torch::Tensor& deltas,
                            const torch::Tensor& stride);
// YOLOBBoxCoder.encode: targets [n, 4] (tx, ty in [1e-6, 1 - 1e-6], log-ratio tw, th)
// of `boxes` relative to `anchors` [n, 4] with per-anchor `stride` [n].
torch::Tensor yolov3_encode(const torch::Tensor& anchors, const torch::Tensor& boxes,
                            const torch::Tensor& stride);

// YOLOV3Head.predict_by_feat + _bbox_post_process without rescaling: drop
// priors with objectness < conf_threshold; (prior, class) pairs with class
// score > score_threshold, best nms_pre kept (<= 0: all); score = class score *
// objectness; boxes with w <= 0 or h <= 0 dropped; class-aware NMS; at most
// max_per_image (0: all). Boxes in input pixels.
std::vector<Detections> yolov3_post_process(const std::vector<torch::Tensor>& pred_maps,
                                            const PostProcessOptions& options);

// GridAssigner (pos_iou_thr 0.5, neg_iou_thr 0.5, min_pos_iou 0,
// gt_max_assign_all) for one image: anchors [N, 4], responsible [N] bool (the
// anchors of the cells holding a ground-truth centre), gt_boxes [G, 4].
// Returns [N] int64: -1 ignored, 0 negative, g + 1 positive for ground truth g.
torch::Tensor yolov3_grid_assign(const torch::Tensor& anchors, const torch::Tensor& responsible,
                                 const torch::Tensor& gt_boxes);

// The training targets of a batch, per level (strides 32, 16, 8).
struct Yolov3Targets {
  std::vector<torch::Tensor> target;  // [B, n_l, 5 + C]: encoded box, objectness 1, one-hot class (positives)
  std::vector<torch::Tensor> negative;  // [B, n_l] bool
};
Yolov3Targets yolov3_targets(const std::vector<torch::Tensor>& pred_maps, const BoxTargets& targets);

// YOLOV3Head.loss_by_feat with the config's losses, each summed over the batch,
// the priors and the levels (no normalisation): loss_cls (BCE on class logits,
// positives, weight 1), loss_conf (BCE on objectness, positives and negatives,
// 1), loss_xy (BCE on raw tx, ty, positives, 2), loss_wh (squared error on
// tw, th, positives, 2).
std::map<std::string, torch::Tensor> yolov3_losses(const std::vector<torch::Tensor>& pred_maps,
                                                   const BoxTargets& targets);

}  // namespace automm::detection
