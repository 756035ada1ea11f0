// The learner of problem_type object_detection (AutoMM's
// learners/object_detection.py, optim/lit_mmdet.py): a YOLOX or YOLOv3 detector
// (models/detection) fine-tuned on a COCO file or a table of images and boxes,
// scored with COCO mAP (detection_learner.cpp).
#pragma once

#include <memory>

#include "learners/learner.h"

namespace automm {

std::unique_ptr<Learner> make_detection_learner(PredictorOptions options);

}  // namespace automm
