#include "fused_adam.h"

#include <cmath>
#include <string>
#include <tuple>

#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include "kernels/cpu_kernels.h"

namespace automm {
namespace {

void fused_update(torch::Tensor& p, const torch::Tensor& grad, torch::Tensor& exp_avg, torch::Tensor& exp_avg_sq,
                  const kernels::AdamScalars& s) {
  float* param = p.data_ptr<float>();
  const float* g = grad.data_ptr<float>();
  float* m = exp_avg.data_ptr<float>();
  float* v = exp_avg_sq.data_ptr<float>();
  at::parallel_for(0, p.numel(), 32768, [&](int64_t begin, int64_t end) {
    kernels::adam_update(param + begin, g + begin, m + begin, v + begin, end - begin, s);
  });
  // An in-place op would move the version counters; caches keyed on them
  // (kernels/packed_linear.h) must see these writes too.
  p.unsafeGetTensorImpl()->bump_version();
  exp_avg.unsafeGetTensorImpl()->bump_version();
  exp_avg_sq.unsafeGetTensorImpl()->bump_version();
}

bool fusable(const torch::Tensor& p) {
  if (!p.grad().defined()) return true;
  const auto& g = p.grad();
  return p.is_cpu() && p.scalar_type() == torch::kFloat32 && p.is_contiguous() && !g.is_sparse() &&
         g.scalar_type() == torch::kFloat32 && g.is_contiguous() && g.sizes() == p.sizes();
}

template <typename Options>
bool all_fusable(std::vector<torch::optim::OptimizerParamGroup>& groups) {
  for (auto& group : groups) {
    if (static_cast<Options&>(group.options()).amsgrad()) return false;
    for (const auto& p : group.params())
      if (!fusable(p)) return false;
  }
  return true;
}

// One step over every group; `decoupled` = AdamW's weight decay.
template <typename Options, typename State>
void fused_step(std::vector<torch::optim::OptimizerParamGroup>& groups,
                ska::flat_hash_map<std::string, std::unique_ptr<torch::optim::OptimizerParamState>>& states,
                bool decoupled) {
  RECORD_FUNCTION(decoupled ? "automm::fused_adamw_step" : "automm::fused_adam_step", std::vector<c10::IValue>());
  torch::NoGradGuard no_grad;
  for (auto& group : groups) {
    const auto& options = static_cast<Options&>(group.options());
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      const std::string key = c10::guts::to_string(p.unsafeGetTensorImpl());
      auto found = states.find(key);
      if (found == states.end()) {
        auto state = std::make_unique<State>();
        state->step(0);
        state->exp_avg(torch::zeros_like(p, at::MemoryFormat::Contiguous));
        state->exp_avg_sq(torch::zeros_like(p, at::MemoryFormat::Contiguous));
        found = states.emplace(key, std::move(state)).first;
      }
      auto& state = static_cast<State&>(*found->second);
      state.step(state.step() + 1);
      const double beta1 = std::get<0>(options.betas()), beta2 = std::get<1>(options.betas());
      const double bias1 = 1 - std::pow(beta1, state.step()), bias2 = 1 - std::pow(beta2, state.step());
      kernels::AdamScalars s;
      s.beta1 = static_cast<float>(beta1);
      s.beta2 = static_cast<float>(beta2);
      s.eps = static_cast<float>(options.eps());
      s.decay = decoupled ? static_cast<float>(1 - options.lr() * options.weight_decay()) : 1.0f;
      s.grad_decay = decoupled ? 0.0f : static_cast<float>(options.weight_decay());
      s.step_size = static_cast<float>(options.lr() / bias1);
      s.sqrt_bias2 = static_cast<float>(std::sqrt(bias2));
      auto exp_avg = state.exp_avg(), exp_avg_sq = state.exp_avg_sq();
      if (!exp_avg.is_contiguous() || !exp_avg_sq.is_contiguous()) {  // state loaded in another layout
        state.exp_avg(exp_avg.contiguous());
        state.exp_avg_sq(exp_avg_sq.contiguous());
        exp_avg = state.exp_avg();
        exp_avg_sq = state.exp_avg_sq();
      }
      fused_update(p, p.grad(), exp_avg, exp_avg_sq, s);
    }
  }
}

}  // namespace

torch::Tensor FusedAdamW::step(LossClosure closure) {
  if (!all_fusable<torch::optim::AdamWOptions>(param_groups_)) return torch::optim::AdamW::step(std::move(closure));
  torch::Tensor loss;
  if (closure) {
    torch::AutoGradMode enable_grad(true);
    loss = closure();
  }
  fused_step<torch::optim::AdamWOptions, torch::optim::AdamWParamState>(param_groups_, state_, true);
  return loss;
}

torch::Tensor FusedAdam::step(LossClosure closure) {
  if (!all_fusable<torch::optim::AdamOptions>(param_groups_)) return torch::optim::Adam::step(std::move(closure));
  torch::Tensor loss;
  if (closure) {
    torch::AutoGradMode enable_grad(true);
    loss = closure();
  }
  fused_step<torch::optim::AdamOptions, torch::optim::AdamParamState>(param_groups_, state_, false);
  return loss;
}

}  // namespace automm
