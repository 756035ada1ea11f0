// Box geometry shared by the detectors, their losses and the learner.
// Boxes are [n, 4] xyxy.
#pragma once

#include <torch/torch.h>

namespace automm::detection {

// Pairwise IoU [n, m] (areas (x2 - x1) * (y2 - y1), no +1).
torch::Tensor box_iou(const torch::Tensor& a, const torch::Tensor& b);
// IoU of a[i] with b[i]: [n]. eps is added to the union (mmdet's bbox_overlaps).
torch::Tensor aligned_box_iou(const torch::Tensor& a, const torch::Tensor& b, double eps = 1e-6);

// torchvision.ops.nms: indices of the kept boxes, by decreasing score; a box is
// suppressed when its IoU with a kept, higher-scored box is > iou_threshold.
// Equal scores keep torch.sort's (stable, descending) order.
torch::Tensor nms(const torch::Tensor& boxes, const torch::Tensor& scores, double iou_threshold);
// torchvision.ops.batched_nms: NMS within each label only (boxes offset by
// label * (max coordinate + 1), as torchvision and mmcv do).
torch::Tensor batched_nms(const torch::Tensor& boxes, const torch::Tensor& scores, const torch::Tensor& labels,
                          double iou_threshold);

}  // namespace automm::detection
