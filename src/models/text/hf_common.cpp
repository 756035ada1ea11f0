#include "hf_common.h"
#include "config/json_text.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <stdexcept>

namespace automm {
namespace hf {
namespace {

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

const nlohmann::json* find_field(const nlohmann::json& config, const std::string& field) {
  auto it = config.find(field);
  return it == config.end() || it->is_null() ? nullptr : &*it;
}

}  // namespace

// --- config.json fields -------------------------------------------------------------

void bad_field(const std::string& field, const std::string& why) {
  throw std::invalid_argument("Hugging Face config.json: field '" + field + "' " + why);
}

int64_t read_int(const nlohmann::json& config, const std::string& field, int64_t fallback) {
  const auto* value = find_field(config, field);
  if (value == nullptr) return fallback;
  if (const auto number = json_integer(*value)) return *number;
  bad_field(field, "must be an integer, got " + value->dump());
}

double read_double(const nlohmann::json& config, const std::string& field, double fallback) {
  const auto* value = find_field(config, field);
  if (value == nullptr) return fallback;
  if (!value->is_number()) bad_field(field, "must be a number, got " + value->dump());
  return value->get<double>();
}

bool read_bool(const nlohmann::json& config, const std::string& field, bool fallback) {
  const auto* value = find_field(config, field);
  if (value == nullptr) return fallback;
  if (!value->is_boolean()) bad_field(field, "must be true or false, got " + value->dump());
  return value->get<bool>();
}

std::string read_string(const nlohmann::json& config, const std::string& field, const std::string& fallback) {
  const auto* value = find_field(config, field);
  if (value == nullptr) return fallback;
  if (!value->is_string()) bad_field(field, "must be a string, got " + value->dump());
  return value->get<std::string>();
}

void require_object(const nlohmann::json& config) {
  if (!config.is_object()) {
    throw std::invalid_argument("Hugging Face config.json must be a JSON object, got " + config.dump());
  }
}

void require_model_type(const nlohmann::json& config, const std::string& expected) {
  require_object(config);
  const std::string model_type = read_string(config, "model_type", expected);
  if (model_type != expected) {
    bad_field("model_type", "is '" + model_type + "' but this encoder reads '" + expected + "'");
  }
}

int64_t read_token_id(const nlohmann::json& config, const std::string& field, int64_t fallback) {
  auto it = config.find(field);
  return it != config.end() && it->is_null() ? -1 : read_int(config, field, fallback);
}

void require_positive(const std::string& field, int64_t value) {
  if (value <= 0) bad_field(field, "must be positive, got " + std::to_string(value));
}

void require_positive(const std::string& field, double value) {
  if (!(value > 0.0)) bad_field(field, "must be positive, got " + std::to_string(value));
}

void require_positive_sizes(int64_t vocab_size, int64_t hidden_size, int64_t num_hidden_layers,
                            int64_t num_attention_heads, int64_t intermediate_size) {
  require_positive("vocab_size", vocab_size);
  require_positive("hidden_size", hidden_size);
  require_positive("num_hidden_layers", num_hidden_layers);
  require_positive("num_attention_heads", num_attention_heads);
  require_positive("intermediate_size", intermediate_size);
}

void require_non_negative(const std::string& field, double value) {
  if (!(value >= 0.0)) bad_field(field, "must be non-negative, got " + std::to_string(value));
}

void require_probability(const std::string& field, double value) {
  if (!(value >= 0.0 && value < 1.0)) bad_field(field, "must lie in [0, 1), got " + std::to_string(value));
}

void require_activation(const std::string& field, const std::string& name) {
  try {
    activation_by_name(name);
  } catch (const std::invalid_argument& e) {
    bad_field(field, e.what());
  }
}

void require_multiple(const std::string& field, int64_t value, const std::string& divisor_field,
                      int64_t divisor) {
  if (divisor > 0 && value % divisor != 0) {
    bad_field(field, std::to_string(value) + " is not a multiple of " + divisor_field + " " +
                         std::to_string(divisor));
  }
}

void require_token_id(const std::string& field, int64_t id, int64_t vocab_size) {
  if (id < -1 || id >= vocab_size) {
    bad_field(field, std::to_string(id) + " is outside the vocabulary of " + std::to_string(vocab_size) +
                         " tokens");
  }
}

std::string join(const std::vector<std::string>& items, const std::string& separator) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += separator;
    out += items[i];
  }
  return out;
}

std::string shape_string(c10::IntArrayRef sizes) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < sizes.size(); ++i) out << (i > 0 ? ", " : "") << sizes[i];
  out << "]";
  return out.str();
}

bool starts_with(const std::string& text, const std::string& prefix) {
  return text.size() >= prefix.size() && text.compare(0, prefix.size(), prefix) == 0;
}

bool starts_with_any(const std::string& text, const std::vector<std::string>& prefixes) {
  return std::any_of(prefixes.begin(), prefixes.end(),
                     [&text](const std::string& prefix) { return starts_with(text, prefix); });
}

// --- forward arguments ---------------------------------------------------------------

void check_id_shape(const std::string& encoder, const torch::Tensor& ids, const std::string& what,
                    c10::IntArrayRef expected_shape) {
  if (ids.dim() != 2) {
    throw std::invalid_argument(encoder + ": " + what + " must be [batch, seq], got shape " +
                                shape_string(ids.sizes()));
  }
  if (!expected_shape.empty() && ids.sizes() != expected_shape) {
    throw std::invalid_argument(encoder + ": " + what + " has shape " + shape_string(ids.sizes()) +
                                " but input_ids has shape " + shape_string(expected_shape));
  }
}

namespace {

[[noreturn]] void not_integer(const std::string& encoder, const torch::Tensor& input_ids) {
  throw std::invalid_argument(encoder + ": input_ids must be an integer tensor, got " +
                              std::string(c10::toString(input_ids.scalar_type())));
}

}  // namespace

void check_input_ids(const std::string& encoder, const torch::Tensor& input_ids) {
  if (!input_ids.defined()) throw std::invalid_argument(encoder + ": input_ids is undefined");
  check_id_shape(encoder, input_ids, "input_ids", {});
  if (input_ids.is_floating_point() || input_ids.is_complex()) not_integer(encoder, input_ids);
}

EncoderInputs check_encoder_inputs(const std::string& encoder, const torch::Tensor& input_ids,
                                   const torch::Tensor& token_type_ids, const torch::Tensor& attention_mask,
                                   int64_t max_sequence_length) {
  check_input_ids(encoder, input_ids);
  if (input_ids.scalar_type() == torch::kBool) not_integer(encoder, input_ids);
  const int64_t seq = input_ids.size(1);
  if (seq > max_sequence_length) {
    throw std::invalid_argument(encoder + ": sequence length " + std::to_string(seq) + " exceeds the " +
                                std::to_string(max_sequence_length) +
                                " positions of this model; truncate the input");
  }
  if (token_type_ids.defined()) check_id_shape(encoder, token_type_ids, "token_type_ids", input_ids.sizes());
  if (attention_mask.defined()) check_id_shape(encoder, attention_mask, "attention_mask", input_ids.sizes());
  EncoderInputs inputs;
  inputs.input_ids = input_ids.to(torch::kLong);
  inputs.attention_mask =
      attention_mask.defined() ? attention_mask.to(torch::kLong) : torch::ones_like(inputs.input_ids);
  return inputs;
}

// --- modules ---------------------------------------------------------------------------

kernels::Epilogue epilogue_by_name(const std::string& name) {
  using kernels::Epilogue;
  if (name == "gelu") return Epilogue::kGelu;
  if (name == "gelu_new" || name == "gelu_pytorch_tanh") return Epilogue::kGeluTanh;
  if (name == "relu") return Epilogue::kRelu;
  if (name == "silu" || name == "swish") return Epilogue::kSilu;
  if (name == "tanh") return Epilogue::kTanh;
  if (name == "quick_gelu") return Epilogue::kQuickGelu;  // CLIP's x * sigmoid(1.702 x)
  throw std::invalid_argument("unknown activation '" + name +
                              "'; supported: gelu, gelu_new, gelu_pytorch_tanh, quick_gelu, relu, silu, swish, tanh");
}

Activation activation_by_name(const std::string& name) {
  return [epilogue = epilogue_by_name(name)](const torch::Tensor& x) { return kernels::apply_epilogue(epilogue, x); };
}

torch::nn::Linear make_linear(int64_t in, int64_t out, double std, bool bias) {
  torch::nn::Linear linear(torch::nn::LinearOptions(in, out).bias(bias));
  torch::NoGradGuard no_grad;
  linear->weight.normal_(0.0, std);
  if (bias) linear->bias.zero_();
  return linear;
}

torch::nn::Embedding make_embedding(int64_t count, int64_t dim, int64_t padding_idx, double std) {
  torch::nn::EmbeddingOptions options(count, dim);
  bool has_padding = padding_idx >= 0 && padding_idx < count;
  if (has_padding) options.padding_idx(padding_idx);
  torch::nn::Embedding embedding(options);
  torch::NoGradGuard no_grad;
  embedding->weight.normal_(0.0, std);
  if (has_padding) embedding->weight[padding_idx].zero_();
  return embedding;
}

torch::nn::LayerNorm make_layer_norm(int64_t dim, double eps) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(eps));
}

double lowest_value(torch::ScalarType dtype) {
  switch (dtype) {
    case torch::kHalf:
      return static_cast<double>(std::numeric_limits<c10::Half>::lowest());
    case torch::kBFloat16:
      return static_cast<double>(std::numeric_limits<c10::BFloat16>::lowest());
    case torch::kDouble:
      return std::numeric_limits<double>::lowest();
    default:
      return std::numeric_limits<float>::lowest();
  }
}

// --- attention -------------------------------------------------------------------------

torch::Tensor key_mask_bias(const torch::Tensor& mask, torch::ScalarType dtype) {
  return ((1.0 - mask.to(dtype)) * lowest_value(dtype)).view({mask.size(0), 1, 1, mask.size(1)});
}

torch::Tensor split_heads(const torch::Tensor& x, int64_t heads) {
  return x.view({x.size(0), x.size(1), heads, -1}).transpose(1, 2);
}

torch::Tensor attention_scores(const torch::Tensor& q, const torch::Tensor& k, double scale) {
  // Scaling q (seq x head) is cheaper than scaling the scores (seq x seq); contiguous
  // operands double the speed of torch 1.13's bf16 batched matmul.
  return torch::matmul(q.contiguous() * (1.0 / scale), k.contiguous().transpose(-1, -2));
}

torch::Tensor attention_context(const torch::Tensor& probs, const torch::Tensor& v) {
  auto context = torch::matmul(probs.to(v.scalar_type()), v);  // [batch, heads, seq, head]
  return context.transpose(1, 2).reshape({context.size(0), context.size(2), -1});
}

ResidualOutputImpl::ResidualOutputImpl(const ResidualOutputOptions& options) {
  dense = register_module("dense",
                          make_linear(options.in_features, options.hidden_size, options.initializer_range));
  LayerNorm = register_module("LayerNorm", make_layer_norm(options.hidden_size, options.layer_norm_eps));
  dropout = register_module("dropout", Dropout(options.dropout));
}

torch::Tensor ResidualOutputImpl::forward(const torch::Tensor& x, const torch::Tensor& residual) {
  // Without dropout the residual add fuses into dense.
  if (!dropout->is_training() || dropout->options.p() == 0.0) {
    return apply_layer_norm(*LayerNorm, apply_linear(*dense, x, kernels::Epilogue::kNone, residual));
  }
  return apply_layer_norm(*LayerNorm, dropout(apply_linear(*dense, x)) + residual);
}

IntermediateImpl::IntermediateImpl(int64_t hidden_size, int64_t intermediate_size, const std::string& activation,
                                   double initializer_range)
    : activation_(epilogue_by_name(activation)) {
  dense = register_module("dense", make_linear(hidden_size, intermediate_size, initializer_range));
}

torch::Tensor IntermediateImpl::forward(const torch::Tensor& hidden) { return apply_linear(*dense, hidden, activation_); }

// --- state dicts -------------------------------------------------------------------------

std::function<bool(const std::string&)> ignore_heads_and_position_ids(std::vector<std::string> heads,
                                                                      std::vector<std::string> also_ignored) {
  also_ignored.push_back("position_ids");
  also_ignored.push_back("embeddings.position_ids");
  return [heads = std::move(heads), also_ignored = std::move(also_ignored)](const std::string& name) {
    return starts_with_any(name, heads) ||
           std::find(also_ignored.begin(), also_ignored.end(), name) != also_ignored.end();
  };
}

std::string encoder_description(const std::string& model_type, int64_t layers, const std::string& width_name,
                                int64_t width) {
  return model_type + " encoder (" + std::to_string(layers) + " layers, " + width_name + " " +
         std::to_string(width) + ")";
}

void load_state_dict_by_name(torch::nn::Module& module, const std::map<std::string, torch::Tensor>& weights,
                             const StateDictMapping& mapping) {
  auto params = module.named_parameters(/*recurse=*/true);
  if (mapping.include_buffers) {
    for (const auto& item : module.named_buffers(/*recurse=*/true)) params.insert(item.key(), item.value());
  }
  const auto ignored = [&](const std::string& name) {
    return mapping.is_ignored && mapping.is_ignored(name);
  };

  std::map<std::string, std::string> source_of;  // parameter name -> checkpoint key
  std::vector<std::string> unexpected;
  for (const auto& [key, tensor] : weights) {
    std::string name = starts_with(key, mapping.prefix) ? key.substr(mapping.prefix.size()) : key;
    // TF-converted checkpoints name LayerNorm parameters gamma / beta.
    if (ends_with(name, "LayerNorm.gamma")) name = name.substr(0, name.size() - 5) + "weight";
    if (ends_with(name, "LayerNorm.beta")) name = name.substr(0, name.size() - 4) + "bias";
    if (ignored(name)) continue;
    if (!params.contains(name)) {
      unexpected.push_back(key);
      continue;
    }
    auto [it, inserted] = source_of.emplace(name, key);
    if (!inserted) {
      throw std::runtime_error(mapping.loader_name + ": checkpoint keys '" + it->second + "' and '" + key +
                               "' both map to parameter '" + name + "'; keep one of them");
    }
  }
  std::vector<std::string> missing;
  for (const auto& item : params) {
    if (source_of.count(item.key()) == 0 && !ignored(item.key())) missing.push_back(item.key());
  }
  if (!missing.empty() || !unexpected.empty()) {
    auto first20 = [](const std::vector<std::string>& names) {
      std::vector<std::string> head(names.begin(), names.begin() + std::min<size_t>(names.size(), 20));
      std::string text = join(head, ", ");
      if (names.size() > 20) text += ", ... (" + std::to_string(names.size() - 20) + " more)";
      return text;
    };
    std::string message =
        mapping.loader_name + ": checkpoint does not match this " + mapping.model_description;
    if (!missing.empty()) {
      message += "; missing " + std::to_string(missing.size()) + " tensor(s): " + first20(missing);
    }
    if (!unexpected.empty()) {
      message += "; unexpected " + std::to_string(unexpected.size()) + " tensor(s): " + first20(unexpected);
    }
    message += ". " + mapping.mismatch_hint;
    throw std::runtime_error(message);
  }
  // Check everything before copying anything, so a failure loads nothing.
  for (const auto& [name, key] : source_of) {
    const auto& source = weights.at(key);
    const auto& target = params[name];
    if (!source.defined()) {
      throw std::runtime_error(mapping.loader_name + ": tensor '" + key + "' is undefined");
    }
    if (!source.is_floating_point()) {
      throw std::runtime_error(mapping.loader_name + ": tensor '" + key + "' has non-floating dtype " +
                               std::string(c10::toString(source.scalar_type())));
    }
    if (source.sizes() != target.sizes()) {
      throw std::runtime_error(mapping.loader_name + ": shape mismatch for '" + key + "': checkpoint has " +
                               shape_string(source.sizes()) + ", encoder parameter '" + name + "' expects " +
                               shape_string(target.sizes()));
    }
  }
  torch::NoGradGuard no_grad;
  for (const auto& [name, key] : source_of) params[name].copy_(weights.at(key));
}

}  // namespace hf
}  // namespace automm
