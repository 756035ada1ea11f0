#include "learners/training_budget.h"

#include <algorithm>
#include <cmath>

namespace automm {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Optimizer steps per epoch as the trainer counts them.
int64_t steps_per_epoch(int64_t rows, int64_t per_device, int64_t effective) {
  const int64_t batches = ceil_div(std::max<int64_t>(rows, 1), per_device);
  return ceil_div(batches, std::max<int64_t>(effective / per_device, 1));
}

// Validation checks per epoch for optim.val_check_interval (a fraction or a batch count).
double checks_per_epoch(const Json& interval, int64_t batches) {
  if (interval.is_number_integer())
    return static_cast<double>(batches) / static_cast<double>(std::clamp<int64_t>(interval.get<int64_t>(), 1, batches));
  const double fraction = interval.get<double>();
  const int64_t every = std::max<int64_t>(1, static_cast<int64_t>(fraction * static_cast<double>(batches)));
  return std::floor(static_cast<double>(batches) / static_cast<double>(every));
}

// Sets a key the user did not set, noting the change and why.
class Chooser {
 public:
  Chooser(Config& config, TrainingBudget& budget) : config_(config), budget_(budget) {}
  bool free(const char* key) const { return config_.user_keys().count(key) == 0; }
  void operator()(const char* key, const Json& value, const std::string& why) {
    if (config_.get(key) == value) return;
    budget_.notes.push_back(std::string(key) + " " + config_.get(key).dump() + " -> " + value.dump() + ": " + why);
    config_.set(key, value);
    config_.mark_as_preset(key);  // chosen here, not by the user
    budget_.chosen[key] = value;
  }

 private:
  Config& config_;
  TrainingBudget& budget_;
};

}  // namespace

TrainingBudget apply_data_budget(Config& config, int64_t train_rows) {
  TrainingBudget budget;
  Chooser choose(config, budget);
  const int64_t count = std::max<int64_t>(2, train_rows / 100);
  if (choose.free("data.categorical.minimum_cat_count") && count < config.get_int("data.categorical.minimum_cat_count"))
    choose("data.categorical.minimum_cat_count", count,
           "1% of " + std::to_string(train_rows) + " training rows (at least 2), so categories of a small table "
           "are not all rare");
  return budget;
}

TrainingBudget apply_training_budget(Config& config, int64_t train_rows, bool all_from_scratch, bool tabular_only) {
  TrainingBudget budget;
  Chooser choose(config, budget);
  const auto free = [&](const char* key) { return choose.free(key); };

  int64_t effective = config.get_int("env.batch_size");
  if (free("env.batch_size") && config.get_int("optim.max_steps") <= 0) {
    int64_t cap = 1;
    while (cap * 2 <= train_rows / 10) cap *= 2;
    if (cap < effective) {
      choose("env.batch_size", cap,
             std::to_string(train_rows) + " training rows would make " +
                 std::to_string(steps_per_epoch(train_rows, std::min(config.get_int("env.per_gpu_batch_size"), effective),
                                                effective)) +
                 " optimizer step(s) per epoch");
      effective = cap;
    }
  }
  int64_t per_device = config.get_int("env.per_gpu_batch_size");
  if (per_device > effective && free("env.per_gpu_batch_size")) {
    choose("env.per_gpu_batch_size", effective, "no larger than the effective batch");
    per_device = effective;
  }

  const int64_t per_epoch = steps_per_epoch(train_rows, per_device, effective);
  int64_t epochs = config.get_int("optim.max_epochs");
  if (free("optim.max_epochs") && config.get_int("optim.max_steps") <= 0 && epochs * per_epoch < kMinSteps) {
    epochs = ceil_div(kMinSteps, per_epoch);
    choose("optim.max_epochs", epochs,
           "at least " + std::to_string(kMinSteps) + " optimizer steps at " + std::to_string(per_epoch) + " per epoch");
  }

  if (free("optim.patience")) {
    const int64_t batches = ceil_div(std::max<int64_t>(train_rows, 1), per_device);
    const double checks = checks_per_epoch(config.get("optim.val_check_interval"), batches) *
                          static_cast<double>(epochs) / static_cast<double>(config.get_int("optim.check_val_every_n_epoch"));
    const auto patience = static_cast<int64_t>(std::ceil(0.15 * checks));
    if (patience > config.get_int("optim.patience"))
      choose("optim.patience", patience,
             "15% of the " + std::to_string(static_cast<int64_t>(checks)) + " validation checks of the budget");
  }

  // A small table's validation rows are few and its scores noisy: early stopping
  // waits until half the budget is spent.
  if (free("optim.min_steps") && config.get_int("optim.max_steps") <= 0 && train_rows < 1000)
    choose("optim.min_steps", kMinSteps / 2,
           "fewer than 1000 training rows: early stopping waits for half the " + std::to_string(kMinSteps) +
               " steps");

  if (all_from_scratch && free("optim.lr"))
    choose("optim.lr", 1e-3, "every model trains from scratch (1e-4 is for fine-tuning pretrained backbones)");

  const int64_t ratio = config.get_int("env.inference_batch_size_ratio");
  if (tabular_only && free("env.inference_batch_size_ratio") && per_device * ratio < kTabularInferenceRows)
    choose("env.inference_batch_size_ratio", ceil_div(kTabularInferenceRows, per_device),
           "inference batches of " + std::to_string(kTabularInferenceRows) + " rows for tabular networks (" +
               std::to_string(per_device * ratio) + "-row batches are mostly per-batch overhead)");
  return budget;
}

}  // namespace automm
