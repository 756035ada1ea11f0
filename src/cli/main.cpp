// The automm command line: fit, predict, evaluate, export, info, serve, search,
// hyperparameters, tokenize. Arguments are parsed by CLI11 (Debian's libcli11-dev), so a bad
// value names its flag.
#include <CLI/CLI.hpp>

#include <cctype>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <pthread.h>

#include "automm/config.h"
#include "automm/predictor.h"
#include "automm/serve.h"
#include "automm/table.h"
#include "data/image/coco.h"
#include "data/image/detection_files.h"
#include "data/image/segmentation_data.h"
#include "data/text/token_ids.h"
#include "learners/distributed.h"
#include "learners/learner_io.h"
#include "learners/ranking.h"

namespace {

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> items;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ','))
    if (!item.empty()) items.push_back(item);
  return items;
}

void print_summary(const automm::MultiModalPredictor& predictor) {
  const automm::Json summary = predictor.fit_summary();
  std::cout << "Fit summary\n"
            << "  problem type:        " << summary["problem_type"].get<std::string>() << "\n"
            << "  models:              " << summary["models"].dump() << "\n"
            << "  rows:                " << summary["num_train_rows"] << " train, " << summary["num_validation_rows"]
            << " validation\n"
            << "  best validation " << summary["validation_metric"].get<std::string>() << ": "
            << summary["best_validation_score"] << "\n";
  if (summary.contains("final_validation_score"))
    std::cout << "  final model (" << summary["top_k_average_method"].get<std::string>()
              << "): " << summary["final_validation_score"] << "\n";
  std::cout << "  stopped:             " << summary["stop_reason"].get<std::string>() << " after "
            << summary["optimizer_steps"] << " steps, " << summary["training_seconds"].get<double>() << " s\n"
            << "  saved to:            " << predictor.path() << "\n";
  if (summary.contains("resumed_from_step"))
    std::cout << "  resumed from step:   " << summary["resumed_from_step"] << "\n";
}

// A number in [lo, hi]; the message names the value (CLI11 prefixes the flag).
CLI::Validator number_in(double lo, double hi, const std::string& what) {
  return CLI::Validator(
      [=](std::string& text) -> std::string {
        char* end = nullptr;
        const double value = std::strtod(text.c_str(), &end);
        if (text.empty() || end != text.c_str() + text.size() || !(value >= lo && value <= hi))
          return "expected " + what + ", got '" + text + "'";
        return "";
      },
      what);
}

struct FitArgs {
  std::string train, tuning, label, path, presets, problem_type, eval_metric, config_file, teacher;
  std::string query, response, match_label;  // matching problem types
  std::vector<std::string> hp, column_types;
  double time_limit = 0.0, holdout_frac = 0.0;
  uint64_t seed = 0;
  bool resume = false, no_pretrained = false, quiet = false;
};

// env.strategy = ddp_spawn with env.num_gpus > 1: this command runs itself as
// that many workers (learners/distributed.h) and reports how they ended.
int launch_workers(int workers, const std::vector<std::string>& arguments) {
  std::cerr << "automm: env.strategy = ddp_spawn: starting " << workers << " local worker processes\n";
  int failed_rank = -1;
  const int status = automm::run_local_workers(arguments, workers, &failed_rank);
  if (status != 0)
    std::cerr << "error: worker rank " << failed_rank << " of " << workers << " failed (exit status " << status
              << "); the other workers were stopped\n";
  return status;
}

// A data file as a table; a COCO file's images under model.mmdet_image.coco_root
// when the configuration sets it.
automm::Table read_data(const std::string& path, const automm::Config& config) {
  if (!config.is_null("model.mmdet_image.coco_root")) {
    if (auto coco = automm::try_read_coco_table(path, config.get_string("model.mmdet_image.coco_root")))
      return std::move(*coco);
  }
  return automm::read_table(path);
}

int run_fit(const FitArgs& a, const std::vector<std::string>& arguments) {
  automm::FitOptions fit;
  fit.time_limit = a.time_limit;
  if (!a.teacher.empty())  // a folder that is not a saved predictor fails here, naming it
    fit.teacher_predictor = std::make_shared<const automm::MultiModalPredictor>(automm::MultiModalPredictor::load(a.teacher));
  const bool quiet_rank = !std::getenv("AUTOMM_SPAWNED_WORKER") ? false
                                                                : std::string(std::getenv("RANK") ? std::getenv("RANK") : "0") != "0";
  if (a.resume) {
    // Continues a killed fit from its last checkpoint, with the saved configuration.
    const auto saved = std::filesystem::path(a.path) / "resume" / "predictor.json";
    if (std::filesystem::exists(saved))  // else load() below says what is missing
      if (const int workers = automm::local_workers_to_spawn(
              automm::Config::from_json(automm::read_json_file(saved.string()).at("config"))))
        return launch_workers(workers, arguments);
    auto predictor = automm::MultiModalPredictor::load(a.path, /*resume=*/true);
    const automm::Table train = automm::read_table(a.train);
    if (!a.tuning.empty()) fit.tuning_data = automm::read_table(a.tuning);
    predictor.fit(train, fit);
    if (!quiet_rank) print_summary(predictor);
    return 0;
  }
  // The predictor says when its problem type needs a label (matching does not).
  if (a.label.empty() && a.query.empty() && a.problem_type != "object_detection")
    throw std::invalid_argument("--label is required (except with --resume, --query / --response for matching, or "
                                "--problem-type object_detection)");
  automm::Config config;  // parsed here first so that bad keys fail before reading data
  if (!a.config_file.empty()) config.merge_yaml_file(a.config_file);
  for (const std::string& hp : a.hp) config.set_assignment(hp);
  if (const int workers = automm::local_workers_to_spawn(config)) return launch_workers(workers, arguments);
  automm::PredictorOptions options;
  options.label = a.label;
  options.path = a.path;
  options.presets = a.presets;
  options.problem_type = a.problem_type;
  options.eval_metric = a.eval_metric;
  options.query = a.query;
  options.response = a.response;
  options.match_label = a.match_label;
  for (const std::string& key : config.user_keys()) options.hyperparameters[key] = config.get(key);
  options.verbose = !a.quiet;
  options.pretrained = !a.no_pretrained;
  automm::MultiModalPredictor predictor(options);

  const automm::Table train = read_data(a.train, config);
  if (!a.tuning.empty()) fit.tuning_data = read_data(a.tuning, config);
  fit.seed = a.seed;
  fit.holdout_frac = a.holdout_frac;
  for (const std::string& assignment : a.column_types) {
    const size_t eq = assignment.find('=');
    if (eq == std::string::npos) throw std::invalid_argument("--column-type expects COL=TYPE, got '" + assignment + "'");
    fit.column_types[assignment.substr(0, eq)] = assignment.substr(eq + 1);
  }
  predictor.fit(train, fit);
  if (!quiet_rank) print_summary(predictor);
  return 0;
}

// What `automm predict` reads besides the table.
struct PredictArgs {
  std::string path, data, out;
  bool proba = false;
  // Zero-shot image classification: no saved predictor, a CLIP checkpoint.
  bool zero_shot = false;
  std::string checkpoint = "openai/clip-vit-base-patch32", classes, classes_file, prompt;
  std::string visualize;  // semantic segmentation: overlays of the masks on the images
};

// Semantic segmentation: --out is a folder of PNG masks (one per row) and
// masks.csv; --proba writes the foreground probability (binary masks) as gray
// levels instead; --visualize DIR paints the masks over copies of the images.
int write_segmentation(const automm::MultiModalPredictor& predictor, const automm::Table& data, const PredictArgs& a) {
  std::string image_column;
  for (const auto& [name, type] : predictor.column_types())
    if (type == "semantic_segmentation_img") image_column = name;
  std::vector<torch::Tensor> masks;
  if (a.proba) {
    if (predictor.classes().size() > 2)
      throw std::invalid_argument("--proba writes a binary predictor's foreground probability; this predictor has " +
                                  std::to_string(predictor.classes().size()) +
                                  " classes (predict_proba in C++ or Python gives every class's)");
    for (size_t r = 0; r < data.num_rows(); ++r)  // one row at a time: images may differ in size
      masks.push_back(predictor.predict_proba(data.select_rows({r}), /*as_multiclass=*/false)[0]);
  } else {
    masks = predictor.predict(data).masks;
  }
  automm::write_mask_files(data, image_column, masks, a.out, a.visualize);
  std::cerr << "wrote " << masks.size() << " masks and masks.csv to " << a.out
            << (a.visualize.empty() ? "" : ", overlays to " + a.visualize) << "\n";
  return 0;
}

// Object detection: --out preds.json writes COCO results, any other name a CSV
// of boxes; --visualize DIR draws the boxes on copies of the images.
int write_detections(const automm::MultiModalPredictor& predictor, const automm::Table& data, const PredictArgs& a) {
  if (a.proba) throw std::invalid_argument("--proba: detection predictions are boxes with scores (predict writes them)");
  std::string image_column = "image";
  for (const auto& [name, type] : predictor.column_types())
    if (type == "image_path") image_column = name;
  const automm::Predictions predictions = predictor.predict(data);
  const bool json = std::filesystem::path(a.out).extension() == ".json";
  const size_t boxes = json ? automm::write_coco_results(data, predictions, a.out)
                            : automm::write_detection_csv(data, image_column, predictions, a.out);
  if (!a.visualize.empty()) automm::draw_detection_files(data, image_column, predictions, a.visualize);
  std::cerr << "wrote " << boxes << " boxes of " << predictions.size() << " images to " << a.out
            << (json ? " (COCO results)" : "") << (a.visualize.empty() ? "" : ", drawings to " + a.visualize) << "\n";
  return 0;
}

// --classes "a,b,c" or --classes-file (one name a line); empty when neither is given.
std::vector<std::string> candidate_classes(const PredictArgs& a) {
  if (!a.classes.empty() && !a.classes_file.empty())
    throw std::invalid_argument("give the candidate classes once: --classes or --classes-file");
  if (!a.classes.empty()) return split_commas(a.classes);
  std::vector<std::string> names;
  if (a.classes_file.empty()) return names;
  std::ifstream in(a.classes_file);
  if (!in) throw std::runtime_error("cannot read --classes-file " + a.classes_file);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) names.push_back(line);
  }
  if (names.empty()) throw std::invalid_argument("--classes-file " + a.classes_file + " names no class");
  return names;
}

// The top_k corpus rows of every query row, by cosine similarity of the
// predictor's embeddings: one row per hit (query_row, rank, corpus_row, score).
int run_search(const std::string& path, const std::string& queries_path, const std::string& corpus_path,
               int64_t top_k, const std::string& out_path) {
  const auto predictor = automm::MultiModalPredictor::load(path);
  const torch::Tensor queries = predictor.extract_embedding(automm::read_table(queries_path));
  const torch::Tensor corpus = predictor.extract_embedding(automm::read_table(corpus_path));
  automm::Column query_row("query_row"), rank("rank"), corpus_row("corpus_row"), score("score");
  for (const automm::SearchHit& hit : automm::semantic_search(queries, corpus, top_k)) {
    char text[32];
    std::snprintf(text, sizeof(text), "%.9g", hit.score);
    query_row.push(std::to_string(hit.query), true);
    rank.push(std::to_string(hit.rank), true);
    corpus_row.push(std::to_string(hit.corpus), true);
    score.push(text, true);
  }
  automm::Table out;
  for (automm::Column* column : {&query_row, &rank, &corpus_row, &score}) out.add_column(std::move(*column));
  if (out_path.empty()) {
    std::cout << "query_row,rank,corpus_row,score\n";
    for (size_t r = 0; r < out.num_rows(); ++r)
      std::cout << out.column("query_row").text(r) << "," << out.column("rank").text(r) << ","
                << out.column("corpus_row").text(r) << "," << out.column("score").text(r) << "\n";
  } else {
    automm::write_csv(out, out_path);
    std::cerr << "wrote " << out.num_rows() << " hits to " << out_path << "\n";
  }
  return 0;
}

int run_predict(const PredictArgs& a) {
  const std::vector<std::string> candidates = candidate_classes(a);
  automm::MultiModalPredictor predictor = [&] {
    if (!a.zero_shot) {
      if (a.path.empty()) throw std::invalid_argument("predict needs --path (a saved predictor) or --zero-shot");
      return automm::MultiModalPredictor::load(a.path);
    }
    automm::PredictorOptions options;
    options.problem_type = "zero_shot_image_classification";
    options.path = a.path;
    automm::Json hyperparameters = {{"model.clip.checkpoint_name", a.checkpoint}};
    if (!a.prompt.empty()) hyperparameters["model.clip.prompt_template"] = a.prompt;
    options.hyperparameters = hyperparameters;
    return automm::MultiModalPredictor(options);
  }();
  if (a.zero_shot && candidates.empty())
    throw std::invalid_argument("--zero-shot needs the candidate class names: --classes \"cat,dog\" or --classes-file F");
  const automm::Table data = read_data(a.data, predictor.config());
  if (predictor.problem_type() == "semantic_segmentation") return write_segmentation(predictor, data, a);
  if (predictor.problem_type() == "object_detection") return write_detections(predictor, data, a);
  if (!a.visualize.empty()) throw std::invalid_argument("--visualize draws segmentation masks or detected boxes; "
                                                        "this predictor's problem type is " + predictor.problem_type());
  automm::Table out;
  const bool with_candidates = !candidates.empty();
  if (a.proba) {
    const torch::Tensor p =
        (with_candidates ? predictor.predict_proba(data, candidates) : predictor.predict_proba(data))
            .contiguous()
            .to(torch::kFloat64);
    const auto classes = with_candidates ? candidates : predictor.classes();
    for (size_t c = 0; c < classes.size(); ++c) {
      automm::Column column(classes[c]);
      for (int64_t r = 0; r < p.size(0); ++r) {
        char text[32];
        std::snprintf(text, sizeof(text), "%.9g", p[r][static_cast<int64_t>(c)].item<double>());
        column.push(text, true);
      }
      out.add_column(std::move(column));
    }
  } else {
    out.add_column((with_candidates ? predictor.predict(data, candidates) : predictor.predict(data)).to_column());
  }
  automm::write_csv(out, a.out);
  std::cerr << "wrote " << out.num_rows() << " predictions to " << a.out << "\n";
  return 0;
}

int run_evaluate(const std::string& path, const std::string& data_path, const std::string& metrics, bool json) {
  const auto predictor = automm::MultiModalPredictor::load(path);
  const auto scores = predictor.evaluate(read_data(data_path, predictor.config()), split_commas(metrics));
  if (json) {
    automm::Json j = automm::Json::object();
    for (const auto& [name, value] : scores) j[name] = value;
    std::cout << j.dump() << "\n";
  } else {
    for (const auto& [name, value] : scores) std::cout << name << ": " << value << "\n";
  }
  return 0;
}

int run_export(const std::string& path, const std::string& data_path, const std::string& out_path,
               const automm::ExportOptions& options) {
  const auto predictor = automm::MultiModalPredictor::load(path);
  predictor.export_model(automm::read_table(data_path), out_path, options);
  std::cerr << "wrote " << out_path << " (" << options.format << ", batches of " << options.batch_size
            << " rows) and " << out_path << ".json (its inputs, outputs and classes)\n";
  return 0;
}

int run_info(const std::string& path, bool json) {
  const auto predictor = automm::MultiModalPredictor::load(path);
  if (json) {  // fit_summary() as one JSON object
    std::cout << predictor.fit_summary().dump() << "\n";
    return 0;
  }
  std::cout << "label:        " << predictor.label() << "\n"
            << "problem type: " << predictor.problem_type() << "\n"
            << "eval metric:  " << predictor.eval_metric() << "\n";
  if (!predictor.classes().empty()) {
    std::cout << "classes:      ";
    for (const auto& c : predictor.classes()) std::cout << c << " ";
    std::cout << "\n";
  }
  std::cout << "columns:\n";
  for (const auto& [name, type] : predictor.column_types()) std::cout << "  " << name << ": " << type << "\n";
  std::cout << "fit summary:  " << predictor.fit_summary().dump(2) << "\n";
  return 0;
}

int run_tokenize(const std::string& checkpoint, const std::string& input, int64_t max_len,
                 const std::string& tokenizer) {
  std::ifstream in(input);
  if (!in) throw std::runtime_error("cannot read " + input);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
  }
  for (const auto& row : automm::model_token_ids(checkpoint, lines, max_len, tokenizer))
    std::cout << automm::Json(row).dump() << "\n";
  return 0;
}

int run_serve(const std::string& path, automm::ServeOptions options, const std::string& token_file,
              double max_body_mb) {
  if (!token_file.empty()) {
    std::ifstream in(token_file);
    if (!in) throw std::runtime_error("cannot read --token-file " + token_file);
    std::getline(in, options.token);
    while (!options.token.empty() && std::isspace(static_cast<unsigned char>(options.token.back())))
      options.token.pop_back();
    if (options.token.empty()) throw std::runtime_error("--token-file " + token_file + " holds no token");
  }
  options.max_body_bytes = static_cast<size_t>(max_body_mb * 1024 * 1024);
  const auto predictor = automm::MultiModalPredictor::load(path);
  // SIGTERM and SIGINT are blocked in every thread (set before any starts) and
  // awaited by one, which stops the server: requests in flight are answered.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  automm::PredictionServer server(predictor, options);
  server.bind();
  std::cerr << "automm serve: " << predictor.problem_type() << " predictor " << path << " on http://" << options.host
            << ":" << server.port() << " (max batch " << options.max_batch << " rows, max delay "
            << options.max_delay_ms << " ms" << (options.token.empty() ? "" : ", bearer token") << ")" << std::endl;
  if (options.token.empty() && options.host != "127.0.0.1" && options.host != "localhost" && options.host != "::1")
    std::cerr << "automm serve: warning: listening on " << options.host << " without --token-file" << std::endl;
  std::thread watcher([&] {
    int signal = 0;
    sigwait(&signals, &signal);
    std::cerr << "automm serve: " << (signal == SIGTERM ? "SIGTERM" : "SIGINT")
              << ", answering the requests in flight" << std::endl;
    server.stop();
  });
  server.run();
  watcher.join();
  std::cerr << "automm serve: stopped" << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"automm: AutoGluon MultiModal's MultiModalPredictor in C++. Tables are CSV, TSV or JSON Lines "
               "(by extension); object detection also reads COCO json files and Pascal VOC folders."};
  app.require_subcommand(1);

  FitArgs fit;
  CLI::App* fit_cmd = app.add_subcommand("fit", "fit a predictor and save it to --path");
  fit_cmd->add_option("--train", fit.train, "training table")->required();
  fit_cmd->add_option("--label", fit.label, "label column (not with --resume)");
  fit_cmd->add_option("--path", fit.path, "predictor folder")->required();
  fit_cmd->add_option("--tuning", fit.tuning, "tuning (validation) table");
  fit_cmd->add_option("--presets", fit.presets, "medium_quality, high_quality or best_quality");
  fit_cmd->add_option("--problem-type", fit.problem_type,
                      "binary, multiclass, regression (default: inferred), text_similarity, image_similarity, "
                      "image_text_similarity, semantic_segmentation or object_detection (no --label)");
  fit_cmd->add_option("--query", fit.query, "matching: the query column");
  fit_cmd->add_option("--response", fit.response, "matching: the response column");
  fit_cmd->add_option("--match-label", fit.match_label,
                      "matching with --label: the label value of a matching pair (default: the second class)");
  fit_cmd->add_option("--eval-metric", fit.eval_metric, "metric (default: the problem type's)");
  fit_cmd->add_option("--hp", fit.hp, "a key=value hyperparameter; repeatable")->allow_extra_args(false);
  fit_cmd->add_option("--config", fit.config_file, "YAML file of hyperparameters");
  fit_cmd->add_option("--time-limit", fit.time_limit, "seconds (0 = none)")
      ->check(number_in(0, 1e12, "a number of seconds >= 0"));
  fit_cmd->add_option("--seed", fit.seed, "random seed");
  fit_cmd->add_option("--holdout-frac", fit.holdout_frac, "validation fraction when no --tuning table")
      ->check(number_in(0, 1, "a fraction in [0, 1]"));
  fit_cmd->add_option("--column-type", fit.column_types, "COL=TYPE; repeatable")->allow_extra_args(false);
  fit_cmd->add_flag("--no-pretrained", fit.no_pretrained, "random weights for every backbone");
  fit_cmd->add_flag("--quiet", fit.quiet, "no progress output");
  fit_cmd->add_flag("--resume", fit.resume, "continue a killed fit from its last checkpoint in --path");
  fit_cmd->add_option("--teacher", fit.teacher, "a saved predictor to distill from (distiller.* keys)");

  std::string path, data, out, metrics;
  bool json = false;
  PredictArgs predict;
  CLI::App* predict_cmd = app.add_subcommand("predict", "predict a table's rows");
  predict_cmd->add_option("--path", predict.path, "predictor folder");
  predict_cmd->add_option("--data", predict.data, "table to predict")->required();
  predict_cmd->add_option("--out", predict.out,
                          "CSV file to write (semantic_segmentation: a folder of PNG masks and masks.csv; "
                          "object_detection: COCO results for a .json name, else a CSV of boxes)")
      ->required();
  predict_cmd->add_option("--visualize", predict.visualize,
                          "semantic_segmentation / object_detection: a folder for copies of the images with their "
                          "masks painted over or their boxes drawn");
  predict_cmd->add_flag("--proba", predict.proba, "class probabilities instead of labels");
  predict_cmd->add_flag("--zero-shot", predict.zero_shot,
                        "zero-shot image classification with a CLIP checkpoint (no --path): each row's images "
                        "against --classes");
  predict_cmd->add_option("--checkpoint", predict.checkpoint,
                          "--zero-shot: CLIP checkpoint (Hugging Face id, cache or folder)")
      ->capture_default_str();
  predict_cmd->add_option("--classes", predict.classes, "candidate class names, comma-separated");
  predict_cmd->add_option("--classes-file", predict.classes_file, "candidate class names, one a line");
  predict_cmd->add_option("--prompt", predict.prompt,
                          "--zero-shot: the text for a class name, {} standing for it (model.clip.prompt_template)");

  CLI::App* evaluate_cmd = app.add_subcommand("evaluate", "score a labelled table");
  evaluate_cmd->add_option("--path", path, "predictor folder")->required();
  evaluate_cmd->add_option("--data", data, "labelled table")->required();
  evaluate_cmd->add_option("--metrics", metrics, "comma-separated metrics (default: the eval metric)");
  evaluate_cmd->add_flag("--json", json, "print one JSON object");

  automm::ExportOptions export_options;
  CLI::App* export_cmd = app.add_subcommand(
      "export", "write the network's forward pass as a TorchScript or ONNX file, traced on example rows");
  export_cmd->add_option("--path", path, "predictor folder")->required();
  export_cmd->add_option("--data", data, "example rows (any table with the predictor's columns)")->required();
  export_cmd->add_option("--out", out, "file to write; <out>.json describes its inputs and outputs")->required();
  export_cmd->add_option("--format", export_options.format, "torchscript (default) or onnx")
      ->check(CLI::IsMember({"torchscript", "onnx"}));
  export_cmd->add_option("--batch-size", export_options.batch_size, "rows per call (the shapes are fixed)")
      ->check(number_in(1, 1e6, "a number of rows >= 1"));
  export_cmd->add_option("--text-length", export_options.text_length,
                         "tokens per text input (default: the processor's longest)")
      ->check(number_in(1, 1e6, "a number of tokens >= 1"));
  export_cmd->add_option("--opset", export_options.opset_version, "ONNX opset version")
      ->check(number_in(7, 30, "an ONNX opset version"));

  CLI::App* info_cmd = app.add_subcommand("info", "describe a saved predictor");
  info_cmd->add_option("--path", path, "predictor folder")->required();
  info_cmd->add_flag("--json", json, "print fit_summary() as one JSON object");

  automm::ServeOptions serve;
  std::string token_file;
  double max_body_mb = 64;
  CLI::App* serve_cmd = app.add_subcommand("serve", "answer predictions over HTTP (JSON) until SIGTERM");
  serve_cmd->add_option("--path", path, "predictor folder")->required();
  serve_cmd->add_option("--host", serve.host, "address to listen on (default 127.0.0.1: this machine only)");
  serve_cmd->add_option("--port", serve.port, "TCP port; 0 = any free port")->check(number_in(0, 65535, "a port number"));
  serve_cmd->add_option("--max-batch", serve.max_batch, "rows per forward pass; 1 = no batching")
      ->check(number_in(1, 1e6, "a number of rows >= 1"));
  serve_cmd->add_option("--max-delay-ms", serve.max_delay_ms, "how long a request waits for others to batch with")
      ->check(number_in(0, 1e5, "milliseconds >= 0"));
  serve_cmd->add_option("--threads", serve.threads, "HTTP worker threads")->check(number_in(1, 4096, "a count >= 1"));
  serve_cmd->add_option("--token-file", token_file, "file whose first line is the bearer token clients must send");
  serve_cmd->add_option("--allow-image-dir", serve.allow_image_dir, "folder that image paths in requests must stay inside")
      ->check(CLI::ExistingDirectory);
  serve_cmd->add_option("--max-body-mb", max_body_mb, "largest request body")->check(number_in(0.001, 1e5, "megabytes > 0"));
  serve_cmd->add_option("--max-rows", serve.max_rows, "most rows per request")->check(number_in(1, 1e9, "a count >= 1"));

  std::string queries, corpus;
  int64_t top_k = 10;
  CLI::App* search_cmd = app.add_subcommand(
      "search", "semantic search with a matching predictor: each query row's most similar corpus rows (cosine)");
  search_cmd->add_option("--path", path, "matching predictor folder")->required();
  search_cmd->add_option("--queries", queries, "table with the query column")->required();
  search_cmd->add_option("--corpus", corpus, "table with the response column")->required();
  search_cmd->add_option("--top-k", top_k, "corpus rows per query")->check(number_in(1, 1e9, "a count >= 1"));
  search_cmd->add_option("--out", out, "CSV file to write (default: standard output)");

  app.add_subcommand("hyperparameters", "every key, its default and allowed values (markdown)");

  std::string checkpoint, input, tokenizer = "hf_auto";
  int64_t max_len = 512;
  CLI::App* tokenize_cmd =
      app.add_subcommand("tokenize", "print, per input line, a JSON array of the token ids a text model would see");
  tokenize_cmd->add_option("--checkpoint", checkpoint, "checkpoint folder or Hugging Face id")->required();
  tokenize_cmd->add_option("--input", input, "text file, one input per line")->required();
  tokenize_cmd->add_option("--max-len", max_len, "maximum sequence length")->check(number_in(1, 1e9, "a positive number of tokens"));
  tokenize_cmd->add_option("--tokenizer", tokenizer, "hf_auto, bert, electra or clip");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "error: " << e.what() << "\n" << "run `automm --help` or `automm COMMAND --help` for usage\n";
    return e.get_exit_code() == 0 ? 0 : 2;
  }
  try {
    if (fit_cmd->parsed()) return run_fit(fit, std::vector<std::string>(argv + 1, argv + argc));
    if (predict_cmd->parsed()) return run_predict(predict);
    if (evaluate_cmd->parsed()) return run_evaluate(path, data, metrics, json);
    if (info_cmd->parsed()) return run_info(path, json);
    if (export_cmd->parsed()) return run_export(path, data, out, export_options);
    if (serve_cmd->parsed()) return run_serve(path, serve, token_file, max_body_mb);
    if (search_cmd->parsed()) return run_search(path, queries, corpus, top_k, out);
    if (tokenize_cmd->parsed()) return run_tokenize(checkpoint, input, max_len, tokenizer);
    std::cout << automm::hyperparameters_markdown();
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
