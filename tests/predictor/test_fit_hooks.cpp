// What a host program (the Python package) hooks into a fit: the log sink that
// receives messages and progress, and the stop poll that ends a fit cleanly.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "automm/log.h"
#include "automm/predictor.h"
#include "test_util.h"

namespace automm {
namespace {

namespace fs = std::filesystem;
using automm::testing::make_tabular_table;
using automm::testing::TempDir;

class RecordingSink : public LogSink {
 public:
  void message(LogLevel level, const std::string& text) override { messages.push_back(text); }
  void progress(const TrainingProgress& p) override {
    ++progress_calls;
    last = p;
  }
  void progress_end() override { ++ends; }
  std::vector<std::string> messages;
  int progress_calls = 0, ends = 0;
  TrainingProgress last;
};

// Restores the stderr sink however the test ends.
struct SinkScope {
  explicit SinkScope(std::shared_ptr<LogSink> sink) { set_log_sink(std::move(sink)); }
  ~SinkScope() { set_log_sink(nullptr); }
};

PredictorOptions options_at(const std::string& path, bool verbose) {
  PredictorOptions options;
  options.label = "label";
  options.path = path;
  options.verbose = verbose;
  options.hyperparameters = {{"optim.max_epochs", 2}, {"optim.min_steps", 0}};
  return options;
}

std::string file_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(FitHooks, MessagesAndProgressGoToTheLogSink) {
  TempDir dir;
  auto sink = std::make_shared<RecordingSink>();
  SinkScope scope(sink);
  MultiModalPredictor predictor(options_at(dir.file("p"), /*verbose=*/true));
  predictor.fit(make_tabular_table(300, 1));
  EXPECT_GT(sink->progress_calls, 2);
  EXPECT_EQ(sink->last.max_epochs, 2);
  EXPECT_EQ(sink->last.batch + 1, sink->last.batches);  // the last report is an epoch's last batch
  EXPECT_GE(sink->ends, 1);
  const auto has = [&](const std::string& part) {
    for (const auto& m : sink->messages)
      if (m.find(part) != std::string::npos) return true;
    return false;
  };
  EXPECT_TRUE(has("binary problem")) << ::testing::PrintToString(sink->messages);
  EXPECT_TRUE(has("stopped: ")) << ::testing::PrintToString(sink->messages);

  // Not verbose: nothing at all.
  auto quiet = std::make_shared<RecordingSink>();
  set_log_sink(quiet);
  MultiModalPredictor(options_at(dir.file("q"), /*verbose=*/false)).fit(make_tabular_table(300, 1));
  EXPECT_EQ(quiet->progress_calls, 0);
  EXPECT_TRUE(quiet->messages.empty());
}

TEST(FitHooks, StopRequestedEndsTheFitAndKeepsTheSavedPredictor) {
  TempDir dir;
  const std::string path = dir.file("p");
  const Table train = make_tabular_table(300, 1);
  const Table test = make_tabular_table(50, 2);
  MultiModalPredictor(options_at(path, false)).fit(train);
  const std::string model_before = file_bytes(fs::path(path) / "model.safetensors");
  const std::string meta_before = file_bytes(fs::path(path) / "predictor.json");
  const torch::Tensor before = MultiModalPredictor::load(path).predict_proba(test);

  int polls = 0;
  FitOptions fit;
  fit.stop_requested = [&] { return ++polls == 3; };
  MultiModalPredictor again(options_at(path, false));
  try {
    again.fit(train, fit);
    FAIL() << "fit did not stop";
  } catch (const FitInterrupted& e) {
    EXPECT_NE(std::string(e.what()).find("fit interrupted at epoch 1"), std::string::npos) << e.what();
  }
  EXPECT_EQ(polls, 3);
  EXPECT_EQ(file_bytes(fs::path(path) / "model.safetensors"), model_before);
  EXPECT_EQ(file_bytes(fs::path(path) / "predictor.json"), meta_before);
  EXPECT_TRUE(torch::equal(MultiModalPredictor::load(path).predict_proba(test), before));
}

}  // namespace
}  // namespace automm
