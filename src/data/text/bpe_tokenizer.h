#pragma once
// Byte-level BPE tokenizers, reproducing Hugging Face's tokenizers pipelines id
// for id, in two styles:
//  - GPT-2 / RoBERTa: the ByteLevel pre-tokenizer (GPT-2 regex, byte-to-unicode
//    mapping) + BPE model (merges by lowest rank);
//  - CLIP: NFC, whitespace runs made one space and lowercasing; CLIP's split
//    regex (whitespace removed, digits one by one); the same byte-to-unicode
//    mapping; BPE with the end-of-word suffix "</w>" on each word's last
//    symbol; the special tokens <|startoftext|> and <|endoftext|> kept whole
//    where the text spells them.
// Needs no torch, so that data preparation can use it on its own.

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace automm {

enum class BpeStyle { kGpt2, kClip };

class ByteLevelBpeTokenizer {
 public:
  // vocab.json: a JSON object {token: id}. merges.txt: one merge "a b" a
  // line, rank = line order; a first line "#version: ..." and empty lines
  // are skipped. Both parts and the merged token of every merge must be in
  // the vocabulary (as Hugging Face requires). add_prefix_space: a space is
  // put before text that does not start with one (RoBERTa-style "Ġword"),
  // GPT-2 style only. CLIP style reads the first 48894 merges
  // (49152 - 256 - 2, as transformers' CLIPTokenizer does) and needs
  // <|startoftext|> and <|endoftext|> in the vocabulary.
  // Throws std::runtime_error naming the file on any problem.
  static ByteLevelBpeTokenizer from_files(const std::string& vocab_json,
                                          const std::string& merges_txt,
                                          bool add_prefix_space = false, BpeStyle style = BpeStyle::kGpt2);
  // Hugging Face tokenizer.json with a BPE model (merges as "a b" strings or
  // ["a", "b"] pairs) and either a ByteLevel pre-tokenizer, whose
  // add_prefix_space it takes (GPT-2 style), or CLIP's pipeline (normalizer
  // NFC + Replace(\s+, " ") + Lowercase, pre-tokenizer Split(CLIP's regex) +
  // ByteLevel(use_regex = false), end_of_word_suffix). Other pipelines are
  // refused, naming the file and the field.
  static ByteLevelBpeTokenizer from_tokenizer_json(const std::string& path);

  // Token ids, no special tokens. Any bytes are accepted: invalid UTF-8 is
  // pre-tokenized like punctuation and still encoded byte by byte. Bytes
  // whose byte-level character is not in the vocabulary are dropped (as
  // Hugging Face's BPE without an unk token does).
  std::vector<int64_t> encode(const std::string& text) const;
  // The tokens of encode(), spelled in the byte-level alphabet ("Ġworld").
  std::vector<std::string> tokenize(const std::string& text) const;

  // CLIP style's words of `text` (raw bytes): normalized and split as encode()
  // does, special tokens not singled out. What a CLIP vocabulary is learned from.
  static std::vector<std::string> clip_words(const std::string& text);
  // GPT-2's bytes_to_unicode() character of byte `b` (UTF-8).
  static const std::string& byte_level_char(unsigned char b);

  int64_t token_to_id(const std::string& token) const;  // throws if absent
  const std::string& id_to_token(int64_t id) const;     // throws if unknown
  size_t vocab_size() const { return vocab_.size(); }
  bool add_prefix_space() const { return add_prefix_space_; }
  BpeStyle style() const { return style_; }

  ByteLevelBpeTokenizer(ByteLevelBpeTokenizer&&) noexcept;
  ByteLevelBpeTokenizer& operator=(ByteLevelBpeTokenizer&&) noexcept;
  ~ByteLevelBpeTokenizer();

 private:
  ByteLevelBpeTokenizer();
  struct MergeRule {
    std::string a, b;
    std::string where;  // file and line, for error messages
  };
  // A special token matched whole in the text (CLIP style): `normalized` ones
  // are looked for after normalization, the others in the raw text.
  struct AddedToken {
    std::string content;
    int64_t id;
    bool normalized;
  };
  static ByteLevelBpeTokenizer from_parts(const nlohmann::json& vocab, const std::vector<MergeRule>& merges,
                                          bool add_prefix_space, BpeStyle style, const std::string& source);
  // CLIP style: the special tokens, the end-of-word symbols and the unknown token.
  void set_clip_specials(std::vector<AddedToken> added, const std::string& suffix, const std::string& unk);
  // Appends the BPE ids of one pre-tokenized word (raw bytes).
  void bpe_word(const std::string& word, std::vector<int64_t>* ids) const;
  // CLIP style: normalizes `text` (no special tokens in it) and appends its ids.
  void encode_clip_segment(const std::string& text, std::vector<int64_t>* ids) const;

  struct PairHash {
    size_t operator()(const std::pair<int64_t, int64_t>& p) const {
      return std::hash<int64_t>()(p.first) * 1000003u ^ std::hash<int64_t>()(p.second);
    }
  };
  struct Merge {
    int64_t rank;
    int64_t merged_id;
  };
  struct Cache;  // per-word results, guarded by a mutex (encode is const)

  std::string source_;  // vocab file, for error messages
  std::unordered_map<std::string, int64_t> vocab_;
  std::unordered_map<int64_t, std::string> id_to_token_;
  std::unordered_map<std::pair<int64_t, int64_t>, Merge, PairHash> merges_;
  int64_t byte_ids_[256];  // id of each byte's byte-level character, -1 if absent
  int64_t word_end_ids_[256];  // CLIP style: the same character + "</w>", -1 if absent
  int64_t unk_id_ = -1;        // what a symbol absent from the vocabulary becomes; -1: dropped
  bool add_prefix_space_ = false;
  BpeStyle style_ = BpeStyle::kGpt2;
  std::vector<AddedToken> added_;
  std::unique_ptr<Cache> cache_;
};

}  // namespace automm
