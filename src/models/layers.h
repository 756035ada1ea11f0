// Building blocks shared by the tabular backbones and the fusion models.
#pragma once

#include <string>

#include <torch/torch.h>

#include "automm/config.h"
#include "kernels/packed_linear.h"
#include "models/dropout.h"

namespace automm {

torch::Tensor apply_activation(const std::string& name, const torch::Tensor& x);

// LayerNorm answering in its weights' dtype. Under CPU autocast a bf16 activation
// meets fp32 norm weights, which torch 1.13's layer_norm rejects; bf16 / fp16
// weights (a model cast for inference) are normalized in fp32, which is faster.
torch::Tensor apply_layer_norm(torch::nn::LayerNormImpl& norm, const torch::Tensor& x);
// The same over x's last dimension for norms that keep their own weight and bias
// (timm's LayerNorm2d, MetaFormer norms); `bias` may be undefined.
torch::Tensor layer_norm_in_weight_dtype(const torch::Tensor& x, const torch::Tensor& weight,
                                         const torch::Tensor& bias, double eps);

// epilogue(linear(x)) + residual (residual undefined: none). For inference, one
// packed oneDNN matmul with the epilogue and the residual fused
// (kernels/packed_linear.h); otherwise (training, tracing, other dtypes, a PEFT
// adapter) one addmm on x viewed as a matrix, since torch 1.13's linear runs a
// rank-3 input as mm + a separate bias add, then the epilogue and the add.
torch::Tensor apply_linear(torch::nn::LinearImpl& linear, const torch::Tensor& x,
                           kernels::Epilogue epilogue = kernels::Epilogue::kNone, const torch::Tensor& residual = {});

struct MlpOptions {
  int64_t in_features = 0;
  int64_t hidden_features = 0;
  int64_t num_layers = 1;
  std::string activation = "leaky_relu";
  std::string normalization = "layer_norm";  // layer_norm, batch_norm, none
  double dropout = 0.1;
  // The first unit normalizes its input unless this is false (see numerical_mlp).
  bool normalize_input = true;
  // Width of a final Linear after the units; 0 = none (output width hidden_features).
  int64_t out_features = 0;
};
// Reads model.<base>.{hidden_size, activation, num_layers, drop_rate, normalization}.
MlpOptions mlp_options_from(const Config& config, const std::string& base, int64_t in_features);

// AutoMM's MLP: num_layers units of norm -> Linear -> activation -> dropout,
// then an optional Linear to out_features.
class MlpImpl : public torch::nn::Module {
 public:
  explicit MlpImpl(const MlpOptions& options);
  torch::Tensor forward(torch::Tensor x);  // [batch, in] -> [batch, out or hidden]
  int64_t output_width() const;

 private:
  MlpOptions options_;
  torch::nn::ModuleList norms_{nullptr};
  torch::nn::ModuleList linears_{nullptr};
  Dropout dropout_{nullptr};
  torch::nn::Linear out_{nullptr};
};
TORCH_MODULE(Mlp);

struct TransformerOptions {
  int64_t hidden_size = 192;
  int64_t num_blocks = 3;
  int64_t num_heads = 8;
  int64_t ffn_hidden_size = 192;
  double attention_dropout = 0.2;
  double ffn_dropout = 0.1;
  double residual_dropout = 0.0;
};

// FT-Transformer's encoder: pre-norm blocks (the first without the attention
// norm), multi-head self-attention, a GEGLU feed-forward network.
class TokenTransformerImpl : public torch::nn::Module {
 public:
  explicit TokenTransformerImpl(const TransformerOptions& options);
  torch::Tensor forward(torch::Tensor tokens);  // [batch, tokens, hidden] -> same

 private:
  torch::Tensor attention(int64_t block, const torch::Tensor& x);
  TransformerOptions options_;
  torch::nn::ModuleList attention_norms_{nullptr}, ffn_norms_{nullptr};
  torch::nn::ModuleList qkv_{nullptr}, attention_out_{nullptr};
  torch::nn::ModuleList ffn_in_{nullptr}, ffn_out_{nullptr};
  Dropout attention_dropout_{nullptr}, ffn_dropout_{nullptr}, residual_dropout_{nullptr};
};
TORCH_MODULE(TokenTransformer);

// Head of the transformer models: LayerNorm -> ReLU -> Linear.
class TransformerHeadImpl : public torch::nn::Module {
 public:
  TransformerHeadImpl(int64_t hidden, int64_t outputs);
  torch::Tensor features(const torch::Tensor& cls);  // normalized, activated CLS
  torch::Tensor classify(const torch::Tensor& features) { return linear_(features); }
  torch::Tensor forward(const torch::Tensor& cls) { return classify(features(cls)); }

 private:
  torch::nn::LayerNorm norm_{nullptr};
  torch::nn::Linear linear_{nullptr};
};
TORCH_MODULE(TransformerHead);

}  // namespace automm
