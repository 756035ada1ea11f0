// JSON Lines tables (read_json_lines).
#include <sstream>

#include "automm/table.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::istringstream in(automm::fuzz::as_string(data, size));
  automm::fuzz::expect_result_or_error([&] {
    const automm::Table table = automm::read_json_lines(in, "fuzz.jsonl");
    for (const auto& column : table.columns())
      if (column.cells.size() != table.num_rows() || column.present.size() != table.num_rows()) std::abort();
  });
  return 0;
}
