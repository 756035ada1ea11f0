// Deterministic image operations that reproduce Pillow 9.4 bit for bit (or
// within one level where noted), because AutoMM runs its torchvision
// transforms on PIL images: a model trained in Python sees these exact pixels.
// Plain loops over 8-bit RGB buffers; no torch.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <utility>

#include "data/image/image.h"

namespace automm {

enum class Interpolation { kBilinear, kBicubic };

// "bilinear" or "bicubic" (case-insensitive); anything else throws
// std::invalid_argument naming the accepted values.
Interpolation parse_interpolation(const std::string& name);

// ---- Geometry --------------------------------------------------------------

// PIL Image.resize: separable convolution (horizontal pass, then vertical),
// support widened by the downscale factor (antialiasing), bicubic a = -0.5,
// 22-bit fixed-point coefficients and uint8 rounding between the passes.
Image resize(const Image& in, int64_t width, int64_t height, Interpolation interpolation);

// torchvision Resize(size) with an int: the shorter side becomes `size`, the
// longer one int(size * long / short).
Image resize_shorter_side(const Image& in, int64_t size, Interpolation interpolation);

// PIL Image.crop((left, top, left + width, top + height)): pixels outside the
// input are 0.
Image crop(const Image& in, int64_t top, int64_t left, int64_t height, int64_t width);

// torchvision F.center_crop: offsets round((in - out) / 2) with Python's
// half-to-even round; zero padding where the crop is larger than the image.
Image center_crop(const Image& in, int64_t height, int64_t width);
// The (top, left) of the input where center_crop's output starts (negative when it pads).
std::pair<int64_t, int64_t> center_crop_origin(int64_t in_height, int64_t in_width, int64_t height, int64_t width);

// PIL Image.resize with NEAREST: output pixel (x, y) takes input pixel
// (floor((x + 0.5) * in_w / w), floor((y + 0.5) * in_h / h)). For class-index masks.
Image resize_nearest(const Image& in, int64_t width, int64_t height);

Image hflip(const Image& in);
Image vflip(const Image& in);

// PIL Image.transform(size, AFFINE, m, NEAREST) with the output size of the
// input: output (x, y) samples input (m0 x + m1 y + m2, m3 x + m4 y + m5) at
// pixel centres; outside is 0. Uses PIL's 16.16 fixed-point walk (or its
// double walk for pure scale/translate matrices) so boundary pixels agree.
using AffineMatrix = std::array<double, 6>;
Image affine_nearest(const Image& in, const AffineMatrix& inverse);

// PIL Image.rotate(degrees) (counter-clockwise, about the centre, NEAREST,
// same size), as used by torchvision F.rotate and AutoMM's augmenters.
Image rotate(const Image& in, double degrees);

// torchvision F.affine on a PIL image (NEAREST, fill 0, centre w/2, h/2):
// rotation `angle` degrees clockwise, translation in pixels, scale and shear
// in degrees.
Image affine(const Image& in, double angle, double translate_x, double translate_y, double scale,
             double shear_x, double shear_y);

// ---- Pixel ops (PIL ImageOps / ImageEnhance) ------------------------------

Image autocontrast(const Image& in);  // ImageOps.autocontrast(cutoff=0)
Image equalize(const Image& in);      // ImageOps.equalize
Image invert(const Image& in);        // ImageOps.invert
// Pixels >= threshold become 255 - v (ImageOps.solarize).
Image solarize(const Image& in, double threshold);
// AutoMM randaug's SolarizeAdd: v + addition, clipped and truncated, then solarize.
Image solarize_add(const Image& in, double addition, double threshold = 128);
Image posterize(const Image& in, int bits);  // keep the top `bits` bits, 0..8

// ImageEnhance: a blend from a degenerate image (factor 0) to the input
// (factor 1), extrapolated and clipped outside [0, 1].
Image adjust_brightness(const Image& in, double factor);  // degenerate: black
Image adjust_contrast(const Image& in, double factor);    // degenerate: mean gray level
Image adjust_saturation(const Image& in, double factor);  // ImageEnhance.Color; degenerate: gray
Image adjust_sharpness(const Image& in, double factor);   // degenerate: PIL's SMOOTH filter
// torchvision F.adjust_hue on PIL: rotate the hue channel of PIL's 8-bit HSV
// by uint8(hue_factor * 255), hue_factor in [-0.5, 0.5].
Image adjust_hue(const Image& in, double hue_factor);

// ITU-R 601-2 luma as PIL's convert("L") computes it.
inline uint8_t pil_luma(const uint8_t* rgb) {
  return static_cast<uint8_t>((rgb[0] * 19595 + rgb[1] * 38470 + rgb[2] * 7471 + 0x8000) >> 16);
}

}  // namespace automm
