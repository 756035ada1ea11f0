// Model benchmark: training step time and inference latency / throughput of
// BERT-base, ELECTRA-small (discriminator), ViT-B/32 and Swin-T shaped models
// (and, with --models, CLIP ViT-B/32's image and text towers: inference only;
// SAM ViT-B's image encoder at 1024 pixels, batch 1, and a LoRA training step at 512;
// the detectors yolox_s and yolov3_mobilenetv2: inference at batch 1 and 8 with
// post-processing, a training step at batch 8, fp32, see bench_detection.h),
// beside eager PyTorch (bench/models_peer.py, /usr/bin/python3, torch 1.13) and,
// for inference, ONNX Runtime (bench/ort_peer.js, onnxruntime-node) in the same run.
//
//   training    batch 8 (sequence 128 for text), forward + cross-entropy + backward
//               + AdamW step; fp32 and bf16-mixed (AutocastScope, bf16)
//   inference   batch 1 latency and batch 32 throughput, fp32 and bf16 weights;
//               batch 1 under bf16 autocast (fp32 weights, cast once per predictor here,
//               at every call by torch 1.13's autocast)
//
// Random weights and inputs (text: no padding, token types 0; images 3x224x224);
// text models get a 2-class linear head on the first token, image models timm's
// 1000-class head. Each configuration runs in a fresh child process of this
// executable (`--child`), so its peak RSS (VmHWM at exit) is its own; times are
// the median of --iters calls after --warmup calls. Model FLOP utilisation counts
// the matmul FLOPs of the architecture (training = 3x forward) against the GEMM
// peak measured at the start of the same run (fp32 peak for fp32, bf16 peak for bf16).
//
//   bash bench/run.sh     (or: automm_bench_models OUT.json [--iters N] [--warmup W] [--rounds R]
//                               [--threads T] [--models bert_base,electra_small,vit_b32,swin_t]
//                                                        (also clip_b32_image, clip_b32_text,
//                                                         sam_b_encoder, sam_b_lora,
//                                                         yolox_s, yolov3_mobilenetv2)
//                               [--data DIR]  (the detectors' weights and inputs; default a
//                                              temporary folder, prepared at the start)
//                               [--peer bench/models_peer.py] [--python /usr/bin/python3]
//                               [--ort-js bench/ort_peer.js] [--node node])
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/torch.h>

#include "learners/trainer.h"
#include "optim/optim.h"
#include "bench_common.h"
#include "bench_detection.h"
#include "models/clip/clip_model.h"
#include "models/peft.h"
#include "models/sam/sam_model.h"
#include "optim/segmentation.h"
#include "models/image/image_encoder.h"
#include "models/text/text_encoder.h"
#include "optim/fused_adam.h"

namespace {

using automm_bench::detector_forward_flops;
using automm_bench::gemm_gflops;
using automm_bench::is_detector;
using automm_bench::median_time;
using automm_bench::peak_rss_mib;
using nlohmann::json;

const std::vector<std::string> kModels = {"bert_base", "electra_small", "vit_b32", "swin_t"};
// infer1_mixed: batch 1 under bf16 autocast with fp32 weights, as a bf16-mixed
// predictor (and AutoMM) runs inference.
// infer8_fp32: the detectors' batch.
const std::vector<std::string> kConfigs = {"train_fp32",   "train_bf16",  "infer1_fp32",  "infer1_bf16",
                                           "infer1_mixed", "infer8_fp32", "infer32_fp32", "infer32_bf16"};
constexpr int64_t kSeq = 128;
constexpr int64_t kTrainBatch = 8;

json text_config(const std::string& model) {
  json c = {{"model_type", "bert"},        {"vocab_size", 30522},         {"hidden_size", 768},
            {"num_hidden_layers", 12},     {"num_attention_heads", 12},   {"intermediate_size", 3072},
            {"max_position_embeddings", 512}, {"type_vocab_size", 2},     {"hidden_act", "gelu"},
            {"hidden_dropout_prob", 0.1},  {"attention_probs_dropout_prob", 0.1}, {"layer_norm_eps", 1e-12},
            {"pad_token_id", 0}};
  if (model == "electra_small") {
    c["model_type"] = "electra";
    c["hidden_size"] = 256;
    c["num_attention_heads"] = 4;
    c["intermediate_size"] = 1024;
    c["embedding_size"] = 128;
  }
  return c;
}

bool is_text(const std::string& model) { return model == "bert_base" || model == "electra_small"; }
// CLIP ViT-B/32's towers (openai/clip-vit-base-patch32's sizes): embeddings, no head, no training configs.
bool is_clip(const std::string& model) { return model == "clip_b32_image" || model == "clip_b32_text"; }
constexpr int64_t kClipSeq = 77;
// SAM ViT-B (facebook/sam-vit-base's sizes) at 1024 pixels: the image encoder's
// inference at batch 1, and a training step of AutoMM's preset (LoRA r 3 on the
// vision encoder's qkv, mask decoder trained, structure loss) at batch 1.
bool is_sam(const std::string& model) { return model == "sam_b_encoder" || model == "sam_b_lora"; }
constexpr int64_t kSamSize = 1024;
// The LoRA training step at 512 pixels (a 32 x 32 grid): at 1024 one step of SAM ViT-B
// takes minutes on 2 cores, in both engines.
constexpr int64_t kSamTrainSize = 512;
// Which configurations a model runs: CLIP's towers and SAM's encoder infer only
// (SAM at batch 1: a 1024-pixel batch of 32 takes minutes), SAM's LoRA step trains only.
bool runs(const std::string& model, const std::string& config) {
  if (is_detector(model)) return config == "train_fp32" || config == "infer1_fp32" || config == "infer8_fp32";
  if (config == "infer8_fp32") return false;
  const bool train = config.rfind("train", 0) == 0;
  if (is_clip(model)) return !train;
  if (model == "sam_b_encoder") return config.rfind("infer1_", 0) == 0;
  if (model == "sam_b_lora") return train;
  return true;
}

// Matmul FLOPs of one sample's forward pass (2 per multiply-add).
double forward_flops(const std::string& model) {
  if (is_detector(model)) return detector_forward_flops(model);
  if (is_text(model)) {
    const json c = text_config(model);
    const double h = c["hidden_size"], inter = c["intermediate_size"], layers = c["num_hidden_layers"];
    const double e = c.value("embedding_size", h), s = kSeq;
    double f = layers * (s * (8 * h * h + 4 * h * inter) + 4 * s * s * h);
    if (e != h) f += s * 2 * e * h;
    return f + 2 * h * 2;  // head
  }
  if (is_sam(model)) {  // the image encoder (the decoder adds about 1%); LoRA's step counts 3x this, as others
    const double h = 768, inter = 3072, grid = model == "sam_b_encoder" ? 64 : 32, n = grid * grid;
    const double window = 196, windows = std::pow(std::ceil(grid / 14), 2);
    double f = n * 2 * 3 * 16 * 16 * h + 12 * n * (8 * h * h + 4 * h * inter);
    f += 8 * windows * 4 * window * window * h + 4 * 4 * n * n * h;  // 8 windowed, 4 global layers
    return f + n * 2 * h * 256 + n * 2 * 9 * 256 * 256;              // neck
  }
  if (model == "clip_b32_text") {
    const double h = 512, inter = 2048, s = kClipSeq;
    return 12 * (s * (8 * h * h + 4 * h * inter) + 4 * s * s * h) + 2 * h * 512;
  }
  if (model == "clip_b32_image") {
    const double h = 768, inter = 3072, n = 50, patches = 49;
    return patches * 2 * 3 * 32 * 32 * h + 12 * (n * (8 * h * h + 4 * h * inter) + 4 * n * n * h) + 2 * h * 512;
  }
  if (model == "vit_b32") {
    const double h = 768, inter = 3072, n = 50, patches = 49;
    return patches * 2 * 3 * 32 * 32 * h + 12 * (n * (8 * h * h + 4 * h * inter) + 4 * n * n * h) + 2 * h * 1000;
  }
  // swin_t: window 7 (49 tokens), mlp ratio 4, patch merging between stages.
  const double dims[] = {96, 192, 384, 768}, depths[] = {2, 2, 6, 2}, tokens[] = {3136, 784, 196, 49};
  double f = 3136 * 2 * 48 * 96;
  for (int s = 0; s < 4; ++s) {
    const double c = dims[s], n = tokens[s];
    f += depths[s] * (n * (8 * c * c + 16 * c * c) + 4 * n * 49 * c);
    if (s < 3) f += tokens[s + 1] * 2 * (4 * c) * (2 * c);
  }
  return f + 2 * 768 * 1000;
}

struct TextClassifierImpl : torch::nn::Module {
  explicit TextClassifierImpl(const json& config) {
    encoder = register_module("encoder", automm::make_text_encoder(config));
    head = register_module("head", torch::nn::Linear(encoder->hidden_size(), 2));
  }
  torch::Tensor forward(const torch::Tensor& ids, const torch::Tensor& types) {
    return head(encoder->forward(ids, types, torch::Tensor()).select(1, 0));
  }
  std::shared_ptr<automm::TextEncoderImpl> encoder;
  torch::nn::Linear head{nullptr};
};

struct ModelUnderTest {
  std::shared_ptr<torch::nn::Module> module;
  int64_t num_classes = 0;
  std::function<std::vector<torch::Tensor>(int64_t batch, torch::Dtype dtype)> inputs;
  std::function<torch::Tensor(const std::vector<torch::Tensor>&)> forward;
  // The training loss of the forward's output; unset: cross-entropy against random labels.
  std::function<torch::Tensor(const torch::Tensor&)> loss;
};

ModelUnderTest make_model(const std::string& model) {
  torch::manual_seed(0);
  ModelUnderTest m;
  if (is_text(model)) {
    auto net = std::make_shared<TextClassifierImpl>(text_config(model));
    m.module = net;
    m.num_classes = 2;
    m.inputs = [](int64_t batch, torch::Dtype) {
      return std::vector<torch::Tensor>{torch::randint(1, 30522, {batch, kSeq}, torch::kInt64),
                                        torch::zeros({batch, kSeq}, torch::kInt64)};
    };
    m.forward = [net](const std::vector<torch::Tensor>& x) { return net->forward(x[0], x[1]); };
    return m;
  }
  if (is_sam(model)) {
    auto net = std::make_shared<automm::SamModelImpl>(automm::SamConfig::from_json(json{{"model_type", "sam"}}));
    m.module = net;
    if (model == "sam_b_encoder") {
      m.inputs = [](int64_t batch, torch::Dtype dtype) {
        return std::vector<torch::Tensor>{torch::randn({batch, 3, kSamSize, kSamSize}).to(dtype)};
      };
      m.forward = [net](const std::vector<torch::Tensor>& x) { return net->image_embeddings(x[0]); };
      return m;
    }
    // The checkpoint's 1024-pixel weights read at 512: position embeddings resampled, as model.sam.image_size does.
    automm::Config keys;
    keys.set("model.sam.image_size", kSamTrainSize);
    net = std::make_shared<automm::SamModelImpl>(automm::SamConfig::from_json(json{{"model_type", "sam"}}, keys));
    m.module = net;
    m.inputs = [](int64_t batch, torch::Dtype dtype) {
      return std::vector<torch::Tensor>{torch::randn({batch, 3, kSamTrainSize, kSamTrainSize}).to(dtype)};
    };
    net->mask_decoder->adapt_for_semantic_segmentation(1, 1);
    automm::PeftOptions lora;
    lora.method = automm::peft_method("lora");
    lora.r = 3;
    lora.alpha = 32;
    lora.filter = {"q", "v"};
    lora.module_filter = {".*vision_encoder.*attn"};
    automm::add_adapters(*net, lora);
    const std::regex decoder(".*mask_decoder");
    automm::freeze_for_peft(*net, lora.method, [&](const std::string& name) {
      return std::regex_search(name, decoder, std::regex_constants::match_continuous) &&
             name.find("iou_prediction_head") == std::string::npos;
    });
    m.forward = [net](const std::vector<torch::Tensor>& x) { return net->forward(x[0]).logits; };
    const torch::Tensor gt = (torch::rand({1, 1, kSamTrainSize, kSamTrainSize}) > 0.7).to(torch::kFloat32);
    m.loss = [gt](const torch::Tensor& logits) { return automm::structure_loss(logits, gt.expand_as(logits)); };
    return m;
  }
  if (is_clip(model)) {
    auto net = std::make_shared<automm::ClipModelImpl>(automm::ClipConfig::from_json(json{{"model_type", "clip"}}));
    m.module = net;
    if (model == "clip_b32_text") {
      m.inputs = [](int64_t batch, torch::Dtype) {
        auto ids = torch::randint(0, 49406, {batch, kClipSeq}, torch::kInt64);
        ids.select(1, kClipSeq - 1).fill_(49407);  // <|endoftext|> last
        return std::vector<torch::Tensor>{ids, torch::ones({batch, kClipSeq}, torch::kInt64)};
      };
      m.forward = [net](const std::vector<torch::Tensor>& x) { return net->text_features(x[0], x[1]); };
    } else {
      m.inputs = [](int64_t batch, torch::Dtype dtype) {
        return std::vector<torch::Tensor>{torch::randn({batch, 3, 224, 224}).to(dtype)};
      };
      m.forward = [net](const std::vector<torch::Tensor>& x) { return net->image_features(x[0]); };
    }
    return m;
  }
  auto net = automm::make_image_encoder(model == "vit_b32" ? "vit_base_patch32_224" : "swin_tiny_patch4_window7_224",
                                        1000);
  m.module = net;
  m.num_classes = 1000;
  m.inputs = [](int64_t batch, torch::Dtype dtype) {
    return std::vector<torch::Tensor>{torch::randn({batch, 3, 224, 224}).to(dtype)};
  };
  m.forward = [net](const std::vector<torch::Tensor>& x) { return net->forward(x[0]); };
  return m;
}

// With AUTOMM_BENCH_PROFILE=FILE, one more call runs under LibTorch's profiler and
// its chrome trace goes to FILE (summarise with bench/profile_summary.py).
template <typename F>
void profile_once(F&& work) {
  const char* file = std::getenv("AUTOMM_BENCH_PROFILE");
  if (!file || !*file) return;
  torch::autograd::profiler::RecordProfile profile(file);
  work();
}

// One configuration, in this (fresh) process: {"ms", "samples_per_s", "peak_rss_mib"}.
json run_child(const std::string& model, const std::string& config, int warmup, int iters, const std::string& data) {
  if (is_detector(model)) return automm_bench::run_detector_child(model, config, warmup, iters, data);
  const bool bf16 = config.find("bf16") != std::string::npos;
  ModelUnderTest m = make_model(model);
  json out;
  double t = 0;
  int64_t batch = kTrainBatch;
  if (config.rfind("train", 0) == 0) {
    m.module->train();
    std::vector<torch::Tensor> trainable;
    for (const auto& p : m.module->parameters())
      if (p.requires_grad()) trainable.push_back(p);
    automm::FusedAdamW optimizer(trainable, torch::optim::AdamWOptions(1e-4).eps(1e-6).weight_decay(0.01));
    if (is_sam(model)) batch = 1;
    automm::Placement placement;
    placement.autocast = bf16;
    placement.autocast_dtype = torch::kBFloat16;
    const auto x = m.inputs(batch, torch::kFloat32);
    const auto labels = torch::randint(0, std::max<int64_t>(1, m.num_classes), {batch}, torch::kInt64);
    const auto step = [&] {
      automm::clear_gradients(optimizer);
      torch::Tensor logits;
      {
        automm::AutocastScope autocast(placement);
        logits = m.forward(x);
      }
      auto loss = m.loss ? m.loss(logits.to(torch::kFloat32))
                         : torch::nn::functional::cross_entropy(logits.to(torch::kFloat32), labels);
      loss.backward();
      optimizer.step();
    };
    t = median_time(warmup, iters, step);
    profile_once(step);
  } else {
    batch = std::stoll(config.substr(5, config.find('_') - 5));  // infer<batch>_...
    m.module->eval();
    // infer*_mixed: what a bf16-mixed predictor runs (autocast, weights cast once).
    const bool mixed = config.find("mixed") != std::string::npos;
    if (bf16) m.module->to(torch::kBFloat16);
    c10::InferenceMode guard;
    automm::Placement placement;
    placement.autocast = mixed;
    automm::CastWeightCache cache;
    std::optional<automm::CastWeightCache::Scope> cast;
    if (mixed) cast.emplace(cache.apply(*m.module, torch::kBFloat16));
    const auto x = m.inputs(batch, bf16 ? torch::kBFloat16 : torch::kFloat32);
    const auto forward = [&] {
      automm::AutocastScope autocast(placement);
      m.forward(x);
    };
    t = median_time(warmup, iters, forward);
    profile_once(forward);
  }
  out["ms"] = t * 1e3;
  out["batch"] = batch;
  out["samples_per_s"] = batch / t;
  out["peak_rss_mib"] = peak_rss_mib();
  return out;
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// Runs `command`, returns the JSON object on its last stdout line (stderr passes through).
json run_json_command(const std::string& command) {
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return {{"error", "popen failed"}};
  std::string text, last;
  char buffer[4096];
  while (fgets(buffer, sizeof buffer, pipe)) text += buffer;
  const int status = pclose(pipe);
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);)
    if (!line.empty() && line[0] == '{') last = line;
  if (last.empty()) return {{"error", "no result (exit status " + std::to_string(status) + ")"}};
  try {
    return json::parse(last);
  } catch (const std::exception& e) {
    return {{"error", std::string("bad result line: ") + e.what()}};
  }
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> parts;
  std::stringstream stream(s);
  for (std::string item; std::getline(stream, item, ',');)
    if (!item.empty()) parts.push_back(item);
  return parts;
}

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& part : parts) out += (out.empty() ? "" : ",") + part;
  return out;
}

// The result with the median "ms" among those without an error (else the first error).
json median_result(std::vector<json> results) {
  std::vector<json> ok;
  for (const auto& r : results)
    if (r.is_object() && !r.contains("error") && r.contains("ms")) ok.push_back(r);
  if (ok.empty()) return results.empty() ? json{{"error", "not run"}} : results.front();
  std::sort(ok.begin(), ok.end(), [](const json& a, const json& b) { return a["ms"].get<double>() < b["ms"].get<double>(); });
  json median = ok[ok.size() / 2];
  median["rounds"] = ok.size();
  return median;
}

double number(const json& j, const std::string& key) {
  return j.is_object() && j.contains(key) && j[key].is_number() ? j[key].get<double>() : -1;
}

std::string ratio_text(double a, double b) {
  if (a <= 0 || b <= 0) return "     -";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%6.2f", a / b);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  std::string json_path = "bench_models.json", peer, python = "/usr/bin/python3", ort_js, node = "node";
  std::string child_model, child_config, models_arg, data, prepare_model;
  int iters = 5, warmup = 2, rounds = 1, threads = static_cast<int>(std::thread::hardware_concurrency());
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--iters") iters = std::stoi(next());
    else if (arg == "--warmup") warmup = std::stoi(next());
    else if (arg == "--rounds") rounds = std::max(1, std::stoi(next()));
    else if (arg == "--threads") threads = std::stoi(next());
    else if (arg == "--models") models_arg = next();
    else if (arg == "--peer") peer = next();
    else if (arg == "--python") python = next();
    else if (arg == "--ort-js") ort_js = next();
    else if (arg == "--node") node = next();
    else if (arg == "--data") data = next();
    else if (arg == "--prepare") prepare_model = next();
    else if (arg == "--child") {
      child_model = next();
      child_config = next();
    } else if (!arg.empty() && arg[0] != '-') json_path = arg;
    else throw std::invalid_argument("unknown argument " + arg);
  }
  threads = std::max(threads, 1);
  torch::set_num_threads(threads);
  automm::configure_allocator();  // as a fit and a prediction do

  if (!prepare_model.empty()) {  // --prepare MODEL --data DIR: a detector's weights and inputs
    json result;
    try {
      if (!is_detector(prepare_model)) throw std::invalid_argument("--prepare takes yolox_s or yolov3_mobilenetv2");
      result = automm_bench::prepare_detector(prepare_model, data);
    } catch (const std::exception& e) {
      std::string what = e.what();
      result = {{"error", what.substr(0, what.find('\n'))}};
    }
    std::printf("%s\n", result.dump().c_str());
    return result.contains("error") ? 1 : 0;
  }

  if (!child_model.empty()) {
    json result;
    try {
      result = run_child(child_model, child_config, warmup, iters, data);
    } catch (const std::exception& e) {
      std::string what = e.what();
      result = {{"error", what.substr(0, what.find('\n'))}};
    }
    std::printf("%s\n", result.dump().c_str());
    return 0;
  }

  const std::vector<std::string> models = models_arg.empty() ? kModels : split(models_arg);
  std::printf("automm.cpp model benchmark (%d intra-op threads, %d warm-up + median of %d calls, "
              "each configuration in a fresh process)\n\n", threads, warmup, iters);
  const double fp32_peak = gemm_gflops(torch::kFloat32);
  const double bf16_peak = gemm_gflops(torch::kBFloat16);
  std::printf("GEMM 1024^3  fp32 %.1f GFLOP/s   bf16 %.1f GFLOP/s\n\n", fp32_peak, bf16_peak);
  json report = {{"threads", threads}, {"iters", iters}, {"warmup", warmup},
                 {"gemm_gflops", {{"fp32", fp32_peak}, {"bf16", bf16_peak}}},
                 {"peak_rss_method", "VmHWM of a fresh child process per configuration"}};

  char self[4096];
  const ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
  if (len <= 0) throw std::runtime_error("cannot read /proc/self/exe");
  self[len] = 0;
  // Each configuration runs as a C++ child and then a PyTorch child, --rounds times
  // in alternation, and each side keeps its median: drifting load on a shared
  // machine then falls on both sides alike.
  json cpp = json::object();
  json peer_report = {{"torch", json::object()}, {"ort", json::object()}};
  std::string common = " --iters " + std::to_string(iters) + " --warmup " + std::to_string(warmup) +
                       " --threads " + std::to_string(threads);
  // The detectors' weights, images and boxes: written once (a child process), read by both engines' children.
  bool own_data = false;
  if (std::any_of(models.begin(), models.end(), is_detector)) {
    if (data.empty()) {
      char folder[] = "/tmp/automm_bench_detectors_XXXXXX";
      if (!mkdtemp(folder)) throw std::runtime_error("cannot create a temporary folder for the detectors' data");
      data = folder;
      own_data = true;
    } else {
      std::filesystem::create_directories(data);
    }
    common += " --data " + shell_quote(data);
    json prepared = json::object();
    for (const auto& model : models) {
      if (!is_detector(model)) continue;
      prepared[model] = run_json_command(shell_quote(self) + " --prepare " + model + " --data " + shell_quote(data) +
                                         " --threads " + std::to_string(threads));
      std::printf("%s data: %s\n", model.c_str(), prepared[model].dump().c_str());
    }
    report["detector_data"] = prepared;
    std::printf("\n");
  }
  std::printf("%-18s %-13s %10s %11s %7s %9s %10s %9s\n", "model", "config", "C++ ms", "samples/s", "MFU", "RSS MiB",
              "torch ms", "RSS MiB");
  for (const auto& model : models) {
    const double fwd = forward_flops(model);
    cpp[model]["forward_gflop_per_sample"] = fwd / 1e9;
    for (const auto& config : kConfigs) {
      if (!runs(model, config)) continue;
      std::vector<json> ours, theirs;
      for (int round = 0; round < rounds; ++round) {
        ours.push_back(run_json_command(shell_quote(self) + " --child " + model + " " + config + common));
        if (!peer.empty())
          theirs.push_back(run_json_command(shell_quote(python) + " " + shell_quote(peer) + " --child " + model + " " +
                                            config + common));
      }
      json r = median_result(ours);
      if (!r.contains("error")) {
        const double flops = (config.rfind("train", 0) == 0 ? 3 : 1) * fwd * r["samples_per_s"].get<double>();
        const bool bf16_matmuls = config.find("bf16") != std::string::npos || config.find("mixed") != std::string::npos;
        r["mfu"] = flops / 1e9 / (bf16_matmuls ? bf16_peak : fp32_peak);
        std::printf("%-18s %-13s %10.2f %11.2f %6.1f%% %9.0f", model.c_str(), config.c_str(), r["ms"].get<double>(),
                    r["samples_per_s"].get<double>(), 100 * r["mfu"].get<double>(), r["peak_rss_mib"].get<double>());
      } else {
        std::printf("%-18s %-13s FAILED: %s", model.c_str(), config.c_str(), r["error"].get<std::string>().c_str());
      }
      json t = json::object();
      if (!peer.empty()) {
        t = median_result(theirs);
        peer_report["torch"][model][config] = t;
        if (t.contains("error")) std::printf("   torch FAILED: %s", t["error"].get<std::string>().c_str());
        else std::printf(" %10.2f %9.0f", t["ms"].get<double>(), t["peak_rss_mib"].get<double>());
      }
      // The detectors' agreement: both engines' detections (or first loss) on the same weights and inputs.
      if (r.contains("check") || t.contains("check"))
        std::printf("   [C++ %s | torch %s]", r.value("check", std::string("-")).c_str(),
                    t.value("check", std::string("-")).c_str());
      std::printf("\n");
      std::fflush(stdout);
      cpp[model][config] = r;
    }
  }
  report["cpp"] = cpp;

  if (!peer.empty() && !ort_js.empty()) {  // ONNX Runtime on the fp32 export, after the pairs
    const std::string peer_json = json_path + ".ort.json";
    const std::string command = shell_quote(python) + " " + shell_quote(peer) + " " + shell_quote(peer_json) +
                                common + " --models " + join(models) + " --ort-only --ort-js " +
                                shell_quote(ort_js) + " --node " + shell_quote(node);
    std::printf("\n");
    std::fflush(stdout);
    const int rc = std::system(command.c_str());
    std::ifstream in(peer_json);
    json ort_report;
    if (rc != 0 || !in) {
      std::printf("ONNX Runtime peer failed (exit status %d)\n", rc);
    } else {
      in >> ort_report;
      peer_report["ort"] = ort_report.value("ort", json::object());
    }
  }
  report["peers"] = peer_report;

  // Ratios: speed = peer ms / C++ ms (> 1: C++ faster); memory = C++ RSS / peer RSS (< 1: C++ smaller).
  if (!peer.empty()) {
    const json& torch_r = peer_report.value("torch", json::object());
    const json& ort_r = peer_report.value("ort", json::object());
    json ratios = json::object();
    std::printf("\nRatios in this run: speed = peer time / C++ time (>1 = C++ faster); "
                "RSS = C++ peak RSS / peer's (<1 = C++ smaller). ORT runs the fp32 export.\n");
    std::printf("%-18s %-13s %9s %9s %9s %9s %9s %9s\n", "model", "config", "C++ ms", "torch ms", "speed", "RSS",
                "ORT ms", "vs ORT");
    for (const auto& model : models) {
      for (const auto& config : kConfigs) {
        if (!runs(model, config)) continue;
        const json c = cpp.value(model, json::object()).value(config, json::object());
        const json t = torch_r.value(model, json::object()).value(config, json::object());
        json o = json::object();
        if (config.rfind("infer", 0) == 0)
          o = ort_r.value(model, json::object()).value(config.substr(0, config.find('_')) + "_fp32", json::object());
        const double cm = number(c, "ms"), tm = number(t, "ms"), om = number(o, "ms");
        const double crss = number(c, "peak_rss_mib"), trss = number(t, "peak_rss_mib");
        ratios[model][config] = {{"speed_vs_torch", cm > 0 && tm > 0 ? json(tm / cm) : json()},
                                 {"rss_vs_torch", crss > 0 && trss > 0 ? json(crss / trss) : json()},
                                 {"speed_vs_ort_fp32", cm > 0 && om > 0 ? json(om / cm) : json()}};
        auto ms_text = [](double v) {
          char buf[32];
          if (v <= 0) return std::string("        -");
          std::snprintf(buf, sizeof buf, "%9.2f", v);
          return std::string(buf);
        };
        std::printf("%-18s %-13s %s %s    %s    %s %s    %s\n", model.c_str(), config.c_str(), ms_text(cm).c_str(),
                    ms_text(tm).c_str(), ratio_text(tm, cm).c_str(), ratio_text(crss, trss).c_str(),
                    ms_text(om).c_str(), ratio_text(om, cm).c_str());
      }
    }
    report["ratios"] = ratios;
  }
  if (own_data) std::filesystem::remove_all(data);
  std::ofstream(json_path) << report.dump(2) << "\n";
  std::printf("\nwrote %s\n", json_path.c_str());
  return 0;
}
