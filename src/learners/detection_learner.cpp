// The learner of object detection (AutoMM's learners/object_detection.py and
// optim/lit_mmdet.py):
//
//  - data: a COCO file read into a table (data/image/coco.h), or a table with an
//    image column and a rois column of [x1, y1, x2, y2, class] boxes; the
//    classes come from the COCO categories (or the largest class index);
//  - the detector (models/detection) is chosen by model.mmdet_image.checkpoint_name,
//    its weights read from an mmdet checkpoint, the head re-initialised when
//    the class count differs;
//  - AutoMM's detection presets: AdamW with the head at lr * lr_mult
//    (two_stages), multi_step decay per epoch, gradient clipping, validation
//    with COCO mAP, top-k "best";
//  - predictions are boxes in each image's own pixels.
#include "learners/detection_learner.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iomanip>
#include <limits>
#include <numeric>
#include <optional>
#include <random>
#include <set>
#include <sstream>

#include "automm/log.h"
#include "data/image/coco.h"
#include "data/image/detection_data.h"
#include "data/processors.h"
#include "learners/checkpoints.h"
#include "learners/learner_io.h"
#include "learners/placement.h"
#include "learners/trainer.h"
#include "modalities/modality.h"
#include "models/detection/detector.h"
#include "models/detection/mmdet_checkpoint.h"
#include "models/skip_init.h"
#include "optim/coco_eval.h"
#include "optim/optim.h"

namespace automm {
namespace {

namespace fs = std::filesystem;
using detection::DetectorImpl;
using detection::DetectorSpec;

constexpr const char* kProblemType = "object_detection";
constexpr const char* kModelName = "mmdet_image";

// AutoMM's detection presets (utils/presets.py, object_detection), the base
// for every quality, then each quality's checkpoint. AutoMM's default and
// high_quality presets use DINO and best_quality DINO on Swin-L, which
// automm.cpp does not build: they use yolox_l and yolox_x (the fit log says so).
Json detection_defaults(const std::string& quality, std::string* note) {
  Json d = {{"env.batch_size", 32},
            {"env.per_gpu_batch_size", 1},
            {"env.inference_batch_size_ratio", 1},
            {"optim.optim_type", "adamw"},
            {"optim.lr", 1e-5},
            {"optim.weight_decay", 1e-4},
            {"optim.lr_choice", "two_stages"},
            {"optim.lr_mult", 10},
            {"optim.lr_schedule", "multi_step"},
            {"optim.gradient_clip_val", 0.1},
            {"optim.gradient_clip_algorithm", "norm"},
            {"optim.max_epochs", 60},
            {"optim.warmup_steps", 0.0},
            {"optim.patience", 20},
            {"optim.top_k", 1},
            {"optim.top_k_average_method", "best"},
            {"optim.check_val_every_n_epoch", 1}};
  if (quality == "medium_quality") {
    d.update({{"model.mmdet_image.checkpoint_name", "yolox_l"}, {"env.per_gpu_batch_size", 2}, {"optim.lr", 5e-5},
              {"optim.lr_mult", 100}, {"optim.weight_decay", 1e-3}, {"optim.lr_schedule", "cosine_decay"},
              {"optim.gradient_clip_val", 1}, {"optim.max_epochs", 50}, {"optim.check_val_every_n_epoch", 3},
              {"optim.patience", 5}});
  } else if (quality == "best_quality") {
    d["model.mmdet_image.checkpoint_name"] = "yolox_x";
    *note = "preset best_quality: AutoMM uses DINO (Swin-L), which automm.cpp does not build; yolox_x instead";
  } else {
    d["model.mmdet_image.checkpoint_name"] = "yolox_l";
    *note = "preset " + quality + ": AutoMM uses DINO (ResNet-50), which automm.cpp does not build; yolox_l instead";
  }
  return d;
}

// The keys this learner reads; a user-set key outside them is refused.
const std::vector<std::string>& detection_keys() {
  static const std::vector<std::string> keys = {
      "model.names", "model.mmdet_image.", "optim.lr", "optim.optim_type", "optim.weight_decay", "optim.lr_choice",
      "optim.lr_mult", "optim.lr_schedule", "optim.max_epochs", "optim.max_steps", "optim.warmup_steps",
      "optim.patience", "optim.top_k", "optim.top_k_average_method", "optim.gradient_clip_algorithm",
      "optim.gradient_clip_val", "optim.check_val_every_n_epoch", "env.per_gpu_batch_size", "env.batch_size",
      "env.inference_batch_size_ratio"};  // fp32 on the CPU only: env.precision and the accelerator keys are refused
  return keys;
}

std::string fixed(double value, int digits = 4) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(digits) << value;
  return out.str();
}

// Every row's image, boxes and (for evaluation) COCO ground truth.
struct DetectionRows {
  std::vector<std::string> images, where;
  std::vector<std::vector<LabeledBox>> boxes;
  std::vector<std::vector<CocoGtBox>> gt;
  std::vector<int64_t> image_ids;
  bool annotated = false;

  size_t size() const { return images.size(); }
  DetectionRows select(const std::vector<size_t>& rows) const {
    DetectionRows out;
    out.annotated = annotated;
    for (size_t r : rows) {
      out.images.push_back(images[r]);
      out.where.push_back(where[r]);
      out.boxes.push_back(boxes[r]);
      out.gt.push_back(gt[r]);
      out.image_ids.push_back(image_ids[r]);
    }
    return out;
  }
};

class DetectionLearner : public Learner {
 public:
  explicit DetectionLearner(PredictorOptions options) : options_(std::move(options)) {
    config_.merge(options_.hyperparameters);
  }

  void fit(const Table& train, const FitOptions& fit, const Learner* teacher) override {
    if (teacher) throw std::invalid_argument("knowledge distillation is not available for object_detection");
    if (fitted_) throw std::logic_error("this detection predictor is fitted already; make a new one to fit again");
    if (options_.path.empty()) options_.path = default_predictor_path();
    config_.merge(fit.hyperparameters);
    std::string preset_note;
    const std::string quality = !fit.presets.empty() ? fit.presets : options_.presets.empty() ? "high_quality" : options_.presets;
    if (quality != "medium_quality" && quality != "high_quality" && quality != "best_quality")
      throw std::invalid_argument("preset '" + quality + "' is not a detection preset; known: medium_quality, "
                                  "high_quality, best_quality");
    const Json defaults = detection_defaults(quality, &preset_note);
    for (const auto& [key, value] : defaults.items())
      if (!config_.user_keys().count(key)) {
        config_.set(key, value);
        config_.mark_as_preset(key);
      }
    if (config_.user_keys().count("model.mmdet_image.checkpoint_name")) preset_note.clear();
    require_used_keys(config_, detection_keys(), kProblemType);
    config_.check_supported();
    check_settings();
    const auto start = std::chrono::steady_clock::now();

    read_columns(train);
    DetectionRows all = rows_of(train, true);
    DetectionRows train_set, tuning_set;
    if (fit.tuning_data) {
      train_set = std::move(all);
      tuning_set = rows_of(*fit.tuning_data, true);
    } else {
      const double fraction = fit.holdout_frac > 0 ? fit.holdout_frac : default_holdout_fraction(all.size());
      const auto [train_rows, holdout_rows] =
          split_holdout(std::vector<std::string>(all.size()), fraction, fit.seed);
      train_set = all.select(train_rows);
      tuning_set = all.select(holdout_rows);
    }
    if (train_set.size() == 0) throw std::invalid_argument(train.source + " has no image to train on");
    if (tuning_set.size() == 0) throw std::invalid_argument("no validation image: give tuning data or more images");
    if (options_.verbose && !preset_note.empty()) log_message(LogLevel::kInfo, "automm: " + preset_note);

    torch::manual_seed(fit.seed);  // random weights are reproducible
    build(/*for_training=*/true);
    train_network(train_set, tuning_set, fit, start);
    fitted_ = true;
  }

  Predictions predict(const Table& data) const override {
    require_fitted("predict");
    Predictions out;
    out.name = "bboxes";
    out.classes = classes_;
    out.box_format = config_.get_string("model.mmdet_image.output_bbox_format");
    out.category_ids = category_ids_;
    const DetectionRows rows = rows_of(data, false);
    detect_rows(rows, [&](size_t, Predictions::ImageDetections d) {
      if (out.box_format == "xywh") {
        auto b = d.boxes.clone();
        b.select(1, 2) -= b.select(1, 0);
        b.select(1, 3) -= b.select(1, 1);
        d.boxes = b;
      }
      out.detections.push_back(std::move(d));
    });
    return out;
  }

  torch::Tensor predict_proba(const Table&, bool) const override {
    throw std::invalid_argument("predict_proba is not available for object_detection (as in AutoMM): predict "
                                "returns each box's score");
  }

  std::map<std::string, double> evaluate(const Table& data, const std::vector<std::string>& metrics_in) const override {
    require_fitted("evaluate");
    const auto& names = coco_metric_names();
    std::vector<std::string> metrics = metrics_in;
    if (metrics.empty()) metrics.assign(names.begin(), names.end());
    for (const std::string& m : metrics)
      if (m != "mean_average_precision" && std::find(names.begin(), names.end(), m) == names.end())
        throw std::invalid_argument("metric '" + m + "' does not apply to object_detection; known: map, map_50, "
                                    "map_75, map_small, map_medium, map_large, mar_1, mar_10, mar_100, mar_small, "
                                    "mar_medium, mar_large, mean_average_precision");
    if (data.has_column(kCocoCategoriesColumn) && !data.has_column(kCocoGtColumn))
      throw std::invalid_argument(data.source + " has no \"annotations\" to evaluate against");
    const DetectionRows rows = rows_of(data, true);
    if (rows.size() == 0) throw std::invalid_argument(data.source + " has no image to evaluate");
    check_categories(data);
    const auto stats = score(rows);
    std::map<std::string, double> out;
    for (const std::string& m : metrics) {
      const size_t at = m == "mean_average_precision" ? 0 : std::find(names.begin(), names.end(), m) - names.begin();
      out[m] = stats[at];
    }
    return out;
  }

  torch::Tensor extract_embedding(const Table&) const override {
    throw std::invalid_argument("extract_embedding is not available for object_detection (as in AutoMM)");
  }
  torch::Tensor head_outputs(const Table&) const override { throw no_head(); }
  torch::Tensor classify_features(const torch::Tensor&) const override { throw no_head(); }
  void export_model(const Table&, const std::string&, const ExportOptions&) const override {
    throw std::invalid_argument("export is not available for object_detection predictors yet: the saved folder's "
                                "model.safetensors holds the detector under mmdet's parameter names");
  }

  void write(const std::string& folder, bool, const Json& extra) const override {
    Json predictor = {{"format", kPredictorFormat},
                      {"format_version", kFormatVersion},
                      {"label", options_.label},
                      {"problem_type", kProblemType},
                      {"eval_metric", "map"},
                      {"image_column", image_column_},
                      {"boxes_column", boxes_column_},
                      {"detector", spec_.name},
                      {"image_size", spec_.input.image_size},
                      {"classes", classes_},
                      {"category_ids", category_ids_},
                      {"config", config_.to_json()},
                      {"fit_summary", summary_}};
    if (fitted_) predictor.update(write_network_weights(*net_, folder));
    predictor.update(extra);
    write_text_file((fs::path(folder) / kPredictorFile).string(), predictor.dump(2));
  }

  void read(const std::string& folder, const Json& meta, bool resume) override {
    if (resume) throw std::invalid_argument("object_detection fits keep no unfinished state to resume");
    const std::string where = (fs::path(folder) / kPredictorFile).string();
    std::string name;
    int64_t image_size = 0;
    try {
      options_.label = meta.at("label").get<std::string>();
      image_column_ = meta.at("image_column").get<std::string>();
      boxes_column_ = meta.at("boxes_column").get<std::string>();
      name = meta.at("detector").get<std::string>();
      image_size = meta.at("image_size").get<int64_t>();
      classes_ = meta.at("classes").get<std::vector<std::string>>();
      category_ids_ = meta.at("category_ids").get<std::vector<int64_t>>();
      config_ = Config::from_json(meta.at("config"));
      summary_ = meta.at("fit_summary");
    } catch (const nlohmann::json::exception& e) {
      throw std::runtime_error(where + ": " + e.what());
    }
    spec_ = detection::detector_spec(name, static_cast<int64_t>(classes_.size()));
    detection::set_input_size(spec_, image_size);
    {
      const SkipInitialization skip;  // every weight comes from the file
      net_ = detection::make_detector(spec_);
    }
    read_network_weights(*net_, folder, meta);
    net_->eval();
    fitted_ = true;
  }
  void relocate(const std::string&) override {}

  bool fitted() const override { return fitted_; }
  Json fit_summary() const override { return summary_; }
  std::string problem_type() const override { return kProblemType; }
  std::string eval_metric() const override { return "map"; }
  std::vector<std::string> classes() const override { return classes_; }
  std::map<std::string, std::string> column_types() const override {
    return {{image_column_, "image_path"}, {boxes_column_, "rois"}};
  }
  const Config& config() const override { return config_; }
  PredictorOptions& options() override { return options_; }
  const PredictorOptions& options() const override { return options_; }

 private:
  // Every core, no gradients, eval mode (detection runs in fp32 on the CPU: AutoMM's CPU fallback).
  struct InferenceScope {
    explicit InferenceScope(const DetectionLearner& learner) : threads(choose_thread_count()) { learner.net_->eval(); }
    ThreadScope threads;
    torch::NoGradGuard no_grad;
  };

  static std::logic_error no_head() {
    return std::logic_error("object_detection predictors have no classification head to distill from");
  }
  void require_fitted(const char* what) const {
    if (!fitted_) throw std::logic_error(std::string(what) + " needs a fitted predictor: call fit() or load() first");
  }

  void check_settings() const {
    if (config_.user_keys().count("model.names") && config_.get_list("model.names") != std::vector<std::string>{kModelName})
      throw std::invalid_argument("object_detection fits the mmdet_image model alone; model.names must be "
                                  "[\"mmdet_image\"]");
    const std::string lr_choice = config_.get_string("optim.lr_choice");
    if (lr_choice != "two_stages" && lr_choice != "single_stage")
      throw std::invalid_argument("optim.lr_choice = " + lr_choice +
                                  ": object_detection trains with two_stages (the head at lr * lr_mult, AutoMM's "
                                  "preset) or single_stage");
    if (!config_.is_null("model.mmdet_image.image_size") && config_.get_int("model.mmdet_image.image_size") % 32 != 0)
      throw std::invalid_argument("model.mmdet_image.image_size = " +
                                  std::to_string(config_.get_int("model.mmdet_image.image_size")) +
                                  " must be a multiple of 32 (the detectors' largest stride)");
  }

  // The image and boxes columns, and the classes.
  void read_columns(const Table& train) {
    if (train.has_column("image")) {
      image_column_ = "image";
    } else {
      const ColumnTypes types = infer_column_types(train, nullptr, "", {});
      for (const auto& [name, type] : types)
        if (type == ColumnType::kImagePath) image_column_ = image_column_.empty() ? name : image_column_;
      if (image_column_.empty())
        throw std::invalid_argument(train.source + " has no column of image paths (name it 'image')");
    }
    boxes_column_ = !options_.label.empty() && train.has_column(options_.label) ? options_.label : kRoisColumn;
    if (!train.has_column(boxes_column_))
      throw std::invalid_argument(train.source + " has no '" + boxes_column_ +
                                  "' column of boxes [[x1, y1, x2, y2, class], ...]; object_detection reads a COCO "
                                  "file or a table with an image column and a rois column");
    classes_.clear();
    category_ids_.clear();
    if (train.has_column(kCocoCategoriesColumn) && train.num_rows() > 0) {
      for (const auto& [id, name] : parse_coco_categories(train.column(kCocoCategoriesColumn).text(0), train.source)) {
        category_ids_.push_back(id);
        classes_.push_back(name);
      }
      return;
    }
    int64_t max_label = -1;
    const Column& rois = train.column(boxes_column_);
    for (size_t r = 0; r < train.num_rows(); ++r)
      if (!rois.is_missing(r))
        for (const LabeledBox& b : parse_rois(rois.text(r), where_of(train, r))) max_label = std::max(max_label, b.label);
    if (max_label < 0) throw std::invalid_argument(train.source + " holds no box to learn classes from");
    for (int64_t c = 0; c <= max_label; ++c) {
      classes_.push_back(std::to_string(c));
      category_ids_.push_back(c + 1);  // AutoMM's ids for tables: 1..K
    }
  }

  static std::string where_of(const Table& data, size_t row) {
    return "row " + std::to_string(row) + " of " + (data.source.empty() ? "the table" : data.source);
  }

  // A COCO table's categories must be the predictor's.
  void check_categories(const Table& data) const {
    if (!data.has_column(kCocoCategoriesColumn) || data.num_rows() == 0) return;
    const auto cats = parse_coco_categories(data.column(kCocoCategoriesColumn).text(0), data.source);
    std::vector<std::string> names;
    for (const auto& c : cats) names.push_back(c.second);
    if (names != classes_)
      throw std::invalid_argument(data.source + " has other categories than this predictor's (" +
                                  std::to_string(names.size()) + " vs " + std::to_string(classes_.size()) +
                                  "); COCO evaluation needs the same categories in the same order");
  }

  DetectionRows rows_of(const Table& data, bool with_boxes) const {
    if (!data.has_column(image_column_))
      throw std::invalid_argument(data.source + " lacks the image column '" + image_column_ + "'");
    const bool has_gt = data.has_column(kCocoGtColumn);
    if (with_boxes && !has_gt && !data.has_column(boxes_column_))
      throw std::invalid_argument(data.source + " has no boxes ('" + boxes_column_ + "' column, or a COCO file's "
                                  "annotations) to " + (fitted_ ? "evaluate" : "train") + " with");
    const std::string base = table_folder(data);
    DetectionRows out;
    out.annotated = with_boxes;
    const Column& images = data.column(image_column_);
    const Column* rois = data.has_column(boxes_column_) ? &data.column(boxes_column_) : nullptr;
    const Column* ids = data.has_column(kCocoImageIdColumn) ? &data.column(kCocoImageIdColumn) : nullptr;
    for (size_t r = 0; r < data.num_rows(); ++r) {
      const std::string where = where_of(data, r);
      if (images.is_missing(r)) throw std::invalid_argument(where + " has no image in column '" + image_column_ + "'");
      const fs::path path(images.text(r));
      out.images.push_back((path.is_relative() && !base.empty() ? fs::path(base) / path : path).string());
      out.where.push_back(where);
      std::vector<LabeledBox> boxes;
      if (rois && !rois->is_missing(r)) boxes = parse_rois(rois->text(r), where);
      for (const LabeledBox& b : boxes)
        if (b.label >= static_cast<int64_t>(classes_.size()))
          throw std::invalid_argument(where + " has a box of class " + std::to_string(b.label) + "; the classes are 0.." +
                                      std::to_string(classes_.size() - 1));
      std::vector<CocoGtBox> gt;
      if (has_gt) {
        gt = parse_coco_gt(data.column(kCocoGtColumn).text(r), where);
      } else {
        int64_t id = 0;
        for (const LabeledBox& b : boxes)
          gt.push_back({++id, b.label, b.x1, b.y1, b.x2 - b.x1, b.y2 - b.y1, (b.x2 - b.x1) * (b.y2 - b.y1), false});
      }
      out.boxes.push_back(std::move(boxes));
      out.gt.push_back(std::move(gt));
      out.image_ids.push_back(ids ? static_cast<int64_t>(ids->number(r).value_or(double(r))) : static_cast<int64_t>(r));
    }
    return out;
  }

  DetectionInputOptions input_options() const { return spec_.input; }

  detection::PostProcessOptions post_process() const {
    auto o = detection::default_post_process(spec_);
    if (!config_.is_null("model.mmdet_image.score_thr")) o.score_threshold = config_.get_double("model.mmdet_image.score_thr");
    if (!config_.is_null("model.mmdet_image.nms_iou_thr")) o.nms_iou = config_.get_double("model.mmdet_image.nms_iou_thr");
    if (!config_.is_null("model.mmdet_image.max_per_img")) o.max_per_image = config_.get_int("model.mmdet_image.max_per_img");
    return o;
  }

  // The detector: architecture from the checkpoint name (or the checkpoint's
  // tensors), its weights unless --no-pretrained, frozen layers for training.
  void build(bool for_training) {
    const std::string checkpoint = config_.get_string("model.mmdet_image.checkpoint_name");
    const auto num_classes = static_cast<int64_t>(classes_.size());
    std::string hint;
    const std::string file = options_.pretrained ? detection::find_mmdet_checkpoint(checkpoint, &hint) : "";
    StateDict weights;
    if (!file.empty()) {
      weights = detection::read_mmdet_state_dict(file);
      const bool by_name = fs::exists(checkpoint);
      spec_ = detection::detector_spec(by_name ? detection::detector_name_of(weights, file) : checkpoint, num_classes);
    } else {
      spec_ = detection::detector_spec(checkpoint, num_classes);  // an unknown name fails here, listing the known
      if (options_.pretrained)
        throw std::runtime_error(
            "the pretrained weights of " + checkpoint + " are not on this machine" +
            (hint.empty() ? std::string() : ": download " + hint + " into ~/.cache/torch/hub/checkpoints/") +
            ", or name a local .pth file in model.mmdet_image.checkpoint_name, or fit from random weights "
            "(automm fit --no-pretrained, Python pretrained=False)");
    }
    if (!config_.is_null("model.mmdet_image.image_size"))
      detection::set_input_size(spec_, config_.get_int("model.mmdet_image.image_size"));
    net_ = detection::make_detector(spec_);
    std::string loaded = "random weights";
    if (!file.empty()) {
      const auto report = detection::load_detector_weights(*net_, weights, file);
      loaded = std::to_string(report.loaded) + " tensors from " + file +
               (report.fresh.empty() ? "" : " (" + std::to_string(report.fresh.size()) +
                                                " class-dependent ones start fresh for " +
                                                std::to_string(num_classes) + " classes)");
    }
    if (!for_training) return;
    const auto frozen = config_.get_list("model.mmdet_image.frozen_layers");
    int64_t trainable = 0, total = 0;
    for (auto& item : net_->named_parameters()) {
      if (is_frozen(item.key(), frozen)) item.value().set_requires_grad(false);
      total += item.value().numel();
      if (item.value().requires_grad()) trainable += item.value().numel();
    }
    if (options_.verbose)
      log_message(LogLevel::kInfo, "automm: " + spec_.name + " at " + std::to_string(spec_.input.image_size) +
                                       " px, " + std::to_string(num_classes) + " classes, " + loaded + "; " +
                                       std::to_string(trainable) + " of " + std::to_string(total) +
                                       " parameters train");
  }

  static bool is_frozen(const std::string& name, const std::vector<std::string>& frozen) {
    return std::any_of(frozen.begin(), frozen.end(), [&](const std::string& f) { return name.find(f) != std::string::npos; });
  }

  // Training mode, with the frozen layers' batch norms kept in eval mode.
  void set_training_mode() const {
    net_->train();
    const auto frozen = config_.get_list("model.mmdet_image.frozen_layers");
    if (frozen.empty()) return;
    for (const auto& item : net_->named_modules("", false))
      if (is_frozen(item.key() + ".", frozen)) item.value()->eval();
  }

  // Runs the detector over `rows` in inference batches; `each` gets the row
  // index and its detections in the image's own pixels (xyxy).
  void detect_rows(const DetectionRows& rows,
                   const std::function<void(size_t, Predictions::ImageDetections)>& each) const {
    const InferenceScope inference(*this);
    const DetectionInputOptions input = input_options();
    const auto options = post_process();
    const int64_t batch = inference_batch_size(config_);
    std::mt19937_64 rng(0);
    for (size_t first = 0; first < rows.size(); first += static_cast<size_t>(batch)) {
      const size_t last = std::min(rows.size(), first + static_cast<size_t>(batch));
      std::vector<DetectionItem> items;
      for (size_t r = first; r < last; ++r) items.push_back(read_detection_item(rows.images[r], {}, false, rng, input, rows.where[r]));
      const auto detections = net_->detect(collate_detection_pixels(items, input), options);
      for (size_t i = 0; i < items.size(); ++i) {
        const auto& d = detections[i];
        const auto scale = torch::tensor({items[i].scale_x, items[i].scale_y, items[i].scale_x, items[i].scale_y},
                                         torch::kFloat32);
        each(first + i, {d.boxes.to(torch::kFloat32) / scale, d.scores.to(torch::kFloat32), d.labels.to(torch::kLong)});
      }
    }
  }

  // COCO's 12 statistics of the detector on `rows`.
  std::array<double, 12> score(const DetectionRows& rows) const {
    std::vector<CocoAnnotation> gt;
    std::vector<CocoDetection> dets;
    std::vector<int64_t> image_ids = rows.image_ids, category_ids(classes_.size());
    std::iota(category_ids.begin(), category_ids.end(), 0);
    int64_t id = 0;  // unique and non-zero, as COCOeval needs: a table's boxes have no ids of their own
    for (size_t r = 0; r < rows.size(); ++r)
      for (const CocoGtBox& g : rows.gt[r]) gt.push_back({++id, rows.image_ids[r], g.label, g.x, g.y, g.w, g.h, g.area, g.iscrowd});
    detect_rows(rows, [&](size_t r, Predictions::ImageDetections d) {
      const auto boxes = d.boxes.to(torch::kDouble).contiguous();
      const auto scores = d.scores.to(torch::kDouble).contiguous();
      const auto labels = d.labels.contiguous();
      const auto b = boxes.accessor<double, 2>();
      for (int64_t i = 0; i < boxes.size(0); ++i)
        dets.push_back({rows.image_ids[r], labels[i].item<int64_t>(), b[i][0], b[i][1], b[i][2] - b[i][0],
                        b[i][3] - b[i][1], scores[i].item<double>()});
    });
    return coco_bbox_stats(image_ids, category_ids, gt, dets);
  }

  // The network's parameters in AutoMM's groups: the head at lr * lr_mult
  // (two_stages), no weight decay on biases and batch norms.
  std::vector<ParameterGroup> parameter_groups(std::vector<std::pair<std::string, torch::Tensor>>& named) const {
    const double lr = config_.get_double("optim.lr"), decay = config_.get_double("optim.weight_decay");
    const double mult = config_.get_string("optim.lr_choice") == "two_stages" ? config_.get_double("optim.lr_mult") : 1.0;
    auto patterns = net_->head_patterns();
    std::map<std::pair<double, double>, ParameterGroup> groups;
    for (const auto& [name, p] : named) {
      const bool head = std::any_of(patterns.begin(), patterns.end(),
                                    [&](const std::string& h) { return name.find(h) != std::string::npos; });
      const bool no_decay = name.size() >= 4 && (name.compare(name.size() - 4, 4, "bias") == 0 || name.find(".bn.") != std::string::npos);
      const double group_lr = head ? lr * mult : lr, wd = no_decay ? 0.0 : decay;
      auto& g = groups[{group_lr, wd}];
      g.lr = group_lr;
      g.weight_decay = wd;
      g.params.push_back(p);
      g.names.push_back(name);
    }
    std::vector<ParameterGroup> out;
    for (auto& [key, g] : groups) out.push_back(std::move(g));
    return out;
  }

  void train_network(const DetectionRows& train, const DetectionRows& tuning, const FitOptions& fit,
                     std::chrono::steady_clock::time_point start) {
    const int fit_threads = choose_thread_count();
    const ThreadScope threads(fit_threads);
    const DetectionInputOptions input = input_options();
    const auto rows = static_cast<int64_t>(train.size());
    const int64_t micro = std::max<int64_t>(1, config_.get_int("env.per_gpu_batch_size"));
    const int64_t accumulate = std::max<int64_t>(1, config_.get_int("env.batch_size") / micro);
    const int64_t steps_per_epoch = std::max<int64_t>(1, (rows + micro * accumulate - 1) / (micro * accumulate));
    const int64_t epochs = config_.get_int("optim.max_epochs");
    const int64_t max_steps = config_.get_int("optim.max_steps");
    const int64_t total_steps = max_steps > 0 ? std::min(max_steps, steps_per_epoch * epochs) : steps_per_epoch * epochs;
    std::vector<std::pair<std::string, torch::Tensor>> named;
    for (const auto& item : net_->named_parameters())
      if (item.value().requires_grad()) named.emplace_back(item.key(), item.value());
    const auto groups = parameter_groups(named);
    const auto optimizer = make_optimizer(groups, config_);
    const LrSchedule schedule = make_schedule(config_, total_steps, steps_per_epoch);
    const double clip = config_.get_double("optim.gradient_clip_val");
    const bool clip_by_value = config_.get_string("optim.gradient_clip_algorithm") == "value";
    TopKCheckpoints top_k(static_cast<size_t>(std::max<int64_t>(1, config_.get_int("optim.top_k"))));
    const int64_t patience = config_.get_int("optim.patience");
    const int64_t val_every = std::max<int64_t>(1, config_.get_int("optim.check_val_every_n_epoch"));
    const int64_t last_epochs = spec_.family == "yolox" ? config_.get_int("model.mmdet_image.num_last_epochs") : 0;
    std::mt19937_64 rng(fit.seed);
    std::vector<int64_t> order(static_cast<size_t>(rows));
    std::iota(order.begin(), order.end(), 0);
    std::string stop_reason = "max_epochs";
    double best = -std::numeric_limits<double>::infinity();
    int64_t step = 0, best_epoch = 0, epochs_run = 0, since_best = 0;
    Json log = Json::array();
    const auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
    const auto validate = [&] { return score(tuning)[0]; };
    MultiImageMixOptions mix;
    mix.image_size = spec_.input.image_size;
    const bool mixing = spec_.family == "yolox" && config_.get_bool("model.mmdet_image.multi_image_mix");
    std::optional<BatchRandomResize> random_resize;
    if (input.random_resize_max > 0) random_resize.emplace(input.random_resize_min, input.random_resize_max);
    const auto load = [&](int64_t r) {
      const auto i = static_cast<size_t>(r);
      return load_boxed_image(train.images[i], train.boxes[i], train.where[i]);
    };
    for (int64_t epoch = 1; epoch <= epochs && stop_reason == "max_epochs"; ++epoch) {
      // The YOLOX paper's last epochs: no Mosaic or MixUp, the L1 loss on.
      // As mmdet's YOLOXModeSwitchHook, no switch when N >= max_epochs.
      const bool last_stage = last_epochs > 0 && last_epochs < epochs && epoch > epochs - last_epochs;
      const bool l1 = last_stage;
      const bool mix_now = mixing && !last_stage;
      net_->set_use_l1(l1);
      set_training_mode();
      std::shuffle(order.begin(), order.end(), rng);
      std::map<std::string, double> loss_sums;
      int64_t batches = 0;
      for (int64_t first = 0; first < rows; first += micro) {
        if (fit.stop_requested && fit.stop_requested())
          throw FitInterrupted("the fit was interrupted; object_detection keeps no state to resume");
        std::vector<DetectionItem> items;
        detection::BoxTargets targets;
        for (int64_t i = first; i < std::min(rows, first + micro); ++i) {
          const int64_t r = order[static_cast<size_t>(i)];
          BoxedImage sample = mix_now ? multi_image_mix(r, rows, load, rng, mix) : load(r);
          items.push_back(prepare_detection_item(std::move(sample), true, rng, input));
          targets.boxes.push_back(items.back().boxes);
          targets.labels.push_back(items.back().labels);
        }
        torch::Tensor pixels = collate_detection_pixels(items, input);
        if (random_resize) pixels = random_resize->apply(pixels, targets.boxes, rng);
        const auto losses = net_->losses(pixels, targets);
        torch::Tensor total = torch::zeros({});
        for (const auto& [name, value] : losses) {
          total = total + value;
          loss_sums[name] += value.item<double>();
        }
        (total / static_cast<double>(accumulate)).backward();
        ++batches;
        if (batches % accumulate == 0 || first + micro >= rows) {
          std::vector<torch::Tensor> params;
          for (const auto& [name, p] : named) params.push_back(p);
          if (clip > 0 && clip_by_value) torch::nn::utils::clip_grad_value_(params, clip);
          else if (clip > 0) torch::nn::utils::clip_grad_norm_(params, clip);
          apply_schedule(*optimizer, groups, schedule, step++);
          optimizer->step();
          clear_gradients(*optimizer);
          if (step >= total_steps) break;
        }
      }
      ++epochs_run;
      Json entry = {{"epoch", epoch}, {"step", step}};
      double loss_total = 0;
      for (const auto& [name, sum] : loss_sums) {
        entry[name] = batches ? sum / batches : 0.0;
        loss_total += batches ? sum / batches : 0.0;
      }
      const bool last = epoch == epochs || (max_steps > 0 && step >= max_steps);
      std::string message = "automm: epoch " + std::to_string(epoch) + "/" + std::to_string(epochs) + ", step " +
                            std::to_string(step) + ", loss " + fixed(loss_total) +
                            (mixing && !mix_now ? " (no mosaic / mixup" + std::string(l1 ? ", with l1)" : ")")
                                                : l1 ? " (with l1)" : "");
      if (epoch % val_every == 0 || last) {
        const double value = validate();
        top_k.offer(value, *net_);
        entry["val_map"] = value;
        message += ", validation map " + fixed(value);
        if (value > best) {
          best = value;
          best_epoch = epoch;
          since_best = 0;
        } else if (++since_best >= patience) {
          stop_reason = "patience";
        }
      }
      log.push_back(entry);
      if (options_.verbose) log_message(LogLevel::kInfo, message + " (" + fixed(elapsed(), 1) + " s)");
      if (max_steps > 0 && step >= max_steps && epoch < epochs) stop_reason = "max_steps";
      if (fit.time_limit > 0 && elapsed() > fit.time_limit) stop_reason = "time_limit";
    }
    const std::string method = config_.get_string("optim.top_k_average_method");
    if (!top_k.empty()) top_k.finalize(method, *net_, validate);
    net_->eval();
    for (auto& p : net_->parameters()) p.set_requires_grad(false);
    const auto final_stats = score(tuning);
    Json final_scores = Json::object();
    for (size_t i = 0; i < final_stats.size(); ++i) final_scores[coco_metric_names()[i]] = final_stats[i];
    summary_ = {{"problem_type", kProblemType},
                {"models", {kModelName}},
                {"checkpoint_name", config_.get_string("model.mmdet_image.checkpoint_name")},
                {"detector", spec_.name},
                {"image_size", spec_.input.image_size},
                {"num_classes", classes_.size()},
                {"multi_image_mix", mixing},
                {"num_train_rows", train.size()},
                {"num_validation_rows", tuning.size()},
                {"validation_metric", "map"},
                {"best_validation_score", best},
                {"best_epoch", best_epoch},
                {"final_validation_scores", final_scores},
                {"top_k_average_method", method},
                {"epochs", epochs_run},
                {"stop_reason", stop_reason},
                {"optimizer_steps", step},
                {"training_seconds", elapsed()},
                {"threads", fit_threads},
                {"log", log}};
    if (options_.verbose)
      log_message(LogLevel::kInfo, "automm: fit done in " + fixed(elapsed(), 1) + " s (" + stop_reason +
                                       "); validation map " + fixed(final_stats[0]) + ", map_50 " +
                                       fixed(final_stats[1]));
  }

  PredictorOptions options_;
  Config config_;
  bool fitted_ = false;
  std::string image_column_ = "image", boxes_column_ = kRoisColumn;
  std::vector<std::string> classes_;
  std::vector<int64_t> category_ids_;
  DetectorSpec spec_;
  mutable std::shared_ptr<DetectorImpl> net_;  // inference switches it to eval mode
  Json summary_ = Json::object();
};

}  // namespace

std::unique_ptr<Learner> make_detection_learner(PredictorOptions options) {
  return std::make_unique<DetectionLearner>(std::move(options));
}

}  // namespace automm
