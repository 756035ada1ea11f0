// FT-Transformer (Gorishniy et al. 2021, as in AutoMM): every numerical and
// categorical column becomes a token, a CLS token is appended last, pre-norm
// transformer blocks mix them, and the head reads the CLS token.
#include <cmath>

#include "backbones.h"
#include "layers.h"

namespace automm {
namespace {

class FtTransformerImpl : public BackboneImpl {
 public:
  FtTransformerImpl(const ModelContext& context, const Config& config) {
    const std::string p = "model.ft_transformer.";
    const int64_t token_dim = config.get_int(p + "token_dim");
    TransformerOptions options;
    options.hidden_size = config.get_int(p + "hidden_size");
    options.num_blocks = config.get_int(p + "num_blocks");
    options.num_heads = config.get_int(p + "attention_num_heads");
    options.ffn_hidden_size = config.get_int(p + "ffn_hidden_size");
    options.attention_dropout = config.get_double(p + "attention_dropout");
    options.ffn_dropout = config.get_double(p + "ffn_dropout");
    options.residual_dropout = config.get_double(p + "residual_dropout");
    hidden_ = options.hidden_size;
    // rtdl's initialisation: uniform(-1/sqrt(d), 1/sqrt(d)) for tokenizer parameters.
    const double bound = 1.0 / std::sqrt(static_cast<double>(token_dim));
    auto uniform = [bound](std::vector<int64_t> shape) {
      return torch::empty(shape).uniform_(-bound, bound);
    };
    const int64_t num_numerical = context.num_numerical;
    if (num_numerical > 0) {
      numerical_weight_ = register_parameter("numerical_tokenizer_weight", uniform({num_numerical, token_dim}));
      numerical_bias_ = register_parameter("numerical_tokenizer_bias", uniform({num_numerical, token_dim}));
    }
    const auto& cards = context.categorical_cardinalities;
    if (!cards.empty()) {
      std::vector<int64_t> offsets(cards.size(), 0);
      for (size_t i = 1; i < cards.size(); ++i) offsets[i] = offsets[i - 1] + cards[i - 1];
      category_offsets_ = torch::tensor(offsets);  // not a buffer: it must stay int64
      int64_t total = 0;
      for (int64_t c : cards) total += c;
      categorical_embedding_ = register_parameter("categorical_tokenizer_embedding", uniform({total, token_dim}));
      categorical_bias_ = register_parameter("categorical_tokenizer_bias",
                                             uniform({static_cast<int64_t>(cards.size()), token_dim}));
    }
    cls_token_ = register_parameter("cls_token", uniform({token_dim}));
    if (token_dim != hidden_) projection_ = register_module("projection", torch::nn::Linear(token_dim, hidden_));
    transformer_ = register_module("transformer", TokenTransformer(options));
    head_ = register_module("head", TransformerHead(hidden_, context.num_outputs));
  }

  BackboneOutput forward(const Batch& batch) override {
    std::vector<torch::Tensor> tokens;  // each [batch, n, token_dim]
    if (numerical_weight_.defined())
      tokens.push_back(batch.numerical.unsqueeze(-1) * numerical_weight_ + numerical_bias_);
    if (categorical_embedding_.defined()) {
      auto rows = batch.categorical + category_offsets_.to(batch.categorical.device());
      tokens.push_back(torch::embedding(categorical_embedding_, rows) + categorical_bias_);
    }
    const int64_t batch_size = tokens.front().size(0);
    tokens.push_back(cls_token_.view({1, 1, -1}).expand({batch_size, 1, cls_token_.size(0)}));
    auto x = torch::cat(tokens, 1);
    if (projection_) x = projection_(x);
    x = transformer_(x);
    auto cls = x.select(1, x.size(1) - 1);  // CLS token is last
    auto features = head_->features(cls);
    return {features, head_->classify(features)};
  }
  torch::Tensor classify(const torch::Tensor& features) override { return head_->classify(features);
  }
  int64_t feature_dim() const override { return hidden_; }

 private:
  int64_t hidden_ = 0;
  torch::Tensor numerical_weight_, numerical_bias_;
  torch::Tensor categorical_embedding_, categorical_bias_, category_offsets_;
  torch::Tensor cls_token_;
  torch::nn::Linear projection_{nullptr};
  TokenTransformer transformer_{nullptr};
  TransformerHead head_{nullptr};
};

}  // namespace

std::shared_ptr<BackboneImpl> make_ft_transformer(const std::string&, const ModelContext& context,
                                                  const Config& config) {
  if (context.num_numerical == 0 && context.categorical_cardinalities.empty())
    throw std::invalid_argument("ft_transformer needs at least one numerical or categorical column");
  return std::make_shared<FtTransformerImpl>(context, config);
}

}  // namespace automm
