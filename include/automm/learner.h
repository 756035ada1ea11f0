// The training loop: batches, accumulation, schedule, validation checks,
// early stopping, top-k checkpoints and their averaging.
#pragma once

#include <functional>
#include <mutex>
#include <optional>
#include <utility>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "automm/batch_loader.h"
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
  // When set, the training state (weights, optimizer, schedule position, top-k,
  // RNG) is written there as last.pt after validation checks, at optimizer-step
  // boundaries, so a killed fit can continue.
  std::string checkpoint_dir;
  bool resume = false;  // continue from checkpoint_dir/last.pt
  // Data-parallel position: each rank trains on its share of every epoch's rows;
  // only rank 0 writes checkpoints and prints progress.
  int rank = 0;
  int world_size = 1;
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

// Device and numeric precision from env.accelerator, env.num_gpus and
// env.precision. On CPU the 16-bit modes run as bf16 (fp16 matmuls are slow on
// CPUs; bf16 keeps fp32's range): 16-mixed as bf16-mixed, 16-true as bf16-true.
struct Placement {
  torch::Device device = torch::kCPU;
  torch::Dtype dtype = torch::kFloat32;  // parameters and float inputs
  bool autocast = false;                 // mixed precision: matmuls run in autocast_dtype
  torch::Dtype autocast_dtype = torch::kBFloat16;
  std::string note;  // how a requested precision was mapped, shown once in the fit log
};
Placement resolve_placement(const Config& config);

// Enables autocast for the placement's mixed precision while alive.
class AutocastScope {
 public:
  explicit AutocastScope(const Placement& placement);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool active_ = false;
  bool cpu_ = true;
  bool was_enabled_ = false;
  at::ScalarType previous_dtype_ = at::kBFloat16;
};

// Mixed-precision inference without torch 1.13's per-call weight casts: autocast
// casts every Linear / convolution weight to bf16 at every forward call (its cache
// lives for one autocast region). This keeps those casts (the values autocast
// would compute) and swaps them into the modules for the duration of an inference
// pass; they are made again only when a parameter changed (its version counter
// moved, as an optimizer step does) or another net comes.
class CastWeightCache {
 public:
  // While alive: `net`'s Linear and convolution weights and biases are `dtype`
  // copies; the originals return when it ends. Holds the cache's lock.
  class Scope {
   public:
    Scope(Scope&&) = default;
    ~Scope();

   private:
    friend class CastWeightCache;
    Scope(std::unique_lock<std::mutex> lock, std::vector<std::pair<torch::Tensor, torch::Tensor>> originals)
        : lock_(std::move(lock)), originals_(std::move(originals)) {}
    std::unique_lock<std::mutex> lock_;
    std::vector<std::pair<torch::Tensor, torch::Tensor>> originals_;  // parameter, its own data
  };
  Scope apply(torch::nn::Module& net, torch::Dtype dtype);
  // How many times the copies were made (for tests).
  int64_t builds() const { return builds_; }

 private:
  std::mutex mutex_;
  std::vector<torch::Tensor> params_;
  std::vector<uint32_t> versions_;
  std::vector<torch::Tensor> copies_;
  torch::Dtype dtype_ = torch::kBFloat16;
  int64_t builds_ = 0;
};

// The forward pass as training and inference run it: under autocast for mixed
// precision.
NetOutput run_forward(MultiModalNet& net, const Batch& batch, const Placement& placement);

// Sets the intra-op threads: $AUTOMM_NUM_THREADS, else $OMP_NUM_THREADS, else
// one thread when the work per step is small (parameters * batch rows below
// 2e7: a parallel region costs more than such ops, and OpenMP teams spin badly
// on loaded cores), else every core. `work_per_step` < 0 means unknown (all cores).
// Also configures the allocator (configure_allocator).
int configure_threads(int64_t work_per_step = -1);

// Keeps freed memory for reuse (once per process): glibc hands blocks above its
// mmap threshold back to the kernel and trims the heap top, so every training step
// re-faults the pages of its gradient and activation buffers (a sixth of a ViT-B/32
// bf16 step here). Raising both thresholds trades a few percent of RSS for that.
void configure_allocator();

TrainResult train(MultiModalNet& net, const TabularTensors& train_data, const TabularTensors& val_data,
                  ProblemType type, const Config& config, const ValidationScorer& scorer,
                  const TrainOptions& options);

// env.per_gpu_batch_size * env.inference_batch_size_ratio.
int64_t inference_batch_size(const Config& config);

// Path of the resumable training state inside a checkpoint folder.
std::string checkpoint_file(const std::string& checkpoint_dir);

// Logits (or, with features=true, the embeddings) for every row, in eval mode,
// batched by per_gpu_batch_size * inference_batch_size_ratio. Under mixed
// precision the weights are cast once per call, or once while unchanged when a
// `cache` lives across calls (a fitted predictor keeps one).
torch::Tensor predict_logits(MultiModalNet& net, const TabularTensors& data, const Config& config,
                             bool features = false, CastWeightCache* cache = nullptr);
// The given rows of the inputs, moved to the device and dtype. With a
// training_seed, training-time randomness (text augmentation, stochastic
// chunks) applies, drawn from that seed so that any worker thread gives the
// same batch.
Batch make_batch(const TabularTensors& data, const torch::Tensor& rows, const Placement& placement,
                 std::optional<uint64_t> training_seed = std::nullopt);

}  // namespace automm
