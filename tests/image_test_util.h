// Helpers for the image tests: BMP files written without any image library,
// and a generated table whose label depends on the colour of a drawn shape.
#pragma once

#include <cstdint>
#include <fstream>
#include <random>
#include <string>

#include "automm/table.h"
#include "data/image/image.h"
#include "test_util.h"

namespace automm::testing {

// A 24-bit bottom-up BMP (rows padded to 4 bytes).
inline void write_bmp(const std::string& path, const Image& image) {
  const uint32_t row_bytes = static_cast<uint32_t>((image.width * 3 + 3) / 4 * 4);
  const uint32_t data_bytes = row_bytes * static_cast<uint32_t>(image.height);
  std::string out(54, '\0');
  auto put32 = [&](size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) out[at + i] = static_cast<char>((v >> (8 * i)) & 0xFF);
  };
  out[0] = 'B';
  out[1] = 'M';
  put32(2, 54 + data_bytes);
  put32(10, 54);
  put32(14, 40);
  put32(18, static_cast<uint32_t>(image.width));
  put32(22, static_cast<uint32_t>(image.height));
  out[26] = 1;
  out[28] = 24;
  put32(34, data_bytes);
  for (int64_t y = image.height - 1; y >= 0; --y) {
    std::string row(row_bytes, '\0');
    for (int64_t x = 0; x < image.width; ++x)
      for (int c = 0; c < 3; ++c) row[x * 3 + c] = static_cast<char>(image.row(y)[x * 3 + (2 - c)]);  // BGR
    out += row;
  }
  std::ofstream(path, std::ios::binary) << out;
}

// 40x40 noisy grey images with a filled square or disc; label "red" / "blue"
// follows the shape's colour. Column "photo" holds relative paths (files in
// `folder`), "weight" is numerical noise.
inline Table make_shape_table(const std::string& folder, const std::string& prefix, size_t rows, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> noise(-25, 25), pos(6, 20), size(8, 14);
  Column photo("photo"), weight("weight"), label("label");
  for (size_t r = 0; r < rows; ++r) {
    const bool red = rng() % 2 == 0, disc = rng() % 2 == 0;
    Image image(40, 40);
    for (auto& v : image.pixels) v = static_cast<uint8_t>(128 + noise(rng));
    const int cx = pos(rng) + 7, cy = pos(rng) + 7, half = size(rng) / 2;
    for (int y = cy - half; y <= cy + half; ++y)
      for (int x = cx - half; x <= cx + half; ++x) {
        if (x < 0 || y < 0 || x >= 40 || y >= 40) continue;
        if (disc && (x - cx) * (x - cx) + (y - cy) * (y - cy) > half * half) continue;
        uint8_t* p = image.row(y) + x * 3;
        p[0] = red ? 220 : 30;
        p[1] = 40;
        p[2] = red ? 30 : 220;
      }
    const std::string name = prefix + std::to_string(r) + ".bmp";
    write_bmp(folder + "/" + name, image);
    photo.push(name, true);
    weight.push(std::to_string(std::normal_distribution<double>()(rng)), true);
    label.push(red ? "red" : "blue", true);
  }
  Table table;
  for (Column* column : {&photo, &weight, &label}) table.add_column(std::move(*column));
  table.source = folder + "/" + prefix + "table.csv";
  return table;
}

}  // namespace automm::testing
