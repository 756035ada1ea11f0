// The problem-type registry and the Task defaults.
#include <map>
#include <mutex>
#include <stdexcept>

#include "tasks/builtin.h"

namespace automm {
namespace {

struct Registry {
  std::mutex mutex;
  std::map<std::string, TaskEntry> entries;
};

Registry& registry() {
  static Registry* instance = [] {
    auto* r = new Registry;
    for (TaskEntry entry : {
             TaskEntry{"binary", make_binary_task, "default", ""},
             TaskEntry{"multiclass", make_multiclass_task, "default", ""},
             TaskEntry{"regression", make_regression_task, "default", ""},
             // No targets: its learner scores candidate class names given at prediction time.
             TaskEntry{"zero_shot_image_classification", nullptr, "zero_shot", "", false},
             // Query / response pairs, a label optional: the matching learner reads them itself.
             TaskEntry{"text_similarity", nullptr, "matching", "", false},
             TaskEntry{"image_similarity", nullptr, "matching", "", false},
             TaskEntry{"image_text_similarity", nullptr, "matching", "", false},
             // Image and box columns (or a COCO file): the detection learner reads them itself.
             TaskEntry{"object_detection", nullptr, "object_detection", "", false},
             // AutoMM's other problem types, not built yet.
             // Image and mask columns: the segmentation learner reads them itself.
             TaskEntry{"semantic_segmentation", nullptr, "semantic_segmentation", ""},
             TaskEntry{"ner", nullptr, "ner", "named-entity recognition"},
             TaskEntry{"few_shot_classification", nullptr, "few_shot", "few-shot classification"},
         })
      r->entries[entry.name] = entry;
    return r;
  }();
  return *instance;
}

}  // namespace

bool Task::has_target(const Table& data, size_t row) const {
  for (const std::string& column : target_columns())
    if (data.column(column).is_missing(row)) return false;
  return true;
}

torch::Tensor Task::predict_proba(const torch::Tensor& outputs, bool as_multiclass) const {
  throw std::invalid_argument("predict_proba is for classification; this predictor's problem type is " + name());
}

void register_task(TaskEntry entry) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.entries[entry.name] = std::move(entry);
}

const TaskEntry& find_task(const std::string& name) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  const auto it = r.entries.find(name);
  if (it == r.entries.end()) {
    std::string known;
    for (const auto& [key, entry] : r.entries)
      if (entry.pending.empty()) known += (known.empty() ? "" : ", ") + key;
    throw std::invalid_argument("unknown problem type '" + name + "'; known problem types: " + known);
  }
  if (!it->second.pending.empty())
    throw std::invalid_argument("problem type '" + name + "' (" + it->second.pending +
                                ") is not supported yet in this version of automm.cpp");
  return it->second;
}

std::unique_ptr<Task> make_task(const std::string& name, const TaskOptions& options) {
  if (!options.config) throw std::invalid_argument("make_task needs the predictor's config");
  const TaskEntry& entry = find_task(name);
  if (!entry.make)
    throw std::invalid_argument("problem type '" + name + "' has no training targets (its learner, " + entry.learner +
                                ", needs no task)");
  return entry.make(options);
}

std::vector<std::string> task_names() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  std::vector<std::string> names;
  for (const auto& [name, entry] : r.entries)
    if (entry.pending.empty()) names.push_back(name);
  return names;
}

}  // namespace automm
