// Checks the C++ Unigram (sentencepiece) tokenizer against Hugging Face
// tokenizers (node binding, tests/tokenizer_reference/unigram_reference.js).
// No pretrained sentencepiece model can be downloaded here, so the reference
// library trains one on generated sentences; the test then writes variants of
// its tokenizer.json (special tokens, byte fallback, a Precompiled charsmap
// built below, other Metaspace settings) and a protobuf .model of the same
// vocabulary, and compares ids sentence by sentence.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/text/text_tokenizer.h"
#include "data/text/unigram_tokenizer.h"
#include "data/tokenizer_test_util.h"

namespace automm {
namespace {

using automm::testing::Contains;
using automm::testing::join_ids;
using automm::testing::TempDir;
using automm::testing::utf8;
using automm::testing::write_file;
using Rng = automm::testing::XorShiftRng;
using Json = nlohmann::json;

// --- A precompiled_charsmap built here ---------------------------------------
// Format (sentencepiece normalizer.cc, tokenizers' spm_precompiled): u32 LE
// trie size in bytes | darts-clone double array of u32 units | replacement
// strings, NUL-terminated. A unit holds label (bits 0-7), has_leaf (bit 8) and
// the XOR offset to its children's base (bits 10-31); a node's children sit at
// base ^ byte, its value (bit 31 set, offset into the strings) at base ^ 0.
// Laid out first-fit, breadth first.
std::string build_charsmap(const std::map<std::string, std::string>& rules) {
  struct Node {
    std::map<unsigned char, size_t> kids;
    int64_t value = -1;
  };
  std::vector<Node> nodes(1);
  std::string strings;
  for (const auto& [key, replacement] : rules) {
    size_t n = 0;
    for (char ch : key) {
      auto it = nodes[n].kids.find(static_cast<unsigned char>(ch));
      if (it == nodes[n].kids.end()) {
        it = nodes[n].kids.emplace(static_cast<unsigned char>(ch), nodes.size()).first;
        nodes.emplace_back();
      }
      n = it->second;
    }
    nodes[n].value = static_cast<int64_t>(strings.size());
    strings += replacement + std::string(1, '\0');
  }
  std::vector<uint32_t> units(1, 0);
  std::vector<bool> used(1, true);
  auto take = [&](size_t pos, uint32_t unit) {
    if (pos >= units.size()) units.resize(pos + 1, 0), used.resize(pos + 1, false);
    units[pos] = unit;
    used[pos] = true;
  };
  std::vector<std::pair<size_t, size_t>> queue = {{0, 0}};  // (node, position)
  for (size_t q = 0; q < queue.size(); ++q) {
    const auto [n, pos] = queue[q];
    std::vector<unsigned> labels;
    if (nodes[n].value >= 0) labels.push_back(0);
    for (const auto& kid : nodes[n].kids) labels.push_back(kid.first);
    size_t base = 1;
    for (;; ++base) {
      bool free = true;
      for (unsigned c : labels) free = free && (base ^ c) != 0 && ((base ^ c) >= used.size() || !used[base ^ c]);
      if (free) break;
    }
    units[pos] |= static_cast<uint32_t>(pos ^ base) << 10;
    if (nodes[n].value >= 0) {
      units[pos] |= 1u << 8;
      take(base, (1u << 31) | static_cast<uint32_t>(nodes[n].value));
    }
    for (const auto& [c, kid] : nodes[n].kids) {
      take(base ^ c, c);
      queue.emplace_back(kid, base ^ c);
    }
  }
  units.resize(units.size() + 256, 0);  // lookups of absent labels stay in range
  std::string blob(4, '\0');
  const uint32_t trie_size = static_cast<uint32_t>(units.size() * 4);
  for (int i = 0; i < 4; ++i) blob[i] = static_cast<char>((trie_size >> (8 * i)) & 0xFF);
  for (uint32_t u : units)
    for (int i = 0; i < 4; ++i) blob.push_back(static_cast<char>((u >> (8 * i)) & 0xFF));
  return blob + strings;
}

// Rules in the spirit of nmt_nfkc, with the cases where Hugging Face's
// grapheme-first lookup matters: "x" + a mark is replaced by "x"'s rule alone,
// "\r\n" by "\r"'s, and a 6-byte cluster ("ｶﾞ") is looked up char by char.
const std::map<std::string, std::string> kRules = {
    {"\xEF\xBC\xA1", "A"},        {"\xEF\xBD\x82", "b"},   {"\xEF\xAC\x81", "fi"},
    {"e\xCC\x81", "\xC3\xA9"},    {"\xC2\xA0", " "},       {"\xE3\x80\x80", " "},
    {"\xE2\x80\xA6", "..."},      {"\t", " "},             {"\n", " "},
    {"\r", " "},                  {"\xE2\x85\xAB", "XII"}, {"\xE2\x91\xA0", "1"},
    {"\xE2\x84\xA2", "TM"},       {"x", "X"},              {"\xE2\x80\x8B", ""},
    {"\xEF\xBD\xB6", "\xE3\x82\xAB"}, {"\xEF\xBE\x9E", "\xE3\x82\x99"},
    {"\xEF\xBD\xB6\xEF\xBE\x9E", "\xE3\x82\xAC"}, {"\xC3\x85", "A\xCC\x8A"}};

std::string base64(const std::string& bytes) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t v = static_cast<unsigned char>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    if (i + 2 < bytes.size()) v |= static_cast<unsigned char>(bytes[i + 2]);
    for (size_t k = 0; k < 4; ++k) out.push_back(k < 2 || k <= bytes.size() - i ? kAlphabet[(v >> (18 - 6 * k)) & 63] : '=');
  }
  return out;
}

// --- Generated sentences -------------------------------------------------------

std::vector<std::string> make_sentences(uint64_t seed, size_t count) {
  const std::vector<std::string> pieces = {
      "Hello", "world", "The quick brown fox", "jumps over the lazy dog.", "strawberries", "unbelievable",
      "Tokenization", "antidisestablishmentarianism", "state-of-the-art", "http://example.com/a?b=1", "C++17",
      "don't", "1,234.56", "2023-01-01", "½", "①", "Ⅻ", "™", "...", "…", "«guillemets»", "¿Qué?", "<s>", "</s>",
      "<pad>", "<unk>", "café", "cafe\xCC\x81", "e\xCC\x81\xCC\xA3", "x\xCC\x81", "x\xE0\xA4\x83", "x\xE2\x80\x8D",
      "x\xEF\xB8\x8F", "xylophone", "Ångström", "ﬁne", "Ａｂ", "ｶﾞ", "ｶ", "São Paulo", "Müller", "straße", "中文",
      "日本語", "東京タワー", "한국어", "안녕하세요", "𠀋", "😀", "👍🏽", "❤️", "🇺🇸", "👨‍👩‍👧", "Ελληνικά", "Привет",
      "مرحبا", "नमस्ते", "สวัสดี", "\t", "\n", "\r\n", "  ", "\xC2\xA0", "\xE3\x80\x80", "\xE2\x80\x8B", "``", "''",
      std::string("a\0b", 3), "\xEF\xBF\xBD"};
  const std::vector<std::string> separators = {" ", " ", " ", "", "  ", "   ", "\t", "\n", ", ", "\xC2\xA0"};
  std::vector<std::string> out = {"", " ", "  ", "\t\n", "a", " a", "a ", "a  b", "Hello world", "x\r\nx"};
  std::string long_word;
  for (int i = 0; i < 300; ++i) long_word += "abcq"[i % 4];
  out.push_back(long_word);
  Rng rng(seed);
  while (out.size() < count) {
    std::string s;
    const size_t kind = rng.below(10);
    if (kind < 7) s = automm::testing::joined_pieces(rng, pieces, separators, 14);
    else s = automm::testing::random_code_points(rng, 10, " \n\tx");
    out.push_back(s);
  }
  return out;
}

// --- The reference ----------------------------------------------------------------

std::string run_node(const std::string& args, const std::string& out_path, const TempDir& dir) {
  return automm::testing::run_node_reference("unigram_reference.js", args, out_path, dir);
}

struct Reference {
  std::string error;
  std::unique_ptr<TempDir> dir;
  std::vector<std::string> sentences;
  Json trained;  // the tokenizer.json Hugging Face trained
};

const Reference& reference() {
  static const Reference ref = [] {
    Reference r;
    r.error = automm::testing::missing_npm_package({"@anush008/tokenizers"});
    if (!r.error.empty()) return r;
    r.dir = std::make_unique<TempDir>();
    std::string corpus;
    for (const std::string& s : make_sentences(0x5EED0001ULL, 3000)) {
      // No "<s>"-like pieces: the special tokens keep ids 0..3.
      for (char ch : s) corpus.push_back(ch == '\n' || ch == '\r' || ch == '\0' || ch == '<' ? ' ' : ch);
      corpus.push_back('\n');
    }
    write_file(r.dir->file("corpus.txt"), corpus);
    r.error = run_node("train \"" + r.dir->file("corpus.txt") + "\" \"" + r.dir->file("trained.json") + "\"", "/dev/null", *r.dir);
    if (!r.error.empty()) return r;
    std::ifstream in(r.dir->file("trained.json"));
    r.trained = Json::parse(in);
    r.sentences = make_sentences(0xC0FFEE42ULL, 3000);
    automm::testing::write_jsonl_sentences(r.dir->file("sentences.jsonl"), r.sentences);
    return r;
  }();
  return ref;
}

// The trained vocabulary behind <unk> <s> </s> <pad> (ids 0..3, added tokens),
// scores rounded to float as a .model stores them; optionally <0xNN> pieces.
Json variant(const Reference& ref, bool byte_fallback) {
  Json j = ref.trained;
  Json vocab = Json::array();
  for (const char* special : {"<unk>", "<s>", "</s>", "<pad>"}) vocab.push_back(Json::array({special, 0.0}));
  for (const auto& entry : ref.trained["model"]["vocab"])
    vocab.push_back(Json::array({entry[0], static_cast<double>(static_cast<float>(entry[1].get<double>()))}));
  if (byte_fallback) {
    char name[8];
    for (int b = 0; b < 256; ++b) {
      std::snprintf(name, sizeof(name), "<0x%02X>", b);
      vocab.push_back(Json::array({name, -30.0}));
    }
  }
  j["model"] = {{"type", "Unigram"}, {"unk_id", 0}, {"vocab", vocab}, {"byte_fallback", byte_fallback}};
  j["added_tokens"] = Json::array();
  int id = 0;
  for (const char* special : {"<unk>", "<s>", "</s>", "<pad>"}) {
    j["added_tokens"].push_back({{"id", id++}, {"content", special}, {"single_word", false}, {"lstrip", false},
                                 {"rstrip", false}, {"normalized", false}, {"special", true}});
  }
  return j;
}

Json precompiled_normalizer() {
  return {{"type", "Precompiled"}, {"precompiled_charsmap", base64(build_charsmap(kRules))}};
}

// Saves `config`, runs the reference on it and compares `tok` on every sentence.
void expect_agreement(const Reference& ref, const Json& config, const UnigramTokenizer& tok, const std::string& label) {
  const std::string json_path = ref.dir->file("variant.json"), ids_path = ref.dir->file("ids.jsonl");
  write_file(json_path, config.dump());
  const std::string error = run_node("encode \"" + json_path + "\" \"" + ref.dir->file("sentences.jsonl") + "\"", ids_path, *ref.dir);
  ASSERT_TRUE(error.empty()) << error;
  std::ifstream f(ids_path);
  std::string line;
  size_t agree = 0, total = 0, shown = 0;
  for (; std::getline(f, line) && total < ref.sentences.size(); ++total) {
    const auto expected = Json::parse(line).get<std::vector<int64_t>>();
    const auto got = tok.encode(ref.sentences[total]);
    if (got == expected) ++agree;
    else if (shown++ < 6)
      std::cout << "  differs: " << label << " sentence " << total << ": " << Json(ref.sentences[total]).dump()
                    << "\n  C++:       " << join_ids(got) << "\n  reference: " << join_ids(expected) << "\n";
  }
  EXPECT_EQ(total, ref.sentences.size());
  std::cout << "[ " << label << " ] " << agree << "/" << total << " sentences agree\n";
  // Grapheme clusters and the normal forms come from utf8proc (unicode_normalize.h).
  EXPECT_EQ(agree, ref.sentences.size());
}

UnigramTokenizer load(const Reference& ref, const Json& config) {
  const std::string path = ref.dir->file("loaded.json");
  write_file(path, config.dump());
  return UnigramTokenizer::from_tokenizer_json(path);
}

TEST(UnigramReference, TrainedModelMatchesHuggingFace) {
  const auto& ref = reference();
  ASSERT_TRUE(ref.error.empty()) << ref.error;
  ASSERT_EQ(ref.trained["model"]["type"], "Unigram");
  EXPECT_GT(ref.trained["model"]["vocab"].size(), 300u);
  Json config = variant(ref, false);
  const auto tok = load(ref, config);
  EXPECT_EQ(tok.cls_id(), 1);
  EXPECT_EQ(tok.sep_id(), 2);
  EXPECT_EQ(tok.pad_id(), 3);
  EXPECT_EQ(tok.unk_id(), 0);
  expect_agreement(ref, config, tok, "Unigram, Metaspace always + split");
}

TEST(UnigramReference, PrecompiledByteFallbackAndOtherSettingsMatchHuggingFace) {
  const auto& ref = reference();
  ASSERT_TRUE(ref.error.empty()) << ref.error;
  Json config = variant(ref, true);
  config["normalizer"] = {{"type", "Sequence"},
                          {"normalizers", Json::array({{{"type", "Replace"}, {"pattern", {{"String", "``"}}}, {"content", "\""}},
                                                       precompiled_normalizer(),
                                                       {{"type", "Replace"}, {"pattern", {{"Regex", " {2,}"}}}, {"content", " "}},
                                                       {{"type", "Strip"}, {"strip_left", false}, {"strip_right", true}}})}};
  config["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}, {"prepend_scheme", "first"}, {"split", false}};
  expect_agreement(ref, config, load(ref, config), "Unigram, Precompiled + byte_fallback, Metaspace first");

  config["normalizer"] = {{"type", "Sequence"},
                          {"normalizers", Json::array({{{"type", "Lowercase"}}, {{"type", "NFD"}},
                                                       {{"type", "Strip"}, {"strip_left", true}, {"strip_right", true}}})}};
  config["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}, {"prepend_scheme", "never"}, {"split", true}};
  expect_agreement(ref, config, load(ref, config), "Unigram, Lowercase + NFD + Strip, Metaspace never");
}

// The normal forms Hugging Face's normalizers name, each alone and after Precompiled.
TEST(UnigramReference, UnicodeNormalFormsMatchHuggingFace) {
  const auto& ref = reference();
  ASSERT_TRUE(ref.error.empty()) << ref.error;
  for (const char* form : {"NFC", "NFKC", "NFKD"}) {
    Json config = variant(ref, true);
    config["normalizer"] = {{"type", form}};
    expect_agreement(ref, config, load(ref, config), std::string("Unigram, ") + form);
    config["normalizer"] = {{"type", "Sequence"}, {"normalizers", Json::array({precompiled_normalizer(), {{"type", form}}})}};
    expect_agreement(ref, config, load(ref, config), std::string("Unigram, Precompiled + ") + form);
  }
}

// --- A sentencepiece .model of the same vocabulary ---------------------------------

void put_varint(uint64_t v, std::string* out) {
  for (; v >= 0x80; v >>= 7) out->push_back(static_cast<char>((v & 0x7F) | 0x80));
  out->push_back(static_cast<char>(v));
}
void put_bytes(uint32_t field, const std::string& bytes, std::string* out) {
  put_varint(field << 3 | 2, out);
  put_varint(bytes.size(), out);
  *out += bytes;
}
void put_uint(uint32_t field, uint64_t v, std::string* out) {
  put_varint(field << 3, out);
  put_varint(v, out);
}

// ModelProto: pieces (1: piece, 2: score as fixed32 float, 3: type),
// trainer_spec (3: model_type, 40: unk_id), normalizer_spec (1: name,
// 2: precompiled_charsmap, 3: add_dummy_prefix).
std::string spm_model(const Json& vocab, int model_type, const std::string& charsmap) {
  std::string out;
  for (size_t i = 0; i < vocab.size(); ++i) {
    std::string piece;
    put_bytes(1, vocab[i][0].get<std::string>(), &piece);
    const float score = static_cast<float>(vocab[i][1].get<double>());
    uint32_t bits;
    std::memcpy(&bits, &score, 4);
    put_varint(2 << 3 | 5, &piece);
    for (int k = 0; k < 4; ++k) piece.push_back(static_cast<char>((bits >> (8 * k)) & 0xFF));
    put_uint(3, i == 0 ? 2 : i < 4 ? 3 : 1, &piece);  // <unk> UNKNOWN, <s> </s> <pad> CONTROL
    put_bytes(1, piece, &out);
  }
  std::string trainer, normalizer;
  put_uint(3, model_type, &trainer);
  put_uint(40, 0, &trainer);
  put_bytes(2, trainer, &out);
  put_bytes(1, "nmt_nfkc", &normalizer);
  put_bytes(2, charsmap, &normalizer);
  put_uint(3, 1, &normalizer);
  put_bytes(3, normalizer, &out);
  return out;
}

TEST(UnigramSentencePiece, ModelFileTokenizesLikeTheEquivalentTokenizerJson) {
  const auto& ref = reference();
  ASSERT_TRUE(ref.error.empty()) << ref.error;
  Json config = variant(ref, false);
  TempDir folder;
  write_file(folder.file("spiece.model"), spm_model(config["model"]["vocab"], 1, build_charsmap(kRules)));
  write_file(folder.file("config.json"), "{\"model_type\": \"t5\"}");
  const TextTokenizer text_tok = TextTokenizer::from_folder(folder.path().string());
  EXPECT_EQ(text_tok.kind(), "unigram");
  EXPECT_EQ(text_tok.cls_id(), 1);
  const auto tok = UnigramTokenizer::from_sentencepiece_model(folder.file("spiece.model"));
  // What transformers' converter writes for it (Precompiled, spaces squeezed).
  config["normalizer"] = {{"type", "Sequence"},
                          {"normalizers", Json::array({precompiled_normalizer(),
                                                       {{"type", "Replace"}, {"pattern", {{"Regex", " {2,}"}}}, {"content", " "}}})}};
  config["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}, {"prepend_scheme", "always"}, {"split", true}};
  expect_agreement(ref, config, tok, "sentencepiece .model vs its tokenizer.json");
  for (size_t i = 0; i < 200; ++i) EXPECT_EQ(text_tok.encode(ref.sentences[i]), tok.encode(ref.sentences[i]));

  // XLM-R: fairseq ids (<s> <pad> </s> <unk> = 0..3, pieces from 3 on shifted by one, <mask> last).
  write_file(folder.file("config.json"), "{\"model_type\": \"xlm-roberta\"}");
  const TextTokenizer xlmr = TextTokenizer::from_folder(folder.path().string());
  EXPECT_EQ(xlmr.cls_id(), 0);
  EXPECT_EQ(xlmr.pad_id(), 1);
  EXPECT_EQ(xlmr.sep_id(), 2);
  const std::string word = "Hello";
  std::vector<int64_t> shifted = tok.encode(word);
  for (auto& id : shifted) id = id >= 3 ? id + 1 : id == 0 ? 3 : id;
  EXPECT_EQ(xlmr.encode(word), shifted);

  write_file(folder.file("spiece.model"), spm_model(config["model"]["vocab"], 2, ""));
  EXPECT_TRUE(Contains(automm::testing::message_of<std::runtime_error>(
                           [&] { UnigramTokenizer::from_sentencepiece_model(folder.file("spiece.model")); }),
                       "BPE is not supported"));
}

// --- Hand-computed cases (no node needed) -------------------------------------------

TEST(UnigramPrecompiled, HandComputedNormalizations) {
  const auto map = PrecompiledCharsmap::from_blob(build_charsmap(kRules), "test");
  EXPECT_EQ(map.normalize("\xEF\xBC\xA1\xEF\xBD\x82"), "Ab");                   // fullwidth
  EXPECT_EQ(map.normalize("\xEF\xAC\x81ne\xE2\x80\xA6"), "fine...");           // ligature, ellipsis
  EXPECT_EQ(map.normalize("cafe\xCC\x81"), "caf\xC3\xA9");                     // e + acute composes
  EXPECT_EQ(map.normalize("e\xCC\x81\xCC\xA3"), "\xC3\xA9");                   // 5-byte cluster: shortest key wins, the dot is lost
  EXPECT_EQ(map.normalize("x\xCC\x81y"), "Xy");                                 // "x" + mark: x's rule replaces the cluster
  EXPECT_EQ(map.normalize("\xEF\xBD\xB6\xEF\xBE\x9E"), "\xE3\x82\xAB\xE3\x82\x99");  // 6 bytes: char by char
  EXPECT_EQ(map.normalize("a\r\nb"), "a b");                                    // CR LF is one cluster
  EXPECT_EQ(map.normalize("a\xE2\x80\x8B" "b\xC2\xA0" "c"), "ab c");
  EXPECT_EQ(map.normalize("plain"), "plain");
  EXPECT_THROW(PrecompiledCharsmap::from_blob("\x10\0\0\0", "test"), std::runtime_error);
}

TEST(UnigramErrors, UnsupportedComponentsAreNamed) {
  TempDir dir;
  Json j = {{"model", {{"type", "Unigram"}, {"unk_id", 0}, {"vocab", Json::array({Json::array({"<unk>", 0.0}), Json::array({"a", -1.0})})}}},
            {"normalizer", {{"type", "NFKC_Casefold"}}},
            {"pre_tokenizer", {{"type", "Metaspace"}}}};
  write_file(dir.file("tokenizer.json"), j.dump());
  std::string e = automm::testing::message_of<std::runtime_error>([&] { UnigramTokenizer::from_tokenizer_json(dir.file("tokenizer.json")); });
  EXPECT_TRUE(Contains(e, "tokenizer.json"));
  EXPECT_TRUE(Contains(e, "NFKC_Casefold"));
  j["normalizer"] = nullptr;
  j["pre_tokenizer"] = {{"type", "Whitespace"}};
  write_file(dir.file("tokenizer.json"), j.dump());
  e = automm::testing::message_of<std::runtime_error>([&] { UnigramTokenizer::from_tokenizer_json(dir.file("tokenizer.json")); });
  EXPECT_TRUE(Contains(e, "Whitespace"));
  j["pre_tokenizer"] = {{"type", "Metaspace"}, {"add_prefix_space", true}};
  write_file(dir.file("tokenizer.json"), j.dump());
  const auto tok = UnigramTokenizer::from_tokenizer_json(dir.file("tokenizer.json"));
  // "▁" and "b" have no piece: unknown; "a" is a piece.
  EXPECT_EQ(tok.encode("ab a"), (std::vector<int64_t>{0, 1, 0, 0, 1}));
  EXPECT_TRUE(Contains(automm::testing::message_of<std::runtime_error>([&] { tok.cls_id(); }), "<s>"));
}

}  // namespace
}  // namespace automm
