#include "models/skip_init.h"

#include <torch/library.h>
#include <torch/torch.h>

namespace automm {
namespace {

at::Tensor& keep_uniform(at::Tensor& self, double, double, c10::optional<at::Generator>) { return self; }
at::Tensor& keep_normal(at::Tensor& self, double, double, c10::optional<at::Generator>) { return self; }

}  // namespace

// In this file, so that linking SkipInitialization links the registrations too.
TORCH_LIBRARY_IMPL(_, CustomRNGKeyId, m) { m.fallback(torch::CppFunction::makeFallthrough()); }
TORCH_LIBRARY_IMPL(aten, CustomRNGKeyId, m) {
  m.impl("uniform_", keep_uniform);
  m.impl("normal_", keep_normal);
}

SkipInitialization::SkipInitialization() : include_(c10::DispatchKey::CustomRNGKeyId) {}

}  // namespace automm
