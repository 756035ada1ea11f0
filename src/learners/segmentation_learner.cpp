// The learner of semantic segmentation (AutoMM's learners/semantic_segmentation.py
// and optim/lit_semantic_seg.py):
//
//  - the table has one image column and the label column of mask paths; the
//    masks say how many classes there are (data/image/segmentation_data.h);
//  - a SAM model (models/sam/sam_model.h) reads each image at S x S pixels;
//    binary masks train with AutoMM's structure loss on one mask token,
//    multi-class masks with the Mask2Former loss on num_mask_tokens queries
//    and a class head;
//  - the epoch loop keeps AutoMM's presets (LoRA on the vision encoder's
//    attention, polynomial decay, top-3 "best"), validates with iou every epoch
//    and stops early on patience;
//  - predictions are resized back to each image's own size.
#include "learners/segmentation_learner.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iomanip>
#include <limits>
#include <numeric>
#include <random>
#include <sstream>

#include "automm/log.h"
#include "automm/weights_io.h"
#include "checkpoints/hf_checkpoint.h"
#include "data/image/segmentation_data.h"
#include "data/image/transforms.h"
#include "data/processors.h"
#include "learners/checkpoints.h"
#include "learners/learner_io.h"
#include "learners/placement.h"
#include "learners/trainer.h"
#include "modalities/modality.h"
#include "models/peft.h"
#include "models/sam/sam_model.h"
#include "models/skip_init.h"
#include "optim/optim.h"
#include "optim/segmentation.h"

namespace automm {
namespace {

namespace fs = std::filesystem;
namespace F = torch::nn::functional;

constexpr const char* kProblemType = "semantic_segmentation";
constexpr const char* kSamFolder = "sam";  // the SAM config.json inside a predictor folder

// AutoMM's presets for semantic segmentation (utils/presets.py), whatever the
// quality: the user's keys win.
Json segmentation_defaults() {
  return {{"model.sam.checkpoint_name", "facebook/sam-vit-huge"},
          {"env.batch_size", 4},
          {"env.per_gpu_batch_size", 1},
          {"env.inference_batch_size_ratio", 1},
          {"env.precision", "16-mixed"},
          {"optim.lr", 1e-4},
          {"optim.loss_func", "structure_loss"},
          {"optim.lr_choice", "single_stage"},  // (the preset's lr_decay 0 and lr_mult 1 do nothing then)
          {"optim.lr_schedule", "polynomial_decay"},
          {"optim.max_epochs", 30},
          {"optim.top_k", 3},
          {"optim.top_k_average_method", "best"},
          {"optim.warmup_steps", 0.0},
          {"optim.weight_decay", 1e-4},
          {"optim.patience", 10},
          {"optim.peft", "lora"},
          {"optim.lora.module_filter", Json::array({".*vision_encoder.*attn"})},
          {"optim.lora.filter", Json::array({"q", "v"})},
          {"optim.extra_trainable_params", Json::array({".*mask_decoder"})},
          {"optim.lora.r", 3},
          {"optim.lora.alpha", 32}};
}

// The keys this learner reads; a user-set key outside them is refused.
const std::vector<std::string>& segmentation_keys() {
  static const std::vector<std::string> keys = {
      "model.names", "model.sam.", "optim.lr", "optim.optim_type", "optim.weight_decay", "optim.lr_choice",
      "optim.lr_decay", "optim.lr_mult", "optim.lr_schedule", "optim.end_lr", "optim.max_epochs", "optim.max_steps",
      "optim.warmup_steps", "optim.patience", "optim.top_k", "optim.top_k_average_method",
      "optim.gradient_clip_algorithm", "optim.gradient_clip_val", "optim.loss_func", "optim.mask2former_loss.",
      "optim.peft", "optim.efficient_finetune", "optim.lora.", "optim.extra_trainable_params",
      "env.per_gpu_batch_size", "env.batch_size", "env.inference_batch_size_ratio", "env.precision",
      "env.accelerator", "env.num_gpus"};
  return keys;
}

std::string fixed(double value, int digits = 4) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(digits) << value;
  return out.str();
}

// Every row's image and mask file, resolved against the table's folder.
struct SegmentationRows {
  std::vector<std::string> images, masks;  // masks[i] empty: no mask
  std::vector<std::string> where;          // "row 4 of train.csv"

  size_t size() const { return images.size(); }
};

// The network: SAM under the name "model" (AutoMM's SAMForSemanticSegmentation.model).
class SegmenterImpl : public torch::nn::Module {
 public:
  explicit SegmenterImpl(SamModel sam) { model = register_module("model", std::move(sam)); }
  SamModel model{nullptr};
};
TORCH_MODULE(Segmenter);

class SegmentationLearner : public Learner {
 public:
  explicit SegmentationLearner(PredictorOptions options) : options_(std::move(options)) {
    config_.merge(options_.hyperparameters);
  }

  void fit(const Table& train, const FitOptions& fit, const Learner* teacher) override {
    if (teacher) throw std::invalid_argument("knowledge distillation is not available for semantic_segmentation");
    if (fitted_) throw std::logic_error("this segmentation predictor is fitted already; make a new one to fit again");
    if (options_.path.empty()) options_.path = default_predictor_path();
    config_.merge(fit.hyperparameters);
    const Json defaults = segmentation_defaults();  // kept alive: items() refers into it
    for (const auto& [key, value] : defaults.items())
      if (!config_.user_keys().count(key)) {
        config_.set(key, value);
        config_.mark_as_preset(key);
      }
    require_used_keys(config_, segmentation_keys(), kProblemType);
    config_.check_supported();
    check_settings();
    read_columns(train, fit.column_types);
    const auto start = std::chrono::steady_clock::now();

    Table fit_rows = train, tuning;
    if (fit.tuning_data) {
      tuning = *fit.tuning_data;
    } else {
      const double fraction = fit.holdout_frac > 0 ? fit.holdout_frac : default_holdout_fraction(train.num_rows());
      const auto [train_rows, holdout_rows] =
          split_holdout(std::vector<std::string>(train.num_rows()), fraction, fit.seed);
      fit_rows = train.select_rows(train_rows);
      tuning = train.select_rows(holdout_rows);
    }
    const SegmentationRows train_set = rows_of(fit_rows, true), tuning_set = rows_of(tuning, true);
    if (train_set.size() == 0) throw std::invalid_argument(train.source + " has no row to train on");
    if (tuning_set.size() == 0) throw std::invalid_argument("no validation row: give tuning data or more rows");

    // Classes from every mask the fit reads.
    std::vector<std::pair<std::string, std::string>> masks;
    for (const SegmentationRows* set : {&train_set, &tuning_set})
      for (size_t i = 0; i < set->size(); ++i) masks.emplace_back(set->where[i], set->masks[i]);
    const MaskClassCount count = count_mask_classes(masks, config_.get_int("model.sam.ignore_label"));
    num_classes_ = count.num_classes;
    choose_loss_and_tokens();
    if (options_.verbose) log_message(LogLevel::kInfo, "automm: " + count.reason + "; " + loss_note_);

    torch::manual_seed(fit.seed);  // random weights and LoRA's A come from it: a fit is reproducible
    build(/*for_training=*/true);
    train_network(train_set, tuning_set, fit, start);
    fitted_ = true;
  }

  Predictions predict(const Table& data) const override {
    Predictions out;
    out.name = options_.label;
    out.classes = classes();
    run(data, [&](const torch::Tensor& probs, int64_t, int64_t width, int64_t height) {
      const torch::Tensor resized = resize_to(probs, width, height);  // [K', H, W]
      out.masks.push_back(num_classes_ == 1 ? resized[0] > 0.5 : resized.argmax(0));
    });
    return out;
  }

  // Binary: [rows, H, W] foreground probability (as_multiclass: [rows, 2, H, W]);
  // multi-class: [rows, K, H, W]; at the images' own size, which must be one size.
  torch::Tensor predict_proba(const Table& data, bool as_multiclass) const override {
    std::vector<torch::Tensor> out;
    std::pair<int64_t, int64_t> size{-1, -1};
    run(data, [&](const torch::Tensor& probs, int64_t row, int64_t width, int64_t height) {
      if (size.first >= 0 && size != std::make_pair(width, height))
        throw std::invalid_argument(
            "predict_proba returns one tensor, and the images differ in size (row 0: " +
            std::to_string(size.first) + "x" + std::to_string(size.second) + ", row " + std::to_string(row) + ": " +
            std::to_string(width) + "x" + std::to_string(height) +
            "): call it per image, or use predict for the masks (the Python package returns a list per image)");
      size = {width, height};
      torch::Tensor p = resize_to(probs, width, height);
      if (num_classes_ == 1) p = as_multiclass ? torch::cat({1 - p, p}) : p[0];
      else p = torch::softmax(p, 0);  // AutoMM: softmax over the classes of the semantic scores
      out.push_back(p);
    });
    if (out.empty()) return torch::zeros({0});
    return torch::stack(out);
  }

  std::map<std::string, double> evaluate(const Table& data, const std::vector<std::string>& metrics_in) const override {
    require_fitted("evaluate");
    const std::vector<std::string> metrics = metrics_in.empty() ? std::vector<std::string>{eval_metric_} : metrics_in;
    for (const std::string& m : metrics) check_metric(m);
    const SegmentationRows rows = rows_of(data, true);
    if (rows.size() == 0) throw std::invalid_argument(data.source + " has no row with a mask to evaluate");
    return score(rows, metrics);
  }

  // [rows, 256]: the image embeddings (vision encoder + neck) averaged over the grid.
  torch::Tensor extract_embedding(const Table& data) const override {
    require_fitted("extract_embedding");
    const InferenceScope inference(*this);
    const Placement& placement = inference.placement;
    const SegmentationRows rows = rows_of(data, false);
    std::vector<torch::Tensor> out;
    for_batches(rows, false, [&](const torch::Tensor& pixels, const std::vector<SegmentationItem>&, size_t) {
      const AutocastScope autocast(placement);
      out.push_back(net_->model->image_embeddings(pixels.to(placement.dtype)).to(torch::kFloat32).mean({2, 3}));
    });
    return out.empty() ? torch::zeros({0, 0}) : torch::cat(out);
  }

  torch::Tensor head_outputs(const Table&) const override { throw no_head(); }
  torch::Tensor classify_features(const torch::Tensor&) const override { throw no_head(); }
  void export_model(const Table&, const std::string&, const ExportOptions&) const override {
    throw std::invalid_argument("export is not available for semantic_segmentation predictors yet: the saved "
                                "folder's sam/config.json and model.safetensors hold the SAM weights under Hugging "
                                "Face's names (prefixed model.)");
  }

  void write(const std::string& folder, bool, const Json& extra) const override {
    fs::create_directories(fs::path(folder) / kSamFolder);
    write_text_file((fs::path(folder) / kSamFolder / "config.json").string(), sam_config_.to_json().dump(2));
    Json predictor = {{"format", kPredictorFormat},
                      {"format_version", kFormatVersion},
                      {"label", options_.label},
                      {"problem_type", kProblemType},
                      {"eval_metric", eval_metric_},
                      {"image_column", image_column_},
                      {"num_classes", num_classes_},
                      {"num_mask_tokens", num_mask_tokens_},
                      {"adapters", adapters_kept_},
                      {"config", config_.to_json()},
                      {"fit_summary", summary_}};
    if (fitted_) predictor.update(write_network_weights(*net_, folder));
    predictor.update(extra);
    write_text_file((fs::path(folder) / kPredictorFile).string(), predictor.dump(2));
  }

  void read(const std::string& folder, const Json& meta, bool resume) override {
    if (resume) throw std::invalid_argument("semantic_segmentation fits keep no unfinished state to resume");
    const std::string where = (fs::path(folder) / kPredictorFile).string();
    try {
      options_.label = meta.at("label").get<std::string>();
      eval_metric_ = meta.at("eval_metric").get<std::string>();
      image_column_ = meta.at("image_column").get<std::string>();
      num_classes_ = meta.at("num_classes").get<int64_t>();
      num_mask_tokens_ = meta.at("num_mask_tokens").get<int64_t>();
      adapters_kept_ = meta.at("adapters").get<bool>();
      config_ = Config::from_json(meta.at("config"));
      summary_ = meta.at("fit_summary");
    } catch (const nlohmann::json::exception& e) {
      throw std::runtime_error(where + ": " + e.what());
    }
    sam_config_ = SamConfig::from_json(read_checkpoint_config((fs::path(folder) / kSamFolder).string()));
    {
      const SkipInitialization skip;  // every weight comes from the file
      net_ = Segmenter(SamModel(sam_config_));
      net_->model->mask_decoder->adapt_for_semantic_segmentation(num_mask_tokens_, num_classes_);
    }
    if (adapters_kept_) add_adapters(*net_, *peft_options(config_));
    read_network_weights(*net_, folder, meta);
    net_->eval();
    fitted_ = true;
  }
  void relocate(const std::string&) override {}

  bool fitted() const override { return fitted_; }
  Json fit_summary() const override { return summary_; }
  std::string problem_type() const override { return kProblemType; }
  std::string eval_metric() const override { return eval_metric_; }
  // Class indices as names: binary "0" (background) and "1" (the mask).
  std::vector<std::string> classes() const override {
    std::vector<std::string> out;
    for (int64_t c = 0; c < std::max<int64_t>(2, num_classes_); ++c) out.push_back(std::to_string(c));
    return out;
  }
  std::map<std::string, std::string> column_types() const override {
    return {{image_column_, "semantic_segmentation_img"}, {options_.label, "semantic_segmentation_gt"}};
  }
  const Config& config() const override { return config_; }
  PredictorOptions& options() override { return options_; }
  const PredictorOptions& options() const override { return options_; }

 private:
  // What every inference pass sets up: every core, the placement, no gradients, eval mode.
  struct InferenceScope {
    explicit InferenceScope(const SegmentationLearner& learner)
        : threads(choose_thread_count()), placement(resolve_placement(learner.config_)) {
      learner.net_->eval();
    }
    ThreadScope threads;
    Placement placement;
    torch::NoGradGuard no_grad;
  };

  static std::logic_error no_head() {
    return std::logic_error("semantic_segmentation predictors have no classification head to distill from");
  }
  void require_fitted(const char* what) const {
    if (!fitted_) throw std::logic_error(std::string(what) + " needs a fitted predictor: call fit() or load() first");
  }

  // Settings AutoMM would accept and we do not apply differently: refused here, with the reason.
  void check_settings() const {
    const auto names = config_.get_list("model.names");
    if (config_.user_keys().count("model.names") && names != std::vector<std::string>{"sam"})
      throw std::invalid_argument("semantic_segmentation fits the sam model alone; model.names must be [\"sam\"]");
    const std::string lr_choice = config_.get_string("optim.lr_choice");
    if (lr_choice != "single_stage" && !lr_choice.empty())
      throw std::invalid_argument("optim.lr_choice = " + config_.get_string("optim.lr_choice") +
                                  ": semantic_segmentation trains with single_stage (AutoMM's preset); its "
                                  "layer ids are not built for the SAM model");
    const auto gt = config_.get_list("model.sam.gt_transforms");
    for (const std::string& t : gt)
      if (t != "resize_gt_to_square")
        throw std::invalid_argument("model.sam.gt_transforms: unknown transform '" + t +
                                    "'; known: resize_gt_to_square");
    if (gt.empty())
      throw std::invalid_argument("model.sam.gt_transforms must hold resize_gt_to_square: masks are resized to the "
                                  "model's square with the image");
    const std::string loss = config_.get_string("optim.loss_func");
    if (loss != "auto" && loss != "structure_loss" && loss != "mask2former_loss")
      throw std::invalid_argument("optim.loss_func = " + loss +
                                  " is not a segmentation loss; known: structure_loss (binary masks), "
                                  "mask2former_loss (multi-class masks)");
  }

  // The loss and the number of mask tokens for num_classes_.
  void choose_loss_and_tokens() {
    const std::string loss = config_.get_string("optim.loss_func");
    const bool tokens_set = config_.user_keys().count("model.sam.num_mask_tokens") > 0;
    num_mask_tokens_ = config_.get_int("model.sam.num_mask_tokens");
    if (num_classes_ == 1) {
      if (config_.user_keys().count("optim.loss_func") && loss == "mask2former_loss")
        throw std::invalid_argument("optim.loss_func = mask2former_loss is for multi-class masks, and these masks "
                                    "are binary: use structure_loss");
      if (num_mask_tokens_ != 1)
        throw std::invalid_argument("model.sam.num_mask_tokens = " + std::to_string(num_mask_tokens_) +
                                    ": binary masks are predicted by one mask token (AutoMM's binary path)");
      config_.set("optim.loss_func", "structure_loss");
      config_.mark_as_preset("optim.loss_func");
      loss_note_ = "loss structure_loss on 1 mask token";
      return;
    }
    if (config_.user_keys().count("optim.loss_func") && loss == "structure_loss")
      throw std::invalid_argument("optim.loss_func = structure_loss is for binary masks; these masks hold " +
                                  std::to_string(num_classes_) + " classes: use mask2former_loss");
    config_.set("optim.loss_func", "mask2former_loss");
    config_.mark_as_preset("optim.loss_func");
    if (!tokens_set) {
      num_mask_tokens_ = std::max<int64_t>(10, num_classes_);
      config_.set("model.sam.num_mask_tokens", num_mask_tokens_);
      config_.mark_as_preset("model.sam.num_mask_tokens");
    }
    loss_note_ = "loss mask2former_loss on " + std::to_string(num_mask_tokens_) + " mask tokens" +
                 (tokens_set ? "" : " (max(10, classes): model.sam.num_mask_tokens was not set)");
  }

  // The image column (the one image-path column besides the label).
  void read_columns(const Table& train, const std::map<std::string, std::string>& user_types) {
    if (options_.label.empty())
      throw std::invalid_argument("semantic_segmentation needs the label column of mask paths (label=...)");
    if (!train.has_column(options_.label))
      throw std::invalid_argument(train.source + " lacks the label column '" + options_.label + "' (mask paths)");
    const ColumnTypes types = infer_column_types(train, nullptr, options_.label, user_types);
    std::vector<std::string> images;
    for (const auto& [name, type] : types)
      if (type == ColumnType::kImagePath) images.push_back(name);
    if (images.size() != 1) {
      std::string found;
      for (const auto& [name, type] : types) found += (found.empty() ? "" : ", ") + name + " (" + to_string(type) + ")";
      throw std::invalid_argument("semantic_segmentation reads one column of image paths besides the mask column '" +
                                  options_.label + "'; " + train.source + " has " + std::to_string(images.size()) +
                                  ": " + found);
    }
    image_column_ = images[0];
    eval_metric_ = options_.eval_metric.empty() ? "iou" : options_.eval_metric;
    if (!is_segmentation_metric(eval_metric_))
      throw std::invalid_argument("eval_metric '" + eval_metric_ + "' is not a segmentation metric; known: iou, ber, "
                                  "sm, em, fm, mae");
  }

  void check_metric(const std::string& m) const {
    if (!is_segmentation_metric(m))
      throw std::invalid_argument("metric '" + m + "' does not apply to semantic_segmentation; known: iou, ber, sm, "
                                  "em, fm, mae");
    if (num_classes_ > 1 && m != "iou")
      throw std::invalid_argument("metric '" + m + "' scores binary masks; these masks hold " +
                                  std::to_string(num_classes_) + " classes (iou only)");
  }

  // Paths of `data`'s rows; with_masks: every row must have one.
  SegmentationRows rows_of(const Table& data, bool with_masks) const {
    if (!data.has_column(image_column_))
      throw std::invalid_argument(data.source + " lacks the image column '" + image_column_ + "'");
    if (with_masks && !data.has_column(options_.label))
      throw std::invalid_argument(data.source + " lacks the mask column '" + options_.label + "'");
    const std::string base = table_folder(data);
    const auto resolve = [&](const std::string& cell) {
      const fs::path path(cell);
      return (path.is_relative() && !base.empty() ? fs::path(base) / path : path).string();
    };
    SegmentationRows out;
    const Column& images = data.column(image_column_);
    const Column* masks = data.has_column(options_.label) ? &data.column(options_.label) : nullptr;
    for (size_t r = 0; r < data.num_rows(); ++r) {
      const std::string where = "row " + std::to_string(r) + " of " + (data.source.empty() ? "the table" : data.source);
      if (images.is_missing(r)) throw std::invalid_argument(where + " has no image in column '" + image_column_ + "'");
      if (with_masks && masks->is_missing(r))
        throw std::invalid_argument(where + " has no mask in column '" + options_.label + "'");
      out.images.push_back(resolve(images.text(r)));
      out.masks.push_back(with_masks ? resolve(masks->text(r)) : std::string());
      out.where.push_back(where);
    }
    return out;
  }

  SegmentationDataOptions data_options() const {
    SegmentationDataOptions o;
    o.image_size = sam_config_.vision.image_size;
    std::tie(o.mean, o.std) = image_norm_stats(config_.get_string("model.sam.image_norm"));
    o.train_transforms = config_.get_list("model.sam.train_transforms");
    o.val_transforms = config_.get_list("model.sam.val_transforms");
    o.img_transforms = config_.get_list("model.sam.img_transforms");
    o.num_classes = num_classes_;
    o.ignore_label = config_.get_int("model.sam.ignore_label");
    return o;
  }

  // The SAM network: its checkpoint's weights (or random ones), AutoMM's
  // decoder change, and for training PEFT and the frozen layers.
  void build(bool for_training) {
    const std::string checkpoint = config_.get_string("model.sam.checkpoint_name");
    std::string folder;
    if (is_scratch_sam(checkpoint)) {
      sam_config_ = scratch_sam_config(checkpoint);
      if (!config_.is_null("model.sam.image_size")) {
        nlohmann::json json = sam_config_.to_json();
        sam_config_ = SamConfig::from_json(json, config_);
      }
    } else {
      try {
        folder = resolve_hf_checkpoint(checkpoint).folder;
      } catch (const std::exception& e) {
        throw std::runtime_error(std::string(e.what()) +
                                 "\nWithout a pretrained checkpoint, SAM can train from random weights: set "
                                 "model.sam.checkpoint_name to scratch:sam-tiny");
      }
      sam_config_ = SamConfig::from_json(read_checkpoint_config(folder), config_);
    }
    SamModel sam(sam_config_);
    const bool pretrained = !folder.empty() && options_.pretrained;
    if (pretrained) {
      try {
        sam->load_hf_state_dict(load_weights(folder));
      } catch (const std::exception& e) {
        throw std::runtime_error("loading the SAM weights of " + checkpoint + " from " + folder + " failed: " + e.what());
      }
    } else {
      initialize_sam_weights(*sam);
    }
    sam->mask_decoder->adapt_for_semantic_segmentation(num_mask_tokens_, num_classes_);
    net_ = Segmenter(sam);
    if (!for_training) return;
    std::string note;
    if (const auto peft = peft_options(config_)) {
      if (!pretrained)
        throw std::invalid_argument("optim.peft = " + peft->method.name + " fine-tunes pretrained weights, and " +
                                    checkpoint + " starts from random ones: set optim.peft to null");
      const auto adapted = add_adapters(*net_, *peft);
      freeze_for_peft(*net_, peft->method, trainable_parameter_filter(config_));
      note = "optim.peft = " + peft->method.name + ": adapters on " + std::to_string(adapted.size()) +
             " Linear layers" + (adapted.empty() ? "" : " (" + adapted.front() + ", ...)");
      adapters_kept_ = !peft->merge_at_save;
    }
    // model.sam.frozen_layers win over PEFT's choices, as AutoMM freezes them in the model itself.
    const auto frozen = config_.get_list("model.sam.frozen_layers");
    int64_t trainable = 0, total = 0;
    for (auto& item : net_->named_parameters()) {
      const std::string name = item.key().substr(std::string("model.").size());
      if (std::any_of(frozen.begin(), frozen.end(), [&](const std::string& f) { return name.find(f) != std::string::npos; }))
        item.value().set_requires_grad(false);
      total += item.value().numel();
      if (item.value().requires_grad()) trainable += item.value().numel();
    }
    if (options_.verbose)
      log_message(LogLevel::kInfo, "automm: sam from " + checkpoint + (pretrained ? "" : " (random weights)") +
                                       " at " + std::to_string(sam_config_.vision.image_size) + " px; " +
                                       std::to_string(trainable) + " of " + std::to_string(total) +
                                       " parameters train" + (note.empty() ? "" : "; " + note));
  }

  // Runs `step` on the rows of `rows` in inference batches (evaluation transforms):
  // pixels [B, 3, S, S], the read items, the first row's index.
  void for_batches(const SegmentationRows& rows, bool with_masks,
                   const std::function<void(const torch::Tensor&, const std::vector<SegmentationItem>&, size_t)>& step)
      const {
    const SegmentationReader reader(data_options());
    const int64_t batch = inference_batch_size(config_);
    std::mt19937_64 rng(0);  // val_transforms are usually deterministic; a random one draws the same each call
    for (size_t first = 0; first < rows.size(); first += static_cast<size_t>(batch)) {
      const size_t last = std::min(rows.size(), first + static_cast<size_t>(batch));
      std::vector<SegmentationItem> items;
      std::vector<torch::Tensor> pixels;
      for (size_t r = first; r < last; ++r) {
        items.push_back(reader.read(rows.images[r], with_masks ? rows.masks[r] : "", false, rng, rows.where[r]));
        pixels.push_back(items.back().pixels);
      }
      step(torch::stack(pixels), items, first);
    }
  }

  // AutoMM's outputs as probabilities at the model's size: binary sigmoid
  // [B, 1, S, S]; multi-class semantic scores [B, K, S, S].
  torch::Tensor probabilities(const SamOutput& out) const {
    const torch::Tensor logits = out.logits.to(torch::kFloat32);
    if (num_classes_ == 1) return torch::sigmoid(logits);
    return semantic_scores(logits, out.class_logits.to(torch::kFloat32));
  }

  SamOutput forward(const torch::Tensor& pixels, const Placement& placement) const {
    const AutocastScope autocast(placement);
    return net_->model->forward(pixels.to(placement.dtype));
  }

  // Each row's probabilities [K', S, S], with its index and the image's own size.
  void run(const Table& data, const std::function<void(const torch::Tensor&, int64_t, int64_t, int64_t)>& each) const {
    require_fitted("predict");
    const InferenceScope inference(*this);
    const Placement& placement = inference.placement;
    const SegmentationRows rows = rows_of(data, false);
    for_batches(rows, false, [&](const torch::Tensor& pixels, const std::vector<SegmentationItem>& items, size_t first) {
      const torch::Tensor probs = probabilities(forward(pixels, placement));
      for (size_t i = 0; i < items.size(); ++i)
        each(probs[static_cast<int64_t>(i)], static_cast<int64_t>(first + i), items[i].width, items[i].height);
    });
  }

  // probs [K', S, S] -> [K', height, width], bilinear (align_corners false) as AutoMM.
  static torch::Tensor resize_to(const torch::Tensor& probs, int64_t width, int64_t height) {
    return F::interpolate(probs.unsqueeze(0), F::InterpolateFuncOptions()
                                                  .size(std::vector<int64_t>{height, width})
                                                  .mode(torch::kBilinear)
                                                  .align_corners(false))
        .squeeze(0);
  }

  // The metrics on `rows` at the model's size, against masks resized with NEAREST.
  std::map<std::string, double> score(const SegmentationRows& rows, const std::vector<std::string>& metrics) const {
    const InferenceScope inference(*this);
    const Placement& placement = inference.placement;
    // Binary metrics are means over images: summed batch by batch, so no probability map
    // outlives its batch. Multi-class iou counts over the dataset: uint8 classes are kept.
    std::map<std::string, double> sums;
    std::vector<torch::Tensor> predicted, truth;
    for_batches(rows, true, [&](const torch::Tensor& pixels, const std::vector<SegmentationItem>& items, size_t) {
      const torch::Tensor probs = probabilities(forward(pixels, placement));
      std::vector<torch::Tensor> targets;
      for (const auto& item : items) targets.push_back(item.mask);
      const torch::Tensor gt = torch::stack(targets);
      if (num_classes_ > 1) {
        predicted.push_back(probs.argmax(1).to(torch::kUInt8));
        truth.push_back(gt.to(torch::kUInt8));
        return;
      }
      const torch::Tensor pred = probs.select(1, 0);
      const auto n = static_cast<double>(items.size());
      for (const std::string& m : metrics) {
        const double value = m == "iou"   ? binary_iou(pred, gt)
                             : m == "ber" ? balanced_error_rate(pred, gt)
                             : m == "sm"  ? s_measure(pred, gt)
                             : m == "em"  ? e_measure(pred, gt)
                             : m == "fm"  ? f_measure(pred, gt)
                                          : mean_absolute_error(pred, gt);
        sums[m] += value * n;
      }
    });
    std::map<std::string, double> out;
    for (const std::string& m : metrics)
      out[m] = num_classes_ > 1 ? multiclass_iou(torch::cat(predicted).to(torch::kLong),
                                                 torch::cat(truth).to(torch::kLong), num_classes_)
                                : sums[m] / static_cast<double>(rows.size());
    return out;
  }

  // The training loss of a batch's outputs against its items' masks.
  torch::Tensor loss(const SamOutput& out, const std::vector<SegmentationItem>& items) const {
    const torch::Tensor logits = out.logits.to(torch::kFloat32);
    if (num_classes_ == 1) {
      std::vector<torch::Tensor> masks;
      for (const auto& item : items) masks.push_back(item.mask);
      return structure_loss(logits, torch::stack(masks).unsqueeze(1));
    }
    // Per image: one binary mask per class present (ignore_label excluded), and those classes.
    const int64_t ignore = config_.get_int("model.sam.ignore_label");
    std::vector<torch::Tensor> mask_labels, class_labels;
    for (const auto& item : items) {
      const torch::Tensor present = std::get<0>(torch::_unique(item.mask));
      const torch::Tensor classes = present.masked_select(present != ignore);
      class_labels.push_back(classes);
      mask_labels.push_back(item.mask.unsqueeze(0).eq(classes.view({-1, 1, 1})).to(torch::kFloat32));
    }
    int64_t matched = 0;  // masks the Hungarian matching pairs with a query
    for (const auto& classes : class_labels) matched += std::min(num_mask_tokens_, classes.size(0));
    const Mask2FormerLossTerms terms =
        mask2former_loss_terms(logits, out.class_logits.to(torch::kFloat32), mask_labels, class_labels,
                               draw_mask2former_points(static_cast<int64_t>(items.size()), matched));
    return config_.get_double("optim.mask2former_loss.loss_cross_entropy_weight") * terms.cross_entropy +
           config_.get_double("optim.mask2former_loss.loss_mask_weight") * terms.mask +
           config_.get_double("optim.mask2former_loss.loss_dice_weight") * terms.dice;
  }

  void train_network(const SegmentationRows& train, const SegmentationRows& tuning, const FitOptions& fit,
                     std::chrono::steady_clock::time_point start) {
    const int fit_threads = choose_thread_count();
    const ThreadScope threads(fit_threads);
    const Placement placement = resolve_placement(config_);
    if (placement.dtype != torch::kFloat32) net_->to(placement.dtype);
    const SegmentationReader reader(data_options());
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
    const auto groups = make_parameter_groups(named, config_);
    const auto optimizer = make_optimizer(groups, config_);
    const LrSchedule schedule = make_schedule(config_, total_steps, steps_per_epoch);
    const double clip = config_.get_double("optim.gradient_clip_val");
    const bool clip_by_value = config_.get_string("optim.gradient_clip_algorithm") == "value";
    const bool greater_is_better = segmentation_greater_is_better(eval_metric_);
    TopKCheckpoints top_k(static_cast<size_t>(std::max<int64_t>(1, config_.get_int("optim.top_k"))));
    const int64_t patience = config_.get_int("optim.patience");
    std::mt19937_64 rng(fit.seed);
    std::vector<int64_t> order(static_cast<size_t>(rows));
    std::iota(order.begin(), order.end(), 0);
    std::string stop_reason = "max_epochs";
    double best = -std::numeric_limits<double>::infinity();
    int64_t step = 0, best_epoch = 0, epochs_run = 0, since_best = 0;
    Json log = Json::array();
    const auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
    for (int64_t epoch = 1; epoch <= epochs && stop_reason == "max_epochs"; ++epoch) {
      net_->train();
      std::shuffle(order.begin(), order.end(), rng);
      double loss_sum = 0.0;
      int64_t batches = 0;
      for (int64_t first = 0; first < rows; first += micro) {
        if (fit.stop_requested && fit.stop_requested())
          throw FitInterrupted("the fit was interrupted; semantic_segmentation keeps no state to resume");
        std::vector<SegmentationItem> items;
        std::vector<torch::Tensor> pixels;
        for (int64_t i = first; i < std::min(rows, first + micro); ++i) {
          const size_t r = static_cast<size_t>(order[static_cast<size_t>(i)]);
          items.push_back(reader.read(train.images[r], train.masks[r], true, rng, train.where[r]));
          pixels.push_back(items.back().pixels);
        }
        const torch::Tensor batch_loss = loss(forward(torch::stack(pixels), placement), items);
        (batch_loss / static_cast<double>(accumulate)).backward();
        loss_sum += batch_loss.item<double>();
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
      const double value = score(tuning, {eval_metric_}).at(eval_metric_);
      const double comparable = greater_is_better ? value : -value;
      top_k.offer(comparable, *net_);
      log.push_back({{"epoch", epoch}, {"step", step}, {"train_loss", batches ? loss_sum / batches : 0.0},
                     {"val_" + eval_metric_, value}});
      if (options_.verbose)
        log_message(LogLevel::kInfo, "automm: epoch " + std::to_string(epoch) + "/" + std::to_string(epochs) +
                                         ", step " + std::to_string(step) + ", loss " +
                                         fixed(batches ? loss_sum / batches : 0.0) + ", validation " + eval_metric_ +
                                         " " + fixed(value) + " (" + fixed(elapsed(), 1) + " s)");
      if (comparable > best) {
        best = comparable;
        best_epoch = epoch;
        since_best = 0;
      } else if (++since_best >= patience) {
        stop_reason = "patience";
      }
      if (max_steps > 0 && step >= max_steps && epoch < epochs) stop_reason = "max_steps";
      if (fit.time_limit > 0 && elapsed() > fit.time_limit) stop_reason = "time_limit";
      if (stop_reason == "max_steps") break;
    }
    const std::string method = config_.get_string("optim.top_k_average_method");
    top_k.finalize(method, *net_, [&] {
      const double v = score(tuning, {eval_metric_}).at(eval_metric_);
      return greater_is_better ? v : -v;
    });
    if (const auto peft = peft_options(config_); peft && peft->merge_at_save) merge_adapters(*net_);
    if (placement.dtype != torch::kFloat32) net_->to(torch::kFloat32);
    net_->eval();
    for (auto& p : net_->parameters()) p.set_requires_grad(false);
    const double final_score = score(tuning, {eval_metric_}).at(eval_metric_);
    summary_ = {{"problem_type", kProblemType},
                {"models", {"sam"}},
                {"checkpoint_name", config_.get_string("model.sam.checkpoint_name")},
                {"image_size", sam_config_.vision.image_size},
                {"num_classes", num_classes_},
                {"num_mask_tokens", num_mask_tokens_},
                {"loss", config_.get_string("optim.loss_func")},
                {"num_train_rows", train.size()},
                {"num_validation_rows", tuning.size()},
                {"validation_metric", eval_metric_},
                {"best_validation_score", greater_is_better ? best : -best},
                {"best_epoch", best_epoch},
                {"final_validation_score", final_score},
                {"top_k_average_method", method},
                {"epochs", epochs_run},
                {"stop_reason", stop_reason},
                {"optimizer_steps", step},
                {"training_seconds", elapsed()},
                {"threads", fit_threads},
                {"log", log}};
    if (options_.verbose)
      log_message(LogLevel::kInfo, "automm: fit done in " + fixed(elapsed(), 1) + " s (" + stop_reason +
                                       "); validation " + eval_metric_ + " " + fixed(final_score));
  }

  PredictorOptions options_;
  Config config_;
  bool fitted_ = false;
  std::string image_column_, eval_metric_ = "iou", loss_note_;
  int64_t num_classes_ = 1, num_mask_tokens_ = 1;
  bool adapters_kept_ = false;  // LoRA adapters saved apart (optim.lora.merge_at_save = false)
  SamConfig sam_config_;
  mutable Segmenter net_{nullptr};  // inference switches it to eval mode
  Json summary_ = Json::object();
};

}  // namespace

std::unique_ptr<Learner> make_segmentation_learner(PredictorOptions options) {
  return std::make_unique<SegmentationLearner>(std::move(options));
}

}  // namespace automm
