// Knowledge distillation through the predictor and the CLI: a student with a
// teacher beats the same student alone; mismatched teachers are refused.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <random>
#include <sys/wait.h>

#include "automm/predictor.h"
#include "automm_test_paths.h"
#include "test_util.h"

namespace automm {
namespace {

using automm::testing::cells;
using automm::testing::set_cells;

using testing::contains;
using testing::make_tabular_table;
using testing::message_of;
using testing::TempDir;

PredictorOptions options_at(const std::string& path) {
  PredictorOptions options;
  options.label = "label";
  options.path = path;
  options.verbose = false;
  return options;
}

// The student's labels: `fraction` of the rows get another class at random.
Table with_noisy_labels(Table table, double fraction, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const std::vector<std::string> classes = {"low", "mid", "high"};
  std::vector<std::string> labels = cells(table.column("label"));
  for (auto& cell : labels) {
    if (std::uniform_real_distribution<double>(0, 1)(rng) >= fraction) continue;
    std::string other;
    do other = classes[rng() % 3];
    while (other == cell);
    cell = other;
  }
  set_cells(table, "label", labels);
  return table;
}

// A teacher fitted on many clean rows; students on few rows with 35% wrong
// labels (and 150 clean validation rows). Averaged over 3 seeds, the student
// that learns from the teacher's outputs is more accurate on clean test rows
// than the same student alone. (With noisy validation rows both students stop
// on noise: log_loss against wrong labels punishes the taught, confident one.)
TEST(DistillationFit, StudentWithATeacherBeatsTheSameStudentAlone) {
  TempDir dir;
  MultiModalPredictor teacher(options_at(dir.file("teacher")));
  teacher.fit(make_tabular_table(3000, 1, "multiclass"));
  const Table test = make_tabular_table(1000, 2, "multiclass");
  const double teacher_accuracy = teacher.evaluate(test, {"accuracy"}).at("accuracy");
  auto shared_teacher = std::make_shared<const MultiModalPredictor>(MultiModalPredictor::load(dir.file("teacher")));

  double alone = 0, taught = 0;
  for (uint64_t seed = 0; seed < 3; ++seed) {
    const Table train = with_noisy_labels(make_tabular_table(300, 10 + seed, "multiclass"), 0.35, seed);
    FitOptions fit;
    fit.seed = seed;
    fit.tuning_data = make_tabular_table(150, 20 + seed, "multiclass");  // a few clean validation rows
    MultiModalPredictor plain(options_at(dir.file("alone" + std::to_string(seed))));
    plain.fit(train, fit);
    alone += plain.evaluate(test, {"accuracy"}).at("accuracy") / 3;
    fit.teacher_predictor = shared_teacher;
    MultiModalPredictor student(options_at(dir.file("taught" + std::to_string(seed))));
    student.fit(train, fit);
    taught += student.evaluate(test, {"accuracy"}).at("accuracy") / 3;
    EXPECT_TRUE(student.fit_summary().contains("distillation"));
    EXPECT_FALSE(plain.fit_summary().contains("distillation"));
  }
  std::cout << "teacher accuracy " << teacher_accuracy << "; students on 300 noisy rows, mean of 3 seeds: alone "
            << alone << ", with the teacher " << taught << "\n";
  EXPECT_GT(taught, alone + 0.05);
}

TEST(DistillationFit, MismatchedTeachersAreRefused) {
  TempDir dir;
  MultiModalPredictor binary(options_at(dir.file("binary")));
  FitOptions quick;
  quick.hyperparameters = {{"optim.max_epochs", 1}};
  binary.fit(make_tabular_table(200, 1, "binary"), quick);
  auto teacher = std::make_shared<const MultiModalPredictor>(MultiModalPredictor::load(dir.file("binary")));

  FitOptions fit = quick;
  fit.teacher_predictor = teacher;
  MultiModalPredictor multiclass(options_at(dir.file("m")));
  std::string message =
      message_of<std::invalid_argument>([&] { multiclass.fit(make_tabular_table(200, 2, "multiclass"), fit); });
  EXPECT_TRUE(contains(message, "binary") && contains(message, "multiclass")) << message;

  Table renamed = make_tabular_table(200, 3, "binary");
  renamed.column("label").set_name("target");
  PredictorOptions other = options_at(dir.file("t"));
  other.label = "target";
  MultiModalPredictor target(other);
  message = message_of<std::invalid_argument>([&] { target.fit(renamed, fit); });
  EXPECT_TRUE(contains(message, "'label'") && contains(message, "'target'")) << message;

  Table relabelled = make_tabular_table(200, 4, "binary");
  std::vector<std::string> labels = cells(relabelled.column("label"));
  for (auto& cell : labels) cell = cell == "yes" ? "Y" : "N";
  set_cells(relabelled, "label", labels);
  MultiModalPredictor classes(options_at(dir.file("c")));
  message = message_of<std::invalid_argument>([&] { classes.fit(relabelled, fit); });
  EXPECT_TRUE(contains(message, "[no, yes]") && contains(message, "[N, Y]")) << message;

  // Mixup's mixed rows have no teacher outputs.
  FitOptions mixed = fit;
  mixed.hyperparameters["data.mixup.turn_on"] = true;
  MultiModalPredictor mixup(options_at(dir.file("x")));
  message = message_of<std::invalid_argument>([&] { mixup.fit(make_tabular_table(200, 5, "binary"), mixed); });
  EXPECT_TRUE(contains(message, "teacher")) << message;
}

std::pair<int, std::string> run_cli(const std::string& arguments) {
  const std::string command = std::string(AUTOMM_CLI_PATH) + " " + arguments + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  std::string output;
  std::array<char, 4096> buffer;
  size_t n;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) output.append(buffer.data(), n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

TEST(DistillationFit, CliTeacherFlag) {
  TempDir dir;
  write_csv(make_tabular_table(300, 1, "binary"), dir.file("train.csv"));
  const std::string common = " --train " + dir.file("train.csv") + " --label label --quiet --hp optim.max_epochs=2";
  ASSERT_EQ(run_cli("fit --path " + dir.file("teacher") + common).first, 0);
  const auto [status, output] =
      run_cli("fit --path " + dir.file("student") + common + " --teacher " + dir.file("teacher") +
              " --hp distiller.temperature=2 --hp distiller.rkd_angle_loss_weight=1");
  ASSERT_EQ(status, 0) << output;
  const MultiModalPredictor student = MultiModalPredictor::load(dir.file("student"));
  EXPECT_DOUBLE_EQ(student.fit_summary().at("distillation").at("temperature").get<double>(), 2.0);
  const auto missing = run_cli("fit --path " + dir.file("s2") + common + " --teacher " + dir.file("nowhere"));
  EXPECT_NE(missing.first, 0);
  EXPECT_TRUE(contains(missing.second, dir.file("nowhere"))) << missing.second;
}

}  // namespace
}  // namespace automm
