// The training budget (learners/training_budget.h): small tables get enough
// optimizer steps, the user's keys win, and a default fit on a small table learns.
#include <gtest/gtest.h>

#include "automm/predictor.h"
#include "learners/training_budget.h"
#include "test_util.h"

namespace automm {
namespace {

TEST(TrainingBudget, SmallTableGetsAFittingBatchEnoughStepsAndPatience) {
  Config config;
  const TrainingBudget budget = apply_training_budget(config, 79, /*all_from_scratch=*/true, /*tabular_only=*/false);
  EXPECT_EQ(config.get_int("env.batch_size"), 4);  // 79 / 10 -> 4: about 20 steps an epoch
  EXPECT_EQ(config.get_int("env.per_gpu_batch_size"), 4);
  EXPECT_EQ(config.get_int("optim.max_epochs"), 25);  // 20 steps an epoch, 500 steps
  EXPECT_EQ(config.get_int("optim.patience"), 10);    // 15% of 50 checks is less than AutoMM's 10
  EXPECT_DOUBLE_EQ(config.get_double("optim.lr"), 1e-3);
  EXPECT_EQ(budget.notes.size(), budget.chosen.size());
  EXPECT_TRUE(config.user_keys().empty()) << "chosen by the rule, not by the user";

  Config tiny;
  apply_training_budget(tiny, 30, /*all_from_scratch=*/true, /*tabular_only=*/false);
  EXPECT_EQ(tiny.get_int("env.batch_size"), 2);
  EXPECT_EQ(tiny.get_int("optim.max_epochs"), 34);  // 15 steps an epoch
  EXPECT_EQ(tiny.get_int("optim.patience"), 11);    // 15% of 2 checks x 34 epochs
}

TEST(TrainingBudget, TheUsersKeysWinAndPretrainedBackbonesKeepTheirRate) {
  Config config;
  config.set("env.batch_size", 64);
  config.set("optim.max_epochs", 3);
  const TrainingBudget budget = apply_training_budget(config, 99, /*all_from_scratch=*/false, /*tabular_only=*/false);
  EXPECT_EQ(config.get_int("env.batch_size"), 64);
  EXPECT_EQ(config.get_int("optim.max_epochs"), 3);
  EXPECT_DOUBLE_EQ(config.get_double("optim.lr"), 1e-4);
  EXPECT_FALSE(budget.chosen.contains("optim.lr"));
}

TEST(TrainingBudget, TabularNetworksPredictInBatchesOf512Rows) {
  Config config;
  TrainingBudget budget = apply_training_budget(config, 200000, /*all_from_scratch=*/true, /*tabular_only=*/true);
  EXPECT_EQ(config.get_int("env.inference_batch_size_ratio"), 64);  // 8 x 64 = 512 rows
  EXPECT_TRUE(budget.chosen.contains("env.inference_batch_size_ratio"));
  Config small;  // a small table's smaller micro-batch: a larger ratio, the same 512 rows
  apply_training_budget(small, 79, /*all_from_scratch=*/true, /*tabular_only=*/true);
  EXPECT_EQ(small.get_int("env.per_gpu_batch_size") * small.get_int("env.inference_batch_size_ratio"), 512);
  Config text;  // a text or image backbone keeps AutoMM's ratio
  apply_training_budget(text, 200000, /*all_from_scratch=*/true, /*tabular_only=*/false);
  EXPECT_EQ(text.get_int("env.inference_batch_size_ratio"), 4);
  Config user;
  user.set("env.inference_batch_size_ratio", 2);
  EXPECT_FALSE(apply_training_budget(user, 200000, true, true).chosen.contains("env.inference_batch_size_ratio"));
  EXPECT_EQ(user.get_int("env.inference_batch_size_ratio"), 2);
}

TEST(TrainingBudget, CategoriesOfASmallTableAreNotAllRare) {
  Config config;
  EXPECT_EQ(apply_data_budget(config, 240).chosen.dump(), R"({"data.categorical.minimum_cat_count":2})");
  Config large;
  EXPECT_TRUE(apply_data_budget(large, 50000).chosen.empty());  // AutoMM's 100 is 0.2% of it
  EXPECT_EQ(large.get_int("data.categorical.minimum_cat_count"), 100);
  Config user;
  user.set("data.categorical.minimum_cat_count", 50);
  EXPECT_TRUE(apply_data_budget(user, 240).chosen.empty());
}

TEST(TrainingBudget, LargeTablesKeepAutoMMsDefaults) {
  Config config;
  const TrainingBudget budget = apply_training_budget(config, 200000, /*all_from_scratch=*/false, /*tabular_only=*/false);
  EXPECT_TRUE(budget.chosen.empty()) << budget.chosen.dump();
  EXPECT_EQ(config.get_int("env.batch_size"), 128);
  EXPECT_EQ(config.get_int("optim.max_epochs"), 20);
}

// The regression this rule fixes: a default fit on a few hundred rows scored near
// chance (too few optimizer steps at AutoMM's defaults).
TEST(TrainingBudget, ADefaultFitOnAFewHundredRowsLearnsThreeClasses) {
  testing::TempDir dir;
  PredictorOptions options;
  options.label = "label";
  options.path = dir.file("p");
  options.verbose = std::getenv("AUTOMM_TEST_VERBOSE") != nullptr;
  MultiModalPredictor predictor(options);
  FitOptions fit;
  fit.seed = 1;
  predictor.fit(testing::make_tabular_table(300, 21, "multiclass"), fit);
  const double accuracy =
      predictor.evaluate(testing::make_tabular_table(1000, 22, "multiclass"), {"accuracy"}).at("accuracy");
  std::cout << "default fit, 300 rows, 3 classes: accuracy " << accuracy << ", "
            << predictor.fit_summary()["optimizer_steps"] << " optimizer steps\n";
  EXPECT_GE(accuracy, 0.8);
}

}  // namespace
}  // namespace automm
