// Text drawing with FreeType (text_drawing.h).
#include "data/image/text_drawing.h"

#include <ft2build.h>
#include FT_FREETYPE_H
#include <utf8proc.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <vector>

namespace automm {
namespace {

// Where Debian's fonts-dejavu-core installs DejaVu Sans.
const char* const kDejaVuPaths[] = {"/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"};
const char kFontHint[] = "install fonts-dejavu-core (DejaVu Sans) or set AUTOMM_FONT to a .ttf/.otf file";

std::vector<char32_t> code_points(const std::string& utf8) {
  std::vector<char32_t> out;
  auto* p = reinterpret_cast<const utf8proc_uint8_t*>(utf8.data());
  auto left = static_cast<utf8proc_ssize_t>(utf8.size());
  while (left > 0) {
    utf8proc_int32_t c = -1;
    const utf8proc_ssize_t n = utf8proc_iterate(p, left, &c);
    out.push_back(n > 0 ? static_cast<char32_t>(c) : U'\uFFFD');  // a bad byte: U+FFFD, then go on
    const utf8proc_ssize_t step = n > 0 ? n : 1;
    p += step, left -= step;
  }
  return out;
}

// Renders each glyph with the pen from x = 0 on the baseline and calls
// glyph(bitmap, x, y) with the bitmap's top-left corner (y down from the
// baseline). Returns the pen's advance in pixels.
template <typename Glyph>
int64_t for_each_glyph(FT_Face face, const std::string& utf8, Glyph&& glyph) {
  FT_Pos pen = 0;  // 26.6 fixed point
  FT_UInt previous = 0;
  for (const char32_t c : code_points(utf8)) {
    const FT_UInt index = FT_Get_Char_Index(face, c);  // 0: the font's missing-glyph box
    FT_Vector kerning;
    if (previous && index && FT_HAS_KERNING(face) &&
        !FT_Get_Kerning(face, previous, index, FT_KERNING_DEFAULT, &kerning))
      pen += kerning.x;
    if (FT_Load_Glyph(face, index, FT_LOAD_RENDER)) continue;
    const FT_GlyphSlot slot = face->glyph;
    glyph(slot->bitmap, ((pen + 32) >> 6) + slot->bitmap_left, -int64_t{slot->bitmap_top});
    pen += slot->advance.x;
    previous = index;
  }
  return (pen + 32) >> 6;
}

// The text's box around the pen origin (y down): the font's line height and the
// pen advance, grown to every glyph's ink.
struct Box {
  int64_t left = 0, top = 0, right = 0, bottom = 0;
};

Box text_box(FT_Face face, const std::string& utf8) {
  const FT_Size_Metrics& metrics = face->size->metrics;
  Box box{0, -((metrics.ascender + 63) >> 6), 0, (-metrics.descender + 63) >> 6};
  const int64_t advance = for_each_glyph(face, utf8, [&](const FT_Bitmap& bitmap, int64_t x, int64_t y) {
    if (bitmap.width == 0 || bitmap.rows == 0) return;
    box.left = std::min(box.left, x), box.top = std::min(box.top, y);
    box.right = std::max<int64_t>(box.right, x + bitmap.width);
    box.bottom = std::max<int64_t>(box.bottom, y + bitmap.rows);
  });
  box.right = std::max(box.right, advance);
  return box;
}

// A glyph pixel's coverage, 0 (none) to 255 (all).
int coverage(const FT_Bitmap& bitmap, const unsigned char* row, unsigned col) {
  if (bitmap.pixel_mode == FT_PIXEL_MODE_MONO) return (row[col >> 3] >> (7 - (col & 7))) & 1 ? 255 : 0;
  if (bitmap.pixel_mode != FT_PIXEL_MODE_GRAY || bitmap.num_grays < 2) return 0;
  return row[col] * 255 / (bitmap.num_grays - 1);
}

}  // namespace

std::string find_font() {
  namespace fs = std::filesystem;
  if (const char* chosen = std::getenv("AUTOMM_FONT"); chosen && *chosen) {
    if (fs::is_regular_file(chosen)) return chosen;
    throw std::runtime_error(std::string("AUTOMM_FONT=") + chosen +
                             " is not a font file: set it to a .ttf/.otf file, or unset it and install "
                             "fonts-dejavu-core (DejaVu Sans)");
  }
  std::string tried;
  for (const char* path : kDejaVuPaths) {
    if (fs::is_regular_file(path)) return path;
    tried += (tried.empty() ? "" : ", ") + std::string(path);
  }
  throw std::runtime_error("no font to draw text with (tried " + tried + "): " + kFontHint);
}

struct TextDrawer::Font {
  FT_Library library = nullptr;
  FT_Face face = nullptr;
  ~Font() {
    if (face) FT_Done_Face(face);
    if (library) FT_Done_FreeType(library);
  }
};

TextDrawer::TextDrawer(const std::string& font_path, int pixel_height) : font_(std::make_unique<Font>()) {
  if (pixel_height < 1)
    throw std::invalid_argument("text pixel height must be >= 1, got " + std::to_string(pixel_height));
  if (const FT_Error error = FT_Init_FreeType(&font_->library))
    throw std::runtime_error("FreeType failed to start (error " + std::to_string(error) + ")");
  FT_Error error = FT_New_Face(font_->library, font_path.c_str(), 0, &font_->face);
  if (!error) error = FT_Set_Pixel_Sizes(font_->face, 0, static_cast<FT_UInt>(pixel_height));
  if (error)
    throw std::runtime_error("FreeType cannot load the font " + font_path + " at " +
                             std::to_string(pixel_height) + " pixels (error " + std::to_string(error) +
                             "): " + kFontHint);
}

TextDrawer::~TextDrawer() = default;
TextDrawer::TextDrawer(TextDrawer&&) noexcept = default;
TextDrawer& TextDrawer::operator=(TextDrawer&&) noexcept = default;

TextExtent TextDrawer::measure(const std::string& utf8) const {
  const Box box = text_box(font_->face, utf8);
  return {box.right - box.left, -box.top, box.bottom};
}

void TextDrawer::draw(Image& image, int64_t x, int64_t y, const std::string& utf8, Rgb colour) const {
  const Box box = text_box(font_->face, utf8);
  const int64_t origin_x = x - box.left, baseline = y - box.top;
  for_each_glyph(font_->face, utf8, [&](const FT_Bitmap& bitmap, int64_t gx, int64_t gy) {
    for (unsigned r = 0; r < bitmap.rows; ++r) {
      const int64_t py = baseline + gy + r;
      if (py < 0 || py >= image.height) continue;
      const unsigned char* row = bitmap.buffer + static_cast<std::ptrdiff_t>(r) * bitmap.pitch;
      for (unsigned c = 0; c < bitmap.width; ++c) {
        const int64_t px = origin_x + gx + c;
        const int a = px < 0 || px >= image.width ? 0 : coverage(bitmap, row, c);
        if (a == 0) continue;
        uint8_t* p = image.row(py) + px * 3;
        for (int k = 0; k < 3; ++k)
          p[k] = static_cast<uint8_t>((colour[k] * a + p[k] * (255 - a) + 127) / 255);
      }
    }
  });
}

}  // namespace automm
