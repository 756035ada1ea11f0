// Helpers for the text tests: a generated review table whose label depends on
// words in the text, and a small BERT checkpoint folder in Hugging Face's format.
#pragma once

#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "automm/table.h"
#include "automm/weights_io.h"
#include "models/text/bert_encoder.h"
#include "test_util.h"

namespace automm::testing {

inline const std::vector<std::string>& positive_words() {
  static const std::vector<std::string> words = {"excellent", "wonderful", "great", "amazing", "superb", "delightful"};
  return words;
}
inline const std::vector<std::string>& negative_words() {
  static const std::vector<std::string> words = {"terrible", "awful", "horrible", "poor", "dreadful", "disappointing"};
  return words;
}

// review: 6-14 neutral words with one positive or negative word somewhere;
// label "pos" / "neg" follows that word. score (numerical) and color
// (categorical) carry no signal.
inline Table make_review_table(size_t rows, uint64_t seed) {
  static const std::vector<std::string> filler = {
      "the",     "a",     "this",  "that",    "product", "service", "item",   "was",     "is",
      "and",     "it",    "very",  "quite",   "really",  "food",    "place",  "staff",   "delivery",
      "price",   "quality", "experience", "overall", "honestly", "we", "they", "ordered", "again"};
  static const std::vector<std::string> colors = {"red", "green", "blue"};
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<size_t> pick(0, 1 << 20);
  std::normal_distribution<double> normal(0.0, 1.0);
  Column review("review"), score("score"), color("color"), label("label");
  for (size_t r = 0; r < rows; ++r) {
    const bool positive = pick(rng) % 2 == 0;
    std::vector<std::string> words;
    const size_t count = 6 + pick(rng) % 9;
    for (size_t i = 0; i < count; ++i) words.push_back(filler[pick(rng) % filler.size()]);
    const auto& sentiment = positive ? positive_words() : negative_words();
    words.insert(words.begin() + static_cast<long>(pick(rng) % (words.size() + 1)),
                 sentiment[pick(rng) % sentiment.size()]);
    std::string text;
    for (const auto& word : words) text += (text.empty() ? "" : " ") + word;
    review.push(text, true);
    score.push(std::to_string(normal(rng)), true);
    color.push(colors[pick(rng) % colors.size()], true);
    label.push(positive ? "pos" : "neg", true);
  }
  Table table;
  for (Column* column : {&review, &score, &color, &label}) table.add_column(std::move(*column));
  table.source = "generated reviews";
  return table;
}

// A BERT checkpoint folder as Hugging Face writes it: config.json, vocab.txt
// ([PAD] [UNK] [CLS] [SEP] [MASK] + `words`) and model.safetensors with random
// weights under the "bert." prefix. Returns the config.
inline nlohmann::json write_bert_checkpoint(const std::string& folder, const std::vector<std::string>& words,
                                            uint64_t seed = 1, int64_t max_positions = 64) {
  std::filesystem::create_directories(folder);
  std::string vocab = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n";
  for (const auto& word : words) vocab += word + "\n";
  write_file(folder + "/vocab.txt", vocab);
  const nlohmann::json config = {{"model_type", "bert"},        {"vocab_size", 5 + words.size()},
                                 {"hidden_size", 32},           {"num_hidden_layers", 2},
                                 {"num_attention_heads", 4},    {"intermediate_size", 64},
                                 {"max_position_embeddings", max_positions}, {"type_vocab_size", 2},
                                 {"pad_token_id", 0}};
  write_file(folder + "/config.json", config.dump(2));
  torch::manual_seed(seed);
  BertEncoder encoder(BertConfig::from_json(config));
  StateDict weights;
  for (const auto& item : encoder->named_parameters()) {
    // Away from the init so that loading (or not) shows.
    weights["bert." + item.key()] = item.value().detach().clone() + 0.05 * torch::randn_like(item.value());
  }
  save_safetensors(weights, folder + "/model.safetensors");
  return config;
}

}  // namespace automm::testing
