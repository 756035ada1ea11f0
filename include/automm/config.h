// Hyperparameters: one registry of every dotted key (name, aliases, type, default,
// allowed values, doc). Defaults, validation, "did you mean" errors, the CLI's
// parsing and docs/hyperparameters.md all come from it.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace automm {

using Json = nlohmann::json;

enum class KeyType {
  kBool,
  kInt,
  kFloat,
  kString,
  kStringList,
  kNumberList,
  kIntOrFloat,  // an int means a count, a float a fraction (warmup_steps, val_check_interval)
  kIntOrInf,    // an int, or the string "inf" (track_grad_norm)
};

struct KeySpec {
  std::string name;                  // canonical dotted name, e.g. "optim.lr"
  std::vector<std::string> aliases;  // other accepted spellings
  KeyType type = KeyType::kString;
  Json default_value;
  bool nullable = false;             // null (YAML ~, "null", "none") allowed
  std::vector<std::string> choices;  // allowed strings; empty = any
  std::optional<double> min, max;
  bool min_exclusive = false, max_exclusive = false;
  std::string doc;
  // Empty when the key works. Otherwise it names the feature that has not been
  // built yet; a non-default value set by the user is then rejected at fit time.
  std::string pending;
};

const std::vector<KeySpec>& key_registry();

// A key that is not in the registry (Python: KeyError, as AutoMM's overrides raise).
class UnknownKeyError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// Accepts canonical names and aliases (including the optimization.* prefix).
// Throws UnknownKeyError naming the three closest keys.
const KeySpec& find_key(const std::string& name);
// The markdown table written to docs/hyperparameters.md and printed by
// `automm hyperparameters`.
std::string hyperparameters_markdown();
std::string describe_type(const KeySpec& spec);

class Config {
 public:
  // Every key at its default.
  Config();

  // Validates and stores a value under the canonical name. Strings given for
  // non-string keys are parsed as the CLI would ("1e-3", "true", "[a,b]").
  void set(const std::string& key, const Json& value);
  // Parses CLI text by the key's type: numbers, booleans, lists as [a,b].
  void set_from_text(const std::string& key, const std::string& text);
  // "key=value"; throws naming the argument when there is no '='.
  void set_assignment(const std::string& assignment);
  // A YAML file, nested (optim: {lr: 0.001}) or flat ("optim.lr": 0.001).
  void merge_yaml_file(const std::string& path);
  // Applies every key of a JSON object (flat or nested), marking them user-set.
  void merge(const Json& overrides);

  const Json& get(const std::string& key) const;
  bool get_bool(const std::string& key) const;
  int64_t get_int(const std::string& key) const;
  double get_double(const std::string& key) const;
  std::string get_string(const std::string& key) const;
  std::vector<std::string> get_list(const std::string& key) const;
  bool is_null(const std::string& key) const;

  // Keys the user set (through set/merge), as opposed to defaults and presets.
  const std::set<std::string>& user_keys() const { return user_keys_; }
  void mark_as_preset(const std::string& key) { user_keys_.erase(find_key(key).name); }
  // Throws for a user-set, non-default value of a key whose feature is pending.
  void check_supported() const;

  Json to_json() const;  // flat {canonical: value}
  static Config from_json(const Json& flat);

 private:
  std::map<std::string, Json> values_;
  std::set<std::string> user_keys_;
};

// Known presets: medium_quality, high_quality (default), best_quality.
// Applies the preset's values (not marked as user-set). Throws for unknown names.
void apply_preset(Config& config, const std::string& preset);
std::vector<std::string> preset_names();

}  // namespace automm
