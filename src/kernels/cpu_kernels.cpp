#include "kernels/cpu_kernels.h"

#include <cmath>
#include <type_traits>


namespace automm::kernels {
namespace {

constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ULL;

// SplitMix64's output function: its n-th number for a seed is mix64(seed + n * golden).
inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

template <typename T>
inline __attribute__((always_inline)) void dropout_pairs(const T* __restrict in, T* __restrict out, int64_t first_pair,
                                                         int64_t end_pair, const DropoutScalars& s) {
  using Acc = std::conditional_t<std::is_same_v<T, double>, double, float>;
  const Acc scale = static_cast<Acc>(s.scale);
  const uint64_t seed = s.seed, threshold = s.threshold;
  for (int64_t k = first_pair; k < end_pair; ++k) {
    const uint64_t z = mix64(seed + (static_cast<uint64_t>(k) + 1) * kGolden);
    const Acc keep_lo = (z & 0xffffffffULL) >= threshold ? scale : Acc(0);
    const Acc keep_hi = (z >> 32) >= threshold ? scale : Acc(0);
    out[2 * k] = static_cast<T>(static_cast<Acc>(in[2 * k]) * keep_lo);
    out[2 * k + 1] = static_cast<T>(static_cast<Acc>(in[2 * k + 1]) * keep_hi);
  }
}

// The pairs before the last, then the last one, which may hold a single element.
template <typename T>
inline __attribute__((always_inline)) void dropout_any(const T* in, T* out, int64_t first_pair, int64_t end_pair,
                                                       int64_t n, const DropoutScalars& s) {
  if (first_pair >= end_pair) return;
  const bool odd_tail = 2 * end_pair > n;
  dropout_pairs(in, out, first_pair, odd_tail ? end_pair - 1 : end_pair, s);
  if (odd_tail) {
    const uint64_t z = mix64(s.seed + static_cast<uint64_t>(end_pair) * kGolden);
    const int64_t i = n - 1;
    out[i] = (z & 0xffffffffULL) >= s.threshold ? static_cast<T>(static_cast<double>(in[i]) * s.scale) : T(0);
  }
}

inline __attribute__((always_inline)) void adam_body(float* __restrict param, const float* __restrict grad,
                                                    float* __restrict exp_avg, float* __restrict exp_avg_sq, int64_t n,
                                                    const AdamScalars& s) {
  const float beta1 = s.beta1, beta2 = s.beta2, eps = s.eps, decay = s.decay, grad_decay = s.grad_decay;
  const float step_size = s.step_size, sqrt_bias2 = s.sqrt_bias2;
  for (int64_t i = 0; i < n; ++i) {
    const float g = grad[i] + grad_decay * param[i];
    const float m = exp_avg[i] * beta1 + (1.0f - beta1) * g;
    const float v = exp_avg_sq[i] * beta2 + (1.0f - beta2) * g * g;
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
    param[i] = param[i] * decay - step_size * (m / (std::sqrt(v) / sqrt_bias2 + eps));
  }
}

// The instruction sets by their features: x86-64-v4 (AVX-512) and x86-64-v3 (AVX2).
// GCC names the levels; clang 14 (the sanitizer and fuzzer builds) knows only features.
#ifdef __clang__
#define AUTOMM_TARGET_V4 "avx512f,avx512bw,avx512cd,avx512dq,avx512vl,avx2,fma,bmi2"
#define AUTOMM_TARGET_V3 "avx2,fma,bmi2"
#else
#define AUTOMM_TARGET_V4 "arch=x86-64-v4"
#define AUTOMM_TARGET_V3 "arch=x86-64-v3"
#endif

// One function per instruction set, each compiling the same always-inline body
// for its target; the body's loops vectorize to that target's widest registers.
#define AUTOMM_ISA_VARIANTS(NAME, BODY, PARAMS, ARGS)                                     \
  __attribute__((target(AUTOMM_TARGET_V4))) static void NAME##_avx512 PARAMS { BODY ARGS; } \
  __attribute__((target(AUTOMM_TARGET_V3))) static void NAME##_avx2 PARAMS { BODY ARGS; }   \
  static void NAME##_baseline PARAMS { BODY ARGS; }                                         \
  void NAME(Isa isa, AUTOMM_UNPAREN PARAMS) {                                             \
    switch (isa) {                                                                        \
      case Isa::kAvx512: return NAME##_avx512 ARGS;                                       \
      case Isa::kAvx2: return NAME##_avx2 ARGS;                                           \
      case Isa::kBaseline: return NAME##_baseline ARGS;                                   \
    }                                                                                     \
  }
#define AUTOMM_UNPAREN(...) __VA_ARGS__

}  // namespace

AUTOMM_ISA_VARIANTS(adam_update, adam_body,
                    (float* param, const float* grad, float* exp_avg, float* exp_avg_sq, int64_t n,
                     const AdamScalars& s),
                    (param, grad, exp_avg, exp_avg_sq, n, s))
AUTOMM_ISA_VARIANTS(dropout_span, dropout_any,
                    (const float* in, float* out, int64_t first_pair, int64_t end_pair, int64_t n,
                     const DropoutScalars& s),
                    (in, out, first_pair, end_pair, n, s))
AUTOMM_ISA_VARIANTS(dropout_span, dropout_any,
                    (const double* in, double* out, int64_t first_pair, int64_t end_pair, int64_t n,
                     const DropoutScalars& s),
                    (in, out, first_pair, end_pair, n, s))
AUTOMM_ISA_VARIANTS(dropout_span, dropout_any,
                    (const c10::BFloat16* in, c10::BFloat16* out, int64_t first_pair, int64_t end_pair, int64_t n,
                     const DropoutScalars& s),
                    (in, out, first_pair, end_pair, n, s))
AUTOMM_ISA_VARIANTS(dropout_span, dropout_any,
                    (const c10::Half* in, c10::Half* out, int64_t first_pair, int64_t end_pair, int64_t n,
                     const DropoutScalars& s),
                    (in, out, first_pair, end_pair, n, s))

bool isa_supported(Isa isa) {
  switch (isa) {
    case Isa::kAvx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("avx512vl") && isa_supported(Isa::kAvx2);
    case Isa::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi2");
    case Isa::kBaseline:
      return true;
  }
  return false;
}

Isa best_isa() {
  static const Isa best = isa_supported(Isa::kAvx512) ? Isa::kAvx512
                          : isa_supported(Isa::kAvx2) ? Isa::kAvx2
                                                      : Isa::kBaseline;
  return best;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kAvx512:
      return "x86-64-v4 (AVX-512)";
    case Isa::kAvx2:
      return "x86-64-v3 (AVX2)";
    case Isa::kBaseline:
      return "x86-64 (baseline)";
  }
  return "?";
}

}  // namespace automm::kernels
