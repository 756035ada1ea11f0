// Helpers shared by the tokenizer tests that compare against Hugging Face
// tokenizers' node binding (test_wordpiece_tokenizer.cpp, test_bpe_tokenizer.cpp,
// test_unigram_tokenizer.cpp): where the node references live, running one
// with its stderr kept for the failure message, and printing id lists.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/text/utf8.h"
#include "test_util.h"

#ifndef AUTOMM_SOURCE_DIR
#include "automm_test_paths.h"
#endif

namespace automm::testing {

// tests/tokenizer_reference: the node scripts and their node_modules.
inline const std::string& tokenizer_reference_dir() {
  static const std::string dir = std::string(AUTOMM_SOURCE_DIR) + "/tests/tokenizer_reference";
  return dir;
}

inline std::string utf8(char32_t cp) {
  std::string out;
  append_utf8(cp, &out);
  return out;
}

// "" when every npm package is installed, else which one is missing and how to install it.
inline std::string missing_npm_package(const std::vector<std::string>& packages) {
  const std::string modules = tokenizer_reference_dir() + "/node_modules";
  for (const auto& package : packages) {
    if (!std::filesystem::exists(modules + "/" + package + "/package.json")) {
      return "npm package " + package + " is missing under " + modules +
             ": run `bash tests/tokenizer_reference/setup.sh`";
    }
  }
  return "";
}

// Runs `node tests/tokenizer_reference/SCRIPT ARGS > OUT_PATH` with stderr in
// DIR/stderr.txt. Returns "" on success, else the command, its stderr and the
// setup hint.
inline std::string run_node_reference(const std::string& script, const std::string& args,
                                      const std::string& out_path, const TempDir& dir) {
  const std::string err_path = dir.file("stderr.txt");
  const std::string cmd = "node \"" + tokenizer_reference_dir() + "/" + script + "\" " + args + " > \"" +
                          out_path + "\" 2> \"" + err_path + "\"";
  if (std::system(cmd.c_str()) == 0) return "";
  std::ifstream e(err_path);
  std::stringstream ss;
  ss << e.rdbuf();
  return "reference failed: " + cmd + "\n" + ss.str() + "\n(run `bash tests/tokenizer_reference/setup.sh`)";
}

// Writes one JSON string per line, the sentence files the node references read.
inline void write_jsonl_sentences(const std::string& path, const std::vector<std::string>& sentences) {
  std::ofstream f(path, std::ios::binary);
  for (const auto& s : sentences) f << nlohmann::json(s).dump() << '\n';
}

// --- Pieces of the generated test sentences (each test keeps its own mix and seed).

// rng.below(max_pieces) pieces, joined by random separators.
inline std::string joined_pieces(XorShiftRng& rng, const std::vector<std::string>& pieces,
                                 const std::vector<std::string>& separators, size_t max_pieces) {
  std::string s;
  const size_t n = rng.below(max_pieces);
  for (size_t i = 0; i < n; ++i) {
    if (i) s += separators[rng.below(separators.size())];
    s += pieces[rng.below(pieces.size())];
  }
  return s;
}

// 1 + rng.below(max_points) random code points, mostly from the busy ranges (no
// surrogates: they are not valid UTF-8), each followed with probability 1/3 by
// one of `gaps`.
inline std::string random_code_points(XorShiftRng& rng, size_t max_points, const std::string& gaps) {
  std::string s;
  const size_t n = 1 + rng.below(max_points);
  for (size_t i = 0; i < n; ++i) {
    s += utf8(random_code_point(rng));
    if (rng.below(3) == 0) s += gaps.size() == 1 ? gaps[0] : gaps[rng.below(gaps.size())];
  }
  return s;
}

// 1 + rng.below(40) of `bits` glued together.
inline std::string glued_bits(XorShiftRng& rng, const std::vector<std::string>& bits) {
  std::string s;
  const size_t n = 1 + rng.below(40);
  for (size_t i = 0; i < n; ++i) s += bits[rng.below(bits.size())];
  return s;
}

// "[1,2,3]", for failure messages.
inline std::string join_ids(const std::vector<int64_t>& ids) {
  std::string s = "[";
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? "," : "") + std::to_string(ids[i]);
  return s + "]";
}

}  // namespace automm::testing
