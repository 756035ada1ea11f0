// The interface every timm-style image backbone implements, and the registry
// that builds one by its timm model name.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "automm/weights_io.h"

namespace automm {

// timm's pretrained_cfg for a model name: what the image processor needs.
struct ImageModelInfo {
  int64_t image_size = 224;                      // input_size[1] (square inputs)
  std::array<double, 3> mean = {0.485, 0.456, 0.406};  // IMAGENET_DEFAULT_MEAN
  std::array<double, 3> std = {0.229, 0.224, 0.225};   // IMAGENET_DEFAULT_STD
  double crop_pct = 0.875;
  std::string interpolation = "bicubic";
};

class ImageEncoderImpl : public torch::nn::Module {
 public:
  // images [batch, 3, H, W] float -> pooled pre-logits features
  // [batch, num_features] (timm: forward_head(forward_features(x), pre_logits=True)).
  virtual torch::Tensor forward_features(const torch::Tensor& images) = 0;
  // images -> logits [batch, num_classes] through timm's classifier; throws when
  // the model was built with num_classes = 0.
  virtual torch::Tensor forward(const torch::Tensor& images) = 0;
  virtual int64_t num_features() const = 0;
  // Loads a timm state dict by timm's parameter names, all or nothing; throws
  // listing missing and unexpected tensors. Classifier tensors are skipped when
  // the model has no classifier (num_classes = 0).
  virtual void load_timm_state_dict(const StateDict& weights) = 0;
};

// name: a timm model name ("resnet50", "vit_base_patch32_224", ...). num_classes
// 0 = no classifier (AutoMM replaces timm's head with its own). Throws
// std::invalid_argument listing the known names for an unknown one.
std::shared_ptr<ImageEncoderImpl> make_image_encoder(const std::string& name, int64_t num_classes = 0);
ImageModelInfo image_model_info(const std::string& name);
std::vector<std::string> supported_image_models();

// Each model family (one file each) lists its names; image_encoder.cpp merges
// the lists into the registry.
struct ImageModelEntry {
  std::function<std::shared_ptr<ImageEncoderImpl>(int64_t num_classes)> make;
  ImageModelInfo info;
};
using ImageModelFamily = std::map<std::string, ImageModelEntry>;
ImageModelFamily resnet_models();      // resnet*.py: resnet18/34/50/101/152
ImageModelFamily convnext_models();    // convnext.py: convnext_tiny/small/base
ImageModelFamily mobilenetv3_models(); // mobilenetv3.py: mobilenetv3_large_100
ImageModelFamily vit_models();         // vision_transformer.py: vit_*
ImageModelFamily swin_models();        // swin_transformer.py: swin_*
ImageModelFamily metaformer_models();  // metaformer.py: caformer_*

}  // namespace automm
