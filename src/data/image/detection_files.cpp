// Detection outputs as files (detection_files.h).
#include "data/image/detection_files.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "data/image/coco.h"
#include "data/image/image_io.h"
#include "data/image/text_drawing.h"

namespace automm {
namespace {

namespace fs = std::filesystem;

void check_rows(const Table& data, const Predictions& p) {
  if (!p.are_detections()) throw std::invalid_argument("these predictions are not boxes");
  if (p.detections.size() != data.num_rows())
    throw std::invalid_argument(std::to_string(p.detections.size()) + " images of boxes for " +
                                std::to_string(data.num_rows()) + " rows");
}

// Each box as [x1, y1, x2, y2], whatever the predictions' format.
torch::Tensor as_xyxy(const Predictions& p, size_t row) {
  auto b = p.detections[row].boxes.to(torch::kDouble).clone();
  if (p.box_format == "xywh") {
    b.select(1, 2) += b.select(1, 0);
    b.select(1, 3) += b.select(1, 1);
  }
  return b.contiguous();
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream file(path, std::ios::binary);
  file.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!file.flush()) throw std::runtime_error("cannot write " + path.string());
}

std::string number(double v) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.6g", v);
  return text;
}

std::string csv_cell(const std::string& cell) {
  if (cell.find_first_of(",\"\n") == std::string::npos) return cell;
  std::string quoted = "\"";
  for (char c : cell) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

void put(Image& image, int64_t x, int64_t y, const Rgb& rgb) {
  if (x < 0 || y < 0 || x >= image.width || y >= image.height) return;
  std::copy(rgb.begin(), rgb.end(), image.row(y) + x * 3);
}

void draw_rectangle(Image& image, double x1, double y1, double x2, double y2, const Rgb& rgb, int thickness) {
  const auto ix1 = static_cast<int64_t>(x1), iy1 = static_cast<int64_t>(y1);
  const auto ix2 = static_cast<int64_t>(x2), iy2 = static_cast<int64_t>(y2);
  for (int t = 0; t < thickness; ++t) {
    for (int64_t x = ix1; x <= ix2; ++x) put(image, x, iy1 + t, rgb), put(image, x, iy2 - t, rgb);
    for (int64_t y = iy1; y <= iy2; ++y) put(image, ix1 + t, y, rgb), put(image, ix2 - t, y, rgb);
  }
}

// The label on a filled rectangle of the box's colour, above the box's top-left
// corner, or just inside the box where the image's top edge leaves no room.
void draw_label(Image& image, const TextDrawer& text, const std::string& label, double box_x, double box_y,
                const Rgb& rgb) {
  const TextExtent extent = text.measure(label);
  const int64_t pad = std::max<int64_t>(1, extent.height() / 8);
  const int64_t width = extent.width + 2 * pad, height = extent.height() + 2 * pad;
  const auto x = std::max<int64_t>(0, std::min(static_cast<int64_t>(box_x), image.width - width));
  const auto top = static_cast<int64_t>(box_y) - height;
  const int64_t y = top >= 0 ? top : std::max<int64_t>(0, static_cast<int64_t>(box_y));
  for (int64_t row = y; row < y + height; ++row)
    for (int64_t col = x; col < x + width; ++col) put(image, col, row, rgb);
  // Black text on light colours, white on dark (Rec. 601 luma).
  const bool light = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] > 128;
  text.draw(image, x + pad, y + pad, label, light ? Rgb{0, 0, 0} : Rgb{255, 255, 255});
}

}  // namespace

size_t write_coco_results(const Table& data, const Predictions& p, const std::string& path) {
  check_rows(data, p);
  const Column* ids = data.has_column(kCocoImageIdColumn) ? &data.column(kCocoImageIdColumn) : nullptr;
  nlohmann::json out = nlohmann::json::array();
  for (size_t r = 0; r < p.detections.size(); ++r) {
    const auto boxes = as_xyxy(p, r);
    const auto& d = p.detections[r];
    const int64_t image_id = ids ? static_cast<int64_t>(ids->number(r).value_or(double(r))) : static_cast<int64_t>(r);
    for (int64_t i = 0; i < boxes.size(0); ++i) {
      const int64_t label = d.labels[i].item<int64_t>();
      const auto b = boxes[i];
      const double x1 = b[0].item<double>(), y1 = b[1].item<double>();
      out.push_back({{"image_id", image_id},
                     {"category_id", p.category_ids.empty() ? label : p.category_ids.at(static_cast<size_t>(label))},
                     {"bbox", {x1, y1, b[2].item<double>() - x1, b[3].item<double>() - y1}},
                     {"score", d.scores[i].item<double>()}});
    }
  }
  write_bytes(path, out.dump());
  return out.size();
}

size_t write_detection_csv(const Table& data, const std::string& image_column, const Predictions& p,
                           const std::string& path) {
  check_rows(data, p);
  const Column& images = data.column(image_column);
  const bool xywh = p.box_format == "xywh";
  std::string text = std::string("image,class,class_index,score,") + (xywh ? "x,y,w,h\n" : "x1,y1,x2,y2\n");
  size_t count = 0;
  for (size_t r = 0; r < p.detections.size(); ++r) {
    const auto& d = p.detections[r];
    const auto boxes = d.boxes.to(torch::kDouble).contiguous();
    for (int64_t i = 0; i < boxes.size(0); ++i, ++count) {
      const int64_t label = d.labels[i].item<int64_t>();
      text += csv_cell(images.text(r)) + "," + csv_cell(p.classes.at(static_cast<size_t>(label))) + "," +
              std::to_string(label) + "," + number(d.scores[i].item<double>());
      for (int64_t k = 0; k < 4; ++k) text += "," + number(boxes[i][k].item<double>());
      text += "\n";
    }
  }
  write_bytes(path, text);
  return count;
}

void draw_detection_files(const Table& data, const std::string& image_column, const Predictions& p,
                          const std::string& folder) {
  check_rows(data, p);
  const Column& images = data.column(image_column);
  const fs::path source(data.source);
  const fs::path base = fs::exists(source) ? source.parent_path() : fs::path();
  const std::string font = find_font();  // fails before any file is written
  fs::create_directories(folder);
  std::set<std::string> used;
  for (size_t r = 0; r < p.detections.size(); ++r) {
    const fs::path cell(images.text(r));
    Image image = read_image((cell.is_relative() && !base.empty() ? base / cell : cell).string());
    const auto boxes = as_xyxy(p, r);
    const auto& d = p.detections[r];
    const int thickness = std::max<int>(1, static_cast<int>(std::max(image.width, image.height) / 300));
    const auto font_pixels = std::max<int64_t>(12, std::min(image.width, image.height) / 40);
    const TextDrawer text(font, static_cast<int>(font_pixels));
    for (int64_t i = boxes.size(0) - 1; i >= 0; --i) {  // the best box drawn last, on top
      const int64_t label = d.labels[i].item<int64_t>();
      // A colour per class from a fixed hue walk.
      const Rgb rgb = {static_cast<uint8_t>((label * 97 + 60) % 256),
                       static_cast<uint8_t>((label * 57 + 200) % 256),
                       static_cast<uint8_t>((label * 151 + 20) % 256)};
      const auto b = boxes[i];
      const double x1 = b[0].item<double>(), y1 = b[1].item<double>();
      draw_rectangle(image, x1, y1, b[2].item<double>(), b[3].item<double>(), rgb, thickness);
      char score[16];
      std::snprintf(score, sizeof(score), " %.2f", d.scores[i].item<double>());
      draw_label(image, text, p.classes.at(static_cast<size_t>(label)) + score, x1, y1, rgb);
    }
    std::string stem = cell.stem().string();
    if (stem.empty() || !used.insert(stem).second) {
      stem += "_row" + std::to_string(r);
      used.insert(stem);
    }
    write_bytes(fs::path(folder) / (stem + ".png"), encode_png(image.pixels.data(), image.width, image.height, 3));
  }
}

}  // namespace automm
