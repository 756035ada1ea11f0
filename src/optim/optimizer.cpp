#include <algorithm>
#include <cctype>
#include <cmath>
#include <optional>
#include <map>
#include <stdexcept>

#include "optim/optim.h"
#include "optim/fused_adam.h"

namespace automm {

bool is_no_decay_parameter(const std::string& name) {
  auto ends_with = [&](const std::string& suffix) {
    return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  std::string lower = name;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  return ends_with("bias") || lower.find("norm") != std::string::npos ||
         name.find("cls_token") != std::string::npos || name.find("tokenizer") != std::string::npos;
}


namespace {

bool all_digits(const std::string& text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isdigit(c); });
}

// The first dot-separated part of the name made only of digits, or spelled
// "layer<N>" (torchvision / timm ResNet stages: layer1 ... layer4).
std::optional<int64_t> block_number(const std::string& name) {
  size_t begin = 0;
  while (begin <= name.size()) {
    size_t end = name.find('.', begin);
    if (end == std::string::npos) end = name.size();
    const std::string part = name.substr(begin, end - begin);
    if (part == "stem") return std::nullopt;  // ConvNeXt's stem.0 / stem.1 are not blocks
    if (all_digits(part)) return std::stoll(part);
    if (part.rfind("layer", 0) == 0 && all_digits(part.substr(5))) return std::stoll(part.substr(5));
    begin = end + 1;
  }
  return std::nullopt;
}

bool is_embedding_name(const std::string& name) {
  for (const char* marker : {"embed", "cls_token", "pos_", "position", "stem"})
    if (name.find(marker) != std::string::npos) return true;
  return false;
}

}  // namespace

std::map<std::string, int64_t> layerwise_ids(const std::vector<std::string>& names) {
  int64_t last_block = -1;
  for (const std::string& name : names)
    if (auto block = block_number(name)) last_block = std::max(last_block, *block);
  const int64_t num_blocks = last_block + 1;
  std::map<std::string, int64_t> ids;
  bool seen_block = false;
  for (const std::string& name : names) {
    if (auto block = block_number(name)) {
      ids[name] = num_blocks - *block;
      seen_block = true;
    } else {
      // Stems (before the first block, in registration order) count as embeddings.
      ids[name] = is_embedding_name(name) || (!seen_block && last_block >= 0) ? num_blocks + 1 : 0;
    }
  }
  return ids;
}

std::vector<ParameterGroup> make_parameter_groups(
    const std::vector<std::pair<std::string, torch::Tensor>>& named_params, const Config& config,
    const std::map<std::string, int64_t>& layer_ids) {
  const double base_lr = config.get_double("optim.lr");
  const double decay = config.get_double("optim.weight_decay");
  const std::string choice = config.get_string("optim.lr_choice");
  const double lr_decay = config.get_double("optim.lr_decay");
  const double lr_mult = config.get_double("optim.lr_mult");
  std::map<std::pair<double, double>, ParameterGroup> groups;
  for (const auto& [name, param] : named_params) {
    if (!param.requires_grad()) continue;
    const auto found = layer_ids.find(name);
    const int64_t id = found == layer_ids.end() ? 0 : found->second;
    double lr = base_lr;
    if (choice == "layerwise_decay") lr = base_lr * std::pow(lr_decay, static_cast<double>(id));
    else if (choice == "two_stages" && id == 0) lr = base_lr * lr_mult;
    const double wd = is_no_decay_parameter(name) ? 0.0 : decay;
    ParameterGroup& group = groups[{lr, wd}];
    group.lr = lr;
    group.weight_decay = wd;
    group.params.push_back(param);
    group.names.push_back(name);
  }
  std::vector<ParameterGroup> out;
  for (auto& [key, group] : groups) out.push_back(std::move(group));
  return out;
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const std::vector<ParameterGroup>& groups,
                                                        const Config& config) {
  const std::string type = config.get_string("optim.optim_type");
  std::vector<torch::optim::OptimizerParamGroup> param_groups;
  for (const ParameterGroup& g : groups) {
    std::unique_ptr<torch::optim::OptimizerOptions> options;
    if (type == "adamw")
      options = std::make_unique<torch::optim::AdamWOptions>(
          torch::optim::AdamWOptions(g.lr).eps(1e-6).weight_decay(g.weight_decay));
    else if (type == "adam")
      options = std::make_unique<torch::optim::AdamOptions>(
          torch::optim::AdamOptions(g.lr).weight_decay(g.weight_decay));
    else
      options = std::make_unique<torch::optim::SGDOptions>(
          torch::optim::SGDOptions(g.lr).momentum(0.9).weight_decay(g.weight_decay));
    param_groups.emplace_back(g.params, std::move(options));
  }
  if (type == "adamw") return std::make_unique<FusedAdamW>(std::move(param_groups));
  if (type == "adam") return std::make_unique<FusedAdam>(std::move(param_groups));
  if (type == "sgd") return std::make_unique<torch::optim::SGD>(std::move(param_groups), torch::optim::SGDOptions(0));
  throw std::invalid_argument("unknown optim.optim_type '" + type + "'");
}

void clear_gradients(torch::optim::Optimizer& optimizer) {
  for (auto& group : optimizer.param_groups())
    for (auto& p : group.params()) p.mutable_grad() = torch::Tensor();
}

void apply_schedule(torch::optim::Optimizer& optimizer, const std::vector<ParameterGroup>& groups,
                    const LrSchedule& schedule, int64_t step) {
  auto& param_groups = optimizer.param_groups();
  for (size_t i = 0; i < param_groups.size(); ++i)
    param_groups[i].options().set_lr(schedule.lr_at(step, groups[i].lr));
}

}  // namespace automm
