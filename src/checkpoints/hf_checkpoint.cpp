#include "hf_checkpoint.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "hf_download.h"
#include "config/json_text.h"

namespace automm {
namespace fs = std::filesystem;

namespace {

constexpr const char* kLocalPrefix = "local://";

std::string env_or_empty(const char* name) {
  const char* value = std::getenv(name);
  return value ? std::string(value) : std::string();
}

bool is_dir(const fs::path& path) {
  std::error_code ec;
  return fs::is_directory(path, ec);
}

// is_regular_file() follows symlinks, so a snapshot's config.json that points at a
// missing blob (an incomplete copy of the cache) counts as missing.
bool has_config(const fs::path& folder) {
  std::error_code ec;
  return fs::is_regular_file(folder / "config.json", ec);
}

ResolvedCheckpoint checked(const fs::path& folder, const std::string& source, const std::string& name) {
  if (!has_config(folder)) {
    throw std::runtime_error("checkpoint '" + name + "' resolved to " + folder.string() + " (" + source +
                             "), but that folder has no config.json; a Hugging Face model folder needs "
                             "config.json next to its weights and tokenizer files");
  }
  return {folder.lexically_normal().string(), source};
}

std::string trim(std::string text) {
  const auto not_space = [](unsigned char c) { return !std::isspace(c); };
  text.erase(text.begin(), std::find_if(text.begin(), text.end(), not_space));
  text.erase(std::find_if(text.rbegin(), text.rend(), not_space).base(), text.end());
  return text;
}

// The snapshot folder of one models--ORG--NAME repo folder, or "" when none.
// refs/main wins because it is the revision the hub client last fetched; when
// it is missing or names a snapshot that was not copied, fall back to the
// only snapshot, then to the most recently modified one.
fs::path pick_snapshot(const fs::path& repo) {
  const fs::path snapshots = repo / "snapshots";
  std::ifstream ref(repo / "refs" / "main");
  if (ref) {
    std::stringstream text;
    text << ref.rdbuf();
    const std::string hash = trim(text.str());
    if (!hash.empty() && hash.find('/') == std::string::npos && is_dir(snapshots / hash)) {
      return snapshots / hash;
    }
  }
  if (!is_dir(snapshots)) return {};
  fs::path best;
  fs::file_time_type best_time{};
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(snapshots, ec)) {
    if (!entry.is_directory(ec)) continue;
    const fs::file_time_type time = entry.last_write_time(ec);
    if (ec) continue;
    // Ties break by name so that the choice does not depend on listing order.
    if (best.empty() || time > best_time || (time == best_time && entry.path() > best)) {
      best = entry.path();
      best_time = time;
    }
  }
  return best;
}

// A hub id is NAME or ORG/NAME, with no empty part and no path syntax.
bool looks_like_hub_id(const std::string& name) {
  if (name.empty() || name.front() == '/' || name.front() == '.' || name.front() == '~') return false;
  const size_t slashes = static_cast<size_t>(std::count(name.begin(), name.end(), '/'));
  if (slashes > 1 || name.back() == '/') return false;
  return name.find('\\') == std::string::npos;
}

}  // namespace

std::vector<std::string> hf_hub_cache_dirs() {
  std::vector<std::string> dirs;
  auto add = [&dirs](const fs::path& path) {
    const std::string text = path.lexically_normal().string();
    if (std::find(dirs.begin(), dirs.end(), text) == dirs.end()) dirs.push_back(text);
  };
  // All four are searched, not just the first that is set (the hub client's
  // precedence): a user who sets HF_HOME for one tool should still find models
  // downloaded earlier into the default cache.
  if (const std::string v = env_or_empty("HF_HUB_CACHE"); !v.empty()) add(v);
  if (const std::string v = env_or_empty("HF_HOME"); !v.empty()) add(fs::path(v) / "hub");
  if (const std::string v = env_or_empty("XDG_CACHE_HOME"); !v.empty()) add(fs::path(v) / "huggingface" / "hub");
  if (const std::string v = env_or_empty("HOME"); !v.empty()) add(fs::path(v) / ".cache" / "huggingface" / "hub");
  return dirs;
}

std::string hf_cache_repo_folder(const std::string& repo_id) {
  std::string folder = "models--" + repo_id;
  if (const size_t slash = folder.find('/'); slash != std::string::npos) folder.replace(slash, 1, "--");
  return folder;
}

std::string find_hf_cache_snapshot(const std::string& repo_id) {
  if (!looks_like_hub_id(repo_id)) return "";
  for (const std::string& cache : hf_hub_cache_dirs()) {
    const fs::path snapshot = pick_snapshot(fs::path(cache) / hf_cache_repo_folder(repo_id));
    if (!snapshot.empty()) return snapshot.string();
  }
  return "";
}

ResolvedCheckpoint resolve_hf_checkpoint(const std::string& name, const std::string& predictor_dir) {
  if (name.empty()) throw std::invalid_argument("hf_text.checkpoint_name is empty");

  if (name.rfind(kLocalPrefix, 0) == 0) {
    const std::string relative = name.substr(std::string(kLocalPrefix).size());
    if (predictor_dir.empty()) {
      throw std::invalid_argument("checkpoint '" + name +
                                  "' is a local:// path, which only has a meaning inside a saved "
                                  "predictor folder, and no predictor folder was given");
    }
    if (relative.empty() || fs::path(relative).is_absolute()) {
      throw std::invalid_argument("checkpoint '" + name +
                                  "': local:// must be followed by a path relative to the predictor folder");
    }
    const fs::path folder = fs::path(predictor_dir) / relative;
    if (!is_dir(folder)) {
      throw std::runtime_error("checkpoint '" + name + "' names " + folder.string() +
                               ", which is not a folder inside the predictor " + predictor_dir);
    }
    return checked(folder, "local:// inside predictor", name);
  }

  if (is_dir(name)) return checked(name, "local folder", name);

  if (!looks_like_hub_id(name)) {
    throw std::runtime_error("checkpoint '" + name +
                             "' is neither an existing local folder nor a Hugging Face id (ORG/NAME or NAME)");
  }

  const std::string repo_folder = hf_cache_repo_folder(name);
  const std::vector<std::string> caches = hf_hub_cache_dirs();
  std::vector<std::string> tried;
  for (const std::string& cache : caches) {
    const fs::path repo = fs::path(cache) / repo_folder;
    tried.push_back(repo.string());
    if (!is_dir(repo)) continue;
    const fs::path snapshot = pick_snapshot(repo);
    if (snapshot.empty()) continue;
    return checked(snapshot, "Hugging Face cache (" + repo.string() + ")", name);
  }

  std::string not_downloaded = "there is no cache folder to download into";
  if (!caches.empty()) {
    std::string snapshot;
    try {
      snapshot = download_hf_snapshot(name, caches.front());
    } catch (const std::exception& e) {
      not_downloaded = e.what();
    }
    if (!snapshot.empty()) {
      return checked(snapshot, "downloaded from " + hf_endpoint() + " into " + tried.front(), name);
    }
  }

  std::ostringstream message;
  message << "checkpoint '" << name << "' was not found: it is not a local folder, and no snapshot of it "
          << "is in the Hugging Face cache. Looked in:";
  if (tried.empty()) message << " (no cache folder: HF_HUB_CACHE, HF_HOME, XDG_CACHE_HOME and HOME are unset)";
  for (const std::string& path : tried) message << "\n  " << path << "/snapshots/<hash>/";
  message << "\nIt could not be downloaded: " << not_downloaded
          << "\nTo provide the model without a download, download the folder on a machine "
          << "with network access, e.g. `huggingface-cli download " << name << "`, then copy "
          << repo_folder << " (with refs/ and snapshots/) into one of the cache folders above, or pass the "
          << "model folder's path (holding config.json) as the checkpoint name.";
  throw std::runtime_error(message.str());
}

nlohmann::json read_checkpoint_config(const std::string& folder) {
  const fs::path path = fs::path(folder) / "config.json";
  std::ifstream in(path);
  if (!in) throw std::runtime_error("checkpoint " + folder + " has no config.json");
  try {
    return parse_json(in, path.string());
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(path.string() + " is not valid JSON: " + e.what());
  }
}

void copy_text_checkpoint_files(const std::string& from, const std::string& to) {
  if (!std::filesystem::is_directory(from)) throw std::runtime_error("text checkpoint folder " + from + " is missing");
  if (std::filesystem::exists(to) && std::filesystem::equivalent(from, to)) return;
  std::filesystem::create_directories(to);
  static const std::vector<std::string> weight_suffixes = {".safetensors", ".bin", ".pth", ".pt", ".ckpt",
                                                           ".h5", ".msgpack", ".onnx", ".index.json"};
  for (const auto& entry : std::filesystem::directory_iterator(from)) {
    if (!entry.is_regular_file()) continue;  // follows the hub cache's symlinks
    const std::string name = entry.path().filename().string();
    const bool weights = std::any_of(weight_suffixes.begin(), weight_suffixes.end(), [&](const std::string& suffix) {
      return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
    });
    if (!weights) std::filesystem::copy_file(entry.path(), std::filesystem::path(to) / name, std::filesystem::copy_options::overwrite_existing);
  }
}

}  // namespace automm
