#include "automm/predictor.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <iterator>
#include <set>

#include "automm/metrics.h"
#include "automm/optim.h"
#include "models/hf_checkpoint.h"
#include "models/image/timm_checkpoint.h"
#include "models/text/scratch_checkpoint.h"
#include "predictor_state.h"

namespace automm {
namespace {

std::string default_path() {
  const std::time_t now = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y%m%d_%H%M%S", std::gmtime(&now));
  return std::string("AutogluonModels/ag-") + stamp;
}

std::vector<std::string> columns_of(const ColumnTypes& types, ColumnType wanted) {
  std::vector<std::string> names;
  for (const auto& [name, type] : types)
    if (type == wanted) names.push_back(name);
  return names;
}

// Rows whose label is present; the count of dropped rows goes to `dropped`.
Table rows_with_label(const Table& data, const std::string& label, size_t* dropped) {
  const Column& column = data.column(label);
  std::vector<size_t> rows;
  for (size_t r = 0; r < column.size(); ++r)
    if (!column.is_missing(r)) rows.push_back(r);
  *dropped = column.size() - rows.size();
  return *dropped ? data.select_rows(rows) : data;
}

std::string format_number(double value) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.9g", value);
  return text;
}

std::vector<int64_t> to_int_vector(const torch::Tensor& t) {
  auto c = t.to(torch::kInt64).contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

// Relative image paths in a table resolve against the folder of its file.
std::string table_folder(const Table& table) {
  const std::filesystem::path source(table.source);
  return std::filesystem::exists(source) ? source.parent_path().string() : std::string();
}

std::vector<double> to_double_vector(const torch::Tensor& t) {
  auto c = t.to(torch::kFloat64).contiguous().reshape({-1});
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

}  // namespace

double MultiModalPredictor::State::score(const std::string& metric, const torch::Tensor& logits,
                                        const torch::Tensor& labels) const {
  const torch::Tensor predictions = outputs_to_predictions(logits, problem_type, config);
  if (is_classification(problem_type))
    return score_classification(metric, to_int_vector(labels), to_double_vector(predictions),
                                label_processor.num_classes());
  return score_regression(metric, label_processor.inverse_regression(labels),
                          label_processor.inverse_regression(predictions));
}

void MultiModalPredictor::State::require_fitted(const char* what) const {
  if (!fitted) throw std::logic_error(std::string(what) + " needs a fitted predictor: call fit() or load() first");
}

void MultiModalPredictor::State::warn(const std::string& message) const {
  if (options.verbose) std::cerr << "Warning: " << message << "\n";
}

TabularTensors MultiModalPredictor::State::process(const Table& data, bool with_labels, bool training) const {
  std::vector<std::string> missing;
  for (const auto& name : numerical.columns())
    if (!data.has_column(name)) missing.push_back(name);
  for (const auto& name : categorical.columns())
    if (!data.has_column(name)) missing.push_back(name);
  for (const auto& processor : text_processors)
    for (const auto& name : processor->columns())
      if (!data.has_column(name) && std::find(missing.begin(), missing.end(), name) == missing.end())
        missing.push_back(name);
  for (const auto& processor : image_processors)
    for (const auto& [name, is_path] : processor->columns())
      if (!data.has_column(name)) missing.push_back(name);
  if (!missing.empty()) {
    std::string list;
    for (const auto& m : missing) list += (list.empty() ? "'" : ", '") + m + "'";
    throw std::invalid_argument(data.source + " lacks column(s) " + list + " that the predictor was trained on");
  }
  TabularTensors out;
  out.rows = static_cast<int64_t>(data.num_rows());
  std::vector<std::string> warnings;
  out.numerical = numerical.transform(data, &warnings);
  for (const auto& w : warnings) warn(w);
  out.categorical = categorical.transform(data);
  for (const auto& processor : text_processors)
    out.text[processor->model_name()] = processor->transform(data, training);
  for (const auto& processor : image_processors)
    out.images[processor->model_name()] = processor->transform(data, table_folder(data));
  if (with_labels) out.labels = label_processor.transform(data.column(options.label));
  return out;
}

void MultiModalPredictor::State::configure_inference_threads(int64_t rows) const {
  // A text or image row is hundreds of tokens or patches: every core even for one row
  // (ELECTRA-small's one-row forward takes 1.7x longer on one thread than on two).
  if (!text_processors.empty() || !image_processors.empty()) {
    configure_threads();
    return;
  }
  int64_t num_parameters = 0;
  for (const auto& p : net->parameters()) num_parameters += p.numel();
  configure_threads(num_parameters * std::clamp<int64_t>(rows, 1, inference_batch_size(config)));
}

torch::Tensor MultiModalPredictor::State::logits(const Table& data) const {
  require_fitted("prediction");
  configure_inference_threads(static_cast<int64_t>(data.num_rows()));
  MultiModalNet model = net;
  return predict_logits(model, process(data, false), config, /*features=*/false, &cast_weights);
}

MultiModalPredictor::MultiModalPredictor() : state_(std::make_unique<State>()) {}
MultiModalPredictor::~MultiModalPredictor() = default;
MultiModalPredictor::MultiModalPredictor(MultiModalPredictor&&) noexcept = default;
MultiModalPredictor& MultiModalPredictor::operator=(MultiModalPredictor&&) noexcept = default;

MultiModalPredictor::MultiModalPredictor(PredictorOptions options) : state_(std::make_unique<State>()) {
  if (options.label.empty()) throw std::invalid_argument("MultiModalPredictor needs a label column name");
  if (!options.problem_type.empty()) parse_problem_type(options.problem_type);
  if (!options.eval_metric.empty()) find_metric(options.eval_metric);
  state_->config.merge(options.hyperparameters);
  state_->options = std::move(options);
}

void MultiModalPredictor::fit(const Table& train_input, const FitOptions& requested) {
  State& s = *state_;
  const auto start = std::chrono::steady_clock::now();
  const bool resuming = !s.resume_fit_options.is_null();
  FitOptions fit = requested;
  if (resuming) {
    // A resumed fit continues with exactly the saved configuration and split.
    if (!requested.hyperparameters.empty() || !requested.presets.empty() || !requested.column_types.empty() ||
        requested.holdout_frac > 0)
      throw std::invalid_argument("a resumed fit continues with its saved configuration: pass only the data");
    const Json& saved = s.resume_fit_options;
    fit.seed = saved.at("seed").get<uint64_t>();
    fit.holdout_frac = saved.at("holdout_frac").get<double>();
    if (requested.time_limit <= 0) fit.time_limit = saved.at("time_limit").get<double>();
    if (saved.at("has_tuning_data").get<bool>() != (requested.tuning_data != nullptr))
      throw std::invalid_argument(std::string("the interrupted fit was run ") +
                                  (requested.tuning_data ? "without" : "with") +
                                  " tuning data; resume it with the same data");
  } else {
    // Defaults, then the preset, then the user's keys.
    s.config.merge(fit.hyperparameters);
    apply_preset(s.config, fit.presets.empty() ? s.options.presets : fit.presets);
    s.config.check_supported();
  }

  const std::string& label = s.options.label;
  if (train_input.num_rows() == 0) throw std::invalid_argument(train_input.source + " has no rows to train on");
  if (!train_input.has_column(label)) train_input.column(label);  // throws naming the columns
  size_t dropped = 0;
  const Table labelled = rows_with_label(train_input, label, &dropped);
  if (!resuming) {
    s.problem_type = s.options.problem_type.empty() ? infer_problem_type(train_input.column(label))
                                                    : parse_problem_type(s.options.problem_type);
    s.eval_metric = s.options.eval_metric.empty() ? default_metric(s.problem_type) : s.options.eval_metric;
    check_metric_applies(s.eval_metric, s.problem_type);
    s.validation_metric = s.eval_metric;
  }
  if (labelled.num_rows() == 0)
    throw std::invalid_argument("label column '" + label + "' of " + train_input.source + " has no values");
  if (dropped) s.warn(std::to_string(dropped) + " training rows without a label were dropped");

  // Training and validation rows.
  Table train_table, val_table;
  if (fit.tuning_data) {
    if (!fit.tuning_data->has_column(label)) fit.tuning_data->column(label);
    train_table = labelled;
    val_table = rows_with_label(*fit.tuning_data, label, &dropped);
    if (val_table.num_rows() == 0) throw std::invalid_argument("tuning data has no labelled rows");
  } else {
    if (fit.holdout_frac <= 0) fit.holdout_frac = default_holdout_fraction(labelled.num_rows());
    const auto [train_rows, val_rows] = split_holdout(labelled.column(label), s.problem_type, fit.holdout_frac, fit.seed);
    train_table = labelled.select_rows(train_rows);
    val_table = labelled.select_rows(val_rows);
  }

  if (!resuming) {
    s.column_types = infer_column_types(train_table, &val_table, label, fit.column_types);
    // data.*.convert_to_text: those columns are read by the text models instead.
    for (auto& [name, type] : s.column_types) {
      if ((type == ColumnType::kCategorical && s.config.get_bool("data.categorical.convert_to_text")) ||
          (type == ColumnType::kNumerical && s.config.get_bool("data.numerical.convert_to_text")))
        type = ColumnType::kText;
    }
    ModalityPresence presence;
    for (const auto& [name, type] : s.column_types) {
      presence.numerical |= type == ColumnType::kNumerical;
      presence.categorical |= type == ColumnType::kCategorical;
      presence.text |= type == ColumnType::kText;
      presence.image |= type == ColumnType::kImagePath || type == ColumnType::kImageBytes;
    }
    s.model_names = select_models(s.config.get_list("model.names"), presence);
    auto selected = [&](const char* base) {
      return std::any_of(s.model_names.begin(), s.model_names.end(),
                         [&](const std::string& name) { return model_base_name(name) == base; });
    };
    for (const auto& [name, type] : s.column_types) {
      const bool image = type == ColumnType::kImagePath || type == ColumnType::kImageBytes;
      if ((type == ColumnType::kText && !selected("hf_text")) || (image && !selected("timm_image")))
        s.warn("column '" + name + "' (" + to_string(type) + ") is not used: no model in model.names reads it");
    }
    s.label_processor.fit(train_table.column(label), s.problem_type, s.config);
    s.numerical.fit(train_table, columns_of(s.column_types, ColumnType::kNumerical), s.config);
    s.categorical.fit(train_table, columns_of(s.column_types, ColumnType::kCategorical), s.config);
    s.context.num_numerical = static_cast<int64_t>(s.numerical.columns().size());
    s.context.categorical_cardinalities = s.categorical.num_categories();
    s.context.num_outputs = is_classification(s.problem_type) ? s.label_processor.num_classes() : 1;
    if (s.options.path.empty()) s.options.path = default_path();
    // A new fit replaces an older unfinished one.
    std::error_code ignored;
    std::filesystem::remove_all(s.resume_dir(), ignored);
    s.prepare_text_models(train_table);
    s.prepare_image_models();
    torch::manual_seed(fit.seed);
    s.net = MultiModalNet(s.model_names, s.context, s.config);
    s.write_resume_files({{"seed", fit.seed},
                          {"holdout_frac", fit.holdout_frac},
                          {"time_limit", fit.time_limit},
                          {"has_tuning_data", fit.tuning_data != nullptr}});
    // From here on the text checkpoints' files live in the predictor's folder.
    for (auto& [name, dir] : s.context.checkpoint_dirs)
      dir = (std::filesystem::path(s.resume_dir()) / name).string();
  }

  int64_t num_parameters = 0;
  for (const auto& p : s.net->parameters()) num_parameters += p.numel();
  const int threads = configure_threads(num_parameters * s.config.get_int("env.per_gpu_batch_size"));
  s.fitted = true;
  // missing_value_strategy = skip: rows with unreadable images take no part.
  train_table = s.rows_with_readable_images(train_table, "training data");
  val_table = s.rows_with_readable_images(val_table, "validation data");
  const TabularTensors train_tensors = s.process(train_table, true, /*training=*/true);
  const TabularTensors val_tensors = s.process(val_table, true);
  ValidationScorer scorer{s.validation_metric, [&](const torch::Tensor& logits) {
                            return s.score(s.validation_metric, logits, val_tensors.labels);
                          }};
  if (s.options.verbose) {
    std::cerr << "automm: " << to_string(s.problem_type) << " problem, " << train_table.num_rows() << " training / "
              << val_table.num_rows() << " validation rows, models: ";
    for (size_t i = 0; i < s.model_names.size(); ++i) std::cerr << (i ? ", " : "") << s.model_names[i];
    std::cerr << "; " << threads << " threads\n";
  }
  TrainOptions train_options;
  train_options.time_limit_seconds = fit.time_limit;
  train_options.seed = fit.seed;
  train_options.verbose = s.options.verbose;
  train_options.checkpoint_dir = s.resume_dir();
  train_options.resume = resuming;
  const TrainResult result = train(s.net, train_tensors, val_tensors, s.problem_type, s.config, scorer, train_options);
  s.log = result.log;

  Json types = Json::object();
  for (const auto& [name, type] : s.column_types) types[name] = to_string(type);
  s.summary = {{"problem_type", to_string(s.problem_type)},
               {"eval_metric", s.eval_metric},
               {"validation_metric", s.validation_metric},
               {"best_validation_score", result.best_validation_score},
               {"top_k_scores", result.top_k_scores},
               {"top_k_average_method", s.config.get_string("optim.top_k_average_method")},
               {"stop_reason", result.stop_reason},
               {"optimizer_steps", result.steps},
               {"training_seconds", result.seconds},
               {"total_fit_seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()},
               {"num_train_rows", train_table.num_rows()},
               {"num_validation_rows", val_table.num_rows()},
               {"models", s.model_names},
               {"column_types", types},
               {"seed", fit.seed},
               {"precision", s.config.get_string("env.precision")},
               {"num_threads", threads}};
  if (!std::isnan(result.final_validation_score)) s.summary["final_validation_score"] = result.final_validation_score;
  if (result.resumed_from_step >= 0) s.summary["resumed_from_step"] = result.resumed_from_step;
  s.resume_fit_options = nullptr;
  save(s.options.path);  // replaces the folder, unfinished-fit state included
  for (auto& [name, dir] : s.context.checkpoint_dirs) dir = (std::filesystem::path(s.options.path) / name).string();
}

void MultiModalPredictor::State::prepare_image_models() {
  image_processors.clear();
  context.image_models.clear();
  std::vector<std::pair<std::string, bool>> columns;
  for (const auto& [name, type] : column_types) {
    if (type == ColumnType::kImagePath) columns.emplace_back(name, true);
    if (type == ColumnType::kImageBytes) columns.emplace_back(name, false);
  }
  for (const std::string& name : model_names) {
    if (model_base_name(name) != "timm_image") continue;
    const ResolvedImageModel model =
        resolve_timm_checkpoint(config.get_string("model.timm_image.checkpoint_name"), options.pretrained);
    if (options.verbose) std::cerr << "automm: " << name << " = " << model.architecture << ", " << model.source << "\n";
    context.image_models[name] = {model.architecture, model.weights};
    image_processors.push_back(ImageProcessor::create(
        name, columns, image_processor_options(config, model.info.image_size, model.info.interpolation)));
  }
}

Table MultiModalPredictor::State::rows_with_readable_images(const Table& data, const std::string& what) const {
  if (image_processors.empty() || !image_processors.front()->options().skip_invalid) return data;
  std::vector<size_t> keep(data.num_rows());
  for (size_t r = 0; r < keep.size(); ++r) keep[r] = r;
  for (const auto& processor : image_processors) {
    const std::vector<size_t> readable = processor->readable_rows(*processor->transform(data, table_folder(data)));
    std::vector<size_t> both;
    std::set_intersection(keep.begin(), keep.end(), readable.begin(), readable.end(), std::back_inserter(both));
    keep = both;
  }
  if (keep.size() == data.num_rows()) return data;
  warn(std::to_string(data.num_rows() - keep.size()) + " rows of the " + what +
       " were skipped: an image is missing or unreadable (data.image.missing_value_strategy = skip)");
  if (keep.empty()) throw std::invalid_argument("no row of the " + what + " has readable images");
  return data.select_rows(keep);
}

void MultiModalPredictor::State::prepare_text_models(const Table& train_table) {
  text_processors.clear();
  context.checkpoint_dirs.clear();
  context.load_pretrained = options.pretrained;
  const std::vector<std::string> columns = columns_of(column_types, ColumnType::kText);
  for (const std::string& name : model_names) {
    if (model_base_name(name) != "hf_text") continue;
    const std::string checkpoint = config.get_string("model.hf_text.checkpoint_name");
    std::string folder;
    if (is_scratch_name(checkpoint)) {
      std::vector<std::string> texts;
      for (const std::string& column_name : columns) {
        const Column& column = train_table.column(column_name);
        for (size_t r = 0; r < column.size(); ++r)
          if (!column.is_missing(r)) texts.push_back(column.cells[r]);
      }
      folder = (std::filesystem::path(resume_dir()) / name).string();
      write_scratch_checkpoint(checkpoint, texts, folder);
    } else {
      try {
        folder = resolve_hf_checkpoint(checkpoint).folder;
      } catch (const std::exception& e) {
        throw std::runtime_error(std::string(e.what()) + "\nWithout a pretrained checkpoint, text columns can train "
                                 "from scratch: set model.hf_text.checkpoint_name to one of scratch:bert-tiny, "
                                 "scratch:bert-mini, scratch:bert-small, scratch:bert-medium, scratch:bert-base");
      }
    }
    context.checkpoint_dirs[name] = folder;
    text_processors.push_back(TextProcessor::create(name, columns, folder, config));
    text_processors.back()->prepare_for_training();
  }
}

Column MultiModalPredictor::predict(const Table& data) const {
  const State& s = *state_;
  const torch::Tensor logits = s.logits(data);
  Column out;
  out.name = s.options.label;
  if (is_classification(s.problem_type)) {
    for (int64_t index : to_int_vector(logits.argmax(1))) out.push(s.label_processor.classes()[index], true);
  } else {
    for (double v : s.label_processor.inverse_regression(outputs_to_predictions(logits, s.problem_type, s.config)))
      out.push(format_number(v), true);
  }
  return out;
}

torch::Tensor MultiModalPredictor::predict_proba(const Table& data, bool as_multiclass) const {
  const State& s = *state_;
  if (!is_classification(s.problem_type))
    throw std::invalid_argument("predict_proba is for classification; this predictor does regression");
  const torch::Tensor proba = outputs_to_predictions(s.logits(data), s.problem_type, s.config);
  if (!as_multiclass && s.problem_type == ProblemType::kBinary) return proba.select(1, 1).contiguous();
  return proba;
}

std::map<std::string, double> MultiModalPredictor::evaluate(const Table& data,
                                                            const std::vector<std::string>& metrics) const {
  const State& s = *state_;
  s.require_fitted("evaluate");
  if (!data.has_column(s.options.label)) data.column(s.options.label);
  const std::vector<std::string> names = metrics.empty() ? std::vector<std::string>{s.eval_metric} : metrics;
  for (const auto& name : names) check_metric_applies(name, s.problem_type);
  size_t dropped = 0;
  const Table labelled = rows_with_label(data, s.options.label, &dropped);
  if (dropped) s.warn(std::to_string(dropped) + " rows without a label were skipped");
  if (labelled.num_rows() == 0) throw std::invalid_argument(data.source + " has no labelled rows to evaluate");
  const TabularTensors tensors = s.process(labelled, true);
  s.configure_inference_threads(tensors.rows);
  MultiModalNet model = s.net;
  const torch::Tensor logits = predict_logits(model, tensors, s.config, /*features=*/false, &s.cast_weights);
  std::map<std::string, double> scores;
  for (const auto& name : names) scores[name] = s.score(name, logits, tensors.labels);
  return scores;
}

torch::Tensor MultiModalPredictor::extract_embedding(const Table& data) const {
  const State& s = *state_;
  s.require_fitted("extract_embedding");
  s.configure_inference_threads(static_cast<int64_t>(data.num_rows()));
  MultiModalNet model = s.net;
  return predict_logits(model, s.process(data, false), s.config, /*features=*/true, &s.cast_weights);
}

Json MultiModalPredictor::fit_summary() const {
  state_->require_fitted("fit_summary");
  return state_->summary;
}
const std::string& MultiModalPredictor::path() const { return state_->options.path; }
const std::string& MultiModalPredictor::label() const { return state_->options.label; }
ProblemType MultiModalPredictor::problem_type() const { return state_->problem_type; }
const std::string& MultiModalPredictor::eval_metric() const { return state_->eval_metric; }
std::vector<std::string> MultiModalPredictor::classes() const { return state_->label_processor.classes(); }
const Config& MultiModalPredictor::config() const { return state_->config; }
std::map<std::string, std::string> MultiModalPredictor::column_types() const {
  std::map<std::string, std::string> out;
  for (const auto& [name, type] : state_->column_types) out[name] = to_string(type);
  return out;
}

}  // namespace automm
