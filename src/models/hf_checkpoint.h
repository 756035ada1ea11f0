#pragma once
// Finds a Hugging Face model folder (config.json, weights, tokenizer files)
// without network access: a local folder, a local:// path inside a saved
// predictor, or a snapshot in the Hugging Face hub cache. This build never
// downloads; a missing model is an error that says how to provide it.

#include <string>
#include <vector>

namespace automm {

struct ResolvedCheckpoint {
  std::string folder;  // holds config.json
  // How it was found: "local folder", "local:// inside predictor" or
  // "Hugging Face cache (<models--ORG--NAME path>)".
  std::string source;
};

// The hub cache folders searched, in order, without duplicates: $HF_HUB_CACHE,
// $HF_HOME/hub, $XDG_CACHE_HOME/huggingface/hub, ~/.cache/huggingface/hub
// (each only when its variable is set and non-empty).
std::vector<std::string> hf_hub_cache_dirs();

// name:
//  - an existing local folder (must hold config.json);
//  - "local://relative/path", resolved against predictor_dir (an error when
//    predictor_dir is empty or the path is absolute);
//  - a Hugging Face id "ORG/NAME" or "NAME", looked up as
//    <cache>/models--ORG--NAME/snapshots/<hash>/ in each hf_hub_cache_dirs()
//    entry; <hash> is refs/main's content when that snapshot exists, else the
//    only snapshot, else the most recently modified one.
// Throws std::invalid_argument for an empty or malformed name and
// std::runtime_error when nothing is found (naming every path tried and how to
// provide the files) or the folder lacks config.json.
ResolvedCheckpoint resolve_hf_checkpoint(const std::string& name, const std::string& predictor_dir = "");

}  // namespace automm
