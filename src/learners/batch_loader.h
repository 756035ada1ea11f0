// Prepares batches on worker threads while the model computes (env.num_workers,
// env.num_workers_inference). Batches come back in index order whatever the
// number of workers, so results do not depend on it.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <vector>

namespace automm {

// Makes the calling thread's own tensor operations single-threaded. Each
// loader thread would otherwise start a full OpenMP team, and spinning teams
// oversubscribe the cores the model computes on.
void use_one_intra_op_thread_here();

template <typename T>
class BatchLoader {
 public:
  // make(i) builds batch i of [first, count). workers = 0 builds each batch in
  // next(); otherwise `workers` persistent threads build up to 2 * workers
  // batches ahead of the consumer.
  BatchLoader(int64_t first, int64_t count, int workers, std::function<T(int64_t)> make)
      : next_make_(first), next_return_(first), count_(count), window_(2 * workers), make_(std::move(make)) {
    if (workers < 0) throw std::invalid_argument("number of data-loading workers must be >= 0");
    for (int w = 0; w < workers; ++w) threads_.emplace_back([this] { work(); });
  }
  ~BatchLoader() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    changed_.notify_all();
    for (auto& t : threads_) t.join();
  }
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  // The next batch, or nullopt when all have been returned. Rethrows a worker's error.
  std::optional<T> next() {
    if (threads_.empty()) {
      if (next_return_ >= count_) return std::nullopt;
      return make_(next_return_++);
    }
    std::unique_lock<std::mutex> lock(mutex_);
    if (next_return_ >= count_) return std::nullopt;
    changed_.wait(lock, [&] { return ready_.count(next_return_) > 0; });
    auto node = ready_.extract(next_return_++);
    lock.unlock();
    changed_.notify_all();
    if (node.mapped().error) std::rethrow_exception(node.mapped().error);
    return std::move(node.mapped().value);
  }

 private:
  struct Slot {
    std::optional<T> value;
    std::exception_ptr error;
  };

  void work() {
    use_one_intra_op_thread_here();
    while (true) {
      int64_t index;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        changed_.wait(lock, [&] { return stop_ || next_make_ >= count_ || next_make_ < next_return_ + window_; });
        if (stop_ || next_make_ >= count_) return;
        index = next_make_++;
      }
      Slot slot;
      try {
        slot.value = make_(index);
      } catch (...) {
        slot.error = std::current_exception();
      }
      {
        std::lock_guard<std::mutex> lock(mutex_);
        ready_.emplace(index, std::move(slot));
      }
      changed_.notify_all();
    }
  }

  int64_t next_make_, next_return_, count_;
  int64_t window_;
  std::function<T(int64_t)> make_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::map<int64_t, Slot> ready_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace automm
