// The interface every Hugging Face text encoder implements, and the registry
// that builds one from a config.json by its model_type.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "data/text/text_processor.h"
#include "models/gradient_checkpoint.h"

namespace automm {

class TextEncoderImpl : public torch::nn::Module {
 public:
  // input_ids, token_type_ids, attention_mask: [batch, seq] int64 (mask 1 =
  // token, 0 = padding) -> last hidden states [batch, seq, hidden]. An
  // undefined token_type_ids means all zeros; an undefined mask, no padding.
  virtual torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids,
                                const torch::Tensor& attention_mask) = 0;
  // Loads a Hugging Face state dict by name, all or nothing; throws listing
  // missing and unexpected encoder tensors.
  virtual void load_hf_state_dict(const std::map<std::string, torch::Tensor>& weights) = 0;
  virtual int64_t hidden_size() const = 0;
  // The longest sequence the position embeddings allow (roberta: minus the
  // padding offset); a very large number for purely relative positions.
  virtual int64_t max_sequence_length() const = 0;
  // Distinct token type (segment) ids the model has; 0 when it has none.
  virtual int64_t type_vocab_size() const = 0;
  // model.hf_text.gradient_checkpointing: each transformer block's activations
  // are dropped after forward and recomputed in backward.
  virtual void set_gradient_checkpointing(bool on) { gradient_checkpointing_ = on; }
  bool gradient_checkpointing() const { return gradient_checkpointing_; }

 protected:
  // block_fn(hidden) for one transformer block; recomputed in backward instead
  // of stored when gradient checkpointing is on and the module is training.
  torch::Tensor run_block(torch::nn::Module& block, const CheckpointedBlock& block_fn, const torch::Tensor& hidden);

  bool gradient_checkpointing_ = false;
};

// Builds an encoder with random weights from a parsed config.json; throws
// std::invalid_argument naming the model_type and the supported ones.
std::shared_ptr<TextEncoderImpl> make_text_encoder(const nlohmann::json& config);

// What the text processor needs to know of a model (data/text/text_processor.h),
// read from its config.json without building it.
TextModelLimits text_model_limits(const nlohmann::json& config);
// The same, from the config.json of a checkpoint folder.
TextModelLimits read_text_model_limits(const std::string& checkpoint_dir);
std::vector<std::string> supported_text_model_types();

}  // namespace automm
