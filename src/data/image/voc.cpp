// Pascal VOC detection folders read into tables (voc.h).
#include "data/image/voc.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <vector>

#include <nlohmann/json.hpp>
#include <tinyxml2.h>

#include "automm/log.h"
#include "data/image/coco.h"

namespace automm {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

bool is_voc_root(const fs::path& root) {
  std::error_code ignored;
  return fs::is_directory(root / "Annotations", ignored) && fs::is_directory(root / "JPEGImages", ignored);
}

// <root>/ImageSets/Main/<split>.txt -> <root>; nullopt for anything else.
std::optional<fs::path> root_of_split_file(const fs::path& file) {
  std::error_code ignored;
  if (file.extension() != ".txt" || !fs::is_regular_file(file, ignored)) return std::nullopt;
  const fs::path main = fs::absolute(file).parent_path();
  if (main.filename() != "Main" || main.parent_path().filename() != "ImageSets") return std::nullopt;
  const fs::path root = main.parent_path().parent_path();
  if (!is_voc_root(root)) return std::nullopt;
  return root;
}

std::string strip(const std::string& text) {
  const auto first = text.find_first_not_of(" \t\r\n\f\v");
  if (first == std::string::npos) return "";
  return text.substr(first, text.find_last_not_of(" \t\r\n\f\v") - first + 1);
}

// AutoMM's name.strip().lower() (ASCII letters only).
std::string class_name(const std::string& text) {
  std::string out = strip(text);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string number_text(double v) {
  std::ostringstream out;
  out.precision(17);
  out << v;
  return out.str();
}

class XmlFile {
 public:
  explicit XmlFile(const fs::path& path) : path_(path.string()) {
    if (document_.LoadFile(path_.c_str()) != tinyxml2::XML_SUCCESS)
      throw std::invalid_argument("cannot read the VOC annotation " + path_ + ": " + document_.ErrorStr());
    if (!document_.RootElement()) throw std::invalid_argument("the VOC annotation " + path_ + " has no root element");
  }
  const std::string& path() const { return path_; }
  const tinyxml2::XMLElement& root() const { return *document_.RootElement(); }

  // Every <object> element at any depth, in document order (ElementTree's iter).
  std::vector<const tinyxml2::XMLElement*> objects() const {
    std::vector<const tinyxml2::XMLElement*> out;
    collect(document_.RootElement(), out);
    return out;
  }

 private:
  static void collect(const tinyxml2::XMLElement* e, std::vector<const tinyxml2::XMLElement*>& out) {
    for (; e; e = e->NextSiblingElement()) {
      if (std::string(e->Name()) == "object") out.push_back(e);
      collect(e->FirstChildElement(), out);
    }
  }

  std::string path_;
  tinyxml2::XMLDocument document_;
};

// The text of the first child <name> of `parent`; nullopt when it is missing or empty.
std::optional<std::string> child_text(const tinyxml2::XMLElement& parent, const char* name) {
  const tinyxml2::XMLElement* child = parent.FirstChildElement(name);
  if (!child || !child->GetText()) return std::nullopt;
  return std::string(child->GetText());
}

double child_number(const tinyxml2::XMLElement& parent, const char* name, const std::string& where) {
  const auto text = child_text(parent, name);
  if (!text) throw std::invalid_argument(where + " has no <" + name + ">");
  const std::string value = strip(*text);
  char* end = nullptr;
  const double out = std::strtod(value.c_str(), &end);
  if (value.empty() || end != value.c_str() + value.size() || !std::isfinite(out))
    throw std::invalid_argument(where + ": <" + name + "> must be a number, got '" + *text + "'");
  return out;
}

std::string object_name(const tinyxml2::XMLElement& object, const std::string& where) {
  const auto text = child_text(object, "name");
  const std::string name = text ? class_name(*text) : "";
  if (name.empty()) throw std::invalid_argument(where + " has no <name>");
  return name;
}

std::vector<fs::path> annotation_files(const fs::path& root) {
  std::vector<fs::path> out;
  for (const auto& entry : fs::directory_iterator(root / "Annotations"))
    if (entry.path().extension() == ".xml" && entry.is_regular_file()) out.push_back(entry.path());
  std::sort(out.begin(), out.end());
  return out;
}

// The class names: labels.txt, else every object name of the annotations, sorted.
std::vector<std::string> voc_classes(const fs::path& root) {
  std::vector<std::string> names;
  const fs::path labels = root / "labels.txt";
  if (fs::exists(labels)) {
    std::ifstream in(labels);
    if (!in) throw std::runtime_error("cannot open " + labels.string());
    std::set<std::string> seen;
    for (std::string line; std::getline(in, line);) {
      const std::string name = class_name(line);
      if (name.empty()) continue;
      if (!seen.insert(name).second)
        throw std::invalid_argument(labels.string() + " names the class '" + name + "' twice");
      names.push_back(name);
    }
    if (names.empty()) throw std::invalid_argument(labels.string() + " names no class");
    return names;
  }
  std::set<std::string> found;
  for (const fs::path& file : annotation_files(root)) {
    const XmlFile xml(file);
    const auto objects = xml.objects();
    for (size_t i = 0; i < objects.size(); ++i)
      found.insert(object_name(*objects[i], xml.path() + ": object " + std::to_string(i)));
  }
  if (found.empty())
    throw std::invalid_argument(root.string() + ": no object in Annotations/*.xml and no labels.txt to name the classes");
  return {found.begin(), found.end()};
}

// The ids to read, each with its image file when the listing found one.
std::vector<std::pair<std::string, std::string>> voc_ids(const fs::path& root, const std::optional<fs::path>& split) {
  std::vector<std::pair<std::string, std::string>> out;
  if (split) {
    std::ifstream in(*split);
    if (!in) throw std::runtime_error("cannot open the VOC split file " + split->string());
    for (std::string line; std::getline(in, line);) {
      std::istringstream words(line);
      std::string id;
      if (words >> id) out.emplace_back(id, "");  // "<id>" or "<id> <flag>" (class split files)
    }
    return out;
  }
  std::map<std::string, std::string> found;  // one row per id, whatever its extensions
  for (const auto& entry : fs::directory_iterator(root / "JPEGImages")) {
    const std::string ext = entry.path().extension().string();
    if (ext == ".jpg" || ext == ".jpeg" || ext == ".png") found.emplace(entry.path().stem().string(), entry.path().filename().string());
  }
  return {found.begin(), found.end()};
}

}  // namespace

bool is_voc_path(const std::string& path) {
  std::error_code ignored;
  if (fs::is_directory(path, ignored)) return is_voc_root(path);
  return root_of_split_file(path).has_value();
}

Table read_voc_table(const std::string& path) {
  std::error_code ignored;
  std::optional<fs::path> split;
  fs::path root;
  if (fs::is_directory(path, ignored)) {
    root = fs::absolute(path);
    if (!is_voc_root(root))
      throw std::invalid_argument(path + " is not a VOC folder: it needs Annotations/ and JPEGImages/");
  } else if (auto split_root = root_of_split_file(path)) {
    root = *split_root;
    split = fs::absolute(path);
  } else {
    throw std::invalid_argument(path + " is neither a VOC folder (Annotations/ and JPEGImages/) nor a split file "
                                       "<root>/ImageSets/Main/<split>.txt");
  }
  const std::vector<std::string> classes = voc_classes(root);
  std::map<std::string, int64_t> class_of;
  std::vector<std::pair<int64_t, std::string>> categories;
  for (size_t k = 0; k < classes.size(); ++k) {
    class_of.emplace(classes[k], static_cast<int64_t>(k));
    categories.emplace_back(static_cast<int64_t>(k + 1), classes[k]);  // AutoMM's VOC category ids: 1..K
  }
  const bool has_labels = fs::exists(root / "labels.txt");

  const auto ids = voc_ids(root, split);
  if (ids.empty()) throw std::invalid_argument(path + " lists no image");
  std::vector<DetectionImage> rows;
  BoxClipper clipper;
  int64_t empty = 0;
  std::string first_empty;
  for (const auto& [id, listed] : ids) {
    const fs::path xml_path = root / "Annotations" / (id + ".xml");
    if (!fs::is_regular_file(xml_path))
      throw std::invalid_argument((split ? split->string() : path) + ": image '" + id + "' has no annotation file " +
                                  xml_path.string());
    const XmlFile xml(xml_path);
    const tinyxml2::XMLElement* size = xml.root().FirstChildElement("size");
    if (!size) throw std::invalid_argument(xml.path() + " has no <size> (the image's width and height)");
    const double width = child_number(*size, "width", xml.path() + " <size>");
    const double height = child_number(*size, "height", xml.path() + " <size>");
    if (width <= 0 || height <= 0)
      throw std::invalid_argument(xml.path() + ": <size> must give a positive width and height, got " +
                                  number_text(width) + " x " + number_text(height));
    std::string file = strip(child_text(xml.root(), "filename").value_or(""));
    if (file.empty()) file = listed.empty() ? id + ".jpg" : listed;
    if (file.find('.') == std::string::npos) file += ".jpg";  // AutoMM: a filename without extension is a JPEG
    const fs::path image = root / "JPEGImages" / file;
    if (!fs::is_regular_file(image))
      throw std::invalid_argument(xml.path() + ": its image " + image.string() + " is missing");

    DetectionImage row;
    row.image = fs::weakly_canonical(image).string();
    row.width = static_cast<int64_t>(width);
    row.height = static_cast<int64_t>(height);
    const auto objects = xml.objects();
    for (size_t i = 0; i < objects.size(); ++i) {
      const std::string where = xml.path() + ": object " + std::to_string(i);
      const std::string name = object_name(*objects[i], where);
      const auto label = class_of.find(name);
      if (label == class_of.end())
        throw std::invalid_argument(where + " is a '" + name + "', which " +
                                    (has_labels ? (root / "labels.txt").string() + " lacks" : "no class is") +
                                    "; add it to labels.txt");
      const tinyxml2::XMLElement* bndbox = objects[i]->FirstChildElement("bndbox");
      if (!bndbox) throw std::invalid_argument(where + " ('" + name + "') has no <bndbox>");
      const std::string at = where + " <bndbox>";
      const double xmin = child_number(*bndbox, "xmin", at), ymin = child_number(*bndbox, "ymin", at);
      const double xmax = child_number(*bndbox, "xmax", at), ymax = child_number(*bndbox, "ymax", at);
      // VOC counts pixels from 1: each coordinate minus 1, then clipped (AutoMM clips
      // x1, y1 at 0 and x2, y2 at the size, which keeps the same boxes).
      const auto box = clipper.clip({xmin - 1, ymin - 1, xmax - 1, ymax - 1, label->second}, width, height, [&] {
        return "object " + std::to_string(i) + " ('" + name + "') of " + xml.path() + ", bndbox " + number_text(xmin) +
               "," + number_text(ymin) + "," + number_text(xmax) + "," + number_text(ymax);
      });
      if (box) row.boxes.push_back(*box);
    }
    if (row.boxes.empty()) {
      if (empty++ == 0) first_empty = xml.path();
      continue;  // AutoMM keeps only images with a box
    }
    rows.push_back(std::move(row));
  }
  clipper.warn(path, "were dropped");
  if (empty > 0)
    log_message(LogLevel::kWarning, path + ": " + std::to_string(empty) + " of " + std::to_string(ids.size()) +
                                        " images have no valid box and were left out, as AutoMM leaves them (the "
                                        "first: " + first_empty + ")");
  if (rows.empty()) throw std::invalid_argument(path + ": none of its " + std::to_string(ids.size()) + " images has a box");

  // Image ids are the rows' order; every box counts in evaluation (AutoMM never reads `difficult`).
  std::stable_sort(rows.begin(), rows.end(),
                   [](const DetectionImage& a, const DetectionImage& b) { return a.image < b.image; });
  int64_t annotation = 0;
  for (size_t r = 0; r < rows.size(); ++r) {
    rows[r].id = static_cast<int64_t>(r);
    for (const LabeledBox& b : rows[r].boxes) {
      const double w = b.x2 - b.x1, h = b.y2 - b.y1;
      rows[r].gt.push_back({++annotation, b.label, b.x1, b.y1, w, h, w * h, false});
    }
  }
  return make_detection_table(std::move(rows), categories, /*annotated=*/true, path);
}

}  // namespace automm
