// optim.peft through the predictor: what trains, what is saved (merged or not),
// resume after an interruption, automm info --json, and the errors.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <sys/wait.h>

#include "automm/options.h"
#include "automm/predictor.h"
#include "automm/weights_io.h"
#include "automm_test_paths.h"
#include "text_test_util.h"

namespace automm {
namespace {

namespace fs = std::filesystem;
using testing::contains;
using testing::make_review_table;
using testing::message_of;
using testing::TempDir;

std::vector<std::string> review_words() {
  std::vector<std::string> words = testing::positive_words();
  for (const auto& word : testing::negative_words()) words.push_back(word);
  for (const char* word : {"the", "a", "this", "product", "service", "was", "is", "and", "it", "very"})
    words.push_back(word);
  return words;
}

PredictorOptions peft_options(const std::string& path, const std::string& checkpoint, Json extra) {
  PredictorOptions options;
  options.label = "label";
  options.path = path;
  options.verbose = false;
  options.hyperparameters = {{"model.names", Json::array({"hf_text"})},
                             {"model.hf_text.checkpoint_name", checkpoint},
                             {"env.precision", "32"},
                             {"optim.max_epochs", 2},
                             {"optim.lr", 3e-3},
                             {"env.per_gpu_batch_size", 16},
                             {"env.batch_size", 16}};
  options.hyperparameters.update(extra);
  return options;
}

// Every tensor of a saved predictor's weights by its dotted name.
std::map<std::string, torch::Tensor> saved_weights(const std::string& folder) {
  return automm::load_safetensors(folder + "/model.safetensors");
}

const torch::Tensor& ending_with(const std::map<std::string, torch::Tensor>& weights, const std::string& suffix) {
  for (const auto& [name, tensor] : weights)
    if (name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
      return tensor;
  throw std::runtime_error("no saved tensor ends with " + suffix);
}

class PeftFit : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::write_bert_checkpoint(dir.file("ckpt"), review_words(), 3);
    train = make_review_table(160, 11);
    test = make_review_table(60, 12);
  }
  TempDir dir;
  Table train, test;
};

TEST_F(PeftFit, LoraTrainsAdaptersAndHeadOnlyAndSavesMergedWeights) {
  MultiModalPredictor predictor(peft_options(dir.file("p"), dir.file("ckpt"), {{"optim.peft", "lora"}}));
  predictor.fit(train);
  const Json summary = predictor.fit_summary();
  const int64_t trainable = summary.at("trainable_params").get<int64_t>();
  const int64_t total = summary.at("total_params").get<int64_t>();
  // 2 layers x (query, value) x r 8 x (32 + 32), plus the head (32 x 2 + 2).
  EXPECT_EQ(trainable, 2 * 2 * 8 * 64 + 32 * 2 + 2) << summary.dump();
  EXPECT_GT(total, 10 * trainable);

  const auto weights = saved_weights(dir.file("p"));
  for (const auto& [name, tensor] : weights) EXPECT_FALSE(contains(name, "lora")) << name << " saved unmerged";
  // Frozen layers are the checkpoint's exactly; adapted ones moved.
  const StateDict pretrained = load_weights(dir.file("ckpt/model.safetensors"));
  EXPECT_TRUE(torch::equal(ending_with(weights, "layer.0.intermediate.dense.weight"),
                           pretrained.at("bert.encoder.layer.0.intermediate.dense.weight")));
  EXPECT_TRUE(torch::equal(ending_with(weights, "layer.1.attention.self.key.weight"),
                           pretrained.at("bert.encoder.layer.1.attention.self.key.weight")));
  EXPECT_FALSE(torch::equal(ending_with(weights, "layer.1.attention.self.value.weight"),
                            pretrained.at("bert.encoder.layer.1.attention.self.value.weight")));
  const torch::Tensor expected = predictor.predict_proba(test);
  EXPECT_TRUE(torch::equal(MultiModalPredictor::load(dir.file("p")).predict_proba(test), expected));
}

TEST_F(PeftFit, MergedPredictionsEqualUnmergedOnesAndUnmergedFoldersReload) {
  for (const std::string method : {"lora", "ia3_lora_bias"}) {
    SCOPED_TRACE(method);
    MultiModalPredictor merged(peft_options(dir.file("m_" + method), dir.file("ckpt"), {{"optim.peft", method}}));
    merged.fit(train);
    MultiModalPredictor unmerged(peft_options(dir.file("u_" + method), dir.file("ckpt"),
                                              {{"optim.peft", method}, {"optim.lora.merge_at_save", false}}));
    unmerged.fit(train);
    const torch::Tensor a = merged.predict_proba(test), b = unmerged.predict_proba(test);
    EXPECT_LT((a - b).abs().max().item<double>(), 1e-5);
    const auto weights = saved_weights(dir.file("u_" + method));
    EXPECT_TRUE(ending_with(weights, "layer.0.attention.self.query.lora_A").defined());
    const MultiModalPredictor reloaded = MultiModalPredictor::load(dir.file("u_" + method));
    EXPECT_TRUE(torch::equal(reloaded.predict_proba(test), b));
  }
}

// LoRA under bf16-mixed, gradient checkpointing, gradient accumulation (2 batches
// per step) and layerwise decay fits: the adapters trained (merged value weights
// moved), the frozen weights did not. (Peft.AdaptersUnderCheckpointingAndAutocast
// checks the gradients themselves.)
TEST_F(PeftFit, LoraWithBf16CheckpointingAndAccumulationFits) {
  MultiModalPredictor predictor(peft_options(dir.file("p"), dir.file("ckpt"),
                                             {{"optim.peft", "lora"},
                                              {"env.precision", "bf16-mixed"},
                                              {"model.hf_text.gradient_checkpointing", true},
                                              {"env.per_gpu_batch_size", 8},
                                              {"optim.lr_choice", "layerwise_decay"}}));
  predictor.fit(train);
  const auto weights = saved_weights(dir.file("p"));
  const StateDict pretrained = load_weights(dir.file("ckpt/model.safetensors"));
  EXPECT_FALSE(torch::equal(ending_with(weights, "layer.0.attention.self.query.weight"),
                            pretrained.at("bert.encoder.layer.0.attention.self.query.weight")));
  EXPECT_TRUE(torch::equal(ending_with(weights, "layer.0.output.dense.weight"),
                           pretrained.at("bert.encoder.layer.0.output.dense.weight")));
  EXPECT_EQ(predictor.predict_proba(test).size(0), static_cast<int64_t>(test.num_rows()));
}

TEST_F(PeftFit, InterruptedLoraFitResumesToTheSameModel) {
  Json extra = {{"optim.peft", "lora"}, {"optim.max_epochs", 3}, {"optim.patience", 1000}};
  MultiModalPredictor whole(peft_options(dir.file("whole"), dir.file("ckpt"), extra));
  whole.fit(train);

  MultiModalPredictor interrupted(peft_options(dir.file("cut"), dir.file("ckpt"), extra));
  FitOptions options;
  int polls = 0;
  options.stop_requested = [&] { return ++polls == 14; };  // after the first checkpoint (every 4 batches)
  EXPECT_THROW(interrupted.fit(train, options), FitInterrupted);
  MultiModalPredictor resumed = MultiModalPredictor::load(dir.file("cut"), /*resume=*/true);
  resumed.fit(train);
  EXPECT_GT(resumed.fit_summary().at("resumed_from_step").get<int>(), 0);
  EXPECT_EQ(resumed.fit_summary().at("trainable_params"), whole.fit_summary().at("trainable_params"));
  EXPECT_LT((resumed.predict_proba(test) - whole.predict_proba(test)).abs().max().item<double>(), 1e-6);
}

TEST_F(PeftFit, InfoJsonCarriesParameterCounts) {
  MultiModalPredictor predictor(peft_options(dir.file("p"), dir.file("ckpt"), {{"optimization.efficient_finetune", "bit_fit"}}));
  predictor.fit(train);
  const std::string command = std::string(AUTOMM_CLI_PATH) + " info --json --path " + dir.file("p");
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  std::array<char, 4096> buffer;
  size_t n;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) output.append(buffer.data(), n);
  ASSERT_EQ(pclose(pipe), 0) << output;
  const Json summary = Json::parse(output);
  EXPECT_EQ(summary.at("trainable_params"), predictor.fit_summary().at("trainable_params"));
  EXPECT_LT(summary.at("trainable_params").get<int64_t>(), summary.at("total_params").get<int64_t>() / 5);
}

TEST_F(PeftFit, ClearErrors) {
  // No pretrained backbone to adapt.
  PredictorOptions tabular;
  tabular.label = "label";
  tabular.path = dir.file("t");
  tabular.verbose = false;
  tabular.hyperparameters = {{"optim.peft", "lora"}};
  MultiModalPredictor plain(tabular);
  std::string message = message_of<std::invalid_argument>([&] { plain.fit(testing::make_tabular_table(100, 3)); });
  EXPECT_TRUE(contains(message, "optim.peft") && contains(message, "pretrained")) << message;
  // A filter that matches nothing names the layers there are.
  MultiModalPredictor unmatched(
      peft_options(dir.file("u"), dir.file("ckpt"), {{"optim.peft", "lora"}, {"optim.lora.filter", Json::array({"qkv"})}}));
  message = message_of<std::invalid_argument>([&] { unmatched.fit(train); });
  EXPECT_TRUE(contains(message, "no Linear layer") && contains(message, "query")) << message;
  EXPECT_FALSE(fs::exists(dir.file("u/predictor.json")));
  message = message_of<std::invalid_argument>([&] {
    MultiModalPredictor(peft_options(dir.file("v"), dir.file("ckpt"), {{"optim.peft", "lora"}, {"optim.lora.r", 0}}));
  });
  EXPECT_TRUE(contains(message, "optim.lora.r")) << message;
}

}  // namespace
}  // namespace automm
