// model.timm_image.checkpoint_name: timm names (with tags) in the Hugging Face
// cache, hub-format folders, weights files named after their model.
#include <gtest/gtest.h>

#include "models/image/timm_checkpoint.h"
#include "test_util.h"

namespace automm {
namespace {

using testing::HubCacheEnv;
using testing::TempDir;

void write_timm_folder(const std::string& folder, const std::string& architecture) {
  std::filesystem::create_directories(folder);
  testing::write_file(folder + "/config.json", R"({"architecture": ")" + architecture + R"(", "pretrained_cfg":
      {"input_size": [3, 256, 256], "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25],
       "crop_pct": 0.9, "interpolation": "bilinear"}})");
  testing::write_file(folder + "/model.safetensors", "");
}

TEST(TimmCheckpoint, NamesTagsCacheAndPretrainedCfg) {
  TempDir dir;
  HubCacheEnv env(dir.file("hub"), "", "", dir.file("home"));
  // Random weights need no file.
  const ResolvedImageModel random = resolve_timm_checkpoint("resnet50", false);
  EXPECT_EQ(random.architecture, "resnet50");
  EXPECT_TRUE(random.weights.empty());
  EXPECT_EQ(random.info.image_size, 224);
  // The default tag's hub id, found in the cache, with its pretrained_cfg.
  EXPECT_EQ(timm_default_hub_id("resnet50"), "timm/resnet50.a1_in1k");
  write_timm_folder(dir.file("hub/models--timm--resnet50.a1_in1k/snapshots/abc"), "resnet50.a1_in1k");
  const ResolvedImageModel cached = resolve_timm_checkpoint("resnet50", true);
  EXPECT_EQ(cached.architecture, "resnet50");
  EXPECT_EQ(cached.weights, dir.file("hub/models--timm--resnet50.a1_in1k/snapshots/abc"));
  EXPECT_EQ(cached.info.image_size, 256);
  EXPECT_EQ(cached.info.mean[0], 0.5);
  EXPECT_EQ(cached.info.interpolation, "bilinear");
  // Another cached tag serves an untagged name; an explicit tag must exist.
  write_timm_folder(dir.file("hub/models--timm--convnext_tiny.fb_in1k/snapshots/def"), "convnext_tiny");
  EXPECT_EQ(resolve_timm_checkpoint("convnext_tiny", true).architecture, "convnext_tiny");
  EXPECT_THROW(resolve_timm_checkpoint("convnext_tiny.in12k_ft_in1k", true), std::runtime_error);
  EXPECT_EQ(resolve_timm_checkpoint("timm/convnext_tiny.fb_in1k", true).architecture, "convnext_tiny");
}

TEST(TimmCheckpoint, FoldersFilesAndErrors) {
  TempDir dir;
  HubCacheEnv env(dir.file("hub"), "", "", dir.file("home"));
  write_timm_folder(dir.file("my_swin"), "swin_tiny_patch4_window7_224");
  EXPECT_EQ(resolve_timm_checkpoint(dir.file("my_swin"), true).architecture, "swin_tiny_patch4_window7_224");
  // A file is named after its model; the longest matching name wins.
  testing::write_file(dir.file("resnet101.a1h_in1k.pth"), "");
  const ResolvedImageModel file = resolve_timm_checkpoint(dir.file("resnet101.a1h_in1k.pth"), true);
  EXPECT_EQ(file.architecture, "resnet101");
  EXPECT_EQ(file.weights, dir.file("resnet101.a1h_in1k.pth"));
  testing::write_file(dir.file("weights.pth"), "");
  EXPECT_TRUE(testing::Contains(
      testing::message_of<std::invalid_argument>([&] { resolve_timm_checkpoint(dir.file("weights.pth"), true); }),
      "name the file after its timm model"));
  const std::string unknown =
      testing::message_of<std::invalid_argument>([&] { resolve_timm_checkpoint("efficientnet_b0", true); });
  EXPECT_TRUE(testing::Contains(unknown, "swin_base_patch4_window7_224"));
  const std::string offline =
      testing::message_of<std::runtime_error>([&] { resolve_timm_checkpoint("vit_base_patch32_224", true); });
  EXPECT_TRUE(testing::Contains(offline, "timm/vit_base_patch32_224.augreg_in21k_ft_in1k"));
  EXPECT_TRUE(testing::Contains(offline, "pretrained=false"));
}

}  // namespace
}  // namespace automm
