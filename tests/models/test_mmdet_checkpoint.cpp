// mmdet checkpoints (src/models/detection/mmdet_checkpoint.cpp): a torch.save'd
// {"state_dict", "meta"} file read through the safe unpickler, the architecture
// read from its tensors, loading by mmdet's names with a fresh class-dependent
// head, Megvii's YOLOX names renamed as AutoMM renames them.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "automm/weights_io.h"
#include "models/detection/detector.h"
#include "models/detection/mmdet_checkpoint.h"
#include "test_util.h"

#ifndef AUTOMM_SOURCE_DIR
#include "automm_test_paths.h"
#endif

namespace automm::detection {
namespace {

using automm::testing::Contains;
using automm::testing::error_of;
using automm::testing::TempDir;

StateDict state_of(DetectorImpl& net) {
  StateDict out;
  for (const auto& item : net.named_parameters()) out[item.key()] = item.value().detach().clone();
  for (const auto& item : net.named_buffers()) out[item.key()] = item.value().detach().clone();
  return out;
}

TEST(MmdetCheckpoint, SpecsCarryEachFamilysTransformsAndScaleTheRandomResize) {
  auto s = detector_spec("yolox_s", 3);
  EXPECT_TRUE(s.input.hsv_jitter);
  EXPECT_FALSE(s.input.ssd_augment);
  EXPECT_EQ(s.input.random_resize_min, 480);
  EXPECT_EQ(s.input.random_resize_max, 800);
  set_input_size(s, 128);  // model.mmdet_image.image_size
  EXPECT_EQ(s.input.image_size, 128);
  EXPECT_EQ(s.input.random_resize_min, 96);
  EXPECT_EQ(s.input.random_resize_max, 160);
  auto nano = detector_spec("yolox_nano", 3);
  EXPECT_EQ(nano.input.random_resize_min, 320);
  EXPECT_EQ(nano.input.random_resize_max, 640);
  auto v3 = detector_spec("yolov3_mobilenetv2_8xb24-320-300e_coco", 3);
  EXPECT_TRUE(v3.input.ssd_augment);
  EXPECT_FALSE(v3.input.hsv_jitter);
  EXPECT_EQ(v3.input.random_resize_max, 0);  // YOLOv3 trains at one size
  set_input_size(v3, 256);
  EXPECT_EQ(v3.input.random_resize_max, 0);
}

TEST(MmdetCheckpoint, MegviiNamesBecomeMmdetNames) {
  const std::pair<const char*, const char*> cases[] = {
      {"model.backbone.backbone.stem.conv.conv.weight", "backbone.stem.conv.conv.weight"},
      {"backbone.backbone.dark2.0.dconv.conv.weight", "backbone.stage1.0.depthwise_conv.conv.weight"},
      {"backbone.backbone.dark2.1.conv1.bn.weight", "backbone.stage1.1.main_conv.bn.weight"},
      {"backbone.backbone.dark3.1.conv3.conv.weight", "backbone.stage2.1.final_conv.conv.weight"},
      {"backbone.backbone.dark3.1.m.0.conv2.pconv.bn.bias", "backbone.stage2.1.blocks.0.conv2.pointwise_conv.bn.bias"},
      {"backbone.backbone.dark5.1.conv2.conv.weight", "backbone.stage4.1.conv2.conv.weight"},  // SPP keeps its names
      {"backbone.backbone.dark5.2.conv2.conv.weight", "backbone.stage4.2.short_conv.conv.weight"},
      {"backbone.lateral_conv0.conv.weight", "neck.reduce_layers.0.conv.weight"},
      {"backbone.C3_p4.conv1.conv.weight", "neck.top_down_blocks.0.main_conv.conv.weight"},
      {"backbone.C3_n4.m.0.conv1.conv.weight", "neck.bottom_up_blocks.1.blocks.0.conv1.conv.weight"},
      {"backbone.bu_conv1.conv.weight", "neck.downsamples.1.conv.weight"},
      {"head.stems.2.bn.running_mean", "neck.out_convs.2.bn.running_mean"},
      {"head.cls_convs.1.0.conv.weight", "bbox_head.multi_level_cls_convs.1.0.conv.weight"},
      {"head.obj_preds.0.bias", "bbox_head.multi_level_conv_obj.0.bias"},
  };
  for (const auto& [megvii, mmdet] : cases) EXPECT_EQ(megvii_to_mmdet_name(megvii), mmdet) << megvii;
}

TEST(MmdetCheckpoint, TorchSavedCheckpointsLoadWithAFreshHeadForOtherClasses) {
  if (!automm::testing::python_reference_missing("torch", "python3-torch", "the mmdet checkpoint test").empty())
    GTEST_SKIP() << "needs /usr/bin/python3 with torch";
  TempDir dir;
  torch::manual_seed(3);
  const auto coco = make_detector(detector_spec("yolox_nano", 80));
  save_safetensors(state_of(*coco), dir.file("w.safetensors"));
  // torch.save({"state_dict": ..., "meta": {...}}) as mmdet writes it, strings and tuples in meta.
  const std::string script =
      "import sys, torch\n"
      "sys.path.insert(0, '" + std::string(AUTOMM_SOURCE_DIR) + "/tests/models')\n"
      "from safetensors_io import read_safetensors\n"
      "sd = read_safetensors(sys.argv[1])\n"
      "torch.save({'state_dict': sd, 'meta': {'CLASSES': tuple('c%d' % i for i in range(80)), 'epoch': 300,\n"
      "            'mmdet_version': '2.19.0', 'config': 'model = dict(type=\"YOLOX\")'}}, sys.argv[2])\n";
  std::ofstream(dir.file("save.py")) << script;
  ASSERT_EQ(std::system(("/usr/bin/python3 " + dir.file("save.py") + " " + dir.file("w.safetensors") + " " +
                         dir.file("yolox_nano_coco.pth"))
                            .c_str()),
            0);
  const StateDict read = read_mmdet_state_dict(dir.file("yolox_nano_coco.pth"));
  EXPECT_EQ(detector_name_of(read, "f"), "yolox_nano");
  EXPECT_EQ(find_mmdet_checkpoint(dir.file("yolox_nano_coco.pth")), dir.file("yolox_nano_coco.pth"));

  const auto mine = make_detector(detector_spec("yolox_nano", 3));
  const LoadReport report = load_detector_weights(*mine, read, "f");
  ASSERT_EQ(report.fresh.size(), 6u);  // the three levels' class convs, weight and bias
  for (const auto& name : report.fresh) EXPECT_TRUE(Contains(name, "multi_level_conv_cls")) << name;
  const StateDict loaded = state_of(*mine);
  EXPECT_TRUE(torch::equal(loaded.at("backbone.stem.conv.conv.weight"), read.at("backbone.stem.conv.conv.weight")));
  EXPECT_TRUE(torch::equal(loaded.at("bbox_head.multi_level_conv_obj.1.bias"), read.at("bbox_head.multi_level_conv_obj.1.bias")));
  // Another architecture's tensors are an error naming the tensor.
  const auto tiny = make_detector(detector_spec("yolox_tiny", 3));
  EXPECT_TRUE(Contains(error_of([&] { load_detector_weights(*tiny, read, "f.pth"); }), "f.pth: tensor backbone.stem"));
  // A known name found in the torch hub cache.
  std::filesystem::create_directories(dir.path() / "torch/hub/checkpoints");
  std::filesystem::copy_file(dir.file("yolox_nano_coco.pth"), dir.file("torch/hub/checkpoints/yolox_nano.pth"));
  automm::testing::ScopedEnv env({{"TORCH_HOME", dir.file("torch")}});
  std::string hint;
  EXPECT_EQ(find_mmdet_checkpoint("yolox_nano", &hint), dir.file("torch/hub/checkpoints/yolox_nano.pth"));
  EXPECT_TRUE(Contains(hint, "Megvii-BaseDetection"));
  EXPECT_EQ(find_mmdet_checkpoint("yolox_s"), "");
  // A Hugging Face id in the hub cache: its snapshot's model.pth (refs/main picks the snapshot).
  const auto repo = std::filesystem::path(dir.file("hub")) / "models--someone--yolox-nano-shapes";
  std::filesystem::create_directories(repo / "snapshots/abc123");
  std::filesystem::create_directories(repo / "snapshots/old999");
  std::filesystem::create_directories(repo / "refs");
  std::ofstream(repo / "refs/main") << "abc123";
  std::filesystem::copy_file(dir.file("yolox_nano_coco.pth"), repo / "snapshots/abc123/model.pth");
  std::filesystem::copy_file(dir.file("yolox_nano_coco.pth"), repo / "snapshots/old999/model.pth");
  automm::testing::ScopedEnv hub({{"HF_HUB_CACHE", dir.file("hub")}});
  EXPECT_EQ(find_mmdet_checkpoint("someone/yolox-nano-shapes"), (repo / "snapshots/abc123/model.pth").string());
  EXPECT_EQ(find_mmdet_checkpoint("someone/not-there"), "");
  std::filesystem::remove(repo / "snapshots/abc123/model.pth");  // a snapshot without weights is an error naming it
  EXPECT_TRUE(Contains(error_of([] { find_mmdet_checkpoint("someone/yolox-nano-shapes"); }), "abc123 holds no model.pth"));
}

}  // namespace
}  // namespace automm::detection
