// Timing helpers and the GEMM peak probe shared by the bench/ executables.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <torch/torch.h>

namespace automm_bench {

using Clock = std::chrono::steady_clock;

inline double seconds(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Best of `repeats` timings of `work` (seconds per call).
template <typename F>
double best_time(int repeats, int calls, F&& work) {
  double best = INFINITY;
  for (int r = 0; r < repeats; ++r) {
    const auto start = Clock::now();
    for (int c = 0; c < calls; ++c) work();
    best = std::min(best, seconds(start) / calls);
  }
  return best;
}

// `warmup` untimed calls, then the median of `iters` timed calls (seconds per call).
template <typename F>
double median_time(int warmup, int iters, F&& work) {
  for (int i = 0; i < warmup; ++i) work();
  std::vector<double> times;
  for (int i = 0; i < std::max(iters, 1); ++i) {
    const auto start = Clock::now();
    work();
    times.push_back(seconds(start));
  }
  std::sort(times.begin(), times.end());
  const size_t n = times.size();
  return n % 2 ? times[n / 2] : 0.5 * (times[n / 2 - 1] + times[n / 2]);
}

// This machine's matmul peak: best of 3x5 n^3 products, in GFLOP/s.
inline double gemm_gflops(torch::Dtype dtype, int64_t n = 1024) {
  auto a = torch::randn({n, n}).to(dtype), b = torch::randn({n, n}).to(dtype);
  torch::NoGradGuard no_grad;
  const double t = best_time(3, 5, [&] { a.mm(b); });
  return 2.0 * n * n * n / t / 1e9;
}

// Peak resident set size of this process so far (VmHWM), in MiB; -1 if unreadable.
inline double peak_rss_mib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::atof(line.c_str() + 6) / 1024.0;  // kB
  return -1;
}

}  // namespace automm_bench
