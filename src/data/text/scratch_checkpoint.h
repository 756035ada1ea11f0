// Text checkpoints made from scratch, for when no pretrained model can be had:
// model.hf_text.checkpoint_name "scratch:bert-tiny" (2 layers, hidden 128),
// "scratch:bert-mini" (4, 256), "scratch:bert-small" (4, 512),
// "scratch:bert-medium" (8, 512) or "scratch:bert-base" (12, 768), with random weights and a WordPiece
// vocabulary learned from the training text. Only ever chosen explicitly.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace automm {

constexpr const char* kScratchPrefix = "scratch:";

bool is_scratch_name(const std::string& checkpoint_name);
// config.json of a scratch checkpoint carries "automm_scratch": "<size>".
bool is_scratch_checkpoint(const nlohmann::json& model_config);
std::vector<std::string> scratch_model_names();

// A WordPiece vocabulary from `texts`: [PAD] [UNK] [CLS] [SEP] [MASK], every
// character seen (alone and as a ##continuation), then the words seen at
// least twice, most frequent first (ties alphabetical), up to `max_size`
// entries. Words are lowercased, accent-stripped and split at whitespace and
// punctuation as BERT's uncased tokenizer does.
std::vector<std::string> learn_wordpiece_vocabulary(const std::vector<std::string>& texts, size_t max_size = 30000);

// Writes config.json (model_type bert), vocab.txt and tokenizer_config.json
// for `checkpoint_name` ("scratch:bert-tiny", ...) into `folder` (created).
// Throws std::invalid_argument naming the known sizes for an unknown one.
void write_scratch_checkpoint(const std::string& checkpoint_name, const std::vector<std::string>& texts,
                              const std::string& folder);

// A CLIP-style byte-level BPE vocabulary learned from `texts` (split into
// words as CLIP's tokenizer does, ByteLevelBpeTokenizer::clip_words): the 256
// byte characters, the same with "</w>", then the merges of the most frequent
// adjacent pair (ties: the smaller pair of strings) while a pair occurs at
// least twice and the vocabulary stays below max_size - 2, then
// <|startoftext|> and <|endoftext|>.
struct LearnedBpe {
  std::vector<std::string> vocabulary;                      // by id
  std::vector<std::pair<std::string, std::string>> merges;  // by rank
};
LearnedBpe learn_clip_bpe(const std::vector<std::string>& texts, size_t max_size = 8192);
// Writes vocab.json, merges.txt, tokenizer.json (CLIP's normalizer,
// pre-tokenizer and post-processor, as openai's checkpoints have them) and
// tokenizer_config.json into `folder` (created).
void write_clip_tokenizer(const LearnedBpe& bpe, const std::string& folder);

// model.clip.checkpoint_name "scratch:clip-tiny": a Hugging Face CLIPModel
// config.json (text and vision towers of 2 layers, width 128; patches of 16
// pixels on `image_size` images) with config.json's "automm_scratch" set, and
// a tokenizer learned from `texts`. Throws std::invalid_argument naming the
// known names for an unknown one, or when image_size is not a multiple of 16.
std::vector<std::string> scratch_clip_model_names();
void write_scratch_clip_checkpoint(const std::string& checkpoint_name, const std::vector<std::string>& texts,
                                   int64_t image_size, const std::string& folder);

}  // namespace automm
