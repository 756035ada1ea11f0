#pragma once

#include <string>

namespace automm {

enum class ProblemType { kBinary, kMulticlass, kRegression };

// "binary", "multiclass", "regression".
std::string to_string(ProblemType type);
// Throws std::invalid_argument listing the known names.
ProblemType parse_problem_type(const std::string& name);
inline bool is_classification(ProblemType type) { return type != ProblemType::kRegression; }

}  // namespace automm
