#include "hf_common.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <stdexcept>

namespace automm {
namespace hf {
namespace {

bool starts_with(const std::string& text, const std::string& prefix) {
  return text.size() >= prefix.size() && text.compare(0, prefix.size(), prefix) == 0;
}

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
  if (value->is_number_integer()) return value->get<int64_t>();
  if (value->is_number_float()) {
    double number = value->get<double>();
    if (std::floor(number) == number) return static_cast<int64_t>(number);
  }
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

// --- modules ---------------------------------------------------------------------------

Activation activation_by_name(const std::string& name) {
  if (name == "gelu") return [](const torch::Tensor& x) { return torch::gelu(x); };
  if (name == "gelu_new" || name == "gelu_pytorch_tanh") {
    return [](const torch::Tensor& x) { return torch::gelu(x, "tanh"); };
  }
  if (name == "relu") return [](const torch::Tensor& x) { return torch::relu(x); };
  if (name == "silu" || name == "swish") return [](const torch::Tensor& x) { return torch::silu(x); };
  if (name == "tanh") return [](const torch::Tensor& x) { return torch::tanh(x); };
  throw std::invalid_argument("unknown activation '" + name +
                              "'; supported: gelu, gelu_new, gelu_pytorch_tanh, relu, silu, swish, tanh");
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

torch::Tensor layer_norm(torch::nn::LayerNormImpl& norm, const torch::Tensor& x) {
  return norm.forward(x.to(norm.weight.scalar_type()));
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

// --- state dicts -------------------------------------------------------------------------

void load_state_dict_by_name(torch::nn::Module& module, const std::map<std::string, torch::Tensor>& weights,
                             const StateDictMapping& mapping) {
  auto params = module.named_parameters(/*recurse=*/true);
  if (mapping.include_buffers) {
    for (const auto& item : module.named_buffers(/*recurse=*/true)) params.insert(item.key(), item.value());
  }
  const auto ignored = [&](const std::string& name) { return mapping.is_ignored && mapping.is_ignored(name); };

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
    std::string message = mapping.loader_name + ": checkpoint does not match this " + mapping.model_description;
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
    if (!source.defined()) throw std::runtime_error(mapping.loader_name + ": tensor '" + key + "' is undefined");
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
