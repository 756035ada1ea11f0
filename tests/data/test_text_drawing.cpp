// Text drawn with FreeType (src/data/image/text_drawing.cpp) and the class names
// it writes on drawn detection boxes (draw_detection_files): ink only inside the
// measured box, UTF-8 with bad bytes as U+FFFD, clipping at the image's edges,
// and errors that say how to get a font.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>

#include "automm/predictions.h"
#include "automm/table.h"
#include "data/image/detection_files.h"
#include "data/image/image_io.h"
#include "data/image/text_drawing.h"
#include "test_util.h"

namespace automm {
namespace {

using testing::ScopedEnv;
using testing::TempDir;

const Rgb kBlack{0, 0, 0};

Image filled(int64_t width, int64_t height, uint8_t value) {
  Image image(width, height);
  std::fill(image.pixels.begin(), image.pixels.end(), value);
  return image;
}

// Drawn on a white width x height image at (x, y), 20 pixels high, in black.
Image drawn(const std::string& text, int64_t x = 4, int64_t y = 4, int64_t width = 120, int64_t height = 40) {
  Image image = filled(width, height, 255);
  TextDrawer(find_font(), 20).draw(image, x, y, text, kBlack);
  return image;
}

TEST(TextDrawing, InkStaysInsideTheMeasuredBox) {
  const TextDrawer drawer(find_font(), 20);
  const TextExtent extent = drawer.measure("Ag");
  EXPECT_GE(extent.ascent, 14);  // a capital at 20 pixels
  EXPECT_GE(extent.descent, 3);  // g's tail
  EXPECT_GT(extent.width, drawer.measure("A").width);
  const Image image = drawn("Ag", 10, 5);
  int64_t dark = 0, changed = 0;
  for (int64_t y = 0; y < image.height; ++y)
    for (int64_t x = 0; x < image.width; ++x) {
      const uint8_t* p = image.row(y) + x * 3;
      if (p[0] == 255 && p[1] == 255 && p[2] == 255) continue;
      ++changed;
      EXPECT_TRUE(x >= 10 && x < 10 + extent.width && y >= 5 && y < 5 + extent.height()) << x << "," << y;
      EXPECT_TRUE(p[0] == p[1] && p[1] == p[2]);  // black blended into white: grey
      dark += p[0] < 64;
    }
  EXPECT_GT(dark, 40);       // solid strokes, not just antialiased edges
  EXPECT_GT(changed, dark);  // and antialiased edges
}

TEST(TextDrawing, Utf8NamesAndBadBytes) {
  EXPECT_NO_THROW(drawn("Café ü"));
  EXPECT_NE(drawn("Café ü").pixels, drawn("Cafe u").pixels);
  // A byte that starts no UTF-8 sequence draws as U+FFFD, and the text goes on.
  const std::string bad = std::string("a\xff") + "b";
  EXPECT_EQ(drawn(bad).pixels, drawn("a\uFFFDb").pixels);
  EXPECT_NE(drawn(bad).pixels, drawn("ab").pixels);
  EXPECT_NE(drawn("Ab").pixels, drawn("Ac").pixels);  // control: the letters matter
}

TEST(TextDrawing, ClipsAtTheImageEdges) {
  // Partly off the top-left: what shows equals the same text drawn whole, shifted.
  const Image whole = drawn("Wg", 0, 0);
  const Image clipped = drawn("Wg", -5, -8);
  bool any = false;
  for (int64_t y = 0; y + 8 < whole.height; ++y)
    for (int64_t x = 0; x + 5 < whole.width; ++x)
      for (int k = 0; k < 3; ++k) {
        ASSERT_EQ(clipped.row(y)[x * 3 + k], whole.row(y + 8)[(x + 5) * 3 + k]) << x << "," << y;
        any |= clipped.row(y)[x * 3 + k] != 255;
      }
  EXPECT_TRUE(any);
  // Overflowing the bottom-right, or far outside: no crash, nothing outside drawn.
  EXPECT_NE(drawn("Wg", 110, 30).pixels, filled(120, 40, 255).pixels);
  for (const int64_t at : {int64_t{-1000000}, int64_t{1000000}})
    EXPECT_EQ(drawn("Wg", at, at).pixels, filled(120, 40, 255).pixels);
  Image tiny = filled(1, 1, 255);
  TextDrawer(find_font(), 20).draw(tiny, 0, 0, "W", kBlack);
  EXPECT_NO_THROW(drawn("", 0, 0));
}

TEST(TextDrawing, FontErrorsSayHowToGetOne) {
  TempDir dir;
  {
    ScopedEnv env({{"AUTOMM_FONT", dir.file("missing.ttf")}});
    const std::string error = testing::error_of([] { find_font(); });
    EXPECT_NE(error.find(dir.file("missing.ttf")), std::string::npos) << error;
    EXPECT_NE(error.find("fonts-dejavu-core"), std::string::npos) << error;
  }
  {
    ScopedEnv env({{"AUTOMM_FONT", ""}});  // unset: DejaVu Sans where Debian puts it
    EXPECT_EQ(find_font(), "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf");
    ScopedEnv chosen({{"AUTOMM_FONT", "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"}});
    EXPECT_EQ(find_font(), "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf");
  }
  testing::write_file(dir.file("not_a_font.ttf"), "plain text");
  const std::string error = testing::error_of([&] { TextDrawer(dir.file("not_a_font.ttf"), 12); });
  EXPECT_NE(error.find(dir.file("not_a_font.ttf")), std::string::npos) << error;
  EXPECT_NE(error.find("AUTOMM_FONT"), std::string::npos) << error;
}

// Pixels of `colour` in rows [y0, y1) and columns [x0, x1).
int64_t count_colour(const Image& image, const Rgb& colour, int64_t x0, int64_t x1, int64_t y0, int64_t y1) {
  int64_t n = 0;
  for (int64_t y = y0; y < y1; ++y)
    for (int64_t x = x0; x < x1; ++x) n += std::equal(colour.begin(), colour.end(), image.row(y) + x * 3);
  return n;
}

// draw_detection_files writes "<class name> <score>" on a box-coloured label:
// above the box, or inside it where the box touches the image's top.
TEST(TextDrawing, DetectionLabelsNameTheClasses) {
  TempDir dir;
  const Image grey = filled(240, 160, 128);
  testing::write_file(dir.file("photo.png"), encode_png(grey.pixels.data(), grey.width, grey.height, 3));
  Table table;
  table.add_column(testing::make_column("image", {dir.file("photo.png")}));
  const auto draw = [&](const std::string& name, float top, const std::string& folder) {
    Predictions p;
    p.box_format = "xyxy";
    p.classes = {name};
    p.detections.push_back(
        {torch::tensor({{20.f, top, 200.f, 150.f}}), torch::tensor({0.87f}), torch::tensor({int64_t{0}})});
    draw_detection_files(table, "image", p, dir.file(folder));
    return read_image(dir.file(folder + "/photo.png"));
  };
  const Rgb box_colour{60, 200, 20};  // class 0's; light, so its text is black
  const Image cat = draw("cat", 60, "cat"), bird = draw("bird", 60, "bird");
  // Above the box (rows < 60) from its left edge: a label in the box's colour
  // that differs with the class name; nothing else differs.
  EXPECT_GT(count_colour(cat, box_colour, 20, 240, 0, 60), 100);
  EXPECT_EQ(count_colour(cat, box_colour, 21, 199, 61, 149), 0);  // the box's inside stays clear
  bool differ_above = false, differ_elsewhere = false;
  for (int64_t y = 0; y < cat.height; ++y)
    for (int64_t x = 0; x < cat.width * 3; ++x)
      (y < 60 && x >= 20 * 3 ? differ_above : differ_elsewhere) |= cat.row(y)[x] != bird.row(y)[x];
  EXPECT_TRUE(differ_above);
  EXPECT_FALSE(differ_elsewhere);
  EXPECT_LT(*std::min_element(cat.pixels.begin(), cat.pixels.end()), 40);  // black text
  // A box at the image's top: the label goes just inside it.
  const Image top = draw("cat", 0, "top");
  EXPECT_GT(count_colour(top, box_colour, 21, 199, 1, 40), 100);
}

}  // namespace
}  // namespace automm
