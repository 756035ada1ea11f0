// Parameter-efficient fine-tuning (AutoMM's optim.peft, models/adaptation_layers.py
// and optim/utils.py): LoRA and IA3 adapters on a backbone's Linear layers, the
// choice of what trains, and the merge of adapters into plain weights.
//
// An adapter lives on the Linear it adapts, as parameters registered on that
// LinearImpl: lora_A [r, in], lora_B [out, r] and lora_scaling (alpha / r, not
// trained) for LoRA, lora_b [out] for IA3. apply_linear() (models/layers.h)
// runs them:
//   LoRA  y = x W^T + b + (x A^T B^T) * alpha / r     A kaiming-uniform, B zero
//   IA3   y = (x W^T + b) * l                          l = 1
//   IA3 + LoRA  y = (x W^T + b + (x A^T B^T) * alpha / r) * l
// so every backbone gets adapters without a module type of its own.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "automm/config.h"

namespace automm {

// What one optim.peft method adds and trains (a small registry by name).
struct PeftMethod {
  std::string name;
  bool lora = false;        // adds lora_A / lora_B
  bool ia3 = false;         // adds lora_b
  bool train_bias = false;  // biases train too
  bool train_norm = false;  // normalization weights and biases train too
};
// The method by name; throws listing the known ones.
const PeftMethod& peft_method(const std::string& name);
std::vector<std::string> peft_method_names();

struct PeftOptions {
  PeftMethod method;
  int64_t r = 8;
  double alpha = 8.0;
  std::vector<std::string> filter;         // regexes matched at the start of a Linear child's name
  std::vector<std::string> module_filter;  // regexes matched at the start of its parent's name; empty = all
  bool merge_at_save = true;
};
// optim.peft, optim.lora.*; nullopt when optim.peft is null.
std::optional<PeftOptions> peft_options(const Config& config);

// Adds the method's adapters to each Linear child whose own name matches
// `filter`, under a module whose full name matches `module_filter`, inside the
// direct children of `net` named in `scopes` (the pretrained backbones; empty =
// all of `net`). Returns the adapted layers' full names. Throws when a matching
// child is not a Linear, and when nothing matches (naming the Linear layers in
// scope). No-op for bit_fit / norm_fit.
std::vector<std::string> add_adapters(torch::nn::Module& net, const PeftOptions& options,
                                      const std::vector<std::string>& scopes = {});

// Sets requires_grad on every parameter of `net`: true for the method's own
// (adapters; biases for *_bias / bit_fit; norm weights for *_norm / norm_fit)
// and for every parameter `always_trainable` accepts (heads), false otherwise.
void freeze_for_peft(torch::nn::Module& net, const PeftMethod& method,
                     const std::function<bool(const std::string&)>& always_trainable);

// optim.extra_trainable_params: whether a parameter's full name matches one of
// its regexes at its start (AutoMM's re.match); throws naming a bad regex.
std::function<bool(const std::string&)> trainable_parameter_filter(const Config& config);

// Folds every adapter of `module` into its Linear (W + B A alpha / r, then W and b
// scaled by l) and removes it: the result runs with no adapter code at all.
// Returns how many layers were merged.
int64_t merge_adapters(torch::nn::Module& module);

// Adapter view of one Linear: undefined tensors where the layer has none.
struct LinearAdapter {
  torch::Tensor lora_A, lora_B, lora_scaling, ia3;
  bool any() const { return lora_A.defined() || ia3.defined(); }
};
LinearAdapter linear_adapter(const torch::nn::LinearImpl& linear);

// The parameter names that belong to adapters (lora_A, lora_B, lora_b, lora_scaling).
bool is_adapter_parameter(const std::string& name);

}  // namespace automm
