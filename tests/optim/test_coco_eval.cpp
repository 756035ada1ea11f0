// COCO box mAP (src/optim/coco_eval.cpp) against tests/optim/coco_eval_reference.py,
// a numpy transcription of pycocotools' loadRes + COCOeval (bbox), run by
// /usr/bin/python3. The cases are generated here, written to a json file, and
// the script's 12 stats per case read back; they must agree to 1e-12 (they are
// expected bit-identical). Small hand-checked cases need no reference.
#include <gtest/gtest.h>

#include <cfloat>
#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#ifndef AUTOMM_SOURCE_DIR
#include "automm_test_paths.h"
#endif

#include <nlohmann/json.hpp>

#include "optim/coco_eval.h"
#include "test_util.h"

namespace automm {
namespace {

using testing::TempDir;

constexpr double kTolerance = 1e-12;

struct CocoCase {
  std::string name;
  std::vector<int64_t> images, categories;
  std::vector<CocoAnnotation> annotations;
  std::vector<CocoDetection> detections;
  std::array<double, 12> stats() const {
    return coco_bbox_stats(images, categories, annotations, detections);
  }
};

// ---- Generated cases. Raw mt19937 draws only (distributions differ between
// standard libraries), so the cases are the same everywhere.

class Draw {
 public:
  explicit Draw(uint32_t seed) : engine_(seed) {}
  double uniform() { return static_cast<double>(engine_() >> 5) / 134217728.0; }  // [0, 1), 27 bits
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  int64_t integer(int64_t lo, int64_t hi) { return lo + static_cast<int64_t>(engine_() % (hi - lo + 1)); }
  bool chance(double p) { return uniform() < p; }

 private:
  std::mt19937 engine_;
};

struct Generator {
  int max_gt_per_category = 4;
  int detections_per_gt = 3;
  int false_positives = 3;
  double crowd_chance = 0.1;
  bool integer_coordinates = false;
};

// Boxes of all three area ranges, `area` fields that differ from w * h (and
// some exactly on the 32^2 / 96^2 bounds), crowds, jittered detections of each
// ground truth (IoU from ~1 down to 0), false positives, scores on a 1/20 grid
// (ties), detections of categories an image has no ground truth of.
void generate(CocoCase& c, Draw& draw, const Generator& g) {
  int64_t next_id = static_cast<int64_t>(c.annotations.size()) + 1;
  auto coordinate = [&](double v) { return g.integer_coordinates ? std::round(v) : std::round(v * 8) / 8; };
  auto score = [&] { return draw.integer(1, 20) / 20.0; };
  for (int64_t image : c.images) {
    for (int64_t category : c.categories) {
      if (category == c.categories.back()) continue;  // the last category has no ground truth
      const int64_t count = draw.integer(0, g.max_gt_per_category);
      for (int64_t n = 0; n < count; ++n) {
        CocoAnnotation a;
        a.id = next_id++;
        a.image_id = image;
        a.category_id = category;
        const double size = std::vector<double>{draw.uniform(3, 30), draw.uniform(33, 95),
                                                draw.uniform(97, 220)}[draw.integer(0, 2)];
        a.x = coordinate(draw.uniform(0, 400));
        a.y = coordinate(draw.uniform(0, 300));
        a.w = coordinate(size * draw.uniform(0.6, 1.4));
        a.h = coordinate(size * draw.uniform(0.6, 1.4));
        const int64_t area_kind = draw.integer(0, 5);
        a.area = area_kind == 0   ? 1024
                 : area_kind == 1 ? 9216
                 : area_kind == 2 ? a.w * a.h
                                  : a.w * a.h * draw.uniform(0.5, 1.0);  // a polygon's area
        a.iscrowd = draw.chance(g.crowd_chance);
        c.annotations.push_back(a);
        for (int k = 0; k < g.detections_per_gt; ++k) {
          const double jitter = draw.uniform(0, 0.5) * (k + 1) / g.detections_per_gt;
          CocoDetection d;
          d.image_id = image;
          d.category_id =
              draw.chance(0.9) ? category : c.categories[draw.integer(0, c.categories.size() - 1)];
          d.x = coordinate(a.x + a.w * draw.uniform(-jitter, jitter));
          d.y = coordinate(a.y + a.h * draw.uniform(-jitter, jitter));
          d.w = coordinate(a.w * (1 + draw.uniform(-jitter, jitter)));
          d.h = coordinate(a.h * (1 + draw.uniform(-jitter, jitter)));
          d.score = score();
          c.detections.push_back(d);
        }
      }
    }
    for (int k = 0; k < g.false_positives; ++k) {
      CocoDetection d;
      d.image_id = image;
      d.category_id = c.categories[draw.integer(0, c.categories.size() - 1)];
      d.x = coordinate(draw.uniform(0, 400));
      d.y = coordinate(draw.uniform(0, 300));
      d.w = coordinate(draw.uniform(2, 150));
      d.h = coordinate(draw.uniform(2, 150));
      d.score = score();
      c.detections.push_back(d);
    }
  }
}

// The case with every special row: unsorted image ids, an id-0 annotation, an
// annotation on an image outside the image list, detections of a category
// outside the list, an image with 130 detections of one category, a box whose
// w * h is exactly 32^2.
CocoCase mixed_case() {
  CocoCase c;
  c.name = "mixed";
  c.images = {7, 3, 11, 20, 5, 42, 8, 13, 2, 30, 31, 9};
  c.categories = {5, 1, 2, 9};  // 9: no ground truth
  Draw draw(7);
  Generator g;
  g.max_gt_per_category = 5;
  generate(c, draw, g);
  c.annotations.push_back({0, 3, 1, 10, 10, 40, 40, 1600, false});         // id 0
  c.annotations.push_back({100000, 999, 1, 10, 10, 40, 40, 1600, false});  // image 999 is not listed
  c.detections.push_back({3, 1, 10, 10, 40, 40, 0.95});                    // matches id 0
  c.detections.push_back({3, 77, 10, 10, 40, 40, 0.99});                   // category 77 is not listed
  c.detections.push_back({11, 2, 50, 50, 32, 32, 0.5});                    // area exactly 32^2
  c.annotations.push_back({100001, 11, 2, 51, 50, 32, 32, 1024, false});
  // The control: the swapped case exchanges these two scores.
  c.annotations.push_back({100002, 20, 2, 200, 100, 60, 50, 3000, false});
  c.detections.push_back({20, 2, 200, 100, 60, 50, 0.97});  // a perfect match
  c.detections.push_back({20, 2, 5, 250, 60, 50, 0.13});    // a false positive
  for (int k = 0; k < 130; ++k)
    c.detections.push_back({42, 1, draw.uniform(0, 300), draw.uniform(0, 200), draw.uniform(5, 120),
                            draw.uniform(5, 120), draw.integer(1, 10) / 10.0});
  return c;
}

CocoCase swapped_case() {
  CocoCase c = mixed_case();
  c.name = "mixed_swapped";
  for (auto& d : c.detections)
    if (d.image_id == 20 && d.category_id == 2 && (d.score == 0.97 || d.score == 0.13))
      d.score = d.score == 0.97 ? 0.13 : 0.97;
  return c;
}

CocoCase medium_case() {
  CocoCase c;
  c.name = "medium";
  for (int64_t i = 0; i < 120; ++i) c.images.push_back(1000 + 3 * i);
  c.categories = {1, 2, 3, 4, 5, 6, 7};
  Draw draw(11);
  Generator g;
  g.detections_per_gt = 4;
  g.false_positives = 12;
  g.integer_coordinates = true;
  generate(c, draw, g);
  return c;
}

std::vector<CocoCase> reference_cases() {
  std::vector<CocoCase> cases = {mixed_case(), swapped_case(), medium_case()};
  CocoCase empty = mixed_case();
  empty.name = "empty_detections";
  empty.detections.clear();
  cases.push_back(empty);
  CocoCase no_gt = mixed_case();
  no_gt.name = "no_ground_truth";
  no_gt.annotations.clear();
  cases.push_back(no_gt);
  CocoCase half_crowd = mixed_case();
  half_crowd.name = "half_crowd";
  for (size_t i = 0; i < half_crowd.annotations.size(); i += 2) half_crowd.annotations[i].iscrowd = true;
  cases.push_back(half_crowd);
  CocoCase unknown = mixed_case();
  unknown.name = "unknown_image";
  unknown.detections.push_back({12345, 1, 0, 0, 10, 10, 0.5});
  cases.push_back(unknown);
  return cases;
}

// ---- The reference, run once per test process.

struct Reference {
  std::string skip_reason, error;
  std::vector<CocoCase> cases;
  nlohmann::json out;
};

nlohmann::json case_json(const CocoCase& c) {
  nlohmann::json annotations = nlohmann::json::array(), detections = nlohmann::json::array();
  for (const auto& a : c.annotations)
    annotations.push_back({{"id", a.id},
                           {"image_id", a.image_id},
                           {"category_id", a.category_id},
                           {"bbox", {a.x, a.y, a.w, a.h}},
                           {"area", a.area},
                           {"iscrowd", a.iscrowd ? 1 : 0}});
  for (const auto& d : c.detections)
    detections.push_back({{"image_id", d.image_id},
                          {"category_id", d.category_id},
                          {"bbox", {d.x, d.y, d.w, d.h}},
                          {"score", d.score}});
  return {{"name", c.name},
          {"images", c.images},
          {"categories", c.categories},
          {"annotations", annotations},
          {"detections", detections}};
}

const Reference& reference() {
  static const std::unique_ptr<Reference> ref = [] {
    auto r = std::make_unique<Reference>();
    r->cases = reference_cases();
    r->skip_reason =
        testing::python_reference_missing("numpy", "python3-numpy", "the COCO mAP reference tests");
    if (!r->skip_reason.empty()) return r;
    nlohmann::json in = {{"cases", nlohmann::json::array()}};
    for (const auto& c : r->cases) in["cases"].push_back(case_json(c));
    TempDir dir;
    std::ofstream(dir.file("in.json")) << in.dump();
    r->error = testing::run_reference_command("/usr/bin/python3 '" + std::string(AUTOMM_SOURCE_DIR) +
                                                  "/tests/optim/coco_eval_reference.py' '" +
                                                  dir.file("in.json") + "' '" + dir.file("out.json") + "'",
                                              dir.file("reference.log"));
    if (!r->error.empty()) return r;
    try {
      std::ifstream file(dir.file("out.json"));
      r->out = nlohmann::json::parse(file);
    } catch (const std::exception& e) {
      r->error = std::string("reading the reference failed: ") + e.what();
    }
    return r;
  }();
  return *ref;
}

#define REQUIRE_REFERENCE(ref)                                   \
  const Reference& ref = reference();                            \
  if (!ref.skip_reason.empty()) GTEST_SKIP() << ref.skip_reason; \
  ASSERT_TRUE(ref.error.empty()) << ref.error

const CocoCase& case_named(const Reference& ref, const std::string& name) {
  for (const auto& c : ref.cases)
    if (c.name == name) return c;
  throw std::runtime_error("no case " + name);
}

// Max |ours - reference| over the 12 stats of a case.
double compare_with_reference(const Reference& ref, const std::string& name) {
  const auto ours = case_named(ref, name).stats();
  const auto& expected = ref.out.at(name).at("stats");
  EXPECT_EQ(expected.size(), 12u);
  double worst = 0;
  for (size_t i = 0; i < 12; ++i) {
    const double theirs = expected.at(i).get<double>();
    EXPECT_NEAR(ours[i], theirs, kTolerance) << coco_metric_names()[i];
    worst = std::max(worst, std::abs(ours[i] - theirs));
  }
  return worst;
}

TEST(CocoEval, MatchesPycocotoolsOnGeneratedCases) {
  REQUIRE_REFERENCE(ref);
  for (const std::string name : {"mixed", "mixed_swapped", "medium", "empty_detections", "half_crowd"}) {
    SCOPED_TRACE(name);
    const double worst = compare_with_reference(ref, name);
    std::cout << name << ": max |diff| " << worst << "\n";
  }
}

TEST(CocoEval, GeneratedCasesExerciseEveryStat) {
  REQUIRE_REFERENCE(ref);
  // Every stat has ground truth (not -1) and is strictly between 0 and 1, so a
  // wrong area range, maxDet or threshold would show.
  for (const std::string name : {"mixed", "medium"}) {
    const auto stats = case_named(ref, name).stats();
    for (size_t i = 0; i < 12; ++i) {
      EXPECT_GT(stats[i], 0) << name << " " << coco_metric_names()[i];
      EXPECT_LT(stats[i], 1) << name << " " << coco_metric_names()[i];
    }
  }
}

TEST(CocoEval, SwappingTwoScoresChangesTheResult) {
  REQUIRE_REFERENCE(ref);
  const auto before = case_named(ref, "mixed").stats(), after = case_named(ref, "mixed_swapped").stats();
  EXPECT_GT(std::abs(before[0] - after[0]), 1e-4);
  const double theirs_before = ref.out.at("mixed").at("stats").at(0).get<double>();
  const double theirs_after = ref.out.at("mixed_swapped").at("stats").at(0).get<double>();
  EXPECT_GT(std::abs(theirs_before - theirs_after), 1e-4);
}

TEST(CocoEval, NoGroundTruthGivesMinusOne) {
  REQUIRE_REFERENCE(ref);
  compare_with_reference(ref, "no_ground_truth");
  for (double v : case_named(ref, "no_ground_truth").stats()) EXPECT_EQ(v, -1);
}

TEST(CocoEval, UnknownImageIdThrowsAsLoadResAsserts) {
  REQUIRE_REFERENCE(ref);
  EXPECT_TRUE(
      testing::Contains(ref.out.at("unknown_image").at("error").get<std::string>(), "AssertionError"));
  const std::string message =
      testing::message_of<std::invalid_argument>([&] { case_named(ref, "unknown_image").stats(); });
  EXPECT_TRUE(testing::Contains(message, "image id 12345"));
}

// ---- Hand-checked cases

TEST(CocoEval, OnePerfectDetection) {
  const auto stats =
      coco_bbox_stats({1}, {1}, {{1, 1, 1, 10, 10, 50, 50, 2500, false}}, {{1, 1, 10, 10, 50, 50, 0.9}});
  // Precision is tp / (tp + fp + np.spacing(1)): a perfect AP is 1 - 2^-52, recall exactly 1.
  const double p = 1 / (1 + DBL_EPSILON);
  const std::array<double, 12> expected = {p, p, p, -1, p, -1, 1, 1, 1, -1, 1, -1};  // a medium box
  for (size_t i = 0; i < 12; ++i) EXPECT_NEAR(stats[i], expected[i], 4e-16) << coco_metric_names()[i];
  EXPECT_LT(stats[0], 1);  // numpy's mean of 1 - 2^-52 rounds, but never up to 1
}

TEST(CocoEval, NoDetectionsGiveZero) {
  const auto stats = coco_bbox_stats({1, 2}, {1}, {{1, 1, 1, 10, 10, 50, 50, 2500, false}}, {});
  const std::array<double, 12> expected = {0, 0, 0, -1, 0, -1, 0, 0, 0, -1, 0, -1};
  for (size_t i = 0; i < 12; ++i) EXPECT_EQ(stats[i], expected[i]) << coco_metric_names()[i];
}

TEST(CocoEval, FalsePositiveFirstHalvesThePrecision) {
  // Two ground truths; a higher-scored false positive, then one exact match:
  // recall 1/2 at precision 1/2 -> 51 of the 101 recall thresholds at 0.5.
  const std::vector<CocoAnnotation> gt = {{1, 1, 1, 10, 10, 50, 50, 2500, false},
                                          {2, 1, 1, 200, 200, 50, 50, 2500, false}};
  const std::vector<CocoDetection> dt = {{1, 1, 100, 100, 40, 40, 0.9}, {1, 1, 10, 10, 50, 50, 0.8}};
  const auto stats = coco_bbox_stats({1}, {1}, gt, dt);
  EXPECT_NEAR(stats[0], 25.5 / 101, 1e-15);
  EXPECT_NEAR(stats[1], 25.5 / 101, 1e-15);
  EXPECT_EQ(stats[6], 0);    // maxDets 1 keeps only the false positive
  EXPECT_EQ(stats[8], 0.5);  // recall 1/2
}

TEST(CocoEval, CrowdAbsorbsDetectionsWithoutCounting) {
  // A crowd region (union = the detection's area) makes the detections inside it
  // ignored instead of false positives: AP stays 1.
  const std::vector<CocoAnnotation> gt = {{1, 1, 1, 10, 10, 50, 50, 2500, false},
                                          {2, 1, 1, 100, 100, 200, 200, 40000, true}};
  const std::vector<CocoDetection> dt = {
      {1, 1, 110, 110, 30, 30, 0.95}, {1, 1, 150, 150, 30, 30, 0.9}, {1, 1, 10, 10, 50, 50, 0.8}};
  EXPECT_NEAR(coco_bbox_stats({1}, {1}, gt, dt)[0], 1, 1e-15);
  auto plain = gt;
  plain[1].iscrowd = false;  // now they are false positives ranked first
  EXPECT_LT(coco_bbox_stats({1}, {1}, plain, dt)[0], 0.5);
}

TEST(CocoEval, DuplicateAnnotationIdsThrow) {
  const std::vector<CocoAnnotation> gt = {{4, 1, 1, 10, 10, 50, 50, 2500, false},
                                          {4, 1, 1, 0, 0, 5, 5, 25, false}};
  EXPECT_TRUE(testing::Contains(
      testing::message_of<std::invalid_argument>([&] { coco_bbox_stats({1}, {1}, gt, {}); }), "id 4"));
}

TEST(CocoEval, ThousandsOfImagesTakeWellUnderASecondOrTwo) {
  CocoCase c;
  for (int64_t i = 0; i < 3000; ++i) c.images.push_back(i);
  for (int64_t k = 1; k <= 21; ++k) c.categories.push_back(k);
  Draw draw(5);
  Generator g;
  g.max_gt_per_category = 1;  // ~10 ground truths, ~100 detections per image
  g.detections_per_gt = 6;
  g.false_positives = 40;
  generate(c, draw, g);
  const auto start = std::chrono::steady_clock::now();
  const auto stats = c.stats();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << c.images.size() << " images, " << c.detections.size() << " detections, "
            << c.annotations.size() << " ground truths: " << seconds << " s, map " << stats[0] << "\n";
  EXPECT_LT(seconds, 5.0);
}

}  // namespace
}  // namespace automm
