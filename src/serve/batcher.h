// Dynamic batching: requests for the same endpoint that arrive within
// max_delay of the first are answered by one forward pass of up to max_batch
// rows, then split back, each request getting its own rows in order.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>

#include "serve/request.h"

namespace automm {

class DynamicBatcher {
 public:
  // on_batch(rows) is called once per forward pass (for /metrics).
  DynamicBatcher(const MultiModalPredictor& predictor, size_t max_batch, double max_delay_ms,
                 std::function<void(size_t rows)> on_batch);
  ~DynamicBatcher();

  // Blocks until the request's rows are answered; throws what predicting them threw.
  RowsAnswer submit(Endpoint endpoint, const Table& rows);
  // Answers what is queued, then ends the worker.
  void stop();

 private:
  using Clock = std::chrono::steady_clock;
  struct Job {
    Endpoint endpoint;
    const Table* rows;
    Clock::time_point arrived;
    std::promise<RowsAnswer> done;
  };
  void work();
  void run(const std::vector<Job*>& batch);

  const MultiModalPredictor& predictor_;
  const size_t max_batch_;
  const Clock::duration max_delay_;
  const std::function<void(size_t)> on_batch_;
  std::mutex mutex_;
  std::condition_variable arrived_;
  std::deque<Job*> queue_;
  bool stopping_ = false;
  std::thread worker_;
};

}  // namespace automm
