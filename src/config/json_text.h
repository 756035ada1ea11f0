// JSON read from outside (tables, predictor folders, checkpoints' config and
// tokenizer files, safetensors headers): parsed after a check that it nests at
// most kMaxJsonDepth levels. nlohmann's parser is iterative, but the code that
// walks, copies and prints a parsed value recurses: without the limit, a line of
// 100000 '[' overflowed the stack of whatever read it.
#pragma once
#include <cstdint>
#include <iosfwd>
#include <optional>
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

// The integer a JSON number holds: an integer within int64's range, or a float
// with an integral value within it; nullopt for anything else. (nlohmann's
// get<int64_t>() of a float such as 1e58 is undefined behaviour; a fuzzed
// tokenizer.json found it.)
std::optional<int64_t> json_integer(const nlohmann::json& value);

// object[key] as json_integer; `fallback` where the key is absent or null.
// Throws std::runtime_error naming `source` and the key for any other value.
int64_t json_integer_field(const nlohmann::json& object, const std::string& key, int64_t fallback,
                           const std::string& source);

}  // namespace automm
