#include "unigram_tokenizer.h"
#include "tokenizer_limits.h"
#include "config/json_text.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "unicode_props.h"
#include "utf8.h"

namespace automm {
namespace {

// tokenizers' Unigram gives a character no piece covers this much less than
// the least likely piece (K_UNK_PENALTY).
constexpr double kUnkPenalty = 10.0;

[[noreturn]] void fail(const std::string& source, const std::string& what) {
  throw std::runtime_error("Unigram tokenizer " + source + ": " + what);
}

std::string read_file(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(std::string("Unigram tokenizer: cannot open ") + what + " " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string base64_decode(const std::string& text, const std::string& source) {
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (char ch : text) {
    int v;
    if (ch >= 'A' && ch <= 'Z') v = ch - 'A';
    else if (ch >= 'a' && ch <= 'z') v = ch - 'a' + 26;
    else if (ch >= '0' && ch <= '9') v = ch - '0' + 52;
    else if (ch == '+' || ch == '-') v = 62;
    else if (ch == '/' || ch == '_') v = 63;
    else if (ch == '=' || ch == '\n' || ch == '\r') continue;
    else fail(source, "precompiled_charsmap is not base64");
    buffer = (buffer << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buffer >> bits) & 0xFF));
    }
  }
  return out;
}

std::string valid_utf8(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char32_t c : decode_utf8(text)) append_utf8(c, &out);
  return out;
}

// --- tokenizer.json parsing ---------------------------------------------------

using NormStep = UnigramTokenizer::NormStep;

void parse_normalizer(const nlohmann::json& n, const std::string& path, std::vector<NormStep>* steps) {
  if (n.is_null()) return;
  const std::string type = n.is_object() ? n.value("type", std::string("<missing>")) : "<not an object>";
  NormStep step{};
  if (type == "Sequence") {
    if (!n.contains("normalizers") || !n["normalizers"].is_array())
      fail(path, "normalizer Sequence without a normalizers array");
    for (const auto& sub : n["normalizers"]) parse_normalizer(sub, path, steps);
    return;
  } else if (type == "Precompiled") {
    const auto& blob = n.value("precompiled_charsmap", nlohmann::json());
    if (blob.is_null() || blob.get<std::string>().empty()) return;  // identity
    step.kind = NormStep::Kind::kPrecompiled;
    step.charsmap = std::make_shared<PrecompiledCharsmap>(
        PrecompiledCharsmap::from_blob(base64_decode(blob.get<std::string>(), path), path));
  } else if (type == "Replace") {
    const auto& pattern = n.value("pattern", nlohmann::json::object());
    step.content = n.value("content", std::string());
    if (pattern.contains("String")) {
      step.kind = NormStep::Kind::kReplace;
      step.pattern = pattern["String"].get<std::string>();
      if (step.pattern.empty()) return;
    } else if (pattern.value("Regex", std::string()) == " {2,}") {
      // The one regex sentencepiece converters emit (remove_extra_whitespaces).
      step.kind = NormStep::Kind::kReplaceSpaceRuns;
    } else {
      fail(path, "normalizer Replace with pattern " + pattern.dump() +
                     " is not supported (only String patterns and the Regex \" {2,}\")");
    }
  } else if (type == "Strip") {
    step.kind = NormStep::Kind::kStrip;
    step.left = n.value("strip_left", true);
    step.right = n.value("strip_right", true);
  } else if (type == "Lowercase") {
    step.kind = NormStep::Kind::kLowercase;
  } else if (type == "NFC" || type == "NFD" || type == "NFKC" || type == "NFKD") {
    step.kind = NormStep::Kind::kUnicodeForm;
    step.form = type == "NFC"    ? NormalForm::kNfc
                : type == "NFD"  ? NormalForm::kNfd
                : type == "NFKC" ? NormalForm::kNfkc
                                 : NormalForm::kNfkd;
  } else {
    fail(path, "unsupported normalizer \"" + type +
                   "\" (supported: Sequence, Precompiled, Replace, Strip, Lowercase, NFC, NFD, NFKC, NFKD)");
  }
  steps->push_back(step);
}

// *at_origin: false once a replacement of several characters covers the
// text's first character; tokenizers then no longer aligns it with offset 0,
// which Metaspace's prepend_scheme "first" checks.
std::string apply_normalizer(const std::vector<NormStep>& steps, std::string text, bool* at_origin) {
  for (const NormStep& step : steps) {
    std::string next;
    switch (step.kind) {
      case NormStep::Kind::kPrecompiled:
        next = step.charsmap->normalize(text);
        break;
      case NormStep::Kind::kReplace:
        for (size_t i = 0; i < text.size();) {
          if (text.compare(i, step.pattern.size(), step.pattern) == 0) {
            if (i == 0 && decode_utf8(step.pattern).size() > 1) *at_origin = false;
            next += step.content;
            i += step.pattern.size();
          } else {
            next.push_back(text[i++]);
          }
        }
        break;
      case NormStep::Kind::kReplaceSpaceRuns:
        for (size_t i = 0; i < text.size();) {
          size_t j = i;
          while (j < text.size() && text[j] == ' ') ++j;
          if (j - i >= 2) {
            if (i == 0) *at_origin = false;
            next += step.content;
            i = j;
          } else {
            next.push_back(text[i++]);
          }
        }
        break;
      case NormStep::Kind::kStrip: {
        const std::vector<Utf8Char> chars = decode_utf8_chars(text);
        size_t first = 0, last = chars.size();
        while (step.left && first < last && is_unicode_whitespace(chars[first].cp)) ++first;
        while (step.right && last > first && is_unicode_whitespace(chars[last - 1].cp)) --last;
        if (first < last) next = text.substr(chars[first].start, chars[last - 1].start + chars[last - 1].len - chars[first].start);
        break;
      }
      case NormStep::Kind::kLowercase: {
        std::u32string lower;
        for (char32_t c : decode_utf8(text)) append_lowercase(c, &lower);
        for (char32_t c : lower) append_utf8(c, &next);
        break;
      }
      case NormStep::Kind::kUnicodeForm:
        next = normalize_unicode(text, step.form, "Unigram normalizer");
        break;
    }
    text.swap(next);
  }
  return text;
}

// --- A minimal protobuf wire-format reader (sentencepiece's ModelProto) -----

struct ProtoReader {
  const char* p;
  const char* end;
  const std::string& source;

  bool done() const { return p >= end; }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p >= end) fail(source, "truncated protobuf varint");
      const auto b = static_cast<unsigned char>(*p++);
      v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    fail(source, "malformed protobuf varint");
  }
  // Reads a field key; returns the field number, sets the wire type.
  uint32_t key(int* wire) {
    const uint64_t k = varint();
    *wire = static_cast<int>(k & 7);
    return static_cast<uint32_t>(k >> 3);
  }
  std::string bytes() {
    const uint64_t n = varint();
    if (n > static_cast<uint64_t>(end - p)) fail(source, "truncated protobuf field");
    std::string out(p, p + n);
    p += n;
    return out;
  }
  float fixed32_float() {
    if (end - p < 4) fail(source, "truncated protobuf fixed32");
    uint32_t bits = 0;
    for (int i = 0; i < 4; ++i) bits |= static_cast<uint32_t>(static_cast<unsigned char>(p[i])) << (8 * i);
    p += 4;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
  }
  void skip(int wire) {
    if (wire == 0) varint();
    else if (wire == 1) p += 8;
    else if (wire == 2) bytes();
    else if (wire == 5) p += 4;
    else fail(source, "unsupported protobuf wire type " + std::to_string(wire) + " (not a sentencepiece model?)");
    if (p > end) fail(source, "truncated protobuf field");
  }
};

struct SpmPiece {
  std::string piece;
  float score = 0;
  int type = 1;  // NORMAL=1 UNKNOWN=2 CONTROL=3 USER_DEFINED=4 UNUSED=5 BYTE=6
};
struct SpmModel {
  std::vector<SpmPiece> pieces;
  int model_type = 1;  // UNIGRAM=1 BPE=2 WORD=3 CHAR=4
  bool byte_fallback = false;
  int64_t unk_id = 0;
  std::string precompiled_charsmap;
  bool add_dummy_prefix = true;
};

SpmModel parse_spm_model(const std::string& data, const std::string& source) {
  SpmModel m;
  ProtoReader top{data.data(), data.data() + data.size(), source};
  while (!top.done()) {
    int wire;
    const uint32_t field = top.key(&wire);
    if (wire != 2 || field < 1 || field > 3) {
      top.skip(wire);
      continue;
    }
    const std::string sub = top.bytes();
    ProtoReader r{sub.data(), sub.data() + sub.size(), source};
    SpmPiece piece;
    while (!r.done()) {
      int w;
      const uint32_t f = r.key(&w);
      if (field == 1 && f == 1 && w == 2) piece.piece = r.bytes();
      else if (field == 1 && f == 2 && w == 5) piece.score = r.fixed32_float();
      else if (field == 1 && f == 3 && w == 0) piece.type = static_cast<int>(r.varint());
      else if (field == 2 && f == 3 && w == 0) m.model_type = static_cast<int>(r.varint());
      else if (field == 2 && f == 35 && w == 0) m.byte_fallback = r.varint() != 0;
      else if (field == 2 && f == 40 && w == 0) m.unk_id = static_cast<int32_t>(r.varint());
      else if (field == 3 && f == 2 && w == 2) m.precompiled_charsmap = r.bytes();
      else if (field == 3 && f == 3 && w == 0) m.add_dummy_prefix = r.varint() != 0;
      else r.skip(w);
    }
    if (field == 1) {
      // As sentencepiece's loader: an empty piece would match everywhere.
      if (piece.piece.empty())
        throw std::runtime_error(source + ": piece " + std::to_string(m.pieces.size()) + " is empty");
      m.pieces.push_back(piece);
    }
  }
  if (m.pieces.empty()) fail(source, "no pieces (is this a sentencepiece .model file?)");
  return m;
}

}  // namespace

// --- PrecompiledCharsmap ----------------------------------------------------

PrecompiledCharsmap PrecompiledCharsmap::from_blob(const std::string& blob, const std::string& source) {
  if (blob.size() < 4) fail(source, "precompiled_charsmap shorter than its 4-byte header");
  uint32_t trie_size = 0;
  for (int i = 0; i < 4; ++i) trie_size |= static_cast<uint32_t>(static_cast<unsigned char>(blob[i])) << (8 * i);
  if (trie_size % 4 != 0 || trie_size > blob.size() - 4 || trie_size == 0)
    fail(source, "precompiled_charsmap trie size " + std::to_string(trie_size) + " does not fit the blob");
  PrecompiledCharsmap m;
  m.units_.resize(trie_size / 4);
  for (size_t u = 0; u < m.units_.size(); ++u) {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<unsigned char>(blob[4 + 4 * u + i])) << (8 * i);
    m.units_[u] = v;
  }
  m.normalized_ = blob.substr(4 + trie_size);
  return m;
}

bool PrecompiledCharsmap::lookup(const char* bytes, size_t len, std::string* out) const {
  // darts-clone unit layout: bit 31 leaf, bits 0-7 label, bit 8 has_leaf,
  // bits 10-31 offset (shifted left by 8 more when bit 9 is set).
  auto offset = [](uint32_t unit) { return (unit >> 10) << ((unit & (1u << 9)) >> 6); };
  size_t pos = offset(units_[0]);
  for (size_t i = 0; i < len; ++i) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    if (c == 0) return false;
    pos ^= c;
    if (pos >= units_.size()) return false;
    const uint32_t unit = units_[pos];
    if ((unit & ((1u << 31) | 0xFF)) != c) return false;
    pos ^= offset(unit);
    if (pos >= units_.size()) return false;
    if ((unit >> 8) & 1) {
      const size_t at = units_[pos] & 0x7FFFFFFFu;
      if (at >= normalized_.size()) return false;
      const size_t stop = normalized_.find('\0', at);
      *out = normalized_.substr(at, stop == std::string::npos ? std::string::npos : stop - at);
      return true;  // the shortest match, as tokenizers takes results[0]
    }
  }
  return false;
}

std::string PrecompiledCharsmap::normalize(const std::string& utf8) const {
  const std::vector<Utf8Char> chars = decode_utf8_chars(utf8);
  std::string out, replaced;
  size_t i = 0;
  int32_t state = 0;  // utf8proc's grapheme-break state, across the text as tokenizers' iterator
  while (i < chars.size()) {
    // Hugging Face looks up whole extended grapheme clusters (unicode-segmentation).
    size_t j = i + 1;
    while (j < chars.size() && !grapheme_break(chars[j - 1].cp, chars[j].cp, &state)) ++j;
    const size_t begin = chars[i].start, len = chars[j - 1].start + chars[j - 1].len - begin;
    if (len < 6 && lookup(utf8.data() + begin, len, &replaced)) {
      out += replaced;
    } else {
      for (size_t k = i; k < j; ++k) {
        if (lookup(utf8.data() + chars[k].start, chars[k].len, &replaced)) out += replaced;
        else out.append(utf8, chars[k].start, chars[k].len);
      }
    }
    i = j;
  }
  return out;
}

// --- UnigramTokenizer: construction -------------------------------------------

void UnigramTokenizer::add_token(const std::string& content, int64_t id, bool lstrip, bool rstrip) {
  if (id >= static_cast<int64_t>(id_to_token_.size())) id_to_token_.resize(id + 1);
  id_to_token_[id] = content;
  token_ids_[content] = id;
  added_tokens_.push_back({content, id, lstrip, rstrip});
}

void UnigramTokenizer::index_pieces() {
  if (piece_ids_.size() > 0) return;
  for (size_t id = 0; id < pieces_.size(); ++id) piece_ids_[pieces_[id].first] = static_cast<int64_t>(id);
}

void UnigramTokenizer::finish_init() {
  if (pieces_.empty()) fail(source_, "empty vocabulary");
  if (unk_id_ >= static_cast<int64_t>(pieces_.size()))
    fail(source_, "unk_id " + std::to_string(unk_id_) + " is outside the vocabulary");
  double min_score = pieces_[0].second;
  trie_.assign(1, TrieNode());
  index_pieces();
  if (id_to_token_.size() < pieces_.size()) id_to_token_.resize(pieces_.size());
  for (size_t id = 0; id < pieces_.size(); ++id) {
    const std::string& piece = pieces_[id].first;
    min_score = std::min(min_score, pieces_[id].second);
    if (!token_ids_.count(piece)) token_ids_[piece] = static_cast<int64_t>(id);
    if (id_to_token_[id].empty()) id_to_token_[id] = piece;
    int32_t node = 0;
    for (char ch : piece) {
      const auto b = static_cast<unsigned char>(ch);
      auto it = trie_[node].next.find(b);
      if (it == trie_[node].next.end()) {
        it = trie_[node].next.emplace(b, static_cast<int32_t>(trie_.size())).first;
        trie_.emplace_back();
      }
      node = it->second;
    }
    trie_[node].id = static_cast<int64_t>(id);
  }
  // The trie holds the last id of a repeated piece, like the lookup map.
  for (auto& node : trie_) {
    if (node.id >= 0) node.id = piece_ids_[pieces_[node.id].first];
  }
  unk_score_ = min_score - kUnkPenalty;
  char name[8];
  for (int b = 0; b < 256; ++b) {
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    auto it = piece_ids_.find(name);
    byte_ids_[b] = it == piece_ids_.end() ? -1 : it->second;
  }
  // Longest first, so that the first match at a position is the longest.
  std::stable_sort(added_tokens_.begin(), added_tokens_.end(),
                   [](const AddedToken& a, const AddedToken& b) { return a.content.size() > b.content.size(); });
}

UnigramTokenizer UnigramTokenizer::from_tokenizer_json(const std::string& path) {
  nlohmann::json j;
  try {
    j = parse_json(read_file(path, "tokenizer file"), path);
  } catch (const nlohmann::json::exception& e) {
    fail(path, std::string("invalid JSON: ") + e.what());
  }
  const auto& model = j.value("model", nlohmann::json::object());
  const std::string model_type = model.value("type", std::string("<missing>"));
  if (model_type != "Unigram") fail(path, "model type is \"" + model_type + "\", not Unigram");
  if (!model.contains("vocab") || !model["vocab"].is_array()) fail(path, "model has no vocab array");
  check_tokenizer_entries(model["vocab"].size(), "vocabulary", path);
  UnigramTokenizer t;
  t.source_ = path;
  for (const auto& entry : model["vocab"]) {
    if (!entry.is_array() || entry.size() != 2 || !entry[0].is_string() || !entry[1].is_number())
      fail(path, "vocab entry " + entry.dump() + " is not [piece, score]");
    t.pieces_.emplace_back(entry[0].get<std::string>(), entry[1].get<double>());
  }
  if (model.contains("unk_id") && !model["unk_id"].is_null()) t.unk_id_ = json_integer_field(model, "unk_id", -1, path);
  t.byte_fallback_ = model.value("byte_fallback", false);

  parse_normalizer(j.value("normalizer", nlohmann::json()), path, &t.normalizer_);

  nlohmann::json pre = j.value("pre_tokenizer", nlohmann::json());
  if (pre.is_object() && pre.value("type", "") == "Sequence" && pre.value("pretokenizers", nlohmann::json()).size() == 1)
    pre = pre["pretokenizers"][0];
  const std::string pre_type = pre.is_object() ? pre.value("type", std::string("<missing>")) : "null";
  if (pre_type != "Metaspace")
    fail(path, "unsupported pre_tokenizer \"" + pre_type + "\" (only Metaspace is supported)");
  t.replacement_ = pre.value("replacement", t.replacement_);
  if (decode_utf8(t.replacement_).size() != 1) fail(path, "Metaspace replacement must be one character");
  t.split_ = pre.value("split", true);
  const std::string scheme =
      pre.contains("prepend_scheme") ? pre["prepend_scheme"].get<std::string>()
                                     : (pre.value("add_prefix_space", true) ? "always" : "never");
  if (scheme == "always") t.prepend_ = PrependScheme::kAlways;
  else if (scheme == "first") t.prepend_ = PrependScheme::kFirst;
  else if (scheme == "never") t.prepend_ = PrependScheme::kNever;
  else fail(path, "Metaspace prepend_scheme \"" + scheme + "\" is not always, first or never");

  for (const auto& a : j.value("added_tokens", nlohmann::json::array())) {
    const std::string content = a.value("content", std::string());
    const int64_t id = json_integer_field(a, "id", -1, path + ": added token");
    if (content.empty() || id < 0) fail(path, "added token " + a.dump() + " has no content or id");
    if (id >= static_cast<int64_t>(kMaxTokenizerEntries)) fail(path, "added token \"" + content + "\" has id " + std::to_string(id) + ", past any vocabulary");
    // single_word needs word-boundary rules this tokenizer does not have.
    if (a.value("single_word", false)) fail(path, "added token \"" + content + "\" with single_word is not supported");
    // Like tokenizers' AddedVocabulary, a token the model already has keeps the model's id.
    t.index_pieces();
    auto known = t.piece_ids_.find(content);
    t.add_token(content, known == t.piece_ids_.end() ? id : known->second, a.value("lstrip", false),
                a.value("rstrip", false));
  }
  t.finish_init();
  return t;
}

UnigramTokenizer UnigramTokenizer::from_sentencepiece_model(const std::string& path,
                                                            const SentencePieceConversion& conversion) {
  const SpmModel spm = parse_spm_model(read_file(path, "sentencepiece model"), path);
  check_tokenizer_entries(spm.pieces.size(), "vocabulary", path);
  if (spm.model_type != 1)
    fail(path, "sentencepiece model_type " + std::string(spm.model_type == 2 ? "BPE" : spm.model_type == 3 ? "WORD" : "CHAR") +
                   " is not supported (only UNIGRAM)");
  UnigramTokenizer t;
  t.source_ = path;
  const bool xlmr = conversion.model_type == "xlm-roberta";
  // transformers' XLMRobertaConverter: fairseq's <s> <pad> </s> <unk> take
  // ids 0..3, the spm pieces from 3 on follow shifted by one, <mask> last.
  size_t first_piece = 0;
  if (xlmr) {
    for (const char* special : {"<s>", "<pad>", "</s>", "<unk>"}) {
      t.add_token(special, static_cast<int64_t>(t.pieces_.size()), false, false);
      t.pieces_.emplace_back(special, 0.0);
    }
    first_piece = 3;
    t.unk_id_ = 3;
  } else {
    t.unk_id_ = spm.unk_id;
    t.byte_fallback_ = spm.byte_fallback;
  }
  for (size_t i = first_piece; i < spm.pieces.size(); ++i) {
    const SpmPiece& p = spm.pieces[i];
    // Control and user-defined pieces (and <unk>) are matched verbatim, as
    // the converted tokenizer registers them as added tokens.
    if (!xlmr && (p.type == 2 || p.type == 3 || p.type == 4))
      t.add_token(p.piece, static_cast<int64_t>(t.pieces_.size()), false, false);
    t.pieces_.emplace_back(p.piece, static_cast<double>(p.score));
  }
  if (xlmr) {
    t.add_token("<mask>", static_cast<int64_t>(t.pieces_.size()), true, false);
    t.pieces_.emplace_back("<mask>", 0.0);
  }
  // The normalizers of XLMRobertaConverter / DebertaV2Converter / SpmConverter.
  using Kind = NormStep::Kind;
  if (xlmr) {
    t.normalizer_.push_back({Kind::kReplace, "``", "\"", false, false, nullptr});
    t.normalizer_.push_back({Kind::kReplace, "''", "\"", false, false, nullptr});
  }
  if (conversion.lowercase) t.normalizer_.push_back({Kind::kLowercase, "", "", false, false, nullptr});
  if (conversion.model_type == "deberta-v2") t.normalizer_.push_back({Kind::kStrip, "", "", true, true, nullptr});
  if (!spm.precompiled_charsmap.empty())
    t.normalizer_.push_back({Kind::kPrecompiled, "", "", false, false,
                             std::make_shared<PrecompiledCharsmap>(PrecompiledCharsmap::from_blob(spm.precompiled_charsmap, path))});
  t.normalizer_.push_back({Kind::kReplaceSpaceRuns, "", " ", false, false, nullptr});
  t.prepend_ = spm.add_dummy_prefix ? PrependScheme::kAlways : PrependScheme::kNever;
  t.finish_init();
  return t;
}

// --- UnigramTokenizer: encoding -----------------------------------------------

void UnigramTokenizer::viterbi(const std::string& word, std::vector<int64_t>* ids) const {
  // Best segmentation of each byte prefix; ties keep the earliest start.
  struct Node {
    int64_t id = -1;
    double score = 0;
    size_t start = 0;
    bool reached = false;
  };
  const size_t n = word.size();
  std::vector<Node> best(n + 1);
  best[0].reached = true;
  for (size_t start = 0; start < n;) {
    const double base = best[start].score;
    const auto lead = static_cast<unsigned char>(word[start]);
    // A model's precompiled charsmap may map text to invalid UTF-8: a lead byte
    // near the end never reaches past it.
    const size_t char_len = std::min<size_t>(n - start, lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4);
    bool single_char_piece = false;
    int32_t node = 0;
    for (size_t end = start; end < n;) {
      auto it = trie_[node].next.find(static_cast<unsigned char>(word[end]));
      if (it == trie_[node].next.end()) break;
      node = it->second;
      ++end;
      const int64_t id = trie_[node].id;
      if (id < 0) continue;
      const double score = base + pieces_[id].second;
      if (!best[end].reached || score > best[end].score) best[end] = {id, score, start, true};
      if (end - start == char_len) single_char_piece = true;
    }
    if (!single_char_piece) {
      if (unk_id_ < 0) fail(source_, "a character has no piece and the model has no unk_id");
      const double score = base + unk_score_;
      Node& target = best[start + char_len];
      if (!target.reached || score > target.score) target = {unk_id_, score, start, true};
    }
    start += char_len;
  }
  // Back from the end; consecutive unknown pieces fuse into one (fuse_unk).
  std::vector<std::pair<size_t, size_t>> spans;
  bool previous_unk = false;
  for (size_t end = n; end > 0; end = best[end].start) {
    const bool unk = best[end].id == unk_id_;
    if (unk && previous_unk) spans.back().first = best[end].start;
    else spans.emplace_back(best[end].start, end);
    previous_unk = unk;
  }
  for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
    const std::string piece = word.substr(it->first, it->second - it->first);
    auto found = piece_ids_.find(piece);
    if (found != piece_ids_.end()) {
      ids->push_back(found->second);
      continue;
    }
    bool all_bytes = byte_fallback_;
    for (char ch : piece) all_bytes = all_bytes && byte_ids_[static_cast<unsigned char>(ch)] >= 0;
    if (all_bytes) {
      for (char ch : piece) ids->push_back(byte_ids_[static_cast<unsigned char>(ch)]);
    } else {
      if (unk_id_ < 0) fail(source_, "piece \"" + piece + "\" is unknown and the model has no unk_id");
      ids->push_back(unk_id_);
    }
  }
}

void UnigramTokenizer::encode_segment(const std::string& segment, bool at_text_start, std::vector<int64_t>* ids) const {
  // at_text_start: the segment begins the text (no added token before it).
  std::string text = apply_normalizer(normalizer_, segment, &at_text_start);
  if (text.empty()) return;
  std::string word;
  for (char ch : text) {
    if (ch == ' ') word += replacement_;
    else word.push_back(ch);
  }
  const bool prepend = prepend_ == PrependScheme::kAlways || (prepend_ == PrependScheme::kFirst && at_text_start);
  if (prepend && word.compare(0, replacement_.size(), replacement_) != 0) word.insert(0, replacement_);
  if (!split_) {
    viterbi(word, ids);
    return;
  }
  // Split before every replacement character (MergedWithNext).
  size_t begin = 0;
  for (size_t at = word.find(replacement_, 1); at != std::string::npos; at = word.find(replacement_, at + 1)) {
    if (at > begin) viterbi(word.substr(begin, at - begin), ids);
    begin = at;
  }
  viterbi(word.substr(begin), ids);
}

std::vector<int64_t> UnigramTokenizer::encode(const std::string& raw) const {
  const std::string text = valid_utf8(raw);
  std::vector<int64_t> ids;
  size_t segment_start = 0;
  // A segment before the end of text: the bytes [segment_start, end).
  auto flush = [&](size_t end) {
    if (end > segment_start) encode_segment(text.substr(segment_start, end - segment_start), segment_start == 0, &ids);
  };
  for (size_t i = 0; i < text.size();) {
    const AddedToken* match = nullptr;
    for (const AddedToken& added : added_tokens_) {
      if (text.compare(i, added.content.size(), added.content) == 0) {
        match = &added;
        break;
      }
    }
    if (!match) {
      ++i;
      continue;
    }
    size_t begin = i, end = i + match->content.size();
    // lstrip / rstrip: the token swallows the whitespace next to it.
    if (match->lstrip) {
      const std::vector<Utf8Char> before = decode_utf8_chars(text.substr(segment_start, begin - segment_start));
      for (auto c = before.rbegin(); c != before.rend() && is_unicode_whitespace(c->cp); ++c) begin = segment_start + c->start;
    }
    if (match->rstrip) {
      for (const Utf8Char& c : decode_utf8_chars(text.substr(end))) {
        if (!is_unicode_whitespace(c.cp)) break;
        end += c.len;
      }
    }
    flush(begin);
    ids.push_back(match->id);
    i = segment_start = end;
  }
  flush(text.size());
  return ids;
}

std::vector<std::string> UnigramTokenizer::tokenize(const std::string& text) const {
  std::vector<std::string> tokens;
  for (int64_t id : encode(text)) tokens.push_back(id_to_token(id));
  return tokens;
}

std::string UnigramTokenizer::normalize(const std::string& text) const {
  bool at_origin = true;
  return apply_normalizer(normalizer_, valid_utf8(text), &at_origin);
}

int64_t UnigramTokenizer::token_to_id(const std::string& token) const {
  auto it = token_ids_.find(token);
  if (it == token_ids_.end()) fail(source_, "token \"" + token + "\" is not in the vocabulary");
  return it->second;
}

const std::string& UnigramTokenizer::id_to_token(int64_t id) const {
  if (id < 0 || id >= static_cast<int64_t>(id_to_token_.size()))
    fail(source_, "token id " + std::to_string(id) + " is out of range");
  return id_to_token_[id];
}

int64_t UnigramTokenizer::first_known(const std::vector<std::string>& tokens, const char* what) const {
  for (const std::string& token : tokens) {
    auto it = token_ids_.find(token);
    if (it != token_ids_.end()) return it->second;
  }
  fail(source_, std::string("the vocabulary has no ") + what + " token");
}

int64_t UnigramTokenizer::cls_id() const { return first_known({"[CLS]", "<s>", "<cls>"}, "start ([CLS], <s>, <cls>)"); }
int64_t UnigramTokenizer::sep_id() const { return first_known({"[SEP]", "</s>", "<sep>"}, "end ([SEP], </s>, <sep>)"); }
int64_t UnigramTokenizer::pad_id() const { return first_known({"[PAD]", "<pad>"}, "padding ([PAD], <pad>)"); }

}  // namespace automm
