// COCO detection files read into tables (src/data/image/coco.cpp) and the
// detection pipeline's geometry (src/data/image/detection_data.cpp): classes in
// the file's order, image paths resolved as AutoMM resolves them, boxes that
// cannot train counted in a warning, and every bad entry an error naming it.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>
#include <set>
#include <fstream>

#include <nlohmann/json.hpp>

#include "automm/log.h"
#include "automm/table.h"
#include "data/image/coco.h"
#include "data/image/detection_data.h"
#include "detection_test_util.h"
#include "test_util.h"

namespace automm {
namespace {

using nlohmann::json;
using testing::Contains;
using testing::error_of;
using testing::TempDir;

class WarningSink : public LogSink {
 public:
  void message(LogLevel level, const std::string& text) override {
    if (level == LogLevel::kWarning) lines.push_back(text);
  }
  void progress(const TrainingProgress&) override {}
  std::vector<std::string> lines;
};

struct SinkScope {
  explicit SinkScope(std::shared_ptr<LogSink> sink) { set_log_sink(std::move(sink)); }
  ~SinkScope() { set_log_sink(nullptr); }
};

// A 20 x 10 image and a COCO file around it at <dir>/annotations/f.json.
std::string write_coco(const TempDir& dir, const json& annotations, const json& images = json()) {
  std::filesystem::create_directories(dir.path() / "annotations");
  Image image(20, 10);
  std::ofstream(dir.file("a.png"), std::ios::binary) << encode_png(image.pixels.data(), 20, 10, 3);
  json doc = {{"images", images.is_null() ? json::array({{{"id", 5}, {"file_name", "a.png"}, {"width", 20}, {"height", 10}}})
                                          : images},
              {"categories", {{{"id", 9}, {"name", "cat"}}, {{"id", 2}, {"name", "dog"}}}}};
  if (!annotations.is_null()) doc["annotations"] = annotations;
  const std::string path = dir.file("annotations/f.json");
  std::ofstream(path) << doc.dump();
  return path;
}

json box(int64_t id, int64_t category, std::vector<double> bbox, int crowd = 0) {
  return {{"id", id}, {"image_id", 5}, {"category_id", category}, {"bbox", bbox}, {"iscrowd", crowd}};
}

TEST(CocoTable, ReadsImagesBoxesAndCategoriesInTheFilesOrder) {
  TempDir dir;
  const std::string path = testing::make_coco_dataset(dir.path().string(), "train", 4, 1);
  EXPECT_TRUE(try_read_coco_table(path).has_value());
  const Table table = read_table(path);  // read_table recognises COCO files
  ASSERT_EQ(table.num_rows(), 4u);
  EXPECT_EQ(table.column("image").text(0), std::filesystem::weakly_canonical(dir.path() / "images/train_0.png").string());
  EXPECT_EQ(table.column(kCocoImageIdColumn).text(0), "100");
  const auto categories = parse_coco_categories(table.column(kCocoCategoriesColumn).text(3), "t");
  ASSERT_EQ(categories.size(), 2u);
  EXPECT_EQ(categories[0], std::make_pair(int64_t{7}, std::string("square")));  // the file's order, not the ids'
  EXPECT_EQ(categories[1], std::make_pair(int64_t{3}, std::string("bar")));
  // Boxes [x, y, w, h] -> [x, y, x + w, y + h], categories -> indices.
  const json doc = json::parse(std::ifstream(path));
  const json& first = doc["annotations"][0];
  const auto rois = parse_rois(table.column(kRoisColumn).text(0), "row 0");
  ASSERT_FALSE(rois.empty());
  EXPECT_DOUBLE_EQ(rois[0].x1, first["bbox"][0].get<double>());
  EXPECT_DOUBLE_EQ(rois[0].x2, first["bbox"][0].get<double>() + first["bbox"][2].get<double>());
  EXPECT_EQ(rois[0].label, first["category_id"].get<int>() == 7 ? 0 : 1);
  // JSON Lines files are still tables of rows.
  std::ofstream(dir.file("rows.json")) << "{\"a\": 1}\n{\"a\": 2}\n";
  EXPECT_FALSE(try_read_coco_table(dir.file("rows.json")).has_value());
  EXPECT_EQ(read_table(dir.file("rows.json")).num_rows(), 2u);
}

TEST(CocoTable, BoxesThatCannotTrainAreCountedAndCrowdsKeptForEvaluation) {
  TempDir dir;
  auto sink = std::make_shared<WarningSink>();
  const SinkScope scope(sink);
  const std::string path = write_coco(dir, {box(1, 9, {2, 2, 5, 5}), box(2, 2, {15, 5, 10, 10}),   // clipped
                                            box(3, 9, {3, 3, -2, 4}), box(4, 9, {30, 1, 3, 3}),    // dropped
                                            box(5, 2, {0, 0, 20, 10}, 1)});                        // crowd
  const Table table = read_table(path);
  const auto rois = parse_rois(table.column(kRoisColumn).text(0), "row 0");
  ASSERT_EQ(rois.size(), 2u);
  EXPECT_EQ(rois[0].label, 0);
  EXPECT_DOUBLE_EQ(rois[1].x2, 20.0);  // clipped to the image
  EXPECT_DOUBLE_EQ(rois[1].y2, 10.0);
  const auto gt = parse_coco_gt(table.column(kCocoGtColumn).text(0), "row 0");
  EXPECT_EQ(gt.size(), 5u);  // evaluation sees every annotation
  EXPECT_TRUE(gt[4].iscrowd);
  std::string warnings;
  for (const auto& line : sink->lines) warnings += line + "\n";
  EXPECT_TRUE(Contains(warnings, "1 boxes reach outside their image")) << warnings;
  EXPECT_TRUE(Contains(warnings, "2 boxes are empty or outside their image")) << warnings;
  EXPECT_TRUE(Contains(warnings, "annotation 3 of image 5")) << warnings;
}

TEST(CocoTable, BadEntriesAreErrorsNamingThem) {
  TempDir dir;
  const auto error = [&](const json& annotations, const json& images = json()) {
    return error_of([&] { read_table(write_coco(dir, annotations, images)); });
  };
  EXPECT_TRUE(Contains(error(json::array({box(4, 1, {1, 1, 2, 2})})), "annotation 4 (image 5) names category 1"));
  json stray = box(6, 9, {1, 1, 2, 2});
  stray["image_id"] = 77;
  EXPECT_TRUE(Contains(error(json::array({stray})), "annotation 6 names image 77"));
  EXPECT_TRUE(Contains(error(json::array({box(8, 9, {1, 1, 2})})), "annotation 8 (image 5) needs \"bbox\""));
  json text_box = box(9, 9, {1, 1, 2, 2});
  text_box["bbox"][2] = "wide";
  EXPECT_TRUE(Contains(error(json::array({text_box})), "annotation 9 bbox width must be a number"));
  const std::string missing =
      error(json::array({box(1, 9, {1, 1, 2, 2})}), {{{"id", 3}, {"file_name", "gone.png"}, {"width", 4}, {"height", 4}}});
  EXPECT_TRUE(Contains(missing, "the file of image 3 (\"gone.png\") is missing")) << missing;
  EXPECT_TRUE(Contains(missing, "model.mmdet_image.coco_root")) << missing;
  // No annotations: rows without boxes, for prediction.
  const Table unlabeled = read_table(write_coco(dir, json()));
  EXPECT_FALSE(unlabeled.has_column(kCocoGtColumn));
  EXPECT_EQ(unlabeled.column(kRoisColumn).text(0), "[]");
  // A rois cell that is not boxes.
  EXPECT_TRUE(Contains(error_of([] { parse_rois("[[1, 2, 3]]", "row 2 of t.csv"); }), "row 2 of t.csv, box 0"));
  EXPECT_TRUE(Contains(error_of([] { parse_rois("[[5, 2, 3, 4, 0]]", "row 2"); }), "is empty"));
  EXPECT_TRUE(Contains(error_of([] { parse_rois("[[1, 2, 3, 4, \"cat\"]]", "row 2"); }), "the class must be an index"));
}

TEST(DetectionData, BoxesFollowTheResizeFlipAndPadding) {
  TempDir dir;
  // A 40 x 20 image, bright in [4, 12) x [2, 10): its box must keep covering the bright pixels.
  Image image(40, 20);
  for (int y = 2; y < 10; ++y)
    for (int x = 4; x < 12; ++x) std::fill_n(image.row(y) + x * 3, 3, uint8_t{250});
  std::ofstream(dir.file("i.png"), std::ios::binary) << encode_png(image.pixels.data(), 40, 20, 3);
  DetectionInputOptions o;  // YOLOX's: BGR, no normalisation, padded to a square with 114
  o.image_size = 80;
  o.flip_prob = 1.0;
  std::mt19937_64 rng(0);
  const auto plain = read_detection_item(dir.file("i.png"), {{4, 2, 12, 10, 1}}, false, rng, o, "row 0");
  EXPECT_EQ(plain.pixels.sizes(), (std::vector<int64_t>{3, 80, 80}));
  EXPECT_DOUBLE_EQ(plain.scale_x, 2.0);
  EXPECT_DOUBLE_EQ(plain.scale_y, 2.0);
  EXPECT_TRUE(torch::allclose(plain.boxes, torch::tensor({{8.f, 4.f, 24.f, 20.f}})));
  EXPECT_FLOAT_EQ(plain.pixels[0][70][10].item<float>(), 114.0f);  // padding below the image
  EXPECT_GT(plain.pixels[0][10][15].item<float>(), 200.0f);         // inside the box
  const auto flipped = read_detection_item(dir.file("i.png"), {{4, 2, 12, 10, 1}}, true, rng, o, "row 0");
  EXPECT_TRUE(torch::allclose(flipped.boxes, torch::tensor({{56.f, 4.f, 72.f, 20.f}})));
  EXPECT_GT(flipped.pixels[0][10][64].item<float>(), 200.0f);
  EXPECT_EQ(flipped.labels.item<int64_t>(), 1);
  // YOLOv3's: RGB, normalised, padded after normalisation to a multiple of 32 when collated.
  DetectionInputOptions v3;
  v3.image_size = 80;
  v3.rgb = true;
  v3.mean = {100, 100, 100};
  v3.std = {50, 50, 50};
  v3.pad_after_normalize = true;
  v3.pad_square = false;
  const auto item = read_detection_item(dir.file("i.png"), {}, false, rng, v3, "row 0");
  EXPECT_EQ(item.pixels.sizes(), (std::vector<int64_t>{3, 40, 80}));
  const auto batch = collate_detection_pixels({item}, v3);
  EXPECT_EQ(batch.sizes(), (std::vector<int64_t>{1, 3, 64, 96}));
  EXPECT_FLOAT_EQ(batch[0][0][50][10].item<float>(), 0.0f);
  EXPECT_FLOAT_EQ(batch[0][0][0][0].item<float>(), -2.0f);  // (0 - 100) / 50
  EXPECT_TRUE(Contains(error_of([&] { read_detection_item(dir.file("none.png"), {}, false, rng, o, "row 9"); }),
                       "row 9: cannot read the image"));
}

TEST(DetectionData, HsvJitterMatchesOpenCvsRoundTrip) {
  // No gains: OpenCV's 8-bit RGB -> HSV -> RGB is lossy by at most a few levels; hue shifts rotate the colour.
  Image image(3, 1);
  const uint8_t colours[3][3] = {{200, 40, 40}, {30, 180, 90}, {128, 128, 128}};
  for (int i = 0; i < 3; ++i) std::copy_n(colours[i], 3, image.pixels.data() + i * 3);
  Image same = image;
  jitter_hsv(same, 0, 0, 0);
  for (size_t i = 0; i < image.pixels.size(); ++i) EXPECT_NEAR(same.pixels[i], image.pixels[i], 3);
  Image brighter = image;
  jitter_hsv(brighter, 0, 0, 30);
  EXPECT_EQ(brighter.pixels[6], 158);  // gray: value + 30
  Image shifted = image;
  jitter_hsv(shifted, 60, 0, 0);  // 120 degrees: red -> green
  EXPECT_GT(shifted.pixels[1], shifted.pixels[0]);
}

TEST(DetectionData, YoloV3TrainingExpandsCropsAndDistortsWithItsBoxes) {
  // A 64 x 48 image: one bright square whose box must keep covering bright pixels
  // through Expand, MinIoURandomCrop, the resize, the flip and the photometric distortion.
  BoxedImage sample{Image(64, 48), {{20, 12, 36, 28, 0}}};
  for (int y = 12; y < 28; ++y)
    for (int x = 20; x < 36; ++x) std::fill_n(sample.image.row(y) + x * 3, 3, uint8_t{240});
  DetectionInputOptions o;
  o.image_size = 64;
  o.rgb = true;
  o.pad_square = false;
  o.min_box_size = 0;
  DetectionInputOptions plain = o;
  o.ssd_augment = true;
  std::mt19937_64 rng(3), plain_rng(3);
  int64_t resized = 0, shifted = 0;
  for (int i = 0; i < 40; ++i) {
    const auto item = prepare_detection_item(sample, true, rng, o);
    const auto reference = prepare_detection_item(sample, true, plain_rng, plain);
    ASSERT_EQ(item.boxes.size(0), 1);  // the only box's centre stays in every crop
    const auto b = item.boxes[0];
    const int64_t h = item.pixels.size(1), w = item.pixels.size(2);
    EXPECT_GE(b[0].item<float>(), 0.f);
    EXPECT_LE(b[2].item<float>(), float(w));
    EXPECT_LE(b[3].item<float>(), float(h));
    // The box's centre pixel is the square's (bright, whatever the distortion did to it) .
    const auto cx = static_cast<int64_t>((b[0].item<float>() + b[2].item<float>()) / 2);
    const auto cy = static_cast<int64_t>((b[1].item<float>() + b[3].item<float>()) / 2);
    EXPECT_GT(item.pixels.select(1, cy).select(1, cx).mean().item<float>(),
              item.pixels.select(1, 0).select(1, 0).mean().item<float>() - 1e-3f);
    resized += item.pixels.sizes() != reference.pixels.sizes();
    shifted += !torch::allclose(item.boxes, reference.boxes);
  }
  // The transforms ran: sizes and boxes moved in some draws (a control that the options matter).
  EXPECT_GT(resized, 0);
  EXPECT_GT(shifted, 10);
}

TEST(DetectionData, BatchRandomResizeKeepsTheFirstSizeThenDrawsMultiplesOf32) {
  BatchRandomResize resize(96, 160, /*interval=*/2);
  std::mt19937_64 rng(0);
  const auto pixels = torch::rand({2, 3, 128, 128});
  std::vector<torch::Tensor> boxes = {torch::tensor({{16.f, 32.f, 64.f, 96.f}}), torch::zeros({0, 4})};
  EXPECT_TRUE(torch::equal(resize.apply(pixels, boxes, rng), pixels));  // the first batch's own size
  EXPECT_TRUE(torch::equal(boxes[0], torch::tensor({{16.f, 32.f, 64.f, 96.f}})));
  std::set<int64_t> sizes;
  for (int i = 0; i < 40; ++i) {
    std::vector<torch::Tensor> b = {torch::tensor({{16.f, 32.f, 64.f, 96.f}})};
    const auto out = resize.apply(pixels, b, rng);
    const int64_t side = out.size(2);
    EXPECT_EQ(out.size(3), side);  // square batches stay square
    EXPECT_EQ(side % 32, 0);
    EXPECT_GE(side, 96);
    EXPECT_LE(side, 160);
    EXPECT_TRUE(torch::allclose(b[0], torch::tensor({{16.f, 32.f, 64.f, 96.f}}) * (side / 128.0)));
    sizes.insert(side);
  }
  EXPECT_EQ(sizes, (std::set<int64_t>{96, 128, 160}));
  EXPECT_THROW(BatchRandomResize(10, 12), std::invalid_argument);
}

}  // namespace
}  // namespace automm
