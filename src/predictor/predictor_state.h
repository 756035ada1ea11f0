// What a fitted predictor holds; shared by predictor.cpp and save_load.cpp.
#pragma once

#include <string>
#include <vector>

#include "automm/data.h"
#include "automm/learner.h"
#include "automm/models.h"
#include "automm/predictor.h"
#include "data/image/image_processor.h"
#include "data/text/text_processor.h"

namespace automm {

struct MultiModalPredictor::State {
  PredictorOptions options;
  Config config;
  bool fitted = false;
  ProblemType problem_type = ProblemType::kBinary;
  std::string eval_metric;
  std::string validation_metric;
  ColumnTypes column_types;
  LabelProcessor label_processor;
  NumericalProcessor numerical;
  CategoricalProcessor categorical;
  // One per text model; each model's checkpoint folder is in context.checkpoint_dirs.
  std::vector<std::shared_ptr<const TextProcessor>> text_processors;
  // One per image model; each model's architecture is in context.image_models.
  std::vector<std::shared_ptr<const ImageProcessor>> image_processors;
  std::vector<std::string> model_names;
  ModelContext context;
  MultiModalNet net{nullptr};
  Json summary = Json::object();
  std::vector<LogRow> log;
  // bf16 copies of the matmul weights for mixed-precision inference, made once.
  mutable CastWeightCache cast_weights;
  // Set by load(path, resume=true): the unfinished fit's options; fit() continues it.
  Json resume_fit_options;

  void require_fitted(const char* what) const;
  // Processes features (and labels when asked) with the fitted processors;
  // `training` keeps the texts for training-time augmentation.
  TabularTensors process(const Table& data, bool with_labels, bool training = false) const;
  // Text models: their checkpoint folders (pretrained, or made from scratch
  // out of the training text) and processors. Before the net is built.
  void prepare_text_models(const Table& train_table);
  // Image models: their architectures, pretrained weights and processors.
  void prepare_image_models();
  // With data.image.missing_value_strategy = skip: the rows whose images all
  // decode (every row otherwise); `what` names the table in the warning.
  Table rows_with_readable_images(const Table& data, const std::string& what) const;
  // Intra-op threads for inference on `rows` rows: every core for text and image
  // models, else configure_threads on the parameters times the rows in a batch
  // (tiny tabular nets run on one thread).
  void configure_inference_threads(int64_t rows) const;
  // Logits for the table's rows.
  torch::Tensor logits(const Table& data) const;
  void warn(const std::string& message) const;
  // Where an unfinished fit keeps its state: <path>/resume.
  std::string resume_dir() const;
  // Writes the metadata a resumed fit needs (config, processors, fit options).
  void write_resume_files(const Json& fit_options) const;
  // The score of `metric` on model outputs, in label units for regression.
  double score(const std::string& metric, const torch::Tensor& logits, const torch::Tensor& labels) const;
};

// Copies a text checkpoint's config and tokenizer files (not its weights) from
// `from` into the folder `to` (created), so that a predictor folder is self-contained.
void copy_text_checkpoint_files(const std::string& from, const std::string& to);

// The current on-disk format of a saved predictor.
constexpr int kFormatVersion = 1;

}  // namespace automm
