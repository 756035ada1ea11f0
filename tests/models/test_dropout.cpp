// Tests of automm::Dropout (src/models/dropout.*): the mask's statistics, that it
// depends only on the seed and the element index, that backward regenerates it,
// and that it follows torch::manual_seed like torch's own dropout.
#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include "models/dropout.h"

namespace automm {
namespace {

TEST(Dropout, KeepsTheExpectedFractionAndScalesWhatItKeeps) {
  for (double p : {0.1, 0.5, 0.9}) {
    torch::manual_seed(1);
    const auto x = torch::rand({1 << 20}) + 0.5;  // no zeros of its own
    const auto y = apply_dropout(x, p, /*training=*/true);
    const auto kept = y.ne(0);
    const double keep = kept.to(torch::kFloat64).mean().item<double>();
    // 2^20 Bernoulli draws: the standard deviation of the fraction is below 5e-4.
    EXPECT_NEAR(keep, 1 - p, 0.003) << "p=" << p;
    EXPECT_TRUE(torch::allclose(y.masked_select(kept), x.masked_select(kept) / (1 - p), 1e-6, 0));
  }
}

TEST(Dropout, NeighbouringMasksAreIndependent) {
  // Elements 2k and 2k + 1 share one SplitMix64 number; their masks must still be
  // uncorrelated, as must elements a row apart.
  const auto keep = dropout_keep_mask(1 << 20, 0.5, 12345).to(torch::kFloat64);
  const auto even = keep.slice(0, 0, keep.size(0), 2), odd = keep.slice(0, 1, keep.size(0), 2);
  EXPECT_NEAR((even * odd).mean().item<double>(), 0.25, 0.004);
  EXPECT_NEAR((keep.slice(0, 0, -768) * keep.slice(0, 768)).mean().item<double>(), 0.25, 0.003);
  // A different seed gives a different mask (about half the elements differ).
  const auto other = dropout_keep_mask(1 << 20, 0.5, 12346).to(torch::kFloat64);
  EXPECT_NEAR(keep.ne(other).to(torch::kFloat64).mean().item<double>(), 0.5, 0.004);
}

TEST(Dropout, MaskDependsOnlyOnSeedAndIndex) {
  // The same seed gives the same mask for any length (odd ones included) and any
  // number of threads, so results do not depend on the machine.
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  const auto one_thread = dropout_keep_mask(100001, 0.3, 7);
  at::set_num_threads(2);
  const auto two_threads = dropout_keep_mask(100001, 0.3, 7);
  at::set_num_threads(threads);
  EXPECT_TRUE(one_thread.equal(two_threads));
  EXPECT_TRUE(dropout_keep_mask(100000, 0.3, 7).equal(one_thread.slice(0, 0, 100000)));
  EXPECT_TRUE(dropout_keep_mask(3, 0.3, 7).equal(one_thread.slice(0, 0, 3)));
}

TEST(Dropout, FollowsManualSeedAndMatchesAcrossDtypes) {
  const auto x = torch::rand({37, 129}) + 0.5;
  torch::manual_seed(3);
  const auto a = apply_dropout(x, 0.2, true);
  torch::manual_seed(3);
  const auto b = apply_dropout(x, 0.2, true);
  torch::manual_seed(3);
  const auto c = apply_dropout(x.to(torch::kBFloat16), 0.2, true);
  torch::manual_seed(3);
  const auto d = apply_dropout(x.to(torch::kFloat64), 0.2, true);
  torch::manual_seed(3);
  const auto e = apply_dropout(x.to(torch::kHalf), 0.2, true);
  EXPECT_TRUE(a.equal(b));
  EXPECT_TRUE(a.ne(0).equal(c.ne(0)));
  EXPECT_TRUE(a.ne(0).equal(d.ne(0)));
  EXPECT_TRUE(a.ne(0).equal(e.ne(0)));
  EXPECT_TRUE(torch::allclose(c.to(torch::kFloat32), a, 1e-2, 0));  // bf16 rounding
  EXPECT_TRUE(torch::allclose(d.to(torch::kFloat32), a, 1e-6, 0));
  // The next call draws a new seed, hence a new mask.
  EXPECT_FALSE(apply_dropout(x, 0.2, true).ne(0).equal(a.ne(0)));
}

TEST(Dropout, BackwardUsesTheForwardMask) {
  torch::manual_seed(5);
  const auto x = (torch::rand({8, 33}, torch::kFloat64) + 0.5).requires_grad_();
  const auto weights = torch::randn({8, 33}, torch::kFloat64);
  const auto y = apply_dropout(x, 0.25, true);
  (y * weights).sum().backward();
  // d(sum(w * y)) / dx = w * mask / (1 - p) = w * y / x
  EXPECT_TRUE(torch::allclose(x.grad(), weights * y.detach() / x.detach(), 1e-12, 1e-12));
  // Non-contiguous input and gradient.
  const auto base = (torch::rand({33, 8}, torch::kFloat64) + 0.5).requires_grad_();
  const auto t = base.t();
  const auto z = apply_dropout(t, 0.25, true);
  (z * weights).sum().backward();
  EXPECT_TRUE(torch::allclose(base.grad().t(), weights * z.detach() / t.detach(), 1e-12, 1e-12));
}

TEST(Dropout, ModuleIsIdentityInEvalModeAndChecksItsProbability) {
  Dropout dropout(0.4);
  const auto x = torch::randn({4, 5});
  dropout->eval();
  EXPECT_TRUE(dropout(x).equal(x));
  dropout->train();
  EXPECT_FALSE(dropout(torch::ones({1000})).equal(torch::ones({1000})));
  EXPECT_TRUE(apply_dropout(x, 1.0, true).eq(0).all().item<bool>());
  EXPECT_TRUE(apply_dropout(x, 0.0, true).equal(x));
  EXPECT_THROW(Dropout(1.5), std::invalid_argument);
  EXPECT_THROW(apply_dropout(x, -0.1, true), std::invalid_argument);
}

}  // namespace
}  // namespace automm
