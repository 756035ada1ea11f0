#pragma once
// Builds the token sequence AutoMM's text processor feeds a BERT-style
// backbone from several tokenized text columns (AutoMM's data/process_text.py): trimming to the
// length budget, [CLS]/[SEP] layout and segment (token type) ids. Pure C++, no
// torch, so that data preparation and its tests stand on their own.

#include <cstddef>
#include <cstdint>
#include <vector>

namespace automm {

struct TextSequenceOptions {
  int64_t max_len = 512;          // hf_text.max_text_len after capping to the model's maximum
  bool insert_sep = true;         // hf_text.insert_sep
  int64_t text_segment_num = 2;   // hf_text.text_segment_num after capping to type_vocab_size
  // The tokenizer's special ids. -1 means "not set" and is rejected, so that a
  // caller who forgets one gets an error instead of a silent id 0.
  int64_t cls_id = -1;
  int64_t sep_id = -1;
  int64_t pad_id = -1;
};

// One unpadded sequence; the three vectors have the same length.
struct TextSequence {
  std::vector<int64_t> input_ids, token_type_ids, attention_mask;
};

// A batch padded to its longest sequence, row-major [batch, length].
struct PaddedTextBatch {
  int64_t batch = 0;
  int64_t length = 0;
  std::vector<int64_t> input_ids, token_type_ids, attention_mask;
};

// Throws std::invalid_argument naming the bad option. num_columns is needed
// because with insert_sep every column costs one [SEP].
void validate_text_sequence_options(const TextSequenceOptions& options, size_t num_columns);

// The number of tokens each column keeps when the total must fit `budget`.
// Water-filling, as AutoMM's get_trimmed_lengths: if everything fits, nothing
// is cut; otherwise every column gets the largest common level L with
// sum(min(len_i, L)) <= budget (short columns keep everything, long ones share
// the remainder equally), and the budget - sum left over goes one token each
// to the earliest columns still longer than L.
std::vector<int64_t> trimmed_column_lengths(const std::vector<int64_t>& lengths, int64_t budget);

// columns: token ids of each text column, tokenized without specials, in the
// caller's column order (the caller sorts the column names). Budget for text
// tokens: max_len - (columns + 1) with insert_sep, else max_len - 2.
// Layout: [CLS] a [SEP] b [SEP] with insert_sep, else [CLS] a b [SEP].
// Segment ids: column i gets i mod text_segment_num; [CLS] gets 0; each [SEP]
// gets the segment of the column it closes (without insert_sep, the last one).
// attention_mask is all ones. At least one column is required.
TextSequence build_text_sequence(const std::vector<std::vector<int64_t>>& columns,
                                 const TextSequenceOptions& options);

// Pads every sequence to the longest one: pad_id, token type 0, mask 0.
// An empty batch gives batch = length = 0. Throws std::invalid_argument when a
// sequence's three vectors differ in length.
PaddedTextBatch pad_text_batch(const std::vector<TextSequence>& sequences, int64_t pad_id);

}  // namespace automm
