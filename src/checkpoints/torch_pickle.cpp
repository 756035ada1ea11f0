// PyTorch zip checkpoints (torch.save, torch >= 1.6) read without Python and
// without executing anything from the file.
//
// Layout: a zip archive of STORED entries under one top folder whose name
// varies ("archive/", "pytorch_model/"): <top>/data.pkl is a pickle of the saved
// object whose tensors refer, through persistent ids, to raw little-endian
// storages in <top>/data/<key>. The pickle is run by a tiny interpreter that
// only builds containers, scalars, storages and tensors; GLOBAL is checked
// against an allow-list when it is read, so a malicious pickle is refused
// before any of its callables could ever be reached.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "automm/weights_io.h"

namespace automm {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "checkpoint storages are little-endian and are copied as raw bytes");

// ---------------------------------------------------------------------------
// Minimal zip reader: central directory (with ZIP64), STORED entries only.

struct ZipEntry {
  std::string name;
  uint64_t local_header_offset = 0;
  uint64_t compressed_size = 0;
  uint64_t size = 0;
  uint16_t method = 0;
  uint16_t flags = 0;
};

uint16_t le16(const unsigned char* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t le32(const unsigned char* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}
uint64_t le64(const unsigned char* p) {
  return static_cast<uint64_t>(le32(p)) | (static_cast<uint64_t>(le32(p + 4)) << 32);
}

class ZipReader {
 public:
  explicit ZipReader(const std::string& path) : path_(path) {
    in_.open(path, std::ios::binary);
    if (!in_) throw std::runtime_error(path + ": cannot open the file");
    std::error_code error;
    file_size_ = std::filesystem::file_size(path, error);
    if (error) throw std::runtime_error(path + ": cannot read the file size: " + error.message());
    read_central_directory();
  }

  const std::vector<ZipEntry>& entries() const { return entries_; }

  const ZipEntry* find(const std::string& name) const {
    for (const auto& entry : entries_)
      if (entry.name == name) return &entry;
    return nullptr;
  }

  // Where an entry's bytes start; checks that it is STORED and inside the file,
  // so callers can trust entry.size before allocating for it.
  uint64_t data_offset(const ZipEntry& entry) {
    if (entry.flags & 1) fail("entry '" + entry.name + "' is encrypted");
    if (entry.method != 0)
      fail("entry '" + entry.name + "' is compressed (zip method " + std::to_string(entry.method) +
           "); torch.save stores entries uncompressed, so the archive was re-packed by another tool. "
           "Re-save it with torch.save, or unzip and re-zip it with 'zip -0'");
    if (entry.compressed_size != entry.size) fail("corrupt zip entry '" + entry.name + "' (stored sizes differ)");
    // The local header's name and extra lengths may differ from the central
    // directory's (torch pads the extra field to align the data to 64 bytes).
    unsigned char header[30];
    read_at(entry.local_header_offset, header, 30, "the local header of '" + entry.name + "'");
    if (le32(header) != 0x04034b50) fail("corrupt zip archive: bad local header for entry '" + entry.name + "'");
    const uint64_t offset = entry.local_header_offset + 30 + le16(header + 26) + le16(header + 28);
    if (offset > file_size_ || entry.size > file_size_ - offset)
      fail("the zip archive is truncated: entry '" + entry.name + "' ends past the end of the file");
    return offset;
  }

  // Copies an entry's bytes to dst (which holds entry.size bytes).
  void read(const ZipEntry& entry, void* dst) {
    const uint64_t offset = data_offset(entry);
    if (entry.size > 0) read_at(offset, dst, entry.size, "entry '" + entry.name + "'");
  }

  std::string read_string(const ZipEntry& entry) {
    data_offset(entry);  // validates entry.size first
    std::string text(entry.size, '\0');
    read(entry, text.data());
    return text;
  }

 private:
  void fail(const std::string& what) const { throw std::runtime_error(path_ + ": " + what); }

  void read_at(uint64_t offset, void* dst, uint64_t count, const std::string& what) {
    if (offset > file_size_ || count > file_size_ - offset)
      fail("the zip archive is truncated: " + what + " ends past the end of the file (" +
           std::to_string(file_size_) + " bytes)");
    in_.clear();
    in_.seekg(static_cast<std::streamoff>(offset));
    in_.read(static_cast<char*>(dst), static_cast<std::streamsize>(count));
    if (static_cast<uint64_t>(in_.gcount()) != count) fail("cannot read " + what);
  }

  void read_central_directory() {
    // The end-of-central-directory record is the last 22 bytes, plus a comment
    // of up to 64 KiB that may follow it.
    constexpr uint64_t kEocdSize = 22;
    if (file_size_ < kEocdSize) fail("not a zip archive (only " + std::to_string(file_size_) + " bytes)");
    const uint64_t tail_size = std::min<uint64_t>(file_size_, kEocdSize + 0xFFFF);
    std::vector<unsigned char> tail(tail_size);
    read_at(file_size_ - tail_size, tail.data(), tail_size, "the end of the archive");
    int64_t eocd = -1;
    for (int64_t i = static_cast<int64_t>(tail_size - kEocdSize); i >= 0; --i) {
      const unsigned char* p = tail.data() + i;
      if (le32(p) == 0x06054b50 && static_cast<uint64_t>(i) + kEocdSize + le16(p + 20) <= tail_size) {
        eocd = i;
        break;
      }
    }
    if (eocd < 0) fail("not a zip archive (no end-of-central-directory record); the file is truncated or not a torch.save checkpoint");
    const unsigned char* p = tail.data() + eocd;
    const uint64_t eocd_offset = file_size_ - tail_size + static_cast<uint64_t>(eocd);
    if (le16(p + 4) != 0 || le16(p + 6) != 0) fail("multi-part zip archives are not supported");
    uint64_t count = le16(p + 10);
    uint64_t cd_size = le32(p + 12);
    uint64_t cd_offset = le32(p + 16);
    if (count == 0xFFFF || cd_size == 0xFFFFFFFF || cd_offset == 0xFFFFFFFF) {
      // ZIP64 (archives over 4 GiB or 65535 entries): a locator right before
      // the record points at the 64-bit record.
      if (eocd_offset < 20) fail("corrupt ZIP64 archive (no locator)");
      unsigned char locator[20];
      read_at(eocd_offset - 20, locator, 20, "the ZIP64 locator");
      if (le32(locator) != 0x07064b50) fail("corrupt ZIP64 archive (bad locator signature)");
      unsigned char record[56];
      read_at(le64(locator + 8), record, 56, "the ZIP64 end-of-central-directory record");
      if (le32(record) != 0x06064b50) fail("corrupt ZIP64 archive (bad record signature)");
      count = le64(record + 32);
      cd_size = le64(record + 40);
      cd_offset = le64(record + 48);
    }
    if (cd_offset > file_size_ || cd_size > file_size_ - cd_offset)
      fail("the zip central directory lies outside the file; the file is truncated or corrupt");
    std::vector<unsigned char> cd(cd_size);
    read_at(cd_offset, cd.data(), cd_size, "the zip central directory");
    uint64_t pos = 0;
    for (uint64_t i = 0; i < count; ++i) {
      if (pos + 46 > cd_size || le32(cd.data() + pos) != 0x02014b50)
        fail("corrupt zip central directory (entry " + std::to_string(i) + ")");
      const unsigned char* e = cd.data() + pos;
      ZipEntry entry;
      entry.flags = le16(e + 8);
      entry.method = le16(e + 10);
      entry.compressed_size = le32(e + 20);
      entry.size = le32(e + 24);
      const uint16_t name_len = le16(e + 28), extra_len = le16(e + 30), comment_len = le16(e + 32);
      entry.local_header_offset = le32(e + 42);
      if (pos + 46 + name_len + extra_len + comment_len > cd_size) fail("corrupt zip central directory (entry " + std::to_string(i) + ")");
      entry.name.assign(reinterpret_cast<const char*>(e + 46), name_len);
      // ZIP64 extra field: 64-bit values for exactly the fields saturated above, in this order.
      const unsigned char* extra = e + 46 + name_len;
      for (uint32_t x = 0; x + 4 <= extra_len;) {
        const uint16_t id = le16(extra + x), len = le16(extra + x + 2);
        if (x + 4 + len > extra_len) break;
        if (id == 0x0001) {
          const unsigned char* v = extra + x + 4;
          uint32_t used = 0;
          auto take = [&](uint64_t& field) {
            if (used + 8 > len) fail("corrupt ZIP64 field for entry '" + entry.name + "'");
            field = le64(v + used);
            used += 8;
          };
          if (entry.size == 0xFFFFFFFF) take(entry.size);
          if (entry.compressed_size == 0xFFFFFFFF) take(entry.compressed_size);
          if (entry.local_header_offset == 0xFFFFFFFF) take(entry.local_header_offset);
        }
        x += 4u + len;
      }
      pos += 46u + name_len + extra_len + comment_len;
      entries_.push_back(std::move(entry));
    }
  }

  std::string path_;
  std::ifstream in_;
  uint64_t file_size_ = 0;
  std::vector<ZipEntry> entries_;
};

// ---------------------------------------------------------------------------
// Pickle values: just what torch.save emits for (nested) state dicts.

struct Value;
struct DictData;
using Items = std::vector<Value>;

struct Value {
  enum class Kind { None, Bool, Int, Float, String, Tuple, List, Dict, Global, Storage, Tensor };
  Kind kind = Kind::None;
  int64_t i = 0;  // Bool, Int
  double f = 0;
  std::string s;  // String; Global: "module.name"; Storage and Tensor: the storage key
  std::shared_ptr<Items> items;     // Tuple, List (shared: memo entries alias the same object)
  std::shared_ptr<DictData> dict;   // Dict
  torch::Tensor tensor;             // Storage: flat storage; Tensor: a view of it
};

struct DictData {
  std::vector<std::pair<Value, Value>> entries;  // insertion order, like OrderedDict
  std::unordered_map<std::string, size_t> index;
};

const char* kind_name(Value::Kind kind) {
  switch (kind) {
    case Value::Kind::None: return "None";
    case Value::Kind::Bool: return "bool";
    case Value::Kind::Int: return "int";
    case Value::Kind::Float: return "float";
    case Value::Kind::String: return "str";
    case Value::Kind::Tuple: return "tuple";
    case Value::Kind::List: return "list";
    case Value::Kind::Dict: return "dict";
    case Value::Kind::Global: return "global";
    case Value::Kind::Storage: return "storage";
    case Value::Kind::Tensor: return "tensor";
  }
  return "?";
}

Value make_int(int64_t i) {
  Value v;
  v.kind = Value::Kind::Int;
  v.i = i;
  return v;
}
Value make_bool(bool b) {
  Value v;
  v.kind = Value::Kind::Bool;
  v.i = b;
  return v;
}
Value make_string(std::string s) {
  Value v;
  v.kind = Value::Kind::String;
  v.s = std::move(s);
  return v;
}
Value make_sequence(Value::Kind kind, Items items) {
  Value v;
  v.kind = kind;
  v.items = std::make_shared<Items>(std::move(items));
  return v;
}
Value make_dict() {
  Value v;
  v.kind = Value::Kind::Dict;
  v.dict = std::make_shared<DictData>();
  return v;
}

struct StorageType {
  const char* name;
  torch::ScalarType dtype;
};
const StorageType kStorageTypes[] = {
    {"torch.FloatStorage", torch::kFloat32}, {"torch.DoubleStorage", torch::kFloat64},
    {"torch.HalfStorage", torch::kFloat16},  {"torch.BFloat16Storage", torch::kBFloat16},
    {"torch.LongStorage", torch::kInt64},    {"torch.IntStorage", torch::kInt32},
    {"torch.ShortStorage", torch::kInt16},   {"torch.CharStorage", torch::kInt8},
    {"torch.ByteStorage", torch::kUInt8},    {"torch.BoolStorage", torch::kBool},
};
const char* const kOrderedDict = "collections.OrderedDict";
const char* const kRebuildTensor = "torch._utils._rebuild_tensor_v2";
const char* const kRebuildParameter = "torch._utils._rebuild_parameter";

const StorageType* storage_type(const std::string& name) {
  for (const auto& type : kStorageTypes)
    if (name == type.name) return &type;
  return nullptr;
}

bool is_allowed_global(const std::string& name) {
  return name == kOrderedDict || name == kRebuildTensor || name == kRebuildParameter ||
         storage_type(name) != nullptr;
}

// The interpreter. Storages are read from the zip the first time a persistent
// id names them and shared by every tensor that views them.
class PickleMachine {
 public:
  PickleMachine(const std::string& path, std::string pickle, ZipReader& zip, std::string prefix)
      : path_(path), data_(std::move(pickle)), zip_(zip), prefix_(std::move(prefix)) {}

  ~PickleMachine() {
    // A hostile pickle can make a container hold itself; emptying every
    // memoized container (the only way to build a cycle) frees such loops.
    for (auto& [id, value] : memo_) {
      if (value.items) value.items->clear();
      if (value.dict) value.dict->entries.clear();
    }
  }

  Value run() {
    while (true) {
      const size_t at = pos_;
      const unsigned char op = byte();
      switch (op) {
        case 0x80: {  // PROTO
          const unsigned char version = byte();
          if (version < 2 || version > 5) fail(at, "unsupported pickle protocol " + std::to_string(version));
          break;
        }
        case 0x95: take(8); break;  // FRAME (protocol 4): only a read-ahead hint
        case '}': push(make_dict()); break;
        case ']': push(make_sequence(Value::Kind::List, {})); break;
        case ')': push(make_sequence(Value::Kind::Tuple, {})); break;
        case '(': marks_.push_back(stack_.size()); break;
        case 't': push(make_sequence(Value::Kind::Tuple, pop_mark(at))); break;
        case 'l': push(make_sequence(Value::Kind::List, pop_mark(at))); break;
        case 'd': {
          Items items = pop_mark(at);
          if (items.size() % 2) fail(at, "DICT with an odd number of items");
          Value dict = make_dict();
          for (size_t k = 0; k < items.size(); k += 2) set_item(dict, items[k], items[k + 1], at);
          push(dict);
          break;
        }
        case 0x85: case 0x86: case 0x87: {  // TUPLE1..3
          const size_t n = op - 0x84u;
          if (stack_.size() < n + floor()) fail(at, "stack underflow");
          Items items(stack_.end() - static_cast<long>(n), stack_.end());
          stack_.resize(stack_.size() - n);
          push(make_sequence(Value::Kind::Tuple, std::move(items)));
          break;
        }
        case 'X': push(make_string(take(u32()))); break;                 // BINUNICODE
        case 0x8c: push(make_string(take(byte()))); break;               // SHORT_BINUNICODE
        case 0x8d: push(make_string(take(u64()))); break;                // BINUNICODE8
        case 'U': case 'C': push(make_string(take(byte()))); break;      // SHORT_BINSTRING, SHORT_BINBYTES
        case 'T': case 'B': push(make_string(take(u32()))); break;       // BINSTRING, BINBYTES
        case 'J': push(make_int(static_cast<int32_t>(u32()))); break;    // BININT
        case 'K': push(make_int(byte())); break;                         // BININT1
        case 'M': push(make_int(le16(bytes(2)))); break;                 // BININT2
        case 0x8a: {                                                     // LONG1
          const unsigned char n = byte();
          if (n > 8) fail(at, "integer wider than 64 bits");
          const unsigned char* p = bytes(n);
          uint64_t bits = 0;
          for (unsigned k = 0; k < n; ++k) bits |= static_cast<uint64_t>(p[k]) << (8 * k);
          if (n > 0 && n < 8 && (p[n - 1] & 0x80)) bits |= ~uint64_t{0} << (8 * n);  // sign-extend
          push(make_int(static_cast<int64_t>(bits)));
          break;
        }
        case 'G': {  // BINFLOAT: big-endian double
          const unsigned char* p = bytes(8);
          uint64_t bits = 0;
          for (int k = 0; k < 8; ++k) bits = (bits << 8) | p[k];
          Value v;
          v.kind = Value::Kind::Float;
          std::memcpy(&v.f, &bits, 8);
          push(v);
          break;
        }
        case 0x88: push(make_bool(true)); break;
        case 0x89: push(make_bool(false)); break;
        case 'N': push(Value{}); break;
        case 'q': memo_[byte()] = top(at); break;   // BINPUT
        case 'r': memo_[u32()] = top(at); break;    // LONG_BINPUT
        case 0x94: memo_[next_memo_id()] = top(at); break;  // MEMOIZE
        case 'h': push(memo_get(byte(), at)); break;  // BINGET
        case 'j': push(memo_get(u32(), at)); break;   // LONG_BINGET
        case 's': {                                   // SETITEM
          Value value = pop(at), key = pop(at);
          set_item(top(at), key, value, at);
          break;
        }
        case 'u': {  // SETITEMS
          Items items = pop_mark(at);
          if (items.size() % 2) fail(at, "SETITEMS with an odd number of items");
          Value dict = top(at);
          for (size_t k = 0; k < items.size(); k += 2) set_item(dict, items[k], items[k + 1], at);
          break;
        }
        case 'a': {  // APPEND
          Value value = pop(at);
          list_of(top(at), at).push_back(std::move(value));
          break;
        }
        case 'e': {  // APPENDS
          Items items = pop_mark(at);
          Items& list = list_of(top(at), at);
          list.insert(list.end(), items.begin(), items.end());
          break;
        }
        case 'c': {  // GLOBAL "module\nname\n"
          std::string module = line(at), name = line(at);
          push(global(module + "." + name, at));
          break;
        }
        case 0x93: {  // STACK_GLOBAL (protocol 4)
          Value name = pop(at), module = pop(at);
          if (name.kind != Value::Kind::String || module.kind != Value::Kind::String)
            fail(at, "STACK_GLOBAL needs two strings");
          push(global(module.s + "." + name.s, at));
          break;
        }
        case 'R': {  // REDUCE
          Value args = pop(at), callable = pop(at);
          push(reduce(callable, args, at));
          break;
        }
        case 'b': {  // BUILD
          Value state = pop(at);
          const Value& object = top(at);
          // OrderedDict state dicts carry their `_metadata` (module versions) as
          // an attribute; it means nothing to us, so accept and drop it.
          if (object.kind != Value::Kind::Dict || state.kind != Value::Kind::Dict)
            fail(at, std::string("BUILD of a ") + kind_name(object.kind) + " with a " + kind_name(state.kind) +
                         " state is not supported");
          break;
        }
        case 'Q': {  // BINPERSID
          Value pid = pop(at);
          push(persistent_load(pid, at));
          break;
        }
        case '.': {  // STOP
          Value result = pop(at);
          if (!stack_.empty() || !marks_.empty()) fail(at, "items left on the stack at STOP");
          return result;
        }
        default: {
          char hex[8];
          std::snprintf(hex, sizeof hex, "0x%02x", op);
          fail(at, std::string("unsupported pickle opcode ") + hex +
                       "; only the subset torch.save writes for state dicts is understood");
        }
      }
    }
  }

 private:
  [[noreturn]] void fail(size_t at, const std::string& what) const {
    throw std::runtime_error(path_ + ": " + prefix_ + "data.pkl: " + what + " (at byte " + std::to_string(at) + ")");
  }

  const unsigned char* bytes(uint64_t n) {
    if (n > data_.size() - pos_) fail(pos_, "the pickle is truncated");
    const auto* p = reinterpret_cast<const unsigned char*>(data_.data()) + pos_;
    pos_ += n;
    return p;
  }
  unsigned char byte() { return *bytes(1); }
  uint32_t u32() { return le32(bytes(4)); }
  uint64_t u64() { return le64(bytes(8)); }
  std::string take(uint64_t n) {
    const unsigned char* p = bytes(n);
    return std::string(reinterpret_cast<const char*>(p), n);
  }
  std::string line(size_t at) {
    const size_t end = data_.find('\n', pos_);
    if (end == std::string::npos) fail(at, "unterminated GLOBAL");
    std::string text = data_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return text;
  }

  // Items below the innermost MARK belong to an enclosing construct.
  size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  void push(Value v) { stack_.push_back(std::move(v)); }
  Value pop(size_t at) {
    if (stack_.size() <= floor()) fail(at, "stack underflow");
    Value v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }
  Value& top(size_t at) {
    if (stack_.size() <= floor()) fail(at, "stack underflow");
    return stack_.back();
  }
  Items pop_mark(size_t at) {
    if (marks_.empty()) fail(at, "no MARK on the stack");
    const size_t mark = marks_.back();
    marks_.pop_back();
    Items items(std::make_move_iterator(stack_.begin() + static_cast<long>(mark)),
                std::make_move_iterator(stack_.end()));
    stack_.resize(mark);
    return items;
  }
  uint32_t next_memo_id() const { return static_cast<uint32_t>(memo_.size()); }
  Value memo_get(uint32_t id, size_t at) const {
    auto it = memo_.find(id);
    if (it == memo_.end()) fail(at, "memo entry " + std::to_string(id) + " was never stored");
    return it->second;
  }

  std::string key_text(const Value& key, size_t at) const {
    if (key.kind == Value::Kind::String) return "s" + key.s;
    if (key.kind == Value::Kind::Int || key.kind == Value::Kind::Bool) return "i" + std::to_string(key.i);
    fail(at, std::string("dict keys must be strings or integers, not ") + kind_name(key.kind));
  }
  void set_item(Value& dict, const Value& key, const Value& value, size_t at) {
    if (dict.kind != Value::Kind::Dict) fail(at, std::string("SETITEM on a ") + kind_name(dict.kind));
    const std::string text = key_text(key, at);
    auto [it, inserted] = dict.dict->index.emplace(text, dict.dict->entries.size());
    if (inserted)
      dict.dict->entries.emplace_back(key, value);
    else
      dict.dict->entries[it->second].second = value;
  }
  Items& list_of(Value& list, size_t at) {
    if (list.kind != Value::Kind::List) fail(at, std::string("APPEND on a ") + kind_name(list.kind));
    return *list.items;
  }

  Value global(const std::string& name, size_t at) const {
    // Checked here, when the name is read, so a refused callable never
    // reaches REDUCE; nothing is imported or called in any case.
    if (!is_allowed_global(name))
      throw std::runtime_error(path_ + ": refusing to load: the pickle references GLOBAL '" + name +
                               "', which is not a tensor or container. Only state dicts of tensors can be "
                               "loaded; re-save with torch.save(model.state_dict(), ...) or as safetensors");
    Value v;
    v.kind = Value::Kind::Global;
    v.s = name;
    return v;
  }

  int64_t int_of(const Value& v, const char* what, size_t at) const {
    if (v.kind != Value::Kind::Int) fail(at, std::string(what) + " must be an int, not " + kind_name(v.kind));
    return v.i;
  }
  std::vector<int64_t> ints_of(const Value& v, const char* what, size_t at) const {
    if (v.kind != Value::Kind::Tuple && v.kind != Value::Kind::List)
      fail(at, std::string(what) + " must be a tuple, not " + kind_name(v.kind));
    std::vector<int64_t> out;
    for (const auto& item : *v.items) out.push_back(int_of(item, what, at));
    return out;
  }

  Value reduce(const Value& callable, const Value& args, size_t at) {
    if (callable.kind != Value::Kind::Global) fail(at, std::string("REDUCE on a ") + kind_name(callable.kind));
    if (args.kind != Value::Kind::Tuple) fail(at, "REDUCE arguments must be a tuple");
    const Items& a = *args.items;
    if (callable.s == kOrderedDict) {
      if (!a.empty()) fail(at, "OrderedDict(...) with arguments is not supported");
      return make_dict();
    }
    if (callable.s == kRebuildParameter) {
      // (data, requires_grad, backward_hooks): a Parameter is just its data here.
      if (a.size() != 3 || a[0].kind != Value::Kind::Tensor) fail(at, "malformed _rebuild_parameter call");
      return a[0];
    }
    if (callable.s == kRebuildTensor) return rebuild_tensor(a, at);
    fail(at, "'" + callable.s + "' cannot be called");
  }

  // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
  // backward_hooks[, metadata]).
  Value rebuild_tensor(const Items& a, size_t at) {
    if ((a.size() != 6 && a.size() != 7) || a[0].kind != Value::Kind::Storage)
      fail(at, "malformed _rebuild_tensor_v2 call");
    const Value& storage = a[0];
    const int64_t offset = int_of(a[1], "storage offset", at);
    const std::vector<int64_t> size = ints_of(a[2], "tensor size", at);
    const std::vector<int64_t> stride = ints_of(a[3], "tensor stride", at);
    if (size.size() != stride.size()) fail(at, "tensor size and stride differ in length");
    if (offset < 0) fail(at, "negative storage offset");
    // Bounds are checked here so that as_strided can never read outside the
    // storage, and a corrupt file gets a message naming the storage.
    bool empty = false;
    int64_t last = offset;
    for (size_t d = 0; d < size.size(); ++d) {
      if (size[d] < 0 || stride[d] < 0) fail(at, "negative tensor size or stride");
      if (size[d] == 0) empty = true;
    }
    if (!empty) {
      for (size_t d = 0; d < size.size(); ++d) {
        int64_t extent = 0;
        if (__builtin_mul_overflow(size[d] - 1, stride[d], &extent) || __builtin_add_overflow(last, extent, &last))
          fail(at, "tensor extent overflows");
      }
      if (last >= storage.tensor.numel())
        fail(at, "a tensor reaches element " + std::to_string(last) + " of storage '" + storage.s + "', which has " +
                     std::to_string(storage.tensor.numel()) + " elements");
    }
    Value v;
    v.kind = Value::Kind::Tensor;
    v.s = storage.s;
    v.tensor = empty ? torch::empty(size, storage.tensor.options()) : storage.tensor.as_strided(size, stride, offset);
    return v;
  }

  // ("storage", <storage class>, key, location, numel) -> <prefix>data/<key>.
  Value persistent_load(const Value& pid, size_t at) {
    if (pid.kind != Value::Kind::Tuple || pid.items->size() != 5) fail(at, "malformed persistent id");
    const Items& p = *pid.items;
    if (p[0].kind != Value::Kind::String || p[0].s != "storage" || p[1].kind != Value::Kind::Global ||
        p[2].kind != Value::Kind::String)
      fail(at, "malformed persistent id (expected ('storage', type, key, location, numel))");
    const StorageType* type = storage_type(p[1].s);
    if (!type) fail(at, "'" + p[1].s + "' is not a storage type");
    const std::string& key = p[2].s;
    const int64_t numel = int_of(p[4], "storage size", at);
    auto cached = storages_.find(key);
    if (cached != storages_.end()) {
      if (cached->second.tensor.scalar_type() != type->dtype || cached->second.tensor.numel() != numel)
        fail(at, "storage '" + key + "' is referenced with two different types or sizes");
      return cached->second;
    }
    const std::string entry_name = prefix_ + "data/" + key;
    const ZipEntry* entry = zip_.find(entry_name);
    if (!entry) fail(at, "storage '" + key + "' is missing: the archive has no entry '" + entry_name + "'");
    const uint64_t itemsize = c10::elementSize(type->dtype);
    uint64_t bytes = 0;
    if (numel < 0 || __builtin_mul_overflow(static_cast<uint64_t>(numel), itemsize, &bytes) || entry->size != bytes)
      fail(at, "storage '" + key + "' should hold " + std::to_string(numel) + " x " + std::to_string(itemsize) +
                   " bytes, but its entry has " + std::to_string(entry->size));
    zip_.data_offset(*entry);  // the entry lies inside the file: safe to allocate for it
    Value v;
    v.kind = Value::Kind::Storage;
    v.s = key;
    v.tensor = torch::empty({numel}, torch::TensorOptions().dtype(type->dtype));
    zip_.read(*entry, v.tensor.data_ptr());
    storages_.emplace(key, v);
    return v;
  }

  std::string path_;
  std::string data_;
  size_t pos_ = 0;
  ZipReader& zip_;
  std::string prefix_;
  std::vector<Value> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint32_t, Value> memo_;
  std::unordered_map<std::string, Value> storages_;
};

// Collects tensors under "."-joined names; everything else is dropped.
void flatten(const Value& value, const std::string& name, int depth, const std::string& path,
             std::vector<std::pair<std::string, Value>>& out) {
  if (depth > 64) throw std::runtime_error(path + ": the checkpoint nests containers too deeply (or in a cycle)");
  auto join = [&](const std::string& key) { return name.empty() ? key : name + "." + key; };
  switch (value.kind) {
    case Value::Kind::Tensor: out.emplace_back(name, value); break;
    case Value::Kind::Dict:
      for (const auto& [key, item] : value.dict->entries)
        flatten(item, join(key.kind == Value::Kind::String ? key.s : std::to_string(key.i)), depth + 1, path, out);
      break;
    case Value::Kind::List:
    case Value::Kind::Tuple:
      for (size_t k = 0; k < value.items->size(); ++k) flatten((*value.items)[k], join(std::to_string(k)), depth + 1, path, out);
      break;
    default: break;  // epoch counters, strings, None: not weights
  }
}

}  // namespace

StateDict load_torch_checkpoint(const std::string& path) {
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error(path + ": cannot open the checkpoint");
    unsigned char magic[4] = {0, 0, 0, 0};
    in.read(reinterpret_cast<char*>(magic), 4);
    // The legacy format starts with a pickled magic number (PROTO 2, LONG1).
    if (in.gcount() >= 2 && magic[0] == 0x80 && magic[1] <= 5)
      throw std::runtime_error(path + ": this is the legacy (pre-1.6, non-zip) torch.save format, which is not "
                               "supported; re-save it with torch >= 1.6: torch.save(torch.load(f), f)");
    if (in.gcount() < 4 || magic[0] != 'P' || magic[1] != 'K')
      throw std::runtime_error(path + ": not a PyTorch checkpoint (expected the zip format torch.save writes "
                               "since torch 1.6)");
  }
  ZipReader zip(path);
  const ZipEntry* pickle = nullptr;
  bool torchscript = false;
  for (const auto& entry : zip.entries()) {
    const size_t slash = entry.name.find('/');
    if (slash == std::string::npos) continue;
    const std::string rest = entry.name.substr(slash + 1);
    if (rest == "constants.pkl") torchscript = true;
    if (rest != "data.pkl") continue;
    if (pickle) throw std::runtime_error(path + ": the archive holds two data.pkl files ('" + pickle->name +
                                         "', '" + entry.name + "')");
    pickle = &entry;
  }
  if (!pickle) throw std::runtime_error(path + ": the zip archive has no <folder>/data.pkl, so it is not a torch.save checkpoint");
  if (torchscript)
    throw std::runtime_error(path + ": this is a TorchScript archive (torch.jit.save); save the model's "
                             "state_dict with torch.save instead");
  const std::string prefix = pickle->name.substr(0, pickle->name.size() - std::string("data.pkl").size());
  if (const ZipEntry* order = zip.find(prefix + "byteorder")) {
    const std::string text = zip.read_string(*order);
    if (text != "little")
      throw std::runtime_error(path + ": the checkpoint was written with '" + text +
                               "' byte order; only little-endian checkpoints are supported");
  }

  std::vector<std::pair<std::string, Value>> named;
  {
    PickleMachine machine(path, zip.read_string(*pickle), zip, prefix);
    const Value root = machine.run();
    if (root.kind != Value::Kind::Dict)
      throw std::runtime_error(path + ": the checkpoint holds a " + kind_name(root.kind) +
                               ", not a dict of tensors (a state_dict)");
    flatten(root, "", 0, path, named);
  }

  // Views and tied weights share storages; such tensors get their own copy.
  // A tensor that alone covers its whole storage can keep it without a copy.
  std::unordered_map<std::string, int> users;
  for (const auto& [name, value] : named) ++users[value.s];
  StateDict result;
  for (auto& [name, value] : named) {
    torch::Tensor tensor = value.tensor;
    const bool owns_storage = users[value.s] == 1 && tensor.is_contiguous() && tensor.storage_offset() == 0 &&
                              tensor.numel() * static_cast<int64_t>(tensor.element_size()) ==
                                  static_cast<int64_t>(tensor.storage().nbytes());
    if (!owns_storage) tensor = tensor.clone(at::MemoryFormat::Contiguous);
    if (!result.emplace(name, tensor).second)
      throw std::runtime_error(path + ": two tensors are both named '" + name + "' after flattening nested dicts");
  }
  return result;
}

}  // namespace automm
