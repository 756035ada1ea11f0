// The modality families and the adapters' fitting, saving and loading.
#include <algorithm>
#include <filesystem>
#include <stdexcept>

#include "checkpoints/hf_checkpoint.h"
#include "data/text/scratch_checkpoint.h"
#include "modalities/families.h"

namespace automm {

const std::vector<ModalityFamily>& modality_families() {
  // The order is the order in which inputs enter a batch.
  static const std::vector<ModalityFamily> families = {
      numerical_family(),
      categorical_family(),
      hf_text_family(),
      timm_image_family(),
      clip_family(),
  };
  return families;
}

const ModalityFamily& find_modality_family(const std::string& name) {
  for (const ModalityFamily& family : modality_families())
    if (family.name == name) return family;
  throw std::invalid_argument("unknown modality family '" + name + "'");
}

std::vector<std::string> columns_of_type(const ColumnTypes& types, ColumnType wanted) {
  std::vector<std::string> names;
  for (const auto& [name, type] : types)
    if (type == wanted) names.push_back(name);
  return names;
}

std::vector<std::pair<std::string, bool>> image_column_pairs(const ColumnTypes& types) {
  std::vector<std::pair<std::string, bool>> columns;
  for (const auto& [name, type] : types) {
    if (type == ColumnType::kImagePath) columns.emplace_back(name, true);
    if (type == ColumnType::kImageBytes) columns.emplace_back(name, false);
  }
  return columns;
}

std::string CheckpointFolder::save(const std::string& predictor_folder, bool standalone) const {
  if (!standalone && !is_scratch_name(checkpoint) && !checkpoint.empty()) return checkpoint;
  copy_text_checkpoint_files(folder, (std::filesystem::path(predictor_folder) / name).string());
  return "local://" + name;
}

void CheckpointFolder::relocate(const std::string& predictor_folder) {
  const std::filesystem::path copy = std::filesystem::path(predictor_folder) / name;
  if (std::filesystem::is_directory(copy)) folder = copy.string();
}

CheckpointFolder CheckpointFolder::load(const std::string& name, const std::string& saved,
                                        const std::string& predictor_folder) {
  // local://<model> inside the folder, or a Hugging Face id (saved with standalone=false).
  const bool local = saved.rfind("local://", 0) == 0;
  return {name, local ? "" : saved, resolve_hf_checkpoint(saved, predictor_folder).folder};
}

std::string table_folder(const Table& table) {
  const std::filesystem::path source(table.source);
  return std::filesystem::exists(source) ? source.parent_path().string() : std::string();
}

ModalityPresence modality_presence(const ColumnTypes& types) {
  ModalityPresence presence;
  for (const auto& [name, type] : types) {
    presence.numerical |= type == ColumnType::kNumerical;
    presence.categorical |= type == ColumnType::kCategorical;
    presence.text |= type == ColumnType::kText;
    presence.image |= type == ColumnType::kImagePath || type == ColumnType::kImageBytes;
  }
  return presence;
}

std::vector<std::unique_ptr<Modality>> fit_modalities(const std::vector<std::string>& model_names,
                                                      const ModalityFitInputs& inputs) {
  std::vector<std::unique_ptr<Modality>> out;
  for (const ModalityFamily& family : modality_families()) {
    std::vector<std::string> readers;  // the selected models that read this family
    for (const std::string& model : model_names)
      if (std::find(family.models.begin(), family.models.end(), model_base_name(model)) != family.models.end())
        readers.push_back(model);
    if (readers.empty()) continue;
    bool has_columns = false;
    for (const auto& [column, type] : *inputs.column_types)
      has_columns |= std::find(family.column_types.begin(), family.column_types.end(), type) !=
                     family.column_types.end();
    if (!has_columns) continue;
    std::sort(readers.begin(), readers.end());
    if (!family.per_model) readers = {family.name};
    for (const std::string& name : readers) {
      ModalityFitInputs one = inputs;
      one.name = name;
      out.push_back(family.fit(one));
    }
  }
  return out;
}

nlohmann::json save_modalities(const std::vector<std::unique_ptr<Modality>>& modalities, const std::string& folder,
                               bool standalone) {
  nlohmann::json saved = nlohmann::json::array();
  for (const auto& modality : modalities)
    saved.push_back(
        {{"family", modality->family()}, {"name", modality->name()}, {"state", modality->save(folder, standalone)}});
  return saved;
}

std::vector<std::unique_ptr<Modality>> load_modalities(const nlohmann::json& saved, const std::string& folder,
                                                       const Config& config) {
  std::vector<std::unique_ptr<Modality>> out;
  for (const nlohmann::json& entry : saved) {
    ModalityLoadInputs inputs;
    inputs.name = entry.at("name").get<std::string>();
    inputs.state = entry.at("state");
    inputs.folder = folder;
    inputs.config = &config;
    out.push_back(find_modality_family(entry.at("family").get<std::string>()).load(inputs));
  }
  return out;
}

}  // namespace automm
