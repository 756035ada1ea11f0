// Text as a Hugging Face text model sees it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace automm {

// For each text, the token ids the model would see, special tokens included
// ([CLS] ids [SEP], or <s> ids </s>), cut to min(max_len, the model's maximum).
// `checkpoint`: a local folder, or a Hugging Face id found in the local cache.
std::vector<std::vector<int64_t>> model_token_ids(const std::string& checkpoint, const std::vector<std::string>& texts,
                                                  int64_t max_len = 512, const std::string& tokenizer_name = "hf_auto");

}  // namespace automm
