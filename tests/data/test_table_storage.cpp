// Column storages (dictionary, numbers, text) and the streaming delimited reader:
// results must not depend on how a column is held, on block boundaries or on the
// number of threads.
#include <algorithm>
#include <cmath>
#include <random>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include <gtest/gtest.h>

#include "automm/table.h"
#include "data/processors.h"
#include "test_util.h"

namespace automm {
namespace {

using automm::testing::Contains;
using automm::testing::message_of;
using automm::testing::ScopedEnv;
using automm::testing::cells;
using automm::testing::presence;

Table parse_csv(const std::string& text, const std::string& source = "big.csv") {
  std::istringstream in(text);
  return read_delimited(in, ',', source);
}

std::string number_text(size_t i) { return std::to_string(static_cast<double>(i) * 0.25 - 7.0); }

TEST(TableStorage, ColumnsChooseTheirStorageAsTheyFill) {
  Column few("few"), numbers("numbers"), texts("texts"), late("late");
  for (size_t i = 0; i < 70000; ++i) {
    few.push(i % 3 == 0 ? "red" : "blue", true);
    numbers.push(number_text(i), i % 10 != 0);
    texts.push("word " + std::to_string(i), true);
    late.push(i < 5000 ? number_text(i) : "text " + std::to_string(i), true);
  }
  EXPECT_EQ(few.storage(), Column::Storage::kDictionary);
  EXPECT_EQ(numbers.storage(), Column::Storage::kNumbers);
  EXPECT_EQ(texts.storage(), Column::Storage::kText);
  EXPECT_EQ(late.storage(), Column::Storage::kText);  // text after numbers: the documented fallback
  EXPECT_EQ(few.dictionary().size(), 2u);
  EXPECT_EQ(numbers.number(1), std::optional<double>(-6.75));
  EXPECT_EQ(numbers.text(1), "-6.75");  // shortest round-trip form of "-6.750000"
  EXPECT_TRUE(numbers.is_missing(0));
  EXPECT_EQ(numbers.text(0), "");
  EXPECT_EQ(numbers.count_present(), 63000u);
  EXPECT_EQ(texts.text(69999), "word 69999");
  EXPECT_EQ(late.text(4), "-6");
  EXPECT_EQ(late.text(6000), "text 6000");
  EXPECT_FALSE(late.holds_only_numbers());
  EXPECT_TRUE(numbers.holds_only_numbers());
  EXPECT_THROW(numbers.dictionary(), std::logic_error);
}

// The same cells held three ways answer every question the same way.
TEST(TableStorage, AnswersDoNotDependOnTheStorage) {
  const std::vector<std::string> values = {"3", "1.5", "", "x", "3", "NA", "2", "1.5"};
  auto held_as = [&](Column::Storage storage) {
    Column column("c");
    // Fill past the thresholds with other values first, then drop those rows.
    size_t filler = 0;
    if (storage == Column::Storage::kNumbers) filler = Column::kMaxNumberDictionary + 1;
    if (storage == Column::Storage::kText) filler = Column::kMaxDictionary + 1;
    for (size_t i = 0; i < filler; ++i)
      column.push(storage == Column::Storage::kText ? "t" + std::to_string(i) : std::to_string(1000 + i), true);
    std::vector<size_t> keep;
    for (const std::string& v : values) {
      keep.push_back(column.size());
      column.push(v, !is_missing_token(v));
    }
    Column selected = column.select(keep);
    EXPECT_EQ(selected.storage(), storage);
    return selected;
  };
  const Column dictionary = held_as(Column::Storage::kDictionary);
  const Column text = held_as(Column::Storage::kText);
  for (const Column* column : {&dictionary, &text}) {
    EXPECT_EQ(cells(*column), (std::vector<std::string>{"3", "1.5", "", "x", "3", "", "2", "1.5"}));
    EXPECT_EQ(presence(*column), (std::vector<uint8_t>{1, 1, 0, 1, 1, 0, 1, 1}));
    const auto counts = column->value_counts();
    EXPECT_EQ(counts.size(), 4u);
    EXPECT_EQ(counts.at("3"), 2u);
    EXPECT_EQ(counts.at("1.5"), 2u);
    EXPECT_EQ(column->count_distinct(10), 4u);
    EXPECT_EQ(column->count_distinct(2), 3u);  // stops counting past the limit
    EXPECT_FALSE(column->holds_only_numbers());
    EXPECT_EQ(column->number(1), std::optional<double>(1.5));
    EXPECT_EQ(column->number(3), std::nullopt);
    EXPECT_EQ(column->index_of({{"3", 0}, {"x", 1}}, -1), (std::vector<int64_t>{0, -1, -1, 1, 0, -1, -1, -1}));
  }
  // Numbers only (a column held as numbers cannot hold "x").
  const std::vector<std::string> numeric = {"3", "1.5", "", "2", "3"};
  Column small("n"), big("n");
  for (size_t i = 0; i <= Column::kMaxNumberDictionary; ++i) big.push(std::to_string(i + 10), true);
  std::vector<size_t> keep;
  for (const std::string& v : numeric) {
    small.push(v, !v.empty());
    keep.push_back(big.size());
    big.push(v, !v.empty());
  }
  const Column numbers = big.select(keep);
  ASSERT_EQ(numbers.storage(), Column::Storage::kNumbers);
  EXPECT_EQ(cells(numbers), cells(small));
  EXPECT_EQ(numbers.value_counts(), small.value_counts());
  EXPECT_EQ(numbers.count_distinct(10), small.count_distinct(10));
  EXPECT_TRUE(numbers.holds_only_numbers() && small.holds_only_numbers());
  EXPECT_EQ(numbers.index_of({{"3", 7}}, -1), small.index_of({{"3", 7}}, -1));
}

TEST(TableStorage, CopiesShareDataUntilChanged) {
  Table table;
  table.add_column(Column::from_cells("a", {"1", "2"}));
  Table copy = table;
  copy.column("a").push("3", true);
  copy.column("a").set_name("b");
  EXPECT_EQ(cells(table.column("a")), (std::vector<std::string>{"1", "2"}));
  EXPECT_EQ(cells(copy.column("b")), (std::vector<std::string>{"1", "2", "3"}));
  Column appended = table.column("a");
  appended.append(copy.column("b"));
  EXPECT_EQ(cells(appended), (std::vector<std::string>{"1", "2", "1", "2", "3"}));
  EXPECT_EQ(table.column("a").size(), 2u);
}

TEST(TableStorage, SelectedRowsAreViewsThatCopyWhenChanged) {
  Table table;
  Column word("word"), value("value");
  for (size_t i = 0; i < 2000; ++i) {  // value: 2000 distinct numbers, held as numbers
    word.push(i % 3 == 0 ? "" : "w" + std::to_string(i % 4), i % 3 != 0);
    value.push(std::to_string(i) + ".5", true);
  }
  table.add_column(std::move(word));
  table.add_column(std::move(value));
  const Table picked = table.select_rows({5, 1, 3, 6});
  EXPECT_EQ(cells(picked.column("word")), (std::vector<std::string>{"w1", "w1", "", ""}));
  EXPECT_EQ(cells(picked.column("value")), (std::vector<std::string>{"5.5", "1.5", "3.5", "6.5"}));
  EXPECT_EQ(picked.column("word").count_present(), 2u);
  EXPECT_EQ(picked.column("word").value_counts(), (std::unordered_map<std::string, size_t>{{"w1", 2}}));
  EXPECT_EQ(picked.column("word").count_distinct(5), 1u);
  EXPECT_EQ(picked.column("word").index_of({{"w1", 4}}, -1), (std::vector<int64_t>{4, 4, -1, -1}));
  EXPECT_TRUE(picked.column("value").holds_only_numbers());
  EXPECT_EQ(picked.column("value").number(2), std::optional<double>(3.5));

  const Table again = picked.select_rows({3, 0});  // rows 6 and 5 of the table
  EXPECT_EQ(cells(again.column("value")), (std::vector<std::string>{"6.5", "5.5"}));
  EXPECT_EQ(presence(again.column("word")), (std::vector<uint8_t>{0, 1}));

  Table changed = again;
  changed.column("value").push("7", true);
  changed.column("word").append(changed.column("word"));  // a view appended to itself
  EXPECT_EQ(cells(changed.column("value")), (std::vector<std::string>{"6.5", "5.5", "7"}));
  EXPECT_EQ(cells(changed.column("word")), (std::vector<std::string>{"", "w1", "", "w1"}));
  EXPECT_EQ(cells(again.column("value")), (std::vector<std::string>{"6.5", "5.5"}));
  EXPECT_EQ(cells(picked.column("value")), (std::vector<std::string>{"5.5", "1.5", "3.5", "6.5"}));
  EXPECT_EQ(table.column("value").size(), 2000u);
  EXPECT_EQ(table.column("value").text(6), "6.5");
}

// A file of several blocks whose cells hold quotes, delimiters and newlines, some
// records longer than others: read in blocks, with 1 and 3 threads, it gives back
// exactly what was written.
TEST(TableStorage, StreamingReadMatchesWhatWasWrittenWhateverTheThreads) {
  std::mt19937_64 rng(7);
  const std::vector<std::string> pieces = {"plain", "with,comma", "with \"quote\"", "two\nlines", "",
                                           "NA",    "caf\xC3\xA9",  "  padded  ",     "\r\nCRLF"};
  Table written;
  Column id("id"), number("number"), text("text"), category("category");
  const size_t rows = 100000;  // about 11 MB: more than one block
  for (size_t r = 0; r < rows; ++r) {
    id.push(std::to_string(r), true);
    const double x = std::normal_distribution<double>()(rng);
    number.push(std::to_string(x), true);
    std::string t;
    for (int k = 0; k < 1 + static_cast<int>(rng() % 12); ++k) t += pieces[rng() % pieces.size()] + " ";
    if (r % 9973 == 0) t = std::string(300000, 'y');  // a few long records
    text.push(t, !is_missing_token(t));
    const std::string c = "c" + std::to_string(rng() % 7);
    category.push(c, r % 11 != 0);
  }
  for (Column* c : {&id, &number, &text, &category}) written.add_column(std::move(*c));
  std::ostringstream out;
  write_delimited(written, out);
  const std::string csv = out.str();
  ASSERT_GT(csv.size(), size_t{8} << 20);

  for (const char* threads : {"1", "3"}) {
    ScopedEnv env({{"AUTOMM_NUM_THREADS", threads}});
    const Table read = parse_csv(csv);
    ASSERT_EQ(read.num_rows(), rows) << threads;
    for (const std::string& name : written.column_names()) {
      EXPECT_EQ(cells(read.column(name)), cells(written.column(name))) << name << ", threads " << threads;
      EXPECT_EQ(presence(read.column(name)), presence(written.column(name))) << name;
    }
    EXPECT_EQ(read.column("number").storage(), Column::Storage::kNumbers);
    EXPECT_EQ(read.column("category").storage(), Column::Storage::kDictionary);
  }
}

// One header and `rows` good rows of three columns, the physical line of row r being r + 2.
std::string good_rows(size_t rows) {
  std::string csv = "a,b,c\n";
  for (size_t r = 0; r < rows; ++r) csv += std::to_string(r) + "," + number_text(r) + ",word" + std::to_string(r % 5) + "\n";
  return csv;
}

TEST(TableStorage, BadRowsDeepInAFileNameTheirLine) {
  const size_t rows = 400000;  // about 12 MB: the bad rows are past the first blocks
  std::string csv = good_rows(rows);
  const std::string ragged = csv + "1,2\n" + "3,4,5\n";
  EXPECT_TRUE(Contains(message_of<std::runtime_error>([&] { parse_csv(ragged); }),
                       "big.csv:" + std::to_string(rows + 2) + ": expected 3 fields, found 2"));

  const std::string truncated = csv + "7,8";
  const std::string message = message_of<std::runtime_error>([&] { parse_csv(truncated); });
  EXPECT_TRUE(Contains(message, "big.csv:" + std::to_string(rows + 2) + ":")) << message;
  EXPECT_TRUE(Contains(message, "truncated")) << message;

  const std::string open_quote = csv + "7,8,\"never closed\n9,9,9\n";
  EXPECT_TRUE(Contains(message_of<std::runtime_error>([&] { parse_csv(open_quote); }),
                       std::to_string(rows + 2) + ": unterminated quoted field"));

  std::string latin1 = csv;
  latin1.insert(latin1.find("\n", latin1.size() / 2) + 1, "1,2,caf\xE9\n");
  const size_t line = static_cast<size_t>(std::count(latin1.begin(), latin1.begin() + latin1.find("caf\xE9"), '\n')) + 1;
  const std::string utf8 = message_of<std::runtime_error>([&] { parse_csv(latin1); });
  EXPECT_TRUE(Contains(utf8, "big.csv:" + std::to_string(line) + ": column 'c' is not valid UTF-8 (byte 0xE9"))
      << utf8;
}

TEST(TableStorage, TextAfterManyNumbersMakesATextColumn) {
  std::string csv = "x,y\n";
  const size_t rows = 200000;
  for (size_t r = 0; r < rows; ++r) csv += number_text(r) + "," + std::to_string(r % 2) + "\n";
  csv += "not a number,1\n";
  const Table table = parse_csv(csv);
  const Column& x = table.column("x");
  EXPECT_EQ(x.storage(), Column::Storage::kText);
  EXPECT_EQ(x.text(1), "-6.75");
  EXPECT_EQ(x.text(rows), "not a number");
  const ColumnTypes types = infer_column_types(table, nullptr, "y", {});
  EXPECT_NE(types.at("x"), ColumnType::kNumerical);
}

TEST(TableStorage, ARecordLongerThanABlockIsRead) {
  const std::string cell(20u << 20, 'z');  // 20 MiB: longer than a block, under the cell limit
  const Table table = parse_csv("a,b\n1,\"" + cell + "\"\n2,short\n");
  ASSERT_EQ(table.num_rows(), 2u);
  EXPECT_EQ(table.column("b").text(0).size(), cell.size());
  EXPECT_EQ(table.column("b").text(1), "short");
}

}  // namespace
}  // namespace automm
