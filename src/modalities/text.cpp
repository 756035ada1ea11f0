// hf_text: one adapter per text model (hf_text, hf_text_2), holding its
// checkpoint folder (config.json and tokenizer files) and its text processor.
#include <filesystem>
#include <iostream>

#include "checkpoints/hf_checkpoint.h"
#include "data/text/scratch_checkpoint.h"
#include "data/text/text_processor.h"
#include "modalities/families.h"
#include "models/text/text_encoder.h"

namespace automm {
namespace {

class TextModality : public Modality {
 public:
  TextModality(CheckpointFolder files, std::shared_ptr<const TextProcessor> processor)
      : files_(std::move(files)), processor_(std::move(processor)) {}

  const std::string& name() const override { return files_.name; }
  std::string family() const override { return "hf_text"; }
  std::vector<std::string> columns() const override { return processor_->columns(); }
  std::shared_ptr<const ModelInputs> process(const Table& table, bool training,
                                             std::vector<std::string>* warnings) const override {
    return processor_->transform(table, training);
  }
  void describe(ModelContext& context) const override { context.checkpoint_dirs[files_.name] = files_.folder; }
  void prepare_for_training() const override { processor_->prepare_for_training(); }

  nlohmann::json save(const std::string& folder, bool standalone) const override {
    return {{"model", files_.name}, {"columns", processor_->columns()}, {"checkpoint", files_.save(folder, standalone)}};
  }
  void relocate(const std::string& folder) override { files_.relocate(folder); }

 private:
  CheckpointFolder files_;
  std::shared_ptr<const TextProcessor> processor_;
};

std::string scratch_hint() {
  return "\nWithout a pretrained checkpoint, text columns can train from scratch: set "
         "model.hf_text.checkpoint_name to one of scratch:bert-tiny, scratch:bert-mini, scratch:bert-small, "
         "scratch:bert-medium, scratch:bert-base";
}

}  // namespace

ModalityFamily hf_text_family() {
  ModalityFamily family;
  family.name = "hf_text";
  family.models = {"hf_text"};
  family.per_model = true;
  family.column_types = {ColumnType::kText};
  family.fit = [](const ModalityFitInputs& in) -> std::unique_ptr<Modality> {
    const std::vector<std::string> columns = columns_of_type(*in.column_types, ColumnType::kText);
    const std::string checkpoint = in.config->get_string("model.hf_text.checkpoint_name");
    std::string folder;
    if (is_scratch_name(checkpoint)) {
      std::vector<std::string> texts;
      for (const std::string& column_name : columns) {
        const Column& column = in.train->column(column_name);
        for (size_t r = 0; r < column.size(); ++r)
          if (!column.is_missing(r)) texts.push_back(column.text(r));
      }
      folder = (std::filesystem::path(in.work_folder) / in.name).string();
      write_scratch_checkpoint(checkpoint, texts, folder);
    } else {
      try {
        folder = resolve_hf_checkpoint(checkpoint).folder;
      } catch (const std::exception& e) {
        throw std::runtime_error(std::string(e.what()) + scratch_hint());
      }
    }
    return std::make_unique<TextModality>(
        CheckpointFolder{in.name, checkpoint, folder},
        TextProcessor::create(in.name, columns, folder, read_text_model_limits(folder), *in.config));
  };
  family.load = [](const ModalityLoadInputs& in) -> std::unique_ptr<Modality> {
    CheckpointFolder files = CheckpointFolder::load(in.name, in.state.at("checkpoint").get<std::string>(), in.folder);
    auto processor = TextProcessor::create(in.name, in.state.at("columns").get<std::vector<std::string>>(),
                                           files.folder, read_text_model_limits(files.folder), *in.config);
    return std::make_unique<TextModality>(std::move(files), std::move(processor));
  };
  return family;
}

}  // namespace automm
