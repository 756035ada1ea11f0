// Reading and writing the small files of a predictor folder.
#pragma once

#include <string>

#include <torch/torch.h>

#include "automm/config.h"

namespace automm {

// Throws naming the path when the file cannot be written.
void write_text_file(const std::string& path, const std::string& text);
// Writes a torch archive (weights, training state) to `path`; throws naming the
// path and the system's reason when a write fails (a full disk, a file-size
// limit). torch's own save_to(filename) aborts the process there instead: its
// stream writer throws from a destructor.
void save_archive(torch::serialize::OutputArchive& archive, const std::string& path);
// Throws naming the path when the file is missing or is not JSON.
Json read_json_file(const std::string& path);
// "<pid>-<random>": names temporary files and folders that are renamed into place.
std::string unique_suffix();

}  // namespace automm
