// CSV and TSV tables (read_delimited): the first byte picks the delimiter.
#include <sstream>

#include "automm/table.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const char delimiter = data[0] % 2 == 0 ? ',' : '\t';
  std::istringstream in(automm::fuzz::as_string(data + 1, size - 1));
  automm::fuzz::expect_result_or_error([&] {
    const automm::Table table = automm::read_delimited(in, delimiter, "fuzz.csv");
    // Every column has one cell per row; a missing one reads as "".
    for (const auto& column : table.columns()) {
      if (column.size() != table.num_rows()) std::abort();
      for (size_t r = 0; r < column.size(); ++r)
        if (column.is_missing(r) && !column.text(r).empty()) std::abort();
    }
  });
  return 0;
}
