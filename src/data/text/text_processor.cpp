#include "text_processor.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>

#include "data/parallel.h"

namespace automm {
namespace {
namespace fs = std::filesystem;

torch::Tensor to_tensor(const std::vector<int64_t>& values, int64_t rows, int64_t cols) {
  return torch::from_blob(const_cast<int64_t*>(values.data()), {rows, cols}, torch::kInt64).clone();
}

}  // namespace

std::shared_ptr<const TextProcessor> TextProcessor::create(const std::string& model_name,
                                                           std::vector<std::string> columns,
                                                           const std::string& checkpoint_dir,
                                                           const TextModelLimits& limits, const Config& config) {
  const int64_t model_max = limits.max_sequence_length, type_vocab = limits.type_vocab_size;
  TextProcessorOptions options;
  const int64_t requested = config.get_int("model.hf_text.max_text_len");
  options.sequence.max_len = requested <= 0 ? model_max : std::min(requested, model_max);
  options.sequence.insert_sep = config.get_bool("model.hf_text.insert_sep");
  options.sequence.text_segment_num =
      std::max<int64_t>(1, std::min(config.get_int("model.hf_text.text_segment_num"), type_vocab));
  options.stochastic_chunk = config.get_bool("model.hf_text.stochastic_chunk");
  options.augment_max_scale = config.get_double("model.hf_text.text_trivial_aug_maxscale");
  options.augment_detect_length = config.get_int("model.hf_text.text_aug_detect_length");
  options.normalize_text = config.get_bool("data.text.normalize_text");
  return create(model_name, std::move(columns), checkpoint_dir, config.get_string("model.hf_text.tokenizer_name"),
                options);
}

std::shared_ptr<const TextProcessor> TextProcessor::create(const std::string& model_name,
                                                           std::vector<std::string> columns,
                                                           const std::string& checkpoint_dir,
                                                           const std::string& tokenizer_name,
                                                           TextProcessorOptions options) {
  if (columns.empty()) throw std::invalid_argument("text model '" + model_name + "' has no text column to read");
  std::sort(columns.begin(), columns.end());
  auto processor = std::shared_ptr<TextProcessor>(new TextProcessor());
  processor->model_name_ = model_name;
  processor->columns_ = std::move(columns);
  processor->tokenizer_ =
      std::make_shared<const TextTokenizer>(TextTokenizer::from_folder(checkpoint_dir, tokenizer_name));
  options.sequence.cls_id = processor->tokenizer_->cls_id();
  options.sequence.sep_id = processor->tokenizer_->sep_id();
  options.sequence.pad_id = processor->tokenizer_->pad_id();
  validate_text_sequence_options(options.sequence, processor->columns_.size());
  processor->options_ = options;
  return processor;
}

std::vector<int64_t> TextProcessor::encode(const std::string& text) const { return tokenizer_->encode(text); }

const WordNet* TextProcessor::wordnet() const {
  if (options_.augment_max_scale <= 0) return nullptr;
  std::call_once(wordnet_once_, [this] { wordnet_ = WordNet::load(); });
  return wordnet_.get();
}

std::shared_ptr<const TextInputs> TextProcessor::transform(const Table& table, bool keep_text) const {
  auto inputs = std::make_shared<TextInputs>();
  inputs->processor = shared_from_this();
  const size_t rows = table.num_rows();
  inputs->ids.assign(rows, std::vector<std::vector<int64_t>>(columns_.size()));
  if (keep_text) inputs->texts.assign(rows, std::vector<std::string>(columns_.size()));
  std::vector<const Column*> columns;
  for (const std::string& name : columns_) columns.push_back(&table.column(name));
  // Rows in parallel: a few texts make tens of microseconds of work, so only
  // tables of thousands of rows start threads.
  const size_t threads = rows < 1024 ? 1 : data_threads();
  for_each_parallel(threads, threads, [&](size_t t) {
    for (size_t r = t * rows / threads; r < (t + 1) * rows / threads; ++r)
      for (size_t c = 0; c < columns.size(); ++c) {
        const std::string cell = columns[c]->text(r);
        const std::string text = options_.normalize_text ? normalize_text(cell) : cell;
        inputs->ids[r][c] = encode(text);
        if (keep_text) inputs->texts[r][c] = text;
      }
  });
  return inputs;
}

TextBatch TextProcessor::make_batch(const TextInputs& inputs, const std::vector<int64_t>& rows,
                                    std::mt19937_64* training_rng) const {
  const size_t num_columns = columns_.size();
  const int64_t budget = options_.sequence.max_len -
                         (options_.sequence.insert_sep ? static_cast<int64_t>(num_columns) + 1 : 2);
  std::vector<TextSequence> sequences;
  sequences.reserve(rows.size());
  for (int64_t row : rows) {
    std::vector<std::vector<int64_t>> columns = inputs.ids.at(static_cast<size_t>(row));
    if (training_rng && options_.augment_max_scale > 0 && !inputs.texts.empty()) {
      // AutoMM's text trivial augmentation, per column, on texts long enough.
      const TextAugmentOptions augment{options_.augment_max_scale, options_.augment_detect_length};
      for (size_t c = 0; c < num_columns; ++c) {
        const std::string& text = inputs.texts[static_cast<size_t>(row)][c];
        const std::string augmented = augment_text(text, augment, *training_rng, wordnet());
        if (augmented != text) columns[c] = encode(augmented);
      }
    }
    if (training_rng && options_.stochastic_chunk) {
      // A random window of each column that has to be cut, instead of its start.
      std::vector<int64_t> lengths;
      for (const auto& ids : columns) lengths.push_back(static_cast<int64_t>(ids.size()));
      const std::vector<int64_t> kept = trimmed_column_lengths(lengths, budget);
      for (size_t c = 0; c < num_columns; ++c) {
        if (kept[c] >= lengths[c]) continue;
        std::uniform_int_distribution<int64_t> start_of(0, lengths[c] - kept[c]);
        const int64_t start = start_of(*training_rng);
        columns[c] = std::vector<int64_t>(columns[c].begin() + start, columns[c].begin() + start + kept[c]);
      }
    }
    sequences.push_back(build_text_sequence(columns, options_.sequence));
  }
  const PaddedTextBatch padded = pad_text_batch(sequences, options_.sequence.pad_id);
  return {to_tensor(padded.input_ids, padded.batch, padded.length),
          to_tensor(padded.token_type_ids, padded.batch, padded.length),
          to_tensor(padded.attention_mask, padded.batch, padded.length), options_.sequence.pad_id,
          options_.sequence.max_len};
}

void TextInputs::add_to_batch(const std::vector<int64_t>& rows, const BatchPlacement& placement,
                              std::mt19937_64* training_rng, Batch& batch) const {
  TextBatch text = processor->make_batch(*this, rows, training_rng);
  batch.text[processor->model_name()] = {text.input_ids.to(placement.device), text.token_type_ids.to(placement.device),
                                         text.attention_mask.to(placement.device), text.pad_id, text.max_length};
}

}  // namespace automm
