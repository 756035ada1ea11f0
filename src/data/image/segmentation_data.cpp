// Segmentation images and masks; see segmentation_data.h.
#include "data/image/segmentation_data.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <stdexcept>

#include "data/image/image_ops.h"

namespace automm {
namespace {

std::vector<std::string> joined(std::vector<std::string> first, const std::vector<std::string>& then) {
  first.insert(first.end(), then.begin(), then.end());
  return first;
}

std::string list_values(const std::set<int>& values) {
  std::string out;
  size_t shown = 0;
  for (int v : values) {
    if (shown++ == 12) return out + ", ...";
    out += (out.empty() ? "" : ", ") + std::to_string(v);
  }
  return out;
}

}  // namespace

MaskClassCount count_mask_classes(const std::vector<std::pair<std::string, std::string>>& masks,
                                  int64_t ignore_label) {
  std::set<int> values;
  for (const auto& [where, path] : masks) {
    MaskImage mask;
    try {
      mask = read_mask(path);
    } catch (const ImageDecodeError& e) {
      throw std::invalid_argument(where + ": " + e.what());
    }
    if (mask.kind == MaskImage::Kind::kColor)
      throw std::invalid_argument(where + ": the mask " + path +
                                  " is a colour image; masks hold one value per pixel (a gray level, or a class "
                                  "index as a gray or palette PNG)");
    bool seen[256] = {};
    for (uint8_t v : mask.values) seen[v] = true;
    for (int v = 0; v < 256; ++v)
      if (seen[v]) values.insert(v);
  }
  MaskClassCount out;
  const bool binary_255 = std::all_of(values.begin(), values.end(), [](int v) { return v == 0 || v == 255; });
  const bool binary_01 = std::all_of(values.begin(), values.end(), [](int v) { return v == 0 || v == 1; });
  if (binary_255 || binary_01) {
    out.num_classes = 1;
    out.reason = "the masks hold only the values {" + list_values(values) + "}: binary segmentation";
    return out;
  }
  int largest = 0;
  for (int v : values)
    if (v != ignore_label) largest = std::max(largest, v);
  out.num_classes = largest + 1;
  out.reason = "the masks hold the values {" + list_values(values) + "}: " + std::to_string(out.num_classes) +
               " classes (0.." + std::to_string(largest) + ")" +
               (values.count(static_cast<int>(ignore_label)) ? ", " + std::to_string(ignore_label) + " ignored" : "");
  return out;
}

SegmentationReader::SegmentationReader(SegmentationDataOptions options)
    : options_(std::move(options)),
      train_pipeline_(joined(options_.train_transforms, options_.img_transforms), options_.image_size, "bicubic"),
      eval_pipeline_(joined(options_.val_transforms, options_.img_transforms), options_.image_size, "bicubic") {}

SegmentationItem SegmentationReader::read(const std::string& image_path, const std::string& mask_path, bool training,
                                          std::mt19937_64& rng, const std::string& where) const {
  Image image;
  try {
    image = read_image(image_path);
  } catch (const ImageDecodeError& e) {
    throw std::invalid_argument(where + ": " + e.what());
  }
  SegmentationItem item;
  item.width = image.width;
  item.height = image.height;
  const bool binary = options_.num_classes == 1;
  Image mask_pixels;  // the target in all three channels, moved with the image by the transforms
  if (!mask_path.empty()) {
    MaskImage mask;
    try {
      mask = read_mask(mask_path);
    } catch (const ImageDecodeError& e) {
      throw std::invalid_argument(where + ": " + e.what());
    }
    if (mask.rgb.width != image.width || mask.rgb.height != image.height)
      throw std::invalid_argument(where + ": the mask " + mask_path + " is " + std::to_string(mask.rgb.width) + "x" +
                                  std::to_string(mask.rgb.height) + " pixels and its image " + image_path + " is " +
                                  std::to_string(image.width) + "x" + std::to_string(image.height));
    mask_pixels = Image(image.width, image.height);
    const size_t n = mask.rgb.pixels.size() / 3;
    if (binary) {
      // AutoMM: convert("L") (a palette mask through its colours), then ToTensor.
      for (size_t i = 0; i < n; ++i) std::fill_n(&mask_pixels.pixels[3 * i], 3, pil_luma(&mask.rgb.pixels[3 * i]));
    } else {
      if (mask.kind == MaskImage::Kind::kColor)
        throw std::invalid_argument(where + ": the mask " + mask_path +
                                    " is a colour image; a multi-class mask holds a class index per pixel (a gray "
                                    "or palette PNG)");
      for (size_t i = 0; i < n; ++i) {
        const uint8_t v = mask.values[i];
        if (v >= options_.num_classes && v != options_.ignore_label)
          throw std::invalid_argument(where + ": the mask " + mask_path + " holds the class " + std::to_string(v) +
                                      " at pixel (" + std::to_string(i % static_cast<size_t>(image.width)) + ", " +
                                      std::to_string(i / static_cast<size_t>(image.width)) + "); this predictor has " +
                                      std::to_string(options_.num_classes) + " classes (0.." +
                                      std::to_string(options_.num_classes - 1) + ", " +
                                      std::to_string(options_.ignore_label) + " ignored)");
        std::fill_n(&mask_pixels.pixels[3 * i], 3, v);
      }
    }
  }
  ImageSample sample = (training ? train_pipeline_ : eval_pipeline_).apply(ImageSample(std::move(image), {}, std::move(mask_pixels)), rng);
  const int64_t size = options_.image_size;
  if (sample.image.width != size || sample.image.height != size)
    throw std::invalid_argument("model.sam.img_transforms must end with an image of " + std::to_string(size) + "x" +
                                std::to_string(size) + " pixels (resize_to_square), got " +
                                std::to_string(sample.image.width) + "x" + std::to_string(sample.image.height));
  item.pixels = to_normalized_tensor(sample.image, options_.mean, options_.std);
  if (!sample.mask.empty()) {
    const torch::Tensor channel =
        torch::from_blob(sample.mask.pixels.data(), {size, size, 3}, torch::kUInt8).select(2, 0).clone();
    item.mask = binary ? channel.to(torch::kFloat32) / 255.0 : channel.to(torch::kLong);
  }
  return item;
}

std::vector<uint8_t> mask_to_gray(const torch::Tensor& mask) {
  torch::Tensor gray;
  if (mask.scalar_type() == torch::kBool) gray = mask.to(torch::kUInt8) * 255;
  else if (mask.is_floating_point()) gray = (mask.clamp(0, 1) * 255).round().to(torch::kUInt8);
  else gray = mask.clamp(0, 255).to(torch::kUInt8);
  gray = gray.contiguous();
  return std::vector<uint8_t>(gray.data_ptr<uint8_t>(), gray.data_ptr<uint8_t>() + gray.numel());
}

Image overlay_mask(const Image& image, const torch::Tensor& mask) {
  if (mask.dim() != 2 || mask.size(0) != image.height || mask.size(1) != image.width)
    throw std::invalid_argument("overlay_mask: the mask is not the image's size");
  // Distinct, saturated colours; class c > 0 takes entry (c - 1) mod 12.
  static const uint8_t kColours[12][3] = {{230, 25, 75},  {60, 180, 75},  {255, 225, 25}, {0, 130, 200},
                                          {245, 130, 48}, {145, 30, 180}, {70, 240, 240}, {240, 50, 230},
                                          {210, 245, 60}, {250, 190, 212}, {0, 128, 128}, {170, 110, 40}};
  const torch::Tensor classes = mask.to(torch::kLong).contiguous();
  const int64_t* c = classes.data_ptr<int64_t>();
  Image out = image;
  for (int64_t i = 0; i < image.width * image.height; ++i) {
    if (c[i] <= 0) continue;
    const uint8_t* colour = kColours[(c[i] - 1) % 12];
    for (int k = 0; k < 3; ++k)
      out.pixels[static_cast<size_t>(3 * i + k)] =
          static_cast<uint8_t>((out.pixels[static_cast<size_t>(3 * i + k)] + colour[k] + 1) / 2);
  }
  return out;
}

size_t write_mask_files(const Table& data, const std::string& image_column, const std::vector<torch::Tensor>& masks,
                        const std::string& out, const std::string& overlays) {
  namespace fs = std::filesystem;
  const Column& images = data.column(image_column);
  if (images.size() != masks.size())
    throw std::invalid_argument("write_mask_files: " + std::to_string(masks.size()) + " masks for " +
                                std::to_string(images.size()) + " rows");
  const fs::path source(data.source);
  const fs::path base = fs::exists(source) ? source.parent_path() : fs::path();
  fs::create_directories(out);
  if (!overlays.empty()) fs::create_directories(overlays);
  const auto write_file = [](const fs::path& path, const std::string& bytes) {
    std::ofstream file(path, std::ios::binary);
    file.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!file.flush()) throw std::runtime_error("cannot write " + path.string());
  };
  std::set<std::string> used;
  std::string index = "image,mask\n";
  for (size_t r = 0; r < masks.size(); ++r) {
    const std::string cell = images.text(r);
    std::string stem = fs::path(cell).stem().string();
    if (stem.empty() || !used.insert(stem).second) {
      stem += "_row" + std::to_string(r);
      used.insert(stem);
    }
    const torch::Tensor& mask = masks[r];
    const std::vector<uint8_t> gray = mask_to_gray(mask);
    const fs::path file = fs::path(out) / (stem + ".png");
    write_file(file, encode_png(gray.data(), mask.size(1), mask.size(0), 1));
    const bool quote = cell.find_first_of(",\"\n") != std::string::npos;
    std::string quoted = cell;
    if (quote) {
      quoted.clear();
      for (char c : cell) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
      quoted = "\"" + quoted + "\"";
    }
    index += quoted + "," + file.filename().string() + "\n";
    if (!overlays.empty()) {
      const fs::path path(cell);
      const Image image = read_image((path.is_relative() && !base.empty() ? base / path : path).string());
      const Image painted = overlay_mask(image, mask);
      write_file(fs::path(overlays) / (stem + ".png"), encode_png(painted.pixels.data(), painted.width, painted.height, 3));
    }
  }
  write_file(fs::path(out) / "masks.csv", index);
  return masks.size();
}

}  // namespace automm
