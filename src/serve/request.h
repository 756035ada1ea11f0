// Request bodies into tables, prediction results into answers.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "automm/config.h"
#include "automm/predictor.h"
#include "automm/table.h"

namespace automm {

// A request the client must fix: answered 400 with this message.
class RequestError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// The columns a request carries: the predictor's feature columns and types.
struct ServedColumns {
  std::vector<std::pair<std::string, std::string>> columns;  // name, type (numerical, text, image_path, ...)
  std::string label;                                          // accepted in a request, not used
  std::string allow_image_dir;                                // "" = images as base64 only
  size_t max_rows = 4096;

  static ServedColumns of(const MultiModalPredictor& predictor, const std::string& allow_image_dir, size_t max_rows);
};

// A JSON body ({"data": rows or columns}) as a table of the served columns, in
// their order. Throws RequestError naming the field (data[3].x1, data.x1[3]).
Table request_table(const std::string& body, const ServedColumns& served);

enum class Endpoint { kPredict, kPredictProba, kEmbed };

// An endpoint's answer for a set of rows: one JSON array element per row under
// `key`, plus what applies to every row (the classes of predict_proba).
struct RowsAnswer {
  std::string key;
  Json rows = Json::array();
  Json shared = Json::object();

  RowsAnswer slice(size_t begin, size_t end) const;
  std::string body() const;
};

RowsAnswer answer(const MultiModalPredictor& predictor, Endpoint endpoint, const Table& rows);

// Rows of tables with the same columns, one after another.
Table concatenate(const std::vector<const Table*>& tables);

}  // namespace automm
