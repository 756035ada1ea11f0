// A predictor folder's predictor.json or processors.json (the first byte picks
// which), beside the model.safetensors of a small tabular predictor fitted at start-up:
// MultiModalPredictor::load, then a prediction when it loads.
#include "automm/predictor.h"
#include "fuzz_util.h"

namespace {

namespace fs = std::filesystem;

automm::Table example_table(size_t rows) {
  automm::Column x("x"), color("color"), label("label");
  for (size_t i = 0; i < rows; ++i) {
    x.push(std::to_string(static_cast<double>(i % 17) / 4.0), true);
    color.push(i % 3 == 0 ? "red" : i % 3 == 1 ? "green" : "blue", true);
    label.push(i % 17 > 8 ? "yes" : "no", true);
  }
  automm::Table table;
  table.add_column(std::move(x));
  table.add_column(std::move(color));
  table.add_column(std::move(label));
  return table;
}

struct Template {
  std::string folder;
  std::string predictor_json, processors_json;
};

const Template& fitted_template() {
  static const Template t = [] {
    Template out;
    const fs::path fitted = automm::fuzz::scratch_dir() / "fitted";
    automm::MultiModalPredictor predictor({.label = "label", .path = fitted.string()});
    automm::FitOptions options;
    options.hyperparameters = {{"optim.max_epochs", 1}};
    predictor.fit(example_table(60), options);
    const auto read = [](const fs::path& path) {
      std::ifstream in(path, std::ios::binary);
      return std::string(std::istreambuf_iterator<char>(in), {});
    };
    out.predictor_json = read(fitted / "predictor.json");
    out.processors_json = read(fitted / "processors.json");
    out.folder = (automm::fuzz::scratch_dir() / "fuzzed").string();
    fs::copy(fitted, out.folder, fs::copy_options::recursive);
    return out;
  }();
  return t;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  automm::fuzz::quiet_single_thread();
  fitted_template();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const Template& t = fitted_template();
  const bool fuzz_processors = data[0] % 2 == 1;
  const std::string fuzzed = automm::fuzz::as_string(data + 1, size - 1);
  const auto write = [&](const char* name, const std::string& text) {
    std::ofstream(fs::path(t.folder) / name, std::ios::binary | std::ios::trunc) << text;
  };
  write("predictor.json", fuzz_processors ? t.predictor_json : fuzzed);
  write("processors.json", fuzz_processors ? fuzzed : t.processors_json);
  automm::fuzz::expect_result_or_error([&] {
    const automm::MultiModalPredictor predictor = automm::MultiModalPredictor::load(t.folder);
    predictor.predict(example_table(3));
  });
  return 0;
}
