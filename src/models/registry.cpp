// The model registry, model selection (AutoMM's configs/model/default.yaml and select_model) and the assembled network.
#include <algorithm>
#include <cctype>
#include <map>
#include <stdexcept>

#include "backbones.h"

namespace automm {
namespace {

struct ModelEntry {
  BackboneFactory factory;  // null for models that are not built yet
  std::string pending;      // what is missing when factory is null
};

const std::map<std::string, ModelEntry>& backbone_registry() {
  static const std::map<std::string, ModelEntry> registry = {
      {"categorical_mlp", {make_categorical_mlp, ""}},
      {"numerical_mlp", {make_numerical_mlp, ""}},
      {"ft_transformer", {make_ft_transformer, ""}},
      {"hf_text", {make_hf_text, ""}},
      {"timm_image", {make_timm_image, ""}},
      {"clip", {make_clip, ""}},
      // Their own problem types' learners build them, never a table's fusion.
      {"mmdet_image", {nullptr, "object_detection"}},
      {"sam", {nullptr, "semantic_segmentation"}},
  };
  return registry;
}

const std::vector<std::string>& fusion_names() {
  static const std::vector<std::string> names = {"fusion_mlp", "fusion_transformer"};
  return names;
}

std::string known_models() {
  std::string known;
  for (const auto& [name, entry] : backbone_registry()) known += name + ", ";
  return known + "fusion_mlp, fusion_transformer";
}

}  // namespace

std::string model_base_name(const std::string& name) {
  // A numeric suffix (hf_text_2) names a second instance of the same model.
  const size_t underscore = name.find_last_of('_');
  if (underscore != std::string::npos && underscore + 1 < name.size() &&
      std::all_of(name.begin() + static_cast<long>(underscore) + 1, name.end(),
                  [](unsigned char c) { return std::isdigit(c); }))
    return name.substr(0, underscore);
  return name;
}

bool is_backbone_name(const std::string& base_name) { return backbone_registry().count(base_name) > 0; }
bool is_fusion_name(const std::string& base_name) {
  return std::find(fusion_names().begin(), fusion_names().end(), base_name) != fusion_names().end();
}

std::shared_ptr<BackboneImpl> make_backbone(const std::string& base_name, const std::string& prefix,
                                            const ModelContext& context, const Config& config) {
  const auto it = backbone_registry().find(base_name);
  if (it == backbone_registry().end())
    throw std::invalid_argument("unknown model '" + prefix + "' in model.names; known models: " + known_models());
  if (!it->second.factory)
    throw std::invalid_argument("model '" + prefix + "' serves problem_type " + it->second.pending +
                                " (its own learner), not a classification or regression table");
  return it->second.factory(prefix, context, config);
}

std::vector<std::string> select_models(const std::vector<std::string>& names,
                                       const ModalityPresence& presence) {
  std::vector<std::string> backbones, fusions;
  for (const std::string& name : names) {
    const std::string base = model_base_name(name);
    if (is_fusion_name(base)) {
      fusions.push_back(name);
      continue;
    }
    if (!is_backbone_name(base))
      throw std::invalid_argument("unknown model '" + name + "' in model.names; known models: " + known_models());
    bool keep = false;
    if (base == "categorical_mlp") keep = presence.categorical;
    else if (base == "numerical_mlp") keep = presence.numerical;
    else if (base == "ft_transformer") keep = presence.categorical || presence.numerical;
    else if (base == "hf_text") keep = presence.text;
    else if (base == "timm_image") keep = presence.image;
    else if (base == "clip") keep = presence.text || presence.image;
    // mmdet_image and sam serve their own problem types, not these tables.
    if (keep) backbones.push_back(name);
  }
  if (fusions.size() > 1)
    throw std::invalid_argument("model.names lists more than one fusion model; keep one of them");
  if (backbones.empty())
    throw std::invalid_argument("no model in model.names can use the data's columns; model.names must "
                                "include a backbone for the column types present");
  if (backbones.size() > 1) {
    if (fusions.empty())
      throw std::invalid_argument("model.names selects several backbones but no fusion model; add "
                                  "fusion_mlp or fusion_transformer");
    backbones.push_back(fusions.front());
  }
  return backbones;
}

MultiModalNetImpl::MultiModalNetImpl(const std::vector<std::string>& model_names,
                                     const ModelContext& context, const Config& config)
    : names_(model_names) {
  std::vector<int64_t> dims;
  std::string fusion_name;
  for (const std::string& name : model_names) {
    const std::string base = model_base_name(name);
    if (is_fusion_name(base)) {
      fusion_name = name;
      continue;
    }
    auto backbone = make_backbone(base, name, context, config);
    register_module(name, backbone);
    backbone_names_.push_back(name);
    dims.push_back(backbone->feature_dim());
    backbones_.push_back(backbone);
  }
  if (!fusion_name.empty()) {
    FusionParts parts = make_fusion(model_base_name(fusion_name), dims, context, config);
    fusion_ = register_module(fusion_name, parts.module);
    fuse_ = parts.fuse;
    fusion_classify_ = parts.classify;
    aux_loss_weight_ = parts.aux_loss_weight;
  }
}

torch::Tensor MultiModalNetImpl::classify(const torch::Tensor& features) {
  return fusion_classify_ ? fusion_classify_(features) : backbones_.front()->classify(features);
}

NetOutput MultiModalNetImpl::forward(const Batch& batch) {
  std::vector<BackboneOutput> outputs;
  for (auto& backbone : backbones_) outputs.push_back(backbone->forward(batch));
  if (!fuse_) return {outputs[0].logits, outputs[0].features, {}};
  NetOutput fused = fuse_(outputs);
  if (aux_loss_weight_ > 0)
    for (const auto& output : outputs) fused.aux_logits.push_back(output.logits);
  return fused;
}

}  // namespace automm

namespace automm {

std::vector<std::string> MultiModalNetImpl::pretrained_backbones() const {
  std::vector<std::string> names;
  for (size_t i = 0; i < backbones_.size(); ++i)
    if (backbones_[i]->is_pretrained()) names.push_back(backbone_names_[i]);
  return names;
}

}  // namespace automm
