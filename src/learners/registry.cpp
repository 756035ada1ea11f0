// The learner registry: problem types name their learner (TaskEntry::learner).
#include <map>
#include <mutex>
#include <stdexcept>

#include "learners/default_learner.h"
#include "learners/detection_learner.h"
#include "learners/matching_learner.h"
#include "learners/segmentation_learner.h"
#include "learners/zero_shot_learner.h"

namespace automm {
namespace {

struct Registry {
  std::mutex mutex;
  std::map<std::string, LearnerFactory> factories = {
      {"default", [](PredictorOptions options) { return std::make_unique<DefaultLearner>(std::move(options)); }},
      {"zero_shot", make_zero_shot_learner},
      {"matching", make_matching_learner},
      {"semantic_segmentation", make_segmentation_learner},
      {"object_detection", make_detection_learner},
  };
};

Registry& registry() {
  static Registry instance;
  return instance;
}

}  // namespace

void register_learner(const std::string& name, LearnerFactory factory) {
  std::lock_guard<std::mutex> lock(registry().mutex);
  registry().factories[name] = std::move(factory);
}

torch::Tensor Learner::predict_proba(const Table&, const std::vector<std::string>&) const {
  throw std::invalid_argument("candidate class names are for problem_type zero_shot_image_classification; this "
                              "predictor's problem type is " + problem_type() + " (predict(data) uses its own classes)");
}

std::unique_ptr<Learner> make_learner(const std::string& name, PredictorOptions options) {
  LearnerFactory factory;
  {
    std::lock_guard<std::mutex> lock(registry().mutex);
    const auto it = registry().factories.find(name);
    if (it == registry().factories.end()) {
      std::string known;
      for (const auto& [key, value] : registry().factories) known += (known.empty() ? "" : ", ") + key;
      throw std::invalid_argument("no learner named '" + name + "'; known learners: " + known);
    }
    factory = it->second;
  }
  return factory(std::move(options));
}

}  // namespace automm
