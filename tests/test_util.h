// Helpers shared by the tests: temporary folders and generated tables.
#pragma once

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "automm/table.h"

namespace automm::testing {

// A fresh folder under the system temp dir, removed when the object dies.
class TempDir {
 public:
  TempDir() {
    std::random_device device;
    path_ = std::filesystem::temp_directory_path() / ("automm_test_" + std::to_string(device()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Sets environment variables for one test (unset when the value is empty) and
// restores the caller's values when it dies, so that a test never sees the
// user's settings (~/.cache, HF_TOKEN) and never leaks its own.
class ScopedEnv {
 public:
  ScopedEnv(std::initializer_list<std::pair<std::string, std::string>> values = {}) {
    for (const auto& [name, value] : values) set(name, value);
  }
  ~ScopedEnv() {
    for (auto it = saved_.rbegin(); it != saved_.rend(); ++it) {
      if (it->second) setenv(it->first.c_str(), it->second->c_str(), 1);
      else unsetenv(it->first.c_str());
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;
  void set(const std::string& name, const std::string& value) {
    const char* old = std::getenv(name.c_str());
    saved_.emplace_back(name, old ? std::optional<std::string>(old) : std::nullopt);
    if (value.empty()) unsetenv(name.c_str());
    else setenv(name.c_str(), value.c_str(), 1);
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

// The Hugging Face hub cache variables for one test (unset when empty):
// HF_HUB_CACHE, HF_HOME, XDG_CACHE_HOME and HOME. Offline also sets
// HF_HUB_OFFLINE, so that a model missing from the test's caches is never
// looked for on the network; online unsets HF_HUB_OFFLINE,
// TRANSFORMERS_OFFLINE, HF_ENDPOINT and HF_TOKEN, so the user's never reach
// the test's downloads.
class HubCacheEnv : public ScopedEnv {
 public:
  enum class Hub { kOffline, kOnline };
  HubCacheEnv(const std::string& hub_cache, const std::string& hf_home, const std::string& xdg_cache_home,
              const std::string& home, Hub hub = Hub::kOffline)
      : ScopedEnv({{"HF_HUB_CACHE", hub_cache},
                   {"HF_HOME", hf_home},
                   {"XDG_CACHE_HOME", xdg_cache_home},
                   {"HOME", home}}) {
    if (hub == Hub::kOffline) {
      set("HF_HUB_OFFLINE", "1");
      return;
    }
    for (const char* name : {"HF_ENDPOINT", "HF_TOKEN", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"}) set(name, "");
  }
};

// The message of whatever fn throws; "" when it does not throw.
template <typename Fn>
std::string error_of(Fn fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

inline bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Reference tools (Debian's python3-torch, torchvision, PIL, node packages). A
// test skips only when a tool is absent, naming the Debian package that brings
// it; a reference that is there and fails fails the test with its log.
//
// "" when /usr/bin/python3 imports `modules` ("torch, numpy"); otherwise why not,
// naming `packages` to install and `what` the reference is for.
inline std::string python_reference_missing(const std::string& modules, const std::string& packages,
                                            const std::string& what) {
  if (!std::filesystem::exists("/usr/bin/python3"))
    return "/usr/bin/python3 is missing: install Debian's python3 (scripts/setup.sh) to run " + what;
  if (std::system(("/usr/bin/python3 -c 'import " + modules + "' >/dev/null 2>&1").c_str()) != 0)
    return "/usr/bin/python3 cannot import " + modules + ": install Debian's " + packages +
           " (scripts/setup.sh) to run " + what;
  return "";
}

// Runs `command` (a shell command line) with stdout and stderr appended to `log`.
// "" on success; otherwise the command, its exit status and the log.
inline std::string run_reference_command(const std::string& command, const std::string& log) {
  const int status = std::system(("( " + command + " ) >>'" + log + "' 2>&1").c_str());
  if (status == 0) return "";
  std::ifstream in(log, std::ios::binary);
  return "reference failed (status " + std::to_string(status) + "): " + command + "\n" +
         std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Substring check with a readable failure message (gmock is not linked).
inline ::testing::AssertionResult Contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << text << "' does not contain '" << part << "'";
}

// Runs fn, expects it to throw E, and returns the message.
template <typename E, typename Fn>
std::string message_of(Fn&& fn) {
  try {
    fn();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw the wrong exception type: " << e.what();
    return "";
  }
  ADD_FAILURE() << "did not throw";
  return "";
}

// A xorshift generator: the same numbers on every platform, for generated test inputs.
class XorShiftRng {
 public:
  explicit XorShiftRng(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    state_ ^= state_ << 13;
    state_ ^= state_ >> 7;
    state_ ^= state_ << 17;
    return state_;
  }
  size_t below(size_t n) { return static_cast<size_t>(next() % n); }

 private:
  uint64_t state_;
};

// A random code point, mostly from the busy ranges of the tokenizers' Unicode
// tables (assigned or not; never a surrogate, which is not valid UTF-8).
inline char32_t random_code_point(XorShiftRng& rng) {
  switch (rng.below(6)) {
    case 0: return static_cast<char32_t>(rng.below(0x250));
    case 1: return static_cast<char32_t>(0x370 + rng.below(0x500 - 0x370));
    case 2: return static_cast<char32_t>(0x1E00 + rng.below(0x2200));
    case 3: return static_cast<char32_t>(rng.below(0xD800));
    case 4: return static_cast<char32_t>(0xE000 + rng.below(0x10000 - 0xE000));
    default: return static_cast<char32_t>(0x10000 + rng.below(0x30000));
  }
}

inline void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

inline Column make_column(const std::string& name, const std::vector<std::string>& cells) {
  return Column::from_cells(name, cells);
}

// A column's texts ("" where missing) and presence flags, for comparisons.
inline std::vector<std::string> cells(const Column& column) {
  std::vector<std::string> out;
  for (size_t r = 0; r < column.size(); ++r) out.push_back(column.text(r));
  return out;
}
inline std::vector<uint8_t> presence(const Column& column) {
  std::vector<uint8_t> out;
  for (size_t r = 0; r < column.size(); ++r) out.push_back(column.is_missing(r) ? 0 : 1);
  return out;
}
// Replaces a column's cells (a missing-value token, "" included, becomes missing).
inline void set_cells(Table& table, const std::string& name, const std::vector<std::string>& texts) {
  Column& column = table.column(name);
  column = Column::from_cells(name, texts);
}

// A table whose label depends on a categorical column (color, size) and on
// numerical columns (x1, x2); "noise" and "city" carry no signal.
// task: "binary" (yes/no), "multiclass" (low/mid/high) or "regression".
inline Table make_tabular_table(size_t rows, uint64_t seed, const std::string& task = "binary") {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_int_distribution<int> pick(0, 1 << 20);
  const std::vector<std::pair<std::string, double>> colors = {
      {"red", 1.6}, {"green", 0.0}, {"blue", -1.6}, {"yellow", 0.6}};
  const std::vector<std::pair<std::string, double>> sizes = {{"S", -1.0}, {"M", 0.0}, {"L", 1.0}};
  const std::vector<std::string> cities = {"Oslo", "Lima", "Pune", "Kyiv", "Doha"};
  Column color("color"), size("size"), x1("x1"), x2("x2"),
      noise("noise"), city("city"), label("label");
  for (size_t r = 0; r < rows; ++r) {
    const auto& c = colors[pick(rng) % colors.size()];
    const auto& s = sizes[pick(rng) % sizes.size()];
    const double a = normal(rng), b = normal(rng);
    const double score = 1.2 * a - 0.9 * b + c.second + s.second;
    color.push(c.first, true);
    size.push(s.first, true);
    x1.push(std::to_string(a), true);
    x2.push(std::to_string(b), true);
    noise.push(std::to_string(normal(rng)), true);
    city.push(cities[pick(rng) % cities.size()], true);
    if (task == "binary") label.push(score > 0 ? "yes" : "no", true);
    else if (task == "multiclass") label.push(score < -1 ? "low" : score < 1 ? "mid" : "high", true);
    else label.push(std::to_string(3.0 * score + 0.5 * std::sin(3 * a)), true);
  }
  Table table;
  for (Column* column : {&color, &size, &x1, &x2, &noise, &city, &label}) table.add_column(std::move(*column));
  table.source = "generated";
  return table;
}

}  // namespace automm::testing
