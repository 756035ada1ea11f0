// UTF-8 decoding and encoding shared by the tokenizers. Decoding never throws:
// a byte that does not start a well-formed sequence (overlong, surrogate,
// > U+10FFFF, truncated) reads as one invalid character, U+FFFD.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace automm {

struct Utf8Char {
  char32_t cp;           // U+FFFD when !valid
  uint32_t start, len;   // the bytes it spans in the input
  bool valid;
};

std::vector<Utf8Char> decode_utf8_chars(const std::string& s);
std::u32string decode_utf8(const std::string& s);
void append_utf8(char32_t cp, std::string* out);

}  // namespace automm
