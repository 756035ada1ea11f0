// Boxes and masks move with the pixels through the geometric transforms, with
// the same random draw (data/image/transforms.h, ImageSample).
#include <gtest/gtest.h>

#include <random>

#include "data/image/transforms.h"
#include "test_util.h"

namespace automm {
namespace {

using testing::message_of;

// A gray image with a textured rectangle, and a mask with class 7 on the same
// rectangle: the box (x1, y1, x2, y2) covers pixels [x1, x2) x [y1, y2).
ImageSample sample_with_box(int64_t width, int64_t height, std::array<int64_t, 4> box) {
  Image image(width, height), mask(width, height);
  std::fill(image.pixels.begin(), image.pixels.end(), 90);
  for (int64_t y = box[1]; y < box[3]; ++y)
    for (int64_t x = box[0]; x < box[2]; ++x)
      for (int c = 0; c < 3; ++c) {
        image.row(y)[x * 3 + c] = static_cast<uint8_t>(150 + (x * 7 + y * 3 + c) % 100);
        mask.row(y)[x * 3 + c] = 7;
      }
  const torch::Tensor boxes = torch::tensor({static_cast<float>(box[0]), static_cast<float>(box[1]),
                                             static_cast<float>(box[2]), static_cast<float>(box[3])})
                                  .view({1, 4});
  return ImageSample(std::move(image), boxes, std::move(mask));
}

// The bounding box (x1, y1, x2, y2) of the mask's class-7 pixels; all -1 when there are none.
std::array<double, 4> mask_box(const Image& mask) {
  std::array<double, 4> b = {-1, -1, -1, -1};
  for (int64_t y = 0; y < mask.height; ++y)
    for (int64_t x = 0; x < mask.width; ++x) {
      if (mask.row(y)[x * 3] != 7) continue;
      if (b[0] < 0) b = {static_cast<double>(x), static_cast<double>(y), x + 1.0, y + 1.0};
      b = {std::min(b[0], static_cast<double>(x)), std::min(b[1], static_cast<double>(y)), std::max(b[2], x + 1.0),
           std::max(b[3], y + 1.0)};
    }
  return b;
}

TEST(ImageTargets, GeometricTransformsMoveBoxAndMaskTogether) {
  const std::vector<std::string> specs = {
      "resize_to_square(48)",       "resize_shorter_side(40)",        "center_crop(50)",
      "center_crop(120)",           "random_resize_crop(64, scale=0.2-1.0)", "random_horizontal_flip",
      "random_vertical_flip",       "color_jitter(0.4, 0.4, 0.4)"};
  int checked = 0, dropped = 0;
  for (const std::string& spec : specs) {
    const auto transform = make_image_transform(spec, 64);
    for (uint64_t seed = 0; seed < 40; ++seed) {
      SCOPED_TRACE(spec + ", seed " + std::to_string(seed));
      std::mt19937_64 rng(seed);
      ImageSample sample = sample_with_box(97, 71, {20, 15, 61, 44});
      transform->apply(sample, rng);
      ASSERT_EQ(sample.mask.width, sample.image.width);
      ASSERT_EQ(sample.mask.height, sample.image.height);
      const auto from_mask = mask_box(sample.mask);
      if (sample.boxes.size(0) == 0) {  // the crop missed the box: so did the mask
        EXPECT_LT(from_mask[0], 0);
        ++dropped;
        continue;
      }
      ASSERT_EQ(sample.box_ids.size(0), 1);
      // NEAREST sampling moves a mask edge by at most one output pixel.
      for (int i = 0; i < 4; ++i) EXPECT_NEAR(sample.boxes[0][i].item<double>(), from_mask[i], 1.0) << "coordinate " << i;
      ++checked;
    }
  }
  EXPECT_GT(checked + dropped, 300);
  EXPECT_GT(checked, 250);
}

TEST(ImageTargets, FlipsMirrorBoxesByHand) {
  std::mt19937_64 rng(0);
  ImageSample h = sample_with_box(100, 80, {10, 20, 30, 50});
  make_image_transform("random_horizontal_flip(p=1)", 64)->apply(h, rng);
  EXPECT_TRUE(torch::equal(h.boxes, torch::tensor({70.0f, 20.0f, 90.0f, 50.0f}).view({1, 4})));
  ImageSample v = sample_with_box(100, 80, {10, 20, 30, 50});
  make_image_transform("random_vertical_flip(p=1)", 64)->apply(v, rng);
  EXPECT_TRUE(torch::equal(v.boxes, torch::tensor({10.0f, 30.0f, 30.0f, 60.0f}).view({1, 4})));
}

TEST(ImageTargets, CropsClipBoxesAndDropThoseOutside) {
  ImageSample sample(Image(100, 100), torch::tensor({0.f, 0.f, 10.f, 10.f, 25.f, 25.f, 50.f, 50.f, 60.f, 10.f, 90.f, 40.f})
                                          .view({3, 4}));
  std::mt19937_64 rng(0);
  make_image_transform("center_crop(40)", 64)->apply(sample, rng);  // the window [30, 70) x [30, 70)
  EXPECT_TRUE(torch::equal(sample.boxes, torch::tensor({0.f, 0.f, 20.f, 20.f, 30.f, 0.f, 40.f, 10.f}).view({2, 4})));
  EXPECT_TRUE(torch::equal(sample.box_ids, torch::tensor({1, 2}, torch::kInt64)));
}

TEST(ImageTargets, WithoutTargetsThePixelsAndDrawsAreThoseOfTheImagePipeline) {
  const ImagePipeline pipeline({"random_resize_crop(48)", "random_horizontal_flip", "color_jitter", "trivial_augment"},
                               48);
  const ImageSample base = sample_with_box(80, 60, {5, 5, 40, 30});
  for (uint64_t seed = 0; seed < 10; ++seed) {
    std::mt19937_64 a(seed), b(seed);
    const Image plain = pipeline.apply(base.image, a);
    const ImageSample sample = pipeline.apply(ImageSample(base.image), b);
    EXPECT_EQ(plain.pixels, sample.image.pixels);
    EXPECT_EQ(a(), b()) << "the same number of random draws";
  }
}

TEST(ImageTargets, TransformsThatCannotMoveTargetsSaySo) {
  for (const std::string name : {"affine", "randaug", "trivial_augment"}) {
    std::mt19937_64 rng(1);
    ImageSample sample = sample_with_box(40, 40, {5, 5, 20, 20});
    const std::string message =
        message_of<std::invalid_argument>([&] { make_image_transform(name, 32)->apply(sample, rng); });
    EXPECT_TRUE(testing::Contains(message, "image transform '" + name + "' cannot move boxes or masks"));
    ImageSample plain(sample.image);
    EXPECT_NO_THROW(make_image_transform(name, 32)->apply(plain, rng));
  }
  EXPECT_TRUE(testing::Contains(message_of<std::invalid_argument>([] { ImageSample(Image(10, 10), {}, Image(9, 10)); }),
                                "does not match its image"));
}

}  // namespace
}  // namespace automm
