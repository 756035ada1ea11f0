// The detector registry (detector.h): checkpoint names to architectures.
#include "models/detection/detector.h"

#include <stdexcept>

#include "models/detection/yolov3.h"
#include "models/detection/yolox.h"

namespace automm::detection {
namespace {

constexpr const char* kYolov3 = "yolov3_mobilenetv2_8xb24-320-300e_coco";
constexpr const char* kYolov3Legacy = "yolov3_mobilenetv2_320_300e_coco";  // AutoMM v0.6's name

struct YoloxVariant {
  const char* name;
  double deepen, widen;
  int64_t neck_channels;
  bool depthwise;
  int64_t image_size;
};

// AutoMM's configs/pretrain/detection/yolox/*.py (mmdet's yolox_*_8xb8-300e_coco).
constexpr YoloxVariant kYoloxVariants[] = {
    {"yolox_nano", 0.33, 0.25, 64, true, 416}, {"yolox_tiny", 0.33, 0.375, 96, false, 416},
    {"yolox_s", 0.33, 0.5, 128, false, 640},   {"yolox_m", 0.67, 0.75, 192, false, 640},
    {"yolox_l", 1.0, 1.0, 256, false, 640},    {"yolox_x", 1.33, 1.25, 320, false, 640},
};

}  // namespace

std::vector<std::string> known_detectors() {
  std::vector<std::string> out = {kYolov3};
  for (const auto& v : kYoloxVariants) out.push_back(v.name);
  return out;
}

void set_input_size(DetectorSpec& spec, int64_t image_size) {
  auto& in = spec.input;
  if (in.random_resize_max > 0) {
    const double ratio = static_cast<double>(image_size) / static_cast<double>(in.image_size);
    in.random_resize_min = std::lround(in.random_resize_min * ratio);
    in.random_resize_max = std::lround(in.random_resize_max * ratio);
  }
  in.image_size = image_size;
}

DetectorSpec detector_spec(const std::string& name, int64_t num_classes) {
  if (num_classes < 1) throw std::invalid_argument("a detector needs at least one class");
  DetectorSpec spec;
  spec.name = name;
  spec.num_classes = num_classes;
  if (name == kYolov3 || name == kYolov3Legacy) {
    spec.name = kYolov3;
    spec.family = "yolov3";
    spec.input.image_size = 320;
    spec.input.rgb = true;  // DetDataPreprocessor bgr_to_rgb
    spec.input.mean = {123.675, 116.28, 103.53};
    spec.input.std = {58.395, 57.12, 57.375};
    spec.input.pad_value = 0;
    spec.input.pad_after_normalize = true;
    spec.input.pad_square = false;
    // Expand -> MinIoURandomCrop -> Resize -> RandomFlip -> PhotoMetricDistortion,
    // and no FilterAnnotations.
    spec.input.ssd_augment = true;
    spec.input.min_box_size = 0;
    return spec;
  }
  for (const auto& v : kYoloxVariants) {
    if (name != v.name) continue;
    spec.family = "yolox";
    spec.deepen = v.deepen;
    spec.widen = v.widen;
    spec.neck_channels = v.neck_channels;
    spec.depthwise = v.depthwise;
    spec.input.image_size = v.image_size;
    spec.input.hsv_jitter = true;  // YOLOXHSVRandomAug
    // BatchSyncRandomResize's random_size_range in AutoMM's configs.
    spec.input.random_resize_min = v.image_size == 416 ? 320 : 480;
    spec.input.random_resize_max = v.image_size == 416 ? 640 : 800;
    return spec;  // raw BGR 0-255, padded to a square with 114
  }
  std::string known;
  for (const auto& k : known_detectors()) known += (known.empty() ? "" : ", ") + k;
  throw std::invalid_argument("model.mmdet_image.checkpoint_name = '" + name + "' is not a detector automm.cpp builds; known: " +
                              known + ", or an mmdet checkpoint file (.pth) or folder holding model.pth");
}

PostProcessOptions default_post_process(const DetectorSpec& spec) {
  PostProcessOptions o;
  if (spec.family == "yolov3") {
    o.score_threshold = 0.05;
    o.conf_threshold = 0.005;
    o.nms_iou = 0.45;
    o.max_per_image = 100;
    o.nms_pre = 1000;
  } else {
    o.score_threshold = 0.01;
    o.nms_iou = 0.65;
    o.max_per_image = 0;
  }
  return o;
}

std::shared_ptr<DetectorImpl> make_detector(const DetectorSpec& spec) {
  if (spec.family == "yolov3") return std::make_shared<Yolov3DetectorImpl>(spec);
  if (spec.family == "yolox") return std::make_shared<YoloxDetectorImpl>(spec);
  throw std::invalid_argument("unknown detector family '" + spec.family + "'");
}

}  // namespace automm::detection
