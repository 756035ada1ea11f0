// Pascal VOC detection folders read into the table a COCO file gives
// (coco.h), so object detection trains and evaluates on them unchanged.
//
// A VOC root holds Annotations/<id>.xml, JPEGImages/<file> and optionally
// labels.txt and ImageSets/Main/<split>.txt. As AutoMM's from_voc reads it:
// - classes: labels.txt (one name a line, lower-cased) when present, else every
//   object name in Annotations/*.xml, lower-cased and sorted (AutoMM also
//   writes that list to labels.txt; this reader writes nothing). Category ids
//   are 1..K, the class index 0..K-1.
// - images: a root gives the ids of JPEGImages/*.jpg, *.jpeg and *.png; a split
//   file the first word of each of its lines. Each id needs Annotations/<id>.xml;
//   the image is JPEGImages/<the xml's filename> (".jpg" added when it has no
//   extension).
// - boxes: xmin, ymin, xmax, ymax each minus 1 (VOC counts pixels from 1), the
//   mins raised to 0 and the maxes lowered to the <size>; a box left with
//   xmin >= xmax or ymin >= ymax is dropped (a counted warning). `difficult`
//   objects are ordinary boxes, for training and evaluation, as in AutoMM.
// - images left without a box are left out, as AutoMM leaves them out.
// Rows are sorted by image path; `image_id` is the row number, `coco_gt` holds
// the kept boxes (AutoMM evaluates a VOC folder on exactly those), iscrowd 0.
#pragma once

#include <string>

#include "automm/table.h"

namespace automm {

// True when `path` is a VOC root (a folder with Annotations/ and JPEGImages/)
// or a split file <root>/ImageSets/Main/<split>.txt of such a root.
bool is_voc_path(const std::string& path);

// The rows of a VOC root or split file, with read_coco_table's columns (image,
// image_id, width, height, rois, coco_gt, coco_categories). Errors name the
// file: an xml that does not parse or lacks <size>, a missing xml or image, an
// object name that labels.txt lacks, a coordinate that is not a number.
Table read_voc_table(const std::string& path);

}  // namespace automm
