// Reading and writing the small files of a predictor folder.
#pragma once

#include <string>

#include "automm/config.h"

namespace automm {

// Throws naming the path when the file cannot be written.
void write_text_file(const std::string& path, const std::string& text);
// Throws naming the path when the file is missing or is not JSON.
Json read_json_file(const std::string& path);

}  // namespace automm
