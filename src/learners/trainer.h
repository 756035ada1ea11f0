// The training loop: batches, accumulation, schedule, validation checks,
// early stopping, top-k checkpoints and their averaging. It knows no problem
// type: the task's loss and the validation scorer come in as functions.
#pragma once

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "automm/config.h"
#include "automm/metrics.h"
#include "data/dataset.h"
#include "learners/distributed.h"
#include "learners/placement.h"
#include "learners/traced_network.h"
#include "models/multimodal_net.h"

namespace automm {

// The training loss of head outputs [batch, outputs] (fp32) against a batch's targets.
using LossFunction = std::function<torch::Tensor(const torch::Tensor& outputs, const Targets& targets)>;

// Scores head outputs on the validation rows with the validation metric.
struct ValidationScorer {
  MetricInfo metric;
  std::function<double(const torch::Tensor& outputs)> score;
  // The score mapped so that larger is always better.
  double comparable(double score) const { return metric.greater_is_better ? score : -score; }
};

struct TrainOptions {
  double time_limit_seconds = 0.0;  // 0 = none
  uint64_t seed = 0;
  bool verbose = true;
  // When set, the training state (weights, optimizer, schedule position, top-k,
  // RNG) is written there as last.pt after validation checks, at optimizer-step
  // boundaries, so a killed fit can continue.
  std::string checkpoint_dir;
  bool resume = false;  // continue from checkpoint_dir/last.pt
  // Data-parallel training (env.strategy = ddp): the process group; null = one
  // process. Each rank trains on its share of every epoch's rows (all ranks the
  // same number of batches), gradients are averaged across ranks before every
  // optimizer step, validation scores every rank's predictions gathered; only
  // rank 0 writes checkpoints and prints progress.
  Communicator* comm = nullptr;
  // Polled after every training batch; true ends training with FitInterrupted.
  std::function<bool()> stop_requested;
  // Applied to every training batch (never to validation) with its epoch and a
  // seed that depends only on (seed, epoch, batch), so a resumed fit replays it:
  // Mixup / CutMix.
  std::function<void(Batch& batch, int64_t epoch, uint64_t seed)> transform_batch;
  // The loss of a training batch from its task loss (labels, plus the
  // auxiliary heads'): knowledge distillation. Unset: the task loss.
  std::function<torch::Tensor(const torch::Tensor& task_loss, const NetOutput& out, const Targets& targets)>
      total_loss;
  // A line for the fit log at the start of an epoch ("" = none).
  std::function<std::string(int64_t epoch)> epoch_note;
};

// The training rows of `rank` in `epoch`: a permutation that depends only on
// (seed, epoch), dealt round-robin to the ranks, so ranks never overlap and a
// resumed fit replays the interrupted epoch.
torch::Tensor epoch_rows(int64_t rows, uint64_t seed, int64_t epoch, int rank = 0, int world_size = 1);

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
  int64_t resumed_from_step = -1;  // -1 when the fit did not resume
};

TrainResult train(MultiModalNet& net, const Dataset& train_data, const Dataset& val_data, const LossFunction& loss,
                  const Config& config, const ValidationScorer& scorer, const TrainOptions& options);

// Layerwise-decay ids of the network's parameters: each pretrained backbone's
// parameters get optim's layerwise_ids; the rest (heads, fusion, tabular) id 0.
std::map<std::string, int64_t> network_layer_ids(MultiModalNet& net);

// env.per_gpu_batch_size * env.inference_batch_size_ratio.
int64_t inference_batch_size(const Config& config);

// Path of the resumable training state inside a checkpoint folder.
std::string checkpoint_file(const std::string& checkpoint_dir);

// The forward pass as training and inference run it: under autocast for mixed precision.
NetOutput run_forward(MultiModalNet& net, const Batch& batch, const Placement& placement);

// What a fitted predictor keeps across inference calls: the weights cast for
// mixed precision, and the traced graphs of env.compile.
struct InferenceCache {
  CastWeightCache weights;
  TracedNetworkCache traced;
};

// Head outputs (or, with features=true, the embeddings) for every row, in eval
// mode, batched by per_gpu_batch_size * inference_batch_size_ratio. Under mixed
// precision the weights are cast once per call, or once while unchanged when a
// `cache` lives across calls (a fitted predictor keeps one). With a cache and
// env.compile.turn_on the batches run through traced graphs (traced_network.h);
// validation during a fit (no cache) always runs eagerly.
// `rows`: only the rows [first, last) of `data` (default: all).
torch::Tensor predict_logits(MultiModalNet& net, const Dataset& data, const Config& config, bool features = false,
                             InferenceCache* cache = nullptr, std::pair<int64_t, int64_t> rows = {0, -1});

}  // namespace automm
