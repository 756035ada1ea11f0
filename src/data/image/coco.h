// Object detection data (AutoMM's data forms for problem_type
// object_detection): a COCO json file read into a table, one row per image,
// and the per-row boxes every detection table holds.
//
// A detection table has an image-path column and a `rois` column of JSON
// [[x1, y1, x2, y2, class_index], ...] (pixels, the class index counting from
// 0). A table read from a COCO file adds what COCO evaluation needs:
// `image_id`, `width`, `height`, `coco_gt` (every annotation of the image,
// crowd ones included: [[id, class_index, x, y, w, h, area, iscrowd], ...]) and
// `coco_categories` ([[category_id, name], ...] in the file's order, the same
// on every row, so a subset of the rows still knows its classes).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "automm/table.h"

namespace automm {

constexpr const char* kRoisColumn = "rois";
constexpr const char* kCocoImageIdColumn = "image_id";
constexpr const char* kCocoGtColumn = "coco_gt";
constexpr const char* kCocoCategoriesColumn = "coco_categories";

// read_coco_table when `path` holds one JSON object with an "images" list (a
// COCO file), nullopt when it holds something else (JSON Lines); the file is
// parsed once either way.
std::optional<Table> try_read_coco_table(const std::string& path, const std::string& image_root = "");

// Reads a COCO detection file. Image paths: `image_root` / file_name when
// image_root is given (AutoMM's model.mmdet_image.coco_root), else the first of
// <json folder>/../file_name (AutoMM's default root), <json folder>/file_name
// and <json folder>/../images/file_name that exists. Boxes [x, y, w, h] become
// [x, y, x + w, y + h] (AutoMM's legacy x + w - 1 is not kept). Every problem
// is an error naming the image and annotation ids (an unknown category or
// image id, a missing image file, a non-numeric box), or a counted warning for
// boxes that cannot train (clipped to the image, or dropped when empty or
// outside it; crowd boxes only count for evaluation). A file without an
// "annotations" list gives rows with no boxes (for prediction).
Table read_coco_table(const std::string& path, const std::string& image_root = "");

// A class index and box, as a detection row holds them.
struct LabeledBox {
  double x1 = 0, y1 = 0, x2 = 0, y2 = 0;
  int64_t label = 0;
};
// An annotation as COCO evaluation reads it.
struct CocoGtBox {
  int64_t id = 0, label = 0;
  double x = 0, y = 0, w = 0, h = 0, area = 0;
  bool iscrowd = false;
};

// Boxes as they train, for the detection file readers: clipped to their image,
// and dropped when nothing of them is inside; both counted for one warning per file.
class BoxClipper {
 public:
  // `box` clipped to [0, width] x [0, height], or nullopt when that leaves no area
  // (`describe()` names the first such box in the warning).
  std::optional<LabeledBox> clip(const LabeledBox& box, double width, double height,
                                 const std::function<std::string()>& describe);
  // The warnings of `path`; `dropped_note` says what became of the dropped boxes.
  void warn(const std::string& path, const std::string& dropped_note) const;

 private:
  int64_t clipped_ = 0, dropped_ = 0;
  std::string first_dropped_;
};

// One image as a detection file reader found it.
struct DetectionImage {
  std::string image;  // the file's absolute path
  int64_t id = 0, width = 0, height = 0;
  std::vector<LabeledBox> boxes;  // what trains
  std::vector<CocoGtBox> gt;      // what evaluation counts
};
// The table of those images, sorted by path, with the columns this header
// names (coco_gt only when `annotated`).
Table make_detection_table(std::vector<DetectionImage> images,
                           const std::vector<std::pair<int64_t, std::string>>& categories, bool annotated,
                           const std::string& source);

// A rois cell: [[x1, y1, x2, y2, class], ...] with class an index; `where`
// names the row in errors. Empty or missing: no boxes.
std::vector<LabeledBox> parse_rois(const std::string& cell, const std::string& where);
std::string format_rois(const std::vector<LabeledBox>& boxes);
std::vector<CocoGtBox> parse_coco_gt(const std::string& cell, const std::string& where);
// [[category_id, name], ...]
std::vector<std::pair<int64_t, std::string>> parse_coco_categories(const std::string& cell, const std::string& where);

}  // namespace automm
