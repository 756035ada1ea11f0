// The learner of table problems (AutoMM's learners/default.py): one target per
// row read by its task, the modality adapters of the selected backbones, one
// fused network. fit() and read() build the network through the same build().
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/mixup.h"
#include "data/processors.h"
#include "learners/distillation.h"
#include "learners/fit_report.h"
#include "learners/learner.h"
#include "learners/placement.h"
#include "learners/trainer.h"
#include "modalities/modality.h"
#include "models/multimodal_net.h"
#include "tasks/task.h"

namespace automm {

class DefaultLearner : public Learner {
 public:
  explicit DefaultLearner(PredictorOptions options);
  ~DefaultLearner() override;

  void fit(const Table& train, const FitOptions& options, const Learner* teacher) override;
  Predictions predict(const Table& data) const override;
  torch::Tensor predict_proba(const Table& data, bool as_multiclass) const override;
  std::map<std::string, double> evaluate(const Table& data, const std::vector<std::string>& metrics) const override;
  torch::Tensor extract_embedding(const Table& data) const override;

  void export_model(const Table& example, const std::string& out,
                    const ExportOptions& options) const override;                           // learner_export.cpp
  void write(const std::string& folder, bool standalone, const Json& extra) const override;  // learner_files.cpp
  void read(const std::string& folder, const Json& meta, bool resume) override;             // learner_files.cpp
  void relocate(const std::string& folder) override;

  bool fitted() const override { return fitted_; }
  torch::Tensor head_outputs(const Table& data) const override;
  torch::Tensor classify_features(const torch::Tensor& features) const override;
  Json fit_summary() const override;
  std::string problem_type() const override;
  std::string eval_metric() const override { return eval_metric_; }
  std::vector<std::string> classes() const override;
  std::map<std::string, std::string> column_types() const override;
  const Config& config() const override { return config_; }
  PredictorOptions& options() override { return options_; }
  const PredictorOptions& options() const override { return options_; }
  bool lead() const override { return dist_.lead(); }

 private:
  void require_fitted(const char* what) const;
  void warn(const std::string& message) const;
  // The network for the fitted task and adapters. pretrained_weights: backbones
  // start from their checkpoints (a new fit), else from random weights that a
  // saved state then replaces.
  void build(bool pretrained_weights);
  // optim.peft: adds the method's adapters to the pretrained backbones of the
  // built network and, for training, freezes what the method does not train.
  // Returns a line for the fit log ("" without PEFT).
  std::string attach_peft(bool for_training);
  // data.mixup: the batch transform and the log lines of the trainer. Throws
  // outside classification and without an image model.
  void set_up_mixup(const MixupOptions& mixup, TrainOptions& train_options) const;
  // Knowledge distillation from `teacher`: checks it matches, adds its outputs on
  // the training rows to `train_data`'s targets, registers the feature adaptor
  // on the network (kDistillationAdaptor, removed after training) and sets the
  // trainer's loss.
  std::unique_ptr<Distiller> set_up_distillation(const Learner& teacher, const Table& train_table,
                                                 Dataset& train_data, TrainOptions& train_options);
  // The rows of `data` that have targets; how many were dropped goes to `dropped`.
  Table rows_with_targets(const Table& data, size_t* dropped) const;
  // Rows every adapter can use (data.image.missing_value_strategy = skip);
  // `what` names the table in the warning.
  Table usable_rows(const Table& data, const std::string& what) const;
  // The adapters' inputs for every row (and the task's targets when asked);
  // `training` keeps what training-time augmentation needs.
  Dataset process(const Table& data, bool with_targets, bool training = false) const;
  // Head outputs, or features, for every row.
  torch::Tensor outputs(const Dataset& data, bool features = false) const;
  // Warns about what `data`'s modalities could not read (unreadable images).
  void report_problems(const Dataset& data, const std::string& what) const;
  // Intra-op threads for inference on `rows` rows: every core for text and image
  // models, else by the parameters times the rows in a batch (tiny tabular nets
  // run on one thread).
  int inference_threads(int64_t rows) const;
  // Every model reads numerical / categorical columns: no text or image backbone.
  bool tabular_only() const;
  // What learning_curve.svg marks: the best validation check, why the fit stopped.
  CurveMarks curve_marks() const;
  // Where an unfinished fit keeps its state: <path>/resume.
  std::string resume_folder() const;
  // Where the adapters keep their files during a fit: resume_folder() on rank 0,
  // a temporary folder of its own on other data-parallel ranks.
  std::string work_folder();

  PredictorOptions options_;
  Config config_;
  bool fitted_ = false;
  std::unique_ptr<Task> task_;
  std::string eval_metric_, validation_metric_;
  ColumnTypes column_types_;
  std::vector<std::string> model_names_;
  std::vector<std::unique_ptr<Modality>> modalities_;
  MultiModalNet net_{nullptr};
  Json summary_ = Json::object();
  Json budget_ = Json::object();  // the keys the training budget chose (training_budget.h)
  std::vector<std::string> budget_notes_;  // choices made before the budget is printed
  std::vector<LogRow> log_;
  // bf16 copies of the matmul weights for mixed-precision inference, made once.
  mutable InferenceCache inference_cache_;
  // Set by read(resume = true): the unfinished fit's options; fit() continues it.
  Json resume_fit_options_;
  DistributedEnv dist_;                 // this process's place in a data-parallel fit
  std::unique_ptr<Communicator> comm_;  // during a data-parallel fit
  std::string rank_folder_;
};

}  // namespace automm
