// Images and their masks as AutoMM's semantic segmentation reads them
// (data/process_semantic_seg_img.py): the image resized to a square
// (img_transforms, bicubic) and normalised; the mask read from its file,
// resized with NEAREST (gt_transforms); training transforms (a random
// horizontal flip) move image and mask together.
#pragma once

#include <array>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "automm/table.h"
#include "data/image/image_io.h"
#include "data/image/transforms.h"

namespace automm {

// How many classes a table's masks hold, as AutoMM's num_classes inference
// (learners/semantic_segmentation.py): masks holding only 0 and 255 (or only 0
// and 1: AutoMM reads those as 2 classes, a quirk fixed here), or 1-bit
// files, are binary (1); otherwise the largest value other than
// `ignore_label`, plus 1 (class 0 is a class: the background). `reason` says
// what was found, for the fit log.
struct MaskClassCount {
  int64_t num_classes = 1;
  std::string reason;
};
// `masks`: (row label for messages, path). Colour masks are an error naming the row.
MaskClassCount count_mask_classes(const std::vector<std::pair<std::string, std::string>>& masks,
                                  int64_t ignore_label);

struct SegmentationDataOptions {
  int64_t image_size = 1024;
  std::array<double, 3> mean{}, std{};
  std::vector<std::string> train_transforms, val_transforms, img_transforms;
  int64_t num_classes = 1;  // 1: binary masks
  int64_t ignore_label = 255;
};

// One row, ready for the model.
struct SegmentationItem {
  torch::Tensor pixels;  // [3, S, S] float, normalised
  // [S, S]: binary -> float gray level / 255 (AutoMM's convert("L") + ToTensor);
  // multi-class -> int64 class index, ignore_label where no class counts.
  // Undefined without a mask.
  torch::Tensor mask;
  int64_t width = 0, height = 0;  // the image file's own size
};

class SegmentationReader {
 public:
  explicit SegmentationReader(SegmentationDataOptions options);
  // `where` names the row in errors ("row 4 of train.csv"). `mask_path` empty:
  // no mask. Throws naming the row and the file for a missing or unreadable
  // image or mask, a mask whose size differs from its image, a colour mask or
  // a class index >= num_classes (other than ignore_label) in a multi-class mask.
  SegmentationItem read(const std::string& image_path, const std::string& mask_path, bool training,
                        std::mt19937_64& rng, const std::string& where) const;
  const SegmentationDataOptions& options() const { return options_; }

 private:
  SegmentationDataOptions options_;
  ImagePipeline train_pipeline_, eval_pipeline_;
};

// A predicted mask [H, W] as 8-bit gray levels: bool masks 0 / 255, class
// indices as they are (clamped to 255), probabilities in [0, 1] times 255.
std::vector<uint8_t> mask_to_gray(const torch::Tensor& mask);

// `image` with each non-zero class of `mask` [H, W] (the image's size) painted
// over it at half opacity, one colour per class (the binary mask in red).
Image overlay_mask(const Image& image, const torch::Tensor& mask);

// Writes each row's mask (mask_to_gray) as <out>/<image file stem>.png (the
// row number appended when two images share a stem) and <out>/masks.csv
// (columns image, mask); with `overlays` non-empty, each image with its mask
// painted over it (overlay_mask) as <overlays>/<stem>.png. Relative image
// paths resolve against the table's folder. Returns the number of masks written.
size_t write_mask_files(const Table& data, const std::string& image_column, const std::vector<torch::Tensor>& masks,
                        const std::string& out, const std::string& overlays = "");

}  // namespace automm
