// The image processor: image slots per row (several paths per cell, base64
// bytes), missing and corrupted images, train vs val transforms.
#include <gtest/gtest.h>

#include <fstream>

#include "data/image/image_processor.h"
#include "image_test_util.h"

namespace automm {
namespace {

using testing::make_column;
using testing::TempDir;

Image solid(int64_t size, uint8_t r, uint8_t g, uint8_t b) {
  Image image(size, size);
  for (int64_t i = 0; i < size * size; ++i) {
    image.pixels[i * 3] = r;
    image.pixels[i * 3 + 1] = g;
    image.pixels[i * 3 + 2] = b;
  }
  return image;
}

std::string base64(const std::string& bytes) {
  static const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < bytes.size(); i += 3) {
    const size_t n = std::min<size_t>(3, bytes.size() - i);
    uint32_t v = 0;
    for (size_t k = 0; k < 3; ++k) v = (v << 8) | (k < n ? static_cast<unsigned char>(bytes[i + k]) : 0u);
    for (size_t k = 0; k < 4; ++k) out += k <= n ? table[(v >> (18 - 6 * k)) & 63] : '=';
  }
  return out;
}

ImageProcessorOptions small_options(int64_t per_column) {
  ImageProcessorOptions options;
  options.image_size = 8;
  options.mean = {0.0, 0.0, 0.0};
  options.std = {1.0, 1.0, 1.0};
  options.interpolation = "bilinear";
  options.max_images_per_column = per_column;
  options.train_transforms = {"resize_to_square", "random_horizontal_flip"};
  options.val_transforms = {"resize_to_square"};
  return options;
}

TEST(ImageProcessor, SlotsMasksPathsBytesMissingAndCorrupt) {
  TempDir dir;
  testing::write_bmp(dir.file("red.bmp"), solid(12, 255, 0, 0));
  testing::write_bmp(dir.file("blue.bmp"), solid(10, 0, 0, 255));
  testing::write_file(dir.file("bad.bmp"), "BM garbage");
  std::ifstream in(dir.file("blue.bmp"), std::ios::binary);
  const std::string blue_bytes((std::istreambuf_iterator<char>(in)), {});
  Table table;
  table.add_column(make_column("photos", {"red.bmp; blue.bmp; red.bmp", "", "bad.bmp;missing.bmp"}));
  table.add_column(make_column("raw", {base64(blue_bytes), base64(blue_bytes), ""}));
  table.source = dir.file("table.csv");
  const auto processor = ImageProcessor::create("timm_image", {{"raw", false}, {"photos", true}}, small_options(2));
  EXPECT_EQ(processor->slots(), 4);  // (photos: 2) + (raw: 2), columns sorted by name
  const auto inputs = processor->transform(table, dir.path().string());
  const ImageBatch batch = processor->make_batch(*inputs, {0, 1, 2}, nullptr);
  EXPECT_EQ(batch.images.sizes(), (std::vector<int64_t>{3, 4, 3, 8, 8}));
  // photos slots 0-1 (red, blue: the third path is beyond max_image_num_per_column), raw slots 2-3.
  EXPECT_TRUE(torch::equal(batch.mask, torch::tensor({{1.f, 1.f, 1.f, 0.f}, {0.f, 0.f, 1.f, 0.f}, {0.f, 0.f, 0.f, 0.f}})));
  EXPECT_NEAR(batch.images[0][0][0].mean().item<double>(), 1.0, 1e-6);  // red channel of red
  EXPECT_NEAR(batch.images[0][1][2].mean().item<double>(), 1.0, 1e-6);  // blue channel of blue
  EXPECT_NEAR(batch.images[1][2][2].mean().item<double>(), 1.0, 1e-6);  // base64 blue
  EXPECT_EQ(batch.images[2].abs().sum().item<double>(), 0.0);           // corrupt and missing: zeros
  EXPECT_EQ(processor->readable_rows(*inputs), (std::vector<size_t>{0, 1}));
}

TEST(ImageProcessor, TrainTransformsOnlyWithTrainingRandomness) {
  TempDir dir;
  Image half = solid(8, 0, 0, 0);
  for (int64_t y = 0; y < 8; ++y)
    for (int64_t x = 0; x < 4; ++x) half.row(y)[x * 3] = 255;  // left half red
  testing::write_bmp(dir.file("half.bmp"), half);
  Table table;
  table.add_column(make_column("photo", {"half.bmp"}));
  const auto processor = ImageProcessor::create("timm_image", {{"photo", true}}, small_options(1));
  const auto inputs = processor->transform(table, dir.path().string());
  const torch::Tensor plain = processor->make_batch(*inputs, {0}, nullptr).images;
  std::mt19937_64 rng(1);
  int flipped = 0;
  for (int i = 0; i < 100; ++i) {
    const torch::Tensor trained = processor->make_batch(*inputs, {0}, &rng).images;
    flipped += !torch::equal(trained, plain);
    EXPECT_TRUE(torch::equal(processor->make_batch(*inputs, {0}, nullptr).images, plain));
  }
  EXPECT_GT(flipped, 30);
  EXPECT_LT(flipped, 70);
}

TEST(ImageProcessor, TransformsMustEndAtTheImageSize) {
  TempDir dir;
  ImageProcessorOptions options = small_options(1);
  options.val_transforms = {"resize_shorter_side"};
  testing::write_bmp(dir.file("wide.bmp"), Image(20, 10));
  Table table;
  table.add_column(make_column("photo", {"wide.bmp"}));
  const auto processor = ImageProcessor::create("timm_image", {{"photo", true}}, options);
  const std::string message = testing::message_of<std::invalid_argument>(
      [&] { processor->make_batch(*processor->transform(table, dir.path().string()), {0}, nullptr); });
  EXPECT_TRUE(testing::Contains(message, "center_crop"));
}

}  // namespace
}  // namespace automm

namespace automm {
namespace {

TEST(ImageProcessorOptions, KeysOverTheCheckpointsDefaults) {
  Config config;
  ImageProcessorOptions options = image_processor_options(config, "model.timm_image", 256, "bilinear");
  EXPECT_EQ(options.image_size, 256);  // image_size null: the checkpoint's
  EXPECT_EQ(options.interpolation, "bilinear");
  EXPECT_NEAR(options.mean[0], 0.485, 1e-9);
  EXPECT_FALSE(options.skip_invalid);
  EXPECT_EQ(options.train_transforms,
            (std::vector<std::string>{"resize_shorter_side", "center_crop", "trivial_augment"}));
  config.set("model.timm_image.image_size", 96);
  config.set("model.timm_image.image_norm", "clip");
  config.set("model.timm_image.max_image_num_per_column", 3);
  config.set("data.image.missing_value_strategy", "skip");
  options = image_processor_options(config, "model.timm_image", 256, "bilinear");
  EXPECT_EQ(options.image_size, 96);
  EXPECT_NEAR(options.mean[0], 0.48145466, 1e-6);
  EXPECT_EQ(options.max_images_per_column, 3);
  EXPECT_TRUE(options.skip_invalid);
}

}  // namespace
}  // namespace automm
