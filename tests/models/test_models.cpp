// Tests of the model registry, model selection (AutoMM's configs/model/default.yaml) and the tabular
// backbones and fusion models. Architecture facts are checked through parameter
// shapes and against forward passes recomputed here from the parameters.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "automm/config.h"
#include "models/multimodal_net.h"
#include "optim/optim.h"

namespace automm {
namespace {

using Names = std::vector<std::string>;

template <typename Fn>
std::string error_of(Fn fn) {
  try {
    fn();
  } catch (const std::invalid_argument& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("WRONG EXCEPTION TYPE: ") + e.what();
  }
  return "NO EXCEPTION";
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

ModalityPresence presence(bool numerical, bool categorical, bool text = false, bool image = false) {
  ModalityPresence p;
  p.numerical = numerical;
  p.categorical = categorical;
  p.text = text;
  p.image = image;
  return p;
}

// ------------------------------------------------------------------ selection

TEST(ModelsSelect, DropsBackbonesWhoseModalityIsAbsent) {
  const Names all = {"hf_text", "timm_image", "categorical_mlp", "numerical_mlp", "fusion_mlp"};
  EXPECT_EQ(select_models(all, presence(true, false)), (Names{"numerical_mlp"}));
  EXPECT_EQ(select_models(all, presence(false, true)), (Names{"categorical_mlp"}));
  EXPECT_EQ(select_models(all, presence(false, false, true)), (Names{"hf_text"}));
  EXPECT_EQ(select_models(all, presence(false, false, false, true)), (Names{"timm_image"}));
  EXPECT_EQ(select_models(all, presence(true, true)), (Names{"categorical_mlp", "numerical_mlp", "fusion_mlp"}));
  EXPECT_EQ(select_models(all, presence(false, false, true, true)), (Names{"hf_text", "timm_image", "fusion_mlp"}));
  EXPECT_EQ(select_models(all, presence(true, true, true, true)), all);
}

TEST(ModelsSelect, FtTransformerServesNumericalOrCategorical) {
  const Names names = {"ft_transformer", "hf_text", "fusion_transformer"};
  EXPECT_EQ(select_models(names, presence(true, false)), (Names{"ft_transformer"}));
  EXPECT_EQ(select_models(names, presence(false, true)), (Names{"ft_transformer"}));
  EXPECT_EQ(select_models(names, presence(false, false, true)), (Names{"hf_text"}));
  EXPECT_EQ(select_models(names, presence(true, false, true)), names);
}

TEST(ModelsSelect, ClipServesTextOrImage) {
  const Names names = {"clip", "numerical_mlp", "fusion_mlp"};
  EXPECT_EQ(select_models(names, presence(true, false)), (Names{"numerical_mlp"}));
  EXPECT_EQ(select_models(names, presence(false, false, true)), (Names{"clip"}));
  EXPECT_EQ(select_models(names, presence(false, false, false, true)), (Names{"clip"}));
  EXPECT_EQ(select_models(names, presence(true, false, true, true)), names);
}

TEST(ModelsSelect, FusionDroppedWithOneBackboneKeptWithTwo) {
  EXPECT_EQ(select_models({"numerical_mlp", "fusion_transformer"}, presence(true, true)),
            (Names{"numerical_mlp"}));
  EXPECT_EQ(select_models({"numerical_mlp"}, presence(true, true)), (Names{"numerical_mlp"}));
  const Names two = select_models({"numerical_mlp", "categorical_mlp", "fusion_transformer"}, presence(true, true));
  EXPECT_EQ(two.size(), 3u);
  EXPECT_EQ(std::count(two.begin(), two.end(), "fusion_transformer"), 1);
}

TEST(ModelsSelect, FusionListedFirstIsStillKept) {
  const Names kept = select_models({"fusion_mlp", "categorical_mlp", "numerical_mlp"}, presence(true, true));
  EXPECT_EQ(std::set<std::string>(kept.begin(), kept.end()),
            (std::set<std::string>{"fusion_mlp", "categorical_mlp", "numerical_mlp"}));
  EXPECT_EQ(kept.size(), 3u);
}

TEST(ModelsSelect, SuffixedNamesKeepTheirBase) {
  EXPECT_EQ(select_models({"numerical_mlp", "numerical_mlp_2", "fusion_mlp"}, presence(true, false)),
            (Names{"numerical_mlp", "numerical_mlp_2", "fusion_mlp"}));
  // hf_text_2 is a text model: dropped without text; categorical_mlp_3 is categorical.
  EXPECT_EQ(select_models({"hf_text_2", "categorical_mlp_3", "fusion_transformer"}, presence(false, true)),
            (Names{"categorical_mlp_3"}));
  EXPECT_EQ(select_models({"hf_text_2", "categorical_mlp_3", "fusion_mlp_1"}, presence(false, true, true)),
            (Names{"hf_text_2", "categorical_mlp_3", "fusion_mlp_1"}));
}

TEST(ModelsSelect, UnknownModelErrorListsKnownOnes) {
  const std::string message = error_of([] { select_models({"numerical_mlp", "tabnet"}, presence(true, true)); });
  EXPECT_TRUE(contains(message, "tabnet")) << message;
  for (const char* known : {"hf_text", "timm_image", "clip", "categorical_mlp", "numerical_mlp", "ft_transformer",
                            "fusion_mlp", "fusion_transformer", "mmdet_image", "sam"})
    EXPECT_TRUE(contains(message, known)) << known << " missing from: " << message;
  // An unknown name errors even when its would-be modality is absent.
  EXPECT_TRUE(contains(error_of([] { select_models({"numerical_mlp", "text_cnn_2"}, presence(true, false)); }),
                       "text_cnn_2"));
}

TEST(ModelsSelect, TwoFusionModelsError) {
  const std::string message = error_of([] {
    select_models({"categorical_mlp", "numerical_mlp", "fusion_mlp", "fusion_transformer"}, presence(true, true));
  });
  EXPECT_TRUE(contains(message, "fusion")) << message;
  EXPECT_FALSE(contains(message, "NO EXCEPTION"));
  EXPECT_NE(error_of([] {
              select_models({"categorical_mlp", "numerical_mlp", "fusion_mlp", "fusion_mlp_2"}, presence(true, true));
            }),
            "NO EXCEPTION");
}

TEST(ModelsSelect, NothingLeftErrors) {
  const std::string message = error_of([] { select_models({"hf_text", "fusion_mlp"}, presence(true, true)); });
  EXPECT_NE(message, "NO EXCEPTION");
  EXPECT_FALSE(contains(message, "WRONG EXCEPTION"));
  EXPECT_NE(error_of([] { select_models({}, presence(true, true)); }), "NO EXCEPTION");
  EXPECT_NE(error_of([] { select_models({"fusion_mlp"}, presence(true, true)); }), "NO EXCEPTION");
}

TEST(ModelsSelect, SeveralBackbonesWithoutFusionError) {
  const std::string message =
      error_of([] { select_models({"categorical_mlp", "numerical_mlp"}, presence(true, true)); });
  EXPECT_TRUE(contains(message, "fusion")) << message;
  // ... but fine when only one of them applies.
  EXPECT_EQ(select_models({"categorical_mlp", "numerical_mlp"}, presence(true, false)), (Names{"numerical_mlp"}));
}

// ------------------------------------------------------------------- registry

TEST(ModelsRegistry, BaseNameStripsNumericSuffix) {
  EXPECT_EQ(model_base_name("hf_text_2"), "hf_text");
  EXPECT_EQ(model_base_name("numerical_mlp_12"), "numerical_mlp");
  EXPECT_EQ(model_base_name("fusion_mlp"), "fusion_mlp");
  EXPECT_EQ(model_base_name("ft_transformer"), "ft_transformer");
  EXPECT_EQ(model_base_name("clip"), "clip");
  EXPECT_EQ(model_base_name("timm_image_0"), "timm_image");
}

TEST(ModelsRegistry, BackboneAndFusionNames) {
  for (const char* b : {"hf_text", "timm_image", "clip", "categorical_mlp", "numerical_mlp", "ft_transformer",
                        "mmdet_image", "sam"}) {
    EXPECT_TRUE(is_backbone_name(b)) << b;
    EXPECT_FALSE(is_fusion_name(b)) << b;
  }
  for (const char* f : {"fusion_mlp", "fusion_transformer"}) {
    EXPECT_TRUE(is_fusion_name(f)) << f;
    EXPECT_FALSE(is_backbone_name(f)) << f;
  }
  EXPECT_FALSE(is_backbone_name("hf_text_2"));  // takes base names
  EXPECT_FALSE(is_backbone_name("tabnet"));
}

TEST(ModelsRegistry, DetectionAndSegmentationModelsSayWhichProblemTypeTheyServe) {
  Config config;
  ModelContext context;
  context.num_numerical = 2;
  for (const char* name : {"mmdet_image", "sam"}) {
    const std::string message = error_of([&] { make_backbone(name, name, context, config); });
    EXPECT_TRUE(contains(message, "serves problem_type")) << message;
    EXPECT_TRUE(contains(message, name)) << message;
  }
  EXPECT_TRUE(contains(error_of([&] { make_backbone("sam", "sam_2", context, config); }), "sam_2"));
}

TEST(ModelsRegistry, UnknownBackboneErrors) {
  Config config;
  ModelContext context;
  context.num_numerical = 2;
  const std::string message = error_of([&] { make_backbone("tabnet", "tabnet", context, config); });
  EXPECT_TRUE(contains(message, "tabnet")) << message;
  EXPECT_TRUE(contains(message, "numerical_mlp")) << message;
}

TEST(ModelsRegistry, FtTransformerNeedsAColumn) {
  Config config;
  ModelContext empty;
  EXPECT_NE(error_of([&] { make_backbone("ft_transformer", "ft_transformer", empty, config); }), "NO EXCEPTION");
}

// ---------------------------------------------------------------- fixtures

ModelContext tabular_context() {
  ModelContext context;
  context.num_numerical = 3;
  context.categorical_cardinalities = {4, 6};
  context.num_outputs = 3;
  return context;
}

Batch make_batch(const ModelContext& context, int64_t rows, uint64_t seed) {
  torch::manual_seed(seed);
  Batch batch;
  if (context.num_numerical > 0) batch.numerical = torch::randn({rows, context.num_numerical});
  if (!context.categorical_cardinalities.empty()) {
    std::vector<torch::Tensor> columns;
    for (int64_t cards : context.categorical_cardinalities)
      columns.push_back(torch::randint(0, cards, {rows, 1}, torch::kInt64));
    batch.categorical = torch::cat(columns, 1);
  }
  return batch;
}

using Shapes = std::map<std::string, std::vector<int64_t>>;
Shapes parameter_shapes(torch::nn::Module& module) {
  Shapes out;
  for (const auto& item : module.named_parameters()) out[item.key()] = item.value().sizes().vec();
  return out;
}
using Vec = std::vector<int64_t>;

std::map<std::string, torch::Tensor> params_of(torch::nn::Module& module) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& item : module.named_parameters()) out[item.key()] = item.value().detach();
  return out;
}

int count_matching(const Shapes& shapes, const std::string& part, const std::string& suffix) {
  int n = 0;
  for (const auto& [name, shape] : shapes)
    if (contains(name, part) && name.size() >= suffix.size() &&
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
      ++n;
  return n;
}

// ---------------------------------------------------------------- reference math

torch::Tensor ref_layer_norm(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  auto mean = x.mean(-1, true);
  auto var = (x - mean).pow(2).mean(-1, true);
  return (x - mean) / torch::sqrt(var + 1e-5) * w + b;
}
torch::Tensor ref_linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  return torch::matmul(x, w.t()) + b;
}
torch::Tensor ref_leaky(const torch::Tensor& x) { return torch::where(x > 0, x, 0.01 * x); }
torch::Tensor ref_gelu(const torch::Tensor& x) { return 0.5 * x * (1.0 + torch::erf(x / std::sqrt(2.0))); }

// AutoMM's MLP with one unit: [LayerNorm ->] Linear -> LeakyReLU (-> dropout, off in
// eval) [-> Linear fc_out].
torch::Tensor ref_mlp(std::map<std::string, torch::Tensor>& p, const std::string& prefix, const torch::Tensor& x,
                      bool input_norm = true, bool fc_out = false) {
  auto h = input_norm ? ref_layer_norm(x, p.at(prefix + ".norms.0.weight"), p.at(prefix + ".norms.0.bias")) : x;
  h = ref_leaky(ref_linear(h, p.at(prefix + ".linears.0.weight"), p.at(prefix + ".linears.0.bias")));
  return fc_out ? ref_linear(h, p.at(prefix + ".out.weight"), p.at(prefix + ".out.bias")) : h;
}

// ----------------------------------------------------------------- shapes

TEST(ModelsShapes, CategoricalNumericalFusionMlp) {
  Config config;
  const ModelContext context = tabular_context();
  MultiModalNet net(Names{"categorical_mlp", "numerical_mlp", "fusion_mlp"}, context, config);
  net->eval();
  const NetOutput out = net->forward(make_batch(context, 5, 1));
  EXPECT_EQ(out.logits.sizes().vec(), (Vec{5, 3}));
  EXPECT_EQ(out.features.sizes().vec(), (Vec{5, 128}));  // fusion_mlp.hidden_sizes [128]
  EXPECT_TRUE(out.aux_logits.empty());
  EXPECT_EQ(net->aux_loss_weight(), 0.0);
  EXPECT_EQ(net->model_names(), (Names{"categorical_mlp", "numerical_mlp", "fusion_mlp"}));

  const Shapes shapes = parameter_shapes(*net);
  // Adapters project both backbones (64 and 128 wide) to the largest width, 128.
  EXPECT_EQ(shapes.at("fusion_mlp.adapters.linears.0.weight"), (Vec{128, 64}));
  EXPECT_EQ(shapes.at("fusion_mlp.adapters.linears.1.weight"), (Vec{128, 128}));
  // Concat (256) -> LayerNorm -> Linear(128) -> head.
  EXPECT_EQ(shapes.at("fusion_mlp.layers.0.norms.0.weight"), (Vec{256}));
  EXPECT_EQ(shapes.at("fusion_mlp.layers.0.linears.0.weight"), (Vec{128, 256}));
  EXPECT_EQ(shapes.at("fusion_mlp.head.weight"), (Vec{3, 128}));
  // Backbone widths: numerical_mlp hidden 128 on 3 inputs (no LayerNorm on the raw
  // standardized columns: the project's documented fix), categorical_mlp hidden 64.
  EXPECT_EQ(shapes.at("numerical_mlp.mlp.linears.0.weight"), (Vec{128, 3}));
  EXPECT_EQ(count_matching(shapes, "numerical_mlp.mlp.norms.", ""), 0);
  EXPECT_EQ(shapes.at("numerical_mlp.head.weight"), (Vec{3, 128}));
  // AutoMM's aggregator: MLP(in = hidden * columns, hidden = in, out = hidden).
  EXPECT_EQ(shapes.at("categorical_mlp.aggregator.norms.0.weight"), (Vec{128}));
  EXPECT_EQ(shapes.at("categorical_mlp.aggregator.linears.0.weight"), (Vec{128, 128}));
  EXPECT_EQ(shapes.at("categorical_mlp.aggregator.out.weight"), (Vec{64, 128}));
  EXPECT_EQ(shapes.at("categorical_mlp.head.weight"), (Vec{3, 64}));
}

TEST(ModelsShapes, FusionMlpHiddenSizesChangeFeatureWidth) {
  Config config;
  config.set("model.fusion_mlp.hidden_sizes", Json::array({64, 32}));
  const ModelContext context = tabular_context();
  MultiModalNet net(Names{"categorical_mlp", "numerical_mlp", "fusion_mlp"}, context, config);
  const NetOutput out = net->forward(make_batch(context, 4, 2));
  EXPECT_EQ(out.logits.sizes().vec(), (Vec{4, 3}));
  EXPECT_EQ(out.features.sizes().vec(), (Vec{4, 32}));
  const Shapes shapes = parameter_shapes(*net);
  EXPECT_EQ(shapes.at("fusion_mlp.layers.0.linears.0.weight"), (Vec{64, 256}));
  EXPECT_EQ(shapes.at("fusion_mlp.layers.1.linears.0.weight"), (Vec{32, 64}));
  EXPECT_EQ(shapes.at("fusion_mlp.head.weight"), (Vec{3, 32}));
}

TEST(ModelsShapes, FtTransformerAlone) {
  Config config;
  const ModelContext context = tabular_context();
  MultiModalNet net(Names{"ft_transformer"}, context, config);
  const NetOutput out = net->forward(make_batch(context, 6, 3));
  EXPECT_EQ(out.logits.sizes().vec(), (Vec{6, 3}));
  EXPECT_EQ(out.features.sizes().vec(), (Vec{6, 192}));
  const Shapes shapes = parameter_shapes(*net);
  EXPECT_EQ(shapes.at("ft_transformer.numerical_tokenizer_weight"), (Vec{3, 192}));
  EXPECT_EQ(shapes.at("ft_transformer.numerical_tokenizer_bias"), (Vec{3, 192}));
  EXPECT_EQ(shapes.at("ft_transformer.categorical_tokenizer_embedding"), (Vec{4 + 6, 192}));
  EXPECT_EQ(shapes.at("ft_transformer.categorical_tokenizer_bias"), (Vec{2, 192}));
  EXPECT_EQ(shapes.at("ft_transformer.cls_token"), (Vec{192}));
  EXPECT_EQ(shapes.count("ft_transformer.projection.weight"), 0u);  // token_dim == hidden_size
}

TEST(ModelsShapes, FtTransformerHiddenSizeChangesFeatureWidth) {
  Config config;
  config.set("model.ft_transformer.hidden_size", 64);
  const ModelContext context = tabular_context();
  MultiModalNet net(Names{"ft_transformer"}, context, config);
  const NetOutput out = net->forward(make_batch(context, 2, 4));
  EXPECT_EQ(out.features.sizes().vec(), (Vec{2, 64}));
  EXPECT_EQ(out.logits.sizes().vec(), (Vec{2, 3}));
  const Shapes shapes = parameter_shapes(*net);
  EXPECT_EQ(shapes.at("ft_transformer.projection.weight"), (Vec{64, 192}));  // token_dim 192 -> 64
  EXPECT_EQ(shapes.at("ft_transformer.head.linear.weight"), (Vec{3, 64}));
}

TEST(ModelsShapes, FtTransformerNumericalOnlyAndCategoricalOnly) {
  Config config;
  ModelContext numerical;
  numerical.num_numerical = 2;
  numerical.num_outputs = 1;
  MultiModalNet a(Names{"ft_transformer"}, numerical, config);
  EXPECT_EQ(a->forward(make_batch(numerical, 3, 5)).logits.sizes().vec(), (Vec{3, 1}));
  ModelContext categorical;
  categorical.categorical_cardinalities = {3, 2, 7};
  categorical.num_outputs = 2;
  MultiModalNet b(Names{"ft_transformer"}, categorical, config);
  EXPECT_EQ(b->forward(make_batch(categorical, 3, 6)).logits.sizes().vec(), (Vec{3, 2}));
}

TEST(ModelsShapes, CategoricalNumericalFusionTransformer) {
  Config config;
  const ModelContext context = tabular_context();
  MultiModalNet net(Names{"categorical_mlp", "numerical_mlp", "fusion_transformer"}, context, config);
  const NetOutput out = net->forward(make_batch(context, 5, 7));
  EXPECT_EQ(out.logits.sizes().vec(), (Vec{5, 3}));
  EXPECT_EQ(out.features.sizes().vec(), (Vec{5, 192}));
  const Shapes shapes = parameter_shapes(*net);
  EXPECT_EQ(shapes.at("fusion_transformer.cls_token"), (Vec{192}));
  EXPECT_EQ(shapes.at("fusion_transformer.adapters.linears.0.weight"), (Vec{128, 64}));
  EXPECT_EQ(shapes.at("fusion_transformer.projection.weight"), (Vec{192, 128}));
  EXPECT_EQ(count_matching(shapes, "fusion_transformer.transformer.qkv.", ".weight"), 3);
  EXPECT_EQ(count_matching(shapes, "fusion_transformer.transformer.attention_norms.", ".weight"), 2);
  EXPECT_EQ(shapes.at("fusion_transformer.transformer.ffn_in.0.weight"), (Vec{2 * 192, 192}));

  Config small;
  small.set("model.fusion_transformer.hidden_size", 64);
  MultiModalNet narrow(Names{"categorical_mlp", "numerical_mlp", "fusion_transformer"}, context, small);
  EXPECT_EQ(narrow->forward(make_batch(context, 5, 7)).features.sizes().vec(), (Vec{5, 64}));
}

TEST(ModelsShapes, SingleMlpBackbones) {
  Config config;
  ModelContext context = tabular_context();
  MultiModalNet cat(Names{"categorical_mlp"}, context, config);
  EXPECT_EQ(cat->forward(make_batch(context, 2, 8)).features.sizes().vec(), (Vec{2, 64}));
  MultiModalNet num(Names{"numerical_mlp"}, context, config);
  EXPECT_EQ(num->forward(make_batch(context, 2, 8)).features.sizes().vec(), (Vec{2, 128}));
  config.set("model.numerical_mlp.hidden_size", 32);
  MultiModalNet narrow(Names{"numerical_mlp"}, context, config);
  const NetOutput out = narrow->forward(make_batch(context, 2, 8));
  EXPECT_EQ(out.features.sizes().vec(), (Vec{2, 32}));
  EXPECT_EQ(out.logits.sizes().vec(), (Vec{2, 3}));
}

// ---------------------------------------------------------- categorical_mlp

TEST(ModelsCategoricalMlp, EmbeddingWidthPerColumn) {
  Config config;
  ModelContext context;
  context.categorical_cardinalities = {1, 2, 4, 6, 50, 100, 10000};
  context.num_outputs = 2;
  // max(2, min(100, int(1.6 * n^0.56))), evaluated by hand:
  // 1 -> 1.6 -> 2; 2 -> 2.36 -> 2; 4 -> 3.48 -> 3; 6 -> 4.36 -> 4; 50 -> 14.3 -> 14;
  // 100 -> 21.1 -> 21; 10000 -> 278 -> 100.
  const Vec by_hand = {2, 2, 3, 4, 14, 21, 100};
  MultiModalNet net(Names{"categorical_mlp"}, context, config);
  const Shapes shapes = parameter_shapes(*net);
  for (size_t i = 0; i < context.categorical_cardinalities.size(); ++i) {
    const int64_t n = context.categorical_cardinalities[i];
    SCOPED_TRACE(n);
    const int64_t formula =
        std::max<int64_t>(2, std::min<int64_t>(100, static_cast<int64_t>(1.6 * std::pow(double(n), 0.56))));
    ASSERT_EQ(formula, by_hand[i]);
    const std::string c = std::to_string(i);
    EXPECT_EQ(shapes.at("categorical_mlp.embeddings." + c + ".weight"), (Vec{n, by_hand[i]}));
    EXPECT_EQ(shapes.at("categorical_mlp.column_mlps." + c + ".linears.0.weight"), (Vec{64, by_hand[i]}));
  }
  // concat pooling (default): the aggregator reads 64 per column, keeps that width
  // through its unit (AutoMM: hidden_features = in_features) and projects to 64.
  EXPECT_EQ(shapes.at("categorical_mlp.aggregator.norms.0.weight"), (Vec{64 * 7}));
  EXPECT_EQ(shapes.at("categorical_mlp.aggregator.linears.0.weight"), (Vec{64 * 7, 64 * 7}));
  EXPECT_EQ(shapes.at("categorical_mlp.aggregator.out.weight"), (Vec{64, 64 * 7}));
  EXPECT_EQ(net->forward(make_batch(context, 3, 10)).features.sizes().vec(), (Vec{3, 64}));
}

TEST(ModelsCategoricalMlp, MeanPoolingNarrowsTheAggregator) {
  Config config;
  config.set("data.column_features_pooling_mode", "mean");
  ModelContext context = tabular_context();
  MultiModalNet net(Names{"categorical_mlp"}, context, config);
  const Shapes shapes = parameter_shapes(*net);
  EXPECT_EQ(shapes.at("categorical_mlp.aggregator.linears.0.weight"), (Vec{64, 64}));
  EXPECT_EQ(shapes.at("categorical_mlp.aggregator.norms.0.weight"), (Vec{64}));
  EXPECT_EQ(shapes.count("categorical_mlp.aggregator.out.weight"), 0u);  // already 64 wide
  EXPECT_EQ(net->forward(make_batch(context, 3, 9)).logits.sizes().vec(), (Vec{3, 3}));
}

// Recomputes categorical_mlp + numerical_mlp + fusion_mlp from the parameters.
TEST(ModelsReference, FusionMlpForwardMatchesHandComputation) {
  for (const std::string pooling : {"concat", "mean"}) {
    SCOPED_TRACE(pooling);
    Config config;
    config.set("data.column_features_pooling_mode", pooling);
    const ModelContext context = tabular_context();
    torch::manual_seed(11);
    MultiModalNet net(Names{"categorical_mlp", "numerical_mlp", "fusion_mlp"}, context, config);
    net->eval();
    {  // unit norm weights and zero biases would hide mistakes
      torch::NoGradGuard guard;
      for (auto& param : net->parameters()) param.copy_(torch::randn_like(param) * 0.5);
    }
    const Batch batch = make_batch(context, 4, 12);
    const NetOutput out = net->forward(batch);
    auto p = params_of(*net);

    std::vector<torch::Tensor> columns;
    for (size_t c = 0; c < context.categorical_cardinalities.size(); ++c) {
      const std::string i = std::to_string(c);
      auto embedded = p.at("categorical_mlp.embeddings." + i + ".weight").index_select(0, batch.categorical.select(1, c));
      columns.push_back(ref_mlp(p, "categorical_mlp.column_mlps." + i, embedded));
    }
    auto pooled = pooling == "mean" ? (columns[0] + columns[1]) / 2.0 : torch::cat(columns, 1);
    auto cat_features = ref_mlp(p, "categorical_mlp.aggregator", pooled, true, pooling == "concat");
    auto num_features = ref_mlp(p, "numerical_mlp.mlp", batch.numerical, false);
    auto a0 = ref_linear(cat_features, p.at("fusion_mlp.adapters.linears.0.weight"),
                         p.at("fusion_mlp.adapters.linears.0.bias"));
    auto a1 = ref_linear(num_features, p.at("fusion_mlp.adapters.linears.1.weight"),
                         p.at("fusion_mlp.adapters.linears.1.bias"));
    auto fused = ref_mlp(p, "fusion_mlp.layers.0", torch::cat({a0, a1}, 1));
    auto logits = ref_linear(fused, p.at("fusion_mlp.head.weight"), p.at("fusion_mlp.head.bias"));
    EXPECT_TRUE(torch::allclose(out.features, fused, 1e-4, 1e-5));
    EXPECT_TRUE(torch::allclose(out.logits, logits, 1e-4, 1e-5));
  }
}

// ------------------------------------------------------------ ft_transformer

TEST(ModelsFtTransformer, FirstBlockHasNoAttentionNorm) {
  const ModelContext context = tabular_context();
  for (int64_t blocks : {1, 3, 5}) {
    SCOPED_TRACE(blocks);
    Config config;
    config.set("model.ft_transformer.num_blocks", blocks);
    MultiModalNet net(Names{"ft_transformer"}, context, config);
    const Shapes shapes = parameter_shapes(*net);
    const std::string t = "ft_transformer.transformer.";
    EXPECT_EQ(count_matching(shapes, t + "attention_norms.", ".weight"), blocks - 1);
    EXPECT_EQ(count_matching(shapes, t + "ffn_norms.", ".weight"), blocks);
    EXPECT_EQ(count_matching(shapes, t + "qkv.", ".weight"), blocks);
    EXPECT_EQ(count_matching(shapes, t + "ffn_in.", ".weight"), blocks);
    EXPECT_EQ(count_matching(shapes, t + "ffn_out.", ".weight"), blocks);
  }
}

TEST(ModelsFtTransformer, DefaultThreeBlocks) {
  Config config;
  MultiModalNet net(Names{"ft_transformer"}, tabular_context(), config);
  const Shapes shapes = parameter_shapes(*net);
  EXPECT_EQ(count_matching(shapes, "ft_transformer.transformer.qkv.", ".weight"), 3);
  EXPECT_EQ(count_matching(shapes, "ft_transformer.transformer.attention_norms.", ".weight"), 2);
  EXPECT_EQ(shapes.at("ft_transformer.transformer.qkv.0.weight"), (Vec{3 * 192, 192}));
  EXPECT_EQ(shapes.at("ft_transformer.transformer.ffn_in.0.weight"), (Vec{2 * 192, 192}));
  EXPECT_EQ(shapes.at("ft_transformer.transformer.ffn_out.0.weight"), (Vec{192, 192}));
}

TEST(ModelsFtTransformer, GegluFfnShapes) {
  Config config;
  config.set("model.ft_transformer.ffn_hidden_size", 40);
  MultiModalNet net(Names{"ft_transformer"}, tabular_context(), config);
  const Shapes shapes = parameter_shapes(*net);
  for (int b = 0; b < 3; ++b) {
    const std::string i = std::to_string(b);
    EXPECT_EQ(shapes.at("ft_transformer.transformer.ffn_in." + i + ".weight"), (Vec{2 * 40, 192}));
    EXPECT_EQ(shapes.at("ft_transformer.transformer.ffn_out." + i + ".weight"), (Vec{192, 40}));
  }
}

TEST(ModelsFtTransformer, EightHeadsByDefault) {
  // 12 is not divisible by the default 8 heads.
  Config config;
  config.set("model.ft_transformer.hidden_size", 12);
  const std::string message = error_of([&] { MultiModalNet(Names{"ft_transformer"}, tabular_context(), config); });
  EXPECT_TRUE(contains(message, "8 attention heads")) << message;
  config.set("model.ft_transformer.attention_num_heads", 4);
  EXPECT_EQ(error_of([&] { MultiModalNet(Names{"ft_transformer"}, tabular_context(), config); }), "NO EXCEPTION");
}

// The FT-Transformer forward pass written from the paper / rtdl: feature tokens,
// CLS appended last, pre-norm blocks (no attention norm in block 0), multi-head
// attention with `heads` heads, GEGLU (value * gelu(gate)), head on the CLS token.
struct FtReference {
  torch::Tensor features, logits;
};
FtReference ft_reference(std::map<std::string, torch::Tensor>& p, const Batch& batch, const ModelContext& context,
                         int64_t blocks, int64_t heads) {
  const std::string f = "ft_transformer.";
  std::vector<torch::Tensor> tokens;
  tokens.push_back(batch.numerical.unsqueeze(-1) * p.at(f + "numerical_tokenizer_weight") +
                   p.at(f + "numerical_tokenizer_bias"));
  std::vector<torch::Tensor> cats;
  int64_t offset = 0;
  for (size_t c = 0; c < context.categorical_cardinalities.size(); ++c) {
    auto rows = batch.categorical.select(1, c) + offset;
    cats.push_back(p.at(f + "categorical_tokenizer_embedding").index_select(0, rows) +
                   p.at(f + "categorical_tokenizer_bias")[c]);
    offset += context.categorical_cardinalities[c];
  }
  tokens.push_back(torch::stack(cats, 1));
  const int64_t rows = batch.numerical.size(0);
  auto cls = p.at(f + "cls_token");
  tokens.push_back(cls.view({1, 1, -1}).expand({rows, 1, cls.size(0)}));
  auto x = torch::cat(tokens, 1);
  const int64_t d = x.size(2), n = x.size(1), hd = d / heads;
  const std::string t = f + "transformer.";
  for (int64_t b = 0; b < blocks; ++b) {
    const std::string i = std::to_string(b);
    auto h = x;
    if (b > 0) {
      const std::string j = std::to_string(b - 1);
      h = ref_layer_norm(x, p.at(t + "attention_norms." + j + ".weight"), p.at(t + "attention_norms." + j + ".bias"));
    }
    auto qkv = ref_linear(h, p.at(t + "qkv." + i + ".weight"), p.at(t + "qkv." + i + ".bias"));
    auto split = [&](int64_t k) {
      return qkv.slice(2, k * d, (k + 1) * d).reshape({rows, n, heads, hd}).permute({0, 2, 1, 3});
    };
    auto q = split(0), k = split(1), v = split(2);
    auto probs = torch::softmax(torch::matmul(q, k.transpose(-1, -2)) / std::sqrt(double(hd)), -1);
    auto mixed = torch::matmul(probs, v).permute({0, 2, 1, 3}).reshape({rows, n, d});
    x = x + ref_linear(mixed, p.at(t + "attention_out." + i + ".weight"), p.at(t + "attention_out." + i + ".bias"));
    h = ref_layer_norm(x, p.at(t + "ffn_norms." + i + ".weight"), p.at(t + "ffn_norms." + i + ".bias"));
    auto u = ref_linear(h, p.at(t + "ffn_in." + i + ".weight"), p.at(t + "ffn_in." + i + ".bias"));
    const int64_t ffn = u.size(2) / 2;
    auto gated = u.slice(2, 0, ffn) * ref_gelu(u.slice(2, ffn, 2 * ffn));
    x = x + ref_linear(gated, p.at(t + "ffn_out." + i + ".weight"), p.at(t + "ffn_out." + i + ".bias"));
  }
  auto last = x.select(1, n - 1);
  FtReference out;
  out.features = torch::relu(ref_layer_norm(last, p.at(f + "head.norm.weight"), p.at(f + "head.norm.bias")));
  out.logits = ref_linear(out.features, p.at(f + "head.linear.weight"), p.at(f + "head.linear.bias"));
  return out;
}

Config small_ft_config() {
  Config config;
  config.set("model.ft_transformer.token_dim", 16);
  config.set("model.ft_transformer.hidden_size", 16);
  config.set("model.ft_transformer.ffn_hidden_size", 12);
  config.set("model.ft_transformer.num_blocks", 2);
  return config;
}

TEST(ModelsFtTransformer, ForwardMatchesReferenceWithEightHeads) {
  const Config config = small_ft_config();
  const ModelContext context = tabular_context();
  torch::manual_seed(21);
  MultiModalNet net(Names{"ft_transformer"}, context, config);
  net->eval();
  // The default init (zero biases, unit norms) hides mistakes: randomize everything.
  {
    torch::NoGradGuard guard;
    for (auto& param : net->parameters()) param.copy_(torch::randn_like(param) * 0.5);
  }
  const Batch batch = make_batch(context, 4, 22);
  const NetOutput out = net->forward(batch);
  auto p = params_of(*net);
  const FtReference eight = ft_reference(p, batch, context, 2, 8);
  EXPECT_TRUE(torch::allclose(out.features, eight.features, 1e-4, 1e-5));
  EXPECT_TRUE(torch::allclose(out.logits, eight.logits, 1e-4, 1e-5));
  // The head count matters: one head would give something else.
  const FtReference one = ft_reference(p, batch, context, 2, 1);
  EXPECT_FALSE(torch::allclose(out.logits, one.logits, 1e-3, 1e-4));
}

TEST(ModelsFtTransformer, ClsTokenDrivesTheOutput) {
  const Config config = small_ft_config();
  const ModelContext context = tabular_context();
  torch::manual_seed(31);
  MultiModalNet net(Names{"ft_transformer"}, context, config);
  net->eval();
  const Batch batch = make_batch(context, 3, 32);
  const auto before = net->forward(batch).logits.clone();
  auto params = net->named_parameters();
  {
    torch::NoGradGuard guard;
    params["ft_transformer.cls_token"].add_(1.0);
  }
  const auto after = net->forward(batch).logits;
  EXPECT_FALSE(torch::allclose(before, after, 1e-4, 1e-5));
}

TEST(ModelsFtTransformer, OutputIgnoresColumnOrderBeyondTokenizer) {
  // No positional information: permuting the numerical columns together with their
  // tokenizer rows leaves the CLS output unchanged; permuting the columns alone does not.
  const Config config = small_ft_config();
  const ModelContext context = tabular_context();
  torch::manual_seed(41);
  MultiModalNet net(Names{"ft_transformer"}, context, config);
  net->eval();
  const Batch batch = make_batch(context, 4, 42);
  const auto reference = net->forward(batch).logits.clone();
  const auto order = torch::tensor(std::vector<int64_t>{2, 0, 1});
  Batch permuted = batch;
  permuted.numerical = batch.numerical.index_select(1, order);
  const auto columns_only = net->forward(permuted).logits.clone();
  EXPECT_FALSE(torch::allclose(reference, columns_only, 1e-4, 1e-5));
  auto params = net->named_parameters();
  {
    torch::NoGradGuard guard;
    for (const char* name : {"ft_transformer.numerical_tokenizer_weight", "ft_transformer.numerical_tokenizer_bias"}) {
      auto& t = params[name];
      t.copy_(t.index_select(0, order));
    }
  }
  EXPECT_TRUE(torch::allclose(reference, net->forward(permuted).logits, 1e-4, 1e-5));
}

// ------------------------------------------------------------ aux losses

TEST(ModelsAux, AuxLossWeightAddsPerBackboneLogits) {
  Config config;
  config.set("model.fusion_mlp.aux_loss_weight", 0.5);
  const ModelContext context = tabular_context();
  torch::manual_seed(51);
  MultiModalNet net(Names{"categorical_mlp", "numerical_mlp", "fusion_mlp"}, context, config);
  net->eval();
  EXPECT_DOUBLE_EQ(net->aux_loss_weight(), 0.5);
  const Batch batch = make_batch(context, 5, 52);
  const NetOutput out = net->forward(batch);
  ASSERT_EQ(out.aux_logits.size(), 2u);
  for (const auto& aux : out.aux_logits) EXPECT_EQ(aux.sizes().vec(), (Vec{5, 3}));
  // The second one is numerical_mlp's own head: Linear -> LeakyReLU -> head.
  auto p = params_of(*net);
  auto expected = ref_linear(ref_mlp(p, "numerical_mlp.mlp", batch.numerical, false), p.at("numerical_mlp.head.weight"),
                             p.at("numerical_mlp.head.bias"));
  EXPECT_TRUE(torch::allclose(out.aux_logits[1], expected, 1e-4, 1e-5));
}

TEST(ModelsAux, NullAuxLossWeightGivesNone) {
  Config config;
  EXPECT_TRUE(config.is_null("model.fusion_mlp.aux_loss_weight"));
  const ModelContext context = tabular_context();
  MultiModalNet net(Names{"categorical_mlp", "numerical_mlp", "fusion_mlp"}, context, config);
  EXPECT_TRUE(net->forward(make_batch(context, 2, 53)).aux_logits.empty());
  EXPECT_EQ(net->aux_loss_weight(), 0.0);
}

TEST(ModelsAux, FusionTransformerAuxLossWeight) {
  Config config;
  config.set("model.fusion_transformer.aux_loss_weight", 0.25);
  const ModelContext context = tabular_context();
  MultiModalNet net(Names{"categorical_mlp", "numerical_mlp", "fusion_transformer"}, context, config);
  EXPECT_DOUBLE_EQ(net->aux_loss_weight(), 0.25);
  EXPECT_EQ(net->forward(make_batch(context, 2, 54)).aux_logits.size(), 2u);
  // The fusion_mlp key does not apply to fusion_transformer.
  Config other;
  other.set("model.fusion_mlp.aux_loss_weight", 0.25);
  MultiModalNet net2(Names{"categorical_mlp", "numerical_mlp", "fusion_transformer"}, context, other);
  EXPECT_TRUE(net2->forward(make_batch(context, 2, 54)).aux_logits.empty());
}

// ------------------------------------------------------------ weight decay

TEST(ModelsNoDecay, ParameterNames) {
  EXPECT_TRUE(is_no_decay_parameter("x.bias"));
  EXPECT_TRUE(is_no_decay_parameter("ffn_norms.0.weight"));
  EXPECT_TRUE(is_no_decay_parameter("cls_token"));
  EXPECT_TRUE(is_no_decay_parameter("numerical_tokenizer_weight"));
  EXPECT_TRUE(is_no_decay_parameter("ft_transformer.categorical_tokenizer_embedding"));
  EXPECT_TRUE(is_no_decay_parameter("fusion_transformer.cls_token"));
  EXPECT_TRUE(is_no_decay_parameter("categorical_mlp.aggregator.norms.0.weight"));
  EXPECT_TRUE(is_no_decay_parameter("ft_transformer.head.norm.weight"));
  EXPECT_TRUE(is_no_decay_parameter("hf_text.model.encoder.layer.0.output.LayerNorm.weight"));
  EXPECT_FALSE(is_no_decay_parameter("linears.0.weight"));
  EXPECT_FALSE(is_no_decay_parameter("embeddings.0.weight"));
  EXPECT_FALSE(is_no_decay_parameter("numerical_mlp.mlp.linears.0.weight"));
  EXPECT_FALSE(is_no_decay_parameter("ft_transformer.transformer.qkv.0.weight"));
  EXPECT_FALSE(is_no_decay_parameter("fusion_mlp.head.weight"));
}

TEST(ModelsNoDecay, EveryOneDimensionalParameterOfTheModelsIsExempt) {
  // In these models every 1-D parameter is a bias, a norm weight or the CLS token;
  // every 2-D one is a weight matrix, an embedding or a tokenizer parameter.
  Config config;
  const ModelContext context = tabular_context();
  MultiModalNet net(Names{"categorical_mlp", "numerical_mlp", "ft_transformer", "fusion_transformer"}, context,
                    config);
  int exempt_2d = 0;
  for (const auto& item : net->named_parameters()) {
    SCOPED_TRACE(item.key());
    if (item.value().dim() == 1) {
      EXPECT_TRUE(is_no_decay_parameter(item.key()));
    } else if (contains(item.key(), "_tokenizer_")) {
      EXPECT_TRUE(is_no_decay_parameter(item.key()));
      ++exempt_2d;
    } else {
      EXPECT_FALSE(is_no_decay_parameter(item.key()));
    }
  }
  EXPECT_EQ(exempt_2d, 4);  // numerical weight/bias, categorical embedding/bias
}

// ------------------------------------------------------------ determinism

TEST(ModelsDeterminism, EvalIsDeterministicTrainUsesDropout) {
  Config config;
  config.set("model.fusion_mlp.drop_rate", 0.5);
  config.set("model.numerical_mlp.drop_rate", 0.5);
  const ModelContext context = tabular_context();
  MultiModalNet net(Names{"categorical_mlp", "numerical_mlp", "fusion_mlp"}, context, config);
  const Batch batch = make_batch(context, 8, 61);
  net->eval();
  const auto a = net->forward(batch).logits.clone();
  const auto b = net->forward(batch).logits.clone();
  EXPECT_TRUE(torch::equal(a, b));
  net->train();
  const auto c = net->forward(batch).logits.clone();
  const auto d = net->forward(batch).logits.clone();
  EXPECT_FALSE(torch::allclose(c, d));
  EXPECT_FALSE(torch::allclose(a, c));
}

TEST(ModelsDeterminism, FtTransformerEvalIsDeterministic) {
  Config config;
  config.set("model.ft_transformer.attention_dropout", 0.5);
  config.set("model.ft_transformer.ffn_dropout", 0.5);
  const ModelContext context = tabular_context();
  MultiModalNet net(Names{"ft_transformer"}, context, config);
  const Batch batch = make_batch(context, 6, 62);
  net->eval();
  EXPECT_TRUE(torch::equal(net->forward(batch).logits, net->forward(batch).logits));
  net->train();
  EXPECT_FALSE(torch::allclose(net->forward(batch).logits, net->forward(batch).logits));
}

}  // namespace
}  // namespace automm
