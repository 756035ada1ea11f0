// Antialiased text on RGB images (the class names on drawn detection boxes),
// rendered by FreeType from a TrueType/OpenType font file.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "data/image/image.h"

namespace automm {

using Rgb = std::array<uint8_t, 3>;

// The font file for drawn text: $AUTOMM_FONT (a .ttf/.otf path) when set, else
// DejaVu Sans where Debian's fonts-dejavu-core installs it. Throws
// std::runtime_error naming the paths tried when none exists.
std::string find_font();

// The box a text covers, in pixels: its pen advance and every glyph's ink.
struct TextExtent {
  int64_t width = 0;
  int64_t ascent = 0;   // above the baseline
  int64_t descent = 0;  // below the baseline
  int64_t height() const { return ascent + descent; }
};

// One font at one pixel size. Text is UTF-8; invalid bytes draw as U+FFFD.
class TextDrawer {
 public:
  // Throws std::runtime_error when FreeType cannot load the font.
  TextDrawer(const std::string& font_path, int pixel_height);
  ~TextDrawer();
  TextDrawer(TextDrawer&&) noexcept;
  TextDrawer& operator=(TextDrawer&&) noexcept;

  TextExtent measure(const std::string& utf8) const;
  // Blends the text in `colour` by each glyph's coverage, the top-left corner of
  // its measured box at (x, y). Pixels outside the image are skipped.
  void draw(Image& image, int64_t x, int64_t y, const std::string& utf8, Rgb colour) const;

 private:
  struct Font;
  std::unique_ptr<Font> font_;
};

}  // namespace automm
