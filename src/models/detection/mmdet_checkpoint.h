// mmdet checkpoints (models/mmdet_image.py's checkpoint resolution): where a
// checkpoint name's .pth file lives offline, reading it through the safe
// unpickler (weights_io.h: its `meta` is read as data and dropped, never run),
// the architecture its tensors describe, and loading it into a detector by
// mmdet's parameter names.
#pragma once

#include <string>

#include "automm/weights_io.h"
#include "models/detection/detector.h"

namespace automm::detection {

// The .pth file for model.mmdet_image.checkpoint_name, or "" when none is on
// this machine:
//  - an existing file: itself; an existing folder: <folder>/model.pth (AutoMM's form),
//    else the folder's only .pth file;
//  - a Hugging Face id ORG/NAME in the hub cache (checkpoints/hf_checkpoint.h):
//    its snapshot folder, read the same way;
//  - a known name: the file name of its release URL (AutoMM's table) in
//    $TORCH_HOME/hub/checkpoints (default ~/.cache/torch/hub/checkpoints, where
//    mmengine keeps downloads), ~/.cache/automm/mmdet, or the working folder.
// `download_hint` receives the URL to fetch the file from, when one is known.
std::string find_mmdet_checkpoint(const std::string& name, std::string* download_hint = nullptr);

// The checkpoint's tensors under mmdet's names: "state_dict." (mmdet, AutoMM's
// model.ckpt) and AutoMM's "model." wrapper prefixes stripped; Megvii's YOLOX
// release names (model.backbone.backbone.dark2...) renamed as AutoMM does.
StateDict read_mmdet_state_dict(const std::string& path);

// Megvii's YOLOX names to mmdet's (AutoMM's key renaming), one name.
std::string megvii_to_mmdet_name(const std::string& name);

// The architecture a state dict holds: "yolov3_mobilenetv2_8xb24-320-300e_coco"
// or yolox_nano ... yolox_x (read from the stem's width and the depth of the
// first stage). Throws naming what it found when it is neither.
std::string detector_name_of(const StateDict& weights, const std::string& source);

struct LoadReport {
  int64_t loaded = 0;
  std::vector<std::string> fresh;  // class-dependent tensors whose shapes differ (kept as initialised)
};
// Copies `weights` into the detector by name. A missing tensor, or a shape that
// differs outside the class-dependent head, is an error naming it.
LoadReport load_detector_weights(DetectorImpl& detector, const StateDict& weights, const std::string& source);

}  // namespace automm::detection
