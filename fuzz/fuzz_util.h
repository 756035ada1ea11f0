// What the libFuzzer harnesses share: a scratch folder for readers that take a
// path, and the rule every harness checks. A reader given any bytes either
// returns a result or throws an exception with a message; a crash, a sanitizer
// report, a leak, a hang or an escaped non-std exception is a finding.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

#include <torch/torch.h>

#include "automm/log.h"

namespace automm::fuzz {

// A folder of this process's own under /dev/shm (memory, no disk wear), or
// TMPDIR where /dev/shm is missing. Removed at exit.
inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    std::filesystem::path base = std::filesystem::exists("/dev/shm") ? "/dev/shm" : std::filesystem::temp_directory_path();
    std::filesystem::path path = base / ("automm_fuzz_" + std::to_string(getpid()));
    std::filesystem::create_directories(path);
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove_all(scratch_dir(), ignored);
    });
    return path;
  }();
  return dir;
}

inline std::string scratch_file(const std::string& name, const uint8_t* data, size_t size) {
  const std::filesystem::path path = scratch_dir() / name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return path.string();
}

inline std::string as_string(const uint8_t* data, size_t size) {
  return std::string(reinterpret_cast<const char*>(data), size);
}

// Runs a reader on fuzzed input. Its documented failure is an exception with a
// message; an empty message is a finding too (the user would learn nothing).
template <typename Read>
void expect_result_or_error(Read&& read) {
  try {
    read();
  } catch (const std::exception& e) {
    if (e.what() == nullptr || e.what()[0] == '\0') std::abort();
  }
}

// One intra-op thread (libFuzzer runs one input at a time) and no log output.
inline void quiet_single_thread() {
  struct Silent : LogSink {
    void message(LogLevel, const std::string&) override {}
    void progress(const TrainingProgress&) override {}
  };
  torch::set_num_threads(1);
  set_log_sink(std::make_shared<Silent>());
}

}  // namespace automm::fuzz

// A harness whose reader may log or use LibTorch: quiet, one thread.
#define AUTOMM_FUZZ_QUIET_SINGLE_THREAD()                  \
  extern "C" int LLVMFuzzerInitialize(int*, char***) {     \
    automm::fuzz::quiet_single_thread();                   \
    return 0;                                              \
  }
