// MultiModalPredictor with text columns: hf_text from scratch and from a
// Hugging Face checkpoint folder or cache, save / load, convert_to_text.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "automm/predictor.h"
#include "data/text/text_tokenizer.h"
#include "text_test_util.h"

namespace automm {
namespace {

namespace fs = std::filesystem;
using testing::make_review_table;
using testing::message_of;
using testing::ScopedEnv;
using testing::TempDir;

PredictorOptions text_options(const std::string& path, Json hyperparameters) {
  PredictorOptions options;
  options.label = "label";
  options.path = path;
  options.verbose = false;
  options.hyperparameters = std::move(hyperparameters);
  return options;
}

Json scratch_hyperparameters() {
  return {{"model.hf_text.checkpoint_name", "scratch:bert-tiny"},
          {"optim.max_epochs", 15},
          {"optim.lr", 1e-3},
          {"env.batch_size", 32},
          {"env.per_gpu_batch_size", 32}};
}

// The acceptance test: a tiny from-scratch encoder learns which words
// decide the label, and the saved folder predicts the same after a move.
TEST(TextPredictor, ScratchTinyBertLearnsWordsAndReloadsWithoutTheCheckpoint) {
  TempDir dir;
  MultiModalPredictor predictor(text_options(dir.file("p"), scratch_hyperparameters()));
  predictor.fit(make_review_table(600, 1));
  const Table test = make_review_table(300, 2);
  EXPECT_EQ(predictor.column_types().at("review"), "text");
  const double accuracy = predictor.evaluate(test, {"accuracy"}).at("accuracy");
  EXPECT_GE(accuracy, 0.9);
  std::cout << "scratch:bert-tiny test accuracy " << accuracy << ", fit "
            << predictor.fit_summary().at("total_fit_seconds").get<double>() << " s\n";

  // The folder holds the checkpoint's config and tokenizer, never its weights.
  EXPECT_TRUE(fs::exists(dir.file("p/hf_text/config.json")));
  EXPECT_TRUE(fs::exists(dir.file("p/hf_text/vocab.txt")));
  for (const auto& entry : fs::directory_iterator(dir.file("p/hf_text")))
    EXPECT_NE(entry.path().extension(), ".safetensors");
  const torch::Tensor expected = predictor.predict_proba(test);
  fs::rename(dir.file("p"), dir.file("moved"));
  const MultiModalPredictor loaded = MultiModalPredictor::load(dir.file("moved"));
  EXPECT_TRUE(torch::equal(loaded.predict_proba(test), expected));
  // Saving the loaded predictor again copies the files along.
  loaded.save(dir.file("again"));
  EXPECT_TRUE(torch::equal(MultiModalPredictor::load(dir.file("again")).predict_proba(test), expected));
}

TEST(TextPredictor, MissingCheckpointSaysWhereItLookedAndOffersScratch) {
  TempDir dir;
  ScopedEnv env({{"HF_HUB_OFFLINE", "1"}, {"HF_HUB_CACHE", dir.file("cache")}, {"HF_HOME", ""}});
  MultiModalPredictor predictor(text_options(dir.file("p"), {{"optim.max_epochs", 1}}));
  const std::string message = message_of<std::runtime_error>([&] { predictor.fit(make_review_table(100, 1)); });
  EXPECT_TRUE(testing::Contains(message, "google/electra-base-discriminator"));
  EXPECT_TRUE(testing::Contains(message, dir.file("cache")));
  EXPECT_TRUE(testing::Contains(message, "scratch:bert-tiny"));
  const std::string unknown = message_of<std::invalid_argument>([&] {
    MultiModalPredictor(text_options(dir.file("q"), {{"model.hf_text.checkpoint_name", "scratch:bert-huge"}}))
        .fit(make_review_table(100, 1));
  });
  EXPECT_TRUE(testing::Contains(unknown, "scratch:bert-mini"));
}

// With lr ~ 0 and one backbone, the embedding is the checkpoint's [CLS]
// hidden state: the tokenizer, the sequence layout and the weights all come
// from the folder.
TEST(TextPredictor, PretrainedFolderWeightsAndTokenizerAreUsed) {
  TempDir dir;
  std::vector<std::string> words = testing::positive_words();
  for (const auto& word : testing::negative_words()) words.push_back(word);
  for (const char* word : {"the", "a", "this", "product", "service", "was", "is", "and", "it", "very"})
    words.push_back(word);
  const nlohmann::json config = testing::write_bert_checkpoint(dir.file("ckpt"), words, 3);
  MultiModalPredictor predictor(text_options(dir.file("p"), {{"model.names", Json::array({"hf_text"})},
                                                             {"model.hf_text.checkpoint_name", dir.file("ckpt")},
                                                             {"env.precision", "32"},
                                                             {"optim.lr", 1e-12},
                                                             {"optim.max_epochs", 1}}));
  const Table train = make_review_table(80, 5);
  predictor.fit(train);
  const Table rows = train.select_rows({0, 1, 2});
  const torch::Tensor embedding = predictor.extract_embedding(rows);

  BertEncoder reference(BertConfig::from_json(config));
  reference->load_hf_state_dict(load_weights(dir.file("ckpt/model.safetensors")));
  reference->eval();
  const TextTokenizer tokenizer = TextTokenizer::from_folder(dir.file("ckpt"));
  for (int64_t r = 0; r < 3; ++r) {
    std::vector<int64_t> ids = {tokenizer.cls_id()};
    for (int64_t id : tokenizer.encode(rows.column("review").text(r))) ids.push_back(id);
    ids.push_back(tokenizer.sep_id());
    const torch::Tensor input = torch::tensor(ids).unsqueeze(0);
    torch::NoGradGuard no_grad;
    const torch::Tensor cls = reference->forward(input, {}, {}).select(1, 0).squeeze(0);
    EXPECT_LT((embedding[r] - cls).abs().max().item<double>(), 1e-4) << "row " << r;
  }
}

// standalone=false records the Hugging Face id; loading finds it in the cache.
TEST(TextPredictor, NonStandaloneSaveReloadsFromTheCache) {
  TempDir dir;
  const std::string snapshot = dir.file("hub/models--acme--tiny-bert/snapshots/0123abcd");
  testing::write_bert_checkpoint(snapshot, {"great", "awful", "the", "product"});
  testing::write_file(dir.file("hub/models--acme--tiny-bert/refs/main"), "0123abcd");
  ScopedEnv env({{"HF_HUB_CACHE", dir.file("hub")}, {"HF_HUB_OFFLINE", "1"}});
  MultiModalPredictor predictor(text_options(dir.file("p"), {{"model.hf_text.checkpoint_name", "acme/tiny-bert"},
                                                             {"optim.max_epochs", 1}}));
  predictor.fit(make_review_table(80, 1));
  predictor.save(dir.file("thin"), /*standalone=*/false);
  EXPECT_FALSE(fs::exists(dir.file("thin/hf_text")));
  EXPECT_TRUE(fs::exists(dir.file("p/hf_text/vocab.txt")));  // fit's own save is standalone
  const Table test = make_review_table(20, 2);
  EXPECT_TRUE(torch::equal(MultiModalPredictor::load(dir.file("thin")).predict_proba(test),
                           predictor.predict_proba(test)));
  fs::remove_all(dir.file("hub"));
  const std::string message = message_of<std::runtime_error>([&] { MultiModalPredictor::load(dir.file("thin")); });
  EXPECT_TRUE(testing::Contains(message, "acme/tiny-bert"));
  EXPECT_NO_THROW(MultiModalPredictor::load(dir.file("p")));  // standalone needs no cache
}

TEST(TextPredictor, ConvertToTextFeedsTabularColumnsToTheTextModel) {
  TempDir dir;
  Json hyperparameters = scratch_hyperparameters();
  hyperparameters["data.categorical.convert_to_text"] = true;
  hyperparameters["data.numerical.convert_to_text"] = true;
  hyperparameters["optim.max_epochs"] = 1;
  MultiModalPredictor predictor(text_options(dir.file("p"), hyperparameters));
  predictor.fit(make_review_table(120, 1));
  EXPECT_EQ(predictor.column_types().at("color"), "text");
  EXPECT_EQ(predictor.column_types().at("score"), "text");
  EXPECT_EQ(predictor.fit_summary().at("models"), Json::array({"hf_text"}));
  // The learned vocabulary holds the converted values.
  std::ifstream vocab(dir.file("p/hf_text/vocab.txt"));
  const std::string text((std::istreambuf_iterator<char>(vocab)), {});
  EXPECT_NE(text.find("\ngreen\n"), std::string::npos);
}

}  // namespace
}  // namespace automm
