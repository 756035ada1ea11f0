// A training budget that fits the data (AutoMM's defaults do not): with the
// default effective batch of 128, a table of a hundred rows gets one optimizer
// step per epoch and a fit ends after a few dozen steps, near chance.
//
// For the keys the user did not set (a preset's values count as defaults):
//   - env.batch_size: at most rows / 10 (a power of two, at least 1), so an
//     epoch has about ten optimizer steps or more; env.per_gpu_batch_size no
//     larger than it;
//   - optim.max_epochs: raised until the fit can make kMinSteps optimizer steps;
//   - optim.patience: at least 15% of the validation checks the fit can make,
//     so early stopping scales with the budget, not with epochs of a tiny table;
//   - optim.min_steps: half of kMinSteps for tables under 1000 training rows,
//     whose few validation rows make early stopping follow noise;
//   - optim.lr: 1e-3 when every model trains from scratch (tabular models,
//     fusion, scratch text encoders); AutoMM's 1e-4 suits fine-tuning
//     pretrained backbones and stays when there is one.
//   - env.inference_batch_size_ratio: inference batches (validation, predict)
//     of at least 512 rows when every model is a tabular network: AutoMM's
//     8 x 4 = 32 rows make a big table's prediction mostly per-batch overhead,
//     and evaluation-mode outputs do not depend on the batch.
//   - data.categorical.minimum_cat_count: AutoMM's 100 makes every category of
//     a table with fewer than 100 rows per category "rare", so categorical
//     columns carry nothing; at most 1% of the rows (at least 2) instead.
// time_limit stays a cap. The fit log prints what was chosen and why.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "automm/config.h"

namespace automm {

constexpr int64_t kMinSteps = 500;
// Below this many validation rows, a fit whose eval metric the user did not set
// validates on log_loss instead of a hard-label or rank metric (accuracy,
// roc_auc): those take a handful of values on a few rows, and early stopping
// and the top-k checkpoints would follow noise.
constexpr int64_t kSmallValidationRows = 100;

struct TrainingBudget {
  Json chosen = Json::object();    // key -> value, for the keys the rule changed
  std::vector<std::string> notes;  // why, one line per key, for the fit log
};

// The data keys (minimum_cat_count), before the processors are fitted.
TrainingBudget apply_data_budget(Config& config, int64_t train_rows);

// The training keys, once the network is built. Both change `config` only for
// the keys not in config.user_keys() and return what they changed. `train_rows`:
// rows of the training split; `all_from_scratch`: no backbone starts from
// pretrained weights; `tabular_only`: every model reads numerical / categorical
// columns (no text or image backbone).
TrainingBudget apply_training_budget(Config& config, int64_t train_rows, bool all_from_scratch, bool tabular_only);

// Rows of an inference batch (validation, predict) the tabular-only rule asks for.
constexpr int64_t kTabularInferenceRows = 512;

}  // namespace automm
