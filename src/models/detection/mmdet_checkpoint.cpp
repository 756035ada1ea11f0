// mmdet checkpoints: finding, reading, renaming and loading them (mmdet_checkpoint.h).
#include "models/detection/mmdet_checkpoint.h"

#include <cstdlib>
#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <stdexcept>

#include "checkpoints/hf_checkpoint.h"

namespace automm::detection {
namespace {

namespace fs = std::filesystem;

// AutoMM's checkpoint table (models/mmdet_image.py) and mmdet's YOLOv3-MobileNetV2 release.
const std::map<std::string, std::string>& release_urls() {
  static const std::map<std::string, std::string> urls = {
      {"yolov3_mobilenetv2_8xb24-320-300e_coco",
       "https://download.openmmlab.com/mmdetection/v2.0/yolo/yolov3_mobilenetv2_320_300e_coco/"
       "yolov3_mobilenetv2_320_300e_coco_20210719_215349-d18dff72.pth"},
      {"yolox_nano", "https://github.com/Megvii-BaseDetection/YOLOX/releases/download/0.1.1rc0/yolox_nano.pth"},
      {"yolox_tiny", "https://download.openmmlab.com/mmdetection/v2.0/yolox/yolox_tiny_8x8_300e_coco/"
                     "yolox_tiny_8x8_300e_coco_20211124_171234-b4047906.pth"},
      {"yolox_s", "https://download.openmmlab.com/mmdetection/v2.0/yolox/yolox_s_8x8_300e_coco/"
                  "yolox_s_8x8_300e_coco_20211121_095711-4592a793.pth"},
      {"yolox_m", "https://github.com/Megvii-BaseDetection/YOLOX/releases/download/0.1.1rc0/yolox_m.pth"},
      {"yolox_l", "https://download.openmmlab.com/mmdetection/v2.0/yolox/yolox_l_8x8_300e_coco/"
                  "yolox_l_8x8_300e_coco_20211126_140236-d3bd2b23.pth"},
      {"yolox_x", "https://download.openmmlab.com/mmdetection/v2.0/yolox/yolox_x_8x8_300e_coco/"
                  "yolox_x_8x8_300e_coco_20211126_140254-1ef88d67.pth"},
  };
  return urls;
}

std::string home_path(const char* rest) {
  const char* home = std::getenv("HOME");
  return home ? (fs::path(home) / rest).string() : std::string();
}

bool starts_with(const std::string& text, const std::string& prefix) { return text.rfind(prefix, 0) == 0; }

void replace_prefix_or_part(std::string& name, const std::string& from, const std::string& to) {
  const auto at = name.find(from);
  if (at != std::string::npos) name.replace(at, from.size(), to);
}

}  // namespace

std::string find_mmdet_checkpoint(const std::string& name, std::string* download_hint) {
  if (fs::is_regular_file(name)) return name;
  // A folder (or a Hugging Face snapshot): model.pth, else its only .pth file.
  const auto in_folder = [&name](const fs::path& folder) {
    if (fs::is_regular_file(folder / "model.pth")) return (folder / "model.pth").string();
    std::vector<std::string> found;
    for (const auto& entry : fs::directory_iterator(folder))
      if (entry.path().extension() == ".pth") found.push_back(entry.path().string());
    if (found.size() == 1) return found[0];
    throw std::invalid_argument("model.mmdet_image.checkpoint_name = " + name + ": " + folder.string() +
                                " holds no model.pth" +
                                (found.empty() ? std::string(" and no .pth file") : " and several .pth files"));
  };
  if (fs::is_directory(name)) return in_folder(name);
  if (name.find('/') != std::string::npos) {
    const std::string snapshot = find_hf_cache_snapshot(name);
    if (!snapshot.empty()) return in_folder(snapshot);
  }
  const std::string key = name == "yolov3_mobilenetv2_320_300e_coco" ? "yolov3_mobilenetv2_8xb24-320-300e_coco" : name;
  const auto url = release_urls().find(key);
  if (url == release_urls().end()) return "";
  if (download_hint) *download_hint = url->second;
  const std::string file = url->second.substr(url->second.rfind('/') + 1);
  std::vector<std::string> folders;
  if (const char* torch_home = std::getenv("TORCH_HOME")) folders.push_back((fs::path(torch_home) / "hub/checkpoints").string());
  else folders.push_back(home_path(".cache/torch/hub/checkpoints"));
  folders.push_back(home_path(".cache/automm/mmdet"));
  folders.push_back(".");
  for (const std::string& folder : folders)
    if (!folder.empty() && fs::is_regular_file(fs::path(folder) / file)) return (fs::path(folder) / file).string();
  return "";
}

std::string megvii_to_mmdet_name(const std::string& in) {
  std::string name = in;
  if (starts_with(name, "model.")) name = name.substr(6);  // {"model": state_dict}
  replace_prefix_or_part(name, "backbone.backbone.", "backbone.");
  static const std::pair<const char*, const char*> stages[] = {
      {"backbone.dark2.", "backbone.stage1."}, {"backbone.dark3.", "backbone.stage2."},
      {"backbone.dark4.", "backbone.stage3."}, {"backbone.dark5.", "backbone.stage4."},
      {"backbone.lateral_conv0.", "neck.reduce_layers.0."}, {"backbone.reduce_conv1.", "neck.reduce_layers.1."},
      {"backbone.C3_p4.", "neck.top_down_blocks.0."}, {"backbone.C3_p3.", "neck.top_down_blocks.1."},
      {"backbone.bu_conv2.", "neck.downsamples.0."}, {"backbone.bu_conv1.", "neck.downsamples.1."},
      {"backbone.C3_n3.", "neck.bottom_up_blocks.0."}, {"backbone.C3_n4.", "neck.bottom_up_blocks.1."},
      {"head.stems.", "neck.out_convs."}, {"head.cls_convs.", "bbox_head.multi_level_cls_convs."},
      {"head.reg_convs.", "bbox_head.multi_level_reg_convs."}, {"head.cls_preds.", "bbox_head.multi_level_conv_cls."},
      {"head.reg_preds.", "bbox_head.multi_level_conv_reg."}, {"head.obj_preds.", "bbox_head.multi_level_conv_obj."}};
  for (const auto& [from, to] : stages)
    if (starts_with(name, from)) {
      name = to + name.substr(std::string(from).size());
      break;
    }
  replace_prefix_or_part(name, "dconv.", "depthwise_conv.");
  replace_prefix_or_part(name, "pconv.", "pointwise_conv.");
  replace_prefix_or_part(name, ".m.", ".blocks.");
  // The CSP layers' own convs (not their bottlenecks', nor SPP's).
  static const std::regex csp(
      "^(backbone\\.stage[123]\\.1|backbone\\.stage4\\.2|neck\\.top_down_blocks\\.[01]|neck\\.bottom_up_blocks\\.[01])"
      "\\.conv([123])\\.(.*)$");
  std::smatch m;
  if (std::regex_match(name, m, csp)) {
    static const char* renamed[] = {"", "main_conv", "short_conv", "final_conv"};
    name = m[1].str() + "." + renamed[std::stoi(m[2].str())] + "." + m[3].str();
  }
  return name;
}

StateDict read_mmdet_state_dict(const std::string& path) {
  const StateDict raw = load_weights(path);
  bool megvii = false;
  for (const auto& [name, tensor] : raw) megvii = megvii || name.find("backbone.backbone.") != std::string::npos;
  StateDict out;
  for (const auto& [name, tensor] : raw) {
    std::string key = name;
    if (starts_with(key, "state_dict.")) key = key.substr(11);
    if (megvii) {
      key = megvii_to_mmdet_name(key);
    } else {
      while (starts_with(key, "model.")) key = key.substr(6);  // AutoMM's model.ckpt: model.model.<mmdet name>
    }
    if (starts_with(key, "optimizer.") || starts_with(key, "ema_") || starts_with(key, "meta.")) continue;
    if (!out.emplace(key, tensor).second)
      throw std::runtime_error(path + ": two tensors map to the mmdet name '" + key + "'");
  }
  if (out.empty()) throw std::runtime_error(path + " holds no tensors");
  return out;
}

std::string detector_name_of(const StateDict& weights, const std::string& source) {
  if (weights.count("bbox_head.convs_pred.0.weight")) return "yolov3_mobilenetv2_8xb24-320-300e_coco";
  const auto stem = weights.find("backbone.stem.conv.conv.weight");
  if (stem == weights.end() || !weights.count("bbox_head.multi_level_conv_obj.0.weight"))
    throw std::invalid_argument(source + " is neither a YOLOX nor a YOLOv3-MobileNetV2 mmdet checkpoint (no "
                                "backbone.stem.conv.conv.weight / bbox_head.multi_level_conv_obj, nor "
                                "bbox_head.convs_pred)");
  const int64_t width = stem->second.size(0);  // 64 * widen
  int64_t blocks = 0;
  while (weights.count("backbone.stage1.1.blocks." + std::to_string(blocks) + ".conv1.conv.weight")) ++blocks;
  static const std::map<std::pair<int64_t, int64_t>, std::string> variants = {
      {{16, 1}, "yolox_nano"}, {{24, 1}, "yolox_tiny"}, {{32, 1}, "yolox_s"},
      {{48, 2}, "yolox_m"},    {{64, 3}, "yolox_l"},    {{80, 4}, "yolox_x"}};
  const auto found = variants.find({width, blocks});
  if (found == variants.end())
    throw std::invalid_argument(source + ": a YOLOX checkpoint with a " + std::to_string(width) + "-channel stem and " +
                                std::to_string(blocks) + " blocks per CSP layer is none of yolox_nano ... yolox_x");
  return found->second;
}

LoadReport load_detector_weights(DetectorImpl& detector, const StateDict& weights, const std::string& source) {
  LoadReport report;
  const auto dependent = detector.class_dependent_parameters();
  const auto is_dependent = [&](const std::string& name) {
    for (const auto& d : dependent)
      if (starts_with(name, d)) return true;
    return false;
  };
  torch::NoGradGuard no_grad;
  std::vector<std::string> missing;
  auto copy = [&](const std::string& name, torch::Tensor& target) {
    const auto found = weights.find(name);
    if (found == weights.end()) {
      if (name.size() < 20 || name.compare(name.size() - 19, 19, "num_batches_tracked") != 0) missing.push_back(name);
      return;
    }
    torch::Tensor value = found->second;
    if (value.sizes() != target.sizes()) {
      if (is_dependent(name)) {  // another class count: AutoMM keeps the fresh head
        report.fresh.push_back(name);
        return;
      }
      throw std::invalid_argument(source + ": tensor " + name + " has shape " + c10::str(value.sizes()) + ", the " +
                                  detector.spec().name + " network's is " + c10::str(target.sizes()));
    }
    target.copy_(value.to(target.dtype()));
    ++report.loaded;
  };
  for (auto& item : detector.named_parameters()) copy(item.key(), item.value());
  for (auto& item : detector.named_buffers()) copy(item.key(), item.value());
  if (!missing.empty()) {
    std::string list;
    for (size_t i = 0; i < std::min<size_t>(missing.size(), 5); ++i) list += (i ? ", " : "") + missing[i];
    throw std::invalid_argument(source + " lacks " + std::to_string(missing.size()) + " tensors of the " +
                                detector.spec().name + " network (" + list + (missing.size() > 5 ? ", ..." : "") + ")");
  }
  return report;
}

}  // namespace automm::detection
