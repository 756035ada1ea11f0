// One-stage detectors as mmdet builds them (AutoMM's mmdet_image model):
// YOLOX (yolox.h) and YOLOv3 on MobileNetV2 (yolov3.h), chosen by
// model.mmdet_image.checkpoint_name. Parameter and buffer names are mmdet's
// (backbone.*, neck.*, bbox_head.*), so an mmdet checkpoint's state_dict loads
// by name.
//
// Coordinates are pixels of the network input (after resize and pad), boxes
// [x1, y1, x2, y2]. The learner maps them to and from each image's own pixels.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "data/image/detection_data.h"

namespace automm::detection {

// The ground truth of one batch.
struct BoxTargets {
  std::vector<torch::Tensor> boxes;   // per image [n, 4] float32 xyxy (n may be 0)
  std::vector<torch::Tensor> labels;  // per image [n] int64 in [0, num_classes)
};

// One image's detections, best score first.
struct Detections {
  torch::Tensor boxes;   // [n, 4] float32 xyxy
  torch::Tensor scores;  // [n] float32
  torch::Tensor labels;  // [n] int64
};

// mmdet's test_cfg.
struct PostProcessOptions {
  double score_threshold = 0.01;  // YOLOX: max class score * objectness; YOLOv3: class score alone
  double nms_iou = 0.65;          // class-aware NMS, suppress when IoU > nms_iou
  int64_t max_per_image = 0;      // 0: no cap
  double conf_threshold = 0.005;  // YOLOv3: objectness floor before the class scores
  int64_t nms_pre = 1000;         // YOLOv3: (anchor, class) pairs kept before NMS
};

// The architecture a checkpoint name stands for.
struct DetectorSpec {
  std::string name;            // the checkpoint name, e.g. "yolox_s"
  std::string family;          // "yolox" or "yolov3"
  int64_t num_classes = 80;
  // YOLOX
  double deepen = 0.33, widen = 0.5;
  bool depthwise = false;
  int64_t neck_channels = 128;  // neck out_channels = head feat_channels
  // YOLOX training
  bool use_l1 = false;  // the L1 loss on raw box predictions (the YOLOX paper's last epochs)
  DetectionInputOptions input;  // what the network takes, and the training transforms its config names
};

class DetectorImpl : public torch::nn::Module {
 public:
  // images: [B, 3, H, W] normalised as `input` says, H and W multiples of 32.
  // Named losses (each a scalar) for the targets, in training mode.
  virtual std::map<std::string, torch::Tensor> losses(const torch::Tensor& images, const BoxTargets& targets) = 0;
  // Post-processed detections per image, in input pixels.
  virtual std::vector<Detections> detect(const torch::Tensor& images, const PostProcessOptions& options) = 0;
  // AutoMM's two_stages head: parameters whose names contain one of these get lr * lr_mult.
  virtual std::vector<std::string> head_patterns() const = 0;
  // Parameter names (prefixes) whose shapes depend on the class count.
  virtual std::vector<std::string> class_dependent_parameters() const = 0;
  virtual const DetectorSpec& spec() const = 0;
  // Turns on the L1 loss (YOLOX) from now on; no-op for YOLOv3.
  virtual void set_use_l1(bool on) { (void)on; }
};

// The checkpoint names known: yolov3_mobilenetv2_8xb24-320-300e_coco (and
// AutoMM v0.6's alias yolov3_mobilenetv2_320_300e_coco), yolox_nano, yolox_tiny,
// yolox_s, yolox_m, yolox_l, yolox_x. Throws std::invalid_argument listing them.
DetectorSpec detector_spec(const std::string& checkpoint_name, int64_t num_classes);
// Another input size (model.mmdet_image.image_size): the random resize range
// scales with it (480-800 at 640 becomes 96-160 at 128).
void set_input_size(DetectorSpec& spec, int64_t image_size);
std::vector<std::string> known_detectors();
// mmdet's test_cfg of the architecture: YOLOX score 0.01, NMS 0.65, no cap (AutoMM's
// configs); YOLOv3 score 0.05, objectness 0.005, NMS 0.45, 100 per image, 1000 before NMS.
PostProcessOptions default_post_process(const DetectorSpec& spec);
// A network with PyTorch's default initialisation (and YOLOX's prior bias on the
// classification and objectness convs).
std::shared_ptr<DetectorImpl> make_detector(const DetectorSpec& spec);

}  // namespace automm::detection
