// A GPT-2 / RoBERTa vocab.json + merges.txt pair: the input holds both, split
// at its first NUL byte.
#include <algorithm>

#include "tokenizer_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const uint8_t* end = data + size;
  const uint8_t* split = std::find(data, end, 0);
  if (split == end) return 0;
  automm::fuzz::tokenizer_file("vocab.json", data, split - data);
  automm::fuzz::tokenizer_file("merges.txt", split + 1, end - split - 1);
  automm::fuzz::load_and_encode();
  return 0;
}
