// One table with image, text, numerical and categorical columns, each carrying
// one bit of the label (label = at least two of the four bits set): the fused
// model of timm_image + hf_text + numerical_mlp + categorical_mlp + fusion_mlp
// must beat every modality alone, which can reach about 69% at best.
#include <gtest/gtest.h>

#include <iostream>
#include <random>

#include "automm/predictor.h"
#include "automm/table.h"
#include "image_test_util.h"
#include "test_util.h"

namespace automm {
namespace {

using testing::TempDir;

// The shape table's colour is the image bit; the other bits go into a caption,
// a number and a category.
Table four_modality_table(const std::string& folder, const std::string& prefix, size_t rows, uint64_t seed) {
  Table shapes = testing::make_shape_table(folder, prefix, rows, seed);
  std::mt19937_64 rng(seed + 100);
  static const std::vector<std::string> filler = {"seen", "today", "near", "the", "old", "road", "bright", "field"};
  Column caption("caption"), amount("amount"), kind("kind"), label("label");
  for (size_t r = 0; r < rows; ++r) {
    const int image_bit = shapes.column("label").text(r) == "red";
    const int text_bit = rng() % 2, number_bit = rng() % 2, category_bit = rng() % 2;
    std::string text = text_bit ? "alpha" : "omega";
    for (int w = 0; w < 3; ++w) text += " " + filler[rng() % filler.size()];
    caption.push(text + " " + std::to_string(rng() % 100000), true);
    const double noise = std::normal_distribution<double>(0.0, 0.3)(rng);
    amount.push(std::to_string((number_bit ? 1.0 : -1.0) + noise), true);
    kind.push((category_bit ? "k" : "m") + std::to_string(rng() % 2), true);
    label.push(image_bit + text_bit + number_bit + category_bit >= 2 ? "yes" : "no", true);
  }
  Table table;
  table.add_column(Column(shapes.column("photo")));
  for (Column* c : {&caption, &amount, &kind, &label}) table.add_column(std::move(*c));
  table.source = shapes.source;
  write_csv(table, table.source);
  return read_table(table.source);
}

Table only(const Table& table, const std::string& keep) {
  Table out = table;
  for (const char* c : {"photo", "caption", "amount", "kind"})
    if (keep != c) out.drop_column(c);
  return out;
}

double fit_and_score(const std::string& path, const Table& train, const Table& test, int epochs) {
  PredictorOptions options;
  options.label = "label";
  options.path = path;
  options.verbose = false;
  options.hyperparameters = {
      {"model.names", Json::array({"categorical_mlp", "numerical_mlp", "hf_text", "timm_image", "fusion_mlp"})},
      {"model.hf_text.checkpoint_name", "scratch:bert-tiny"},
      {"model.hf_text.text_trivial_aug_maxscale", 0.0},
      {"model.timm_image.checkpoint_name", "resnet18"},
      {"model.timm_image.image_size", 32},
      {"model.timm_image.train_transforms", Json::array({"resize_to_square"})},
      {"model.timm_image.val_transforms", Json::array({"resize_to_square"})},
      {"optim.lr", 1e-3},
      {"optim.max_epochs", epochs},
      {"env.batch_size", 32},
      {"env.per_gpu_batch_size", 32}};
  options.pretrained = false;
  MultiModalPredictor predictor(options);
  predictor.fit(train);
  return predictor.evaluate(test, {"accuracy"}).at("accuracy");
}

TEST(FourModalities, FusionBeatsEachModalityAlone) {
  TempDir dir;
  const Table train = four_modality_table(dir.path().string(), "train", 480, 1);
  const Table test = four_modality_table(dir.path().string(), "test", 200, 2);
  const double fused = fit_and_score(dir.file("all"), train, test, 30);
  std::cout << "four modalities fused: test accuracy " << fused << std::endl;
  EXPECT_GT(fused, 0.85);
  for (const char* column : {"photo", "caption", "amount", "kind"}) {
    // One bit is learned in a few epochs; its ceiling is 69%.
    const double alone = fit_and_score(dir.file(column), only(train, column), only(test, column), 8);
    std::cout << "  " << column << " alone: " << alone << std::endl;
    EXPECT_LT(alone, fused - 0.1) << column;
  }
}

}  // namespace
}  // namespace automm
