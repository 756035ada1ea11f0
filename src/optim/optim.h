// Optimizers, parameter groups and learning-rate schedules (AutoMM's optim/ and configs/optim/default.yaml).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "automm/config.h"


namespace automm {

// Learning-rate schedule, stepped per optimizer step.
struct LrSchedule {
  std::string name = "cosine_decay";  // cosine_decay, linear_decay, polynomial_decay, multi_step
  int64_t total_steps = 1;
  int64_t warmup_steps = 0;
  int64_t steps_per_epoch = 1;  // multi_step's milestones (30, 55) are epochs
  double end_lr = 0.0;          // polynomial_decay's target

  // The learning rate at `step` for a group whose base rate is `base_lr`.
  double lr_at(int64_t step, double base_lr) const;
};
LrSchedule make_schedule(const Config& config, int64_t total_steps, int64_t steps_per_epoch);

// Layerwise-decay ids of one pretrained backbone's parameters (names relative
// to the backbone, in registration order), as AutoMM's optim/utils.py: the block is the first
// all-digit part of the name ("encoder.layer.11.attention.query.weight" -> 11,
// "layers.2.blocks.0.norm1.weight" -> 2, so in-block norms stay with their
// block), or a "layer<N>" part (ResNet stages); the last block gets 1, the
// first L; names without a block get L + 1 when they are embeddings (embed,
// cls_token, pos/position) or stems (listed before the first block), and 0
// otherwise (pooler, final norm, head). Heads, fusion and tabular models are
// not passed here: they are 0.
std::map<std::string, int64_t> layerwise_ids(const std::vector<std::string>& names);

// Parameters that never get weight decay: biases, norm weights, cls tokens and
// feature-tokenizer parameters (named *_tokenizer.*).
bool is_no_decay_parameter(const std::string& name);

struct ParameterGroup {
  std::vector<torch::Tensor> params;
  std::vector<std::string> names;
  double lr = 0.0;
  double weight_decay = 0.0;
};
// Groups by (learning rate, weight decay): optim.lr_choice, lr_decay, lr_mult,
// weight_decay with no decay on biases, norms, cls tokens and tokenizers.
// `layer_ids` maps parameter names to ids; a name not in it has id 0.
std::vector<ParameterGroup> make_parameter_groups(
    const std::vector<std::pair<std::string, torch::Tensor>>& named_params, const Config& config,
    const std::map<std::string, int64_t>& layer_ids = {});
std::unique_ptr<torch::optim::Optimizer> make_optimizer(const std::vector<ParameterGroup>& groups,
                                                        const Config& config);

// Drops every gradient (zero_grad with set_to_none): the next backward hands its
// gradient buffers to the parameters instead of zero-filling and adding into them.
void clear_gradients(torch::optim::Optimizer& optimizer);

// Sets each group's lr to schedule.lr_at(step, base lr of that group).
void apply_schedule(torch::optim::Optimizer& optimizer, const std::vector<ParameterGroup>& groups,
                    const LrSchedule& schedule, int64_t step);

}  // namespace automm
