#pragma once
// Downloads a Hugging Face model (config, tokenizer files, weights) into the
// hub cache with the layout the Python hub client writes, so that either tool
// finds the other's downloads:
//   <cache>/models--ORG--NAME/blobs/<etag>                  file contents
//   <cache>/models--ORG--NAME/snapshots/<commit>/<file>     -> ../../blobs/<etag>
//   <cache>/models--ORG--NAME/refs/<revision>               <commit>

#include <map>
#include <string>
#include <vector>

namespace automm {

struct HttpResponse {
  long status = 0;  // of the last response, after redirects
  // Header fields of each response in the redirect chain, first to last, with
  // lower-case names: the hub answers with its metadata and then redirects
  // large files to a CDN whose headers say nothing about the repo.
  std::vector<std::map<std::string, std::string>> headers;
};

// GET url over HTTP(S), following redirects, writing the body to body_path
// (whatever the status: the caller decides what a 404 means). request_headers
// are "Name: value" lines. Throws std::runtime_error naming the URL when no
// answer came (DNS, TLS, connection, timeout) or body_path cannot be written.
HttpResponse http_get(const std::string& url, const std::vector<std::string>& request_headers,
                      const std::string& body_path);

// $HF_ENDPOINT without a trailing slash, or https://huggingface.co.
std::string hf_endpoint();

// True when HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE is 1/ON/YES/TRUE (any case).
bool hf_hub_offline();

// Downloads repo_id ("ORG/NAME" or "NAME") at revision into cache_dir from
// hf_endpoint(): config.json, the tokenizer files the repo has, and the weights
// (model.safetensors, else the shards of model.safetensors.index.json, else
// pytorch_model.bin). Sends "Authorization: Bearer $HF_TOKEN" when set.
// Returns the snapshot folder. The snapshot links and refs/<revision> are
// written only after every file arrived, and each blob is renamed into place
// only when complete, so an interrupted download leaves nothing that looks
// usable. Throws std::runtime_error when offline, when the repo or its weights
// are missing, or on any HTTP or file error (naming the URL and status).
std::string download_hf_snapshot(const std::string& repo_id, const std::string& cache_dir,
                                 const std::string& revision = "main");

}  // namespace automm
