// The default learner's part of a predictor folder: predictor.json (config,
// column types, models, summary), processors.json (the task's and each modality
// adapter's saved state), model.safetensors (weights), metrics.csv,
// learning_curve.svg. Relative paths only. Folders of format versions 1 and 2
// (weights in model.pt, a LibTorch archive) are read too.
#include <xxhash.h>
#include "config/json_text.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <new>
#include <optional>
#include <sstream>

#include "learners/default_learner.h"
#include "learners/fit_report.h"
#include "learners/learner_io.h"
#include "automm/weights_io.h"
#include "models/peft.h"
#include "models/skip_init.h"

namespace automm {
namespace fs = std::filesystem;
namespace {

constexpr const char* kProcessorsFile = "processors.json";
constexpr const char* kWeightsFile = "model.safetensors";
constexpr const char* kArchiveWeightsFile = "model.pt";  // format versions 1 and 2
constexpr const char* kMetricsFile = "metrics.csv";
constexpr const char* kCurveFile = "learning_curve.svg";

// The weights digest, recorded in predictor.json to catch a damaged or swapped
// weights file. Formats 2 and 3: XXH3-64 (xxHash). Format 1 recorded FNV-1a, either over
// bytes ("weights_digest") or over 64-bit words; both are still checked.
constexpr const char* kXxh3Digest = "weights_xxh3_64";
constexpr const char* kFnvByteDigest = "weights_digest";
constexpr const char* kFnvWordDigest = "weights_digest_fnv1a64_words";

std::string hex64(uint64_t value) {
  std::ostringstream out;
  out << std::hex << std::setw(16) << std::setfill('0') << value;
  return out.str();
}

std::string xxh3_digest(const unsigned char* bytes, uint64_t size) { return hex64(XXH3_64bits(bytes, size)); }

std::string xxh3_digest(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  XXH3_state_t* state = XXH3_createState();
  if (!state) throw std::bad_alloc();
  XXH3_64bits_reset(state);
  std::vector<char> buffer(1 << 20);
  while (in.read(buffer.data(), static_cast<std::streamsize>(buffer.size())) || in.gcount() > 0)
    XXH3_64bits_update(state, buffer.data(), static_cast<size_t>(in.gcount()));
  const uint64_t hash = XXH3_64bits_digest(state);
  XXH3_freeState(state);
  return hex64(hash);
}

std::string fnv1a_digest(const fs::path& path, bool words) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  constexpr uint64_t kPrime = 1099511628211ULL;
  uint64_t hash = 1469598103934665603ULL;
  std::vector<char> buffer(1 << 20);
  while (in.read(buffer.data(), static_cast<std::streamsize>(buffer.size())) || in.gcount() > 0) {
    const auto n = static_cast<size_t>(in.gcount());
    size_t i = 0;
    if (words) {
      for (; i + 8 <= n; i += 8) {
        uint64_t word;
        std::memcpy(&word, buffer.data() + i, 8);
        hash = (hash ^ word) * kPrime;
      }
    }
    for (; i < n; ++i) hash = (hash ^ static_cast<unsigned char>(buffer[i])) * kPrime;
  }
  return hex64(hash);
}

// Throws when the weights file does not match the digest predictor.json
// recorded. `mapped`: the file's bytes when they are mapped already.
void check_weights_digest(const fs::path& weights, const Json& meta, const MappedSafetensors* mapped = nullptr) {
  std::string recorded, actual;
  if (meta.contains(kXxh3Digest)) {
    recorded = meta.at(kXxh3Digest).get<std::string>();
    actual = mapped ? xxh3_digest(mapped->bytes(), mapped->size()) : xxh3_digest(weights);
  } else {
    const bool words = meta.contains(kFnvWordDigest);
    recorded = meta.value(words ? kFnvWordDigest : kFnvByteDigest, "");
    actual = fnv1a_digest(weights, words);
  }
  if (actual != recorded)
    throw std::runtime_error(weights.string() + " is corrupted: its checksum does not match predictor.json");
}

// Every parameter and buffer of `net` by its dotted name.
StateDict network_state(const torch::nn::Module& net) {
  StateDict state;
  for (const auto& item : net.named_parameters()) state[item.key()] = item.value();
  for (const auto& item : net.named_buffers()) state[item.key()] = item.value();
  return state;
}

// Points every parameter and buffer of `net` at its tensor in `state` (no copy:
// the tensors of a mapped file stay in the page cache until written). Throws
// naming the tensor when one is missing, extra or of another shape.
void assign_network_state(torch::nn::Module& net, const StateDict& state, const std::string& file) {
  torch::NoGradGuard no_grad;
  size_t assigned = 0;
  const auto assign = [&](const std::string& name, torch::Tensor target) {
    const auto found = state.find(name);
    if (found == state.end())
      throw std::runtime_error("cannot load predictor: " + file + " lacks the network's tensor '" + name + "'");
    if (found->second.sizes() != target.sizes())
      throw std::runtime_error("cannot load predictor: " + file + " holds '" + name + "' of shape " +
                               c10::str(found->second.sizes()) + ", the network's is " + c10::str(target.sizes()));
    target.set_data(found->second);
    ++assigned;
  };
  for (const auto& item : net.named_parameters()) assign(item.key(), item.value());
  for (const auto& item : net.named_buffers()) assign(item.key(), item.value());
  if (assigned != state.size()) {
    const StateDict known = network_state(net);
    for (const auto& [name, tensor] : state)
      if (!known.count(name))
        throw std::runtime_error("cannot load predictor: " + file + " holds tensor '" + name +
                                 "', which this predictor's network lacks");
  }
}

// Format 1 kept one label processor and fixed processor slots; format 2 saves
// the task's state and a list of modality adapters. This reads the first as the second.
Json processors_from_format_1(const Json& old) {
  Json modalities = Json::array();
  for (const char* family : {"numerical", "categorical"}) {
    const Json& state = old.at(family);
    if (!state.value("columns", Json::array()).empty())
      modalities.push_back({{"family", family}, {"name", family}, {"state", state}});
  }
  for (const Json& text : old.value("text", Json::array()))
    modalities.push_back({{"family", "hf_text"}, {"name", text.at("model")}, {"state", text}});
  for (const Json& image : old.value("image", Json::array()))
    modalities.push_back({{"family", "timm_image"}, {"name", image.at("model")}, {"state", image}});
  return {{"task", {{"label", old.at("label")}}}, {"modalities", modalities}};
}

}  // namespace

Json write_network_weights(const torch::nn::Module& net, const std::string& folder) {
  const fs::path file = fs::path(folder) / kWeightsFile;
  save_safetensors(network_state(net), file.string());
  return {{kXxh3Digest, xxh3_digest(file)}};
}

void read_network_weights(torch::nn::Module& net, const std::string& folder, const Json& meta) {
  const fs::path file = fs::path(folder) / kWeightsFile;
  if (!fs::exists(file)) throw std::runtime_error("cannot load predictor: " + file.string() + " is missing");
  const MappedSafetensors mapped(file.string());
  check_weights_digest(file, meta, &mapped);
  assign_network_state(net, mapped.tensors(), file.string());
}

CurveMarks DefaultLearner::curve_marks() const {
  CurveMarks marks;
  marks.metric = validation_metric_;
  marks.stop_reason = summary_.value("stop_reason", "");
  const bool greater = task_->metric(validation_metric_).greater_is_better;
  for (const LogRow& row : log_) {
    if (std::isnan(row.validation_score)) continue;
    if (marks.best_step < 0 || (greater ? row.validation_score > marks.best_score : row.validation_score < marks.best_score)) {
      marks.best_step = row.step;
      marks.best_score = row.validation_score;
    }
  }
  return marks;
}

void DefaultLearner::write(const std::string& folder_text, bool standalone, const Json& extra) const {
  const fs::path folder(folder_text);
  Json types = Json::object();
  for (const auto& [name, type] : column_types_) types[name] = to_string(type);
  Json predictor = {{"format", kPredictorFormat},
                    {"format_version", kFormatVersion},
                    {"label", options_.label},
                    {"problem_type", task_->name()},
                    {"eval_metric", eval_metric_},
                    {"validation_metric", validation_metric_},
                    {"column_types", types},
                    {"model_names", model_names_},
                    {"config", config_.to_json()},
                    {"fit_summary", summary_}};
  if (fitted_) {  // an unfinished fit's folder holds no weights: its trainer state has them
    save_safetensors(network_state(*net_), (folder / kWeightsFile).string());
    predictor[kXxh3Digest] = xxh3_digest(folder / kWeightsFile);
    write_metrics_csv((folder / kMetricsFile).string(), log_);
    write_learning_curve((folder / kCurveFile).string(), log_, curve_marks());
  }
  predictor.update(extra);
  write_text_file((folder / kPredictorFile).string(), predictor.dump(2));
  const Json processors = {{"task", task_->to_json()},
                           {"modalities", save_modalities(modalities_, folder.string(), standalone)}};
  write_text_file((folder / kProcessorsFile).string(), processors.dump(2));
}

void DefaultLearner::read(const std::string& folder_text, const Json& meta, bool resume) {
  const fs::path folder(folder_text);
  const int64_t version = json_integer_field(meta, "format_version", -1, (folder / kPredictorFile).string());
  try {
    options_.label = meta.at("label").get<std::string>();
    config_ = Config::from_json(meta.at("config"));
    task_ = make_task(meta.at("problem_type").get<std::string>(), {options_.label, &config_});
    eval_metric_ = meta.at("eval_metric").get<std::string>();
    validation_metric_ = meta.at("validation_metric").get<std::string>();
    column_types_.clear();
    for (const auto& [name, type] : meta.at("column_types").items())
      column_types_[name] = parse_column_type(type.get<std::string>());
    model_names_ = meta.at("model_names").get<std::vector<std::string>>();
    summary_ = meta.at("fit_summary");
    Json processors = read_json_file((folder / kProcessorsFile).string());
    if (version == 1) processors = processors_from_format_1(processors);
    task_->from_json(processors.at("task"));
    modalities_ = load_modalities(processors.at("modalities"), folder.string(), config_);
  } catch (const Json::exception& e) {
    throw std::runtime_error("predictor at " + folder.string() + " is corrupted: " + e.what());
  }
  if (resume) {
    build(/*pretrained_weights=*/false);
    resume_fit_options_ = meta.at("fit_options");
    attach_peft(/*for_training=*/true);
    return;  // the trainer restores the weights from the unfinished fit's last.pt
  }
  const fs::path weights = folder / (version >= 3 ? kWeightsFile : kArchiveWeightsFile);
  if (!fs::exists(weights)) throw std::runtime_error("cannot load predictor: " + weights.string() + " is missing");
  std::optional<MappedSafetensors> mapped;
  if (version >= 3) mapped.emplace(weights.string());
  check_weights_digest(weights, meta, mapped ? &*mapped : nullptr);
  {
    // Every weight comes from the file: no random initial values are drawn first.
    const SkipInitialization skip;
    build(/*pretrained_weights=*/false);
    // Adapters kept apart (optim.lora.merge_at_save = false) are part of the weights.
    const auto peft = peft_options(config_);
    if (peft && !peft->merge_at_save) attach_peft(/*for_training=*/false);
  }
  if (mapped) {
    assign_network_state(*net_, mapped->tensors(), weights.string());
  } else {
    try {
      torch::serialize::InputArchive archive;
      archive.load_from(weights.string());
      net_->load(archive);
    } catch (const c10::Error& e) {
      throw std::runtime_error("cannot read weights " + weights.string() + ": " + e.what_without_backtrace());
    }
  }
  const Placement placement = resolve_placement(config_);
  net_->to(placement.device, placement.dtype);
  net_->eval();
  fitted_ = true;
}

}  // namespace automm
