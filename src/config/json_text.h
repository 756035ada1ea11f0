// JSON read from outside (tables, predictor folders, checkpoints' config and
// tokenizer files, safetensors headers): parsed after a check that it nests at
// most kMaxJsonDepth levels. nlohmann's parser is iterative, but the code that
// walks, copies and prints a parsed value recurses: without the limit, a line of
// 100000 '[' overflowed the stack of whatever read it.
#pragma once
#include <iosfwd>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace automm {

// Every format read here nests a handful of levels.
inline constexpr int kMaxJsonDepth = 100;

// Throws std::runtime_error naming `source` when `text` nests deeper than
// kMaxJsonDepth (brackets inside strings do not count). Linear, no allocation.
void check_json_nesting(std::string_view text, const std::string& source);

// check_json_nesting, then nlohmann::json::parse: syntax errors stay
// nlohmann::json::parse_error for the caller to word.
nlohmann::json parse_json(std::string_view text, const std::string& source);
// The whole stream's text, parsed as above.
nlohmann::json parse_json(std::istream& in, const std::string& source);

}  // namespace automm
