// mmdet's YOLOv3 on MobileNetV2 (configs/yolo/yolov3_mobilenetv2_8xb24-320-300e_coco.py):
// backbones/mobilenet_v2.py with LeakyReLU(0.1) and out_indices (2, 4, 6),
// necks/yolo_neck.py (YOLOV3Neck: DetectionBlocks, nearest 2x upsampling),
// dense_heads/yolo_head.py (YOLOV3Head: a 3x3 bridge ConvModule and a 1x1
// prediction conv per level). Parameter and buffer names are mmdet's
// (backbone.layer2.0.expand_conv.conv.weight, neck.detect1.conv1.bn.running_mean,
// bbox_head.convs_pred.0.bias, ...), so the checkpoint's state_dict loads by name.
#pragma once

#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "models/detection/detector.h"
#include "models/detection/yolov3_head_ops.h"

namespace automm::detection {

// The YOLOv3 network; the arithmetic on its outputs is yolov3_head_ops.h.
class Yolov3DetectorImpl : public DetectorImpl {
 public:
  explicit Yolov3DetectorImpl(const DetectorSpec& spec);
  // images [B, 3, H, W] (RGB, ImageNet-normalised, H and W multiples of 32).
  // Raw head outputs for strides 32, 16, 8: [B, 3 * (5 + C), H / s, W / s].
  std::vector<torch::Tensor> forward(const torch::Tensor& images);
  std::map<std::string, torch::Tensor> losses(const torch::Tensor& images,
                                              const BoxTargets& targets) override;
  std::vector<Detections> detect(const torch::Tensor& images, const PostProcessOptions& options) override;
  std::vector<std::string> head_patterns() const override;
  std::vector<std::string> class_dependent_parameters() const override;
  const DetectorSpec& spec() const override { return spec_; }

 private:
  DetectorSpec spec_;
  // backbone / neck / bbox_head are registered modules with mmdet's names.
  struct Parts;
  std::shared_ptr<Parts> parts_;
};

}  // namespace automm::detection
