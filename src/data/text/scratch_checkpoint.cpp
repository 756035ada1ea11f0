#include "scratch_checkpoint.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <stdexcept>
#include <unordered_map>

#include "data/text/bpe_tokenizer.h"
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

namespace {

struct PairHash {
  size_t operator()(const std::pair<int64_t, int64_t>& p) const {
    return std::hash<int64_t>()(p.first) * 1000003u ^ std::hash<int64_t>()(p.second);
  }
};

}  // namespace

LearnedBpe learn_clip_bpe(const std::vector<std::string>& texts, size_t max_size) {
  std::map<std::string, int64_t> word_counts;  // ordered: the same texts learn the same merges
  for (const std::string& text : texts)
    for (const std::string& word : ByteLevelBpeTokenizer::clip_words(text)) ++word_counts[word];
  LearnedBpe out;
  std::unordered_map<std::string, int64_t> ids;
  const auto add_token = [&](const std::string& token) {
    const auto [it, added] = ids.emplace(token, static_cast<int64_t>(out.vocabulary.size()));
    if (added) out.vocabulary.push_back(token);
    return it->second;
  };
  for (int b = 0; b < 256; ++b) add_token(ByteLevelBpeTokenizer::byte_level_char(static_cast<unsigned char>(b)));
  for (int b = 0; b < 256; ++b)
    add_token(ByteLevelBpeTokenizer::byte_level_char(static_cast<unsigned char>(b)) + "</w>");

  using Pair = std::pair<int64_t, int64_t>;
  std::vector<std::vector<int64_t>> words;
  std::vector<int64_t> counts;
  for (const auto& [word, count] : word_counts) {
    std::vector<int64_t> symbols;
    for (size_t k = 0; k < word.size(); ++k) {
      const std::string& c = ByteLevelBpeTokenizer::byte_level_char(static_cast<unsigned char>(word[k]));
      symbols.push_back(ids.at(k + 1 == word.size() ? c + "</w>" : c));
    }
    words.push_back(std::move(symbols));
    counts.push_back(count);
  }
  std::unordered_map<Pair, int64_t, PairHash> pair_counts;
  std::unordered_map<Pair, std::vector<size_t>, PairHash> where;  // words that had the pair (may be stale)
  const auto count_pairs = [&](size_t w, int64_t sign) {
    const std::vector<int64_t>& s = words[w];
    for (size_t i = 0; i + 1 < s.size(); ++i) {
      pair_counts[{s[i], s[i + 1]}] += sign * counts[w];
      if (sign > 0) where[{s[i], s[i + 1]}].push_back(w);
    }
  };
  for (size_t w = 0; w < words.size(); ++w) count_pairs(w, 1);

  while (out.vocabulary.size() + 2 < max_size) {
    const Pair* best = nullptr;
    int64_t best_count = 1;  // a pair must occur at least twice
    for (const auto& [pair, count] : pair_counts) {
      if (count < best_count) continue;
      const auto key = [&](const Pair& p) { return std::tie(out.vocabulary[p.first], out.vocabulary[p.second]); };
      if (count > best_count || !best || key(pair) < key(*best)) {
        best = &pair;
        best_count = count;
      }
    }
    if (!best) break;
    const Pair merge = *best;
    out.merges.emplace_back(out.vocabulary[merge.first], out.vocabulary[merge.second]);
    const int64_t merged = add_token(out.vocabulary[merge.first] + out.vocabulary[merge.second]);
    std::vector<size_t> affected = std::move(where[merge]);
    where.erase(merge);
    std::sort(affected.begin(), affected.end());
    affected.erase(std::unique(affected.begin(), affected.end()), affected.end());
    for (size_t w : affected) {
      count_pairs(w, -1);
      std::vector<int64_t> next;
      const std::vector<int64_t>& s = words[w];
      for (size_t i = 0; i < s.size();) {
        if (i + 1 < s.size() && s[i] == merge.first && s[i + 1] == merge.second) {
          next.push_back(merged);
          i += 2;
        } else {
          next.push_back(s[i++]);
        }
      }
      words[w] = std::move(next);
      count_pairs(w, 1);
    }
  }
  add_token("<|startoftext|>");
  add_token("<|endoftext|>");
  return out;
}

void write_clip_tokenizer(const LearnedBpe& bpe, const std::string& folder) {
  nlohmann::ordered_json vocab = nlohmann::ordered_json::object();
  for (size_t id = 0; id < bpe.vocabulary.size(); ++id) vocab[bpe.vocabulary[id]] = id;
  std::string merges_text = "#version: 0.2\n";
  nlohmann::json merges = nlohmann::json::array();
  for (const auto& [a, b] : bpe.merges) {
    merges_text += a + " " + b + "\n";
    merges.push_back(a + " " + b);
  }
  const int64_t bos = vocab.at("<|startoftext|>").get<int64_t>(), eos = vocab.at("<|endoftext|>").get<int64_t>();
  const auto added = [](const std::string& content, int64_t id, bool normalized) {
    return nlohmann::json{{"id", id},          {"content", content}, {"single_word", false}, {"lstrip", false},
                          {"rstrip", false},   {"normalized", normalized}, {"special", true}};
  };
  const nlohmann::json tokenizer = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", {added("<|startoftext|>", bos, true), added("<|endoftext|>", eos, false)}},
      {"normalizer",
       {{"type", "Sequence"},
        {"normalizers",
         {{{"type", "NFC"}},
          {{"type", "Replace"}, {"pattern", {{"Regex", "\\s+"}}}, {"content", " "}},
          {{"type", "Lowercase"}}}}}},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers",
         {{{"type", "Split"},
           {"pattern",
            {{"Regex", "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|"
                       "[^\\s\\p{L}\\p{N}]+"}}},
           {"behavior", "Removed"},
           {"invert", true}},
          {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}}}}}},
      {"post_processor",
       {{"type", "RobertaProcessing"},
        {"sep", {"<|endoftext|>", eos}},
        {"cls", {"<|startoftext|>", bos}},
        {"trim_offsets", false},
        {"add_prefix_space", false}}},
      {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", "<|endoftext|>"},
        {"continuing_subword_prefix", ""},
        {"end_of_word_suffix", "</w>"},
        {"fuse_unk", false},
        {"byte_fallback", false},
        {"vocab", vocab},
        {"merges", merges}}}};
  fs::create_directories(folder);
  write_file(fs::path(folder) / "vocab.json", vocab.dump());
  write_file(fs::path(folder) / "merges.txt", merges_text);
  write_file(fs::path(folder) / "tokenizer.json", tokenizer.dump());
  write_file(fs::path(folder) / "tokenizer_config.json",
             nlohmann::json{{"tokenizer_class", "CLIPTokenizer"},
                            {"model_max_length", 77},
                            {"bos_token", "<|startoftext|>"},
                            {"eos_token", "<|endoftext|>"},
                            {"unk_token", "<|endoftext|>"},
                            {"pad_token", "<|endoftext|>"}}
                 .dump(2));
}

std::vector<std::string> scratch_clip_model_names() { return {std::string(kScratchPrefix) + "clip-tiny"}; }

void write_scratch_clip_checkpoint(const std::string& checkpoint_name, const std::vector<std::string>& texts,
                                   int64_t image_size, const std::string& folder) {
  if (checkpoint_name != scratch_clip_model_names().front())
    throw std::invalid_argument("model.clip.checkpoint_name '" + checkpoint_name +
                                "' is not a known from-scratch model; known: " + scratch_clip_model_names().front());
  constexpr int64_t kPatch = 16, kWidth = 128, kLayers = 2, kHeads = 2;
  if (image_size < kPatch || image_size % kPatch != 0)
    throw std::invalid_argument("model.clip.image_size = " + std::to_string(image_size) + ": " + checkpoint_name +
                                " needs a multiple of its patch size, " + std::to_string(kPatch));
  const LearnedBpe bpe = learn_clip_bpe(texts);
  const int64_t vocab_size = static_cast<int64_t>(bpe.vocabulary.size());
  const auto tower = [&](nlohmann::json extra) {
    nlohmann::json t = {{"hidden_size", kWidth},       {"intermediate_size", 4 * kWidth},
                        {"num_hidden_layers", kLayers}, {"num_attention_heads", kHeads},
                        {"hidden_act", "quick_gelu"},  {"layer_norm_eps", 1e-5},
                        {"attention_dropout", 0.0}};
    t.update(extra);
    return t;
  };
  const nlohmann::json config = {
      {"model_type", "clip"},
      {"architectures", {"CLIPModel"}},
      {"automm_scratch", checkpoint_name.substr(std::string(kScratchPrefix).size())},
      {"projection_dim", kWidth},
      {"logit_scale_init_value", 2.6592},
      // eos_token_id other than 2: the text tower pools at the first
      // <|endoftext|> (transformers' rule for newer configs).
      {"text_config", tower({{"vocab_size", vocab_size},
                             {"max_position_embeddings", 77},
                             {"bos_token_id", vocab_size - 2},
                             {"eos_token_id", vocab_size - 1},
                             {"pad_token_id", vocab_size - 1}})},
      {"vision_config", tower({{"image_size", image_size}, {"patch_size", kPatch}, {"num_channels", 3}})}};
  write_clip_tokenizer(bpe, folder);
  write_file(fs::path(folder) / "config.json", config.dump(2));
}

}  // namespace automm
