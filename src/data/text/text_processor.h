// AutoMM's text processor for one text model: the text columns (sorted by
// name) tokenized with the checkpoint's tokenizer, and per batch the token
// sequences built as AutoMM's data/process_text.py does (with stochastic chunks and text augmentation
// when training).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "automm/config.h"
#include "data/batch.h"
#include "data/dataset.h"
#include "automm/table.h"
#include "text_augment.h"
#include "text_sequence.h"
#include "text_tokenizer.h"

namespace automm {

class TextProcessor;

// A table's text columns, tokenized, for one text model.
struct TextInputs : ModelInputs {
  // Puts the rows' token sequences into batch.text[model name].
  void add_to_batch(const std::vector<int64_t>& rows, const BatchPlacement& placement, std::mt19937_64* training_rng,
                    Batch& batch) const override;

  std::shared_ptr<const TextProcessor> processor;
  std::vector<std::vector<std::vector<int64_t>>> ids;  // [row][column] token ids, no specials
  // [row][column] the (normalized) text, kept for training-time augmentation.
  std::vector<std::vector<std::string>> texts;
};

// What the processor needs to know of the text model: its limits.
struct TextModelLimits {
  int64_t max_sequence_length = 512;  // tokens the position embeddings allow
  int64_t type_vocab_size = 0;        // segment ids; 0 when the model has none
};

struct TextProcessorOptions {
  TextSequenceOptions sequence;  // max_len capped by the model, segments capped by its type ids
  bool stochastic_chunk = false;
  double augment_max_scale = 0.0;  // text_trivial_aug_maxscale; 0 = off
  int64_t augment_detect_length = 10;
  bool normalize_text = false;
};

class TextProcessor : public std::enable_shared_from_this<TextProcessor> {
 public:
  // `columns`: the text columns this model reads (sorted here). Reads the
  // tokenizer from `checkpoint_dir`, and the options from model.hf_text.* and
  // data.text.*, capped by the model's limits (max positions, type_vocab_size).
  static std::shared_ptr<const TextProcessor> create(const std::string& model_name, std::vector<std::string> columns,
                                                     const std::string& checkpoint_dir, const TextModelLimits& limits,
                                                     const Config& config);
  // The same with the options given (a model with keys of its own: clip);
  // the special ids come from the tokenizer `tokenizer_name` (TextTokenizer::from_folder).
  static std::shared_ptr<const TextProcessor> create(const std::string& model_name, std::vector<std::string> columns,
                                                     const std::string& checkpoint_dir,
                                                     const std::string& tokenizer_name, TextProcessorOptions options);

  // Tokenizes every row (missing cells read as ""). keep_text: keep the texts
  // for augmentation (training data only).
  std::shared_ptr<const TextInputs> transform(const Table& table, bool keep_text) const;

  // The padded token sequences of `rows`. With `training_rng`, training-time
  // randomness applies: stochastic chunks and text augmentation.
  TextBatch make_batch(const TextInputs& inputs, const std::vector<int64_t>& rows,
                       std::mt19937_64* training_rng) const;

  const std::string& model_name() const { return model_name_; }
  const std::vector<std::string>& columns() const { return columns_; }
  const TextProcessorOptions& options() const { return options_; }
  // Loads what training-time augmentation needs (WordNet) now, so that a
  // missing package fails the fit before training starts.
  void prepare_for_training() const { wordnet(); }

 private:
  TextProcessor() = default;
  std::vector<int64_t> encode(const std::string& text) const;
  // WordNet when augmentation is on (loaded once), else null.
  const WordNet* wordnet() const;

  std::string model_name_;
  std::vector<std::string> columns_;
  std::shared_ptr<const TextTokenizer> tokenizer_;
  TextProcessorOptions options_;
  mutable std::once_flag wordnet_once_;
  mutable std::shared_ptr<const WordNet> wordnet_;
};

}  // namespace automm
