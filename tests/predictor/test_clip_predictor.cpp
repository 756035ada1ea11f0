// MultiModalPredictor with the clip backbone: scratch:clip-tiny on a table of
// images and texts, alone and fused with a tabular model, save / load, and the
// errors of its keys.
#include <gtest/gtest.h>

#include <filesystem>
#include <iostream>

#include "automm/predictor.h"
#include "automm/table.h"
#include "image_test_util.h"
#include "test_util.h"

namespace automm {
namespace {

using testing::make_shape_table;
using testing::error_of;
using testing::TempDir;

// The shape table with a caption column: the colour's word in a third of the
// rows (noise words otherwise), so images and texts both carry the label.
Table with_captions(Table table, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const Column& label = table.column("label");
  Column caption("caption");
  static const std::vector<std::string> noise = {"a thing", "some shape on grey", "picture", "an object here"};
  for (size_t r = 0; r < label.size(); ++r)
    caption.push((rng() % 3 == 0 ? "a " + label.text(r) + " shape" : noise[rng() % noise.size()]) + " seen in frame " +
                     std::to_string(rng() % 100000),
                 true);
  table.add_column(std::move(caption));
  write_csv(table, table.source);
  return read_table(table.source);
}

PredictorOptions clip_options(const std::string& path, Json extra = {}) {
  PredictorOptions options;
  options.label = "label";
  options.path = path;
  options.verbose = false;
  Json h = {{"model.names", Json::array({"clip"})},
            {"model.clip.checkpoint_name", "scratch:clip-tiny"},
            {"model.clip.image_size", 32},
            {"model.clip.train_transforms", Json::array({"resize_to_square"})},
            {"model.clip.val_transforms", Json::array({"resize_to_square"})},
            {"optim.lr", 1e-3},
            {"optim.max_epochs", 12},
            {"env.batch_size", 32},
            {"env.per_gpu_batch_size", 32}};
  if (extra.is_object()) h.update(extra);
  options.hyperparameters = h;
  return options;
}

TEST(ClipPredictor, ScratchClipLearnsFromImagesAndTextsAndReloads) {
  TempDir dir;
  const Table train = with_captions(make_shape_table(dir.path().string(), "train", 320, 1), 11);
  const Table test = with_captions(make_shape_table(dir.path().string(), "test", 120, 2), 12);
  MultiModalPredictor predictor(clip_options(dir.file("p")));
  predictor.fit(train);
  EXPECT_EQ(predictor.column_types().at("caption"), "text");
  const double accuracy = predictor.evaluate(test, {"accuracy"}).at("accuracy");
  std::cout << "scratch:clip-tiny test accuracy " << accuracy << std::endl;
  EXPECT_GT(accuracy, 0.85);
  // The embedding is the sum of the normalised image and text features (projection_dim 128).
  const torch::Tensor embedding = predictor.extract_embedding(test);
  EXPECT_EQ(embedding.sizes(), (std::vector<int64_t>{static_cast<int64_t>(test.num_rows()), 128}));
  // The tokenizer and config travel with the predictor.
  EXPECT_TRUE(std::filesystem::exists(dir.file("p/clip/tokenizer.json")));
  EXPECT_TRUE(std::filesystem::exists(dir.file("p/clip/config.json")));
  const torch::Tensor before = predictor.predict_proba(test);
  MultiModalPredictor loaded = MultiModalPredictor::load(dir.file("p"));
  EXPECT_LE((loaded.predict_proba(test) - before).abs().max().item<double>(), 1e-5);
}

TEST(ClipPredictor, FusesWithTabularAndTextModels) {
  TempDir dir;
  const Table train = with_captions(make_shape_table(dir.path().string(), "train", 96, 3), 13);
  MultiModalPredictor predictor(clip_options(
      dir.file("p"), {{"model.names", Json::array({"clip", "numerical_mlp", "hf_text", "fusion_mlp"})},
                      {"model.hf_text.checkpoint_name", "scratch:bert-tiny"},
                      {"optim.max_epochs", 1}}));
  predictor.fit(train);
  EXPECT_EQ(predictor.config().get_list("model.names"),
            (std::vector<std::string>{"clip", "numerical_mlp", "hf_text", "fusion_mlp"}));
  EXPECT_EQ(predictor.predict_proba(train).size(0), static_cast<int64_t>(train.num_rows()));
}

TEST(ClipPredictor, KeyErrorsNameTheKey) {
  TempDir dir;
  const Table train = with_captions(make_shape_table(dir.path().string(), "train", 16, 4), 14);
  MultiModalPredictor odd_size(clip_options(dir.file("a"), {{"model.clip.image_size", 40}}));
  EXPECT_TRUE(testing::Contains(error_of([&] { odd_size.fit(train); }), "model.clip.image_size"));
  MultiModalPredictor unknown(clip_options(dir.file("b"), {{"model.clip.checkpoint_name", "scratch:clip-huge"}}));
  EXPECT_TRUE(testing::Contains(error_of([&] { unknown.fit(train); }), "scratch:clip-tiny"));
}

}  // namespace
}  // namespace automm
