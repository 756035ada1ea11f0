// The problem types built into the task registry (tasks/registry.cpp).
#pragma once

#include <memory>

#include "tasks/task.h"

namespace automm {

std::unique_ptr<Task> make_binary_task(const TaskOptions& options);
std::unique_ptr<Task> make_multiclass_task(const TaskOptions& options);
std::unique_ptr<Task> make_regression_task(const TaskOptions& options);

}  // namespace automm
