// Top-k checkpoints kept in memory, and their averaging (AutoMM's learners/base.py).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <torch/torch.h>

namespace automm {

// Parameters then buffers, in module order; a frozen parameter (requires_grad
// false) is an undefined tensor, so a PEFT checkpoint holds only what trains.
using Weights = std::vector<torch::Tensor>;

Weights snapshot(torch::nn::Module& module);
void restore(torch::nn::Module& module, const Weights& weights);
Weights average(const std::vector<const Weights*>& members);

class TopKCheckpoints {
 public:
  explicit TopKCheckpoints(size_t k) : k_(k) {}
  // `score` is higher-is-better. Returns true when the checkpoint was kept.
  bool offer(double score, torch::nn::Module& module);
  bool empty() const { return kept_.empty(); }
  std::vector<double> scores() const;
  // Replaces the module's weights by "best", "uniform_soup" or "greedy_soup".
  // `evaluate` scores the module as it stands (higher is better).
  void finalize(const std::string& method, torch::nn::Module& module,
                const std::function<double()>& evaluate) const;
  // For resumable training state: (score, weights), best first.
  const std::vector<std::pair<double, Weights>>& entries() const { return kept_; }
  void set_entries(std::vector<std::pair<double, Weights>> entries) { kept_ = std::move(entries); }

 private:
  size_t k_;
  std::vector<std::pair<double, Weights>> kept_;  // best first
};

}  // namespace automm
