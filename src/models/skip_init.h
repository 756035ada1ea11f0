// Building a network whose every weight is about to be overwritten (a saved
// predictor being loaded) without drawing its random initial values first.
#pragma once

#include <c10/core/impl/LocalDispatchKeySet.h>

namespace automm {

// While alive, on this thread, LibTorch's in-place random fills (uniform_,
// normal_: what torch::nn::init's functions, module constructors and randn call)
// leave their tensors as they are. Constructing modules of BERT-base's size takes 14 ms
// instead of 1.4 s here, and the pages of weights that are then replaced are
// never touched. Every other op runs as usual. Only for modules whose every
// parameter and buffer is then assigned (the loader checks that it is).
//
// How: the guard adds the CustomRNGKeyId dispatch key (LibTorch's slot for
// custom random generators, unused otherwise) to this thread's dispatch keys;
// skip_init.cpp registers no-op kernels for the random fills under that key and
// a fallthrough for every other op.
class SkipInitialization {
 public:
  SkipInitialization();

 private:
  c10::impl::IncludeDispatchKeyGuard include_;
};

}  // namespace automm
