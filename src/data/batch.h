// What one optimizer or inference step reads: every model's inputs and every
// task's targets for a set of rows. The bottom of the dependency graph: data
// builds batches, models read their inputs from them, tasks read their targets.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <torch/torch.h>

namespace automm {

// The token sequences one text model reads, padded to the batch's longest.
struct TextBatch {
  torch::Tensor input_ids;       // [batch, seq] int64
  torch::Tensor token_type_ids;  // [batch, seq] int64 (segment ids)
  torch::Tensor attention_mask;  // [batch, seq] int64, 1 = token, 0 = padding
  int64_t pad_id = 0;            // what input_ids are padded with
  int64_t max_length = 0;        // the longest sequence the processor makes (0 = unknown)
};

// The images one image model reads: every row's image slots (each image
// column's first max_image_num_per_column images), decoded and transformed.
struct ImageBatch {
  torch::Tensor images;  // [batch, slots, 3, size, size] float
  torch::Tensor mask;    // [batch, slots] float, 1 = an image, 0 = missing / unreadable
};

// A task's targets for a set of rows, by the names the task gives them:
// `dense` holds one entry per row along dim 0 (a class index, a scaled value,
// a multi-label indicator row, a mask), `ragged` a tensor of its own per row
// (an image's boxes [n_i, 4], their classes [n_i]).
struct Targets {
  std::map<std::string, torch::Tensor> dense;
  std::map<std::string, std::vector<torch::Tensor>> ragged;

  bool empty() const { return dense.empty() && ragged.empty(); }
  // The targets of `rows` (int64 indices into these targets), on `device`.
  Targets select(const torch::Tensor& rows, torch::Device device = torch::kCPU) const;
  // The dense target `name`; throws naming the known ones when it is absent.
  const torch::Tensor& at(const std::string& name) const;
};

// One mini-batch; undefined tensors and empty maps for what the models do not read.
struct Batch {
  torch::Tensor numerical;                   // [batch, num_numerical] float
  torch::Tensor categorical;                 // [batch, num_categorical] int64
  std::map<std::string, TextBatch> text;     // by text model name (hf_text, hf_text_2)
  std::map<std::string, ImageBatch> images;  // by image model name (timm_image, ...)
  Targets targets;                           // empty at inference
};

}  // namespace automm
