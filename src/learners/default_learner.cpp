#include "learners/default_learner.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <iterator>

#include <unistd.h>
#include <xxhash.h>

#include "automm/log.h"
#include "data/mixup.h"
#include "learners/distillation.h"
#include "learners/learner_io.h"
#include "learners/training_budget.h"
#include "models/peft.h"

namespace automm {

DefaultLearner::DefaultLearner(PredictorOptions options) : options_(std::move(options)) {
  config_.merge(options_.hyperparameters);
}

DefaultLearner::~DefaultLearner() {
  std::error_code ignored;
  if (!rank_folder_.empty()) std::filesystem::remove_all(rank_folder_, ignored);
}

void DefaultLearner::require_fitted(const char* what) const {
  if (!fitted_) throw std::logic_error(std::string(what) + " needs a fitted predictor: call fit() or load() first");
}

void DefaultLearner::warn(const std::string& message) const {
  if (options_.verbose) log_message(LogLevel::kWarning, message);
}

std::string DefaultLearner::work_folder() {
  if (dist_.lead()) return resume_folder();
  // Other data-parallel ranks never write the predictor's folder.
  if (rank_folder_.empty()) {
    rank_folder_ = (std::filesystem::temp_directory_path() /
                    ("automm-rank" + std::to_string(dist_.rank) + "-" + std::to_string(getpid())))
                       .string();
    std::filesystem::create_directories(rank_folder_);
  }
  return rank_folder_;
}

std::string DefaultLearner::resume_folder() const {
  return (std::filesystem::path(options_.path) / kResumeFolder).string();
}

void DefaultLearner::build(bool pretrained_weights) {
  ModelContext context;
  context.num_outputs = task_->num_outputs();
  context.load_pretrained = pretrained_weights && options_.pretrained;
  for (const auto& modality : modalities_) modality->describe(context);
  if (!pretrained_weights)
    for (auto& [name, spec] : context.image_models) spec.weights.clear();
  net_ = MultiModalNet(model_names_, context, config_);
}

std::string DefaultLearner::attach_peft(bool for_training) {
  const auto peft = peft_options(config_);
  if (!peft) return "";
  const std::vector<std::string> backbones = net_->pretrained_backbones();
  if (backbones.empty()) {
    std::string models;
    for (const auto& name : model_names_) models += (models.empty() ? "" : ", ") + name;
    throw std::invalid_argument("optim.peft = " + peft->method.name +
                                " fine-tunes pretrained backbones, and no model of this predictor (" + models +
                                ") starts from pretrained weights (tabular models and scratch:* text models train "
                                "from random weights): unset optim.peft");
  }
  const std::vector<std::string> adapted = add_adapters(*net_, *peft, backbones);
  if (!for_training) return "";
  const auto ids = network_layer_ids(net_);
  const auto extra = trainable_parameter_filter(config_);
  freeze_for_peft(*net_, peft->method, [&](const std::string& name) {
    const auto found = ids.find(name);
    // Heads, fusion, tabular models (AutoMM's layer id 0), and optim.extra_trainable_params.
    return found == ids.end() || found->second == 0 || extra(name);
  });
  int64_t trainable = 0, total = 0;
  for (const auto& p : net_->parameters()) {
    total += p.numel();
    if (p.requires_grad()) trainable += p.numel();
  }
  char fraction[32];
  std::snprintf(fraction, sizeof(fraction), "%.2f%%", 100.0 * static_cast<double>(trainable) / static_cast<double>(total));
  std::string text = "automm: optim.peft = " + peft->method.name + ": " + std::to_string(trainable) + " of " +
                     std::to_string(total) + " parameters train (" + fraction + ")";
  if (!adapted.empty()) {
    text += "; adapters on " + std::to_string(adapted.size()) + " Linear layers (" + adapted.front();
    text += adapted.size() > 1 ? ", ..., " + adapted.back() + ")" : ")";
  }
  return text;
}

void DefaultLearner::set_up_mixup(const MixupOptions& mixup, TrainOptions& train_options) const {
  if (task_->name() != "binary" && task_->name() != "multiclass")
    throw std::invalid_argument("data.mixup.turn_on mixes class targets; a " + task_->name() +
                                " problem has none (AutoMM refuses mixup outside classification too)");
  ModelContext context;
  for (const auto& modality : modalities_) modality->describe(context);
  if (context.image_models.empty())
    throw std::invalid_argument("data.mixup.turn_on mixes images, and no model of this predictor reads an image "
                                "column: unset data.mixup.turn_on");
  const int64_t classes = task_->num_outputs();
  train_options.transform_batch = [mixup, classes](Batch& batch, int64_t epoch, uint64_t seed) {
    if (epoch >= mixup.turn_off_epoch || batch.images.empty()) return;
    const torch::Tensor& images = batch.images.begin()->second.images;  // [rows, slots, 3, H, W]
    std::mt19937_64 rng(seed);
    const MixupDraw draw = draw_mixup(mixup, images.size(0), images.size(-2), images.size(-1), rng);
    apply_mixup(batch, draw);
    const torch::Tensor& labels = batch.targets.at("label");
    batch.targets.dense[kSoftLabelTarget] =
        mixup_targets(labels.cpu(), classes, draw, mixup.label_smoothing).to(labels.device());
  };
  train_options.epoch_note = [mixup](int64_t epoch) -> std::string {
    char text[256];
    if (epoch == 0 && mixup.turn_off_epoch > 0) {
      std::snprintf(text, sizeof(text),
                    "data.mixup on until epoch %lld: mixup_alpha %g, cutmix_alpha %g, prob %g, switch_prob %g, "
                    "mode %s, label_smoothing %g",
                    static_cast<long long>(mixup.turn_off_epoch), mixup.mixup_alpha,
                    mixup.cutmix_minmax ? 1.0 : mixup.cutmix_alpha, mixup.prob, mixup.switch_prob,
                    mixup.mode.c_str(), mixup.label_smoothing);
      return text;
    }
    if (epoch == mixup.turn_off_epoch)
      return "data.mixup off from epoch " + std::to_string(epoch + 1) + " (data.mixup.turn_off_epoch = " +
             std::to_string(mixup.turn_off_epoch) + ")";
    return "";
  };
}

std::unique_ptr<Distiller> DefaultLearner::set_up_distillation(const Learner& teacher, const Table& train_table,
                                                               Dataset& train_data, TrainOptions& train_options) {
  // Same problem, label and classes; columns and models may differ.
  if (!teacher.fitted()) throw std::invalid_argument("the teacher predictor is not fitted");
  if (teacher.problem_type() != task_->name())
    throw std::invalid_argument("the teacher predictor's problem type is " + teacher.problem_type() +
                                ", the student's " + task_->name() + ": they must be the same");
  if (teacher.options().label != options_.label)
    throw std::invalid_argument("the teacher predictor's label is '" + teacher.options().label +
                                "', the student's '" + options_.label + "': they must be the same");
  if (teacher.classes() != task_->classes()) {
    auto list = [](const std::vector<std::string>& classes) {
      std::string text;
      for (const auto& c : classes) text += (text.empty() ? "" : ", ") + c;
      return "[" + text + "]";
    };
    throw std::invalid_argument("the teacher predictor's classes " + list(teacher.classes()) +
                                " differ from the student's " + list(task_->classes()));
  }
  const bool regression = !task_->has_probabilities();
  DistillerOptions options = DistillerOptions::from(config_, regression);
  // The teacher once over the training rows, without gradient.
  const torch::Tensor head = teacher.head_outputs(train_table).to(torch::kFloat32);
  torch::Tensor logits = head;
  if (regression) {
    // The teacher's values, in the student's scaling of the label.
    Table values = train_table;
    const torch::Tensor predicted = teacher.predict(train_table).values.to(torch::kFloat64).contiguous();
    Column label(options_.label);
    label.reserve(static_cast<size_t>(predicted.size(0)));
    for (int64_t r = 0; r < predicted.size(0); ++r) {
      char text[32];
      std::snprintf(text, sizeof(text), "%.17g", predicted.data_ptr<double>()[r]);
      label.push(text, true);
    }
    values.drop_column(options_.label);
    values.add_column(std::move(label));
    logits = task_->read_targets(values).at("label").to(torch::kFloat32).reshape({-1, 1});
  }
  train_data.targets.dense[kTeacherLogits] = logits;
  train_data.targets.dense[kTeacherHeadOutputs] = head;
  int64_t teacher_dim = 0;
  if (options.uses_features()) {
    const torch::Tensor features = teacher.extract_embedding(train_table).to(torch::kFloat32);
    train_data.targets.dense[kTeacherFeatures] = features;
    teacher_dim = features.size(1);
  }
  int64_t student_dim = 0;
  if (options.uses_features()) {
    torch::NoGradGuard no_grad;
    const bool was_training = net_->is_training();
    net_->eval();
    const Dataset one = process(train_table.select_rows({0}), false);
    student_dim = net_->forward(make_batch(one, torch::zeros({1}, torch::kInt64), resolve_placement(config_).batch()))
                      .features.size(1);
    net_->train(was_training);
  }
  auto distiller = std::make_unique<Distiller>(options, teacher, student_dim, teacher_dim);
  if (distiller->adaptor()) net_->register_module(kDistillationAdaptor, distiller->adaptor());
  Distiller* d = distiller.get();
  train_options.total_loss = [d](const torch::Tensor& task_loss, const NetOutput& out, const Targets& targets) {
    return d->loss(task_loss, out, targets);
  };
  if (options_.verbose)
    log_message(LogLevel::kInfo, "automm: distilling from a teacher predictor (" +
                                     std::to_string(teacher.fit_summary().value("models", Json::array()).size()) +
                                     " models): loss = " + std::to_string(options.hard_label_weight) +
                                     " task + " + std::to_string(options.soft_label_weight) + " soft-label (" +
                                     options.soft_label_loss_type + ", T " + std::to_string(options.temperature) +
                                     ") + the feature terms");
  return distiller;
}

Table DefaultLearner::rows_with_targets(const Table& data, size_t* dropped) const {
  for (const std::string& column : task_->target_columns())
    if (!data.has_column(column)) data.column(column);  // throws naming the table's columns
  std::vector<size_t> rows;
  for (size_t r = 0; r < data.num_rows(); ++r)
    if (task_->has_target(data, r)) rows.push_back(r);
  *dropped = data.num_rows() - rows.size();
  return *dropped ? data.select_rows(rows) : data;
}

Table DefaultLearner::usable_rows(const Table& data, const std::string& what) const {
  std::vector<size_t> keep(data.num_rows());
  for (size_t r = 0; r < keep.size(); ++r) keep[r] = r;
  bool filtered = false;
  for (const auto& modality : modalities_) {
    const auto usable = modality->usable_rows(data);
    if (!usable) continue;
    filtered = true;
    std::vector<size_t> both;
    std::set_intersection(keep.begin(), keep.end(), usable->begin(), usable->end(), std::back_inserter(both));
    keep = both;
  }
  if (!filtered || keep.size() == data.num_rows()) return data;
  warn(std::to_string(data.num_rows() - keep.size()) + " rows of the " + what +
       " were skipped: an image is missing or unreadable (data.image.missing_value_strategy = skip)");
  if (keep.empty()) throw std::invalid_argument("no row of the " + what + " has readable images");
  return data.select_rows(keep);
}

Dataset DefaultLearner::process(const Table& data, bool with_targets, bool training) const {
  std::vector<std::string> missing;
  for (const auto& modality : modalities_)
    for (const std::string& name : modality->columns())
      if (!data.has_column(name) && std::find(missing.begin(), missing.end(), name) == missing.end())
        missing.push_back(name);
  if (!missing.empty()) {
    std::string list;
    for (const auto& m : missing) list += (list.empty() ? "'" : ", '") + m + "'";
    throw std::invalid_argument(data.source + " lacks column(s) " + list + " that the predictor was trained on");
  }
  Dataset out;
  out.rows = static_cast<int64_t>(data.num_rows());
  std::vector<std::string> warnings;
  for (const auto& modality : modalities_) out.inputs.push_back(modality->process(data, training, &warnings));
  for (const auto& w : warnings) warn(w);
  if (with_targets) out.targets = task_->read_targets(data);
  return out;
}

bool DefaultLearner::tabular_only() const {
  return std::all_of(modalities_.begin(), modalities_.end(), [](const auto& modality) {
    return modality->family() == "numerical" || modality->family() == "categorical";
  });
}

int DefaultLearner::inference_threads(int64_t rows) const {
  // A text or image row is hundreds of tokens or patches: every core even for one row
  // (ELECTRA-small's one-row forward takes 1.7x longer on one thread than on two).
  if (!tabular_only()) return choose_thread_count();
  int64_t num_parameters = 0;
  for (const auto& p : net_->parameters()) num_parameters += p.numel();
  return choose_thread_count(num_parameters * std::clamp<int64_t>(rows, 1, inference_batch_size(config_)));
}

torch::Tensor DefaultLearner::outputs(const Dataset& data, bool features) const {
  configure_allocator();
  set_intra_op_threads(inference_threads(data.rows));
  MultiModalNet model = net_;
  torch::Tensor out = predict_logits(model, data, config_, features, &inference_cache_);
  report_problems(data, "the data");
  return out;
}

void DefaultLearner::report_problems(const Dataset& data, const std::string& what) const {
  for (const auto& inputs : data.inputs)
    for (const std::string& line : inputs->problems()) warn(what + ": " + line);
}

void DefaultLearner::fit(const Table& train_input, const FitOptions& requested, const Learner* teacher) {
  const auto start = std::chrono::steady_clock::now();
  const bool resuming = !resume_fit_options_.is_null();
  FitOptions fit = requested;
  if (resuming) {
    // A resumed fit continues with exactly the saved configuration and split.
    if (!requested.hyperparameters.empty() || !requested.presets.empty() || !requested.column_types.empty() ||
        requested.holdout_frac > 0)
      throw std::invalid_argument("a resumed fit continues with its saved configuration: pass only the data");
    const Json& saved = resume_fit_options_;
    if (!saved.at("seed").is_number_unsigned())
      throw std::runtime_error("predictor.json: fit_options \"seed\" must be a non-negative integer");
    fit.seed = saved.at("seed").get<uint64_t>();
    fit.holdout_frac = saved.at("holdout_frac").get<double>();
    budget_ = saved.value("training_budget", Json::object());
    if (requested.time_limit <= 0) fit.time_limit = saved.at("time_limit").get<double>();
    if (saved.value("distilled", false) && !teacher)
      throw std::invalid_argument("the interrupted fit learned from a teacher predictor: resume it with the same "
                                  "teacher (FitOptions::teacher_predictor, automm fit --teacher DIR)");
    if (saved.at("has_tuning_data").get<bool>() != requested.tuning_data.has_value())
      throw std::invalid_argument(std::string("the interrupted fit was run ") +
                                  (requested.tuning_data ? "without" : "with") +
                                  " tuning data; resume it with the same data");
  } else {
    // Defaults, then the preset, then the user's keys.
    config_.merge(fit.hyperparameters);
    apply_preset(config_, fit.presets.empty() ? options_.presets : fit.presets);
    config_.check_supported();
    for (const std::string& key : config_.user_keys())  // the segmentation learner's own keys
      if (key.rfind("model.sam.", 0) == 0 || key.rfind("optim.mask2former_loss.", 0) == 0)
        throw std::invalid_argument("hyperparameter " + key + " is for problem_type semantic_segmentation (the sam "
                                    "model); this predictor fits a classification or regression table");
      else if (key.rfind("model.mmdet_image.", 0) == 0)
        throw std::invalid_argument("hyperparameter " + key + " is for problem_type object_detection (the "
                                    "mmdet_image model); this predictor fits a classification or regression table");
    CompileOptions::from(config_);  // an unavailable env.compile.backend fails before training
  }
  // env.strategy = ddp: this process is one rank of a data-parallel fit.
  dist_ = distributed_env(config_);
  if (dist_.active()) comm_ = std::make_unique<Communicator>(dist_);
  struct ReleaseGroup {
    std::unique_ptr<Communicator>& comm;
    ~ReleaseGroup() { comm.reset(); }
  } release_group{comm_};

  const std::string& label = options_.label;
  if (train_input.num_rows() == 0) throw std::invalid_argument(train_input.source + " has no rows to train on");
  if (!train_input.has_column(label)) train_input.column(label);  // throws naming the columns
  if (!resuming) {
    const std::string type =
        options_.problem_type.empty() ? infer_problem_type(train_input.column(label)) : options_.problem_type;
    task_ = make_task(type, {label, &config_});
    eval_metric_ = options_.eval_metric.empty() ? task_->default_metric() : options_.eval_metric;
    task_->metric(eval_metric_);  // throws when it does not apply
    validation_metric_ = eval_metric_;
  }
  size_t dropped = 0;
  const Table labelled = rows_with_targets(train_input, &dropped);
  if (labelled.num_rows() == 0)
    throw std::invalid_argument("label column '" + label + "' of " + train_input.source + " has no values");
  if (dropped) warn(std::to_string(dropped) + " training rows without a label were dropped");

  // Training and validation rows.
  Table train_table, val_table;
  if (fit.tuning_data) {
    train_table = labelled;
    val_table = rows_with_targets(*fit.tuning_data, &dropped);
    if (val_table.num_rows() == 0) throw std::invalid_argument("tuning data has no labelled rows");
  } else {
    if (fit.holdout_frac <= 0) fit.holdout_frac = default_holdout_fraction(labelled.num_rows());
    std::vector<std::string> strata(labelled.num_rows());
    for (size_t r = 0; r < strata.size(); ++r) strata[r] = task_->stratum(labelled, r);
    const auto [train_rows, val_rows] = split_holdout(strata, fit.holdout_frac, fit.seed);
    train_table = labelled.select_rows(train_rows);
    val_table = labelled.select_rows(val_rows);
  }

  const auto applies = [&](const std::string& metric) {
    try {
      task_->metric(metric);
      return true;
    } catch (const std::invalid_argument&) {
      return false;
    }
  };
  if (!resuming && options_.eval_metric.empty() && val_table.num_rows() < kSmallValidationRows &&
      eval_metric_ != "log_loss" && applies("log_loss")) {
    // A few validation rows give a hard-label metric a handful of values: early
    // stopping and the top-k checkpoints would follow noise. log_loss moves with
    // every probability.
    validation_metric_ = "log_loss";
    budget_notes_.push_back("validation metric " + eval_metric_ + " -> log_loss: " +
                            std::to_string(val_table.num_rows()) + " validation rows");
  }
  if (!resuming) {
    column_types_ = infer_column_types(train_table, &val_table, label, fit.column_types);
    // data.*.convert_to_text: those columns are read by the text models instead.
    for (auto& [name, type] : column_types_) {
      if ((type == ColumnType::kCategorical && config_.get_bool("data.categorical.convert_to_text")) ||
          (type == ColumnType::kNumerical && config_.get_bool("data.numerical.convert_to_text")))
        type = ColumnType::kText;
    }
    model_names_ = select_models(config_.get_list("model.names"), modality_presence(column_types_));
    task_->fit(train_table);
    if (options_.path.empty()) options_.path = default_predictor_path();
    // A new fit replaces an older unfinished one.
    std::error_code ignored;
    if (dist_.lead()) std::filesystem::remove_all(resume_folder(), ignored);
    const TrainingBudget data_budget = apply_data_budget(config_, static_cast<int64_t>(train_table.num_rows()));
    ModalityFitInputs inputs;
    inputs.column_types = &column_types_;
    inputs.train = &train_table;
    inputs.config = &config_;
    inputs.pretrained = options_.pretrained;
    inputs.work_folder = work_folder();
    inputs.verbose = options_.verbose;
    modalities_ = fit_modalities(model_names_, inputs);
    std::vector<std::string> read;
    for (const auto& modality : modalities_)
      for (const std::string& column : modality->columns()) read.push_back(column);
    for (const auto& [name, type] : column_types_)
      if (type != ColumnType::kIgnored && std::find(read.begin(), read.end(), name) == read.end())
        warn("column '" + name + "' (" + to_string(type) + ") is not used: no model in model.names reads it");
    for (const auto& modality : modalities_) modality->prepare_for_training();
    torch::manual_seed(fit.seed);
    build(/*pretrained_weights=*/true);
    const std::string peft_note = attach_peft(/*for_training=*/true);
    if (options_.verbose && !peft_note.empty()) log_message(LogLevel::kInfo, peft_note);
    TrainingBudget budget = apply_training_budget(config_, static_cast<int64_t>(train_table.num_rows()),
                                                  net_->pretrained_backbones().empty(), tabular_only());
    budget.chosen.update(data_budget.chosen);
    budget.notes.insert(budget.notes.begin(), data_budget.notes.begin(), data_budget.notes.end());
    budget.notes.insert(budget.notes.end(), budget_notes_.begin(), budget_notes_.end());
    budget_notes_.clear();
    budget_ = budget.chosen;
    if (options_.verbose && !budget.notes.empty()) {
      std::string text = "automm: training budget for " + std::to_string(train_table.num_rows()) +
                         " training rows (set a key to choose it yourself):";
      for (const std::string& note : budget.notes) text += "\n  " + note;
      log_message(LogLevel::kInfo, text);
    }
    if (dist_.lead()) {
      std::filesystem::create_directories(resume_folder());
      write(resume_folder(), /*standalone=*/true,
          {{"fit_options",
            {{"seed", fit.seed},
             {"holdout_frac", fit.holdout_frac},
             {"time_limit", fit.time_limit},
             {"has_tuning_data", fit.tuning_data.has_value()},
             {"distilled", teacher != nullptr},
             {"training_budget", budget_}}}});
    }
    // From here on the adapters' files live in the predictor's folder.
    relocate(work_folder());
  }

  int64_t num_parameters = 0, trainable_parameters = 0;
  for (const auto& p : net_->parameters()) {
    num_parameters += p.numel();
    if (p.requires_grad()) trainable_parameters += p.numel();
  }
  configure_allocator();
  int fit_threads = choose_thread_count(num_parameters * config_.get_int("env.per_gpu_batch_size"));
  if (dist_.active() && !std::getenv("AUTOMM_NUM_THREADS") && !std::getenv("OMP_NUM_THREADS"))
    fit_threads = std::max(1, fit_threads / dist_.local_world_size);  // the node's cores shared by its ranks
  ThreadScope threads(fit_threads);
  fitted_ = true;
  // missing_value_strategy = skip: rows with unreadable images take no part.
  train_table = usable_rows(train_table, "training data");
  val_table = usable_rows(val_table, "validation data");
  Dataset train_data = process(train_table, true, /*training=*/true);
  const Dataset val_data = process(val_table, true);
  const ValidationScorer scorer{task_->metric(validation_metric_), [&](const torch::Tensor& outputs) {
                                  return task_->score(validation_metric_, outputs, val_data.targets);
                                }};
  if (options_.verbose) {
    std::string text = "automm: " + task_->name() + " problem, " + std::to_string(train_table.num_rows()) +
                       " training / " + std::to_string(val_table.num_rows()) + " validation rows, models: ";
    for (size_t i = 0; i < model_names_.size(); ++i) text += (i ? ", " : "") + model_names_[i];
    log_message(LogLevel::kInfo, text + "; " + std::to_string(threads.threads()) + " threads");
  }
  TrainOptions train_options;
  train_options.time_limit_seconds = fit.time_limit;
  train_options.seed = fit.seed;
  train_options.verbose = options_.verbose;
  train_options.checkpoint_dir = resume_folder();
  train_options.comm = comm_.get();
  if (comm_) {
    const std::string fingerprint = config_.to_json().dump() + "|" + options_.label + "|" + std::to_string(fit.seed) +
                                    "|" + std::to_string(train_data.rows) + "|" + std::to_string(val_data.rows);
    comm_->require_same("configuration, seed and data (rows after the split)",
                        XXH3_64bits(fingerprint.data(), fingerprint.size()));
  }
  train_options.resume = resuming;
  train_options.stop_requested = fit.stop_requested;
  if (const auto mixup = mixup_options(config_)) {
    if (teacher)
      throw std::invalid_argument("data.mixup with a teacher predictor: the teacher's targets are for the unmixed "
                                  "rows; turn one of them off");
    set_up_mixup(*mixup, train_options);
  }
  std::unique_ptr<Distiller> distiller;
  if (teacher) {
    distiller = set_up_distillation(*teacher, train_table, train_data, train_options);
  } else if (options_.verbose) {
    for (const std::string& key : config_.user_keys())
      if (key.rfind("distiller.", 0) == 0)
        warn(key + " is set but this fit has no teacher predictor: the distiller.* keys apply only with one");
  }
  const LossFunction loss = [&](const torch::Tensor& outputs, const Targets& targets) {
    return task_->loss(outputs, targets);
  };
  const TrainResult result = train(net_, train_data, val_data, loss, config_, scorer, train_options);
  report_problems(train_data, "training data");
  report_problems(val_data, "validation data");
  if (distiller && distiller->adaptor()) net_->unregister_module(kDistillationAdaptor);
  log_ = result.log;
  const auto peft = peft_options(config_);
  if (peft && peft->merge_at_save) {
    const int64_t merged = merge_adapters(*net_);
    if (options_.verbose && merged)
      log_message(LogLevel::kInfo, "automm: merged the adapters of " + std::to_string(merged) +
                                       " Linear layers into their weights (optim.lora.merge_at_save)");
  }

  Json types = Json::object();
  for (const auto& [name, type] : column_types_) types[name] = to_string(type);
  summary_ = {{"problem_type", task_->name()},
              {"eval_metric", eval_metric_},
              {"validation_metric", validation_metric_},
              {"best_validation_score", result.best_validation_score},
              {"top_k_scores", result.top_k_scores},
              {"top_k_average_method", config_.get_string("optim.top_k_average_method")},
              {"stop_reason", result.stop_reason},
              {"optimizer_steps", result.steps},
              {"training_seconds", result.seconds},
              {"total_fit_seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()},
              {"num_train_rows", train_table.num_rows()},
              {"num_validation_rows", val_table.num_rows()},
              {"models", model_names_},
              {"column_types", types},
              {"seed", fit.seed},
              {"precision", config_.get_string("env.precision")},
              {"training_budget", budget_},
              {"num_threads", threads.threads()},
              {"total_params", num_parameters},
              {"trainable_params", trainable_parameters}};
  if (teacher)
    summary_["distillation"] = {{"teacher_models", teacher->fit_summary().value("models", Json::array())},
                                {"hard_label_weight", distiller->options().hard_label_weight},
                                {"soft_label_weight", distiller->options().soft_label_weight},
                                {"temperature", distiller->options().temperature}};
  if (!std::isnan(result.final_validation_score)) summary_["final_validation_score"] = result.final_validation_score;
  if (result.resumed_from_step >= 0) summary_["resumed_from_step"] = result.resumed_from_step;
  resume_fit_options_ = nullptr;
  if (dist_.active()) summary_["data_parallel"] = {{"world_size", dist_.world_size}, {"rank", dist_.rank}};
}

void DefaultLearner::relocate(const std::string& folder) {
  for (auto& modality : modalities_) modality->relocate(folder);
}

Predictions DefaultLearner::predict(const Table& data) const {
  require_fitted("prediction");
  return task_->predict(outputs(process(data, false)));
}

torch::Tensor DefaultLearner::predict_proba(const Table& data, bool as_multiclass) const {
  require_fitted("prediction");
  if (!task_->has_probabilities())
    throw std::invalid_argument("predict_proba is for classification; this predictor's problem type is " +
                                task_->name());
  return task_->predict_proba(outputs(process(data, false)), as_multiclass);
}

std::map<std::string, double> DefaultLearner::evaluate(const Table& data,
                                                       const std::vector<std::string>& metrics) const {
  require_fitted("evaluate");
  const std::vector<std::string> names = metrics.empty() ? std::vector<std::string>{eval_metric_} : metrics;
  for (const auto& name : names) task_->metric(name);  // throws when it does not apply
  size_t dropped = 0;
  const Table labelled = rows_with_targets(data, &dropped);
  if (dropped) warn(std::to_string(dropped) + " rows without a label were skipped");
  if (labelled.num_rows() == 0) throw std::invalid_argument(data.source + " has no labelled rows to evaluate");
  const Dataset dataset = process(labelled, true);
  const torch::Tensor out = outputs(dataset);
  std::map<std::string, double> scores;
  for (const auto& name : names) scores[name] = task_->score(name, out, dataset.targets);
  return scores;
}

torch::Tensor DefaultLearner::head_outputs(const Table& data) const {
  require_fitted("distillation");
  return outputs(process(data, false));
}

torch::Tensor DefaultLearner::classify_features(const torch::Tensor& features) const {
  require_fitted("distillation");
  MultiModalNet model = net_;
  // The teacher's head stays as it is: its parameters are left out of the graph.
  std::vector<torch::Tensor> params = model->parameters();
  std::vector<bool> flags;
  for (auto& p : params) {
    flags.push_back(p.requires_grad());
    p.set_requires_grad(false);
  }
  torch::Tensor logits;
  try {
    logits = model->classify(features);
  } catch (...) {
    for (size_t i = 0; i < params.size(); ++i) params[i].set_requires_grad(flags[i]);
    throw;
  }
  for (size_t i = 0; i < params.size(); ++i) params[i].set_requires_grad(flags[i]);
  return logits;
}

torch::Tensor DefaultLearner::extract_embedding(const Table& data) const {
  require_fitted("extract_embedding");
  return outputs(process(data, false), /*features=*/true);
}

Json DefaultLearner::fit_summary() const {
  require_fitted("fit_summary");
  return summary_;
}

std::string DefaultLearner::problem_type() const { return task_ ? task_->name() : options_.problem_type; }

std::vector<std::string> DefaultLearner::classes() const { return task_ ? task_->classes() : std::vector<std::string>{}; }

std::map<std::string, std::string> DefaultLearner::column_types() const {
  std::map<std::string, std::string> out;
  for (const auto& [name, type] : column_types_) out[name] = to_string(type);
  return out;
}

}  // namespace automm
