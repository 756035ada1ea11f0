// Reading and writing pretrained weights fully offline: Hugging Face / timm
// safetensors files (single or sharded) and PyTorch zip checkpoints
// (pytorch_model.bin, *.pth, *.pt) written by torch.save.
//
// Nothing here executes code from a file: torch checkpoints are decoded by a
// small pickle interpreter that only knows containers, tensors and storages
// and refuses every other GLOBAL. All loaded tensors live on the CPU, are
// contiguous and own their memory. Every error is a std::runtime_error whose
// message names the file (and the tensor, where there is one).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include <torch/torch.h>

namespace automm {

// Tensors by parameter / buffer name, ordered by name.
using StateDict = std::map<std::string, torch::Tensor>;

// model.safetensors: an 8-byte little-endian header length, a JSON header
// {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}},
// then the raw little-endian data. Supported dtypes: F64 F32 F16 BF16 I64 I32
// I16 I8 U8 BOOL. The header is validated before any data is read: length vs
// file size, offsets in range, no overlaps or holes, byte count == numel *
// itemsize, known dtypes, no duplicate names.
StateDict load_safetensors(const std::string& path);

// A safetensors file mapped into memory (private and copy-on-write), its header
// validated as load_safetensors does. Its tensors are views of the mapping:
// nothing is read or copied until a page is first touched (the page cache serves
// it), and each tensor keeps the mapping alive. A tensor that the file does not
// place at a multiple of its element size gets its own copy.
class MappedSafetensors {
 public:
  explicit MappedSafetensors(const std::string& path);
  const StateDict& tensors() const { return tensors_; }
  // The whole file (header included), e.g. for a checksum.
  const unsigned char* bytes() const { return mapping_.get(); }
  uint64_t size() const { return size_; }

 private:
  std::shared_ptr<unsigned char> mapping_;
  uint64_t size_ = 0;
  StateDict tensors_;
};

// model.safetensors.index.json: {"metadata": ..., "weight_map": {tensor: shard}}.
// Shards are resolved relative to the index's folder; each tensor is read from
// the shard the map names. A tensor listed twice, or missing from its shard, is
// an error.
StateDict load_sharded_safetensors(const std::string& index_path);

// Writes `tensors` (any device, any layout; copied to contiguous CPU memory) as
// a safetensors file readable by the `safetensors` Python package. The data
// section starts 8-byte aligned. Written to a temporary file, then renamed, so
// that an interrupted save never leaves a truncated file at `path`.
void save_safetensors(const StateDict& tensors, const std::string& path,
                      const std::map<std::string, std::string>& metadata = {});

// A torch.save zip checkpoint (torch >= 1.6). Nested dicts such as
// {"state_dict": {...}} or {"model": {...}} are flattened with "."-joined keys
// ("state_dict.encoder.weight"); non-tensor leaves (epoch counters, strings,
// None) are dropped. Tensors sharing a storage (views, tied weights) each get
// their own copy. Refuses the legacy (non-zip) format, compressed entries and
// pickles referencing anything other than tensors, storages and OrderedDict.
StateDict load_torch_checkpoint(const std::string& path);

// Dispatches on the name:
//   *.safetensors              -> load_safetensors
//   *.index.json               -> sharded (safetensors or .bin shards, per the shard names)
//   *.bin, *.pth, *.pt, *.ckpt -> load_torch_checkpoint
//   anything else              -> sniffed from the first bytes (zip => torch, else safetensors)
// A folder: model.safetensors, then model.safetensors.index.json, then
// pytorch_model.bin, then pytorch_model.bin.index.json (first found wins).
StateDict load_weights(const std::string& file_or_folder);

}  // namespace automm
