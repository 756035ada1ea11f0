// The stderr sink and the process-wide sink pointer.
#include "automm/log.h"

#include <atomic>
#include <cstdio>
#include <mutex>
#include <unistd.h>

namespace automm {
namespace {

class StderrSink : public LogSink {
 public:
  StderrSink() : tty_(isatty(STDERR_FILENO) != 0) {}

  void message(LogLevel level, const std::string& text) override {
    std::lock_guard<std::mutex> lock(mutex_);
    std::fprintf(stderr, "%s%s%s\n", line_open_ ? "\r\033[K" : "", level == LogLevel::kWarning ? "Warning: " : "",
                 text.c_str());
    line_open_ = false;
    std::fflush(stderr);
  }

  // One line rewritten in place; nothing when stderr is a file (logs stay readable).
  void progress(const TrainingProgress& p) override {
    if (!tty_) return;
    std::lock_guard<std::mutex> lock(mutex_);
    const int width = 24;
    const int filled = static_cast<int>(width * (p.batch + 1) / std::max<int64_t>(p.batches, 1));
    std::fprintf(stderr, "\rEpoch %lld/%lld [%s%s] %lld/%lld loss %.4f   ", static_cast<long long>(p.epoch + 1),
                 static_cast<long long>(p.max_epochs), std::string(filled, '#').c_str(),
                 std::string(width - filled, '.').c_str(), static_cast<long long>(p.batch + 1),
                 static_cast<long long>(p.batches), p.loss);
    std::fflush(stderr);
    line_open_ = true;
  }

  void progress_end() override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (line_open_) std::fprintf(stderr, "\r\033[K");
    line_open_ = false;
  }

 private:
  const bool tty_;
  std::mutex mutex_;
  bool line_open_ = false;
};

std::mutex sink_mutex;
std::shared_ptr<LogSink>& current_sink() {
  static std::shared_ptr<LogSink> sink = std::make_shared<StderrSink>();
  return sink;
}

}  // namespace

void set_log_sink(std::shared_ptr<LogSink> sink) {
  std::lock_guard<std::mutex> lock(sink_mutex);
  current_sink() = sink ? std::move(sink) : std::make_shared<StderrSink>();
}

std::shared_ptr<LogSink> log_sink() {
  std::lock_guard<std::mutex> lock(sink_mutex);
  return current_sink();
}

void log_message(LogLevel level, const std::string& text) { log_sink()->message(level, text); }

}  // namespace automm
