// Predictor folders saved by the release before tasks and learners (format
// version 1, tests/fixtures/format_v1) load and predict what that release
// predicted, and save again in the current format with the same predictions.
#include <gtest/gtest.h>

#include <filesystem>

#include "automm/predictor.h"
#include "automm_test_paths.h"
#include "kernels/packed_linear.h"
#include "learners/learner_io.h"
#include "test_util.h"

namespace automm {
namespace {

using automm::testing::cells;

const std::string kFixtures = std::string(AUTOMM_SOURCE_DIR) + "/tests/fixtures/format_v1/";

// Numbers as the old CLI wrote them ("%.9g"): equal to 9 significant digits (or
// to `tolerance` where kernels that round differently compute them).
void expect_same_numbers(const std::vector<std::string>& written, const std::vector<double>& values,
                         const std::string& what, double tolerance = 1e-8) {
  ASSERT_EQ(written.size(), values.size()) << what;
  for (size_t r = 0; r < values.size(); ++r)
    EXPECT_NEAR(std::stod(written[r]), values[r], tolerance * std::max(1.0, std::abs(values[r]))) << what << " row " << r;
}

void expect_same_probabilities(const MultiModalPredictor& predictor, const Table& data, const std::string& name,
                               double tolerance = 1e-8) {
  const Table old = read_table(kFixtures + name + ".proba.csv");
  ASSERT_EQ(old.column_names(), predictor.classes()) << name;
  const torch::Tensor proba = predictor.predict_proba(data).to(torch::kFloat64).contiguous();
  for (int64_t c = 0; c < proba.size(1); ++c) {
    const torch::Tensor column = proba.select(1, c).contiguous();
    expect_same_numbers(cells(old.columns()[c]),
                        std::vector<double>(column.data_ptr<double>(), column.data_ptr<double>() + column.numel()),
                        name + " class " + old.columns()[c].name(), tolerance);
  }
}

// The packed oneDNN matmuls (kernels/packed_linear.h) on or off for a scope.
class PackedLinearScope {
 public:
  explicit PackedLinearScope(bool enabled) : before_(kernels::packed_linear_enabled()) {
    kernels::set_packed_linear_enabled(enabled);
  }
  ~PackedLinearScope() { kernels::set_packed_linear_enabled(before_); }

 private:
  bool before_;
};

struct Fixture {
  std::string name, data, problem_type;
};

class FormatV1 : public ::testing::TestWithParam<Fixture> {};

TEST_P(FormatV1, LoadsAndPredictsAsTheReleaseThatSavedIt) {
  const Fixture& f = GetParam();
  // The release computed with LibTorch's addmm: its numbers are compared exactly with the packed matmuls off.
  const PackedLinearScope addmm_only(false);
  const MultiModalPredictor predictor = MultiModalPredictor::load(kFixtures + f.name);
  EXPECT_EQ(read_json_file(kFixtures + f.name + "/predictor.json").at("format_version"), 1);
  EXPECT_EQ(predictor.problem_type(), f.problem_type);
  Table data = read_table(kFixtures + f.data);
  const Predictions predicted = predictor.predict(data);
  const Table old = read_table(kFixtures + f.name + ".predictions.csv");
  if (predicted.are_classes()) {
    EXPECT_EQ(predicted.labels(), cells(old.columns()[0]));
    expect_same_probabilities(predictor, data, f.name);
  } else {
    expect_same_numbers(cells(old.columns()[0]), predicted.numbers(), f.name);
  }

  // Through the packed matmuls (fused bf16 epilogues round once where addmm rounded
  // twice): the same up to bf16-mixed precision.
  {
    const PackedLinearScope packed(true);
    if (predicted.are_classes()) expect_same_probabilities(predictor, data, f.name, 2e-3);
    else expect_same_numbers(cells(old.columns()[0]), predictor.predict(data).numbers(), f.name, 2e-3);
  }

  // Saved again, it is a current-format folder with the same predictions.
  testing::TempDir dir;
  predictor.save(dir.file("again"));
  EXPECT_EQ(read_json_file(dir.file("again/predictor.json")).at("format_version"), 3);
  EXPECT_TRUE(std::filesystem::exists(dir.file("again/model.safetensors")));
  const MultiModalPredictor again = MultiModalPredictor::load(dir.file("again"));
  EXPECT_TRUE(torch::equal(again.predict(data).values, predicted.values));
}

INSTANTIATE_TEST_SUITE_P(Fixtures, FormatV1,
                         ::testing::Values(Fixture{"binary", "tabular_test.csv", "binary"},
                                           Fixture{"multiclass", "tabular_test.csv", "multiclass"},
                                           Fixture{"regression", "tabular_test.csv", "regression"},
                                           Fixture{"text", "text_test.csv", "binary"}),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace automm
