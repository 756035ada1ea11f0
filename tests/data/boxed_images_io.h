// The boxed images a detection transform's reference test hands its Python
// transcription (tests/data/boxed_images_io.py reads them back): <dir>/<name>.rgb
// holds the pixels, and manifest.txt lines "image NAME W H" and "box NAME x1 y1
// x2 y2 label", then whatever case lines the test adds.
#pragma once

#include <cstdio>
#include <fstream>
#include <map>
#include <string>

#include "data/image/mosaic_mixup.h"
#include "test_util.h"

namespace automm::testing {

// A double printed so that Python's float() reads the same value back.
inline std::string exact_decimal(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

// Writes the images and opens manifest.txt with their lines; the caller appends its cases.
inline std::ofstream write_boxed_images(const TempDir& dir, const std::map<std::string, BoxedImage>& images) {
  std::ofstream manifest(dir.file("manifest.txt"));
  for (const auto& [name, img] : images) {
    manifest << "image " << name << " " << img.image.width << " " << img.image.height << "\n";
    for (const auto& b : img.boxes)
      manifest << "box " << name << " " << exact_decimal(b.x1) << " " << exact_decimal(b.y1) << " "
               << exact_decimal(b.x2) << " " << exact_decimal(b.y2) << " " << b.label << "\n";
    std::ofstream(dir.file(name + ".rgb"), std::ios::binary)
        .write(reinterpret_cast<const char*>(img.image.pixels.data()), std::streamsize(img.image.pixels.size()));
  }
  return manifest;
}

}  // namespace automm::testing
