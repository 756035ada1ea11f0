#include "layers.h"

#include "models/peft.h"

#include <cmath>
#include <stdexcept>

namespace automm {
namespace F = torch::nn::functional;

torch::Tensor apply_activation(const std::string& name, const torch::Tensor& x) {
  if (name == "leaky_relu") return F::leaky_relu(x);
  if (name == "relu") return torch::relu(x);
  if (name == "gelu") return F::gelu(x);
  if (name == "tanh") return torch::tanh(x);
  throw std::invalid_argument("unknown activation '" + name + "'; known: leaky_relu, relu, gelu, tanh");
}

torch::Tensor layer_norm_in_weight_dtype(const torch::Tensor& x, const torch::Tensor& weight,
                                         const torch::Tensor& bias, double eps) {
  const auto dtype = weight.scalar_type();
  const std::vector<int64_t> shape = weight.sizes().vec();
  if (dtype == torch::kBFloat16 || dtype == torch::kHalf) {
    // torch 1.13's CPU layer_norm in bf16 / fp16 is several times slower than in
    // fp32 (bf16 models for inference): normalize in fp32, answer in the weights' dtype.
    const auto bias32 = bias.defined() ? bias.to(torch::kFloat32) : bias;
    return torch::layer_norm(x.to(torch::kFloat32), shape, weight.to(torch::kFloat32), bias32, eps).to(dtype);
  }
  return torch::layer_norm(x.scalar_type() == dtype ? x : x.to(dtype), shape, weight, bias, eps);
}

torch::Tensor apply_layer_norm(torch::nn::LayerNormImpl& norm, const torch::Tensor& x) {
  const auto& o = norm.options;
  if (!o.elementwise_affine()) return norm.forward(x);
  return layer_norm_in_weight_dtype(x, norm.weight, norm.bias, o.eps());
}

torch::Tensor apply_linear(torch::nn::LinearImpl& linear, const torch::Tensor& x, kernels::Epilogue epilogue,
                           const torch::Tensor& residual) {
  const LinearAdapter adapter = linear_adapter(linear);
  torch::Tensor y;
  if (!adapter.any()) {
    y = kernels::packed_linear(x, linear.weight, linear.bias, epilogue, residual);
    if (y.defined()) return y;
    if (x.dim() <= 2 || !linear.bias.defined()) {
      y = linear.forward(x);
    } else {
      auto sizes = x.sizes().vec();
      sizes.back() = linear.weight.size(0);
      y = torch::addmm(linear.bias, x.reshape({-1, x.size(-1)}), linear.weight.t()).view(sizes);
    }
  } else {
    // A PEFT adapter (models/peft.h): the frozen layer plus LoRA's low-rank update,
    // scaled by IA3's vector.
    y = linear.forward(x);
    if (adapter.lora_A.defined())
      y = y + torch::matmul(torch::matmul(x, adapter.lora_A.t()), adapter.lora_B.t()) *
                  adapter.lora_scaling.to(y.scalar_type());
    if (adapter.ia3.defined()) y = y * adapter.ia3.to(y.scalar_type());
  }
  y = kernels::apply_epilogue(epilogue, y);
  return residual.defined() ? y + residual : y;
}

MlpOptions mlp_options_from(const Config& config, const std::string& base, int64_t in_features) {
  const std::string prefix = "model." + base + ".";
  MlpOptions options;
  options.in_features = in_features;
  options.hidden_features = config.get_int(prefix + "hidden_size");
  options.num_layers = config.get_int(prefix + "num_layers");
  options.activation = config.get_string(prefix + "activation");
  options.normalization = config.get_string(prefix + "normalization");
  options.dropout = config.get_double(prefix + "drop_rate");
  return options;
}

MlpImpl::MlpImpl(const MlpOptions& options) : options_(options) {
  norms_ = register_module("norms", torch::nn::ModuleList());
  linears_ = register_module("linears", torch::nn::ModuleList());
  int64_t width = options.in_features;
  for (int64_t i = 0; i < options.num_layers; ++i) {
    const bool normalize = i > 0 || options.normalize_input;
    if (normalize && options.normalization == "layer_norm")
      norms_->push_back(torch::nn::LayerNorm(torch::nn::LayerNormOptions({width})));
    else if (normalize && options.normalization == "batch_norm")
      norms_->push_back(torch::nn::BatchNorm1d(width));
    else
      norms_->push_back(torch::nn::Identity());
    linears_->push_back(torch::nn::Linear(width, options.hidden_features));
    width = options.hidden_features;
  }
  dropout_ = register_module("dropout", Dropout(options.dropout));
  if (options.out_features > 0) out_ = register_module("out", torch::nn::Linear(width, options.out_features));
}

int64_t MlpImpl::output_width() const {
  return options_.out_features > 0 ? options_.out_features : options_.hidden_features;
}

torch::Tensor MlpImpl::forward(torch::Tensor x) {
  for (size_t i = 0; i < linears_->size(); ++i) {
    if (auto* layer_norm = norms_[i]->as<torch::nn::LayerNorm>())
      x = apply_layer_norm(*layer_norm, x);
    else if (auto* batch_norm = norms_[i]->as<torch::nn::BatchNorm1d>())
      x = batch_norm->forward(x);
    x = linears_[i]->as<torch::nn::Linear>()->forward(x);
    x = dropout_(apply_activation(options_.activation, x));
  }
  return out_ ? out_(x) : x;
}

TokenTransformerImpl::TokenTransformerImpl(const TransformerOptions& options) : options_(options) {
  if (options.hidden_size % options.num_heads != 0)
    throw std::invalid_argument("transformer hidden size " + std::to_string(options.hidden_size) +
                                " is not divisible by " + std::to_string(options.num_heads) +
                                " attention heads");
  attention_norms_ = register_module("attention_norms", torch::nn::ModuleList());
  ffn_norms_ = register_module("ffn_norms", torch::nn::ModuleList());
  qkv_ = register_module("qkv", torch::nn::ModuleList());
  attention_out_ = register_module("attention_out", torch::nn::ModuleList());
  ffn_in_ = register_module("ffn_in", torch::nn::ModuleList());
  ffn_out_ = register_module("ffn_out", torch::nn::ModuleList());
  const int64_t d = options.hidden_size;
  for (int64_t b = 0; b < options.num_blocks; ++b) {
    // The first block has no attention norm: its input is already the tokenizer's output.
    if (b > 0) attention_norms_->push_back(torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})));
    ffn_norms_->push_back(torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})));
    qkv_->push_back(torch::nn::Linear(d, 3 * d));
    attention_out_->push_back(torch::nn::Linear(d, d));
    ffn_in_->push_back(torch::nn::Linear(d, 2 * options.ffn_hidden_size));  // GEGLU: value, gate
    ffn_out_->push_back(torch::nn::Linear(options.ffn_hidden_size, d));
  }
  attention_dropout_ = register_module("attention_dropout", Dropout(options.attention_dropout));
  ffn_dropout_ = register_module("ffn_dropout", Dropout(options.ffn_dropout));
  residual_dropout_ = register_module("residual_dropout", Dropout(options.residual_dropout));
}

torch::Tensor TokenTransformerImpl::attention(int64_t block, const torch::Tensor& x) {
  const int64_t batch = x.size(0), tokens = x.size(1), heads = options_.num_heads;
  const int64_t head_dim = options_.hidden_size / heads;
  // [batch, tokens, 3, heads, head_dim] -> 3 x [batch, heads, tokens, head_dim]
  auto qkv = qkv_[block]->as<torch::nn::Linear>()->forward(x).view({batch, tokens, 3, heads, head_dim});
  qkv = qkv.permute({2, 0, 3, 1, 4});
  auto scores = torch::matmul(qkv[0], qkv[1].transpose(-2, -1)) / std::sqrt(static_cast<double>(head_dim));
  auto probs = attention_dropout_(torch::softmax(scores, -1));
  auto mixed = torch::matmul(probs, qkv[2]).transpose(1, 2).reshape({batch, tokens, options_.hidden_size});
  return attention_out_[block]->as<torch::nn::Linear>()->forward(mixed);
}

torch::Tensor TokenTransformerImpl::forward(torch::Tensor x) {
  for (int64_t b = 0; b < options_.num_blocks; ++b) {
    auto h = b > 0 ? apply_layer_norm(*attention_norms_[b - 1]->as<torch::nn::LayerNorm>(), x) : x;
    x = x + residual_dropout_(attention(b, h));
    h = apply_layer_norm(*ffn_norms_[b]->as<torch::nn::LayerNorm>(), x);
    auto gated = ffn_in_[b]->as<torch::nn::Linear>()->forward(h).chunk(2, -1);
    h = ffn_dropout_(gated[0] * F::gelu(gated[1]));
    x = x + residual_dropout_(ffn_out_[b]->as<torch::nn::Linear>()->forward(h));
  }
  return x;
}

TransformerHeadImpl::TransformerHeadImpl(int64_t hidden, int64_t outputs) {
  norm_ = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({hidden})));
  linear_ = register_module("linear", torch::nn::Linear(hidden, outputs));
}

torch::Tensor TransformerHeadImpl::features(const torch::Tensor& cls) { return torch::relu(apply_layer_norm(*norm_, cls)); }

}  // namespace automm
