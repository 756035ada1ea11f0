// A safetensors file, header and body (load_safetensors).
#include "automm/weights_io.h"
#include "fuzz_util.h"

AUTOMM_FUZZ_QUIET_SINGLE_THREAD()

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = automm::fuzz::scratch_file("model.safetensors", data, size);
  automm::fuzz::expect_result_or_error([&] {
    const automm::StateDict tensors = automm::load_safetensors(path);
    // A loaded tensor owns readable memory of its declared size.
    for (const auto& [name, tensor] : tensors) {
      if (!tensor.is_contiguous()) std::abort();
      if (tensor.numel() > 0) tensor.flatten()[-1].item();
    }
  });
  return 0;
}
