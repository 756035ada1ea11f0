// A processed table: each model family's inputs for every row, and the task's
// targets, ready to be cut into batches.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "data/batch.h"

namespace automm {

// Where a batch's tensors go: the device, and the dtype of its float inputs.
struct BatchPlacement {
  torch::Device device = torch::kCPU;
  torch::Dtype float_dtype = torch::kFloat32;
};

// What one model family made of a table's rows (tokenized text, image cells,
// scaled numbers). Each kind knows how to put a set of rows into a Batch.
class ModelInputs {
 public:
  virtual ~ModelInputs() = default;
  // Adds the inputs of `rows` to `batch`. With `training_rng`, training-time
  // randomness applies (augmentation, stochastic chunks), drawn from it.
  virtual void add_to_batch(const std::vector<int64_t>& rows, const BatchPlacement& placement,
                            std::mt19937_64* training_rng, Batch& batch) const = 0;
  // What could not be read in the batches built so far, one line per column
  // (unreadable images: how many rows, the first paths and the decoder's
  // reasons); empty when everything read. Safe while batches are being built.
  virtual std::vector<std::string> problems() const { return {}; }
};

// A [rows, columns] tensor of numerical (float) or categorical (int64) features.
class TabularInputs : public ModelInputs {
 public:
  enum class Kind { kNumerical, kCategorical };
  TabularInputs(Kind kind, torch::Tensor values) : kind_(kind), values_(std::move(values)) {}
  void add_to_batch(const std::vector<int64_t>& rows, const BatchPlacement& placement, std::mt19937_64* training_rng,
                    Batch& batch) const override;
  const torch::Tensor& values() const { return values_; }

 private:
  Kind kind_;
  torch::Tensor values_;
};

struct Dataset {
  int64_t rows = 0;
  std::vector<std::shared_ptr<const ModelInputs>> inputs;
  Targets targets;  // empty when the table's targets were not read
};

// The given rows (int64) of a dataset as one batch, targets included. With a
// training_seed, training-time randomness applies, drawn from that seed so that
// any worker thread builds the same batch.
Batch make_batch(const Dataset& data, const torch::Tensor& rows, const BatchPlacement& placement,
                 std::optional<uint64_t> training_seed = std::nullopt);

}  // namespace automm
