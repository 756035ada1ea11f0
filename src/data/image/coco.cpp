// COCO detection files read into tables (coco.h).
#include "data/image/coco.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "automm/log.h"

namespace automm {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

json read_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open COCO file '" + path + "'");
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    throw std::invalid_argument(path + " is not valid JSON: " + e.what());
  }
}

double number_at(const json& value, const std::string& where) {
  if (!value.is_number()) throw std::invalid_argument(where + " must be a number, got " + value.dump());
  const double out = value.get<double>();
  if (!std::isfinite(out)) throw std::invalid_argument(where + " must be finite");
  return out;
}

int64_t id_of(const json& object, const char* field, const std::string& where) {
  if (!object.contains(field) || !object.at(field).is_number_integer())
    throw std::invalid_argument(where + " needs an integer \"" + field + "\"");
  return object.at(field).get<int64_t>();
}

// The image file of a COCO image entry.
std::string image_path(const fs::path& json_folder, const std::string& root, const json& image, int64_t id,
                       const std::string& file) {
  if (!image.contains("file_name") || !image.at("file_name").is_string())
    throw std::invalid_argument(file + ": image " + std::to_string(id) + " has no \"file_name\"");
  const std::string name = image.at("file_name").get<std::string>();
  std::vector<fs::path> candidates;
  if (!root.empty()) candidates.push_back(fs::path(root) / name);
  else
    candidates = {json_folder.parent_path() / name, json_folder / name, json_folder.parent_path() / "images" / name};
  if (fs::path(name).is_absolute()) candidates = {fs::path(name)};
  for (const auto& c : candidates)
    if (fs::is_regular_file(c)) return fs::weakly_canonical(c).string();
  std::string tried;
  for (const auto& c : candidates) tried += (tried.empty() ? "" : ", ") + c.string();
  throw std::invalid_argument(file + ": the file of image " + std::to_string(id) + " (\"" + name +
                              "\") is missing; looked for " + tried +
                              (root.empty() ? " (set model.mmdet_image.coco_root to the images' root folder)" : ""));
}

std::string fixed_number(double v) {
  std::ostringstream out;
  out.precision(17);
  out << v;
  return out.str();
}

}  // namespace

namespace {

bool is_coco_document(const json& document) {
  return document.is_object() && document.contains("images") && document.at("images").is_array();
}

Table coco_table(const json& document, const std::string& path, const std::string& image_root);

}  // namespace

std::optional<Table> try_read_coco_table(const std::string& path, const std::string& image_root) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  char c = 0;
  while (in.get(c) && std::isspace(static_cast<unsigned char>(c))) {
  }
  if (c != '{') return std::nullopt;
  in.seekg(0);
  json document;
  try {
    document = json::parse(in);
  } catch (const json::exception&) {
    return std::nullopt;  // JSON Lines: several objects
  }
  if (!is_coco_document(document)) return std::nullopt;
  return coco_table(document, path, image_root);
}

Table read_coco_table(const std::string& path, const std::string& image_root) {
  return coco_table(read_json_file(path), path, image_root);
}

namespace {

Table coco_table(const json& document, const std::string& path, const std::string& image_root) {
  if (!is_coco_document(document))
    throw std::invalid_argument(path + " is not a COCO detection file: no \"images\" list");
  if (!document.contains("categories") || !document.at("categories").is_array() || document.at("categories").empty())
    throw std::invalid_argument(path + " has no \"categories\": COCO detection files name their classes there");
  const fs::path folder = fs::absolute(fs::path(path)).parent_path();

  std::vector<std::pair<int64_t, std::string>> categories;
  std::map<int64_t, int64_t> class_of;  // category id -> index in the file's order
  for (const json& c : document.at("categories")) {
    const int64_t id = id_of(c, "id", path + ": a category");
    if (!c.contains("name") || !c.at("name").is_string())
      throw std::invalid_argument(path + ": category " + std::to_string(id) + " has no \"name\"");
    if (!class_of.emplace(id, static_cast<int64_t>(class_of.size())).second)
      throw std::invalid_argument(path + ": category id " + std::to_string(id) + " appears twice");
    categories.emplace_back(id, c.at("name").get<std::string>());
  }

  std::vector<DetectionImage> entries;
  std::map<int64_t, size_t> entry_of;
  for (const json& image : document.at("images")) {
    DetectionImage e;
    e.id = id_of(image, "id", path + ": an image");
    const std::string where = path + ": image " + std::to_string(e.id);
    e.width = id_of(image, "width", where);
    e.height = id_of(image, "height", where);
    if (e.width <= 0 || e.height <= 0) throw std::invalid_argument(where + " has a non-positive width or height");
    e.image = image_path(folder, image_root, image, e.id, path);
    if (!entry_of.emplace(e.id, entries.size()).second)
      throw std::invalid_argument(path + ": image id " + std::to_string(e.id) + " appears twice");
    entries.push_back(std::move(e));
  }

  const bool annotated = document.contains("annotations");
  BoxClipper clipper;
  if (annotated) {
    if (!document.at("annotations").is_array()) throw std::invalid_argument(path + ": \"annotations\" must be a list");
    for (const json& a : document.at("annotations")) {
      const int64_t id = id_of(a, "id", path + ": an annotation");
      const std::string where = path + ": annotation " + std::to_string(id);
      const int64_t image_id = id_of(a, "image_id", where);
      const auto entry = entry_of.find(image_id);
      if (entry == entry_of.end())
        throw std::invalid_argument(where + " names image " + std::to_string(image_id) + ", which \"images\" lacks");
      const int64_t category = id_of(a, "category_id", where);
      const auto label = class_of.find(category);
      if (label == class_of.end())
        throw std::invalid_argument(where + " (image " + std::to_string(image_id) + ") names category " +
                                    std::to_string(category) + ", which \"categories\" lacks");
      if (!a.contains("bbox") || !a.at("bbox").is_array() || a.at("bbox").size() != 4)
        throw std::invalid_argument(where + " (image " + std::to_string(image_id) + ") needs \"bbox\": [x, y, w, h]");
      const json& b = a.at("bbox");
      const double x = number_at(b[0], where + " bbox x"), y = number_at(b[1], where + " bbox y");
      const double w = number_at(b[2], where + " bbox width"), h = number_at(b[3], where + " bbox height");
      const bool is_crowd = a.value("iscrowd", 0) != 0;
      const double area = a.contains("area") ? number_at(a.at("area"), where + " area") : w * h;
      DetectionImage& e = entries[entry->second];
      e.gt.push_back({id, label->second, x, y, w, h, area, is_crowd});
      if (is_crowd || a.value("ignore", 0) != 0) continue;  // evaluation only
      const auto inside = clipper.clip({x, y, x + w, y + h, label->second}, double(e.width), double(e.height), [&] {
        return "annotation " + std::to_string(id) + " of image " + std::to_string(image_id) + " (bbox " + b.dump() + ")";
      });
      if (inside) e.boxes.push_back(*inside);
    }
  }
  int64_t empty = 0;
  for (const DetectionImage& e : entries) empty += annotated && e.boxes.empty() ? 1 : 0;
  clipper.warn(path, "do not train; evaluation still counts them");
  if (empty > 0)
    log_message(LogLevel::kWarning, path + ": " + std::to_string(empty) + " of " + std::to_string(entries.size()) +
                                        " images have no box to train on; they train as background");

  return make_detection_table(std::move(entries), categories, annotated, path);
}

}  // namespace

std::optional<LabeledBox> BoxClipper::clip(const LabeledBox& box, double width, double height,
                                           const std::function<std::string()>& describe) {
  const LabeledBox inside{std::clamp(box.x1, 0.0, width), std::clamp(box.y1, 0.0, height),
                          std::clamp(box.x2, 0.0, width), std::clamp(box.y2, 0.0, height), box.label};
  if (inside.x2 <= inside.x1 || inside.y2 <= inside.y1) {  // also a negative width or height
    if (dropped_++ == 0) first_dropped_ = describe();
    return std::nullopt;
  }
  if (inside.x1 != box.x1 || inside.y1 != box.y1 || inside.x2 != box.x2 || inside.y2 != box.y2) ++clipped_;
  return inside;
}

void BoxClipper::warn(const std::string& path, const std::string& dropped_note) const {
  if (clipped_ > 0)
    log_message(LogLevel::kWarning, path + ": " + std::to_string(clipped_) +
                                        " boxes reach outside their image and were clipped to it for training");
  if (dropped_ > 0)
    log_message(LogLevel::kWarning, path + ": " + std::to_string(dropped_) + " boxes are empty or outside their image (the first: " +
                                        first_dropped_ + ") and " + dropped_note);
}

Table make_detection_table(std::vector<DetectionImage> images,
                           const std::vector<std::pair<int64_t, std::string>>& categories, bool annotated,
                           const std::string& source) {
  std::stable_sort(images.begin(), images.end(),
                   [](const DetectionImage& a, const DetectionImage& b) { return a.image < b.image; });
  json category_list = json::array();
  for (const auto& [id, name] : categories) category_list.push_back({id, name});
  const std::string categories_text = category_list.dump();
  std::vector<std::string> image, ids, widths, heights, rois, gt, cats;
  for (const DetectionImage& e : images) {
    json boxes = json::array();
    for (const CocoGtBox& g : e.gt) boxes.push_back({g.id, g.label, g.x, g.y, g.w, g.h, g.area, g.iscrowd ? 1 : 0});
    image.push_back(e.image);
    ids.push_back(std::to_string(e.id));
    widths.push_back(std::to_string(e.width));
    heights.push_back(std::to_string(e.height));
    rois.push_back(format_rois(e.boxes));
    gt.push_back(boxes.dump());
    cats.push_back(categories_text);
  }
  Table table;
  table.source = source;
  table.add_column(Column::from_cells("image", image));
  table.add_column(Column::from_cells(kCocoImageIdColumn, ids));
  table.add_column(Column::from_cells("width", widths));
  table.add_column(Column::from_cells("height", heights));
  table.add_column(Column::from_cells(kRoisColumn, rois));
  if (annotated) table.add_column(Column::from_cells(kCocoGtColumn, gt));
  table.add_column(Column::from_cells(kCocoCategoriesColumn, cats));
  return table;
}

std::vector<LabeledBox> parse_rois(const std::string& cell, const std::string& where) {
  std::vector<LabeledBox> out;
  if (cell.empty()) return out;
  json value;
  try {
    value = json::parse(cell);
  } catch (const json::exception&) {
    throw std::invalid_argument(where + ": rois must be JSON [[x1, y1, x2, y2, class], ...], got '" +
                                cell.substr(0, 80) + "'");
  }
  if (!value.is_array()) throw std::invalid_argument(where + ": rois must be a list of [x1, y1, x2, y2, class]");
  for (size_t i = 0; i < value.size(); ++i) {
    const json& r = value[i];
    const std::string at = where + ", box " + std::to_string(i);
    if (!r.is_array() || r.size() != 5) throw std::invalid_argument(at + " must be [x1, y1, x2, y2, class]");
    LabeledBox box{number_at(r[0], at + " x1"), number_at(r[1], at + " y1"), number_at(r[2], at + " x2"),
                   number_at(r[3], at + " y2"), 0};
    // An integral float (1.0, as pandas writes integers next to floats) is an index too.
    const bool integral = r[4].is_number_integer() ||
                          (r[4].is_number_float() && std::floor(r[4].get<double>()) == r[4].get<double>());
    if (!integral || r[4].get<double>() < 0)
      throw std::invalid_argument(at + ": the class must be an index (an integer from 0), got " + r[4].dump());
    box.label = static_cast<int64_t>(r[4].get<double>());
    if (box.x2 <= box.x1 || box.y2 <= box.y1)
      throw std::invalid_argument(at + " is empty: x2 must exceed x1 and y2 exceed y1, got " + r.dump());
    out.push_back(box);
  }
  return out;
}

std::string format_rois(const std::vector<LabeledBox>& boxes) {
  std::string out = "[";
  for (size_t i = 0; i < boxes.size(); ++i) {
    const LabeledBox& b = boxes[i];
    out += (i ? ",[" : "[") + fixed_number(b.x1) + "," + fixed_number(b.y1) + "," + fixed_number(b.x2) + "," +
           fixed_number(b.y2) + "," + std::to_string(b.label) + "]";
  }
  return out + "]";
}

std::vector<CocoGtBox> parse_coco_gt(const std::string& cell, const std::string& where) {
  std::vector<CocoGtBox> out;
  try {
    for (const json& a : json::parse(cell))
      out.push_back({a.at(0).get<int64_t>(), a.at(1).get<int64_t>(), a.at(2).get<double>(), a.at(3).get<double>(),
                     a.at(4).get<double>(), a.at(5).get<double>(), a.at(6).get<double>(), a.at(7).get<int>() != 0});
  } catch (const json::exception& e) {
    throw std::invalid_argument(where + ": the coco_gt cell is malformed: " + e.what());
  }
  return out;
}

std::vector<std::pair<int64_t, std::string>> parse_coco_categories(const std::string& cell, const std::string& where) {
  std::vector<std::pair<int64_t, std::string>> out;
  try {
    for (const json& c : json::parse(cell)) out.emplace_back(c.at(0).get<int64_t>(), c.at(1).get<std::string>());
  } catch (const json::exception& e) {
    throw std::invalid_argument(where + ": the coco_categories cell is malformed: " + e.what());
  }
  return out;
}

}  // namespace automm
