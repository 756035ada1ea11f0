// Object detection end to end: a yolox_nano fit from random weights on a
// generated COCO dataset, predictions in each image's own pixels, COCO mAP from
// evaluate, save / load, output files, an mmdet checkpoint (mmdet's and
// Megvii's names) read into the network, and the errors of bad settings.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "automm/predictor.h"
#include "automm/table.h"
#include "automm/weights_io.h"
#include "data/image/coco.h"
#include "data/image/detection_files.h"
#include "detection_test_util.h"
#include "models/detection/detector.h"
#include "models/detection/mmdet_checkpoint.h"
#include "test_util.h"

namespace automm {
namespace {

using testing::Contains;
using testing::error_of;
using testing::TempDir;

PredictorOptions nano_options(const std::string& path, Json extra = Json::object()) {
  PredictorOptions options;
  options.problem_type = "object_detection";
  options.path = path;
  options.verbose = false;
  options.pretrained = false;
  Json h = {{"model.mmdet_image.checkpoint_name", "yolox_nano"},
            {"model.mmdet_image.image_size", 64},
            {"optim.lr", 3e-3},
            {"optim.lr_schedule", "cosine_decay"},
            {"optim.gradient_clip_val", 10.0},
            {"optim.max_epochs", 30},
            {"model.mmdet_image.num_last_epochs", 10},
            {"env.batch_size", 8},
            {"env.per_gpu_batch_size", 8},
            {"env.inference_batch_size_ratio", 2}};
  if (extra.is_object()) h.update(extra);
  options.hyperparameters = h;
  return options;
}

TEST(DetectionLearner, YoloxNanoLearnsBoxesFromRandomWeights) {
  TempDir dir;
  const std::string train = testing::make_coco_dataset(dir.path().string(), "train", 64, 1);
  const std::string test = testing::make_coco_dataset(dir.path().string(), "test", 16, 2);
  MultiModalPredictor predictor(nano_options(dir.file("model")));
  FitOptions fit;
  fit.tuning_data = read_table(test);
  predictor.fit(read_table(train), fit);
  const Json summary = predictor.fit_summary();
  const auto& log = summary.at("log");
  ASSERT_GE(log.size(), 2u);
  const auto total = [](const Json& e) {
    return e.at("loss_cls").get<double>() + e.at("loss_bbox").get<double>() + e.at("loss_obj").get<double>();
  };
  EXPECT_LT(total(log.back()), 0.8 * total(log.front())) << summary.dump();
  EXPECT_TRUE(log.back().contains("loss_l1"));  // the last epochs add YOLOX's L1 loss
  EXPECT_FALSE(log.front().contains("loss_l1"));

  const auto scores = predictor.evaluate(read_table(test), {});
  EXPECT_EQ(scores.size(), 12u);
  RecordProperty("map_50", std::to_string(scores.at("map_50")));
  EXPECT_GT(scores.at("map_50"), 0.4) << summary.dump();
  EXPECT_GE(scores.at("map_50"), scores.at("map"));

  const Table test_table = read_table(test);
  const Predictions predictions = predictor.predict(test_table);
  ASSERT_TRUE(predictions.are_detections());
  ASSERT_EQ(predictions.size(), 16u);
  EXPECT_EQ(predictions.classes, (std::vector<std::string>{"square", "bar"}));
  EXPECT_EQ(predictions.category_ids, (std::vector<int64_t>{7, 3}));
  // Boxes in the image's own pixels: within (about) the image.
  const int64_t width = static_cast<int64_t>(test_table.column("width").number(0).value());
  const auto& first = predictions.detections[0];
  ASSERT_GT(first.boxes.size(0), 0);
  EXPECT_LE(first.boxes.select(1, 2).max().item<float>(), width * 1.2f);
  EXPECT_TRUE(torch::equal(first.scores, std::get<0>(first.scores.sort(0, true))));  // best first

  // Save / load: the same boxes; xywh output.
  const auto loaded = MultiModalPredictor::load(dir.file("model"));
  const Predictions again = loaded.predict(test_table);
  EXPECT_TRUE(torch::allclose(again.detections[0].boxes, first.boxes, 1e-4, 1e-4));
  EXPECT_NEAR(loaded.evaluate(test_table, {"map_50"}).at("map_50"), scores.at("map_50"), 1e-9);

  // Output files: COCO results with the file's category ids, a CSV, drawings.
  const size_t boxes = write_coco_results(test_table, predictions, dir.file("preds.json"));
  const Json results = Json::parse(std::ifstream(dir.file("preds.json")));
  ASSERT_EQ(results.size(), boxes);
  const int64_t category = results[0].at("category_id").get<int64_t>();
  EXPECT_TRUE(category == 7 || category == 3);
  EXPECT_EQ(results[0].at("image_id").get<int64_t>(), 100);
  EXPECT_EQ(write_detection_csv(test_table, "image", predictions, dir.file("preds.csv")), boxes);
  draw_detection_files(test_table, "image", predictions, dir.file("drawn"));
  EXPECT_TRUE(std::filesystem::exists(dir.file("drawn/test_0.png")));
}

TEST(DetectionLearner, TablesOfBoxesAndBadSettings) {
  TempDir dir;
  const std::string train = testing::make_coco_dataset(dir.path().string(), "train", 12, 3);
  // The same data as a CSV of image paths and rois.
  const Table coco = read_table(train);
  Table table;
  table.add_column(testing::make_column("image", [&] {
    std::vector<std::string> v;
    for (size_t r = 0; r < coco.num_rows(); ++r) v.push_back(coco.column("image").text(r));
    return v;
  }()));
  table.add_column(testing::make_column("rois", [&] {
    std::vector<std::string> v;
    for (size_t r = 0; r < coco.num_rows(); ++r) v.push_back(coco.column(kRoisColumn).text(r));
    return v;
  }()));
  MultiModalPredictor predictor(nano_options(dir.file("m"), {{"optim.max_epochs", 1}, {"model.mmdet_image.output_bbox_format", "xywh"}}));
  predictor.fit(table, FitOptions());
  EXPECT_EQ(predictor.classes(), (std::vector<std::string>{"0", "1"}));
  const Predictions p = predictor.predict(table);
  EXPECT_EQ(p.box_format, "xywh");
  EXPECT_TRUE(Contains(error_of([&] { predictor.predict_proba(table); }), "predict_proba is not available"));
  EXPECT_TRUE(Contains(error_of([&] { predictor.extract_embedding(table); }), "extract_embedding is not available"));

  const auto fit_error = [&](Json extra) {
    MultiModalPredictor bad(nano_options(dir.file("bad"), extra));
    return error_of([&] { bad.fit(table, FitOptions()); });
  };
  EXPECT_TRUE(Contains(fit_error({{"model.mmdet_image.checkpoint_name", "faster_rcnn"}}), "known: yolov3_mobilenetv2"));
  EXPECT_TRUE(Contains(fit_error({{"model.mmdet_image.image_size", 100}}), "multiple of 32"));
  EXPECT_TRUE(Contains(fit_error({{"optim.lr_choice", "layerwise_decay"}}), "two_stages"));
  EXPECT_TRUE(Contains(fit_error({{"model.hf_text.checkpoint_name", "x"}}), "model.hf_text.checkpoint_name"));
  {
    auto options = nano_options(dir.file("pre"));
    options.pretrained = true;
    testing::ScopedEnv home({{"HOME", dir.file("home")}, {"TORCH_HOME", ""}});
    MultiModalPredictor pretrained(options);
    const std::string message = error_of([&] { pretrained.fit(table, FitOptions()); });
    EXPECT_TRUE(Contains(message, "yolox_nano.pth")) << message;
    EXPECT_TRUE(Contains(message, "--no-pretrained")) << message;
  }
  // Object detection keys on a classification table are refused.
  PredictorOptions classify;
  classify.label = "label";
  classify.path = dir.file("c");
  classify.hyperparameters = {{"model.mmdet_image.score_thr", 0.3}};
  Table labeled = table;
  labeled.add_column(testing::make_column("label", std::vector<std::string>(table.num_rows(), "a")));
  EXPECT_TRUE(Contains(error_of([&] { MultiModalPredictor(classify).fit(labeled, FitOptions()); }),
                       "is for problem_type object_detection"));
}

// Every detection key changes what the fit or its predictions do; two equal
// fits are equal (the control that makes each difference mean something).
TEST(DetectionLearner, KeysChangeTheFitOrItsPredictions) {
  TempDir dir;
  const Table train = read_table(testing::make_coco_dataset(dir.path().string(), "train", 16, 7));
  int run = 0;
  const auto fit = [&](Json extra) {
    extra["optim.max_epochs"] = 2;
    if (!extra.contains("model.mmdet_image.num_last_epochs")) extra["model.mmdet_image.num_last_epochs"] = 1;
    const std::string path = dir.file("m" + std::to_string(run++));
    MultiModalPredictor predictor(nano_options(path, extra));
    FitOptions options;
    options.tuning_data = train;
    predictor.fit(train, options);
    return std::make_pair(predictor.predict(train), path);
  };
  const auto boxes = [](const Predictions& p) {
    int64_t n = 0;
    for (const auto& d : p.detections) n += d.boxes.size(0);
    return n;
  };
  const auto weights = [](const std::string& path) { return load_safetensors(path + "/model.safetensors"); };
  const auto [base, base_path] = fit({{"model.mmdet_image.score_thr", 0.0}});
  const auto [again, again_path] = fit({{"model.mmdet_image.score_thr", 0.0}});
  ASSERT_EQ(boxes(base), boxes(again));
  ASSERT_TRUE(torch::equal(base.detections[0].boxes, again.detections[0].boxes));
  ASSERT_GT(boxes(base), 16);
  // Post-processing.
  EXPECT_LT(boxes(fit({{"model.mmdet_image.score_thr", 0.5}}).first), boxes(base));
  for (const auto& d : fit({{"model.mmdet_image.score_thr", 0.0}, {"model.mmdet_image.max_per_img", 1}}).first.detections)
    EXPECT_LE(d.boxes.size(0), 1);
  EXPECT_NE(boxes(fit({{"model.mmdet_image.score_thr", 0.0}, {"model.mmdet_image.nms_iou_thr", 0.1}}).first),
            boxes(base));
  // Training.
  // (The last epoch's losses: with map 0 in both epochs, top-1 "best" keeps the first epoch's weights.)
  const auto last_losses = [](const std::string& path) {
    Json log = Json::parse(std::ifstream(path + "/predictor.json")).at("fit_summary").at("log");
    return log.back().at("loss_obj").get<double>() + log.back().at("loss_bbox").get<double>();
  };
  const auto base_weights = weights(base_path);
  const auto changes = [&](Json extra) {
    extra["model.mmdet_image.score_thr"] = 0.0;
    return last_losses(fit(extra).second) != last_losses(base_path);
  };
  EXPECT_FALSE(changes({}));
  EXPECT_TRUE(changes({{"model.mmdet_image.multi_image_mix", false}}));
  EXPECT_TRUE(changes({{"model.mmdet_image.num_last_epochs", 0}}));
  EXPECT_TRUE(changes({{"optim.lr_mult", 1}}));
  // frozen_layers: the backbone keeps its initial weights and batch-norm statistics.
  const auto frozen = weights(fit({{"model.mmdet_image.frozen_layers", Json::array({"backbone"})}}).second);
  torch::manual_seed(0);  // as the fit, before it builds the network
  const auto initial = detection::make_detector(detection::detector_spec("yolox_nano", 2));
  for (const auto& item : initial->named_parameters())
    if (item.key().rfind("backbone.", 0) == 0)
      EXPECT_TRUE(torch::equal(frozen.at(item.key()), item.value())) << item.key();
  EXPECT_TRUE(torch::equal(frozen.at("backbone.stem.conv.bn.running_mean"),
                           torch::zeros_like(frozen.at("backbone.stem.conv.bn.running_mean"))));
  EXPECT_FALSE(torch::equal(base_weights.at("backbone.stem.conv.conv.weight"),
                            initial->named_parameters()["backbone.stem.conv.conv.weight"]));
  // Keys detection does not apply are refused by name.
  MultiModalPredictor precision(nano_options(dir.file("p"), {{"env.precision", "bf16-mixed"}}));
  EXPECT_TRUE(Contains(error_of([&] { precision.fit(train, FitOptions()); }), "env.precision is not used"));
}

}  // namespace
}  // namespace automm
