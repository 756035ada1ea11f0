// `automm serve`: a fitted predictor behind an HTTP/1.1 JSON API (cpp-httplib).
//
//   POST /predict, /predict_proba, /embed   {"data": [{column: value, ...}, ...]}  (rows)
//                                          {"data": {column: [values], ...}}      (columns)
//   GET  /health, /info, /metrics (Prometheus text format)
//
// Requests that arrive within max_delay_ms of each other are answered by one
// forward pass of up to max_batch rows (dynamic batching), split back in order.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

namespace automm {

class MultiModalPredictor;

struct ServeOptions {
  std::string host = "127.0.0.1";  // loopback unless told otherwise
  int port = 8080;                 // 0 = any free port (see PredictionServer::port())
  int max_batch = 32;              // rows per forward pass; 1 = no batching (each request on its own thread)
  double max_delay_ms = 5.0;       // how long the first request of a batch waits for others
  int threads = 64;                // HTTP worker threads: a kept-alive connection holds one, so one per concurrent client
  std::string token;               // "" = no authentication; else every endpoint but /health wants "Bearer <token>"
  // Image columns take base64 strings; with a root folder here, also {"path": P}
  // for a file that must lie inside it (no "..", no symbolic link out of it).
  std::string allow_image_dir;
  size_t max_body_bytes = 64u << 20;  // larger bodies get 413
  size_t max_rows = 4096;             // rows per request; more get 400
};

class PredictionServer {
 public:
  // The predictor must outlive the server.
  PredictionServer(const MultiModalPredictor& predictor, ServeOptions options);
  ~PredictionServer();

  // Binds the listening socket; throws naming host and port when it cannot.
  void bind();
  int port() const;
  // Serves until stop(); requests in flight are answered before it returns.
  void run();
  // Safe from any thread (a signal-watching thread, a test).
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace automm
