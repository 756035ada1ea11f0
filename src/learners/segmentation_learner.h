// The learner of problem_type semantic_segmentation (AutoMM's
// learners/semantic_segmentation.py, optim/lit_semantic_seg.py): a SAM model
// (models/sam) fine-tuned on a table of image paths and mask paths
// (segmentation_learner.cpp).
#pragma once

#include <memory>

#include "learners/learner.h"

namespace automm {

std::unique_ptr<Learner> make_segmentation_learner(PredictorOptions options);

}  // namespace automm
