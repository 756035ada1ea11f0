// The detectors of bench_models.cpp: yolox_s (640 x 640, raw BGR 0-255) and
// yolov3_mobilenetv2 (mmdet's yolov3_mobilenetv2_8xb24-320-300e_coco, 320 x 320,
// ImageNet-normalised RGB), 80 classes, beside bench/models_peer.py's plain-torch
// transcriptions (tests/models/yolox_reference.py, yolox_head_ops_reference.py,
// yolov3_reference.py) on the same weights, images and ground truth.
//
//   --prepare MODEL --data DIR   writes DIR/MODEL.weights.safetensors (every parameter and
//                                buffer, mmdet's names) and DIR/MODEL.inputs.safetensors
//                                (images [8, 3, S, S] as the network takes them, per image
//                                i gt_boxes_i [n, 4] xyxy pixels and gt_labels_i [n], n 2-5)
//   infer1_fp32 / infer8_fp32    detect(): network + decoding + mmdet's post-processing
//                                (default_post_process: thresholds, class-aware NMS)
//   train_fp32                   batch 8: losses() summed, backward, AdamW step
//
// The weights are make_detector's initialisation with two changes, so that the
// post-processing does the work it does for a trained network:
//  - BatchNorm running statistics are the batch statistics of the 8 images (PyTorch's
//    0 / 1 over raw 0-255 pixels lets eval-mode activations drift through 60-odd layers);
//  - a shift of the objectness biases (YOLOX) or the class biases (YOLOv3) makes about
//    kCandidatesPerImage boxes per image pass the score thresholds into NMS. Left as
//    initialised, YOLOX's prior bias passes none and YOLOv3's init all 6300 x 80
//    (prior, class) pairs.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "automm/weights_io.h"
#include "bench_common.h"
#include "models/detection/detector.h"
#include "models/detection/mmdet_checkpoint.h"
#include "models/detection/yolov3.h"
#include "models/detection/yolox.h"
#include "optim/fused_adam.h"
#include "optim/optim.h"

namespace automm_bench {

inline bool is_detector(const std::string& model) { return model == "yolox_s" || model == "yolov3_mobilenetv2"; }

inline std::string detector_checkpoint(const std::string& model) {
  return model == "yolox_s" ? "yolox_s" : "yolov3_mobilenetv2_8xb24-320-300e_coco";
}

constexpr int64_t kDetectorBatch = 8;          // the training batch and the images prepared
constexpr double kCandidatesPerImage = 1000;  // boxes per image past the score thresholds

// Conv FLOPs of one sample's forward pass (2 per multiply-add), counted with forward hooks on
// every nn.Conv2d of the peer's network: YOLOX-s at 640 (26.7, the YOLOX paper's 26.8 GFLOPs),
// YOLOv3-MobileNetV2 at 320 (mmdet's forward; our eval forward skips the backbone's unused
// conv2, 0.08 of it).
inline double detector_forward_flops(const std::string& model) {
  return model == "yolox_s" ? 26.6855e9 : 3.2913e9;
}

inline std::string detector_file(const std::string& data, const std::string& model, const std::string& what) {
  if (data.empty())
    throw std::invalid_argument(model + " needs --data DIR, prepared by --prepare " + model + " --data DIR");
  return data + "/" + model + "." + what + ".safetensors";
}

inline std::shared_ptr<automm::detection::DetectorImpl> new_detector(const std::string& model) {
  torch::manual_seed(0);
  return automm::detection::make_detector(automm::detection::detector_spec(detector_checkpoint(model), 80));
}

// The bias shift in [-40, 40] at which count(shift), growing with shift, first reaches target.
template <typename F>
double shift_for_count(F&& count, double target) {
  double lo = -40, hi = 40;
  for (int i = 0; i < 60; ++i) {
    const double mid = 0.5 * (lo + hi);
    (count(mid) < target ? lo : hi) = mid;
  }
  return hi;
}

// Batch statistics of `images` as running statistics (momentum 1 for one train-mode pass).
inline void calibrate_batch_norms(torch::nn::Module& net, const torch::Tensor& images,
                                  const std::function<void(const torch::Tensor&)>& forward) {
  std::vector<std::pair<torch::nn::BatchNorm2dImpl*, c10::optional<double>>> norms;
  for (const auto& child : net.modules(/*include_self=*/false))
    if (auto* bn = child->as<torch::nn::BatchNorm2d>()) norms.emplace_back(bn, bn->options.momentum());
  for (auto& [bn, momentum] : norms) bn->options.momentum(1.0);
  net.train();
  forward(images);
  for (auto& [bn, momentum] : norms) bn->options.momentum(momentum);
  net.eval();
}

// Writes the weights and inputs of `model` to `data`; returns what was calibrated.
inline nlohmann::json prepare_detector(const std::string& model, const std::string& data) {
  using namespace automm::detection;
  auto net = new_detector(model);
  const DetectorSpec& spec = net->spec();
  const int64_t size = spec.input.image_size;
  automm::StateDict inputs;
  torch::manual_seed(1);
  torch::Tensor pixels = torch::rand({kDetectorBatch, 3, size, size}).mul(255).round();
  const auto mean = torch::tensor(std::vector<double>(spec.input.mean.begin(), spec.input.mean.end()));
  const auto stdev = torch::tensor(std::vector<double>(spec.input.std.begin(), spec.input.std.end()));
  inputs["images"] = ((pixels - mean.view({1, 3, 1, 1})) / stdev.view({1, 3, 1, 1})).to(torch::kFloat32);
  for (int64_t i = 0; i < kDetectorBatch; ++i) {
    const int64_t n = torch::randint(2, 6, {1}).item<int64_t>();
    const auto wh = torch::rand({n, 2}) * (size / 2.0 - size / 16.0) + size / 16.0;
    const auto xy = torch::rand({n, 2}) * (size - wh);
    inputs["gt_boxes_" + std::to_string(i)] = torch::cat({xy, xy + wh}, 1).round();
    inputs["gt_labels_" + std::to_string(i)] = torch::randint(0, spec.num_classes, {n}, torch::kInt64);
  }
  const torch::Tensor& images = inputs["images"];
  torch::NoGradGuard no_grad;
  nlohmann::json out = {{"model", model}, {"checkpoint", spec.name}};
  auto post = default_post_process(spec);
  if (auto yolox = std::dynamic_pointer_cast<YoloxDetectorImpl>(net)) {
    calibrate_batch_norms(*yolox, images, [&](const torch::Tensor& x) { yolox->forward(x); });
    const auto flat = flatten_yolox_outputs(yolox->forward(images));
    const auto best = std::get<0>(flat.cls.sigmoid().max(-1));  // [B, N]
    const auto count = [&](double shift) {
      return (best * (flat.obj + shift).sigmoid() >= post.score_threshold).sum().item<double>() / kDetectorBatch;
    };
    const double shift = shift_for_count(count, kCandidatesPerImage);
    for (auto& conv : yolox->bbox_head->conv_obj) conv->bias.add_(shift);
    out["objectness_bias_shift"] = shift;
    out["candidates_per_image"] = count(shift);
  } else {
    auto yolov3 = std::dynamic_pointer_cast<Yolov3DetectorImpl>(net);
    if (!yolov3) throw std::logic_error("unexpected detector type for " + model);
    calibrate_batch_norms(*yolov3, images, [&](const torch::Tensor& x) { yolov3->forward(x); });
    const auto preds = yolov3->forward(images);  // [B, 3 * (5 + C), H, W] per level
    const int64_t attrs = 5 + spec.num_classes;
    double passing_conf = 0, priors = 0;
    for (const auto& p : preds) {
      const auto obj = p.view({kDetectorBatch, 3, attrs, p.size(2), p.size(3)}).select(2, 4).sigmoid();
      passing_conf += (obj >= post.conf_threshold).sum().item<double>();
      priors += obj.numel();
    }
    // (prior, class) pairs with objectness >= conf_threshold and class score > score_threshold
    const auto count = [&](double shift) {
      double total = 0;
      for (const auto& p : preds) {
        const auto v = p.view({kDetectorBatch, 3, attrs, p.size(2), p.size(3)});
        const auto pass = v.select(2, 4).sigmoid() >= post.conf_threshold;
        total += ((v.slice(2, 5) + shift).sigmoid() > post.score_threshold).logical_and(pass.unsqueeze(2))
                     .sum().item<double>();
      }
      return total / kDetectorBatch;
    };
    const double shift = shift_for_count(count, kCandidatesPerImage);
    auto params = yolov3->named_parameters();
    for (size_t level = 0; level < preds.size(); ++level)
      params["bbox_head.convs_pred." + std::to_string(level) + ".bias"].view({3, attrs}).slice(1, 5).add_(shift);
    out["class_bias_shift"] = shift;
    out["candidates_per_image"] = count(shift);
    out["priors_past_conf_threshold"] = passing_conf / priors;
  }
  automm::StateDict state;
  for (const auto& item : net->named_parameters()) state[item.key()] = item.value().detach();
  for (const auto& item : net->named_buffers()) state[item.key()] = item.value().detach();
  automm::save_safetensors(state, detector_file(data, model, "weights"));
  automm::save_safetensors(inputs, detector_file(data, model, "inputs"));
  out["tensors"] = state.size();
  return out;
}

// The figure both engines print beside each other (models_peer.py's detector_check).
inline std::string detector_check(const std::string& config, const nlohmann::json& r) {
  char buf[96];
  if (config.rfind("train", 0) == 0)
    std::snprintf(buf, sizeof buf, "loss %.6g", r["loss"].get<double>());
  else
    std::snprintf(buf, sizeof buf, "%d dets, score sum %.6g", r["detections"].get<int>(), r["score_sum"].get<double>());
  return buf;
}

// One configuration of a detector, in this (fresh) process.
inline nlohmann::json run_detector_child(const std::string& model, const std::string& config, int warmup, int iters,
                                         const std::string& data) {
  using namespace automm::detection;
  auto net = new_detector(model);
  const std::string weights_path = detector_file(data, model, "weights");
  const automm::StateDict weights = automm::load_safetensors(weights_path);
  const LoadReport loaded = load_detector_weights(*net, weights, weights_path);
  if (!loaded.fresh.empty() || loaded.loaded != static_cast<int64_t>(weights.size()))
    throw std::runtime_error(weights_path + " does not match the " + model + " network (loaded " +
                             std::to_string(loaded.loaded) + " of " + std::to_string(weights.size()) + " tensors)");
  const automm::StateDict inputs = automm::load_safetensors(detector_file(data, model, "inputs"));
  const bool train = config.rfind("train", 0) == 0;
  const int64_t batch = train ? kDetectorBatch : std::stoll(config.substr(5, config.find('_') - 5));
  const torch::Tensor images = inputs.at("images").slice(0, 0, batch).contiguous();
  nlohmann::json out;
  double t = 0;
  if (train) {
    BoxTargets targets;
    for (int64_t i = 0; i < batch; ++i) {
      targets.boxes.push_back(inputs.at("gt_boxes_" + std::to_string(i)));
      targets.labels.push_back(inputs.at("gt_labels_" + std::to_string(i)));
    }
    net->train();
    std::vector<torch::Tensor> trainable;
    for (const auto& p : net->parameters())
      if (p.requires_grad()) trainable.push_back(p);
    automm::FusedAdamW optimizer(trainable, torch::optim::AdamWOptions(1e-4).eps(1e-6).weight_decay(0.01));
    nlohmann::json first = nlohmann::json::object();
    const auto step = [&] {
      automm::clear_gradients(optimizer);
      const auto losses = net->losses(images, targets);
      torch::Tensor total;
      for (const auto& [name, value] : losses) total = total.defined() ? total + value : value;
      if (first.empty()) {
        for (const auto& [name, value] : losses) first[name] = value.item<double>();
        out["loss"] = total.item<double>();
      }
      total.backward();
      optimizer.step();
    };
    t = median_time(warmup, iters, step);
    out["losses"] = first;
  } else {
    net->eval();
    c10::InferenceMode guard;
    const PostProcessOptions options = default_post_process(net->spec());
    std::vector<Detections> last;
    t = median_time(warmup, iters, [&] { last = net->detect(images, options); });
    int64_t count = 0;
    double score_sum = 0;
    for (const auto& d : last) {
      count += d.scores.numel();
      score_sum += d.scores.to(torch::kDouble).sum().item<double>();
    }
    out["detections"] = count;
    out["score_sum"] = score_sum;
  }
  out["check"] = detector_check(config, out);
  out["ms"] = t * 1e3;
  out["batch"] = batch;
  out["samples_per_s"] = batch / t;
  out["peak_rss_mib"] = peak_rss_mib();
  return out;
}

}  // namespace automm_bench
