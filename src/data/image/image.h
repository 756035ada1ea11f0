// An 8-bit RGB image in memory, as decoded from a file or bytes, and what the
// image transforms read and write.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace automm {

struct Image {
  int64_t width = 0;
  int64_t height = 0;
  std::vector<uint8_t> pixels;  // row-major [height, width, 3] RGB

  Image() = default;
  Image(int64_t w, int64_t h) : width(w), height(h), pixels(static_cast<size_t>(w * h * 3), 0) {}
  uint8_t* row(int64_t y) { return pixels.data() + y * width * 3; }
  const uint8_t* row(int64_t y) const { return pixels.data() + y * width * 3; }
  bool empty() const { return width == 0 || height == 0; }
};

// A file or buffer that is not a readable image; what() names the source and why.
class ImageDecodeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace automm
