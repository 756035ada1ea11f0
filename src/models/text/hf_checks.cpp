#include "hf_checks.h"

#include <stdexcept>

#include "hf_common.h"

namespace automm {
namespace hf {

void require_positive(const std::string& field, int64_t value) {
  if (value <= 0) bad_field(field, "must be positive, got " + std::to_string(value));
}

void require_probability(const std::string& field, double value) {
  if (!(value >= 0.0 && value < 1.0)) bad_field(field, "must lie in [0, 1), got " + std::to_string(value));
}

void require_activation(const std::string& field, const std::string& name) {
  try {
    activation_by_name(name);
  } catch (const std::invalid_argument& e) {
    bad_field(field, e.what());
  }
}

void require_multiple(const std::string& field, int64_t value, const std::string& divisor_field,
                      int64_t divisor) {
  if (divisor > 0 && value % divisor != 0) {
    bad_field(field, std::to_string(value) + " is not a multiple of " + divisor_field + " " +
                         std::to_string(divisor));
  }
}

EncoderInputs check_encoder_inputs(const std::string& encoder, const torch::Tensor& input_ids,
                                   const torch::Tensor& token_type_ids, const torch::Tensor& attention_mask,
                                   int64_t max_sequence_length) {
  auto fail = [&encoder](const std::string& why) { throw std::invalid_argument(encoder + ": " + why); };
  if (!input_ids.defined()) fail("input_ids is undefined");
  if (input_ids.dim() != 2)
    fail("input_ids must be [batch, seq], got shape " + shape_string(input_ids.sizes()));
  if (input_ids.is_floating_point() || input_ids.is_complex() || input_ids.scalar_type() == torch::kBool) {
    fail("input_ids must be an integer tensor, got " + std::string(c10::toString(input_ids.scalar_type())));
  }
  const int64_t seq = input_ids.size(1);
  if (seq > max_sequence_length) {
    fail("sequence length " + std::to_string(seq) + " exceeds the " + std::to_string(max_sequence_length) +
         " positions of this model; truncate the input");
  }
  auto check_shape = [&](const torch::Tensor& tensor, const std::string& what) {
    if (tensor.defined() && tensor.sizes() != input_ids.sizes()) {
      fail(what + " has shape " + shape_string(tensor.sizes()) + " but input_ids has shape " +
           shape_string(input_ids.sizes()));
    }
  };
  check_shape(token_type_ids, "token_type_ids");
  check_shape(attention_mask, "attention_mask");
  EncoderInputs inputs;
  inputs.input_ids = input_ids.to(torch::kLong);
  inputs.attention_mask =
      attention_mask.defined() ? attention_mask.to(torch::kLong) : torch::ones_like(inputs.input_ids);
  return inputs;
}

}  // namespace hf
}  // namespace automm
