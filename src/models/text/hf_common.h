// Pieces every Hugging Face text encoder (BERT family, DeBERTa-v2, DistilBERT,
// MPNet) shares, so that each encoder file holds only what its architecture
// does differently: config.json field readers and range checks whose errors
// name the field, the validation of TextEncoderImpl::forward's arguments,
// activations by Hugging Face's names, the Hugging Face weight init, a
// LayerNorm that runs in its weights' dtype, the multi-head attention steps
// and residual output block all four transcribe from transformers, and the
// all-or-nothing state dict loader that lists missing and unexpected tensors.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "models/dropout.h"
#include "models/layers.h"

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

// Throws std::invalid_argument unless `config` is a JSON object.
void require_object(const nlohmann::json& config);

// require_object, and model_type, when given, must be `expected` (one model
// type per encoder: DistilBERT, MPNet).
void require_model_type(const nlohmann::json& config, const std::string& expected);

// pad_token_id-style fields: absent returns `fallback`, null means "none" (-1).
int64_t read_token_id(const nlohmann::json& config, const std::string& field, int64_t fallback);

// Range checks; each throws std::invalid_argument("Hugging Face config.json: field 'FIELD' ...").
void require_positive(const std::string& field, int64_t value);
void require_positive(const std::string& field, double value);               // layer_norm_eps
// The sizes BERT-style configs (BERT family, DeBERTa-v2, MPNet) share under
// one set of names: vocab_size, hidden_size, num_hidden_layers,
// num_attention_heads and intermediate_size, each positive (in that order).
void require_positive_sizes(int64_t vocab_size, int64_t hidden_size, int64_t num_hidden_layers,
                            int64_t num_attention_heads, int64_t intermediate_size);
void require_non_negative(const std::string& field, double value);           // initializer_range
void require_probability(const std::string& field, double value);            // in [0, 1)
void require_activation(const std::string& field, const std::string& name);  // an activation_by_name name
// `divisor` (the field named `divisor_field`) must divide `value`.
void require_multiple(const std::string& field, int64_t value, const std::string& divisor_field,
                      int64_t divisor);
// A token id inside a vocabulary of `vocab_size` tokens, or -1 (none).
void require_token_id(const std::string& field, int64_t id, int64_t vocab_size);

std::string join(const std::vector<std::string>& items, const std::string& separator);
std::string shape_string(c10::IntArrayRef sizes);  // "[2, 3]"

bool starts_with(const std::string& text, const std::string& prefix);
bool starts_with_any(const std::string& text, const std::vector<std::string>& prefixes);

// --- forward arguments ---------------------------------------------------------------

// Throws std::invalid_argument("ENCODER: WHAT must be [batch, seq], ...") unless
// `ids` is 2-d, and, with a non-empty `expected_shape` (input_ids' shape),
// unless it has that shape.
void check_id_shape(const std::string& encoder, const torch::Tensor& ids, const std::string& what,
                    c10::IntArrayRef expected_shape);

// input_ids must be defined, [batch, seq] and not floating or complex
// (integer or bool). Throws std::invalid_argument starting with `encoder`.
void check_input_ids(const std::string& encoder, const torch::Tensor& input_ids);

struct EncoderInputs {
  torch::Tensor input_ids;       // [batch, seq] int64
  torch::Tensor attention_mask;  // [batch, seq] int64, 1 = token, 0 = padding; all ones when none was given
};

// Validates TextEncoderImpl::forward's arguments for the encoder named
// `encoder` (the messages start with it): input_ids [batch, seq] of an
// integer type and at most `max_sequence_length` tokens; token_type_ids and
// attention_mask, when defined, of input_ids' shape. Token types are checked
// only: encoders without token types ignore them, as transformers does.
// Throws std::invalid_argument.
EncoderInputs check_encoder_inputs(const std::string& encoder, const torch::Tensor& input_ids,
                                   const torch::Tensor& token_type_ids, const torch::Tensor& attention_mask,
                                   int64_t max_sequence_length);

// --- modules ---------------------------------------------------------------------------

using Activation = std::function<torch::Tensor(const torch::Tensor&)>;
// transformers' ACT2FN names: gelu (erf), gelu_new / gelu_pytorch_tanh (tanh
// approximation), quick_gelu (CLIP), relu, silu / swish, tanh. Throws std::invalid_argument
// listing the supported names.
kernels::Epilogue epilogue_by_name(const std::string& name);
// The same as a function (kernels::apply_epilogue).
Activation activation_by_name(const std::string& name);

// Hugging Face's _init_weights: weights ~ N(0, std), biases 0, embedding
// padding rows 0 (padding_idx < 0: none), LayerNorm 1 / 0.
torch::nn::Linear make_linear(int64_t in, int64_t out, double std, bool bias = true);
torch::nn::Embedding make_embedding(int64_t count, int64_t dim, int64_t padding_idx, double std);
torch::nn::LayerNorm make_layer_norm(int64_t dim, double eps);

// Norms run through apply_layer_norm (models/layers.h), which handles autocast's
// bf16 activations and bf16 inference weights.

// The most negative finite value of a floating dtype (torch.finfo(dtype).min).
double lowest_value(torch::ScalarType dtype);

// --- attention -------------------------------------------------------------------------

// Additive key mask [batch, 1, 1, seq] from mask [batch, seq] (1 = token): 0
// for tokens, the lowest value of `dtype` for padding, so softmax gives padded
// keys no weight.
torch::Tensor key_mask_bias(const torch::Tensor& mask, torch::ScalarType dtype);

// [batch, seq, heads * head] -> [batch, heads, seq, head]
torch::Tensor split_heads(const torch::Tensor& x, int64_t heads);
// q, k [batch, heads, seq, head] -> q k^T / scale [batch, heads, seq_q, seq_k]
torch::Tensor attention_scores(const torch::Tensor& q, const torch::Tensor& k, double scale);
// probs [batch, heads, seq_q, seq_k] (cast to v's dtype, as transformers does
// under autocast), v [batch, heads, seq_k, head] -> [batch, seq_q, heads * head]
torch::Tensor attention_context(const torch::Tensor& probs, const torch::Tensor& v);

// LayerNorm(dropout(dense(x)) + residual): BERT's and DeBERTa's attention.output
// and output, MPNet's output. Parameter names dense / LayerNorm as in Hugging Face.
struct ResidualOutputOptions {
  int64_t in_features = 0;
  int64_t hidden_size = 0;
  double layer_norm_eps = 1e-12;
  double dropout = 0.1;
  double initializer_range = 0.02;
};

class ResidualOutputImpl : public torch::nn::Module {
 public:
  explicit ResidualOutputImpl(const ResidualOutputOptions& options);
  // x [batch, seq, in], residual [batch, seq, hidden] -> [batch, seq, hidden]
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& residual);

  torch::nn::Linear dense{nullptr};
  torch::nn::LayerNorm LayerNorm{nullptr};  // NOLINT: Hugging Face's name
  Dropout dropout{nullptr};
};
TORCH_MODULE(ResidualOutput);

// intermediate: dense -> activation (DeBERTa-v2, MPNet).
class IntermediateImpl : public torch::nn::Module {
 public:
  IntermediateImpl(int64_t hidden_size, int64_t intermediate_size, const std::string& activation,
                   double initializer_range);
  torch::Tensor forward(const torch::Tensor& hidden);  // [batch, seq, hidden] -> [batch, seq, intermediate]

  torch::nn::Linear dense{nullptr};

 private:
  kernels::Epilogue activation_;  // fused into dense for inference
};
TORCH_MODULE(Intermediate);

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

// StateDictMapping::is_ignored for an encoder: names under one of the `heads`
// prefixes (task heads the encoder has no use for) and the derived
// position_ids buffers, plus `also_ignored` names.
std::function<bool(const std::string&)> ignore_heads_and_position_ids(std::vector<std::string> heads,
                                                                      std::vector<std::string> also_ignored = {});

// StateDictMapping::model_description: "MODEL_TYPE encoder (N layers, WIDTH_NAME WIDTH)".
std::string encoder_description(const std::string& model_type, int64_t layers, const std::string& width_name,
                                int64_t width);

// Copies `weights` into module.named_parameters() (and named_buffers() with
// mapping.include_buffers) by name, all or nothing. Keys may carry
// mapping.prefix; TF-style LayerNorm gamma / beta are renamed weight / bias.
// Names mapping.is_ignored accepts are neither loaded nor required. Throws
// std::runtime_error listing missing and unexpected tensors (first 20 of
// each), naming two keys that map to one parameter, or a tensor whose shape or
// dtype does not fit; nothing is copied then. Values are cast to each
// parameter's dtype and device.
void load_state_dict_by_name(torch::nn::Module& module, const std::map<std::string, torch::Tensor>& weights,
                             const StateDictMapping& mapping);

}  // namespace hf
}  // namespace automm
