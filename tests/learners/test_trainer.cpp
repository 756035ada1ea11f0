// The training loop's keys, each checked through train() itself.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <thread>

#include <ATen/autocast_mode.h>

#include "learners/batch_loader.h"
#include "learners/trainer.h"
#include "automm/metrics.h"
#include "learners/checkpoints.h"

namespace automm {
namespace {

// A small deterministic problem: 2 numerical + 2 categorical columns.
Dataset make_data(int64_t rows, uint64_t seed) {
  torch::manual_seed(seed);
  const torch::Tensor numerical = torch::randn({rows, 2});
  const torch::Tensor categorical = torch::randint(0, 3, {rows, 2}, torch::kInt64);
  Dataset data;
  data.rows = rows;
  data.inputs = {std::make_shared<TabularInputs>(TabularInputs::Kind::kNumerical, numerical),
                 std::make_shared<TabularInputs>(TabularInputs::Kind::kCategorical, categorical)};
  data.targets.dense["label"] =
      ((numerical.select(1, 0) + categorical.select(1, 0).to(torch::kFloat32) - 1) > 0).to(torch::kInt64);
  return data;
}

// The binary task's loss, as the default learner passes it.
LossFunction cross_entropy() {
  return [](const torch::Tensor& outputs, const Targets& targets) {
    return torch::nn::functional::cross_entropy(outputs, targets.at("label"));
  };
}

ModelContext context() {
  ModelContext c;
  c.num_numerical = 2;
  c.categorical_cardinalities = {3, 3};
  c.num_outputs = 2;
  return c;
}

// No dropout, no warmup, no clipping, plain SGD: one step's update is -lr * grad.
Config plain_config() {
  Config config;
  for (const char* key : {"model.categorical_mlp.drop_rate", "model.numerical_mlp.drop_rate", "model.fusion_mlp.drop_rate"})
    config.set(key, 0.0);
  config.set("optim.warmup_steps", 0);
  config.set("optim.gradient_clip_val", 0.0);
  config.set("optim.optim_type", "sgd");
  config.set("optim.weight_decay", 0.0);
  config.set("optim.lr", 0.1);
  config.set("optim.val_check_interval", 1.0);
  config.set("env.precision", "32");
  config.set("env.num_workers", 0);
  config.set("env.num_workers_inference", 0);
  config.set("optim.top_k_average_method", "best");
  return config;
}

ValidationScorer accuracy_on(const Dataset& val) {
  const torch::Tensor labels = val.targets.at("label");
  return {find_metric("accuracy"), [labels](const torch::Tensor& logits) {
            return (logits.argmax(1) == labels).to(torch::kFloat64).mean().item<double>();
          }};
}

TrainOptions quiet(uint64_t seed = 0) {
  TrainOptions options;
  options.verbose = false;
  options.seed = seed;
  return options;
}

Weights train_and_snapshot(const Config& config, const Dataset& train_data, const Dataset& val,
                           TrainResult* result = nullptr, const ValidationScorer* scorer = nullptr) {
  torch::manual_seed(7);
  MultiModalNet net(std::vector<std::string>{"categorical_mlp", "numerical_mlp", "fusion_mlp"}, context(), config);
  TrainResult r = train(net, train_data, val, cross_entropy(), config, scorer ? *scorer : accuracy_on(val), quiet());
  if (result) *result = r;
  return snapshot(*net);
}

double max_difference(const Weights& a, const Weights& b) {
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].is_floating_point()) worst = std::max(worst, (a[i] - b[i]).abs().max().item<double>());
  return worst;
}

TEST(TrainerAccumulation, AccumulatedGradientsEqualTheBigBatchGradient) {
  const Dataset data = make_data(16, 1), val = make_data(8, 2);
  Config big = plain_config();
  big.set("env.per_gpu_batch_size", 16);
  big.set("env.batch_size", 16);
  big.set("optim.max_epochs", 1);
  Config accumulated = big;
  accumulated.set("env.per_gpu_batch_size", 4);  // 4 micro-batches per step
  TrainResult a, b;
  const Weights once = train_and_snapshot(big, data, val, &a);
  const Weights in_parts = train_and_snapshot(accumulated, data, val, &b);
  EXPECT_EQ(a.steps, 1);
  EXPECT_EQ(b.steps, 1);
  EXPECT_LT(max_difference(once, in_parts), 1e-6);
  // And without accumulation (batch_size = per_gpu_batch_size) four steps differ.
  Config unaccumulated = accumulated;
  unaccumulated.set("env.batch_size", 4);
  TrainResult c;
  const Weights stepwise = train_and_snapshot(unaccumulated, data, val, &c);
  EXPECT_EQ(c.steps, 4);
  EXPECT_GT(max_difference(once, stepwise), 1e-4);
}

TEST(TrainerClipping, ValueAndNormBoundTheFirstUpdate) {
  const Dataset data = make_data(16, 3), val = make_data(8, 4);
  Config config = plain_config();
  config.set("env.per_gpu_batch_size", 16);
  config.set("env.batch_size", 16);
  config.set("optim.max_epochs", 1);
  config.set("optim.lr", 1.0);
  torch::manual_seed(7);
  MultiModalNet probe(std::vector<std::string>{"categorical_mlp", "numerical_mlp", "fusion_mlp"}, context(), config);
  const Weights before = snapshot(*probe);
  const Weights unclipped = train_and_snapshot(config, data, val);

  config.set("optim.gradient_clip_algorithm", "value");
  config.set("optim.gradient_clip_val", 1e-3);
  const Weights by_value = train_and_snapshot(config, data, val);
  // First SGD step: update = -lr * clipped grad, so each entry moves at most 1e-3.
  double largest = 0;
  for (size_t i = 0; i < before.size(); ++i)
    if (before[i].is_floating_point()) largest = std::max(largest, (by_value[i] - before[i]).abs().max().item<double>());
  EXPECT_LE(largest, 1e-3 + 1e-7);
  EXPECT_GT(max_difference(unclipped, before), 2e-3);

  config.set("optim.gradient_clip_algorithm", "norm");
  config.set("optim.gradient_clip_val", 1e-2);
  const Weights by_norm = train_and_snapshot(config, data, val);
  double squared = 0;
  for (size_t i = 0; i < before.size(); ++i)
    if (before[i].is_floating_point()) squared += (by_norm[i] - before[i]).pow(2).sum().item<double>();
  EXPECT_NEAR(std::sqrt(squared), 1e-2, 1e-5);  // the whole update has norm exactly clip_val
}

TEST(TrainerValidation, IntervalAndEveryNEpochsControlTheChecks) {
  const Dataset data = make_data(64, 5), val = make_data(16, 6);
  Config config = plain_config();
  config.set("env.per_gpu_batch_size", 8);  // 8 batches per epoch
  config.set("env.batch_size", 8);
  config.set("optim.max_epochs", 4);
  config.set("optim.patience", 100);
  // A score that never improves and never reaches the optimum: no early stop.
  const ValidationScorer constant{find_metric("log_loss"), [](const torch::Tensor&) { return 0.5; }};
  auto checks = [&](const Config& c) {
    TrainResult result;
    train_and_snapshot(c, data, val, &result, &constant);
    std::vector<int64_t> steps;
    for (const LogRow& row : result.log)
      if (!std::isnan(row.validation_score)) steps.push_back(row.step);
    return steps;
  };
  config.set("optim.val_check_interval", 2);  // every 2 batches
  EXPECT_EQ(checks(config).size(), 16u);
  config.set("optim.val_check_interval", 0.5);  // twice an epoch
  EXPECT_EQ(checks(config), (std::vector<int64_t>{4, 8, 12, 16, 20, 24, 28, 32}));
  config.set("optim.check_val_every_n_epoch", 2);  // epochs 2 and 4 only
  EXPECT_EQ(checks(config), (std::vector<int64_t>{12, 16, 28, 32}));
}

TEST(TrainerLogging, TrackGradNormAndLogEveryNSteps) {
  const Dataset data = make_data(64, 7), val = make_data(16, 8);
  Config config = plain_config();
  config.set("env.per_gpu_batch_size", 8);
  config.set("env.batch_size", 8);
  config.set("optim.max_epochs", 1);
  config.set("optim.log_every_n_steps", 3);
  TrainResult result;
  train_and_snapshot(config, data, val, &result);
  std::vector<int64_t> logged;
  for (const LogRow& row : result.log) {
    if (!std::isnan(row.validation_score)) continue;
    logged.push_back(row.step);
    EXPECT_LT(row.grad_norm, 0) << "track_grad_norm is off by default";
  }
  EXPECT_EQ(logged, (std::vector<int64_t>{3, 6}));
  config.set("optim.track_grad_norm", "inf");
  train_and_snapshot(config, data, val, &result);
  for (const LogRow& row : result.log) {
    if (std::isnan(row.validation_score)) {
      EXPECT_GT(row.grad_norm, 0);
    }
  }
}

TEST(TrainerWorkers, ResultsDoNotDependOnTheNumberOfWorkers) {
  const Dataset data = make_data(64, 9), val = make_data(16, 10);
  Config config = plain_config();
  config.set("optim.max_epochs", 2);
  config.set("optim.optim_type", "adamw");
  const Weights inline_loading = train_and_snapshot(config, data, val);
  config.set("env.num_workers", 3);
  config.set("env.num_workers_inference", 2);
  EXPECT_EQ(max_difference(inline_loading, train_and_snapshot(config, data, val)), 0.0);
}

TEST(TrainerPrecision, EachPrecisionUsesItsDtypes) {
  const Dataset data = make_data(32, 11), val = make_data(16, 12);
  struct Case {
    std::string precision;
    torch::Dtype parameters, logits;
  };
  for (const Case& c : {Case{"64", torch::kFloat64, torch::kFloat64}, Case{"32", torch::kFloat32, torch::kFloat32},
                        Case{"bf16-mixed", torch::kFloat32, torch::kBFloat16},
                        Case{"16-mixed", torch::kFloat32, torch::kBFloat16},
                        Case{"bf16-true", torch::kBFloat16, torch::kBFloat16},
                        Case{"16-true", torch::kBFloat16, torch::kBFloat16}}) {
    SCOPED_TRACE(c.precision);
    Config config = plain_config();
    config.set("env.precision", c.precision);
    config.set("optim.max_epochs", 1);
    const Placement placement = resolve_placement(config);
    EXPECT_EQ(placement.note.empty(), c.precision.rfind("16", 0) != 0);  // 16-* says how it was mapped
    MultiModalNet net(std::vector<std::string>{"categorical_mlp", "numerical_mlp", "fusion_mlp"}, context(), config);
    train(net, data, val, cross_entropy(), config, accuracy_on(val), quiet());
    EXPECT_EQ(net->parameters().front().scalar_type(), c.parameters);
    auto rows = torch::arange(0, 4, torch::kInt64);
    const NetOutput out = run_forward(net, make_batch(data, rows, placement.batch()), placement);
    EXPECT_EQ(out.logits.scalar_type(), c.logits);
    EXPECT_FALSE(at::autocast::is_cpu_enabled()) << "autocast ends with the forward pass";
  }
}

TEST(TrainerPrecision, UnsupportedCombinationsAreRejected) {
  Config config;
  config.set("env.accelerator", "gpu");
  if (!torch::cuda::is_available()) {
    EXPECT_THROW(resolve_placement(config), std::invalid_argument);
  }
}

TEST(TrainerDeterminism, DeterministicKeyTurnsOnDeterministicAlgorithmsForTheFit) {
  const Dataset data = make_data(32, 13), val = make_data(16, 14);
  Config config = plain_config();
  config.set("optim.max_epochs", 1);
  at::globalContext().setDeterministicAlgorithms(false, false);
  bool on_during_fit = true;
  const ValidationScorer probe{find_metric("accuracy"), [&](const torch::Tensor& logits) {
                                 on_during_fit = at::globalContext().deterministicAlgorithms();
                                 return accuracy_on(val).score(logits);
                               }};
  const Weights first = train_and_snapshot(config, data, val, nullptr, &probe);
  EXPECT_FALSE(on_during_fit);
  config.set("env.deterministic", true);
  EXPECT_EQ(max_difference(first, train_and_snapshot(config, data, val, nullptr, &probe)), 0.0);
  EXPECT_TRUE(on_during_fit);
  // A process-wide setting: the fit puts the previous value back.
  EXPECT_FALSE(at::globalContext().deterministicAlgorithms());
}

TEST(TrainerStopping, ReachingTheMetricsOptimumStops) {
  const Dataset data = make_data(64, 15), val = make_data(16, 16);
  Config config = plain_config();
  config.set("env.per_gpu_batch_size", 8);
  config.set("env.batch_size", 8);
  config.set("optim.max_epochs", 5);
  const ValidationScorer perfect{find_metric("accuracy"), [](const torch::Tensor&) { return 1.0; }};
  TrainResult result;
  train_and_snapshot(config, data, val, &result, &perfect);
  EXPECT_EQ(result.stop_reason, "validation accuracy reached its optimum");
  EXPECT_EQ(result.steps, 8);  // the first check, at the end of epoch 1 (val_check_interval 1.0)
  config.set("optim.min_steps", 20);  // early stopping waits
  train_and_snapshot(config, data, val, &result, &perfect);
  EXPECT_EQ(result.stop_reason, "validation accuracy reached its optimum");
  EXPECT_EQ(result.steps, 24);  // the first check at or after step 20: the end of epoch 3
}

TEST(TrainerBatches, InferenceBatchIsPerDeviceBatchTimesRatio) {
  Config config;
  EXPECT_EQ(inference_batch_size(config), 8 * 4);
  config.set("env.per_gpu_batch_size", 5);
  config.set("env.eval_batch_size_ratio", 3);  // the tutorial's alias
  EXPECT_EQ(inference_batch_size(config), 15);
}

TEST(TrainerDevices, OneProcessUsesOneDevice) {
  Config config;
  config.set("env.num_gpus", 2);  // several devices are several processes (distributed_env): a placement is one
  EXPECT_TRUE(resolve_placement(config).device.is_cpu());
  EXPECT_THROW(distributed_env(config), std::invalid_argument);  // ddp_spawn from the library
  config.set("env.num_gpus", 0);  // CPU
  EXPECT_TRUE(resolve_placement(config).device.is_cpu());
}

TEST(TrainerSampler, RanksShareEachEpochWithoutOverlap) {
  const torch::Tensor all = epoch_rows(10, 3, 2);
  EXPECT_TRUE(torch::equal(std::get<0>(all.sort()), torch::arange(10)));  // a permutation
  EXPECT_TRUE(torch::equal(all, epoch_rows(10, 3, 2)));                   // replayable
  EXPECT_FALSE(torch::equal(all, epoch_rows(10, 3, 3)));                  // reshuffled each epoch
  const torch::Tensor first = epoch_rows(10, 3, 2, 0, 3), second = epoch_rows(10, 3, 2, 1, 3),
                      third = epoch_rows(10, 3, 2, 2, 3);
  EXPECT_EQ(first.size(0) + second.size(0) + third.size(0), 10);
  EXPECT_TRUE(torch::equal(std::get<0>(torch::cat({first, second, third}).sort()), torch::arange(10)));
  EXPECT_THROW(epoch_rows(10, 3, 2, 3, 3), std::invalid_argument);
}

TEST(BatchLoader, ReturnsBatchesInOrderForAnyWorkerCount) {
  for (int workers : {0, 1, 3}) {
    BatchLoader<int64_t> loader(2, 20, workers, [](int64_t i) { return i * i; });
    std::vector<int64_t> got;
    while (auto v = loader.next()) got.push_back(*v);
    ASSERT_EQ(got.size(), 18u) << workers;
    for (size_t k = 0; k < got.size(); ++k) EXPECT_EQ(got[k], static_cast<int64_t>((k + 2) * (k + 2)));
  }
}

TEST(BatchLoader, WorkersBuildBatchesConcurrentlyOffTheCallingThread) {
  // Two batches must be in flight at once for either to finish: a loader that
  // built them one at a time would never pass this barrier.
  std::atomic<int> arrived{0};
  std::atomic<bool> on_caller{false};
  const auto caller = std::this_thread::get_id();
  BatchLoader<int> loader(0, 2, 2, [&](int64_t i) {
    on_caller = on_caller || std::this_thread::get_id() == caller;
    ++arrived;
    for (int spin = 0; spin < 2000000 && arrived < 2; ++spin) std::this_thread::yield();
    return arrived.load() >= 2 ? static_cast<int>(i) : -1;
  });
  EXPECT_EQ(*loader.next(), 0);
  EXPECT_EQ(*loader.next(), 1);
  EXPECT_FALSE(on_caller);
}

TEST(BatchLoader, AWorkersErrorReachesTheCaller) {
  BatchLoader<int> loader(0, 3, 2, [](int64_t i) {
    if (i == 1) throw std::runtime_error("bad batch 1");
    return static_cast<int>(i);
  });
  EXPECT_EQ(*loader.next(), 0);
  EXPECT_THROW(loader.next(), std::runtime_error);
}

}  // namespace
}  // namespace automm
