// DefaultLearner::export_model: the network's fp32 inference forward pass as a
// TorchScript file (traced_network.h), or as ONNX through /usr/bin/python3's
// torch.onnx.export of that TorchScript file, with a JSON sidecar and a test
// vector (the example inputs and the outputs computed for them).
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "automm/weights_io.h"
#include "learners/default_learner.h"
#include "learners/learner_io.h"
#include "learners/traced_network.h"

namespace automm {
namespace fs = std::filesystem;
namespace {

// Reads the example inputs (a safetensors file, parsed by hand: Debian has no
// safetensors package), exports the TorchScript module to ONNX, and checks that
// the module reproduces the outputs automm.cpp computed.
constexpr const char* kOnnxScript = R"PY(
import json, struct, sys
try:
    import torch
except ImportError as error:
    sys.exit("this Python has no torch (%s): install python3-torch" % error)
module_path, example_path, sidecar_path, out_path, opset = sys.argv[1:6]
sidecar = json.load(open(sidecar_path))
raw = open(example_path, "rb").read()
header_length = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + header_length])
dtypes = {"F32": torch.float32, "I64": torch.int64}
def tensor(name):
    entry = header[name]
    begin, end = entry["data_offsets"]
    data = bytearray(raw[8 + header_length + begin:8 + header_length + end])
    return torch.frombuffer(data, dtype=dtypes[entry["dtype"]]).reshape(entry["shape"])
inputs = tuple(tensor(i["name"]) for i in sidecar["inputs"])
module = torch.jit.load(module_path)
with torch.no_grad():
    got = module(*inputs)
for index, output in enumerate(sidecar["outputs"]):
    difference = (got[index] - tensor("expected." + output["name"])).abs().max().item()
    if not difference <= 1e-4:
        sys.exit("torch.jit.load's run of the exported module differs from automm.cpp's by %g" % difference)
torch.onnx.export(module, inputs, out_path, input_names=[i["name"] for i in sidecar["inputs"]],
                  output_names=[o["name"] for o in sidecar["outputs"]], opset_version=int(opset))
)PY";

std::string python_interpreter() {
  const char* chosen = std::getenv("AUTOMM_PYTHON");
  return chosen && *chosen ? chosen : "/usr/bin/python3";
}

// Runs `python -c script args...`; throws with its output when it fails.
void run_python(const std::vector<std::string>& args, const fs::path& log) {
  const std::string python = python_interpreter();
  std::vector<std::string> argv_text = {python, "-c", kOnnxScript};
  argv_text.insert(argv_text.end(), args.begin(), args.end());
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("export: cannot start " + python);
  if (pid == 0) {
    FILE* out = std::freopen(log.c_str(), "w", stdout);
    if (out) dup2(fileno(stdout), STDERR_FILENO);
    std::vector<char*> argv;
    for (auto& a : argv_text) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(python.c_str(), argv.data());
    std::fprintf(stderr, "cannot run %s\n", python.c_str());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return;
  std::ifstream in(log);
  std::stringstream text;
  text << in.rdbuf();
  std::string output = text.str();
  if (output.size() > 4000) output = "..." + output.substr(output.size() - 4000);
  throw std::runtime_error("export to ONNX goes through " + python +
                           "'s torch.onnx.export (set AUTOMM_PYTHON to use another interpreter), and it failed: " +
                           output);
}

std::string dtype_name(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat32: return "float32";
    case torch::kInt64: return "int64";
    default: return c10::toString(type);
  }
}

}  // namespace

void DefaultLearner::export_model(const Table& example, const std::string& out_text,
                                  const ExportOptions& options) const {
  require_fitted("export_model");
  if (options.format != "torchscript" && options.format != "onnx")
    throw std::invalid_argument("export format '" + options.format + "': torchscript or onnx");
  if (options.batch_size < 1)
    throw std::invalid_argument("export batch_size " + std::to_string(options.batch_size) + ": at least 1 row");
  if (out_text.empty()) throw std::invalid_argument("export needs an output file path");
  for (const auto& p : net_->parameters())
    if (p.scalar_type() != torch::kFloat32)
      throw std::invalid_argument("export traces the network in fp32, and this predictor's weights are " +
                                  std::string(c10::toString(p.scalar_type())) + " (env.precision = " +
                                  config_.get_string("env.precision") + ")");
  const Table rows = usable_rows(example, "example data");
  if (rows.num_rows() == 0) throw std::invalid_argument("export needs at least one example row");
  const Dataset data = process(rows, /*with_targets=*/false);
  const int64_t taken = std::min<int64_t>(options.batch_size, data.rows);
  const Batch taken_rows = make_batch(data, torch::arange(taken, torch::kInt64), BatchPlacement{});
  const Batch batch = padded_batch(taken_rows, options.batch_size, [&](const TextBatch& text) {
    if (options.text_length <= 0) return std::max(text.max_length, text.input_ids.size(1));
    if (text.max_length > 0 && options.text_length > text.max_length)
      throw std::invalid_argument("export text_length " + std::to_string(options.text_length) +
                                  ": the text processor makes at most " + std::to_string(text.max_length) +
                                  " tokens (model.hf_text.max_text_len)");
    return options.text_length;
  });
  set_intra_op_threads(inference_threads(options.batch_size));
  MultiModalNet model = net_;
  torch::jit::Module module = trace_network(model, batch, Placement{}, /*optimize_for_inference=*/false);

  // What the module computes on the example, for the sidecar's users and the ONNX check.
  const std::vector<TracedInput> inputs = traced_inputs(batch);
  std::vector<torch::jit::IValue> values;
  for (const auto& input : inputs) values.emplace_back(input.value);
  torch::jit::IValue result;
  {
    torch::NoGradGuard no_grad;
    result = module.forward(values);
  }
  const auto outputs = result.toTuple();
  const torch::Tensor logits = outputs->elements().at(0).toTensor(), features = outputs->elements().at(1).toTensor();

  Json input_list = Json::array();
  for (const auto& input : inputs) {
    input_list.push_back({{"name", input.graph_name},
                          {"batch_field", input.name},
                          {"dtype", dtype_name(input.value.scalar_type())},
                          {"shape", input.value.sizes().vec()}});
  }
  Json text = Json::object();
  for (const auto& [name, t] : batch.text)
    text[name] = {{"length", t.input_ids.size(1)}, {"pad_id", t.pad_id},
                  {"note", "pad input_ids with pad_id, token_type_ids and attention_mask with 0"}};
  const bool probabilities = task_->has_probabilities();
  Json sidecar = {
      {"format", options.format},
      {"file", fs::path(out_text).filename().string()},
      {"problem_type", task_->name()},
      {"label", options_.label},
      {"classes", task_->classes()},
      {"inputs", input_list},
      {"outputs",
       Json::array({{{"name", "logits"}, {"dtype", dtype_name(logits.scalar_type())}, {"shape", logits.sizes().vec()},
                     {"meaning", probabilities ? "the head's logits: softmax over the last dimension gives "
                                                 "predict_proba's probabilities, in the order of classes"
                                               : "the head's output in the label's scaled units (task_state)"}},
                    {{"name", "features"}, {"dtype", dtype_name(features.scalar_type())},
                     {"shape", features.sizes().vec()}, {"meaning", "extract_embedding's features"}}})},
      {"text", text},
      {"task_state", task_->to_json()},
      {"example", fs::path(out_text).filename().string() + ".example.safetensors"},
      {"example_note", "the example rows' inputs (by input name) and the outputs automm.cpp computed for them "
                       "(expected.logits, expected.features): a test vector for another runtime"},
      {"precision", "fp32"},
      {"traced_with", "LibTorch " TORCH_VERSION " C++ tracer, frozen"}};

  // Everything is written beside `out` first and renamed into place last.
  const fs::path out = fs::absolute(out_text);
  if (!out.parent_path().empty()) fs::create_directories(out.parent_path());
  const std::string suffix = ".tmp-" + unique_suffix();
  const fs::path temp_module = out.string() + suffix + ".ts", temp_sidecar = out.string() + suffix + ".json";
  std::vector<fs::path> temporaries = {temp_module, temp_sidecar};
  const auto clean = [&] {
    std::error_code ignored;
    for (const auto& t : temporaries) fs::remove(t, ignored);
  };
  const fs::path temp_example = out.string() + suffix + ".example.safetensors";
  temporaries.push_back(temp_example);
  try {
    module.save(temp_module.string());
    write_text_file(temp_sidecar.string(), sidecar.dump(2));
    StateDict example_tensors;
    for (const auto& input : inputs) example_tensors[input.graph_name] = input.value;
    example_tensors["expected.logits"] = logits;
    example_tensors["expected.features"] = features;
    save_safetensors(example_tensors, temp_example.string());
    fs::path produced = temp_module;
    if (options.format == "onnx") {
      const fs::path onnx_file = out.string() + suffix + ".onnx", log = out.string() + suffix + ".log";
      temporaries.insert(temporaries.end(), {onnx_file, log});
      run_python({temp_module.string(), temp_example.string(), temp_sidecar.string(), onnx_file.string(),
                  std::to_string(options.opset_version)},
                 log);
      produced = onnx_file;
    }
    fs::rename(produced, out);
    fs::rename(temp_sidecar, out.string() + ".json");
    fs::rename(temp_example, out.string() + ".example.safetensors");
  } catch (...) {
    clean();
    throw;
  }
  clean();
}

}  // namespace automm
