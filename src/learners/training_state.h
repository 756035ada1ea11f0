// The resumable state of a fit, written to one file (last.pt) by an atomic rename.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "learners/trainer.h"
#include "checkpoints.h"

namespace automm {

struct TrainingState {
  int64_t step = 0;    // optimizer steps taken
  int64_t epoch = 0;   // epoch to continue in
  int64_t batch = 0;   // next batch of that epoch
  double best = -INFINITY;  // best validation score so far (higher is better)
  int64_t checks_without_gain = 0;
  double loss_sum = 0.0;
  int64_t loss_count = 0;
  double elapsed_before = 0.0;   // seconds trained by earlier runs (set on load)
  double elapsed_at_save = 0.0;  // seconds trained when saved
  std::vector<LogRow> log;
};

void save_training_state(const std::string& file, torch::nn::Module& model, torch::optim::Optimizer& optimizer,
                         const TopKCheckpoints& top_k, const TrainingState& state);
// Throws naming the file when it is missing or unreadable.
void load_training_state(const std::string& file, torch::nn::Module& model, torch::optim::Optimizer& optimizer,
                         TopKCheckpoints& top_k, TrainingState& state);

}  // namespace automm
