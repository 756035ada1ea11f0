// What `automm predict` writes for a detection predictor: COCO results json, a
// CSV of boxes, and copies of the images with the boxes drawn.
#pragma once

#include <string>

#include "automm/predictions.h"
#include "automm/table.h"

namespace automm {

// [{"image_id", "category_id", "bbox": [x, y, w, h], "score"}, ...] (the COCO
// results format, w = x2 - x1). Image ids come from the table's image_id column
// (a COCO file's), else the row index. Returns the number of boxes written.
size_t write_coco_results(const Table& data, const Predictions& predictions, const std::string& path);

// One row per box: image, class, class_index, score, then x1, y1, x2, y2 (or x,
// y, w, h for xywh predictions). Returns the number of boxes written.
size_t write_detection_csv(const Table& data, const std::string& image_column, const Predictions& predictions,
                           const std::string& path);

// <folder>/<image stem>.png: each image with its boxes drawn, one colour per
// class, "<class name> <score>" written above each box in DejaVu Sans (or
// $AUTOMM_FONT; see find_font in text_drawing.h, which throws when there is no
// font). Relative image paths resolve against the table's folder.
void draw_detection_files(const Table& data, const std::string& image_column, const Predictions& predictions,
                          const std::string& folder);

}  // namespace automm
