// The packed oneDNN linear (src/kernels/packed_linear.cpp) against ATen's
// addmm and activations: every epilogue, with and without bias and a fused
// residual, row counts around oneDNN's blocking, fp32, bf16 and bf16 autocast;
// when it must step aside (autograd, disabled); and its cache (packed once,
// repacked after an in-place update, released with the weight); one primitive
// running on several threads at once.
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#include "kernels/packed_linear.h"

namespace automm::kernels {
namespace {

const std::vector<Epilogue> kEpilogues = {Epilogue::kNone, Epilogue::kGelu, Epilogue::kGeluTanh, Epilogue::kRelu,
                                          Epilogue::kSilu, Epilogue::kQuickGelu, Epilogue::kTanh};

torch::Tensor reference(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b, Epilogue epilogue,
                        const torch::Tensor& residual) {
  auto y = apply_epilogue(epilogue, torch::nn::functional::linear(x.to(torch::kDouble), w.to(torch::kDouble),
                                                                  b.defined() ? b.to(torch::kDouble) : b));
  return residual.defined() ? y + residual.to(torch::kDouble) : y;
}

double max_error(const torch::Tensor& y, const torch::Tensor& expected) {
  return (y.to(torch::kDouble) - expected).abs().max().item<double>() / expected.abs().max().item<double>();
}

// Restores autocast's state on scope exit.
struct CpuAutocast {
  CpuAutocast() {
    at::autocast::set_cpu_enabled(true);
    at::autocast::set_autocast_cpu_dtype(torch::kBFloat16);
  }
  ~CpuAutocast() {
    at::autocast::set_cpu_enabled(false);
    at::autocast::clear_cache();
  }
};

class PackedLinearTest : public ::testing::Test {
 protected:
  void SetUp() override { set_packed_linear_enabled(true); }
  void TearDown() override { set_packed_linear_enabled(true); }
  torch::NoGradGuard no_grad_;
};

TEST_F(PackedLinearTest, Fp32MatchesTheLinearForEveryEpilogueAndRowCount) {
  torch::manual_seed(0);
  const auto w = torch::randn({48, 40}) * 0.2, b = torch::randn({48});
  for (int64_t rows : {1, 7, 16, 33, 130}) {
    const auto x = torch::randn({rows, 40});
    const auto residual = torch::randn({rows, 48});
    for (Epilogue epilogue : kEpilogues) {
      for (bool with_bias : {true, false}) {
        for (bool with_residual : {false, true}) {
          const auto bias = with_bias ? b : torch::Tensor();
          const auto res = with_residual ? residual : torch::Tensor();
          const auto y = packed_linear(x, w, bias, epilogue, res);
          ASSERT_TRUE(y.defined());
          EXPECT_EQ(y.scalar_type(), torch::kFloat);
          EXPECT_LT(max_error(y, reference(x, w, bias, epilogue, res)), 1e-5)
              << rows << " rows, epilogue " << static_cast<int>(epilogue) << ", bias " << with_bias
              << ", residual " << with_residual;
        }
      }
    }
  }
}

TEST_F(PackedLinearTest, KeepsLeadingDimensionsAndAResidualOfAnotherDtypeIsAddedAfter) {
  torch::manual_seed(1);
  const auto w = torch::randn({24, 16}), b = torch::randn({24});
  const auto x = torch::randn({2, 5, 16});
  const auto y = packed_linear(x, w, b);
  ASSERT_TRUE(y.defined());
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{2, 5, 24}));
  EXPECT_LT(max_error(y, reference(x, w, b, Epilogue::kNone, {})), 1e-5);
  // A double residual cannot join the float matmul: ATen adds it, promoting as it would.
  const auto residual = torch::randn({2, 5, 24}, torch::kDouble);
  const auto z = packed_linear(x, w, b, Epilogue::kGelu, residual);
  ASSERT_TRUE(z.defined());
  EXPECT_EQ(z.scalar_type(), torch::kDouble);
  EXPECT_LT(max_error(z, reference(x, w, b, Epilogue::kGelu, residual)), 1e-5);
}

TEST_F(PackedLinearTest, Bf16AndAutocastMatchTheLinearToBf16Precision) {
  torch::manual_seed(2);
  const auto w = torch::randn({64, 96}) * 0.1, b = torch::randn({64}) * 0.1;
  const auto x = torch::randn({9, 96});
  const auto residual = torch::randn({9, 64}).to(torch::kBFloat16);
  const auto y = packed_linear(x.to(torch::kBFloat16), w.to(torch::kBFloat16), b.to(torch::kBFloat16),
                               Epilogue::kGelu, residual);
  if (!y.defined()) {
    // oneDNN offers only a reference bf16 kernel on this CPU: ATen runs bf16, autocast too.
    std::cout << "this CPU has no fast oneDNN bf16 matmul: bf16 stays on ATen here\n";
    CpuAutocast autocast;
    EXPECT_FALSE(packed_linear(x, w, b).defined());
    return;
  }
  EXPECT_EQ(y.scalar_type(), torch::kBFloat16);
  const auto expected = reference(x.to(torch::kBFloat16), w.to(torch::kBFloat16), b.to(torch::kBFloat16),
                                  Epilogue::kGelu, residual);
  EXPECT_LT(max_error(y, expected), 1e-2);
  {
    // Autocast: fp32 weights packed as bf16, a bf16 result as autocast's linear gives.
    CpuAutocast autocast;
    const auto z = packed_linear(x, w, b, Epilogue::kRelu);
    ASSERT_TRUE(z.defined());
    EXPECT_EQ(z.scalar_type(), torch::kBFloat16);
    const auto aten = torch::relu(torch::nn::functional::linear(x, w, b));
    EXPECT_EQ(aten.scalar_type(), torch::kBFloat16);
    EXPECT_LT(max_error(z, aten.to(torch::kDouble)), 2e-2);
    // And close to the fp32 result: the difference is bf16 rounding only.
    EXPECT_LT(max_error(z, reference(x, w, b, Epilogue::kRelu, {})), 2e-2);
  }
  // Mixed dtypes outside autocast are ATen's business.
  EXPECT_FALSE(packed_linear(x, w.to(torch::kBFloat16), b).defined());
}

TEST_F(PackedLinearTest, StepsAsideForAutogradAndWhenDisabled) {
  const auto w = torch::randn({8, 4}).requires_grad_(), b = torch::randn({8});
  const auto x = torch::randn({3, 4});
  {
    torch::AutoGradMode grad(true);
    EXPECT_FALSE(packed_linear(x, w, b).defined());  // the weight's gradient would be lost
    EXPECT_TRUE(packed_linear(x, w.detach(), b).defined());  // nothing to record
  }
  EXPECT_TRUE(packed_linear(x, w, b).defined());  // no_grad
  set_packed_linear_enabled(false);
  EXPECT_FALSE(packed_linear(x, w, b).defined());
  EXPECT_EQ(packed_weight_count(), 0);
}

TEST_F(PackedLinearTest, PacksOnceRepacksAfterAnUpdateAndReleasesWithTheWeight) {
  const auto x = torch::randn({5, 32});
  const int64_t held = packed_weight_count();
  auto w = torch::randn({16, 32});
  auto b = torch::randn({16});
  const int64_t packings = packing_count();
  const auto first = packed_linear(x, w, b);
  const auto again = packed_linear(x, w, b);
  EXPECT_EQ(packing_count(), packings + 1);
  EXPECT_TRUE(torch::equal(first, again));
  EXPECT_EQ(packed_weight_count(), held + 1);

  // An in-place update (an optimizer step) moves the version counter: repacked.
  w.mul_(2);
  const auto doubled = packed_linear(x, w, b);
  EXPECT_EQ(packing_count(), packings + 2);
  EXPECT_LT(max_error(doubled, reference(x, w, b, Epilogue::kNone, {})), 1e-5);
  EXPECT_GT((doubled - first).abs().max().item<double>(), 1.0);
  b.add_(1);  // the bias too
  EXPECT_LT(max_error(packed_linear(x, w, b), reference(x, w, b, Epilogue::kNone, {})), 1e-5);
  EXPECT_EQ(packing_count(), packings + 3);

  // A view made anew per call (a convolution's weight as a matrix) hits the same entry.
  auto conv = torch::randn({16, 2, 4, 4});
  packed_linear(x, conv.view({16, -1}), b);
  packed_linear(x, conv.view({16, -1}), b);
  EXPECT_EQ(packing_count(), packings + 4);

  w = torch::Tensor();
  conv = torch::Tensor();
  EXPECT_EQ(packed_weight_count(), held);
}

TEST_F(PackedLinearTest, APrimitiveBuiltOnOneThreadRunsOnManyAtOnce) {
  // Serve and Python predict from several threads: oneDNN's shared scratchpad
  // would tie a primitive to the thread that built it; each call brings its own.
  torch::manual_seed(3);
  const auto w = torch::randn({256, 512}) * 0.05, b = torch::randn({256});
  const auto x = torch::randn({37, 512});
  const auto expected = packed_linear(x, w, b, Epilogue::kGelu);  // built here
  ASSERT_TRUE(expected.defined());
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      torch::NoGradGuard no_grad;
      for (int i = 0; i < 50; ++i) {
        const auto y = packed_linear(x, w, b, Epilogue::kGelu);
        if (!y.defined() || !torch::equal(y, expected)) ++mismatches[static_cast<size_t>(t)];
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(mismatches, std::vector<int>(4, 0));
  EXPECT_LT(max_error(expected, reference(x, w, b, Epilogue::kGelu, {})), 1e-5);
}

}  // namespace
}  // namespace automm::kernels
