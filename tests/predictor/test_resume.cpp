// A fit whose process is killed continues from its last checkpoint and ends
// where an uninterrupted fit ends.
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include "automm/predictor.h"
#include "automm_test_paths.h"
#include "test_util.h"

namespace automm {
namespace {

using automm::testing::cells;

namespace fs = std::filesystem;
using automm::testing::make_tabular_table;
using automm::testing::TempDir;

std::vector<std::string> fit_arguments(const std::string& train, const std::string& path) {
  return {"fit", "--train", train, "--label", "label", "--path", path, "--quiet", "--seed", "5",
          "--hp", "env.per_gpu_batch_size=8", "--hp", "env.batch_size=16", "--hp", "optim.max_epochs=8",
          "--hp", "optim.patience=1000", "--hp", "optim.log_every_n_steps=1", "--hp", "env.precision=32"};
}

pid_t spawn(const std::vector<std::string>& arguments) {
  const pid_t pid = fork();
  if (pid == 0) {
    std::vector<char*> argv = {const_cast<char*>(AUTOMM_CLI_PATH)};
    for (const auto& a : arguments) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    freopen("/dev/null", "w", stdout);
    freopen("/dev/null", "w", stderr);
    execv(AUTOMM_CLI_PATH, argv.data());
    _exit(127);
  }
  return pid;
}

int wait_for(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(PredictorResume, KilledFitContinuesTheSameSchedule) {
  TempDir dir;
  const std::string train = dir.file("train.csv");
  write_csv(make_tabular_table(1500, 31), train);

  // The interrupted fit: killed (SIGKILL) as soon as its first checkpoint exists.
  const std::string killed = dir.file("killed");
  const pid_t pid = spawn(fit_arguments(train, killed));
  const fs::path checkpoint = fs::path(killed) / "resume" / "last.pt";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(300);
  while (!fs::exists(checkpoint) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  kill(pid, SIGKILL);
  wait_for(pid);
  ASSERT_TRUE(fs::exists(checkpoint)) << "the fit wrote no checkpoint";
  ASSERT_FALSE(fs::exists(fs::path(killed) / "predictor.json")) << "the fit finished before it was killed";
  EXPECT_THROW(MultiModalPredictor::load(killed), std::runtime_error);  // unfinished: says how to resume

  ASSERT_EQ(wait_for(spawn({"fit", "--resume", "--path", killed, "--train", train, "--quiet"})), 0);
  const MultiModalPredictor resumed = MultiModalPredictor::load(killed);
  EXPECT_GT(resumed.fit_summary()["resumed_from_step"].get<int>(), 0);
  EXPECT_FALSE(fs::exists(fs::path(killed) / "resume")) << "a finished fit drops its resume state";

  // The same fit, never interrupted.
  const std::string whole = dir.file("whole");
  ASSERT_EQ(wait_for(spawn(fit_arguments(train, whole))), 0);
  const MultiModalPredictor reference = MultiModalPredictor::load(whole);
  EXPECT_EQ(resumed.fit_summary()["optimizer_steps"], reference.fit_summary()["optimizer_steps"]);
  const Table resumed_log = read_table(killed + "/metrics.csv");
  const Table reference_log = read_table(whole + "/metrics.csv");
  EXPECT_EQ(cells(resumed_log.column("step")), cells(reference_log.column("step")));
  EXPECT_EQ(cells(resumed_log.column("lr")), cells(reference_log.column("lr")));
  const Table test = make_tabular_table(200, 32);
  EXPECT_LT((resumed.predict_proba(test) - reference.predict_proba(test)).abs().max().item<double>(), 1e-6);
}

TEST(PredictorResume, NothingToResumeIsAClearError) {
  TempDir dir;
  std::filesystem::create_directories(dir.file("empty"));
  try {
    MultiModalPredictor::load(dir.file("empty"), /*resume=*/true);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("nothing to resume"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace automm
