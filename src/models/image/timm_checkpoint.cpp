#include "timm_checkpoint.h"
#include "config/json_text.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "checkpoints/hf_checkpoint.h"

namespace automm {
namespace {
namespace fs = std::filesystem;

// timm's default pretrained tag of each registered model (the first tag of its
// default_cfgs); other tags are accepted when given in the name.
const std::map<std::string, std::string>& default_tags() {
  static const std::map<std::string, std::string> tags = {
      {"resnet18", "a1_in1k"},
      {"resnet34", "a1_in1k"},
      {"resnet50", "a1_in1k"},
      {"resnet101", "a1h_in1k"},
      {"resnet152", "a1h_in1k"},
      {"convnext_tiny", "in12k_ft_in1k"},
      {"convnext_small", "in12k_ft_in1k_384"},
      {"convnext_base", "fb_in22k_ft_in1k"},
      {"mobilenetv3_large_100", "ra_in1k"},
      {"vit_tiny_patch16_224", "augreg_in21k_ft_in1k"},
      {"vit_small_patch16_224", "augreg_in21k_ft_in1k"},
      {"vit_base_patch16_224", "augreg2_in21k_ft_in1k"},
      {"vit_base_patch32_224", "augreg_in21k_ft_in1k"},
      {"swin_tiny_patch4_window7_224", "ms_in1k"},
      {"swin_small_patch4_window7_224", "ms_in22k_ft_in1k"},
      {"swin_base_patch4_window7_224", "ms_in22k_ft_in1k"},
      {"caformer_s18", "sail_in22k_ft_in1k"},
      {"caformer_s36", "sail_in22k_ft_in1k"},
      {"caformer_m36", "sail_in22k_ft_in1k"},
      {"caformer_b36", "sail_in22k_ft_in1k"},
  };
  return tags;
}

bool is_registered(const std::string& name) {
  for (const std::string& known : supported_image_models())
    if (known == name) return true;
  return false;
}

// config.json's pretrained_cfg (timm's hub format) over the registry's defaults.
void apply_pretrained_cfg(const nlohmann::json& cfg, ImageModelInfo* info) {
  if (!cfg.is_object()) return;
  if (cfg.contains("input_size") && cfg["input_size"].is_array() && cfg["input_size"].size() == 3)
    {
    const auto size = json_integer(cfg["input_size"][1]);
    if (!size || *size < 1)
      throw std::runtime_error("config.json: pretrained_cfg \"input_size\" must be [channels, height, width], positive integers");
    info->image_size = *size;
  }
  for (const auto& [key, target] : {std::make_pair("mean", &info->mean), std::make_pair("std", &info->std)})
    if (cfg.contains(key) && cfg[key].is_array() && cfg[key].size() == 3)
      for (size_t c = 0; c < 3; ++c) (*target)[c] = cfg[key][c].get<double>();
  if (cfg.contains("crop_pct") && cfg["crop_pct"].is_number()) info->crop_pct = cfg["crop_pct"].get<double>();
  if (cfg.contains("interpolation") && cfg["interpolation"].is_string())
    info->interpolation = cfg["interpolation"].get<std::string>();
}

ResolvedImageModel from_folder(const fs::path& folder, bool pretrained, const std::string& source) {
  std::ifstream in(folder / "config.json");
  if (!in) throw std::runtime_error("image checkpoint folder " + folder.string() + " has no config.json");
  nlohmann::json config;
  try {
    config = parse_json(in, (folder / "config.json").string());
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error((folder / "config.json").string() + " is not valid JSON: " + e.what());
  }
  std::string architecture = config.value("architecture", config.value("model_name", std::string()));
  architecture = architecture.substr(0, architecture.find('.'));
  if (!is_registered(architecture))
    throw std::invalid_argument((folder / "config.json").string() + ": architecture '" + architecture +
                                "' is not a supported timm model");
  ResolvedImageModel model{architecture, image_model_info(architecture), pretrained ? folder.string() : "", source};
  apply_pretrained_cfg(config.value("pretrained_cfg", nlohmann::json()), &model.info);
  return model;
}

// A cached snapshot of any tag of `architecture` ("models--timm--resnet50.*").
std::string any_cached_tag(const std::string& architecture) {
  for (const std::string& cache : hf_hub_cache_dirs()) {
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(cache, error)) {
      const std::string name = entry.path().filename().string();
      const std::string prefix = "models--timm--" + architecture + ".";
      if (name.rfind(prefix, 0) == 0) return "timm/" + name.substr(std::string("models--timm--").size());
    }
  }
  return "";
}

}  // namespace

std::string timm_default_hub_id(const std::string& architecture) {
  const auto it = default_tags().find(architecture);
  return "timm/" + architecture + (it == default_tags().end() ? "" : "." + it->second);
}

ResolvedImageModel resolve_timm_checkpoint(const std::string& checkpoint_name, bool pretrained) {
  if (checkpoint_name.empty()) throw std::invalid_argument("model.timm_image.checkpoint_name is empty");
  const fs::path path(checkpoint_name);
  if (fs::is_directory(path)) return from_folder(path, pretrained, "local folder " + path.string());
  if (fs::is_regular_file(path)) {
    // The architecture is the longest registered name the file name starts with.
    const std::string file = path.filename().string();
    std::string architecture;
    for (const std::string& name : supported_image_models()) {
      const bool prefix = file.rfind(name, 0) == 0 &&
                          (file.size() == name.size() || file[name.size()] == '.' || file[name.size()] == '-');
      if (prefix && name.size() > architecture.size()) architecture = name;
    }
    if (architecture.empty())
      throw std::invalid_argument("cannot tell the architecture of " + path.string() +
                                  ": name the file after its timm model (resnet50.a1_in1k.safetensors) or use a "
                                  "folder with timm's config.json");
    return {architecture, image_model_info(architecture), pretrained ? path.string() : "", "local file " + path.string()};
  }

  std::string name = checkpoint_name.rfind("timm/", 0) == 0 ? checkpoint_name.substr(5) : checkpoint_name;
  const std::string architecture = name.substr(0, name.find('.'));
  if (!is_registered(architecture)) {
    std::string known;
    for (const std::string& model : supported_image_models()) known += (known.empty() ? "" : ", ") + model;
    throw std::invalid_argument("model.timm_image.checkpoint_name '" + checkpoint_name +
                                "' is neither a local folder or file nor a known timm model; known: " + known);
  }
  if (!pretrained) return {architecture, image_model_info(architecture), "", "random weights (pretrained=false)"};
  const bool tagged = name.find('.') != std::string::npos;
  const std::string hub_id = tagged ? "timm/" + name : timm_default_hub_id(architecture);
  try {
    const ResolvedCheckpoint found = resolve_hf_checkpoint(hub_id);
    return from_folder(found.folder, true, found.source);
  } catch (const std::exception& e) {
    if (!tagged) {
      const std::string other = any_cached_tag(architecture);
      if (!other.empty()) {
        const ResolvedCheckpoint found = resolve_hf_checkpoint(other);
        return from_folder(found.folder, true, found.source);
      }
    }
    throw std::runtime_error(std::string(e.what()) + "\nFor random weights instead, pass pretrained=false "
                             "(CLI: automm fit --no-pretrained).");
  }
}

}  // namespace automm
