#include "automm/predictions.h"

#include <charconv>
#include <stdexcept>

namespace automm {

std::string Predictions::text(size_t row) const {
  if (are_masks())
    throw std::logic_error("the predictions of '" + name +
                           "' are masks, one image each: write them as PNG files (automm predict --out FOLDER)");
  if (are_detections())
    throw std::logic_error("the predictions of '" + name +
                           "' are boxes, a list per image: write them as COCO results or a CSV of boxes "
                           "(automm predict --out preds.json | preds.csv)");
  const torch::Tensor v = values.contiguous();
  if (!are_classes()) {
    // The shortest text that reads back as the same double.
    const double value = v.scalar_type() == torch::kFloat64 ? v.data_ptr<double>()[row] : v[row].item<double>();
    char buffer[32];
    const auto end = std::to_chars(buffer, buffer + sizeof(buffer), value).ptr;
    return std::string(buffer, end);
  }
  if (v.scalar_type() != torch::kInt64) throw std::logic_error("class predictions must be int64 indices");
  if (v.dim() == 1) return classes.at(static_cast<size_t>(v.data_ptr<int64_t>()[row]));
  const int64_t width = v.size(1);
  const int64_t* indicators = v.data_ptr<int64_t>() + static_cast<int64_t>(row) * width;
  std::string joined;
  for (int64_t c = 0; c < width; ++c)
    if (indicators[c] != 0) joined += (joined.empty() ? "" : ";") + classes.at(static_cast<size_t>(c));
  return joined;
}

std::vector<std::string> Predictions::labels() const {
  if (!are_classes()) throw std::logic_error("the predictions of '" + name + "' are numbers, not class labels");
  std::vector<std::string> out;
  for (size_t r = 0; r < size(); ++r) out.push_back(text(r));
  return out;
}

std::vector<double> Predictions::numbers() const {
  if (are_classes()) throw std::logic_error("the predictions of '" + name + "' are class labels, not numbers");
  const torch::Tensor v = values.to(torch::kFloat64).contiguous();
  return std::vector<double>(v.data_ptr<double>(), v.data_ptr<double>() + v.numel());
}

Column Predictions::to_column() const {
  Column column(name);
  for (size_t r = 0; r < size(); ++r) column.push(text(r), true);
  return column;
}

}  // namespace automm
