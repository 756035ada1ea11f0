// Tests of FusedAdamW / FusedAdam (src/optim/fused_adam.*) against LibTorch's own
// AdamW / Adam: same parameters after several steps with two groups, parameters of
// odd sizes (the vector loops' tails), a parameter without a gradient, the
// amsgrad fallback, and saved / loaded state.
#include <gtest/gtest.h>

#include <sstream>
#include <vector>

#include <torch/torch.h>

#include "optim/optim.h"
#include "optim/fused_adam.h"

namespace automm {
namespace {

std::vector<torch::Tensor> make_params(int64_t seed) {
  torch::manual_seed(seed);
  // 1, 17 and 100003 elements: scalar tails and more than one parallel chunk.
  return {torch::randn({1}), torch::randn({17}), torch::randn({311, 321}), torch::randn({3})};
}

std::vector<torch::optim::OptimizerParamGroup> groups_of(const std::vector<torch::Tensor>& params,
                                                         bool adamw, bool amsgrad = false) {
  std::vector<torch::optim::OptimizerParamGroup> groups;
  const auto options = [&](double lr, double wd) -> std::unique_ptr<torch::optim::OptimizerOptions> {
    if (adamw) return std::make_unique<torch::optim::AdamWOptions>(
        torch::optim::AdamWOptions(lr).eps(1e-6).weight_decay(wd).betas({0.9, 0.98}).amsgrad(amsgrad));
    return std::make_unique<torch::optim::AdamOptions>(
        torch::optim::AdamOptions(lr).weight_decay(wd).amsgrad(amsgrad));
  };
  groups.emplace_back(std::vector<torch::Tensor>{params[0], params[1]}, options(1e-2, 0.05));
  groups.emplace_back(std::vector<torch::Tensor>{params[2], params[3]}, options(3e-3, 0.0));
  return groups;
}

// Runs `steps` steps with the same gradients on two copies of the parameters.
template <typename Fused, typename Reference>
void expect_same_trajectory(bool adamw, bool amsgrad, int steps) {
  std::vector<torch::Tensor> a, b;
  for (const auto& p : make_params(0)) {
    a.push_back(p.clone().requires_grad_());
    b.push_back(p.clone().requires_grad_());
  }
  Fused fused(groups_of(a, adamw, amsgrad));
  Reference reference(groups_of(b, adamw, amsgrad));
  for (int step = 0; step < steps; ++step) {
    torch::manual_seed(100 + step);
    for (size_t i = 0; i < a.size(); ++i) {
      if (i == 3 && step % 2 == 0) continue;  // no gradient at this step: parameter untouched
      const auto g = torch::randn(a[i].sizes());
      a[i].mutable_grad() = g.clone();
      b[i].mutable_grad() = g.clone();
    }
    fused.step();
    reference.step();
    clear_gradients(fused);
    clear_gradients(reference);
  }
  for (size_t i = 0; i < a.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_TRUE(torch::allclose(a[i], b[i], 1e-5, 1e-6)) << (a[i] - b[i]).abs().max().item<double>();
    EXPECT_FALSE(a[i].grad().defined());
  }
}

TEST(FusedAdam, AdamWFollowsLibTorchAdamW) {
  expect_same_trajectory<FusedAdamW, torch::optim::AdamW>(true, false, 7);
}

TEST(FusedAdam, AdamFollowsLibTorchAdam) { expect_same_trajectory<FusedAdam, torch::optim::Adam>(false, false, 7); }

TEST(FusedAdam, AmsgradFallsBackToLibTorch) {
  expect_same_trajectory<FusedAdamW, torch::optim::AdamW>(true, true, 4);
}

TEST(FusedAdam, StepMovesParametersAgainstTheGradient) {
  // A control: the comparison above can fail. One step of AdamW from zero moments
  // moves every element by lr (bias-corrected m / sqrt(v) = sign(g)) after decay.
  auto p = torch::ones({5}).requires_grad_();
  FusedAdamW optimizer({p}, torch::optim::AdamWOptions(0.1).weight_decay(0.5).eps(0));
  p.mutable_grad() = torch::tensor({1.0f, -2.0f, 3.0f, -4.0f, 5.0f});
  optimizer.step();
  const auto expected = torch::tensor({0.95f - 0.1f, 0.95f + 0.1f, 0.95f - 0.1f, 0.95f + 0.1f, 0.95f - 0.1f});
  EXPECT_TRUE(torch::allclose(p.detach(), expected, 1e-6, 1e-6)) << p;
}

TEST(FusedAdam, StepMovesTheVersionCounterAsAnInPlaceOpWould) {
  // Inference caches of the weights (kernels/packed_linear.h) repack on a version change.
  auto p = torch::ones({4, 3}).requires_grad_();
  FusedAdamW optimizer({p}, torch::optim::AdamWOptions(0.1));
  const auto version = p._version();
  p.mutable_grad() = torch::ones({4, 3});
  optimizer.step();
  EXPECT_GT(p._version(), version);
}

TEST(FusedAdam, SavedStateResumesTheSameTrajectory) {
  auto params = make_params(1);
  for (auto& p : params) p.requires_grad_();
  FusedAdamW first(groups_of(params, true));
  for (auto& p : params) p.mutable_grad() = torch::ones_like(p);
  first.step();
  std::stringstream stream;
  torch::serialize::OutputArchive out;
  first.save(out);
  out.save_to(stream);

  std::vector<torch::Tensor> copy;
  for (const auto& p : params) copy.push_back(p.detach().clone().requires_grad_());
  FusedAdamW resumed(groups_of(copy, true));
  torch::serialize::InputArchive in;
  in.load_from(stream);
  resumed.load(in);
  for (size_t i = 0; i < params.size(); ++i) {
    params[i].mutable_grad() = torch::full_like(params[i], -0.5);
    copy[i].mutable_grad() = torch::full_like(copy[i], -0.5);
  }
  first.step();
  resumed.step();
  for (size_t i = 0; i < params.size(); ++i) EXPECT_TRUE(params[i].equal(copy[i])) << i;
}

}  // namespace
}  // namespace automm
