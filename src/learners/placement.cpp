#include <cstdlib>
#include <stdexcept>
#include <thread>

#include "automm/learner.h"

namespace automm {

int configure_threads() {
  int threads = static_cast<int>(std::thread::hardware_concurrency());
  for (const char* name : {"AUTOMM_NUM_THREADS", "OMP_NUM_THREADS"}) {
    if (const char* value = std::getenv(name)) {
      const int n = std::atoi(value);
      if (n > 0) {
        threads = n;
        break;
      }
    }
  }
  threads = std::max(threads, 1);
  torch::set_num_threads(threads);
  return threads;
}

Placement resolve_placement(const Config& config) {
  Placement placement;
  const std::string accelerator = config.get_string("env.accelerator");
  const int64_t num_gpus = config.get_int("env.num_gpus");
  const bool cuda = torch::cuda::is_available();
  if (accelerator == "gpu" && !cuda)
    throw std::invalid_argument("env.accelerator = gpu, but this LibTorch build sees no CUDA device; "
                                "use cpu or auto");
  if (num_gpus > 1 || (num_gpus == -1 && cuda && torch::cuda::device_count() > 1))
    throw std::invalid_argument("training on more than one device is not supported yet; set env.num_gpus to 1");
  if (cuda && accelerator != "cpu" && num_gpus != 0) placement.device = torch::Device(torch::kCUDA, 0);
  const std::string precision = config.get_string("env.precision");
  if (precision == "64") {
    placement.dtype = torch::kFloat64;
  } else if (precision == "32") {
    placement.dtype = torch::kFloat32;
  } else if (precision == "16-mixed" && placement.device.is_cpu()) {
    // AutoMM does the same: 16-bit mixed precision is a GPU mode and runs in fp32 on CPU.
    placement.note = "env.precision 16-mixed runs in fp32 on CPU (as AutoMM)";
  } else {
    throw std::invalid_argument("env.precision = " + precision +
                                " is not supported yet on this device: mixed and 16-bit precision "
                                "arrive with the training engine; use 32 or 64");
  }
  return placement;
}

}  // namespace automm
