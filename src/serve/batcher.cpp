#include "serve/batcher.h"

#include <algorithm>

namespace automm {

DynamicBatcher::DynamicBatcher(const MultiModalPredictor& predictor, size_t max_batch, double max_delay_ms,
                               std::function<void(size_t)> on_batch)
    : predictor_(predictor),
      max_batch_(std::max<size_t>(max_batch, 1)),
      max_delay_(std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double, std::milli>(max_delay_ms))),
      on_batch_(std::move(on_batch)),
      worker_([this] { work(); }) {}

DynamicBatcher::~DynamicBatcher() { stop(); }

void DynamicBatcher::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  arrived_.notify_all();
  if (worker_.joinable()) worker_.join();
}

RowsAnswer DynamicBatcher::submit(Endpoint endpoint, const Table& rows) {
  Job job{endpoint, &rows, Clock::now(), {}};
  std::future<RowsAnswer> answer = job.done.get_future();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) throw std::runtime_error("the server is shutting down");
    queue_.push_back(&job);
  }
  arrived_.notify_all();
  return answer.get();
}

void DynamicBatcher::work() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    arrived_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, nothing left
    std::vector<Job*> batch{queue_.front()};
    queue_.pop_front();
    size_t rows = batch.front()->rows->num_rows();
    const Clock::time_point deadline = batch.front()->arrived + max_delay_;
    while (rows < max_batch_) {
      const auto fits = std::find_if(queue_.begin(), queue_.end(), [&](const Job* job) {
        return job->endpoint == batch.front()->endpoint && rows + job->rows->num_rows() <= max_batch_;
      });
      if (fits != queue_.end()) {
        rows += (*fits)->rows->num_rows();
        batch.push_back(*fits);
        queue_.erase(fits);
        continue;
      }
      if (stopping_ || Clock::now() >= deadline) break;
      arrived_.wait_until(lock, deadline);
    }
    lock.unlock();
    run(batch);
    lock.lock();
  }
}

void DynamicBatcher::run(const std::vector<Job*>& batch) {
  const auto answer_alone = [&](Job* job) {
    try {
      if (on_batch_) on_batch_(job->rows->num_rows());
      job->done.set_value(answer(predictor_, job->endpoint, *job->rows));
    } catch (...) {
      job->done.set_exception(std::current_exception());
    }
  };
  if (batch.size() == 1) return answer_alone(batch.front());
  std::vector<const Table*> tables;
  for (const Job* job : batch) tables.push_back(job->rows);
  RowsAnswer all;
  try {
    const Table merged = concatenate(tables);
    all = answer(predictor_, batch.front()->endpoint, merged);
    if (on_batch_) on_batch_(merged.num_rows());
  } catch (...) {
    // One request's rows failed the pass: each request alone, so only it fails.
    for (Job* job : batch) answer_alone(job);
    return;
  }
  size_t begin = 0;
  for (Job* job : batch) {
    const size_t end = begin + job->rows->num_rows();
    job->done.set_value(all.slice(begin, end));
    begin = end;
  }
}

}  // namespace automm
