// A Hugging Face tokenizer.json (WordPiece, byte-level BPE or Unigram model with
// its normalizers and pre-tokenizers), loaded and used.
#include "tokenizer_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  automm::fuzz::tokenizer_file("tokenizer.json", data, size);
  automm::fuzz::load_and_encode();
  return 0;
}
