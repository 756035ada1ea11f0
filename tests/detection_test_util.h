// Generated COCO detection data for the tests: noisy gray images with bright
// squares (class 0, "square") and dark bars (class 1, "bar"), written as PNGs
// under <folder>/images and a COCO file <folder>/annotations/<name>.json.
#pragma once

#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include <nlohmann/json.hpp>

#include "data/image/image.h"
#include "data/image/image_io.h"

namespace automm::testing {

inline std::string make_coco_dataset(const std::string& folder, const std::string& name, int images, uint64_t seed,
                                     int min_side = 56, int max_side = 72) {
  namespace fs = std::filesystem;
  fs::create_directories(fs::path(folder) / "images");
  fs::create_directories(fs::path(folder) / "annotations");
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> noise(-25, 25), side(min_side, max_side);
  nlohmann::json doc = {{"images", nlohmann::json::array()},
                        {"annotations", nlohmann::json::array()},
                        {"categories", {{{"id", 7}, {"name", "square"}}, {{"id", 3}, {"name", "bar"}}}}};
  int64_t annotation = 0;
  for (int i = 0; i < images; ++i) {
    const int width = side(rng), height = side(rng);
    Image image(width, height);
    for (auto& v : image.pixels) v = static_cast<uint8_t>(120 + noise(rng));
    const int objects = 1 + static_cast<int>(rng() % 3);
    for (int o = 0; o < objects; ++o) {
      const bool square = rng() % 2 == 0;
      const int w = square ? 12 + static_cast<int>(rng() % 12) : 6 + static_cast<int>(rng() % 4);
      const int h = square ? w : 18 + static_cast<int>(rng() % 10);
      const int x0 = static_cast<int>(rng() % static_cast<uint64_t>(width - w));
      const int y0 = static_cast<int>(rng() % static_cast<uint64_t>(height - h));
      for (int y = y0; y < y0 + h; ++y)
        for (int x = x0; x < x0 + w; ++x) {
          uint8_t* p = image.row(y) + x * 3;
          const int level = square ? 235 : 20;
          for (int c = 0; c < 3; ++c) p[c] = static_cast<uint8_t>(std::clamp(level + noise(rng) / 3, 0, 255));
        }
      doc["annotations"].push_back({{"id", ++annotation},
                                    {"image_id", 100 + i},
                                    {"category_id", square ? 7 : 3},
                                    {"bbox", {x0, y0, w, h}},
                                    {"area", w * h},
                                    {"iscrowd", 0}});
    }
    const std::string file = "images/" + name + "_" + std::to_string(i) + ".png";
    std::ofstream(fs::path(folder) / file, std::ios::binary)
        << encode_png(image.pixels.data(), width, height, 3);
    doc["images"].push_back({{"id", 100 + i}, {"file_name", file}, {"width", width}, {"height", height}});
  }
  const std::string path = (fs::path(folder) / "annotations" / (name + ".json")).string();
  std::ofstream(path) << doc.dump();
  return path;
}

}  // namespace automm::testing
