// The saved predictor folder: predictor.json (config, types, summary),
// processors.json, model.pt (weights), metrics.csv. Relative paths only.
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <random>
#include <sstream>
#include <unistd.h>

#include "predictor_state.h"

namespace automm {
namespace fs = std::filesystem;
namespace {

constexpr const char* kPredictorFile = "predictor.json";
constexpr const char* kProcessorsFile = "processors.json";
constexpr const char* kWeightsFile = "model.pt";
constexpr const char* kMetricsFile = "metrics.csv";

// FNV-1a over the file's bytes: detects a corrupted or swapped weights file.
std::string file_digest(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  uint64_t hash = 1469598103934665603ULL;
  char buffer[1 << 16];
  while (in.read(buffer, sizeof(buffer)) || in.gcount() > 0) {
    for (std::streamsize i = 0; i < in.gcount(); ++i) {
      hash ^= static_cast<unsigned char>(buffer[i]);
      hash *= 1099511628211ULL;
    }
  }
  std::ostringstream out;
  out << std::hex << std::setw(16) << std::setfill('0') << hash;
  return out.str();
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  out.close();
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

Json read_json(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string() + ": the file is missing");
  try {
    return Json::parse(in);
  } catch (const Json::exception& e) {
    throw std::runtime_error(path.string() + " is corrupted: " + e.what());
  }
}

std::string csv_number(double v) {
  if (std::isnan(v)) return "";
  std::ostringstream out;
  out << std::setprecision(9) << v;
  return out.str();
}

void write_metrics(const fs::path& path, const std::vector<LogRow>& log) {
  std::ostringstream out;
  out << "step,epoch,lr,loss,grad_norm,validation_score\n";
  for (const LogRow& row : log)
    out << row.step << ',' << csv_number(row.epoch) << ',' << csv_number(row.lr) << ',' << csv_number(row.loss)
        << ',' << (row.grad_norm >= 0 ? csv_number(row.grad_norm) : "") << ','
        << csv_number(row.validation_score) << '\n';
  write_text(path, out.str());
}

std::string unique_suffix() {
  std::random_device device;
  return std::to_string(getpid()) + "-" + std::to_string(device());
}

}  // namespace

void MultiModalPredictor::save(const std::string& path_text, bool standalone) const {
  (void)standalone;  // tabular models have no external checkpoint to copy
  const State& s = *state_;
  s.require_fitted("save");
  if (path_text.empty()) throw std::invalid_argument("save needs a folder path");
  const fs::path target = fs::absolute(path_text).lexically_normal();
  const fs::path parent = target.parent_path();
  fs::create_directories(parent);
  if (fs::exists(target) && !fs::is_directory(target))
    throw std::runtime_error("cannot save to " + target.string() + ": it exists and is not a folder");
  if (fs::exists(target) && !fs::is_empty(target) && !fs::exists(target / kPredictorFile))
    throw std::runtime_error("refusing to replace " + target.string() +
                             ": it is a non-empty folder that holds no automm predictor");

  // Everything goes to a temporary sibling first, then replaces the target by renames.
  const fs::path temp = parent / (target.filename().string() + ".tmp-" + unique_suffix());
  try {
    fs::create_directories(temp);
    torch::serialize::OutputArchive archive;
    s.net->save(archive);
    archive.save_to((temp / kWeightsFile).string());
    Json types = Json::object();
    for (const auto& [name, type] : s.column_types) types[name] = to_string(type);
    const Json predictor = {
        {"format", "automm.cpp predictor"},
        {"format_version", kFormatVersion},
        {"label", s.options.label},
        {"problem_type", to_string(s.problem_type)},
        {"eval_metric", s.eval_metric},
        {"validation_metric", s.validation_metric},
        {"column_types", types},
        {"model_names", s.model_names},
        {"model_context",
         {{"num_numerical", s.context.num_numerical},
          {"categorical_cardinalities", s.context.categorical_cardinalities},
          {"num_outputs", s.context.num_outputs}}},
        {"config", s.config.to_json()},
        {"fit_summary", s.summary},
        {"weights_digest", file_digest(temp / kWeightsFile)}};
    write_text(temp / kPredictorFile, predictor.dump(2));
    const Json processors = {{"label", s.label_processor.to_json()},
                             {"numerical", s.numerical.to_json()},
                             {"categorical", s.categorical.to_json()}};
    write_text(temp / kProcessorsFile, processors.dump(2));
    write_metrics(temp / kMetricsFile, s.log);

    if (fs::exists(target)) {
      const fs::path old = parent / (target.filename().string() + ".old-" + unique_suffix());
      fs::rename(target, old);
      fs::rename(temp, target);
      fs::remove_all(old);
    } else {
      fs::rename(temp, target);
    }
  } catch (const std::exception& e) {
    std::error_code ignored;
    fs::remove_all(temp, ignored);
    throw std::runtime_error("saving the predictor to " + target.string() + " failed (" + e.what() +
                             "); any predictor already there is unchanged");
  }
}

MultiModalPredictor MultiModalPredictor::load(const std::string& path_text, bool resume) {
  if (resume)
    throw std::invalid_argument("load(resume=true): resuming an interrupted fit is not supported yet; "
                                "load without resume to use the saved model");
  const fs::path dir(path_text);
  if (!fs::is_directory(dir)) throw std::runtime_error("cannot load predictor: " + path_text + " is not a folder");
  const Json meta = read_json(dir / kPredictorFile);
  if (meta.value("format", "") != "automm.cpp predictor")
    throw std::runtime_error((dir / kPredictorFile).string() + " is not an automm.cpp predictor file");
  const int version = meta.value("format_version", -1);
  if (version != kFormatVersion)
    throw std::runtime_error("predictor at " + path_text + " has format version " + std::to_string(version) +
                             "; this automm.cpp reads version " + std::to_string(kFormatVersion));
  MultiModalPredictor predictor;
  State& s = *predictor.state_;
  try {
    s.options.label = meta.at("label").get<std::string>();
    s.options.path = path_text;
    s.problem_type = parse_problem_type(meta.at("problem_type").get<std::string>());
    s.eval_metric = meta.at("eval_metric").get<std::string>();
    s.validation_metric = meta.at("validation_metric").get<std::string>();
    for (const auto& [name, type] : meta.at("column_types").items())
      s.column_types[name] = parse_column_type(type.get<std::string>());
    s.model_names = meta.at("model_names").get<std::vector<std::string>>();
    const Json& context = meta.at("model_context");
    s.context.num_numerical = context.at("num_numerical").get<int64_t>();
    s.context.categorical_cardinalities = context.at("categorical_cardinalities").get<std::vector<int64_t>>();
    s.context.num_outputs = context.at("num_outputs").get<int64_t>();
    s.config = Config::from_json(meta.at("config"));
    s.summary = meta.at("fit_summary");
    const Json processors = read_json(dir / kProcessorsFile);
    s.label_processor = LabelProcessor::from_json(processors.at("label"));
    s.numerical = NumericalProcessor::from_json(processors.at("numerical"));
    s.categorical = CategoricalProcessor::from_json(processors.at("categorical"));
  } catch (const Json::exception& e) {
    throw std::runtime_error("predictor at " + path_text + " is corrupted: " + e.what());
  }
  const fs::path weights = dir / kWeightsFile;
  if (!fs::exists(weights)) throw std::runtime_error("cannot load predictor: " + weights.string() + " is missing");
  if (file_digest(weights) != meta.value("weights_digest", ""))
    throw std::runtime_error(weights.string() + " is corrupted: its checksum does not match predictor.json");
  s.net = MultiModalNet(s.model_names, s.context, s.config);
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(weights.string());
    s.net->load(archive);
  } catch (const c10::Error& e) {
    throw std::runtime_error("cannot read weights " + weights.string() + ": " + e.what_without_backtrace());
  }
  s.net->to(resolve_placement(s.config).device, resolve_placement(s.config).dtype);
  s.net->eval();
  s.fitted = true;
  return predictor;
}

}  // namespace automm
