#include "hf_download.h"
#include "config/json_text.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <new>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <stdexcept>
#include <utility>

#include "hf_checkpoint.h"

namespace automm {
namespace fs = std::filesystem;

namespace {

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
  return text;
}

size_t write_body(char* data, size_t size, size_t count, void* user) {
  auto* body = static_cast<std::ofstream*>(user);
  body->write(data, static_cast<std::streamsize>(size * count));
  return *body ? size * count : 0;  // 0 makes curl stop with CURLE_WRITE_ERROR
}

// Called once per header line of every response in the redirect chain; a
// status line ("HTTP/1.1 302 Found") starts the next response.
size_t collect_header(char* data, size_t size, size_t count, void* user) {
  auto* responses = static_cast<std::vector<std::map<std::string, std::string>>*>(user);
  const std::string line(data, size * count);
  if (line.rfind("HTTP/", 0) == 0) {
    responses->emplace_back();
  } else if (const size_t colon = line.find(':'); colon != std::string::npos && !responses->empty()) {
    const size_t begin = line.find_first_not_of(" \t", colon + 1);
    const size_t end = line.find_last_not_of(" \t\r\n");
    responses->back()[lower(line.substr(0, colon))] =
        begin == std::string::npos || end < begin ? "" : line.substr(begin, end - begin + 1);
  }
  return size * count;
}

// Percent-encodes like Python's urllib.parse.quote: letters, digits, "_.-~"
// and the characters in `safe` stay as they are.
std::string url_quote(const std::string& text, const std::string& safe) {
  static const char* hex = "0123456789ABCDEF";
  std::string quoted;
  for (const unsigned char c : text) {
    if (std::isalnum(c) || std::string("_.-~").find(c) != std::string::npos ||
        safe.find(c) != std::string::npos) {
      quoted += static_cast<char>(c);
    } else {
      quoted += {'%', hex[c >> 4], hex[c & 15]};
    }
  }
  return quoted;
}

bool env_is_true(const char* name) {
  const char* value = std::getenv(name);
  const std::string text = value ? lower(value) : "";
  return text == "1" || text == "on" || text == "yes" || text == "true";
}

// The server names blobs, snapshots and shards; none of them may climb out of
// the repo folder ("../x", "/etc/x").
bool is_safe_relative(const std::string& name) {
  const fs::path path(name);
  if (name.empty() || path.is_absolute()) return false;
  return std::none_of(path.begin(), path.end(),
                      [](const fs::path& part) { return part == ".." || part == "."; });
}

bool is_plain_name(const std::string& name) {
  return is_safe_relative(name) && name.find('/') == std::string::npos;
}

// The hub answers /resolve/ with its metadata, then may redirect large files
// to a CDN: the metadata is in the first response that has X-Repo-Commit.
const std::map<std::string, std::string>& hub_headers(const HttpResponse& response) {
  for (const auto& headers : response.headers) {
    if (headers.count("x-repo-commit")) return headers;
  }
  static const std::map<std::string, std::string> none;
  return response.headers.empty() ? none : response.headers.back();
}

std::string http_error(const std::string& url, long status) {
  std::string message = "GET " + url + " answered HTTP " + std::to_string(status);
  if (status == 401 || status == 403) {
    message +=
        "; the repo is private, gated or does not exist: check the id, and set HF_TOKEN to a Hugging Face "
        "access token that may read it";
  }
  return message;
}

// One snapshot download in progress: the files fetched so far become the
// snapshot only when all of them have arrived.
struct SnapshotDownload {
  std::string endpoint, repo_id;
  fs::path repo_folder;                                    // <cache>/models--ORG--NAME
  std::vector<std::string> request_headers;                // Authorization when HF_TOKEN is set
  std::string commit;                                      // from the first answer
  std::vector<std::pair<std::string, std::string>> files;  // (file name, etag)

  std::string url(const std::string& revision, const std::string& filename) const {
    return endpoint + "/" + repo_id + "/resolve/" + url_quote(revision, "") + "/" + url_quote(filename, "/");
  }

  // Downloads filename into blobs/<etag>; false when the hub answers 404.
  bool fetch(const std::string& filename, const std::string& revision) {
    const std::string address = url(revision, filename);
    const fs::path blobs = repo_folder / "blobs";
    fs::create_directories(blobs);
    // A blob appears under its final name only once complete; the partial one
    // is removed on every way out (the rename below leaves nothing to remove).
    struct Partial {
      fs::path path;
      ~Partial() {
        std::error_code ignored;
        fs::remove(path, ignored);
      }
    } partial{blobs / ("download-" + std::to_string(std::random_device{}()) + ".incomplete")};

    const HttpResponse response = http_get(address, request_headers, partial.path.string());
    if (response.status == 404) return false;
    if (response.status < 200 || response.status > 299)
      throw std::runtime_error(http_error(address, response.status));

    const auto& headers = hub_headers(response);
    const auto header = [&headers](const char* name) {
      const auto it = headers.find(name);
      return it == headers.end() ? std::string() : it->second;
    };
    // Like huggingface_hub: an LFS file's sha256 is X-Linked-Etag; ETag may be weak (W/"...").
    std::string etag = header("x-linked-etag").empty() ? header("etag") : header("x-linked-etag");
    if (etag.rfind("W/", 0) == 0) etag.erase(0, 2);
    etag.erase(std::remove(etag.begin(), etag.end(), '"'), etag.end());
    const std::string file_commit = header("x-repo-commit");
    if (!is_plain_name(etag) || !is_plain_name(file_commit)) {
      throw std::runtime_error("GET " + address +
                               " answered without usable X-Repo-Commit and ETag headers, so " + endpoint +
                               " does not look like a Hugging Face hub; check HF_ENDPOINT");
    }
    if (commit.empty()) commit = file_commit;
    if (file_commit != commit) {
      throw std::runtime_error("GET " + address + " answered commit " + file_commit +
                               ", but the download began at " + commit +
                               "; the repo changed during the download, run again");
    }
    fs::rename(partial.path, blobs / etag);
    files.emplace_back(filename, etag);
    return true;
  }

  // The weights, in the order transformers prefers them.
  void fetch_weights() {
    if (fetch("model.safetensors", commit)) return;
    if (fetch("model.safetensors.index.json", commit)) {
      const std::string index_url = url(commit, "model.safetensors.index.json");
      std::ifstream in(repo_folder / "blobs" / files.back().second);
      nlohmann::json index;
      try {
        index = parse_json(in, index_url);
      } catch (const nlohmann::json::exception&) {
        index = nullptr;  // reported below with what is expected
      }
      if (!index.is_object() || !index.contains("weight_map") || !index.at("weight_map").is_object()) {
        throw std::runtime_error(index_url + " is not a safetensors index: expected a JSON object with a " +
                                 "\"weight_map\" object from tensor names to shard files");
      }
      std::set<std::string> shards;  // each shard holds many tensors; fetch it once
      for (const auto& shard : index.at("weight_map")) {
        if (!shard.is_string() || !is_safe_relative(shard.get<std::string>())) {
          throw std::runtime_error(index_url + " names the shard " + shard.dump() +
                                   ", which is not a file name inside the repo");
        }
        shards.insert(shard.get<std::string>());
      }
      for (const std::string& shard : shards) {
        if (!fetch(shard, commit)) {
          throw std::runtime_error(index_url + " names the shard " + shard + ", but " + url(commit, shard) +
                                   " answered HTTP 404; the repo is incomplete");
        }
      }
      return;
    }
    if (fetch("pytorch_model.bin", commit)) return;
    throw std::runtime_error("model " + repo_id + " on " + endpoint + " (commit " + commit +
                             ") has no weights that automm reads: none of model.safetensors, "
                             "model.safetensors.index.json or pytorch_model.bin exists");
  }

  // Links snapshots/<commit>/<file> to its blob (relative, so the cache can
  // move) and points refs/<revision> at the commit.
  fs::path publish(const std::string& revision) const {
    const fs::path snapshot = repo_folder / "snapshots" / commit;
    for (const auto& [filename, etag] : files) {
      const fs::path link = snapshot / filename;
      fs::create_directories(link.parent_path());
      fs::remove(link);  // an earlier, interrupted download of the same commit
      fs::create_symlink((repo_folder / "blobs" / etag).lexically_relative(link.parent_path()), link);
    }
    if (revision != commit) {
      const fs::path ref = repo_folder / "refs" / revision;
      fs::create_directories(ref.parent_path());
      std::ofstream out(ref, std::ios::binary | std::ios::trunc);
      out << commit;  // no newline, as huggingface_hub writes it
      if (!out.flush())
        throw std::runtime_error("cannot write " + ref.string() + "; check that it is writable");
    }
    return snapshot;
  }
};

}  // namespace

HttpResponse http_get(const std::string& url, const std::vector<std::string>& request_headers,
                      const std::string& body_path) {
  static std::once_flag curl_ready;
  std::call_once(curl_ready, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });

  std::ofstream body(body_path, std::ios::binary | std::ios::trunc);
  if (!body) throw std::runtime_error("cannot write " + body_path + " to download " + url + " into");
  const std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) throw std::runtime_error("libcurl could not set up a request for " + url);
  std::unique_ptr<curl_slist, void (*)(curl_slist*)> header_list(nullptr, curl_slist_free_all);
  for (const std::string& line : request_headers) {
    curl_slist* head = curl_slist_append(header_list.get(), line.c_str());  // the same head once non-empty
    if (!head) throw std::bad_alloc();
    header_list.release();
    header_list.reset(head);
  }

  HttpResponse response;
  char error[CURL_ERROR_SIZE] = "";
  CURL* handle = curl.get();
  curl_easy_setopt(handle, CURLOPT_URL, url.c_str());
  curl_easy_setopt(handle, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(handle, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(handle, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(handle, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(handle, CURLOPT_HTTPHEADER, header_list.get());  // curl drops Authorization on other hosts
  curl_easy_setopt(handle, CURLOPT_USERAGENT, "automm.cpp");
  curl_easy_setopt(handle, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(handle, CURLOPT_CONNECTTIMEOUT, 30L);
  // No overall timeout (weights take long on slow links), but a stalled transfer gives up.
  curl_easy_setopt(handle, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(handle, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(handle, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, write_body);
  curl_easy_setopt(handle, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(handle, CURLOPT_HEADERFUNCTION, collect_header);
  curl_easy_setopt(handle, CURLOPT_HEADERDATA, &response.headers);

  const CURLcode code = curl_easy_perform(handle);
  if (code == CURLE_WRITE_ERROR || !body.flush()) {
    throw std::runtime_error("cannot write " + body_path + " while downloading " + url +
                             "; check the free disk space");
  }
  if (code != CURLE_OK) {
    throw std::runtime_error("GET " + url + " failed: " + (error[0] ? error : curl_easy_strerror(code)) +
                             "; check the network connection and proxy settings (https_proxy)");
  }
  curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &response.status);
  return response;
}

std::string hf_endpoint() {
  const char* value = std::getenv("HF_ENDPOINT");
  std::string endpoint = value && *value ? value : "https://huggingface.co";
  while (!endpoint.empty() && endpoint.back() == '/') endpoint.pop_back();
  return endpoint;
}

bool hf_hub_offline() { return env_is_true("HF_HUB_OFFLINE") || env_is_true("TRANSFORMERS_OFFLINE"); }

std::string download_hf_snapshot(const std::string& repo_id, const std::string& cache_dir,
                                 const std::string& revision) {
  SnapshotDownload download;
  download.endpoint = hf_endpoint();
  download.repo_id = repo_id;
  if (hf_hub_offline()) {
    throw std::runtime_error("HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE is set, so " + repo_id +
                             " was not downloaded; unset it to download from " + download.endpoint);
  }
  if (!is_safe_relative(revision)) {
    throw std::invalid_argument("revision '" + revision + "' is not a branch, tag or commit name");
  }
  download.repo_folder = fs::path(cache_dir) / hf_cache_repo_folder(repo_id);
  if (const char* token = std::getenv("HF_TOKEN"); token && *token) {
    download.request_headers.push_back(std::string("Authorization: Bearer ") + token);
  }

  try {
    if (!download.fetch("config.json", revision)) {
      throw std::runtime_error(
          "no model " + repo_id + " on " + download.endpoint + " (GET " +
          download.url(revision, "config.json") +
          " answered HTTP 404); check the id's spelling and the revision, or pass a local "
          "model folder instead");
    }
    // Later files come from the commit config.json came from, so that a push to
    // the repo during the download cannot mix two versions.
    for (const char* name :
         {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt", "vocab.json",
          "merges.txt", "spiece.model", "spm.model", "sentencepiece.bpe.model"}) {
      download.fetch(name, download.commit);  // each tokenizer family ships only some of these
    }
    download.fetch_weights();
    return download.publish(revision).string();
  } catch (...) {
    // A failed first attempt leaves no empty models--ORG--NAME folder; fs::remove
    // takes only empty folders, so blobs fetched before the failure stay.
    std::error_code ignored;
    fs::remove(download.repo_folder / "blobs", ignored);
    fs::remove(download.repo_folder, ignored);
    throw;
  }
}

}  // namespace automm
