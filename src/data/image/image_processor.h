// AutoMM's image processor for one image model: the image columns of a row
// (paths, several per cell, or base64 bytes), decoded and transformed per
// batch (train_transforms when training, val_transforms otherwise) into
// [batch, images, 3, size, size] tensors with a validity mask.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "automm/config.h"
#include "data/batch.h"
#include "data/dataset.h"
#include "automm/table.h"
#include "data/image/image.h"
#include "data/image/transforms.h"

namespace automm {

class ImageProcessor;

// One image of a row: a file path or raw (base64-decoded later) bytes; empty
// when the cell is missing. `where` names the row and column for messages.
struct ImageRef {
  std::string path;
  std::string base64;
  std::string where;
  bool missing() const { return path.empty() && base64.empty(); }
};

// A table's image cells for one image model: [row][slot], slots being each
// column's first max_image_num_per_column images.
struct ImageInputs : ModelInputs {
  // Puts the rows' decoded, transformed images into batch.images[model name].
  void add_to_batch(const std::vector<int64_t>& rows, const BatchPlacement& placement, std::mt19937_64* training_rng,
                    Batch& batch) const override;

  std::vector<std::string> problems() const override;
  // An image of `row` in image column `column` did not decode, for `reason`.
  void record_unreadable(int64_t row, const std::string& column, const ImageRef& ref, const std::string& reason) const;

  std::shared_ptr<const ImageProcessor> processor;
  std::vector<std::vector<ImageRef>> rows;

 private:
  struct Unreadable {
    std::set<int64_t> rows;
    std::vector<std::string> examples;  // the first few "path: reason"
  };
  mutable std::mutex mutex_;
  mutable std::map<std::string, Unreadable> unreadable_;  // by column
};

struct ImageProcessorOptions {
  int64_t image_size = 224;
  std::array<double, 3> mean{}, std{};
  std::string interpolation = "bicubic";
  int64_t max_images_per_column = 1;
  bool skip_invalid = false;  // data.image.missing_value_strategy = skip
  std::vector<std::string> train_transforms, val_transforms;
};

class ImageProcessor : public std::enable_shared_from_this<ImageProcessor> {
 public:
  // columns: image column name -> true for image_path, false for base64 bytes.
  static std::shared_ptr<const ImageProcessor> create(const std::string& model_name,
                                                      const std::vector<std::pair<std::string, bool>>& columns,
                                                      ImageProcessorOptions options);

  // Collects the image cells; relative paths resolve against `base_dir`.
  std::shared_ptr<const ImageInputs> transform(const Table& table, const std::string& base_dir) const;

  // The rows whose images all decode (missing_value_strategy = skip drops the others).
  std::vector<size_t> readable_rows(const ImageInputs& inputs) const;

  // Decoded, transformed and normalized images of `rows`. With `training_rng`
  // the train transforms apply, else the val transforms. An image that is
  // missing or fails to decode is a zero tensor with mask 0.
  ImageBatch make_batch(const ImageInputs& inputs, const std::vector<int64_t>& rows,
                        std::mt19937_64* training_rng) const;

  const std::string& model_name() const { return model_name_; }
  const std::vector<std::pair<std::string, bool>>& columns() const { return columns_; }
  const ImageProcessorOptions& options() const { return options_; }
  int64_t slots() const { return static_cast<int64_t>(columns_.size()) * options_.max_images_per_column; }

 private:
  ImageProcessor() = default;
  std::string model_name_;
  std::vector<std::pair<std::string, bool>> columns_;
  ImageProcessorOptions options_;
  std::unique_ptr<ImagePipeline> train_, val_;
};

// Options from <model_key>.* (model.timm_image, model.clip: image_size,
// image_norm, max_image_num_per_column, train_transforms, val_transforms) and
// data.image.* for a model whose checkpoint gives `default_size` and
// `interpolation`.
ImageProcessorOptions image_processor_options(const Config& config, const std::string& model_key,
                                              int64_t default_size, const std::string& interpolation);

// The options as a predictor folder's processors.json keeps them, and back;
// `what` names the entry in errors.
nlohmann::json image_options_to_json(const ImageProcessorOptions& options);
ImageProcessorOptions image_options_from_json(const nlohmann::json& saved, const std::string& what);

}  // namespace automm
