// The task seam: a problem type defined here, in the test only (multi-label
// tagging: a set of tags per row), plugs in through the registry. Nothing in
// the predictor, the learner, save/load or the CLI knows it.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <sstream>

#include "automm/predictor.h"
#include "tasks/task.h"
#include "test_util.h"

namespace automm {
namespace {

using testing::TempDir;

// The label cell holds the row's tags joined by ';' ("-" for none); each tag is
// one sigmoid output trained with binary cross-entropy.
class MultiLabelTask : public Task {
 public:
  explicit MultiLabelTask(const TaskOptions& options) : label_(options.label) {}

  std::string name() const override { return "toy_multilabel"; }
  std::vector<std::string> target_columns() const override { return {label_}; }
  void fit(const Table& train) override {
    std::set<std::string> tags;
    const Column& column = train.column(label_);
    for (size_t r = 0; r < column.size(); ++r)
      for (const std::string& tag : split(column.text(r))) tags.insert(tag);
    tags_.assign(tags.begin(), tags.end());
  }
  Targets read_targets(const Table& data) const override {
    const Column& column = data.column(label_);
    torch::Tensor indicators = torch::zeros({static_cast<int64_t>(column.size()), num_outputs()});
    for (size_t r = 0; r < column.size(); ++r)
      for (const std::string& tag : split(column.text(r))) {
        const auto it = std::find(tags_.begin(), tags_.end(), tag);
        if (it == tags_.end()) throw std::invalid_argument("row " + std::to_string(r + 1) + ": unknown tag " + tag);
        indicators[static_cast<int64_t>(r)][it - tags_.begin()] = 1.0f;
      }
    Targets targets;
    targets.dense["tags"] = indicators;
    return targets;
  }
  int64_t num_outputs() const override { return static_cast<int64_t>(tags_.size()); }
  torch::Tensor loss(const torch::Tensor& outputs, const Targets& targets) const override {
    return torch::nn::functional::binary_cross_entropy_with_logits(outputs, targets.at("tags"));
  }
  Predictions predict(const torch::Tensor& outputs) const override {
    Predictions out;
    out.name = label_;
    out.classes = tags_;
    out.values = (outputs > 0).to(torch::kInt64);
    return out;
  }
  std::vector<std::string> classes() const override { return tags_; }
  bool has_probabilities() const override { return false; }
  std::string default_metric() const override { return "hamming_accuracy"; }
  MetricInfo metric(const std::string& name) const override {
    if (name != "hamming_accuracy") throw std::invalid_argument("toy_multilabel knows only hamming_accuracy");
    MetricInfo info;
    info.name = name;
    return info;
  }
  double score(const std::string& metric, const torch::Tensor& outputs, const Targets& targets) const override {
    return ((outputs > 0).to(torch::kFloat32) == targets.at("tags")).to(torch::kFloat64).mean().item<double>();
  }
  nlohmann::json to_json() const override { return {{"tags", tags_}}; }
  void from_json(const nlohmann::json& state) override { tags_ = state.at("tags").get<std::vector<std::string>>(); }

 private:
  static std::vector<std::string> split(const std::string& cell) {
    std::vector<std::string> parts;
    std::stringstream stream(cell);
    for (std::string part; std::getline(stream, part, ';');)
      if (!part.empty() && part != "-") parts.push_back(part);
    return parts;
  }
  std::string label_;
  std::vector<std::string> tags_;
};

// x1 > 0 tags a row "up", x2 > 0 tags it "right"; noise carries nothing.
Table tagged_table(size_t rows, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  Column x1("x1"), x2("x2"), noise("noise"), tags("tags");
  for (size_t r = 0; r < rows; ++r) {
    const double a = normal(rng), b = normal(rng);
    x1.push(std::to_string(a), true);
    x2.push(std::to_string(b), true);
    noise.push(std::to_string(normal(rng)), true);
    std::string cell = a > 0 ? "up" : "";
    if (b > 0) cell += cell.empty() ? "right" : ";right";
    tags.push(cell.empty() ? "-" : cell, true);
  }
  Table table;
  for (Column* column : {&x1, &x2, &noise, &tags}) table.add_column(std::move(*column));
  return table;
}

TEST(TaskPlugin, AMultiLabelTaskFitsPredictsSavesAndLoadsThroughTheRegistry) {
  register_task({"toy_multilabel", [](const TaskOptions& o) { return std::make_unique<MultiLabelTask>(o); },
                 "default", ""});
  TempDir dir;
  PredictorOptions options;
  options.label = "tags";
  options.problem_type = "toy_multilabel";
  options.path = dir.file("tagger");
  options.verbose = false;
  options.hyperparameters = {{"optim.max_epochs", 8}, {"optim.lr", 3e-3}, {"env.batch_size", 32},
                             {"env.per_gpu_batch_size", 32}};
  MultiModalPredictor predictor(options);
  predictor.fit(tagged_table(800, 1));
  EXPECT_EQ(predictor.problem_type(), "toy_multilabel");
  EXPECT_EQ(predictor.eval_metric(), "hamming_accuracy");
  EXPECT_EQ(predictor.classes(), (std::vector<std::string>{"right", "up"}));

  const Table test = tagged_table(300, 2);
  EXPECT_GE(predictor.evaluate(test).at("hamming_accuracy"), 0.9);
  const Predictions predicted = predictor.predict(test);
  ASSERT_EQ(predicted.values.sizes(), (std::vector<int64_t>{300, 2}));
  size_t exact = 0;
  for (size_t r = 0; r < predicted.size(); ++r) {
    // "-" in the table is the empty set; the prediction writes it as "".
    const std::string truth = test.column("tags").text(r) == "-" ? "" : test.column("tags").text(r);
    std::string expected = truth;  // tags in class order: right before up
    if (truth == "up;right") expected = "right;up";
    exact += predicted.text(r) == expected;
  }
  EXPECT_GE(exact, 250u);
  EXPECT_THROW(predictor.predict_proba(test), std::invalid_argument);

  const MultiModalPredictor loaded = MultiModalPredictor::load(dir.file("tagger"));
  EXPECT_EQ(loaded.problem_type(), "toy_multilabel");
  EXPECT_TRUE(torch::equal(loaded.predict(test).values, predicted.values));
}

}  // namespace
}  // namespace automm
