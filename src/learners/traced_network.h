// The network's inference forward pass as a TorchScript graph: env.compile.* and
// `automm export --format torchscript`. LibTorch 1.13 has no torch.compile; it has
// TorchScript's tracer, which records the ops one forward pass runs, with the
// weights as constants, into a graph that freezing and optimize_for_inference
// then simplify (casts of constant weights folded, linear weights pre-transposed,
// convolutions fused with what follows them through oneDNN).
//
// The C++ tracer records sizes as numbers: a graph serves inputs of the shapes it
// was traced with only. TracedNetworkCache therefore keeps one graph per input
// shape, and with env.compile.dynamic pads batches to shape buckets so that few
// graphs serve every batch.
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <torch/csrc/jit/runtime/interpreter.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "automm/config.h"
#include "data/batch.h"
#include "learners/placement.h"
#include "models/multimodal_net.h"

namespace automm {

// env.compile.*, read and checked at the edge.
struct CompileOptions {
  bool turn_on = false;
  // default: trace + freeze; reduce-overhead, max-autotune(-no-cudagraphs): trace +
  // optimize_for_inference (freezing plus oneDNN rewrites).
  bool optimize_for_inference = false;
  bool dynamic = true;  // pad batches to buckets (see TracedNetworkCache)
  // Throws naming the key for a backend LibTorch lacks (inductor, ...).
  static CompileOptions from(const Config& config);
};

// One input of a traced network: a named tensor of a Batch, in a fixed order.
struct TracedInput {
  std::string name;        // numerical, categorical, <model>.input_ids, <model>.images, ...
  std::string graph_name;  // its name in the graph (and an ONNX file): hf_text__input_ids
  torch::Tensor value;
};
// The tensors a batch gives its models (targets left out), in the order a traced
// network takes them: numerical, categorical, each text model's input_ids,
// token_type_ids and attention_mask, each image model's images and mask.
std::vector<TracedInput> traced_inputs(const Batch& batch);

// The rows of a batch (its inputs' first dimension).
int64_t batch_rows(const Batch& batch);
// `batch` (targets left out) with `rows` rows, the last one repeated, and each
// text model's sequences padded (pad id, token type 0, mask 0) to
// text_length(its TextBatch) tokens; throws when that is shorter than they are.
Batch padded_batch(const Batch& batch, int64_t rows, const std::function<int64_t(const TextBatch&)>& text_length);

// A TorchScript module whose forward(inputs in traced_inputs order) returns the
// tuple (logits [batch, outputs] fp32, features [batch, dim] fp32) of `net`'s eval
// forward pass on inputs of `example`'s shapes, under `placement`'s precision
// (mixed precision: the casts autocast makes are part of the graph; the module
// runs without autocast). Frozen; optimized for inference when asked.
torch::jit::Module trace_network(MultiModalNet& net, const Batch& example, const Placement& placement,
                                 bool optimize_for_inference);

// Traced graphs of one network, one per input shape, made on first use and
// dropped when a parameter changes (a further fit). With options.dynamic a batch
// is padded first: its rows (repeating the last) to the next power of two, its
// token sequences (pad id, mask 0) to the next multiple of 32, never past the
// processor's longest; the outputs of the padding rows are dropped. Thread-safe.
class TracedNetworkCache {
 public:
  NetOutput forward(MultiModalNet& net, const Batch& batch, const Placement& placement, const CompileOptions& options);
  // How many graphs were traced, for tests and the log.
  int64_t traces() const { return traces_; }
  static constexpr size_t kMaxGraphs = 8;  // the least recently used goes first

 private:
  std::mutex mutex_;
  std::vector<std::pair<torch::Tensor, uint32_t>> weights_;  // each parameter and its version when traced
  // A traced module and its graph compiled for LibTorch's plain interpreter: the
  // default (profiling) graph executor re-runs and re-optimizes a graph on its first
  // calls and held 1.4 GB more than that for a 32-row BERT-base batch.
  struct Graph {
    std::string key;  // the input shapes
    torch::jit::Module module;
    std::shared_ptr<torch::jit::Code> code;
  };
  std::list<Graph> graphs_;  // most recent first
  int64_t traces_ = 0;
};

}  // namespace automm
