// timm_image: one adapter per image model, holding its architecture and its
// image processor (AutoMM's transforms and normalisation).
#include "automm/log.h"
#include "config/json_text.h"

#include "data/image/image_processor.h"
#include "models/image/timm_checkpoint.h"
#include "modalities/families.h"

namespace automm {
namespace {

class ImageModality : public Modality {
 public:
  ImageModality(std::string name, ImageModelSpec spec, std::shared_ptr<const ImageProcessor> processor)
      : name_(std::move(name)), spec_(std::move(spec)), processor_(std::move(processor)) {}

  const std::string& name() const override { return name_; }
  std::string family() const override { return "timm_image"; }
  std::vector<std::string> columns() const override {
    std::vector<std::string> names;
    for (const auto& [column, is_path] : processor_->columns()) names.push_back(column);
    return names;
  }
  std::shared_ptr<const ModelInputs> process(const Table& table, bool training,
                                             std::vector<std::string>* warnings) const override {
    return processor_->transform(table, table_folder(table));
  }
  void describe(ModelContext& context) const override { context.image_models[name_] = spec_; }
  std::optional<std::vector<size_t>> usable_rows(const Table& table) const override {
    if (!processor_->options().skip_invalid) return std::nullopt;
    return processor_->readable_rows(*processor_->transform(table, table_folder(table)));
  }

  nlohmann::json save(const std::string& folder, bool standalone) const override {
    nlohmann::json state = image_options_to_json(processor_->options());
    state["model"] = name_;
    state["architecture"] = spec_.architecture;
    state["columns"] = processor_->columns();
    return state;
  }

 private:
  std::string name_;
  ImageModelSpec spec_;  // weights: the pretrained file at fit time, "" once the predictor holds them
  std::shared_ptr<const ImageProcessor> processor_;
};

}  // namespace

ModalityFamily timm_image_family() {
  ModalityFamily family;
  family.name = "timm_image";
  family.models = {"timm_image"};
  family.per_model = true;
  family.column_types = {ColumnType::kImagePath, ColumnType::kImageBytes};
  family.fit = [](const ModalityFitInputs& in) -> std::unique_ptr<Modality> {
    const std::vector<std::pair<std::string, bool>> columns = image_column_pairs(*in.column_types);
    const ResolvedImageModel model =
        resolve_timm_checkpoint(in.config->get_string("model.timm_image.checkpoint_name"), in.pretrained);
    if (in.verbose) log_message(LogLevel::kInfo, "automm: " + in.name + " = " + model.architecture + ", " + model.source);
    return std::make_unique<ImageModality>(
        in.name, ImageModelSpec{model.architecture, model.weights},
        ImageProcessor::create(in.name, columns,
                               image_processor_options(*in.config, "model.timm_image", model.info.image_size, model.info.interpolation)));
  };
  family.load = [](const ModalityLoadInputs& in) -> std::unique_ptr<Modality> {
    const nlohmann::json& s = in.state;
    const ImageProcessorOptions options = image_options_from_json(s, "processors.json: image modality");
    return std::make_unique<ImageModality>(
        in.name, ImageModelSpec{s.at("architecture").get<std::string>(), ""},
        ImageProcessor::create(in.name, s.at("columns").get<std::vector<std::pair<std::string, bool>>>(), options));
  };
  return family;
}

}  // namespace automm
