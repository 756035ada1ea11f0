// YOLOX's multi-image training augmentations, Mosaic and MixUp, as AutoMM
// trains with them: AutoGluon's copy of mmdet 3.x's transforms
// (autogluon/multimodal/data/dataset_mmlab/multi_image_mix_dataset.py, the same
// arithmetic as mmdet/datasets/transforms/transforms.py) with the parameters
// of AutoMM's yolox_*_8xb8-300e_coco.py configs. Boxes move with the pixels.
//
// Deliberate difference: mmdet resizes with cv2 (mmcv.imresize, bilinear); we
// resize with image_ops' PIL-style bilinear (antialiased when shrinking), so
// resized pixels differ from mmdet's by resampling; every size, offset and box
// follows mmdet's arithmetic exactly (boxes in float32, as mmdet's
// HorizontalBoxes tensors, returned as the doubles of those floats).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <random>
#include <vector>

#include "data/image/coco.h"
#include "data/image/image.h"

namespace automm {

// An image and its boxes (xyxy in its pixels).
struct BoxedImage {
  Image image;
  std::vector<LabeledBox> boxes;
};

// Mosaic's draw: the canvas point where the four tiles meet,
// int(uniform(center_ratio_range) * image_size) for x, then for y.
struct MosaicDraw {
  int64_t center_x = 0, center_y = 0;
};
MosaicDraw draw_mosaic(std::mt19937_64& rng, int64_t image_size, double center_ratio_min = 0.5,
                       double center_ratio_max = 1.5);

// Mosaic.transform once its probability check has passed: images[0] (the
// sample itself) goes top left, then top right, bottom left, bottom right,
// each resized by min(S / h, S / w) to (int(w r), int(h r)) and cropped where
// it crosses the (2S x 2S) canvas, which is 114 where no tile lands. Boxes:
// scaled by r, shifted with their tile, clipped to the canvas; boxes left with
// no area inside it (x1 >= 2S, y1 >= 2S, x2 <= 0 or y2 <= 0) are dropped.
BoxedImage mosaic(const std::array<const BoxedImage*, 4>& images, int64_t image_size, const MosaicDraw& draw);

// MixUp's draws, in mmdet's order: jit_factor = uniform(ratio_range), flip =
// uniform(0, 1) > flip_ratio, then the crop offsets, which depend on the sizes:
// the other image becomes J x J with J = int(S * jit_factor) and is padded to
// max(J, base size); y_offset = randint(0, J - base_height) (numpy's, the high
// end excluded) when J > base_height, else 0; then x_offset likewise.
struct MixUpDraw {
  double jit_factor = 1;
  bool flip = false;
  int64_t x_offset = 0, y_offset = 0;
};
MixUpDraw draw_mixup(std::mt19937_64& rng, int64_t image_size, int64_t base_width, int64_t base_height,
                     double ratio_min = 0.8, double ratio_max = 1.6, double flip_ratio = 0.5);

// MixUp.transform: `other` is resized by r = min(S / h, S / w) into the top
// left of an (S x S) 114 canvas, the canvas resized to (J x J), flipped if
// drawn, padded with 114 to max(J, base) and cropped at the offsets to the
// base's size; each pixel becomes the truncated mean of the two, (a + b) / 2.
// Other's boxes: scaled by r * jit_factor, clipped to J x J, mirrored in J,
// shifted by -offsets, clipped to the base. Then base's boxes (unclipped)
// followed by those, dropping any with no area inside the base image.
// An `other` without boxes leaves the base unchanged (mmdet returns early,
// before drawing). Offsets beyond what draw_mixup can draw throw.
BoxedImage mixup(const BoxedImage& base, const BoxedImage& other, int64_t image_size, const MixUpDraw& draw);

// AutoMM's YOLOX settings (multi_image_mix_dataset in the configs).
struct MultiImageMixOptions {
  int64_t image_size = 640;  // img_scale of both transforms
  bool use_mosaic = true;
  double mosaic_prob = 0.5;  // AutoMM's configs; mmdet's default is 1.0
  double center_ratio_min = 0.5, center_ratio_max = 1.5;
  bool use_mixup = true;
  double mixup_ratio_min = 0.8, mixup_ratio_max = 1.6, flip_ratio = 0.5;
};

// MultiImageMixDataset.__getitem__'s mixing of sample `index` (AutoMM never
// switches it off): Mosaic draws three sample indices uniformly from
// [0, dataset_size) (repeats and `index` itself allowed), then applies with
// probability mosaic_prob (checked after the indices are drawn and loaded);
// MixUp then draws one more index and mixes it into the result unless that
// sample has no boxes. `load` returns a sample's image with its boxes as
// loaded (LoadImageFromFile + LoadAnnotations: nothing filtered or clipped).
BoxedImage multi_image_mix(int64_t index, int64_t dataset_size,
                           const std::function<BoxedImage(int64_t)>& load, std::mt19937_64& rng,
                           const MultiImageMixOptions& options);

}  // namespace automm
