// The text processor: columns sorted and tokenized, sequences laid out as
// AutoMM's data/process_text.py, limits capped by the model, training-only randomness.
#include <gtest/gtest.h>

#include "data/text/text_processor.h"
#include "models/text/text_encoder.h"
#include "data/text/scratch_checkpoint.h"
#include "text_test_util.h"

namespace automm {
namespace {

using testing::make_column;
using testing::TempDir;

const std::vector<std::string> kWords = {"alpha", "beta", "gamma", "delta", "one", "two", "three", "four",
                                         "five",  "six",  "seven", "eight", "nine", "ten"};

Table two_text_columns(const std::vector<std::string>& b_texts, const std::vector<std::string>& a_texts) {
  Table table;
  table.add_column(make_column("zeta", b_texts));  // sorted after "able"
  table.add_column(make_column("able", a_texts));
  table.source = "test";
  return table;
}

std::vector<int64_t> row_of(const torch::Tensor& t, int64_t row) {
  const torch::Tensor r = t[row].contiguous();
  return std::vector<int64_t>(r.data_ptr<int64_t>(), r.data_ptr<int64_t>() + r.numel());
}

TEST(TextProcessor, SortedColumnsClsSepLayoutAndSegments) {
  TempDir dir;
  testing::write_bert_checkpoint(dir.file("ckpt"), kWords);
  Config config;
  const auto processor = TextProcessor::create("hf_text", {"zeta", "able"}, dir.file("ckpt"), read_text_model_limits(dir.file("ckpt")), config);
  EXPECT_EQ(processor->columns(), (std::vector<std::string>{"able", "zeta"}));
  const Table table = two_text_columns({"gamma", "delta one"}, {"alpha beta", ""});
  const auto inputs = processor->transform(table, false);
  const TextBatch batch = processor->make_batch(*inputs, {0, 1}, nullptr);
  // vocab ids: [PAD]0 [UNK]1 [CLS]2 [SEP]3 [MASK]4 alpha5 beta6 gamma7 delta8 one9
  EXPECT_EQ(row_of(batch.input_ids, 0), (std::vector<int64_t>{2, 5, 6, 3, 7, 3}));
  EXPECT_EQ(row_of(batch.token_type_ids, 0), (std::vector<int64_t>{0, 0, 0, 0, 1, 1}));
  EXPECT_EQ(row_of(batch.attention_mask, 0), (std::vector<int64_t>{1, 1, 1, 1, 1, 1}));
  // A missing / empty cell is an empty column; the row is padded.
  EXPECT_EQ(row_of(batch.input_ids, 1), (std::vector<int64_t>{2, 3, 8, 9, 3, 0}));
  EXPECT_EQ(row_of(batch.attention_mask, 1), (std::vector<int64_t>{1, 1, 1, 1, 1, 0}));

  config.set("model.hf_text.insert_sep", false);
  const auto no_sep = TextProcessor::create("hf_text", {"zeta", "able"}, dir.file("ckpt"), read_text_model_limits(dir.file("ckpt")), config);
  EXPECT_EQ(row_of(no_sep->make_batch(*no_sep->transform(table, false), {0}, nullptr).input_ids, 0),
            (std::vector<int64_t>{2, 5, 6, 7, 3}));
}

TEST(TextProcessor, LimitsAreCappedByTheModel) {
  TempDir dir;
  testing::write_bert_checkpoint(dir.file("ckpt"), kWords, 1, /*max_positions=*/16);
  Config config;
  EXPECT_EQ(TextProcessor::create("hf_text", {"a"}, dir.file("ckpt"), read_text_model_limits(dir.file("ckpt")), config)->options().sequence.max_len, 16);
  config.set("model.hf_text.max_text_len", 8);
  EXPECT_EQ(TextProcessor::create("hf_text", {"a"}, dir.file("ckpt"), read_text_model_limits(dir.file("ckpt")), config)->options().sequence.max_len, 8);
  config.set("model.hf_text.max_text_len", 0);
  EXPECT_EQ(TextProcessor::create("hf_text", {"a"}, dir.file("ckpt"), read_text_model_limits(dir.file("ckpt")), config)->options().sequence.max_len, 16);
  config.set("model.hf_text.text_segment_num", 5);  // the checkpoint has 2 token types
  EXPECT_EQ(TextProcessor::create("hf_text", {"a"}, dir.file("ckpt"), read_text_model_limits(dir.file("ckpt")), config)->options().sequence.text_segment_num,
            2);
}

TEST(TextProcessor, StochasticChunkIsATrainingOnlyRandomWindow) {
  TempDir dir;
  testing::write_bert_checkpoint(dir.file("ckpt"), kWords);
  Config config;
  config.set("model.hf_text.max_text_len", 6);  // 4 text tokens of 10
  config.set("model.hf_text.stochastic_chunk", true);
  config.set("model.hf_text.text_trivial_aug_maxscale", 0.0);
  const auto processor = TextProcessor::create("hf_text", {"t"}, dir.file("ckpt"), read_text_model_limits(dir.file("ckpt")), config);
  Table table;
  table.add_column(make_column("t", {"one two three four five six seven eight nine ten"}));
  const auto inputs = processor->transform(table, true);
  // one..ten are ids 9..18.
  EXPECT_EQ(row_of(processor->make_batch(*inputs, {0}, nullptr).input_ids, 0),
            (std::vector<int64_t>{2, 9, 10, 11, 12, 3}));
  std::set<int64_t> starts;
  std::mt19937_64 rng(1);
  for (int i = 0; i < 200; ++i) {
    const std::vector<int64_t> ids = row_of(processor->make_batch(*inputs, {0}, &rng).input_ids, 0);
    ASSERT_EQ(ids.size(), 6u);
    for (size_t k = 2; k < 5; ++k) EXPECT_EQ(ids[k], ids[k - 1] + 1);  // a contiguous window
    starts.insert(ids[1]);
  }
  EXPECT_EQ(starts, (std::set<int64_t>{9, 10, 11, 12, 13, 14, 15}));  // every start 0..6
}

TEST(TextProcessor, AugmentationOnlyInTrainingAndOnlyForLongTexts) {
  TempDir dir;
  testing::write_bert_checkpoint(dir.file("ckpt"), kWords);
  Config config;
  config.set("model.hf_text.text_trivial_aug_maxscale", 0.5);
  config.set("model.hf_text.text_aug_detect_length", 5);
  const auto processor = TextProcessor::create("hf_text", {"t"}, dir.file("ckpt"), read_text_model_limits(dir.file("ckpt")), config);
  Table table;
  table.add_column(make_column("t", {"one two three four five six seven eight nine ten", "one two three"}));
  const auto inputs = processor->transform(table, true);
  const std::vector<int64_t> long_plain = row_of(processor->make_batch(*inputs, {0}, nullptr).input_ids, 0);
  const std::vector<int64_t> short_plain = row_of(processor->make_batch(*inputs, {1}, nullptr).input_ids, 0);
  std::mt19937_64 rng(3);
  int changed = 0;
  for (int i = 0; i < 100; ++i) {
    changed += row_of(processor->make_batch(*inputs, {0}, &rng).input_ids, 0) != long_plain;
    EXPECT_EQ(row_of(processor->make_batch(*inputs, {1}, &rng).input_ids, 0), short_plain);
  }
  // Identity is one of five ops; synonym replacement of digits may find none.
  EXPECT_GT(changed, 40);
  EXPECT_LT(changed, 100);
}

TEST(TextProcessor, NormalizeTextRepairsEncodingBeforeTokenizing) {
  TempDir dir;
  testing::write_bert_checkpoint(dir.file("ckpt"), {"cafe"});
  Config config;
  Table table;
  table.add_column(make_column("t", {"caf\xC3\x83\xC2\xA9"}));  // "cafÃ©": UTF-8 read as Latin-1
  const auto plain = TextProcessor::create("hf_text", {"t"}, dir.file("ckpt"), read_text_model_limits(dir.file("ckpt")), config);
  config.set("data.text.normalize_text", true);
  const auto normalized = TextProcessor::create("hf_text", {"t"}, dir.file("ckpt"), read_text_model_limits(dir.file("ckpt")), config);
  EXPECT_NE(plain->transform(table, false)->ids[0][0], (std::vector<int64_t>{5}));
  EXPECT_EQ(normalized->transform(table, false)->ids[0][0], (std::vector<int64_t>{5}));
}

TEST(ScratchCheckpoint, VocabularyCoversTheTrainingTextWithoutUnknowns) {
  const std::vector<std::string> texts = {"Hello, wonderful world!", "hello again world", "Ünïcode café 東京 again"};
  const std::vector<std::string> vocabulary = learn_wordpiece_vocabulary(texts);
  EXPECT_EQ(std::vector<std::string>(vocabulary.begin(), vocabulary.begin() + 5),
            (std::vector<std::string>{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}));
  const auto has = [&](const std::string& token) {
    return std::find(vocabulary.begin(), vocabulary.end(), token) != vocabulary.end();
  };
  EXPECT_TRUE(has("hello"));   // seen twice (case folded)
  EXPECT_TRUE(has("world"));
  EXPECT_FALSE(has("wonderful"));  // seen once: spelled with characters
  EXPECT_TRUE(has("##e"));
  EXPECT_TRUE(has("東"));
  const WordPieceTokenizer tokenizer = WordPieceTokenizer::from_vocabulary(vocabulary);
  for (const auto& text : texts)
    for (int64_t id : tokenizer.encode(text)) EXPECT_NE(id, tokenizer.unk_id()) << text;
  EXPECT_EQ(tokenizer.tokenize("hello wonderful"),
            (std::vector<std::string>{"hello", "w", "##o", "##n", "##d", "##e", "##r", "##f", "##u", "##l"}));
  EXPECT_LE(learn_wordpiece_vocabulary(texts, 12).size(), 12u);
}

TEST(ScratchCheckpoint, WritesAHuggingFaceFolderOfTheNamedSize) {
  TempDir dir;
  write_scratch_checkpoint("scratch:bert-mini", {"some text here", "more text here"}, dir.file("mini"));
  std::ifstream in(dir.file("mini/config.json"));
  const nlohmann::json config = nlohmann::json::parse(in);
  EXPECT_EQ(config.at("num_hidden_layers"), 4);
  EXPECT_EQ(config.at("hidden_size"), 256);
  EXPECT_TRUE(is_scratch_checkpoint(config));
  EXPECT_EQ(TextTokenizer::from_folder(dir.file("mini")).kind(), "wordpiece");
  write_scratch_checkpoint("scratch:bert-base", {"some text"}, dir.file("base"));
  const nlohmann::json base = nlohmann::json::parse(std::ifstream(dir.file("base/config.json")));
  EXPECT_EQ(base.at("num_hidden_layers"), 12);
  EXPECT_EQ(base.at("hidden_size"), 768);
  EXPECT_EQ(base.at("num_attention_heads"), 12);
  EXPECT_THROW(write_scratch_checkpoint("scratch:bert-huge", {}, dir.file("huge")), std::invalid_argument);
}

}  // namespace
}  // namespace automm
