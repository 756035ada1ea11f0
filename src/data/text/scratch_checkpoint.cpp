#include "scratch_checkpoint.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <stdexcept>
#include <unordered_map>

#include "data/text/utf8.h"
#include "data/text/wordpiece_tokenizer.h"

namespace automm {
namespace {
namespace fs = std::filesystem;

struct ScratchSize {
  int64_t layers, hidden, heads;
};

const std::map<std::string, ScratchSize>& scratch_sizes() {
  // The compact BERT family of Turc et al. (2019): intermediate = 4 * hidden.
  static const std::map<std::string, ScratchSize> sizes = {
      {"bert-tiny", {2, 128, 2}},
      {"bert-mini", {4, 256, 4}},
      {"bert-small", {4, 512, 8}},
      {"bert-medium", {8, 512, 8}},
      {"bert-base", {12, 768, 12}},
  };
  return sizes;
}

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  out.close();
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

}  // namespace

bool is_scratch_name(const std::string& name) { return name.rfind(kScratchPrefix, 0) == 0; }

bool is_scratch_checkpoint(const nlohmann::json& model_config) {
  return model_config.is_object() && model_config.contains("automm_scratch");
}

std::vector<std::string> scratch_model_names() {
  std::vector<std::string> names;
  for (const auto& [size, shape] : scratch_sizes()) names.push_back(kScratchPrefix + size);
  return names;
}

std::vector<std::string> learn_wordpiece_vocabulary(const std::vector<std::string>& texts, size_t max_size) {
  static const std::vector<std::string> specials = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  // Splits words exactly as the tokenizer that will read this vocabulary.
  const WordPieceTokenizer splitter = WordPieceTokenizer::from_vocabulary(specials);
  std::unordered_map<std::string, int64_t> word_counts;
  std::set<std::string> characters;
  for (const std::string& text : texts) {
    for (const std::string& word : splitter.words(text)) {
      ++word_counts[word];
      for (char32_t c : decode_utf8(word)) {
        std::string character;
        append_utf8(c, &character);
        characters.insert(character);
      }
    }
  }
  std::vector<std::string> vocabulary = specials;
  std::set<std::string> present(specials.begin(), specials.end());
  auto add = [&](const std::string& token) {
    if (vocabulary.size() < max_size && present.insert(token).second) vocabulary.push_back(token);
  };
  for (const std::string& c : characters) add(c);
  for (const std::string& c : characters) add("##" + c);
  std::vector<std::pair<std::string, int64_t>> frequent;
  for (const auto& [word, count] : word_counts)
    if (count >= 2) frequent.emplace_back(word, count);
  std::sort(frequent.begin(), frequent.end(),
            [](const auto& a, const auto& b) { return a.second != b.second ? a.second > b.second : a.first < b.first; });
  for (const auto& [word, count] : frequent) add(word);
  return vocabulary;
}

void write_scratch_checkpoint(const std::string& checkpoint_name, const std::vector<std::string>& texts,
                              const std::string& folder) {
  const std::string size = checkpoint_name.substr(std::string(kScratchPrefix).size());
  const auto it = scratch_sizes().find(size);
  if (!is_scratch_name(checkpoint_name) || it == scratch_sizes().end()) {
    std::string known;
    for (const std::string& name : scratch_model_names()) known += (known.empty() ? "" : ", ") + name;
    throw std::invalid_argument("model.hf_text.checkpoint_name '" + checkpoint_name +
                                "' is not a known from-scratch model; known: " + known);
  }
  const std::vector<std::string> vocabulary = learn_wordpiece_vocabulary(texts);
  const ScratchSize& shape = it->second;
  const nlohmann::json config = {{"model_type", "bert"},
                                 {"architectures", {"BertModel"}},
                                 {"automm_scratch", size},
                                 {"vocab_size", vocabulary.size()},
                                 {"hidden_size", shape.hidden},
                                 {"num_hidden_layers", shape.layers},
                                 {"num_attention_heads", shape.heads},
                                 {"intermediate_size", 4 * shape.hidden},
                                 {"hidden_act", "gelu"},
                                 {"hidden_dropout_prob", 0.1},
                                 {"attention_probs_dropout_prob", 0.1},
                                 {"max_position_embeddings", 512},
                                 {"type_vocab_size", 2},
                                 {"initializer_range", 0.02},
                                 {"layer_norm_eps", 1e-12},
                                 {"pad_token_id", 0}};
  fs::create_directories(folder);
  std::string vocab_text;
  for (const std::string& token : vocabulary) vocab_text += token + "\n";
  write_file(fs::path(folder) / "config.json", config.dump(2));
  write_file(fs::path(folder) / "vocab.txt", vocab_text);
  write_file(fs::path(folder) / "tokenizer_config.json",
             nlohmann::json{{"do_lower_case", true}, {"tokenizer_class", "BertTokenizer"}}.dump(2));
}

}  // namespace automm
