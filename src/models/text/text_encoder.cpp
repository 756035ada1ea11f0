#include "text_encoder.h"
#include "checkpoints/hf_checkpoint.h"
#include "config/json_text.h"

#include <filesystem>
#include <fstream>

#include <stdexcept>

#include "bert_encoder.h"
#include "deberta_v2_encoder.h"
#include "distilbert_encoder.h"
#include "mpnet_encoder.h"

namespace automm {
namespace {

struct EncoderEntry {
  std::function<std::shared_ptr<TextEncoderImpl>(const nlohmann::json&)> make;
  std::function<TextModelLimits(const nlohmann::json&)> limits;
};

std::shared_ptr<TextEncoderImpl> make_bert_family(const nlohmann::json& config) {
  return std::make_shared<BertEncoderImpl>(BertConfig::from_json(config));
}

TextModelLimits bert_family_limits(const nlohmann::json& json) {
  const BertConfig config = BertConfig::from_json(json);
  // RoBERTa-style position tables start after the padding id.
  const int64_t offset = config.uses_roberta_positions() ? config.pad_token_id + 1 : 0;
  return {config.max_position_embeddings - offset, config.type_vocab_size};
}

// model_type (config.json) -> encoder.
const std::map<std::string, EncoderEntry>& encoder_registry() {
  static const EncoderEntry bert_family{make_bert_family, bert_family_limits};
  static const std::map<std::string, EncoderEntry> registry = {
      {"bert", bert_family},
      {"deberta-v2",
       {make_deberta_v2_encoder,
        [](const nlohmann::json& json) {
          const DebertaV2Config config = DebertaV2Config::from_json(json);
          return TextModelLimits{config.max_position_embeddings, config.type_vocab_size};
        }}},
      {"distilbert",
       {make_distilbert_encoder,
        [](const nlohmann::json& json) {
          return TextModelLimits{DistilBertConfig::from_json(json).max_position_embeddings, 0};
        }}},
      {"electra", bert_family},
      {"mpnet",
       {make_mpnet_encoder,
        [](const nlohmann::json& json) {
          // transformers' MPNet counts positions from padding index 1 + 1.
          return TextModelLimits{MPNetConfig::from_json(json).max_position_embeddings - 2, 0};
        }}},
      {"roberta", bert_family},
      {"xlm-roberta", bert_family},
  };
  return registry;
}

const EncoderEntry& find_encoder(const nlohmann::json& config) {
  const std::string type = config.is_object() ? config.value("model_type", "") : "";
  const auto it = encoder_registry().find(type);
  if (it == encoder_registry().end()) {
    std::string known;
    for (const auto& [name, entry] : encoder_registry()) known += (known.empty() ? "" : ", ") + name;
    throw std::invalid_argument("Hugging Face config.json: model_type '" + type +
                                "' is not a supported text encoder; supported: " + known);
  }
  return it->second;
}

}  // namespace

std::vector<std::string> supported_text_model_types() {
  std::vector<std::string> types;
  for (const auto& [type, factory] : encoder_registry()) types.push_back(type);
  return types;
}

std::shared_ptr<TextEncoderImpl> make_text_encoder(const nlohmann::json& config) {
  return find_encoder(config).make(config);
}

TextModelLimits text_model_limits(const nlohmann::json& config) { return find_encoder(config).limits(config); }

TextModelLimits read_text_model_limits(const std::string& checkpoint_dir) {
  return text_model_limits(read_checkpoint_config(checkpoint_dir));
}

torch::Tensor TextEncoderImpl::run_block(torch::nn::Module& block, const CheckpointedBlock& block_fn,
                                         const torch::Tensor& hidden) {
  if (!gradient_checkpointing_ || !is_training()) return block_fn(hidden);
  return checkpointed(block_fn, hidden, block.parameters());
}

}  // namespace automm
