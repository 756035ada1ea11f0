// Reading and writing the small files of a predictor folder.
#pragma once

#include <string>
#include <vector>

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
// Where a fit without a path saves, as AutoMM: AutogluonModels/ag-<UTC timestamp>.
std::string default_predictor_path();

// For learners that read only some keys (zero-shot, matching): throws
// std::invalid_argument naming the first user-set key of `config` that none of
// `used` covers (a key, or a prefix ending in '.'), and `who` (the problem
// type), so that a key the learner would not apply is refused, not ignored.
void require_used_keys(const Config& config, const std::vector<std::string>& used, const std::string& who);

// Every parameter and buffer of `net`, by name, into <folder>/model.safetensors;
// returns the digest entry predictor.json records for it (learner_files.cpp).
Json write_network_weights(const torch::nn::Module& net, const std::string& folder);
// Points `net`'s parameters and buffers at <folder>/model.safetensors (memory
// mapped) after checking the digest `meta` (predictor.json) records; throws
// naming the file or the tensor that does not fit.
void read_network_weights(torch::nn::Module& net, const std::string& folder, const Json& meta);

}  // namespace automm
