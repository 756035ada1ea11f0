// Box IoU and non-maximum suppression (box_ops.h), with torchvision's semantics.
#include "models/detection/box_ops.h"

#include <algorithm>
#include <stdexcept>
#include <vector>

namespace automm::detection {
namespace {

torch::Tensor areas(const torch::Tensor& boxes) {
  return (boxes.select(1, 2) - boxes.select(1, 0)) * (boxes.select(1, 3) - boxes.select(1, 1));
}

void check_boxes(const torch::Tensor& boxes, const char* what) {
  if (boxes.dim() != 2 || boxes.size(1) != 4)
    throw std::invalid_argument(std::string(what) + ": boxes must be [n, 4], got " + std::to_string(boxes.dim()) + " dims");
}

// The greedy loop of torchvision's CPU nms_kernel, in the boxes' own precision
// (float64 boxes are compared in float64, as torchvision does).
template <typename Scalar>
std::vector<int64_t> greedy_nms(const torch::Tensor& boxes, const torch::Tensor& order,
                                double iou_threshold) {
  const int64_t n = boxes.size(0);
  const auto b = boxes.accessor<Scalar, 2>();
  const auto ord = order.accessor<int64_t, 1>();
  std::vector<Scalar> area(n);
  for (int64_t i = 0; i < n; ++i) area[i] = (b[i][2] - b[i][0]) * (b[i][3] - b[i][1]);
  std::vector<char> suppressed(n, 0);
  std::vector<int64_t> keep;
  for (int64_t k = 0; k < n; ++k) {
    const int64_t i = ord[k];
    if (suppressed[i]) continue;
    keep.push_back(i);
    for (int64_t l = k + 1; l < n; ++l) {
      const int64_t j = ord[l];
      if (suppressed[j]) continue;
      const Scalar w = std::max(Scalar(0), std::min(b[i][2], b[j][2]) - std::max(b[i][0], b[j][0]));
      const Scalar h = std::max(Scalar(0), std::min(b[i][3], b[j][3]) - std::max(b[i][1], b[j][1]));
      const Scalar inter = w * h;
      const Scalar iou = inter / (area[i] + area[j] - inter);
      if (iou > iou_threshold) suppressed[j] = 1;
    }
  }
  return keep;
}

}  // namespace

torch::Tensor box_iou(const torch::Tensor& a, const torch::Tensor& b) {
  check_boxes(a, "box_iou");
  check_boxes(b, "box_iou");
  const auto top_left = torch::max(a.unsqueeze(1).narrow(2, 0, 2), b.unsqueeze(0).narrow(2, 0, 2));
  const auto bottom_right = torch::min(a.unsqueeze(1).narrow(2, 2, 2), b.unsqueeze(0).narrow(2, 2, 2));
  const auto wh = (bottom_right - top_left).clamp_min(0);  // [n, m, 2]
  const auto inter = wh.select(2, 0) * wh.select(2, 1);
  return inter / (areas(a).unsqueeze(1) + areas(b).unsqueeze(0) - inter);
}

torch::Tensor aligned_box_iou(const torch::Tensor& a, const torch::Tensor& b, double eps) {
  check_boxes(a, "aligned_box_iou");
  check_boxes(b, "aligned_box_iou");
  const auto top_left = torch::max(a.narrow(1, 0, 2), b.narrow(1, 0, 2));
  const auto bottom_right = torch::min(a.narrow(1, 2, 2), b.narrow(1, 2, 2));
  const auto wh = (bottom_right - top_left).clamp_min(0);
  const auto inter = wh.select(1, 0) * wh.select(1, 1);
  const auto uni = (areas(a) + areas(b) - inter).clamp_min(eps);
  return inter / uni;
}

torch::Tensor nms(const torch::Tensor& boxes_in, const torch::Tensor& scores_in, double iou_threshold) {
  check_boxes(boxes_in, "nms");
  if (scores_in.dim() != 1 || scores_in.size(0) != boxes_in.size(0))
    throw std::invalid_argument("nms: scores must be [n] for [n, 4] boxes");
  const int64_t n = boxes_in.size(0);
  if (n == 0) return torch::empty({0}, torch::kLong);
  const auto order =
      std::get<1>(scores_in.detach().to(torch::kCPU).sort(/*stable=*/true, 0, /*descending=*/true));
  const bool is_double = boxes_in.scalar_type() == torch::kDouble;
  const auto boxes =
      boxes_in.detach().to(torch::kCPU, is_double ? torch::kDouble : torch::kFloat).contiguous();
  const auto keep = is_double ? greedy_nms<double>(boxes, order, iou_threshold)
                              : greedy_nms<float>(boxes, order, iou_threshold);
  return torch::tensor(keep, torch::kLong);
}

torch::Tensor batched_nms(const torch::Tensor& boxes, const torch::Tensor& scores, const torch::Tensor& labels,
                          double iou_threshold) {
  check_boxes(boxes, "batched_nms");
  if (boxes.size(0) == 0) return torch::empty({0}, torch::kLong);
  const auto max_coordinate = boxes.detach().max();
  const auto offsets = labels.to(boxes.dtype()) * (max_coordinate + 1);
  return nms(boxes.detach() + offsets.unsqueeze(1), scores, iou_threshold);
}

}  // namespace automm::detection
