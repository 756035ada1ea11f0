// Every instruction-set variant of the CPU kernels this machine runs, each
// against a plain scalar reference written here (the dispatched versions are
// covered through the optimizer and dropout tests).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/cpu_kernels.h"

namespace automm::kernels {
namespace {

std::vector<Isa> runnable_isas() {
  std::vector<Isa> isas;
  for (Isa isa : {Isa::kBaseline, Isa::kAvx2, Isa::kAvx512})
    if (isa_supported(isa)) isas.push_back(isa);
  return isas;
}

// Lengths around the vector widths (8 and 16 floats) and a long one.
const std::vector<int64_t> kLengths = {1, 2, 7, 8, 9, 15, 16, 17, 31, 33, 1000, 4099};

TEST(CpuKernels, TheBaselineAlwaysRunsAndTheBestIsSupported) {
  EXPECT_TRUE(isa_supported(Isa::kBaseline));
  EXPECT_TRUE(isa_supported(best_isa()));
  for (Isa isa : {Isa::kBaseline, Isa::kAvx2, Isa::kAvx512})
    if (!isa_supported(isa)) std::cout << "this CPU cannot run " << isa_name(isa) << ": not tested here\n";
}

TEST(CpuKernels, AdamOfEveryVariantMatchesTheFormula) {
  AdamScalars s;
  s.beta1 = 0.9f;
  s.beta2 = 0.999f;
  s.eps = 1e-8f;
  s.decay = 1.0f - 1e-3f * 0.01f;
  s.grad_decay = 0.02f;
  s.step_size = 1e-3f / (1.0f - 0.9f * 0.9f);
  s.sqrt_bias2 = std::sqrt(1.0f - 0.999f * 0.999f);
  for (Isa isa : runnable_isas()) {
    for (int64_t n : kLengths) {
      SCOPED_TRACE(std::string(isa_name(isa)) + ", n = " + std::to_string(n));
      std::mt19937 rng(static_cast<unsigned>(n));
      std::normal_distribution<float> normal(0.0f, 1.0f);
      std::vector<float> param(n), grad(n), m(n), v(n);
      for (int64_t i = 0; i < n; ++i) {
        param[i] = normal(rng);
        grad[i] = normal(rng);
        m[i] = 0.1f * normal(rng);
        v[i] = std::abs(0.01f * normal(rng));
      }
      std::vector<double> expected_param(n), expected_m(n), expected_v(n);
      for (int64_t i = 0; i < n; ++i) {  // torch's order of operations, in double
        const double g = grad[i] + static_cast<double>(s.grad_decay) * param[i];
        expected_m[i] = m[i] * static_cast<double>(s.beta1) + (1.0 - s.beta1) * g;
        expected_v[i] = v[i] * static_cast<double>(s.beta2) + (1.0 - s.beta2) * g * g;
        expected_param[i] = param[i] * static_cast<double>(s.decay) -
                            s.step_size * (expected_m[i] / (std::sqrt(expected_v[i]) / s.sqrt_bias2 + s.eps));
      }
      adam_update(isa, param.data(), grad.data(), m.data(), v.data(), n, s);
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_NEAR(m[i], expected_m[i], 1e-6 * (1 + std::abs(expected_m[i]))) << "element " << i;
        ASSERT_NEAR(v[i], expected_v[i], 1e-6 * (1 + std::abs(expected_v[i]))) << "element " << i;
        ASSERT_NEAR(param[i], expected_param[i], 1e-5 * (1 + std::abs(expected_param[i]))) << "element " << i;
      }
    }
  }
}

// SplitMix64 written out: the k-th number (k from 1) of `seed`.
uint64_t splitmix64(uint64_t seed, uint64_t k) {
  uint64_t z = seed + k * 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Element i's 32 bits: the low half of number i / 2 + 1 for even i, the high half for odd i.
bool kept(const DropoutScalars& s, int64_t i) {
  const uint64_t z = splitmix64(s.seed, static_cast<uint64_t>(i / 2) + 1);
  const uint64_t bits = i % 2 == 0 ? (z & 0xffffffffULL) : (z >> 32);
  return bits >= s.threshold;
}

template <typename T>
void check_dropout(Isa isa, int64_t n) {
  DropoutScalars s;
  s.seed = 12345 + static_cast<uint64_t>(n);
  s.threshold = static_cast<uint64_t>(std::llround(0.3 * 4294967296.0));
  s.scale = 1.0 / 0.7;
  std::vector<T> in(n), out(n, T(-7));
  for (int64_t i = 0; i < n; ++i) in[i] = static_cast<T>(0.25 * static_cast<double>(i % 13) - 1.0);
  // Two spans, split inside the range as the parallel callers split it.
  const int64_t pairs = (n + 1) / 2, middle = pairs / 2;
  dropout_span(isa, in.data(), out.data(), 0, middle, n, s);
  dropout_span(isa, in.data(), out.data(), middle, pairs, n, s);
  int64_t dropped = 0;
  for (int64_t i = 0; i < n; ++i) {
    using Acc = std::conditional_t<std::is_same_v<T, double>, double, float>;
    const T expected = kept(s, i) ? static_cast<T>(static_cast<Acc>(in[i]) * static_cast<Acc>(s.scale)) : T(0);
    dropped += !kept(s, i);
    ASSERT_EQ(static_cast<double>(out[i]), static_cast<double>(expected)) << "element " << i;
  }
  if (n >= 1000) {
    EXPECT_NEAR(static_cast<double>(dropped) / static_cast<double>(n), 0.3, 0.05);
  }
}

TEST(CpuKernels, DropoutOfEveryVariantAndDtypeMatchesSplitMix64) {
  for (Isa isa : runnable_isas()) {
    for (int64_t n : kLengths) {
      SCOPED_TRACE(std::string(isa_name(isa)) + ", n = " + std::to_string(n));
      check_dropout<float>(isa, n);
      check_dropout<double>(isa, n);
      check_dropout<c10::BFloat16>(isa, n);
      check_dropout<c10::Half>(isa, n);
    }
  }
}

}  // namespace
}  // namespace automm::kernels
