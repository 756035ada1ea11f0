// CategoricalMLP: an embedding and an MLP per column, pooled (concat or mean),
// then an aggregating MLP and a linear head.
#include <algorithm>
#include <cmath>

#include "backbones.h"
#include "layers.h"

namespace automm {
namespace {

// AutoMM's embedding width for a column with n categories.
int64_t embedding_dim(int64_t categories) {
  const double dim = 1.6 * std::pow(static_cast<double>(categories), 0.56);
  return std::max<int64_t>(2, std::min<int64_t>(100, static_cast<int64_t>(dim)));
}

class CategoricalMlpImpl : public BackboneImpl {
 public:
  CategoricalMlpImpl(const ModelContext& context, const Config& config)
      : pool_mean_(config.get_string("data.column_features_pooling_mode") == "mean") {
    embeddings_ = register_module("embeddings", torch::nn::ModuleList());
    column_mlps_ = register_module("column_mlps", torch::nn::ModuleList());
    const MlpOptions base = mlp_options_from(config, "categorical_mlp", 0);
    hidden_ = base.hidden_features;
    for (int64_t categories : context.categorical_cardinalities) {
      const int64_t dim = embedding_dim(categories);
      embeddings_->push_back(torch::nn::Embedding(categories, dim));
      MlpOptions column = base;
      column.in_features = dim;
      column_mlps_->push_back(Mlp(column));
    }
    const int64_t columns = static_cast<int64_t>(context.categorical_cardinalities.size());
    // As AutoMM: the aggregator keeps its input width, then projects to hidden_size.
    MlpOptions aggregate = base;
    aggregate.in_features = pool_mean_ ? hidden_ : hidden_ * columns;
    aggregate.hidden_features = aggregate.in_features;
    aggregate.out_features = aggregate.in_features == hidden_ ? 0 : hidden_;
    aggregator_ = register_module("aggregator", Mlp(aggregate));
    head_ = register_module("head", torch::nn::Linear(hidden_, context.num_outputs));
  }

  BackboneOutput forward(const Batch& batch) override {
    std::vector<torch::Tensor> per_column;  // each [batch, hidden]
    for (size_t c = 0; c < embeddings_->size(); ++c) {
      auto codes = batch.categorical.select(1, static_cast<int64_t>(c));
      auto embedded = embeddings_[c]->as<torch::nn::Embedding>()->forward(codes);
      per_column.push_back(column_mlps_[c]->as<Mlp>()->forward(embedded));
    }
    auto pooled = pool_mean_ ? torch::stack(per_column, 1).mean(1) : torch::cat(per_column, 1);
    auto features = aggregator_(pooled);
    return {features, head_(features)};
  }
  torch::Tensor classify(const torch::Tensor& features) override { return head_(features);
  }
  int64_t feature_dim() const override { return hidden_; }

 private:
  bool pool_mean_;
  int64_t hidden_ = 0;
  torch::nn::ModuleList embeddings_{nullptr}, column_mlps_{nullptr};
  Mlp aggregator_{nullptr};
  torch::nn::Linear head_{nullptr};
};

}  // namespace

std::shared_ptr<BackboneImpl> make_categorical_mlp(const std::string&, const ModelContext& context,
                                                   const Config& config) {
  return std::make_shared<CategoricalMlpImpl>(context, config);
}

}  // namespace automm
