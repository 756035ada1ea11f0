#include "kernels/packed_linear.h"

#include <atomic>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include <ATen/autocast_mode.h>
#include <oneapi/dnnl/dnnl.hpp>
#include <torch/csrc/jit/frontend/tracer.h>

namespace automm::kernels {

torch::Tensor apply_epilogue(Epilogue epilogue, const torch::Tensor& y) {
  switch (epilogue) {
    case Epilogue::kNone: return y;
    case Epilogue::kGelu: return torch::gelu(y);
    case Epilogue::kGeluTanh: return torch::gelu(y, "tanh");
    case Epilogue::kRelu: return torch::relu(y);
    case Epilogue::kSilu: return torch::silu(y);
    case Epilogue::kQuickGelu: return y * torch::sigmoid(1.702 * y);
    case Epilogue::kTanh: return torch::tanh(y);
  }
  return y;
}

namespace {

using dnnl::memory;
using DataType = memory::data_type;
using Tag = memory::format_tag;

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// The row count the packed layout is chosen for. oneDNN's brgemm kernels accept
// the layout chosen at 128 rows for every row count (checked from 1 to 384 rows,
// where it was also faster than the plain layout at each).
constexpr int64_t kPackingRows = 128;
// Primitives kept per weight (one per row count and epilogue seen).
constexpr size_t kMaxPrimitives = 64;

// A tensor's contents as the cache sees them: the same memory, alive, unchanged
// since. Views share their base's storage and version counter, so a weight
// viewed anew on each call (a convolution's as a matrix) still hits.
struct TensorStamp {
  c10::weak_intrusive_ptr<c10::StorageImpl> storage{c10::intrusive_ptr<c10::StorageImpl>()};
  const void* data = nullptr;
  std::vector<int64_t> sizes, strides;
  uint32_t version = 0;

  static uint32_t version_of(const torch::Tensor& t) {
    // Inference tensors keep no version counter; they change only inside inference
    // mode, where a model's weights are not trained.
    return t.is_inference() ? 0 : t._version();
  }
  static TensorStamp of(const torch::Tensor& t) {
    TensorStamp stamp;
    if (!t.defined()) return stamp;
    stamp.storage = t.storage().getWeakStorageImpl();
    stamp.data = t.data_ptr();
    stamp.sizes = t.sizes().vec();
    stamp.strides = t.strides().vec();
    stamp.version = version_of(t);
    return stamp;
  }
  bool matches(const torch::Tensor& t) const {
    if (!t.defined()) return data == nullptr;
    return !storage.expired() && storage._unsafe_get_target() == t.storage().unsafeGetStorageImpl() &&
           data == t.data_ptr() && t.sizes() == c10::IntArrayRef(sizes) && t.strides() == c10::IntArrayRef(strides) &&
           version == version_of(t);
  }
};

struct PrimitiveKey {
  int64_t rows;
  Epilogue epilogue;
  bool residual;
  bool operator<(const PrimitiveKey& other) const {
    return std::tie(rows, epilogue, residual) < std::tie(other.rows, other.epilogue, other.residual);
  }
};

// A matmul for one row count and epilogue, with the scratchpad size it needs. The
// scratchpad is the caller's (scratchpad_mode::user): in oneDNN's default mode it
// is shared by all primitives, which may then run only on the thread that built
// them, and predictions run on many threads (serve, Python).
struct Matmul {
  dnnl::matmul primitive;
  memory::desc scratchpad;
};

struct PackedWeight {
  TensorStamp weight, bias;
  DataType type = DataType::f32;
  int64_t in = 0, out = 0;
  memory packed;                 // the weight, [in, out] in oneDNN's blocked layout
  torch::Tensor bias_f32;        // [1, out] fp32, or undefined
  std::mutex mutex;              // guards primitives
  std::map<PrimitiveKey, std::shared_ptr<Matmul>> primitives;  // null: oneDNN offers only a reference kernel
};

struct Cache {
  std::mutex mutex;
  std::unordered_map<const void*, std::shared_ptr<PackedWeight>> entries;  // by the weight's data pointer
  int64_t calls = 0;
  int64_t packings = 0;
};

Cache& cache() {
  static Cache* instance = new Cache();  // never destroyed: other statics' destructors may still predict
  return *instance;
}

std::atomic<int> g_enabled{-1};  // -1: not read from the environment yet

void sweep_expired(Cache& c) {
  for (auto it = c.entries.begin(); it != c.entries.end();) {
    it = it->second->weight.storage.expired() ? c.entries.erase(it) : std::next(it);
  }
}

DataType dnnl_type(torch::ScalarType type) { return type == torch::kBFloat16 ? DataType::bf16 : DataType::f32; }

std::shared_ptr<PackedWeight> pack(const torch::Tensor& weight, const torch::Tensor& bias, torch::ScalarType type) {
  auto entry = std::make_shared<PackedWeight>();
  entry->weight = TensorStamp::of(weight);
  entry->bias = TensorStamp::of(bias);
  entry->type = dnnl_type(type);
  entry->out = weight.size(0);
  entry->in = weight.size(1);
  const memory::dim in = entry->in, out = entry->out;
  const memory::desc any({in, out}, entry->type, Tag::any);
  const dnnl::matmul::primitive_desc layout(
      dnnl::matmul::desc(memory::desc({kPackingRows, in}, entry->type, Tag::ab), any,
                         memory::desc({kPackingRows, out}, entry->type, Tag::ab)),
      cpu_engine());
  entry->packed = memory(layout.weights_desc(), cpu_engine());
  // W [out, in] row-major is [in, out] with the ba tag; the reorder also converts
  // fp32 weights to bf16 under autocast.
  const torch::Tensor source = weight.contiguous();
  memory plain(memory::desc({in, out}, dnnl_type(source.scalar_type()), Tag::ba), cpu_engine(), source.data_ptr());
  dnnl::stream stream(cpu_engine());
  dnnl::reorder(plain, entry->packed).execute(stream, plain, entry->packed);
  stream.wait();
  if (bias.defined()) entry->bias_f32 = bias.detach().to(torch::kFloat).contiguous().view({1, out});
  return entry;
}

std::shared_ptr<PackedWeight> packed_weight(const torch::Tensor& weight, const torch::Tensor& bias,
                                            torch::ScalarType type) {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  if (++c.calls % 1024 == 0) sweep_expired(c);
  auto it = c.entries.find(weight.data_ptr());
  if (it != c.entries.end() && it->second->weight.matches(weight) && it->second->bias.matches(bias) &&
      it->second->type == dnnl_type(type)) {
    return it->second;
  }
  sweep_expired(c);
  auto entry = pack(weight, bias, type);
  ++c.packings;
  c.entries[weight.data_ptr()] = entry;
  return entry;
}

void append_epilogue(dnnl::post_ops& ops, Epilogue epilogue) {
  using dnnl::algorithm;
  switch (epilogue) {
    case Epilogue::kNone: return;
    case Epilogue::kGelu: ops.append_eltwise(1.f, algorithm::eltwise_gelu_erf, 0.f, 0.f); return;
    case Epilogue::kGeluTanh: ops.append_eltwise(1.f, algorithm::eltwise_gelu_tanh, 0.f, 0.f); return;
    case Epilogue::kRelu: ops.append_eltwise(1.f, algorithm::eltwise_relu, 0.f, 0.f); return;
    case Epilogue::kSilu: ops.append_eltwise(1.f, algorithm::eltwise_swish, 1.f, 0.f); return;
    case Epilogue::kQuickGelu: ops.append_eltwise(1.f, algorithm::eltwise_swish, 1.702f, 0.f); return;
    case Epilogue::kTanh: ops.append_eltwise(1.f, algorithm::eltwise_tanh, 0.f, 0.f); return;
  }
}

std::shared_ptr<Matmul> primitive_for(PackedWeight& entry, const PrimitiveKey& key) {
  std::lock_guard<std::mutex> lock(entry.mutex);
  auto it = entry.primitives.find(key);
  if (it != entry.primitives.end()) return it->second;
  if (entry.primitives.size() >= kMaxPrimitives) entry.primitives.clear();
  const memory::desc rows_out({key.rows, entry.out}, entry.type, Tag::ab);
  dnnl::post_ops ops;
  append_epilogue(ops, key.epilogue);
  if (key.residual) ops.append_binary(dnnl::algorithm::binary_add, rows_out);
  dnnl::primitive_attr attr;
  attr.set_post_ops(ops);
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  const memory::desc src({key.rows, entry.in}, entry.type, Tag::ab);
  const auto desc = entry.bias_f32.defined()
                        ? dnnl::matmul::desc(src, entry.packed.get_desc(),
                                             memory::desc({1, entry.out}, DataType::f32, Tag::ab), rows_out)
                        : dnnl::matmul::desc(src, entry.packed.get_desc(), rows_out);
  std::shared_ptr<Matmul> primitive;
  try {
    dnnl::matmul::primitive_desc pd(desc, attr, cpu_engine());
    // A reference kernel would be slower than ATen's path.
    if (std::string(pd.impl_info_str()).find("ref") == std::string::npos) {
      primitive = std::make_shared<Matmul>(Matmul{dnnl::matmul(pd), pd.scratchpad_desc()});
    }
  } catch (const dnnl::error&) {
    // No kernel takes this combination here: ATen runs it.
  }
  entry.primitives.emplace(key, primitive);
  return primitive;
}

bool records_autograd(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                      const torch::Tensor& residual) {
  if (!torch::GradMode::is_enabled()) return false;
  for (const auto* t : {&x, &weight, &bias, &residual}) {
    if (t->defined() && t->requires_grad()) return true;
  }
  return false;
}

// The dtype the matmul runs in, or Undefined when the operands are not served.
torch::ScalarType compute_type(const torch::Tensor& x, const torch::Tensor& weight) {
  const auto xt = x.scalar_type(), wt = weight.scalar_type();
  const bool floats = (xt == torch::kFloat || xt == torch::kBFloat16) && (wt == torch::kFloat || wt == torch::kBFloat16);
  if (!floats) return torch::ScalarType::Undefined;
  if (at::autocast::is_cpu_enabled()) {
    return at::autocast::get_autocast_cpu_dtype() == torch::kBFloat16 ? torch::kBFloat16
                                                                      : torch::ScalarType::Undefined;
  }
  return xt == wt ? xt : torch::ScalarType::Undefined;
}

}  // namespace

bool packed_linear_enabled() {
  int enabled = g_enabled.load();
  if (enabled < 0) {
    const char* value = std::getenv("AUTOMM_PACKED_LINEAR");
    enabled = value != nullptr && std::string(value) == "0" ? 0 : 1;
    g_enabled.store(enabled);
  }
  return enabled == 1;
}

void set_packed_linear_enabled(bool enabled) {
  g_enabled.store(enabled ? 1 : 0);
  if (!enabled) {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    c.entries.clear();
  }
}

int64_t packed_weight_count() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  sweep_expired(c);
  return static_cast<int64_t>(c.entries.size());
}

int64_t packing_count() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return c.packings;
}

torch::Tensor packed_linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                            Epilogue epilogue, const torch::Tensor& residual) {
  if (!packed_linear_enabled() || torch::jit::tracer::isTracing()) return {};
  if (!x.defined() || !weight.defined() || weight.dim() != 2 || x.dim() < 1 || x.size(-1) != weight.size(1)) return {};
  for (const auto* t : {&x, &weight, &bias, &residual}) {
    if (t->defined() && (!t->device().is_cpu() || t->layout() != torch::kStrided)) return {};
  }
  if (bias.defined() && (bias.dim() != 1 || bias.size(0) != weight.size(0) || !bias.is_floating_point())) return {};
  if (records_autograd(x, weight, bias, residual)) return {};
  const torch::ScalarType type = compute_type(x, weight);
  if (type == torch::ScalarType::Undefined) return {};
  const int64_t in = weight.size(1), out = weight.size(0);
  const int64_t rows = x.numel() / in;
  if (rows == 0 || in == 0 || out == 0) return {};
  auto out_sizes = x.sizes().vec();
  out_sizes.back() = out;
  const bool fuse_residual =
      residual.defined() && residual.scalar_type() == type && residual.sizes() == c10::IntArrayRef(out_sizes);

  auto entry = packed_weight(weight, bias, type);
  auto primitive = primitive_for(*entry, {rows, epilogue, fuse_residual});
  if (!primitive) return {};

  const torch::Tensor src = x.reshape({rows, in}).to(type).contiguous();
  torch::Tensor dst = torch::empty({rows, out}, x.options().dtype(type));
  auto& engine = cpu_engine();
  const DataType dt = entry->type;
  memory src_mem(memory::desc({rows, in}, dt, Tag::ab), engine, src.data_ptr());
  memory dst_mem(memory::desc({rows, out}, dt, Tag::ab), engine, dst.data_ptr());
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src_mem}, {DNNL_ARG_WEIGHTS, entry->packed}, {DNNL_ARG_DST, dst_mem}};
  if (entry->bias_f32.defined()) {
    args.emplace(DNNL_ARG_BIAS,
                 memory(memory::desc({1, out}, DataType::f32, Tag::ab), engine, entry->bias_f32.data_ptr()));
  }
  torch::Tensor residual_rows;
  if (fuse_residual) {
    residual_rows = residual.reshape({rows, out}).contiguous();
    const int post_op = epilogue == Epilogue::kNone ? 0 : 1;  // the binary add follows the eltwise
    args.emplace(DNNL_ARG_ATTR_MULTIPLE_POST_OP(post_op) | DNNL_ARG_SRC_1,
                 memory(memory::desc({rows, out}, dt, Tag::ab), engine, residual_rows.data_ptr()));
  }
  // One scratchpad per thread, grown as needed: allocating it per call costs page faults.
  thread_local torch::Tensor scratchpad;
  const auto scratch_bytes = static_cast<int64_t>(primitive->scratchpad.get_size());
  if (scratch_bytes > 0) {
    if (!scratchpad.defined() || scratchpad.numel() < scratch_bytes)
      scratchpad = torch::empty({scratch_bytes}, torch::TensorOptions().dtype(torch::kByte));
    args.emplace(DNNL_ARG_SCRATCHPAD, memory(primitive->scratchpad, engine, scratchpad.data_ptr()));
  }
  thread_local dnnl::stream stream(engine);
  primitive->primitive.execute(stream, args);
  stream.wait();
  torch::Tensor y = dst.view(out_sizes);
  if (residual.defined() && !fuse_residual) y = y + residual;
  return y;
}

}  // namespace automm::kernels
