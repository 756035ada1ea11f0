// The training loop: batches, accumulation, schedule, validation checks,
// early stopping, top-k checkpoints and their averaging.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "automm/config.h"
#include "automm/data.h"
#include "automm/models.h"
#include "automm/problem_type.h"

namespace automm {

// Scores model outputs (logits) on the validation rows with the validation metric.
struct ValidationScorer {
  std::string metric;
  std::function<double(const torch::Tensor& logits)> score;
};

struct TrainOptions {
  double time_limit_seconds = 0.0;  // 0 = none
  uint64_t seed = 0;
  bool verbose = true;
};

struct LogRow {  // one row of metrics.csv
  int64_t step = 0;
  double epoch = 0.0;
  double lr = 0.0;
  double loss = 0.0;
  double grad_norm = -1.0;          // when track_grad_norm is on
  double validation_score = std::nan("");
};

struct TrainResult {
  double best_validation_score = std::nan("");
  double final_validation_score = std::nan("");  // of the averaged model
  int64_t steps = 0;
  double epochs = 0.0;
  double seconds = 0.0;
  std::string stop_reason;
  std::vector<double> top_k_scores;
  std::vector<LogRow> log;
};

// Device and dtype from env.accelerator, env.num_gpus and env.precision.
struct Placement {
  torch::Device device = torch::kCPU;
  torch::Dtype dtype = torch::kFloat32;
  std::string note;  // e.g. how a 16-bit precision was mapped on CPU
};
Placement resolve_placement(const Config& config);
// Intra-op threads: $AUTOMM_NUM_THREADS, else $OMP_NUM_THREADS, else all cores.
int configure_threads();

TrainResult train(MultiModalNet& net, const TabularTensors& train_data, const TabularTensors& val_data,
                  ProblemType type, const Config& config, const ValidationScorer& scorer,
                  const TrainOptions& options);

// Logits (or, with features=true, the embeddings) for every row, in eval mode,
// batched by per_gpu_batch_size * inference_batch_size_ratio.
torch::Tensor predict_logits(MultiModalNet& net, const TabularTensors& data, const Config& config,
                             bool features = false);
// The rows [begin, end) of the inputs, moved to the device and dtype.
Batch make_batch(const TabularTensors& data, const torch::Tensor& rows, const Placement& placement);

}  // namespace automm
