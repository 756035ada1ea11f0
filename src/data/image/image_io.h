// Reading image files and image bytes into RGB, pixel for pixel as AutoMM's
// `PIL.Image.open(f).convert("RGB")` gives them: JPEG through the same
// libjpeg-turbo with PIL's settings (ISLOW DCT, fancy upsampling), PNG, WebP
// (first frame), BMP and GIF (first frame). Alpha is dropped, not composited;
// palettes are looked up; 16-bit samples keep their high byte, except 16-bit
// grayscale PNG, which PIL reads as 32-bit integers and clips to 0..255.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/image/image.h"

namespace automm {

// Decodes an image file's bytes, its format sniffed from its magic number.
// Throws ImageDecodeError naming `source` (a path, or "row 5 of column
// 'photo'") when the bytes are not a supported image, are truncated or
// corrupt, or declare more than 2^28 pixels. Never writes to stderr.
Image decode_image(const std::string& bytes, const std::string& source);

// Reads and decodes the file at `path`; a missing or unreadable file is an
// ImageDecodeError naming the path.
Image read_image(const std::string& path);

// A segmentation mask's pixels as PIL's np.array(Image.open(f)) holds them for
// one-channel images: palette indices (mode "P"), or gray levels (mode "L";
// 1/2/4-bit files scaled to 0..255 as convert("L") does; any file whose three
// channels agree everywhere counts as gray too); kColor for other colour images.
struct MaskImage {
  enum class Kind { kGray, kPalette, kColor };
  Kind kind = Kind::kGray;
  std::vector<uint8_t> values;  // [height, width] for kGray and kPalette; empty for kColor
  Image rgb;                    // the pixels as convert("RGB") gives them
};
MaskImage decode_mask(const std::string& bytes, const std::string& source);
MaskImage read_mask(const std::string& path);

// Reads a whole file; an ImageDecodeError naming the path when it cannot.
std::string read_file_bytes(const std::string& path);

// PNG file bytes of 8-bit pixels, row-major [height, width, channels] with 1
// (gray) or 3 (RGB) channels.
std::string encode_png(const uint8_t* pixels, int64_t width, int64_t height, int channels);

// Decodes base64 text (AutoMM's image_base64_str columns): the standard and
// the URL-safe alphabets, padding optional, whitespace ignored, and a leading
// "data:<type>;base64," tolerated. Invalid text is an ImageDecodeError naming `source`.
std::string decode_base64(const std::string& text, const std::string& source = "base64 text");

// Whether `bytes` start with the magic number of a format decode_image reads.
bool looks_like_image_bytes(const std::string& bytes);

// An image_path cell's paths: AutoMM allows several per cell, joined by ';'.
// Parts are trimmed of whitespace; empty parts are dropped.
std::vector<std::string> split_image_paths(const std::string& cell);

}  // namespace automm
