// The learner of AutoMM's matching problems (learners/matching.py,
// optim/lit_matcher.py): text_similarity (hf_text, mean pooling),
// image_similarity (timm_image) and image_text_similarity (clip). One shared
// encoder (a siamese tower) embeds the query column and the response column;
// without a label every row is a matching pair and the loss is the
// multiple-negatives softmax loss over in-batch negatives, with a binary label
// it is the contrastive loss over mined pairs. A pair's match probability is
// (cosine + 1) / 2; evaluate ranks, for each distinct query of a table of
// matching pairs, every distinct response of that table.
//
// Each side is read through the modality adapters of the default learner, on a
// one-column view of the table whose column takes a fixed name ("text" or
// "image"), so that one adapter serves the query and the response column.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iomanip>
#include <numeric>
#include <random>
#include <set>
#include <sstream>

#include "automm/log.h"
#include "automm/weights_io.h"
#include "data/processors.h"
#include "learners/learner_io.h"
#include "learners/matching_learner.h"
#include "learners/placement.h"
#include "learners/ranking.h"
#include "learners/trainer.h"
#include "modalities/modality.h"
#include "models/multimodal_net.h"
#include "models/skip_init.h"
#include "optim/optim.h"

namespace automm {
namespace {
namespace fs = std::filesystem;

enum Side { kQuery = 0, kResponse = 1 };

// The backbone a matching problem trains.
std::string model_for(const std::string& problem_type) {
  if (problem_type == "text_similarity") return "hf_text";
  if (problem_type == "image_similarity") return "timm_image";
  if (problem_type == "image_text_similarity") return "clip";
  throw std::invalid_argument("the matching learner does not serve problem type '" + problem_type + "'");
}

// AutoMM's matcher defaults (configs/matcher/default.yaml) and its presets
// for the problem types (utils/presets.py: medium_quality, high_quality,
// best_quality), applied under the user's keys.
Json matcher_defaults(const std::string& problem_type, const std::string& preset_in) {
  // No preset: AutoMM's "default", which is high_quality's choice for text and
  // images and medium_quality's for image-text.
  const std::string preset =
      !preset_in.empty() ? preset_in : problem_type == "image_text_similarity" ? "medium_quality" : "high_quality";
  if (preset != "medium_quality" && preset != "high_quality" && preset != "best_quality")
    throw std::invalid_argument("unknown presets '" + preset_in + "' for " + problem_type +
                                "; known: medium_quality, high_quality, best_quality");
  Json d = {{"optim.lr", problem_type == "image_text_similarity" ? 1e-5 : 1e-4},
            {"optim.weight_decay", 1e-3},
            {"optim.lr_decay", 0.9},
            {"optim.lr_schedule", "cosine_decay"},
            {"optim.warmup_steps", 0.1},
            {"optim.max_epochs", 20},
            {"model.hf_text.pooling_mode", "mean"}};
  if (problem_type == "text_similarity")
    d["model.hf_text.checkpoint_name"] = preset == "medium_quality" ? "sentence-transformers/all-MiniLM-L6-v2"
                                         : preset == "best_quality" ? "sentence-transformers/all-mpnet-base-v2"
                                                                    : "sentence-transformers/all-MiniLM-L12-v2";
  if (problem_type == "image_similarity")
    d["model.timm_image.checkpoint_name"] = preset == "medium_quality" ? "swin_small_patch4_window7_224"
                                            : preset == "best_quality" ? "swin_large_patch4_window7_224"
                                                                       : "caformer_b36.sail_in22k_ft_in1k";
  if (problem_type == "image_text_similarity") {
    d["model.clip.checkpoint_name"] = preset == "medium_quality" ? "openai/clip-vit-base-patch32"
                                      : preset == "best_quality" ? "openai/clip-vit-large-patch14-336"
                                                                 : "openai/clip-vit-large-patch14";
    d["env.per_gpu_batch_size"] = preset == "medium_quality" ? 128 : preset == "best_quality" ? 8 : 16;
  }
  return d;
}

// The keys the matching learner reads; a user-set key outside them is refused.
const std::vector<std::string>& matching_keys() {
  static const std::vector<std::string> keys = {
      "model.hf_text.", "model.timm_image.", "model.clip.", "data.text.normalize_text", "data.image.",
      "optim.lr", "optim.optim_type", "optim.weight_decay", "optim.lr_choice", "optim.lr_decay", "optim.lr_mult",
      "optim.lr_schedule", "optim.end_lr", "optim.max_epochs", "optim.warmup_steps", "optim.gradient_clip_algorithm",
      "optim.gradient_clip_val", "env.per_gpu_batch_size", "env.batch_size", "env.inference_batch_size_ratio",
      "env.precision", "env.accelerator", "env.num_gpus"};
  return keys;
}

bool is_image_type(ColumnType type) { return type == ColumnType::kImagePath || type == ColumnType::kImageBytes; }

// `table`'s column `column` as the only column of a table, named `as`;
// the source stays, so relative image paths resolve as before.
Table side_view(const Table& table, const std::string& column, const std::string& as) {
  const Column& from = table.column(column);
  Column to(as);
  for (size_t r = 0; r < from.size(); ++r) to.push(from.text(r), !from.is_missing(r));
  Table out;
  out.add_column(std::move(to));
  out.source = table.source;
  return out;
}

class MatchingLearner : public Learner {
 public:
  explicit MatchingLearner(PredictorOptions options) : options_(std::move(options)) {
    config_.merge(options_.hyperparameters);
  }

  void fit(const Table& train, const FitOptions& fit, const Learner* teacher) override {
    if (teacher) throw std::invalid_argument("knowledge distillation is not available for matching problems");
    if (fitted_) throw std::logic_error("this matching predictor is fitted already; make a new one to fit again");
    problem_type_ = options_.problem_type;
    model_ = model_for(problem_type_);
    if (options_.path.empty()) options_.path = default_predictor_path();
    config_.merge(fit.hyperparameters);
    require_used_keys(config_, matching_keys(), problem_type_);
    const Json defaults = matcher_defaults(problem_type_, fit.presets.empty() ? options_.presets : fit.presets);
    for (const auto& [key, value] : defaults.items())
      if (!config_.user_keys().count(key)) {
        config_.set(key, value);
        config_.mark_as_preset(key);
      }
    config_.check_supported();
    read_columns(train, fit.column_types);
    const auto start = std::chrono::steady_clock::now();

    // Matching pairs (and, with a label, non-matching ones) for training and validation.
    Table fit_rows = train, tuning;
    if (fit.tuning_data) {
      tuning = *fit.tuning_data;
      check_columns(tuning, "tuning data");
    } else {
      std::vector<std::string> strata(train.num_rows());
      if (labeled()) strata = label_texts(train);
      const double fraction = fit.holdout_frac > 0 ? fit.holdout_frac : default_holdout_fraction(train.num_rows());
      const auto [train_rows, holdout_rows] = split_holdout(strata, fraction, fit.seed);
      fit_rows = train.select_rows(train_rows);
      tuning = train.select_rows(holdout_rows);
    }

    // The adapters learn from both sides' cells (a from-scratch vocabulary sees every text).
    ModalityFitInputs in;
    in.config = &config_;
    in.pretrained = options_.pretrained;
    in.verbose = options_.verbose;
    // Files made during the fit (a from-scratch vocabulary) wait in <path>/resume
    // until the predictor's save replaces the folder.
    in.work_folder = (fs::path(options_.path) / kResumeFolder).string();
    const Table fit_table = adapter_table(fit_rows);
    in.train = &fit_table;
    in.column_types = &canonical_types_;
    modalities_ = fit_modalities({model_}, in);
    for (const auto& modality : modalities_) modality->prepare_for_training();
    build(/*pretrained=*/true);
    train_tower(fit_rows, tuning, fit, start);
    fitted_ = true;
  }

  Predictions predict(const Table& data) const override {
    const torch::Tensor p = predict_proba(data, true);
    Predictions out;
    out.name = options_.label.empty() ? "match" : options_.label;
    out.classes = classes_;
    out.values = p.argmax(-1).to(torch::kLong);
    return out;
  }

  // [rows, 2] in class order: (cosine + 1) / 2 for the matching class.
  torch::Tensor predict_proba(const Table& data, bool as_multiclass) const override {
    require_fitted("predict_proba");
    check_columns(data, data.source);
    const torch::Tensor q = embed(data, kQuery), r = embed(data, kResponse);
    const torch::Tensor p = (torch::cosine_similarity(q, r, -1) + 1) / 2;
    const torch::Tensor both = match_index_ == 1 ? torch::stack({1 - p, p}, 1) : torch::stack({p, 1 - p}, 1);
    return as_multiclass ? both : both.select(1, 1);
  }

  // Ranking metrics over the matching pairs of `data` (recall@1, recall@5,
  // recall@10, mrr, ndcg@10 by default).
  std::map<std::string, double> evaluate(const Table& data, const std::vector<std::string>& metrics_in) const override {
    require_fitted("evaluate");
    check_columns(data, data.source);
    const std::vector<std::string> metrics =
        metrics_in.empty() ? std::vector<std::string>{"recall@1", "recall@5", "recall@10", "mrr", "ndcg@10"}
                           : metrics_in;
    for (const std::string& m : metrics)
      if (!is_ranking_metric(m))
        throw std::invalid_argument("metric '" + m + "' does not apply to matching; known: recall@K, precision@K, "
                                    "ndcg@K, map@K, mrr, mrr@K");
    const Table pairs = matching_rows(data);
    if (pairs.num_rows() == 0) throw std::invalid_argument(data.source + " holds no matching pair to rank");
    // Distinct queries and responses by their cells; each query's relevant responses.
    std::map<std::string, int64_t> query_ids, response_ids;
    std::vector<size_t> query_rows, response_rows;
    std::vector<std::set<int64_t>> relevant;
    const Column& qc = pairs.column(options_.query);
    const Column& rc = pairs.column(options_.response);
    for (size_t r = 0; r < pairs.num_rows(); ++r) {
      const auto [qi, q_new] = query_ids.emplace(qc.text(r), static_cast<int64_t>(query_rows.size()));
      if (q_new) {
        query_rows.push_back(r);
        relevant.emplace_back();
      }
      const auto [ri, r_new] = response_ids.emplace(rc.text(r), static_cast<int64_t>(response_rows.size()));
      if (r_new) response_rows.push_back(r);
      relevant[qi->second].insert(ri->second);
    }
    const torch::Tensor q = embed(pairs.select_rows(query_rows), kQuery);
    const torch::Tensor r = embed(pairs.select_rows(response_rows), kResponse);
    std::vector<std::vector<int64_t>> lists;
    for (const auto& set : relevant) lists.emplace_back(set.begin(), set.end());
    return ranking_metrics(similarity(q, r), lists, metrics);
  }

  // The embeddings of the side whose column `data` has (the query column, or
  // the response column when only it is present).
  torch::Tensor extract_embedding(const Table& data) const override {
    require_fitted("extract_embedding");
    const bool has_query = data.has_column(options_.query), has_response = data.has_column(options_.response);
    if (has_query && has_response)
      throw std::invalid_argument(data.source + " has both the query column '" + options_.query +
                                  "' and the response column '" + options_.response +
                                  "': extract_embedding embeds one side, give a table with one of them");
    if (!has_query && !has_response)
      throw std::invalid_argument(data.source + " has neither the query column '" + options_.query +
                                  "' nor the response column '" + options_.response + "'");
    return embed(data, has_query ? kQuery : kResponse);
  }

  torch::Tensor head_outputs(const Table&) const override { throw no_head(); }
  torch::Tensor classify_features(const torch::Tensor&) const override { throw no_head(); }
  void export_model(const Table&, const std::string&, const ExportOptions&) const override {
    throw std::invalid_argument("export is not available for matching predictors yet; extract_embedding gives the "
                                "embeddings to index");
  }

  void write(const std::string& folder, bool standalone, const Json& extra) const override {
    Json predictor = {{"format", kPredictorFormat},
                      {"format_version", kFormatVersion},
                      {"label", options_.label},
                      {"problem_type", problem_type_},
                      {"eval_metric", "ndcg@10"},
                      {"query", options_.query},
                      {"response", options_.response},
                      {"match_label", options_.match_label},
                      {"classes", classes_},
                      {"match_index", match_index_},
                      {"side_columns", {side_column_[kQuery], side_column_[kResponse]}},
                      {"config", config_.to_json()},
                      {"fit_summary", summary_},
                      {"modalities", save_modalities(modalities_, folder, standalone)}};
    if (fitted_) predictor.update(write_network_weights(*tower_, folder));
    predictor.update(extra);
    write_text_file((fs::path(folder) / kPredictorFile).string(), predictor.dump(2));
  }

  void read(const std::string& folder, const Json& meta, bool resume) override {
    if (resume) throw std::invalid_argument("matching predictors keep no unfinished fit to resume");
    const std::string where = (fs::path(folder) / kPredictorFile).string();
    try {
      options_.label = meta.at("label").get<std::string>();
      problem_type_ = meta.at("problem_type").get<std::string>();
      options_.query = meta.at("query").get<std::string>();
      options_.response = meta.at("response").get<std::string>();
      options_.match_label = meta.at("match_label").get<std::string>();
      classes_ = meta.at("classes").get<std::vector<std::string>>();
      match_index_ = meta.at("match_index").get<int64_t>();
      const auto sides = meta.at("side_columns").get<std::vector<std::string>>();
      side_column_[kQuery] = sides.at(0);
      side_column_[kResponse] = sides.at(1);
      config_ = Config::from_json(meta.at("config"));
      summary_ = meta.at("fit_summary");
      model_ = model_for(problem_type_);
      modalities_ = load_modalities(meta.at("modalities"), folder, config_);
    } catch (const nlohmann::json::exception& e) {
      throw std::runtime_error(where + ": " + e.what());
    }
    {
      const SkipInitialization skip;  // every weight comes from the file
      build(/*pretrained=*/false);
    }
    read_network_weights(*tower_, folder, meta);
    fitted_ = true;
  }
  void relocate(const std::string& folder) override {
    for (auto& modality : modalities_) modality->relocate(folder);
  }

  bool fitted() const override { return fitted_; }
  Json fit_summary() const override { return summary_; }
  std::string problem_type() const override { return problem_type_.empty() ? options_.problem_type : problem_type_; }
  std::string eval_metric() const override { return "ndcg@10"; }
  std::vector<std::string> classes() const override { return classes_; }
  std::map<std::string, std::string> column_types() const override {
    return {{options_.query, side_column_[kQuery]}, {options_.response, side_column_[kResponse]}};
  }
  const Config& config() const override { return config_; }
  PredictorOptions& options() override { return options_; }
  const PredictorOptions& options() const override { return options_; }

 private:
  static std::logic_error no_head() {
    return std::logic_error("matching predictors have no classification head to distill from");
  }
  void require_fitted(const char* what) const {
    if (!fitted_) throw std::logic_error(std::string(what) + " needs a fitted predictor: call fit() or load() first");
  }
  bool labeled() const { return !options_.label.empty(); }

  std::vector<std::string> label_texts(const Table& table) const {
    const Column& label = table.column(options_.label);
    std::vector<std::string> out;
    for (size_t r = 0; r < label.size(); ++r) out.push_back(label.text(r));
    return out;
  }

  void check_columns(const Table& data, const std::string& what) const {
    for (const std::string& column : {options_.query, options_.response})
      if (!data.has_column(column))
        throw std::invalid_argument(what + " lacks the " + std::string(column == options_.query ? "query" : "response") +
                                    " column '" + column + "'");
  }

  // Column names and types, the label's classes and the matching class.
  void read_columns(const Table& train, const std::map<std::string, std::string>& user_types) {
    if (options_.query.empty() || options_.response.empty())
      throw std::invalid_argument("problem_type " + problem_type_ +
                                  " needs the query and response column names (PredictorOptions::query / "
                                  "response, automm fit --query COL --response COL)");
    if (options_.query == options_.response)
      throw std::invalid_argument("the query and response columns are both '" + options_.query + "'");
    check_columns(train, train.source);
    if (labeled() && !train.has_column(options_.label))
      throw std::invalid_argument(train.source + " lacks the label column '" + options_.label + "'");
    const ColumnTypes types = infer_column_types(train, nullptr, options_.label, user_types);
    const bool query_image = is_image_type(types.at(options_.query));
    const bool response_image = is_image_type(types.at(options_.response));
    const auto wrong = [&](const std::string& column, bool image) {
      return std::invalid_argument("the " + std::string(column == options_.query ? "query" : "response") +
                                   " column '" + column + "' holds " + (image ? "images" : "text") + "; " +
                                   problem_type_ + " reads " +
                                   (problem_type_ == "text_similarity"    ? "text on both sides"
                                    : problem_type_ == "image_similarity" ? "images on both sides"
                                                                          : "images on one side and text on the other"));
    };
    if (problem_type_ == "text_similarity") {
      if (query_image) throw wrong(options_.query, true);
      if (response_image) throw wrong(options_.response, true);
    } else if (problem_type_ == "image_similarity") {
      if (!query_image) throw wrong(options_.query, false);
      if (!response_image) throw wrong(options_.response, false);
    } else if (query_image == response_image) {
      throw wrong(options_.response, response_image);
    }
    side_column_[kQuery] = query_image ? "image" : "text";
    side_column_[kResponse] = response_image ? "image" : "text";
    canonical_types_.clear();
    for (Side side : {kQuery, kResponse}) {
      const std::string& column = side == kQuery ? options_.query : options_.response;
      const ColumnType type = types.at(column);
      // Categorical and numerical cells are read as text, as AutoMM's matcher does.
      canonical_types_[side_column_[side]] = is_image_type(type) ? type : ColumnType::kText;
    }
    // The label: two classes, one of them the matching one.
    classes_ = {"0", "1"};
    match_index_ = 1;
    if (!labeled()) return;
    std::set<std::string> values;
    const Column& label = train.column(options_.label);
    for (size_t r = 0; r < label.size(); ++r)
      if (!label.is_missing(r)) values.insert(label.text(r));
    if (values.size() != 2)
      throw std::invalid_argument("the label column '" + options_.label + "' holds " + std::to_string(values.size()) +
                                  " distinct values; matching reads a binary label (match / no match), or none "
                                  "when every row is a matching pair");
    classes_.assign(values.begin(), values.end());
    if (options_.match_label.empty()) options_.match_label = classes_[1];
    const auto found = std::find(classes_.begin(), classes_.end(), options_.match_label);
    if (found == classes_.end())
      throw std::invalid_argument("match_label '" + options_.match_label + "' never occurs in the label column '" +
                                  options_.label + "' (its values: " + classes_[0] + ", " + classes_[1] + ")");
    match_index_ = found - classes_.begin();
  }

  // Rows that are matching pairs: all rows without a label, else those with match_label.
  Table matching_rows(const Table& data) const {
    if (!labeled() || !data.has_column(options_.label)) return data;
    std::vector<size_t> rows;
    const Column& label = data.column(options_.label);
    for (size_t r = 0; r < label.size(); ++r)
      if (!label.is_missing(r) && label.text(r) == options_.match_label) rows.push_back(r);
    return data.select_rows(rows);
  }

  // The adapters' training table: each fixed column filled from both sides that use it.
  Table adapter_table(const Table& rows) const {
    Table out;
    out.source = rows.source;
    std::map<std::string, Column> columns;
    for (Side side : {kQuery, kResponse}) {
      const std::string& as = side_column_[side];
      const Column& from = rows.column(side == kQuery ? options_.query : options_.response);
      auto it = columns.emplace(as, Column(as)).first;
      for (size_t r = 0; r < from.size(); ++r) it->second.push(from.text(r), !from.is_missing(r));
    }
    // One row count for every column: a column used by one side only is padded with missing cells.
    size_t rows_needed = 0;
    for (const auto& [name, column] : columns) rows_needed = std::max(rows_needed, column.size());
    for (auto& [name, column] : columns) {
      while (column.size() < rows_needed) column.push_missing();
      out.add_column(std::move(column));
    }
    return out;
  }

  void build(bool pretrained) {
    ModelContext context;
    context.num_outputs = 1;  // the backbone's own head is not used
    context.load_pretrained = pretrained && options_.pretrained;
    for (const auto& modality : modalities_) modality->describe(context);
    tower_ = make_backbone(model_, model_, context, config_);
    // CLIP's learned temperature, looked up once (the loss reads it every step).
    logit_scale_ = torch::Tensor();
    for (const auto& item : tower_->named_parameters())
      if (item.key() == "model.logit_scale") logit_scale_ = item.value();
  }

  // One side of `data` as the tower's inputs.
  Dataset side_data(const Table& data, Side side, bool training) const {
    const Table view = side_view(data, side == kQuery ? options_.query : options_.response, side_column_[side]);
    Dataset out;
    out.rows = static_cast<int64_t>(view.num_rows());
    std::vector<std::string> warnings;
    for (const auto& modality : modalities_) out.inputs.push_back(modality->process(view, training, &warnings));
    for (const auto& w : warnings)
      if (options_.verbose) log_message(LogLevel::kWarning, w);
    return out;
  }

  // The tower's features of `rows` of a side's dataset, in fp32.
  torch::Tensor features(const Dataset& data, const torch::Tensor& rows, const Placement& placement,
                         std::optional<uint64_t> seed) const {
    const Batch batch = make_batch(data, rows, placement.batch(), seed);
    const AutocastScope autocast(placement);
    return tower_->forward(batch).features.to(torch::kFloat32);
  }

  // [rows, dim] embeddings of one side of `data`, in eval mode.
  torch::Tensor embed(const Table& data, Side side) const {
    const ThreadScope threads(choose_thread_count());
    const Placement placement = resolve_placement(config_);
    torch::NoGradGuard no_grad;
    tower_->eval();
    const Dataset ds = side_data(data, side, false);
    const int64_t batch = inference_batch_size(config_);
    std::vector<torch::Tensor> out;
    for (int64_t first = 0; first < ds.rows; first += batch)
      out.push_back(features(ds, torch::arange(first, std::min(ds.rows, first + batch), torch::kLong), placement,
                             std::nullopt));
    if (out.empty()) return torch::zeros({0, 0});
    return torch::cat(out);
  }

  // The learned temperature of CLIP (exp of its logit_scale), 1 for other towers.
  torch::Tensor logit_scale() const { return logit_scale_.defined() ? logit_scale_.exp() : torch::ones({}); }

  // AutoMM's similarity for ranking: cosine (embeddings L2-normalised).
  static torch::Tensor similarity(const torch::Tensor& q, const torch::Tensor& r) {
    return torch::nn::functional::normalize(q, torch::nn::functional::NormalizeFuncOptions().dim(-1))
        .matmul(torch::nn::functional::normalize(r, torch::nn::functional::NormalizeFuncOptions().dim(-1)).t());
  }

  // Multiple-negatives softmax loss: each query's response among the batch's
  // responses and each response's query among its queries.
  torch::Tensor multiple_negatives_loss(const torch::Tensor& q, const torch::Tensor& r) const {
    const torch::Tensor logits = logit_scale() * q.matmul(r.t());
    const torch::Tensor target = torch::arange(q.size(0), torch::kLong);
    return (torch::nn::functional::cross_entropy(logits, target) +
            torch::nn::functional::cross_entropy(logits.t(), target)) /
           2;
  }

  // pytorch-metric-learning's ContrastiveLoss(pos_margin 0.8, neg_margin 0.2)
  // on cosine similarity, over the pairs PairMarginMiner(0.6, 0.4) mines from
  // the 2n embeddings: query i and response i share a class when row i
  // matches; every other pair differs.
  static torch::Tensor contrastive_loss(const torch::Tensor& q, const torch::Tensor& r, const torch::Tensor& match) {
    const int64_t n = q.size(0);
    const torch::Tensor e = torch::cat({q, r});
    const torch::Tensor ids = torch::arange(n, torch::kLong);
    const torch::Tensor classes = torch::cat({ids, torch::where(match, ids, ids + n)});
    const torch::Tensor sim = similarity(e, e);
    const torch::Tensor same = classes.unsqueeze(0) == classes.unsqueeze(1);
    const torch::Tensor off_diagonal = ~torch::eye(2 * n, torch::kBool);
    const torch::Tensor positive = same & off_diagonal & (sim < 0.6);
    const torch::Tensor negative = ~same & (sim > 0.4);
    const auto mean_nonzero = [](const torch::Tensor& values) {
      const torch::Tensor nonzero = (values > 0).sum();
      return torch::where(nonzero > 0, values.sum() / nonzero.clamp_min(1), values.sum() * 0);
    };
    const torch::Tensor pos_loss = torch::relu(0.8 - sim).masked_select(positive);
    const torch::Tensor neg_loss = torch::relu(sim - 0.2).masked_select(negative);
    return mean_nonzero(pos_loss) + mean_nonzero(neg_loss);
  }

  // AutoMM's validation score without labels: the mean of hit@1, 5, 10 in both directions.
  double validation_score(const Table& tuning) const {
    const Table pairs = matching_rows(tuning);
    if (pairs.num_rows() == 0) return 0.0;
    const torch::Tensor q = embed(pairs, kQuery), r = embed(pairs, kResponse);
    std::vector<std::vector<int64_t>> diagonal;
    for (int64_t i = 0; i < q.size(0); ++i) diagonal.push_back({i});
    const std::vector<std::string> hits = {"recall@1", "recall@5", "recall@10"};
    double sum = 0.0;
    for (const auto& [name, value] : ranking_metrics(similarity(q, r), diagonal, hits)) sum += value;
    for (const auto& [name, value] : ranking_metrics(similarity(r, q), diagonal, hits)) sum += value;
    return sum / 6.0;
  }

  void train_tower(const Table& train, const Table& tuning, const FitOptions& fit,
                   std::chrono::steady_clock::time_point start) {
    const int fit_threads = choose_thread_count();
    const ThreadScope threads(fit_threads);
    const Placement placement = resolve_placement(config_);
    const Dataset queries = side_data(train, kQuery, true), responses = side_data(train, kResponse, true);
    // Training rows: matching pairs only without a label, every labelled row with one.
    std::vector<int64_t> rows;
    std::vector<uint8_t> match(train.num_rows(), 1);
    const Column* label = labeled() ? &train.column(options_.label) : nullptr;
    for (size_t r = 0; r < train.num_rows(); ++r) {
      if (label && label->is_missing(r)) continue;
      if (label) match[r] = label->text(r) == options_.match_label;
      rows.push_back(static_cast<int64_t>(r));
    }
    if (rows.size() < 2) throw std::invalid_argument(train.source + " has fewer than 2 training pairs");
    const int64_t micro = std::max<int64_t>(2, config_.get_int("env.per_gpu_batch_size"));
    const int64_t accumulate = std::max<int64_t>(1, config_.get_int("env.batch_size") / micro);
    const int64_t steps_per_epoch = std::max<int64_t>(
        1, (static_cast<int64_t>(rows.size()) + micro * accumulate - 1) / (micro * accumulate));
    const int64_t epochs = config_.get_int("optim.max_epochs");
    std::vector<std::pair<std::string, torch::Tensor>> named;
    std::vector<std::string> names;
    for (const auto& item : tower_->named_parameters()) {
      named.emplace_back(item.key(), item.value());
      names.push_back(item.key());
    }
    const auto groups = make_parameter_groups(named, config_, tower_->is_pretrained() ? layerwise_ids(names)
                                                                                       : std::map<std::string, int64_t>{});
    const auto optimizer = make_optimizer(groups, config_);
    const LrSchedule schedule = make_schedule(config_, steps_per_epoch * epochs, steps_per_epoch);
    const double clip = config_.get_double("optim.gradient_clip_val");
    const bool clip_by_value = config_.get_string("optim.gradient_clip_algorithm") == "value";
    std::mt19937_64 rng(fit.seed);
    std::string stop_reason = "max_epochs";
    StateDict best;
    double best_score = -1.0;
    int64_t step = 0, best_epoch = 0, epochs_run = 0;
    Json log = Json::array();
    for (int64_t epoch = 1; epoch <= epochs; ++epoch) {
      tower_->train();
      std::shuffle(rows.begin(), rows.end(), rng);
      double loss_sum = 0.0;
      int64_t batches = 0;
      for (size_t first = 0; first < rows.size(); first += static_cast<size_t>(micro)) {
        const size_t last = std::min(rows.size(), first + static_cast<size_t>(micro));
        if (last - first < 2) break;  // in-batch negatives need two rows
        const torch::Tensor ids = torch::tensor(std::vector<int64_t>(rows.begin() + first, rows.begin() + last));
        const uint64_t seed = rng();
        const torch::Tensor q = features(queries, ids, placement, seed), r = features(responses, ids, placement, seed + 1);
        torch::Tensor loss;
        if (labeled()) {
          std::vector<uint8_t> m;
          for (size_t i = first; i < last; ++i) m.push_back(match[static_cast<size_t>(rows[i])]);
          loss = contrastive_loss(q, r, torch::tensor(m).to(torch::kBool));
        } else {
          loss = multiple_negatives_loss(q, r);
        }
        (loss / static_cast<double>(accumulate)).backward();
        loss_sum += loss.item<double>();
        ++batches;
        if (batches % accumulate == 0 || last == rows.size()) {
          if (clip > 0 && clip_by_value) torch::nn::utils::clip_grad_value_(tower_->parameters(), clip);
          else if (clip > 0) torch::nn::utils::clip_grad_norm_(tower_->parameters(), clip);
          apply_schedule(*optimizer, groups, schedule, step++);
          optimizer->step();
          clear_gradients(*optimizer);
        }
      }
      ++epochs_run;
      const double score = validation_score(tuning);
      log.push_back({{"epoch", epoch}, {"train_loss", batches ? loss_sum / batches : 0.0}, {"val_hit_rate", score}});
      if (options_.verbose) {
        std::ostringstream line;
        line << "automm: epoch " << epoch << "/" << epochs << ", loss " << std::setprecision(4)
             << (batches ? loss_sum / batches : 0.0) << ", validation hit rate (mean of hit@1, 5, 10) " << score;
        log_message(LogLevel::kInfo, line.str());
      }
      if (score > best_score) {
        best_score = score;
        best_epoch = epoch;
        best.clear();
        for (const auto& item : tower_->named_parameters()) best[item.key()] = item.value().detach().clone();
      }
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (fit.time_limit > 0 && elapsed > fit.time_limit) {
        stop_reason = "time_limit";
        break;
      }
    }
    {
      torch::NoGradGuard no_grad;
      for (auto& item : tower_->named_parameters()) item.value().copy_(best.at(item.key()));
    }
    tower_->eval();
    // The default learner's summary fields, so that tools read both alike.
    summary_ = {{"problem_type", problem_type_},
                {"models", {model_}},
                {"num_train_rows", rows.size()},
                {"num_validation_rows", tuning.num_rows()},
                {"validation_metric", "hit_rate"},  // mean of hit@1, 5, 10 in both directions
                {"best_validation_score", best_score},
                {"best_epoch", best_epoch},
                {"epochs", epochs_run},
                {"stop_reason", stop_reason},
                {"optimizer_steps", step},
                {"training_seconds",
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()},
                {"threads", fit_threads},
                {"log", log}};
  }

  PredictorOptions options_;
  Config config_;
  std::string problem_type_, model_;
  bool fitted_ = false;
  std::vector<std::string> classes_;
  int64_t match_index_ = 1;
  std::string side_column_[2];  // "text" or "image": the fixed column each side is read as
  ColumnTypes canonical_types_;
  std::vector<std::unique_ptr<Modality>> modalities_;
  std::shared_ptr<BackboneImpl> tower_;
  torch::Tensor logit_scale_;  // CLIP's logit_scale parameter; undefined for other towers
  Json summary_ = Json::object();
};

}  // namespace

std::unique_ptr<Learner> make_matching_learner(PredictorOptions options) {
  return std::make_unique<MatchingLearner>(std::move(options));
}

}  // namespace automm
