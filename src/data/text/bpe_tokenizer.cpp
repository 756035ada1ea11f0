#include "bpe_tokenizer.h"
#include "tokenizer_limits.h"
#include "config/json_text.h"
#include "unicode_normalize.h"
#include "unicode_props.h"
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

// CLIP's split regex, as its tokenizer.json spells it:
//   <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
// (case-insensitive), keeping the matches and dropping what lies between
// them (whitespace). `text` is the normalized text `c` was decoded from.
const char kClipSplitRegex[] =
    "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+";

// Case-insensitive ASCII letter test for the contractions (the regex's
// IGNORECASE; U+017F, long s, does not match 's' in the reference).
bool is_letter_ci(char32_t cp, char lower) {
  return cp == static_cast<char32_t>(lower) || cp == static_cast<char32_t>(lower - 'a' + 'A');
}

std::vector<std::pair<size_t, size_t>> clip_pre_tokenize(const std::vector<Char>& c, const std::string& text) {
  std::vector<std::pair<size_t, size_t>> pieces;
  const size_t n = c.size();
  size_t i = 0;
  while (i < n) {
    if (c[i].cls == CharClass::kSpace) {
      ++i;
      continue;
    }
    bool matched = false;
    for (const char* literal : {"<|startoftext|>", "<|endoftext|>"}) {
      const size_t len = std::char_traits<char>::length(literal);
      if (text.compare(c[i].start, len, literal) != 0) continue;
      size_t j = i;
      while (j < n && c[j].start < c[i].start + len) ++j;
      pieces.emplace_back(i, j);
      i = j;
      matched = true;
      break;
    }
    if (matched) continue;
    if (c[i].cp == U'\'' && i + 1 < n) {
      const char32_t a = c[i + 1].cp;
      if (is_letter_ci(a, 's') || is_letter_ci(a, 't') || is_letter_ci(a, 'm') || is_letter_ci(a, 'd')) {
        pieces.emplace_back(i, i + 2);
        i += 2;
        continue;
      }
      if (i + 2 < n) {
        const char32_t b = c[i + 2].cp;
        if ((is_letter_ci(a, 'r') && is_letter_ci(b, 'e')) || (is_letter_ci(a, 'v') && is_letter_ci(b, 'e')) ||
            (is_letter_ci(a, 'l') && is_letter_ci(b, 'l'))) {
          pieces.emplace_back(i, i + 3);
          i += 3;
          continue;
        }
      }
    }
    // Letters run, a number is one character, anything else runs until a
    // letter, number or space.
    size_t j = i + 1;
    if (c[i].cls != CharClass::kNumber)
      while (j < n && c[j].cls == c[i].cls) ++j;
    pieces.emplace_back(i, j);
    i = j;
  }
  return pieces;
}

// The words (byte ranges of `text`) CLIP's regex keeps.
std::vector<std::string> clip_split(const std::string& text) {
  const std::vector<Char> chars = decode_chars(text);
  std::vector<std::string> words;
  for (const auto& [begin, end] : clip_pre_tokenize(chars, text)) {
    const size_t from = chars[begin].start;
    words.push_back(text.substr(from, chars[end - 1].start + chars[end - 1].len - from));
  }
  return words;
}

// CLIP's normalizer: NFC, then lowercasing (Rust's char::to_lowercase, one
// character at a time). Its Replace(\s+, " ") step is left out: the split
// drops whitespace, so it cannot change the ids. Invalid UTF-8 reads as U+FFFD.
std::string clip_normalize(const std::string& text) {
  std::string valid;
  for (char32_t cp : decode_utf8(text)) append_utf8(cp, &valid);
  std::u32string lowered;
  for (char32_t cp : decode_utf8(normalize_unicode(valid, NormalForm::kNfc, "CLIP tokenizer input")))
    append_lowercase(cp, &lowered);
  std::string out;
  for (char32_t cp : lowered) append_utf8(cp, &out);
  return out;
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

namespace {

// Splits `text` at the special tokens whose `normalized` flag is `normalized`
// (leftmost match, then the longest), appending each token's id to `ids` and
// handing the text between them to `encode_part`.
template <typename Token, typename EncodePart>
void split_on_added_tokens(const std::string& text, const std::vector<Token>& added, bool normalized,
                           const EncodePart& encode_part, std::vector<int64_t>* ids) {
  size_t done = 0;
  for (size_t at = 0; at < text.size();) {
    const Token* found = nullptr;
    for (const Token& token : added)
      if (token.normalized == normalized && text.compare(at, token.content.size(), token.content) == 0 &&
          (!found || token.content.size() > found->content.size()))
        found = &token;
    if (!found) {
      ++at;
      continue;
    }
    encode_part(text.substr(done, at - done));
    ids->push_back(found->id);
    at += found->content.size();
    done = at;
  }
  encode_part(text.substr(done));
}

}  // namespace

struct ByteLevelBpeTokenizer::Cache {
  std::mutex mutex;
  std::unordered_map<std::string, std::vector<int64_t>> words;
};

ByteLevelBpeTokenizer::ByteLevelBpeTokenizer() : cache_(std::make_unique<Cache>()) {
  std::fill(std::begin(byte_ids_), std::end(byte_ids_), int64_t{-1});
  std::fill(std::begin(word_end_ids_), std::end(word_end_ids_), int64_t{-1});
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
                                                        bool add_prefix_space, BpeStyle style, const std::string& source) {
  ByteLevelBpeTokenizer t;
  t.source_ = source;
  t.add_prefix_space_ = add_prefix_space;
  t.style_ = style;
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

void ByteLevelBpeTokenizer::set_clip_specials(std::vector<AddedToken> added, const std::string& suffix,
                                              const std::string& unk) {
  added_ = std::move(added);
  for (int b = 0; b < 256; ++b) {
    auto it = vocab_.find(byte_chars()[b] + suffix);
    if (it != vocab_.end()) word_end_ids_[b] = it->second;
  }
  if (!unk.empty()) unk_id_ = token_to_id(unk);
}

ByteLevelBpeTokenizer ByteLevelBpeTokenizer::from_files(const std::string& vocab_json,
                                                        const std::string& merges_txt,
                                                        bool add_prefix_space, BpeStyle style) {
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
  if (style == BpeStyle::kGpt2) return from_parts(vocab, merges, add_prefix_space, style, vocab_json);
  // transformers' CLIPTokenizer reads merges.txt lines [1, 49152 - 256 - 2 + 1).
  constexpr size_t kClipMerges = 49152 - 256 - 2;
  if (merges.size() > kClipMerges) merges.resize(kClipMerges);
  ByteLevelBpeTokenizer t = from_parts(vocab, merges, false, style, vocab_json);
  // The special tokens as the converted fast tokenizer (and openai's
  // tokenizer.json) has them: <|startoftext|> matched after normalization.
  t.set_clip_specials({{"<|startoftext|>", t.token_to_id("<|startoftext|>"), true},
                       {"<|endoftext|>", t.token_to_id("<|endoftext|>"), false}},
                      "</w>", "<|endoftext|>");
  return t;
}

namespace {

// The parts of a CLIP-style tokenizer.json other than its BPE model must be
// CLIP's own pipeline; anything else is refused naming the field.
void check_clip_pipeline(const nlohmann::json& j, const std::string& path) {
  const auto type_of = [](const nlohmann::json& step) {
    return step.is_object() ? step.value("type", "") : std::string();
  };
  const nlohmann::json& norm = j.contains("normalizer") ? j["normalizer"] : nlohmann::json();
  const nlohmann::json steps = type_of(norm) == "Sequence" ? norm.value("normalizers", nlohmann::json::array())
                                                           : nlohmann::json::array();
  const bool clip_normalizer =
      steps.size() == 3 && type_of(steps[0]) == "NFC" && type_of(steps[1]) == "Replace" &&
      steps[1].value("pattern", nlohmann::json::object()).value("Regex", "") == "\\s+" &&
      steps[1].value("content", "") == " " && type_of(steps[2]) == "Lowercase";
  if (!clip_normalizer)
    fail(path, "normalizer: a BPE model with end_of_word_suffix needs CLIP's normalizer "
               "(Sequence of NFC, Replace(\\s+, \" \"), Lowercase), got " + norm.dump());
  const nlohmann::json& pre = j.contains("pre_tokenizer") ? j["pre_tokenizer"] : nlohmann::json();
  const nlohmann::json pres = type_of(pre) == "Sequence" ? pre.value("pretokenizers", nlohmann::json::array())
                                                         : nlohmann::json::array();
  const bool clip_split = pres.size() == 2 && type_of(pres[0]) == "Split" &&
                          pres[0].value("pattern", nlohmann::json::object()).value("Regex", "") == kClipSplitRegex &&
                          pres[0].value("behavior", "") == "Removed" && pres[0].value("invert", false) &&
                          type_of(pres[1]) == "ByteLevel" && !pres[1].value("use_regex", true) &&
                          !pres[1].value("add_prefix_space", false);
  if (!clip_split)
    fail(path, "pre_tokenizer: a BPE model with end_of_word_suffix needs CLIP's pre-tokenizer (Sequence of "
               "Split(CLIP's regex, Removed, invert) and ByteLevel(use_regex = false)), got " + pre.dump());
}

}  // namespace

ByteLevelBpeTokenizer ByteLevelBpeTokenizer::from_tokenizer_json(const std::string& path) {
  const nlohmann::json j = read_json_file(path, "tokenizer file");
  const nlohmann::json& model = j.contains("model") ? j["model"] : nlohmann::json();
  if (!model.is_object() || model.value("type", "") != "BPE") fail(path, "model is not BPE");
  const auto string_field = [&](const char* field) {
    if (!model.contains(field) || model[field].is_null()) return std::string();
    if (!model[field].is_string()) fail(path, std::string("model.") + field + " is not a string");
    return model[field].get<std::string>();
  };
  if (!string_field("continuing_subword_prefix").empty())
    fail(path, "BPE with continuing_subword_prefix is not supported; only byte-level BPE (GPT-2, RoBERTa, CLIP)");
  const std::string suffix = string_field("end_of_word_suffix");
  const BpeStyle style = suffix.empty() ? BpeStyle::kGpt2 : BpeStyle::kClip;
  // (A copy when absent: `byte_level` may point into it, so it lives as long as the function.)
  const nlohmann::json& pre = j.contains("pre_tokenizer") ? j["pre_tokenizer"] : nlohmann::json();
  const nlohmann::json* byte_level = nullptr;
  if (style == BpeStyle::kClip) {
    check_clip_pipeline(j, path);
  } else {
    // The ByteLevel pre-tokenizer, alone or inside a Sequence, gives add_prefix_space.
    if (pre.is_object() && pre.value("type", "") == "ByteLevel") byte_level = &pre;
    if (pre.is_object() && pre.value("type", "") == "Sequence")
      for (const auto& step : pre.value("pretokenizers", nlohmann::json::array()))
        if (step.value("type", "") == "ByteLevel") byte_level = &step;
    if (!byte_level)
      fail(path, "the pre_tokenizer is not ByteLevel; only byte-level BPE (GPT-2, RoBERTa) is supported");
    if (!byte_level->value("use_regex", true)) fail(path, "ByteLevel with use_regex = false is not supported");
  }
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
  ByteLevelBpeTokenizer t = from_parts(model.contains("vocab") ? model["vocab"] : nlohmann::json(), merges,
                                       byte_level && byte_level->value("add_prefix_space", false), style, path);
  if (style == BpeStyle::kClip) {
    std::vector<AddedToken> added;
    for (const nlohmann::json& token : j.value("added_tokens", nlohmann::json::array())) {
      if (!token.is_object() || !token.contains("content") || !token["content"].is_string() ||
          !token.contains("id") || !token["id"].is_number_integer())
        fail(path, "added_tokens: each entry needs a string \"content\" and an integer \"id\", got " + token.dump());
      if (token["content"].get<std::string>().empty()) fail(path, "added_tokens: empty \"content\"");
      added.push_back({token["content"].get<std::string>(), token["id"].get<int64_t>(), token.value("normalized", false)});
    }
    t.set_clip_specials(std::move(added), suffix, string_field("unk_token"));
  }
  return t;
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
  for (size_t k = 0; k < word.size(); ++k) {
    const auto byte = static_cast<unsigned char>(word[k]);
    // CLIP style: the word's last symbol carries the end-of-word suffix.
    int64_t id = style_ == BpeStyle::kClip && k + 1 == word.size() ? word_end_ids_[byte] : byte_ids_[byte];
    if (id < 0) id = unk_id_;
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

void ByteLevelBpeTokenizer::encode_clip_segment(const std::string& text, std::vector<int64_t>* ids) const {
  const std::string normalized = clip_normalize(text);
  const auto encode_words = [&](const std::string& part) {
    for (const std::string& word : clip_split(part)) bpe_word(word, ids);
  };
  // Special tokens that match the normalized text split it once more.
  split_on_added_tokens(normalized, added_, true, encode_words, ids);
}

std::vector<int64_t> ByteLevelBpeTokenizer::encode(const std::string& text) const {
  std::vector<int64_t> ids;
  if (text.empty()) return ids;
  if (style_ == BpeStyle::kClip) {
    // Special tokens spelled in the raw text are kept whole, and the text
    // between them is normalized and split.
    split_on_added_tokens(text, added_, false, [&](const std::string& part) { encode_clip_segment(part, &ids); },
                          &ids);
    return ids;
  }
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

std::vector<std::string> ByteLevelBpeTokenizer::clip_words(const std::string& text) {
  return clip_split(clip_normalize(text));
}

const std::string& ByteLevelBpeTokenizer::byte_level_char(unsigned char b) { return byte_chars()[b]; }

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
