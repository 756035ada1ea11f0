// The automm command line: fit, predict, evaluate, info, hyperparameters.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "automm/config.h"
#include "automm/metrics.h"
#include "automm/predictor.h"
#include "automm/table.h"
#include "automm/text.h"

namespace {

const char* kUsage = R"(usage:
  automm fit --train FILE --label COL --path DIR [--tuning FILE] [--presets P]
             [--problem-type T] [--eval-metric M] [--hp key=value ...] [--config FILE]
             [--time-limit SECONDS] [--seed N] [--holdout-frac F]
             [--column-type COL=TYPE ...] [--no-pretrained] [--quiet]
  automm fit --resume --path DIR --train FILE [--tuning FILE] [--time-limit SECONDS]
  automm predict --path DIR --data FILE --out FILE [--proba]
  automm evaluate --path DIR --data FILE [--metrics m1,m2] [--json]
  automm info --path DIR
  automm hyperparameters
  automm tokenize --checkpoint DIR_OR_ID --input FILE [--max-len N] [--tokenizer hf_auto|bert|electra]
    prints, per input line, a JSON array of the token ids the text model would see
Tables are CSV, TSV or JSON Lines (by extension).)";

// Parsed "--flag value" arguments; repeatable flags keep every value.
class Args {
 public:
  Args(int argc, char** argv, int first, const std::vector<std::string>& switches) {
    for (int i = first; i < argc; ++i) {
      std::string flag = argv[i];
      if (flag.rfind("--", 0) != 0) throw std::invalid_argument("unexpected argument '" + flag + "'");
      const size_t eq = flag.find('=');
      if (eq != std::string::npos && flag.rfind("--hp", 0) != 0 && flag.rfind("--column-type", 0) != 0) {
        values_[flag.substr(0, eq)].push_back(flag.substr(eq + 1));
        continue;
      }
      if (std::find(switches.begin(), switches.end(), flag) != switches.end()) {
        values_[flag].push_back("true");
        continue;
      }
      if (i + 1 >= argc) throw std::invalid_argument("option " + flag + " needs a value");
      values_[flag].push_back(argv[++i]);
    }
  }
  bool has(const std::string& flag) const { return values_.count(flag) > 0; }
  std::string get(const std::string& flag, const std::string& fallback = "") const {
    const auto it = values_.find(flag);
    return it == values_.end() ? fallback : it->second.back();
  }
  std::string require(const std::string& flag) const {
    if (!has(flag)) throw std::invalid_argument("missing required option " + flag);
    return get(flag);
  }
  std::vector<std::string> all(const std::string& flag) const {
    const auto it = values_.find(flag);
    return it == values_.end() ? std::vector<std::string>{} : it->second;
  }
  void allow_only(const std::vector<std::string>& known) const {
    for (const auto& [flag, values] : values_)
      if (std::find(known.begin(), known.end(), flag) == known.end())
        throw std::invalid_argument("unknown option " + flag + "\n" + kUsage);
  }

 private:
  std::map<std::string, std::vector<std::string>> values_;
};

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> items;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ','))
    if (!item.empty()) items.push_back(item);
  return items;
}

void print_summary(const automm::MultiModalPredictor& predictor);

// The data of a fit: --train, --tuning and --time-limit.
struct FitInputs {
  automm::Table train, tuning;
  automm::FitOptions options;
};

std::unique_ptr<FitInputs> read_fit_inputs(const Args& args) {
  auto inputs = std::make_unique<FitInputs>();  // on the heap: options points at tuning
  inputs->train = automm::read_table(args.require("--train"));
  if (args.has("--tuning")) {
    inputs->tuning = automm::read_table(args.get("--tuning"));
    inputs->options.tuning_data = &inputs->tuning;
  }
  inputs->options.time_limit = std::stod(args.get("--time-limit", "0"));
  return inputs;
}

// Continues a killed fit from its last checkpoint, with the saved configuration.
int run_resume(const Args& args) {
  args.allow_only({"--resume", "--path", "--train", "--tuning", "--time-limit", "--quiet"});
  auto predictor = automm::MultiModalPredictor::load(args.require("--path"), /*resume=*/true);
  const auto inputs = read_fit_inputs(args);
  predictor.fit(inputs->train, inputs->options);
  print_summary(predictor);
  return 0;
}

int run_fit(const Args& args) {
  if (args.has("--resume")) return run_resume(args);
  args.allow_only({"--train", "--label", "--path", "--tuning", "--presets", "--problem-type", "--eval-metric",
                   "--hp", "--config", "--time-limit", "--seed", "--holdout-frac", "--column-type", "--quiet",
                   "--no-pretrained"});
  automm::Config config;  // parsed here first so that bad keys fail before reading data
  if (args.has("--config")) config.merge_yaml_file(args.get("--config"));
  for (const std::string& hp : args.all("--hp")) config.set_assignment(hp);
  automm::Json hyperparameters = automm::Json::object();
  for (const std::string& key : config.user_keys()) hyperparameters[key] = config.get(key);

  automm::PredictorOptions options;
  options.label = args.require("--label");
  options.path = args.require("--path");
  options.presets = args.get("--presets");
  options.problem_type = args.get("--problem-type");
  options.eval_metric = args.get("--eval-metric");
  options.hyperparameters = hyperparameters;
  options.verbose = !args.has("--quiet");
  options.pretrained = !args.has("--no-pretrained");
  automm::MultiModalPredictor predictor(options);

  const auto inputs = read_fit_inputs(args);
  automm::FitOptions& fit = inputs->options;
  fit.seed = std::stoull(args.get("--seed", "0"));
  fit.holdout_frac = std::stod(args.get("--holdout-frac", "0"));
  for (const std::string& assignment : args.all("--column-type")) {
    const size_t eq = assignment.find('=');
    if (eq == std::string::npos) throw std::invalid_argument("--column-type expects COL=TYPE, got '" + assignment + "'");
    fit.column_types[assignment.substr(0, eq)] = assignment.substr(eq + 1);
  }
  predictor.fit(inputs->train, fit);
  print_summary(predictor);
  return 0;
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

int run_predict(const Args& args) {
  args.allow_only({"--path", "--data", "--out", "--proba"});
  const auto predictor = automm::MultiModalPredictor::load(args.require("--path"));
  const automm::Table data = automm::read_table(args.require("--data"));
  automm::Table out;
  if (args.has("--proba")) {
    const torch::Tensor proba = predictor.predict_proba(data).contiguous();
    const auto classes = predictor.classes();
    for (size_t c = 0; c < classes.size(); ++c) {
      automm::Column column;
      column.name = classes[c];
      for (int64_t r = 0; r < proba.size(0); ++r) {
        char text[32];
        std::snprintf(text, sizeof(text), "%.9g", proba[r][static_cast<int64_t>(c)].item<double>());
        column.push(text, true);
      }
      out.add_column(std::move(column));
    }
  } else {
    out.add_column(predictor.predict(data));
  }
  automm::write_csv(out, args.require("--out"));
  std::cerr << "wrote " << out.num_rows() << " predictions to " << args.get("--out") << "\n";
  return 0;
}

int run_evaluate(const Args& args) {
  args.allow_only({"--path", "--data", "--metrics", "--json"});
  const auto predictor = automm::MultiModalPredictor::load(args.require("--path"));
  const automm::Table data = automm::read_table(args.require("--data"));
  const auto scores = predictor.evaluate(data, split_commas(args.get("--metrics")));
  if (args.has("--json")) {
    automm::Json j = automm::Json::object();
    for (const auto& [name, value] : scores) j[name] = value;
    std::cout << j.dump() << "\n";
  } else {
    for (const auto& [name, value] : scores) std::cout << name << ": " << value << "\n";
  }
  return 0;
}

int run_info(const Args& args) {
  args.allow_only({"--path"});
  const auto predictor = automm::MultiModalPredictor::load(args.require("--path"));
  std::cout << "label:        " << predictor.label() << "\n"
            << "problem type: " << automm::to_string(predictor.problem_type()) << "\n"
            << "eval metric:  " << predictor.eval_metric() << "\n";
  if (automm::is_classification(predictor.problem_type())) {
    std::cout << "classes:      ";
    for (const auto& c : predictor.classes()) std::cout << c << " ";
    std::cout << "\n";
  }
  std::cout << "columns:\n";
  for (const auto& [name, type] : predictor.column_types()) std::cout << "  " << name << ": " << type << "\n";
  std::cout << "fit summary:  " << predictor.fit_summary().dump(2) << "\n";
  return 0;
}

int run_tokenize(const Args& args) {
  args.allow_only({"--checkpoint", "--input", "--max-len", "--tokenizer"});
  const std::string path = args.require("--input");
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
  }
  const auto ids = automm::model_token_ids(args.require("--checkpoint"), lines,
                                           std::stoll(args.get("--max-len", "512")), args.get("--tokenizer", "hf_auto"));
  for (const auto& row : ids) std::cout << automm::Json(row).dump() << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::cout << kUsage << "\n";
    return argc < 2 ? 2 : 0;
  }
  const std::string command = argv[1];
  try {
    if (command == "fit") return run_fit(Args(argc, argv, 2, {"--quiet", "--resume", "--no-pretrained"}));
    if (command == "predict") return run_predict(Args(argc, argv, 2, {"--proba"}));
    if (command == "evaluate") return run_evaluate(Args(argc, argv, 2, {"--json"}));
    if (command == "info") return run_info(Args(argc, argv, 2, {}));
    if (command == "tokenize") return run_tokenize(Args(argc, argv, 2, {}));
    if (command == "hyperparameters") {
      std::cout << automm::hyperparameters_markdown();
      return 0;
    }
    std::cerr << "unknown command '" << command << "'\n" << kUsage << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
