#include <algorithm>
#include <cmath>

#include "optim/optim.h"

namespace automm {

double LrSchedule::lr_at(int64_t step, double base_lr) const {
  if (step < warmup_steps) return base_lr * static_cast<double>(step) / static_cast<double>(warmup_steps);
  const double span = static_cast<double>(std::max<int64_t>(total_steps - warmup_steps, 1));
  const double progress = std::min(1.0, static_cast<double>(step - warmup_steps) / span);
  if (name == "cosine_decay") return base_lr * 0.5 * (1.0 + std::cos(M_PI * progress));
  if (name == "linear_decay") return base_lr * (1.0 - progress);
  if (name == "polynomial_decay") {
    if (base_lr <= end_lr) return base_lr;  // as transformers: never raise the rate
    return (base_lr - end_lr) * (1.0 - progress) + end_lr;  // power 1
  }
  // multi_step: gamma 0.1 at epochs 30 and 55.
  const int64_t epoch = step / std::max<int64_t>(steps_per_epoch, 1);
  return base_lr * (epoch >= 55 ? 0.01 : epoch >= 30 ? 0.1 : 1.0);
}

LrSchedule make_schedule(const Config& config, int64_t total_steps, int64_t steps_per_epoch) {
  LrSchedule schedule;
  schedule.name = config.get_string("optim.lr_schedule");
  schedule.total_steps = std::max<int64_t>(total_steps, 1);
  schedule.steps_per_epoch = steps_per_epoch;
  schedule.end_lr = config.get_double("optim.end_lr");
  const Json& warmup = config.get("optim.warmup_steps");
  if (warmup.is_number_integer()) {
    schedule.warmup_steps = warmup.get<int64_t>();
  } else {
    const double fraction = warmup.get<double>();
    if (fraction >= 1.0)
      throw std::invalid_argument("optim.warmup_steps = " + warmup.dump() +
                                  ": a float is a fraction of the total steps and must be < 1; "
                                  "write an integer for a step count");
    schedule.warmup_steps = static_cast<int64_t>(fraction * static_cast<double>(schedule.total_steps));
  }
  return schedule;
}

}  // namespace automm
