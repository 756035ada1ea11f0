#include "learners/distillation.h"

#include "optim/losses.h"

namespace automm {
namespace F = torch::nn::functional;

DistillerOptions DistillerOptions::from(const Config& config, bool regression) {
  DistillerOptions o;
  const std::string automatic = regression ? "mse" : "cross_entropy";
  o.soft_label_loss_type = config.get_string("distiller.soft_label_loss_type");
  if (o.soft_label_loss_type.empty()) o.soft_label_loss_type = automatic;
  o.softmax_regression_loss_type = config.get_string("distiller.softmax_regression_loss_type");
  if (o.softmax_regression_loss_type.empty()) o.softmax_regression_loss_type = automatic;
  o.output_feature_loss_type = config.get_string("distiller.output_feature_loss_type");
  o.temperature = config.get_double("distiller.temperature");
  o.hard_label_weight = config.get_double("distiller.hard_label_weight");
  o.soft_label_weight = config.get_double("distiller.soft_label_weight");
  o.softmax_regression_weight = config.get_double("distiller.softmax_regression_weight");
  o.output_feature_loss_weight = config.get_double("distiller.output_feature_loss_weight");
  o.rkd_distance_loss_weight = config.get_double("distiller.rkd_distance_loss_weight");
  o.rkd_angle_loss_weight = config.get_double("distiller.rkd_angle_loss_weight");
  if (regression && (o.soft_label_loss_type == "cross_entropy" ||
                     (o.softmax_regression_weight > 0 && o.softmax_regression_loss_type == "cross_entropy")))
    throw std::invalid_argument("distiller: cross_entropy compares class distributions; a regression student "
                                "uses mse (distiller.soft_label_loss_type / softmax_regression_loss_type)");
  return o;
}

bool DistillerOptions::uses_features() const {
  return softmax_regression_weight > 0 || output_feature_loss_weight > 0 || rkd_distance_loss_weight > 0 ||
         rkd_angle_loss_weight > 0;
}

Distiller::Distiller(DistillerOptions options, const Learner& teacher, int64_t student_dim, int64_t teacher_dim)
    : options_(std::move(options)), teacher_(&teacher) {
  if (options_.uses_features() && student_dim != teacher_dim) adaptor_ = torch::nn::Linear(student_dim, teacher_dim);
}

torch::Tensor Distiller::adapted(const torch::Tensor& features) const {
  const torch::Tensor x = features.to(torch::kFloat32);
  if (!adaptor_) return x;
  torch::nn::Linear adaptor = adaptor_;  // a holder: the module itself is not const
  return adaptor->forward(x);
}

namespace {

// "cross_entropy" against the target logits' softmax, or "mse" between the logits.
torch::Tensor logit_loss(const std::string& type, const torch::Tensor& input, const torch::Tensor& target) {
  if (type == "cross_entropy") return soft_target_cross_entropy(input, torch::softmax(target, -1));
  return F::mse_loss(input, target);
}

}  // namespace

torch::Tensor Distiller::loss(const torch::Tensor& task_loss, const NetOutput& out, const Targets& targets) const {
  const DistillerOptions& o = options_;
  torch::Tensor loss = task_loss * o.hard_label_weight;
  const torch::Tensor logits = out.logits.to(torch::kFloat32);
  if (o.soft_label_weight > 0)
    loss = loss + o.soft_label_weight * logit_loss(o.soft_label_loss_type, logits / o.temperature,
                                                   targets.at(kTeacherLogits) / o.temperature);
  if (!o.uses_features()) return loss;
  const torch::Tensor student = adapted(out.features);
  const torch::Tensor& teacher = targets.at(kTeacherFeatures);
  if (o.softmax_regression_weight > 0)
    loss = loss + o.softmax_regression_weight * logit_loss(o.softmax_regression_loss_type,
                                                           teacher_->classify_features(student).to(torch::kFloat32),
                                                           targets.at(kTeacherHeadOutputs));
  if (o.output_feature_loss_weight > 0) {
    // AutoMM's "cosine" passes the tensors to CosineEmbeddingLoss by names it does
    // not take; here it is the loss that name promises, 1 - cosine similarity.
    const torch::Tensor term = o.output_feature_loss_type == "cosine"
                                   ? (1 - F::cosine_similarity(student, teacher, F::CosineSimilarityFuncOptions().dim(1))).mean()
                                   : F::mse_loss(student, teacher);
    loss = loss + o.output_feature_loss_weight * term;
  }
  if (o.rkd_distance_loss_weight > 0 || o.rkd_angle_loss_weight > 0)
    loss = loss + rkd_loss(student, teacher, o.rkd_distance_loss_weight, o.rkd_angle_loss_weight);
  return loss;
}

}  // namespace automm
