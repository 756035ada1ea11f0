// Adam and AdamW whose update is one parallel pass over each parameter. LibTorch's
// optimizers run six or seven whole-tensor ops per parameter (mul_, add_, addcmul_,
// sqrt, div, add_, addcdiv_), each a trip through memory; here every element reads
// p, grad, exp_avg and exp_avg_sq once and writes p and both moments once. The
// arithmetic is torch's (same order of operations), the state is torch's
// AdamParamState / AdamWParamState, so save / load and checkpoints are unchanged.
// A step falls back to LibTorch's own when a parameter is not a contiguous fp32 CPU
// tensor with a dense gradient, or amsgrad is on.
#pragma once

#include <torch/torch.h>

namespace automm {

class FusedAdamW : public torch::optim::AdamW {
 public:
  using torch::optim::AdamW::AdamW;
  torch::Tensor step(LossClosure closure = nullptr) override;
};

class FusedAdam : public torch::optim::Adam {
 public:
  using torch::optim::Adam::Adam;
  torch::Tensor step(LossClosure closure = nullptr) override;
};

}  // namespace automm
