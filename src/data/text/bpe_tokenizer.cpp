#include "bpe_tokenizer.h"
#include "tokenizer_limits.h"
#include "config/json_text.h"
#include "utf8.h"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <limits>
#include <mutex>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace automm {
namespace {

struct BpeCodeRange {
  char32_t first, last;
};

// The tables are generated (see gen_bpe_unicode_tables.py beside this file)
// from the reference implementation itself, whose regex engine has its own
// Unicode version.
#include "bpe_unicode_tables.inc"

template <size_t N>
bool in_ranges(const BpeCodeRange (&ranges)[N], char32_t cp) {
  auto it = std::upper_bound(std::begin(ranges), std::end(ranges), cp,
                             [](char32_t c, const BpeCodeRange& r) { return c < r.first; });
  return it != std::begin(ranges) && cp <= std::prev(it)->last;
}

// Classes of GPT-2's regex; every code point is in exactly one.
enum class CharClass : uint8_t { kOther, kLetter, kNumber, kSpace };

CharClass classify(char32_t cp) {
  if (cp < 0x80) {
    if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z')) return CharClass::kLetter;
    if (cp >= '0' && cp <= '9') return CharClass::kNumber;
    if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D)) return CharClass::kSpace;
    return CharClass::kOther;
  }
  if (in_ranges(kBpeLetterRanges, cp)) return CharClass::kLetter;
  if (in_ranges(kBpeNumberRanges, cp)) return CharClass::kNumber;
  if (in_ranges(kBpeSpaceRanges, cp)) return CharClass::kSpace;
  return CharClass::kOther;
}

// One code point of the input (or one invalid byte, which reads as "other").
struct Char {
  char32_t cp;
  uint32_t start, len;  // bytes
  CharClass cls;
};

std::vector<Char> decode_chars(const std::string& s) {
  std::vector<Char> out;
  for (const Utf8Char& c : decode_utf8_chars(s))
    // Not a character: kept as its own byte, grouped like punctuation.
    out.push_back({c.cp, c.start, c.len, c.valid ? classify(c.cp) : CharClass::kOther});
  return out;
}

// GPT-2's pre-tokenization regex, by hand:
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// Returns [begin, end) indices into chars for each piece.
std::vector<std::pair<size_t, size_t>> pre_tokenize(const std::vector<Char>& c) {
  std::vector<std::pair<size_t, size_t>> pieces;
  const size_t n = c.size();
  size_t i = 0;
  while (i < n) {
    // Contractions (case-sensitive, as in GPT-2).
    if (c[i].cp == U'\'' && i + 1 < n) {
      const char32_t a = c[i + 1].cp;
      if (a == U's' || a == U't' || a == U'm' || a == U'd') {
        pieces.emplace_back(i, i + 2);
        i += 2;
        continue;
      }
      if (i + 2 < n) {
        const char32_t b = c[i + 2].cp;
        if ((a == U'r' && b == U'e') || (a == U'v' && b == U'e') || (a == U'l' && b == U'l')) {
          pieces.emplace_back(i, i + 3);
          i += 3;
          continue;
        }
      }
    }
    // " ?\p{L}+", " ?\p{N}+", " ?[^\s\p{L}\p{N}]+": the classes are disjoint,
    // so the class of the first non-space character picks the alternative.
    size_t run = n;  // start of the class run, n when none applies
    if (c[i].cp == U' ' && i + 1 < n && c[i + 1].cls != CharClass::kSpace) {
      run = i + 1;
    } else if (c[i].cls != CharClass::kSpace) {
      run = i;
    }
    if (run < n) {
      size_t j = run + 1;
      while (j < n && c[j].cls == c[run].cls) ++j;
      pieces.emplace_back(i, j);
      i = j;
      continue;
    }
    // Whitespace: "\s+(?!\S)" leaves the last space of a run followed by a
    // non-space for the next piece (" word"), unless the run is one long.
    size_t j = i + 1;
    while (j < n && c[j].cls == CharClass::kSpace) ++j;
    if (j < n && j - i >= 2) --j;
    pieces.emplace_back(i, j);
    i = j;
  }
  return pieces;
}


// GPT-2's bytes_to_unicode(): printable bytes map to themselves, the others
// (controls, space, 0x7F-0xA0, 0xAD) to U+0100 onwards in byte order.
std::vector<std::string> byte_level_alphabet() {
  std::vector<std::string> out(256);
  int next = 0;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    append_utf8(printable ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + next++), &out[b]);
  }
  return out;
}

const std::vector<std::string>& byte_chars() {
  static const std::vector<std::string> chars = byte_level_alphabet();
  return chars;
}

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::runtime_error("byte-level BPE tokenizer " + path + ": " + what);
}

constexpr size_t kCacheCapacity = 10000;   // words, as Hugging Face's BPE cache
constexpr size_t kMaxCachedWordBytes = 256;

}  // namespace

struct ByteLevelBpeTokenizer::Cache {
  std::mutex mutex;
  std::unordered_map<std::string, std::vector<int64_t>> words;
};

ByteLevelBpeTokenizer::ByteLevelBpeTokenizer() : cache_(std::make_unique<Cache>()) {
  std::fill(std::begin(byte_ids_), std::end(byte_ids_), int64_t{-1});
}
ByteLevelBpeTokenizer::ByteLevelBpeTokenizer(ByteLevelBpeTokenizer&&) noexcept = default;
ByteLevelBpeTokenizer& ByteLevelBpeTokenizer::operator=(ByteLevelBpeTokenizer&&) noexcept = default;
ByteLevelBpeTokenizer::~ByteLevelBpeTokenizer() = default;

namespace {

nlohmann::json read_json_file(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("byte-level BPE tokenizer: cannot open " + what + " " + path);
  try {
    return parse_json(in, path);
  } catch (const nlohmann::json::exception& e) {
    fail(path, std::string("invalid JSON: ") + e.what());
  }
}

}  // namespace

ByteLevelBpeTokenizer ByteLevelBpeTokenizer::from_parts(const nlohmann::json& vocab, const std::vector<MergeRule>& merges,
                                                        bool add_prefix_space, const std::string& source) {
  ByteLevelBpeTokenizer t;
  t.source_ = source;
  t.add_prefix_space_ = add_prefix_space;
  if (!vocab.is_object()) fail(source, "expected the vocabulary as a JSON object {token: id}");
  if (vocab.empty()) fail(source, "empty vocabulary");
  check_tokenizer_entries(vocab.size(), "vocabulary", source);
  check_tokenizer_entries(merges.size(), "merge list", source);
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0) {
      fail(source, "id of token \"" + it.key() + "\" is not a non-negative integer");
    }
    const int64_t id = it.value().get<int64_t>();
    t.vocab_[it.key()] = id;
    t.id_to_token_[id] = it.key();
  }
  for (int b = 0; b < 256; ++b) {
    auto it = t.vocab_.find(byte_chars()[b]);
    if (it != t.vocab_.end()) t.byte_ids_[b] = it->second;
  }
  int64_t rank = 0;
  for (const MergeRule& merge : merges) {
    const auto ia = t.vocab_.find(merge.a), ib = t.vocab_.find(merge.b), im = t.vocab_.find(merge.a + merge.b);
    for (const auto& [tok, it] :
         {std::make_pair(merge.a, ia), std::make_pair(merge.b, ib), std::make_pair(merge.a + merge.b, im)}) {
      if (it == t.vocab_.end()) fail(merge.where, "token \"" + tok + "\" is not in the vocabulary " + source);
    }
    // A repeated merge keeps its last rank, as Hugging Face's merge map.
    t.merges_[{ia->second, ib->second}] = Merge{rank++, im->second};
  }
  return t;
}

ByteLevelBpeTokenizer ByteLevelBpeTokenizer::from_files(const std::string& vocab_json,
                                                        const std::string& merges_txt,
                                                        bool add_prefix_space) {
  const nlohmann::json vocab = read_json_file(vocab_json, "vocabulary file");
  std::ifstream in(merges_txt, std::ios::binary);
  if (!in) throw std::runtime_error("byte-level BPE tokenizer: cannot open merges file " + merges_txt);
  std::vector<MergeRule> merges;
  std::string line;
  size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || (line_no == 1 && line.rfind("#version", 0) == 0)) continue;
    const size_t space = line.find(' ');
    const std::string where = merges_txt + " line " + std::to_string(line_no);
    if (space == std::string::npos || space == 0 || space + 1 == line.size() ||
        line.find(' ', space + 1) != std::string::npos) {
      fail(where, "expected \"a b\", got \"" + line + "\"");
    }
    merges.push_back({line.substr(0, space), line.substr(space + 1), where});
  }
  return from_parts(vocab, merges, add_prefix_space, vocab_json);
}

ByteLevelBpeTokenizer ByteLevelBpeTokenizer::from_tokenizer_json(const std::string& path) {
  const nlohmann::json j = read_json_file(path, "tokenizer file");
  const nlohmann::json& model = j.contains("model") ? j["model"] : nlohmann::json();
  if (!model.is_object() || model.value("type", "") != "BPE") fail(path, "model is not BPE");
  for (const char* unsupported : {"end_of_word_suffix", "continuing_subword_prefix"}) {
    if (model.contains(unsupported) && !model[unsupported].is_null() && model[unsupported] != "")
      fail(path, std::string("BPE with ") + unsupported + " (e.g. CLIP's tokenizer) is not supported; only "
                 "byte-level BPE (GPT-2, RoBERTa)");
  }
  // The ByteLevel pre-tokenizer, alone or inside a Sequence, gives add_prefix_space.
  const nlohmann::json& pre = j.contains("pre_tokenizer") ? j["pre_tokenizer"] : nlohmann::json();
  const nlohmann::json* byte_level = nullptr;
  if (pre.is_object() && pre.value("type", "") == "ByteLevel") byte_level = &pre;
  if (pre.is_object() && pre.value("type", "") == "Sequence")
    for (const auto& step : pre.value("pretokenizers", nlohmann::json::array()))
      if (step.value("type", "") == "ByteLevel") byte_level = &step;
  if (!byte_level) fail(path, "the pre_tokenizer is not ByteLevel; only byte-level BPE (GPT-2, RoBERTa) is supported");
  if (!byte_level->value("use_regex", true)) fail(path, "ByteLevel with use_regex = false is not supported");
  // Merges are "a b" strings (older files) or ["a", "b"] pairs.
  std::vector<MergeRule> merges;
  const nlohmann::json& list = model.contains("merges") ? model["merges"] : nlohmann::json::array();
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string where = path + " merge #" + std::to_string(i);
    const nlohmann::json& m = list[i];
    if (m.is_string()) {
      const std::string text = m.get<std::string>();
      const size_t space = text.find(' ');
      if (space == std::string::npos || space == 0 || space + 1 == text.size()) fail(where, "expected \"a b\"");
      merges.push_back({text.substr(0, space), text.substr(space + 1), where});
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      merges.push_back({m[0].get<std::string>(), m[1].get<std::string>(), where});
    } else {
      fail(where, "expected \"a b\" or [\"a\", \"b\"], got " + m.dump());
    }
  }
  return from_parts(model.contains("vocab") ? model["vocab"] : nlohmann::json(), merges,
                    byte_level->value("add_prefix_space", false), path);
}

void ByteLevelBpeTokenizer::bpe_word(const std::string& word, std::vector<int64_t>* ids) const {
  const bool cacheable = word.size() <= kMaxCachedWordBytes;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_->mutex);
    auto it = cache_->words.find(word);
    if (it != cache_->words.end()) {
      ids->insert(ids->end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int64_t> symbols;
  symbols.reserve(word.size());
  for (char ch : word) {
    const int64_t id = byte_ids_[static_cast<unsigned char>(ch)];
    if (id >= 0) symbols.push_back(id);
  }
  // Repeatedly merge the lowest-ranked adjacent pair, every occurrence left
  // to right (what Hugging Face's priority queue amounts to).
  while (symbols.size() > 1) {
    int64_t best_rank = std::numeric_limits<int64_t>::max();
    std::pair<int64_t, int64_t> best;
    int64_t best_merged = -1;
    for (size_t i = 0; i + 1 < symbols.size(); ++i) {
      auto it = merges_.find({symbols[i], symbols[i + 1]});
      if (it != merges_.end() && it->second.rank < best_rank) {
        best_rank = it->second.rank;
        best = it->first;
        best_merged = it->second.merged_id;
      }
    }
    if (best_merged < 0) break;
    std::vector<int64_t> next;
    next.reserve(symbols.size());
    for (size_t i = 0; i < symbols.size();) {
      if (i + 1 < symbols.size() && symbols[i] == best.first && symbols[i + 1] == best.second) {
        next.push_back(best_merged);
        i += 2;
      } else {
        next.push_back(symbols[i++]);
      }
    }
    symbols.swap(next);
  }
  ids->insert(ids->end(), symbols.begin(), symbols.end());
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_->mutex);
    if (cache_->words.size() < kCacheCapacity) cache_->words.emplace(word, std::move(symbols));
  }
}

std::vector<int64_t> ByteLevelBpeTokenizer::encode(const std::string& text) const {
  std::vector<int64_t> ids;
  if (text.empty()) return ids;
  // Hugging Face's ByteLevel: add_prefix_space prepends " " unless the text
  // already starts with one.
  const std::string input = add_prefix_space_ && text[0] != ' ' ? " " + text : text;
  const std::vector<Char> chars = decode_chars(input);
  for (const auto& [begin, end] : pre_tokenize(chars)) {
    const size_t from = chars[begin].start;
    const size_t to = chars[end - 1].start + chars[end - 1].len;
    bpe_word(input.substr(from, to - from), &ids);
  }
  return ids;
}

std::vector<std::string> ByteLevelBpeTokenizer::tokenize(const std::string& text) const {
  std::vector<std::string> tokens;
  for (int64_t id : encode(text)) tokens.push_back(id_to_token(id));
  return tokens;
}

int64_t ByteLevelBpeTokenizer::token_to_id(const std::string& token) const {
  auto it = vocab_.find(token);
  if (it == vocab_.end()) fail(source_, "token \"" + token + "\" is not in the vocabulary");
  return it->second;
}

const std::string& ByteLevelBpeTokenizer::id_to_token(int64_t id) const {
  auto it = id_to_token_.find(id);
  if (it == id_to_token_.end()) fail(source_, "id " + std::to_string(id) + " is not in the vocabulary");
  return it->second;
}

}  // namespace automm
