#include "wordpiece_tokenizer.h"
#include "tokenizer_limits.h"
#include "config/json_text.h"

#include <algorithm>
#include <fstream>
#include <functional>
#include <iterator>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "unicode_props.h"
#include "utf8.h"

namespace automm {
namespace {

std::u32string normalize(const std::u32string& text,
                         const std::vector<WordPieceTokenizer::NormStep>& steps) {
  using Step = WordPieceTokenizer::NormStep;
  std::u32string cur = text;
  for (Step step : steps) {
    std::u32string next;
    next.reserve(cur.size());
    switch (step) {
      case Step::kCleanText:
        for (char32_t c : cur) {
          if (is_bert_control(c)) continue;
          next.push_back(is_unicode_whitespace(c) ? U' ' : c);
        }
        break;
      case Step::kChineseChars:
        for (char32_t c : cur) {
          if (is_chinese_char(c)) {
            next.push_back(U' ');
            next.push_back(c);
            next.push_back(U' ');
          } else {
            next.push_back(c);
          }
        }
        break;
      case Step::kNfd:
        next = nfd(cur);
        break;
      case Step::kStripNonspacingMarks:
        for (char32_t c : cur) {
          if (!is_nonspacing_mark(c)) next.push_back(c);
        }
        break;
      case Step::kStripCombiningMarks:
        for (char32_t c : cur) {
          if (!is_combining_mark(c)) next.push_back(c);
        }
        break;
      case Step::kLowercase:
        for (char32_t c : cur) append_lowercase(c, &next);
        break;
    }
    cur.swap(next);
  }
  return cur;
}

bool is_bert_punctuation(char32_t c) {
  // ASCII symbols such as $ + < = > ^ ` | ~ are not Unicode punctuation, but
  // BERT splits on them too.
  if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
      (c >= 123 && c <= 126)) {
    return true;
  }
  return is_unicode_punctuation(c);
}

std::vector<WordPieceTokenizer::NormStep> bert_steps(bool clean_text, bool chinese,
                                                     bool strip_accents, bool lowercase) {
  using Step = WordPieceTokenizer::NormStep;
  // Same order as tokenizers' BertNormalizer::normalize.
  std::vector<Step> steps;
  if (clean_text) steps.push_back(Step::kCleanText);
  if (chinese) steps.push_back(Step::kChineseChars);
  if (strip_accents) {
    steps.push_back(Step::kNfd);
    steps.push_back(Step::kStripNonspacingMarks);
  }
  if (lowercase) steps.push_back(Step::kLowercase);
  return steps;
}

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::runtime_error("WordPiece tokenizer " + path + ": " + what);
}

void parse_normalizer(const nlohmann::json& n, const std::string& path,
                      std::vector<WordPieceTokenizer::NormStep>* steps) {
  using Step = WordPieceTokenizer::NormStep;
  if (n.is_null()) return;
  if (!n.is_object() || !n.contains("type") || !n["type"].is_string()) {
    fail(path, "normalizer without a type");
  }
  const std::string type = n["type"].get<std::string>();
  if (type == "BertNormalizer") {
    const bool lowercase = n.value("lowercase", true);
    // Hugging Face: an unset strip_accents follows lowercase.
    const bool strip = n.contains("strip_accents") && !n["strip_accents"].is_null()
                           ? n["strip_accents"].get<bool>()
                           : lowercase;
    auto add = bert_steps(n.value("clean_text", true), n.value("handle_chinese_chars", true),
                          strip, lowercase);
    steps->insert(steps->end(), add.begin(), add.end());
  } else if (type == "Sequence") {
    if (!n.contains("normalizers") || !n["normalizers"].is_array()) {
      fail(path, "normalizer Sequence without a normalizers array");
    }
    for (const auto& sub : n["normalizers"]) parse_normalizer(sub, path, steps);
  } else if (type == "NFD") {
    steps->push_back(Step::kNfd);
  } else if (type == "Lowercase") {
    steps->push_back(Step::kLowercase);
  } else if (type == "StripAccents") {
    steps->push_back(Step::kStripCombiningMarks);
  } else {
    fail(path, "unsupported normalizer type \"" + type +
                   "\" (supported: BertNormalizer, Sequence, NFD, Lowercase, StripAccents)");
  }
}

}  // namespace

WordPieceTokenizer WordPieceTokenizer::from_vocab_file(const std::string& vocab_txt,
                                                       WordPieceOptions options) {
  std::ifstream in(vocab_txt, std::ios::binary);
  if (!in) throw std::runtime_error("WordPiece tokenizer: cannot open vocabulary file " + vocab_txt);
  std::vector<std::string> vocabulary;
  std::string line;
  while (std::getline(in, line)) {
    // Hugging Face trims trailing whitespace (CRLF files, stray blanks).
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) {
      line.pop_back();
    }
    vocabulary.push_back(line);
  }
  return from_vocabulary(vocabulary, options, vocab_txt);
}

WordPieceTokenizer WordPieceTokenizer::from_vocabulary(const std::vector<std::string>& vocabulary,
                                                       WordPieceOptions options, const std::string& source) {
  check_tokenizer_entries(vocabulary.size(), "vocabulary", source);
  WordPieceTokenizer t;
  for (const std::string& token : vocabulary) {
    // A repeated token keeps its last id, like Hugging Face's vocab map.
    t.vocab_[token] = static_cast<int64_t>(t.id_to_token_.size());
    t.id_to_token_.push_back(token);
  }
  if (t.id_to_token_.empty()) fail(source, "empty vocabulary");
  t.steps_ = bert_steps(options.clean_text, options.handle_chinese_chars, options.strip_accents,
                        options.lowercase);
  t.unk_token_ = options.unk_token;
  t.continuing_prefix_ = options.continuing_prefix;
  if (options.max_input_chars_per_word <= 0) fail(source, "max_input_chars_per_word must be > 0");
  t.max_input_chars_per_word_ = static_cast<size_t>(options.max_input_chars_per_word);
  // BertTokenizerFast registers these as special added tokens, so they are
  // recognised verbatim in raw text.
  for (const char* special : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}) {
    auto it = t.vocab_.find(special);
    if (it != t.vocab_.end()) t.added_tokens_.emplace_back(decode_utf8(special), it->second);
  }
  t.finish_init(source);
  return t;
}

WordPieceTokenizer WordPieceTokenizer::from_tokenizer_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("WordPiece tokenizer: cannot open tokenizer file " + path);
  nlohmann::json j;
  try {
    j = parse_json(in, path);
  } catch (const nlohmann::json::exception& e) {
    fail(path, std::string("invalid JSON: ") + e.what());
  }
  if (!j.is_object() || !j.contains("model") || !j["model"].is_object()) {
    fail(path, "no \"model\" object");
  }
  const auto& model = j["model"];
  const std::string model_type = model.value("type", std::string("<missing>"));
  if (model_type != "WordPiece") {
    fail(path, "unsupported model type \"" + model_type + "\" (only WordPiece is supported)");
  }
  if (!model.contains("vocab") || !model["vocab"].is_object()) fail(path, "model has no vocab object");

  WordPieceTokenizer t;
  const auto& vocab = model["vocab"];
  check_tokenizer_entries(vocab.size(), "vocabulary", path);
  t.id_to_token_.resize(vocab.size());
  std::vector<bool> seen(vocab.size(), false);
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    if (!it.value().is_number_integer()) fail(path, "vocab id of \"" + it.key() + "\" is not an integer");
    const int64_t id = it.value().get<int64_t>();
    if (id < 0 || id >= static_cast<int64_t>(vocab.size()) || seen[id]) {
      fail(path, "vocab ids must be 0..size-1 without repeats (token \"" + it.key() + "\")");
    }
    seen[id] = true;
    t.id_to_token_[id] = it.key();
    t.vocab_[it.key()] = id;
  }
  t.unk_token_ = model.value("unk_token", std::string("[UNK]"));
  t.continuing_prefix_ = model.value("continuing_subword_prefix", std::string("##"));
  const int64_t max_chars = json_integer_field(model, "max_input_chars_per_word", 100, path);
  if (max_chars <= 0) fail(path, "max_input_chars_per_word must be > 0");
  t.max_input_chars_per_word_ = static_cast<size_t>(max_chars);

  parse_normalizer(j.value("normalizer", nlohmann::json()), path, &t.steps_);

  const auto pre = j.value("pre_tokenizer", nlohmann::json());
  const std::string pre_type =
      pre.is_object() ? pre.value("type", std::string("<missing>")) : std::string("null");
  if (pre_type != "BertPreTokenizer") {
    fail(path, "unsupported pre_tokenizer \"" + pre_type + "\" (only BertPreTokenizer is supported)");
  }

  if (j.contains("added_tokens") && j["added_tokens"].is_array()) {
    for (const auto& a : j["added_tokens"]) {
      const std::string content = a.value("content", std::string());
      const int64_t id = json_integer_field(a, "id", -1, path + ": added token");
      // Only the verbatim matching that BERT's special tokens use is
      // implemented; refusing the other options beats silently differing.
      if (content.empty() || id < 0 || a.value("single_word", false) || a.value("lstrip", false) ||
          a.value("rstrip", false) || a.value("normalized", false)) {
        fail(path, "unsupported added token \"" + content +
                       "\" (only non-normalized tokens without lstrip/rstrip/single_word)");
      }
      if (id >= static_cast<int64_t>(kMaxTokenizerEntries))
        fail(path, "added token \"" + content + "\" has id " + std::to_string(id) + ", past any vocabulary");
      if (id >= static_cast<int64_t>(t.id_to_token_.size())) t.id_to_token_.resize(id + 1);
      t.id_to_token_[id] = content;
      t.vocab_[content] = id;
      t.added_tokens_.emplace_back(decode_utf8(content), id);
    }
  }
  t.finish_init(path);
  return t;
}

void WordPieceTokenizer::finish_init(const std::string& source) {
  source_ = source;
  auto it = vocab_.find(unk_token_);
  if (it == vocab_.end()) fail(source, "unknown token \"" + unk_token_ + "\" is not in the vocabulary");
  unk_id_ = it->second;
  // Longest first, so that the first match at a position is the longest.
  std::stable_sort(added_tokens_.begin(), added_tokens_.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
}

void WordPieceTokenizer::wordpiece(const std::string& word, size_t n_chars,
                                   std::vector<int64_t>* ids) const {
  if (n_chars > max_input_chars_per_word_) {
    ids->push_back(unk_id_);
    return;
  }
  // Byte offsets of the code point boundaries.
  std::vector<size_t> bounds;
  bounds.reserve(n_chars + 1);
  for (size_t i = 0; i < word.size(); ++i) {
    if ((static_cast<unsigned char>(word[i]) & 0xC0) != 0x80) bounds.push_back(i);
  }
  bounds.push_back(word.size());
  const size_t n = bounds.size() - 1;
  const size_t first_new = ids->size();
  std::string piece;
  size_t start = 0;
  while (start < n) {
    // Greedy longest match first.
    size_t end = n;
    int64_t found = -1;
    while (start < end) {
      piece.clear();
      if (start > 0) piece = continuing_prefix_;
      piece.append(word, bounds[start], bounds[end] - bounds[start]);
      auto it = vocab_.find(piece);
      if (it != vocab_.end()) {
        found = it->second;
        break;
      }
      --end;
    }
    if (found < 0) {
      // One unmatchable piece makes the whole word unknown.
      ids->resize(first_new);
      ids->push_back(unk_id_);
      return;
    }
    ids->push_back(found);
    start = end;
  }
}

void WordPieceTokenizer::split_words(const std::u32string& segment,
                                     const std::function<void(const std::string&, size_t)>& sink) const {
  const std::u32string normalized = normalize(segment, steps_);
  std::string word;
  size_t n_chars = 0;
  auto flush = [&]() {
    if (n_chars > 0) sink(word, n_chars);
    word.clear();
    n_chars = 0;
  };
  for (char32_t c : normalized) {
    if (is_unicode_whitespace(c)) {
      flush();
    } else if (is_bert_punctuation(c)) {
      flush();
      append_utf8(c, &word);
      n_chars = 1;
      flush();
    } else {
      append_utf8(c, &word);
      ++n_chars;
    }
  }
  flush();
}

void WordPieceTokenizer::encode_segment(const std::u32string& segment, std::vector<int64_t>* ids) const {
  split_words(segment, [&](const std::string& word, size_t n_chars) { wordpiece(word, n_chars, ids); });
}

std::vector<std::string> WordPieceTokenizer::words(const std::string& text) const {
  std::vector<std::string> out;
  split_words(decode_utf8(text), [&](const std::string& word, size_t) { out.push_back(word); });
  return out;
}

std::vector<int64_t> WordPieceTokenizer::encode(const std::string& text) const {
  const std::u32string raw = decode_utf8(text);
  std::vector<int64_t> ids;
  size_t segment_start = 0;
  size_t i = 0;
  while (i < raw.size()) {
    const std::pair<std::u32string, int64_t>* match = nullptr;
    for (const auto& added : added_tokens_) {
      if (raw.compare(i, added.first.size(), added.first) == 0) {
        match = &added;
        break;
      }
    }
    if (!match) {
      ++i;
      continue;
    }
    encode_segment(raw.substr(segment_start, i - segment_start), &ids);
    ids.push_back(match->second);
    i += match->first.size();
    segment_start = i;
  }
  encode_segment(raw.substr(segment_start), &ids);
  return ids;
}

std::vector<std::string> WordPieceTokenizer::tokenize(const std::string& text) const {
  std::vector<std::string> tokens;
  for (int64_t id : encode(text)) tokens.push_back(id_to_token_[id]);
  return tokens;
}

int64_t WordPieceTokenizer::token_to_id(const std::string& token) const {
  auto it = vocab_.find(token);
  if (it == vocab_.end()) fail(source_, "token \"" + token + "\" is not in the vocabulary");
  return it->second;
}

const std::string& WordPieceTokenizer::id_to_token(int64_t id) const {
  if (id < 0 || id >= static_cast<int64_t>(id_to_token_.size())) {
    fail(source_, "token id " + std::to_string(id) + " is out of range");
  }
  return id_to_token_[id];
}

int64_t WordPieceTokenizer::cls_id() const { return token_to_id("[CLS]"); }
int64_t WordPieceTokenizer::sep_id() const { return token_to_id("[SEP]"); }
int64_t WordPieceTokenizer::pad_id() const { return token_to_id("[PAD]"); }
int64_t WordPieceTokenizer::unk_id() const { return unk_id_; }

}  // namespace automm
