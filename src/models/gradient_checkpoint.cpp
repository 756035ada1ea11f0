#include "gradient_checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/autocast_mode.h>

namespace automm {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Keeps the block callable alive inside the autograd graph until backward.
struct BlockHolder : torch::CustomClassHolder {
  CheckpointedBlock block;
  torch::Tensor rng_state;
  bool autocast = false;
  at::ScalarType autocast_dtype = at::kBFloat16;
};

class CheckpointFunction : public torch::autograd::Function<CheckpointFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& input, at::TensorList parameters,
                               const CheckpointedBlock& block) {
    auto holder = c10::make_intrusive<BlockHolder>();
    holder->block = block;
    holder->rng_state = at::detail::getDefaultCPUGenerator().get_state();
    holder->autocast = at::autocast::is_cpu_enabled();
    holder->autocast_dtype = at::autocast::get_autocast_cpu_dtype();
    ctx->saved_data["block"] = c10::IValue::make_capsule(holder);
    variable_list saved{input};
    saved.insert(saved.end(), parameters.begin(), parameters.end());
    ctx->save_for_backward(saved);
    torch::NoGradGuard no_grad;
    return block(input);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    auto holder = c10::static_intrusive_pointer_cast<BlockHolder>(ctx->saved_data["block"].toCapsule());
    const variable_list saved = ctx->get_saved_variables();
    const torch::Tensor saved_input = saved[0];
    const bool input_needs_grad = ctx->needs_input_grad(0);
    torch::Tensor input = saved_input.detach().requires_grad_(input_needs_grad);

    // Recompute under the forward pass's random state and autocast mode.
    at::Generator generator = at::detail::getDefaultCPUGenerator();
    const torch::Tensor current_rng = generator.get_state();
    const bool was_autocast = at::autocast::is_cpu_enabled();
    const at::ScalarType was_dtype = at::autocast::get_autocast_cpu_dtype();
    generator.set_state(holder->rng_state);
    at::autocast::set_cpu_enabled(holder->autocast);
    at::autocast::set_autocast_cpu_dtype(holder->autocast_dtype);
    if (holder->autocast) at::autocast::increment_nesting();
    torch::Tensor output;
    {
      torch::AutoGradMode grad_mode(true);
      output = holder->block(input);
    }
    if (holder->autocast && at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_cpu_enabled(was_autocast);
    at::autocast::set_autocast_cpu_dtype(was_dtype);
    generator.set_state(current_rng);

    // Gradients for the input (when wanted) and every parameter, in input order.
    const variable_list parameters(saved.begin() + 1, saved.end());
    variable_list targets;
    if (input_needs_grad) targets.push_back(input);
    targets.insert(targets.end(), parameters.begin(), parameters.end());
    const variable_list grads = torch::autograd::grad({output}, targets, {grad_outputs[0]},
                                                      /*retain_graph=*/false, /*create_graph=*/false,
                                                      /*allow_unused=*/true);
    variable_list out;
    out.push_back(input_needs_grad ? grads[0] : torch::Tensor());
    out.insert(out.end(), grads.begin() + (input_needs_grad ? 1 : 0), grads.end());
    out.push_back(torch::Tensor());  // the block
    return out;
  }
};

}  // namespace

torch::Tensor checkpointed(const CheckpointedBlock& block, const torch::Tensor& input,
                           const std::vector<torch::Tensor>& parameters) {
  std::vector<torch::Tensor> trainable;
  for (const auto& p : parameters)
    if (p.requires_grad()) trainable.push_back(p);
  if (!torch::GradMode::is_enabled() || (trainable.empty() && !input.requires_grad())) return block(input);
  // Parameters go in as a TensorList so that each one is an autograd input.
  return CheckpointFunction::apply(input, at::TensorList(trainable), block);
}

}  // namespace automm
