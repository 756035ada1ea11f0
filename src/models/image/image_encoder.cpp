#include "image_encoder.h"

#include <stdexcept>

namespace automm {
namespace {

const ImageModelFamily& registry() {
  static const ImageModelFamily models = [] {
    ImageModelFamily all;
    for (const ImageModelFamily& family :
         {resnet_models(), convnext_models(), mobilenetv3_models(), vit_models(), swin_models(), metaformer_models()})
      all.insert(family.begin(), family.end());
    return all;
  }();
  return models;
}

const ImageModelEntry& find(const std::string& name) {
  const auto it = registry().find(name);
  if (it == registry().end()) {
    std::string known;
    for (const auto& [model, entry] : registry()) known += (known.empty() ? "" : ", ") + model;
    throw std::invalid_argument("unknown image model '" + name + "'; known timm models: " + known);
  }
  return it->second;
}

}  // namespace

std::shared_ptr<ImageEncoderImpl> make_image_encoder(const std::string& name, int64_t num_classes) {
  return find(name).make(num_classes);
}

ImageModelInfo image_model_info(const std::string& name) { return find(name).info; }

std::vector<std::string> supported_image_models() {
  std::vector<std::string> names;
  for (const auto& [name, entry] : registry()) names.push_back(name);
  return names;
}

}  // namespace automm
