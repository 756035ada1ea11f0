// Tests of weights_io: safetensors and torch.save checkpoints, checked against
// files written by torch itself and by an independent safetensors writer
// (tests/models/make_reference_weights.py, run with Debian's /usr/bin/python3).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "automm/weights_io.h"
#include "models/skip_init.h"

#ifndef AUTOMM_SOURCE_DIR
#include "automm_test_paths.h"
#endif

namespace automm {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Not test_util.h's TempDir: that header pulls in the table code.
class ScratchDir {
 public:
  ScratchDir() {
    std::random_device device;
    path_ = fs::temp_directory_path() / ("automm_weights_" + std::to_string(device()));
    fs::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

const char* const kPython = "/usr/bin/python3";

std::string script_path() { return std::string(AUTOMM_SOURCE_DIR) + "/tests/models/make_reference_weights.py"; }

std::string quoted(const std::string& text) { return "'" + text + "'"; }

// Runs a command and returns its stdout; `status` gets the exit status.
std::string capture(const std::string& command, int& status) {
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) {
    status = -1;
    return out;
  }
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) out.append(buffer, n);
  status = ::pclose(pipe);
  return out;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A safetensors file from a literal header and data section.
void write_raw_safetensors(const std::string& path, const std::string& header, const std::string& data) {
  std::string length(8, '\0');
  for (int k = 0; k < 8; ++k) length[k] = static_cast<char>((static_cast<uint64_t>(header.size()) >> (8 * k)) & 0xFF);
  write_bytes(path, length + header + data);
}

::testing::AssertionResult Contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << text << "' does not contain '" << part << "'";
}

// Runs fn, expects std::runtime_error, returns its message.
template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected std::runtime_error";
  return "";
}

std::string dtype_name(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat64: return "F64";
    case torch::kFloat32: return "F32";
    case torch::kFloat16: return "F16";
    case torch::kBFloat16: return "BF16";
    case torch::kInt64: return "I64";
    case torch::kInt32: return "I32";
    case torch::kInt16: return "I16";
    case torch::kInt8: return "I8";
    case torch::kUInt8: return "U8";
    case torch::kBool: return "BOOL";
    default: return "?";
  }
}

// Exact comparison with a reference entry {"dtype", "shape", "values"}.
void expect_tensor(const torch::Tensor& actual, const json& expected, const std::string& label) {
  SCOPED_TRACE(label);
  ASSERT_TRUE(actual.defined());
  EXPECT_EQ(dtype_name(actual.scalar_type()), expected.at("dtype").get<std::string>());
  EXPECT_EQ(actual.sizes().vec(), expected.at("shape").get<std::vector<int64_t>>());
  EXPECT_TRUE(actual.is_contiguous());
  const json& values = expected.at("values");
  ASSERT_EQ(static_cast<size_t>(actual.numel()), values.size());
  if (actual.is_floating_point()) {
    const torch::Tensor flat = actual.to(torch::kFloat64).reshape(-1).contiguous();
    const double* data = flat.data_ptr<double>();
    for (size_t k = 0; k < values.size(); ++k) {
      const json& v = values[k];
      if (v.is_string()) {
        const std::string special = v.get<std::string>();
        if (special == "nan")
          EXPECT_TRUE(std::isnan(data[k])) << "element " << k;
        else
          EXPECT_EQ(data[k], special == "inf" ? INFINITY : -INFINITY) << "element " << k;
      } else {
        EXPECT_EQ(data[k], v.get<double>()) << "element " << k;
      }
    }
  } else {
    const torch::Tensor flat = actual.to(torch::kInt64).reshape(-1).contiguous();
    const int64_t* data = flat.data_ptr<int64_t>();
    for (size_t k = 0; k < values.size(); ++k) {
      const int64_t want = values[k].is_boolean() ? static_cast<int64_t>(values[k].get<bool>()) : values[k].get<int64_t>();
      EXPECT_EQ(data[k], want) << "element " << k;
    }
  }
}

void expect_state_dict(const StateDict& actual, const json& expected, const std::string& file) {
  SCOPED_TRACE(file);
  std::set<std::string> want, got;
  for (const auto& [name, entry] : expected.items()) want.insert(name);
  for (const auto& [name, tensor] : actual) got.insert(name);
  ASSERT_EQ(got, want);
  for (const auto& [name, entry] : expected.items()) expect_tensor(actual.at(name), entry, name);
}

// ---------------------------------------------------------------------------
// Against files written by torch.save and by the hand-written Python writer.

class WeightsIoReference : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new ScratchDir;
    int status = 0;
    const std::string log = capture(std::string(kPython) + " " + quoted(script_path()) + " " +
                                        quoted(dir_->file("")) + " 2>&1",
                                    status);
    // 77: the script found no torch; 127: the shell found no /usr/bin/python3.
    if (WIFEXITED(status) && (WEXITSTATUS(status) == 77 || WEXITSTATUS(status) == 127)) {
      skip_reason_ = std::string(kPython) + " with torch is needed; install Debian's python3 and python3-torch";
      return;
    }
    if (status != 0) {
      failure_ = "make_reference_weights.py failed:\n" + log;
      return;
    }
    reference_ = json::parse(read_bytes(dir_->file("reference.json")));
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (!skip_reason_.empty()) FAIL() << skip_reason_;  // scripts/setup.sh installs python3-torch
    ASSERT_TRUE(failure_.empty()) << failure_;
  }
  static std::string file(const std::string& name) { return dir_->file(name); }

  static inline ScratchDir* dir_ = nullptr;
  static inline json reference_;
  static inline std::string skip_reason_, failure_;
};

TEST_F(WeightsIoReference, TorchSaveOrderedDictOfEveryDtypeAndLayout) {
  const StateDict weights = load_torch_checkpoint(file("ref.bin"));
  expect_state_dict(weights, reference_["ref.bin"], "ref.bin");
  // Views were saved sharing one storage; each loaded tensor owns its memory.
  torch::Tensor f32 = weights.at("f32");
  const torch::Tensor rows = weights.at("f32_rows").clone();
  f32.fill_(0);
  EXPECT_TRUE(torch::equal(weights.at("f32_rows"), rows));
  EXPECT_EQ(weights.at("far_tail").storage().nbytes(), 10u * 4u);  // not the 70010-element storage
  EXPECT_FALSE(weights.at("param").requires_grad());

  // timm's training output (model_best.pth.tar) is recognised by its zip magic.
  fs::copy_file(file("ref.bin"), file("model_best.pth.tar"), fs::copy_options::overwrite_existing);
  expect_state_dict(load_weights(file("model_best.pth.tar")), reference_["ref.bin"], "model_best.pth.tar");
}

TEST_F(WeightsIoReference, NestedCheckpointIsFlattenedWithDottedNames) {
  const StateDict weights = load_torch_checkpoint(file("nested.pth"));
  expect_state_dict(weights, reference_["nested.pth"], "nested.pth");
  EXPECT_EQ(weights.count("state_dict.0.weight"), 1u);
  EXPECT_EQ(weights.count("state_dict.2.num_batches_tracked"), 1u);
  EXPECT_EQ(weights.count("optimizer.state.0.exp_avg"), 1u);
}

TEST_F(WeightsIoReference, Protocol4TimmCheckpoint) {
  expect_state_dict(load_weights(file("timm.pt")), reference_["timm.pt"], "timm.pt");
}

TEST_F(WeightsIoReference, ManyTensorsUseLongMemoIndices) {
  expect_state_dict(load_weights(file("many.bin")), reference_["many.bin"], "many.bin");
}

TEST_F(WeightsIoReference, Zip64Archive) {
  expect_state_dict(load_torch_checkpoint(file("zip64.bin")), reference_["ref.bin"], "zip64.bin");
}

TEST_F(WeightsIoReference, RefusesPicklesThatReferenceCode) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"malicious_system.pth", "posix.system"},
      {"malicious_eval.pth", "__builtin__.eval"},
      {"malicious_class.pth", "zipfile.ZipInfo"}};
  for (const auto& [name, global] : cases) {
    const std::string message = error_of([&, &name = name] { load_weights(file(name)); });
    EXPECT_TRUE(Contains(message, file(name) + ": refusing to load: the pickle references GLOBAL '" + global +
                                      "', which is not a tensor or container"));
  }
  EXPECT_FALSE(fs::exists(file("pwned"))) << "the malicious pickle ran";
}

TEST_F(WeightsIoReference, RefusesCompressedLegacyTruncatedAndNonZipFiles) {
  std::string message = error_of([&] { load_torch_checkpoint(file("compressed.bin")); });
  EXPECT_TRUE(Contains(message, file("compressed.bin")));
  EXPECT_TRUE(Contains(message, "is compressed (zip method 8)"));

  message = error_of([&] { load_weights(file("legacy.pt")); });
  EXPECT_TRUE(Contains(message, file("legacy.pt")));
  EXPECT_TRUE(Contains(message, "torch >= 1.6"));

  const std::string bytes = read_bytes(file("ref.bin"));
  write_bytes(file("truncated.bin"), bytes.substr(0, bytes.size() / 2));
  message = error_of([&] { load_torch_checkpoint(file("truncated.bin")); });
  EXPECT_TRUE(Contains(message, file("truncated.bin") + ": not a zip archive"));

  write_bytes(file("text.bin"), "just some text, not a checkpoint");
  message = error_of([&] { load_weights(file("text.bin")); });
  EXPECT_TRUE(Contains(message, file("text.bin") + ": not a PyTorch checkpoint"));
}

TEST_F(WeightsIoReference, DamagedArchivesFailWithAnException) {
  // Random bytes flipped in the pickle (the archive's start) and in the
  // central directory (its end): each load either succeeds or throws.
  const std::string bytes = read_bytes(file("ref.bin"));
  const std::string path = file("damaged.bin");
  std::mt19937 rng(7);
  int failures = 0;
  for (int round = 0; round < 400; ++round) {
    std::string damaged = bytes;
    const size_t region = 900;
    for (int flips = 0; flips < 3; ++flips) {
      const size_t k = rng() % region;
      damaged[round % 2 ? k : damaged.size() - 1 - k] = static_cast<char>(rng());
    }
    write_bytes(path, damaged);
    try {
      load_torch_checkpoint(path);
    } catch (const std::exception& e) {
      ++failures;
      EXPECT_TRUE(Contains(e.what(), path)) << "round " << round;
    }
  }
  EXPECT_GT(failures, 100);
}

TEST_F(WeightsIoReference, HandWrittenSafetensors) {
  expect_state_dict(load_safetensors(file("hand.safetensors")), reference_["hand.safetensors"], "hand.safetensors");
}

TEST_F(WeightsIoReference, ShardedSafetensorsAndShardedBin) {
  const std::string index = file("sharded/model.safetensors.index.json");
  expect_state_dict(load_sharded_safetensors(index), reference_["sharded"], "sharded");
  expect_state_dict(load_weights(file("sharded")), reference_["sharded"], "sharded folder");
  expect_state_dict(load_weights(file("sharded_bin")), reference_["sharded_bin"], "sharded_bin folder");
}

TEST_F(WeightsIoReference, SavedSafetensorsReadByIndependentReader) {
  StateDict weights;
  torch::manual_seed(3);
  weights["f64"] = torch::randn({3}, torch::kFloat64);
  weights["f32.transposed"] = torch::randn({3, 4}).t();  // saved contiguous
  weights["f32.special"] = torch::tensor({0.0f, -0.0f, INFINITY, -INFINITY, NAN, 1e-40f});
  weights["f16"] = torch::tensor({0.5, -65504.0, 6e-8}).to(torch::kFloat16);
  weights["bf16"] = torch::randn({2, 2}).to(torch::kBFloat16);
  weights["i64"] = torch::tensor({INT64_MIN, INT64_MAX, int64_t{-1}});
  weights["i32"] = torch::tensor({-7, 8}, torch::kInt32);
  weights["i16"] = torch::tensor({-32768, 32767}, torch::kInt16);
  weights["i8"] = torch::tensor({-128, 127}, torch::kInt8);
  weights["u8"] = torch::tensor({0, 255}, torch::kUInt8);
  weights["bool"] = torch::tensor({true, false, true});
  weights["scalar"] = torch::tensor(2.5);
  weights["empty"] = torch::zeros({0, 2});
  const std::string path = file("cpp.safetensors");
  save_safetensors(weights, path, {{"format", "pt"}, {"written_by", "automm"}});

  int status = 0;
  const std::string out = capture(std::string(kPython) + " " + quoted(script_path()) + " check " + quoted(path), status);
  ASSERT_EQ(status, 0) << out;
  const json parsed = json::parse(out);
  EXPECT_TRUE(parsed["aligned"].get<bool>());
  EXPECT_EQ(parsed["__metadata__"], json({{"format", "pt"}, {"written_by", "automm"}}));
  std::set<std::string> names;
  for (const auto& [name, entry] : parsed["tensors"].items()) {
    names.insert(name);
    ASSERT_EQ(weights.count(name), 1u) << name;
    expect_tensor(weights.at(name).contiguous(), entry, name);
  }
  EXPECT_EQ(names.size(), weights.size());
}

// ---------------------------------------------------------------------------
// safetensors written and read by C++ alone.

TEST(WeightsIoSafetensors, RoundTripIsBitExact) {
  ScratchDir dir;
  StateDict weights;
  weights["a"] = torch::tensor({1.0f, NAN, -0.0f});
  weights["b.weight"] = torch::arange(12, torch::kInt64).reshape({3, 4}).t();
  weights["c"] = torch::tensor({1.5, -2.25}).to(torch::kBFloat16);
  weights["d"] = torch::tensor(true);
  const std::string path = dir.file("rt.safetensors");
  save_safetensors(weights, path);
  EXPECT_FALSE(fs::exists(path + ".tmp" + std::to_string(::getpid())));
  const StateDict loaded = load_safetensors(path);
  ASSERT_EQ(loaded.size(), weights.size());
  for (const auto& [name, tensor] : weights) {
    const torch::Tensor expected = tensor.contiguous();
    const torch::Tensor& got = loaded.at(name);
    EXPECT_EQ(got.scalar_type(), expected.scalar_type()) << name;
    EXPECT_EQ(got.sizes(), expected.sizes()) << name;
    EXPECT_EQ(std::memcmp(got.data_ptr(), expected.data_ptr(), expected.numel() * expected.element_size()), 0) << name;
  }
  // The data section starts 8-byte aligned.
  const std::string bytes = read_bytes(path);
  uint64_t header_len = 0;
  for (int k = 7; k >= 0; --k) header_len = (header_len << 8) | static_cast<unsigned char>(bytes[k]);
  EXPECT_EQ((8 + header_len) % 8, 0u);
  EXPECT_EQ(load_weights(path).size(), weights.size());
}

TEST(WeightsIoSafetensors, SaveRejectsUnsupportedTensors) {
  ScratchDir dir;
  const std::string path = dir.file("bad.safetensors");
  std::string message = error_of([&] { save_safetensors({{"z", torch::zeros({2}, torch::kComplexFloat)}}, path); });
  EXPECT_TRUE(Contains(message, path + ": tensor 'z' has dtype ComplexFloat"));
  message = error_of([&] { save_safetensors({{"u", torch::Tensor()}}, path); });
  EXPECT_TRUE(Contains(message, path + ": tensor 'u' is undefined"));
  EXPECT_FALSE(fs::exists(path));
}

// ---------------------------------------------------------------------------
// Corrupt files: every error names the file, and the tensor where there is one.

class WeightsIoCorruption : public ::testing::Test {
 protected:
  void SetUp() override {
    StateDict weights;
    weights["first"] = torch::arange(4, torch::kFloat32);
    weights["second"] = torch::arange(3, torch::kInt64);
    valid_ = dir_.file("valid.safetensors");
    save_safetensors(weights, valid_);
  }
  std::string message_for_raw(const std::string& header, const std::string& data) {
    const std::string path = dir_.file("raw.safetensors");
    write_raw_safetensors(path, header, data);
    const std::string message = error_of([&] { load_safetensors(path); });
    EXPECT_TRUE(Contains(message, path + ": "));
    return message;
  }
  ScratchDir dir_;
  std::string valid_;
};

TEST_F(WeightsIoCorruption, TruncatedFile) {
  const std::string bytes = read_bytes(valid_);
  const std::string path = dir_.file("truncated.safetensors");
  write_bytes(path, bytes.substr(0, bytes.size() - 3));
  std::string message = error_of([&] { load_weights(path); });
  // The writer puts wider elements first: the last tensor of the data is the one cut.
  EXPECT_TRUE(Contains(message, path + ": tensor '"));
  EXPECT_TRUE(Contains(message, "': data_offsets end 40 is past the end of the data"));

  write_bytes(path, bytes.substr(0, 5));
  message = error_of([&] { load_safetensors(path); });
  EXPECT_TRUE(Contains(message, path + ": not a safetensors file"));
}

TEST_F(WeightsIoCorruption, HeaderLengthLargerThanFile) {
  std::string bytes = read_bytes(valid_);
  bytes[0] = static_cast<char>(0xF0);
  bytes[1] = static_cast<char>(0xFF);
  const std::string path = dir_.file("long_header.safetensors");
  write_bytes(path, bytes);
  const std::string message = error_of([&] { load_safetensors(path); });
  EXPECT_TRUE(Contains(message, path + ": the safetensors header length (65520 bytes) is larger than the rest"));
}

TEST_F(WeightsIoCorruption, OverlappingOffsets) {
  const std::string message = message_for_raw(
      R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"y":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
      std::string(12, '\0'));
  EXPECT_TRUE(Contains(message, "tensor 'y' (bytes 4..12) overlaps tensor 'x' (bytes 0..8)"));
}

TEST_F(WeightsIoCorruption, UnknownDtype) {
  const std::string message =
      message_for_raw(R"({"w":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}})", std::string(2, '\0'));
  EXPECT_TRUE(Contains(message, "tensor 'w': unsupported dtype 'F8_E4M3'"));
}

TEST_F(WeightsIoCorruption, ByteCountDisagreesWithShape) {
  const std::string message =
      message_for_raw(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", std::string(8, '\0'));
  EXPECT_TRUE(Contains(message, "tensor 'w': holds 8 bytes, but shape and dtype F32 need 3 x 4"));
}

// A header declaring 2^40 elements is refused from the header alone: nothing of
// that size is ever allocated (the file holds 8 bytes of data).
TEST_F(WeightsIoCorruption, HugeDeclaredShapeIsRefusedBeforeAllocating) {
  std::string message = message_for_raw(
      R"({"w":{"dtype":"F32","shape":[1048576,1048576],"data_offsets":[0,8]}})", std::string(8, '\0'));
  EXPECT_TRUE(Contains(message, "tensor 'w': holds 8 bytes, but shape and dtype F32 need 1099511627776 x 4"));
  message = message_for_raw(R"({"w":{"dtype":"F32","shape":[1048576,1048576],"data_offsets":[0,4398046511104]}})",
                            std::string(8, '\0'));
  EXPECT_TRUE(Contains(message, "past the end of the data"));
}

TEST_F(WeightsIoCorruption, HolesAndTrailingBytes) {
  std::string message = message_for_raw(
      R"({"x":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"y":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}})",
      std::string(6, '\0'));
  EXPECT_TRUE(Contains(message, "data bytes 2..4 before tensor 'y' belong to no tensor"));
  message = message_for_raw(R"({"x":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})", std::string(5, '\0'));
  EXPECT_TRUE(Contains(message, "data bytes 2..5 at the end of the file belong to no tensor"));
}

TEST_F(WeightsIoCorruption, DuplicateNamesBadJsonBadShapesAndBadBools) {
  std::string message = message_for_raw(
      R"({"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"x":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
      std::string(2, '\0'));
  EXPECT_TRUE(Contains(message, "the safetensors header lists 'x' twice"));
  message = message_for_raw(R"({"x":{"dtype":"U8",)", "");
  EXPECT_TRUE(Contains(message, "the safetensors header is not valid JSON"));
  message = message_for_raw(R"({"x":{"dtype":"U8","shape":[-1],"data_offsets":[0,0]}})", "");
  EXPECT_TRUE(Contains(message, "tensor 'x': \"shape\" must hold non-negative integers"));
  message = message_for_raw(R"({"x":{"dtype":"U8","shape":[1]}})", std::string(1, '\0'));
  EXPECT_TRUE(Contains(message, "tensor 'x': \"data_offsets\" must be [begin, end]"));
  message = message_for_raw(R"({"m":{"dtype":"BOOL","shape":[2],"data_offsets":[0,2]}})", std::string("\x01\x07", 2));
  EXPECT_TRUE(Contains(message, "tensor 'm': BOOL byte 1 is 7"));
}

TEST_F(WeightsIoCorruption, ShardIndexErrors) {
  const std::string shard = dir_.file("shard-1.safetensors");
  fs::copy_file(valid_, shard);
  const std::string index = dir_.file("model.safetensors.index.json");

  write_bytes(index, R"({"weight_map": {"first": "shard-1.safetensors", "first": "shard-1.safetensors"}})");
  std::string message = error_of([&] { load_sharded_safetensors(index); });
  EXPECT_TRUE(Contains(message, index + ": the index lists 'first' twice (in \"weight_map\")"));

  write_bytes(index, R"({"weight_map": {"first": "shard-1.safetensors", "third": "shard-1.safetensors"}})");
  message = error_of([&] { load_weights(index); });
  EXPECT_TRUE(Contains(message, index + ": the index puts tensor 'third' in shard 'shard-1.safetensors', but that "
                                        "shard has no such tensor"));

  write_bytes(index, R"({"weight_map": {"first": "shard-2.safetensors"}})");
  message = error_of([&] { load_sharded_safetensors(index); });
  EXPECT_TRUE(Contains(message, index + ": shard 'shard-2.safetensors'"));
  EXPECT_TRUE(Contains(message, "does not exist"));

  write_bytes(index, R"({"metadata": {}})");
  message = error_of([&] { load_sharded_safetensors(index); });
  EXPECT_TRUE(Contains(message, index + ": the index has no \"weight_map\""));

  // Only the listed tensors are taken from a shard.
  write_bytes(index, R"({"weight_map": {"second": "shard-1.safetensors"}})");
  const StateDict loaded = load_sharded_safetensors(index);
  ASSERT_EQ(loaded.size(), 1u);
  EXPECT_TRUE(torch::equal(loaded.at("second"), torch::arange(3, torch::kInt64)));
}

// ---------------------------------------------------------------------------
// load_weights' choice of file.

TEST(WeightsIoDispatch, FolderPrefersSafetensorsAndNamesWhatItLookedFor) {
  ScratchDir dir;
  const std::string folder = dir.file("model");
  fs::create_directories(folder);
  std::string message = error_of([&] { load_weights(folder); });
  EXPECT_TRUE(Contains(message, folder + ": no weights in this folder; looked for model.safetensors, "
                                         "model.safetensors.index.json, pytorch_model.bin and "
                                         "pytorch_model.bin.index.json"));

  // A broken pytorch_model.bin is never opened when model.safetensors exists.
  write_bytes(folder + "/pytorch_model.bin", "not a checkpoint");
  message = error_of([&] { load_weights(folder); });
  EXPECT_TRUE(Contains(message, folder + "/pytorch_model.bin: not a PyTorch checkpoint"));
  save_safetensors({{"w", torch::ones({2})}}, folder + "/model.safetensors");
  const StateDict loaded = load_weights(folder);
  ASSERT_EQ(loaded.count("w"), 1u);
  EXPECT_TRUE(torch::equal(loaded.at("w"), torch::ones({2})));

  message = error_of([&] { load_weights(dir.file("missing")); });
  EXPECT_TRUE(Contains(message, dir.file("missing") + ": no such file or folder"));
}

TEST(WeightsIoDispatch, UnknownExtensionsAreSniffed) {
  ScratchDir dir;
  save_safetensors({{"w", torch::full({3}, 2.0)}}, dir.file("weights.dat"));
  EXPECT_TRUE(torch::equal(load_weights(dir.file("weights.dat")).at("w"), torch::full({3}, 2.0)));
  write_bytes(dir.file("junk.dat"), "junk junk junk");
  const std::string message = error_of([&] { load_weights(dir.file("junk.dat")); });
  EXPECT_TRUE(Contains(message, dir.file("junk.dat") + ": unrecognized weights file"));
}


// The memory-mapped reader gives load_safetensors' tensors without copying them,
// and writing to one changes only this process's page, never the file.
TEST(MappedSafetensors, TensorsAreViewsOfTheFileAndWritesStayPrivate) {
  ScratchDir dir;
  const StateDict saved = {{"a.weight", torch::randn({5, 3})},
                           {"b.flag", torch::tensor({true, false, true})},
                           {"c.count", torch::tensor({int64_t{7}})},
                           {"d.half", torch::randn({3}).to(torch::kBFloat16)}};
  save_safetensors(saved, dir.file("m.safetensors"));
  std::ifstream in(dir.file("m.safetensors"), std::ios::binary);
  const std::string before((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  {
    const MappedSafetensors mapped(dir.file("m.safetensors"));
    EXPECT_EQ(mapped.size(), before.size());
    const auto* begin = mapped.bytes();
    for (const auto& [name, tensor] : saved) {
      const torch::Tensor& got = mapped.tensors().at(name);
      EXPECT_TRUE(torch::equal(got, tensor)) << name;
      // In place: inside the mapping, at a multiple of the element size (the writer's order).
      const auto* data = static_cast<const unsigned char*>(got.data_ptr());
      EXPECT_TRUE(data >= begin && data < begin + mapped.size()) << name;
      EXPECT_EQ(reinterpret_cast<uintptr_t>(data) % got.element_size(), 0u) << name;
    }
    torch::Tensor weight = mapped.tensors().at("a.weight");
    weight.fill_(3.0);
    EXPECT_EQ(weight[0][0].item<float>(), 3.0f);
  }
  std::ifstream again(dir.file("m.safetensors"), std::ios::binary);
  EXPECT_EQ(std::string((std::istreambuf_iterator<char>(again)), std::istreambuf_iterator<char>()), before);
  // A tensor outlives the reader: it keeps the mapping.
  torch::Tensor kept = MappedSafetensors(dir.file("m.safetensors")).tensors().at("a.weight");
  EXPECT_TRUE(torch::equal(kept, saved.at("a.weight")));
}

TEST(MappedSafetensors, MisalignedTensorsOfOtherWritersAreCopiedAndBadFilesRefused) {
  ScratchDir dir;
  // One byte of U8 before an F32: the float starts at an odd offset.
  std::string data(1, '\x05');
  const float value = 1.5f;
  data.append(reinterpret_cast<const char*>(&value), 4);
  std::string header = R"({"u":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"f":{"dtype":"F32","shape":[1],"data_offsets":[1,5]}})";
  header.append((8 - (8 + header.size()) % 8) % 8, ' ');
  write_raw_safetensors(dir.file("odd.safetensors"), header, data);
  const MappedSafetensors mapped(dir.file("odd.safetensors"));
  EXPECT_EQ(mapped.tensors().at("f").item<float>(), 1.5f);
  EXPECT_EQ(mapped.tensors().at("u").item<uint8_t>(), 5);
  write_bytes(dir.file("junk.safetensors"), "junk junk junk");
  EXPECT_TRUE(Contains(error_of([&] { MappedSafetensors bad(dir.file("junk.safetensors")); }), "junk.safetensors"));
  EXPECT_TRUE(Contains(error_of([&] { MappedSafetensors bad(dir.file("none.safetensors")); }), "cannot open"));
}

TEST(SkipInitialization, RandomFillsLeaveTensorsAloneOnlyWhileAlive) {
  torch::Tensor t = torch::full({64}, 7.0);
  {
    const SkipInitialization skip;
    t.uniform_();
    t.normal_();
    torch::nn::init::kaiming_uniform_(t.view({8, 8}));
    EXPECT_TRUE(torch::equal(t, torch::full({64}, 7.0)));
    EXPECT_TRUE(torch::equal(t + 1, torch::full({64}, 8.0))) << "every other op runs";
    torch::nn::Linear linear(4, 3);  // constructs, with whatever the memory held
    EXPECT_EQ(linear->weight.sizes(), (std::vector<int64_t>{3, 4}));
  }
  t.uniform_();
  EXPECT_FALSE(torch::equal(t, torch::full({64}, 7.0)));
  EXPECT_LT(t.max().item<double>(), 1.0);
}

}  // namespace
}  // namespace automm
