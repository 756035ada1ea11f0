// The saved predictor folder: predictor.json (config, types, summary),
// processors.json, model.pt (weights), metrics.csv. Relative paths only.
#include <cstring>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <random>
#include <sstream>
#include <unistd.h>

#include "models/hf_checkpoint.h"
#include "models/text/scratch_checkpoint.h"
#include "predictor_state.h"

namespace automm {
namespace fs = std::filesystem;
namespace {

constexpr const char* kPredictorFile = "predictor.json";
constexpr const char* kProcessorsFile = "processors.json";
constexpr const char* kWeightsFile = "model.pt";
constexpr const char* kMetricsFile = "metrics.csv";
constexpr const char* kCurveFile = "learning_curve.svg";
constexpr const char* kResumeDir = "resume";  // an unfinished fit's state

// FNV-1a over the file's bytes: detects a corrupted or swapped weights file.
// FNV-1a of model.pt, recorded in predictor.json to catch a mismatched or damaged
// weights file. kWordDigest hashes 64-bit words (8x fewer steps than bytes: a 340 MB
// BERT-base model.pt went from 0.35 s to about 0.05 s); kByteDigest, the first
// format, is still checked on predictors saved with it.
enum class DigestKind { kByte, kWord };
constexpr const char* kByteDigest = "weights_digest";
constexpr const char* kWordDigest = "weights_digest_fnv1a64_words";

std::string file_digest(const fs::path& path, DigestKind kind) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  constexpr uint64_t kPrime = 1099511628211ULL;
  uint64_t hash = 1469598103934665603ULL;
  std::vector<char> buffer(1 << 20);
  while (in.read(buffer.data(), static_cast<std::streamsize>(buffer.size())) || in.gcount() > 0) {
    const auto n = static_cast<size_t>(in.gcount());
    size_t i = 0;
    if (kind == DigestKind::kWord) {
      for (; i + 8 <= n; i += 8) {
        uint64_t word;
        std::memcpy(&word, buffer.data() + i, 8);
        hash = (hash ^ word) * kPrime;
      }
    }
    for (; i < n; ++i) hash = (hash ^ static_cast<unsigned char>(buffer[i])) * kPrime;
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

// A predictor folder, or one that holds only an unfinished fit (resume/).
bool holds_only_automm_files(const fs::path& dir) {
  if (fs::exists(dir / kPredictorFile)) return true;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.path().filename() != kResumeDir) return false;
  return true;
}

// A picture of the fit: training loss (left axis) and validation score (right
// axis) against optimizer steps.
void write_learning_curve(const fs::path& path, const std::vector<LogRow>& log, const std::string& metric) {
  const double width = 640, height = 360, left = 60, right = 60, top = 30, bottom = 40;
  std::vector<std::pair<double, double>> loss, score;
  for (const LogRow& row : log) {
    if (!std::isnan(row.validation_score)) score.emplace_back(row.step, row.validation_score);
    else loss.emplace_back(row.step, row.loss);
  }
  double max_step = 1;
  for (const LogRow& row : log) max_step = std::max(max_step, static_cast<double>(row.step));
  auto polyline = [&](const std::vector<std::pair<double, double>>& points, const char* color, std::string* range) {
    if (points.empty()) return std::string();
    double lo = points[0].second, hi = points[0].second;
    for (const auto& p : points) lo = std::min(lo, p.second), hi = std::max(hi, p.second);
    if (hi - lo < 1e-12) hi = lo + 1;
    std::ostringstream out;
    out << "<polyline fill=\"none\" stroke=\"" << color << "\" stroke-width=\"2\" points=\"";
    for (const auto& [x, y] : points)
      out << left + (width - left - right) * x / max_step << ',' << top + (height - top - bottom) * (hi - y) / (hi - lo) << ' ';
    out << "\"/>\n";
    *range = csv_number(lo) + " .. " + csv_number(hi);
    return out.str();
  };
  std::string loss_range, score_range;
  const std::string loss_line = polyline(loss, "#1f77b4", &loss_range);
  const std::string score_line = polyline(score, "#d62728", &score_range);
  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
      << "\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << width - left - right << "\" height=\""
      << height - top - bottom << "\" fill=\"none\" stroke=\"#999\"/>\n"
      << loss_line << score_line
      << "<text x=\"" << left << "\" y=\"20\" fill=\"#1f77b4\">training loss (" << loss_range << ")</text>\n"
      << "<text x=\"" << width - right << "\" y=\"20\" fill=\"#d62728\" text-anchor=\"end\">validation " << metric
      << " (" << score_range << ")</text>\n"
      << "<text x=\"" << width / 2 << "\" y=\"" << height - 10 << "\" text-anchor=\"middle\">optimizer step (0 .. "
      << max_step << ")</text>\n</svg>\n";
  write_text(path, svg.str());
}

std::string unique_suffix() {
  std::random_device device;
  return std::to_string(getpid()) + "-" + std::to_string(device());
}

// predictor.json and processors.json for `s`, plus `extra` keys in predictor.json.
// standalone = false: text models record their Hugging Face id instead of a
// copy of the checkpoint's config and tokenizer (from-scratch ones are always copied).
void write_predictor_files(const MultiModalPredictor::State& s, const fs::path& dir, const Json& extra,
                           bool standalone = true) {
  Json types = Json::object();
  for (const auto& [name, type] : s.column_types) types[name] = to_string(type);
  Json predictor = {
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
      {"fit_summary", s.summary}};
  predictor.update(extra);
  write_text(dir / kPredictorFile, predictor.dump(2));
  Json text = Json::array();
  const std::string checkpoint_name = s.config.get_string("model.hf_text.checkpoint_name");
  for (const auto& processor : s.text_processors) {
    const std::string& model = processor->model_name();
    Json entry = {{"model", model}, {"columns", processor->columns()}};
    if (standalone || is_scratch_name(checkpoint_name)) {
      // The tokenizer and model config travel with the predictor; the weights are in model.pt.
      copy_text_checkpoint_files(s.context.checkpoint_dirs.at(model), (dir / model).string());
      entry["checkpoint"] = "local://" + model;
    } else {
      entry["checkpoint"] = checkpoint_name;
    }
    text.push_back(entry);
  }
  Json images = Json::array();
  for (const auto& processor : s.image_processors) {
    const ImageProcessorOptions& o = processor->options();
    images.push_back({{"model", processor->model_name()},
                      {"architecture", s.context.image_models.at(processor->model_name()).architecture},
                      {"columns", processor->columns()},
                      {"image_size", o.image_size},
                      {"mean", o.mean},
                      {"std", o.std},
                      {"interpolation", o.interpolation},
                      {"max_images_per_column", o.max_images_per_column},
                      {"skip_invalid", o.skip_invalid},
                      {"train_transforms", o.train_transforms},
                      {"val_transforms", o.val_transforms}});
  }
  const Json processors = {{"label", s.label_processor.to_json()},
                           {"numerical", s.numerical.to_json()},
                           {"categorical", s.categorical.to_json()},
                           {"text", text},
                           {"image", images}};
  write_text(dir / kProcessorsFile, processors.dump(2));
}

// Reads predictor.json and processors.json into `s` (no weights).
Json read_predictor_files(MultiModalPredictor::State& s, const fs::path& dir) {
  const Json meta = read_json(dir / kPredictorFile);
  if (meta.value("format", "") != "automm.cpp predictor")
    throw std::runtime_error((dir / kPredictorFile).string() + " is not an automm.cpp predictor file");
  const int version = meta.value("format_version", -1);
  if (version != kFormatVersion)
    throw std::runtime_error("predictor at " + dir.string() + " has format version " + std::to_string(version) +
                             "; this automm.cpp reads version " + std::to_string(kFormatVersion));
  try {
    s.options.label = meta.at("label").get<std::string>();
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
    s.text_processors.clear();
    s.context.checkpoint_dirs.clear();
    s.context.load_pretrained = false;  // model.pt (or the resume state) holds the weights
    for (const Json& text : processors.value("text", Json::array())) {
      const std::string model = text.at("model").get<std::string>();
      // local://<model> inside the folder, or a Hugging Face id (saved with standalone=false).
      const std::string folder = resolve_hf_checkpoint(text.at("checkpoint").get<std::string>(), dir.string()).folder;
      s.context.checkpoint_dirs[model] = folder;
      s.text_processors.push_back(
          TextProcessor::create(model, text.at("columns").get<std::vector<std::string>>(), folder, s.config));
    }
    s.image_processors.clear();
    s.context.image_models.clear();
    for (const Json& image : processors.value("image", Json::array())) {
      const std::string model = image.at("model").get<std::string>();
      s.context.image_models[model] = {image.at("architecture").get<std::string>(), ""};
      ImageProcessorOptions options;
      options.image_size = image.at("image_size").get<int64_t>();
      options.mean = image.at("mean").get<std::array<double, 3>>();
      options.std = image.at("std").get<std::array<double, 3>>();
      options.interpolation = image.at("interpolation").get<std::string>();
      options.max_images_per_column = image.at("max_images_per_column").get<int64_t>();
      options.skip_invalid = image.at("skip_invalid").get<bool>();
      options.train_transforms = image.at("train_transforms").get<std::vector<std::string>>();
      options.val_transforms = image.at("val_transforms").get<std::vector<std::string>>();
      s.image_processors.push_back(ImageProcessor::create(
          model, image.at("columns").get<std::vector<std::pair<std::string, bool>>>(), options));
    }
  } catch (const Json::exception& e) {
    throw std::runtime_error("predictor at " + dir.string() + " is corrupted: " + e.what());
  }
  s.net = MultiModalNet(s.model_names, s.context, s.config);
  return meta;
}

}  // namespace

void copy_text_checkpoint_files(const std::string& from, const std::string& to) {
  if (!fs::is_directory(from)) throw std::runtime_error("text checkpoint folder " + from + " is missing");
  if (fs::exists(to) && fs::equivalent(from, to)) return;
  fs::create_directories(to);
  static const std::vector<std::string> weight_suffixes = {".safetensors", ".bin", ".pth", ".pt", ".ckpt",
                                                           ".h5", ".msgpack", ".onnx", ".index.json"};
  for (const auto& entry : fs::directory_iterator(from)) {
    if (!entry.is_regular_file()) continue;  // follows the hub cache's symlinks
    const std::string name = entry.path().filename().string();
    const bool weights = std::any_of(weight_suffixes.begin(), weight_suffixes.end(), [&](const std::string& suffix) {
      return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
    });
    if (!weights) fs::copy_file(entry.path(), fs::path(to) / name, fs::copy_options::overwrite_existing);
  }
}

std::string MultiModalPredictor::State::resume_dir() const {
  return (fs::path(options.path) / kResumeDir).string();
}

void MultiModalPredictor::State::write_resume_files(const Json& fit_options) const {
  const fs::path dir = resume_dir();
  fs::create_directories(dir);
  write_predictor_files(*this, dir, {{"fit_options", fit_options}});
}

void MultiModalPredictor::save(const std::string& path_text, bool standalone) const {
  const State& s = *state_;
  s.require_fitted("save");
  if (path_text.empty()) throw std::invalid_argument("save needs a folder path");
  const fs::path target = fs::absolute(path_text).lexically_normal();
  const fs::path parent = target.parent_path();
  fs::create_directories(parent);
  if (fs::exists(target) && !fs::is_directory(target))
    throw std::runtime_error("cannot save to " + target.string() + ": it exists and is not a folder");
  if (fs::exists(target) && !holds_only_automm_files(target))
    throw std::runtime_error("refusing to replace " + target.string() +
                             ": it is a non-empty folder that holds no automm predictor");

  // Everything goes to a temporary sibling first, then replaces the target by renames.
  const fs::path temp = parent / (target.filename().string() + ".tmp-" + unique_suffix());
  try {
    fs::create_directories(temp);
    torch::serialize::OutputArchive archive;
    s.net->save(archive);
    archive.save_to((temp / kWeightsFile).string());
    write_predictor_files(s, temp, {{kWordDigest, file_digest(temp / kWeightsFile, DigestKind::kWord)}}, standalone);
    write_metrics(temp / kMetricsFile, s.log);
    write_learning_curve(temp / kCurveFile, s.log, s.validation_metric);

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
  const fs::path dir(path_text);
  if (!fs::is_directory(dir)) throw std::runtime_error("cannot load predictor: " + path_text + " is not a folder");
  MultiModalPredictor predictor;
  State& s = *predictor.state_;
  if (resume) {
    const fs::path state_dir = dir / kResumeDir;
    if (!fs::exists(state_dir / kPredictorFile))
      throw std::runtime_error("nothing to resume in " + path_text + ": it holds no unfinished fit (" +
                               (state_dir / kPredictorFile).string() + " is missing)");
    const Json meta = read_predictor_files(s, state_dir);
    s.options.path = path_text;
    s.resume_fit_options = meta.at("fit_options");
    if (!fs::exists(checkpoint_file(state_dir.string())))
      throw std::runtime_error("nothing to resume in " + path_text +
                               ": the fit stopped before its first validation check; start it again");
    return predictor;
  }
  if (!fs::exists(dir / kPredictorFile) && fs::exists(dir / kResumeDir))
    throw std::runtime_error(path_text + " holds an unfinished fit: resume it with load(path, resume=true) and "
                             "fit(), or `automm fit --resume --path " + path_text + " --train FILE`");
  const Json meta = read_predictor_files(s, dir);
  s.options.path = path_text;
  const fs::path weights = dir / kWeightsFile;
  if (!fs::exists(weights)) throw std::runtime_error("cannot load predictor: " + weights.string() + " is missing");
  const bool word_digest = meta.contains(kWordDigest);
  const std::string recorded = meta.value(word_digest ? kWordDigest : kByteDigest, "");
  if (file_digest(weights, word_digest ? DigestKind::kWord : DigestKind::kByte) != recorded)
    throw std::runtime_error(weights.string() + " is corrupted: its checksum does not match predictor.json");
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(weights.string());
    s.net->load(archive);
  } catch (const c10::Error& e) {
    throw std::runtime_error("cannot read weights " + weights.string() + ": " + e.what_without_backtrace());
  }
  const Placement placement = resolve_placement(s.config);
  s.net->to(placement.device, placement.dtype);
  s.net->eval();
  s.fitted = true;
  return predictor;
}

}  // namespace automm
