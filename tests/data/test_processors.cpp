// Tests of the label, numerical and categorical processors.
#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "automm/config.h"
#include "data/processors.h"
#include "test_util.h"

namespace automm {
namespace {

using automm::testing::Contains;
using automm::testing::message_of;

using automm::testing::make_column;

Column labels(const std::vector<std::string>& cells) { return make_column("target", cells); }

std::vector<int64_t> to_ints(const torch::Tensor& t) {
  auto c = t.contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

std::vector<double> to_doubles(const torch::Tensor& t) {
  auto c = t.to(torch::kFloat64).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

void expect_near_all(const std::vector<double>& actual, const std::vector<double>& expected,
                     double tol = 1e-5) {
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < actual.size(); ++i) EXPECT_NEAR(actual[i], expected[i], tol) << "index " << i;
}

Table one_column_table(const std::string& name, const std::vector<std::string>& cells,
                       const std::string& source = "train.csv") {
  Table table;
  table.add_column(make_column(name, cells));
  table.source = source;
  return table;
}

// ---------------------------------------------------------------------------
// LabelProcessor

TEST(ProcessorsLabel, StringClassesAreSorted) {
  LabelProcessor p;
  p.fit(labels({"b", "a", "c", "a", ""}), LabelKind::kClasses, Config());
  EXPECT_EQ(p.classes(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(p.num_classes(), 3);
  EXPECT_EQ(p.kind(), LabelKind::kClasses);
  const torch::Tensor t = p.transform(labels({"b", "a", "c", "a"}));
  EXPECT_EQ(t.scalar_type(), torch::kInt64);
  EXPECT_EQ(to_ints(t), (std::vector<int64_t>{1, 0, 2, 0}));
}

TEST(ProcessorsLabel, NumericClassesAreSortedNumerically) {
  LabelProcessor p;
  p.fit(labels({"10", "2", "1", "2", "10"}), LabelKind::kClasses, Config());
  EXPECT_EQ(p.classes(), (std::vector<std::string>{"1", "2", "10"}));  // "2" < "10"
  EXPECT_EQ(to_ints(p.transform(labels({"10", "1", "2"}))), (std::vector<int64_t>{2, 0, 1}));

  LabelProcessor signed_p;
  signed_p.fit(labels({"-1", "0.5", "-3", "0.5"}), LabelKind::kClasses, Config());
  EXPECT_EQ(signed_p.classes(), (std::vector<std::string>{"-3", "-1", "0.5"}));
}

TEST(ProcessorsLabel, PosLabelMovesLast) {
  LabelProcessor sorted;
  sorted.fit(labels({"yes", "no", "yes"}), LabelKind::kClasses, Config());
  EXPECT_EQ(sorted.classes(), (std::vector<std::string>{"no", "yes"}));

  Config config;
  config.set("data.pos_label", "no");
  LabelProcessor p;
  p.fit(labels({"yes", "no", "yes"}), LabelKind::kClasses, config);
  EXPECT_EQ(p.classes(), (std::vector<std::string>{"yes", "no"}));
  EXPECT_EQ(to_ints(p.transform(labels({"no", "yes"}))), (std::vector<int64_t>{1, 0}));

  Config numeric;
  numeric.set("data.pos_label", "0");
  LabelProcessor q;
  q.fit(labels({"1", "0", "1"}), LabelKind::kClasses, numeric);
  EXPECT_EQ(q.classes(), (std::vector<std::string>{"1", "0"}));
}

TEST(ProcessorsLabel, UnknownPosLabelErrors) {
  Config config;
  config.set("data.pos_label", "maybe");
  LabelProcessor p;
  const std::string message = message_of<std::invalid_argument>(
      [&] { p.fit(labels({"yes", "no"}), LabelKind::kClasses, config); });
  EXPECT_TRUE(Contains(message, "maybe"));
  EXPECT_TRUE(Contains(message, "target"));
}

TEST(ProcessorsLabel, UnseenClassErrorsNamingTheRow) {
  LabelProcessor p;
  p.fit(labels({"a", "b", "a"}), LabelKind::kClasses, Config());
  const std::string message =
      message_of<std::invalid_argument>([&] { p.transform(labels({"a", "b", "zebra", "a"})); });
  EXPECT_TRUE(Contains(message, "row 3"));
  EXPECT_TRUE(Contains(message, "zebra"));
  EXPECT_TRUE(Contains(message, "target"));
}

TEST(ProcessorsLabel, RegressionStandardScaler) {
  LabelProcessor p;
  p.fit(labels({"1", "2", "3", "4"}), LabelKind::kValues, Config());
  EXPECT_EQ(p.num_classes(), 0);
  // mean 2.5, population std sqrt(1.25).
  const double sd = std::sqrt(1.25);
  const torch::Tensor t = p.transform(labels({"1", "2", "3", "4", "10"}));
  EXPECT_EQ(t.scalar_type(), torch::kFloat32);
  expect_near_all(to_doubles(t), {-1.5 / sd, -0.5 / sd, 0.5 / sd, 1.5 / sd, 7.5 / sd});
  expect_near_all(p.inverse_regression(t), {1, 2, 3, 4, 10}, 1e-4);
  expect_near_all(p.inverse_regression(torch::tensor({0.0, 1.0})), {2.5, 2.5 + sd}, 1e-9);
}

TEST(ProcessorsLabel, RegressionMinMaxScaler) {
  Config config;
  config.set("data.label.numerical_label_preprocessing", "minmaxscaler");
  LabelProcessor p;
  p.fit(labels({"1", "4", "2.5", ""}), LabelKind::kValues, config);
  const torch::Tensor t = p.transform(labels({"1", "4", "2.5", "7"}));
  expect_near_all(to_doubles(t), {0.0, 1.0, 0.5, 2.0});
  expect_near_all(p.inverse_regression(t), {1, 4, 2.5, 7}, 1e-5);
}

TEST(ProcessorsLabel, RegressionNoScaling) {
  Config config;
  config.set("data.label.numerical_preprocessing", "none");
  LabelProcessor p;
  p.fit(labels({"1", "4", "2.5"}), LabelKind::kValues, config);
  const torch::Tensor t = p.transform(labels({"1", "-4", "2.5"}));
  expect_near_all(to_doubles(t), {1.0, -4.0, 2.5});
  expect_near_all(p.inverse_regression(t), {1.0, -4.0, 2.5});
}

TEST(ProcessorsLabel, BceLossKeepsRegressionLabelsUnscaled) {
  Config config;
  config.set("optim.loss_func", "bce");
  LabelProcessor p;
  p.fit(labels({"0.1", "0.9", "0.5"}), LabelKind::kValues, config);
  expect_near_all(to_doubles(p.transform(labels({"0.1", "0.9"}))), {0.1, 0.9});
}

TEST(ProcessorsLabel, MissingRegressionLabelsAreSkippedAtFit) {
  LabelProcessor p;
  p.fit(labels({"1", "", "3"}), LabelKind::kValues, Config());  // mean 2, std 1
  expect_near_all(to_doubles(p.transform(labels({"3", "0"}))), {1.0, -2.0});
}

TEST(ProcessorsLabel, ConstantRegressionLabelDoesNotDivideByZero) {
  LabelProcessor p;
  p.fit(labels({"5", "5", "5"}), LabelKind::kValues, Config());
  const std::vector<double> out = to_doubles(p.transform(labels({"5", "6"})));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_TRUE(std::isfinite(out[0]) && std::isfinite(out[1]));
  EXPECT_NEAR(out[0], 0.0, 1e-6);
  expect_near_all(p.inverse_regression(p.transform(labels({"5", "6"}))), {5.0, 6.0});
}

TEST(ProcessorsLabel, NonNumericRegressionLabelErrorsNamingTheRow) {
  LabelProcessor p;
  const std::string at_fit = message_of<std::invalid_argument>(
      [&] { p.fit(labels({"1.5", "abc", "3"}), LabelKind::kValues, Config()); });
  EXPECT_TRUE(Contains(at_fit, "row 2"));
  EXPECT_TRUE(Contains(at_fit, "abc"));
  EXPECT_TRUE(Contains(at_fit, "target"));

  p.fit(labels({"1.5", "2", "3"}), LabelKind::kValues, Config());
  const std::string at_transform =
      message_of<std::invalid_argument>([&] { p.transform(labels({"1", "2", "3", "n/a?"})); });
  EXPECT_TRUE(Contains(at_transform, "row 4"));
  EXPECT_TRUE(Contains(at_transform, "n/a?"));
}

TEST(ProcessorsLabel, JsonRoundTrip) {
  Config config;
  config.set("data.pos_label", "a");
  LabelProcessor cls;
  cls.fit(labels({"c", "a", "b"}), LabelKind::kClasses, config);
  const LabelProcessor cls_back = LabelProcessor::from_json(nlohmann::json::parse(cls.to_json().dump()));
  EXPECT_EQ(cls_back.classes(), (std::vector<std::string>{"b", "c", "a"}));
  EXPECT_EQ(cls_back.kind(), LabelKind::kClasses);
  EXPECT_EQ(to_ints(cls_back.transform(labels({"a", "b", "c"}))), (std::vector<int64_t>{2, 0, 1}));

  LabelProcessor reg;
  reg.fit(labels({"10", "20", "60"}), LabelKind::kValues, Config());
  const LabelProcessor reg_back = LabelProcessor::from_json(nlohmann::json::parse(reg.to_json().dump()));
  EXPECT_EQ(reg_back.kind(), LabelKind::kValues);
  const Column probe = labels({"10", "35", "-4"});
  expect_near_all(to_doubles(reg_back.transform(probe)), to_doubles(reg.transform(probe)), 1e-7);
  expect_near_all(reg_back.inverse_regression(torch::tensor({0.5})),
                  reg.inverse_regression(torch::tensor({0.5})), 1e-12);
}

// ---------------------------------------------------------------------------
// NumericalProcessor

// 2,4,4,4,5,5,7,9: mean 5, population std 2.
const std::vector<std::string> kClassic = {"2", "4", "4", "4", "5", "5", "7", "9", ""};

TEST(ProcessorsNumerical, StandardScalingWithMeanImputation) {
  const Table train = one_column_table("v", kClassic);
  NumericalProcessor p;
  p.fit(train, {"v"}, Config());
  const torch::Tensor t = p.transform(train);
  EXPECT_EQ(t.scalar_type(), torch::kFloat32);
  ASSERT_EQ(t.sizes(), (std::vector<int64_t>{9, 1}));
  expect_near_all(to_doubles(t), {-1.5, -0.5, -0.5, -0.5, 0, 0, 1, 2, 0});
}

TEST(ProcessorsNumerical, WithoutMean) {
  Config config;
  config.set("data.numerical.scaler_with_mean", false);
  const Table train = one_column_table("v", kClassic);
  NumericalProcessor p;
  p.fit(train, {"v"}, config);
  // x / 2; the missing cell is imputed with the mean 5.
  expect_near_all(to_doubles(p.transform(train)), {1, 2, 2, 2, 2.5, 2.5, 3.5, 4.5, 2.5});
}

TEST(ProcessorsNumerical, WithoutStd) {
  Config config;
  config.set("data.numerical.scaler_with_std", false);
  const Table train = one_column_table("v", kClassic);
  NumericalProcessor p;
  p.fit(train, {"v"}, config);
  expect_near_all(to_doubles(p.transform(train)), {-3, -1, -1, -1, 0, 0, 2, 4, 0});

  config.set("data.numerical.scaler_with_mean", false);
  NumericalProcessor raw;
  raw.fit(train, {"v"}, config);
  expect_near_all(to_doubles(raw.transform(train)), {2, 4, 4, 4, 5, 5, 7, 9, 5});
}

TEST(ProcessorsNumerical, SeveralColumnsKeepTheirOrder) {
  Table train;
  train.add_column(make_column("a", {"1", "3"}));    // mean 2, std 1
  train.add_column(make_column("skip", {"x", "y"}));
  train.add_column(make_column("b", {"10", "30"}));  // mean 20, std 10
  NumericalProcessor p;
  p.fit(train, {"b", "a"}, Config());
  EXPECT_EQ(p.columns(), (std::vector<std::string>{"b", "a"}));
  const torch::Tensor t = p.transform(train);
  ASSERT_EQ(t.sizes(), (std::vector<int64_t>{2, 2}));
  expect_near_all(to_doubles(t), {-1, -1, 1, 1});
}

TEST(ProcessorsNumerical, NonNumericCellAtTransformBecomesTheMeanWithOneWarning) {
  const Table train = one_column_table("v", kClassic);
  NumericalProcessor p;
  p.fit(train, {"v"}, Config());
  const Table test = one_column_table("v", {"7", "9", "abc", "5", "xyz"}, "test.csv");
  std::vector<std::string> warnings;
  const torch::Tensor t = p.transform(test, &warnings);
  expect_near_all(to_doubles(t), {1, 2, 0, 0, 0});
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_TRUE(Contains(warnings[0], "'v'"));
  EXPECT_TRUE(Contains(warnings[0], "row 3"));
  EXPECT_TRUE(Contains(warnings[0], "abc"));
  EXPECT_NO_THROW(p.transform(test));  // warnings are optional
}

TEST(ProcessorsNumerical, NonNumericCellAtFitErrors) {
  const Table train = one_column_table("v", {"1", "2", "two", "4"});
  NumericalProcessor p;
  const std::string message = message_of<std::invalid_argument>([&] { p.fit(train, {"v"}, Config()); });
  EXPECT_TRUE(Contains(message, "'v'"));
  EXPECT_TRUE(Contains(message, "row 3"));
  EXPECT_TRUE(Contains(message, "two"));
}

TEST(ProcessorsNumerical, MissingColumnAtTransformErrorsNamingIt) {
  NumericalProcessor p;
  p.fit(one_column_table("v", kClassic), {"v"}, Config());
  const std::string message = message_of<std::invalid_argument>(
      [&] { p.transform(one_column_table("w", {"1"}, "test.csv")); });
  EXPECT_TRUE(Contains(message, "v"));
  EXPECT_TRUE(Contains(message, "test.csv"));
}

TEST(ProcessorsNumerical, ConstantColumnDoesNotDivideByZero) {
  const Table train = one_column_table("c", {"3", "3", "3", ""});
  NumericalProcessor p;
  p.fit(train, {"c"}, Config());
  const std::vector<double> out = to_doubles(p.transform(train));
  for (double v : out) EXPECT_TRUE(std::isfinite(v));
  expect_near_all(out, {0, 0, 0, 0});
  expect_near_all(to_doubles(p.transform(one_column_table("c", {"5"}))), {2.0});
}

TEST(ProcessorsNumerical, JsonRoundTrip) {
  Table train;
  train.add_column(make_column("a", {"1", "3", "", "8"}));
  train.add_column(make_column("b", {"-2", "0", "2", ""}));
  NumericalProcessor p;
  p.fit(train, {"a", "b"}, Config());
  const NumericalProcessor back = NumericalProcessor::from_json(nlohmann::json::parse(p.to_json().dump()));
  EXPECT_EQ(back.columns(), p.columns());
  EXPECT_TRUE(torch::equal(back.transform(train), p.transform(train)));
}

// ---------------------------------------------------------------------------
// CategoricalProcessor

// a x5, b x3, c x2, d x1, one missing.
const std::vector<std::string> kColors = {"a", "b", "a", "c", "a", "b", "",
                                          "d", "a", "c", "b", "a"};

Config categorical_config(int64_t minimum_cat_count, int64_t maximum_num_cat) {
  Config config;
  config.set("data.categorical.minimum_cat_count", minimum_cat_count);
  config.set("data.categorical.maximum_num_cat", maximum_num_cat);
  return config;
}

TEST(ProcessorsCategorical, RareUnseenAndMissingShareTheExtraIndex) {
  const Table train = one_column_table("color", kColors);
  CategoricalProcessor p;
  p.fit(train, {"color"}, categorical_config(2, 20));  // keeps a, b, c (d is seen once)
  EXPECT_EQ(p.num_categories(), (std::vector<int64_t>{4}));
  const Table test = one_column_table("color", {"a", "b", "c", "d", "zebra", "", "a"});
  const torch::Tensor t = p.transform(test);
  EXPECT_EQ(t.scalar_type(), torch::kInt64);
  ASSERT_EQ(t.sizes(), (std::vector<int64_t>{7, 1}));
  const std::vector<int64_t> idx = to_ints(t);
  const std::set<int64_t> kept = {idx[0], idx[1], idx[2]};
  EXPECT_EQ(kept.size(), 3u) << "kept categories get distinct indices";
  for (int64_t i : kept) {
    EXPECT_GE(i, 0);
    EXPECT_LT(i, 3);
  }
  EXPECT_EQ(idx[3], 3) << "rare";
  EXPECT_EQ(idx[4], 3) << "unseen";
  EXPECT_EQ(idx[5], 3) << "missing";
  EXPECT_EQ(idx[6], idx[0]);
}

TEST(ProcessorsCategorical, MaximumNumCatKeepsTheMostFrequent) {
  const Table train = one_column_table("color", kColors);
  CategoricalProcessor p;
  p.fit(train, {"color"}, categorical_config(0, 2));  // a (5) and b (3)
  EXPECT_EQ(p.num_categories(), (std::vector<int64_t>{3}));
  const std::vector<int64_t> idx = to_ints(p.transform(one_column_table("color", {"a", "b", "c", "d"})));
  EXPECT_NE(idx[0], idx[1]);
  EXPECT_LT(idx[0], 2);
  EXPECT_LT(idx[1], 2);
  EXPECT_EQ(idx[2], 2);
  EXPECT_EQ(idx[3], 2);
}

TEST(ProcessorsCategorical, DefaultMinimumCountOf100MakesSmallCategoriesRare) {
  const Table train = one_column_table("color", kColors);
  CategoricalProcessor p;
  p.fit(train, {"color"}, Config());  // minimum_cat_count 100: nothing is frequent enough
  EXPECT_EQ(p.num_categories(), (std::vector<int64_t>{1}));
  EXPECT_EQ(to_ints(p.transform(train)), std::vector<int64_t>(kColors.size(), 0));
}

TEST(ProcessorsCategorical, SeveralColumns) {
  Table train;
  train.add_column(make_column("x", {"p", "q", "p", "q", "r"}));
  train.add_column(make_column("y", {"1", "1", "1", "2", "2"}));
  CategoricalProcessor p;
  p.fit(train, {"y", "x"}, categorical_config(2, 20));  // y: 1, 2 kept; x: p, q kept, r rare
  EXPECT_EQ(p.columns(), (std::vector<std::string>{"y", "x"}));
  EXPECT_EQ(p.num_categories(), (std::vector<int64_t>{3, 3}));
  const torch::Tensor t = p.transform(train);
  ASSERT_EQ(t.sizes(), (std::vector<int64_t>{5, 2}));
  EXPECT_EQ(t[4][1].item<int64_t>(), 2);  // x = r is rare
  EXPECT_NE(t[0][1].item<int64_t>(), t[1][1].item<int64_t>());
  EXPECT_EQ(t[0][0].item<int64_t>(), t[1][0].item<int64_t>());
}

TEST(ProcessorsCategorical, JsonRoundTrip) {
  const Table train = one_column_table("color", kColors);
  CategoricalProcessor p;
  p.fit(train, {"color"}, categorical_config(2, 20));
  const CategoricalProcessor back =
      CategoricalProcessor::from_json(nlohmann::json::parse(p.to_json().dump()));
  EXPECT_EQ(back.columns(), p.columns());
  EXPECT_EQ(back.num_categories(), p.num_categories());
  const Table test = one_column_table("color", {"a", "b", "c", "d", "zebra", ""});
  EXPECT_TRUE(torch::equal(back.transform(test), p.transform(test)));
}

}  // namespace
}  // namespace automm
