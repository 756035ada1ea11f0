#include "models/peft.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <regex>
#include <stdexcept>

namespace automm {
namespace {

constexpr const char* kLoraA = "lora_A";
constexpr const char* kLoraB = "lora_B";
constexpr const char* kLoraScaling = "lora_scaling";
constexpr const char* kIa3 = "lora_b";  // AutoMM's name for the IA3 scale vector

// torch::nn::Module keeps its parameters in a protected OrderedDict and hands out
// copies; adapters are looked up on every forward, so they are read in place.
struct ParameterAccess : torch::nn::Module {
  static torch::OrderedDict<std::string, torch::Tensor>& of(torch::nn::Module& module) {
    return module.*(&ParameterAccess::parameters_);
  }
};

const std::map<std::string, PeftMethod>& registry() {
  // AutoMM's constants.py and optim/utils.py get_peft_param_names.
  static const std::map<std::string, PeftMethod> methods = [] {
    std::map<std::string, PeftMethod> m;
    auto add = [&](const std::string& name, bool lora, bool ia3, bool bias, bool norm) {
      m[name] = {name, lora, ia3, bias || norm, norm};
    };
    add("bit_fit", false, false, true, false);
    add("norm_fit", false, false, true, true);
    add("lora", true, false, false, false);
    add("lora_bias", true, false, true, false);
    add("lora_norm", true, false, false, true);
    add("ia3", false, true, false, false);
    add("ia3_bias", false, true, true, false);
    add("ia3_norm", false, true, false, true);
    add("ia3_lora", true, true, false, false);
    add("ia3_lora_bias", true, true, true, false);
    add("ia3_lora_norm", true, true, false, true);
    return m;
  }();
  return methods;
}

std::vector<std::regex> compile(const std::vector<std::string>& patterns, const std::string& key) {
  std::vector<std::regex> out;
  for (const std::string& p : patterns) {
    try {
      out.emplace_back(p);
    } catch (const std::regex_error& e) {
      throw std::invalid_argument(key + ": '" + p + "' is not a valid regular expression: " + e.what());
    }
  }
  return out;
}

// Python's re.match: the pattern matches at the start of the name.
bool matches_start(const std::vector<std::regex>& patterns, const std::string& name) {
  return std::any_of(patterns.begin(), patterns.end(), [&](const std::regex& re) {
    return std::regex_search(name, re, std::regex_constants::match_continuous);
  });
}

const torch::Tensor* find(torch::nn::Module& module, const char* name) {
  return ParameterAccess::of(module).find(name);
}

}  // namespace

const PeftMethod& peft_method(const std::string& name) {
  const auto found = registry().find(name);
  if (found != registry().end()) return found->second;
  std::string known;
  for (const auto& n : peft_method_names()) known += (known.empty() ? "" : ", ") + n;
  throw std::invalid_argument("optim.peft = '" + name + "' is not a PEFT method; known: " + known);
}

std::vector<std::string> peft_method_names() {
  std::vector<std::string> names;
  for (const auto& [name, method] : registry()) names.push_back(name);
  return names;
}

std::optional<PeftOptions> peft_options(const Config& config) {
  const Json& method = config.get("optim.peft");
  if (method.is_null()) return std::nullopt;
  PeftOptions options;
  options.method = peft_method(method.get<std::string>());
  options.r = config.get_int("optim.lora.r");
  options.alpha = config.get_double("optim.lora.alpha");
  options.filter = config.get_list("optim.lora.filter");
  if (!config.get("optim.lora.module_filter").is_null()) options.module_filter = config.get_list("optim.lora.module_filter");
  options.merge_at_save = config.get_bool("optim.lora.merge_at_save");
  if (options.r <= 0) throw std::invalid_argument("optim.lora.r must be >= 1, got " + std::to_string(options.r));
  return options;
}

std::function<bool(const std::string&)> trainable_parameter_filter(const Config& config) {
  auto patterns = compile(config.get_list("optim.extra_trainable_params"), "optim.extra_trainable_params");
  return [patterns = std::move(patterns)](const std::string& name) { return matches_start(patterns, name); };
}

bool is_adapter_parameter(const std::string& name) {
  const size_t dot = name.rfind('.');
  const std::string last = dot == std::string::npos ? name : name.substr(dot + 1);
  return last == kLoraA || last == kLoraB || last == kLoraScaling || last == kIa3;
}

std::vector<std::string> add_adapters(torch::nn::Module& net, const PeftOptions& options,
                                      const std::vector<std::string>& scopes) {
  const PeftMethod& method = options.method;
  if (!method.lora && !method.ia3) return {};
  const auto filter = compile(options.filter, "optim.lora.filter");
  const auto module_filter = compile(options.module_filter, "optim.lora.module_filter");
  const auto in_scope = [&](const std::string& name) {
    if (scopes.empty()) return true;
    const std::string top = name.substr(0, name.find('.'));
    return std::find(scopes.begin(), scopes.end(), top) != scopes.end();
  };
  std::vector<std::string> adapted, linear_names, module_names;
  torch::NoGradGuard no_grad;
  for (const auto& item : net.named_modules("", /*include_self=*/scopes.empty())) {
    const std::string& parent = item.key();
    if (!in_scope(parent)) continue;
    module_names.push_back(parent);
    const bool parent_matches = module_filter.empty() || matches_start(module_filter, parent);
    for (const auto& child : item.value()->named_children()) {
      auto* linear = child.value()->as<torch::nn::LinearImpl>();
      if (linear && std::find(linear_names.begin(), linear_names.end(), child.key()) == linear_names.end())
        linear_names.push_back(child.key());
      if (!parent_matches || !matches_start(filter, child.key())) continue;
      const std::string full = parent.empty() ? child.key() : parent + "." + child.key();
      if (!linear)
        throw std::invalid_argument("optim.peft = " + method.name + ": '" + full + "' matches optim.lora.filter but is a " +
                                    child.value()->name() + ", not a Linear layer; narrow the filter");
      if (find(*linear, kLoraA) || find(*linear, kIa3)) continue;
      const auto like = torch::TensorOptions().dtype(linear->weight.dtype()).device(linear->weight.device());
      const int64_t in = linear->weight.size(1), out = linear->weight.size(0);
      if (method.lora) {
        auto a = torch::empty({options.r, in}, like);
        torch::nn::init::kaiming_uniform_(a, std::sqrt(5.0));
        linear->register_parameter(kLoraA, a);
        linear->register_parameter(kLoraB, torch::zeros({out, options.r}, like));
        linear->register_parameter(kLoraScaling, torch::full({}, options.alpha / static_cast<double>(options.r), like),
                                   /*requires_grad=*/false);
      }
      if (method.ia3) linear->register_parameter(kIa3, torch::ones({out}, like));
      adapted.push_back(full);
    }
  }
  if (adapted.empty()) {
    std::string linears, modules, where;
    for (const auto& n : linear_names) linears += (linears.empty() ? "" : ", ") + n;
    for (size_t i = 0; i < module_names.size() && i < 12; ++i) modules += (modules.empty() ? "" : ", ") + module_names[i];
    for (const auto& s : scopes) where += (where.empty() ? "" : ", ") + s;
    std::string message = "optim.peft = " + method.name + ": no Linear layer of " +
                          (where.empty() ? std::string("the model") : where) + " matches optim.lora.filter";
    if (!options.module_filter.empty()) message += " inside a module matching optim.lora.module_filter";
    message += ". Its Linear layers are named: " + (linears.empty() ? std::string("(none)") : linears) +
               "; its modules: " + modules + (module_names.size() > 12 ? ", ..." : "") +
               ". Set optim.lora.filter (and module_filter) to some of these names";
    throw std::invalid_argument(message);
  }
  return adapted;
}

void freeze_for_peft(torch::nn::Module& net, const PeftMethod& method,
                     const std::function<bool(const std::string&)>& always_trainable) {
  // Normalization layers by type, as AutoMM's get_norm_layer_param_names (LayerNorm,
  // BatchNorm, GroupNorm; here also timm's LayerNorm2d and MetaFormer's norms).
  std::vector<std::string> norm_params;
  for (const auto& item : net.named_modules()) {
    if (item.value()->name().find("Norm") == std::string::npos) continue;
    for (const auto& p : item.value()->named_parameters(/*recurse=*/false))
      norm_params.push_back(item.key().empty() ? p.key() : item.key() + "." + p.key());
  }
  std::sort(norm_params.begin(), norm_params.end());
  for (auto& item : net.named_parameters()) {
    const std::string& name = item.key();
    const size_t dot = name.rfind('.');
    const std::string last = dot == std::string::npos ? name : name.substr(dot + 1);
    bool trainable = always_trainable(name);
    if ((method.lora && (last == kLoraA || last == kLoraB)) || (method.ia3 && last == kIa3)) trainable = true;
    if (method.train_bias && name.find("bias") != std::string::npos) trainable = true;
    if (method.train_norm && std::binary_search(norm_params.begin(), norm_params.end(), name)) trainable = true;
    if (last == kLoraScaling) trainable = false;
    item.value().set_requires_grad(trainable);
  }
}

LinearAdapter linear_adapter(const torch::nn::LinearImpl& linear) {
  auto& module = const_cast<torch::nn::LinearImpl&>(linear);
  LinearAdapter adapter;
  // Every Linear call asks: a layer holding only its weight and bias (all of them
  // outside PEFT fits) answers without a lookup.
  if (ParameterAccess::of(module).size() <= (linear.bias.defined() ? 2u : 1u)) return adapter;
  if (const torch::Tensor* a = find(module, kLoraA)) {
    adapter.lora_A = *a;
    adapter.lora_B = *find(module, kLoraB);
    adapter.lora_scaling = *find(module, kLoraScaling);
  }
  if (const torch::Tensor* l = find(module, kIa3)) adapter.ia3 = *l;
  return adapter;
}

int64_t merge_adapters(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  int64_t merged = 0;
  for (const auto& item : module.modules(/*include_self=*/true)) {
    auto* linear = item->as<torch::nn::LinearImpl>();
    if (!linear) continue;
    const LinearAdapter adapter = linear_adapter(*linear);
    if (!adapter.any()) continue;
    auto weight = linear->weight.to(torch::kFloat64);
    if (adapter.lora_A.defined())
      weight += torch::mm(adapter.lora_B.to(torch::kFloat64), adapter.lora_A.to(torch::kFloat64)) *
                adapter.lora_scaling.item<double>();
    if (adapter.ia3.defined()) {
      const auto scale = adapter.ia3.to(torch::kFloat64);
      weight *= scale.unsqueeze(1);
      if (linear->bias.defined()) linear->bias.copy_(linear->bias.to(torch::kFloat64) * scale);
    }
    linear->weight.copy_(weight);
    auto& params = ParameterAccess::of(*linear);
    for (const char* name : {kLoraA, kLoraB, kLoraScaling, kIa3})
      if (params.contains(name)) params.erase(name);
    ++merged;
  }
  return merged;
}

}  // namespace automm
