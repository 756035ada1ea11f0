#include <malloc.h>

#include <cstdlib>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <thread>

#include <ATen/autocast_mode.h>

#include "learners/placement.h"

#include "learners/trainer.h"

namespace automm {

void configure_allocator() {
  static std::once_flag once;
  std::call_once(once, [] {
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max());
  });
}

int choose_thread_count(int64_t work_per_step) {
  constexpr int64_t kSmallWork = 20'000'000;
  int threads = work_per_step >= 0 && work_per_step < kSmallWork
                    ? 1
                    : static_cast<int>(std::thread::hardware_concurrency());
  for (const char* name : {"AUTOMM_NUM_THREADS", "OMP_NUM_THREADS"}) {
    if (const char* value = std::getenv(name)) {
      const int n = std::atoi(value);
      if (n > 0) {
        threads = n;
        break;
      }
    }
  }
  return std::max(threads, 1);
}

int set_intra_op_threads(int threads) {
  threads = std::max(threads, 1);
  if (torch::get_num_threads() != threads) torch::set_num_threads(threads);
  return threads;
}

ThreadScope::ThreadScope(int threads) : threads_(std::max(threads, 1)), previous_(torch::get_num_threads()) {
  set_intra_op_threads(threads_);
}

ThreadScope::~ThreadScope() { set_intra_op_threads(previous_); }

DeterministicScope::DeterministicScope(bool on)
    : active_(on), previous_(at::globalContext().deterministicAlgorithms()) {
  if (active_) at::globalContext().setDeterministicAlgorithms(true, false);
}

DeterministicScope::~DeterministicScope() {
  if (active_) at::globalContext().setDeterministicAlgorithms(previous_, false);
}

Placement resolve_placement(const Config& config) {
  Placement placement;
  const std::string accelerator = config.get_string("env.accelerator");
  const int64_t num_gpus = config.get_int("env.num_gpus");
  const bool cuda = torch::cuda::is_available();
  if (accelerator == "gpu" && !cuda)
    throw std::invalid_argument("env.accelerator = gpu, but this LibTorch build sees no CUDA device; "
                                "use cpu or auto");
  // One device per process: how many processes a fit uses is distributed_env's
  // business (learners/distributed.h); a saved predictor predicts on one device.
  if (cuda && accelerator != "cpu" && num_gpus != 0) placement.device = torch::Device(torch::kCUDA, 0);
  std::string precision = config.get_string("env.precision");
  if (precision == "16-mixed" || precision == "16-true") {
    if (!placement.device.is_cpu())
      throw std::invalid_argument("env.precision = " + precision +
                                  " (fp16 with gradient scaling) is not supported yet on CUDA; use bf16-mixed");
    const std::string mapped = precision == "16-mixed" ? "bf16-mixed" : "bf16-true";
    placement.note = "env.precision " + precision + " runs as " + mapped + " on CPU";
    precision = mapped;
  }
  if (precision == "64") {
    placement.dtype = torch::kFloat64;
  } else if (precision == "32") {
    placement.dtype = torch::kFloat32;
  } else if (precision == "bf16-mixed") {
    placement.autocast = true;
  } else if (precision == "bf16-true") {
    placement.dtype = torch::kBFloat16;
  } else {
    throw std::invalid_argument("unknown env.precision '" + precision + "'");
  }
  return placement;
}

}  // namespace automm

namespace automm {

AutocastScope::AutocastScope(const Placement& placement)
    : active_(placement.autocast), cpu_(placement.device.is_cpu()) {
  if (!active_) return;
  if (cpu_) {
    was_enabled_ = at::autocast::is_cpu_enabled();
    previous_dtype_ = at::autocast::get_autocast_cpu_dtype();
    at::autocast::set_cpu_enabled(true);
    at::autocast::set_autocast_cpu_dtype(placement.autocast_dtype);
  } else {
    was_enabled_ = at::autocast::is_enabled();
    previous_dtype_ = at::autocast::get_autocast_gpu_dtype();
    at::autocast::set_enabled(true);
    at::autocast::set_autocast_gpu_dtype(placement.autocast_dtype);
  }
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  // Cast weights are cached per autocast region; drop them when the outermost ends.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  if (cpu_) {
    at::autocast::set_cpu_enabled(was_enabled_);
    at::autocast::set_autocast_cpu_dtype(previous_dtype_);
  } else {
    at::autocast::set_enabled(was_enabled_);
    at::autocast::set_autocast_gpu_dtype(previous_dtype_);
  }
}

CastWeightCache::Scope::~Scope() {
  for (auto& [param, data] : originals_) param.set_data(data);
}

CastWeightCache::Scope CastWeightCache::apply(torch::nn::Module& net, torch::Dtype dtype) {
  std::unique_lock<std::mutex> lock(mutex_);
  // The parameters autocast casts at every call: Linear and convolution weights and biases.
  std::vector<torch::Tensor> params;
  for (const auto& module : net.modules(/*include_self=*/true)) {
    if (!module->as<torch::nn::LinearImpl>() && !module->as<torch::nn::Conv1dImpl>() &&
        !module->as<torch::nn::Conv2dImpl>() && !module->as<torch::nn::Conv3dImpl>())
      continue;
    for (const auto& p : module->parameters(/*recurse=*/false))
      if (p.is_floating_point() && p.scalar_type() != dtype) params.push_back(p);
  }
  bool fresh = dtype == dtype_ && params.size() == params_.size();
  for (size_t i = 0; fresh && i < params.size(); ++i)
    fresh = params[i].is_same(params_[i]) && params[i]._version() == versions_[i];
  if (!fresh) {
    torch::NoGradGuard no_grad;
    params_ = params;
    dtype_ = dtype;
    versions_.clear();
    copies_.clear();
    for (const auto& p : params) {
      versions_.push_back(p._version());
      copies_.push_back(p.detach().to(dtype));
    }
    ++builds_;
  }
  std::vector<std::pair<torch::Tensor, torch::Tensor>> originals;
  for (size_t i = 0; i < params.size(); ++i) {
    originals.emplace_back(params[i], params[i].data());
    params[i].set_data(copies_[i]);
  }
  return Scope(std::move(lock), std::move(originals));
}

NetOutput run_forward(MultiModalNet& net, const Batch& batch, const Placement& placement) {
  AutocastScope autocast(placement);
  return net->forward(batch);
}

}  // namespace automm
