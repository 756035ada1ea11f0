// The Python extension module `automm._automm`: the C++ predictor and table,
// with the GIL released while they work. The pure-Python layer
// (python/automm/) turns pandas data into tables and results into pandas.
#include <charconv>
#include <chrono>
#include <cmath>
#include <optional>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "automm/log.h"
#include "automm/predictor.h"
#include "automm/table.h"

namespace py = pybind11;

namespace automm {
namespace {

// repr(float) as Python writes it: the shortest digits that read back to the
// same double, fixed notation for exponents -4..15 (with ".0" when integral),
// else d.ddde+XX. pandas' to_csv writes floats this way, so a DataFrame and
// the CSV written from it become the same table.
std::string python_float_repr(double x) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), x, std::chars_format::scientific);
  const std::string text(buffer, result.ptr);  // [-]d[.ddd]e[+-]XX
  const size_t e = text.find('e');
  const bool negative = text[0] == '-';
  std::string digits;
  for (size_t i = negative ? 1 : 0; i < e; ++i)
    if (text[i] != '.') digits += text[i];
  const int exponent = std::stoi(text.substr(e + 1));
  std::string out = negative ? "-" : "";
  if (exponent < -4 || exponent >= 16) {
    out += digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    const int magnitude = std::abs(exponent);
    out += std::string(exponent < 0 ? "e-" : "e+") + (magnitude < 10 ? "0" : "") + std::to_string(magnitude);
  } else if (exponent < 0) {
    out += "0." + std::string(static_cast<size_t>(-exponent - 1), '0') + digits;
  } else {
    const size_t integral = static_cast<size_t>(exponent) + 1;
    if (digits.size() <= integral) out += digits + std::string(integral - digits.size(), '0') + ".0";
    else out += digits.substr(0, integral) + "." + digits.substr(integral);
  }
  return out;
}

Column float_column(const std::string& name, const py::array_t<double, py::array::c_style | py::array::forcecast>& values) {
  Column column(name);
  const auto view = values.unchecked<1>();
  column.reserve(static_cast<size_t>(view.shape(0)));
  for (py::ssize_t i = 0; i < view.shape(0); ++i) {
    const double x = view(i);
    if (std::isnan(x)) column.push("", false);
    else column.push(python_float_repr(x), true);
  }
  return column;
}

Column int_column(const std::string& name, const py::array_t<int64_t, py::array::c_style | py::array::forcecast>& values) {
  Column column(name);
  const auto view = values.unchecked<1>();
  for (py::ssize_t i = 0; i < view.shape(0); ++i) column.push(std::to_string(view(i)), true);
  return column;
}

// A pandas object column: `missing` marks what pandas' isna() says is missing;
// every other cell is written as str() writes it, except floats (repr, as
// to_csv) and lists / tuples (several image paths: joined by ';').
Column object_column(const std::string& name, const py::list& values,
                     const py::array_t<bool, py::array::c_style | py::array::forcecast>& missing) {
  if (static_cast<size_t>(missing.size()) != values.size())
    throw std::invalid_argument("column '" + name + "': the missing mask and the values differ in length");
  Column column(name);
  const auto is_missing = missing.unchecked<1>();
  const auto cell_text = [&](const py::handle& item) -> std::string {
    if (py::isinstance<py::str>(item)) return item.cast<std::string>();
    if (PyFloat_Check(item.ptr())) return python_float_repr(item.cast<double>());
    return py::str(item).cast<std::string>();
  };
  for (size_t i = 0; i < values.size(); ++i) {
    const py::handle item = values[i];
    if (is_missing(static_cast<py::ssize_t>(i))) {
      column.push("", false);
    } else if (py::isinstance<py::list>(item) || py::isinstance<py::tuple>(item)) {
      std::string joined;
      for (const py::handle part : item) joined += (joined.empty() ? "" : ";") + cell_text(part);
      column.push(joined, true);
    } else {
      column.push(cell_text(item), true);
    }
  }
  return column;
}

py::list column_values(const Table& table, const std::string& name) {
  const Column& column = table.column(name);
  py::list out;
  for (size_t i = 0; i < column.size(); ++i) {
    if (column.is_missing(i)) out.append(py::none());
    else out.append(py::str(column.text(i)));
  }
  return out;
}

// A tensor as a numpy array that owns a copy of its data.
py::array to_numpy(const torch::Tensor& tensor) {
  const torch::Tensor t = tensor.contiguous().cpu();
  std::vector<py::ssize_t> shape(t.sizes().begin(), t.sizes().end());
  switch (t.scalar_type()) {
    case torch::kFloat64: return py::array_t<double>(shape, t.data_ptr<double>());
    case torch::kFloat32: return py::array_t<float>(shape, t.data_ptr<float>());
    case torch::kInt64: return py::array_t<int64_t>(shape, t.data_ptr<int64_t>());
    case torch::kInt32: return py::array_t<int32_t>(shape, t.data_ptr<int32_t>());
    case torch::kBool: return py::array_t<bool>(shape, t.data_ptr<bool>());
    case torch::kUInt8: return py::array_t<uint8_t>(shape, t.data_ptr<uint8_t>());
    default: return to_numpy(t.to(torch::kFloat32));  // bf16 / fp16 outputs
  }
}

Json parse_json(const std::string& text, const char* what) {
  try {
    return Json::parse(text);
  } catch (const Json::exception& e) {
    throw std::invalid_argument(std::string(what) + " are not JSON-serializable: " + e.what());
  }
}

// Messages and progress into a Python object (automm._logging.PythonSink):
// message(level, text), progress(epoch, max_epochs, batch, batches, step, loss),
// progress_end(). An exception raised there is reported as unraisable, never
// let into the library; a KeyboardInterrupt is raised again for the fit's poll.
class PythonSink : public LogSink {
 public:
  explicit PythonSink(py::object target) : target_(std::move(target)) {}
  ~PythonSink() override {
    if (!Py_IsInitialized()) {
      target_.release();  // the interpreter is gone: nothing left to free
      return;
    }
    py::gil_scoped_acquire gil;
    target_ = py::object();
  }
  void message(LogLevel level, const std::string& text) override {
    call("message", level == LogLevel::kWarning ? 30 : 20, text);
  }
  void progress(const TrainingProgress& p) override {
    call("progress", p.epoch, p.max_epochs, p.batch, p.batches, p.step, p.loss);
  }
  void progress_end() override { call("progress_end"); }

 private:
  template <typename... Args>
  void call(const char* method, Args&&... args) {
    if (!Py_IsInitialized()) return;
    py::gil_scoped_acquire gil;
    try {
      target_.attr(method)(std::forward<Args>(args)...);
    } catch (py::error_already_set& e) {
      // Ctrl-C landed in the sink's Python code: hand it back to the fit's poll.
      if (e.matches(PyExc_KeyboardInterrupt)) PyErr_SetInterrupt();
      else e.discard_as_unraisable(method);
    }
  }
  py::object target_;
};

// Ctrl-C during a fit: Python's handler only marks the signal; the fit polls
// it after every batch (on the main thread, where Python runs handlers), keeps
// the KeyboardInterrupt, stops, and raises it once the library has unwound.
class InterruptCheck {
 public:
  std::function<bool()> poll() {
    return [this] {
      py::gil_scoped_acquire gil;
      if (PyErr_CheckSignals() == 0) return false;
      pending_.emplace();  // fetches the raised KeyboardInterrupt
      return true;
    };
  }
  // With the GIL held: raises what the poll caught, if anything.
  void raise_pending() {
    if (!pending_) return;
    pending_->restore();
    pending_.reset();
    throw py::error_already_set();
  }

 private:
  std::optional<py::error_already_set> pending_;
};

MultiModalPredictor make_predictor(const std::string& label, const std::string& problem_type,
                                   const std::string& presets, const std::string& eval_metric,
                                   const std::string& hyperparameters, const std::string& path, bool verbose,
                                   bool pretrained, const std::string& query, const std::string& response,
                                   const std::string& match_label) {
  PredictorOptions options;
  options.label = label;
  options.query = query;
  options.response = response;
  options.match_label = match_label;
  options.problem_type = problem_type;
  options.presets = presets;
  options.eval_metric = eval_metric;
  options.hyperparameters = parse_json(hyperparameters, "hyperparameters");
  options.path = path;
  options.verbose = verbose;
  options.pretrained = pretrained;
  return MultiModalPredictor(std::move(options));
}

void fit(MultiModalPredictor& predictor, const Table& train, const Table* tuning, double time_limit,
         const std::string& presets, const std::string& hyperparameters,
         const std::map<std::string, std::string>& column_types, double holdout_frac, uint64_t seed,
         const std::string& teacher) {
  FitOptions options;
  if (!teacher.empty()) {
    py::gil_scoped_release release;
    options.teacher_predictor = std::make_shared<const MultiModalPredictor>(MultiModalPredictor::load(teacher));
  }
  if (tuning) options.tuning_data = *tuning;
  options.time_limit = time_limit;
  options.presets = presets;
  options.hyperparameters = parse_json(hyperparameters, "hyperparameters");
  options.column_types = column_types;
  options.holdout_frac = holdout_frac;
  options.seed = seed;
  InterruptCheck interrupt;
  options.stop_requested = interrupt.poll();
  try {
    py::gil_scoped_release release;
    predictor.fit(train, options);
  } catch (const FitInterrupted&) {
    interrupt.raise_pending();
    throw;
  }
}

}  // namespace
}  // namespace automm

PYBIND11_MODULE(_automm, m) {
  using namespace automm;
  m.doc() = "automm.cpp's C++ library (use automm.MultiModalPredictor)";
  py::register_local_exception_translator([](std::exception_ptr error) {
    try {
      if (error) std::rethrow_exception(error);
    } catch (const UnknownKeyError& e) {
      PyErr_SetString(PyExc_KeyError, e.what());
    } catch (const FitInterrupted& e) {
      PyErr_SetString(PyExc_KeyboardInterrupt, e.what());
    }
  });

  py::class_<Table>(m, "Table")
      .def(py::init<>())
      .def_static("read", &read_table, py::arg("path"), py::call_guard<py::gil_scoped_release>())
      .def_readwrite("source", &Table::source)
      .def_property_readonly("num_rows", &Table::num_rows)
      .def_property_readonly("column_names", &Table::column_names)
      .def("add_float_column",
           [](Table& t, const std::string& name, const py::array_t<double, py::array::c_style | py::array::forcecast>& v) {
             t.add_column(float_column(name, v));
           })
      .def("add_int_column",
           [](Table& t, const std::string& name, const py::array_t<int64_t, py::array::c_style | py::array::forcecast>& v) {
             t.add_column(int_column(name, v));
           })
      .def("add_object_column",
           [](Table& t, const std::string& name, const py::list& values,
              const py::array_t<bool, py::array::c_style | py::array::forcecast>& missing) {
             t.add_column(object_column(name, values, missing));
           })
      .def("column", &column_values, py::arg("name"))
      .def("write_csv", &write_csv, py::arg("path"), py::call_guard<py::gil_scoped_release>());

  m.def("python_float_repr", &python_float_repr);
  m.def("set_log_sink", [](py::object sink) {
    set_log_sink(sink.is_none() ? nullptr : std::make_shared<PythonSink>(std::move(sink)));
  });

  using Predictor = MultiModalPredictor;
  using Release = py::call_guard<py::gil_scoped_release>;
  py::class_<Predictor>(m, "Predictor")
      .def(py::init(&make_predictor), py::arg("label"), py::arg("problem_type"), py::arg("presets"),
           py::arg("eval_metric"), py::arg("hyperparameters"), py::arg("path"), py::arg("verbose"),
           py::arg("pretrained"), py::arg("query"), py::arg("response"), py::arg("match_label"))
      .def("fit", &fit, py::arg("train"), py::arg("tuning"), py::arg("time_limit"), py::arg("presets"),
           py::arg("hyperparameters"), py::arg("column_types"), py::arg("holdout_frac"), py::arg("seed"),
           py::arg("teacher"))
      // (kind, values, classes): kind "classes" (values: int64 class indices, or
      // [rows, classes] 0/1 indicators) or "numbers" (float64).
      .def("predict",
           [](const Predictor& p, const Table& data) {
             Predictions predictions;
             {
               py::gil_scoped_release release;
               predictions = p.predict(data);
             }
             if (predictions.are_masks()) {  // semantic segmentation: one mask array per image
               py::list masks;
               for (const torch::Tensor& mask : predictions.masks) masks.append(to_numpy(mask));
               return py::make_tuple("masks", masks, predictions.classes);
             }
             if (predictions.are_detections()) {  // object detection: per image (image, boxes, scores, labels)
               std::string image_column = "image";
               for (const auto& [name, type] : p.column_types())
                 if (type == "image_path") image_column = name;
               const bool has_images = data.has_column(image_column);
               py::list images;
               for (size_t r = 0; r < predictions.detections.size(); ++r) {
                 const auto& d = predictions.detections[r];
                 images.append(py::make_tuple(has_images ? data.column(image_column).text(r) : std::string(),
                                              to_numpy(d.boxes), to_numpy(d.scores), to_numpy(d.labels)));
               }
               return py::make_tuple("detections", images, predictions.classes);
             }
             return py::make_tuple(predictions.are_classes() ? "classes" : "numbers", to_numpy(predictions.values),
                                   predictions.classes);
           })
      // One array per row (semantic segmentation, whose images differ in size).
      .def("predict_proba_rows",
           [](const Predictor& p, const Table& data, bool as_multiclass) {
             std::vector<torch::Tensor> rows;
             {
               py::gil_scoped_release release;
               for (size_t r = 0; r < data.num_rows(); ++r) rows.push_back(p.predict_proba(data.select_rows({r}), as_multiclass));
             }
             py::list out;
             for (const torch::Tensor& row : rows) out.append(to_numpy(row));
             return out;
           })
      .def("predict_proba",
           [](const Predictor& p, const Table& data, bool as_multiclass) {
             torch::Tensor probabilities;
             {
               py::gil_scoped_release release;
               probabilities = p.predict_proba(data, as_multiclass);
             }
             return to_numpy(probabilities);
           })
      // Zero-shot: [rows, candidates] probabilities and the most probable names.
      .def("predict_proba_candidates",
           [](const Predictor& p, const Table& data, const std::vector<std::string>& candidates) {
             torch::Tensor probabilities;
             {
               py::gil_scoped_release release;
               probabilities = p.predict_proba(data, candidates);
             }
             return to_numpy(probabilities);
           })
      .def("evaluate", &Predictor::evaluate, Release())
      .def("extract_embedding",
           [](const Predictor& p, const Table& data) {
             torch::Tensor embeddings;
             {
               py::gil_scoped_release release;
               embeddings = p.extract_embedding(data);
             }
             return to_numpy(embeddings);
           })
      .def("export_model",
           [](const Predictor& p, const Table& data, const std::string& out, const std::string& format,
              int64_t batch_size, int64_t text_length, int64_t opset_version) {
             automm::ExportOptions options;
             options.format = format;
             options.batch_size = batch_size;
             options.text_length = text_length;
             options.opset_version = opset_version;
             py::gil_scoped_release release;
             p.export_model(data, out, options);
           })
      .def("save", &Predictor::save, py::arg("path"), py::arg("standalone"), Release())
      .def_static("load", &Predictor::load, py::arg("path"), py::arg("resume"), Release())
      .def("fit_summary", [](const Predictor& p) { return p.fit_summary().dump(); })
      .def("config", [](const Predictor& p) { return p.config().to_json().dump(); })
      .def_property_readonly("path", &Predictor::path)
      .def_property_readonly("label", &Predictor::label)
      .def_property_readonly("problem_type", &Predictor::problem_type)
      .def_property_readonly("eval_metric", &Predictor::eval_metric)
      .def_property_readonly("classes", &Predictor::classes)
      .def_property_readonly("column_types", &Predictor::column_types);

  // For bench/python_binding.py: seconds per predict_proba call timed inside
  // C++, the baseline of the binding's overhead.
  m.def(
      "time_predict_proba",
      [](const Predictor& p, const Table& data, int repeats) {
        const auto start = std::chrono::steady_clock::now();
        for (int i = 0; i < repeats; ++i) p.predict_proba(data, true);
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / repeats;
      },
      Release());
}
