// PEFT benchmark (optim.peft), two parts:
//
//   step      a BERT-base shaped encoder (12 x 768, random weights) with a 2-class
//             head: one training step (forward, cross-entropy, backward, AdamW)
//             at batch 8 x 128 tokens, full fine-tuning against lora (r 8 on query
//             and value) and ia3, fp32 and bf16-mixed. Each configuration runs in a
//             fresh child process of this executable, so its peak RSS (VmHWM) is
//             its own; the time is the median of --iters steps after one warm-up.
//             Also: the size of a top-k checkpoint (the trainable tensors).
//   quality   a text task learned through the predictor from an encoder first
//             trained on a related task and saved as a Hugging Face folder
//             (config.json, vocab.txt, model.safetensors): full fine-tuning, lora,
//             ia3 and bit_fit side by side, accuracy and trainable fraction.
//
//   automm_bench_peft [--part step|quality|all] [--iters N] [--out FILE.json]
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "automm/predictor.h"
#include "automm/weights_io.h"
#include "bench_common.h"
#include "learners/checkpoints.h"
#include "learners/placement.h"
#include "models/peft.h"
#include "models/text/text_encoder.h"
#include "optim/optim.h"

using automm_bench::median_time;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr int64_t kBatch = 8, kSeq = 128;

json run_step_child(const std::string& method, const std::string& precision, int iters) {
  torch::manual_seed(0);
  const json config = {{"model_type", "bert"},          {"vocab_size", 30522},      {"hidden_size", 768},
                       {"num_hidden_layers", 12},       {"num_attention_heads", 12}, {"intermediate_size", 3072},
                       {"max_position_embeddings", 512}, {"type_vocab_size", 2}};
  auto encoder = automm::make_text_encoder(config);
  auto holder = std::make_shared<torch::nn::Module>();
  holder->register_module("encoder", encoder);
  torch::nn::Linear head(768, 2);
  holder->register_module("head", head);
  if (method != "full") {
    automm::PeftOptions options;
    options.method = automm::peft_method(method);
    options.filter = {"query", "value"};
    automm::add_adapters(*holder, options, {"encoder"});
    automm::freeze_for_peft(*holder, options.method,
                            [](const std::string& name) { return name.rfind("head.", 0) == 0; });
  }
  int64_t trainable = 0, total = 0;
  std::vector<std::pair<std::string, torch::Tensor>> named;
  for (const auto& item : holder->named_parameters()) {
    total += item.value().numel();
    if (item.value().requires_grad()) trainable += item.value().numel();
    named.emplace_back(item.key(), item.value());
  }
  automm::Config optim_config;
  const auto groups = automm::make_parameter_groups(named, optim_config);
  auto optimizer = automm::make_optimizer(groups, optim_config);
  automm::Placement placement;
  placement.autocast = precision == "bf16";
  placement.autocast_dtype = torch::kBFloat16;
  holder->train();
  const auto ids = torch::randint(1000, 30000, {kBatch, kSeq}, torch::kInt64);
  const auto labels = torch::randint(0, 2, {kBatch}, torch::kInt64);
  const auto step = [&] {
    automm::clear_gradients(*optimizer);
    torch::Tensor logits;
    {
      automm::AutocastScope autocast(placement);
      logits = head->forward(encoder->forward(ids, {}, {}).select(1, 0));
    }
    torch::nn::functional::cross_entropy(logits.to(torch::kFloat32), labels).backward();
    optimizer->step();
  };
  const double seconds = median_time(1, iters, step);
  int64_t checkpoint_bytes = 0;
  for (const auto& t : automm::snapshot(*holder))
    if (t.defined()) checkpoint_bytes += t.numel() * t.element_size();
  return {{"method", method},
          {"precision", precision},
          {"ms", seconds * 1e3},
          {"peak_rss_mib", automm_bench::peak_rss_mib()},
          {"trainable_params", trainable},
          {"total_params", total},
          {"topk_checkpoint_mib", checkpoint_bytes / 1048576.0}};
}

json run_json_command(const std::string& command) {
  FILE* pipe = popen(command.c_str(), "r");
  std::string text, last;
  char buffer[4096];
  while (fgets(buffer, sizeof buffer, pipe)) text += buffer;
  pclose(pipe);
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);)
    if (!line.empty() && line[0] == '{') last = line;
  return last.empty() ? json{{"error", text}} : json::parse(last);
}

// ---- quality ----

// Sentences of 12 words from a 120-word vocabulary; words 0-19 are positive,
// 20-39 negative, the rest neutral. Task A (binary): more positive than
// negative words. Task B (3 classes, the related task): the difference is
// <= -2, in (-2, 2), >= 2.
automm::Table sentiment_table(size_t rows, uint64_t seed, bool three_classes) {
  std::mt19937_64 rng(seed);
  automm::Column text("review"), label("label");
  for (size_t r = 0; r < rows; ++r) {
    std::string sentence;
    int score = 0;
    for (int w = 0; w < 12; ++w) {
      const int word = static_cast<int>(rng() % 120);
      if (word < 20) ++score;
      else if (word < 40) --score;
      sentence += (w ? " " : "") + std::string("w") + std::to_string(word);
    }
    if (!three_classes && score == 0) score = rng() % 2 ? 1 : -1;
    text.push(sentence, true);
    label.push(three_classes ? (score <= -2 ? "neg" : score >= 2 ? "pos" : "mixed") : (score > 0 ? "pos" : "neg"),
               true);
  }
  automm::Table table;
  table.add_column(std::move(text));
  table.add_column(std::move(label));
  table.source = "generated";
  return table;
}

// The text encoder of a fitted predictor as a Hugging Face BERT folder.
void export_hf_folder(const std::string& predictor, const std::string& out) {
  fs::create_directories(out);
  // The scratch model's config.json, without the mark that says "random weights".
  json config = json::parse(std::ifstream(predictor + "/hf_text/config.json"));
  config.erase("automm_scratch");
  std::ofstream(out + "/config.json") << config.dump(2);
  fs::copy_file(predictor + "/hf_text/vocab.txt", out + "/vocab.txt", fs::copy_options::overwrite_existing);
  automm::StateDict weights;
  const std::string encoder = "hf_text.model.";  // HfText registers its encoder as "model"
  for (const auto& [name, tensor] : automm::load_safetensors(predictor + "/model.safetensors"))
    if (name.rfind(encoder, 0) == 0) weights["bert." + name.substr(encoder.size())] = tensor;
  if (weights.empty()) throw std::runtime_error(predictor + "/model.safetensors holds no hf_text encoder weights");
  automm::save_safetensors(weights, out + "/model.safetensors");
}

json run_quality(const std::string& work) {
  fs::remove_all(work);
  fs::create_directories(work);
  const json base = {{"model.names", json::array({"hf_text"})},
                     {"env.precision", "bf16-mixed"},
                     {"optim.max_epochs", 8},
                     {"env.per_gpu_batch_size", 32},
                     {"env.batch_size", 32}};
  // 1. The related task, from scratch: the encoder that the others start from.
  automm::PredictorOptions a;
  a.label = "label";
  a.path = work + "/task_a";
  a.verbose = false;
  a.hyperparameters = base;
  a.hyperparameters.update({{"model.hf_text.checkpoint_name", "scratch:bert-mini"},
                            {"optim.lr", 1e-3},
                            {"optim.max_epochs", 10}});
  automm::MultiModalPredictor pretrain(a);
  pretrain.fit(sentiment_table(4000, 1, false));
  const double a_accuracy = pretrain.evaluate(sentiment_table(1000, 2, false), {"accuracy"}).at("accuracy");
  export_hf_folder(a.path, work + "/hf_encoder");
  std::printf("task A (binary, from scratch): test accuracy %.3f; encoder saved as %s\n", a_accuracy,
              (work + "/hf_encoder").c_str());

  // 2. Task B from that folder: full fine-tuning and the PEFT methods.
  const automm::Table train = sentiment_table(600, 3, true), test = sentiment_table(2000, 4, true);
  json rows = json::array();
  for (const auto& [method, lr] : std::vector<std::pair<std::string, double>>{
           {"full", 1e-4}, {"lora", 1e-3}, {"ia3", 1e-3}, {"bit_fit", 1e-3}}) {
    automm::PredictorOptions b;
    b.label = "label";
    b.path = work + "/task_b_" + method;
    b.verbose = false;
    b.hyperparameters = base;
    b.hyperparameters.update({{"model.hf_text.checkpoint_name", work + "/hf_encoder"}, {"optim.lr", lr}});
    if (method != "full") b.hyperparameters["optim.peft"] = method;
    automm::MultiModalPredictor predictor(b);
    predictor.fit(train);
    const json summary = predictor.fit_summary();
    const double accuracy = predictor.evaluate(test, {"accuracy"}).at("accuracy");
    const double fraction = summary.at("trainable_params").get<double>() / summary.at("total_params").get<double>();
    std::printf("task B %-8s lr %-6g accuracy %.3f  trainable %lld of %lld (%.2f%%)  fit %.0f s\n", method.c_str(),
                lr, accuracy, static_cast<long long>(summary.at("trainable_params").get<int64_t>()),
                static_cast<long long>(summary.at("total_params").get<int64_t>()), 100 * fraction,
                summary.at("training_seconds").get<double>());
    std::fflush(stdout);
    rows.push_back({{"method", method},
                    {"lr", lr},
                    {"accuracy", accuracy},
                    {"trainable_fraction", fraction},
                    {"training_seconds", summary.at("training_seconds")}});
  }
  return {{"task_a_accuracy", a_accuracy}, {"task_b", rows}};
}

}  // namespace

int main(int argc, char** argv) {
  std::string part = "all", out, child_method, child_precision;
  int iters = 3;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (arg == "--part") part = next();
    else if (arg == "--iters") iters = std::stoi(next());
    else if (arg == "--out") out = next();
    else if (arg == "--child") {
      child_method = next();
      child_precision = next();
    }
  }
  const int threads = static_cast<int>(std::thread::hardware_concurrency());
  torch::set_num_threads(threads);
  if (!child_method.empty()) {
    std::printf("%s\n", run_step_child(child_method, child_precision, iters).dump().c_str());
    return 0;
  }
  json result = {{"threads", threads}};
  if (part == "step" || part == "all") {
    std::printf("BERT-base train step, batch %lld x %lld tokens, %d threads (median of %d)\n",
                static_cast<long long>(kBatch), static_cast<long long>(kSeq), threads, iters);
    std::printf("%-8s %-6s %10s %14s %12s %16s\n", "method", "prec", "ms/step", "peak RSS MiB", "trainable",
                "top-k ckpt MiB");
    json rows = json::array();
    for (const std::string precision : {"fp32", "bf16"}) {
      json full;
      for (const std::string method : {"full", "lora", "ia3"}) {
        json r = run_json_command(std::string(argv[0]) + " --child " + method + " " + precision + " --iters " +
                                  std::to_string(iters));
        if (r.contains("error")) {
          std::printf("%s %s failed: %s\n", method.c_str(), precision.c_str(), r["error"].dump().c_str());
          continue;
        }
        if (method == "full") full = r;
        std::printf("%-8s %-6s %10.0f %14.0f %12lld %16.1f", method.c_str(), precision.c_str(), r["ms"].get<double>(),
                    r["peak_rss_mib"].get<double>(), static_cast<long long>(r["trainable_params"].get<int64_t>()),
                    r["topk_checkpoint_mib"].get<double>());
        if (method != "full" && !full.is_null()) {
          r["time_vs_full"] = r["ms"].get<double>() / full["ms"].get<double>();
          r["peak_rss_vs_full"] = r["peak_rss_mib"].get<double>() / full["peak_rss_mib"].get<double>();
          std::printf("   time %.2fx, peak RSS %.2fx of full", r["time_vs_full"].get<double>(),
                      r["peak_rss_vs_full"].get<double>());
        }
        std::printf("\n");
        std::fflush(stdout);
        rows.push_back(r);
      }
    }
    result["step"] = rows;
  }
  if (part == "quality" || part == "all") result["quality"] = run_quality((fs::temp_directory_path() / "automm_bench_peft").string());
  if (!out.empty()) std::ofstream(out) << result.dump(2) << "\n";
  return 0;
}
