// clip: one adapter per CLIP model, reading the table's text columns (CLIP's
// tokenizer, AutoMM's model.clip text settings) and image columns (CLIP's
// normalisation and model.clip transforms), with the checkpoint folder its
// backbone is built from.
#include <algorithm>
#include <filesystem>

#include "automm/log.h"
#include "checkpoints/hf_checkpoint.h"
#include "data/image/image_processor.h"
#include "data/text/scratch_checkpoint.h"
#include "data/text/text_processor.h"
#include "modalities/families.h"
#include "models/clip/clip_model.h"

namespace automm {
namespace {

// A CLIP model's text and image inputs for one table; either may be absent.
struct ClipInputs : ModelInputs {
  void add_to_batch(const std::vector<int64_t>& rows, const BatchPlacement& placement, std::mt19937_64* training_rng,
                    Batch& batch) const override {
    if (text) text->add_to_batch(rows, placement, training_rng, batch);
    if (images) images->add_to_batch(rows, placement, training_rng, batch);
  }
  std::vector<std::string> problems() const override { return images ? images->problems() : std::vector<std::string>{}; }

  std::shared_ptr<const TextInputs> text;
  std::shared_ptr<const ImageInputs> images;
};

// AutoMM's model.clip text settings: [bos] tokens [eos], the columns
// concatenated and trimmed jointly, at most max_text_len tokens (<= 0: the
// model's 77), no augmentation.
TextProcessorOptions clip_text_options(const Config& config, const ClipConfig& model) {
  TextProcessorOptions options;
  const int64_t model_max = model.text.max_position_embeddings;
  const int64_t requested = config.get_int("model.clip.max_text_len");
  options.sequence.max_len = requested <= 0 ? model_max : std::min(requested, model_max);
  options.sequence.insert_sep = false;
  options.sequence.text_segment_num = 1;
  options.normalize_text = config.get_bool("data.text.normalize_text");
  return options;
}

class ClipModality : public Modality {
 public:
  ClipModality(CheckpointFolder files, std::shared_ptr<const TextProcessor> text,
               std::shared_ptr<const ImageProcessor> images)
      : files_(std::move(files)), text_(std::move(text)), images_(std::move(images)) {}

  const std::string& name() const override { return files_.name; }
  std::string family() const override { return "clip"; }
  std::vector<std::string> columns() const override {
    std::vector<std::string> names = text_ ? text_->columns() : std::vector<std::string>{};
    if (images_)
      for (const auto& [column, is_path] : images_->columns()) names.push_back(column);
    return names;
  }
  std::shared_ptr<const ModelInputs> process(const Table& table, bool training,
                                             std::vector<std::string>* warnings) const override {
    // The learner checked that the table has the columns it needs; a matching
    // learner's one-sided view holds the text or the image column only.
    auto inputs = std::make_shared<ClipInputs>();
    const auto has_all = [&](const std::vector<std::string>& columns) {
      return std::all_of(columns.begin(), columns.end(), [&](const std::string& c) { return table.has_column(c); });
    };
    if (text_ && has_all(text_->columns())) inputs->text = text_->transform(table, training);
    std::vector<std::string> image_names;
    if (images_)
      for (const auto& [column, is_path] : images_->columns()) image_names.push_back(column);
    if (images_ && has_all(image_names)) inputs->images = images_->transform(table, table_folder(table));
    return inputs;
  }
  void describe(ModelContext& context) const override { context.checkpoint_dirs[files_.name] = files_.folder; }
  std::optional<std::vector<size_t>> usable_rows(const Table& table) const override {
    if (!images_ || !images_->options().skip_invalid) return std::nullopt;
    return images_->readable_rows(*images_->transform(table, table_folder(table)));
  }

  nlohmann::json save(const std::string& folder, bool standalone) const override {
    nlohmann::json state = {{"model", files_.name}, {"checkpoint", files_.save(folder, standalone)}};
    if (text_) state["text_columns"] = text_->columns();
    if (images_) {
      state["image_columns"] = images_->columns();
      state["image"] = image_options_to_json(images_->options());
    }
    return state;
  }
  void relocate(const std::string& folder) override { files_.relocate(folder); }

 private:
  CheckpointFolder files_;
  std::shared_ptr<const TextProcessor> text_;
  std::shared_ptr<const ImageProcessor> images_;
};

std::string scratch_hint() {
  return "\nWithout a pretrained checkpoint, clip can train from scratch: set model.clip.checkpoint_name to "
         "scratch:clip-tiny";
}

}  // namespace

ModalityFamily clip_family() {
  ModalityFamily family;
  family.name = "clip";
  family.models = {"clip"};
  family.per_model = true;
  family.column_types = {ColumnType::kText, ColumnType::kImagePath, ColumnType::kImageBytes};
  family.fit = [](const ModalityFitInputs& in) -> std::unique_ptr<Modality> {
    const Config& config = *in.config;
    const std::vector<std::string> text_columns = columns_of_type(*in.column_types, ColumnType::kText);
    const std::vector<std::pair<std::string, bool>> images = image_column_pairs(*in.column_types);
    const std::string checkpoint = config.get_string("model.clip.checkpoint_name");
    std::string folder;
    std::string source;
    if (is_scratch_name(checkpoint)) {
      std::vector<std::string> texts;
      for (const std::string& column_name : text_columns) {
        const Column& column = in.train->column(column_name);
        for (size_t r = 0; r < column.size(); ++r)
          if (!column.is_missing(r)) texts.push_back(column.text(r));
      }
      folder = (std::filesystem::path(in.work_folder) / in.name).string();
      const int64_t size = config.is_null("model.clip.image_size") ? 224 : config.get_int("model.clip.image_size");
      write_scratch_clip_checkpoint(checkpoint, texts, size, folder);
      source = "random weights, tokenizer learned from the training text";
    } else {
      try {
        const ResolvedCheckpoint resolved = resolve_hf_checkpoint(checkpoint);
        folder = resolved.folder;
        source = resolved.source;
      } catch (const std::exception& e) {
        throw std::runtime_error(std::string(e.what()) + scratch_hint());
      }
    }
    // model.clip.image_size other than the checkpoint's: its position embeddings are resampled.
    const ClipConfig model = ClipConfig::from_json(read_checkpoint_config(folder), config);
    if (in.verbose) log_message(LogLevel::kInfo, "automm: " + in.name + " = " + checkpoint + ", " + source);
    std::shared_ptr<const TextProcessor> text;
    if (!text_columns.empty())
      text = TextProcessor::create(in.name, text_columns, folder, "clip", clip_text_options(config, model));
    std::shared_ptr<const ImageProcessor> image;
    if (!images.empty())
      image = ImageProcessor::create(
          in.name, images, image_processor_options(config, "model.clip", model.vision.image_size, "bicubic"));
    return std::make_unique<ClipModality>(CheckpointFolder{in.name, checkpoint, folder}, text, image);
  };
  family.load = [](const ModalityLoadInputs& in) -> std::unique_ptr<Modality> {
    const nlohmann::json& s = in.state;
    CheckpointFolder files = CheckpointFolder::load(in.name, s.at("checkpoint").get<std::string>(), in.folder);
    const std::string& folder = files.folder;
    const ClipConfig model = ClipConfig::from_json(read_checkpoint_config(folder), *in.config);
    std::shared_ptr<const TextProcessor> text;
    if (s.contains("text_columns"))
      text = TextProcessor::create(in.name, s.at("text_columns").get<std::vector<std::string>>(), folder, "clip",
                                   clip_text_options(*in.config, model));
    std::shared_ptr<const ImageProcessor> image;
    if (s.contains("image_columns"))
      image = ImageProcessor::create(in.name, s.at("image_columns").get<std::vector<std::pair<std::string, bool>>>(),
                                     image_options_from_json(s.at("image"), "processors.json: clip modality"));
    return std::make_unique<ClipModality>(std::move(files), text, image);
  };
  return family;
}

}  // namespace automm
