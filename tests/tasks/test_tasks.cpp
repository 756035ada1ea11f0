// The built-in problem types through the Task interface, and the registry.
#include <gtest/gtest.h>

#include "tasks/task.h"
#include "test_util.h"

namespace automm {
namespace {

using automm::testing::cells;

using testing::make_column;
using testing::message_of;

Table table_of(const std::string& name, const std::vector<std::string>& cells) {
  Table table;
  table.add_column(make_column(name, cells));
  return table;
}

TEST(TaskRegistry, KnowsTheBuiltInProblemTypesAndNamesTheRest) {
  const std::vector<std::string> names = task_names();
  for (const char* name : {"binary", "multiclass", "regression"})
    EXPECT_NE(std::find(names.begin(), names.end(), name), names.end()) << name;
  const std::string unknown = message_of<std::invalid_argument>([] { find_task("ranking"); });
  EXPECT_NE(unknown.find("unknown problem type 'ranking'; known problem types: binary"), std::string::npos) << unknown;
  const std::string pending = message_of<std::invalid_argument>([] { find_task("ner"); });
  EXPECT_NE(pending.find("not supported yet"), std::string::npos) << pending;
  EXPECT_EQ(find_task("regression").learner, "default");
}

TEST(TaskRegistry, DefaultMetricsAndApplicability) {
  Config config;
  EXPECT_EQ(make_task("binary", {"y", &config})->default_metric(), "roc_auc");
  EXPECT_EQ(make_task("multiclass", {"y", &config})->default_metric(), "accuracy");
  EXPECT_EQ(make_task("regression", {"y", &config})->default_metric(), "rmse");
  for (const char* name : {"binary", "multiclass", "regression"}) {
    const auto task = make_task(name, {"y", &config});
    EXPECT_NO_THROW(task->metric(task->default_metric())) << name;
  }
  const std::string message = message_of<std::invalid_argument>([&] { make_task("multiclass", {"y", &config})->metric("roc_auc"); });
  EXPECT_NE(message.find("metric 'roc_auc' does not apply to a multiclass problem (it is binary-only)"),
            std::string::npos)
      << message;
  EXPECT_THROW(make_task("binary", {"y", &config})->metric("rmse"), std::invalid_argument);
  EXPECT_THROW(make_task("regression", {"y", &config})->metric("accuracy"), std::invalid_argument);
}

TEST(ClassificationTask, ReadsTargetsPredictsClassesAndRoundTrips) {
  Config config;
  auto task = make_task("binary", {"y", &config});
  task->fit(table_of("y", {"no", "yes", "yes", "no"}));
  EXPECT_EQ(task->classes(), (std::vector<std::string>{"no", "yes"}));
  EXPECT_EQ(task->num_outputs(), 2);
  const Targets targets = task->read_targets(table_of("y", {"yes", "no"}));
  EXPECT_TRUE(torch::equal(targets.at("label"), torch::tensor({1, 0}, torch::kInt64)));
  const std::string unseen = message_of<std::invalid_argument>([&] { task->read_targets(table_of("y", {"yes", "maybe"})); });
  EXPECT_NE(unseen.find("label column 'y', row 2: 'maybe' is not one of the training classes"), std::string::npos)
      << unseen;

  const torch::Tensor logits = torch::tensor({{2.0f, -1.0f}, {0.0f, 3.0f}});
  const Predictions predicted = task->predict(logits);
  EXPECT_EQ(predicted.name, "y");
  EXPECT_EQ(predicted.labels(), (std::vector<std::string>{"no", "yes"}));
  EXPECT_THROW(predicted.numbers(), std::logic_error);
  EXPECT_EQ(task->predict_proba(logits, false).sizes(), (std::vector<int64_t>{2}));
  EXPECT_NEAR(task->score("accuracy", logits, targets), 0.0, 1e-12);  // both rows wrong
  EXPECT_EQ(task->stratum(table_of("y", {"no", "yes"}), 1), "yes");

  auto loaded = make_task("binary", {"y", &config});
  loaded->from_json(nlohmann::json::parse(task->to_json().dump()));
  EXPECT_EQ(loaded->classes(), task->classes());
}

TEST(RegressionTask, PredictsNumbersInLabelUnits) {
  Config config;
  auto task = make_task("regression", {"price", &config});
  task->fit(table_of("price", {"10", "20", "30"}));  // standard scaling: mean 20, std ~8.165
  EXPECT_EQ(task->num_outputs(), 1);
  EXPECT_FALSE(task->has_probabilities());
  EXPECT_THROW(task->predict_proba(torch::zeros({1, 1}), true), std::invalid_argument);
  const Targets targets = task->read_targets(table_of("price", {"20", "30"}));
  const Predictions predicted = task->predict(targets.at("label").unsqueeze(1));
  EXPECT_FALSE(predicted.are_classes());
  ASSERT_EQ(predicted.numbers().size(), 2u);
  EXPECT_NEAR(predicted.numbers()[0], 20.0, 1e-5);
  EXPECT_NEAR(predicted.numbers()[1], 30.0, 1e-4);
  EXPECT_EQ(task->stratum(table_of("price", {"1"}), 0), "");  // an unstratified split
  EXPECT_NEAR(task->score("rmse", targets.at("label").unsqueeze(1), targets), 0.0, 1e-5);
}

TEST(Predictions, TextIsTheShortestRoundTripForNumbersAndJoinsClassSets) {
  Predictions numbers;
  numbers.name = "v";
  numbers.values = torch::tensor({0.1, 2.5e-7, 3.0, -1234.5678901234}, torch::kFloat64);
  EXPECT_EQ(cells(numbers.to_column()), (std::vector<std::string>{"0.1", "2.5e-07", "3", "-1234.5678901234"}));
  Predictions sets;
  sets.name = "tags";
  sets.classes = {"a", "b", "c"};
  sets.values = torch::tensor({1, 0, 1, 0, 0, 0}, torch::kInt64).view({2, 3});
  EXPECT_EQ(sets.text(0), "a;c");
  EXPECT_EQ(sets.text(1), "");
}

}  // namespace
}  // namespace automm
