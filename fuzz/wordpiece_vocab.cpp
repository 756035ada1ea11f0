// A BERT vocab.txt (one token per line), with the tokenizer_config.json that
// says whether it lowercases.
#include "tokenizer_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const char* config = data[0] % 2 == 0 ? "{\"do_lower_case\": true}" : "{\"do_lower_case\": false}";
  automm::fuzz::tokenizer_file("tokenizer_config.json", reinterpret_cast<const uint8_t*>(config), strlen(config));
  automm::fuzz::tokenizer_file("vocab.txt", data + 1, size - 1);
  automm::fuzz::load_and_encode();
  return 0;
}
