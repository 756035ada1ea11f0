#pragma once
// Finds a Hugging Face model folder (config.json, weights, tokenizer files): a
// local folder, a local:// path inside a saved predictor, or a snapshot in the
// Hugging Face hub cache. A hub id in no cache is downloaded into the first
// cache folder (hf_download.h) unless HF_HUB_OFFLINE is set; a model that is
// neither cached nor downloadable is an error that says how to provide it.

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace automm {

struct ResolvedCheckpoint {
  std::string folder;  // holds config.json
  // How it was found: "local folder", "local:// inside predictor",
  // "Hugging Face cache (<models--ORG--NAME path>)" or
  // "downloaded from <endpoint> into <models--ORG--NAME path>".
  std::string source;
};

// The hub cache folders searched, in order, without duplicates: $HF_HUB_CACHE,
// $HF_HOME/hub, $XDG_CACHE_HOME/huggingface/hub, ~/.cache/huggingface/hub
// (each only when its variable is set and non-empty).
std::vector<std::string> hf_hub_cache_dirs();

// The folder a hub id's files live in inside a cache: "ORG/NAME" ->
// "models--ORG--NAME", "NAME" -> "models--NAME".
std::string hf_cache_repo_folder(const std::string& repo_id);

// The snapshot folder of a hub id in the first hf_hub_cache_dirs() entry that
// holds it (the snapshot chosen as resolve_hf_checkpoint does), or "" when none
// does or `repo_id` is not a hub id. Nothing is downloaded.
std::string find_hf_cache_snapshot(const std::string& repo_id);

// name:
//  - an existing local folder (must hold config.json);
//  - "local://relative/path", resolved against predictor_dir (an error when
//    predictor_dir is empty or the path is absolute);
//  - a Hugging Face id "ORG/NAME" or "NAME", looked up as
//    <cache>/models--ORG--NAME/snapshots/<hash>/ in each hf_hub_cache_dirs()
//    entry; <hash> is refs/main's content when that snapshot exists, else the
//    only snapshot, else the most recently modified one. When no cache has it,
//    download_hf_snapshot() fetches it into the first cache folder.
// Throws std::invalid_argument for an empty or malformed name and
// std::runtime_error when nothing is found (naming every path tried, why the
// download failed or was not tried, and how to provide the files) or the
// folder lacks config.json.
ResolvedCheckpoint resolve_hf_checkpoint(const std::string& name, const std::string& predictor_dir = "");

// The parsed config.json of a checkpoint folder; throws naming the file when it
// is missing or not valid JSON.
nlohmann::json read_checkpoint_config(const std::string& folder);

// Copies a text checkpoint's config and tokenizer files (not its weights) from
// `from` into the folder `to` (created), so that a predictor folder is self-contained.
void copy_text_checkpoint_files(const std::string& from, const std::string& to);

}  // namespace automm
