// Numerical and categorical columns: one adapter each, shared by the tabular
// models that read them (numerical_mlp, categorical_mlp, ft_transformer).
#include "modalities/families.h"

namespace automm {
namespace {

// What differs between the two: the processor, the column type, and what the
// network builder is told.
struct NumericalTraits {
  using Processor = NumericalProcessor;
  static constexpr const char* kFamily = "numerical";
  static constexpr ColumnType kColumnType = ColumnType::kNumerical;
  static constexpr TabularInputs::Kind kInputs = TabularInputs::Kind::kNumerical;
  static torch::Tensor transform(const Processor& p, const Table& table, std::vector<std::string>* warnings) {
    return p.transform(table, warnings);
  }
  static void describe(const Processor& p, ModelContext& context) {
    context.num_numerical = static_cast<int64_t>(p.columns().size());
  }
};

struct CategoricalTraits {
  using Processor = CategoricalProcessor;
  static constexpr const char* kFamily = "categorical";
  static constexpr ColumnType kColumnType = ColumnType::kCategorical;
  static constexpr TabularInputs::Kind kInputs = TabularInputs::Kind::kCategorical;
  static torch::Tensor transform(const Processor& p, const Table& table, std::vector<std::string>*) {
    return p.transform(table);
  }
  static void describe(const Processor& p, ModelContext& context) {
    context.categorical_cardinalities = p.num_categories();
  }
};

template <typename Traits>
class TabularModality : public Modality {
 public:
  explicit TabularModality(typename Traits::Processor processor) : processor_(std::move(processor)) {}
  const std::string& name() const override { return name_; }
  std::string family() const override { return Traits::kFamily; }
  std::vector<std::string> columns() const override { return processor_.columns(); }
  std::shared_ptr<const ModelInputs> process(const Table& table, bool training,
                                             std::vector<std::string>* warnings) const override {
    return std::make_shared<TabularInputs>(Traits::kInputs, Traits::transform(processor_, table, warnings));
  }
  void describe(ModelContext& context) const override { Traits::describe(processor_, context); }
  nlohmann::json save(const std::string& folder, bool standalone) const override { return processor_.to_json(); }

 private:
  const std::string name_ = Traits::kFamily;
  typename Traits::Processor processor_;
};

template <typename Traits>
ModalityFamily tabular_family(std::vector<std::string> models) {
  ModalityFamily family;
  family.name = Traits::kFamily;
  family.models = std::move(models);
  family.column_types = {Traits::kColumnType};
  family.fit = [](const ModalityFitInputs& in) -> std::unique_ptr<Modality> {
    typename Traits::Processor processor;
    processor.fit(*in.train, columns_of_type(*in.column_types, Traits::kColumnType), *in.config);
    return std::make_unique<TabularModality<Traits>>(std::move(processor));
  };
  family.load = [](const ModalityLoadInputs& in) -> std::unique_ptr<Modality> {
    return std::make_unique<TabularModality<Traits>>(Traits::Processor::from_json(in.state));
  };
  return family;
}

}  // namespace

ModalityFamily numerical_family() { return tabular_family<NumericalTraits>({"numerical_mlp", "ft_transformer"}); }
ModalityFamily categorical_family() {
  return tabular_family<CategoricalTraits>({"categorical_mlp", "ft_transformer"});
}

}  // namespace automm
