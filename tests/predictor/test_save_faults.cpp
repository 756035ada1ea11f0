// Fault injection on save: a save killed at random points, or stopped by a full
// disk, leaves the predictor folder that was there loading and predicting as
// before (or, once the save is through, the new one), every time.
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <random>
#include <sys/resource.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include "automm/predictor.h"
#include "test_util.h"

namespace automm {
namespace {

namespace fs = std::filesystem;
using testing::make_tabular_table;
using testing::TempDir;

MultiModalPredictor fitted(const std::string& path, uint64_t seed) {
  PredictorOptions options;
  options.label = "label";
  options.path = path;
  options.verbose = false;
  options.hyperparameters = {{"optim.max_epochs", 1}};
  MultiModalPredictor predictor(options);
  FitOptions fit;
  fit.seed = seed;
  predictor.fit(make_tabular_table(300, seed), fit);
  return predictor;
}

// A child process that saves `source` over `target` until it is killed (forked:
// one intra-op thread, as a forked data loader worker, so no OpenMP team is reused).
pid_t saver(const std::string& source, const std::string& target, rlim_t file_size_limit = RLIM_INFINITY,
            bool once = false) {
  const pid_t pid = fork();
  if (pid == 0) {
    torch::set_num_threads(1);
    if (file_size_limit != RLIM_INFINITY) {
      signal(SIGXFSZ, SIG_IGN);  // writes past the limit fail with EFBIG instead
      rlimit limit{file_size_limit, file_size_limit};
      setrlimit(RLIMIT_FSIZE, &limit);
    }
    try {
      const MultiModalPredictor predictor = MultiModalPredictor::load(source);
      do predictor.save(target);
      while (!once);
      _exit(0);
    } catch (const std::exception&) {
      _exit(3);
    }
  }
  return pid;
}

TEST(PredictorSaveFaults, SaveKilledAtRandomPointsLeavesAWholePredictor) {
  TempDir dir;
  const Table test = make_tabular_table(50, 9);
  const torch::Tensor old_proba = fitted(dir.file("target"), 1).predict_proba(test);
  const torch::Tensor new_proba = fitted(dir.file("source"), 2).predict_proba(test);
  ASSERT_FALSE(torch::equal(old_proba, new_proba));
  std::mt19937 rng(7);
  int saw_old = 0, saw_new = 0;
  for (int round = 0; round < 25; ++round) {
    const pid_t pid = saver(dir.file("source"), dir.file("target"));
    std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(20, 400)(rng)));
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    const torch::Tensor proba = MultiModalPredictor::load(dir.file("target")).predict_proba(test);
    const bool is_old = torch::equal(proba, old_proba), is_new = torch::equal(proba, new_proba);
    EXPECT_TRUE(is_old || is_new) << "round " << round << ": the folder predicts neither the old nor the new model";
    saw_old += is_old;
    saw_new += is_new;
  }
  std::cout << "25 saves killed at random points: the folder held the old predictor " << saw_old
            << " times, the new one " << saw_new << " times, a broken one never\n";
  // Killed saves leave only temporary siblings (<name>.tmp-*), never a half folder at the target.
  for (const auto& entry : fs::directory_iterator(dir.path())) {
    const std::string name = entry.path().filename().string();
    EXPECT_TRUE(name == "target" || name == "source" || name.rfind("target.tmp-", 0) == 0) << name;
  }
}

TEST(PredictorSaveFaults, FullDiskLeavesThePreviousPredictor) {
  TempDir dir;
  const Table test = make_tabular_table(50, 9);
  const torch::Tensor old_proba = fitted(dir.file("target"), 1).predict_proba(test);
  fitted(dir.file("source"), 2);
  // A file-size limit below model.safetensors' size (RLIMIT_FSIZE, as a full disk would).
  const rlim_t limit = fs::file_size(dir.file("source/model.safetensors")) / 2;
  const pid_t pid = saver(dir.file("source"), dir.file("target"), limit, /*once=*/true);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << "the saving process died of signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  EXPECT_EQ(WEXITSTATUS(status), 3) << "the save should have failed";
  EXPECT_TRUE(torch::equal(MultiModalPredictor::load(dir.file("target")).predict_proba(test), old_proba));
  for (const auto& entry : fs::directory_iterator(dir.path()))
    EXPECT_EQ(entry.path().filename().string().find(".tmp-"), std::string::npos) << "a failed save cleans up";
}

}  // namespace
}  // namespace automm
