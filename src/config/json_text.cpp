#include "config/json_text.h"

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

}  // namespace automm
