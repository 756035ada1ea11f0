// The timm_image backbone: features averaged over a row's valid images;
// missing slots never reach the encoder.
#include <gtest/gtest.h>

#include "models/multimodal_net.h"

namespace automm {
namespace {

std::shared_ptr<BackboneImpl> resnet18_backbone() {
  ModelContext context;
  context.num_outputs = 2;
  context.image_models["timm_image"] = {"resnet18", ""};
  torch::manual_seed(3);
  return make_backbone("timm_image", "timm_image", context, Config());
}

Batch image_batch(const torch::Tensor& images, const torch::Tensor& mask) {
  Batch batch;
  batch.images["timm_image"] = {images, mask};
  return batch;
}

// In training, batch norm uses batch statistics: a garbage image in a masked
// slot would change every row's features if it reached the encoder.
TEST(TimmImage, MissingSlotsDoNotReachTheEncoder) {
  auto backbone = resnet18_backbone();
  backbone->train();
  const torch::Tensor real = torch::randn({3, 1, 3, 32, 32});
  const torch::Tensor garbage = 100 * torch::randn({3, 1, 3, 32, 32});
  const torch::Tensor with_gaps = torch::cat({real, garbage}, 1);  // [3, 2, 3, 32, 32]
  const torch::Tensor mask = torch::tensor({{1.f, 0.f}, {1.f, 0.f}, {1.f, 0.f}});
  const torch::Tensor alone = backbone->forward(image_batch(real, torch::ones({3, 1}))).features;
  const torch::Tensor gapped = backbone->forward(image_batch(with_gaps, mask)).features;
  EXPECT_TRUE(torch::allclose(alone, gapped, 1e-4, 1e-5));
  // A row without any image gets zero features.
  backbone->eval();
  const torch::Tensor none = backbone->forward(image_batch(garbage, torch::zeros({3, 1}))).features;
  EXPECT_EQ(none.abs().sum().item<double>(), 0.0);
}

TEST(TimmImage, FeaturesAreTheMeanOverValidImages) {
  auto backbone = resnet18_backbone();
  backbone->eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor a = torch::randn({1, 1, 3, 32, 32}), b = torch::randn({1, 1, 3, 32, 32});
  const torch::Tensor fa = backbone->forward(image_batch(a, torch::ones({1, 1}))).features;
  const torch::Tensor fb = backbone->forward(image_batch(b, torch::ones({1, 1}))).features;
  const torch::Tensor both = backbone->forward(image_batch(torch::cat({a, b}, 1), torch::ones({1, 2}))).features;
  EXPECT_TRUE(torch::allclose(both, (fa + fb) / 2, 1e-4, 1e-5));
}

}  // namespace
}  // namespace automm
