// Training-engine benchmark: this machine's GEMM peak, the step time of one
// fixed model at each precision, and batch loading overlapped with compute.
// Every figure is printed beside its baseline from the same run.
//
//   bash bench/run.sh            (unsets OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE for itself)
//
// With --predict-dir DIR --predict-row FILE it instead loads the saved predictor
// DIR once and prints one JSON line: the median latency of predict() on the
// table in FILE (bench/tabular_peer.py compares it with eager PyTorch).
//
// With --tokenize-dir DIR --tokenize-input FILE [--iters N] it instead loads the
// tokenizer of the Hugging Face folder DIR as text models do, and prints one JSON
// line: the single-thread throughput of encoding every sentence of FILE (one JSON
// string a line) and a checksum of the ids (bench/tokenize_peer.js compares both
// with Hugging Face's tokenizers library).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "learners/batch_loader.h"
#include "learners/trainer.h"
#include "optim/losses.h"
#include "optim/optim.h"
#include "automm/predictor.h"
#include "automm/table.h"
#include "bench_common.h"
// automm_bench is not given src/ as an include path; the tokenizer is internal.
#include "data/text/text_tokenizer.h"

namespace {

using automm::Config;
using automm_bench::best_time;
using automm_bench::Clock;
using automm_bench::gemm_gflops;
using automm_bench::seconds;

automm::ModelContext bench_context() {
  automm::ModelContext context;
  context.num_numerical = 16;
  context.categorical_cardinalities = {8, 8, 16, 32};
  context.num_outputs = 2;
  return context;
}

automm::Dataset bench_data(int64_t rows) {
  using automm::TabularInputs;
  automm::Dataset data;
  data.rows = rows;
  data.inputs = {std::make_shared<TabularInputs>(TabularInputs::Kind::kNumerical, torch::randn({rows, 16})),
                 std::make_shared<TabularInputs>(TabularInputs::Kind::kCategorical,
                                                 torch::randint(0, 8, {rows, 4}, torch::kInt64))};
  data.targets.dense["label"] = torch::randint(0, 2, {rows}, torch::kInt64);
  return data;
}

// Seconds per optimizer step (forward, backward, AdamW) of an FT-Transformer.
double step_time(const std::string& precision, int64_t batch_size) {
  Config config;
  config.set("env.precision", precision);
  const automm::Placement placement = automm::resolve_placement(config);
  torch::manual_seed(0);
  automm::MultiModalNet net(std::vector<std::string>{"ft_transformer"}, bench_context(), config);
  net->to(placement.device, placement.dtype);
  net->train();
  std::vector<std::pair<std::string, torch::Tensor>> named;
  for (const auto& item : net->named_parameters()) named.emplace_back(item.key(), item.value());
  auto optimizer = automm::make_optimizer(automm::make_parameter_groups(named, config), config);
  const automm::Dataset data = bench_data(batch_size);
  const auto rows = torch::arange(batch_size, torch::kInt64);
  const automm::Batch batch = automm::make_batch(data, rows, placement.batch());
  auto step = [&] {
    auto out = automm::run_forward(net, batch, placement);
    auto loss = automm::classification_loss(out.logits.to(torch::kFloat32), batch.targets.at("label"), config);
    loss.backward();
    optimizer->step();
    automm::clear_gradients(*optimizer);
  };
  step();  // warm-up
  return best_time(3, 10, step);
}

// A batch whose preparation costs as much as a training step: loading overlaps
// with compute only when workers prepare batches ahead.
double loading_time(int workers, int batches, double prepare_seconds, double compute_seconds) {
  const auto start = Clock::now();
  automm::BatchLoader<int64_t> loader(0, batches, workers, [&](int64_t i) {
    const auto begin = Clock::now();
    volatile double sink = 0;  // stands for decoding and augmentation
    while (seconds(begin) < prepare_seconds) sink = sink + std::sqrt(static_cast<double>(i) + sink);
    return i;
  });
  while (auto batch = loader.next()) {
    const auto begin = Clock::now();
    volatile double sink = 0;  // stands for the model's step
    while (seconds(begin) < compute_seconds) sink = sink + 1.0;
  }
  return seconds(start);
}

// The value after `flag` in argv, or "" when the flag is absent.
std::string flag_value(int argc, char** argv, const std::string& flag) {
  for (int i = 1; i + 1 < argc; ++i)
    if (flag == argv[i]) return argv[i + 1];
  return "";
}

// In-process latency of one predict() call on an already-loaded predictor: the
// table is read once, so each call times preprocessing, forward and decoding.
int predict_latency(const std::string& dir, const std::string& row_file, int iters) {
  const auto load_start = Clock::now();
  const automm::MultiModalPredictor predictor = automm::MultiModalPredictor::load(dir);
  const double load_seconds = seconds(load_start);
  const automm::Table rows = automm::read_table(row_file);
  const int threads = automm::set_intra_op_threads(automm::choose_thread_count());  // AUTOMM_NUM_THREADS / OMP_NUM_THREADS, else all cores
  const double t = automm_bench::median_time(5, iters, [&] { predictor.predict(rows); });
  const nlohmann::json line = {{"predict_ms", t * 1e3}, {"load_ms", load_seconds * 1e3},
                               {"rows", rows.num_rows()}, {"iters", iters}, {"threads", threads}};
  std::printf("%s\n", line.dump().c_str());
  return 0;
}

// Encoding throughput without special tokens, on this thread only: the text
// processor tokenizes a table's rows one after another.
int tokenize_throughput(const std::string& dir, const std::string& input_file, int iters) {
  const automm::TextTokenizer tokenizer = automm::TextTokenizer::from_folder(dir);
  std::ifstream in(input_file);
  if (!in) throw std::runtime_error("--tokenize-input: cannot read " + input_file);
  std::vector<std::string> sentences;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) sentences.push_back(nlohmann::json::parse(line).get<std::string>());
  int64_t tokens = 0, checksum = 0;
  const double t = automm_bench::median_time(1, iters, [&] {
    tokens = checksum = 0;  // the sums also keep the work from being optimized away
    for (const std::string& sentence : sentences) {
      const std::vector<int64_t> ids = tokenizer.encode(sentence);
      tokens += static_cast<int64_t>(ids.size());
      for (int64_t id : ids) checksum += id;
    }
  });
  const double n = static_cast<double>(sentences.size());
  const nlohmann::json line = {{"tokenizer", tokenizer.kind()}, {"sentences", sentences.size()},
                               {"tokens", tokens}, {"checksum", checksum}, {"seconds", t},
                               {"sentences_per_s", n / t}, {"tokens_per_s", tokens / t}, {"iters", iters}};
  std::printf("%s\n", line.dump().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string tokenize_dir = flag_value(argc, argv, "--tokenize-dir");
  if (!tokenize_dir.empty()) {
    const std::string input_file = flag_value(argc, argv, "--tokenize-input");
    const std::string iters = flag_value(argc, argv, "--iters");
    if (input_file.empty()) throw std::invalid_argument("--tokenize-dir needs --tokenize-input FILE");
    return tokenize_throughput(tokenize_dir, input_file, iters.empty() ? 5 : std::stoi(iters));
  }
  const std::string predict_dir = flag_value(argc, argv, "--predict-dir");
  if (!predict_dir.empty()) {
    const std::string row_file = flag_value(argc, argv, "--predict-row");
    const std::string iters = flag_value(argc, argv, "--iters");
    if (row_file.empty()) throw std::invalid_argument("--predict-dir needs --predict-row FILE");
    return predict_latency(predict_dir, row_file, iters.empty() ? 200 : std::stoi(iters));
  }
  const std::string json_path = argc > 1 ? argv[1] : "bench_engine.json";
  const int threads = automm::set_intra_op_threads(automm::choose_thread_count());
  nlohmann::json report = {{"threads", threads}};
  std::printf("automm.cpp training-engine benchmark (%d intra-op threads)\n\n", threads);

  const double fp32_peak = gemm_gflops(torch::kFloat32, 1024);
  const double bf16_peak = gemm_gflops(torch::kBFloat16, 1024);
  report["gemm_gflops"] = {{"fp32", fp32_peak}, {"bf16", bf16_peak}};
  std::printf("GEMM 1024^3          fp32 %7.1f GFLOP/s   bf16 %7.1f GFLOP/s   (bf16/fp32 %.2fx)\n\n", fp32_peak,
              bf16_peak, bf16_peak / fp32_peak);

  const int64_t batch = 256;
  std::printf("FT-Transformer step (16 numerical + 4 categorical columns, hidden 192, 3 blocks, batch %lld)\n",
              static_cast<long long>(batch));
  const double fp32 = step_time("32", batch);
  nlohmann::json steps = nlohmann::json::object();
  for (const std::string precision : {"32", "bf16-mixed", "bf16-true", "64"}) {
    const double t = precision == "32" ? fp32 : step_time(precision, batch);
    steps[precision] = {{"ms_per_step", t * 1e3}, {"speed_vs_fp32", fp32 / t}};
    std::printf("  env.precision=%-10s %8.2f ms/step   %5.2fx fp32\n", precision.c_str(), t * 1e3, fp32 / t);
  }
  report["ft_transformer_step"] = steps;

  const int batches = 40;
  const double prepare = 0.004, compute = 0.004;
  std::printf("\nBatch loading overlapped with compute (%d batches, %.0f ms to prepare, %.0f ms to compute each)\n",
              batches, prepare * 1e3, compute * 1e3);
  const double inline_time = loading_time(0, batches, prepare, compute);
  nlohmann::json loading = nlohmann::json::object();
  for (int workers : {0, 1, 2}) {
    const double t = workers == 0 ? inline_time : loading_time(workers, batches, prepare, compute);
    loading[std::to_string(workers)] = {{"seconds", t}, {"speed_vs_inline", inline_time / t}};
    std::printf("  env.num_workers=%d   %6.3f s   %5.2fx inline\n", workers, t, inline_time / t);
  }
  report["loading_overlap"] = loading;
  std::ofstream(json_path) << report.dump(2) << "\n";
  std::printf("\nwrote %s\n", json_path.c_str());
  return 0;
}
