#include "data/dataset.h"

#include <stdexcept>

namespace automm {

Targets Targets::select(const torch::Tensor& rows, torch::Device device) const {
  Targets out;
  for (const auto& [name, values] : dense) out.dense[name] = values.index_select(0, rows).to(device);
  if (ragged.empty()) return out;
  const torch::Tensor ids = rows.to(torch::kInt64).contiguous();
  for (const auto& [name, per_row] : ragged) {
    std::vector<torch::Tensor>& picked = out.ragged[name];
    for (int64_t i = 0; i < ids.numel(); ++i) picked.push_back(per_row.at(ids.data_ptr<int64_t>()[i]).to(device));
  }
  return out;
}

const torch::Tensor& Targets::at(const std::string& name) const {
  const auto it = dense.find(name);
  if (it != dense.end()) return it->second;
  std::string known;
  for (const auto& [key, value] : dense) known += (known.empty() ? "" : ", ") + key;
  throw std::invalid_argument("the batch has no target '" + name + "' (it has: " + (known.empty() ? "none" : known) +
                              ")");
}

void TabularInputs::add_to_batch(const std::vector<int64_t>& rows, const BatchPlacement& placement,
                                 std::mt19937_64* training_rng, Batch& batch) const {
  if (values_.size(1) == 0) return;
  const torch::Tensor index = torch::tensor(rows, torch::kInt64);
  if (kind_ == Kind::kNumerical)
    batch.numerical = values_.index_select(0, index).to(placement.device, placement.float_dtype);
  else
    batch.categorical = values_.index_select(0, index).to(placement.device);
}

Batch make_batch(const Dataset& data, const torch::Tensor& rows, const BatchPlacement& placement,
                 std::optional<uint64_t> training_seed) {
  Batch batch;
  const torch::Tensor row_ids = rows.to(torch::kInt64).contiguous();
  const std::vector<int64_t> row_list(row_ids.data_ptr<int64_t>(), row_ids.data_ptr<int64_t>() + row_ids.numel());
  std::mt19937_64 rng(training_seed.value_or(0));
  std::mt19937_64* training_rng = training_seed ? &rng : nullptr;
  for (const auto& inputs : data.inputs) inputs->add_to_batch(row_list, placement, training_rng, batch);
  if (!data.targets.empty()) batch.targets = data.targets.select(row_ids, placement.device);
  return batch;
}

}  // namespace automm
