// COCO box mAP exactly as pycocotools computes it: COCO.loadRes (bbox results),
// then COCOeval(iouType="bbox").evaluate(), accumulate() and summarize() with the
// default parameters (10 IoU thresholds .5:.05:.95, 101 recall thresholds,
// maxDets 1/10/100, area ranges all/small/medium/large, per-category matching).
// Plain doubles, no torch: the values are bit-identical to numpy's float64.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace automm {

// A ground-truth box (an entry of a COCO json's "annotations").
struct CocoAnnotation {
  int64_t id = 0, image_id = 0, category_id = 0;
  double x = 0, y = 0, w = 0, h = 0;  // COCO bbox [x, y, w, h]
  double area = 0;                    // the json's `area` field (not necessarily w * h)
  bool iscrowd = false;
};

// A result row ({image_id, category_id, bbox, score} of a results json).
struct CocoDetection {
  int64_t image_id = 0, category_id = 0;
  double x = 0, y = 0, w = 0, h = 0, score = 0;
};

// COCOeval(cocoGt, cocoGt.loadRes(detections), "bbox").evaluate(); accumulate();
// summarize() -> stats[0..11], in the order of coco_metric_names(); -1 where a
// value has nothing to average (no ground truth).
// image_ids / category_ids: the ground truth's image and category ids (the
// json's "images" and "categories"); they are sorted and deduplicated as
// COCOeval does. Annotations or detections naming a category outside
// category_ids, and annotations on images outside image_ids, take no part.
// Semantics kept from pycocotools on purpose: a ground truth's area range uses its
// `area` field, a detection's w * h; a detection matched to an annotation with id 0
// counts as unmatched (pycocotools stores matches as annotation ids, 0 = none).
// An empty `detections` evaluates as no detections (loadRes itself would fail on
// an empty list).
// Throws std::invalid_argument when a detection names an image id outside
// image_ids (loadRes asserts "Results do not correspond to current coco set") or
// two annotations share an id (COCO indexes annotations by id).
std::array<double, 12> coco_bbox_stats(const std::vector<int64_t>& image_ids,
                                       const std::vector<int64_t>& category_ids,
                                       const std::vector<CocoAnnotation>& ground_truth,
                                       const std::vector<CocoDetection>& detections);

// "map", "map_50", "map_75", "map_small", "map_medium", "map_large", "mar_1",
// "mar_10", "mar_100", "mar_small", "mar_medium", "mar_large".
const std::array<std::string, 12>& coco_metric_names();

}  // namespace automm
