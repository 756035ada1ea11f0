// Gradient checkpointing (activation recomputation) for LibTorch, which has no
// torch.utils.checkpoint: a block's intermediate activations are not kept for
// backward; backward runs the block again and differentiates that.
#pragma once

#include <functional>
#include <vector>

#include <torch/torch.h>

namespace automm {

using CheckpointedBlock = std::function<torch::Tensor(const torch::Tensor&)>;

// block(input), keeping only `input` for backward. `parameters` are the
// trainable tensors the block reads (gradients reach them even when `input`
// needs none). The recomputation replays the CPU random generator's state and
// the autocast mode of the forward pass, so dropout masks and casts match.
// Without grad mode, or when nothing needs a gradient, it is simply block(input).
torch::Tensor checkpointed(const CheckpointedBlock& block, const torch::Tensor& input,
                           const std::vector<torch::Tensor>& parameters);

}  // namespace automm
