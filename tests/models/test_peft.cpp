// PEFT adapters (src/models/peft.h): LoRA / IA3 gradients against finite
// differences, every adapted Linear of every backbone on the forward path, the
// merge into plain weights, what each method trains, and the errors.
#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <regex>
#include <set>

#include "automm/config.h"
#include "models/image/image_encoder.h"
#include "models/layers.h"
#include "models/peft.h"
#include "models/text/text_encoder.h"
#include "test_util.h"

namespace automm {
namespace {

using testing::contains;
using testing::error_of;

PeftOptions options_for(const std::string& method, std::vector<std::string> filter = {"query", "value"},
                        int64_t r = 4, double alpha = 8.0) {
  PeftOptions options;
  options.method = peft_method(method);
  options.r = r;
  options.alpha = alpha;
  options.filter = std::move(filter);
  return options;
}

nlohmann::json tiny_bert() {
  return {{"model_type", "bert"},      {"vocab_size", 40},         {"hidden_size", 16},
          {"num_hidden_layers", 2},    {"num_attention_heads", 2}, {"intermediate_size", 32},
          {"max_position_embeddings", 16}};
}

std::string escaped(const std::string& name) { return std::regex_replace(name, std::regex(R"([.])"), R"(\.)"); }

// Adds the method's adapters to every Linear layer of `model`, one at a time (a
// name like fc1 may be a convolution elsewhere in the same model). Returns how many.
int64_t adapt_every_linear(torch::nn::Module& model, const std::string& method) {
  std::vector<std::pair<std::string, std::string>> linears;  // parent, child
  for (const auto& item : model.named_modules())
    for (const auto& child : item.value()->named_children())
      if (child.value()->as<torch::nn::LinearImpl>()) linears.emplace_back(item.key(), child.key());
  for (const auto& [parent, child] : linears) {
    PeftOptions options = options_for(method, {"^" + child + "$"});
    options.module_filter = {"^" + escaped(parent) + "$"};
    EXPECT_EQ(add_adapters(model, options).size(), 1u) << parent << "." << child;
  }
  return static_cast<int64_t>(linears.size());
}

// Random adapter values, as after some training: B and the IA3 scales away from
// their zero / one start.
void perturb_adapters(torch::nn::Module& model, double scale = 0.3) {
  torch::NoGradGuard no_grad;
  for (auto& item : model.named_parameters()) {
    if (contains(item.key(), "lora_B")) item.value().copy_(scale * torch::randn_like(item.value()));
    if (contains(item.key(), "lora_b")) item.value().copy_(1.0 + scale * torch::randn_like(item.value()));
  }
}

// Every adapter parameter that should get a gradient from `loss` does: a layer
// run without apply_linear would leave its adapter without one.
void expect_every_adapter_on_the_path(torch::nn::Module& model, const torch::Tensor& loss, int64_t adapted) {
  loss.backward();
  int64_t checked = 0;
  for (const auto& item : model.named_parameters()) {
    const bool lora_b = contains(item.key(), "lora_B"), ia3 = contains(item.key(), "lora_b");
    if (!lora_b && !ia3) continue;
    ++checked;
    ASSERT_TRUE(item.value().grad().defined()) << item.key() << " is not on the forward path";
    EXPECT_GT(item.value().grad().abs().sum().item<double>(), 0.0) << item.key();
  }
  EXPECT_EQ(checked, 2 * adapted);
}

TEST(Peft, MethodsAsAutoMM) {
  EXPECT_EQ(peft_method_names().size(), 11u);
  const PeftMethod& lora_norm = peft_method("lora_norm");
  EXPECT_TRUE(lora_norm.lora && !lora_norm.ia3 && lora_norm.train_bias && lora_norm.train_norm);
  const PeftMethod& ia3_lora_bias = peft_method("ia3_lora_bias");
  EXPECT_TRUE(ia3_lora_bias.lora && ia3_lora_bias.ia3 && ia3_lora_bias.train_bias && !ia3_lora_bias.train_norm);
  const PeftMethod& bit_fit = peft_method("bit_fit");
  EXPECT_TRUE(!bit_fit.lora && !bit_fit.ia3 && bit_fit.train_bias && !bit_fit.train_norm);
  const std::string message = error_of([] { peft_method("loha"); });
  EXPECT_TRUE(contains(message, "'loha'") && contains(message, "ia3_lora_norm") && contains(message, "bit_fit"))
      << message;
}

TEST(Peft, KeysReadFromTheConfig) {
  Config config;
  EXPECT_FALSE(peft_options(config).has_value());
  config.merge({{"optimization.efficient_finetune", "ia3_lora"},
                {"optim.lora.r", 3},
                {"optim.lora.alpha", 12},
                {"optim.lora.module_filter", Json::array({"hf_text"})},
                {"optim.lora.merge_at_save", false}});
  const auto options = peft_options(config);
  ASSERT_TRUE(options.has_value());
  EXPECT_EQ(options->method.name, "ia3_lora");
  EXPECT_EQ(options->r, 3);
  EXPECT_DOUBLE_EQ(options->alpha, 12.0);
  EXPECT_EQ(options->filter, (std::vector<std::string>{"query", "value", "^q$", "^v$", "^k$", "^o$"}));
  EXPECT_EQ(options->module_filter, std::vector<std::string>{"hf_text"});
  EXPECT_FALSE(options->merge_at_save);
  Config bad;
  EXPECT_TRUE(contains(error_of([&] { bad.merge({{"optim.lora.r", 0}}); }), "optim.lora.r"));
  EXPECT_TRUE(contains(error_of([&] { bad.merge({{"optim.peft", "prefix_tuning"}}); }), "ia3_lora_norm"));
}

// y = x W^T + b + (x A^T B^T) alpha / r, then scaled by l: checked on one layer
// against the formula, and LoRA's start (B = 0, l = 1) leaves the layer as it was.
TEST(Peft, LinearAdapterFormula) {
  torch::manual_seed(1);
  auto holder = std::make_shared<torch::nn::Module>();
  torch::nn::Linear linear(6, 5);
  holder->register_module("query", linear);
  const torch::Tensor x = torch::randn({3, 4, 6});
  const torch::Tensor plain = apply_linear(*linear, x);
  ASSERT_EQ(add_adapters(*holder, options_for("ia3_lora", {"query"}, 2, 6.0)),
            std::vector<std::string>{"query"});
  EXPECT_TRUE(torch::allclose(apply_linear(*linear, x), plain));
  perturb_adapters(*holder);
  const LinearAdapter a = linear_adapter(*linear);
  ASSERT_TRUE(a.lora_A.defined() && a.ia3.defined());
  EXPECT_EQ(a.lora_A.sizes().vec(), (std::vector<int64_t>{2, 6}));
  EXPECT_EQ(a.lora_B.sizes().vec(), (std::vector<int64_t>{5, 2}));
  EXPECT_DOUBLE_EQ(a.lora_scaling.item<double>(), 3.0);
  const torch::Tensor expected =
      (torch::matmul(x, linear->weight.t()) + linear->bias + torch::matmul(torch::matmul(x, a.lora_A.t()), a.lora_B.t()) * 3.0) *
      a.ia3;
  EXPECT_TRUE(torch::allclose(apply_linear(*linear, x), expected, 1e-5, 1e-6));
  // kaiming_uniform(a = sqrt 5) on [r, in]: bound 1 / sqrt(in).
  EXPECT_LE(a.lora_A.abs().max().item<double>(), 1.0 / std::sqrt(6.0) + 1e-6);

  // IA3 alone on a Linear without bias (one parameter of its own plus the scale).
  auto bare = std::make_shared<torch::nn::Module>();
  torch::nn::Linear no_bias(torch::nn::LinearOptions(6, 5).bias(false));
  bare->register_module("value", no_bias);
  add_adapters(*bare, options_for("ia3", {"value"}));
  perturb_adapters(*bare);
  EXPECT_TRUE(torch::allclose(apply_linear(*no_bias, x),
                              torch::matmul(x, no_bias->weight.t()) * linear_adapter(*no_bias).ia3, 1e-5, 1e-6));
}

// Analytic gradients of lora_A, lora_B and lora_b inside a small BERT encoder
// against central finite differences, in float64.
TEST(Peft, GradientsMatchFiniteDifferences) {
  torch::manual_seed(2);
  auto encoder = make_text_encoder(tiny_bert());
  encoder->to(torch::kFloat64);
  encoder->eval();
  const auto adapted = add_adapters(*encoder, options_for("ia3_lora", {"query", "value"}, 2, 4.0));
  ASSERT_EQ(adapted.size(), 4u);  // query and value of 2 layers
  perturb_adapters(*encoder);
  {  // A away from its init too, so every term is exercised
    torch::NoGradGuard no_grad;
    for (auto& item : encoder->named_parameters())
      if (contains(item.key(), "lora_A")) item.value().mul_(1.7);
  }
  const torch::Tensor ids = torch::randint(4, 40, {2, 7}, torch::kInt64);
  const torch::Tensor weights = torch::randn({2, 7, 16}, torch::kFloat64);
  auto loss_of = [&] { return (encoder->forward(ids, {}, {}) * weights).sum(); };
  encoder->zero_grad();
  loss_of().backward();
  const double eps = 1e-6;
  int64_t compared = 0;
  for (auto& item : encoder->named_parameters()) {
    const std::string& name = item.key();
    if (!contains(name, "lora_A") && !contains(name, "lora_B") && !contains(name, "lora_b")) continue;
    torch::Tensor p = item.value();
    const torch::Tensor analytic = p.grad().clone();
    auto flat = p.view({-1});
    for (int64_t i : {int64_t{0}, flat.size(0) / 2, flat.size(0) - 1}) {
      torch::NoGradGuard no_grad;
      const double original = flat[i].item<double>();
      flat[i].fill_(original + eps);
      const double up = loss_of().item<double>();
      flat[i].fill_(original - eps);
      const double down = loss_of().item<double>();
      flat[i].fill_(original);
      const double numeric = (up - down) / (2 * eps);
      const double exact = analytic.view({-1})[i].item<double>();
      EXPECT_NEAR(exact, numeric, 1e-6 * std::max(1.0, std::abs(numeric))) << name << "[" << i << "]";
      ++compared;
    }
  }
  EXPECT_EQ(compared, 4 * 3 * 3);
}

// Every Linear of every text encoder and image model, adapted one by one, is run
// through its adapter (its B and l get gradients), and merging gives the same
// outputs with no adapter left.
void check_backbone(torch::nn::Module& model, const std::function<torch::Tensor()>& forward,
                    const std::string& what) {
  SCOPED_TRACE(what);
  const int64_t adapted = adapt_every_linear(model, "ia3_lora");
  ASSERT_GT(adapted, 0);
  perturb_adapters(model);
  model.zero_grad();
  const torch::Tensor out = forward();
  expect_every_adapter_on_the_path(model, out.pow(2).mean(), adapted);
  torch::Tensor unmerged;
  {
    torch::NoGradGuard no_grad;
    unmerged = forward();
  }
  EXPECT_EQ(merge_adapters(model), adapted);
  for (const auto& item : model.named_parameters()) EXPECT_FALSE(is_adapter_parameter(item.key())) << item.key();
  torch::NoGradGuard no_grad;
  const torch::Tensor merged = forward();
  const double scale = std::max(1.0, unmerged.abs().max().item<double>());
  EXPECT_LT((merged - unmerged).abs().max().item<double>(), 1e-5 * scale);
}

TEST(Peft, EveryTextEncoderLinearRunsItsAdapterAndMerges) {
  const std::vector<nlohmann::json> configs = {
      tiny_bert(),
      {{"model_type", "deberta-v2"}, {"vocab_size", 40}, {"hidden_size", 16}, {"num_hidden_layers", 2},
       {"num_attention_heads", 2}, {"intermediate_size", 32}, {"relative_attention", true}, {"pad_token_id", 0}},
      {{"model_type", "distilbert"}, {"vocab_size", 40}, {"dim", 16}, {"n_layers", 2}, {"n_heads", 2},
       {"hidden_dim", 32}, {"max_position_embeddings", 16}},
      {{"model_type", "mpnet"}, {"vocab_size", 40}, {"hidden_size", 16}, {"num_hidden_layers", 2},
       {"num_attention_heads", 2}, {"intermediate_size", 32}, {"max_position_embeddings", 20},
       {"relative_attention_num_buckets", 32}},
      {{"model_type", "electra"}, {"vocab_size", 40}, {"embedding_size", 8}, {"hidden_size", 16},
       {"num_hidden_layers", 2}, {"num_attention_heads", 2}, {"intermediate_size", 32},
       {"max_position_embeddings", 16}}};
  for (const auto& config : configs) {
    torch::manual_seed(3);
    auto encoder = make_text_encoder(config);
    encoder->eval();
    const torch::Tensor ids = torch::randint(4, 40, {2, 6}, torch::kInt64);
    check_backbone(*encoder, [&] { return encoder->forward(ids, {}, {}); }, config["model_type"].get<std::string>());
  }
}

TEST(Peft, EveryImageModelLinearRunsItsAdapterAndMerges) {
  const std::vector<std::pair<std::string, int64_t>> models = {
      {"vit_tiny_patch16_224", 224}, {"swin_tiny_patch4_window7_224", 224}, {"convnext_tiny", 64},
      {"caformer_s18", 64}};
  for (const auto& [name, size] : models) {
    torch::manual_seed(4);
    auto model = make_image_encoder(name, 0);
    model->eval();
    const torch::Tensor images = torch::randn({1, 3, size, size});
    check_backbone(*model, [&] { return model->forward_features(images); }, name);
  }
}

// Adapter gradients are the same with gradient checkpointing (recomputed blocks),
// and close under bf16 autocast.
TEST(Peft, AdaptersUnderCheckpointingAndAutocast) {
  torch::manual_seed(8);
  auto encoder = make_text_encoder(tiny_bert());
  encoder->eval();  // no dropout: the runs compare exactly
  add_adapters(*encoder, options_for("ia3_lora"));
  freeze_for_peft(*encoder, peft_method("ia3_lora"), [](const std::string&) { return false; });
  perturb_adapters(*encoder);
  const torch::Tensor ids = torch::randint(4, 40, {3, 9}, torch::kInt64);
  auto gradients = [&](bool checkpointing, bool autocast) {
    encoder->set_gradient_checkpointing(checkpointing);
    encoder->zero_grad();
    at::autocast::set_cpu_enabled(autocast);
    const torch::Tensor out = encoder->forward(ids, {}, {});
    at::autocast::set_cpu_enabled(false);
    at::autocast::clear_cache();
    out.to(torch::kFloat32).pow(2).mean().backward();
    std::vector<torch::Tensor> grads;
    for (const auto& p : encoder->parameters())
      if (p.requires_grad()) grads.push_back(p.grad().clone());
    return grads;
  };
  const auto plain = gradients(false, false);
  const auto recomputed = gradients(true, false);
  const auto bf16 = gradients(true, true);
  ASSERT_EQ(plain.size(), 4u * 3u);  // 4 adapted layers x (A, B, l)
  for (size_t i = 0; i < plain.size(); ++i) {
    EXPECT_TRUE(torch::allclose(plain[i], recomputed[i], 1e-5, 1e-7)) << i;
    const double scale = plain[i].abs().max().item<double>();
    EXPECT_LT((plain[i] - bf16[i]).abs().max().item<double>(), 0.1 * scale + 1e-6) << i;
  }
}

TEST(Peft, FreezingFollowsTheMethodAndKeepsHeadsTraining) {
  auto trainable_after = [](const std::string& method) {
    torch::manual_seed(5);
    auto encoder = make_text_encoder(tiny_bert());
    add_adapters(*encoder, options_for(method));
    freeze_for_peft(*encoder, peft_method(method), [](const std::string& name) { return contains(name, "pooler"); });
    std::set<std::string> names;
    for (const auto& item : encoder->named_parameters())
      if (item.value().requires_grad()) names.insert(item.key());
    return names;
  };
  for (const std::string& name : trainable_after("bit_fit"))
    EXPECT_TRUE(contains(name, "bias") || contains(name, "pooler")) << name;
  const auto norm_fit = trainable_after("norm_fit");
  EXPECT_TRUE(norm_fit.count("embeddings.LayerNorm.weight"));
  EXPECT_TRUE(norm_fit.count("encoder.layer.0.output.LayerNorm.weight"));
  EXPECT_FALSE(norm_fit.count("encoder.layer.0.output.dense.weight"));
  const auto lora = trainable_after("lora");
  for (const std::string& name : lora)
    EXPECT_TRUE(contains(name, "lora_A") || contains(name, "lora_B") || contains(name, "pooler")) << name;
  EXPECT_TRUE(lora.count("encoder.layer.1.attention.self.value.lora_B"));
  EXPECT_FALSE(lora.count("encoder.layer.1.attention.self.value.lora_scaling"));
  const auto ia3_norm = trainable_after("ia3_norm");
  EXPECT_TRUE(ia3_norm.count("encoder.layer.1.attention.self.query.lora_b"));
  EXPECT_TRUE(ia3_norm.count("encoder.layer.1.attention.self.query.bias"));
  EXPECT_TRUE(ia3_norm.count("embeddings.LayerNorm.weight"));
  EXPECT_FALSE(ia3_norm.count("encoder.layer.1.attention.self.query.weight"));
}

TEST(Peft, FilterAndModuleFilterChooseTheLayers) {
  torch::manual_seed(6);
  auto encoder = make_text_encoder(tiny_bert());
  PeftOptions options = options_for("lora", {"key"});
  options.module_filter = {R"(encoder\.layer\.1\.)"};
  EXPECT_EQ(add_adapters(*encoder, options), std::vector<std::string>{"encoder.layer.1.attention.self.key"});
  // re.match semantics: the pattern anchors at the start of the child's name.
  auto other = make_text_encoder(tiny_bert());
  EXPECT_TRUE(contains(error_of([&] { add_adapters(*other, options_for("lora", {"alue"})); }), "no Linear layer"));
  EXPECT_EQ(add_adapters(*other, options_for("lora", {"val"})).size(), 2u);
}

TEST(Peft, ClearErrors) {
  torch::manual_seed(7);
  auto encoder = make_text_encoder(tiny_bert());
  std::string message = error_of([&] { add_adapters(*encoder, options_for("lora", {"qkv"})); });
  EXPECT_TRUE(contains(message, "no Linear layer") && contains(message, "query") && contains(message, "dense"))
      << message;
  PeftOptions options = options_for("lora");
  options.module_filter = {"decoder"};
  message = error_of([&] { add_adapters(*encoder, options); });
  EXPECT_TRUE(contains(message, "module_filter") && contains(message, "encoder.layer.0")) << message;
  message = error_of([&] { add_adapters(*encoder, options_for("lora", {"LayerNorm"})); });
  EXPECT_TRUE(contains(message, "LayerNorm") && contains(message, "not a Linear")) << message;
  message = error_of([&] { add_adapters(*encoder, options_for("ia3", {"(query"})); });
  EXPECT_TRUE(contains(message, "optim.lora.filter") && contains(message, "(query")) << message;
  // bit_fit / norm_fit add nothing.
  EXPECT_TRUE(add_adapters(*encoder, options_for("bit_fit", {"nothing"})).empty());
}

}  // namespace
}  // namespace automm
