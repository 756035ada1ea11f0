#include "unicode_props.h"

#include <algorithm>
#include <cstdint>
#include <iterator>

namespace automm {
namespace {

struct CodeRange {
  char32_t first, last;
};
struct CombiningClassRange {
  char32_t first, last;
  int ccc;
};
struct LowercaseRun {
  char32_t first, last;
  int32_t delta;
  int32_t stride;
};
struct LowercaseMulti {
  char32_t cp;
  char32_t out[3];  // zero-padded
};
struct DecompositionEntry {
  char32_t cp;
  int offset, length;  // into kDecompositionData
};

// The tables are generated (see tests/tokenizer_reference/gen_unicode_tables.py)
// from the reference implementation itself: Hugging Face mixes Unicode
// versions, so no single copy of the Unicode data reproduces it.
#include "unicode_tables.inc"

template <size_t N>
bool in_ranges(const CodeRange (&ranges)[N], char32_t cp) {
  auto it = std::upper_bound(std::begin(ranges), std::end(ranges), cp,
                             [](char32_t c, const CodeRange& r) { return c < r.first; });
  return it != std::begin(ranges) && cp <= std::prev(it)->last;
}

int combining_class(char32_t cp) {
  auto it = std::upper_bound(std::begin(kCombiningClassRanges), std::end(kCombiningClassRanges),
                             cp, [](char32_t c, const CombiningClassRange& r) { return c < r.first; });
  if (it == std::begin(kCombiningClassRanges)) return 0;
  --it;
  return cp <= it->last ? it->ccc : 0;
}


}  // namespace

bool is_unicode_whitespace(char32_t c) { return in_ranges(kWhitespaceRanges, c); }
bool is_unicode_punctuation(char32_t c) { return in_ranges(kPunctuationRanges, c); }
bool is_bert_control(char32_t c) { return in_ranges(kControlRanges, c); }
bool is_chinese_char(char32_t c) { return in_ranges(kChineseRanges, c); }
bool is_nonspacing_mark(char32_t c) { return in_ranges(kNonspacingMarkRanges, c); }
bool is_combining_mark(char32_t c) { return in_ranges(kCombiningMarkRanges, c); }

void append_lowercase(char32_t cp, std::u32string* out) {
  for (const auto& m : kLowercaseMulti) {
    if (m.cp == cp) {
      for (char32_t c : m.out) {
        if (c) out->push_back(c);
      }
      return;
    }
  }
  auto it = std::upper_bound(std::begin(kLowercaseRuns), std::end(kLowercaseRuns), cp,
                             [](char32_t c, const LowercaseRun& r) { return c < r.first; });
  if (it != std::begin(kLowercaseRuns)) {
    --it;
    if (cp <= it->last && (cp - it->first) % static_cast<char32_t>(it->stride) == 0) {
      out->push_back(static_cast<char32_t>(static_cast<int64_t>(cp) + it->delta));
      return;
    }
  }
  out->push_back(cp);
}

namespace {
void append_decomposition(char32_t cp, std::u32string* out) {
  // Hangul syllables decompose algorithmically (Unicode 3.12) into jamo,
  // which the BERT vocabularies contain.
  constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
  constexpr char32_t kTCount = 28, kNCount = 21 * 28, kSCount = 19 * 21 * 28;
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const char32_t s = cp - kSBase;
    out->push_back(kLBase + s / kNCount);
    out->push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount) out->push_back(kTBase + s % kTCount);
    return;
  }
  auto it = std::lower_bound(std::begin(kDecompositions), std::end(kDecompositions), cp,
                             [](const DecompositionEntry& e, char32_t c) { return e.cp < c; });
  if (it != std::end(kDecompositions) && it->cp == cp) {
    out->append(kDecompositionData + it->offset, kDecompositionData + it->offset + it->length);
  } else {
    out->push_back(cp);
  }
}

}  // namespace

std::u32string nfd(const std::u32string& in) {
  std::u32string out;
  out.reserve(in.size());
  for (char32_t c : in) append_decomposition(c, &out);
  // Canonical ordering: stable sort of each run of non-starters by class.
  size_t i = 0;
  while (i < out.size()) {
    if (combining_class(out[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < out.size() && combining_class(out[j]) != 0) ++j;
    std::stable_sort(out.begin() + i, out.begin() + j, [](char32_t a, char32_t b) {
      return combining_class(a) < combining_class(b);
    });
    i = j;
  }
  return out;
}

}  // namespace automm
