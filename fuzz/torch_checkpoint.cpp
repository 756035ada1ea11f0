// A torch.save zip checkpoint (load_torch_checkpoint): the zip reader and the
// restricted pickle interpreter behind pytorch_model.bin and timm's .pth files.
#include "automm/weights_io.h"
#include "fuzz_util.h"

AUTOMM_FUZZ_QUIET_SINGLE_THREAD()

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = automm::fuzz::scratch_file("pytorch_model.bin", data, size);
  automm::fuzz::expect_result_or_error([&] {
    const automm::StateDict tensors = automm::load_torch_checkpoint(path);
    for (const auto& [name, tensor] : tensors)
      if (tensor.numel() > 0) tensor.flatten()[-1].item();
  });
  return 0;
}
