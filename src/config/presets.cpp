// Presets (AutoMM's presets.py): defaults, then the preset, then the user's keys.
#include <map>
#include <stdexcept>

#include "automm/config.h"

namespace automm {
namespace {

const std::map<std::string, Json>& presets() {
  static const std::map<std::string, Json> table = {
      {"medium_quality",
       {{"model.hf_text.checkpoint_name", "google/electra-small-discriminator"},
        {"model.timm_image.checkpoint_name", "mobilenetv3_large_100"},
        {"optim.lr", 4e-4}}},
      {"high_quality",
       {{"model.hf_text.checkpoint_name", "google/electra-base-discriminator"},
        {"model.timm_image.checkpoint_name", "caformer_b36.sail_in22k_ft_in1k"}}},
      {"best_quality",
       {{"model.hf_text.checkpoint_name", "microsoft/deberta-v3-base"},
        {"model.timm_image.checkpoint_name", "swin_large_patch4_window7_224"}}},
  };
  return table;
}

}  // namespace

std::vector<std::string> preset_names() {
  std::vector<std::string> names;
  for (const auto& [name, values] : presets()) names.push_back(name);
  return names;
}

void apply_preset(Config& config, const std::string& preset) {
  const std::string name = preset.empty() ? "high_quality" : preset;
  if (name.size() > 4 && name.compare(name.size() - 4, 4, "_hpo") == 0)
    throw std::invalid_argument("preset '" + name +
                                "': hyperparameter search (_hpo presets) is not supported yet in "
                                "automm.cpp; use '" + name.substr(0, name.size() - 4) + "'");
  const auto it = presets().find(name);
  if (it == presets().end()) {
    std::string known;
    for (const std::string& n : preset_names()) known += (known.empty() ? "" : ", ") + n;
    throw std::invalid_argument("unknown preset '" + name + "'; known presets: " + known);
  }
  const std::set<std::string> before = config.user_keys();
  for (auto kv = it->second.begin(); kv != it->second.end(); ++kv) {
    if (before.count(find_key(kv.key()).name)) continue;  // the user's keys win
    config.set(kv.key(), kv.value());
    config.mark_as_preset(kv.key());
  }
}

}  // namespace automm
