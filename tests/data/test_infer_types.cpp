// Tests of column-type and problem-type inference and the holdout split (AutoMM's data/infer_types.py).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "data/processors.h"
#include "test_util.h"

namespace automm {
namespace {

using automm::testing::Contains;
using automm::testing::message_of;

using automm::testing::make_column;
using automm::testing::make_tabular_table;
using automm::testing::TempDir;
using automm::testing::write_file;

const std::string kPngBytes = std::string("\x89PNG\r\n\x1a\n", 8) + std::string("\0\0\0\rIHDR", 8) +
                              "not really pixels";
const std::string kJpegBytes = std::string("\xFF\xD8\xFF\xE0\0\x10JFIF", 10) + "not really pixels";

// A table with `feature` and a label column "y" of alternating classes.
Table table_with(const Column& feature, const std::string& source = "<memory>") {
  Table table;
  table.add_column(feature);
  std::vector<std::string> labels;
  for (size_t r = 0; r < feature.size(); ++r) labels.push_back(r % 2 ? "yes" : "no");
  table.add_column(make_column("y", labels));
  table.source = source;
  return table;
}

ColumnType infer_single(const Column& feature, const Table* tuning = nullptr,
                        const std::string& source = "<memory>") {
  const Table train = table_with(feature, source);
  const ColumnTypes types = infer_column_types(train, tuning, "y", {});
  EXPECT_EQ(types.size(), 1u);
  EXPECT_EQ(types.count("y"), 0u) << "the label is not a feature";
  return types.at(feature.name());
}

// n cells cycling through `unique` integer values 0..unique-1.
Column cycling_integers(const std::string& name, size_t n, size_t unique) {
  std::vector<std::string> cells;
  for (size_t r = 0; r < n; ++r) cells.push_back(std::to_string(r % unique));
  return make_column(name, cells);
}

Column labels_of(const std::vector<std::string>& cells) { return make_column("target", cells); }

// ---------------------------------------------------------------------------
// Column types

TEST(InferTypesColumns, LowCardinalityStringsAreCategorical) {
  std::vector<std::string> cells;
  for (size_t r = 0; r < 100; ++r) cells.push_back(std::vector<std::string>{"red", "green", "blue"}[r % 3]);
  EXPECT_EQ(infer_single(make_column("color", cells)), ColumnType::kCategorical);
}

TEST(InferTypesColumns, ManyUniqueNumbersAreNumerical) {
  std::vector<std::string> cells;
  for (size_t r = 0; r < 100; ++r) cells.push_back(std::to_string(1.5 * static_cast<double>(r) - 20));
  EXPECT_EQ(infer_single(make_column("x", cells)), ColumnType::kNumerical);
}

TEST(InferTypesColumns, FewUniqueNumbersAreCategorical) {
  EXPECT_EQ(infer_single(cycling_integers("rating", 100, 5)), ColumnType::kCategorical);
}

// Categorical when unique < min(0.1 n, 20).
TEST(InferTypesColumns, CategoricalThresholdBothSides) {
  // n = 100: threshold 10.
  EXPECT_EQ(infer_single(cycling_integers("a", 100, 9)), ColumnType::kCategorical);
  EXPECT_EQ(infer_single(cycling_integers("a", 100, 10)), ColumnType::kNumerical);
  // n = 50: threshold 5.
  EXPECT_EQ(infer_single(cycling_integers("b", 50, 4)), ColumnType::kCategorical);
  EXPECT_EQ(infer_single(cycling_integers("b", 50, 5)), ColumnType::kNumerical);
  // n = 1000: threshold capped at 20.
  EXPECT_EQ(infer_single(cycling_integers("c", 1000, 19)), ColumnType::kCategorical);
  EXPECT_EQ(infer_single(cycling_integers("c", 1000, 20)), ColumnType::kNumerical);
}

TEST(InferTypesColumns, LongFreeTextIsText) {
  std::vector<std::string> cells;
  for (size_t r = 0; r < 100; ++r)
    cells.push_back("review number " + std::to_string(r) + " says the product was fine");
  EXPECT_EQ(infer_single(make_column("review", cells)), ColumnType::kText);
}

TEST(InferTypesColumns, ShortUniqueStringsAreNotText) {
  // Two words on average (< 3): falls through to categorical.
  std::vector<std::string> cells;
  for (size_t r = 0; r < 100; ++r) cells.push_back("item " + std::to_string(r));
  EXPECT_EQ(infer_single(make_column("name", cells)), ColumnType::kCategorical);
}

// Text needs more than 1% unique values.
TEST(InferTypesColumns, TextUniqueRatioBoundary) {
  auto phrases = [](size_t n, size_t unique) {
    std::vector<std::string> cells;
    for (size_t r = 0; r < n; ++r) cells.push_back("a short phrase " + std::to_string(r % unique));
    return make_column("phrase", cells);
  };
  EXPECT_EQ(infer_single(phrases(2000, 20)), ColumnType::kCategorical);  // 20/2000 = 1%
  EXPECT_EQ(infer_single(phrases(2000, 21)), ColumnType::kText);         // 1.05%
}

TEST(InferTypesColumns, ConstantAndAllMissingAreIgnored) {
  EXPECT_EQ(infer_single(make_column("const", std::vector<std::string>(50, "x"))), ColumnType::kIgnored);
  EXPECT_EQ(infer_single(make_column("const_num", std::vector<std::string>(50, "3.5"))),
            ColumnType::kIgnored);
  EXPECT_EQ(infer_single(make_column("empty", std::vector<std::string>(50, ""))), ColumnType::kIgnored);
  EXPECT_EQ(infer_single(make_column("nan", std::vector<std::string>(50, "NaN"))), ColumnType::kIgnored);
  std::vector<std::string> mostly_missing(50, "");
  mostly_missing[3] = mostly_missing[7] = "7";
  EXPECT_EQ(infer_single(make_column("one_value", mostly_missing)), ColumnType::kIgnored);
}

TEST(InferTypesColumns, RelativeImagePathsResolveAgainstTheTableFolder) {
  TempDir dir;
  std::vector<std::string> cells;
  for (int i = 0; i < 30; ++i) {
    const std::string name = "img_" + std::to_string(i) + (i % 2 ? ".jpg" : ".png");
    write_file(dir.file(name), i % 2 ? kJpegBytes : kPngBytes);
    cells.push_back(name);
  }
  const Column column = make_column("photo", cells);
  EXPECT_EQ(infer_single(column, nullptr, dir.file("train.csv")), ColumnType::kImagePath);
  // The same relative paths seen from another folder open nothing.
  TempDir other;
  EXPECT_NE(infer_single(column, nullptr, other.file("train.csv")), ColumnType::kImagePath);
}

TEST(InferTypesColumns, AbsoluteAndMultiImagePaths) {
  TempDir dir;
  std::vector<std::string> absolute, multi;
  for (int i = 0; i < 20; ++i) {
    const std::string a = dir.file("a" + std::to_string(i) + ".png");
    const std::string b = dir.file("b" + std::to_string(i) + ".jpg");
    write_file(a, kPngBytes);
    write_file(b, kJpegBytes);
    absolute.push_back(a);
    multi.push_back(a + ";" + b);
  }
  EXPECT_EQ(infer_single(make_column("abs", absolute)), ColumnType::kImagePath);
  EXPECT_EQ(infer_single(make_column("multi", multi)), ColumnType::kImagePath);
}

// image_path when at most 90% of the sampled paths fail to open as images.
TEST(InferTypesColumns, ImagePathFailureRatioBoundary) {
  TempDir dir;
  write_file(dir.file("real.png"), kPngBytes);
  auto column_with_one_image = [&](size_t n) {
    std::vector<std::string> cells = {"real.png"};
    for (size_t i = 1; i < n; ++i) cells.push_back("missing_" + std::to_string(i) + ".png");
    return make_column("path", cells);
  };
  const std::string source = dir.file("train.csv");
  EXPECT_EQ(infer_single(column_with_one_image(10), nullptr, source), ColumnType::kImagePath);  // 90%
  EXPECT_NE(infer_single(column_with_one_image(20), nullptr, source), ColumnType::kImagePath);  // 95%
}

TEST(InferTypesColumns, MissingCellsDoNotCountAsFailedImages) {
  TempDir dir;
  std::vector<std::string> cells;
  for (int i = 0; i < 30; ++i) {
    if (i % 3) {
      cells.push_back("");
      continue;
    }
    const std::string name = "img_" + std::to_string(i) + ".png";
    write_file(dir.file(name), kPngBytes);
    cells.push_back(name);
  }
  EXPECT_EQ(infer_single(make_column("photo", cells), nullptr, dir.file("train.csv")),
            ColumnType::kImagePath);
}

TEST(InferTypesColumns, OneNonNumberMakesAColumnNotNumerical) {
  std::vector<std::string> cells;
  for (int i = 0; i < 99; ++i) cells.push_back(std::to_string(i * 3));
  cells.push_back("unknown");
  EXPECT_EQ(infer_single(make_column("mixed", cells)), ColumnType::kCategorical);
}

TEST(InferTypesColumns, FilesThatAreNotImagesAreNotImagePaths) {
  TempDir dir;
  std::vector<std::string> cells;
  for (int i = 0; i < 30; ++i) {
    const std::string name = "fake_" + std::to_string(i) + ".png";
    write_file(dir.file(name), "just some text, not an image");
    cells.push_back(name);
  }
  EXPECT_NE(infer_single(make_column("fake", cells), nullptr, dir.file("train.csv")),
            ColumnType::kImagePath);
}

TEST(InferTypesColumns, Base64ImagesAreImageBytes) {
  // base64 of the PNG signature + IHDR is "iVBORw0KGgoAAAANSUhEUg".
  std::vector<std::string> cells;
  for (int i = 0; i < 30; ++i) cells.push_back("iVBORw0KGgoAAAANSUhEUgAAA" + std::to_string(1000 + i));
  EXPECT_EQ(infer_single(make_column("bytes", cells)), ColumnType::kImageBytes);
}

TEST(InferTypesColumns, UserColumnTypesWin) {
  const Table train = make_tabular_table(200, 7);
  const ColumnTypes types = infer_column_types(
      train, nullptr, "label", {{"x1", "categorical"}, {"color", "text"}, {"noise", "null"}});
  EXPECT_EQ(types.at("x1"), ColumnType::kCategorical);
  EXPECT_EQ(types.at("color"), ColumnType::kText);
  EXPECT_EQ(types.at("noise"), ColumnType::kIgnored);
  EXPECT_EQ(types.at("x2"), ColumnType::kNumerical);  // not overridden: inferred
}

TEST(InferTypesColumns, TabularTableTypes) {
  const Table train = make_tabular_table(200, 3);
  const ColumnTypes types = infer_column_types(train, nullptr, "label", {});
  const ColumnTypes expected = {{"color", ColumnType::kCategorical}, {"size", ColumnType::kCategorical},
                                {"x1", ColumnType::kNumerical},      {"x2", ColumnType::kNumerical},
                                {"noise", ColumnType::kNumerical},   {"city", ColumnType::kCategorical}};
  EXPECT_EQ(types, expected);
}

TEST(InferTypesColumns, UserColumnTypesNamingAnUnknownColumnError) {
  const Table train = make_tabular_table(50, 1);
  const std::string message = message_of<std::invalid_argument>(
      [&] { infer_column_types(train, nullptr, "label", {{"colour", "categorical"}}); });
  EXPECT_TRUE(Contains(message, "colour"));
}

TEST(InferTypesColumns, UserColumnTypesWithAnUnknownTypeError) {
  const Table train = make_tabular_table(50, 1);
  const std::string message = message_of<std::invalid_argument>(
      [&] { infer_column_types(train, nullptr, "label", {{"color", "ordinal"}}); });
  EXPECT_TRUE(Contains(message, "ordinal"));
  for (const char* known : {"categorical", "numerical", "text", "image_path"})
    EXPECT_TRUE(Contains(message, known));
}

TEST(InferTypesColumns, UnseenTuningValueMeansNotCategorical) {
  const Column train_column = cycling_integers("grade", 100, 5);  // 0..4
  {
    Table tuning;
    tuning.add_column(make_column("grade", {"1", "4", "", "0"}));
    EXPECT_EQ(infer_single(train_column, &tuning), ColumnType::kCategorical);
  }
  {
    Table tuning;
    tuning.add_column(make_column("grade", {"1", "5", "0"}));  // 5 was never seen
    EXPECT_EQ(infer_single(train_column, &tuning), ColumnType::kNumerical);
  }
}

TEST(InferTypesColumns, ColumnTypeNames) {
  for (ColumnType t : {ColumnType::kCategorical, ColumnType::kNumerical, ColumnType::kText,
                       ColumnType::kImagePath, ColumnType::kImageBytes, ColumnType::kIgnored})
    EXPECT_EQ(parse_column_type(to_string(t)), t);
  EXPECT_EQ(to_string(ColumnType::kImageBytes), "image_bytearray");
  EXPECT_EQ(parse_column_type("null"), ColumnType::kIgnored);
  EXPECT_THROW(parse_column_type("Categorical"), std::invalid_argument);
}

TEST(InferTypesParseNumber, NumbersAndNonNumbers) {
  EXPECT_EQ(parse_number("1"), std::optional<double>(1.0));
  EXPECT_EQ(parse_number("-2.5e3"), std::optional<double>(-2500.0));
  EXPECT_EQ(parse_number(" 3 "), std::optional<double>(3.0));
  EXPECT_EQ(parse_number(".5"), std::optional<double>(0.5));
  EXPECT_FALSE(parse_number("").has_value());
  EXPECT_FALSE(parse_number("  ").has_value());
  EXPECT_FALSE(parse_number("abc").has_value());
  EXPECT_FALSE(parse_number("3x").has_value());
  EXPECT_FALSE(parse_number("1,5").has_value());
  EXPECT_FALSE(parse_number("1 2").has_value());
}

// BUG: src/data/infer_types.cpp:169 (parse_number) uses std::strtod, which also
// reads C hexadecimal ("0x1A" = 26, "0x1p3" = 8). pandas (AutoMM's
// is_numerical_column / pd.to_numeric) does not, so a column of hex ids such as
// "0x3f2a" becomes numerical (and gets mean/std-scaled) instead of categorical.
TEST(InferTypesParseNumber, HexadecimalIsNotANumber) {
  EXPECT_FALSE(parse_number("0x1A").has_value());
  EXPECT_FALSE(parse_number("0x1p3").has_value());
  std::vector<std::string> ids;
  for (int i = 0; i < 100; ++i) ids.push_back("0x" + std::to_string(1000 + 7 * i) + "f");
  EXPECT_NE(infer_single(make_column("hex_id", ids)), ColumnType::kNumerical);
}

// ---------------------------------------------------------------------------
// Problem type

TEST(InferTypesProblem, TwoValuesAreBinary) {
  EXPECT_EQ(infer_problem_type(labels_of({"yes", "no", "no", "yes", "no"})), "binary");
  EXPECT_EQ(infer_problem_type(labels_of({"0", "1", "1", "0"})), "binary");
  EXPECT_EQ(infer_problem_type(labels_of({"1.5", "2.25", "1.5"})), "binary");
  EXPECT_EQ(infer_problem_type(labels_of({"a", "", "b", "NA"})), "binary");  // missing dropped
}

TEST(InferTypesProblem, StringsAreMulticlass) {
  EXPECT_EQ(infer_problem_type(labels_of({"cat", "dog", "bird", "cat"})), "multiclass");
  // Even when every string is unique.
  std::vector<std::string> cells;
  for (int i = 0; i < 100; ++i) cells.push_back("class_" + std::to_string(i));
  EXPECT_EQ(infer_problem_type(labels_of(cells)), "multiclass");
}

TEST(InferTypesProblem, FewIntegersAreMulticlass) {
  EXPECT_EQ(infer_problem_type(cycling_integers("target", 100, 5)), "multiclass");
  std::vector<std::string> whole_floats;
  for (int i = 0; i < 100; ++i) whole_floats.push_back(std::to_string(i % 4) + ".0");
  EXPECT_EQ(infer_problem_type(labels_of(whole_floats)), "multiclass");
}

// unique / rows <= 0.1 up to 1000 rows.
TEST(InferTypesProblem, IntegerRatioThresholdUpTo1000Rows) {
  EXPECT_EQ(infer_problem_type(cycling_integers("t", 100, 10)), "multiclass");   // 0.10
  EXPECT_EQ(infer_problem_type(cycling_integers("t", 100, 11)), "regression");   // 0.11
  EXPECT_EQ(infer_problem_type(cycling_integers("t", 1000, 100)), "multiclass"); // 0.10
  EXPECT_EQ(infer_problem_type(cycling_integers("t", 1000, 101)), "regression"); // 0.101
}

// unique / rows <= 0.05 above 1000 rows, and at most 1000 classes.
TEST(InferTypesProblem, IntegerRatioThresholdAbove1000Rows) {
  EXPECT_EQ(infer_problem_type(cycling_integers("t", 2000, 100)), "multiclass");  // 0.05
  EXPECT_EQ(infer_problem_type(cycling_integers("t", 2000, 101)), "regression");  // 0.0505
  EXPECT_EQ(infer_problem_type(cycling_integers("t", 2000, 150)), "regression");  // 0.075
  EXPECT_EQ(infer_problem_type(cycling_integers("t", 1001, 50)), "multiclass");   // 0.04995
  EXPECT_EQ(infer_problem_type(cycling_integers("t", 1001, 60)), "regression");   // 0.0599
  EXPECT_EQ(infer_problem_type(cycling_integers("t", 30000, 1000)), "multiclass");
  EXPECT_EQ(infer_problem_type(cycling_integers("t", 30000, 1001)), "regression");
}

TEST(InferTypesProblem, RatioUsesLabelledRowsOnly) {
  // 11 unique integers in 100 labelled rows (0.11 -> regression); 100 more rows
  // without a label must not halve the ratio.
  std::vector<std::string> cells;
  for (int i = 0; i < 100; ++i) cells.push_back(std::to_string(i % 11));
  for (int i = 0; i < 100; ++i) cells.push_back("");
  EXPECT_EQ(infer_problem_type(labels_of(cells)), "regression");
}

TEST(InferTypesProblem, FloatsAreRegression) {
  EXPECT_EQ(infer_problem_type(labels_of({"0.5", "1.5", "2.25", "0.5", "1.5"})), "regression");
  std::vector<std::string> cells;
  for (int i = 0; i < 100; ++i) cells.push_back(std::to_string(0.37 * i));
  EXPECT_EQ(infer_problem_type(labels_of(cells)), "regression");
}

TEST(InferTypesProblem, AllMissingLabelErrorsNamingTheColumn) {
  const std::string message = message_of<std::invalid_argument>(
      [] { infer_problem_type(labels_of({"", "NA", "", "nan"})); });
  EXPECT_TRUE(Contains(message, "target"));
}

TEST(InferTypesProblem, SingleClassErrors) {
  const std::string message = message_of<std::invalid_argument>(
      [] { infer_problem_type(labels_of({"spam", "spam", "", "spam"})); });
  EXPECT_TRUE(Contains(message, "target"));
  EXPECT_TRUE(Contains(message, "spam"));
}

// ---------------------------------------------------------------------------
// Holdout

// n < 5000: max(0.1, min(0.2, 500/n)); else max(0.01, min(0.1, 2500/n)).
TEST(InferTypesHoldout, DefaultFractionFormula) {
  EXPECT_DOUBLE_EQ(default_holdout_fraction(100), 0.2);        // 500/100 = 5 -> 0.2
  EXPECT_DOUBLE_EQ(default_holdout_fraction(1000), 0.2);       // 0.5 -> 0.2
  EXPECT_DOUBLE_EQ(default_holdout_fraction(2500), 0.2);       // 0.2
  EXPECT_DOUBLE_EQ(default_holdout_fraction(4000), 0.125);     // 500/4000
  EXPECT_DOUBLE_EQ(default_holdout_fraction(4999), 500.0 / 4999.0);  // 0.10002
  EXPECT_DOUBLE_EQ(default_holdout_fraction(5000), 0.1);       // 2500/5000 = 0.5 -> 0.1
  EXPECT_DOUBLE_EQ(default_holdout_fraction(30000), 2500.0 / 30000.0);  // 0.08333
  EXPECT_DOUBLE_EQ(default_holdout_fraction(1000000), 0.01);   // 0.0025 -> 0.01
}

struct SplitCase {
  Column label;
  std::map<std::string, size_t> class_sizes;
  std::set<size_t> labelled;
};

// Classes a x50, b x30, c x7, d x1, interleaved, with 5 missing labels.
SplitCase make_split_case() {
  std::vector<std::string> cells;
  std::map<std::string, size_t> left = {{"a", 50}, {"b", 30}, {"c", 7}, {"d", 1}};
  size_t missing = 5;
  while (true) {
    bool any = false;
    for (auto& [name, count] : left) {
      if (count == 0) continue;
      cells.push_back(name);
      --count;
      any = true;
    }
    if (missing > 0) {
      cells.push_back("");
      --missing;
    }
    if (!any && missing == 0) break;
  }
  SplitCase c;
  c.label = make_column("label", cells);
  c.class_sizes = {{"a", 50}, {"b", 30}, {"c", 7}, {"d", 1}};
  for (size_t r = 0; r < cells.size(); ++r)
    if (!cells[r].empty()) c.labelled.insert(r);
  return c;
}

// As the default learner splits: the rows with a label, stratified by it
// (classification) or not (regression); indices into the whole column.
std::pair<std::vector<size_t>, std::vector<size_t>> split_by_label(const Column& label, bool stratified,
                                                                   double fraction, uint64_t seed) {
  std::vector<size_t> labelled;
  std::vector<std::string> strata;
  for (size_t r = 0; r < label.size(); ++r) {
    if (label.is_missing(r)) continue;
    labelled.push_back(r);
    strata.push_back(stratified ? label.text(r) : std::string());
  }
  auto [train, holdout] = split_holdout(strata, fraction, seed);
  for (size_t& r : train) r = labelled[r];
  for (size_t& r : holdout) r = labelled[r];
  return {train, holdout};
}

TEST(InferTypesHoldout, SplitIsDisjointAndCoversLabelledRows) {
  const SplitCase c = make_split_case();
  const auto [train, holdout] = split_by_label(c.label, true, 0.2, 0);
  std::set<size_t> all(train.begin(), train.end());
  for (size_t r : holdout) EXPECT_TRUE(all.insert(r).second) << "row " << r << " in both splits";
  EXPECT_EQ(train.size() + holdout.size(), c.labelled.size());
  EXPECT_EQ(all, c.labelled);  // missing labels are in neither split
}

TEST(InferTypesHoldout, StratifiedPerClass) {
  const SplitCase c = make_split_case();
  const double fraction = 0.2;
  const auto [train, holdout] = split_by_label(c.label, true, fraction, 11);
  std::map<std::string, size_t> held, trained;
  for (size_t r : holdout) ++held[c.label.text(r)];
  for (size_t r : train) ++trained[c.label.text(r)];
  for (const auto& [name, size] : c.class_sizes) {
    SCOPED_TRACE(name);
    if (size == 1) {
      EXPECT_EQ(held[name], 0u) << "a one-row class stays in train";
      EXPECT_EQ(trained[name], 1u);
      continue;
    }
    EXPECT_LE(std::fabs(static_cast<double>(held[name]) - fraction * static_cast<double>(size)), 1.0);
    EXPECT_GE(trained[name], 1u);
  }
  EXPECT_EQ(held["a"], 10u);  // 0.2 * 50
  EXPECT_EQ(held["b"], 6u);   // 0.2 * 30
}

TEST(InferTypesHoldout, DeterministicPerSeed) {
  const SplitCase c = make_split_case();
  const auto first = split_by_label(c.label, true, 0.2, 42);
  const auto again = split_by_label(c.label, true, 0.2, 42);
  const auto other = split_by_label(c.label, true, 0.2, 43);
  EXPECT_EQ(first, again);
  EXPECT_NE(first.second, other.second);
}

TEST(InferTypesHoldout, RegressionUsesOneStratum) {
  std::vector<std::string> cells;
  for (int i = 0; i < 200; ++i) cells.push_back(std::to_string(0.5 * i));
  const Column label = make_column("price", cells);
  const auto [train, holdout] = split_by_label(label, false, 0.15, 5);
  EXPECT_EQ(holdout.size(), 30u);  // 0.15 * 200
  EXPECT_EQ(train.size(), 170u);
  std::set<size_t> all(train.begin(), train.end());
  all.insert(holdout.begin(), holdout.end());
  EXPECT_EQ(all.size(), 200u);
}

TEST(InferTypesHoldout, RejectsBadFractionsAndTooFewRows) {
  const SplitCase c = make_split_case();
  EXPECT_THROW(split_by_label(c.label, true, 0.0, 0), std::invalid_argument);
  EXPECT_THROW(split_by_label(c.label, true, 1.0, 0), std::invalid_argument);
  // One row per class: nothing can be held out.
  EXPECT_THROW(split_by_label(labels_of({"a", "b", "c"}), true, 0.2, 0),
               std::invalid_argument);
}

}  // namespace
}  // namespace automm
