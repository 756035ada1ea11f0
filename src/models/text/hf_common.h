// Pieces every Hugging Face text encoder shares: config.json field readers
// whose errors name the field, activations by Hugging Face's names, the
// Hugging Face weight init, a LayerNorm that runs in its weights' dtype, and
// the all-or-nothing state dict loader that lists missing and unexpected
// tensors. (deberta_v2_encoder.cpp uses them; bert_encoder.cpp still has its
// own copies in its anonymous namespace and can switch to these.)
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace automm {
namespace hf {

// --- config.json fields -------------------------------------------------------------

// Throws std::invalid_argument("Hugging Face config.json: field 'FIELD' WHY").
[[noreturn]] void bad_field(const std::string& field, const std::string& why);

// Absent or null fields return `fallback`; a value of the wrong type throws
// naming the field. Integers written as 12.0 are accepted.
int64_t read_int(const nlohmann::json& config, const std::string& field, int64_t fallback);
double read_double(const nlohmann::json& config, const std::string& field, double fallback);
bool read_bool(const nlohmann::json& config, const std::string& field, bool fallback);
std::string read_string(const nlohmann::json& config, const std::string& field, const std::string& fallback);

std::string join(const std::vector<std::string>& items, const std::string& separator);
std::string shape_string(c10::IntArrayRef sizes);  // "[2, 3]"

// --- modules ---------------------------------------------------------------------------

using Activation = std::function<torch::Tensor(const torch::Tensor&)>;
// transformers' ACT2FN names: gelu (erf), gelu_new / gelu_pytorch_tanh (tanh
// approximation), relu, silu / swish, tanh. Throws std::invalid_argument
// listing the supported names.
Activation activation_by_name(const std::string& name);

// Hugging Face's _init_weights: weights ~ N(0, std), biases 0, embedding
// padding rows 0 (padding_idx < 0: none), LayerNorm 1 / 0.
torch::nn::Linear make_linear(int64_t in, int64_t out, double std, bool bias = true);
torch::nn::Embedding make_embedding(int64_t count, int64_t dim, int64_t padding_idx, double std);
torch::nn::LayerNorm make_layer_norm(int64_t dim, double eps);

// LayerNorm in its weights' dtype: under CPU autocast a bf16 activation meets
// fp32 norm weights, which torch 1.13's layer_norm rejects.
torch::Tensor layer_norm(torch::nn::LayerNormImpl& norm, const torch::Tensor& x);

// The most negative finite value of a floating dtype (torch.finfo(dtype).min).
double lowest_value(torch::ScalarType dtype);

// --- state dicts -------------------------------------------------------------------------

struct StateDictMapping {
  std::string prefix;  // base model prefix checkpoints may carry, e.g. "deberta."
  // Names (prefix stripped) of heads and buffers the encoder has no use for.
  std::function<bool(const std::string&)> is_ignored;
  std::string model_description;  // for messages: "deberta-v2 encoder (3 layers, hidden 64)"
  // Also match the module's buffers (BatchNorm running statistics) by name, as
  // torch's load_state_dict does. Off for Hugging Face encoders: their buffers
  // (position_ids) are derived, and checkpoints differ in carrying them.
  bool include_buffers = false;
  // The loader named in messages, and the hint that ends a mismatch message.
  std::string loader_name = "load_hf_state_dict";
  std::string mismatch_hint = "Check that config.json belongs to this checkpoint.";
};

// Copies `weights` into module.named_parameters() (and named_buffers() with
// mapping.include_buffers) by name, all or nothing. Keys may carry
// mapping.prefix; TF-style LayerNorm gamma / beta are renamed weight / bias.
// Names mapping.is_ignored accepts are neither loaded nor required. Throws std::runtime_error listing missing and unexpected
// tensors (first 20 of each), naming two keys that map to one parameter, or a
// tensor whose shape or dtype does not fit; nothing is copied then. Values are
// cast to each parameter's dtype and device.
void load_state_dict_by_name(torch::nn::Module& module, const std::map<std::string, torch::Tensor>& weights,
                             const StateDictMapping& mapping);

}  // namespace hf
}  // namespace automm
