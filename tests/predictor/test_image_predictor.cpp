// MultiModalPredictor with image columns: timm_image from random weights and
// from a checkpoint folder, missing and corrupted images, save / load.
#include <gtest/gtest.h>

#include <filesystem>

#include "automm/log.h"
#include "automm/predictor.h"
#include "data/image/image_processor.h"
#include "image_test_util.h"
#include "models/image/image_encoder.h"

namespace automm {
namespace {

using automm::testing::cells;
using automm::testing::set_cells;

namespace fs = std::filesystem;
using testing::make_shape_table;
using testing::message_of;
using testing::ScopedEnv;
using testing::TempDir;

// Writes the table next to its images and reads it back, as a user's CSV.
Table as_csv(const Table& table) {
  write_csv(table, table.source);
  return read_table(table.source);
}

PredictorOptions image_options(const std::string& path, Json hyperparameters, bool pretrained = false) {
  PredictorOptions options;
  options.label = "label";
  options.path = path;
  options.verbose = false;
  options.pretrained = pretrained;
  Json base = {{"model.timm_image.checkpoint_name", "resnet18"},
               {"model.timm_image.image_size", 40},
               {"model.timm_image.train_transforms", Json::array({"resize_to_square", "random_horizontal_flip"})},
               {"model.timm_image.val_transforms", Json::array({"resize_to_square"})},
               {"optim.lr", 1e-3},
               {"optim.max_epochs", 20},
               {"env.batch_size", 32},
               {"env.per_gpu_batch_size", 32}};
  if (hyperparameters.is_object()) base.update(hyperparameters);
  options.hyperparameters = base;
  return options;
}

// The issue's acceptance test: a small backbone from random weights learns the
// shape's colour; the saved folder predicts the same.
TEST(ImagePredictor, RandomInitResnetLearnsColourAndReloads) {
  TempDir dir;
  const Table train = as_csv(make_shape_table(dir.path().string(), "train", 480, 1));
  const Table test = as_csv(make_shape_table(dir.path().string(), "test", 160, 2));
  MultiModalPredictor predictor(image_options(dir.file("p"), {}));
  predictor.fit(train);
  EXPECT_EQ(predictor.column_types().at("photo"), "image_path");
  const double accuracy = predictor.evaluate(test, {"accuracy"}).at("accuracy");
  std::cout << "resnet18 (random init) test accuracy " << accuracy << ", fit "
            << predictor.fit_summary().at("total_fit_seconds").get<double>() << " s\n";
  EXPECT_GE(accuracy, 0.9);
  const torch::Tensor expected = predictor.predict_proba(test);
  fs::rename(dir.file("p"), dir.file("moved"));
  EXPECT_TRUE(torch::equal(MultiModalPredictor::load(dir.file("moved")).predict_proba(test), expected));
}

TEST(ImagePredictor, MissingAndCorruptImagesByStrategy) {
  TempDir dir;
  Table train = make_shape_table(dir.path().string(), "train", 60, 3);
  testing::write_file(dir.file("train3.bmp"), "BM not really an image");  // corrupted
  fs::remove(dir.file("train5.bmp"));                                     // missing file
  train = as_csv(train);
  // zero: the fit runs; those rows have no valid image.
  MultiModalPredictor zero(image_options(dir.file("zero"), {{"optim.max_epochs", 1}}));
  zero.fit(train);
  EXPECT_EQ(zero.predict(train).size(), train.num_rows());
  // skip: the rows are dropped from training and validation.
  MultiModalPredictor skip(
      image_options(dir.file("skip"), {{"optim.max_epochs", 1}, {"data.image.missing_value_strategy", "skip"}}));
  skip.fit(train);
  const Json summary = skip.fit_summary();
  EXPECT_EQ(summary.at("num_train_rows").get<int64_t>() + summary.at("num_validation_rows").get<int64_t>() + 2,
            zero.fit_summary().at("num_train_rows").get<int64_t>() +
                zero.fit_summary().at("num_validation_rows").get<int64_t>());
}

TEST(ImagePredictor, PretrainedNeedsWeightsOrNoPretrained) {
  TempDir dir;
  ScopedEnv env({{"HF_HUB_OFFLINE", "1"}, {"HF_HUB_CACHE", dir.file("cache")}, {"HF_HOME", ""}});
  const Table train = as_csv(make_shape_table(dir.path().string(), "train", 40, 4));
  MultiModalPredictor predictor(image_options(dir.file("p"), {{"optim.max_epochs", 1}}, /*pretrained=*/true));
  const std::string message = message_of<std::runtime_error>([&] { predictor.fit(train); });
  EXPECT_TRUE(testing::Contains(message, "timm/resnet18.a1_in1k"));
  EXPECT_TRUE(testing::Contains(message, "--no-pretrained"));
}

// With lr ~ 0 and one backbone, the embedding is the checkpoint's pooled
// features of the val-transformed image: architecture, weights, transforms
// and normalisation all come from the folder and the keys. (ConvNeXt: no
// batch-norm statistics for the training pass to move.)
TEST(ImagePredictor, CheckpointFolderWeightsAreUsed) {
  TempDir dir;
  torch::manual_seed(5);
  auto reference = make_image_encoder("convnext_tiny", 1000);
  StateDict weights;
  for (const auto& item : reference->named_parameters()) weights[item.key()] = item.value().detach().clone();
  for (const auto& item : reference->named_buffers()) weights[item.key()] = item.value().detach().clone();
  fs::create_directories(dir.file("ckpt"));
  save_safetensors(weights, dir.file("ckpt/model.safetensors"));
  testing::write_file(dir.file("ckpt/config.json"),
                      R"({"architecture": "convnext_tiny", "num_classes": 1000, "pretrained_cfg":
                          {"input_size": [3, 64, 64], "interpolation": "bilinear", "crop_pct": 1.0}})");
  const Table train = as_csv(make_shape_table(dir.path().string(), "train", 40, 6));
  MultiModalPredictor predictor(image_options(dir.file("p"),
                                              {{"model.names", Json::array({"timm_image"})},
                                               {"model.timm_image.checkpoint_name", dir.file("ckpt")},
                                               {"model.timm_image.image_size", nullptr},
                                               {"env.precision", "32"},
                                               {"optim.lr", 1e-12},
                                               {"optim.max_epochs", 1}},
                                              /*pretrained=*/true));
  predictor.fit(train);
  const Table rows = train.select_rows({0, 1});
  const torch::Tensor embedding = predictor.extract_embedding(rows);

  ImageProcessorOptions options;
  options.image_size = 64;  // from the folder's pretrained_cfg
  options.mean = {0.485, 0.456, 0.406};
  options.std = {0.229, 0.224, 0.225};
  options.interpolation = "bilinear";
  options.train_transforms = options.val_transforms = {"resize_to_square"};
  const auto processor = ImageProcessor::create("timm_image", {{"photo", true}}, options);
  const ImageBatch batch =
      processor->make_batch(*processor->transform(rows, dir.path().string()), {0, 1}, nullptr);
  reference->eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor expected = reference->forward_features(batch.images.select(1, 0));
  EXPECT_LT((embedding - expected).abs().max().item<double>(), 1e-4);
}

}  // namespace
}  // namespace automm

namespace automm {
namespace {

class LineSink : public LogSink {
 public:
  void message(LogLevel, const std::string& text) override { lines.push_back(text); }
  void progress(const TrainingProgress&) override {}
  void progress_end() override {}
  std::vector<std::string> lines;
};

// data.mixup: a fit with Mixup / CutMix on reaches the accuracy band of one
// without; the log says when it turns on and off; the errors.
TEST(ImagePredictor, MixupFitsAsWellAndSaysWhenItTurnsOff) {
  TempDir dir;
  const Table train = as_csv(make_shape_table(dir.path().string(), "train", 320, 21));
  const Table test = as_csv(make_shape_table(dir.path().string(), "test", 160, 22));
  const Json common = {{"model.names", Json::array({"timm_image"})}, {"optim.max_epochs", 12}};
  MultiModalPredictor plain(image_options(dir.file("plain"), common));
  plain.fit(train);
  Json mixed_keys = common;
  mixed_keys.update({{"data.mixup.turn_on", true}, {"data.mixup.turn_off_epoch", 6}, {"data.mixup.mode", "elem"}});
  PredictorOptions options = image_options(dir.file("mixed"), mixed_keys);
  options.verbose = true;
  auto sink = std::make_shared<LineSink>();
  set_log_sink(sink);
  MultiModalPredictor mixed(options);
  try {
    mixed.fit(train);
  } catch (...) {
    set_log_sink(nullptr);
    throw;
  }
  set_log_sink(nullptr);
  const double plain_accuracy = plain.evaluate(test, {"accuracy"}).at("accuracy");
  const double mixed_accuracy = mixed.evaluate(test, {"accuracy"}).at("accuracy");
  std::cout << "resnet18 shapes: accuracy without mixup " << plain_accuracy << ", with mixup (6 of 12 epochs) "
            << mixed_accuracy << "\n";
  EXPECT_GE(plain_accuracy, 0.85);
  EXPECT_GE(mixed_accuracy, 0.85);
  bool on = false, off = false;
  for (const auto& line : sink->lines) {
    on = on || testing::Contains(line, "data.mixup on until epoch 6");
    off = off || testing::Contains(line, "data.mixup off from epoch 7");
  }
  EXPECT_TRUE(on && off);

  // Regression has no class targets to mix; a table without images has nothing to mix.
  Table numbers = train;
  std::vector<std::string> values(numbers.num_rows(), "1.5");
  for (size_t r = 0; r < numbers.num_rows(); r += 2) values[r] = std::to_string(r * 0.37);
  set_cells(numbers, "label", values);
  MultiModalPredictor regression(image_options(dir.file("r"), {{"data.mixup.turn_on", true}, {"optim.max_epochs", 1}}));
  std::string message = message_of<std::invalid_argument>([&] { regression.fit(numbers); });
  EXPECT_TRUE(testing::Contains(message, "data.mixup") && testing::Contains(message, "regression")) << message;
  PredictorOptions tabular;
  tabular.label = "label";
  tabular.path = dir.file("t");
  tabular.verbose = false;
  tabular.hyperparameters = {{"data.mixup.turn_on", true}, {"optim.max_epochs", 1}};
  MultiModalPredictor no_images(tabular);
  message = message_of<std::invalid_argument>([&] { no_images.fit(testing::make_tabular_table(100, 3)); });
  EXPECT_TRUE(testing::Contains(message, "image")) << message;
}

// Unreadable images are not lost silently: fit and predict say how many rows,
// in which column, and the first paths with the decoder's reason.
TEST(ImagePredictor, UnreadableImagesAreReportedWithTheirReasons) {
  TempDir dir;
  Table train = make_shape_table(dir.path().string(), "train", 60, 7);
  testing::write_file(dir.file("train3.bmp"), "BM not really an image");
  // A PNG whose header claims 100000 x 100000 pixels (valid chunks, an empty IDAT).
  auto chunk = [](const std::string& type_and_data) {
    std::string out;
    const uint32_t length = static_cast<uint32_t>(type_and_data.size() - 4);
    uint32_t crc = 0xffffffffu;
    for (unsigned char c : type_and_data) {
      crc ^= c;
      for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
    }
    crc ^= 0xffffffffu;
    for (uint32_t v : {length}) for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
    out += type_and_data;
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((crc >> shift) & 0xff));
    return out;
  };
  std::string ihdr = "IHDR";
  for (uint32_t v : {100000u, 100000u})
    for (int shift = 24; shift >= 0; shift -= 8) ihdr.push_back(static_cast<char>((v >> shift) & 0xff));
  ihdr += std::string("\x08\x02\0\0\0", 5);
  const std::string png = std::string("\x89PNG\r\n\x1a\n", 8) + chunk(ihdr) + chunk("IDAT") + chunk("IEND");
  testing::write_file(dir.file("huge.png"), png);
  std::vector<std::string> photos = cells(train.column("photo"));
  photos[8] = "huge.png";
  set_cells(train, "photo", photos);
  train = as_csv(train);
  PredictorOptions options = image_options(dir.file("p"), {{"optim.max_epochs", 1}, {"model.names", Json::array({"timm_image"})}});
  options.verbose = true;
  auto sink = std::make_shared<LineSink>();
  set_log_sink(sink);
  MultiModalPredictor predictor(options);
  try {
    predictor.fit(train);
    predictor.predict(train.select_rows({3, 8, 10}));
  } catch (...) {
    set_log_sink(nullptr);
    throw;
  }
  set_log_sink(nullptr);
  std::string report;
  for (const auto& line : sink->lines)
    if (testing::Contains(line, "unreadable image")) report += line + "\n";
  std::cout << report;
  EXPECT_TRUE(testing::Contains(report, "column 'photo'")) << report;
  EXPECT_TRUE(testing::Contains(report, "declares 100000x100000 pixels")) << report;  // checked before allocating
  EXPECT_TRUE(testing::Contains(report, "the data: 2 rows had an unreadable image")) << report;
  EXPECT_TRUE(testing::Contains(report, "train3.bmp") && testing::Contains(report, "huge.png")) << report;
}

}  // namespace
}  // namespace automm
