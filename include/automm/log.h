// Where the library's messages and training progress go: by default stderr, the
// progress as one line rewritten in place when stderr is a terminal. The Python
// package routes both into Python's logging and a progress bar.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace automm {

enum class LogLevel { kInfo, kWarning };

// The position of a fit, reported after every training batch.
struct TrainingProgress {
  int64_t epoch = 0;       // 0-based
  int64_t max_epochs = 0;
  int64_t batch = 0;       // 0-based, within the epoch
  int64_t batches = 0;     // per epoch
  int64_t step = 0;        // optimizer steps so far
  double loss = 0.0;       // of this batch
};

class LogSink {
 public:
  virtual ~LogSink() = default;
  virtual void message(LogLevel level, const std::string& text) = 0;
  virtual void progress(const TrainingProgress& progress) = 0;
  // Training ended (finished, stopped early or failed): a progress bar closes.
  virtual void progress_end() {}
};

// Replaces the process-wide sink; nullptr restores the stderr sink. Safe to call
// from any thread; a message being written finishes on the sink it started on.
void set_log_sink(std::shared_ptr<LogSink> sink);
std::shared_ptr<LogSink> log_sink();
void log_message(LogLevel level, const std::string& text);

}  // namespace automm
