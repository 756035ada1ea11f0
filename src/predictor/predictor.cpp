// The public face: validates the user's options, picks the learner the problem
// type names, and keeps the predictor folder whole (temporary folder + atomic exchange).
#include "automm/predictor.h"
#include "config/json_text.h"

#include <fcntl.h>  // AT_FDCWD
#include <stdio.h>  // renameat2, RENAME_EXCHANGE (glibc >= 2.28)
#include <unistd.h>

#include <filesystem>

#include "automm/metrics.h"
#include "learners/learner.h"
#include "learners/learner_io.h"
#include "tasks/task.h"

namespace automm {
namespace fs = std::filesystem;
namespace {

// A predictor folder, or one that holds only an unfinished fit (resume/).
bool holds_only_automm_files(const fs::path& dir) {
  if (fs::exists(dir / kPredictorFile)) return true;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.path().filename() != kResumeFolder) return false;
  return true;
}

// predictor.json of `dir`, checked to be a predictor of a format this version reads.
Json read_predictor_meta(const fs::path& dir) {
  const Json meta = read_json_file((dir / kPredictorFile).string());
  if (meta.value("format", "") != kPredictorFormat)
    throw std::runtime_error((dir / kPredictorFile).string() + " is not an automm.cpp predictor file");
  const int64_t version = json_integer_field(meta, "format_version", -1, (dir / kPredictorFile).string());
  if (version < 1 || version > kFormatVersion)
    throw std::runtime_error("predictor at " + dir.string() + " has format version " + std::to_string(version) +
                             "; this automm.cpp reads versions 1 to " + std::to_string(kFormatVersion));
  if (!meta.contains("problem_type") || !meta.at("problem_type").is_string())
    throw std::runtime_error("predictor at " + dir.string() + " is corrupted: it names no problem type");
  return meta;
}

}  // namespace

MultiModalPredictor::MultiModalPredictor(std::unique_ptr<Learner> learner) : learner_(std::move(learner)) {}
MultiModalPredictor::~MultiModalPredictor() = default;
MultiModalPredictor::MultiModalPredictor(MultiModalPredictor&&) noexcept = default;
MultiModalPredictor& MultiModalPredictor::operator=(MultiModalPredictor&&) noexcept = default;

MultiModalPredictor::MultiModalPredictor(PredictorOptions options) {
  // The problem type first: one that is not built yet says so, label or not.
  const TaskEntry* task = options.problem_type.empty() ? nullptr : &find_task(options.problem_type);
  if (options.label.empty() && (!task || task->needs_label))
    throw std::invalid_argument("MultiModalPredictor needs a label column name");
  const std::string learner = task ? task->learner : "default";
  if (!options.eval_metric.empty()) find_metric(options.eval_metric);
  learner_ = make_learner(learner, std::move(options));
}

void MultiModalPredictor::fit(const Table& train_data, const FitOptions& options) {
  const Learner* teacher = options.teacher_predictor ? options.teacher_predictor->learner_.get() : nullptr;
  learner_->fit(train_data, options, teacher);
  if (!learner_->lead()) return;  // another data-parallel rank: rank 0 saves
  save(path());  // replaces the folder, unfinished-fit state included
  learner_->relocate(path());
}

Predictions MultiModalPredictor::predict(const Table& data) const { return learner_->predict(data); }

torch::Tensor MultiModalPredictor::predict_proba(const Table& data, bool as_multiclass) const {
  return learner_->predict_proba(data, as_multiclass);
}

torch::Tensor MultiModalPredictor::predict_proba(const Table& data, const std::vector<std::string>& candidates) const {
  return learner_->predict_proba(data, candidates);
}

Predictions MultiModalPredictor::predict(const Table& data, const std::vector<std::string>& candidates) const {
  Predictions out;
  out.name = "prediction";
  out.classes = candidates;
  out.values = predict_proba(data, candidates).argmax(-1).to(torch::kLong);
  return out;
}

std::map<std::string, double> MultiModalPredictor::evaluate(const Table& data,
                                                            const std::vector<std::string>& metrics) const {
  return learner_->evaluate(data, metrics);
}

torch::Tensor MultiModalPredictor::extract_embedding(const Table& data) const {
  return learner_->extract_embedding(data);
}

void MultiModalPredictor::export_model(const Table& example, const std::string& out,
                                       const ExportOptions& options) const {
  learner_->export_model(example, out, options);
}

void MultiModalPredictor::save(const std::string& path_text, bool standalone) const {
  if (!learner_->fitted()) throw std::logic_error("save needs a fitted predictor: call fit() or load() first");
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
    learner_->write(temp.string(), standalone);
    if (fs::exists(target)) {
      // One atomic exchange: at every moment `target` is the old folder or the new
      // one, whenever the process dies. The old one ends at `temp`, then goes.
      if (renameat2(AT_FDCWD, temp.c_str(), AT_FDCWD, target.c_str(), RENAME_EXCHANGE) == 0) {
        fs::remove_all(temp);
      } else {  // a filesystem without RENAME_EXCHANGE: two renames, a short window without `target`
        const fs::path old = parent / (target.filename().string() + ".old-" + unique_suffix());
        fs::rename(target, old);
        fs::rename(temp, target);
        fs::remove_all(old);
      }
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
  fs::path folder = dir;
  if (resume) {
    folder = dir / kResumeFolder;
    if (!fs::exists(folder / kPredictorFile))
      throw std::runtime_error("nothing to resume in " + path_text + ": it holds no unfinished fit (" +
                               (folder / kPredictorFile).string() + " is missing)");
  } else if (!fs::exists(dir / kPredictorFile) && fs::exists(dir / kResumeFolder)) {
    throw std::runtime_error(path_text + " holds an unfinished fit: resume it with load(path, resume=true) and "
                             "fit(), or `automm fit --resume --path " + path_text + " --train FILE`");
  }
  const Json meta = read_predictor_meta(folder);
  PredictorOptions options;
  options.path = path_text;
  const std::string problem_type = meta.at("problem_type").get<std::string>();
  MultiModalPredictor predictor(make_learner(find_task(problem_type).learner, options));
  predictor.learner_->read(folder.string(), meta, resume);
  predictor.learner_->options().path = path_text;
  return predictor;
}

Json MultiModalPredictor::fit_summary() const { return learner_->fit_summary(); }
const std::string& MultiModalPredictor::path() const { return learner_->options().path; }
const std::string& MultiModalPredictor::label() const { return learner_->options().label; }
std::string MultiModalPredictor::problem_type() const { return learner_->problem_type(); }
std::string MultiModalPredictor::eval_metric() const { return learner_->eval_metric(); }
std::vector<std::string> MultiModalPredictor::classes() const { return learner_->classes(); }
std::map<std::string, std::string> MultiModalPredictor::column_types() const { return learner_->column_types(); }
const Config& MultiModalPredictor::config() const { return learner_->config(); }

}  // namespace automm
