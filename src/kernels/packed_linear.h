// Inference linear layers on oneDNN's matmul (Debian's libdnnl, the library
// LibTorch's own CPU matmuls run on) with each weight reordered once into the
// blocked layout oneDNN's kernels read, and the activation and a residual add
// fused into the matmul's epilogue. LibTorch's addmm hands oneDNN the plain
// weight on every call, which oneDNN then reorders: at batch 1 that costs
// 20-40% of a BERT or ViT layer's matmul time, and 3-4x for ELECTRA-small's
// 256-wide ones (docs/deployment.md has the figures).
//
// The packed copies live in a process-wide cache keyed by the weight's memory:
// an entry is repacked when the weight or bias changes (their version counters
// or data pointers move, as an optimizer step or a load does) and dropped once
// the weight's storage is freed. A packed copy costs the weight's size in the
// compute dtype, once per weight.
#pragma once

#include <cstdint>

#include <torch/torch.h>

namespace automm::kernels {

// What follows the matmul: Hugging Face's and timm's activations.
enum class Epilogue {
  kNone,
  kGelu,       // 0.5 x (1 + erf(x / sqrt 2))
  kGeluTanh,   // gelu_new / gelu_pytorch_tanh
  kRelu,
  kSilu,       // x sigmoid(x)
  kQuickGelu,  // CLIP's x sigmoid(1.702 x)
  kTanh,
};

// The epilogue in ATen ops: the reference, and the path when packing does not apply.
torch::Tensor apply_epilogue(Epilogue epilogue, const torch::Tensor& y);

// epilogue(x W^T + b) + residual, x [..., in] and W [out, in] (b [out] or
// undefined, residual shaped like the result or undefined), through a packed
// oneDNN matmul. Returns an undefined tensor when the call is not one it
// serves, and the caller runs ATen instead:
//  - autograd would record it (grad mode on and any operand requires grad);
//  - the JIT tracer is recording (a trace must see ATen ops);
//  - not every operand is a CPU tensor, or the dtypes are not fp32 / bf16 alike;
//  - packing is turned off (set_packed_linear_enabled, AUTOMM_PACKED_LINEAR=0).
// Under CPU autocast to bf16, fp32 weights are packed as bf16 and the result is
// bf16, as autocast's linear gives. A residual of another dtype than the
// result is added afterwards with ATen's type promotion.
torch::Tensor packed_linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                            Epilogue epilogue = Epilogue::kNone, const torch::Tensor& residual = {});

// On unless the environment sets AUTOMM_PACKED_LINEAR=0 when first asked.
bool packed_linear_enabled();
// Turning it off also releases every packed weight.
void set_packed_linear_enabled(bool enabled);
// Packed weights held now, and how many times a weight was packed (tests).
int64_t packed_weight_count();
int64_t packing_count();

}  // namespace automm::kernels
