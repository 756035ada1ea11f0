// What predict() returns: one prediction per row, typed. Classes stay class
// labels and numbers stay numbers; text cells are made only on request.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "automm/table.h"

namespace automm {

struct Predictions {
  std::string name;  // the label column the predictions are for
  // Class labels, when the predictions are classes: `values` then holds class
  // indices [rows] (int64), or a 0/1 indicator per class [rows, classes] for
  // tasks that predict a set of classes per row.
  std::vector<std::string> classes;
  torch::Tensor values;  // [rows] int64 class indices or float64 numbers; [rows, classes] indicators
  // Semantic segmentation: each image's mask at the image's own size, [height,
  // width] bool (binary masks) or int64 class indices; `values` is undefined then.
  std::vector<torch::Tensor> masks;
  // Object detection: each image's boxes in its own pixels, best score first;
  // `values` and `masks` are empty then.
  struct ImageDetections {
    torch::Tensor boxes;   // [n, 4] float32 in box_format
    torch::Tensor scores;  // [n] float32
    torch::Tensor labels;  // [n] int64 indices into classes
  };
  std::vector<ImageDetections> detections;
  std::string box_format;  // "xyxy" ([x1, y1, x2, y2]) or "xywh" ([x1, y1, width, height])
  std::vector<int64_t> category_ids;  // each class's COCO category id (COCO results name classes by it)

  size_t size() const {
    return values.defined() ? static_cast<size_t>(values.size(0)) : !masks.empty() ? masks.size() : detections.size();
  }
  bool are_classes() const { return !classes.empty() && detections.empty(); }
  bool are_masks() const { return !values.defined() && !masks.empty(); }
  bool are_detections() const { return !values.defined() && masks.empty() && !box_format.empty(); }
  // Row `row` as text: its class (a set of classes joined by ';'), or its
  // number written with the fewest digits that read back to the same double.
  // Masks and detections have no text (they are written as files): throws.
  std::string text(size_t row) const;
  // Every row's class label; throws when the predictions are numbers.
  std::vector<std::string> labels() const;
  // Every row's number; throws when the predictions are classes.
  std::vector<double> numbers() const;
  // A table column named `name` holding text(row) for each row.
  Column to_column() const;
};

}  // namespace automm
