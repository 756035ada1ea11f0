#include "image_processor.h"
#include "config/json_text.h"

#include <algorithm>
#include <filesystem>

#include "data/image/image_io.h"

namespace automm {
namespace {
namespace fs = std::filesystem;

Image decode(const ImageRef& ref) {
  if (!ref.path.empty()) return read_image(ref.path);
  return decode_image(decode_base64(ref.base64, ref.where), ref.where);
}

}  // namespace

ImageProcessorOptions image_processor_options(const Config& config, const std::string& model_key,
                                              int64_t default_size, const std::string& interpolation) {
  ImageProcessorOptions options;
  options.image_size = config.is_null(model_key + ".image_size") ? default_size : config.get_int(model_key + ".image_size");
  std::tie(options.mean, options.std) = image_norm_stats(config.get_string(model_key + ".image_norm"));
  options.interpolation = interpolation;
  options.max_images_per_column = config.get_int(model_key + ".max_image_num_per_column");
  options.skip_invalid = config.get_string("data.image.missing_value_strategy") == "skip";
  options.train_transforms = config.get_list(model_key + ".train_transforms");
  options.val_transforms = config.get_list(model_key + ".val_transforms");
  return options;
}

nlohmann::json image_options_to_json(const ImageProcessorOptions& o) {
  return {{"image_size", o.image_size},
          {"mean", o.mean},
          {"std", o.std},
          {"interpolation", o.interpolation},
          {"max_images_per_column", o.max_images_per_column},
          {"skip_invalid", o.skip_invalid},
          {"train_transforms", o.train_transforms},
          {"val_transforms", o.val_transforms}};
}

ImageProcessorOptions image_options_from_json(const nlohmann::json& s, const std::string& what) {
  ImageProcessorOptions options;
  options.image_size = json_integer_field(s, "image_size", 0, what);
  if (options.image_size < 1) throw std::runtime_error(what + ": \"image_size\" must be a positive integer");
  options.mean = s.at("mean").get<std::array<double, 3>>();
  options.std = s.at("std").get<std::array<double, 3>>();
  options.interpolation = s.at("interpolation").get<std::string>();
  options.max_images_per_column = json_integer_field(s, "max_images_per_column", 1, what);
  options.skip_invalid = s.at("skip_invalid").get<bool>();
  options.train_transforms = s.at("train_transforms").get<std::vector<std::string>>();
  options.val_transforms = s.at("val_transforms").get<std::vector<std::string>>();
  return options;
}

std::shared_ptr<const ImageProcessor> ImageProcessor::create(const std::string& model_name,
                                                             const std::vector<std::pair<std::string, bool>>& columns,
                                                             ImageProcessorOptions options) {
  if (columns.empty()) throw std::invalid_argument("image model '" + model_name + "' has no image column to read");
  auto processor = std::shared_ptr<ImageProcessor>(new ImageProcessor());
  processor->model_name_ = model_name;
  processor->columns_ = columns;
  std::sort(processor->columns_.begin(), processor->columns_.end());
  processor->options_ = std::move(options);
  const ImageProcessorOptions& o = processor->options_;
  processor->train_ = std::make_unique<ImagePipeline>(o.train_transforms, o.image_size, o.interpolation);
  processor->val_ = std::make_unique<ImagePipeline>(o.val_transforms, o.image_size, o.interpolation);
  return processor;
}

std::shared_ptr<const ImageInputs> ImageProcessor::transform(const Table& table, const std::string& base_dir) const {
  auto inputs = std::make_shared<ImageInputs>();
  inputs->processor = shared_from_this();
  const size_t rows = table.num_rows();
  inputs->rows.assign(rows, std::vector<ImageRef>(static_cast<size_t>(slots())));
  for (size_t c = 0; c < columns_.size(); ++c) {
    const auto& [name, is_path] = columns_[c];
    const Column& column = table.column(name);
    for (size_t r = 0; r < rows; ++r) {
      if (column.is_missing(r)) continue;
      const std::string where = "row " + std::to_string(r + 1) + " of column '" + name + "' in " + table.source;
      std::vector<ImageRef> refs;
      const std::string cell = column.text(r);
      if (is_path && cell.rfind("data:", 0) == 0) {
        // An inline image in a path column (an RFC 2397 data URI, which
        // decode_base64 reads): how `automm serve` passes a request's image.
        refs.push_back({"", cell, where});
      } else if (is_path) {
        for (const std::string& part : split_image_paths(cell)) {
          fs::path path(part);
          if (path.is_relative() && !base_dir.empty()) path = fs::path(base_dir) / path;
          refs.push_back({path.string(), "", where});
        }
      } else {
        refs.push_back({"", cell, where});
      }
      for (size_t k = 0; k < refs.size() && static_cast<int64_t>(k) < options_.max_images_per_column; ++k)
        inputs->rows[r][c * static_cast<size_t>(options_.max_images_per_column) + k] = refs[k];
    }
  }
  return inputs;
}

std::vector<size_t> ImageProcessor::readable_rows(const ImageInputs& inputs) const {
  std::vector<size_t> rows;
  for (size_t r = 0; r < inputs.rows.size(); ++r) {
    // Every image the row names must decode, and it must name at least one.
    bool readable = true;
    for (const ImageRef& ref : inputs.rows[r]) {
      if (!readable) break;
      if (ref.missing()) continue;
      try {
        decode(ref);
      } catch (const ImageDecodeError&) {
        readable = false;
      }
    }
    bool any = false;
    for (const ImageRef& ref : inputs.rows[r]) any |= !ref.missing();
    if (readable && any) rows.push_back(r);
  }
  return rows;
}

ImageBatch ImageProcessor::make_batch(const ImageInputs& inputs, const std::vector<int64_t>& rows,
                                      std::mt19937_64* training_rng) const {
  const int64_t n = static_cast<int64_t>(rows.size()), size = options_.image_size;
  ImageBatch batch{torch::zeros({n, slots(), 3, size, size}), torch::zeros({n, slots()})};
  std::mt19937_64 unused(0);
  const ImagePipeline& pipeline = training_rng ? *train_ : *val_;
  for (int64_t i = 0; i < n; ++i) {
    const auto& refs = inputs.rows.at(static_cast<size_t>(rows[i]));
    for (int64_t s = 0; s < slots(); ++s) {
      const ImageRef& ref = refs[static_cast<size_t>(s)];
      if (ref.missing()) continue;
      Image image;
      try {
        image = decode(ref);
      } catch (const ImageDecodeError& e) {
        // A black image, left out of the average (strategy zero), and reported.
        inputs.record_unreadable(rows[i], columns_.at(static_cast<size_t>(s / options_.max_images_per_column)).first,
                                 ref, e.what());
        continue;
      }
      const Image out = pipeline.apply(image, training_rng ? *training_rng : unused);
      if (out.width != size || out.height != size)
        throw std::invalid_argument("the " + std::string(training_rng ? "train" : "val") + "_transforms of " +
                                    model_name_ + " give " + std::to_string(out.width) + "x" +
                                    std::to_string(out.height) + " images, not " + std::to_string(size) + "x" +
                                    std::to_string(size) + "; end the list with center_crop or resize_to_square");
      batch.images[i][s].copy_(to_normalized_tensor(out, options_.mean, options_.std));
      batch.mask[i][s] = 1.0;
    }
  }
  return batch;
}

void ImageInputs::record_unreadable(int64_t row, const std::string& column, const ImageRef& ref,
                                    const std::string& reason) const {
  std::lock_guard<std::mutex> lock(mutex_);
  Unreadable& u = unreadable_[column];
  if (!u.rows.insert(row).second) return;
  if (u.examples.size() < 3)
    u.examples.push_back((ref.path.empty() ? ref.where + " (base64 bytes)" : ref.path) + ": " + reason);
}

std::vector<std::string> ImageInputs::problems() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::string> lines;
  for (const auto& [column, u] : unreadable_) {
    std::string line = std::to_string(u.rows.size()) + " row" + (u.rows.size() == 1 ? "" : "s") +
                       " had an unreadable image in column '" + column +
                       "', read as a black image left out of the row's average (data.image.missing_value_strategy = "
                       "zero; skip drops such rows): ";
    for (size_t i = 0; i < u.examples.size(); ++i) line += (i ? "; " : "") + u.examples[i];
    if (u.rows.size() > u.examples.size()) line += "; ...";
    lines.push_back(line);
  }
  return lines;
}

void ImageInputs::add_to_batch(const std::vector<int64_t>& rows, const BatchPlacement& placement,
                               std::mt19937_64* training_rng, Batch& batch) const {
  ImageBatch images = processor->make_batch(*this, rows, training_rng);
  batch.images[processor->model_name()] = {images.images.to(placement.device, placement.float_dtype),
                                           images.mask.to(placement.device)};
}

}  // namespace automm
