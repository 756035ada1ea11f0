// The learner of problem_type zero_shot_image_classification (AutoMM's
// zero-shot use of CLIP): nothing to fit. A CLIP checkpoint scores each row's
// images against candidate class names: softmax(100 * cosine(image, text)),
// the names used verbatim unless model.clip.prompt_template says otherwise.
// Saved, the predictor folder holds a complete Hugging Face CLIP folder
// (clip/: config.json, tokenizer files, model.safetensors) or, with
// standalone = false, the checkpoint's hub id.
#include <filesystem>
#include <mutex>
#include <set>

#include "automm/log.h"
#include "automm/weights_io.h"
#include "checkpoints/hf_checkpoint.h"
#include "config/json_text.h"
#include "data/image/image_processor.h"
#include "data/processors.h"
#include "data/text/text_sequence.h"
#include "data/text/text_tokenizer.h"
#include "learners/learner_io.h"
#include "learners/placement.h"
#include "learners/trainer.h"
#include "learners/zero_shot_learner.h"
#include "modalities/modality.h"
#include "models/clip/clip_model.h"

namespace automm {
namespace {
namespace fs = std::filesystem;

constexpr const char* kProblemType = "zero_shot_image_classification";
constexpr const char* kModelFolder = "clip";  // inside a saved predictor
constexpr double kZeroShotScale = 100.0;      // AutoMM's fixed logit scale, not the learned one

class ZeroShotLearner : public Learner {
 public:
  explicit ZeroShotLearner(PredictorOptions options) : options_(std::move(options)) {
    config_.merge(options_.hyperparameters);
    require_used_keys(config_,
                      {"model.clip.checkpoint_name", "model.clip.image_size", "model.clip.max_text_len",
                       "model.clip.val_transforms", "model.clip.image_norm", "model.clip.max_image_num_per_column",
                       "model.clip.prompt_template", "data.image.", "env.per_gpu_batch_size",
                       "env.inference_batch_size_ratio"},
                      kProblemType);
    // AutoMM's zero-shot presets (utils/presets.py); without presets the key's
    // default, clip-vit-base-patch32, the size a CPU serves.
    if (!options_.presets.empty() && !config_.user_keys().count("model.clip.checkpoint_name")) {
      const std::string& p = options_.presets;
      if (p != "medium_quality" && p != "high_quality" && p != "best_quality")
        throw std::invalid_argument("unknown presets '" + p + "'; known: medium_quality, high_quality, best_quality");
      config_.set("model.clip.checkpoint_name", p == "medium_quality" ? "openai/clip-vit-base-patch32"
                                                : p == "high_quality" ? "openai/clip-vit-large-patch14"
                                                                      : "openai/clip-vit-large-patch14-336");
      config_.mark_as_preset("model.clip.checkpoint_name");
    }
    checkpoint_ = config_.get_string("model.clip.checkpoint_name");
    check_template(config_.get_string("model.clip.prompt_template"));
  }

  void fit(const Table&, const FitOptions&, const Learner*) override {
    throw std::logic_error(std::string("problem_type ") + kProblemType +
                           " has nothing to fit: call predict / predict_proba with the candidate class names");
  }
  Predictions predict(const Table&) const override { throw needs_candidates("predict"); }
  torch::Tensor predict_proba(const Table&, bool) const override { throw needs_candidates("predict_proba"); }
  std::map<std::string, double> evaluate(const Table&, const std::vector<std::string>&) const override {
    throw std::invalid_argument(std::string("evaluate is not available for ") + kProblemType +
                                ": score predict(data, classes) against your labels");
  }

  torch::Tensor predict_proba(const Table& data, const std::vector<std::string>& candidates) const override {
    check_candidates(candidates);
    std::lock_guard<std::mutex> lock(mutex_);
    ensure_model();
    ThreadScope threads(choose_thread_count());
    torch::NoGradGuard no_grad;
    const torch::Tensor images = image_embeddings(data);  // [rows, P], normalised
    std::vector<std::string> prompts;
    const std::string prompt = config_.get_string("model.clip.prompt_template");
    for (const std::string& name : candidates) prompts.push_back(fill_template(prompt, name));
    const torch::Tensor texts = text_embeddings(prompts);  // [classes, P], normalised
    return torch::softmax(kZeroShotScale * images.matmul(texts.t()), -1);
  }

  // Normalised image features of the rows (the mean over a row's image
  // columns), or, without image columns, of its one text column.
  torch::Tensor extract_embedding(const Table& data) const override {
    std::lock_guard<std::mutex> lock(mutex_);
    ensure_model();
    ThreadScope threads(choose_thread_count());
    torch::NoGradGuard no_grad;
    const ColumnTypes types = infer_column_types(data, nullptr, "", {});
    if (!image_column_pairs(types).empty()) return image_embeddings(data);
    std::vector<std::string> text_columns;
    for (const auto& [name, type] : types)
      if (type == ColumnType::kText || type == ColumnType::kCategorical) text_columns.push_back(name);
    if (text_columns.size() != 1)
      throw std::invalid_argument("extract_embedding of a zero-shot predictor reads image columns, or one text "
                                  "column; the data has " + std::to_string(text_columns.size()) + " text columns");
    std::vector<std::string> texts;
    const Column& column = data.column(text_columns.front());
    for (size_t r = 0; r < column.size(); ++r) texts.push_back(column.text(r));
    return text_embeddings(texts);
  }

  torch::Tensor head_outputs(const Table&) const override { throw no_head(); }
  torch::Tensor classify_features(const torch::Tensor&) const override { throw no_head(); }
  void export_model(const Table&, const std::string&, const ExportOptions&) const override {
    throw std::invalid_argument(std::string("export is for fitted predictors, not ") + kProblemType);
  }

  void write(const std::string& folder_text, bool standalone, const Json& extra) const override {
    const fs::path folder(folder_text);
    Json predictor = {{"format", kPredictorFormat},        {"format_version", kFormatVersion},
                      {"label", options_.label},           {"problem_type", kProblemType},
                      {"eval_metric", ""},                 {"config", config_.to_json()},
                      {"fit_summary", Json::object()}};
    if (standalone || is_local_checkpoint()) {
      // A Hugging Face CLIP folder of its own: config, tokenizer and weights.
      std::lock_guard<std::mutex> lock(mutex_);
      ensure_model();
      const fs::path copy = folder / kModelFolder;
      copy_text_checkpoint_files(folder_, copy.string());
      StateDict weights;
      for (const auto& item : model_->named_parameters()) weights[item.key()] = item.value();
      save_safetensors(weights, (copy / "model.safetensors").string());
      predictor["checkpoint"] = std::string("local://") + kModelFolder;
    } else {
      predictor["checkpoint"] = checkpoint_;
    }
    predictor.update(extra);
    write_text_file((folder / kPredictorFile).string(), predictor.dump(2));
  }

  void read(const std::string& folder, const Json& meta, bool resume) override {
    if (resume) throw std::invalid_argument(std::string(kProblemType) + " predictors have no unfinished fit to resume");
    const std::string where = (fs::path(folder) / kPredictorFile).string();
    try {
      config_ = Config::from_json(meta.at("config"));
      checkpoint_ = meta.at("checkpoint").get<std::string>();
    } catch (const nlohmann::json::exception& e) {
      throw std::runtime_error(where + ": " + e.what());
    }
    folder_ = resolve_hf_checkpoint(checkpoint_, folder).folder;
  }
  void relocate(const std::string& folder) override {
    const fs::path copy = fs::path(folder) / kModelFolder;
    if (fs::is_directory(copy)) folder_ = copy.string();
  }

  bool fitted() const override { return true; }
  Json fit_summary() const override { return Json::object(); }
  std::string problem_type() const override { return kProblemType; }
  std::string eval_metric() const override { return ""; }
  std::vector<std::string> classes() const override { return {}; }
  std::map<std::string, std::string> column_types() const override { return {}; }
  const Config& config() const override { return config_; }
  PredictorOptions& options() override { return options_; }
  const PredictorOptions& options() const override { return options_; }

 private:
  static std::invalid_argument needs_candidates(const std::string& what) {
    return std::invalid_argument(std::string(kProblemType) + ": " + what +
                                 " needs the candidate class names: " + what + "(data, classes)");
  }
  static std::logic_error no_head() {
    return std::logic_error(std::string(kProblemType) + " predictors have no trained head to distill from");
  }
  static void check_template(const std::string& prompt) {
    if (prompt.find("{}") == std::string::npos)
      throw std::invalid_argument("model.clip.prompt_template = \"" + prompt +
                                  "\" must contain {} where the class name goes");
  }
  static std::string fill_template(const std::string& prompt, const std::string& name) {
    std::string out;
    for (size_t at = 0;;) {
      const size_t hole = prompt.find("{}", at);
      out += prompt.substr(at, hole - at);
      if (hole == std::string::npos) return out;
      out += name;
      at = hole + 2;
    }
  }
  static void check_candidates(const std::vector<std::string>& candidates) {
    if (candidates.empty()) throw std::invalid_argument("the list of candidate class names is empty");
    std::set<std::string> seen;
    for (const std::string& name : candidates) {
      if (name.empty()) throw std::invalid_argument("a candidate class name is empty");
      if (!seen.insert(name).second)
        throw std::invalid_argument("candidate class name \"" + name + "\" is given twice");
    }
  }

  bool is_local_checkpoint() const { return checkpoint_.rfind("local://", 0) == 0; }

  // The CLIP model and tokenizer, read once (callers hold mutex_).
  void ensure_model() const {
    if (model_) return;
    if (folder_.empty()) {
      const ResolvedCheckpoint resolved = resolve_hf_checkpoint(checkpoint_);
      folder_ = resolved.folder;
      if (options_.verbose) log_message(LogLevel::kInfo, "automm: clip = " + checkpoint_ + ", " + resolved.source);
    }
    ClipModel model(ClipConfig::from_json(read_checkpoint_config(folder_), config_));
    try {
      model->load_hf_state_dict(load_weights(folder_));
    } catch (const std::exception& e) {
      throw std::runtime_error("loading the CLIP weights of " + checkpoint_ + " from " + folder_ + " failed: " + e.what());
    }
    model->eval();
    tokenizer_ = std::make_shared<const TextTokenizer>(TextTokenizer::from_folder(folder_, "clip"));
    model_ = model;
  }

  // [rows, P]: each row's image columns, L2-normalised, averaged (missing images count as zero vectors).
  torch::Tensor image_embeddings(const Table& data) const {
    const ColumnTypes types = infer_column_types(data, nullptr, "", {});
    const auto columns = image_column_pairs(types);
    if (columns.empty())
      throw std::invalid_argument(std::string(kProblemType) + " needs an image column (image paths or base64 "
                                  "images); none of the data's columns holds images");
    const int64_t size = model_->config().vision.image_size;
    const auto processor =
        ImageProcessor::create(kModelFolder, columns, image_processor_options(config_, "model.clip", size, "bicubic"));
    const auto inputs = processor->transform(data, table_folder(data));
    const int64_t rows = static_cast<int64_t>(data.num_rows());
    const int64_t batch = inference_batch_size(config_);
    std::vector<torch::Tensor> out;
    for (int64_t first = 0; first < rows; first += batch) {
      std::vector<int64_t> ids;
      for (int64_t r = first; r < std::min(rows, first + batch); ++r) ids.push_back(r);
      const ImageBatch images = processor->make_batch(*inputs, ids, nullptr);
      const int64_t n = images.images.size(0), slots = images.images.size(1);
      auto features = model_->image_features(images.images.flatten(0, 1)).view({n, slots, -1});
      features = features * images.mask.unsqueeze(-1);
      features = features / features.norm(2, -1, true).clamp_min(1e-6);
      out.push_back(features.mean(1));
    }
    for (const std::string& problem : inputs->problems()) log_message(LogLevel::kWarning, problem);
    return torch::cat(out);
  }

  // [texts, P]: [bos] tokens [eos], at most model.clip.max_text_len tokens, L2-normalised.
  torch::Tensor text_embeddings(const std::vector<std::string>& texts) const {
    TextSequenceOptions options;
    const int64_t model_max = model_->config().text.max_position_embeddings;
    const int64_t requested = config_.get_int("model.clip.max_text_len");
    options.max_len = requested <= 0 ? model_max : std::min(requested, model_max);
    options.insert_sep = false;
    options.text_segment_num = 1;
    options.cls_id = tokenizer_->cls_id();
    options.sep_id = tokenizer_->sep_id();
    options.pad_id = tokenizer_->pad_id();
    std::vector<TextSequence> sequences;
    for (const std::string& text : texts) sequences.push_back(build_text_sequence({tokenizer_->encode(text)}, options));
    const PaddedTextBatch padded = pad_text_batch(sequences, options.pad_id);
    const auto ids = torch::tensor(padded.input_ids, torch::kLong).view({padded.batch, padded.length});
    const auto mask = torch::tensor(padded.attention_mask, torch::kLong).view({padded.batch, padded.length});
    const auto features = model_->text_features(ids, mask);
    return features / features.norm(2, -1, true);
  }

  PredictorOptions options_;
  Config config_;
  std::string checkpoint_;          // model.clip.checkpoint_name, or local://clip once saved
  mutable std::string folder_;      // the checkpoint folder once resolved
  mutable std::mutex mutex_;
  mutable ClipModel model_{nullptr};
  mutable std::shared_ptr<const TextTokenizer> tokenizer_;
};

}  // namespace

std::unique_ptr<Learner> make_zero_shot_learner(PredictorOptions options) {
  return std::make_unique<ZeroShotLearner>(std::move(options));
}

}  // namespace automm
