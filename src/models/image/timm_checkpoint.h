// Finds a timm image model from model.timm_image.checkpoint_name: a timm name
// ("swin_base_patch4_window7_224", optionally with a pretrained tag
// "resnet50.a1_in1k"), a Hugging Face hub folder in timm's format (config.json
// with "architecture" and "pretrained_cfg", model.safetensors or
// pytorch_model.bin), or a weights file whose name starts with the
// architecture ("resnet50.a1_in1k.safetensors", "convnext_tiny.pth").
#pragma once

#include <string>

#include "models/image/image_encoder.h"

namespace automm {

struct ResolvedImageModel {
  std::string architecture;  // a name of the image model registry
  ImageModelInfo info;       // the registry's, overridden by the checkpoint's pretrained_cfg
  std::string weights;       // file or folder for load_weights(); empty = random init
  std::string source;        // how it was found, for the fit log
};

// pretrained = false: random weights (AutoMM's `pretrained=False`), no file
// needed for a timm name. A pretrained timm name is looked up as the hub id
// "timm/<name>.<default tag>" in the Hugging Face cache (any cached tag of the
// same model is accepted) and downloaded when missing. Throws naming what was
// tried and how to provide the weights (or to pass pretrained=false).
ResolvedImageModel resolve_timm_checkpoint(const std::string& checkpoint_name, bool pretrained);

// The hub id of a model's default pretrained weights ("timm/resnet50.a1_in1k").
std::string timm_default_hub_id(const std::string& architecture);

}  // namespace automm
