// Element-wise CPU loops that decide training speed outside the matmuls. This file
// and cpu_kernels.cpp hold no torch headers: cpu_kernels.cpp is compiled with
// -fno-math-errno (so sqrt vectorizes) and each loop is compiled once per
// instruction set (x86-64-v4 / AVX-512, x86-64-v3 / AVX2, baseline x86-64) from
// one body. Each variant can be called by name (tests check every one this CPU
// runs); the functions without an Isa argument run the best this CPU supports.
#pragma once

#include <cstdint>

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

namespace automm::kernels {

enum class Isa { kBaseline, kAvx2, kAvx512 };
bool isa_supported(Isa isa);
// The widest instruction set this CPU runs (decided once).
Isa best_isa();
const char* isa_name(Isa isa);

// One Adam / AdamW step over n contiguous fp32 elements (torch's order of operations):
//   p *= decay;  g' = g + grad_decay * p_old;  m = beta1 m + (1 - beta1) g';
//   v = beta2 v + (1 - beta2) g'^2;  p -= step_size * m / (sqrt(v) / sqrt_bias2 + eps)
struct AdamScalars {
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
  float decay = 1.0f;       // AdamW's decoupled weight decay: 1 - lr * weight_decay
  float grad_decay = 0.0f;  // Adam's L2 weight decay
  float step_size = 0.0f;   // lr / bias_correction1
  float sqrt_bias2 = 1.0f;  // sqrt(bias_correction2)
};
void adam_update(Isa isa, float* param, const float* grad, float* exp_avg, float* exp_avg_sq, int64_t n,
                 const AdamScalars& s);
inline void adam_update(float* param, const float* grad, float* exp_avg, float* exp_avg_sq, int64_t n,
                        const AdamScalars& s) {
  adam_update(best_isa(), param, grad, exp_avg, exp_avg_sq, n, s);
}

// Dropout over elements [2 * first_pair, min(2 * end_pair, n)): element 2k takes the
// low 32 bits of SplitMix64's k-th number for `seed`, 2k + 1 the high bits; an
// element is kept (out = in * scale) when its bits are >= threshold, else out = 0.
struct DropoutScalars {
  uint64_t seed = 0;
  uint64_t threshold = 0;  // round(p * 2^32)
  double scale = 1.0;      // 1 / (1 - p)
};
void dropout_span(Isa isa, const float* in, float* out, int64_t first_pair, int64_t end_pair, int64_t n,
                  const DropoutScalars& s);
inline void dropout_span(const float* in, float* out, int64_t first_pair, int64_t end_pair, int64_t n,
                         const DropoutScalars& s) {
  dropout_span(best_isa(), in, out, first_pair, end_pair, n, s);
}
void dropout_span(Isa isa, const double* in, double* out, int64_t first_pair, int64_t end_pair, int64_t n,
                  const DropoutScalars& s);
inline void dropout_span(const double* in, double* out, int64_t first_pair, int64_t end_pair, int64_t n,
                         const DropoutScalars& s) {
  dropout_span(best_isa(), in, out, first_pair, end_pair, n, s);
}
void dropout_span(Isa isa, const c10::BFloat16* in, c10::BFloat16* out, int64_t first_pair, int64_t end_pair, int64_t n,
                  const DropoutScalars& s);
inline void dropout_span(const c10::BFloat16* in, c10::BFloat16* out, int64_t first_pair, int64_t end_pair, int64_t n,
                         const DropoutScalars& s) {
  dropout_span(best_isa(), in, out, first_pair, end_pair, n, s);
}
void dropout_span(Isa isa, const c10::Half* in, c10::Half* out, int64_t first_pair, int64_t end_pair, int64_t n,
                  const DropoutScalars& s);
inline void dropout_span(const c10::Half* in, c10::Half* out, int64_t first_pair, int64_t end_pair, int64_t n,
                         const DropoutScalars& s) {
  dropout_span(best_isa(), in, out, first_pair, end_pair, n, s);
}

}  // namespace automm::kernels
