#include "learners/batch_loader.h"

#include <omp.h>

namespace automm {

// omp_set_num_threads sets the calling thread's team size only.
void use_one_intra_op_thread_here() { omp_set_num_threads(1); }

}  // namespace automm
