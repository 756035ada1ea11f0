// The tokenizer of a checkpoint folder, and the ids a text model sees.
#include <gtest/gtest.h>

#include <filesystem>

#include "data/text/token_ids.h"
#include "data/text/text_tokenizer.h"
#include "data/text/tokenizer_limits.h"
#include "test_util.h"

#ifndef AUTOMM_SOURCE_DIR
#include "automm_test_paths.h"
#endif

namespace automm {
namespace {

using automm::testing::Contains;
using automm::testing::message_of;
using automm::testing::TempDir;
using automm::testing::write_file;

// A BERT-style folder: [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3, then words.
void write_wordpiece_folder(const TempDir& dir, int max_positions, const std::string& tokenizer_config = "") {
  write_file(dir.file("vocab.txt"), "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\nworld\n##s\nHello\n!\n");
  write_file(dir.file("config.json"),
             "{\"model_type\": \"bert\", \"max_position_embeddings\": " + std::to_string(max_positions) + "}");
  if (!tokenizer_config.empty()) write_file(dir.file("tokenizer_config.json"), tokenizer_config);
}

TEST(TextTokenizer, WordPieceFolderGivesClsIdsSep) {
  TempDir dir;
  write_wordpiece_folder(dir, 512);
  const auto ids = model_token_ids(dir.path().string(), {"Hello worlds!", ""});
  EXPECT_EQ(ids[0], (std::vector<int64_t>{2, 4, 5, 6, 8, 3}));  // lower-cased by default
  EXPECT_EQ(ids[1], (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(TextTokenizer::from_folder(dir.path().string()).kind(), "wordpiece");
}

TEST(TextTokenizer, TokenizerConfigAndModelLimitAreHonoured) {
  TempDir dir;
  write_wordpiece_folder(dir, 4, "{\"do_lower_case\": false}");
  // Cased: "Hello" keeps its capital; max_position_embeddings 4 leaves room for 2 tokens.
  EXPECT_EQ(model_token_ids(dir.path().string(), {"Hello world hello"})[0], (std::vector<int64_t>{2, 7, 5, 3}));
  EXPECT_EQ(model_token_ids(dir.path().string(), {"Hello world hello"}, 3)[0], (std::vector<int64_t>{2, 7, 3}));
}

TEST(TextTokenizer, ByteLevelBpeFolderUsesRobertaSpecials) {
  TempDir dir;
  write_file(dir.file("vocab.json"), R"({"<s>": 0, "<pad>": 1, "</s>": 2, "h": 3, "i": 4, "\u0120": 5, "hi": 6})");
  write_file(dir.file("merges.txt"), "#version: 0.2\nh i\n");
  write_file(dir.file("config.json"), R"({"model_type": "roberta", "max_position_embeddings": 514, "pad_token_id": 1})");
  const TextTokenizer tokenizer = TextTokenizer::from_folder(dir.path().string());
  EXPECT_EQ(tokenizer.kind(), "byte_level_bpe");
  EXPECT_EQ(tokenizer.pad_id(), 1);
  EXPECT_EQ(model_token_ids(dir.path().string(), {"hi hi"})[0], (std::vector<int64_t>{0, 6, 5, 6, 2}));
}

TEST(TextTokenizer, ByteLevelBpeFromTokenizerJsonAlone) {
  TempDir dir;
  write_file(dir.file("tokenizer.json"), R"({"model": {"type": "BPE",
      "vocab": {"<s>": 0, "<pad>": 1, "</s>": 2, "h": 3, "i": 4, "\u0120": 5, "hi": 6}, "merges": [["h", "i"]]},
      "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}})");
  write_file(dir.file("config.json"), R"({"model_type": "roberta", "max_position_embeddings": 514, "pad_token_id": 1})");
  EXPECT_EQ(TextTokenizer::from_folder(dir.path().string()).kind(), "byte_level_bpe");
  EXPECT_EQ(model_token_ids(dir.path().string(), {"hi hi"})[0], (std::vector<int64_t>{0, 6, 5, 6, 2}));
}

TEST(TextTokenizer, MissingTokenizerFilesAreNamed) {
  TempDir dir;
  write_file(dir.file("config.json"), "{}");
  const std::string message = message_of<std::runtime_error>([&] { TextTokenizer::from_folder(dir.path().string()); });
  EXPECT_TRUE(Contains(message, "vocab.txt"));
  EXPECT_TRUE(Contains(message, "merges.txt"));
  write_file(dir.file("vocab.json"), "{}");
  write_file(dir.file("merges.txt"), "");
  EXPECT_TRUE(Contains(message_of<std::runtime_error>([&] { TextTokenizer::from_folder(dir.path().string(), "bert"); }),
                       "tokenizer.json (WordPiece), vocab.txt"));
  // tokenizer_name = clip reads vocab.json + merges.txt in CLIP's style: this vocabulary is empty.
  EXPECT_TRUE(Contains(message_of<std::runtime_error>([&] { TextTokenizer::from_folder(dir.path().string(), "clip"); }),
                       "empty vocabulary"));
}

// Limits (docs/hardening.md): a hostile tokenizer file is refused, not a crash.
TEST(TextTokenizer, DeeplyNestedTokenizerJsonIsRefused) {
  TempDir dir;
  write_file(dir.file("tokenizer.json"), "{\"model\": " + std::string(100000, '[') + std::string(100000, ']') + "}");
  const std::string message = message_of<std::runtime_error>([&] { TextTokenizer::from_folder(dir.path().string()); });
  EXPECT_TRUE(Contains(message, "tokenizer.json"));
  EXPECT_TRUE(Contains(message, "nests deeper than 100 levels"));
}

TEST(TextTokenizer, VocabularyBeyondTheLimitIsRefused) {
  std::vector<std::string> vocabulary(kMaxTokenizerEntries + 1);
  for (size_t i = 0; i < vocabulary.size(); ++i) vocabulary[i] = std::to_string(i);
  EXPECT_TRUE(Contains(message_of<std::runtime_error>([&] { WordPieceTokenizer::from_vocabulary(vocabulary, {}, "big.txt"); }),
                       "big.txt: the vocabulary holds 2097153 entries, more than the 2097152"));
}

// Inputs the fuzzers found (fuzz/regressions/<harness>), run here in the normal
// build too: each loads or fails with a message, in bounded time. The first two:
// a float max_input_chars_per_word of 1.6e58, converted to an integer without a
// check (undefined behaviour), and a sentencepiece control piece with no bytes,
// which as an added token matched at every position without advancing (a hang).
TEST(TextTokenizer, FuzzerFindingsFailWithAMessage) {
  const std::filesystem::path regressions = std::filesystem::path(AUTOMM_SOURCE_DIR) / "fuzz" / "regressions";
  size_t inputs = 0;
  for (const auto& [harness, file] : {std::pair{"tokenizer_json", "tokenizer.json"}, {"sentencepiece_model", "spiece.model"}}) {
    for (const auto& entry : std::filesystem::directory_iterator(regressions / harness)) {
      TempDir dir;
      std::filesystem::copy_file(entry.path(), dir.file(file));
      write_file(dir.file("config.json"), "{\"model_type\": \"t5\"}");
      try {
        TextTokenizer::from_folder(dir.path().string()).encode("hello world <s> </s>");
      } catch (const std::exception& e) {
        EXPECT_NE(std::string(e.what()), "") << entry.path();
      }
      ++inputs;
    }
  }
  EXPECT_GE(inputs, 2u);
  const auto message = [&](const char* harness, const char* input, const char* file) {
    TempDir dir;
    std::filesystem::copy_file(regressions / harness / input, dir.file(file));
    write_file(dir.file("config.json"), "{\"model_type\": \"t5\"}");
    return message_of<std::runtime_error>([&] { TextTokenizer::from_folder(dir.path().string()); });
  };
  EXPECT_TRUE(Contains(message("tokenizer_json", "float_max_input_chars_per_word.json", "tokenizer.json"),
                       "tokenizer.json: \"max_input_chars_per_word\" must be an integer, not 1.666666666666666"));
  EXPECT_TRUE(Contains(message("sentencepiece_model", "empty_control_piece.model", "spiece.model"), "spiece.model: piece "));
}

}  // namespace
}  // namespace automm
