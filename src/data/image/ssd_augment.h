// YOLOv3's SSD-style training transforms as AutoMM trains
// yolov3_mobilenetv2_8xb24-320-300e_coco with them: mmdet 3.x's Expand,
// MinIoURandomCrop and PhotoMetricDistortion
// (mmdet/datasets/transforms/transforms.py, mmdetection commit 00e07a9c),
// with that config's parameters as the options' defaults. In the pipeline:
// Expand -> MinIoURandomCrop -> Resize(320, keep ratio) -> RandomFlip(0.5) ->
// PhotoMetricDistortion -> normalisation. Boxes move with the pixels.
//
// Each transform is a draw_* function, which makes every random draw mmdet
// makes, in mmdet's order, and a deterministic apply function. mmdet draws
// from numpy's global RNG; we do not reproduce numpy's stream, but every numpy
// call is one value u = std::generate_canonical<double, 53>(rng) here (one
// engine step): uniform(lo, hi) = lo + (hi - lo) u, randint(n) and
// choice(n items) = min(int(u n), n - 1), permutation(3) = numpy's
// Fisher-Yates (for i = 2, 1: swap i with randint(i + 1)). The tests replay
// that stream through a transcription of mmdet's code.
//
// Images are RGB where mmdet's are BGR (cv2): every colour step below is
// mmdet's on the BGR image, written for RGB. Boxes are mmdet's float32
// HorizontalBoxes arithmetic, returned as the doubles of those floats.
#pragma once

#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <random>
#include <vector>

#include "data/image/image.h"
#include "data/image/mosaic_mixup.h"

namespace automm {

// ---- Expand ----------------------------------------------------------------

struct ExpandOptions {
  // The config's mean (data_preprocessor's, RGB), to_rgb=True: mmdet reverses
  // it to BGR for its BGR image, so per RGB channel the fill is this mean.
  std::array<double, 3> mean{123.675, 116.28, 103.53};
  double ratio_min = 1, ratio_max = 2;  // ratio_range
  double prob = 0.5;
};

// Expand's draws: uniform(0, 1) > prob skips the transform (nothing more is
// drawn); else ratio = uniform(ratio_min, ratio_max), then
// left = int(uniform(0, w * ratio - w)), top = int(uniform(0, h * ratio - h)).
struct ExpandDraw {
  bool apply = false;
  double ratio = 1;
  int64_t left = 0, top = 0;
};
ExpandDraw draw_expand(std::mt19937_64& rng, int64_t width, int64_t height,
                       const ExpandOptions& options = {});

// Expand.transform: a canvas of int(h * ratio) rows by int(w * ratio) columns
// filled with the mean cast to uint8 (np.full(..., dtype=uint8) truncates:
// RGB 123, 116, 103), the image pasted at (left, top), boxes translated by
// (left, top). Not applied: the input unchanged. A draw whose image would not
// fit the canvas throws (numpy fails on it too).
BoxedImage expand(const BoxedImage& in, const ExpandDraw& draw, const ExpandOptions& options = {});

// ---- MinIoURandomCrop --------------------------------------------------------

struct MinIoUCropOptions {
  std::vector<double> min_ious{0.4, 0.5, 0.6, 0.7, 0.8, 0.9};
  double min_crop_size = 0.3;
  bool bbox_clip_border = true;
};

// The patch MinIoURandomCrop settles on: crop = false when it drew mode 1
// (image and boxes unchanged); else the patch [left, right) x [top, bottom)
// and the min_iou it met.
struct MinIoUCropDraw {
  bool crop = false;
  double min_iou = 1;
  int64_t left = 0, top = 0, right = 0, bottom = 0;
};

// MinIoURandomCrop.transform's search, which needs the boxes. Repeats:
// mode = choice((1, *min_ious, 0)) (note the trailing 0: "any overlap"); mode 1
// returns no crop. Else up to 50 trials, each drawing
//   new_w = uniform(min_crop_size * w, w), new_h = uniform(min_crop_size * h, h);
//   rejected if new_h / new_w < 0.5 or > 2 (no more draws that trial);
//   left = uniform(w - new_w), top = uniform(h - new_h): numpy's uniform with
//     one argument is uniform(low=w - new_w, high=1.0), a value between 1 and
//     w - new_w (mmdet's quirk, kept);
//   patch = (int(left), int(top), int(left + new_w), int(top + new_h));
//   rejected if the patch is a line or point, if some box has float32 IoU with
//     the patch (bbox_overlaps, eps 1e-6) below the mode (compared in double,
//     as numpy 1.x compares a float32 with a Python float), or if no box's
//     float32 centre lies strictly inside the patch (>, <).
// An image without boxes takes the first patch that is not a line or point.
// After 50 rejected trials a new mode is drawn; mode 1 ends it with
// probability 1/8 per round, so the loop ends.
MinIoUCropDraw draw_min_iou_crop(std::mt19937_64& rng, const BoxedImage& in,
                                 const MinIoUCropOptions& options = {});

// The crop itself: the image's rows [top, bottom) and columns [left, right);
// the boxes whose float32 centre lies strictly inside the patch, in order,
// translated by (-left, -top) and (bbox_clip_border) clipped to the patch's
// width and height. No crop: the input unchanged. A patch outside the image
// throws.
BoxedImage min_iou_crop(const BoxedImage& in, const MinIoUCropDraw& draw,
                        const MinIoUCropOptions& options = {});

// ---- PhotoMetricDistortion ---------------------------------------------------

struct PhotometricOptions {
  double brightness_delta = 32;
  double contrast_min = 0.5, contrast_max = 1.5;
  double saturation_min = 0.5, saturation_max = 1.5;
  double hue_delta = 18;
};

// PhotoMetricDistortion._random_flags, all drawn every time in this order:
// mode, then the brightness, contrast, saturation, hue and swap flags (each
// randint(2)), delta = uniform(-brightness_delta, brightness_delta),
// alpha = uniform(contrast range), saturation = uniform(saturation range),
// hue = uniform(-hue_delta, hue_delta), permutation = permutation(3).
struct PhotometricDraw {
  int mode = 0;  // 1: contrast before the HSV steps, 0: after (mmdet's code; its comments say the reverse)
  bool brightness = false, contrast = false, saturation = false, hue = false, swap = false;
  double delta = 0, alpha = 1, saturation_scale = 1, hue_shift = 0;
  std::array<int, 3> permutation{0, 1, 2};  // as numpy drew it: indexes of mmdet's BGR channels
};
PhotometricDraw draw_photometric(std::mt19937_64& rng, const PhotometricOptions& options = {});

// PhotoMetricDistortion.transform, in float32 throughout: x = float(pixel);
// brightness: x += delta; mode 1 contrast: x *= alpha; to HSV with OpenCV's
// float formulas (cv2.cvtColor BGR2HSV: H in [0, 360), S = (V - min) /
// (|V| + FLT_EPSILON), V = max, any sign); saturation: S *= scale; hue:
// H += shift, then H > 360 -> H - 360, H < 0 -> H + 360; back with OpenCV's
// HSV2BGR float formulas (always, even with no flag set: the round trip is
// exact only to float rounding); mode 0 contrast: x *= alpha; swap: mmdet's
// img[..., permutation] on BGR channels. Each draw value is cast to float32
// first, as numpy does with a Python float and a float32 array.
// Returns [h, w, 3] float32 RGB, NOT clipped or rounded: mmdet hands this
// float image (values may be below 0 or above 255) straight to PackDetInputs
// and the data preprocessor's normalisation, so the caller normalises this
// tensor instead of a uint8 image. OpenCV's SIMD path may fuse one
// multiply-add in the hue (FMA on AVX2): differences of float rounding only.
torch::Tensor photometric_distortion(const Image& image, const PhotometricDraw& draw);

}  // namespace automm
