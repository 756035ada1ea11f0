// A sentencepiece .model protobuf (T5 / ALBERT / XLM-R style spiece.model),
// converted as transformers does for a T5 checkpoint.
#include "tokenizer_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool config_written = [] {
    const std::string config = "{\"model_type\": \"t5\"}";
    automm::fuzz::tokenizer_file("config.json", reinterpret_cast<const uint8_t*>(config.data()), config.size());
    return true;
  }();
  (void)config_written;
  automm::fuzz::tokenizer_file("spiece.model", data, size);
  automm::fuzz::load_and_encode();
  return 0;
}
