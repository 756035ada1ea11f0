#include "config/json_text.h"

#include <climits>
#include <cmath>
#include <istream>
#include <iterator>
#include <stdexcept>

namespace automm {

void check_json_nesting(std::string_view text, const std::string& source) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;  // the escaped character cannot end the string
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth)
        throw std::runtime_error(source + ": the JSON nests deeper than " + std::to_string(kMaxJsonDepth) +
                                 " levels (at byte " + std::to_string(i) + "), more than any file read here holds");
    } else if (c == ']' || c == '}') {
      --depth;  // unbalanced brackets are the parser's to report
    }
  }
}

nlohmann::json parse_json(std::string_view text, const std::string& source) {
  check_json_nesting(text, source);
  return nlohmann::json::parse(text);
}

nlohmann::json parse_json(std::istream& in, const std::string& source) {
  const std::string text(std::istreambuf_iterator<char>(in), {});
  return parse_json(text, source);
}

std::optional<int64_t> json_integer(const nlohmann::json& value) {
  if (value.is_number_integer() && !value.is_number_unsigned()) return value.get<int64_t>();
  if (value.is_number_unsigned()) {
    const uint64_t u = value.get<uint64_t>();
    if (u > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
    return static_cast<int64_t>(u);
  }
  if (value.is_number_float()) {
    const double d = value.get<double>();
    // [-2^63, 2^63): every double there converts exactly; NaN fails both tests.
    if (std::floor(d) == d && d >= -9223372036854775808.0 && d < 9223372036854775808.0) return static_cast<int64_t>(d);
  }
  return std::nullopt;
}

int64_t json_integer_field(const nlohmann::json& object, const std::string& key, int64_t fallback,
                           const std::string& source) {
  if (!object.is_object() || !object.contains(key) || object.at(key).is_null()) return fallback;
  if (const auto number = json_integer(object.at(key))) return *number;
  throw std::runtime_error(source + ": \"" + key + "\" must be an integer, not " + object.at(key).dump());
}

}  // namespace automm
