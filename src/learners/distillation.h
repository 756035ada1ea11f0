// Knowledge distillation (AutoMM's optim/lit_distiller.py and
// utils/distillation.py): the student's loss mixes the task loss on the true
// labels with losses against a fitted teacher's outputs on the same rows.
//
//   loss = hard_label_weight * task loss
//        + soft_label_weight * L_soft(student logits / T, teacher logits / T)
//        + softmax_regression_weight * L_sr(teacher head(adaptor(student features)), teacher logits)
//        + output_feature_loss_weight * L_feat(adaptor(student features), teacher features)
//        + RKD(adaptor(student features), teacher features)
//
// The adaptor is a Linear from the student's embedding width to the teacher's
// (none when they match); it trains with the student and is dropped after the
// fit. The teacher runs once over the training rows before training, in
// inference mode and its own precision: its logits and features are targets of
// those rows, batched with the labels.
#pragma once

#include <string>

#include <torch/torch.h>

#include "automm/config.h"
#include "data/batch.h"
#include "learners/learner.h"
#include "models/multimodal_net.h"

namespace automm {

// The Targets entries a distilled fit adds for every training row.
constexpr const char* kTeacherLogits = "teacher_logits";              // in the student's label space
constexpr const char* kTeacherHeadOutputs = "teacher_head_outputs";  // the teacher's own outputs
constexpr const char* kTeacherFeatures = "teacher_features";
// The name of the feature adaptor on the student's network while it trains.
constexpr const char* kDistillationAdaptor = "distillation_adaptor";

struct DistillerOptions {
  std::string soft_label_loss_type;           // cross_entropy or mse ("" resolved by problem type)
  std::string softmax_regression_loss_type;   // likewise
  std::string output_feature_loss_type;       // mse or cosine
  double temperature = 5.0;
  double hard_label_weight = 0.1;
  double soft_label_weight = 1.0;
  double softmax_regression_weight = 0.0;
  double output_feature_loss_weight = 0.01;
  double rkd_distance_loss_weight = 0.0;
  double rkd_angle_loss_weight = 0.0;

  static DistillerOptions from(const Config& config, bool regression);
  // Whether any term reads the student's features.
  bool uses_features() const;
};

class Distiller {
 public:
  // `teacher` must outlive the distiller.
  Distiller(DistillerOptions options, const Learner& teacher, int64_t student_dim, int64_t teacher_dim);
  // Registered on the student's network while it trains; null when the widths match.
  torch::nn::Linear adaptor() const { return adaptor_; }
  const DistillerOptions& options() const { return options_; }
  // The whole loss of a training batch, from the task loss on its labels.
  torch::Tensor loss(const torch::Tensor& task_loss, const NetOutput& out, const Targets& targets) const;

 private:
  torch::Tensor adapted(const torch::Tensor& features) const;

  DistillerOptions options_;
  const Learner* teacher_;
  torch::nn::Linear adaptor_{nullptr};
};

}  // namespace automm
