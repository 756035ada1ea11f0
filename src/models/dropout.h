// Dropout with a counter-based mask. torch 1.13's CPU dropout draws one Bernoulli
// number at a time from a locked generator and keeps a full-size float noise tensor
// for backward; here the mask of element i is bit-drawn from SplitMix64(seed, i),
// in parallel, and backward regenerates it from the seed, so nothing the size of
// the input is saved. The seed is drawn from the default CPU generator, so
// torch::manual_seed makes masks reproducible and gradient checkpointing (which
// replays the generator's state) recomputes the same ones.
#pragma once

#include <cstdint>

#include <torch/torch.h>

namespace automm {

// x with each element zeroed with probability p and the rest scaled by 1 / (1 - p)
// when `training`, else x itself. Differentiable; any floating dtype.
torch::Tensor apply_dropout(const torch::Tensor& x, double p, bool training);

// The keep mask (1 = kept) that dropout uses for `numel` elements and `seed`,
// for tests: element i is kept when its 32-bit draw is >= p * 2^32.
torch::Tensor dropout_keep_mask(int64_t numel, double p, uint64_t seed);

// Drop-in for torch::nn::Dropout (same options, same place in the module tree).
class DropoutImpl : public torch::nn::Cloneable<DropoutImpl> {
 public:
  explicit DropoutImpl(double p = 0.5) : DropoutImpl(torch::nn::DropoutOptions(p)) {}
  explicit DropoutImpl(const torch::nn::DropoutOptions& options);
  void reset() override;
  void pretty_print(std::ostream& stream) const override;
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::DropoutOptions options;
};
TORCH_MODULE(Dropout);

}  // namespace automm
