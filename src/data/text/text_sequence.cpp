#include "text_sequence.h"

#include <algorithm>
#include <numeric>
#include <stdexcept>
#include <string>

namespace automm {

void validate_text_sequence_options(const TextSequenceOptions& options, size_t num_columns) {
  if (options.text_segment_num < 1) {
    throw std::invalid_argument("hf_text.text_segment_num must be >= 1, got " +
                                std::to_string(options.text_segment_num));
  }
  const int64_t specials = options.insert_sep ? static_cast<int64_t>(num_columns) + 1 : 2;
  if (options.max_len < specials) {
    throw std::invalid_argument(
        "hf_text.max_text_len " + std::to_string(options.max_len) + " is too small: " +
        std::to_string(num_columns) + " text column(s) " +
        (options.insert_sep ? "with insert_sep" : "without insert_sep") + " need " +
        std::to_string(specials) + " special tokens ([CLS] and " +
        (options.insert_sep ? "one [SEP] per column)" : "one [SEP])"));
  }
  const std::pair<const char*, int64_t> ids[] = {
      {"cls_id", options.cls_id}, {"sep_id", options.sep_id}, {"pad_id", options.pad_id}};
  for (const auto& [name, value] : ids) {
    if (value < 0) {
      throw std::invalid_argument(std::string("text sequence option ") + name +
                                  " must be set to the tokenizer's id (>= 0), got " +
                                  std::to_string(value));
    }
  }
}

std::vector<int64_t> trimmed_column_lengths(const std::vector<int64_t>& lengths, int64_t budget) {
  if (budget < 0) throw std::invalid_argument("text token budget must be >= 0, got " + std::to_string(budget));
  for (int64_t length : lengths) {
    if (length < 0) throw std::invalid_argument("column length must be >= 0, got " + std::to_string(length));
  }
  const int64_t total = std::accumulate(lengths.begin(), lengths.end(), int64_t{0});
  if (total <= budget) return lengths;

  // Raise a common level step by step, as AutoMM does: every column that still
  // has tokens gets min(smallest remaining, remainder / open columns) more;
  // when the remainder no longer covers one token per open column, the
  // earliest open columns get one each. Ends because total > budget.
  std::vector<int64_t> kept(lengths.size(), 0);
  int64_t used = 0;
  while (used < budget) {
    const int64_t remainder = budget - used;
    std::vector<size_t> open;
    int64_t smallest = 0;
    for (size_t i = 0; i < lengths.size(); ++i) {
      const int64_t left = lengths[i] - kept[i];
      if (left <= 0) continue;
      smallest = open.empty() ? left : std::min(smallest, left);
      open.push_back(i);
    }
    const int64_t open_count = static_cast<int64_t>(open.size());
    const int64_t share = remainder / open_count;
    if (share == 0) {
      for (int64_t k = 0; k < remainder; ++k) kept[open[static_cast<size_t>(k)]] += 1;
      used += remainder;
    } else {
      const int64_t step = std::min(smallest, share);
      for (size_t i : open) kept[i] += step;
      used += step * open_count;
    }
  }
  return kept;
}

TextSequence build_text_sequence(const std::vector<std::vector<int64_t>>& columns,
                                 const TextSequenceOptions& options) {
  if (columns.empty()) {
    throw std::invalid_argument("build_text_sequence needs at least one text column");
  }
  validate_text_sequence_options(options, columns.size());
  const int64_t budget = options.insert_sep
                             ? options.max_len - (static_cast<int64_t>(columns.size()) + 1)
                             : options.max_len - 2;
  std::vector<int64_t> lengths;
  lengths.reserve(columns.size());
  for (const auto& column : columns) lengths.push_back(static_cast<int64_t>(column.size()));
  const std::vector<int64_t> kept = trimmed_column_lengths(lengths, budget);

  TextSequence out;
  auto push = [&out](int64_t id, int64_t segment) {
    out.input_ids.push_back(id);
    out.token_type_ids.push_back(segment);
    out.attention_mask.push_back(1);
  };
  push(options.cls_id, 0);
  int64_t segment = 0;
  for (size_t i = 0; i < columns.size(); ++i) {
    segment = static_cast<int64_t>(i) % options.text_segment_num;
    // Keep the head of each column: AutoMM truncates from the end.
    for (int64_t k = 0; k < kept[i]; ++k) push(columns[i][static_cast<size_t>(k)], segment);
    if (options.insert_sep) push(options.sep_id, segment);
  }
  if (!options.insert_sep) push(options.sep_id, segment);
  return out;
}

PaddedTextBatch pad_text_batch(const std::vector<TextSequence>& sequences, int64_t pad_id) {
  PaddedTextBatch out;
  out.batch = static_cast<int64_t>(sequences.size());
  for (size_t r = 0; r < sequences.size(); ++r) {
    const TextSequence& s = sequences[r];
    if (s.token_type_ids.size() != s.input_ids.size() || s.attention_mask.size() != s.input_ids.size()) {
      throw std::invalid_argument(
          "pad_text_batch: sequence " + std::to_string(r) + " has " +
          std::to_string(s.input_ids.size()) + " input ids but " +
          std::to_string(s.token_type_ids.size()) + " token type ids and " +
          std::to_string(s.attention_mask.size()) + " mask entries");
    }
    out.length = std::max(out.length, static_cast<int64_t>(s.input_ids.size()));
  }
  const size_t cells = static_cast<size_t>(out.batch * out.length);
  out.input_ids.assign(cells, pad_id);
  out.token_type_ids.assign(cells, 0);
  out.attention_mask.assign(cells, 0);
  for (size_t r = 0; r < sequences.size(); ++r) {
    const TextSequence& s = sequences[r];
    const size_t row = r * static_cast<size_t>(out.length);
    std::copy(s.input_ids.begin(), s.input_ids.end(), out.input_ids.begin() + row);
    std::copy(s.token_type_ids.begin(), s.token_type_ids.end(), out.token_type_ids.begin() + row);
    std::copy(s.attention_mask.begin(), s.attention_mask.end(), out.attention_mask.begin() + row);
  }
  return out;
}

}  // namespace automm
