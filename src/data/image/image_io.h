// Reading image files and image bytes into RGB, pixel for pixel as AutoMM's
// `PIL.Image.open(f).convert("RGB")` gives them: JPEG through the same
// libjpeg-turbo with PIL's settings (ISLOW DCT, fancy upsampling), PNG, WebP
// (first frame), BMP and GIF (first frame). Alpha is dropped, not composited;
// palettes are looked up; 16-bit samples keep their high byte, except 16-bit
// grayscale PNG, which PIL reads as 32-bit integers and clips to 0..255.
#pragma once

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
