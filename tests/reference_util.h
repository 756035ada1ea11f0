// Python references run on tensors, shared by the parity tests whose inputs
// are generated in C++ (box ops, YOLOX's head, segmentation metrics).
#pragma once

#include <exception>
#include <string>

#include "automm/weights_io.h"
#include "test_util.h"

#ifndef AUTOMM_SOURCE_DIR
#include "automm_test_paths.h"
#endif

namespace automm::testing {

// Writes `inputs` to IN.safetensors in a temporary folder, runs
// `/usr/bin/python3 <source dir>/<script> IN OUT` and returns OUT's tensors.
// *error is "" on success, else what failed (with the script's log).
inline StateDict run_tensor_reference(const std::string& script, const StateDict& inputs, std::string* error) {
  TempDir dir;
  try {
    save_safetensors(inputs, dir.file("in.safetensors"));
  } catch (const std::exception& e) {
    *error = std::string("writing the inputs failed: ") + e.what();
    return {};
  }
  *error = run_reference_command("/usr/bin/python3 '" + std::string(AUTOMM_SOURCE_DIR) + "/" + script + "' '" +
                                     dir.file("in.safetensors") + "' '" + dir.file("out.safetensors") + "'",
                                 dir.file("reference.log"));
  if (!error->empty()) return {};
  try {
    return load_safetensors(dir.file("out.safetensors"));
  } catch (const std::exception& e) {
    *error = std::string("reading the reference failed: ") + e.what();
  }
  return {};
}

}  // namespace automm::testing

// In a test: `ref` = reference(); skips when the Python reference cannot run,
// fails when it ran and failed.
#define REQUIRE_REFERENCE(ref)                                   \
  const Reference& ref = reference();                            \
  if (!ref.skip_reason.empty()) GTEST_SKIP() << ref.skip_reason; \
  ASSERT_TRUE(ref.error.empty()) << ref.error
