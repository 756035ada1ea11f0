// The tokenizer harnesses: a checkpoint folder holding the fuzzed file(s),
// loaded as a text backbone loads it, then used on a few texts.
#pragma once
#include <cstring>
#include <string>

#include "data/text/text_tokenizer.h"
#include "fuzz_util.h"

namespace automm::fuzz {

inline const std::string& tokenizer_folder() {
  static const std::string folder = [] {
    std::filesystem::create_directories(scratch_dir() / "tokenizer");
    return (scratch_dir() / "tokenizer").string();
  }();
  return folder;
}

inline void tokenizer_file(const std::string& name, const uint8_t* data, size_t size) {
  scratch_file(std::filesystem::path(tokenizer_folder()).filename().string() + "/" + name, data, size);
}

// Loads the folder's tokenizer and encodes texts that reach the normalizers'
// and pre-tokenizers' branches: accents, CJK, emoji, controls, invalid UTF-8.
inline void load_and_encode() {
  expect_result_or_error([] {
    const TextTokenizer tokenizer = TextTokenizer::from_folder(tokenizer_folder());
    for (const char* text : {"Hello, World! don't stop", "na\xC3\xAFve caf\xC3\xA9 \xE6\x9D\xB1\xE4\xBA\xAC \xF0\x9F\x98\x80",
                             "  tabs\tand\nnew lines  ", "bad \xFF\xFE utf8 \xC3", ""})
      tokenizer.encode(text);
  });
}

}  // namespace automm::fuzz
