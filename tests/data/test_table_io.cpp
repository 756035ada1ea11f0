#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "automm/table.h"
#include "test_util.h"

namespace automm {
namespace {

using automm::testing::cells;
using automm::testing::presence;

using automm::testing::Contains;
using automm::testing::message_of;

Table parse_csv(const std::string& text, char delimiter = ',',
                const std::string& source = "mem.csv") {
  std::istringstream in(text);
  return read_delimited(in, delimiter, source);
}

Table parse_jsonl(const std::string& text, const std::string& source = "mem.jsonl") {
  std::istringstream in(text);
  return read_json_lines(in, source);
}

Column make_column(const std::string& name, const std::vector<std::string>& cells,
                   const std::vector<bool>& present) {
  Column c(name);
  for (size_t i = 0; i < cells.size(); ++i) c.push(cells[i], present[i]);
  return c;
}

// ---------------------------------------------------------------------------
// CSV / TSV parsing

TEST(TableIoCsv, ReadsHeaderAndRows) {
  Table t = parse_csv("a,b,c\n1,x,2.5\n3,y,4\n");
  EXPECT_EQ(t.source, "mem.csv");
  EXPECT_EQ(t.column_names(), (std::vector<std::string>{"a", "b", "c"}));
  ASSERT_EQ(t.num_rows(), 2u);
  EXPECT_EQ(cells(t.column("a")), (std::vector<std::string>{"1", "3"}));
  EXPECT_EQ(cells(t.column("b")), (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(cells(t.column("c")), (std::vector<std::string>{"2.5", "4"}));
  EXPECT_EQ(presence(t.column("c")), (std::vector<uint8_t>{1, 1}));
}

TEST(TableIoCsv, QuotedFieldsHoldDelimiterQuotesAndNewlines) {
  Table t = parse_csv(
      "id,text\n"
      "1,\"hello, world\"\n"
      "2,\"she said \"\"hi\"\"\"\n"
      "3,\"line one\nline two\"\n"
      "4,\"crlf\r\ninside\"\r\n"
      "5,\"\"\"\"\n");
  const Column& text = t.column("text");
  ASSERT_EQ(t.num_rows(), 5u);
  EXPECT_EQ(text.text(0), "hello, world");
  EXPECT_EQ(text.text(1), "she said \"hi\"");
  EXPECT_EQ(text.text(2), "line one\nline two");
  EXPECT_EQ(text.text(3), "crlf\r\ninside");  // kept as-is inside quotes
  EXPECT_EQ(text.text(4), "\"");
  EXPECT_EQ(cells(t.column("id")), (std::vector<std::string>{"1", "2", "3", "4", "5"}));
}

TEST(TableIoCsv, SkipsBomAndStripsCrlf) {
  Table t = parse_csv("\xEF\xBB\xBFname,value\r\nx,1\r\ny,\"2\"\r\n");
  EXPECT_EQ(t.column_names(), (std::vector<std::string>{"name", "value"}));
  EXPECT_EQ(cells(t.column("value")), (std::vector<std::string>{"1", "2"}));
  EXPECT_EQ(cells(t.column("name")), (std::vector<std::string>{"x", "y"}));
}

TEST(TableIoCsv, LastLineWithoutNewlineAndBlankLines) {
  Table t = parse_csv("a,b\n1,2\n\n3,4");
  EXPECT_EQ(cells(t.column("b")), (std::vector<std::string>{"2", "4"}));
  Table trailing = parse_csv("a,b\n1,2\n\n  \r\n\n");
  EXPECT_EQ(trailing.num_rows(), 1u);
  Table trailing_delim = parse_csv("a,b\n1,\n");
  EXPECT_TRUE(trailing_delim.column("b").is_missing(0));
}

TEST(TableIoCsv, PassesUtf8Through) {
  Table t = parse_csv("text\n\"caf\xC3\xA9, na\xC3\xAFve\"\n\xE6\x97\xA5\xE6\x9C\xAC\n");
  EXPECT_EQ(t.column("text").text(0), "caf\xC3\xA9, na\xC3\xAFve");
  EXPECT_EQ(t.column("text").text(1), "\xE6\x97\xA5\xE6\x9C\xAC");
}

TEST(TableIoCsv, ReadsTabDelimited) {
  Table t = parse_csv("a\tb\nx y\t\"p\tq\"\n", '\t', "mem.tsv");
  EXPECT_EQ(t.column("a").text(0), "x y");
  EXPECT_EQ(t.column("b").text(0), "p\tq");
}

TEST(TableIoCsv, HeaderOnlyGivesZeroRows) {
  Table t = parse_csv("a,b\n");
  EXPECT_EQ(t.num_columns(), 2u);
  EXPECT_EQ(t.num_rows(), 0u);
}

TEST(TableIoCsv, MarksPandasMissingSpellings) {
  const std::vector<std::string> tokens = {
      "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
      "<NA>", "N/A",      "NA",  "NULL",    "NaN",      "None", "n/a",  "nan",    "null"};
  std::string text = "v,w\n,\"\"\n";
  for (const std::string& tok : tokens) text += tok + ",\"" + tok + "\"\n";
  Table t = parse_csv(text);
  ASSERT_EQ(t.num_rows(), tokens.size() + 1);
  for (size_t r = 0; r < t.num_rows(); ++r) {
    EXPECT_TRUE(t.column("v").is_missing(r)) << "row " << r;
    EXPECT_TRUE(t.column("w").is_missing(r)) << "quoted, row " << r;
    EXPECT_EQ(t.column("v").text(r), "");
  }
  for (const std::string& tok : tokens) EXPECT_TRUE(is_missing_token(tok)) << tok;
  EXPECT_TRUE(is_missing_token(""));
  for (const std::string kept : {"na", " NA", "NA ", "0", "none", "Nan", "N/A N/A", "-"}) {
    EXPECT_FALSE(is_missing_token(kept)) << kept;
  }
  Table kept = parse_csv("v\n na\n-\n");
  EXPECT_EQ(presence(kept.column("v")), (std::vector<uint8_t>{1, 1}));
  EXPECT_EQ(kept.column("v").text(0), " na");
}

TEST(TableIoCsvErrors, FieldCountMismatchNamesFileLineAndCounts) {
  // Row 2 spans lines 2-3, a blank line follows, so the bad row starts on line 5.
  const std::string msg = message_of<std::runtime_error>(
      [] { parse_csv("a,b,c\n1,\"two\nlines\",3\n\n4,5,6,7\n", ',', "data.csv"); });
  EXPECT_TRUE(Contains(msg, "data.csv:5:"));
  EXPECT_TRUE(Contains(msg, "expected 3 fields, found 4"));

  const std::string fewer =
      message_of<std::runtime_error>([] { parse_csv("a,b\r\n1,2\r\n3\r\n", ',', "few.csv"); });
  EXPECT_TRUE(Contains(fewer, "few.csv:3:"));
  EXPECT_TRUE(Contains(fewer, "expected 2 fields, found 1"));
}

TEST(TableIoCsvErrors, UnterminatedQuoteNamesLineWhereItOpened) {
  const std::string msg = message_of<std::runtime_error>(
      [] { parse_csv("a,b\n1,2\n3,\"open\n4,5\n6,7\n", ',', "q.csv"); });
  EXPECT_TRUE(Contains(msg, "q.csv:3:"));
  EXPECT_TRUE(Contains(msg, "unterminated quoted field"));
}

TEST(TableIoCsvErrors, TextAfterClosingQuote) {
  const std::string msg = message_of<std::runtime_error>(
      [] { parse_csv("a,b\n1,2\n\"ab\"c,3\n", ',', "after.csv"); });
  EXPECT_TRUE(Contains(msg, "after.csv:3:"));
  EXPECT_TRUE(Contains(msg, "after the closing quote"));
}

TEST(TableIoCsvErrors, EmptyFile) {
  for (const std::string text : {"", "\xEF\xBB\xBF", "\n\n", "  \r\n \n"}) {
    const std::string msg =
        message_of<std::runtime_error>([&] { parse_csv(text, ',', "empty.csv"); });
    EXPECT_EQ(msg, "empty.csv: the file is empty (no header row)");
  }
}

TEST(TableIoCsvErrors, HeaderNamesMustBeNonEmptyAndUnique) {
  const std::string empty =
      message_of<std::runtime_error>([] { parse_csv("a,,c\n1,2,3\n", ',', "h.csv"); });
  EXPECT_TRUE(Contains(empty, "h.csv:1:"));
  EXPECT_TRUE(Contains(empty, "header column 2 has an empty name"));

  const std::string dup =
      message_of<std::runtime_error>([] { parse_csv("\n\na,b,a\n1,2,3\n", ',', "h.csv"); });
  EXPECT_TRUE(Contains(dup, "h.csv:3:"));
  EXPECT_TRUE(Contains(dup, "duplicate column name 'a'"));
}

TEST(TableIoCsv, ReadsManyRows) {
  std::string text = "id,text\n";
  const size_t n = 50000;
  for (size_t i = 0; i < n; ++i) text += std::to_string(i) + ",\"row, " + std::to_string(i) + "\"\n";
  Table t = parse_csv(text);
  ASSERT_EQ(t.num_rows(), n);
  EXPECT_EQ(t.column("text").text(n - 1), "row, " + std::to_string(n - 1));
}

// ---------------------------------------------------------------------------
// JSON Lines

TEST(TableIoJsonl, ConvertsScalarTypesLikePandas) {
  Table t = parse_jsonl(
      "{\"i\": 3, \"neg\": -7, \"big\": 18446744073709551615, \"f\": 0.1, \"g\": 2.5, "
      "\"whole\": 3.0, \"huge\": 1e20, \"tiny\": 1e-5, \"b\": true, \"c\": false, "
      "\"s\": \"caf\\u00e9\", \"n\": null, \"na\": \"NA\", \"e\": \"\"}\n");
  ASSERT_EQ(t.num_rows(), 1u);
  EXPECT_EQ(t.column("i").text(0), "3");
  EXPECT_EQ(t.column("neg").text(0), "-7");
  EXPECT_EQ(t.column("big").text(0), "18446744073709551615");
  EXPECT_EQ(t.column("f").text(0), "0.1");
  EXPECT_EQ(t.column("g").text(0), "2.5");
  EXPECT_EQ(t.column("whole").text(0), "3.0");
  EXPECT_EQ(t.column("huge").text(0), "1e+20");
  EXPECT_EQ(t.column("tiny").text(0), "1e-05");
  EXPECT_EQ(t.column("b").text(0), "True");
  EXPECT_EQ(t.column("c").text(0), "False");
  EXPECT_EQ(t.column("s").text(0), "caf\xC3\xA9");
  EXPECT_TRUE(t.column("n").is_missing(0));
  EXPECT_TRUE(t.column("na").is_missing(0));
  EXPECT_TRUE(t.column("e").is_missing(0));
  EXPECT_FALSE(t.column("f").is_missing(0));
}

TEST(TableIoJsonl, FormatsFloatsAsShortestRoundTrip) {
  Table t = parse_jsonl(
      "{\"v\": 123.456}\n{\"v\": -0.0}\n{\"v\": 0.0001}\n{\"v\": 1e15}\n{\"v\": 1e16}\n"
      "{\"v\": 1.5e-7}\n{\"v\": 0.30000000000000004}\n{\"v\": 1e100}\n");
  EXPECT_EQ(cells(t.column("v")),
            (std::vector<std::string>{"123.456", "-0.0", "0.0001", "1000000000000000.0", "1e+16",
                                      "1.5e-07", "0.30000000000000004", "1e+100"}));
}

TEST(TableIoJsonl, KeysBecomeColumnsInOrderOfFirstAppearance) {
  Table t = parse_jsonl(
      "\xEF\xBB\xBF{\"b\": 1, \"a\": \"x\"}\r\n"
      "\n"
      "{\"a\": \"y\", \"c\": 2}\r\n"
      "   \n"
      "{\"b\": 3}");
  EXPECT_EQ(t.column_names(), (std::vector<std::string>{"b", "a", "c"}));
  ASSERT_EQ(t.num_rows(), 3u);
  EXPECT_EQ(presence(t.column("b")), (std::vector<uint8_t>{1, 0, 1}));
  EXPECT_EQ(presence(t.column("a")), (std::vector<uint8_t>{1, 1, 0}));
  EXPECT_EQ(presence(t.column("c")), (std::vector<uint8_t>{0, 1, 0}));
  EXPECT_EQ(cells(t.column("c")), (std::vector<std::string>{"", "2", ""}));
  EXPECT_EQ(cells(t.column("a")), (std::vector<std::string>{"x", "y", ""}));
}

TEST(TableIoJsonlErrors, NestedValuesNameFileLineAndKey) {
  const std::string arr = message_of<std::runtime_error>(
      [] { parse_jsonl("{\"a\": 1}\n\n{\"a\": 2, \"tags\": [1, 2]}\n", "n.jsonl"); });
  EXPECT_TRUE(Contains(arr, "n.jsonl:3:"));
  EXPECT_TRUE(Contains(arr, "'tags'"));
  EXPECT_TRUE(Contains(arr, "nested values are not supported"));

  const std::string obj = message_of<std::runtime_error>(
      [] { parse_jsonl("{\"meta\": {\"k\": 1}}\n", "n.jsonl"); });
  EXPECT_TRUE(Contains(obj, "n.jsonl:1:"));
  EXPECT_TRUE(Contains(obj, "'meta'"));
}

TEST(TableIoJsonlErrors, InvalidJsonAndNonObjects) {
  const std::string bad = message_of<std::runtime_error>(
      [] { parse_jsonl("{\"a\": 1}\n{\"a\": }\n", "bad.jsonl"); });
  EXPECT_TRUE(Contains(bad, "bad.jsonl:2:"));
  EXPECT_TRUE(Contains(bad, "invalid JSON"));
  EXPECT_TRUE(Contains(bad, "parse error"));  // the parser's own message

  const std::string trailing = message_of<std::runtime_error>(
      [] { parse_jsonl("{\"a\": 1} {\"a\": 2}\n", "bad.jsonl"); });
  EXPECT_TRUE(Contains(trailing, "bad.jsonl:1:"));

  const std::string array =
      message_of<std::runtime_error>([] { parse_jsonl("[1, 2]\n", "arr.json"); });
  EXPECT_TRUE(Contains(array, "arr.json:1:"));
  EXPECT_TRUE(Contains(array, "expected a JSON object"));

  const std::string scalar =
      message_of<std::runtime_error>([] { parse_jsonl("{\"a\": 1}\n42\n", "s.jsonl"); });
  EXPECT_TRUE(Contains(scalar, "s.jsonl:2:"));
}

TEST(TableIoJsonlErrors, EmptyInput) {
  const std::string msg =
      message_of<std::runtime_error>([] { parse_jsonl("\n  \n", "e.jsonl"); });
  EXPECT_TRUE(Contains(msg, "e.jsonl"));
  EXPECT_TRUE(Contains(msg, "empty"));
}

// ---------------------------------------------------------------------------
// Table

// --- Limits (docs/hardening.md): refused with an error, in bounded time and memory ---

TEST(TableIoLimits, DeeplyNestedJsonLineIsRefusedNotACrash) {
  // 200000 levels used to overflow the stack of the code walking the parsed value.
  const std::string deep = "{\"label\": 1}\n{\"a\": " + std::string(200000, '[') + std::string(200000, ']') + "}\n";
  const std::string message = message_of<std::runtime_error>([&] { parse_jsonl(deep); });
  EXPECT_TRUE(Contains(message, "mem.jsonl:2"));
  EXPECT_TRUE(Contains(message, "nests deeper than 100 levels"));
  // Brackets inside strings are text, not nesting.
  const Table table = parse_jsonl("{\"a\": \"" + std::string(500, '[') + "\\\"[\"}\n");
  EXPECT_EQ(table.column("a").text(0), std::string(500, '[') + "\"[");
}

TEST(TableIoLimits, OversizedCellIsRefusedNamingLineAndColumn) {
  const std::string big(33u << 20, 'x');
  const std::string csv_message = message_of<std::runtime_error>([&] { parse_csv("a,b\n1,2\n3," + big + "\n"); });
  EXPECT_TRUE(Contains(csv_message, "mem.csv:3"));
  EXPECT_TRUE(Contains(csv_message, "column 2 holds 34603008 bytes, more than the 32 MiB"));
  // An unterminated quote swallowing a file is the usual cause.
  EXPECT_TRUE(Contains(message_of<std::runtime_error>([&] { parse_csv("a\n\"" + big + "\"\n"); }), "more than the 32 MiB"));
  EXPECT_TRUE(Contains(message_of<std::runtime_error>([&] { parse_jsonl("{\"t\": \"" + big + "\"}\n"); }), "mem.jsonl:1"));
}

TEST(TableIoLimits, MillionColumnHeaderIsRefusedQuickly) {
  std::string header;
  for (int i = 0; i < 1000000; ++i) header += (i ? ",c" : "c") + std::to_string(i);
  // Duplicate names are found by hashing, not by comparing every pair.
  EXPECT_TRUE(Contains(message_of<std::runtime_error>([&] { parse_csv(header + "\n"); }), "more than 100000 columns"));
  std::string wide;
  for (int i = 0; i < 50000; ++i) wide += (i ? ",c" : "c") + std::to_string(i);
  EXPECT_TRUE(Contains(message_of<std::runtime_error>([&] { parse_csv(wide + ",c17\n"); }), "columns 18 and 50001"));
}

TEST(TableIoLimits, RowsThatEachBringNewKeysAreRefused) {
  std::string text;
  for (int i = 0; i < 6000; ++i) text += "{\"k" + std::to_string(i) + "\": 1}\n";
  const std::string message = message_of<std::runtime_error>([&] { parse_jsonl(text); });
  EXPECT_TRUE(Contains(message, "cells of the keys other rows have, more than four per value in the file"));
  // Sparse keys in moderation are fine: every row lacks some.
  const Table sparse = parse_jsonl("{\"a\": 1}\n{\"b\": 2}\n{\"a\": 3, \"c\": 4}\n");
  EXPECT_EQ(sparse.num_columns(), 3u);
  EXPECT_EQ(presence(sparse.column("c")), (std::vector<uint8_t>{0, 0, 1}));
}

TEST(TableIoTable, ColumnNotFoundListsColumns) {
  Table t = parse_csv("a,b,c\n1,2,3\n", ',', "train.csv");
  const std::string msg = message_of<std::invalid_argument>([&] { t.column("x"); });
  EXPECT_EQ(msg, "column 'x' not found in train.csv; columns are: a, b, c");
  const Table& ct = t;
  EXPECT_THROW(ct.column("x"), std::invalid_argument);
  EXPECT_TRUE(t.has_column("b"));
  EXPECT_FALSE(t.has_column("x"));
}

TEST(TableIoTable, EmptyTableHasNoRows) {
  Table t;
  EXPECT_EQ(t.num_rows(), 0u);
  EXPECT_EQ(t.num_columns(), 0u);
  EXPECT_EQ(t.source, "<memory>");
}

TEST(TableIoTable, AddAndDropColumns) {
  Table t;
  t.add_column(make_column("a", {"1", "", "3"}, {true, false, true}));
  EXPECT_EQ(t.num_rows(), 3u);
  t.add_column(make_column("b", {"x", "y", "z"}, {true, true, true}));

  const std::string dup = message_of<std::invalid_argument>(
      [&] { t.add_column(make_column("a", {"1", "2", "3"}, {true, true, true})); });
  EXPECT_TRUE(Contains(dup, "'a'"));
  const std::string len = message_of<std::invalid_argument>(
      [&] { t.add_column(make_column("c", {"1"}, {true})); });
  EXPECT_TRUE(Contains(len, "'c'"));
  EXPECT_TRUE(Contains(len, "1 rows"));

  t.drop_column("a");
  EXPECT_EQ(t.column_names(), (std::vector<std::string>{"b"}));
  const std::string missing = message_of<std::invalid_argument>([&] { t.drop_column("a"); });
  EXPECT_TRUE(Contains(missing, "column 'a' not found"));
}

TEST(TableIoTable, SelectRowsKeepsOrderAndSource) {
  Table t = parse_csv("a,b\n0,x\n1,\n2,z\n", ',', "src.csv");
  Table s = t.select_rows({2, 0, 2, 1});
  EXPECT_EQ(s.source, "src.csv");
  EXPECT_EQ(s.column_names(), t.column_names());
  EXPECT_EQ(cells(s.column("a")), (std::vector<std::string>{"2", "0", "2", "1"}));
  EXPECT_EQ(presence(s.column("b")), (std::vector<uint8_t>{1, 1, 1, 0}));
  EXPECT_EQ(t.select_rows({}).num_rows(), 0u);
  EXPECT_THROW(t.select_rows({0, 3}), std::out_of_range);
}

// ---------------------------------------------------------------------------
// Writing

TEST(TableIoWrite, QuotesOnlyWhenNeeded) {
  Table t;
  t.add_column(make_column("id", {"1", "2", "3", "4"}, {true, true, true, true}));
  t.add_column(make_column("text", {"plain", "a,b", "say \"hi\"", "two\nlines"},
                           {true, true, true, true}));
  t.add_column(make_column("pad", {" lead", "trail ", "", "ok"}, {true, true, false, true}));
  std::ostringstream out;
  write_delimited(t, out);
  EXPECT_EQ(out.str(),
            "id,text,pad\n"
            "1,plain,\" lead\"\n"
            "2,\"a,b\",\"trail \"\n"
            "3,\"say \"\"hi\"\"\",\n"
            "4,\"two\nlines\",ok\n");

  std::ostringstream tsv;
  write_delimited(t.select_rows({1}), tsv, '\t');
  EXPECT_EQ(tsv.str(), "id\ttext\tpad\n2\ta,b\t\"trail \"\n");
}

TEST(TableIoWrite, RoundTripsCellsAndPresence) {
  Table t;
  t.add_column(make_column("a b", {"x", "", "caf\xC3\xA9", "\"q\"", " s "},
                           {true, false, true, true, true}));
  t.add_column(make_column("c,d", {"1\r\n2", "3", "", "\t", "4,5"},
                           {true, true, false, true, true}));
  for (char delimiter : {',', '\t'}) {
    std::stringstream buffer;
    write_delimited(t, buffer, delimiter);
    Table back = read_delimited(buffer, delimiter, "round");
    ASSERT_EQ(back.column_names(), t.column_names());
    for (const Column& c : t.columns()) {
      EXPECT_EQ(cells(back.column(c.name())), cells(c)) << c.name();
      EXPECT_EQ(presence(back.column(c.name())), presence(c)) << c.name();
    }
  }
}

TEST(TableIoWrite, SingleColumnMissingCellsSurviveRoundTrip) {
  Table t;
  t.add_column(make_column("only", {"a", "", "b"}, {true, false, true}));
  std::stringstream buffer;
  write_delimited(t, buffer);
  Table back = read_delimited(buffer, ',', "round");
  EXPECT_EQ(presence(back.column("only")), (std::vector<uint8_t>{1, 0, 1}));
}

// ---------------------------------------------------------------------------
// Files

class TableIoFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<int> counter{0};
    dir_ = std::filesystem::temp_directory_path() /
           ("automm_table_io_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  std::string write_file(const std::string& name, const std::string& text) {
    const std::string path = (dir_ / name).string();
    std::ofstream out(path, std::ios::binary);
    out << text;
    return path;
  }

  std::filesystem::path dir_;
};

TEST_F(TableIoFiles, ReadTableChoosesFormatByExtension) {
  const std::string csv = write_file("t.csv", "a,b\n1,\"x,y\"\n");
  Table t = read_table(csv);
  EXPECT_EQ(t.source, csv);
  EXPECT_EQ(t.column("b").text(0), "x,y");

  for (const std::string name : {"t.tsv", "T.TSV", "t.tab"}) {
    Table tsv = read_table(write_file(name, "a\tb\n1\tx,y\n"));
    EXPECT_EQ(tsv.column("b").text(0), "x,y") << name;
  }
  for (const std::string name : {"t.jsonl", "t.ndjson", "t.json", "t.JsonL"}) {
    Table js = read_table(write_file(name, "{\"a\": 1, \"b\": null}\n"));
    EXPECT_EQ(js.column("a").text(0), "1") << name;
    EXPECT_TRUE(js.column("b").is_missing(0)) << name;
  }
}

TEST_F(TableIoFiles, ErrorsNameThePath) {
  const std::string bad = write_file("bad.csv", "a,b\n1,2,3\n");
  const std::string msg = message_of<std::runtime_error>([&] { read_table(bad); });
  EXPECT_TRUE(Contains(msg, bad + ":2:"));

  const std::string unknown = write_file("t.parquet", "");
  const std::string ext = message_of<std::invalid_argument>([&] { read_table(unknown); });
  EXPECT_TRUE(Contains(ext, "t.parquet"));
  EXPECT_TRUE(Contains(ext, ".csv, .tsv, .tab, .jsonl, .ndjson, .json"));

  const std::string absent = (dir_ / "absent.csv").string();
  const std::string open = message_of<std::runtime_error>([&] { read_table(absent); });
  EXPECT_TRUE(Contains(open, absent));
  EXPECT_TRUE(Contains(open, "No such file or directory"));
}

TEST_F(TableIoFiles, WriteCsvRoundTripsThroughReadTable) {
  Table t = parse_csv("name,score,note\nann,1.5,\"multi\nline\"\nbob,NA,\"a,b\"\n");
  const std::string path = (dir_ / "out.csv").string();
  write_csv(t, path);
  Table back = read_table(path);
  EXPECT_EQ(back.source, path);
  for (const Column& c : t.columns()) {
    EXPECT_EQ(cells(back.column(c.name())), cells(c));
    EXPECT_EQ(presence(back.column(c.name())), presence(c));
  }

  const std::string unwritable = (dir_ / "no_such_dir" / "out.csv").string();
  const std::string msg = message_of<std::runtime_error>([&] { write_csv(t, unwritable); });
  EXPECT_TRUE(Contains(msg, unwritable));
}

}  // namespace
}  // namespace automm
