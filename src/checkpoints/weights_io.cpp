// safetensors reading and writing, sharded checkpoints and load_weights'
// dispatch. The torch.save reader lives in torch_pickle.cpp.
//
// The whole header is validated before any tensor data is read, so a corrupt
// or hostile file fails with a message instead of a partial state dict.
#include <algorithm>
#include "config/json_text.h"
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <stdexcept>
#include <string>
#include <sys/mman.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "automm/weights_io.h"

namespace automm {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "safetensors data is little-endian and is copied as raw bytes");

struct Dtype {
  const char* name;
  torch::ScalarType type;
};
const Dtype kDtypes[] = {
    {"F64", torch::kFloat64}, {"F32", torch::kFloat32}, {"F16", torch::kFloat16}, {"BF16", torch::kBFloat16},
    {"I64", torch::kInt64},   {"I32", torch::kInt32},   {"I16", torch::kInt16},   {"I8", torch::kInt8},
    {"U8", torch::kUInt8},    {"BOOL", torch::kBool},
};

const Dtype* dtype_by_name(const std::string& name) {
  for (const auto& dtype : kDtypes)
    if (name == dtype.name) return &dtype;
  return nullptr;
}

const Dtype* dtype_by_type(torch::ScalarType type) {
  for (const auto& dtype : kDtypes)
    if (type == dtype.type) return &dtype;
  return nullptr;
}

// The safetensors header must stay small; the Rust reference refuses larger ones too.
constexpr uint64_t kMaxHeaderBytes = 100u << 20;

uint64_t file_size_of(const std::string& path) {
  std::error_code error;
  const uint64_t size = fs::file_size(path, error);
  if (error) throw std::runtime_error(path + ": cannot read the file: " + error.message());
  return size;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open the file");
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// nlohmann::json keeps one of two equal keys silently; a duplicated tensor
// name must be an error, so keys are checked while parsing.
json parse_json_strict(const std::string& text, const std::string& path, const std::string& what) {
  std::vector<std::pair<std::string, std::set<std::string>>> objects;  // (key that opened it, keys seen)
  std::string last_key;
  auto callback = [&](int /*depth*/, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start: objects.emplace_back(last_key, std::set<std::string>{}); break;
      case json::parse_event_t::object_end: objects.pop_back(); break;
      case json::parse_event_t::key: {
        last_key = parsed.get<std::string>();
        if (!objects.empty() && !objects.back().second.insert(last_key).second)
          throw std::runtime_error(path + ": the " + what + " lists '" + last_key + "' twice" +
                                   (objects.back().first.empty() ? "" : " (in \"" + objects.back().first + "\")"));
        break;
      }
      default: break;
    }
    return true;
  };
  try {
    check_json_nesting(text, path + " (" + what + ")");
    return json::parse(text, callback);
  } catch (const json::exception& e) {
    throw std::runtime_error(path + ": the " + what + " is not valid JSON: " + e.what());
  }
}

struct Entry {
  std::string name;
  const Dtype* dtype = nullptr;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // relative to the start of the data section
};

struct Header {
  std::vector<Entry> entries;  // sorted by begin
  uint64_t data_start = 0;
};

Header read_header(std::ifstream& in, const std::string& path) {
  const uint64_t size = file_size_of(path);
  if (size < 8)
    throw std::runtime_error(path + ": not a safetensors file: " + std::to_string(size) +
                             " bytes is too short for the 8-byte header length");
  unsigned char prefix[8];
  in.read(reinterpret_cast<char*>(prefix), 8);
  if (in.gcount() != 8) throw std::runtime_error(path + ": cannot read the safetensors header length");
  uint64_t header_len = 0;
  for (int k = 7; k >= 0; --k) header_len = (header_len << 8) | prefix[k];
  if (header_len > size - 8)
    throw std::runtime_error(path + ": the safetensors header length (" + std::to_string(header_len) +
                             " bytes) is larger than the rest of the file (" + std::to_string(size - 8) +
                             " bytes): the file is truncated or not safetensors");
  if (header_len > kMaxHeaderBytes)
    throw std::runtime_error(path + ": the safetensors header length (" + std::to_string(header_len) +
                             " bytes) exceeds the 100 MiB limit: not a safetensors file");
  std::string text(header_len, '\0');
  in.read(text.data(), static_cast<std::streamsize>(header_len));
  if (static_cast<uint64_t>(in.gcount()) != header_len) throw std::runtime_error(path + ": cannot read the safetensors header");
  if (text.empty() || text[0] != '{')
    throw std::runtime_error(path + ": the safetensors header does not start with '{': not a safetensors file");
  const json root = parse_json_strict(text, path, "safetensors header");
  if (!root.is_object()) throw std::runtime_error(path + ": the safetensors header is not a JSON object");

  Header header;
  header.data_start = 8 + header_len;
  const uint64_t data_size = size - header.data_start;
  for (const auto& [name, info] : root.items()) {
    if (name == "__metadata__") {
      if (!info.is_object()) throw std::runtime_error(path + ": \"__metadata__\" must be an object of strings");
      for (const auto& [key, value] : info.items())
        if (!value.is_string())
          throw std::runtime_error(path + ": \"__metadata__\" value '" + key + "' must be a string");
      continue;
    }
    auto bad = [&, &name = name](const std::string& what) {
      return std::runtime_error(path + ": tensor '" + name + "': " + what);
    };
    if (!info.is_object()) throw bad("its header entry must be an object");
    if (!info.contains("dtype") || !info["dtype"].is_string()) throw bad("missing or non-string \"dtype\"");
    Entry entry;
    entry.name = name;
    const std::string dtype = info["dtype"].get<std::string>();
    entry.dtype = dtype_by_name(dtype);
    if (!entry.dtype)
      throw bad("unsupported dtype '" + dtype + "' (supported: F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL)");
    if (!info.contains("shape") || !info["shape"].is_array()) throw bad("missing or non-array \"shape\"");
    uint64_t numel = 1;
    for (const auto& dim : info["shape"]) {
      if (!dim.is_number_unsigned()) throw bad("\"shape\" must hold non-negative integers");
      const uint64_t d = dim.get<uint64_t>();
      if (d > static_cast<uint64_t>(INT64_MAX) || __builtin_mul_overflow(numel, d, &numel))
        throw bad("\"shape\" overflows");
      entry.shape.push_back(static_cast<int64_t>(d));
    }
    const auto& offsets = info.contains("data_offsets") ? info["data_offsets"] : json();
    if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
        !offsets[1].is_number_unsigned())
      throw bad("\"data_offsets\" must be [begin, end] with non-negative integers");
    entry.begin = offsets[0].get<uint64_t>();
    entry.end = offsets[1].get<uint64_t>();
    if (entry.begin > entry.end) throw bad("data_offsets begin " + std::to_string(entry.begin) + " > end " + std::to_string(entry.end));
    if (entry.end > data_size)
      throw bad("data_offsets end " + std::to_string(entry.end) + " is past the end of the data (" +
                std::to_string(data_size) + " bytes): the file is truncated or corrupt");
    const uint64_t itemsize = c10::elementSize(entry.dtype->type);
    uint64_t bytes = 0;
    if (__builtin_mul_overflow(numel, itemsize, &bytes) || bytes != entry.end - entry.begin)
      throw bad("holds " + std::to_string(entry.end - entry.begin) + " bytes, but shape and dtype " + dtype +
                " need " + std::to_string(numel) + " x " + std::to_string(itemsize));
    header.entries.push_back(std::move(entry));
  }

  // Like the reference implementation, the tensors must tile the data section
  // exactly: overlaps would alias tensors, holes could hide other content.
  std::sort(header.entries.begin(), header.entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t covered = 0;
  const Entry* previous = nullptr;
  for (const auto& entry : header.entries) {
    if (entry.begin < covered)
      throw std::runtime_error(path + ": tensor '" + entry.name + "' (bytes " + std::to_string(entry.begin) + ".." +
                               std::to_string(entry.end) + ") overlaps tensor '" + previous->name + "' (bytes " +
                               std::to_string(previous->begin) + ".." + std::to_string(previous->end) + ")");
    if (entry.begin > covered)
      throw std::runtime_error(path + ": data bytes " + std::to_string(covered) + ".." + std::to_string(entry.begin) +
                               " before tensor '" + entry.name + "' belong to no tensor: the file is corrupt");
    covered = entry.end;
    previous = &entry;
  }
  if (covered != data_size)
    throw std::runtime_error(path + ": data bytes " + std::to_string(covered) + ".." + std::to_string(data_size) +
                             " at the end of the file belong to no tensor: the file is corrupt");
  return header;
}

// Any byte other than 0/1 would be an invalid bool in LibTorch.
void check_bools(const torch::Tensor& tensor, const Entry& entry, const std::string& path) {
  if (entry.dtype->type != torch::kBool) return;
  const auto* data = static_cast<const uint8_t*>(tensor.data_ptr());
  for (uint64_t k = 0; k < entry.end - entry.begin; ++k)
    if (data[k] > 1)
      throw std::runtime_error(path + ": tensor '" + entry.name + "': BOOL byte " + std::to_string(k) + " is " +
                               std::to_string(data[k]) + ", not 0 or 1");
}

// Reads the tensors named in `wanted` (all of them when null) straight into
// their own memory, in file order.
StateDict read_safetensors(const std::string& path, const std::set<std::string>* wanted) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open the file");
  const Header header = read_header(in, path);
  StateDict result;
  for (const auto& entry : header.entries) {
    if (wanted && !wanted->count(entry.name)) continue;
    torch::Tensor tensor = torch::empty(entry.shape, torch::TensorOptions().dtype(entry.dtype->type));
    const uint64_t bytes = entry.end - entry.begin;
    if (bytes > 0) {
      in.seekg(static_cast<std::streamoff>(header.data_start + entry.begin));
      in.read(static_cast<char*>(tensor.data_ptr()), static_cast<std::streamsize>(bytes));
      if (static_cast<uint64_t>(in.gcount()) != bytes)
        throw std::runtime_error(path + ": tensor '" + entry.name + "': cannot read its data");
    }
    check_bools(tensor, entry, path);
    result.emplace(entry.name, std::move(tensor));
  }
  return result;
}

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// {"weight_map": {tensor: shard}}; each shard is read by its own extension.
StateDict load_sharded(const std::string& index_path) {
  const json index = parse_json_strict(read_text(index_path), index_path, "index");
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
    throw std::runtime_error(index_path + ": the index has no \"weight_map\" object {tensor name: shard file}");
  std::map<std::string, std::set<std::string>> by_shard;
  for (const auto& [name, shard] : index["weight_map"].items()) {
    if (!shard.is_string())
      throw std::runtime_error(index_path + ": weight_map entry '" + name + "' must name a shard file");
    const std::string file = shard.get<std::string>();
    if (file.empty() || fs::path(file).is_absolute())
      throw std::runtime_error(index_path + ": weight_map entry '" + name + "' names shard '" + file +
                               "', which is not a file name relative to the index's folder");
    by_shard[file].insert(name);
  }
  if (by_shard.empty()) throw std::runtime_error(index_path + ": the index's weight_map lists no tensors");

  const fs::path folder = fs::path(index_path).parent_path();
  StateDict result;
  for (const auto& [file, names] : by_shard) {
    const std::string shard_path = (folder / file).string();
    if (!fs::exists(shard_path))
      throw std::runtime_error(index_path + ": shard '" + file + "' (" + shard_path + ") does not exist");
    StateDict shard;
    if (ends_with(file, ".safetensors")) {
      shard = read_safetensors(shard_path, &names);
    } else {
      shard = load_torch_checkpoint(shard_path);
    }
    for (const auto& name : names) {
      auto it = shard.find(name);
      if (it == shard.end())
        throw std::runtime_error(index_path + ": the index puts tensor '" + name + "' in shard '" + file +
                                 "', but that shard has no such tensor");
      result.emplace(name, std::move(it->second));
    }
  }
  return result;
}

bool is_torch_name(const std::string& path) {
  return ends_with(path, ".bin") || ends_with(path, ".pth") || ends_with(path, ".pt") || ends_with(path, ".ckpt");
}

}  // namespace

StateDict load_safetensors(const std::string& path) { return read_safetensors(path, nullptr); }

StateDict load_sharded_safetensors(const std::string& index_path) { return load_sharded(index_path); }

void save_safetensors(const StateDict& tensors, const std::string& path,
                      const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  std::vector<torch::Tensor> data;
  uint64_t offset = 0;
  // Wider elements first: every tensor then starts at a multiple of its element
  // size (the data section starts 8-byte aligned), so a memory map can hand out
  // its tensors in place (MappedSafetensors).
  std::vector<std::pair<std::string, torch::Tensor>> ordered(tensors.begin(), tensors.end());
  std::stable_sort(ordered.begin(), ordered.end(), [](const auto& a, const auto& b) {
    const auto size = [](const torch::Tensor& t) { return t.defined() ? t.element_size() : 0; };
    return size(a.second) > size(b.second);
  });
  for (const auto& [name, tensor] : ordered) {
    if (name == "__metadata__") throw std::runtime_error(path + ": '__metadata__' is reserved and cannot name a tensor");
    if (!tensor.defined()) throw std::runtime_error(path + ": tensor '" + name + "' is undefined");
    const Dtype* dtype = dtype_by_type(tensor.scalar_type());
    if (!dtype)
      throw std::runtime_error(path + ": tensor '" + name + "' has dtype " +
                               std::string(c10::toString(tensor.scalar_type())) +
                               ", which safetensors cannot hold here (F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL)");
    torch::Tensor cpu = tensor.detach().to(torch::kCPU).contiguous();
    const uint64_t bytes = static_cast<uint64_t>(cpu.numel()) * cpu.element_size();
    header[name] = {{"dtype", dtype->name}, {"shape", cpu.sizes().vec()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    data.push_back(std::move(cpu));
  }
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::string text = header.dump();
  // Pad with spaces so that the data starts 8-byte aligned, as the reference writer does.
  text.append((8 - (8 + text.size()) % 8) % 8, ' ');

  const std::string temp = path + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    if (!out) throw std::runtime_error(path + ": cannot create '" + temp + "' for writing");
    unsigned char length[8];
    for (int k = 0; k < 8; ++k) length[k] = static_cast<unsigned char>(static_cast<uint64_t>(text.size()) >> (8 * k));
    out.write(reinterpret_cast<const char*>(length), 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const auto& tensor : data)
      out.write(static_cast<const char*>(tensor.data_ptr()), static_cast<std::streamsize>(tensor.numel() * tensor.element_size()));
    out.flush();
    if (!out) {
      out.close();
      std::error_code ignored;
      fs::remove(temp, ignored);
      throw std::runtime_error(path + ": writing failed (disk full?)");
    }
  }
  std::error_code error;
  fs::rename(temp, path, error);
  if (error) {
    std::error_code ignored;
    fs::remove(temp, ignored);
    throw std::runtime_error(path + ": cannot move the written file into place: " + error.message());
  }
}

MappedSafetensors::MappedSafetensors(const std::string& path) {
  Header header;
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error(path + ": cannot open the file");
    header = read_header(in, path);
  }
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error(path + ": cannot open the file");
  struct stat info {};
  if (::fstat(fd, &info) != 0 || info.st_size <= 0) {
    ::close(fd);
    throw std::runtime_error(path + ": cannot read the file's size");
  }
  size_ = static_cast<uint64_t>(info.st_size);
  const uint64_t data_end = header.data_start + (header.entries.empty() ? 0 : header.entries.back().end);
  if (size_ < data_end) {  // a file changed between reading its header and mapping it
    ::close(fd);
    throw std::runtime_error(path + ": the file changed while it was being read (" + std::to_string(size_) +
                             " bytes, its header needs " + std::to_string(data_end) + ")");
  }
  // Private and writable: a page written (a parameter changed in place) becomes
  // this process's copy, the file never changes.
  void* address = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (address == MAP_FAILED) throw std::runtime_error(path + ": cannot map the file into memory");
  const uint64_t size = size_;
  mapping_ = std::shared_ptr<unsigned char>(static_cast<unsigned char*>(address),
                                            [size](unsigned char* p) { ::munmap(p, size); });
  const auto keep = mapping_;  // each tensor keeps the mapping alive
  for (const auto& entry : header.entries) {
    unsigned char* begin = mapping_.get() + header.data_start + entry.begin;
    const auto options = torch::TensorOptions().dtype(entry.dtype->type);
    torch::Tensor tensor;
    if (reinterpret_cast<uintptr_t>(begin) % c10::elementSize(entry.dtype->type) == 0 && entry.end > entry.begin)
      tensor = torch::from_blob(begin, entry.shape, [keep](void*) {}, options);
    else  // a file from another writer may misalign a tensor: it gets its own copy
      tensor = torch::from_blob(begin, entry.shape, options).clone();
    check_bools(tensor, entry, path);
    tensors_.emplace(entry.name, std::move(tensor));
  }
}

StateDict load_weights(const std::string& file_or_folder) {
  std::error_code error;
  const fs::file_status status = fs::status(file_or_folder, error);
  if (error || !fs::exists(status)) throw std::runtime_error(file_or_folder + ": no such file or folder");
  if (fs::is_directory(status)) {
    const char* candidates[] = {"model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                                "pytorch_model.bin.index.json"};
    for (const char* name : candidates) {
      const fs::path candidate = fs::path(file_or_folder) / name;
      if (fs::is_regular_file(candidate)) return load_weights(candidate.string());
    }
    throw std::runtime_error(file_or_folder + ": no weights in this folder; looked for model.safetensors, "
                             "model.safetensors.index.json, pytorch_model.bin and pytorch_model.bin.index.json");
  }
  const std::string& path = file_or_folder;
  if (ends_with(path, ".safetensors")) return load_safetensors(path);
  if (ends_with(path, ".index.json")) return load_sharded(path);
  if (is_torch_name(path)) return load_torch_checkpoint(path);
  // timm and friends also use names like model_best.pth.tar: tell the two
  // formats apart by their first bytes (a zip starts with "PK").
  std::ifstream in(path, std::ios::binary);
  char magic[2] = {0, 0};
  in.read(magic, 2);
  if (in.gcount() == 2 && ((magic[0] == 'P' && magic[1] == 'K') || static_cast<unsigned char>(magic[0]) == 0x80))
    return load_torch_checkpoint(path);
  try {
    return load_safetensors(path);
  } catch (const std::exception& e) {
    throw std::runtime_error(path + ": unrecognized weights file (expected *.safetensors, *.index.json, *.bin, "
                             "*.pth, *.pt or *.ckpt); reading it as safetensors failed: " + e.what());
  }
}

}  // namespace automm
