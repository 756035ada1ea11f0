// Modality adapters: what one backbone family brings to a predictor besides
// its network. An adapter owns the family's fitted processor (scalers,
// tokenizer, image transforms), turns a table into the family's model inputs,
// tells the network builder what it needs (ModelContext), and saves its
// settings and files itself. A new family (CLIP, SAM) adds its adapter file
// and one line in the family registry (modalities/registry.cpp); the learner,
// save/load and the CLI stay as they are.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "automm/config.h"
#include "automm/table.h"
#include "data/dataset.h"
#include "data/processors.h"
#include "models/multimodal_net.h"

namespace automm {

class Modality {
 public:
  virtual ~Modality() = default;
  // The adapter's name: its model's name in model.names (hf_text, timm_image_2),
  // or the family's for inputs several models share (numerical, categorical).
  virtual const std::string& name() const = 0;
  // Its family's name in the registry (modality_families()).
  virtual std::string family() const = 0;
  // The table columns it reads.
  virtual std::vector<std::string> columns() const = 0;
  // The inputs of every row of `table`; `training` keeps what training-time
  // augmentation needs. Problems that lose nothing (a non-numeric cell read as
  // missing) go to `warnings`.
  virtual std::shared_ptr<const ModelInputs> process(const Table& table, bool training,
                                                     std::vector<std::string>* warnings) const = 0;
  // What the family's backbones read from the model context (column counts,
  // checkpoint folders, architectures).
  virtual void describe(ModelContext& context) const = 0;
  // Rows whose inputs are usable, when the family can drop rows
  // (data.image.missing_value_strategy = skip); nullopt = every row.
  virtual std::optional<std::vector<size_t>> usable_rows(const Table& table) const { return std::nullopt; }
  // Loads what training needs beyond inference (WordNet for text augmentation),
  // so a missing package fails the fit before training starts.
  virtual void prepare_for_training() const {}
  // Writes the family's files into the predictor folder `folder` and returns its
  // saved settings. standalone = false records hub ids instead of copying files
  // (AutoMM's save(standalone=False)).
  virtual nlohmann::json save(const std::string& folder, bool standalone) const = 0;
  // The predictor's files now live in `folder` (written by save): read them from there.
  virtual void relocate(const std::string& folder) {}
};

// What a family's adapter is fitted from.
struct ModalityFitInputs {
  std::string name;            // the adapter's name (see Modality::name)
  const ColumnTypes* column_types = nullptr;
  const Table* train = nullptr;  // the training rows
  const Config* config = nullptr;
  bool pretrained = true;      // PredictorOptions::pretrained
  std::string work_folder;     // where files made during the fit go (a from-scratch vocabulary)
  bool verbose = true;
};

// What a saved adapter is read back from.
struct ModalityLoadInputs {
  std::string name;
  nlohmann::json state;  // what save() returned
  std::string folder;    // the predictor folder
  const Config* config = nullptr;
};

struct ModalityFamily {
  std::string name;                  // numerical, categorical, hf_text, timm_image
  std::vector<std::string> models;   // model base names whose backbones read it
  bool per_model = false;            // one adapter per model instance, else one shared
  std::vector<ColumnType> column_types;  // the column types it reads
  std::function<std::unique_ptr<Modality>(const ModalityFitInputs&)> fit;
  std::function<std::unique_ptr<Modality>(const ModalityLoadInputs&)> load;
};

// Every family, in the order their inputs go into a batch.
const std::vector<ModalityFamily>& modality_families();
const ModalityFamily& find_modality_family(const std::string& name);

// The adapters for the selected models (model.names after selection) and the
// table's column types, fitted on the training rows: one per family a selected
// model reads and that has columns, one per model for per-model families.
std::vector<std::unique_ptr<Modality>> fit_modalities(const std::vector<std::string>& model_names,
                                                      const ModalityFitInputs& inputs);
// The modality kinds present in the column types, as select_models reads them.
ModalityPresence modality_presence(const ColumnTypes& types);

// The columns of one type, in name order.
std::vector<std::string> columns_of_type(const ColumnTypes& types, ColumnType wanted);
// The image columns, in name order: (column, true for paths, false for base64 bytes).
std::vector<std::pair<std::string, bool>> image_column_pairs(const ColumnTypes& types);

// The Hugging Face checkpoint folder a model reads its config and tokenizer
// from (hf_text, clip), and how those files travel with a predictor.
struct CheckpointFolder {
  std::string name;        // the model's name: its subfolder in a predictor folder
  std::string checkpoint;  // the hub id or path it came from; "" when read from a predictor folder
  std::string folder;      // config.json and tokenizer files

  // Copies the files into <predictor_folder>/<name> and returns "local://<name>"
  // (standalone, a scratch or folder-read checkpoint); else returns the hub id
  // (AutoMM's save(standalone=False)). The weights are in the predictor's model file.
  std::string save(const std::string& predictor_folder, bool standalone) const;
  // The files now live in <predictor_folder>/<name>, when it exists.
  void relocate(const std::string& predictor_folder);
  // What save() returned, resolved against the predictor folder (or the cache).
  static CheckpointFolder load(const std::string& name, const std::string& saved, const std::string& predictor_folder);
};
// The folder of a table's file: relative image paths resolve against it.
std::string table_folder(const Table& table);

// Saved form: [{"family": ..., "name": ..., "state": ...}, ...].
nlohmann::json save_modalities(const std::vector<std::unique_ptr<Modality>>& modalities, const std::string& folder,
                               bool standalone);
std::vector<std::unique_ptr<Modality>> load_modalities(const nlohmann::json& saved, const std::string& folder,
                                                       const Config& config);

}  // namespace automm
