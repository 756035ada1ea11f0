// The HTTP side of `automm serve`: routes, authentication, errors as JSON, and
// the Prometheus metrics.
#include "automm/serve.h"

#include <array>
#include <atomic>
#include <chrono>
#include <map>
#include <optional>

#include <httplib.h>

#include "serve/batcher.h"
#include "serve/request.h"

namespace automm {
namespace {

// Prometheus histogram with fixed upper bounds.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}
  void observe(double value) {
    size_t i = 0;
    while (i < bounds_.size() && value > bounds_[i]) ++i;
    ++counts_[i];
    sum_ += value;
    ++count_;
  }
  void write(std::string& out, const std::string& name) const {
    uint64_t cumulative = 0;
    char line[256];
    for (size_t i = 0; i <= bounds_.size(); ++i) {
      cumulative += counts_[i];
      if (i < bounds_.size())
        std::snprintf(line, sizeof(line), "%s_bucket{le=\"%g\"} %llu\n", name.c_str(), bounds_[i],
                      static_cast<unsigned long long>(cumulative));
      else
        std::snprintf(line, sizeof(line), "%s_bucket{le=\"+Inf\"} %llu\n", name.c_str(),
                      static_cast<unsigned long long>(cumulative));
      out += line;
    }
    std::snprintf(line, sizeof(line), "%s_sum %.9g\n%s_count %llu\n", name.c_str(), sum_, name.c_str(),
                  static_cast<unsigned long long>(count_));
    out += line;
  }

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;
  double sum_ = 0.0;
  uint64_t count_ = 0;
};

class Metrics {
 public:
  void request(const std::string& path, int status, double seconds) {
    std::lock_guard<std::mutex> lock(mutex_);
    ++requests_[{path, status}];
    latency_.observe(seconds);
  }
  void batch(size_t rows) {
    std::lock_guard<std::mutex> lock(mutex_);
    batch_rows_.observe(static_cast<double>(rows));
  }
  std::string text() {
    std::lock_guard<std::mutex> lock(mutex_);
    std::string out =
        "# HELP automm_requests_total Requests answered, by path and HTTP status.\n"
        "# TYPE automm_requests_total counter\n";
    for (const auto& [key, count] : requests_)
      out += "automm_requests_total{path=\"" + key.first + "\",code=\"" + std::to_string(key.second) + "\"} " +
             std::to_string(count) + "\n";
    out += "# HELP automm_request_errors_total Requests answered with a 4xx or 5xx status.\n"
           "# TYPE automm_request_errors_total counter\n";
    uint64_t errors = 0;
    for (const auto& [key, count] : requests_) errors += key.second >= 400 ? count : 0;
    out += "automm_request_errors_total " + std::to_string(errors) + "\n";
    out += "# HELP automm_request_seconds Time from a request's arrival to its answer.\n"
           "# TYPE automm_request_seconds histogram\n";
    latency_.write(out, "automm_request_seconds");
    out += "# HELP automm_batch_rows Rows per forward pass.\n# TYPE automm_batch_rows histogram\n";
    batch_rows_.write(out, "automm_batch_rows");
    return out;
  }

 private:
  std::mutex mutex_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  Histogram latency_{{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}};
  Histogram batch_rows_{{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096}};
};

std::string error_body(const std::string& message) { return Json{{"error", message}}.dump(); }

// Compares without an early exit, so the time taken tells nothing of the token.
bool same_secret(const std::string& a, const std::string& b) {
  unsigned char difference = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) difference |= static_cast<unsigned char>(a[i] ^ b[i % std::max<size_t>(b.size(), 1)]);
  return difference == 0 && !b.empty();
}

}  // namespace

struct PredictionServer::Impl {
  const MultiModalPredictor& predictor;
  ServeOptions options;
  ServedColumns served;
  Metrics metrics;
  httplib::Server http;
  std::optional<DynamicBatcher> batcher;
  int port = -1;

  Impl(const MultiModalPredictor& p, ServeOptions o)
      : predictor(p), options(std::move(o)), served(ServedColumns::of(p, options.allow_image_dir, options.max_rows)) {
    if (options.max_batch > 1)
      batcher.emplace(predictor, static_cast<size_t>(options.max_batch), options.max_delay_ms,
                      [this](size_t rows) { metrics.batch(rows); });
    const size_t threads = static_cast<size_t>(std::max(options.threads, 1));
    http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
    http.set_payload_max_length(options.max_body_bytes);
    // SO_REUSEADDR only: httplib's default SO_REUSEPORT would let a second server
    // share a port in use, silently splitting its requests.
    http.set_socket_options([](socket_t socket) {
      int yes = 1;
      setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    });
    http.set_error_handler([](const httplib::Request& request, httplib::Response& response) {
      if (!response.body.empty()) return;
      const std::string reason = response.status == 413 ? "the request body is larger than --max-body-mb allows"
                                 : response.status == 404 ? "no such endpoint: " + request.path
                                                          : "HTTP status " + std::to_string(response.status);
      response.set_content(error_body(reason), "application/json");
    });
    http.set_exception_handler([](const httplib::Request&, httplib::Response& response, std::exception_ptr) {
      response.status = 500;
      response.set_content(error_body("internal error"), "application/json");
    });
    http.Get("/health", [](const httplib::Request&, httplib::Response& response) {
      response.set_content(R"({"status":"ok"})", "application/json");
    });
    route_get("/info", [this] { return info(); }, "application/json");
    route_get("/metrics", [this] { return metrics.text(); }, "text/plain; version=0.0.4");
    route_post("/predict", Endpoint::kPredict);
    route_post("/predict_proba", Endpoint::kPredictProba);
    route_post("/embed", Endpoint::kEmbed);
  }

  bool authorized(const httplib::Request& request, httplib::Response& response) {
    if (options.token.empty()) return true;
    const std::string header = request.get_header_value("Authorization");
    if (header.rfind("Bearer ", 0) == 0 && same_secret(header.substr(7), options.token)) return true;
    response.status = 401;
    response.set_header("WWW-Authenticate", "Bearer");
    response.set_content(error_body("missing or wrong bearer token"), "application/json");
    return false;
  }

  void route_get(const std::string& path, std::function<std::string()> content, const std::string& type) {
    http.Get(path, [this, path, content, type](const httplib::Request& request, httplib::Response& response) {
      if (authorized(request, response)) response.set_content(content(), type);
    });
  }

  void route_post(const std::string& path, Endpoint endpoint) {
    http.Post(path, [this, path, endpoint](const httplib::Request& request, httplib::Response& response) {
      const auto start = std::chrono::steady_clock::now();
      if (authorized(request, response)) {
        try {
          const Table rows = request_table(request.body, served);
          const RowsAnswer out = batcher ? batcher->submit(endpoint, rows) : answer(predictor, endpoint, rows);
          response.set_content(out.body(), "application/json");
        } catch (const std::invalid_argument& e) {  // the request's rows: a column, a value, an image
          response.status = 400;
          response.set_content(error_body(e.what()), "application/json");
        } catch (const std::exception& e) {
          response.status = 500;
          response.set_content(error_body(e.what()), "application/json");
        }
      }
      // httplib sets 200 after the handler when it left the status unset (-1).
      metrics.request(path, response.status < 0 ? 200 : response.status,
                      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    });
  }

  std::string info() const {
    Json columns = Json::object();
    for (const auto& [name, type] : served.columns) columns[name] = type;
    Json out{{"problem_type", predictor.problem_type()},
             {"label", predictor.label()},
             {"eval_metric", predictor.eval_metric()},
             {"columns", columns},
             {"max_batch", options.max_batch},
             {"max_rows", options.max_rows}};
    out["classes"] = predictor.classes();
    return out.dump();
  }
};

PredictionServer::PredictionServer(const MultiModalPredictor& predictor, ServeOptions options) {
  // Answers are JSON rows of labels, numbers or probabilities; a mask per image is not one.
  if (predictor.problem_type() == "semantic_segmentation")
    throw std::invalid_argument("automm serve answers with one JSON value per row, and a semantic_segmentation "
                                "predictor's answer is a mask per image: use automm predict --out DIR, or the C++ "
                                "and Python APIs");
  impl_ = std::make_unique<Impl>(predictor, std::move(options));
}

PredictionServer::~PredictionServer() {
  stop();
  if (impl_->batcher) impl_->batcher->stop();
}

void PredictionServer::bind() {
  const ServeOptions& o = impl_->options;
  impl_->port = o.port == 0 ? impl_->http.bind_to_any_port(o.host) : (impl_->http.bind_to_port(o.host, o.port) ? o.port : -1);
  if (impl_->port < 0)
    throw std::runtime_error("cannot listen on " + o.host + ":" + std::to_string(o.port) +
                             " (a port in use, or an address this machine does not have)");
}

int PredictionServer::port() const { return impl_->port; }

void PredictionServer::run() {
  if (impl_->port < 0) bind();
  impl_->http.listen_after_bind();  // returns once stop() ran and the workers finished their requests
  if (impl_->batcher) impl_->batcher->stop();
}

void PredictionServer::stop() { impl_->http.stop(); }

}  // namespace automm
