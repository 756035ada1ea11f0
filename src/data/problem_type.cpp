#include "automm/problem_type.h"

#include <stdexcept>

namespace automm {

std::string to_string(ProblemType type) {
  switch (type) {
    case ProblemType::kBinary:
      return "binary";
    case ProblemType::kMulticlass:
      return "multiclass";
    case ProblemType::kRegression:
      return "regression";
  }
  throw std::invalid_argument("invalid ProblemType value " +
                              std::to_string(static_cast<int>(type)));
}

ProblemType parse_problem_type(const std::string& name) {
  for (ProblemType type :
       {ProblemType::kBinary, ProblemType::kMulticlass, ProblemType::kRegression}) {
    if (name == to_string(type)) return type;
  }
  throw std::invalid_argument("unknown problem type '" + name +
                              "'; known problem types: binary, multiclass, regression");
}

}  // namespace automm
