// The hf_text backbone (pooling, layerwise-decay ids, pretrained weights) and
// gradient checkpointing in the text encoders.
#include <gtest/gtest.h>
#include <malloc.h>

#if defined(__SANITIZE_ADDRESS__)
#define AUTOMM_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define AUTOMM_TEST_ASAN 1
#endif
#endif
#if AUTOMM_TEST_ASAN
#include <sanitizer/allocator_interface.h>
#endif

#include <set>

#include <ATen/autocast_mode.h>

#include "learners/trainer.h"
#include "models/multimodal_net.h"
#include "data/text/scratch_checkpoint.h"
#include "models/text/text_encoder.h"
#include "text_test_util.h"

namespace automm {
namespace {

using testing::TempDir;

ModelContext text_context(const std::string& folder) {
  ModelContext context;
  context.num_outputs = 3;
  context.checkpoint_dirs["hf_text"] = folder;
  return context;
}

Batch text_batch(const std::vector<std::vector<int64_t>>& rows) {
  size_t length = 0;
  for (const auto& row : rows) length = std::max(length, row.size());
  TextBatch text;
  text.input_ids = torch::zeros({static_cast<int64_t>(rows.size()), static_cast<int64_t>(length)}, torch::kInt64);
  text.attention_mask = torch::zeros_like(text.input_ids);
  text.token_type_ids = torch::zeros_like(text.input_ids);
  for (size_t r = 0; r < rows.size(); ++r)
    for (size_t i = 0; i < rows[r].size(); ++i) {
      text.input_ids[r][i] = rows[r][i];
      text.attention_mask[r][i] = 1;
    }
  Batch batch;
  batch.text["hf_text"] = text;
  return batch;
}

TEST(HfText, MeanPoolingIgnoresPaddingAndClsTakesTheFirstToken) {
  TempDir dir;
  testing::write_bert_checkpoint(dir.file("ckpt"), {"a", "b", "c"});
  Config config;
  auto cls = make_backbone("hf_text", "hf_text", text_context(dir.file("ckpt")), config);
  config.set("model.hf_text.pooling_mode", "mean");
  auto mean = make_backbone("hf_text", "hf_text", text_context(dir.file("ckpt")), config);
  cls->eval();
  mean->eval();
  torch::NoGradGuard no_grad;
  const Batch alone = text_batch({{2, 5, 6, 3}});
  const Batch padded = text_batch({{2, 5, 6, 3}, {2, 7, 5, 6, 6, 3}});
  EXPECT_TRUE(torch::allclose(mean->forward(alone).features[0], mean->forward(padded).features[0], 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(cls->forward(alone).features[0], cls->forward(padded).features[0], 1e-5, 1e-5));
  EXPECT_EQ(cls->forward(padded).logits.sizes(), (std::vector<int64_t>{2, 3}));
  EXPECT_FALSE(torch::allclose(cls->forward(alone).features, mean->forward(alone).features));
}

TEST(HfText, PretrainedEncoderGetsLayerwiseIdsAndScratchDoesNot) {
  TempDir dir;
  testing::write_bert_checkpoint(dir.file("ckpt"), {"a"});
  write_scratch_checkpoint("scratch:bert-tiny", {"a b c", "a b"}, dir.file("scratch"));
  Config config;
  MultiModalNet pretrained(std::vector<std::string>{"hf_text"}, text_context(dir.file("ckpt")), config);
  const auto ids = network_layer_ids(pretrained);
  EXPECT_EQ(ids.at("hf_text.model.embeddings.word_embeddings.weight"), 3);  // 2 layers + 1
  EXPECT_EQ(ids.at("hf_text.model.encoder.layer.0.attention.self.query.weight"), 2);
  EXPECT_EQ(ids.at("hf_text.model.encoder.layer.1.output.dense.weight"), 1);
  EXPECT_EQ(ids.at("hf_text.head.weight"), 0);
  MultiModalNet scratch(std::vector<std::string>{"hf_text"}, text_context(dir.file("scratch")), config);
  EXPECT_TRUE(network_layer_ids(scratch).empty());
}

TEST(HfText, PretrainedWeightsLoadUnlessTheyComeFromASavedPredictor) {
  TempDir dir;
  testing::write_bert_checkpoint(dir.file("ckpt"), {"a"});
  const StateDict weights = load_weights(dir.file("ckpt"));
  Config config;
  ModelContext context = text_context(dir.file("ckpt"));
  MultiModalNet loaded(std::vector<std::string>{"hf_text"}, context, config);
  const auto& word = weights.at("bert.embeddings.word_embeddings.weight");
  auto params = loaded->named_parameters();
  EXPECT_TRUE(torch::equal(params["hf_text.model.embeddings.word_embeddings.weight"], word));
  context.load_pretrained = false;
  MultiModalNet fresh(std::vector<std::string>{"hf_text"}, context, config);
  EXPECT_FALSE(torch::equal(fresh->named_parameters()["hf_text.model.embeddings.word_embeddings.weight"], word));
  // A folder without weights is an error naming it.
  std::filesystem::remove(dir.file("ckpt/model.safetensors"));
  context.load_pretrained = true;
  const std::string message =
      testing::message_of<std::runtime_error>([&] { MultiModalNet(std::vector<std::string>{"hf_text"}, context, config); });
  EXPECT_TRUE(testing::Contains(message, dir.file("ckpt")));
}

// Whether the autograd graph behind `output` holds a recomputed (checkpointed) block.
bool graph_has_checkpoint(const torch::Tensor& output) {
  std::vector<torch::autograd::Node*> stack = {output.grad_fn().get()};
  std::set<torch::autograd::Node*> seen;
  while (!stack.empty()) {
    torch::autograd::Node* node = stack.back();
    stack.pop_back();
    if (!node || !seen.insert(node).second) continue;
    if (node->name().find("CheckpointFunction") != std::string::npos) return true;
    for (const auto& edge : node->next_edges()) stack.push_back(edge.function.get());
  }
  return false;
}

TEST(HfText, GradientCheckpointingKeyRecomputesBlocksInTrainingOnly) {
  TempDir dir;
  testing::write_bert_checkpoint(dir.file("ckpt"), {"a", "b"});
  Config config;
  const Batch batch = text_batch({{2, 5, 6, 3}});
  auto plain = make_backbone("hf_text", "hf_text", text_context(dir.file("ckpt")), config);
  config.set("model.hf_text.gradient_checkpointing", true);
  auto recomputed = make_backbone("hf_text", "hf_text", text_context(dir.file("ckpt")), config);
  EXPECT_FALSE(graph_has_checkpoint(plain->forward(batch).logits));
  EXPECT_TRUE(graph_has_checkpoint(recomputed->forward(batch).logits));
  recomputed->eval();
  EXPECT_FALSE(graph_has_checkpoint(recomputed->forward(batch).logits));
}

// Encoder with dropout, forward + backward; returns every parameter's gradient.
std::vector<torch::Tensor> gradients(TextEncoderImpl& encoder, const torch::Tensor& ids, bool checkpointing) {
  encoder.set_gradient_checkpointing(checkpointing);
  encoder.train();
  encoder.zero_grad();
  torch::manual_seed(42);  // the same dropout masks in both runs
  encoder.forward(ids, {}, {}).pow(2).mean().backward();
  std::vector<torch::Tensor> grads;
  for (const auto& p : encoder.parameters()) grads.push_back(p.grad().clone());
  return grads;
}

TEST(GradientCheckpointing, SameGradientsWithDropoutAndAutocast) {
  const nlohmann::json config = {{"model_type", "bert"},      {"vocab_size", 50},          {"hidden_size", 32},
                                 {"num_hidden_layers", 3},    {"num_attention_heads", 4}, {"intermediate_size", 64},
                                 {"max_position_embeddings", 32}};
  torch::manual_seed(0);
  auto encoder = make_text_encoder(config);
  const torch::Tensor ids = torch::randint(5, 50, {4, 12}, torch::kInt64);
  const auto plain = gradients(*encoder, ids, false);
  const auto recomputed = gradients(*encoder, ids, true);
  ASSERT_EQ(plain.size(), recomputed.size());
  for (size_t i = 0; i < plain.size(); ++i) EXPECT_TRUE(torch::allclose(plain[i], recomputed[i], 1e-5, 1e-6)) << i;
  // Under bf16 autocast the recomputation casts as the forward pass did.
  at::autocast::set_cpu_enabled(true);
  const auto plain_bf16 = gradients(*encoder, ids, false);
  const auto recomputed_bf16 = gradients(*encoder, ids, true);
  at::autocast::set_cpu_enabled(false);
  at::autocast::clear_cache();
  for (size_t i = 0; i < plain.size(); ++i) EXPECT_TRUE(torch::allclose(plain_bf16[i], recomputed_bf16[i], 1e-3, 1e-4));
}

// Bytes the heap holds: glibc's count, or AddressSanitizer's in the sanitizer
// build (scripts/sanitize.sh), whose allocator glibc does not see.
size_t heap_in_use() {
#if AUTOMM_TEST_ASAN
  return __sanitizer_get_current_allocated_bytes();
#else
  const struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
#endif
}

// Heap held between forward and backward: what the graph keeps for backward.
size_t retained_bytes(TextEncoderImpl& encoder, const torch::Tensor& ids, bool checkpointing) {
  encoder.set_gradient_checkpointing(checkpointing);
  encoder.train();
  malloc_trim(0);
  const size_t before = heap_in_use();
  torch::Tensor loss = encoder.forward(ids, {}, {}).pow(2).mean();
  const size_t after = heap_in_use();
  loss.backward();
  encoder.zero_grad();
  return after - before;
}

TEST(GradientCheckpointing, KeepsFarLessActivationMemory) {
  const nlohmann::json config = {{"model_type", "bert"},      {"vocab_size", 100},         {"hidden_size", 128},
                                 {"num_hidden_layers", 6},    {"num_attention_heads", 4}, {"intermediate_size", 512},
                                 {"max_position_embeddings", 256}};
  auto encoder = make_text_encoder(config);
  const torch::Tensor ids = torch::randint(5, 100, {8, 256}, torch::kInt64);
  retained_bytes(*encoder, ids, false);  // warm up allocator caches
  const size_t plain = retained_bytes(*encoder, ids, false);
  const size_t recomputed = retained_bytes(*encoder, ids, true);
  std::cout << "held for backward: " << plain / 1e6 << " MB without, " << recomputed / 1e6
            << " MB with gradient checkpointing\n";
  EXPECT_LT(recomputed * 4, plain);
}

}  // namespace
}  // namespace automm
