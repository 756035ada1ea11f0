// The learner of the matching problem types (text_similarity,
// image_similarity, image_text_similarity): a shared encoder embeds query and
// response columns (matching_learner.cpp).
#pragma once

#include <memory>

#include "learners/learner.h"

namespace automm {

std::unique_ptr<Learner> make_matching_learner(PredictorOptions options);

}  // namespace automm
