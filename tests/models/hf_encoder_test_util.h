// Helpers shared by the Hugging Face text encoder tests (test_bert_encoder.cpp,
// test_deberta_v2_encoder.cpp, test_distilbert_encoder.cpp, test_mpnet_encoder.cpp):
// randomized weights, the Python reference run and the parity comparison with
// its control, masked comparisons, the checks every encoder's forward and
// loader must pass, CPU bf16 autocast and gradient checkpointing checks.
#pragma once

#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#ifndef AUTOMM_SOURCE_DIR
#include "automm_test_paths.h"
#endif

#include "automm/weights_io.h"
#include "test_util.h"
#include "models/text/text_encoder.h"

namespace automm::encoder_test {

using automm::testing::contains;
using automm::testing::error_of;

using nlohmann::json;

inline StateDict state_of(torch::nn::Module& module, const std::string& prefix = "") {
  StateDict weights;
  for (const auto& item : module.named_parameters())
    weights[prefix + item.key()] = item.value().detach().clone();
  return weights;
}

// Weights far from the 0.02-std init, so every term moves the output: norm
// scales near 1, biases ~0.1, embedding and bias tables ~1, matrices 1 / sqrt(fan_in).
inline void randomize(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& item : module.named_parameters()) {
    auto& p = item.value();
    const std::string& name = item.key();
    const bool is_norm = contains(name, "LayerNorm.weight") || contains(name, "layer_norm.weight");
    if (p.dim() == 1 && is_norm) {
      p.copy_(1.0 + 0.2 * torch::randn_like(p));
    } else if (p.dim() == 1) {
      p.copy_(0.1 * torch::randn_like(p));
    } else if (contains(name, "embeddings.weight") || contains(name, "attention_bias.weight")) {
      p.copy_(torch::randn_like(p));
    } else {
      p.copy_(torch::randn_like(p) / std::sqrt(static_cast<double>(p.numel() / p.size(0))));
    }
  }
}

// input_ids [rows, seq] from [first_token, vocab) with row r holding lengths[r]
// tokens followed by `pad_id`; attention_mask 1 on the tokens.
inline StateDict padded_inputs(int64_t vocab_size, int64_t seq, const std::vector<int64_t>& lengths,
                               int64_t first_token, int64_t pad_id, uint64_t seed) {
  torch::manual_seed(seed);
  const int64_t rows = static_cast<int64_t>(lengths.size());
  auto ids = torch::randint(first_token, vocab_size, {rows, seq}, torch::kLong);
  auto mask = torch::zeros({rows, seq}, torch::kLong);
  for (int64_t row = 0; row < rows; ++row) {
    mask[row].slice(0, 0, lengths[row]).fill_(1);
    ids[row].slice(0, lengths[row]).fill_(pad_id);
  }
  return {{"input_ids", ids}, {"attention_mask", mask}};
}

// Max |a - b| over the positions where mask == 1 (a, b [batch, seq, hidden]).
inline double masked_max_abs_diff(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& mask) {
  auto valid = mask.to(torch::kBool).unsqueeze(-1).expand_as(a);
  return (a - b).abs().masked_select(valid).max().item<double>();
}

// One parity case: what the reference script reads from DIR/NAME.
struct ReferenceCase {
  json config;
  StateDict weights;  // Hugging Face names, no model prefix
  StateDict inputs;   // input_ids, attention_mask
};

// The outcome of one run of a reference script over all its cases; the folder
// is removed with it.
struct ReferenceRun {
  std::filesystem::path dir;  // DIR/NAME/outputs.safetensors per case
  std::string skip_reason;    // non-empty: /usr/bin/python3 has no torch
  std::string error;          // non-empty: writing a case or the script failed

  ReferenceRun() = default;
  ReferenceRun(const ReferenceRun&) = delete;
  ReferenceRun& operator=(const ReferenceRun&) = delete;
  ~ReferenceRun() {
    std::error_code ignored;
    if (!dir.empty()) std::filesystem::remove_all(dir, ignored);
  }
  StateDict outputs(const std::string& name) const {
    return load_safetensors((dir / name / "outputs.safetensors").string());
  }
};

// Writes every case and runs tests/models/SCRIPT (by /usr/bin/python3) once
// over all of them: `SCRIPT DIR NAME...`. Without cases the script writes its
// own (bert_reference.py).
inline void run_reference(const std::string& script, const std::map<std::string, ReferenceCase>& cases,
                          ReferenceRun& run) {
  run.skip_reason = testing::python_reference_missing("torch, numpy", "python3-torch", "the " + script + " parity tests");
  if (!run.skip_reason.empty()) return;
  std::random_device device;
  run.dir = std::filesystem::temp_directory_path() / ("automm_" + script + "_" + std::to_string(device()));
  std::string command = "/usr/bin/python3 '" + std::string(AUTOMM_SOURCE_DIR) + "/tests/models/" + script +
                        "' '" + run.dir.string() + "'";
  try {
    std::filesystem::create_directories(run.dir);  // the log lands here even without cases
    for (const auto& [name, item] : cases) {
      const auto folder = run.dir / name;
      std::filesystem::create_directories(folder);
      save_safetensors(item.weights, (folder / "weights.safetensors").string());
      save_safetensors(item.inputs, (folder / "inputs.safetensors").string());
      std::ofstream(folder / "config.json") << item.config.dump(1);
      command += " '" + name + "'";
    }
  } catch (const std::exception& e) {
    run.error = std::string("writing the reference cases failed: ") + e.what();
    return;
  }
  run.error = testing::run_reference_command(command, (run.dir / "reference.log").string());
}

// fn() under CPU autocast to bf16; the previous autocast state is restored.
// Returns fn's error message, or "" (then *out holds the result).
inline std::string run_under_bf16_autocast(const std::function<torch::Tensor()>& fn, torch::Tensor* out) {
  const bool was_enabled = at::autocast::is_cpu_enabled();
  const auto previous_dtype = at::autocast::get_autocast_cpu_dtype();
  at::autocast::set_cpu_enabled(true);
  at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
  std::string message = error_of([&] { *out = fn(); });
  at::autocast::set_cpu_enabled(was_enabled);
  at::autocast::set_autocast_cpu_dtype(previous_dtype);
  at::autocast::clear_cache();
  return message;
}

// Gradients of a fixed loss of encoder(inputs), by parameter name; the
// encoder's own gradients are cleared before and after.
inline std::map<std::string, torch::Tensor> gradients(TextEncoderImpl& encoder, const StateDict& inputs) {
  encoder.zero_grad();
  auto hidden = encoder.forward(inputs.at("input_ids"), torch::Tensor(), inputs.at("attention_mask"));
  (hidden.pow(2).mean() + hidden.select(1, 0).sum()).backward();
  std::map<std::string, torch::Tensor> grads;
  for (const auto& item : encoder.named_parameters()) {
    if (item.value().grad().defined()) grads[item.key()] = item.value().grad().clone();
  }
  encoder.zero_grad();
  return grads;
}

// Trains with and without gradient checkpointing (the config must set dropout
// to 0) and expects the same gradient for every trainable parameter.
inline void expect_checkpointing_keeps_gradients(TextEncoderImpl& encoder, const StateDict& inputs) {
  encoder.train();
  encoder.set_gradient_checkpointing(false);
  const auto plain = gradients(encoder, inputs);
  encoder.set_gradient_checkpointing(true);
  const auto checkpointed = gradients(encoder, inputs);
  encoder.set_gradient_checkpointing(false);
  for (const auto& item : encoder.named_parameters()) {
    if (!item.value().requires_grad()) continue;
    const std::string& name = item.key();
    ASSERT_EQ(plain.count(name), 1u) << name;
    ASSERT_EQ(checkpointed.count(name), 1u) << "checkpointing loses the gradient of " << name;
    EXPECT_GT(plain.at(name).abs().sum().item<double>(), 0.0) << name;
    EXPECT_TRUE(torch::allclose(checkpointed.at(name), plain.at(name), 1e-4, 1e-6))
        << name << ": max diff " << (checkpointed.at(name) - plain.at(name)).abs().max().item<double>();
  }
}

// Every trainable parameter gets a non-zero gradient.
inline void expect_backward_reaches_every_parameter(TextEncoderImpl& encoder, const StateDict& inputs) {
  const auto grads = gradients(encoder, inputs);
  for (const auto& item : encoder.named_parameters()) {
    if (!item.value().requires_grad()) continue;
    ASSERT_EQ(grads.count(item.key()), 1u) << item.key();
    EXPECT_GT(grads.at(item.key()).abs().sum().item<double>(), 0.0) << item.key();
  }
}

// For a parity fixture's SetUp: fails the test when the reference run was
// skipped (scripts/setup.sh installs python3-torch) or failed.
inline void expect_reference_ready(const ReferenceRun& run) {
  if (!run.skip_reason.empty()) FAIL() << run.skip_reason;
  ASSERT_TRUE(run.error.empty()) << run.error;
}

// forward(): the encoder's [batch, seq, hidden] output for the reference inputs.
using Forward = std::function<torch::Tensor()>;

// One parity case: forward() (without gradients) against the reference's
// `expected` [batch, seq, hidden]. Prints and records the max abs difference,
// then applies perturb() (a small change to some weights) and expects the
// output to move off `expected` on the real tokens, so the comparison is known
// to notice a change. Returns the max abs difference over all positions
// (padding included: transformers' outputs there are deterministic too).
inline double compare_with_reference(const std::string& name, const Forward& forward, const torch::Tensor& expected,
                                     const torch::Tensor& mask, const std::function<void()>& perturb) {
  torch::NoGradGuard no_grad;
  auto hidden = forward();  // [batch, seq, hidden]
  EXPECT_EQ(hidden.sizes(), expected.sizes());
  EXPECT_GT(expected.abs().max().item<double>(), 0.5);  // the reference computed something
  const double real = masked_max_abs_diff(hidden, expected, mask);
  const double all = (hidden - expected).abs().max().item<double>();
  std::cout << "[ parity   ] " << name << ": max abs diff " << real << " (non-padded), " << all << " (all)"
            << std::endl;
  ::testing::Test::RecordProperty("max_abs_diff_" + name, std::to_string(all));
  perturb();
  EXPECT_GT(masked_max_abs_diff(forward(), expected, mask), 1e-3);
  return all;
}

// Every parameter of `module` equals expected[name]; `what` starts each failure.
inline void expect_parameters_equal(torch::nn::Module& module, const StateDict& expected, const std::string& what) {
  for (const auto& item : module.named_parameters()) {
    ASSERT_EQ(expected.count(item.key()), 1u) << what << item.key();
    EXPECT_TRUE(torch::equal(item.value(), expected.at(item.key()))) << what << item.key();
  }
}

// A failed load copies nothing: `encoder` still holds `before`.
inline void expect_nothing_loaded(torch::nn::Module& encoder, const StateDict& before) {
  expect_parameters_equal(encoder, before, "partially loaded ");
}

// Loading `weights` with `key` replaced by a tensor of `wrong_shape` fails
// naming the key, that shape and the parameter's `expected_shape`, and copies
// nothing.
inline void expect_shape_mismatch_rejected(TextEncoderImpl& encoder, StateDict weights, const std::string& key,
                                           const std::vector<int64_t>& wrong_shape,
                                           const std::vector<int64_t>& expected_shape) {
  auto shape_text = [](const std::vector<int64_t>& shape) {
    std::string text = "[";
    for (size_t i = 0; i < shape.size(); ++i) text += (i > 0 ? ", " : "") + std::to_string(shape[i]);
    return text + "]";
  };
  const auto before = state_of(encoder);
  weights[key] = torch::zeros(wrong_shape);
  auto message = error_of([&] { encoder.load_hf_state_dict(weights); });
  EXPECT_TRUE(contains(message, key)) << message;
  EXPECT_TRUE(contains(message, shape_text(wrong_shape)) && contains(message, shape_text(expected_shape)))
      << message;
  EXPECT_THROW(encoder.load_hf_state_dict(weights), std::runtime_error);
  expect_nothing_loaded(encoder, before);
}

// Two forward() calls differ in train mode and agree in eval mode.
inline void expect_dropout_only_in_train_mode(torch::nn::Module& encoder, const Forward& forward) {
  torch::NoGradGuard no_grad;
  encoder.train();
  EXPECT_FALSE(torch::allclose(forward(), forward()));
  encoder.eval();
  EXPECT_TRUE(torch::equal(forward(), forward()));
}

// forward() under CPU bf16 autocast runs, stays finite and is within 0.25 of
// its fp32 output on the real tokens.
inline void expect_runs_under_bf16_autocast(const Forward& forward, const torch::Tensor& mask) {
  torch::NoGradGuard no_grad;
  auto fp32 = forward();
  torch::Tensor bf16;
  auto message = run_under_bf16_autocast(forward, &bf16);
  ASSERT_TRUE(message.empty()) << message;
  EXPECT_TRUE(torch::isfinite(bf16).all().item<bool>());
  EXPECT_LT(masked_max_abs_diff(bf16.to(torch::kFloat), fp32, mask), 0.25);
}

// encoder.forward(ids, token_type_ids, mask) in eval mode, without gradients.
using EncoderCall =
    std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&)>;

// Changing padded positions (changed_ids / changed_types) moves the real
// tokens' outputs by at most `tolerance`, while without the mask the same
// change reaches them; an undefined mask means no padding. Returns
// forward(ids, types, mask).
inline torch::Tensor expect_mask_hides_padding(const EncoderCall& forward, const torch::Tensor& ids,
                                               const torch::Tensor& types, const torch::Tensor& mask,
                                               const torch::Tensor& changed_ids, const torch::Tensor& changed_types,
                                               double tolerance) {
  torch::NoGradGuard no_grad;
  auto base = forward(ids, types, mask);
  EXPECT_LE(masked_max_abs_diff(forward(changed_ids, changed_types, mask), base, mask), tolerance);
  auto ones = torch::ones_like(mask);
  auto unmasked_base = forward(ids, types, ones);
  EXPECT_GT(masked_max_abs_diff(forward(changed_ids, changed_types, ones), unmasked_base, mask), 1e-3);
  EXPECT_TRUE(torch::allclose(forward(ids, types, torch::Tensor()), unmasked_base));
  return base;
}

// `max_tokens` tokens run; one more fails naming the encoder, the length and the limit.
inline void expect_sequence_limit(TextEncoderImpl& encoder, const std::string& encoder_name, int64_t max_tokens) {
  torch::NoGradGuard no_grad;
  EXPECT_NO_THROW(encoder.forward(torch::full({1, max_tokens}, 3, torch::kLong), {}, {}));
  auto message = error_of([&] { encoder.forward(torch::full({1, max_tokens + 1}, 3, torch::kLong), {}, {}); });
  EXPECT_TRUE(contains(message, encoder_name) && contains(message, "sequence length " + std::to_string(max_tokens + 1)) &&
              contains(message, std::to_string(max_tokens) + " positions"))
      << message;
}

// Token types or a mask of another shape, 1-d or floating ids are rejected;
// int32 ids work like int64. Puts the encoder in eval mode.
inline void expect_rejects_malformed_ids(TextEncoderImpl& encoder) {
  encoder.eval();
  torch::NoGradGuard no_grad;
  auto ids = torch::ones({2, 5}, torch::kLong);
  auto message = error_of([&] { encoder.forward(ids, torch::zeros({2, 4}, torch::kLong), {}); });
  EXPECT_TRUE(contains(message, "token_type_ids")) << message;
  message = error_of([&] { encoder.forward(ids, {}, torch::ones({2, 6}, torch::kLong)); });
  EXPECT_TRUE(contains(message, "attention_mask")) << message;
  message = error_of([&] { encoder.forward(torch::ones({5}, torch::kLong), {}, {}); });
  EXPECT_TRUE(contains(message, "[batch, seq]")) << message;
  message = error_of([&] { encoder.forward(torch::ones({2, 5}), {}, {}); });
  EXPECT_TRUE(contains(message, "integer")) << message;
  EXPECT_TRUE(torch::equal(encoder.forward(torch::full({1, 4}, 3, torch::kInt), {}, {}),
                           encoder.forward(torch::full({1, 4}, 3, torch::kLong), {}, {})));
}

}  // namespace automm::encoder_test
