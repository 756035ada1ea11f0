// Images and their boxes for detection, through mmdet's pipelines as AutoMM's
// detection configs define them: LoadImageFromFile; for training, YOLOv3's
// Expand and MinIoURandomCrop or YOLOX's HSV jitter, then a horizontal flip;
// Resize keeping the ratio (the long side to the input size); for training,
// YOLOv3's PhotoMetricDistortion; the detector's normalisation and padding.
// Boxes move with the pixels.
#pragma once

#include <array>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "data/image/coco.h"
#include "data/image/image.h"
#include "data/image/mosaic_mixup.h"

namespace automm {

// How a detector wants its input (models/detection/detector.h's DetectorSpec::input).
struct DetectionInputOptions {
  int64_t image_size = 640;
  bool rgb = false;  // the channel order of the tensor (mmdet's YOLOX reads BGR)
  std::array<double, 3> mean{0, 0, 0}, std{1, 1, 1};  // in the tensor's channel order
  double pad_value = 114;            // before normalisation (YOLOX's Pad)
  bool pad_after_normalize = false;  // YOLOv3: pads the normalised tensor with 0
  bool pad_square = true;            // image_size x image_size; else a multiple of size_divisor
  int64_t size_divisor = 32;
  // Training transforms.
  bool hsv_jitter = false;     // YOLOXHSVRandomAug (hue 5, saturation 30, value 30)
  // YOLOv3's Expand and MinIoURandomCrop before the resize, PhotoMetricDistortion
  // after the flip (data/image/ssd_augment.h).
  bool ssd_augment = false;
  double flip_prob = 0.5;      // RandomFlip
  double min_box_size = 1.0;   // FilterAnnotations: boxes thinner than this after the transforms drop
  // YOLOX's BatchSyncRandomResize: the batch's side drawn in this range (0: off).
  int64_t random_resize_min = 0, random_resize_max = 0;
};

// One image ready for the network.
struct DetectionItem {
  torch::Tensor pixels;  // [3, h, w] float32 (normalised; h, w padded as the options say)
  torch::Tensor boxes;   // [n, 4] float32 xyxy in the tensor's pixels
  torch::Tensor labels;  // [n] int64
  int64_t width = 0, height = 0;    // the image's own size
  double scale_x = 1, scale_y = 1;  // tensor pixels per image pixel (mmdet's scale_factor)
};

// An image file and its boxes as loaded (LoadImageFromFile + LoadAnnotations);
// errors name `where` and the file.
BoxedImage load_boxed_image(const std::string& path, const std::vector<LabeledBox>& boxes, const std::string& where);
// The pipeline after loading (and after Mosaic / MixUp, mosaic_mixup.h): the
// training transforms drawn from rng when `train`, then resize and pad.
DetectionItem prepare_detection_item(BoxedImage sample, bool train, std::mt19937_64& rng,
                                     const DetectionInputOptions& options);
// load_boxed_image, then prepare_detection_item.
DetectionItem read_detection_item(const std::string& path, const std::vector<LabeledBox>& boxes, bool train,
                                  std::mt19937_64& rng, const DetectionInputOptions& options, const std::string& where);

// Stacks items into [B, 3, H, W], padding each to the largest (a multiple of
// size_divisor) with the options' padding.
torch::Tensor collate_detection_pixels(const std::vector<DetectionItem>& items, const DetectionInputOptions& options);

// mmdet's BatchSyncRandomResize (YOLOX's data preprocessor), for training
// batches: each batch is resized (bilinear, align_corners false) with its boxes
// to the current size, which starts as the first batch's own; after every
// `interval`-th batch the next height is drawn, 32 x randint(round(min / 32),
// round(max / 32)) (both ends included), its width 32 x int(aspect x that),
// aspect = the batch's width / height.
class BatchRandomResize {
 public:
  BatchRandomResize(int64_t min_size, int64_t max_size, int64_t interval = 10, int64_t size_divisor = 32);
  // pixels [B, 3, H, W]; boxes [n, 4] xyxy per image, scaled in place.
  torch::Tensor apply(const torch::Tensor& pixels, std::vector<torch::Tensor>& boxes, std::mt19937_64& rng);
  int64_t height() const { return height_; }
  int64_t width() const { return width_; }

 private:
  int64_t min_steps_, max_steps_, interval_, divisor_;
  int64_t height_ = 0, width_ = 0, batches_ = 0;
};

// OpenCV's 8-bit HSV jitter as mmdet's YOLOXHSVRandomAug applies it, with the
// gains given: hue (mod 180), saturation and value (clipped to 0-255).
void jitter_hsv(Image& image, int hue_gain, int saturation_gain, int value_gain);

}  // namespace automm
