#pragma once
// BERT WordPiece tokenizer, reproducing Hugging Face's BertTokenizerFast
// (tokenizers: BertNormalizer + BertPreTokenizer + WordPiece) id for id.
// Needs no torch, so that data preparation can use it on its own.

#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

namespace automm {

struct WordPieceOptions {
  bool lowercase = true;
  // tokenizer.json may leave strip_accents unset; Hugging Face then strips
  // accents exactly when it lowercases, which from_tokenizer_json mirrors.
  bool strip_accents = true;
  bool handle_chinese_chars = true;
  bool clean_text = true;
  std::string unk_token = "[UNK]";
  std::string continuing_prefix = "##";
  int max_input_chars_per_word = 100;
};

class WordPieceTokenizer {
 public:
  // vocab.txt: one token per line, id = line number (0-based). Like
  // BertTokenizerFast, the special tokens [PAD] [UNK] [CLS] [SEP] [MASK] that
  // the vocabulary holds are matched verbatim in the input text.
  static WordPieceTokenizer from_vocab_file(const std::string& vocab_txt,
                                            WordPieceOptions options = {});
  // Hugging Face tokenizer.json with model WordPiece, normalizer BertNormalizer
  // (or a Sequence of NFD / Lowercase / StripAccents / BertNormalizer, or none)
  // and pre_tokenizer BertPreTokenizer. Throws std::runtime_error naming the
  // file and the component for anything else.
  static WordPieceTokenizer from_tokenizer_json(const std::string& path);

  // Token ids without [CLS]/[SEP]. Invalid UTF-8 bytes read as U+FFFD.
  std::vector<int64_t> encode(const std::string& text) const;
  std::vector<std::string> tokenize(const std::string& text) const;
  // The normalized, pre-tokenized words before WordPiece splits them (special
  // tokens are not matched): what a vocabulary is learned from.
  std::vector<std::string> words(const std::string& text) const;
  // A tokenizer with BERT's normalization (lowercase, strip accents) over
  // `vocabulary` (id = position); for vocabularies built in memory.
  static WordPieceTokenizer from_vocabulary(const std::vector<std::string>& vocabulary, WordPieceOptions options = {},
                                            const std::string& source = "in-memory vocabulary");

  int64_t token_to_id(const std::string& token) const;  // throws if absent
  const std::string& id_to_token(int64_t id) const;     // throws if out of range
  int64_t cls_id() const;
  int64_t sep_id() const;
  int64_t pad_id() const;
  int64_t unk_id() const;
  size_t vocab_size() const { return id_to_token_.size(); }

  // One step of the normalizer pipeline, in the order given.
  enum class NormStep { kCleanText, kChineseChars, kNfd, kStripNonspacingMarks,
                        kStripCombiningMarks, kLowercase };

 private:
  WordPieceTokenizer() = default;
  void finish_init(const std::string& source);
  // Normalized, pre-tokenized words of a text segment (code points).
  void encode_segment(const std::u32string& segment, std::vector<int64_t>* ids) const;
  void split_words(const std::u32string& segment,
                   const std::function<void(const std::string& word, size_t n_chars)>& sink) const;
  void wordpiece(const std::string& word, size_t n_chars, std::vector<int64_t>* ids) const;

  std::string source_;  // file the vocabulary came from, for error messages
  std::unordered_map<std::string, int64_t> vocab_;
  std::vector<std::string> id_to_token_;
  std::vector<NormStep> steps_;
  std::string unk_token_ = "[UNK]";
  std::string continuing_prefix_ = "##";
  size_t max_input_chars_per_word_ = 100;
  int64_t unk_id_ = -1;
  // Tokens matched verbatim before normalization (Hugging Face added tokens).
  std::vector<std::pair<std::u32string, int64_t>> added_tokens_;
};

}  // namespace automm
