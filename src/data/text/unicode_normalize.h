// Unicode normalization forms and grapheme cluster boundaries from utf8proc
// (Debian's libutf8proc-dev), not from tables of our own.
#pragma once

#include <cstdint>
#include <string>

namespace automm {

enum class NormalForm { kNfc, kNfd, kNfkc, kNfkd };

// `utf8` in the normal form (Unicode's NFC, NFD, NFKC or NFKD, as Hugging Face
// tokenizers' normalizers of those names apply them). Invalid UTF-8 is an error
// naming `what`.
std::string normalize_unicode(const std::string& utf8, NormalForm form, const std::string& what);

// Extended grapheme clusters (UAX #29), one code point at a time: whether a
// cluster boundary lies between `previous` and `next`. `state` carries what the
// rules need across a cluster (regional indicator pairs, emoji ZWJ sequences);
// start each text with 0.
bool grapheme_break(char32_t previous, char32_t next, int32_t* state);

}  // namespace automm
