// JSON Lines tables (read_json_lines).
#include <sstream>

#include "automm/table.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::istringstream in(automm::fuzz::as_string(data, size));
  automm::fuzz::expect_result_or_error([&] {
    const automm::Table table = automm::read_json_lines(in, "fuzz.jsonl");
    for (const auto& column : table.columns()) {
      if (column.size() != table.num_rows()) std::abort();
      for (size_t r = 0; r < column.size(); ++r)
        if (column.is_missing(r) && !column.text(r).empty()) std::abort();
    }
  });
  return 0;
}
