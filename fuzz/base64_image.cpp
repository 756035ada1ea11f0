// An image_base64_str cell: base64 text decoded, then the image it holds.
#include "data/image/image_io.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string cell = automm::fuzz::as_string(data, size);
  automm::fuzz::expect_result_or_error([&] {
    const std::string bytes = automm::decode_base64(cell, "row 0 of column 'image'");
    if (bytes.size() > cell.size()) std::abort();  // base64 only ever shrinks
    automm::decode_image(bytes, "row 0 of column 'image'");
  });
  return 0;
}
