#pragma once
// Sentencepiece Unigram tokenizer (DeBERTa-v3, XLM-RoBERTa, ALBERT, T5),
// reproducing Hugging Face tokenizers' pipeline id for id: added tokens
// matched verbatim, normalizers (Precompiled, Replace, Strip, Lowercase, NFD,
// Sequence), the Metaspace pre-tokenizer and the Unigram model (Viterbi
// segmentation over the pieces' log probabilities, byte fallback, fused unk).
// Needs no torch, so that data preparation can use it on its own.

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "unicode_normalize.h"

namespace automm {

// Sentencepiece's precompiled_charsmap, as tokenizer.json's Precompiled
// normalizer carries it (base64) and a .model file's normalizer_spec holds it:
//   u32 little-endian trie_size | trie_size bytes: darts-clone double array of
//   u32 units | the normalized strings, each NUL-terminated.
// The trie maps UTF-8 byte keys to the offset of their replacement string.
class PrecompiledCharsmap {
 public:
  // Throws std::runtime_error naming `source` when the blob is malformed.
  static PrecompiledCharsmap from_blob(const std::string& blob, const std::string& source);
  // As Hugging Face applies it: each grapheme cluster under 6 bytes is looked
  // up whole (shortest key that is a prefix of it wins), else each character.
  std::string normalize(const std::string& utf8) const;
  // Replacement of the shortest key that prefixes `bytes`; false if none.
  bool lookup(const char* bytes, size_t len, std::string* out) const;

 private:
  std::vector<uint32_t> units_;
  std::string normalized_;
};

// How a raw sentencepiece .model is turned into a tokenizer, as transformers'
// convert_slow_tokenizer.py does for the checkpoint's model type.
struct SentencePieceConversion {
  std::string model_type;      // config.json model_type: "xlm-roberta" shifts ids (fairseq)
  bool lowercase = false;      // tokenizer_config.json do_lower_case (DeBERTa-v2/v3)
};

class UnigramTokenizer {
 public:
  // tokenizer.json with model Unigram. Throws std::runtime_error naming the
  // file and the component (normalizer, pre_tokenizer, ...) it cannot handle.
  static UnigramTokenizer from_tokenizer_json(const std::string& path);
  // A sentencepiece ModelProto (spiece.model, spm.model,
  // sentencepiece.bpe.model) of model_type UNIGRAM.
  static UnigramTokenizer from_sentencepiece_model(const std::string& path,
                                                   const SentencePieceConversion& conversion = {});

  // Token ids without special tokens. Invalid UTF-8 bytes read as U+FFFD.
  std::vector<int64_t> encode(const std::string& text) const;
  std::vector<std::string> tokenize(const std::string& text) const;
  std::string normalize(const std::string& text) const;  // the normalizer alone

  int64_t token_to_id(const std::string& token) const;  // throws if absent
  const std::string& id_to_token(int64_t id) const;     // throws if out of range
  // [CLS]/<s>/<cls>, [SEP]/</s>/<sep>, [PAD]/<pad>; throw if none is known.
  int64_t cls_id() const;
  int64_t sep_id() const;
  int64_t pad_id() const;
  int64_t unk_id() const { return unk_id_; }  // -1 when the model has none
  size_t vocab_size() const { return pieces_.size(); }

  // One normalizer step (public for the parser in the .cpp).
  struct NormStep {
    enum class Kind { kPrecompiled, kReplace, kReplaceSpaceRuns, kStrip, kLowercase, kUnicodeForm } kind;
    std::string pattern, content;  // kReplace: literal pattern; kReplaceSpaceRuns: content
    bool left = false, right = false;  // kStrip
    std::shared_ptr<const PrecompiledCharsmap> charsmap;
    NormalForm form = NormalForm::kNfd;  // kUnicodeForm: NFC, NFD, NFKC or NFKD
  };
  enum class PrependScheme { kAlways, kFirst, kNever };

 private:
  UnigramTokenizer() = default;
  struct AddedToken {
    std::string content;
    int64_t id;
    bool lstrip, rstrip;
  };
  struct TrieNode {
    std::unordered_map<unsigned char, int32_t> next;
    int64_t id = -1;
  };
  void index_pieces();  // piece_ids_, once
  void finish_init();
  void add_token(const std::string& content, int64_t id, bool lstrip, bool rstrip);
  void encode_segment(const std::string& segment, bool at_text_start, std::vector<int64_t>* ids) const;
  void viterbi(const std::string& word, std::vector<int64_t>* ids) const;
  int64_t first_known(const std::vector<std::string>& tokens, const char* what) const;

  std::string source_;  // file, for error messages
  std::vector<std::pair<std::string, double>> pieces_;  // id -> (piece, log prob)
  std::unordered_map<std::string, int64_t> piece_ids_;  // the last id of a repeated piece
  std::vector<std::string> id_to_token_;                // pieces and added tokens
  std::unordered_map<std::string, int64_t> token_ids_;
  std::vector<TrieNode> trie_;
  int64_t unk_id_ = -1;
  double unk_score_ = 0;
  bool byte_fallback_ = false;
  int64_t byte_ids_[256];  // <0xNN> ids, -1 if absent
  std::vector<NormStep> normalizer_;
  std::string replacement_ = "\xE2\x96\x81";  // U+2581 "▁"
  PrependScheme prepend_ = PrependScheme::kAlways;
  bool split_ = true;
  std::vector<AddedToken> added_tokens_;  // longest first
};

}  // namespace automm
