// The learner of problem_type zero_shot_image_classification: a CLIP checkpoint
// scores images against candidate class names, with nothing to fit
// (zero_shot_learner.cpp).
#pragma once

#include <memory>

#include "learners/learner.h"

namespace automm {

std::unique_ptr<Learner> make_zero_shot_learner(PredictorOptions options);

}  // namespace automm
