// How large a tokenizer file's vocabulary and merge list may be. The largest
// published vocabularies hold about 256k tokens; a tokenizer.json with a million
// merges loads in about 8 s and 0.9 GB (docs/hardening.md). Beyond the limit a
// file is refused before its entries are built.
#pragma once
#include <cstddef>
#include <stdexcept>
#include <string>

namespace automm {

inline constexpr size_t kMaxTokenizerEntries = size_t{1} << 21;  // 2,097,152

// Throws naming `source` when `count` entries of `what` ("vocabulary",
// "merge list") pass kMaxTokenizerEntries.
inline void check_tokenizer_entries(size_t count, const std::string& what, const std::string& source) {
  if (count > kMaxTokenizerEntries)
    throw std::runtime_error(source + ": the " + what + " holds " + std::to_string(count) + " entries, more than the " +
                             std::to_string(kMaxTokenizerEntries) + " a tokenizer may have");
}

}  // namespace automm
