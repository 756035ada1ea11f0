// Tests of CastWeightCache (src/learners/placement.cpp): mixed-precision inference
// with weights cast once gives exactly autocast's outputs, the originals come back,
// and the copies are remade only when a parameter changes.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "learners/trainer.h"

namespace automm {
namespace {

struct SmallNetImpl : torch::nn::Module {
  SmallNetImpl() {
    conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 4, 3)));
    norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({4 * 6 * 6})));
    linear = register_module("linear", torch::nn::Linear(4 * 6 * 6, 5));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto h = conv(x).flatten(1);
    return linear(norm(h.to(torch::kFloat32)));
  }
  torch::nn::Conv2d conv{nullptr};
  torch::nn::LayerNorm norm{nullptr};
  torch::nn::Linear linear{nullptr};
};
TORCH_MODULE(SmallNet);

Placement mixed() {
  Placement placement;
  placement.autocast = true;
  placement.autocast_dtype = torch::kBFloat16;
  return placement;
}

TEST(CastWeightCache, GivesAutocastsOutputsAndRestoresTheWeights) {
  torch::manual_seed(0);
  SmallNet net;
  net->eval();
  const auto x = torch::randn({2, 3, 8, 8});
  const auto weight_before = net->linear->weight.clone();
  torch::NoGradGuard no_grad;
  torch::Tensor expected;
  {
    AutocastScope autocast(mixed());
    expected = net->forward(x);
  }
  CastWeightCache cache;
  torch::Tensor cached;
  {
    auto scope = cache.apply(*net, torch::kBFloat16);
    EXPECT_EQ(net->linear->weight.scalar_type(), torch::kBFloat16);
    EXPECT_EQ(net->conv->bias.scalar_type(), torch::kBFloat16);
    EXPECT_EQ(net->norm->weight.scalar_type(), torch::kFloat32);  // autocast keeps norms in fp32
    AutocastScope autocast(mixed());
    cached = net->forward(x);
  }
  EXPECT_TRUE(cached.equal(expected));
  EXPECT_EQ(net->linear->weight.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(net->linear->weight.equal(weight_before));
  // Without autocast the restored fp32 weights give a different (fp32) answer: the
  // comparison above can fail.
  EXPECT_FALSE(net->forward(x).equal(expected));
}

TEST(CastWeightCache, RemakesCopiesOnlyWhenParametersChange) {
  torch::manual_seed(1);
  SmallNet net;
  CastWeightCache cache;
  const auto x = torch::randn({1, 3, 8, 8});
  torch::NoGradGuard no_grad;
  const auto run = [&] {
    auto scope = cache.apply(*net, torch::kBFloat16);
    AutocastScope autocast(mixed());
    return net->forward(x);
  };
  const auto first = run();
  const auto second = run();
  EXPECT_EQ(cache.builds(), 1);
  EXPECT_TRUE(first.equal(second));
  net->linear->weight.add_(1.0);  // as an optimizer step does
  const auto third = run();
  EXPECT_EQ(cache.builds(), 2);
  EXPECT_FALSE(third.equal(first));
  SmallNet other;  // another net's parameters
  {
    auto scope = cache.apply(*other, torch::kBFloat16);
  }
  EXPECT_EQ(cache.builds(), 3);
}

}  // namespace
}  // namespace automm
