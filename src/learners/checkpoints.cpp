#include "checkpoints.h"

#include <algorithm>

namespace automm {

Weights snapshot(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  Weights weights;
  // Frozen parameters (PEFT) never change: an undefined tensor holds their place.
  for (const auto& p : module.parameters()) weights.push_back(p.requires_grad() ? p.detach().clone() : torch::Tensor());
  for (const auto& b : module.buffers()) weights.push_back(b.detach().clone());
  return weights;
}

void restore(torch::nn::Module& module, const Weights& weights) {
  torch::NoGradGuard no_grad;
  size_t i = 0;
  for (auto& p : module.parameters()) {
    const torch::Tensor& saved = weights.at(i++);
    if (saved.defined()) p.copy_(saved);
  }
  for (auto& b : module.buffers()) b.copy_(weights.at(i++));
}

Weights average(const std::vector<const Weights*>& members) {
  Weights mean;
  for (size_t t = 0; t < members.front()->size(); ++t) {
    const torch::Tensor& first = (*members.front())[t];
    if (!first.defined()) {  // a frozen parameter
      mean.emplace_back();
      continue;
    }
    if (!first.is_floating_point()) {  // integer buffers (counters, offsets) are not averaged
      mean.push_back(first.clone());
      continue;
    }
    auto sum = torch::zeros_like(first);
    for (const Weights* w : members) sum += (*w)[t];
    mean.push_back(sum / static_cast<double>(members.size()));
  }
  return mean;
}

bool TopKCheckpoints::offer(double score, torch::nn::Module& module) {
  if (std::isnan(score)) return false;
  if (kept_.size() >= k_ && score <= kept_.back().first) return false;
  const auto pos = std::find_if(kept_.begin(), kept_.end(), [&](const auto& c) { return score > c.first; });
  kept_.insert(pos, {score, snapshot(module)});
  if (kept_.size() > k_) kept_.pop_back();
  return true;
}

std::vector<double> TopKCheckpoints::scores() const {
  std::vector<double> out;
  for (const auto& c : kept_) out.push_back(c.first);
  return out;
}

void TopKCheckpoints::finalize(const std::string& method, torch::nn::Module& module,
                               const std::function<double()>& evaluate) const {
  if (kept_.empty()) return;
  if (method == "best" || kept_.size() == 1) {
    restore(module, kept_.front().second);
    return;
  }
  if (method == "uniform_soup") {
    std::vector<const Weights*> all;
    for (const auto& c : kept_) all.push_back(&c.second);
    restore(module, average(all));
    return;
  }
  // greedy_soup: start from the best; add the next checkpoint when the averaged
  // model's score does not get worse.
  std::vector<const Weights*> soup = {&kept_.front().second};
  double soup_score = kept_.front().first;
  for (size_t i = 1; i < kept_.size(); ++i) {
    soup.push_back(&kept_[i].second);
    restore(module, average(soup));
    const double score = evaluate();
    if (score >= soup_score) {
      soup_score = score;
    } else {
      soup.pop_back();
    }
  }
  restore(module, average(soup));
}

}  // namespace automm
