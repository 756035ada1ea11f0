#include "automm/config.h"
#include "config/json_text.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <set>
#include <unordered_map>

#include <yaml-cpp/yaml.h>

namespace automm {
namespace {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1] ? 1 : 0)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

const std::unordered_map<std::string, const KeySpec*>& name_index() {
  static const auto index = [] {
    std::unordered_map<std::string, const KeySpec*> map;
    for (const KeySpec& spec : key_registry()) {
      map[spec.name] = &spec;
      for (const std::string& a : spec.aliases) map[a] = &spec;
    }
    return map;
  }();
  return index;
}

std::string trim(const std::string& text) {
  const size_t begin = text.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) return "";
  const size_t end = text.find_last_not_of(" \t\r\n");
  return text.substr(begin, end - begin + 1);
}

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

bool is_null_text(const std::string& text) {
  const std::string t = lower(trim(text));
  return t == "null" || t == "none" || t == "~";
}

std::optional<int64_t> parse_int(const std::string& text) {
  const std::string t = trim(text);
  if (t.empty()) return std::nullopt;
  size_t used = 0;
  try {
    const long long value = std::stoll(t, &used);
    if (used == t.size()) return value;
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

std::optional<double> parse_double(const std::string& text) {
  const std::string t = trim(text);
  if (t.empty()) return std::nullopt;
  size_t used = 0;
  try {
    const double value = std::stod(t, &used);
    if (used == t.size()) return value;
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

// "[a, b]" or "a,b" -> items; "[]" -> none. Quotes around items are removed.
std::vector<std::string> split_list(const std::string& text) {
  std::string t = trim(text);
  if (t.size() >= 2 && t.front() == '[' && t.back() == ']') t = t.substr(1, t.size() - 2);
  std::vector<std::string> items;
  if (trim(t).empty()) return items;
  std::stringstream stream(t);
  std::string item;
  while (std::getline(stream, item, ',')) {
    item = trim(item);
    if (item.size() >= 2 && (item.front() == '"' || item.front() == '\'') &&
        item.back() == item.front())
      item = item.substr(1, item.size() - 2);
    items.push_back(item);
  }
  return items;
}

[[noreturn]] void wrong_type(const KeySpec& spec, const Json& value) {
  throw std::invalid_argument("key '" + spec.name + "' expects " + describe_type(spec) + ", got " +
                              value.dump());
}

void check_range(const KeySpec& spec, double value) {
  const bool below = spec.min && (spec.min_exclusive ? value <= *spec.min : value < *spec.min);
  const bool above = spec.max && (spec.max_exclusive ? value >= *spec.max : value > *spec.max);
  if (std::isnan(value) || below || above)
    throw std::invalid_argument("key '" + spec.name + "' = " +
                                (spec.type == KeyType::kInt ? std::to_string(static_cast<int64_t>(value))
                                                            : Json(value).dump()) +
                                " is out of range: expected " + describe_type(spec));
}

// Converts a text value to the key's JSON type (the CLI / YAML / string path).
Json parse_text(const KeySpec& spec, const std::string& text) {
  if (spec.nullable && is_null_text(text)) return nullptr;
  const Json as_text = text;
  switch (spec.type) {
    case KeyType::kBool: {
      const std::string t = lower(trim(text));
      if (t == "true" || t == "1" || t == "yes") return true;
      if (t == "false" || t == "0" || t == "no") return false;
      wrong_type(spec, as_text);
    }
    case KeyType::kInt:
      if (auto v = parse_int(text)) return *v;
      wrong_type(spec, as_text);
    case KeyType::kFloat:
      if (auto v = parse_double(text)) return *v;
      wrong_type(spec, as_text);
    case KeyType::kIntOrFloat:
      if (auto v = parse_int(text)) return *v;
      if (auto v = parse_double(text)) return *v;
      wrong_type(spec, as_text);
    case KeyType::kIntOrInf:
      if (lower(trim(text)) == "inf") return "inf";
      if (auto v = parse_int(text)) return *v;
      wrong_type(spec, as_text);
    case KeyType::kString:
      return text;
    case KeyType::kStringList:
      return split_list(text);
    case KeyType::kNumberList: {
      Json list = Json::array();
      for (const std::string& item : split_list(text)) {
        if (auto v = parse_int(item))
          list.push_back(*v);
        else if (auto d = parse_double(item))
          list.push_back(*d);
        else
          wrong_type(spec, as_text);
      }
      return list;
    }
  }
  wrong_type(spec, as_text);
}

// Checks a JSON value against the key and returns it in canonical form.
Json normalize(const KeySpec& spec, const Json& value) {
  if (value.is_null()) {
    if (spec.nullable) return nullptr;
    throw std::invalid_argument("key '" + spec.name + "' cannot be null: expected " +
                                describe_type(spec));
  }
  if (spec.type == KeyType::kIntOrInf && value == "inf") return value;
  // Strings for non-string keys come from text sources; parse them by type.
  if (value.is_string() && spec.type != KeyType::kString)
    return normalize(spec, parse_text(spec, value.get<std::string>()));
  Json out;
  switch (spec.type) {
    case KeyType::kBool:
      if (!value.is_boolean()) wrong_type(spec, value);
      return value;
    case KeyType::kInt:
      if (const auto number = json_integer(value)) {
        out = *number;
      } else {
        wrong_type(spec, value);
      }
      check_range(spec, out.get<double>());
      return out;
    case KeyType::kFloat:
      if (!value.is_number()) wrong_type(spec, value);
      out = value.get<double>();
      check_range(spec, out.get<double>());
      return out;
    case KeyType::kIntOrFloat:
      if (!value.is_number()) wrong_type(spec, value);
      check_range(spec, value.get<double>());
      return value;
    case KeyType::kIntOrInf:
      if (value.is_string() && value.get<std::string>() == "inf") return value;
      if (!value.is_number_integer()) wrong_type(spec, value);
      if (value.get<int64_t>() != -1 && value.get<int64_t>() < 1)
        throw std::invalid_argument("key '" + spec.name + "' = " + value.dump() +
                                    " is out of range: expected -1 (off), p >= 1, or inf");
      return value;
    case KeyType::kString: {
      // Numbers are accepted where a choice spells a number (env.precision: 32).
      std::string text;
      if (value.is_string()) {
        text = value.get<std::string>();
      } else if (value.is_number_integer()) {
        text = std::to_string(value.get<int64_t>());
      } else {
        wrong_type(spec, value);
      }
      if (!spec.choices.empty() &&
          std::find(spec.choices.begin(), spec.choices.end(), text) == spec.choices.end()) {
        std::string allowed;
        for (const std::string& c : spec.choices) allowed += (allowed.empty() ? "" : ", ") + Json(c).dump();
        throw std::invalid_argument("key '" + spec.name + "' = " + Json(text).dump() +
                                    " is not allowed; allowed values: " + allowed);
      }
      return text;
    }
    case KeyType::kStringList:
      if (!value.is_array()) wrong_type(spec, value);
      for (const Json& item : value)
        if (!item.is_string()) wrong_type(spec, value);
      return value;
    case KeyType::kNumberList:
      if (!value.is_array()) wrong_type(spec, value);
      for (const Json& item : value)
        if (!item.is_number()) wrong_type(spec, value);
      return value;
  }
  wrong_type(spec, value);
}

// Flattens {a: {b: 1}} into {"a.b": 1}; keeps lists and scalars as leaves.
void flatten(const Json& node, const std::string& prefix, Json& out) {
  if (node.is_object()) {
    for (auto it = node.begin(); it != node.end(); ++it)
      flatten(it.value(), prefix.empty() ? it.key() : prefix + "." + it.key(), out);
  } else {
    out[prefix] = node;
  }
}

// YAML scalars arrive as text; the key's type decides how they are read later.
Json yaml_to_json(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return nullptr;
    case YAML::NodeType::Scalar:
      return node.Scalar();
    case YAML::NodeType::Sequence: {
      Json list = Json::array();
      for (const auto& item : node) list.push_back(yaml_to_json(item));
      return list;
    }
    case YAML::NodeType::Map: {
      Json object = Json::object();
      for (const auto& item : node) object[item.first.as<std::string>()] = yaml_to_json(item.second);
      return object;
    }
    default:
      return nullptr;
  }
}

// List items from YAML are strings; numeric lists need them as numbers.
Json coerce_list_items(const KeySpec& spec, const Json& value) {
  if (spec.type != KeyType::kNumberList || !value.is_array()) return value;
  Json list = Json::array();
  for (const Json& item : value) {
    if (item.is_string()) {
      if (auto i = parse_int(item.get<std::string>()))
        list.push_back(*i);
      else if (auto v = parse_double(item.get<std::string>()))
        list.push_back(*v);
      else
        wrong_type(spec, value);
    } else {
      list.push_back(item);
    }
  }
  return list;
}

}  // namespace

std::string describe_type(const KeySpec& spec) {
  std::string text;
  switch (spec.type) {
    case KeyType::kBool: text = "a boolean (true/false)"; break;
    case KeyType::kInt: text = "an integer"; break;
    case KeyType::kFloat: text = "a number"; break;
    case KeyType::kIntOrFloat: text = "a number (float = fraction, int = count)"; break;
    case KeyType::kIntOrInf: text = "an integer or inf"; break;
    case KeyType::kStringList: text = "a list of strings"; break;
    case KeyType::kNumberList: text = "a list of numbers"; break;
    case KeyType::kString:
      if (spec.choices.empty()) {
        text = "a string";
      } else {
        text = "one of ";
        for (size_t i = 0; i < spec.choices.size(); ++i)
          text += (i ? ", " : "") + Json(spec.choices[i]).dump();
      }
      break;
  }
  if (spec.min || spec.max) {
    // Integer keys show integer bounds ("[1, inf)", not "[1.0, inf)").
    auto bound = [&](double v) {
      return spec.type == KeyType::kInt ? std::to_string(static_cast<int64_t>(v)) : Json(v).dump();
    };
    text += " in ";
    text += spec.min ? (spec.min_exclusive ? "(" : "[") + bound(*spec.min) : "(-inf";
    text += ", ";
    text += spec.max ? bound(*spec.max) + (spec.max_exclusive ? ")" : "]") : "inf)";
  }
  if (spec.nullable) text += ", or null";
  return text;
}

const KeySpec& find_key(const std::string& name) {
  const auto& index = name_index();
  const auto it = index.find(name);
  if (it != index.end()) return *it->second;
  // Rank every accepted spelling; report each key once, by its closest spelling.
  std::vector<std::pair<size_t, std::string>> scored;
  for (const auto& [spelling, spec] : index) scored.emplace_back(edit_distance(name, spelling), spelling);
  std::sort(scored.begin(), scored.end());
  std::string message = "unknown hyperparameter key '" + name + "'; closest keys: ";
  std::set<const KeySpec*> reported;
  for (const auto& [distance, spelling] : scored) {
    if (reported.size() == 3) break;
    if (!reported.insert(index.at(spelling)).second) continue;
    message += (reported.size() > 1 ? ", " : "") + spelling;
  }
  throw UnknownKeyError(message + " (see `automm hyperparameters`)");
}

Config::Config() {
  for (const KeySpec& spec : key_registry()) values_[spec.name] = spec.default_value;
}

void Config::set(const std::string& key, const Json& value) {
  const KeySpec& spec = find_key(key);
  values_[spec.name] = normalize(spec, coerce_list_items(spec, value));
  user_keys_.insert(spec.name);
}

void Config::set_from_text(const std::string& key, const std::string& text) {
  const KeySpec& spec = find_key(key);
  set(spec.name, parse_text(spec, text));
}

void Config::set_assignment(const std::string& assignment) {
  const size_t eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    throw std::invalid_argument("hyperparameter '" + assignment + "' must be written key=value");
  set_from_text(trim(assignment.substr(0, eq)), assignment.substr(eq + 1));
}

void Config::merge(const Json& overrides) {
  if (!overrides.is_object())
    throw std::invalid_argument("hyperparameters must be an object of key: value, got " +
                                overrides.dump());
  Json flat = Json::object();
  // A dotted key whose value is an object is a nested group (optim: {lr: ...}).
  flatten(overrides, "", flat);
  for (auto it = flat.begin(); it != flat.end(); ++it) set(it.key(), it.value());
}

void Config::merge_yaml_file(const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    throw std::runtime_error("cannot read config file '" + path + "'");
  } catch (const YAML::Exception& e) {
    throw std::runtime_error("config file '" + path + "': " + e.what());
  }
  if (root.IsNull()) return;
  if (!root.IsMap()) throw std::runtime_error("config file '" + path + "' must hold a mapping of keys");
  try {
    merge(yaml_to_json(root));
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument("config file '" + path + "': " + e.what());
  }
}

const Json& Config::get(const std::string& key) const { return values_.at(find_key(key).name); }

bool Config::get_bool(const std::string& key) const { return get(key).get<bool>(); }
int64_t Config::get_int(const std::string& key) const { return get(key).get<int64_t>(); }
double Config::get_double(const std::string& key) const { return get(key).get<double>(); }
std::string Config::get_string(const std::string& key) const {
  const Json& value = get(key);
  return value.is_null() ? "" : value.get<std::string>();
}
std::vector<std::string> Config::get_list(const std::string& key) const {
  const Json& value = get(key);
  return value.is_null() ? std::vector<std::string>{} : value.get<std::vector<std::string>>();
}
bool Config::is_null(const std::string& key) const { return get(key).is_null(); }

void Config::check_supported() const {
  for (const std::string& name : user_keys_) {
    const KeySpec& spec = find_key(name);
    if (spec.pending.empty() || values_.at(name) == spec.default_value) continue;
    throw std::invalid_argument("key '" + name + "' = " + values_.at(name).dump() +
                                " is not supported yet: " + spec.pending +
                                " is not built in this version of automm.cpp. Leave the key at "
                                "its default (" + spec.default_value.dump() + ").");
  }
}

Json Config::to_json() const {
  Json flat = Json::object();
  for (const auto& [name, value] : values_) flat[name] = value;
  return flat;
}

Config Config::from_json(const Json& flat) {
  Config config;
  for (auto it = flat.begin(); it != flat.end(); ++it) {
    const KeySpec& spec = find_key(it.key());
    config.values_[spec.name] = normalize(spec, it.value());
  }
  return config;
}

std::string hyperparameters_markdown() {
  std::ostringstream out;
  out << "# Hyperparameters\n\n"
      << "Generated from the key registry (`src/config/key_registry.cpp`) by "
         "`automm hyperparameters`. Aliases are accepted everywhere a key is. Keys marked "
         "*pending* exist and validate, but a non-default value is rejected until the feature "
         "is built.\n\n"
      << "| key | aliases | type | default | description |\n|---|---|---|---|---|\n";
  for (const KeySpec& spec : key_registry()) {
    std::string aliases;
    for (const std::string& a : spec.aliases) aliases += (aliases.empty() ? "" : ", ") + ("`" + a + "`");
    std::string doc = spec.doc;
    if (!spec.pending.empty()) doc += " *pending: " + spec.pending + "*";
    std::string type = describe_type(spec);
    std::replace(type.begin(), type.end(), '|', '/');
    out << "| `" << spec.name << "` | " << aliases << " | " << type << " | `"
        << spec.default_value.dump() << "` | " << doc << " |\n";
  }
  return out.str();
}

}  // namespace automm
