// Tests of traced networks (src/learners/traced_network.cpp): env.compile's graphs
// give eager inference's answers (1e-5 in fp32) for every batch shape, are made
// once per shape bucket and again when the weights change; and `export_model`
// writes TorchScript that Debian's PyTorch runs and ONNX that ONNX Runtime runs,
// both giving the predictor's own answers.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <torch/torch.h>

#include "automm/predictor.h"
#include "automm/weights_io.h"
#include "automm_test_paths.h"
#include "image_test_util.h"
#include "learners/traced_network.h"
#include "data/processors.h"
#include "learners/trainer.h"
#include "test_util.h"
#include "text_test_util.h"

namespace automm {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

ModelContext tabular_context() {
  ModelContext c;
  c.num_numerical = 2;
  c.categorical_cardinalities = {3, 4};
  c.num_outputs = 3;
  return c;
}

Batch tabular_batch(int64_t rows) {
  Batch batch;
  batch.numerical = torch::randn({rows, 2});
  batch.categorical = torch::stack({torch::randint(0, 3, {rows}), torch::randint(0, 4, {rows})}, 1);
  return batch;
}

// Within `tolerance` relative to the largest value (at least 1): a padded batch
// runs matmuls of other shapes, which sum in another order.
void expect_close(const torch::Tensor& got, const torch::Tensor& want, double tolerance) {
  ASSERT_EQ(got.sizes(), want.sizes());
  const torch::Tensor a = got.to(torch::kFloat64), b = want.to(torch::kFloat64);
  const double scale = std::max(1.0, b.abs().max().item<double>());
  EXPECT_LE((a - b).abs().max().item<double>(), tolerance * scale) << "largest value " << scale;
}

void expect_close(const NetOutput& got, const NetOutput& want, double tolerance) {
  expect_close(got.logits, want.logits, tolerance);
  expect_close(got.features, want.features, tolerance);
}

TEST(TracedNetworkCache, MatchesEagerInferenceAndTracesOncePerShapeBucket) {
  torch::manual_seed(0);
  MultiModalNet net(std::vector<std::string>{"categorical_mlp", "numerical_mlp", "fusion_mlp"}, tabular_context(),
                    Config());
  net->eval();
  torch::NoGradGuard no_grad;
  const Placement fp32;
  for (const bool optimize : {false, true}) {
    CompileOptions options;
    options.turn_on = true;
    options.optimize_for_inference = optimize;
    TracedNetworkCache cache;
    for (const int64_t rows : {3, 4, 1, 5, 8, 7}) {
      const Batch batch = tabular_batch(rows);
      expect_close(cache.forward(net, batch, fp32, options), run_forward(net, batch, fp32), 1e-5);
    }
    EXPECT_EQ(cache.traces(), 3) << "buckets of 1, 4 and 8 rows";
    // A further fit changes the weights: the graphs (their weights are constants) are made again.
    for (auto& p : net->parameters()) p.add_(0.05);
    const Batch batch = tabular_batch(3);
    expect_close(cache.forward(net, batch, fp32, options), run_forward(net, batch, fp32), 1e-5);
    EXPECT_EQ(cache.traces(), 4);
  }
  // Without dynamic shapes every row count is a graph of its own.
  CompileOptions exact;
  exact.turn_on = true;
  exact.dynamic = false;
  TracedNetworkCache cache;
  for (const int64_t rows : {3, 4, 3}) cache.forward(net, tabular_batch(rows), fp32, exact);
  EXPECT_EQ(cache.traces(), 2);
  // More shapes than the cache keeps: the least recently used graph goes.
  for (int64_t rows = 5; rows < 5 + static_cast<int64_t>(TracedNetworkCache::kMaxGraphs); ++rows)
    cache.forward(net, tabular_batch(rows), fp32, exact);
  cache.forward(net, tabular_batch(3), fp32, exact);
  EXPECT_EQ(cache.traces(), 2 + static_cast<int64_t>(TracedNetworkCache::kMaxGraphs) + 1);
}

TEST(TracedNetworkCache, MixedPrecisionGraphsFoldTheWeightCasts) {
  torch::manual_seed(1);
  MultiModalNet net(std::vector<std::string>{"categorical_mlp", "numerical_mlp", "fusion_mlp"}, tabular_context(),
                    Config());
  net->eval();
  torch::NoGradGuard no_grad;
  Placement mixed;
  mixed.autocast = true;
  CompileOptions options;
  options.turn_on = true;
  TracedNetworkCache cache;
  const Batch batch = tabular_batch(6);
  // The traced graph runs without autocast: its casts are recorded in it.
  const NetOutput traced = cache.forward(net, batch, mixed, options);
  EXPECT_EQ(traced.logits.scalar_type(), run_forward(net, batch, mixed).logits.scalar_type());
  expect_close(traced, run_forward(net, batch, mixed), 2e-2);
  EXPECT_TRUE(net->parameters().front().requires_grad()) << "tracing gives the parameters back as they were";
}

TEST(CompileOptions, ModesMapToFreezingOrOptimizeForInference) {
  Config config;
  EXPECT_FALSE(CompileOptions::from(config).turn_on);
  EXPECT_TRUE(CompileOptions::from(config).dynamic);
  EXPECT_FALSE(CompileOptions::from(config).optimize_for_inference);
  for (const char* mode : {"reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"}) {
    config.set("env.compile.mode", mode);
    EXPECT_TRUE(CompileOptions::from(config).optimize_for_inference) << mode;
  }
  config.set("env.compile.dynamic", false);
  EXPECT_FALSE(CompileOptions::from(config).dynamic);
  // The two kinds of graph differ: optimize_for_inference rewrites what freezing leaves.
  torch::manual_seed(3);
  MultiModalNet net(std::vector<std::string>{"categorical_mlp", "numerical_mlp", "fusion_mlp"}, tabular_context(),
                    Config());
  const Batch batch = tabular_batch(2);
  const auto graph_text = [&](bool optimize) {
    return trace_network(net, batch, Placement{}, optimize).get_method("forward").graph()->toString();
  };
  EXPECT_NE(graph_text(false), graph_text(true));
}

// predict_logits with a predictor's cache follows the config's env.compile keys;
// without a cache (validation during a fit) it never compiles.
TEST(CompiledPrediction, ConfigKeysDecideWhetherAndHowGraphsAreMade) {
  torch::manual_seed(4);
  MultiModalNet net(std::vector<std::string>{"categorical_mlp", "numerical_mlp", "fusion_mlp"}, tabular_context(),
                    Config());
  const auto data = [](int64_t rows) {
    const Batch batch = tabular_batch(rows);
    Dataset d;
    d.rows = rows;
    d.inputs = {std::make_shared<TabularInputs>(TabularInputs::Kind::kNumerical, batch.numerical),
                std::make_shared<TabularInputs>(TabularInputs::Kind::kCategorical, batch.categorical)};
    return d;
  };
  const Dataset three = data(3), four = data(4);
  Config config;
  config.set("env.precision", "32");
  config.set("env.num_workers_inference", 0);
  InferenceCache cache;
  const torch::Tensor eager = predict_logits(net, three, config, false, &cache);
  EXPECT_EQ(cache.traced.traces(), 0) << "env.compile.turn_on is off by default";
  config.set("env.compile.turn_on", true);
  expect_close(predict_logits(net, three, config, false, &cache), eager, 1e-5);
  EXPECT_EQ(cache.traced.traces(), 1);
  predict_logits(net, four, config, false, &cache);
  EXPECT_EQ(cache.traced.traces(), 1) << "3 and 4 rows share the bucket of 4";
  predict_logits(net, three, config, false, nullptr);  // no cache: eager, nothing traced anywhere
  config.set("env.compile.dynamic", false);
  InferenceCache exact;
  predict_logits(net, three, config, false, &exact);
  predict_logits(net, four, config, false, &exact);
  EXPECT_EQ(exact.traced.traces(), 2) << "exact shapes: a graph each";
}

TEST(CompileOptions, TorchCompileBackendsAreRefusedWithTheReason) {
  Config config;
  config.set("env.compile.turn_on", true);
  EXPECT_TRUE(CompileOptions::from(config).turn_on);
  config.set("env.compile.backend", "inductor");
  const std::string message = testing::error_of([&] { CompileOptions::from(config); });
  EXPECT_TRUE(testing::Contains(message, "env.compile.backend = inductor"));
  EXPECT_TRUE(testing::Contains(message, "torchscript"));
  config.set("env.compile.turn_on", false);  // not compiling: nothing to refuse
  EXPECT_FALSE(CompileOptions::from(config).turn_on);
}

// --- through the predictor ---------------------------------------------------

Json fp32_keys(Json extra = Json::object()) {
  Json keys = {{"env.precision", "32"}, {"env.num_workers", 0}, {"env.num_workers_inference", 0}};
  keys.update(extra);
  return keys;
}

PredictorOptions options_at(const std::string& path, Json hyperparameters) {
  PredictorOptions options;
  options.label = "label";
  options.path = path;
  options.verbose = false;
  options.pretrained = false;
  options.hyperparameters = std::move(hyperparameters);
  return options;
}

// A copy of the predictor folder `from` whose saved config turns env.compile on.
std::string compiled_copy(const std::string& from, const std::string& to) {
  fs::copy(from, to, fs::copy_options::recursive);
  Json meta = Json::parse(read_text(to + "/predictor.json"));
  meta["config"]["env.compile.turn_on"] = true;
  testing::write_file(to + "/predictor.json", meta.dump());
  return to;
}

TEST(CompiledPrediction, TextPredictorGivesEagerAnswersForEveryLength) {
  TempDir dir;
  MultiModalPredictor predictor(options_at(
      dir.file("p"), fp32_keys({{"model.hf_text.checkpoint_name", "scratch:bert-tiny"}, {"optim.max_steps", 4},
                                {"env.per_gpu_batch_size", 8}, {"env.inference_batch_size_ratio", 2}})));
  predictor.fit(testing::make_review_table(64, 1));
  const Table test = testing::make_review_table(37, 2);  // texts of many lengths; batches of 16, 16 and 5 rows
  const torch::Tensor eager = predictor.predict_proba(test);
  const auto compiled = MultiModalPredictor::load(compiled_copy(dir.file("p"), dir.file("c")));
  EXPECT_TRUE(compiled.config().get_bool("env.compile.turn_on"));
  EXPECT_LE((compiled.predict_proba(test) - eager).abs().max().item<double>(), 1e-5);
  EXPECT_LE((compiled.extract_embedding(test) - predictor.extract_embedding(test)).abs().max().item<double>(), 1e-4);
  for (size_t r : {0, 5, 36}) {  // one row at a time: other shapes, same answers
    const Table one = test.select_rows({r});
    EXPECT_LE((compiled.predict_proba(one)[0] - eager[static_cast<int64_t>(r)]).abs().max().item<double>(), 1e-5);
  }
}

TEST(CompiledPrediction, FitWithCompileTurnedOnPredictsAsEager) {
  TempDir dir;
  const Table train = testing::make_tabular_table(300, 3, "multiclass"), test = testing::make_tabular_table(45, 4, "multiclass");
  MultiModalPredictor compiled(options_at(dir.file("c"), fp32_keys({{"env.compile.turn_on", true}, {"optim.max_epochs", 2}})));
  compiled.fit(train);
  Json meta = Json::parse(read_text(dir.file("c/predictor.json")));
  EXPECT_TRUE(meta["config"]["env.compile.turn_on"].get<bool>());
  meta["config"]["env.compile.turn_on"] = false;
  fs::copy(dir.file("c"), dir.file("e"), fs::copy_options::recursive);
  testing::write_file(dir.file("e/predictor.json"), meta.dump());
  const auto eager = MultiModalPredictor::load(dir.file("e"));
  EXPECT_LE((compiled.predict_proba(test) - eager.predict_proba(test)).abs().max().item<double>(), 1e-5);
  EXPECT_EQ(compiled.predict(test).to_column().size(), 45u);
}

// --- export ------------------------------------------------------------------

// Softmax of the exported graph's logits, as predict_proba gives them.
torch::Tensor softmax_of(const torch::Tensor& logits) { return torch::softmax(logits.to(torch::kFloat64), 1); }

// Runs the exported TorchScript file in /usr/bin/python3's PyTorch on the example
// inputs; returns its logits.
torch::Tensor run_in_pytorch(const TempDir& dir, const std::string& module) {
  const std::string script = dir.file("run.py"), out = dir.file("torch_out.safetensors");
  testing::write_file(script, R"PY(
import json, struct, sys, torch
module_path, out_path = sys.argv[1:3]
sidecar = json.load(open(module_path + ".json"))
raw = open(module_path + ".example.safetensors", "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + n])
def tensor(name):
    e = header[name]
    dtype = {"F32": torch.float32, "I64": torch.int64}[e["dtype"]]
    return torch.frombuffer(bytearray(raw[8 + n + e["data_offsets"][0]:8 + n + e["data_offsets"][1]]), dtype=dtype).reshape(e["shape"])
module = torch.jit.load(module_path)
logits, features = module(*[tensor(i["name"]) for i in sidecar["inputs"]])
data = logits.detach().contiguous().numpy().tobytes()
head = json.dumps({"logits": {"dtype": "F32", "shape": list(logits.shape), "data_offsets": [0, len(data)]}}).encode()
head += b" " * ((8 - len(head) % 8) % 8)
open(out_path, "wb").write(struct.pack("<Q", len(head)) + head + data)
)PY");
  const std::string failure =
      testing::run_reference_command("/usr/bin/python3 '" + script + "' '" + module + "' '" + out + "'", dir.file("log"));
  if (!failure.empty()) throw std::runtime_error(failure);
  return load_safetensors(out).at("logits");
}

// Runs an exported ONNX file in ONNX Runtime (tests/onnx_reference); returns its logits.
torch::Tensor run_in_onnx_runtime(const TempDir& dir, const std::string& model, int64_t rows) {
  const std::string out = dir.file("ort_out.json");
  const std::string failure = testing::run_reference_command(
      "node '" AUTOMM_SOURCE_DIR "/tests/onnx_reference/run_onnx.js' '" + model + "' '" + model +
          ".example.safetensors' > '" + out + "'",
      dir.file("log"));
  if (!failure.empty()) throw std::runtime_error(failure);
  const Json result = Json::parse(read_text(out));
  const auto values = result.at("logits").get<std::vector<float>>();
  return torch::tensor(values).reshape({rows, -1});
}

std::string onnx_runtime_missing() {
  if (std::system("command -v node >/dev/null 2>&1") != 0) return "node is missing: run scripts/setup.sh";
  if (!fs::exists(AUTOMM_SOURCE_DIR "/tests/onnx_reference/node_modules/onnxruntime-node"))
    return "onnxruntime-node is missing: run tests/onnx_reference/setup.sh (scripts/setup.sh does)";
  return testing::python_reference_missing("torch", "python3-torch", "the ONNX export");
}

// Exports `predictor` on `example` in both formats and checks each runtime's
// logits against the predictor's probabilities for the same rows.
void check_exports(const MultiModalPredictor& predictor, const Table& example, int64_t batch_size, const TempDir& dir) {
  const torch::Tensor want = predictor.predict_proba(example.select_rows([&] {
    std::vector<size_t> rows;
    for (int64_t r = 0; r < batch_size; ++r) rows.push_back(static_cast<size_t>(std::min<int64_t>(r, example.num_rows() - 1)));
    return rows;
  }()));
  ExportOptions options;
  options.batch_size = batch_size;
  const std::string ts = dir.file("model.ts");
  predictor.export_model(example, ts, options);
  const Json sidecar = Json::parse(read_text(ts + ".json"));
  EXPECT_EQ(sidecar.at("classes").get<std::vector<std::string>>(), predictor.classes());
  EXPECT_EQ(sidecar.at("outputs")[0].at("shape")[0].get<int64_t>(), batch_size);
  const torch::Tensor expected = load_safetensors(ts + ".example.safetensors").at("expected.logits");
  EXPECT_LE((softmax_of(expected) - want.to(torch::kFloat64)).abs().max().item<double>(), 1e-5);
  const std::string missing = onnx_runtime_missing();
  if (!missing.empty()) GTEST_SKIP() << missing;
  EXPECT_LE((softmax_of(run_in_pytorch(dir, ts)) - want.to(torch::kFloat64)).abs().max().item<double>(), 1e-5);
  options.format = "onnx";
  const std::string onnx = dir.file("model.onnx");
  predictor.export_model(example, onnx, options);
  EXPECT_LE((softmax_of(run_in_onnx_runtime(dir, onnx, batch_size)) - want.to(torch::kFloat64)).abs().max().item<double>(),
            1e-4);
}

TEST(ExportModel, TabularPredictorRunsInPyTorchAndOnnxRuntime) {
  TempDir dir;
  MultiModalPredictor predictor(options_at(dir.file("p"), fp32_keys({{"optim.max_epochs", 2}})));
  predictor.fit(testing::make_tabular_table(300, 5, "multiclass"));
  check_exports(predictor, testing::make_tabular_table(20, 6, "multiclass"), 4, dir);
}

TEST(ExportModel, TextPredictorRunsInPyTorchAndOnnxRuntime) {
  TempDir dir;
  MultiModalPredictor predictor(options_at(
      dir.file("p"), fp32_keys({{"model.hf_text.checkpoint_name", "scratch:bert-tiny"}, {"optim.max_steps", 3},
                                {"model.hf_text.max_text_len", 64}})));
  predictor.fit(testing::make_review_table(48, 7));
  check_exports(predictor, testing::make_review_table(5, 8), 2, dir);
  const Json sidecar = Json::parse(read_text(dir.file("model.ts.json")));
  EXPECT_EQ(sidecar.at("text").at("hf_text").at("length").get<int64_t>(), 64) << "padded to the processor's longest";
}

TEST(ExportModel, ImagePredictorRunsInPyTorchAndOnnxRuntime) {
  TempDir dir;
  fs::create_directories(dir.file("img"));
  const Table train = testing::make_shape_table(dir.file("img"), "t", 24, 9);
  MultiModalPredictor predictor(options_at(
      dir.file("p"), fp32_keys({{"model.timm_image.checkpoint_name", "resnet18"}, {"model.timm_image.image_size", 40},
                                {"optim.max_steps", 2}})));
  predictor.fit(train);
  check_exports(predictor, testing::make_shape_table(dir.file("img"), "e", 3, 10), 3, dir);
}

TEST(ExportModel, BadRequestsGetClearErrorsAndLeaveTheFileAlone) {
  TempDir dir;
  MultiModalPredictor predictor(options_at(dir.file("p"), fp32_keys({{"optim.max_epochs", 1}})));
  const Table table = testing::make_tabular_table(100, 11);
  predictor.fit(table);
  testing::write_file(dir.file("model.ts"), "keep me");
  ExportOptions bad;
  bad.format = "tflite";
  EXPECT_TRUE(testing::Contains(testing::error_of([&] { predictor.export_model(table, dir.file("model.ts"), bad); }),
                                "torchscript or onnx"));
  bad.format = "torchscript";
  bad.batch_size = 0;
  EXPECT_TRUE(testing::Contains(testing::error_of([&] { predictor.export_model(table, dir.file("model.ts"), bad); }),
                                "at least 1 row"));
  Table without = table;
  without.drop_column(without.column_names().front());
  EXPECT_TRUE(testing::Contains(
      testing::error_of([&] { predictor.export_model(without, dir.file("model.ts"), ExportOptions{}); }), "lacks column"));
  // ONNX through an interpreter without torch: the error says so, the old file stays.
  setenv("AUTOMM_PYTHON", "/bin/false", 1);
  ExportOptions onnx;
  onnx.format = "onnx";
  const std::string message = testing::error_of([&] { predictor.export_model(table, dir.file("model.ts"), onnx); });
  unsetenv("AUTOMM_PYTHON");
  EXPECT_TRUE(testing::Contains(message, "torch.onnx.export"));
  EXPECT_EQ(read_text(dir.file("model.ts")), "keep me");
  for (const auto& entry : fs::directory_iterator(dir.path()))
    EXPECT_EQ(entry.path().filename().string().find(".tmp-"), std::string::npos) << "a failed export cleans up";
}

}  // namespace
}  // namespace automm
