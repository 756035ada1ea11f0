// Token-sequence builder (AutoMM's data/process_text.py): trimming, layout and segment ids, checked
// against hand-built expectations.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <random>
#include <stdexcept>
#include <vector>

#include "data/text/text_sequence.h"
#include "test_util.h"

namespace automm {
namespace {

using automm::testing::Contains;
using automm::testing::message_of;
using Ids = std::vector<int64_t>;

constexpr int64_t kCls = 101, kSep = 102, kPad = 0;

TextSequenceOptions options(int64_t max_len = 512, bool insert_sep = true, int64_t segments = 2) {
  TextSequenceOptions o;
  o.max_len = max_len;
  o.insert_sep = insert_sep;
  o.text_segment_num = segments;
  o.cls_id = kCls;
  o.sep_id = kSep;
  o.pad_id = kPad;
  return o;
}

void expect_sequence(const TextSequence& s, const Ids& ids, const Ids& types) {
  EXPECT_EQ(s.input_ids, ids);
  EXPECT_EQ(s.token_type_ids, types);
  EXPECT_EQ(s.attention_mask, Ids(ids.size(), 1));
}

TEST(TextSequence, OneColumn) {
  expect_sequence(build_text_sequence({{5, 6, 7}}, options()), {kCls, 5, 6, 7, kSep}, {0, 0, 0, 0, 0});
}

TEST(TextSequence, ThreeColumnsWithSepAlternateSegments) {
  const std::vector<Ids> columns = {{1, 2}, {3}, {4, 5}};
  expect_sequence(build_text_sequence(columns, options()),
                  {kCls, 1, 2, kSep, 3, kSep, 4, 5, kSep},
                  {0, 0, 0, 0, 1, 1, 0, 0, 0});
}

TEST(TextSequence, SegmentNumThreeAndOne) {
  const std::vector<Ids> columns = {{1, 2}, {3}, {4, 5}, {6}};
  expect_sequence(build_text_sequence(columns, options(512, true, 3)),
                  {kCls, 1, 2, kSep, 3, kSep, 4, 5, kSep, 6, kSep},
                  {0, 0, 0, 0, 1, 1, 2, 2, 2, 0, 0});
  expect_sequence(build_text_sequence(columns, options(512, true, 1)),
                  {kCls, 1, 2, kSep, 3, kSep, 4, 5, kSep, 6, kSep}, Ids(11, 0));
}

TEST(TextSequence, WithoutSepOneFinalSepTakesLastColumnSegment) {
  expect_sequence(build_text_sequence({{1, 2}, {3}}, options(512, false)),
                  {kCls, 1, 2, 3, kSep}, {0, 0, 0, 1, 1});
  expect_sequence(build_text_sequence({{1, 2}, {3}, {4, 5}}, options(512, false)),
                  {kCls, 1, 2, 3, 4, 5, kSep}, {0, 0, 0, 1, 0, 0, 0});
}

TEST(TextSequence, FitsExactlyWithoutTrimming) {
  // 2 columns with insert_sep: budget = 8 - 3 = 5 = 2 + 3.
  const TextSequence s = build_text_sequence({{1, 2}, {3, 4, 5}}, options(8));
  EXPECT_EQ(s.input_ids, (Ids{kCls, 1, 2, kSep, 3, 4, 5, kSep}));
}

TEST(TextSequence, TrimsUnequalColumnsToShareBudget) {
  // budget = 12 - 4 = 8: the 2-token column keeps both, the other two share
  // the remaining 6 -> 3 each; heads are kept.
  const std::vector<Ids> columns = {{1, 2}, {10, 11, 12, 13, 14, 15, 16, 17}, {20, 21, 22, 23, 24, 25, 26, 27}};
  const TextSequence s = build_text_sequence(columns, options(12));
  expect_sequence(s, {kCls, 1, 2, kSep, 10, 11, 12, kSep, 20, 21, 22, kSep},
                  {0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0});
  EXPECT_EQ(static_cast<int64_t>(s.input_ids.size()), 12);
}

TEST(TextSequence, TrimsWithoutSepUsingMaxLenMinusTwo) {
  // budget = 7 - 2 = 5 over two 5-token columns: 2 each, the odd token to the first.
  const TextSequence s = build_text_sequence({{1, 2, 3, 4, 5}, {6, 7, 8, 9, 10}}, options(7, false));
  expect_sequence(s, {kCls, 1, 2, 3, 6, 7, kSep}, {0, 0, 0, 0, 1, 1, 1});
}

TEST(TextSequence, EmptyColumnsStillGetTheirSep) {
  expect_sequence(build_text_sequence({{}, {7, 8}}, options()), {kCls, kSep, 7, 8, kSep}, {0, 0, 1, 1, 1});
  expect_sequence(build_text_sequence({{}, {}}, options()), {kCls, kSep, kSep}, {0, 0, 1});
  expect_sequence(build_text_sequence({{}}, options(512, false)), {kCls, kSep}, {0, 0});
}

TEST(TextSequence, MaxLenEqualToSpecialsDropsAllText) {
  expect_sequence(build_text_sequence({{1, 2}, {3}}, options(3)), {kCls, kSep, kSep}, {0, 0, 1});
  expect_sequence(build_text_sequence({{1, 2}, {3}}, options(2, false)), {kCls, kSep}, {0, 1});
}

TEST(TextSequence, TrimmedLengthsHandCases) {
  EXPECT_EQ(trimmed_column_lengths({3, 4}, 10), (Ids{3, 4}));          // fits: untouched
  EXPECT_EQ(trimmed_column_lengths({2, 10, 10}, 12), (Ids{2, 5, 5}));  // short column keeps all
  EXPECT_EQ(trimmed_column_lengths({10, 10, 10}, 11), (Ids{4, 4, 3})); // leftover to earliest
  EXPECT_EQ(trimmed_column_lengths({1, 7, 4}, 8), (Ids{1, 4, 3}));
  // Leftover skips a column that is already complete: [3, 1, 3, 2], not [3, 2, 2, 2].
  EXPECT_EQ(trimmed_column_lengths({10, 1, 10, 10}, 9), (Ids{3, 1, 3, 2}));
  EXPECT_EQ(trimmed_column_lengths({5, 5}, 0), (Ids{0, 0}));
  EXPECT_EQ(trimmed_column_lengths({}, 4), Ids{});
}

// The pinned rule in closed form: the largest level L with
// sum(min(len, L)) <= budget, then one more token to the earliest columns
// longer than L until the budget is used.
Ids reference_lengths(const Ids& lengths, int64_t budget) {
  const int64_t total = std::accumulate(lengths.begin(), lengths.end(), int64_t{0});
  if (total <= budget) return lengths;
  int64_t level = 0;
  auto used_at = [&](int64_t l) {
    int64_t sum = 0;
    for (int64_t n : lengths) sum += std::min(n, l);
    return sum;
  };
  while (used_at(level + 1) <= budget) ++level;
  Ids kept;
  for (int64_t n : lengths) kept.push_back(std::min(n, level));
  int64_t left = budget - used_at(level);
  for (size_t i = 0; i < lengths.size() && left > 0; ++i) {
    if (lengths[i] > level) {
      ++kept[i];
      --left;
    }
  }
  return kept;
}

TEST(TextSequence, TrimmedLengthsMatchClosedFormRule) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> count(1, 6), length(0, 40), budget(0, 120);
  for (int trial = 0; trial < 2000; ++trial) {
    Ids lengths(static_cast<size_t>(count(rng)));
    for (auto& n : lengths) n = length(rng);
    const int64_t b = budget(rng);
    const Ids kept = trimmed_column_lengths(lengths, b);
    ASSERT_EQ(kept, reference_lengths(lengths, b)) << "trial " << trial;
    const int64_t total = std::accumulate(lengths.begin(), lengths.end(), int64_t{0});
    ASSERT_EQ(std::accumulate(kept.begin(), kept.end(), int64_t{0}), std::min(total, b));
  }
}

TEST(TextSequence, ValidatesOptions) {
  EXPECT_TRUE(Contains(message_of<std::invalid_argument>([] {
                         build_text_sequence({{1}}, options(512, true, 0));
                       }),
                       "text_segment_num must be >= 1"));
  const std::string small = message_of<std::invalid_argument>([] {
    build_text_sequence({{1}, {2}, {3}}, options(3));
  });
  EXPECT_TRUE(Contains(small, "max_text_len 3 is too small"));
  EXPECT_TRUE(Contains(small, "need 4 special tokens"));
  EXPECT_TRUE(Contains(message_of<std::invalid_argument>([] {
                         build_text_sequence({{1}}, options(1, false));
                       }),
                       "need 2 special tokens"));
  EXPECT_TRUE(Contains(message_of<std::invalid_argument>([] {
                         TextSequenceOptions o = options();
                         o.cls_id = -1;
                         build_text_sequence({{1}}, o);
                       }),
                       "cls_id must be set"));
  EXPECT_TRUE(Contains(message_of<std::invalid_argument>([] { build_text_sequence({}, options()); }),
                       "at least one text column"));
  EXPECT_TRUE(Contains(message_of<std::invalid_argument>([] { trimmed_column_lengths({1}, -1); }),
                       "budget must be >= 0"));
}

TEST(TextSequence, PadsBatchToLongest) {
  const TextSequenceOptions o = options();
  const std::vector<TextSequence> batch = {build_text_sequence({{5}}, o),
                                           build_text_sequence({{1, 2}, {3}}, o)};
  const PaddedTextBatch padded = pad_text_batch(batch, 9);
  EXPECT_EQ(padded.batch, 2);
  EXPECT_EQ(padded.length, 6);
  EXPECT_EQ(padded.input_ids, (Ids{kCls, 5, kSep, 9, 9, 9, kCls, 1, 2, kSep, 3, kSep}));
  EXPECT_EQ(padded.token_type_ids, (Ids{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1}));
  EXPECT_EQ(padded.attention_mask, (Ids{1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1}));
}

TEST(TextSequence, PadEdgeCases) {
  const PaddedTextBatch empty = pad_text_batch({}, kPad);
  EXPECT_EQ(empty.batch, 0);
  EXPECT_EQ(empty.length, 0);
  EXPECT_TRUE(empty.input_ids.empty());
  TextSequence broken;
  broken.input_ids = {1, 2};
  broken.token_type_ids = {0};
  broken.attention_mask = {1, 1};
  EXPECT_TRUE(Contains(message_of<std::invalid_argument>([&] { pad_text_batch({broken}, kPad); }),
                       "sequence 0 has 2 input ids but 1 token type ids"));
}

}  // namespace
}  // namespace automm
