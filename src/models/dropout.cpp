#include "dropout.h"

#include <cmath>
#include <mutex>
#include <stdexcept>
#include <string>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include "kernels/cpu_kernels.h"

namespace automm {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

uint64_t drop_threshold(double p) {
  return static_cast<uint64_t>(std::llround(std::ldexp(p, 32)));  // draw < threshold -> dropped
}

// out[i] = in[i] / (1 - p) where element i is kept, else 0 (in and out contiguous).
void apply_mask(const torch::Tensor& in, torch::Tensor& out, double p, uint64_t seed) {
  RECORD_FUNCTION("automm::dropout_mask", std::vector<c10::IValue>());
  const kernels::DropoutScalars scalars{seed, drop_threshold(p), 1.0 / (1.0 - p)};
  const int64_t n = in.numel();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, in.scalar_type(), "automm_dropout", [&] {
    const scalar_t* src = in.data_ptr<scalar_t>();
    scalar_t* dst = out.data_ptr<scalar_t>();
    at::parallel_for(0, (n + 1) / 2, 8192, [&](int64_t begin, int64_t end) {
      kernels::dropout_span(src, dst, begin, end, n, scalars);
    });
  });
}

uint64_t next_seed() {
  auto generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  return generator.get<at::CPUGeneratorImpl>()->random64();
}

class DropoutFunction : public torch::autograd::Function<DropoutFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, double p) {
    const uint64_t seed = next_seed();
    ctx->saved_data["p"] = p;
    ctx->saved_data["seed"] = static_cast<int64_t>(seed);
    const auto in = x.contiguous();
    auto out = torch::empty_like(in, at::MemoryFormat::Contiguous);
    apply_mask(in, out, p, seed);
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const double p = ctx->saved_data["p"].toDouble();
    const auto seed = static_cast<uint64_t>(ctx->saved_data["seed"].toInt());
    const auto grad = grad_outputs[0].contiguous();
    auto grad_input = torch::empty_like(grad, at::MemoryFormat::Contiguous);
    apply_mask(grad, grad_input, p, seed);
    return {grad_input, torch::Tensor()};
  }
};

}  // namespace

torch::Tensor apply_dropout(const torch::Tensor& x, double p, bool training) {
  if (p < 0 || p > 1) throw std::invalid_argument("apply_dropout: probability must be in [0, 1], got " + std::to_string(p));
  if (!training || p == 0 || x.numel() == 0) return x;
  if (p == 1) return x * 0;
  if (!x.is_cpu() || !x.is_floating_point()) return torch::dropout(x, p, training);
  return DropoutFunction::apply(x, p);
}

torch::Tensor dropout_keep_mask(int64_t numel, double p, uint64_t seed) {
  auto ones = torch::ones({numel}, torch::kFloat64);
  auto out = torch::empty_like(ones);
  apply_mask(ones, out, p, seed);
  return out.ne(0);
}

DropoutImpl::DropoutImpl(const torch::nn::DropoutOptions& options_) : options(options_) { reset(); }

void DropoutImpl::reset() {
  if (options.p() < 0 || options.p() > 1) {
    throw std::invalid_argument("Dropout: probability must be in [0, 1], got " + std::to_string(options.p()));
  }
}

void DropoutImpl::pretty_print(std::ostream& stream) const { stream << "automm::Dropout(p=" << options.p() << ")"; }

torch::Tensor DropoutImpl::forward(const torch::Tensor& x) {
  if (options.inplace()) throw std::invalid_argument("Dropout: inplace is not supported");
  return apply_dropout(x, options.p(), is_training());
}

}  // namespace automm
