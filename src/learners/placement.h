// Device, precision and the process-wide settings a fit or an inference pass
// changes: each is set for the duration of a call and restored after it, so
// two predictors in one process do not inherit each other's settings.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "automm/config.h"
#include "data/dataset.h"

namespace automm {

// Device and numeric precision from env.accelerator, env.num_gpus and
// env.precision. On CPU the 16-bit modes run as bf16 (fp16 matmuls are slow on
// CPUs; bf16 keeps fp32's range): 16-mixed as bf16-mixed, 16-true as bf16-true.
struct Placement {
  torch::Device device = torch::kCPU;
  torch::Dtype dtype = torch::kFloat32;  // parameters and float inputs
  bool autocast = false;                 // mixed precision: matmuls run in autocast_dtype
  torch::Dtype autocast_dtype = torch::kBFloat16;
  std::string note;  // how a requested precision was mapped, shown once in the fit log

  BatchPlacement batch() const { return {device, dtype}; }
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

// The intra-op thread count for one fit or inference call: $AUTOMM_NUM_THREADS,
// else $OMP_NUM_THREADS, else one thread when the work per step is small
// (parameters * batch rows below 2e7: a parallel region costs more than such
// ops, and OpenMP teams spin badly on loaded cores), else every core.
// `work_per_step` < 0 means unknown (all cores).
int choose_thread_count(int64_t work_per_step = -1);

// Sets LibTorch's intra-op thread count (process-wide) when it differs: setting
// it rebuilds LibTorch's thread pools and clears oneDNN's caches (milliseconds).
// Returns the count.
int set_intra_op_threads(int threads);

// Sets the intra-op thread count for a fit and puts the previous count back after.
class ThreadScope {
 public:
  explicit ThreadScope(int threads);
  ~ThreadScope();
  ThreadScope(const ThreadScope&) = delete;
  ThreadScope& operator=(const ThreadScope&) = delete;
  int threads() const { return threads_; }

 private:
  int threads_, previous_;
};

// env.deterministic: LibTorch's deterministic algorithms (process-wide) while
// alive, the previous setting restored after.
class DeterministicScope {
 public:
  explicit DeterministicScope(bool on);
  ~DeterministicScope();
  DeterministicScope(const DeterministicScope&) = delete;
  DeterministicScope& operator=(const DeterministicScope&) = delete;

 private:
  bool active_, previous_;
};

// Keeps freed memory for reuse. glibc hands blocks above its mmap threshold back
// to the kernel and trims the heap top, so every training step re-faults the
// pages of its gradient and activation buffers (a sixth of a ViT-B/32 bf16 step
// here). Raising both thresholds trades a few percent of RSS for that. The one
// process-wide setting that is not restored: it is made once, on the first fit
// or prediction, and is harmless to the rest of the process.
void configure_allocator();

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

}  // namespace automm
