// A hyperparameter YAML file (Config::merge_yaml_file), as `--config F` reads it.
#include "automm/config.h"
#include "fuzz_util.h"

AUTOMM_FUZZ_QUIET_SINGLE_THREAD()

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = automm::fuzz::scratch_file("config.yaml", data, size);
  automm::fuzz::expect_result_or_error([&] {
    automm::Config config;
    config.merge_yaml_file(path);
    config.check_supported();
    // What was accepted survives the predictor's own round trip.
    automm::Config::from_json(config.to_json());
  });
  return 0;
}
