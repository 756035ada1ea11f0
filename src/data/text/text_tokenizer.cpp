#include "text_tokenizer.h"
#include "config/json_text.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "data/text/token_ids.h"
#include "checkpoints/hf_checkpoint.h"
#include "text_sequence.h"

namespace automm {
namespace fs = std::filesystem;
namespace {

nlohmann::json read_optional_json(const fs::path& path) {
  if (!fs::exists(path)) return nlohmann::json::object();
  std::ifstream in(path);
  try {
    return parse_json(in, path.string());
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(path.string() + " is not valid JSON: " + e.what());
  }
}

// tokenizer.json's model type ("WordPiece", "Unigram", ...); "" without one.
std::string json_model_type(const fs::path& path) {
  const nlohmann::json j = read_optional_json(path);
  return j.contains("model") ? j["model"].value("type", "") : "";
}

// The raw sentencepiece model of a checkpoint without tokenizer.json.
std::optional<fs::path> sentencepiece_model(const fs::path& folder) {
  for (const char* name : {"spiece.model", "spm.model", "sentencepiece.bpe.model"}) {
    if (fs::exists(folder / name)) return folder / name;
  }
  return std::nullopt;
}

// vocab.txt options from tokenizer_config.json (do_lower_case, strip_accents,
// tokenize_chinese_chars), with BERT's defaults.
WordPieceOptions wordpiece_options(const fs::path& folder) {
  const nlohmann::json config = read_optional_json(folder / "tokenizer_config.json");
  WordPieceOptions options;
  options.lowercase = config.value("do_lower_case", true);
  options.strip_accents = config.contains("strip_accents") && !config["strip_accents"].is_null()
                              ? config["strip_accents"].get<bool>()
                              : options.lowercase;
  options.handle_chinese_chars = config.value("tokenize_chinese_chars", true);
  return options;
}

int64_t first_known(const ByteLevelBpeTokenizer& bpe, const std::vector<std::string>& tokens,
                    const std::string& what, const fs::path& folder) {
  for (const std::string& token : tokens) {
    try {
      return bpe.token_to_id(token);
    } catch (const std::exception&) {
    }
  }
  throw std::runtime_error(folder.string() + ": the BPE vocabulary has no " + what + " token");
}

}  // namespace

TextTokenizer TextTokenizer::from_folder(const std::string& folder_text, const std::string& tokenizer_name) {
  const fs::path folder(folder_text);
  if (tokenizer_name != "hf_auto" && tokenizer_name != "bert" && tokenizer_name != "electra" && tokenizer_name != "clip")
    throw std::invalid_argument("unknown tokenizer_name '" + tokenizer_name + "'; known: hf_auto, bert, electra, clip");
  TextTokenizer tokenizer;
  const std::string json_type = json_model_type(folder / "tokenizer.json");
  const bool hf_auto = tokenizer_name == "hf_auto";
  const bool clip = tokenizer_name == "clip";
  if (clip) {
    if (json_type == "BPE") {
      tokenizer.bpe_ = std::make_shared<ByteLevelBpeTokenizer>(
          ByteLevelBpeTokenizer::from_tokenizer_json((folder / "tokenizer.json").string()));
    } else if (fs::exists(folder / "vocab.json") && fs::exists(folder / "merges.txt")) {
      tokenizer.bpe_ = std::make_shared<ByteLevelBpeTokenizer>(ByteLevelBpeTokenizer::from_files(
          (folder / "vocab.json").string(), (folder / "merges.txt").string(), false, BpeStyle::kClip));
    }
    if (!tokenizer.bpe_ || tokenizer.bpe_->style() != BpeStyle::kClip)
      throw std::runtime_error("tokenizer_name = clip: " + folder.string() +
                               " has no CLIP tokenizer (tokenizer.json with a BPE model whose end_of_word_suffix is "
                               "set, or vocab.json + merges.txt)");
  } else if (json_type == "WordPiece") {
    tokenizer.wordpiece_ = std::make_shared<WordPieceTokenizer>(
        WordPieceTokenizer::from_tokenizer_json((folder / "tokenizer.json").string()));
  } else if (hf_auto && json_type == "Unigram") {
    tokenizer.unigram_ = std::make_shared<UnigramTokenizer>(
        UnigramTokenizer::from_tokenizer_json((folder / "tokenizer.json").string()));
  } else if (hf_auto && json_type == "BPE") {
    tokenizer.bpe_ = std::make_shared<ByteLevelBpeTokenizer>(
        ByteLevelBpeTokenizer::from_tokenizer_json((folder / "tokenizer.json").string()));
  } else if (fs::exists(folder / "vocab.txt")) {
    tokenizer.wordpiece_ = std::make_shared<WordPieceTokenizer>(
        WordPieceTokenizer::from_vocab_file((folder / "vocab.txt").string(), wordpiece_options(folder)));
  } else if (hf_auto && fs::exists(folder / "vocab.json") && fs::exists(folder / "merges.txt")) {
    const nlohmann::json config = read_optional_json(folder / "tokenizer_config.json");
    // transformers' CLIPTokenizer, named by tokenizer_config.json or implied by the model type.
    const std::string model_type = read_optional_json(folder / "config.json").value("model_type", "");
    const bool clip_files = config.value("tokenizer_class", "").rfind("CLIPTokenizer", 0) == 0 ||
                            model_type == "clip" || model_type == "clip_text_model";
    tokenizer.bpe_ = std::make_shared<ByteLevelBpeTokenizer>(ByteLevelBpeTokenizer::from_files(
        (folder / "vocab.json").string(), (folder / "merges.txt").string(), config.value("add_prefix_space", false),
        clip_files ? BpeStyle::kClip : BpeStyle::kGpt2));
  } else if (hf_auto && sentencepiece_model(folder)) {
    SentencePieceConversion conversion;
    conversion.model_type = read_optional_json(folder / "config.json").value("model_type", "");
    conversion.lowercase = read_optional_json(folder / "tokenizer_config.json").value("do_lower_case", false);
    tokenizer.unigram_ = std::make_shared<UnigramTokenizer>(
        UnigramTokenizer::from_sentencepiece_model(sentencepiece_model(folder)->string(), conversion));
  } else {
    throw std::runtime_error("no tokenizer found in " + folder.string() +
                             ": looked for tokenizer.json (WordPiece" + (hf_auto ? ", Unigram, byte-level BPE" : "") + "), vocab.txt" +
                             (hf_auto ? ", vocab.json + merges.txt, spiece.model / spm.model / sentencepiece.bpe.model"
                                      : std::string()));
  }
  if (tokenizer.wordpiece_) {
    tokenizer.kind_ = "wordpiece";
    tokenizer.cls_id_ = tokenizer.wordpiece_->cls_id();
    tokenizer.sep_id_ = tokenizer.wordpiece_->sep_id();
    tokenizer.pad_id_ = tokenizer.wordpiece_->pad_id();
  } else if (tokenizer.unigram_) {
    tokenizer.kind_ = "unigram";
    tokenizer.cls_id_ = tokenizer.unigram_->cls_id();
    tokenizer.sep_id_ = tokenizer.unigram_->sep_id();
    tokenizer.pad_id_ = tokenizer.unigram_->pad_id();
  } else if (tokenizer.bpe_->style() == BpeStyle::kClip) {
    // CLIP pads with <|endoftext|> (its pad_token in openai's checkpoints).
    tokenizer.kind_ = "clip_bpe";
    tokenizer.cls_id_ = first_known(*tokenizer.bpe_, {"<|startoftext|>"}, "start", folder);
    tokenizer.sep_id_ = first_known(*tokenizer.bpe_, {"<|endoftext|>"}, "end", folder);
    tokenizer.pad_id_ = first_known(*tokenizer.bpe_, {"<|endoftext|>"}, "padding", folder);
  } else {
    // RoBERTa's <s> </s> <pad>; GPT-2's vocabulary has only <|endoftext|>.
    tokenizer.kind_ = "byte_level_bpe";
    tokenizer.cls_id_ = first_known(*tokenizer.bpe_, {"<s>", "<|endoftext|>"}, "start", folder);
    tokenizer.sep_id_ = first_known(*tokenizer.bpe_, {"</s>", "<|endoftext|>"}, "end", folder);
    tokenizer.pad_id_ = first_known(*tokenizer.bpe_, {"<pad>", "<|endoftext|>"}, "padding", folder);
  }
  return tokenizer;
}

std::vector<std::vector<int64_t>> model_token_ids(const std::string& checkpoint, const std::vector<std::string>& texts,
                                                  int64_t max_len, const std::string& tokenizer_name) {
  const ResolvedCheckpoint resolved = resolve_hf_checkpoint(checkpoint);
  const TextTokenizer tokenizer = TextTokenizer::from_folder(resolved.folder, tokenizer_name);
  // The model's own limit: RoBERTa-style position tables start after the padding id.
  const nlohmann::json config = read_optional_json(fs::path(resolved.folder) / "config.json");
  if (config.contains("max_position_embeddings")) {
    const std::string type = config.value("model_type", "");
    const std::string source = (fs::path(resolved.folder) / "config.json").string();
    const int64_t offset =
        type == "roberta" || type == "xlm-roberta" ? json_integer_field(config, "pad_token_id", 1, source) + 1 : 0;
    max_len = std::min(max_len, json_integer_field(config, "max_position_embeddings", max_len, source) - offset);
  }
  TextSequenceOptions options;
  options.max_len = max_len;
  options.cls_id = tokenizer.cls_id();
  options.sep_id = tokenizer.sep_id();
  options.pad_id = tokenizer.pad_id();
  std::vector<std::vector<int64_t>> out;
  for (const std::string& text : texts) out.push_back(build_text_sequence({tokenizer.encode(text)}, options).input_ids);
  return out;
}

std::vector<int64_t> TextTokenizer::encode(const std::string& text) const {
  if (wordpiece_) return wordpiece_->encode(text);
  return unigram_ ? unigram_->encode(text) : bpe_->encode(text);
}

}  // namespace automm
