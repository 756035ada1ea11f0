#include "learners/learner_io.h"
#include "config/json_text.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <memory>
#include <random>
#include <unistd.h>
#include <stdexcept>

namespace automm {

void write_text_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  out.close();
  if (!out) throw std::runtime_error("cannot write " + path);
}

void save_archive(torch::serialize::OutputArchive& archive, const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "wb"), &std::fclose);
  if (!file) throw std::runtime_error("cannot write " + path + ": " + std::strerror(errno));
  int error = 0;
  // The writer is told every byte went out, so torch never meets a failure it
  // cannot report; the first failure is kept and thrown once it is done.
  archive.save_to([&](const void* data, size_t size) -> size_t {
    if (!error && std::fwrite(data, 1, size, file.get()) != size) error = errno ? errno : EIO;
    return size;
  });
  if (!error && std::fflush(file.get()) != 0) error = errno ? errno : EIO;
  if (std::fclose(file.release()) != 0 && !error) error = errno ? errno : EIO;
  if (error) throw std::runtime_error("cannot write " + path + ": " + std::strerror(error));
}

std::string unique_suffix() {
  std::random_device device;
  return std::to_string(::getpid()) + "-" + std::to_string(device());
}

Json read_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path + ": the file is missing");
  try {
    return parse_json(in, path);
  } catch (const Json::exception& e) {
    throw std::runtime_error(path + " is corrupted: " + e.what());
  }
}

std::string default_predictor_path() {
  const std::time_t now = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y%m%d_%H%M%S", std::gmtime(&now));
  return std::string("AutogluonModels/ag-") + stamp;
}

void require_used_keys(const Config& config, const std::vector<std::string>& used, const std::string& who) {
  for (const std::string& key : config.user_keys()) {
    const bool covered = std::any_of(used.begin(), used.end(), [&](const std::string& u) {
      return u.back() == '.' ? key.rfind(u, 0) == 0 : key == u;
    });
    if (covered) continue;
    std::string list;
    for (const std::string& u : used) list += (list.empty() ? "" : ", ") + (u.back() == '.' ? u + "*" : u);
    throw std::invalid_argument("hyperparameter " + key + " is not used by problem type " + who +
                                "; the keys it reads: " + list);
  }
}

}  // namespace automm
