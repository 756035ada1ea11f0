// Checks shared by the DistilBERT and MPNet encoders: config.json value ranges
// whose errors name the field, and the validation of TextEncoderImpl::forward's
// arguments. (hf_common.h has the field readers; deberta_v2_encoder.cpp and
// bert_encoder.cpp still keep local copies of these checks and can switch.)
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>

namespace automm {
namespace hf {

// Each throws std::invalid_argument("Hugging Face config.json: field 'FIELD' ...").
void require_positive(const std::string& field, int64_t value);
void require_probability(const std::string& field, double value);            // in [0, 1)
void require_activation(const std::string& field, const std::string& name);  // an activation_by_name name
// `divisor` (the field named `divisor_field`) must divide `value`.
void require_multiple(const std::string& field, int64_t value, const std::string& divisor_field,
                      int64_t divisor);

struct EncoderInputs {
  torch::Tensor input_ids;       // [batch, seq] int64
  torch::Tensor attention_mask;  // [batch, seq] int64, 1 = token, 0 = padding; all ones when none was given
};

// Validates TextEncoderImpl::forward's arguments for the encoder named
// `encoder` (the messages start with it): input_ids [batch, seq] of an
// integer type and at most `max_sequence_length` tokens; token_type_ids and
// attention_mask, when defined, of input_ids' shape. Token types are checked
// only: encoders without token types ignore them, as transformers does.
// Throws std::invalid_argument.
EncoderInputs check_encoder_inputs(const std::string& encoder, const torch::Tensor& input_ids,
                                   const torch::Tensor& token_type_ids, const torch::Tensor& attention_mask,
                                   int64_t max_sequence_length);

}  // namespace hf
}  // namespace automm
