// Work spread over threads in the data layer (reading tables, processors): every
// core, or AUTOMM_NUM_THREADS. Plain threads, so the data layer does not depend on
// LibTorch's intra-op thread count, which the learners set for the model.
#pragma once

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <thread>
#include <vector>

namespace automm {

inline size_t data_threads() {
  if (const char* value = std::getenv("AUTOMM_NUM_THREADS"))
    if (const int n = std::atoi(value); n > 0) return static_cast<size_t>(n);
  return std::clamp<size_t>(std::thread::hardware_concurrency(), 1, 64);
}

// Runs work(i) for i in [0, n), each on its own thread (i = 0 on the caller's);
// rethrows the error of the lowest i that failed, so that the first bad line of a
// file is the one reported.
template <class Work>
void run_parallel(size_t n, const Work& work) {
  std::vector<std::exception_ptr> errors(n);
  const auto guarded = [&](size_t i) {
    try {
      work(i);
    } catch (...) {
      errors[i] = std::current_exception();
    }
  };
  std::vector<std::thread> threads;
  for (size_t i = 1; i < n; ++i) threads.emplace_back(guarded, i);
  if (n > 0) guarded(0);
  for (std::thread& t : threads) t.join();
  for (const std::exception_ptr& e : errors)
    if (e) std::rethrow_exception(e);
}

// Threads worth starting for `cells` cells of work: one below 64K (a thread costs
// tens of microseconds to start: a one-row prediction stays on its caller's thread).
inline size_t threads_for(size_t cells) { return cells < (size_t{1} << 16) ? 1 : data_threads(); }

// work(item) for each item in [0, items), the items dealt round-robin to up to
// `threads` threads.
template <class Work>
void for_each_parallel(size_t items, size_t threads, const Work& work) {
  threads = std::max<size_t>(1, std::min(threads, items));
  run_parallel(threads, [&](size_t t) {
    for (size_t item = t; item < items; item += threads) work(item);
  });
}

}  // namespace automm
