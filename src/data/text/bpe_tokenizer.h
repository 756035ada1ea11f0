#pragma once
// GPT-2 / RoBERTa byte-level BPE tokenizer, reproducing Hugging Face's
// tokenizers pipeline ByteLevel pre-tokenizer (GPT-2 regex, byte-to-unicode
// mapping) + BPE model (merges by lowest rank) id for id.
// Needs no torch, so that data preparation can use it on its own.

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace automm {

class ByteLevelBpeTokenizer {
 public:
  // vocab.json: a JSON object {token: id}. merges.txt: one merge "a b" a
  // line, rank = line order; a first line "#version: ..." and empty lines
  // are skipped. Both parts and the merged token of every merge must be in
  // the vocabulary (as Hugging Face requires). add_prefix_space: a space is
  // put before text that does not start with one (RoBERTa-style "Ġword").
  // Throws std::runtime_error naming the file on any problem.
  static ByteLevelBpeTokenizer from_files(const std::string& vocab_json,
                                          const std::string& merges_txt,
                                          bool add_prefix_space = false);
  // Hugging Face tokenizer.json with a BPE model (merges as "a b" strings or
  // ["a", "b"] pairs) and a ByteLevel pre-tokenizer, whose add_prefix_space it
  // takes. Other BPE flavours (CLIP's end-of-word suffix) are refused, naming
  // the file and the field.
  static ByteLevelBpeTokenizer from_tokenizer_json(const std::string& path);

  // Token ids, no special tokens. Any bytes are accepted: invalid UTF-8 is
  // pre-tokenized like punctuation and still encoded byte by byte. Bytes
  // whose byte-level character is not in the vocabulary are dropped (as
  // Hugging Face's BPE without an unk token does).
  std::vector<int64_t> encode(const std::string& text) const;
  // The tokens of encode(), spelled in the byte-level alphabet ("Ġworld").
  std::vector<std::string> tokenize(const std::string& text) const;

  int64_t token_to_id(const std::string& token) const;  // throws if absent
  const std::string& id_to_token(int64_t id) const;     // throws if unknown
  size_t vocab_size() const { return vocab_.size(); }
  bool add_prefix_space() const { return add_prefix_space_; }

  ByteLevelBpeTokenizer(ByteLevelBpeTokenizer&&) noexcept;
  ByteLevelBpeTokenizer& operator=(ByteLevelBpeTokenizer&&) noexcept;
  ~ByteLevelBpeTokenizer();

 private:
  ByteLevelBpeTokenizer();
  struct MergeRule {
    std::string a, b;
    std::string where;  // file and line, for error messages
  };
  static ByteLevelBpeTokenizer from_parts(const nlohmann::json& vocab, const std::vector<MergeRule>& merges,
                                          bool add_prefix_space, const std::string& source);
  // Appends the BPE ids of one pre-tokenized word (raw bytes).
  void bpe_word(const std::string& word, std::vector<int64_t>* ids) const;

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
  bool add_prefix_space_ = false;
  std::unique_ptr<Cache> cache_;
};

}  // namespace automm
