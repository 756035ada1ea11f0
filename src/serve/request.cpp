#include "serve/request.h"

#include <filesystem>

#include "data/image/image_io.h"

namespace automm {
namespace fs = std::filesystem;
namespace {

constexpr int kMaxDepth = 16;  // {"data": [{column: value}]} needs 3; a value may be {"path": P}

bool is_image(const std::string& type) { return type == "image_path" || type == "image_bytearray"; }

// A file named by a request, which must lie inside `root` once links are followed.
std::string image_file(const std::string& root, const std::string& requested, const std::string& field) {
  const fs::path path(requested);
  for (const auto& part : path)
    if (part == "..") throw RequestError(field + ": an image path may not contain '..'");
  std::error_code error;
  const fs::path base = fs::canonical(root, error);
  if (error) throw std::runtime_error("--allow-image-dir " + root + " cannot be read: " + error.message());
  const fs::path resolved = fs::weakly_canonical(path.is_absolute() ? path : base / path, error);
  const std::string inside = base.string() + "/";
  if (error || resolved.string().rfind(inside, 0) != 0)
    throw RequestError(field + ": image path '" + requested + "' is outside the allowed image folder");
  if (!fs::is_regular_file(resolved)) throw RequestError(field + ": image file '" + requested + "' does not exist");
  return resolved.string();
}

// One JSON value as a cell of a column of `type`; false when missing.
bool cell_text(const Json& value, const std::string& type, const ServedColumns& served, const std::string& field,
               std::string& cell) {
  if (value.is_null()) return false;
  if (type == "numerical") {
    if (!value.is_number()) throw RequestError(field + ": expected a number or null, got " + value.dump());
    cell = value.dump();
    return true;
  }
  if (is_image(type)) {
    if (value.is_object() && value.size() == 1 && value.contains("path") && value["path"].is_string()) {
      if (served.allow_image_dir.empty())
        throw RequestError(field + ": images are sent as base64 text (the server allows no image paths)");
      if (type != "image_path") throw RequestError(field + ": this column holds image bytes: send base64 text");
      cell = image_file(served.allow_image_dir, value["path"].get<std::string>(), field);
      return true;
    }
    if (!value.is_string())
      throw RequestError(field + ": expected an image as base64 text" +
                         std::string(served.allow_image_dir.empty() ? "" : " or {\"path\": P}") + ", got " +
                         value.dump());
    const std::string& text = value.get_ref<const std::string&>();
    try {
      decode_base64(text, field);
    } catch (const std::exception& e) {
      throw RequestError(field + ": not base64 image data (" + e.what() + ")");
    }
    // A path column reads an inline image as a data URI.
    cell = type == "image_path" && text.rfind("data:", 0) != 0 ? "data:;base64," + text : text;
    return true;
  }
  if (value.is_string()) cell = value.get<std::string>();
  else if (value.is_boolean() && type == "categorical") cell = value.get<bool>() ? "True" : "False";
  else if (value.is_number() && type == "categorical") cell = value.dump();
  else throw RequestError(field + ": expected " + (type == "text" ? "text" : "a string or a number") + " or null, got " +
                          value.dump());
  return true;
}

const std::pair<std::string, std::string>* find_column(const ServedColumns& served, const std::string& name) {
  for (const auto& column : served.columns)
    if (column.first == name) return &column;
  return nullptr;
}

std::string known_columns(const ServedColumns& served) {
  std::string text;
  for (const auto& [name, type] : served.columns) text += (text.empty() ? "" : ", ") + name;
  return text;
}

void check_key(const ServedColumns& served, const std::string& key, const std::string& where) {
  if (key != served.label && !find_column(served, key))
    throw RequestError(where + ": unknown column '" + key + "'; the predictor's columns are " + known_columns(served));
}

void check_rows(size_t rows, const ServedColumns& served) {
  if (rows == 0) throw RequestError("data holds no rows");
  if (rows > served.max_rows)
    throw RequestError("data holds " + std::to_string(rows) + " rows; this server takes at most " +
                       std::to_string(served.max_rows) + " per request (--max-rows)");
}

}  // namespace

ServedColumns ServedColumns::of(const MultiModalPredictor& predictor, const std::string& allow_image_dir,
                                size_t max_rows) {
  ServedColumns served;
  served.label = predictor.label();
  for (const auto& [name, type] : predictor.column_types())
    if (name != served.label && type != "ignored") served.columns.emplace_back(name, type);
  served.allow_image_dir = allow_image_dir;
  served.max_rows = max_rows;
  return served;
}

Table request_table(const std::string& body, const ServedColumns& served) {
  Json request;
  try {
    request = Json::parse(body, [](int depth, Json::parse_event_t, Json&) {
      if (depth > kMaxDepth) throw RequestError("the JSON body nests deeper than " + std::to_string(kMaxDepth));
      return true;
    });
  } catch (const Json::exception& e) {  // a syntax error, a number out of range
    throw RequestError(std::string("malformed JSON: ") + e.what());
  }
  if (!request.is_object() || !request.contains("data"))
    throw RequestError("the body must be a JSON object {\"data\": [rows] or {columns}}");
  for (const auto& [key, value] : request.items())
    if (key != "data") throw RequestError("unknown field '" + key + "' (the body holds only \"data\")");
  const Json& data = request["data"];

  std::vector<Column> columns;
  for (const auto& [name, type] : served.columns) columns.emplace_back(name);
  std::string cell;
  if (data.is_array()) {  // rows: [{column: value}]
    check_rows(data.size(), served);
    for (size_t r = 0; r < data.size(); ++r) {
      const std::string row = "data[" + std::to_string(r) + "]";
      if (!data[r].is_object()) throw RequestError(row + ": expected an object of column: value");
      for (const auto& [key, value] : data[r].items()) check_key(served, key, row);
      for (size_t c = 0; c < columns.size(); ++c) {
        const auto& [name, type] = served.columns[c];
        const auto it = data[r].find(name);
        if (it == data[r].end()) throw RequestError(row + ": missing column '" + name + "'");
        const bool present = cell_text(*it, type, served, row + "." + name, cell);
        columns[c].push(present ? cell : "", present);
      }
    }
  } else if (data.is_object()) {  // columns: {column: [values]}
    for (const auto& [key, value] : data.items()) check_key(served, key, "data");
    size_t rows = 0;
    for (size_t c = 0; c < columns.size(); ++c) {
      const auto& [name, type] = served.columns[c];
      const auto it = data.find(name);
      if (it == data.end()) throw RequestError("data: missing column '" + name + "'");
      if (!it->is_array()) throw RequestError("data." + name + ": expected an array of values");
      if (c == 0) check_rows(it->size(), served);
      rows = c == 0 ? it->size() : rows;
      if (it->size() != rows)
        throw RequestError("data." + name + ": " + std::to_string(it->size()) + " values, but data." +
                           served.columns[0].first + " has " + std::to_string(rows));
      for (size_t r = 0; r < rows; ++r) {
        const bool present = cell_text((*it)[r], type, served, "data." + name + "[" + std::to_string(r) + "]", cell);
        columns[c].push(present ? cell : "", present);
      }
    }
  } else {
    throw RequestError("data must be an array of rows or an object of columns");
  }
  Table table;
  table.source = "the request";
  for (Column& column : columns) table.add_column(std::move(column));
  return table;
}

RowsAnswer RowsAnswer::slice(size_t begin, size_t end) const {
  RowsAnswer part{key, Json::array(), shared};
  for (size_t r = begin; r < end; ++r) part.rows.push_back(rows[r]);
  return part;
}

std::string RowsAnswer::body() const {
  Json out = shared;
  out[key] = rows;
  return out.dump();
}

RowsAnswer answer(const MultiModalPredictor& predictor, Endpoint endpoint, const Table& rows) {
  const auto matrix_rows = [](const torch::Tensor& values) {
    const torch::Tensor m = values.to(torch::kFloat64).contiguous();
    Json out = Json::array();
    for (int64_t r = 0; r < m.size(0); ++r) {
      const double* p = m[r].data_ptr<double>();
      out.push_back(std::vector<double>(p, p + m.size(1)));
    }
    return out;
  };
  switch (endpoint) {
    case Endpoint::kPredict: {
      const Predictions p = predictor.predict(rows);
      RowsAnswer out{"predictions"};
      if (!p.are_classes()) {
        for (double x : p.numbers()) out.rows.push_back(x);
      } else if (p.values.dim() == 1) {
        for (const std::string& label : p.labels()) out.rows.push_back(label);
      } else {  // a set of classes per row
        for (size_t r = 0; r < p.size(); ++r) {
          Json set = Json::array();
          for (size_t c = 0; c < p.classes.size(); ++c)
            if (p.values[static_cast<int64_t>(r)][static_cast<int64_t>(c)].item<double>() > 0) set.push_back(p.classes[c]);
          out.rows.push_back(set);
        }
      }
      return out;
    }
    case Endpoint::kPredictProba:
      return {"probabilities", matrix_rows(predictor.predict_proba(rows)), {{"classes", predictor.classes()}}};
    case Endpoint::kEmbed:
      return {"embeddings", matrix_rows(predictor.extract_embedding(rows))};
  }
  throw std::logic_error("unknown endpoint");
}

Table concatenate(const std::vector<const Table*>& tables) {
  Table out = *tables.front();
  for (size_t t = 1; t < tables.size(); ++t) {
    for (size_t c = 0; c < out.num_columns(); ++c) {
      out.column(out.columns()[c].name()).append(tables[t]->columns()[c]);
    }
  }
  return out;
}

}  // namespace automm
