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
  TextModality(std::string name, std::string checkpoint, std::string folder,
               std::shared_ptr<const TextProcessor> processor)
      : name_(std::move(name)), checkpoint_(std::move(checkpoint)), folder_(std::move(folder)),
        processor_(std::move(processor)) {}

  const std::string& name() const override { return name_; }
  std::string family() const override { return "hf_text"; }
  std::vector<std::string> columns() const override { return processor_->columns(); }
  std::shared_ptr<const ModelInputs> process(const Table& table, bool training,
                                             std::vector<std::string>* warnings) const override {
    return processor_->transform(table, training);
  }
  void describe(ModelContext& context) const override { context.checkpoint_dirs[name_] = folder_; }
  void prepare_for_training() const override { processor_->prepare_for_training(); }

  nlohmann::json save(const std::string& folder, bool standalone) const override {
    nlohmann::json state = {{"model", name_}, {"columns", processor_->columns()}};
    if (standalone || is_scratch_name(checkpoint_) || checkpoint_.empty()) {
      // The tokenizer and model config travel with the predictor; the weights are in model.pt.
      copy_text_checkpoint_files(folder_, (std::filesystem::path(folder) / name_).string());
      state["checkpoint"] = "local://" + name_;
    } else {
      state["checkpoint"] = checkpoint_;
    }
    return state;
  }
  void relocate(const std::string& folder) override {
    const std::filesystem::path copy = std::filesystem::path(folder) / name_;
    if (std::filesystem::is_directory(copy)) folder_ = copy.string();
  }

 private:
  std::string name_;
  std::string checkpoint_;  // the hub id or path it came from; "" when read from a predictor folder
  std::string folder_;      // its config and tokenizer files
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
    return std::make_unique<TextModality>(in.name, checkpoint, folder,
                                          TextProcessor::create(in.name, columns, folder, read_text_model_limits(folder), *in.config));
  };
  family.load = [](const ModalityLoadInputs& in) -> std::unique_ptr<Modality> {
    // local://<model> inside the folder, or a Hugging Face id (saved with standalone=false).
    const std::string checkpoint = in.state.at("checkpoint").get<std::string>();
    const std::string folder = resolve_hf_checkpoint(checkpoint, in.folder).folder;
    const bool local = checkpoint.rfind("local://", 0) == 0;
    return std::make_unique<TextModality>(
        in.name, local ? "" : checkpoint, folder,
        TextProcessor::create(in.name, in.state.at("columns").get<std::vector<std::string>>(), folder,
                              read_text_model_limits(folder), *in.config));
  };
  return family;
}

}  // namespace automm
