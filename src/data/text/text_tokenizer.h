// The tokenizer of a Hugging Face checkpoint folder, chosen from its files, and
// the special tokens a text model's sequences are built with.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "bpe_tokenizer.h"
#include "unigram_tokenizer.h"
#include "wordpiece_tokenizer.h"

namespace automm {

class TextTokenizer {
 public:
  // tokenizer_name (model.hf_text.tokenizer_name): "hf_auto" picks by the files
  // (tokenizer.json with a WordPiece or Unigram model, else vocab.txt, else
  // vocab.json + merges.txt, CLIP's when tokenizer_config.json or config.json
  // says so, else a sentencepiece .model converted as transformers does for
  // config.json's model_type); "bert" and "electra" require a WordPiece
  // vocabulary, "clip" a CLIP tokenizer (tokenizer.json or vocab.json + merges.txt).
  // Throws naming the folder and the files it looked for.
  static TextTokenizer from_folder(const std::string& folder, const std::string& tokenizer_name = "hf_auto");

  std::vector<int64_t> encode(const std::string& text) const;  // no special tokens
  int64_t cls_id() const { return cls_id_; }
  int64_t sep_id() const { return sep_id_; }
  int64_t pad_id() const { return pad_id_; }
  const std::string& kind() const { return kind_; }  // "wordpiece", "byte_level_bpe", "clip_bpe" or "unigram"

 private:
  std::shared_ptr<const WordPieceTokenizer> wordpiece_;
  std::shared_ptr<const ByteLevelBpeTokenizer> bpe_;
  std::shared_ptr<const UnigramTokenizer> unigram_;
  int64_t cls_id_ = -1, sep_id_ = -1, pad_id_ = -1;
  std::string kind_;
};

}  // namespace automm
