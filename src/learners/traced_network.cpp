#include "learners/traced_network.h"

#include <algorithm>
#include <cctype>
#include <stdexcept>

#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/frontend/tracer.h>

namespace automm {
namespace {

// Calls visit(name, tensor) for every model input of `batch` (a Batch or a const
// Batch), in the order traced networks take them.
template <typename BatchType, typename Visit>
void for_each_input(BatchType& batch, Visit visit) {
  if (batch.numerical.defined()) visit("numerical", batch.numerical);
  if (batch.categorical.defined()) visit("categorical", batch.categorical);
  for (auto& [model, text] : batch.text) {
    visit(model + ".input_ids", text.input_ids);
    if (text.token_type_ids.defined()) visit(model + ".token_type_ids", text.token_type_ids);
    if (text.attention_mask.defined()) visit(model + ".attention_mask", text.attention_mask);
  }
  for (auto& [model, images] : batch.images) {
    visit(model + ".images", images.images);
    visit(model + ".mask", images.mask);
  }
}

}  // namespace

int64_t batch_rows(const Batch& batch) {
  int64_t rows = -1;
  for_each_input(batch, [&](const std::string&, const torch::Tensor& t) {
    if (rows < 0) rows = t.size(0);
  });
  if (rows < 0) throw std::logic_error("a batch without model inputs cannot be traced");
  return rows;
}

namespace {

// While alive: the given parameters do not require grad (the tracer takes
// weights as constants, and refuses constants that require grad).
class NoGradParameters {
 public:
  explicit NoGradParameters(torch::nn::Module& net) {
    for (auto& p : net.parameters())
      if (p.requires_grad()) {
        p.requires_grad_(false);
        params_.push_back(p);
      }
  }
  ~NoGradParameters() {
    for (auto& p : params_) p.requires_grad_(true);
  }
  NoGradParameters(const NoGradParameters&) = delete;
  NoGradParameters& operator=(const NoGradParameters&) = delete;

 private:
  std::vector<torch::Tensor> params_;
};

// A TorchScript identifier for an input name: hf_text.input_ids -> hf_text__input_ids.
std::string identifier(const std::string& name) {
  std::string out;
  for (char c : name) {
    if (c == '.')
      out += "__";
    else
      out += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  }
  return out;
}

int64_t next_power_of_two(int64_t n) {
  int64_t p = 1;
  while (p < n) p *= 2;
  return p;
}

std::string shape_key(const Batch& batch) {
  std::string key;
  for_each_input(batch, [&](const std::string& name, const torch::Tensor& t) {
    key += name + ":" + c10::toString(t.scalar_type()) + c10::str(t.sizes()) + ";";
  });
  return key;
}

}  // namespace

CompileOptions CompileOptions::from(const Config& config) {
  CompileOptions options;
  options.turn_on = config.get_bool("env.compile.turn_on");
  options.dynamic = config.get_bool("env.compile.dynamic");
  options.optimize_for_inference = config.get_string("env.compile.mode") != "default";
  const std::string backend = config.get_string("env.compile.backend");
  if (options.turn_on && backend != "torchscript")
    throw std::invalid_argument(
        "env.compile.backend = " + backend +
        " is a torch.compile backend (PyTorch 2), which LibTorch 1.13 does not have; automm.cpp compiles through "
        "TorchScript: set env.compile.backend = torchscript");
  return options;
}

Batch padded_batch(const Batch& batch, int64_t rows, const std::function<int64_t(const TextBatch&)>& text_length) {
  Batch out = batch;
  out.targets = {};
  const int64_t have = batch_rows(batch);
  if (rows != have) {
    // The first rows, then the last one repeated.
    const torch::Tensor index = torch::arange(rows, torch::kInt64).clamp_max(have - 1);
    for_each_input(out, [&](const std::string&, torch::Tensor& t) { t = t.index_select(0, index.to(t.device())); });
  }
  for (auto& [model, text] : out.text) {
    const int64_t length = text.input_ids.size(1), padded = text_length(text);
    if (padded < length)
      throw std::invalid_argument(model + ": cannot pad token sequences of " + std::to_string(length) + " to " +
                                  std::to_string(padded) + " tokens");
    if (padded == length) continue;
    const auto pad = [&](const torch::Tensor& t, int64_t value) {
      return t.defined() ? torch::constant_pad_nd(t, {0, padded - length}, value) : t;
    };
    text.input_ids = pad(text.input_ids, text.pad_id);
    text.token_type_ids = pad(text.token_type_ids, 0);
    text.attention_mask = pad(text.attention_mask, 0);
  }
  return out;
}

std::vector<TracedInput> traced_inputs(const Batch& batch) {
  std::vector<TracedInput> inputs;
  for_each_input(batch, [&](const std::string& name, const torch::Tensor& t) {
    inputs.push_back({name, identifier(name), t});
  });
  return inputs;
}

torch::jit::Module trace_network(MultiModalNet& net, const Batch& example, const Placement& placement,
                                 bool optimize_for_inference) {
  torch::NoGradGuard no_grad;
  const bool was_training = net->is_training();
  net->eval();
  Batch layout = example;
  layout.targets = {};
  torch::jit::Stack stack;
  std::vector<std::string> names;
  for (const TracedInput& input : traced_inputs(layout)) {
    stack.emplace_back(input.value);
    names.push_back(input.graph_name);
  }
  std::shared_ptr<torch::jit::Graph> graph;
  try {
    const NoGradParameters constants(*net);
    auto traced = torch::jit::tracer::trace(
        stack,
        [&](torch::jit::Stack in) {
          Batch batch = layout;
          size_t next = 0;
          for_each_input(batch, [&](const std::string&, torch::Tensor& t) { t = in.at(next++).toTensor(); });
          const AutocastScope autocast(placement);
          NetOutput out = net->forward(batch);
          return torch::jit::Stack{c10::ivalue::Tuple::create({out.logits, out.features})};
        },
        [](const torch::autograd::Variable&) { return std::string(); }, /*strict=*/false);
    graph = traced.first->graph;
    // The weights are constants of the graph; once the parameters require grad
    // again, the graph keeps tensors of its own (same storage) that do not.
    for (torch::jit::Node* node : graph->nodes())
      if (node->kind() == c10::prim::Constant && node->hasAttribute(c10::attr::value) &&
          node->kindOf(c10::attr::value) == torch::jit::AttributeKind::t)
        node->t_(c10::attr::value, node->t(c10::attr::value).detach());
  } catch (...) {
    net->train(was_training);
    throw;
  }
  net->train(was_training);
  for (size_t i = 0; i < names.size(); ++i) graph->inputs()[i]->setDebugName(names[i]);

  torch::jit::Module module("__torch__.automm.TracedNetwork");
  graph->insertInput(0, "self")->setType(module._ivalue()->type());
  auto function = module._ivalue()->compilation_unit()->create_function(
      c10::QualifiedName(*module.type()->name(), "forward"), graph);
  module.type()->addMethod(function);
  module.eval();
  return optimize_for_inference ? torch::jit::optimize_for_inference(module) : torch::jit::freeze(module);
}

NetOutput TracedNetworkCache::forward(MultiModalNet& net, const Batch& batch, const Placement& placement,
                                      const CompileOptions& options) {
  std::lock_guard<std::mutex> lock(mutex_);
  const std::vector<torch::Tensor> params = net->parameters();
  bool unchanged = params.size() == weights_.size();
  for (size_t i = 0; unchanged && i < params.size(); ++i)
    unchanged = params[i].is_same(weights_[i].first) && params[i]._version() == weights_[i].second;
  if (!unchanged) {
    graphs_.clear();
    weights_.clear();
    for (const auto& p : params) weights_.emplace_back(p, p._version());
  }
  const int64_t rows = batch_rows(batch);
  Batch input = batch;
  input.targets = {};
  if (options.dynamic)
    input = padded_batch(batch, next_power_of_two(rows), [](const TextBatch& text) {
      const int64_t length = text.input_ids.size(1), bucket = (length + 31) / 32 * 32;
      return text.max_length > 0 ? std::min(bucket, std::max(text.max_length, length)) : length;
    });
  const std::string key = shape_key(input) + (options.optimize_for_inference ? "optimized" : "frozen");
  auto found = std::find_if(graphs_.begin(), graphs_.end(), [&](const Graph& entry) { return entry.key == key; });
  if (found == graphs_.end()) {
    torch::jit::Module module = trace_network(net, input, placement, options.optimize_for_inference);
    auto code = std::make_shared<torch::jit::Code>(module.get_method("forward").graph(), "forward");
    graphs_.push_front({key, std::move(module), std::move(code)});
    ++traces_;
    if (graphs_.size() > kMaxGraphs) graphs_.pop_back();
  } else if (found != graphs_.begin()) {
    graphs_.splice(graphs_.begin(), graphs_, found);
  }
  const Graph& graph = graphs_.front();
  torch::jit::Stack stack{graph.module._ivalue()};  // the graph's first input is the module
  for (const TracedInput& in : traced_inputs(input)) stack.emplace_back(in.value);
  torch::jit::InterpreterState(*graph.code).run(stack);
  const auto outputs = stack.back().toTuple();
  NetOutput out;
  out.logits = outputs->elements().at(0).toTensor().narrow(0, 0, rows);
  out.features = outputs->elements().at(1).toTensor().narrow(0, 0, rows);
  return out;
}

}  // namespace automm
