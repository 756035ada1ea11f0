// Backbones (per modality) and fusion models, chosen by name from a registry,
// and the network that joins them.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "automm/config.h"
#include "data/batch.h"

namespace automm {

// An image model's architecture (a timm name) and where its pretrained
// weights are (a file or folder; empty = random initialisation).
struct ImageModelSpec {
  std::string architecture;
  std::string weights;
};

struct BackboneOutput {
  torch::Tensor features;  // [batch, feature_dim]
  torch::Tensor logits;    // [batch, num_outputs]: the backbone's own head
};

// What a model needs to know about the data it is built for.
struct ModelContext {
  int64_t num_numerical = 0;
  std::vector<int64_t> categorical_cardinalities;  // embedding rows per column
  int64_t num_outputs = 1;                          // classes, or 1 for regression
  // Text models: the checkpoint folder (config.json and tokenizer files) of
  // each, by model name.
  std::map<std::string, std::string> checkpoint_dirs;
  // Whether text models load their checkpoint's pretrained weights: true when
  // a fit starts, false when the weights come from a saved predictor.
  bool load_pretrained = true;
  // Image models by model name.
  std::map<std::string, ImageModelSpec> image_models;
};

class BackboneImpl : public torch::nn::Module {
 public:
  virtual BackboneOutput forward(const Batch& batch) = 0;
  virtual int64_t feature_dim() const = 0;
  // The backbone's head on features [batch, feature_dim] -> logits (what
  // forward() does after its features; distillation's softmax regression runs a
  // teacher's head on a student's features).
  virtual torch::Tensor classify(const torch::Tensor& features) = 0;
  // Pretrained backbones get layerwise-decay ids; models trained from scratch
  // (tabular, fusion) are heads in AutoMM's sense (id 0).
  virtual bool is_pretrained() const { return false; }
};

// Builds a backbone by its base name ("categorical_mlp", "numerical_mlp",
// "ft_transformer", "hf_text"). `prefix` is the model's key in model.names (e.g.
// "numerical_mlp_2"): its settings are read from model.<base name>.*.
using BackboneFactory = std::function<std::shared_ptr<BackboneImpl>(
    const std::string& prefix, const ModelContext& context, const Config& config)>;
std::shared_ptr<BackboneImpl> make_backbone(const std::string& base_name, const std::string& prefix,
                                            const ModelContext& context, const Config& config);
bool is_backbone_name(const std::string& base_name);
bool is_fusion_name(const std::string& base_name);
// "hf_text_2" -> "hf_text": the registry name a model.names entry refers to.
std::string model_base_name(const std::string& name);

struct NetOutput {
  torch::Tensor logits;                    // [batch, num_outputs]
  torch::Tensor features;                  // [batch, embedding_dim]: the embedding
  std::vector<torch::Tensor> aux_logits;   // per-backbone logits (for aux_loss_weight)
};

// The whole network: backbones, then a fusion model when more than one remains.
class MultiModalNetImpl : public torch::nn::Module {
 public:
  MultiModalNetImpl(const std::vector<std::string>& model_names, const ModelContext& context,
                    const Config& config);
  NetOutput forward(const Batch& batch);
  // The final head (the fusion model's, or the single backbone's) on embedding
  // features [batch, embedding_dim] -> logits.
  torch::Tensor classify(const torch::Tensor& features);
  const std::vector<std::string>& model_names() const { return names_; }
  // Weight of the per-backbone losses (fusion_*.aux_loss_weight), 0 when off.
  double aux_loss_weight() const { return aux_loss_weight_; }
  // The names of the backbones that start from pretrained weights (their
  // parameters get layerwise-decay ids; the rest are heads in AutoMM's sense).
  std::vector<std::string> pretrained_backbones() const;

 private:
  std::vector<std::string> names_;
  std::vector<std::shared_ptr<BackboneImpl>> backbones_;
  std::vector<std::string> backbone_names_;
  std::shared_ptr<torch::nn::Module> fusion_;
  std::function<NetOutput(const std::vector<BackboneOutput>&)> fuse_;
  std::function<torch::Tensor(const torch::Tensor&)> fusion_classify_;
  double aux_loss_weight_ = 0.0;
};
TORCH_MODULE(MultiModalNet);

// Which models of model.names apply to the data (AutoMM's configs/model/default.yaml and select_model): a backbone is
// dropped when its modality is absent; the fusion model when one backbone remains.
struct ModalityPresence {
  bool numerical = false, categorical = false, text = false, image = false;
};
std::vector<std::string> select_models(const std::vector<std::string>& names,
                                       const ModalityPresence& presence);

}  // namespace automm
